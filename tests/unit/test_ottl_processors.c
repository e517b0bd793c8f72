/* SPDX-License-Identifier: Apache-2.0
 * The `filter` and `transform` processors and the tail sampler's
 * `ottl_condition` policy, on real encoded requests (built and decoded with
 * protobuf-c): which spans, events, scopes and resources are dropped and
 * counted per reason; statements in both config shapes, inferred contexts,
 * guards, walks in OTel's order; error_mode propagate / ignore; chunks
 * nothing changes pass by reference; config errors naming the path; and the
 * OTel Collector tail-sampling README's full example config (every policy
 * type, ottl_condition included) deciding as OTel documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_batch.h"
#include "collector/core/kn_component.h"
#include "collector/core/kn_metrics.h"
#include "collector/wire/kn_wire.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "processors/tail_sampling/kn_tail_policy.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event Event;
typedef Opentelemetry__Proto__Resource__V1__Resource Res;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;

/* ---- requests: two resources ("api", "db"), one scope each, spans from a table ---- */

struct tspan {
	int res;                 /* 0 api, 1 db */
	const char *name;
	const char *route;       /* http.route, NULL: none */
	uint64_t dur_ns;
	const char *events[3];   /* event names */
	int kind;
};

static KV *kv_str(const char *k, const char *v)
{
	KV *x = calloc(1, sizeof *x);
	AV *a = calloc(1, sizeof *a);
	opentelemetry__proto__common__v1__key_value__init(x);
	opentelemetry__proto__common__v1__any_value__init(a);
	a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	a->string_value = strdup(v);
	x->key = strdup(k);
	x->value = a;
	return x;
}

static int bare;   /* build without Resource and InstrumentationScope messages */

static uint8_t *build(const struct tspan *sp, size_t n, size_t *len)
{
	static const char *svc[2] = {"api", "db"};
	Req *req = calloc(1, sizeof *req);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
	req->resource_spans = calloc(2, sizeof *req->resource_spans);
	for (int r = 0; r < 2; r++) {
		RS *rs = calloc(1, sizeof *rs);
		opentelemetry__proto__trace__v1__resource_spans__init(rs);
		Res *res = calloc(1, sizeof *res);
		opentelemetry__proto__resource__v1__resource__init(res);
		res->n_attributes = 1;
		res->attributes = calloc(1, sizeof *res->attributes);
		res->attributes[0] = kv_str("service.name", svc[r]);
		rs->resource = res;
		if (bare) {
			opentelemetry__proto__resource__v1__resource__free_unpacked(res, NULL);
			rs->resource = NULL;
		}
		SS *ss = calloc(1, sizeof *ss);
		opentelemetry__proto__trace__v1__scope_spans__init(ss);
		Scope *sc = calloc(1, sizeof *sc);
		opentelemetry__proto__common__v1__instrumentation_scope__init(sc);
		sc->name = strdup(r ? "db-lib" : "http-lib");
		ss->scope = sc;
		if (bare) {
			opentelemetry__proto__common__v1__instrumentation_scope__free_unpacked(sc, NULL);
			ss->scope = NULL;
		}
		ss->spans = calloc(n + 1, sizeof *ss->spans);
		for (size_t i = 0; i < n; i++) {
			if (sp[i].res != r)
				continue;
			Span *s = calloc(1, sizeof *s);
			opentelemetry__proto__trace__v1__span__init(s);
			s->trace_id.data = calloc(1, 16);
			s->trace_id.len = 16;
			s->trace_id.data[15] = (uint8_t)(i + 1);
			s->span_id.data = calloc(1, 8);
			s->span_id.len = 8;
			s->span_id.data[7] = (uint8_t)(i + 1);
			s->name = strdup(sp[i].name);
			s->kind = sp[i].kind ? sp[i].kind : 2;
			s->start_time_unix_nano = 1700000000000000000ull;
			s->end_time_unix_nano = s->start_time_unix_nano + sp[i].dur_ns;
			if (sp[i].route) {
				s->n_attributes = 1;
				s->attributes = calloc(1, sizeof *s->attributes);
				s->attributes[0] = kv_str("http.route", sp[i].route);
			}
			for (int e = 0; e < 3 && sp[i].events[e]; e++) {
				s->events = realloc(s->events, (size_t)(e + 1) * sizeof *s->events);
				Event *ev = calloc(1, sizeof *ev);
				opentelemetry__proto__trace__v1__span__event__init(ev);
				ev->name = strdup(sp[i].events[e]);
				s->events[e] = ev;
				s->n_events = (size_t)e + 1;
			}
			ss->spans[ss->n_spans++] = s;
		}
		rs->n_scope_spans = 1;
		rs->scope_spans = calloc(1, sizeof *rs->scope_spans);
		rs->scope_spans[0] = ss;
		req->resource_spans[req->n_resource_spans++] = rs;
	}
	*len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(req);
	uint8_t *buf = malloc(*len);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(req, buf);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
	return buf;
}

static struct kn_chunk *chunk_of(const uint8_t *buf, size_t len)
{
	struct kn_wire_index ix;
	struct kn_err err = {{0}};
	struct kn_chunk *out[1] = {NULL};
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
	assert_int_equal(kn_wire_split(&ix, buf, 1, out, &err), KN_OK);
	kn_wire_index_free(&ix);
	assert_non_null(out[0]);
	return out[0];
}

/* ---- a processor instance from a YAML flow map ---- */

struct proc {
	const struct kn_component *comp;
	void *cfg, *inst, *state;
	struct kn_metrics *metrics;
	struct kn_batch *out;     /* what it emitted */
};

static int capture(void *ctx, struct kn_batch *b)
{
	struct proc *p = ctx;
	assert_null(p->out);
	p->out = b;
	return KN_OK;
}

static int proc_open(struct proc *p, const char *type, const char *yaml, struct kn_err *err)
{
	memset(p, 0, sizeof *p);
	p->comp = kn_component_find(KN_PROCESSOR, type);
	assert_non_null(p->comp);
	p->cfg = calloc(1, p->comp->config_size);
	struct kn_cnode *root = NULL;
	size_t cap = strlen(yaml) + 64;
	char *text = malloc(cap);
	snprintf(text, cap, "processors:\n  %s: %s\n", type, yaml);
	int rc = kn_config_parse(text, strlen(text), "<test>", &root, err);
	free(text);
	const struct kn_cnode *n = kn_cnode_get(kn_cnode_get(root, "processors"), type);
	char cpath[64];
	snprintf(cpath, sizeof cpath, "processors.%s", type);
	if (rc == KN_OK)
		rc = kn_cfg_apply_at(p->comp->config_fields, n, cpath, p->cfg, err);
	if (rc == KN_OK && p->comp->validate)
		rc = p->comp->validate(p->cfg, cpath, err);
	kn_cnode_free(root);
	if (rc != KN_OK)
		return rc;
	p->metrics = kn_metrics_create();
	struct kn_component_ctx ctx = {.id = type, .metrics = p->metrics, .nshards = 1};
	if (p->comp->create(&ctx, p->cfg, &p->inst, err) != KN_OK)
		return KN_ERR;
	return p->comp->shard_create(p->inst, 0, &p->state, err);
}

static void proc_close(struct proc *p)
{
	if (p->out)
		kn_batch_free(p->out);
	if (p->state)
		p->comp->shard_destroy(p->state);
	if (p->inst)
		p->comp->destroy(p->inst);
	kn_cfg_free(p->comp->config_fields, p->cfg);
	free(p->cfg);
	kn_metrics_destroy(p->metrics);
}

static void open_ok(struct proc *p, const char *type, const char *yaml)
{
	struct kn_err err = {{0}};
	if (proc_open(p, type, yaml, &err) != KN_OK)
		fail_msg("%s %s: %s", type, yaml, err.msg);
}

static void open_bad(const char *type, const char *yaml, const char *want)
{
	struct proc p;
	struct kn_err err = {{0}};
	if (proc_open(&p, type, yaml, &err) == KN_OK)
		fail_msg("%s %s: accepted, expected \"%s\"", type, yaml, want);
	if (!strstr(err.msg, want))
		fail_msg("%s %s: error \"%s\" lacks \"%s\"", type, yaml, err.msg, want);
	proc_close(&p);
}

/* Processes one chunk of the spans; returns what came out (NULL: dropped). */
static Req *run(struct proc *p, const struct tspan *sp, size_t n, struct kn_chunk **in_out, int *same)
{
	size_t len;
	uint8_t *buf = build(sp, n, &len);
	struct kn_chunk *c = chunk_of(buf, len);
	free(buf);
	struct kn_batch *b = kn_batch_new(1);
	kn_chunk_ref(c);
	assert_int_equal(kn_batch_add(&b, c), KN_OK);
	struct kn_emit next = {.fn = capture, .ctx = p};
	if (p->out) {
		kn_batch_free(p->out);
		p->out = NULL;
	}
	int rc = p->comp->process(p->state, b, &next);
	Req *req = NULL;
	if (same)
		*same = 0;
	if (rc == KN_OK) {
		assert_non_null(p->out);
		assert_int_equal(p->out->n, 1);
		struct kn_chunk *o = p->out->chunks[0];
		if (same)
			*same = o == c;
		req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, o->len, o->data);
		assert_non_null(req);
		uint32_t total = 0;
		for (size_t r = 0; r < req->n_resource_spans; r++)
			for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++)
				total += (uint32_t)req->resource_spans[r]->scope_spans[s]->n_spans;
		assert_int_equal(total, o->nspans);
		assert_int_equal(p->out->nspans, o->nspans);
	} else {
		assert_int_equal(rc, KN_DROP);
		assert_null(p->out);
	}
	if (in_out)
		*in_out = c;
	else
		kn_chunk_unref(c);
	return req;
}

static void names(Req *req, char *out, size_t cap)
{
	size_t w = 0;
	out[0] = '\0';
	for (size_t r = 0; req && r < req->n_resource_spans; r++)
		for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++) {
			SS *ss = req->resource_spans[r]->scope_spans[s];
			for (size_t k = 0; k < ss->n_spans; k++) {
				Span *sp = ss->spans[k];
				w += (size_t)snprintf(out + w, cap - w, "%s%s", w ? "," : "", sp->name);
				for (size_t e = 0; e < sp->n_events; e++)
					w += (size_t)snprintf(out + w, cap - w, "%s%s", e ? "+" : "[", sp->events[e]->name);
				if (sp->n_events)
					w += (size_t)snprintf(out + w, cap - w, "]");
			}
		}
}

static void free_req(Req *req)
{
	if (req)
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
}

static void expect_metric(struct proc *p, const char *line)
{
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(kn_metrics_render(p->metrics, &text, &len), KN_OK);
	if (!strstr(text, line))
		fail_msg("metrics lack \"%s\":\n%s", line, text);
	free(text);
}

static const struct tspan W[] = {
	{0, "GET /users", "/users/:id", 5000000, {"exception", "log", NULL}, 2},
	{0, "GET /healthz", "/healthz", 5000000, {NULL}, 2},
	{0, "fast", NULL, 200000, {"log", NULL}, 1},
	{1, "SELECT", NULL, 3000000, {"grpc.call", NULL}, 3},
	{1, "INSERT", NULL, 4000000, {NULL}, 3},
};
#define NW (sizeof W / sizeof W[0])

/* ---- filter ---- */

static void test_filter_spans_and_events(void **state)
{
	(void)state;
	struct proc p;
	open_ok(&p, "filter", "{error_mode: ignore, traces: {span: ['attributes[\"http.route\"] == \"/healthz\"', "
			      "'end_time_unix_nano - start_time_unix_nano < 1000000'], "
			      "spanevent: ['name == \"log\"', 'IsMatch(name, \".*grpc.*\")']}}");
	char got[256];
	Req *r = run(&p, W, NW, NULL, NULL);
	names(r, got, sizeof got);
	assert_string_equal(got, "GET /users[exception],SELECT,INSERT");
	free_req(r);
	expect_metric(&p, "kansatsu_processor_filter_spans_dropped_total{processor=\"filter\",reason=\"span\"} 2");
	expect_metric(&p, "kansatsu_processor_filter_span_events_dropped_total{processor=\"filter\"} 2");
	/* a chunk nothing matches passes by reference */
	static const struct tspan keep[] = {{0, "GET /users", "/users/:id", 5000000, {"exception", NULL}, 2}};
	int same = 0;
	r = run(&p, keep, 1, NULL, &same);
	assert_true(same);
	free_req(r);
	/* every span dropped: the batch is dropped */
	static const struct tspan none[] = {{0, "h", "/healthz", 5000000, {NULL}, 2}};
	assert_null(run(&p, none, 1, NULL, NULL));
	expect_metric(&p, "kansatsu_processor_filter_spans_dropped_total{processor=\"filter\",reason=\"span\"} 3");
	proc_close(&p);
}

static void test_filter_trace_conditions(void **state)
{
	(void)state;
	struct proc p;
	char got[256];
	/* the newer shape: contexts inferred; a resource condition drops its spans */
	open_ok(&p, "filter", "{trace_conditions: ['resource.attributes[\"service.name\"] == \"db\"', "
			      "'span.name == \"fast\"', 'spanevent.name == \"exception\"']}");
	Req *r = run(&p, W, NW, NULL, NULL);
	names(r, got, sizeof got);
	assert_string_equal(got, "GET /users[log],GET /healthz");
	free_req(r);
	expect_metric(&p, "kansatsu_processor_filter_spans_dropped_total{processor=\"filter\",reason=\"resource\"} 2");
	expect_metric(&p, "kansatsu_processor_filter_spans_dropped_total{processor=\"filter\",reason=\"span\"} 1");
	proc_close(&p);
	/* groups with a context; a scope condition */
	open_ok(&p, "filter", "{trace_conditions: [{context: scope, conditions: ['name == \"http-lib\"']}, "
			      "{context: span, conditions: ['IsRootSpan() and kind == SPAN_KIND_CLIENT'], error_mode: silent}]}");
	r = run(&p, W, NW, NULL, NULL);
	names(r, got, sizeof got);
	assert_string_equal(got, "");   /* http-lib scope dropped, db spans are clients and roots */
	free_req(r);
	proc_close(&p);
}

static void test_filter_error_modes(void **state)
{
	(void)state;
	struct proc p;
	char got[256];
	/* Int(route) + 1: nil + 1 fails on spans without a route */
	open_ok(&p, "filter", "{error_mode: ignore, traces: {span: ['attributes[\"http.route\"] + \"x\" == \"/healthzx\"']}}");
	Req *r = run(&p, W, NW, NULL, NULL);
	names(r, got, sizeof got);
	assert_string_equal(got, "GET /users[exception+log],GET /healthz,fast[log],SELECT[grpc.call],INSERT");
	free_req(r);
	expect_metric(&p, "kansatsu_processor_ottl_errors_total{processor=\"filter\"} 5");
	proc_close(&p);
	/* propagate (the default): the chunk is dropped and counted */
	open_ok(&p, "filter", "{traces: {span: ['attributes[\"http.route\"] + 1 == 2']}}");
	assert_null(run(&p, W, NW, NULL, NULL));
	expect_metric(&p, "kansatsu_processor_filter_spans_dropped_total{processor=\"filter\",reason=\"error\"} 5");
	expect_metric(&p, "kansatsu_processor_filter_spans_dropped_total{processor=\"filter\",reason=\"span\"} 0");
	proc_close(&p);
}

static void test_filter_config_errors(void **state)
{
	(void)state;
	open_bad("filter", "{}", "processors.filter: no conditions");
	open_bad("filter", "{error_mode: loud, traces: {span: ['true']}}", "processors.filter.error_mode: must be one of");
	open_bad("filter", "{traces: {spans: ['true']}}", "processors.filter.traces.spans: unknown key (supported: span, spanevent)");
	open_bad("filter", "{traces: {span: ['name = \"x\"']}}",
		 "processors.filter.traces.span[0]: condition \"name = \\\"x\\\"\": unexpected = after the condition at column 6");
	open_bad("filter", "{traces: {span: ['Foo(name)']}}", "processors.filter.traces.span[0]: condition \"Foo(name)\": unknown converter \"Foo\"");
	open_bad("filter", "{metrics: {metric: ['true']}}", "processors.filter.metrics: kansatsu is a trace collector");
	open_bad("filter", "{spans: {include: {match_type: strict}}}", "processors.filter.spans: the legacy include/exclude shape");
	open_bad("filter", "{trace_conditions: [{context: spam, conditions: ['true']}]}", "processors.filter.trace_conditions[0].context: unknown context \"spam\"");
	open_bad("filter", "{trace_conditions: [{conditions: ['true'], extra: 1}]}", "processors.filter.trace_conditions[0].extra: unknown key");
}

/* ---- transform ---- */

static Span *find_span(Req *req, const char *name)
{
	for (size_t r = 0; r < req->n_resource_spans; r++)
		for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++) {
			SS *ss = req->resource_spans[r]->scope_spans[s];
			for (size_t k = 0; k < ss->n_spans; k++)
				if (!strcmp(ss->spans[k]->name, name))
					return ss->spans[k];
		}
	return NULL;
}

static const char *attr_str(KV **a, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(a[i]->key, key))
			return a[i]->value->string_value;
	return NULL;
}

static void test_transform_flat_and_groups(void **state)
{
	(void)state;
	struct proc p;
	open_ok(&p, "transform",
		"{trace_statements: ["
		"'set(resource.attributes[\"env\"], \"prod\")', "
		"'set(span.attributes[\"svc\"], resource.attributes[\"service.name\"])', "
		"'replace_pattern(span.attributes[\"http.route\"], \":id\", \"{id}\")', "
		"'set(spanevent.attributes[\"of\"], span.name) where spanevent.name == \"exception\"', "
		"{context: span, conditions: ['kind == SPAN_KIND_CLIENT'], statements: ['set(name, Concat([\"db\", name], \".\"))']}, "
		"{context: scope, statements: ['set(version, \"2\")']}]}");
	Req *r = run(&p, W, NW, NULL, NULL);
	RS *api = r->resource_spans[0], *db = r->resource_spans[1];
	assert_string_equal(attr_str(api->resource->attributes, api->resource->n_attributes, "env"), "prod");
	Span *u = find_span(r, "GET /users");
	assert_non_null(u);
	assert_string_equal(attr_str(u->attributes, u->n_attributes, "http.route"), "/users/{id}");
	assert_string_equal(attr_str(u->attributes, u->n_attributes, "svc"), "api");
	assert_string_equal(attr_str(u->events[0]->attributes, u->events[0]->n_attributes, "of"), "GET /users");
	assert_int_equal(u->events[1]->n_attributes, 0);
	assert_non_null(find_span(r, "db.SELECT"));
	assert_non_null(find_span(r, "db.INSERT"));
	assert_string_equal(attr_str(find_span(r, "db.INSERT")->attributes, 2, "svc"), "db");
	assert_string_equal(api->scope_spans[0]->scope->version, "2");
	assert_string_equal(db->scope_spans[0]->scope->version, "2");
	free_req(r);
	proc_close(&p);

	/* nothing applies: the chunk passes by reference */
	open_ok(&p, "transform", "{trace_statements: ['set(span.name, \"x\") where span.name == \"nope\"']}");
	int same = 0;
	r = run(&p, W, NW, NULL, &same);
	assert_true(same);
	free_req(r);
	proc_close(&p);
}

static void test_transform_order_of_groups(void **state)
{
	(void)state;
	struct proc p;
	/* a span group, then a resource group: OTel runs the span group over
	 * every span first, so the span sees the resource before the change */
	open_ok(&p, "transform",
		"{trace_statements: ['set(span.attributes[\"seen\"], resource.attributes[\"service.name\"])', "
		"'set(resource.attributes[\"service.name\"], \"renamed\")', "
		"'set(span.attributes[\"after\"], resource.attributes[\"service.name\"])']}");
	Req *r = run(&p, W, NW, NULL, NULL);
	Span *u = find_span(r, "GET /users");
	assert_string_equal(attr_str(u->attributes, u->n_attributes, "seen"), "api");
	assert_string_equal(attr_str(u->attributes, u->n_attributes, "after"), "renamed");
	free_req(r);
	proc_close(&p);
}

static void test_transform_creates_resource_and_scope(void **state)
{
	(void)state;
	struct proc p;
	open_ok(&p, "transform", "{trace_statements: ['set(resource.attributes[\"env\"], \"prod\")', "
				 "'set(scope.name, \"made\")', 'set(scope.attributes[\"n\"], \"1\")', "
				 "'set(span.attributes[\"env\"], resource.attributes[\"env\"])']}");
	bare = 1;
	Req *r = run(&p, W, NW, NULL, NULL);
	bare = 0;
	for (size_t i = 0; i < r->n_resource_spans; i++) {
		RS *rs = r->resource_spans[i];
		assert_non_null(rs->resource);
		assert_string_equal(attr_str(rs->resource->attributes, rs->resource->n_attributes, "env"), "prod");
		Scope *sc = rs->scope_spans[0]->scope;
		assert_non_null(sc);
		assert_string_equal(sc->name, "made");
		assert_string_equal(attr_str(sc->attributes, sc->n_attributes, "n"), "1");
		Span *s0 = rs->scope_spans[0]->spans[0];
		assert_string_equal(attr_str(s0->attributes, s0->n_attributes, "env"), "prod");
	}
	free_req(r);
	proc_close(&p);
}

static void test_transform_error_modes(void **state)
{
	(void)state;
	struct proc p;
	/* ignore (the default): the failing statement is skipped, the next runs */
	open_ok(&p, "transform", "{trace_statements: ['set(span.attributes[\"n\"], span.attributes[\"http.route\"] + 1)', "
				 "'set(span.attributes[\"ok\"], \"yes\")']}");
	Req *r = run(&p, W, NW, NULL, NULL);
	Span *u = find_span(r, "SELECT");
	assert_string_equal(attr_str(u->attributes, u->n_attributes, "ok"), "yes");
	free_req(r);
	expect_metric(&p, "kansatsu_processor_ottl_errors_total{processor=\"transform\"} 5");
	proc_close(&p);
	/* propagate on one group: the chunk is dropped and counted */
	open_ok(&p, "transform", "{trace_statements: [{error_mode: propagate, statements: ['set(span.attributes[\"n\"], Int(span.name) + 1)']}]}");
	assert_null(run(&p, W, NW, NULL, NULL));
	expect_metric(&p, "kansatsu_processor_transform_spans_dropped_total{processor=\"transform\",reason=\"error\"} 5");
	proc_close(&p);
}

static void test_transform_config_errors(void **state)
{
	(void)state;
	open_bad("transform", "{}", "processors.transform.trace_statements: missing");
	open_bad("transform", "{trace_statements: ['set(span.nme, 1)']}",
		 "processors.transform.trace_statements[0]: statement \"set(span.nme, 1)\": unknown path \"nme\" in the span context at column 5 (\"span.nme\")");
	open_bad("transform", "{trace_statements: [{context: span, statements: ['set(resource.attributes[\"a\"], 1)']}]}",
		 "processors.transform.trace_statements[0].statements[0]: statement \"set(resource.attributes[\\\"a\\\"], 1)\": a span statement cannot write resource paths");
	open_bad("transform", "{trace_statements: [{context: span, statements: ['set(name, 1)'], conditions: ['name']}]}",
		 "processors.transform.trace_statements[0].conditions[0]: condition \"name\": a path is not a boolean");
	open_bad("transform", "{trace_statements: [{context: span}]}", "processors.transform.trace_statements[0].statements: missing");
	open_bad("transform", "{log_statements: ['set(log.body, 1)']}", "processors.transform.log_statements: kansatsu is a trace collector");
	open_bad("transform", "{trace_statements: [{statements: ['set(name, 1)'], shared_cache: true}]}",
		 "processors.transform.trace_statements[0].shared_cache: not supported");
}

/* ---- tail sampling: ottl_condition ---- */

struct engine {
	struct kn_tail_policies_cfg *cfg;
	struct kn_tail_engine *e;
	struct kn_tail_engine_shard *s;
};

static void engine_open(struct engine *en, const char *policies)
{
	struct kn_cnode *root = NULL;
	struct kn_err err = {{0}};
	char *yaml = malloc(strlen(policies) + 64);
	sprintf(yaml, "processors:\n  tail_sampling:\n    policies: %s\n", policies);
	if (kn_config_parse(yaml, strlen(yaml), "<test>", &root, &err) != KN_OK)
		fail_msg("%s", err.msg);
	free(yaml);
	const struct kn_cnode *p = kn_cnode_get(kn_cnode_get(kn_cnode_get(root, "processors"), "tail_sampling"), "policies");
	en->cfg = NULL;
	if (kn_tail_policies_parse(p, &en->cfg, &err) != KN_OK)
		fail_msg("%s", err.msg);
	kn_cnode_free(root);
	en->e = kn_tail_engine_create(en->cfg, 0, 1, NULL, "tail_sampling", &err);
	assert_non_null(en->e);
	en->s = kn_tail_engine_shard_create(en->e, 0, &err);
	assert_non_null(en->s);
}

static void engine_close(struct engine *en)
{
	kn_tail_engine_shard_destroy(en->s);
	kn_tail_engine_destroy(en->e);
	kn_tail_policies_free(&en->cfg);
}

static int decide(struct engine *en, const struct tspan *sp, size_t n, const char **policy)
{
	size_t len;
	uint8_t *buf = build(sp, n, &len);
	struct kn_tail_trace t = {.nspans = (uint32_t)n, .data = buf, .len = len, .bytes = len,
				  .min_start_ns = 1700000000000000000ull, .max_end_ns = 1700000000005000000ull};
	struct kn_tail_verdict v;
	kn_tail_decide(en->s, &t, 1, &v);
	free(buf);
	if (policy)
		*policy = v.policy;
	return v.sampled;
}

static void test_ottl_condition_policy(void **state)
{
	(void)state;
	struct engine en;
	static const struct tspan plain[] = {{0, "GET /a", "/a", 5000000, {NULL}, 2}, {1, "SELECT", NULL, 1000, {"log", NULL}, 3}};
	static const struct tspan hit_span[] = {{0, "GET /a", "/checkout", 5000000, {NULL}, 2}};
	static const struct tspan hit_event[] = {{1, "SELECT", NULL, 1000, {"log", "exception", NULL}, 3}};
	engine_open(&en, "[{name: o, type: ottl_condition, ottl_condition: {span: ['attributes[\"http.route\"] == \"/checkout\"'], "
			 "spanevent: ['name == \"exception\" and resource.attributes[\"service.name\"] == \"db\"']}}]");
	const char *pol = NULL;
	assert_int_equal(decide(&en, plain, 2, NULL), 0);
	assert_int_equal(decide(&en, hit_span, 1, &pol), 1);
	assert_string_equal(pol, "o");
	assert_int_equal(decide(&en, hit_event, 1, NULL), 1);
	engine_close(&en);
	/* inside and / composite like every other policy */
	engine_open(&en, "[{name: a, type: and, and: {and_sub_policy: ["
			 "{name: x, type: ottl_condition, ottl_condition: {span: ['kind == SPAN_KIND_SERVER']}}, "
			 "{name: y, type: ottl_condition, ottl_condition: {span: ['resource.attributes[\"service.name\"] == \"api\"']}}]}}]");
	assert_int_equal(decide(&en, plain, 2, NULL), 1);
	assert_int_equal(decide(&en, hit_event, 1, NULL), 0);
	engine_close(&en);
	engine_open(&en, "[{name: c, type: composite, composite: {max_total_spans_per_second: 1000, policy_order: [o], "
			 "composite_sub_policy: [{name: o, type: ottl_condition, ottl_condition: {spanevent: ['name == \"exception\"']}}], "
			 "rate_allocation: [{policy: o, percent: 100}]}}]");
	assert_int_equal(decide(&en, hit_event, 1, NULL), 1);
	assert_int_equal(decide(&en, hit_span, 1, NULL), 0);
	engine_close(&en);
	/* errors: propagate -> not sampled (Error); ignore -> the next condition decides */
	engine_open(&en, "[{name: e, type: ottl_condition, ottl_condition: {span: ['attributes[\"http.route\"] + 1 == 2', 'name == \"SELECT\"']}}]");
	assert_int_equal(decide(&en, hit_event, 1, NULL), 0);
	engine_close(&en);
	engine_open(&en, "[{name: e, type: ottl_condition, ottl_condition: {error_mode: silent, span: ['attributes[\"http.route\"] + 1 == 2', 'name == \"SELECT\"']}}]");
	assert_int_equal(decide(&en, hit_event, 1, NULL), 1);
	engine_close(&en);
	/* drop around ottl_condition */
	engine_open(&en, "[{name: all, type: always_sample}, {name: d, type: drop, drop: {drop_sub_policy: "
			 "[{name: h, type: ottl_condition, ottl_condition: {span: ['IsMatch(attributes[\"http.route\"], \"^/checkout\")']}}]}}]");
	assert_int_equal(decide(&en, plain, 2, NULL), 1);
	assert_int_equal(decide(&en, hit_span, 1, NULL), 0);
	engine_close(&en);
}

/* The OTel Collector tail_sampling README's full example (written for this
 * project from the documented example): every policy type. */
static const char *const readme_policies =
	"[{name: test-policy-1, type: always_sample},"
	" {name: test-policy-2, type: latency, latency: {threshold_ms: 5000, upper_threshold_ms: 10000}},"
	" {name: test-policy-3, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50, max_value: 100}},"
	" {name: test-policy-4, type: probabilistic, probabilistic: {sampling_percentage: 10}},"
	" {name: test-policy-5, type: status_code, status_code: {status_codes: [ERROR, UNSET]}},"
	" {name: test-policy-6, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}},"
	" {name: test-policy-7, type: string_attribute, string_attribute: {key: key2, values: [value1, val*], enabled_regex_matching: true, cache_max_size: 10}},"
	" {name: test-policy-8, type: rate_limiting, rate_limiting: {spans_per_second: 35}},"
	" {name: test-policy-9, type: bytes_limiting, bytes_limiting: {bytes_per_second: 1024000, burst_capacity: 2048000}},"
	" {name: test-policy-10, type: span_count, span_count: {min_spans: 2, max_spans: 20}},"
	" {name: test-policy-11, type: trace_state, trace_state: { key: key3, values: [value1, value2] }},"
	" {name: test-policy-12, type: boolean_attribute, boolean_attribute: {key: key4, value: true}},"
	" {name: test-policy-13, type: ottl_condition, ottl_condition: {error_mode: ignore,"
	"   span: [\"attributes[\\\"test_attr_key_1\\\"] == \\\"test_attr_val_1\\\"\", \"attributes[\\\"test_attr_key_2\\\"] != \\\"test_attr_val_1\\\"\"],"
	"   spanevent: [\"name != \\\"test_span_event_name\\\"\", \"attributes[\\\"test_event_attr_key_2\\\"] != \\\"test_event_attr_val_1\\\"\"]}},"
	" {name: and-policy-1, type: and, and: {and_sub_policy: ["
	"   {name: test-and-policy-1, type: numeric_attribute, numeric_attribute: { key: key1, min_value: 50, max_value: 100 }},"
	"   {name: test-and-policy-2, type: string_attribute, string_attribute: { key: key2, values: [ value1, value2 ] }}]}},"
	" {name: drop-policy-1, type: drop, drop: {drop_sub_policy: ["
	"   {name: test-drop-policy-1, type: string_attribute, string_attribute: {key: http.route, values: [\\/health, \\/metrics], enabled_regex_matching: true}}]}},"
	" {name: composite-policy-1, type: composite, composite: {max_total_spans_per_second: 1000,"
	"   policy_order: [test-composite-policy-1, test-composite-policy-2, test-composite-policy-3],"
	"   composite_sub_policy: [{name: test-composite-policy-1, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50}},"
	"     {name: test-composite-policy-2, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}},"
	"     {name: test-composite-policy-3, type: always_sample}],"
	"   rate_allocation: [{policy: test-composite-policy-1, percent: 50}, {policy: test-composite-policy-2, percent: 25}]}}]";

static void test_readme_example_decides(void **state)
{
	(void)state;
	struct engine en;
	engine_open(&en, readme_policies);
	assert_int_equal(kn_tail_policies_count(en.cfg), 16);
	const char *pol = NULL;
	/* always_sample keeps everything ... */
	static const struct tspan t1[] = {{0, "GET /users", "/users/:id", 5000000, {NULL}, 2}};
	assert_int_equal(decide(&en, t1, 1, &pol), 1);
	assert_string_equal(pol, "test-policy-1");
	/* ... unless the drop policy matches: drop wins over every sample */
	static const struct tspan t2[] = {{0, "GET /health", "/health", 5000000, {NULL}, 2}};
	assert_int_equal(decide(&en, t2, 1, &pol), 0);
	assert_string_equal(pol, "drop-policy-1");
	static const struct tspan t3[] = {{0, "GET /metrics", "/metrics/cpu", 5000000, {NULL}, 2}};
	assert_int_equal(decide(&en, t3, 1, NULL), 0);
	engine_close(&en);
	/* the ottl_condition policy of the example on its own: a span without
	 * test_attr_key_2 has it != "test_attr_val_1" (nil is not equal), so it samples */
	engine_open(&en, "[{name: test-policy-13, type: ottl_condition, ottl_condition: {error_mode: ignore,"
			 " span: ['attributes[\"test_attr_key_1\"] == \"test_attr_val_1\"', 'attributes[\"test_attr_key_2\"] != \"test_attr_val_1\"']}}]");
	assert_int_equal(decide(&en, t1, 1, NULL), 1);
	engine_close(&en);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_spans_and_events),
		cmocka_unit_test(test_filter_trace_conditions),
		cmocka_unit_test(test_filter_error_modes),
		cmocka_unit_test(test_filter_config_errors),
		cmocka_unit_test(test_transform_flat_and_groups),
		cmocka_unit_test(test_transform_order_of_groups),
		cmocka_unit_test(test_transform_creates_resource_and_scope),
		cmocka_unit_test(test_transform_error_modes),
		cmocka_unit_test(test_transform_config_errors),
		cmocka_unit_test(test_ottl_condition_policy),
		cmocka_unit_test(test_readme_example_decides),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
