/* SPDX-License-Identifier: Apache-2.0
 * The `resource` and `attributes` processors (and their shared actions,
 * collector/attraction): config errors, each naming its path; every action
 * on real encoded requests, results decoded with protobuf-c; include /
 * exclude; a chunk nothing changes passes by reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_batch.h"
#include "collector/core/kn_component.h"
#include "collector/core/kn_metrics.h"
#include "collector/wire/kn_wire.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "processors/resourcedetection/kn_resourcedetection.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Resource__V1__Resource Res;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;

/* ---- requests from a compact text: "k=s:v" / "k=i:1" / "k=d:1.5" / "k=b:1" ---- */

static KV *kv_parse(const char *spec)
{
	KV *kv = calloc(1, sizeof *kv);
	AV *av = calloc(1, sizeof *av);
	opentelemetry__proto__common__v1__key_value__init(kv);
	opentelemetry__proto__common__v1__any_value__init(av);
	const char *eq = strchr(spec, '=');
	kv->key = strndup(spec, (size_t)(eq - spec));
	char t = eq[1];
	const char *v = eq + 3;
	if (t == 's') {
		av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		av->string_value = strdup(v);
	} else if (t == 'i') {
		av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
		av->int_value = strtoll(v, NULL, 10);
	} else if (t == 'd') {
		av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
		av->double_value = strtod(v, NULL);
	} else {
		av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
		av->bool_value = v[0] == '1';
	}
	kv->value = av;
	return kv;
}

static KV **kvs(const char *const *specs, size_t *n)
{
	size_t k = 0;
	while (specs && specs[k])
		k++;
	*n = k;
	KV **v = calloc(k + 1, sizeof *v);
	for (size_t i = 0; i < k; i++)
		v[i] = kv_parse(specs[i]);
	return v;
}

struct tspan {
	const char *name;
	int kind;
	const char *attrs[12];
};

struct tres {
	const char *attrs[12];
	const char *scope, *version;
	struct tspan spans[4];
	size_t nspans;
};

static uint8_t ids[256][24];
static uint32_t nid;

static struct kn_chunk *make_chunk(const struct tres *r, size_t nres)
{
	Req req;
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
	req.n_resource_spans = nres;
	req.resource_spans = calloc(nres, sizeof(RS *));
	uint32_t total = 0;
	for (size_t i = 0; i < nres; i++) {
		RS *rs = calloc(1, sizeof *rs);
		opentelemetry__proto__trace__v1__resource_spans__init(rs);
		req.resource_spans[i] = rs;
		Res *res = calloc(1, sizeof *res);
		opentelemetry__proto__resource__v1__resource__init(res);
		res->attributes = kvs(r[i].attrs, &res->n_attributes);
		rs->resource = res;
		SS *ss = calloc(1, sizeof *ss);
		opentelemetry__proto__trace__v1__scope_spans__init(ss);
		if (r[i].scope) {
			Scope *sc = calloc(1, sizeof *sc);
			opentelemetry__proto__common__v1__instrumentation_scope__init(sc);
			sc->name = strdup(r[i].scope);
			sc->version = strdup(r[i].version ? r[i].version : "");
			ss->scope = sc;
		}
		rs->n_scope_spans = 1;
		rs->scope_spans = calloc(1, sizeof(SS *));
		rs->scope_spans[0] = ss;
		ss->n_spans = r[i].nspans;
		ss->spans = calloc(r[i].nspans, sizeof(Span *));
		for (size_t s = 0; s < r[i].nspans; s++, total++) {
			Span *sp = calloc(1, sizeof *sp);
			opentelemetry__proto__trace__v1__span__init(sp);
			uint8_t *id = ids[nid++ % 256];
			memset(id, 0, 24);
			id[0] = (uint8_t)nid;
			id[1] = (uint8_t)(nid >> 8);
			id[16] = 1;
			sp->trace_id.data = id;
			sp->trace_id.len = 16;
			sp->span_id.data = id + 16;
			sp->span_id.len = 8;
			sp->name = strdup(r[i].spans[s].name);
			sp->kind = r[i].spans[s].kind;
			sp->attributes = kvs(r[i].spans[s].attrs, &sp->n_attributes);
			ss->spans[s] = sp;
		}
	}
	size_t len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	uint8_t *buf = malloc(len);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
	for (size_t i = 0; i < nres; i++) {
		SS *ss = req.resource_spans[i]->scope_spans[0];
		for (size_t s = 0; s < ss->n_spans; s++)
			ss->spans[s]->trace_id.data = ss->spans[s]->span_id.data = NULL,
			ss->spans[s]->trace_id.len = ss->spans[s]->span_id.len = 0;
		opentelemetry__proto__trace__v1__resource_spans__free_unpacked(req.resource_spans[i], NULL);
	}
	free(req.resource_spans);
	struct kn_wire_index ix;
	struct kn_err err;
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
	assert_int_equal(ix.nspans, total);
	struct kn_chunk *c = kn_chunk_alloc(total, (uint32_t)len);
	memcpy(c->data, buf, len);
	c->len = (uint32_t)len;
	memcpy(c->spans, ix.spans, total * sizeof *c->spans);
	kn_wire_index_free(&ix);
	free(buf);
	return c;
}

/* ---- running a processor ---- */

struct proc {
	const struct kn_component *comp;
	void *cfg, *inst, *state;
	struct kn_metrics *m;
	struct kn_cnode *root;
};

static int cfg_load(const char *type, const char *yaml, struct proc *p, struct kn_err *err)
{
	memset(p, 0, sizeof *p);
	p->comp = kn_component_find(KN_PROCESSOR, type);
	assert_non_null(p->comp);
	char path[64];
	snprintf(path, sizeof path, "processors.%s", type);
	/* parse under a root so node paths are "processors.<type>..." */
	char doc[4096];
	snprintf(doc, sizeof doc, "processors:\n  %s: %s\n", type, yaml);
	if (kn_config_parse(doc, strlen(doc), "test", &p->root, err) != KN_OK)
		return KN_ERR;
	const struct kn_cnode *n = kn_cnode_get(kn_cnode_get(p->root, "processors"), type);
	p->cfg = calloc(1, p->comp->config_size);
	if (kn_cfg_apply(p->comp->config_fields, n, p->cfg, err) != KN_OK)
		return KN_ERR;
	if (p->comp->validate && p->comp->validate(p->cfg, path, err) != KN_OK)
		return KN_ERR;
	return KN_OK;
}

static void proc_free(struct proc *p)
{
	if (p->state)
		p->comp->shard_destroy(p->state);
	if (p->inst)
		p->comp->destroy(p->inst);
	if (p->cfg)
		kn_cfg_free(p->comp->config_fields, p->cfg);
	free(p->cfg);
	kn_cnode_free(p->root);
	kn_metrics_destroy(p->m);
}

static void proc_start(const char *type, const char *yaml, struct proc *p)
{
	struct kn_err err = {{0}};
	if (cfg_load(type, yaml, p, &err) != KN_OK)
		fail_msg("config: %s", err.msg);
	p->m = kn_metrics_create();
	struct kn_component_ctx ctx = {.id = type, .metrics = p->m, .nshards = 1};
	assert_int_equal(p->comp->create(&ctx, p->cfg, &p->inst, &err), KN_OK);
	assert_int_equal(p->comp->shard_create(p->inst, 0, &p->state, &err), KN_OK);
}

static struct kn_batch *got;

static int capture(void *ctx, struct kn_batch *b)
{
	(void)ctx;
	assert_null(got);
	got = b;
	return KN_OK;
}

/* Runs chunk c (reference taken over) through p; returns the decoded output. */
static Req *through(struct proc *p, struct kn_chunk *c, struct kn_chunk **out_chunk)
{
	struct kn_batch *b = kn_batch_new(1);
	assert_int_equal(kn_batch_add(&b, c), KN_OK);
	struct kn_emit e = {.fn = capture};
	got = NULL;
	p->comp->process(p->state, b, &e);
	assert_non_null(got);
	assert_int_equal(got->n, 1);
	uint8_t *flat = kn_batch_flatten(got);
	struct kn_wire_index ix;
	struct kn_err err;
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, flat, got->bytes, &err), KN_OK);
	assert_int_equal(ix.nspans, got->nspans);
	kn_wire_index_free(&ix);
	Req *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, got->bytes, flat);
	assert_non_null(r);
	free(flat);
	if (out_chunk)
		*out_chunk = got->chunks[0];
	return r;
}

static void done(Req *r)
{
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
	kn_batch_free(got);
	got = NULL;
}

static const AV *get(KV **kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i]->key, key))
			return kv[i]->value;
	return NULL;
}

static void assert_str(KV **kv, size_t n, const char *key, const char *want)
{
	const AV *v = get(kv, n, key);
	if (!v)
		fail_msg("attribute %s missing", key);
	assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
	assert_string_equal(v->string_value, want);
}

/* ---- config errors ---- */

struct bad { const char *type, *yaml, *want; };

static void test_config_errors(void **st)
{
	(void)st;
	static const struct bad cases[] = {
		{"resource", "{}", "processors.resource.attributes: missing"},
		{"resource", "{attributes: [{key: a, action: upsertt, value: 1}]}",
		 "processors.resource.attributes[0].action: unknown action \"upsertt\""},
		{"resource", "{attributes: [{key: a, value: 1}]}", "processors.resource.attributes[0].action: missing"},
		{"resource", "{attributes: [{key: a, action: insert, from_context: metadata.tenant}]}",
		 "processors.resource.attributes[0].from_context: \"metadata.tenant\" is not supported"},
		{"resource", "{attributes: [{key: a, action: insert}]}", "needs one of value, from_attribute"},
		{"resource", "{attributes: [{key: a, action: insert, value: 1, from_attribute: b}]}", "only one of"},
		{"resource", "{attributes: [{action: insert, value: 1}]}", "processors.resource.attributes[0].key: missing"},
		{"resource", "{attributes: [{key: a, action: insert, value: 1, pattern: x}]}",
		 "attributes[0].pattern: not used by action insert"},
		{"resource", "{attributes: [{action: delete}]}", "needs \"key\" and/or \"pattern\""},
		{"resource", "{attributes: [{key: a, action: delete, value: 1}]}", "does not use value"},
		{"resource", "{attributes: [{key: a, action: extract, pattern: \"^x$\"}]}", "contains no named groups"},
		{"resource", "{attributes: [{key: a, action: extract, pattern: \"^(?P<x>a)(b)$\"}]}", "unnamed group"},
		{"resource", "{attributes: [{key: a, action: extract}]}", "attributes[0].pattern: missing"},
		{"resource", "{attributes: [{key: a, action: delete, pattern: \"(\"}]}",
		 "processors.resource.attributes[0].pattern: invalid pattern"},
		{"resource", "{attributes: [{key: a, action: convert}]}", "attributes[0].converted_type: missing"},
		{"resource", "{attributes: [{key: a, action: convert, converted_type: float}]}", "unknown type \"float\""},
		{"resource", "{attributes: [{key: a, action: insert, value: [1, 2]}]}",
		 "attributes[0].value: expected a string, number or bool"},
		{"resource", "{attributes: [{key: a, action: insert, value: 1, color: red}]}",
		 "processors.resource.attributes[0].color: unknown key"},
		{"resource", "{actions: [{key: a, action: delete}]}", "processors.resource.actions: unknown key"},
		{"attributes", "{}", "processors.attributes.actions: missing"},
		{"resourcedetection", "{detectors: [env, docker]}",
		 "processors.resourcedetection.detectors[1]: detector \"docker\" is not supported"},
		{"resourcedetection", "{detectors: [sys]}", "detectors[0]: unknown detector \"sys\""},
		{"resourcedetection", "{detectors: [system], system: {hostname_sources: [cname]}}",
		 "processors.resourcedetection.system.hostname_sources[0]: unsupported source \"cname\""},
		{"resourcedetection", "{detectors: [system], system: {resource_attributes: {host.id: {enabled: true}}}}",
		 "processors.resourcedetection.system.resource_attributes.host.id.enabled: kansatsu's system detector does not detect"},
		{"resourcedetection", "{detectors: [system], system: {resource_attributes: {host.nme: {enabled: true}}}}",
		 "resource_attributes.host.nme: unknown attribute"},
		{"resourcedetection", "{refresh_interval: 5m}", "processors.resourcedetection.refresh_interval: not supported"},
		{"resourcedetection", "{attributes: [a]}", "processors.resourcedetection.attributes: not supported"},
		{"resourcedetection", "{ec2: {tags: [a]}}", "processors.resourcedetection.ec2: unknown key"},
		{"resourcedetection", "{override: maybe}", "processors.resourcedetection.override"},
		{"attributes", "{actions: [{key: a, action: delete}], include: {services: [a]}}",
		 "processors.attributes.include.match_type: missing"},
		{"attributes", "{actions: [{key: a, action: delete}], include: {match_type: fuzzy, services: [a]}}",
		 "unknown match_type \"fuzzy\""},
		{"attributes", "{actions: [{key: a, action: delete}], exclude: {match_type: strict}}",
		 "processors.attributes.exclude: needs at least one of"},
		{"attributes", "{actions: [{key: a, action: delete}], include: {match_type: strict, log_bodies: [x]}}",
		 "processors.attributes.include.log_bodies: not valid for spans"},
		{"attributes", "{actions: [{key: a, action: delete}], include: {match_type: strict, span_name: [x]}}",
		 "processors.attributes.include.span_name: unknown key"},
		{"attributes", "{actions: [{key: a, action: delete}], include: {match_type: regexp, span_names: [\"(\"]}}",
		 "processors.attributes.include.span_names[0]: invalid pattern"},
		{"attributes", "{actions: [{key: a, action: delete}], include: {match_type: regexp, attributes: [{key: k, value: 3}]}}",
		 "include.attributes[0].value: match_type regexp takes a string"},
		{"attributes", "{actions: [{key: a, action: delete}], include: {match_type: strict, libraries: [{version: v}]}}",
		 "include.libraries[0].name: missing"},
		{"attributes", "{actions: [{key: a, action: delete}], include: {match_type: strict, regexp: {cacheenabled: true}, services: [a]}}",
		 "include.regexp: only with match_type regexp"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct proc p;
		struct kn_err err = {{0}};
		int rc = cfg_load(cases[i].type, cases[i].yaml, &p, &err);
		if (rc == KN_OK)
			fail_msg("case %zu (%s): accepted", i, cases[i].yaml);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, cases[i].want);
		proc_free(&p);
	}
	/* and what is accepted: every action, case-insensitive, regexp cache keys */
	struct proc p;
	struct kn_err err = {{0}};
	int rc = cfg_load("attributes",
		"{actions: [{key: a, action: INSERT, value: x}, {key: b, action: Update, from_attribute: a},"
		" {key: c, action: upsert, default_value: 1}, {action: delete, pattern: \"^x\"},"
		" {key: d, action: hash}, {key: e, action: extract, pattern: \"(?P<u>x)\"},"
		" {key: f, action: convert, converted_type: double}],"
		" include: {match_type: regexp, regexp: {cacheenabled: true, cachemaxnumentries: 10}, services: [\".*\"]}}",
		&p, &err);
	if (rc != KN_OK)
		fail_msg("rejected: %s", err.msg);
	proc_free(&p);
}

/* ---- resource actions ---- */

static void test_resource_actions(void **st)
{
	(void)st;
	struct proc p;
	proc_start("resource",
		"{attributes: ["
		"  {key: cloud.region, value: eu-west-1, action: upsert},"
		"  {key: k8s.cluster.name, from_attribute: k8s-cluster, action: insert},"
		"  {key: redundant, action: delete},"
		"  {key: user.email, action: hash},"
		"  {key: replicas, action: convert, converted_type: int},"
		"  {key: host.id, action: extract, pattern: \"^(?P<host_rack>r[0-9]+)-(?P<host_slot>[0-9]+)$\"},"
		"  {key: weight, action: convert, converted_type: string},"
		"  {key: service.name, value: never, action: insert},"
		"  {key: absent, value: 1, action: update},"
		"  {key: tier, default_value: gold, from_attribute: nope, action: insert},"
		"  {key: flag, value: true, action: insert},"
		"  {key: ratio, value: 0.5, action: insert},"
		"  {key: quoted, value: \"7\", action: insert},"
		"  {action: delete, pattern: \"^tmp\\\\.\"}"
		"]}",
		&p);
	struct tres r[] = {{
		.attrs = {"service.name=s:api", "k8s-cluster=s:prod-1", "redundant=s:x", "user.email=s:secret",
			  "replicas=s:3", "host.id=s:r12-7", "weight=d:1.5", "tmp.a=s:1"},
		.spans = {{.name = "GET /", .attrs = {"a=s:1"}}}, .nspans = 1,
	}};
	Req *out = through(&p, make_chunk(r, 1), NULL);
	Res *res = out->resource_spans[0]->resource;
	KV **a = res->attributes;
	size_t n = res->n_attributes;
	assert_str(a, n, "service.name", "api");
	assert_str(a, n, "cloud.region", "eu-west-1");
	assert_str(a, n, "k8s.cluster.name", "prod-1");
	assert_null(get(a, n, "redundant"));
	assert_null(get(a, n, "tmp.a"));
	assert_null(get(a, n, "absent"));
	assert_str(a, n, "user.email", "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b");
	assert_int_equal(get(a, n, "replicas")->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
	assert_int_equal(get(a, n, "replicas")->int_value, 3);
	assert_str(a, n, "host_rack", "r12");
	assert_str(a, n, "host_slot", "7");
	assert_str(a, n, "host.id", "r12-7");
	assert_str(a, n, "weight", "1.5");
	assert_str(a, n, "tier", "gold");
	assert_true(get(a, n, "flag")->bool_value);
	assert_true(get(a, n, "ratio")->double_value == 0.5);
	assert_str(a, n, "quoted", "7");
	/* order: the kept ones in place, new ones after */
	assert_string_equal(a[0]->key, "service.name");
	assert_string_equal(a[1]->key, "k8s-cluster");
	/* the span is untouched */
	assert_int_equal(out->resource_spans[0]->scope_spans[0]->spans[0]->n_attributes, 1);
	done(out);
	proc_free(&p);
}

static void test_hash_types_and_convert(void **st)
{
	(void)st;
	struct proc p;
	proc_start("resource",
		"{attributes: [{action: hash, pattern: \"^h\\\\.\"},"
		" {key: c.int, action: convert, converted_type: int},"
		" {key: c.dbl, action: convert, converted_type: double},"
		" {key: c.bad, action: convert, converted_type: int},"
		" {key: c.bool, action: convert, converted_type: double},"
		" {key: c.str, action: convert, converted_type: string}]}",
		&p);
	struct tres r[] = {{
		.attrs = {"h.int=i:42", "h.bool=b:1", "h.dbl=d:1.5", "h.empty=s:", "c.int=d:-2.9",
			  "c.dbl=s:2.25", "c.bad=s:12x", "c.bool=b:1", "c.str=i:-5"},
		.spans = {{.name = "x"}}, .nspans = 1,
	}};
	Req *out = through(&p, make_chunk(r, 1), NULL);
	KV **a = out->resource_spans[0]->resource->attributes;
	size_t n = out->resource_spans[0]->resource->n_attributes;
	assert_str(a, n, "h.int", "ed049108bc18f2c64369e8d0ea42850bdd1a7d1dd340cfde716315579702a76c");
	assert_str(a, n, "h.bool", "4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a");
	assert_str(a, n, "h.dbl", "e163f8cb0f7067a7fc78ca859a77f849aea3214f38fb75b884e4a16be725c905");
	assert_str(a, n, "h.empty", "");
	assert_int_equal(get(a, n, "c.int")->int_value, -2);
	assert_true(get(a, n, "c.dbl")->double_value == 2.25);
	assert_str(a, n, "c.bad", "12x");
	assert_true(get(a, n, "c.bool")->double_value == 1.0);
	assert_str(a, n, "c.str", "-5");
	done(out);
	proc_free(&p);
}

static void test_unchanged_by_reference(void **st)
{
	(void)st;
	struct proc p;
	proc_start("resource", "{attributes: [{key: nothing.here, action: delete}]}", &p);
	struct tres r[] = {{.attrs = {"service.name=s:api"}, .spans = {{.name = "x"}}, .nspans = 1}};
	struct kn_chunk *in = make_chunk(r, 1), *outc = NULL;
	Req *out = through(&p, in, &outc);
	assert_ptr_equal(in, outc);
	done(out);
	proc_free(&p);
}

/* ---- attributes: span actions with include / exclude ---- */

static const struct tres two_services[] = {
	{.attrs = {"service.name=s:api", "env=s:prod"}, .scope = "http", .version = "1.2.0",
	 .spans = {{.name = "GET /users", .kind = 2, .attrs = {"http.method=s:GET", "user.id=s:u1", "db.statement=s:select"}},
		   {.name = "SELECT users", .kind = 3, .attrs = {"db.system=s:pg", "db.statement=s:select"}},
		   {.name = "internal", .kind = 1}},
	 .nspans = 3},
	{.attrs = {"service.name=s:worker"}, .scope = "jobs",
	 .spans = {{.name = "GET /users", .kind = 2, .attrs = {"http.method=s:GET"}}},
	 .nspans = 1},
};

static Span *span_at(Req *r, size_t res, size_t i)
{
	return r->resource_spans[res]->scope_spans[0]->spans[i];
}

static void test_attributes_filters(void **st)
{
	(void)st;
	struct {
		const char *filters;
		int want[4];   /* which of the 4 spans get the mark */
	} cases[] = {
		{"", {1, 1, 1, 1}},
		{"include: {match_type: strict, services: [api]}", {1, 1, 1, 0}},
		{"include: {match_type: regexp, span_names: [\"^GET \"]}", {1, 0, 0, 1}},
		{"include: {match_type: strict, span_kinds: [SPAN_KIND_CLIENT, SPAN_KIND_INTERNAL]}", {0, 1, 1, 0}},
		{"include: {match_type: strict, attributes: [{key: http.method, value: GET}]}", {1, 0, 0, 1}},
		{"include: {match_type: strict, attributes: [{key: db.statement}]}", {1, 1, 0, 0}},
		{"include: {match_type: regexp, attributes: [{key: user.id, value: \"^u[0-9]$\"}]}", {1, 0, 0, 0}},
		{"include: {match_type: strict, resources: [{key: env, value: prod}]}", {1, 1, 1, 0}},
		{"include: {match_type: strict, libraries: [{name: http, version: 1.2.0}]}", {1, 1, 1, 0}},
		{"include: {match_type: strict, libraries: [{name: jobs, version: \"\"}]}", {0, 0, 0, 1}},
		{"include: {match_type: strict, libraries: [{name: http, version: \"2\"}]}", {0, 0, 0, 0}},
		{"include: {match_type: regexp, libraries: [{name: \"^j\"}]}", {0, 0, 0, 1}},
		{"exclude: {match_type: strict, span_names: [internal]}", {1, 1, 0, 1}},
		{"include: {match_type: strict, services: [api]}, exclude: {match_type: regexp, span_names: [SELECT]}",
		 {1, 0, 1, 0}},
		{"include: {match_type: strict, services: [api], span_kinds: [SPAN_KIND_SERVER]}", {1, 0, 0, 0}},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char yaml[1024];
		snprintf(yaml, sizeof yaml, "{actions: [{key: mark, value: 1, action: insert}]%s%s}",
			 cases[i].filters[0] ? ", " : "", cases[i].filters);
		struct proc p;
		proc_start("attributes", yaml, &p);
		Req *out = through(&p, make_chunk(two_services, 2), NULL);
		Span *sp[4] = {span_at(out, 0, 0), span_at(out, 0, 1), span_at(out, 0, 2), span_at(out, 1, 0)};
		for (int k = 0; k < 4; k++) {
			int has = get(sp[k]->attributes, sp[k]->n_attributes, "mark") != NULL;
			if (has != cases[i].want[k])
				fail_msg("case %zu (%s): span %d mark %d, want %d", i, cases[i].filters, k, has,
					 cases[i].want[k]);
		}
		/* resources never change */
		assert_int_equal(out->resource_spans[0]->resource->n_attributes, 2);
		done(out);
		proc_free(&p);
	}
}

static void test_attributes_actions(void **st)
{
	(void)st;
	struct proc p;
	proc_start("attributes",
		"{actions: ["
		" {key: db.statement, action: delete},"
		" {key: redacted, value: true, action: upsert},"
		" {key: method.copy, from_attribute: http.method, action: upsert},"
		" {key: user.id, action: hash},"
		" {key: http.method, value: POST, action: update},"
		" {key: account_id, value: 2245, action: insert}"
		"]}",
		&p);
	Req *out = through(&p, make_chunk(two_services, 2), NULL);
	Span *s0 = span_at(out, 0, 0);
	KV **a = s0->attributes;
	size_t n = s0->n_attributes;
	assert_null(get(a, n, "db.statement"));
	assert_true(get(a, n, "redacted")->bool_value);
	assert_str(a, n, "method.copy", "GET");
	assert_str(a, n, "http.method", "POST");
	assert_int_equal(get(a, n, "account_id")->int_value, 2245);
	assert_int_equal(strlen(get(a, n, "user.id")->string_value), 64);
	assert_string_equal(a[0]->key, "http.method");   /* updated in place */
	Span *s2 = span_at(out, 0, 2);
	assert_int_equal(s2->n_attributes, 2);   /* redacted, account_id */
	assert_null(get(s2->attributes, s2->n_attributes, "method.copy"));
	done(out);
	proc_free(&p);
}

/* ---- resourcedetection ---- */

static void test_rd_env_parse(void **st)
{
	(void)st;
	char **k, **v;
	struct kn_err err = {{0}};
	int n = kn_rd_parse_env(" service.name = api ,team=a%2Cb%20c, x=%zz,,", &k, &v, &err);
	assert_int_equal(n, 3);
	assert_string_equal(k[0], "service.name");
	assert_string_equal(v[0], "api");
	assert_string_equal(k[1], "team");
	assert_string_equal(v[1], "a,b c");
	assert_string_equal(v[2], "%zz");   /* not an escape: kept */
	for (int i = 0; i < n; i++) {
		free(k[i]);
		free(v[i]);
	}
	free(k);
	free(v);
	assert_int_equal(kn_rd_parse_env("a=1,broken", &k, &v, &err), KN_ERR);
	assert_non_null(strstr(err.msg, "entry \"broken\" is not key=value"));
	for (int i = 0; k && k[i]; i++) {
		free(k[i]);
		free(v[i]);
	}
	free(k);
	free(v);
	assert_int_equal(kn_rd_parse_env("=x", &k, &v, &err), KN_ERR);
	assert_non_null(strstr(err.msg, "empty key"));
	free(k);
	free(v);
	assert_string_equal(kn_rd_host_arch("x86_64"), "amd64");
	assert_string_equal(kn_rd_host_arch("aarch64"), "arm64");
	assert_string_equal(kn_rd_host_arch("armv7l"), "arm32");
	assert_string_equal(kn_rd_host_arch("i686"), "x86");
	assert_string_equal(kn_rd_host_arch("riscv64"), "riscv64");
}

static void rd_run(const char *yaml, Req **out)
{
	struct proc p;
	proc_start("resourcedetection", yaml, &p);
	struct kn_err err = {{0}};
	if (p.comp->start(p.inst, &err) != KN_OK)
		fail_msg("start: %s", err.msg);
	struct tres r[] = {{.attrs = {"service.name=s:api", "team=s:own"}, .spans = {{.name = "x"}}, .nspans = 1}};
	*out = through(&p, make_chunk(r, 1), NULL);
	proc_free(&p);
}

static void test_rd_merge(void **st)
{
	(void)st;
	setenv("OTEL_RESOURCE_ATTRIBUTES", "team=platform,deployment.environment=prod%2Deu", 1);
	Req *out;
	rd_run("{detectors: [env, system], system: {hostname_sources: [os], "
	       "resource_attributes: {host.arch: {enabled: true}}}}", &out);
	KV **a = out->resource_spans[0]->resource->attributes;
	size_t n = out->resource_spans[0]->resource->n_attributes;
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	assert_str(a, n, "service.name", "api");
	assert_str(a, n, "team", "platform");           /* override: true */
	assert_str(a, n, "deployment.environment", "prod-eu");
	assert_str(a, n, "host.name", host);
	assert_str(a, n, "os.type", "linux");
	assert_non_null(get(a, n, "host.arch"));
	assert_int_equal(n, 6);
	done(out);
	rd_run("{detectors: [env], override: false}", &out);
	a = out->resource_spans[0]->resource->attributes;
	n = out->resource_spans[0]->resource->n_attributes;
	assert_str(a, n, "team", "own");                /* kept */
	assert_str(a, n, "deployment.environment", "prod-eu");
	assert_int_equal(n, 3);
	done(out);
	setenv("OTEL_RESOURCE_ATTRIBUTES", "bad", 1);
	struct proc p;
	proc_start("resourcedetection", "{}", &p);
	struct kn_err err = {{0}};
	assert_int_equal(p.comp->start(p.inst, &err), KN_ERR);
	assert_non_null(strstr(err.msg, "processors.resourcedetection: detector env: OTEL_RESOURCE_ATTRIBUTES: entry \"bad\""));
	proc_free(&p);
	unsetenv("OTEL_RESOURCE_ATTRIBUTES");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_resource_actions),
		cmocka_unit_test(test_hash_types_and_convert),
		cmocka_unit_test(test_unchanged_by_reference),
		cmocka_unit_test(test_attributes_filters),
		cmocka_unit_test(test_attributes_actions),
		cmocka_unit_test(test_rd_env_parse),
		cmocka_unit_test(test_rd_merge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
