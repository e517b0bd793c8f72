/* SPDX-License-Identifier: Apache-2.0
 * The tail_sampling processor driven through its component functions with
 * a fake clock (chunk accepted_ns and tick's now): nothing is decided
 * before decision_wait and everything is at it; a root span brings the
 * decision forward by decision_wait_after_root_received; late spans follow
 * a sampled and a not-sampled decision; a flood far above max_memory_mib
 * keeps the store under its bound, decides the oldest early and loses
 * nothing (spans in == emitted + dropped + held); num_traces likewise;
 * maximum_trace_size_bytes as in OTel; emitted chunks unpack as exactly the
 * trace's spans with their resources; the policy_attribute and tracestate
 * threshold rewrites reach every kept span; shutdown; config errors. The
 * decisions come from the real policy engine (status_code, probabilistic). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/config/kn_config.h"
#include "kn_test_traces.h"
#include "collector/core/kn_budget.h"
#include "collector/core/kn_metrics.h"
#include "collector/wire/kn_wire.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "processors/tail_sampling/kn_tail_int.h"
#include "processors/tail_sampling/kn_tail_sampling.h"

#define SEC 1000000000ull
#define T0 (1000 * SEC)

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;

/* The request as one chunk, charged to the budget like a receiver does. */
static struct kn_chunk *chunk_of(const struct kn_test_span *sp, size_t n, uint64_t accepted)
{
	size_t len;
	uint8_t *buf = kn_test_pack(sp, n, &len);
	struct kn_wire_index ix;
	struct kn_err err;
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
	assert_int_equal(ix.nspans, n);
	struct kn_chunk *c = NULL;
	assert_int_equal(kn_wire_split(&ix, buf, 1, &c, &err), KN_OK);
	assert_non_null(c);
	c->accepted_ns = accepted;
	assert_true(kn_budget_try_charge(c->len));
	c->charged = c->len;
	kn_wire_index_free(&ix);
	free(buf);
	return c;
}

/* ---- the sink: what the processor emits ---- */

struct out {
	uint8_t *data;
	uint32_t len, nspans;
};

struct sink {
	struct out o[4096];
	uint32_t n;
	uint64_t spans;
	uint64_t chunks;
	struct kn_wire_index ix;  /* cross-checks the emitted span headers */
};

/* Field by field (the struct has tail padding). */
static void hdr_equal(const struct kn_span_hdr *a, const struct kn_span_hdr *x)
{
	assert_memory_equal(a->trace_id, x->trace_id, 16);
	assert_memory_equal(a->span_id, x->span_id, 8);
	assert_memory_equal(a->parent_span_id, x->parent_span_id, 8);
	assert_int_equal(a->start_ns, x->start_ns);
	assert_int_equal(a->end_ns, x->end_ns);
	assert_int_equal(a->off, x->off);
	assert_int_equal(a->len, x->len);
	assert_int_equal(a->name_off, x->name_off);
	assert_int_equal(a->name_len, x->name_len);
	assert_int_equal(a->flags, x->flags);
	assert_int_equal(a->kind, x->kind);
	assert_int_equal(a->status_code, x->status_code);
	assert_int_equal(a->nattrs, x->nattrs);
	assert_int_equal(a->nlinks, x->nlinks);
	assert_int_equal(a->resource_idx, x->resource_idx);
	assert_int_equal(a->scope_idx, x->scope_idx);
}

static int collect(void *ctx, struct kn_batch *b)
{
	struct sink *s = ctx;
	uint32_t sum = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		struct kn_chunk *c = b->chunks[i];
		/* a chunk holds the kept traces of one round one after another; its
		 * span headers (each trace indexed alone, then rebased) must be
		 * exactly what indexing the whole chunk gives */
		assert_true(c->nspans > 0);
		struct kn_err err = {{0}};
		assert_int_equal(kn_wire_index_request(&s->ix, c->data, c->len, &err), KN_OK);
		assert_int_equal(s->ix.rejected, 0);
		assert_int_equal(s->ix.nspans, c->nspans);
		for (uint32_t k = 0; k < c->nspans; k++) {
			assert_true(c->spans[k].off + c->spans[k].len <= c->len);
			hdr_equal(&c->spans[k], &s->ix.spans[k]);
		}
		s->chunks++;
		sum += c->nspans;
		s->spans += c->nspans;
		if (s->n < 4096) {
			struct out *o = &s->o[s->n++];
			o->data = malloc(c->len);
			memcpy(o->data, c->data, c->len);
			o->len = c->len;
			o->nspans = c->nspans;
		}
	}
	assert_int_equal(sum, b->nspans);
	kn_batch_free(b);
	return KN_OK;
}

static void sink_clear(struct sink *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		free(s->o[i].data);
	s->n = 0;
	s->spans = 0;
}

/* ---- fixture ---- */

struct fx {
	struct kn_metrics *m;
	struct kn_tail_sampling_cfg cfg;
	struct kn_cnode *root;
	void *inst, *state;
	struct sink sink;
	struct kn_emit next;
	uint64_t in;          /* spans handed to process() */
};

#define POLICY_ERRORS "policies: [{name: errors, type: status_code, status_code: {status_codes: [ERROR]}}]"

static int fx_config(struct fx *f, const char *yaml, struct kn_err *err)
{
	const struct kn_component *c = &kn_processor_tail_sampling;
	memset(&f->cfg, 0, sizeof f->cfg);
	if (kn_config_parse(yaml, strlen(yaml), "test", &f->root, err) != KN_OK)
		return KN_ERR;
	if (kn_cfg_apply_at(c->config_fields, f->root, "processors.tail_sampling", &f->cfg, err) != KN_OK)
		return KN_ERR;
	return c->validate(&f->cfg, "processors.tail_sampling", err);
}

static void fx_init(struct fx *f, const char *yaml)
{
	struct kn_err err = {{0}};
	memset(f, 0, sizeof *f);
	kn_wire_index_init(&f->sink.ix);
	kn_budget_init(0);
	if (fx_config(f, yaml, &err) != KN_OK)
		fail_msg("config: %s", err.msg);
	f->m = kn_metrics_create();
	struct kn_component_ctx ctx = {.id = "tail_sampling", .metrics = f->m, .nshards = 1};
	const struct kn_component *c = &kn_processor_tail_sampling;
	if (c->create(&ctx, &f->cfg, &f->inst, &err) != KN_OK)
		fail_msg("create: %s", err.msg);
	assert_int_equal(c->start ? c->start(f->inst, &err) : KN_OK, KN_OK);
	if (c->shard_create(f->inst, 0, &f->state, &err) != KN_OK)
		fail_msg("shard_create: %s", err.msg);
	f->next = (struct kn_emit){collect, &f->sink};
}

static void fx_fini(struct fx *f)
{
	const struct kn_component *c = &kn_processor_tail_sampling;
	c->shard_destroy(f->state);
	if (c->shutdown)
		c->shutdown(f->inst, 0);
	c->destroy(f->inst);
	kn_cfg_free(c->config_fields, &f->cfg);
	kn_cnode_free(f->root);
	kn_metrics_destroy(f->m);
	sink_clear(&f->sink);
	kn_wire_index_free(&f->sink.ix);
	/* every input chunk was released, every emitted one too */
	assert_int_equal(kn_budget_used(), 0);
}

static void feed(struct fx *f, const struct kn_test_span *sp, size_t n, uint64_t now)
{
	struct kn_batch *b = kn_batch_new(1);
	assert_int_equal(kn_batch_add(&b, chunk_of(sp, n, now)), KN_OK);
	f->in += n;
	kn_processor_tail_sampling.process(f->state, b, &f->next);
}

static uint64_t tick(struct fx *f, uint64_t now)
{
	return kn_processor_tail_sampling.tick(f->state, now, &f->next);
}

static uint64_t counter(struct fx *f, const char *name, const char *extra)
{
	char labels[128];
	snprintf(labels, sizeof labels, "processor=\"tail_sampling\"%s%s", extra ? "," : "",
		 extra ? extra : "");
	return kn_metric_value(kn_metrics_counter(f->m, name, "", labels));
}

static int64_t gauge(struct fx *f, const char *name)
{
	struct kn_metric *g = kn_metrics_gauge_fn(f->m, name, "", "processor=\"tail_sampling\"", NULL, NULL);
	assert_non_null(g->fn);
	return g->fn(g->fn_ctx);
}

static uint64_t dropped(struct fx *f)
{
	return counter(f, "kansatsu_tail_spans_total", "decision=\"not_sampled\"") +
	       counter(f, "kansatsu_tail_late_spans_total", "decision=\"not_sampled\"");
}

/* spans in == emitted + dropped + held, and nothing lost */
static void conservation(struct fx *f)
{
	assert_int_equal(counter(f, "kansatsu_tail_spans_lost_total", "reason=\"malformed\""), 0);
	assert_int_equal(counter(f, "kansatsu_tail_spans_lost_total", "reason=\"out_of_memory\""), 0);
	assert_int_equal(f->in, f->sink.spans + dropped(f) +
				    (uint64_t)gauge(f, "kansatsu_tail_spans_in_memory"));
}

/* Unpacks emitted chunk i; checks all its spans are trace tr's, returns the tree. */
static Req *unpack_out(struct fx *f, uint32_t i, uint32_t tr, uint32_t nspans)
{
	assert_true(i < f->sink.n);
	struct out *o = &f->sink.o[i];
	Req *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
		NULL, o->len, o->data);
	assert_non_null(r);
	uint8_t id[16];
	kn_test_trace_id(id, tr);
	uint32_t got = 0;
	for (size_t a = 0; a < r->n_resource_spans; a++) {
		RS *rs = r->resource_spans[a];
		assert_non_null(rs->resource);
		assert_string_equal(rs->resource->attributes[0]->key, "service.name");
		for (size_t b = 0; b < rs->n_scope_spans; b++)
			for (size_t k = 0; k < rs->scope_spans[b]->n_spans; k++) {
				Span *s = rs->scope_spans[b]->spans[k];
				assert_memory_equal(s->trace_id.data, id, 16);
				got++;
			}
	}
	assert_int_equal(got, nspans);
	assert_int_equal(o->nspans, nspans);
	return r;
}

static void free_req(Req *r)
{
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
}

/* ---- tests ---- */

static void test_decision_wait(void **st)
{
	(void)st;
	struct fx f;
	fx_init(&f, "{decision_wait: 10s, " POLICY_ERRORS "}");
	/* trace 1 has an error in a second resource; trace 2 has none */
	struct kn_test_span a[] = {
		{.trace = 1, .span = 1, .res = 0, .start = 10, .end = 20},
		{.trace = 2, .span = 7, .res = 0, .start = 10, .end = 20},
		{.trace = 1, .span = 2, .parent = 1, .res = 1, .error = 1, .start = 11, .end = 19, .nattrs = 2},
	};
	feed(&f, a, 3, T0);
	assert_int_equal(f.sink.n, 0);
	assert_int_equal(gauge(&f, "kansatsu_tail_traces_in_memory"), 2);
	assert_int_equal(tick(&f, T0 + 1), T0 + 10 * SEC);
	/* more of trace 1 later does not move its deadline */
	struct kn_test_span b[] = {{.trace = 1, .span = 3, .parent = 1, .res = 2, .start = 12, .end = 13}};
	feed(&f, b, 1, T0 + 5 * SEC);
	assert_int_equal(tick(&f, T0 + 10 * SEC - 1), T0 + 10 * SEC);
	assert_int_equal(f.sink.n, 0);
	assert_int_equal(tick(&f, T0 + 10 * SEC), 0);
	assert_int_equal(f.sink.n, 1);
	Req *r = unpack_out(&f, 0, 1, 3);
	assert_int_equal(r->n_resource_spans, 3);
	free_req(r);
	assert_int_equal(counter(&f, "kansatsu_tail_traces_total", "decision=\"sampled\""), 1);
	assert_int_equal(counter(&f, "kansatsu_tail_traces_total", "decision=\"not_sampled\""), 1);
	assert_int_equal(counter(&f, "kansatsu_tail_spans_total", "decision=\"sampled\""), 3);
	assert_int_equal(counter(&f, "kansatsu_tail_spans_total", "decision=\"not_sampled\""), 1);
	assert_int_equal(counter(&f, "kansatsu_tail_decision_latency_ms_count", NULL), 2);
	assert_int_equal(counter(&f, "kansatsu_tail_decision_latency_ms_sum", NULL), 2 * 10000);
	assert_int_equal(gauge(&f, "kansatsu_tail_traces_in_memory"), 0);
	conservation(&f);
	fx_fini(&f);
}

static void test_root_grace(void **st)
{
	(void)st;
	struct fx f;
	fx_init(&f, "{decision_wait: 30s, decision_wait_after_root_received: 1s, " POLICY_ERRORS "}");
	struct kn_test_span child[] = {{.trace = 1, .span = 2, .parent = 1, .res = 0, .error = 1}};
	struct kn_test_span other[] = {{.trace = 2, .span = 2, .parent = 1, .res = 0, .error = 1}};
	feed(&f, child, 1, T0);
	feed(&f, other, 1, T0 + SEC);
	/* no root yet: the worker is still asked back soon, in case one arrives */
	uint64_t d = tick(&f, T0 + SEC);
	assert_true(d > T0 + SEC && d <= T0 + SEC + SEC / 10);
	struct kn_test_span root[] = {{.trace = 1, .span = 1, .parent = 0, .res = 0}};
	feed(&f, root, 1, T0 + 2 * SEC);
	assert_int_equal(tick(&f, T0 + 3 * SEC - 1), T0 + 3 * SEC);
	assert_int_equal(f.sink.n, 0);
	tick(&f, T0 + 3 * SEC);
	assert_int_equal(f.sink.n, 1);
	free_req(unpack_out(&f, 0, 1, 2));
	/* trace 2, without root, waits for decision_wait */
	tick(&f, T0 + 31 * SEC - 1);
	assert_int_equal(f.sink.n, 1);
	assert_int_equal(tick(&f, T0 + 31 * SEC), 0);
	assert_int_equal(f.sink.n, 2);
	free_req(unpack_out(&f, 1, 2, 1));
	conservation(&f);
	fx_fini(&f);
}

static void test_late_spans(void **st)
{
	(void)st;
	struct fx f;
	fx_init(&f, "{decision_wait: 1s, policy_attribute: sampling.policy, " POLICY_ERRORS "}");
	struct kn_test_span a[] = {
		{.trace = 1, .span = 1, .res = 0, .error = 1},
		{.trace = 2, .span = 1, .res = 0},
	};
	feed(&f, a, 2, T0);
	tick(&f, T0 + SEC);
	assert_int_equal(f.sink.n, 1);
	/* late spans: trace 1's go out at once, trace 2's are dropped, trace 3 is new */
	struct kn_test_span late[] = {
		{.trace = 2, .span = 5, .parent = 1, .res = 0, .error = 1},
		{.trace = 1, .span = 2, .parent = 1, .res = 0},
		{.trace = 3, .span = 1, .res = 0},
		{.trace = 1, .span = 3, .parent = 1, .res = 1},
	};
	feed(&f, late, 4, T0 + 5 * SEC);
	assert_int_equal(f.sink.n, 2);
	Req *r = unpack_out(&f, 1, 1, 2);
	/* the late spans carry the same policy attribute as the trace */
	for (size_t i = 0; i < r->n_resource_spans; i++)
		for (size_t k = 0; k < r->resource_spans[i]->scope_spans[0]->n_spans; k++) {
			Span *s = r->resource_spans[i]->scope_spans[0]->spans[k];
			assert_true(s->n_attributes >= 1);
			assert_string_equal(s->attributes[s->n_attributes - 1]->key, "sampling.policy");
			assert_string_equal(s->attributes[s->n_attributes - 1]->value->string_value, "errors");
		}
	free_req(r);
	assert_int_equal(counter(&f, "kansatsu_tail_late_spans_total", "decision=\"sampled\""), 2);
	assert_int_equal(counter(&f, "kansatsu_tail_late_spans_total", "decision=\"not_sampled\""), 1);
	assert_int_equal(gauge(&f, "kansatsu_tail_traces_in_memory"), 1);
	conservation(&f);
	kn_processor_tail_sampling.flush(f.state, &f.next);
	conservation(&f);
	fx_fini(&f);
}

/* A flood of traces (~1 KiB each) far above max_memory_mib. */
static void test_memory_flood(void **st)
{
	(void)st;
	struct fx f;
	fx_init(&f, "{decision_wait: 30s, max_memory_mib: 1, num_traces: 1000000, " POLICY_ERRORS "}");
	enum { CHUNKS = 1500, PER = 10 };
	struct kn_test_span sp[PER * 2];
	uint32_t tr = 0;
	for (uint32_t c = 0; c < CHUNKS; c++) {
		uint32_t n = 0;
		for (uint32_t k = 0; k < PER; k++, tr++)
			for (uint32_t s = 0; s < 2; s++)
				sp[n++] = (struct kn_test_span){.trace = tr, .span = 1 + s, .parent = s, .res = k % 3,
							 .scope = k, .error = s && tr % 10 == 0,
							 .nattrs = 8};
		feed(&f, sp, n, T0 + c * 1000);
		assert_true(gauge(&f, "kansatsu_tail_bytes_in_memory") <= (1 << 20));
		if (c % 100 == 0)
			conservation(&f);
	}
	uint64_t early = counter(&f, "kansatsu_tail_traces_decided_early_total", "reason=\"memory\"");
	assert_true(early > 0);
	uint64_t held = (uint64_t)gauge(&f, "kansatsu_tail_traces_in_memory");
	assert_true(held > 0);
	/* only the oldest were decided: every trace still held is newer than every decided one */
	assert_int_equal(early + held, tr);
	assert_int_equal(counter(&f, "kansatsu_tail_traces_total", "decision=\"sampled\"") +
				 counter(&f, "kansatsu_tail_traces_total", "decision=\"not_sampled\""),
			 early);
	assert_true(f.sink.n > 0);
	/* oldest first: the kept traces (every tenth) leave in arrival order */
	for (uint32_t i = 0; i < f.sink.n; i++) {
		Req *r = unpack_out(&f, i, 10 * i, 2);
		free_req(r);
	}
	conservation(&f);
	kn_processor_tail_sampling.flush(f.state, &f.next);
	assert_int_equal(gauge(&f, "kansatsu_tail_traces_in_memory"), 0);
	assert_int_equal(counter(&f, "kansatsu_tail_traces_decided_early_total", "reason=\"shutdown\""), held);
	/* 10% of traces have an error span: exactly those were kept */
	assert_int_equal(counter(&f, "kansatsu_tail_traces_total", "decision=\"sampled\""), tr / 10);
	conservation(&f);
	fx_fini(&f);
}

/* One trace arriving a span at a time, its chunks alternating between two
 * large Resources: the store holds each Resource once, but the trace written
 * out repeats it per append, so it is the written-out size that must stay
 * under max_memory_mib: the trace is decided early when that would pass it,
 * and its later spans follow the decision. */
static void test_view_bound(void **st)
{
	(void)st;
	struct fx f;
	fx_init(&f, "{decision_wait: 30s, max_memory_mib: 1, " POLICY_ERRORS "}");
	enum { APPENDS = 1000 };
	for (uint32_t k = 0; k < APPENDS; k++) {
		struct kn_test_span sp = {.trace = 7, .span = 1 + k, .parent = k ? 1 : 0, .res = k % 2,
					  .nres_attrs = 100, .error = k == 0};
		feed(&f, &sp, 1, T0 + k * 1000);
		assert_true(gauge(&f, "kansatsu_tail_bytes_in_memory") <= (1 << 20));
	}
	assert_int_equal(counter(&f, "kansatsu_tail_traces_decided_early_total", "reason=\"memory\""), 1);
	assert_int_equal(counter(&f, "kansatsu_tail_traces_total", "decision=\"sampled\""), 1);
	uint64_t late = counter(&f, "kansatsu_tail_late_spans_total", "decision=\"sampled\"");
	assert_true(late > 0 && late < APPENDS);
	/* the first output is the trace decided early (within the bound) and
	 * the span whose append would have passed it */
	assert_true(f.sink.n > 1);
	assert_int_equal(f.sink.o[0].nspans, APPENDS - late + 1);
	assert_true(f.sink.o[0].len <= (1u << 20) + 8192);
	assert_int_equal(f.sink.spans, APPENDS);
	conservation(&f);
	fx_fini(&f);
}

static void test_num_traces(void **st)
{
	(void)st;
	struct fx f;
	fx_init(&f, "{decision_wait: 30s, num_traces: 100, " POLICY_ERRORS "}");
	for (uint32_t t = 0; t < 250; t++) {
		struct kn_test_span s = {.trace = t, .span = 1, .res = 0, .error = t % 2};
		feed(&f, &s, 1, T0 + t);
		assert_true(gauge(&f, "kansatsu_tail_traces_in_memory") <= 100);
	}
	assert_int_equal(counter(&f, "kansatsu_tail_traces_decided_early_total", "reason=\"num_traces\""), 150);
	assert_int_equal(f.sink.n, 75);
	/* the oldest went first: the first emitted is trace 1 */
	free_req(unpack_out(&f, 0, 1, 1));
	conservation(&f);
	kn_processor_tail_sampling.flush(f.state, &f.next);
	conservation(&f);
	fx_fini(&f);
}

static void test_oversize(void **st)
{
	(void)st;
	struct fx f;
	fx_init(&f, "{decision_wait: 10s, maximum_trace_size_bytes: 1500, " POLICY_ERRORS "}");
	struct kn_test_span a[] = {{.trace = 1, .span = 1, .res = 0, .error = 1, .nattrs = 10}};
	struct kn_test_span b[] = {{.trace = 1, .span = 2, .parent = 1, .res = 0, .error = 1, .nattrs = 40}};
	struct kn_test_span small[] = {{.trace = 2, .span = 1, .res = 0, .error = 1}};
	feed(&f, a, 1, T0);
	feed(&f, small, 1, T0);
	assert_int_equal(gauge(&f, "kansatsu_tail_traces_in_memory"), 2);
	feed(&f, b, 1, T0 + SEC);   /* passes 1500 bytes: not sampled, both spans dropped */
	assert_int_equal(counter(&f, "kansatsu_tail_traces_too_large_total", NULL), 1);
	assert_int_equal(counter(&f, "kansatsu_tail_spans_total", "decision=\"not_sampled\""), 2);
	assert_int_equal(gauge(&f, "kansatsu_tail_traces_in_memory"), 1);
	struct kn_test_span c[] = {{.trace = 1, .span = 3, .parent = 1, .res = 0, .error = 1}};
	feed(&f, c, 1, T0 + 2 * SEC);  /* later spans follow the decision */
	assert_int_equal(counter(&f, "kansatsu_tail_late_spans_total", "decision=\"not_sampled\""), 1);
	tick(&f, T0 + 10 * SEC);
	assert_int_equal(f.sink.n, 1);
	free_req(unpack_out(&f, 0, 2, 1));
	conservation(&f);
	fx_fini(&f);
}

static void test_policy_attribute_rewrite(void **st)
{
	(void)st;
	struct fx f;
	fx_init(&f, "{decision_wait: 1s, policy_attribute: sampling.policy, " POLICY_ERRORS "}");
	struct kn_test_span a[] = {
		{.trace = 4, .span = 1, .res = 0, .scope = 0, .nattrs = 3},
		{.trace = 4, .span = 2, .parent = 1, .res = 0, .scope = 1, .error = 1},
		{.trace = 4, .span = 3, .parent = 1, .res = 1, .scope = 0, .nattrs = 1},
	};
	feed(&f, a, 3, T0);
	tick(&f, T0 + SEC);
	Req *r = unpack_out(&f, 0, 4, 3);
	uint32_t seen = 0;
	for (size_t i = 0; i < r->n_resource_spans; i++)
		for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
			for (size_t k = 0; k < r->resource_spans[i]->scope_spans[j]->n_spans; k++) {
				Span *s = r->resource_spans[i]->scope_spans[j]->spans[k];
				uint32_t orig = s->span_id.data[0] == 1 ? 3 : s->span_id.data[0] == 3 ? 1 : 0;
				assert_int_equal(s->n_attributes, orig + 1);
				for (uint32_t x = 0; x < orig; x++)
					assert_true(strncmp(s->attributes[x]->key, "http.attr.", 10) == 0);
				KV *kv = s->attributes[orig];
				assert_string_equal(kv->key, "sampling.policy");
				assert_int_equal(kv->value->value_case,
						 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
				assert_string_equal(kv->value->string_value, "errors");
				assert_int_equal(s->status->code, s->span_id.data[0] == 2 ? 2 : 0);
				seen++;
			}
	assert_int_equal(seen, 3);
	free_req(r);
	conservation(&f);
	fx_fini(&f);
}

static void test_tracestate_rewrite(void **st)
{
	(void)st;
	struct fx f;
	fx_init(&f, "{decision_wait: 1s, policy_attribute: kept.by, policies: [{name: all, "
		    "type: probabilistic, probabilistic: {sampling_percentage: 100}}]}");
	/* W3C random flag set: the probabilistic policy works in consistent mode */
	struct kn_test_span a[] = {
		{.trace = 5, .span = 1, .res = 0, .flags = 0x302, .tracestate = "vendor=x"},
		{.trace = 5, .span = 2, .parent = 1, .res = 0, .flags = 0x302},
		{.trace = 5, .span = 3, .parent = 1, .res = 1, .flags = 0x302, .tracestate = "ot=rv:ffffffffffffff,a=b"},
	};
	feed(&f, a, 3, T0);
	tick(&f, T0 + SEC);
	Req *r = unpack_out(&f, 0, 5, 3);
	uint32_t seen = 0;
	for (size_t i = 0; i < r->n_resource_spans; i++)
		for (size_t k = 0; k < r->resource_spans[i]->scope_spans[0]->n_spans; k++) {
			Span *s = r->resource_spans[i]->scope_spans[0]->spans[k];
			/* protobuf keeps the last trace_state: the rewritten one */
			assert_non_null(strstr(s->trace_state, "ot=th:0"));
			assert_true(strncmp(s->trace_state, "ot=", 3) == 0);
			if (s->span_id.data[0] == 1)
				assert_non_null(strstr(s->trace_state, "vendor=x"));
			if (s->span_id.data[0] == 3) {
				assert_non_null(strstr(s->trace_state, "rv:ffffffffffffff"));
				assert_non_null(strstr(s->trace_state, "a=b"));
			}
			assert_string_equal(s->attributes[s->n_attributes - 1]->key, "kept.by");
			assert_string_equal(s->attributes[s->n_attributes - 1]->value->string_value, "all");
			assert_int_equal(s->flags, 0x302);
			seen++;
		}
	assert_int_equal(seen, 3);
	free_req(r);
	conservation(&f);
	fx_fini(&f);
}

static void test_shutdown(void **st)
{
	(void)st;
	struct fx f;
	fx_init(&f, "{decision_wait: 30s, " POLICY_ERRORS "}");
	struct kn_test_span a[] = {{.trace = 1, .span = 1, .res = 0, .error = 1}, {.trace = 2, .span = 1, .res = 0}};
	feed(&f, a, 2, T0);
	kn_processor_tail_sampling.flush(f.state, &f.next);
	assert_int_equal(f.sink.n, 1);
	assert_int_equal(counter(&f, "kansatsu_tail_traces_decided_early_total", "reason=\"shutdown\""), 2);
	conservation(&f);
	fx_fini(&f);

	fx_init(&f, "{decision_wait: 30s, drop_pending_traces_on_shutdown: true, " POLICY_ERRORS "}");
	feed(&f, a, 2, T0);
	kn_processor_tail_sampling.flush(f.state, &f.next);
	assert_int_equal(f.sink.n, 0);
	assert_int_equal(counter(&f, "kansatsu_tail_spans_total", "decision=\"not_sampled\""), 2);
	conservation(&f);
	fx_fini(&f);
}

static void test_config(void **st)
{
	(void)st;
	static const struct {
		const char *yaml, *msg;
	} bad[] = {
		{"{decision_wait: 0s, " POLICY_ERRORS "}",
		 "processors.tail_sampling.decision_wait: must be greater than 0"},
		{"{decision_wait: 1s}", "policies: missing"},
		{"{num_trace: 5, " POLICY_ERRORS "}", "num_trace: unknown key"},
		{"{max_memory_mib: 0, " POLICY_ERRORS "}", "max_memory_mib"},
		{"{decision_cache: {sampled_cache: 1}, " POLICY_ERRORS "}", "decision_cache.sampled_cache: unknown key"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct fx f;
		struct kn_err err = {{0}};
		memset(&f, 0, sizeof f);
		if (fx_config(&f, bad[i].yaml, &err) == KN_OK)
			fail_msg("accepted: %s", bad[i].yaml);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("%s: got \"%s\", want \"%s\"", bad[i].yaml, err.msg, bad[i].msg);
		kn_cfg_free(kn_processor_tail_sampling.config_fields, &f.cfg);
		kn_cnode_free(f.root);
	}
	/* an OTel config works unchanged; defaults are OTel's */
	struct fx f;
	struct kn_err err = {{0}};
	memset(&f, 0, sizeof f);
	const char *otel = "{decision_wait: 10s, num_traces: 100, expected_new_traces_per_sec: 10, "
			   "decision_cache: {sampled_cache_size: 1000, non_sampled_cache_size: 5000}, "
			   "sample_on_first_match: true, block_on_overflow: false, "
			   "maximum_trace_size_bytes: 1048576, " POLICY_ERRORS "}";
	if (fx_config(&f, otel, &err) != KN_OK)
		fail_msg("otel config: %s", err.msg);
	assert_int_equal(f.cfg.decision_cache.non_sampled_cache_size, 5000);
	kn_cfg_free(kn_processor_tail_sampling.config_fields, &f.cfg);
	kn_cnode_free(f.root);
	memset(&f, 0, sizeof f);
	assert_int_equal(fx_config(&f, "{" POLICY_ERRORS "}", &err), KN_OK);
	assert_int_equal(f.cfg.decision_wait_ns, 30 * SEC);
	assert_int_equal(f.cfg.num_traces, 50000);
	assert_int_equal(f.cfg.max_memory_mib, 256);
	assert_int_equal(f.cfg.root_wait_ns, 0);
	assert_int_equal(f.cfg.maximum_trace_size_bytes, 0);
	assert_string_equal(f.cfg.policy_attribute, "");
	kn_cfg_free(kn_processor_tail_sampling.config_fields, &f.cfg);
	kn_cnode_free(f.root);
}

/* kansatsu's decision_cache.*_bytes size the caches by memory instead of count. */
static void test_cache_bytes(void **st)
{
	(void)st;
	struct fx f;
	fx_init(&f, "{decision_cache: {sampled_cache_size: 7, sampled_cache_bytes: 480000, "
		    "non_sampled_cache_bytes: 160000}, " POLICY_ERRORS "}");
	const struct kn_tail_shard *s = f.state;
	size_t lb = kn_tail_lru_bytes(s->sampled), fb = kn_tail_fpring_bytes(s->dropped);
	/* ~10000 ids each; the index rounds to a power of two, so allow a margin */
	if (lb < 240000 || lb > 720000)
		fail_msg("sampled cache holds %zu bytes for a 480000-byte setting", lb);
	if (fb < 80000 || fb > 240000)
		fail_msg("not-sampled cache holds %zu bytes for a 160000-byte setting", fb);
	fx_fini(&f);
}

/* The budget is spent when a kept trace leaves: it leaves anyway, counted. */
static void test_budget_overrun(void **st)
{
	(void)st;
	struct fx f;
	fx_init(&f, "{decision_wait: 1s, " POLICY_ERRORS "}");
	struct kn_test_span a[] = {{.trace = 1, .span = 1, .res = 0, .error = 1},
			    {.trace = 1, .span = 2, .parent = 1, .res = 0}};
	feed(&f, a, 2, T0);
	assert_int_equal(kn_budget_used(), 0);   /* the input chunk was released */
	kn_budget_init(1);
	tick(&f, T0 + SEC);
	assert_int_equal(f.sink.n, 1);
	assert_int_equal(counter(&f, "kansatsu_tail_budget_overrun_spans_total", NULL), 2);
	assert_int_equal(kn_budget_used(), 0);
	kn_budget_init(0);
	conservation(&f);
	fx_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decision_wait),
		cmocka_unit_test(test_root_grace),
		cmocka_unit_test(test_late_spans),
		cmocka_unit_test(test_memory_flood),
		cmocka_unit_test(test_view_bound),
		cmocka_unit_test(test_num_traces),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_policy_attribute_rewrite),
		cmocka_unit_test(test_tracestate_rewrite),
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_budget_overrun),
		cmocka_unit_test(test_cache_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
