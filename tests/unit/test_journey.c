/* SPDX-License-Identifier: Apache-2.0
 * The journey processor driven through its component functions, with two
 * shard states fed alternately as the runtime would (a chunk goes to the
 * shard kn_shard_of gives its trace), requests packed with protobuf-c, and
 * a fake clock (chunk accepted_ns, tick's now).
 *
 * Cases: a journey inside one trace (root grace timing; children get the
 * root's attributes; a child's own value wins with overwrite: false); a
 * producer and a consumer trace on different shards (the consumer arrives
 * first and waits; its spans leave with the producer's attributes and the
 * producer's journey.id); a chain of two links; a batch consumer with two
 * links joins the earliest head; a linked head that never arrives
 * (released at wait_window as its own head, counted); overwrite: true;
 * resource attributes with a prefix; late spans; flush; the memory bound.
 * Every emitted chunk unpacks with protobuf-c, every original span field is
 * kept (the original span bytes are a prefix of the emitted ones when
 * nothing is replaced), and trace_state bytes are unchanged on every span.
 * Config errors name their path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_budget.h"
#include "collector/core/kn_metrics.h"
#include "collector/wire/kn_wire.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "processors/journey/kn_journey.h"
#include "processors/journey/kn_journey_int.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define T0 (1000 * SEC)
#define NSHARDS 2

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Link Link;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;
typedef Opentelemetry__Proto__Resource__V1__Resource Res;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;

/* ---- ids ---- */

static void tid_raw(uint8_t id[16], uint32_t n)
{
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(((n + 1) * 2654435761u) >> (8 * (i % 4))) ^ (uint8_t)(i * 29 + 1);
}

/* The id of the k-th trace (from `from` on) that lands on shard `shard`. */
static void tid_on(uint8_t id[16], uint32_t shard, uint32_t *from)
{
	for (;; (*from)++) {
		tid_raw(id, *from);
		if (kn_shard_of(id, NSHARDS) == shard) {
			(*from)++;
			return;
		}
	}
}

static void sid(uint8_t id[8], uint32_t n)
{
	memset(id, 0, 8);
	memcpy(id, &n, 4);
	id[7] = 0x77;
}

static void hex(const uint8_t id[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

/* ---- building requests ---- */

struct tspan {
	const uint8_t *trace;
	uint32_t span, parent;        /* parent 0 = root */
	int kind;
	uint32_t res;                 /* consecutive equal res share a ResourceSpans */
	const char *service;          /* resource service.name */
	const char *res_attrs;        /* "k=v;k=v" resource attributes */
	const char *attrs;            /* "k=v;k=v" span attributes */
	const char *tracestate;
	uint64_t start;
	const uint8_t *link_trace[2];
	uint32_t link_span[2];
	uint32_t nlinks;
};

/* "k=v;k=v" -> KeyValue array (malloc'd, strings malloc'd). */
static KV **kvs(const char *spec, size_t *n)
{
	*n = 0;
	if (!spec || !*spec)
		return NULL;
	KV **a = calloc(16, sizeof *a);
	char *dup = strdup(spec), *save = NULL;
	for (char *tok = strtok_r(dup, ";", &save); tok && *n < 16; tok = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(tok, '=');
		assert_non_null(eq);
		*eq = 0;
		KV *kv = malloc(sizeof *kv);
		AV *av = malloc(sizeof *av);
		opentelemetry__proto__common__v1__key_value__init(kv);
		opentelemetry__proto__common__v1__any_value__init(av);
		av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		av->string_value = strdup(eq + 1);
		kv->key = strdup(tok);
		kv->value = av;
		a[(*n)++] = kv;
	}
	free(dup);
	return a;
}

static void kvs_free(KV **a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i]->key);
		free(a[i]->value->string_value);
		free(a[i]->value);
		free(a[i]);
	}
	free(a);
}

#define MAXS 64

static uint8_t *pack(const struct tspan *sp, size_t n, size_t *len)
{
	assert_true(n <= MAXS);
	Req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	RS rs[MAXS], *rsp[MAXS];
	SS ss[MAXS], *ssp[MAXS];
	Res res[MAXS];
	Scope scope[MAXS];
	Span spans[MAXS], *spp[MAXS];
	Link links[MAXS][2], *linkp[MAXS][2];
	Opentelemetry__Proto__Trace__V1__Status status[MAXS];
	uint8_t ids[MAXS][16];
	uint8_t lids[MAXS][2][8];
	size_t nrs = 0;
	for (size_t i = 0; i < n; i++) {
		const struct tspan *t = &sp[i];
		if (i == 0 || t->res != sp[i - 1].res) {
			opentelemetry__proto__resource__v1__resource__init(&res[nrs]);
			char spec[256];
			snprintf(spec, sizeof spec, "service.name=%s%s%s", t->service ? t->service : "svc",
				 t->res_attrs ? ";" : "", t->res_attrs ? t->res_attrs : "");
			res[nrs].attributes = kvs(spec, &res[nrs].n_attributes);
			opentelemetry__proto__trace__v1__resource_spans__init(&rs[nrs]);
			opentelemetry__proto__trace__v1__scope_spans__init(&ss[nrs]);
			opentelemetry__proto__common__v1__instrumentation_scope__init(&scope[nrs]);
			scope[nrs].name = "io.test.lib";
			ss[nrs].scope = &scope[nrs];
			ss[nrs].spans = &spp[i];
			ssp[nrs] = &ss[nrs];
			rs[nrs].resource = &res[nrs];
			rs[nrs].scope_spans = &ssp[nrs];
			rs[nrs].n_scope_spans = 1;
			rs[nrs].schema_url = "https://opentelemetry.io/schemas/1.24.0";
			rsp[nrs] = &rs[nrs];
			nrs++;
		}
		Span *s = &spans[i];
		opentelemetry__proto__trace__v1__span__init(s);
		s->trace_id = (ProtobufCBinaryData){16, (uint8_t *)t->trace};
		sid(ids[i], t->span);
		s->span_id = (ProtobufCBinaryData){8, ids[i]};
		if (t->parent) {
			sid(ids[i] + 8, t->parent);
			s->parent_span_id = (ProtobufCBinaryData){8, ids[i] + 8};
		}
		s->name = t->parent ? "child" : "root";
		s->kind = t->kind ? t->kind : (t->parent ? 1 : 2);
		s->start_time_unix_nano = t->start ? t->start : 1700000000 * SEC + t->span;
		s->end_time_unix_nano = s->start_time_unix_nano + 5 * MS;
		s->flags = 0x301;
		if (t->tracestate)
			s->trace_state = (char *)t->tracestate;
		s->attributes = kvs(t->attrs, &s->n_attributes);
		opentelemetry__proto__trace__v1__status__init(&status[i]);
		status[i].code = 1;
		s->status = &status[i];
		for (uint32_t k = 0; k < t->nlinks; k++) {
			opentelemetry__proto__trace__v1__span__link__init(&links[i][k]);
			links[i][k].trace_id = (ProtobufCBinaryData){16, (uint8_t *)t->link_trace[k]};
			sid(lids[i][k], t->link_span[k]);
			links[i][k].span_id = (ProtobufCBinaryData){8, lids[i][k]};
			links[i][k].trace_state = "link=ts";
			linkp[i][k] = &links[i][k];
		}
		s->links = t->nlinks ? linkp[i] : NULL;
		s->n_links = t->nlinks;
		spp[i] = s;
		ss[nrs - 1].n_spans++;
	}
	req.resource_spans = rsp;
	req.n_resource_spans = nrs;
	*len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	uint8_t *buf = malloc(*len);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
	for (size_t i = 0; i < nrs; i++)
		kvs_free(res[i].attributes, res[i].n_attributes);
	for (size_t i = 0; i < n; i++)
		kvs_free(spans[i].attributes, spans[i].n_attributes);
	return buf;
}

/* ---- what went in, per span: its original bytes ---- */

struct orig {
	uint8_t span_id[8];
	uint8_t *bytes;
	uint32_t len;
};

/* ---- the sink ---- */

struct sink {
	uint8_t *data[4096];
	uint32_t len[4096];
	uint32_t n;
	uint64_t spans;
};

static int collect(void *ctx, struct kn_batch *b)
{
	struct sink *s = ctx;
	for (uint32_t i = 0; i < b->n; i++) {
		struct kn_chunk *c = b->chunks[i];
		assert_true(c->nspans > 0);
		for (uint32_t k = 0; k < c->nspans; k++) {
			assert_memory_equal(c->spans[k].trace_id, c->spans[0].trace_id, 16);
			assert_true(c->spans[k].off + c->spans[k].len <= c->len);
		}
		s->spans += c->nspans;
		assert_true(s->n < 4096);
		s->data[s->n] = malloc(c->len);
		memcpy(s->data[s->n], c->data, c->len);
		s->len[s->n++] = c->len;
	}
	kn_batch_free(b);
	return KN_OK;
}

/* ---- fixture ---- */

struct fx {
	struct kn_metrics *m;
	struct kn_journey_cfg cfg;
	struct kn_cnode *root;
	void *inst, *state[NSHARDS];
	struct sink sink;
	struct kn_emit next;
	struct orig orig[256];
	uint32_t norig;
	uint64_t in;
};

static const struct kn_component *J = &kn_processor_journey;

static int fx_config(struct fx *f, const char *yaml, struct kn_err *err)
{
	char text[4096];
	memset(&f->cfg, 0, sizeof f->cfg);
	snprintf(text, sizeof text, "processors: {journey: %s}", yaml);
	if (kn_config_parse(text, strlen(text), "test", &f->root, err) != KN_OK)
		return KN_ERR;
	const struct kn_cnode *node = kn_cnode_get(kn_cnode_get(f->root, "processors"), "journey");
	if (kn_cfg_apply_at(J->config_fields, node, "processors.journey", &f->cfg, err) != KN_OK)
		return KN_ERR;
	return J->validate(&f->cfg, "processors.journey", err);
}

#define PROPAGATE "propagate: [{from: span, keys: [tenant.plan, room.type, client.name]}]"

static void fx_init(struct fx *f, const char *yaml)
{
	struct kn_err err = {{0}};
	memset(f, 0, sizeof *f);
	kn_budget_init(0);
	if (fx_config(f, yaml, &err) != KN_OK)
		fail_msg("config: %s", err.msg);
	f->m = kn_metrics_create();
	struct kn_component_ctx ctx = {.id = "journey", .metrics = f->m, .nshards = NSHARDS};
	if (J->create(&ctx, &f->cfg, &f->inst, &err) != KN_OK)
		fail_msg("create: %s", err.msg);
	assert_null(kn_journey_registry_shared());
	assert_int_equal(J->start(f->inst, &err), KN_OK);
	assert_non_null(kn_journey_registry_shared());
	for (uint32_t s = 0; s < NSHARDS; s++)
		if (J->shard_create(f->inst, s, &f->state[s], &err) != KN_OK)
			fail_msg("shard_create: %s", err.msg);
	f->next = (struct kn_emit){collect, &f->sink};
}

static void fx_fini(struct fx *f)
{
	for (uint32_t s = 0; s < NSHARDS; s++)
		J->shard_destroy(f->state[s]);
	if (J->shutdown)
		J->shutdown(f->inst, 0);
	J->destroy(f->inst);
	assert_null(kn_journey_registry_shared());
	kn_cfg_free(J->config_fields, &f->cfg);
	kn_cnode_free(f->root);
	kn_metrics_destroy(f->m);
	for (uint32_t i = 0; i < f->sink.n; i++)
		free(f->sink.data[i]);
	for (uint32_t i = 0; i < f->norig; i++)
		free(f->orig[i].bytes);
	assert_int_equal(kn_budget_used(), 0);
}

/* Packs the spans (all of one trace) into a chunk and hands it to the
 * shard that owns the trace; remembers every span's original bytes. */
static void feed(struct fx *f, const struct tspan *sp, size_t n, uint64_t now)
{
	size_t len;
	uint8_t *buf = pack(sp, n, &len);
	struct kn_wire_index ix;
	struct kn_err err;
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
	assert_int_equal(ix.nspans, n);
	for (uint32_t i = 0; i < ix.nspans; i++) {
		assert_true(f->norig < 256);
		struct orig *o = &f->orig[f->norig++];
		memcpy(o->span_id, ix.spans[i].span_id, 8);
		o->len = ix.spans[i].len;
		o->bytes = malloc(o->len);
		memcpy(o->bytes, buf + ix.spans[i].off, o->len);
	}
	struct kn_chunk *c = NULL;
	assert_int_equal(kn_wire_split(&ix, buf, 1, &c, &err), KN_OK);
	uint32_t shard = kn_shard_of(sp[0].trace, NSHARDS);
	c->shard = (uint16_t)shard;
	c->accepted_ns = now;
	assert_true(kn_budget_try_charge(c->len));
	c->charged = c->len;
	kn_wire_index_free(&ix);
	free(buf);
	struct kn_batch *b = kn_batch_new(1);
	assert_int_equal(kn_batch_add(&b, c), KN_OK);
	f->in += n;
	assert_int_equal(J->process(f->state[shard], b, &f->next), KN_RETAINED);
}

/* Ticks both shards (alternately, like two workers), returns the earliest deadline. */
static uint64_t tick(struct fx *f, uint64_t now)
{
	uint64_t d = 0;
	for (uint32_t s = 0; s < NSHARDS; s++) {
		uint64_t x = J->tick(f->state[s], now, &f->next);
		if (x && (!d || x < d))
			d = x;
	}
	return d;
}

static uint64_t metric_l(struct fx *f, const char *name, const char *extra)
{
	char *text;
	size_t len;
	assert_int_equal(kn_metrics_render(f->m, &text, &len), 0);
	char pat[200];
	snprintf(pat, sizeof pat, "\n%s{processor=\"journey\"%s} ", name, extra);
	char *p = strstr(text, pat);
	uint64_t v = p ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
	free(text);
	assert_true(v != UINT64_MAX);
	return v;
}

static uint64_t metric(struct fx *f, const char *name)
{
	return metric_l(f, name, "");
}

/* ---- reading what was emitted ---- */

struct got {
	char attr[24][2][64];         /* key, value (first occurrence) */
	uint32_t count[24];           /* occurrences of that key */
	uint32_t nattr;
	char tracestate[64];
	uint8_t trace[16];
	int found;
};

/* Unpacks every emitted chunk (each must unpack) and finds span `span` of
 * trace `trace`; checks that it kept every original field. */
static void got_span(struct fx *f, const uint8_t trace[16], uint32_t span, struct got *g)
{
	uint8_t want[8];
	sid(want, span);
	memset(g, 0, sizeof *g);
	for (uint32_t i = 0; i < f->sink.n; i++) {
		Req *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
			NULL, f->sink.len[i], f->sink.data[i]);
		assert_non_null(r);
		for (size_t a = 0; a < r->n_resource_spans; a++)
			for (size_t b = 0; b < r->resource_spans[a]->n_scope_spans; b++) {
				SS *ss = r->resource_spans[a]->scope_spans[b];
				assert_string_equal(ss->scope->name, "io.test.lib");
				assert_string_equal(r->resource_spans[a]->schema_url,
						    "https://opentelemetry.io/schemas/1.24.0");
				for (size_t k = 0; k < ss->n_spans; k++) {
					Span *s = ss->spans[k];
					if (s->trace_id.len != 16 || memcmp(s->trace_id.data, trace, 16) ||
					    s->span_id.len != 8 || memcmp(s->span_id.data, want, 8))
						continue;
					assert_false(g->found); /* emitted once */
					g->found = 1;
					memcpy(g->trace, s->trace_id.data, 16);
					snprintf(g->tracestate, sizeof g->tracestate, "%s", s->trace_state);
					assert_int_equal(s->flags, 0x301);
					assert_int_equal(s->status->code, 1);
					for (size_t x = 0; x < s->n_attributes; x++) {
						KV *kv = s->attributes[x];
						uint32_t j = 0;
						while (j < g->nattr && strcmp(g->attr[j][0], kv->key))
							j++;
						if (j == g->nattr) {
							assert_true(j < 24);
							snprintf(g->attr[j][0], 64, "%s", kv->key);
							snprintf(g->attr[j][1], 64, "%s", kv->value->string_value);
							g->nattr++;
						}
						g->count[j]++;
					}
					/* every original byte is still there when nothing was replaced;
					 * at least all other fields otherwise (links, times, names) */
					for (uint32_t o = 0; o < f->norig; o++) {
						if (memcmp(f->orig[o].span_id, want, 8))
							continue;
						Span *in = opentelemetry__proto__trace__v1__span__unpack(
							NULL, f->orig[o].len, f->orig[o].bytes);
						assert_non_null(in);
						assert_string_equal(in->name, s->name);
						assert_string_equal(in->trace_state, s->trace_state);
						assert_int_equal(in->kind, s->kind);
						assert_int_equal(in->start_time_unix_nano, s->start_time_unix_nano);
						assert_int_equal(in->end_time_unix_nano, s->end_time_unix_nano);
						assert_int_equal(in->parent_span_id.len, s->parent_span_id.len);
						assert_int_equal(in->n_links, s->n_links);
						for (size_t l = 0; l < in->n_links; l++) {
							assert_memory_equal(in->links[l]->trace_id.data,
									    s->links[l]->trace_id.data, 16);
							assert_string_equal(in->links[l]->trace_state,
									    s->links[l]->trace_state);
						}
						opentelemetry__proto__trace__v1__span__free_unpacked(in, NULL);
					}
				}
			}
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
	}
	assert_true(g->found);
}

static const char *got_attr(const struct got *g, const char *key, uint32_t *count)
{
	for (uint32_t j = 0; j < g->nattr; j++)
		if (strcmp(g->attr[j][0], key) == 0) {
			if (count)
				*count = g->count[j];
			return g->attr[j][1];
		}
	if (count)
		*count = 0;
	return NULL;
}

/* The emitted bytes of span `span` begin with its original bytes. */
static void assert_prefix_kept(struct fx *f, uint32_t span)
{
	uint8_t want[8];
	sid(want, span);
	struct kn_wire_index ix;
	struct kn_err err;
	kn_wire_index_init(&ix);
	int seen = 0;
	for (uint32_t i = 0; i < f->sink.n; i++) {
		assert_int_equal(kn_wire_index_request(&ix, f->sink.data[i], f->sink.len[i], &err), KN_OK);
		for (uint32_t k = 0; k < ix.nspans; k++) {
			if (memcmp(ix.spans[k].span_id, want, 8))
				continue;
			for (uint32_t o = 0; o < f->norig; o++)
				if (!memcmp(f->orig[o].span_id, want, 8)) {
					assert_true(ix.spans[k].len > f->orig[o].len);
					assert_memory_equal(f->sink.data[i] + ix.spans[k].off, f->orig[o].bytes,
							    f->orig[o].len);
					seen = 1;
				}
		}
	}
	kn_wire_index_free(&ix);
	assert_true(seen);
}

/* ---- cases ---- */

static void test_within_trace(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, "{" PROPAGATE ", wait_window: 2s, root_grace: 200ms}");
	uint32_t seq = 0;
	uint8_t t[16];
	char jid[33];
	tid_on(t, 0, &seq);
	hex(t, jid);
	const char *ts = "vendor=abc,ot=th:8";
	struct tspan sp[] = {
		{.trace = t, .span = 1, .attrs = "tenant.plan=gold;room.type=dm;client.name=ios",
		 .tracestate = ts},
		{.trace = t, .span = 2, .parent = 1, .tracestate = ts},
		{.trace = t, .span = 3, .parent = 2, .attrs = "tenant.plan=silver", .tracestate = ts},
	};
	feed(&f, sp, 3, T0);
	uint64_t d = tick(&f, T0 + 200 * MS - 1);
	assert_int_equal(f.sink.spans, 0);
	assert_int_equal(d, T0 + 200 * MS);
	tick(&f, T0 + 200 * MS);
	assert_int_equal(f.sink.spans, 3);
	struct got g;
	uint32_t cnt;
	for (uint32_t s = 1; s <= 3; s++) {
		got_span(&f, t, s, &g);
		assert_string_equal(got_attr(&g, "journey.id", &cnt), jid);
		assert_int_equal(cnt, 1);
		assert_string_equal(g.tracestate, ts);
		assert_string_equal(got_attr(&g, "room.type", &cnt), "dm");
		assert_int_equal(cnt, 1);
		assert_string_equal(got_attr(&g, "client.name", NULL), "ios");
		assert_prefix_kept(&f, s);
	}
	got_span(&f, t, 2, &g);
	assert_string_equal(got_attr(&g, "tenant.plan", &cnt), "gold");
	got_span(&f, t, 3, &g);
	assert_string_equal(got_attr(&g, "tenant.plan", &cnt), "silver"); /* overwrite: false */
	assert_int_equal(cnt, 1);
	assert_int_equal(metric(&f, "kansatsu_journey_started_total"), 1);
	assert_int_equal(metric_l(&f, "kansatsu_journey_closed_without_head_total", ",reason=\"head_not_seen\""), 0);
	assert_int_equal(metric(&f, "kansatsu_journey_traces_in_memory"), 0);
	fx_fini(&f);
}

/* Producer on one shard, consumer on the other; the consumer arrives first. */
static void test_cross_shard(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, "{" PROPAGATE ", wait_window: 2s, root_grace: 200ms}");
	uint32_t seq = 100;
	uint8_t p[16], c[16];
	char jid[33];
	tid_on(p, 0, &seq);
	tid_on(c, 1, &seq);
	assert_int_not_equal(kn_shard_of(p, NSHARDS), kn_shard_of(c, NSHARDS));
	hex(p, jid);
	const char *ts = "congo=t61rcWkgMzE";
	struct tspan cons[] = {
		{.trace = c, .span = 20, .kind = 5, .service = "notifier", .tracestate = ts,
		 .attrs = "messaging.system=kafka", .link_trace = {p}, .link_span = {11}, .nlinks = 1},
		{.trace = c, .span = 21, .parent = 20, .kind = 3, .service = "notifier", .tracestate = ts},
	};
	struct tspan prod[] = {
		{.trace = p, .span = 10, .service = "api", .tracestate = ts,
		 .attrs = "tenant.plan=gold;room.type=group;client.name=android"},
		{.trace = p, .span = 11, .parent = 10, .kind = 4, .service = "api", .tracestate = ts},
	};
	feed(&f, cons, 2, T0);
	tick(&f, T0 + 200 * MS);  /* consumer's grace passed: it waits for its head */
	assert_int_equal(f.sink.spans, 0);
	feed(&f, prod, 2, T0 + 300 * MS);
	/* the consumer's shard first: its head is buffered on the other shard */
	uint64_t d = J->tick(f.state[1], T0 + 500 * MS, &f.next);
	assert_int_equal(f.sink.spans, 0);
	assert_true(d > T0 + 500 * MS && d <= T0 + 600 * MS); /* polled again soon */
	J->tick(f.state[0], T0 + 500 * MS, &f.next); /* producer released and published */
	assert_int_equal(f.sink.spans, 2);
	J->tick(f.state[1], d, &f.next);
	assert_int_equal(f.sink.spans, 4);
	struct got g;
	uint32_t cnt;
	for (uint32_t s = 20; s <= 21; s++) {
		got_span(&f, c, s, &g);
		assert_string_equal(got_attr(&g, "journey.id", &cnt), jid);
		assert_int_equal(cnt, 1);
		assert_string_equal(got_attr(&g, "tenant.plan", NULL), "gold");
		assert_string_equal(got_attr(&g, "room.type", NULL), "group");
		assert_string_equal(got_attr(&g, "client.name", NULL), "android");
		assert_string_equal(g.tracestate, ts);
		assert_prefix_kept(&f, s);
	}
	got_span(&f, c, 20, &g);
	assert_string_equal(got_attr(&g, "messaging.system", NULL), "kafka");
	for (uint32_t s = 10; s <= 11; s++) {
		got_span(&f, p, s, &g);
		assert_string_equal(got_attr(&g, "journey.id", NULL), jid);
		assert_string_equal(g.tracestate, ts);
	}
	assert_int_equal(metric(&f, "kansatsu_journey_started_total"), 1);
	assert_int_equal(metric(&f, "kansatsu_journey_traces_joined_total"), 1);
	assert_int_equal(metric_l(&f, "kansatsu_journey_closed_without_head_total", ",reason=\"head_not_seen\""), 0);

	/* a third trace linking to the consumer joins the same journey (chain) */
	uint8_t c2[16];
	tid_on(c2, 0, &seq);
	struct tspan cons2[] = {
		{.trace = c2, .span = 30, .kind = 5, .link_trace = {c}, .link_span = {21}, .nlinks = 1},
	};
	feed(&f, cons2, 1, T0 + 700 * MS);
	tick(&f, T0 + 900 * MS);
	got_span(&f, c2, 30, &g);
	assert_string_equal(got_attr(&g, "journey.id", NULL), jid);
	assert_string_equal(got_attr(&g, "tenant.plan", NULL), "gold");

	/* a late span of the consumer: annotated from the registry at once */
	struct tspan late[] = {
		{.trace = c, .span = 22, .parent = 20, .kind = 1, .tracestate = ts},
	};
	uint64_t before = f.sink.spans;
	feed(&f, late, 1, T0 + 1000 * MS);
	assert_int_equal(f.sink.spans, before + 1);
	got_span(&f, c, 22, &g);
	assert_string_equal(got_attr(&g, "journey.id", NULL), jid);
	assert_string_equal(got_attr(&g, "client.name", NULL), "android");
	assert_string_equal(g.tracestate, ts);
	assert_int_equal(metric(&f, "kansatsu_journey_late_spans_total"), 1);
	assert_int_equal(f.sink.spans, f.in);
	fx_fini(&f);
}

/* A batch consumer linking to two producers joins the earliest head. */
static void test_batch_consumer(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, "{" PROPAGATE ", wait_window: 2s, root_grace: 100ms}");
	uint32_t seq = 300;
	uint8_t p1[16], p2[16], c[16];
	char jid1[33];
	tid_on(p1, 0, &seq);
	tid_on(p2, 1, &seq);
	tid_on(c, 1, &seq);
	hex(p1, jid1);
	uint64_t base = 1700000000 * SEC;
	struct tspan a[] = {{.trace = p1, .span = 1, .start = base, .attrs = "tenant.plan=early"}};
	struct tspan b[] = {{.trace = p2, .span = 2, .start = base + SEC, .attrs = "tenant.plan=late"}};
	/* links in the order p2, p1: the choice is by head start time, not order */
	struct tspan cons[] = {{.trace = c, .span = 3, .kind = 5, .start = base + 2 * SEC,
				.link_trace = {p2, p1}, .link_span = {2, 1}, .nlinks = 2}};
	feed(&f, b, 1, T0);
	feed(&f, a, 1, T0);
	tick(&f, T0 + 100 * MS);
	assert_int_equal(f.sink.spans, 2);
	feed(&f, cons, 1, T0 + 200 * MS);
	tick(&f, T0 + 300 * MS);
	assert_int_equal(f.sink.spans, 3);
	struct got g;
	got_span(&f, c, 3, &g);
	assert_string_equal(got_attr(&g, "journey.id", NULL), jid1);
	assert_string_equal(got_attr(&g, "tenant.plan", NULL), "early");
	assert_int_equal(metric(&f, "kansatsu_journey_started_total"), 2);
	assert_int_equal(metric(&f, "kansatsu_journey_traces_joined_total"), 1);
	fx_fini(&f);
}

/* The linked head never arrives: released at wait_window as its own head. */
static void test_head_never_arrives(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, "{" PROPAGATE ", wait_window: 2s, root_grace: 200ms}");
	uint32_t seq = 500;
	uint8_t ghost[16], c[16];
	char jid[33];
	tid_on(ghost, 0, &seq);
	tid_on(c, 1, &seq);
	hex(c, jid);
	struct tspan cons[] = {
		{.trace = c, .span = 40, .kind = 5, .attrs = "tenant.plan=own", .link_trace = {ghost},
		 .link_span = {1}, .nlinks = 1},
		{.trace = c, .span = 41, .parent = 40},
	};
	feed(&f, cons, 2, T0);
	for (uint64_t now = T0; now < T0 + 2 * SEC; now += 50 * MS) {
		uint64_t d = tick(&f, now);
		assert_true(d > now && d <= T0 + 2 * SEC);
	}
	assert_int_equal(f.sink.spans, 0);
	assert_int_equal(metric(&f, "kansatsu_journey_traces_in_memory"), 1);
	tick(&f, T0 + 2 * SEC);
	assert_int_equal(f.sink.spans, 2);
	struct got g;
	got_span(&f, c, 41, &g);
	assert_string_equal(got_attr(&g, "journey.id", NULL), jid);
	assert_string_equal(got_attr(&g, "tenant.plan", NULL), "own");
	assert_int_equal(metric_l(&f, "kansatsu_journey_closed_without_head_total", ",reason=\"head_not_seen\""), 1);
	assert_int_equal(metric(&f, "kansatsu_journey_started_total"), 1);
	assert_int_equal(metric(&f, "kansatsu_journey_traces_joined_total"), 0);
	fx_fini(&f);
}

static void test_overwrite_true(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, "{" PROPAGATE ", overwrite: true, journey_id_attribute: \"\"}");
	uint32_t seq = 700;
	uint8_t t[16];
	tid_on(t, 1, &seq);
	struct tspan sp[] = {
		{.trace = t, .span = 1, .attrs = "tenant.plan=gold;room.type=dm"},
		{.trace = t, .span = 2, .parent = 1, .attrs = "a=1;tenant.plan=silver;b=2;tenant.plan=x"},
	};
	feed(&f, sp, 2, T0);
	tick(&f, T0 + 200 * MS);
	assert_int_equal(f.sink.spans, 2);
	struct got g;
	uint32_t cnt;
	got_span(&f, t, 2, &g);
	assert_string_equal(got_attr(&g, "tenant.plan", &cnt), "gold");
	assert_int_equal(cnt, 1);
	assert_string_equal(got_attr(&g, "a", NULL), "1");
	assert_string_equal(got_attr(&g, "b", NULL), "2");
	assert_string_equal(got_attr(&g, "room.type", NULL), "dm");
	assert_null(got_attr(&g, "journey.id", NULL)); /* journey_id_attribute: "" */
	got_span(&f, t, 1, &g);
	assert_string_equal(got_attr(&g, "tenant.plan", &cnt), "gold");
	assert_int_equal(cnt, 1);
	fx_fini(&f);
}

/* Resource attributes of the head, renamed with a prefix, reach the
 * consumer whose own resource has other values. */
static void test_resource_prefix(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, "{propagate: [{from: resource, keys: [service.version, service.name], "
		    "prefix: \"journey.head.\"}, {keys: [tenant.plan]}], root_grace: 50ms}");
	uint32_t seq = 900;
	uint8_t p[16], c[16];
	tid_on(p, 1, &seq);
	tid_on(c, 0, &seq);
	struct tspan prod[] = {{.trace = p, .span = 1, .service = "api", .res_attrs = "service.version=2.3.1",
				.attrs = "tenant.plan=gold"}};
	struct tspan cons[] = {{.trace = c, .span = 2, .kind = 5, .service = "notifier",
				.res_attrs = "service.version=9.9.9", .link_trace = {p},
				.link_span = {1}, .nlinks = 1}};
	feed(&f, prod, 1, T0);
	tick(&f, T0 + 50 * MS);
	feed(&f, cons, 1, T0 + 60 * MS);
	tick(&f, T0 + 110 * MS);
	assert_int_equal(f.sink.spans, 2);
	struct got g;
	got_span(&f, c, 2, &g);
	assert_string_equal(got_attr(&g, "journey.head.service.version", NULL), "2.3.1");
	assert_string_equal(got_attr(&g, "journey.head.service.name", NULL), "api");
	assert_string_equal(got_attr(&g, "tenant.plan", NULL), "gold");
	assert_null(got_attr(&g, "service.version", NULL));
	got_span(&f, p, 1, &g);
	assert_string_equal(got_attr(&g, "journey.head.service.version", NULL), "2.3.1");
	/* the registry holds the head summary the sli processor reads */
	const struct kn_journey_registry *r = kn_journey_registry_shared();
	struct kn_journey_head h;
	assert_int_equal(kn_journey_registry_get(r, kn_shard_of(c, NSHARDS), c, T0 + SEC, &h), 1);
	assert_memory_equal(h.journey_id, p, 16);
	assert_int_equal(h.service_len, 3);
	assert_memory_equal(h.service, "api", 3);
	assert_int_equal(h.name_len, 4);
	assert_memory_equal(h.name, "root", 4);
	fx_fini(&f);
}

/* flush releases everything; a trace without root is its own head. */
static void test_flush(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, "{" PROPAGATE ", wait_window: 30s}");
	uint32_t seq = 1100;
	uint8_t a[16], b[16];
	tid_on(a, 0, &seq);
	tid_on(b, 1, &seq);
	struct tspan x[] = {{.trace = a, .span = 1, .parent = 99, .attrs = "tenant.plan=p"}};
	struct tspan y[] = {{.trace = b, .span = 2}};
	feed(&f, x, 1, T0);
	feed(&f, y, 1, T0);
	assert_int_equal(f.sink.spans, 0);
	for (uint32_t s = 0; s < NSHARDS; s++)
		J->flush(f.state[s], &f.next);
	assert_int_equal(f.sink.spans, 2);
	struct got g;
	char jid[33];
	hex(a, jid);
	got_span(&f, a, 1, &g);
	assert_string_equal(got_attr(&g, "journey.id", NULL), jid);
	assert_string_equal(got_attr(&g, "tenant.plan", NULL), "p");
	assert_int_equal(metric_l(&f, "kansatsu_journey_closed_without_head_total", ",reason=\"head_not_seen\""), 1);
	fx_fini(&f);
}

/* Far more than max_memory_mib: the oldest are released early, nothing lost. */
static void test_memory_bound(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, "{" PROPAGATE ", wait_window: 60s, max_memory_mib: 1}");
	char big[2100];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	char attrs[2200];
	snprintf(attrs, sizeof attrs, "tenant.plan=gold;blob=%s", big);
	uint32_t seq = 2000;
	for (uint32_t i = 0; i < 1200; i++) {
		uint8_t t[16];
		tid_on(t, i % NSHARDS, &seq);
		struct tspan sp[] = {{.trace = t, .span = 1, .parent = 7, .attrs = attrs}};
		feed(&f, sp, 1, T0 + i);
		if (f.norig > 200) { /* keep the original-bytes table small */
			for (uint32_t o = 0; o < f.norig; o++)
				free(f.orig[o].bytes);
			f.norig = 0;
		}
		if (f.sink.n > 200) {
			for (uint32_t o = 0; o < f.sink.n; o++)
				free(f.sink.data[o]);
			f.sink.n = 0;
		}
		assert_true(metric(&f, "kansatsu_journey_bytes_in_memory") <= (1u << 20) + 4096);
	}
	assert_true(metric_l(&f, "kansatsu_journey_released_early_total", ",reason=\"memory\"") > 0);
	assert_true(f.sink.spans > 0);
	uint64_t held = metric(&f, "kansatsu_journey_traces_in_memory");
	assert_int_equal(f.sink.spans + held, f.in);
	for (uint32_t s = 0; s < NSHARDS; s++)
		J->flush(f.state[s], &f.next);
	assert_int_equal(f.sink.spans, f.in);
	fx_fini(&f);
}

static void test_config_errors(void **state)
{
	(void)state;
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		{"{propagate: [{from: span}]}", "processors.journey.propagate[0].keys: missing"},
		{"{propagate: [{from: body, keys: [a]}]}", "processors.journey.propagate[0].from"},
		{"{propagate: [{keys: []}]}", "processors.journey.propagate[0].keys: at least one key"},
		{"{propagate: {keys: [a]}}", "processors.journey.propagate: expected a list"},
		{"{propagate: [{keys: [a], prefixx: b}]}", "processors.journey.propagate[0].prefixx: unknown key"},
		{"{wait_window: 1s, root_grace: 2s}", "processors.journey.root_grace"},
		{"{wait_window: 0s}", "processors.journey.wait_window"},
		{"{ttl: 1s}", "processors.journey.ttl"},
		{"{max_heads: 1}", "processors.journey.max_heads"},
		{"{registry: {redis: {}}}", "processors.journey.registry.redis.endpoint: missing"},
		{"{registry: {redis: {endpoint: redis}}}", "processors.journey.registry.redis.endpoint"},
		{"{registry: {redis: {endpoint: ':6379'}}}", "processors.journey.registry.redis.endpoint: \":6379\" needs a host"},
		{"{registry: {redis: {endpoint: 'r:6379', timeout: 0s}}}", "processors.journey.registry.redis.timeout"},
		{"{registry: {redis: {endpoint: 'r:6379', write: some}}}", "processors.journey.registry.redis.write"},
		{"{registry: {redis: {endpoint: 'r:6379', username: u}}}", "processors.journey.registry.redis.password: needed"},
		{"{registry: {redis: {endpoint: 'r:6379', max_pending: 0}}}", "processors.journey.registry.redis.max_pending"},
		{"{registry: {redis: {endpoint: 'r:6379', tls: true}}}", "processors.journey.registry.redis.tls: unknown key"},
		{"{registry: {memcached: {}}}", "processors.journey.registry.memcached: unknown key"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fx f;
		struct kn_err err = {{0}};
		memset(&f, 0, sizeof f);
		assert_int_equal(fx_config(&f, cases[i].yaml, &err), KN_ERR);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, cases[i].want);
		kn_cfg_free(J->config_fields, &f.cfg);
		kn_cnode_free(f.root);
	}
	/* defaults */
	struct fx f;
	struct kn_err err;
	assert_int_equal(fx_config(&f, "{}", &err), KN_OK);
	assert_int_equal(f.cfg.wait_window_ns, 2 * SEC);
	assert_int_equal(f.cfg.root_grace_ns, 200 * MS);
	assert_int_equal(f.cfg.ttl_ns, 600 * SEC);
	assert_int_equal(f.cfg.max_heads, 65536);
	assert_int_equal(f.cfg.max_memory_mib, 128);
	assert_int_equal(f.cfg.overwrite, 0);
	assert_string_equal(f.cfg.journey_id_attribute, "journey.id");
	assert_int_equal(f.cfg.propagate.n, 0);
	assert_int_equal(f.cfg.registry.redis.enabled, 0);
	kn_cfg_free(J->config_fields, &f.cfg);
	kn_cnode_free(f.root);
	/* registry.redis defaults */
	assert_int_equal(fx_config(&f, "{registry: {redis: {endpoint: 'redis:6379'}}}", &err), KN_OK);
	const struct kn_journey_redis_cfg *r = &f.cfg.registry.redis;
	assert_int_equal(r->enabled, 1);
	assert_string_equal(r->key_prefix, "kansatsu:j:");
	assert_int_equal(r->ttl_ns, 600 * SEC);
	assert_int_equal(r->timeout_ns, 200 * MS);
	assert_int_equal(r->max_pending, 65536);
	assert_int_equal(r->db, 0);
	assert_string_equal(r->write, "producers");
	kn_cfg_free(J->config_fields, &f.cfg);
	kn_cnode_free(f.root);
}

/* create -> destroy, create -> start -> destroy, two instances: the
 * first started one owns kn_journey_registry_shared. */
static void test_lifecycle_walk(void **state)
{
	(void)state;
	struct fx f;
	struct kn_err err;
	memset(&f, 0, sizeof f);
	assert_int_equal(fx_config(&f, "{" PROPAGATE "}", &err), KN_OK);
	struct kn_metrics *m = kn_metrics_create();
	struct kn_component_ctx ctx = {.id = "journey", .metrics = m, .nshards = 3};
	void *a = NULL, *b = NULL, *st = NULL;
	assert_int_equal(J->create(&ctx, &f.cfg, &a, &err), KN_OK);
	/* shards need the registry start makes */
	assert_int_equal(J->shard_create(a, 0, &st, &err), KN_ERR);
	assert_non_null(strstr(err.msg, "before start"));
	J->destroy(a);
	assert_int_equal(J->create(&ctx, &f.cfg, &a, &err), KN_OK);
	assert_int_equal(J->create(&ctx, &f.cfg, &b, &err), KN_OK);
	assert_int_equal(J->start(a, &err), KN_OK);
	const struct kn_journey_registry *ra = kn_journey_registry_shared();
	assert_non_null(ra);
	assert_int_equal(kn_journey_registry_nshards(ra), 3);
	assert_int_equal(J->start(b, &err), KN_OK);
	assert_ptr_equal(kn_journey_registry_shared(), ra);
	J->destroy(b);
	assert_ptr_equal(kn_journey_registry_shared(), ra);
	J->destroy(a);
	assert_null(kn_journey_registry_shared());
	J->destroy(NULL);
	J->shard_destroy(NULL);
	kn_metrics_destroy(m);
	kn_cfg_free(J->config_fields, &f.cfg);
	kn_cnode_free(f.root);
}

/* ---- the rewrite on KeyValues of every shape ---- */

struct wbuf {
	uint8_t b[4096];
	size_t n;
};

static void wb_bytes(struct wbuf *w, uint8_t tag, const void *p, size_t len)
{
	w->b[w->n++] = tag;
	w->n += kn_wire_put_varint(w->b + w->n, len);
	memcpy(w->b + w->n, p, len);
	w->n += len;
}

static void wb_put(struct wbuf *w, const void *p, size_t len)
{
	memcpy(w->b + w->n, p, len);
	w->n += len;
}

/* KeyValue{key, string value}: key first, or value first (legal protobuf). */
static void wb_kv(struct wbuf *w, const char *key, const char *val, size_t vlen, int value_first)
{
	struct wbuf av = {0}, kv = {0};
	wb_bytes(&av, 0x0a, val, vlen);                         /* AnyValue.string_value */
	if (value_first)
		wb_bytes(&kv, 0x12, av.b, av.n);
	wb_bytes(&kv, 0x0a, key, strlen(key));
	if (!value_first)
		wb_bytes(&kv, 0x12, av.b, av.n);
	wb_bytes(w, 0x4a, kv.b, kv.n);                          /* Span.attributes */
}

/* A head whose propagated attributes are tenant = "gold", journey id 5a.. */
static void tenant_gold_head(struct kn_journey_head *h)
{
	memset(h, 0, sizeof *h);
	struct wbuf ha = {0};
	wb_kv(&ha, "tenant", "gold", 4, 0);
	memcpy(h->attrs, ha.b, ha.n);
	h->attrs_len = (uint16_t)ha.n;
	memset(h->journey_id, 0x5a, 16);
}

/* Values of attribute `key` in a span, in order; their count. */
static size_t attr_values(const Span *sp, const char *key, const char **out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < sp->n_attributes; i++)
		if (strcmp(sp->attributes[i]->key, key) == 0 && n < cap)
			out[n++] = sp->attributes[i]->value ? sp->attributes[i]->value->string_value : NULL;
	return n;
}

/* A span whose own attributes name the plan's keys in the shapes the fast
 * path reads (short key then value) and those it must walk (value before
 * key, a value of 200 bytes): with overwrite false its own `tenant` stays,
 * with overwrite true the head's replaces it; journey.id is always replaced;
 * other attributes are kept; exactly one of each plan key is left. */
static void test_rewrite_kv_shapes(void **state)
{
	(void)state;
	char longv[200];
	memset(longv, 'x', sizeof longv);
	for (int overwrite = 0; overwrite <= 1; overwrite++)
		for (int shape = 0; shape < 3; shape++) {
			struct kn_journey_head h;
			tenant_gold_head(&h);
			struct kn_journey_plan pl;
			kn_journey_plan_build(&pl, &h, overwrite, "journey.id");
			assert_int_equal(pl.n, 2);
			struct wbuf sp = {0};
			uint8_t tid[16], sid[8];
			memset(tid, 0x11, 16);
			memset(sid, 0x22, 8);
			wb_bytes(&sp, 0x0a, tid, 16);
			wb_bytes(&sp, 0x12, sid, 8);
			wb_bytes(&sp, 0x2a, "op", 2);
			wb_kv(&sp, "other", "o", 1, 0);
			/* shape 0: fast path; 1: value first; 2: long value */
			wb_kv(&sp, "tenant", shape == 2 ? longv : "silver", shape == 2 ? sizeof longv : 6,
			      shape == 1);
			wb_kv(&sp, "journey.id", "stale", 5, shape == 1);
			struct wbuf ss = {0}, rs = {0}, rq = {0};
			wb_bytes(&ss, 0x12, sp.b, sp.n);
			wb_bytes(&rs, 0x12, ss.b, ss.n);
			wb_bytes(&rq, 0x0a, rs.b, rs.n);
			struct kn_journey_rw w;
			kn_journey_rw_init(&w);
			struct kn_err err = {{0}};
			struct kn_chunk *c = kn_journey_rw_chunk(&w, rq.b, rq.n, 1, &pl, &err);
			if (!c)
				fail_msg("overwrite %d shape %d: %s", overwrite, shape, err.msg);
			Req *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
				NULL, c->len, c->data);
			assert_non_null(r);
			const Span *out = r->resource_spans[0]->scope_spans[0]->spans[0];
			const char *v[4];
			assert_int_equal(attr_values(out, "other", v, 4), 1);
			assert_int_equal(attr_values(out, "tenant", v, 4), 1);
			if (overwrite)
				assert_string_equal(v[0], "gold");
			else if (shape == 2)
				assert_int_equal(strlen(v[0]), sizeof longv);
			else
				assert_string_equal(v[0], "silver");
			assert_int_equal(attr_values(out, "journey.id", v, 4), 1);
			assert_string_not_equal(v[0], "stale");
			opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
			kn_chunk_unref(c);
			kn_journey_rw_free(&w);
		}
}

/* The rewrite's exact bytes: a replaced attribute is cut out where it was
 * and the plan's entries appended after the span's last field, nothing else
 * moves; a trace no entry changes comes out byte for byte, and its span
 * header points at the span. */
static void test_rewrite_exact_bytes(void **state)
{
	(void)state;
	struct kn_journey_head h;
	tenant_gold_head(&h);
	uint8_t tid[16], sid[8];
	memset(tid, 0x11, 16);
	memset(sid, 0x22, 8);
	for (int changed = 0; changed <= 1; changed++) {
		struct kn_journey_plan pl;
		kn_journey_plan_build(&pl, &h, 0, changed ? "journey.id" : "");
		assert_int_equal(pl.n, changed ? 2 : 1);
		struct wbuf sp = {0}, want_sp = {0};
		struct wbuf *both[2] = {&sp, &want_sp};
		for (int k = 0; k < 2; k++) {
			wb_bytes(both[k], 0x0a, tid, 16);
			wb_bytes(both[k], 0x12, sid, 8);
			wb_kv(both[k], "tenant", "silver", 6, 0);   /* kept: overwrite false */
		}
		wb_kv(&sp, "journey.id", "stale", 5, 0);      /* replaced when changed */
		if (!changed)
			wb_kv(&want_sp, "journey.id", "stale", 5, 0);
		for (int k = 0; k < 2; k++)
			wb_bytes(both[k], 0x2a, "op", 2);
		if (changed)
			for (uint32_t i = 0; i < pl.n; i++)
				if (pl.add[i].replace)
					wb_put(&want_sp, pl.add[i].field, pl.add[i].field_len);
		struct wbuf in = {0}, want = {0};
		struct wbuf *sps[2] = {&sp, &want_sp}, *out[2] = {&in, &want};
		for (int k = 0; k < 2; k++) {
			struct wbuf ss = {0}, rs = {0};
			wb_bytes(&ss, 0x0a, "scope", 5);   /* an InstrumentationScope left alone */
			wb_bytes(&ss, 0x12, sps[k]->b, sps[k]->n);
			wb_bytes(&rs, 0x12, ss.b, ss.n);
			wb_bytes(out[k], 0x0a, rs.b, rs.n);
		}
		struct kn_journey_rw w;
		kn_journey_rw_init(&w);
		struct kn_err err = {{0}};
		struct kn_chunk *c = kn_journey_rw_chunk(&w, in.b, in.n, 1, &pl, &err);
		if (!c)
			fail_msg("changed %d: %s", changed, err.msg);
		assert_int_equal(c->len, want.n);
		assert_memory_equal(c->data, want.b, want.n);
		assert_int_equal(c->nspans, 1);
		assert_memory_equal(c->spans[0].trace_id, tid, 16);
		assert_int_equal(c->spans[0].len, want_sp.n);
		assert_memory_equal(c->data + c->spans[0].off, want_sp.b, want_sp.n);
		assert_int_equal(c->spans[0].nattrs, 2); /* tenant and one journey.id */
		kn_chunk_unref(c);
		kn_journey_rw_free(&w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_within_trace),
		cmocka_unit_test(test_cross_shard),
		cmocka_unit_test(test_batch_consumer),
		cmocka_unit_test(test_head_never_arrives),
		cmocka_unit_test(test_overwrite_true),
		cmocka_unit_test(test_resource_prefix),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_memory_bound),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_lifecycle_walk),
		cmocka_unit_test(test_rewrite_kv_shapes),
		cmocka_unit_test(test_rewrite_exact_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
