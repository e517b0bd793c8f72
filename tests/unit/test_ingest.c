/* SPDX-License-Identifier: Apache-2.0
 * kn_ingest: the hand-off from receiver threads to the shard rings. Checks
 * that a request is split by trace id onto the right rings when some
 * processor needs whole traces, and otherwise goes whole to one shard, round
 * robin (one chunk, spans in request order), that refusals
 * (full ring, spent budget, shutting down) enqueue nothing and charge
 * nothing, that malformed input is KN_INVALID with the wire reader's message,
 * that invalid spans are left out and reported, and that every span is
 * counted in the receiver metrics. Shard workers are created but not started,
 * so the test reads the rings itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "collector/core/kn_budget.h"
#include "collector/core/kn_ingest.h"
#include "collector/core/kn_metrics.h"
#include "collector/core/kn_runtime_impl.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Trace__V1__Span Span;

struct req {
	uint8_t *buf;
	size_t len;
};

/* A request with n spans; span i has trace id byte pattern (i % ntraces). */
static struct req make_req(unsigned n, unsigned ntraces, unsigned bad_trace_id_every)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest rq =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	Opentelemetry__Proto__Trace__V1__ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
	Span *spans = calloc(n, sizeof *spans);
	Span **sp = calloc(n, sizeof *sp);
	uint8_t (*tids)[16] = calloc(n, 16);
	uint8_t (*sids)[8] = calloc(n, 8);
	for (unsigned i = 0; i < n; i++) {
		opentelemetry__proto__trace__v1__span__init(&spans[i]);
		memset(tids[i], 0x11 + (int)(i % ntraces) * 7, 16);
		memset(sids[i], 0x22 + (int)i, 8);
		spans[i].trace_id.data = tids[i];
		spans[i].trace_id.len = (bad_trace_id_every && i % bad_trace_id_every == 0) ? 8 : 16;
		spans[i].span_id.data = sids[i];
		spans[i].span_id.len = 8;
		spans[i].name = "op";
		spans[i].start_time_unix_nano = 1000 + i;
		spans[i].end_time_unix_nano = 2000 + i;
		sp[i] = &spans[i];
	}
	ss.n_spans = n;
	ss.spans = sp;
	Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
	rs.n_scope_spans = 1;
	rs.scope_spans = &ssp;
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
	rq.n_resource_spans = 1;
	rq.resource_spans = &rsp;
	struct req r;
	r.len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&rq);
	r.buf = malloc(r.len + 1);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&rq, r.buf);
	free(spans);
	free(sp);
	free(tids);
	free(sids);
	return r;
}

struct fixture {
	struct kn_runtime rt;
	struct kn_producer *p;
};

static void setup_rt(struct fixture *f, uint32_t nshards, uint32_t ring_size, size_t budget)
{
	memset(f, 0, sizeof *f);
	struct kn_runtime *rt = &f->rt;
	pthread_mutex_init(&rt->producers_mu, NULL);
	rt->nshards = nshards;
	rt->ring_size = ring_size;
	rt->whole_traces = 1; /* as with tail_sampling; test_whole_requests clears it */
	rt->metrics = kn_metrics_create();
	rt->shards = calloc(nshards, sizeof *rt->shards);
	struct kn_err err;
	for (uint32_t s = 0; s < nshards; s++) {
		rt->shards[s] = kn_shard_create(rt, s, &err);
		assert_non_null(rt->shards[s]);
	}
	kn_budget_init(budget);
	atomic_store(&rt->accepting, 1);
	f->p = kn_producer_create(rt, 0, "otlp", "http", &err);
	assert_non_null(f->p);
}

static void teardown_rt(struct fixture *f)
{
	struct kn_runtime *rt = &f->rt;
	for (uint32_t s = 0; s < rt->nshards; s++)
		kn_shard_destroy(rt->shards[s]);
	free(rt->shards);
	for (unsigned i = 0; i < atomic_load(&rt->nproducers); i++)
		kn_producer_free(rt->producers[i]); /* releases chunks left in rings */
	kn_metrics_destroy(rt->metrics);
	pthread_mutex_destroy(&rt->producers_mu);
	assert_int_equal(kn_budget_used(), 0);
}

static unsigned ring_count(struct fixture *f, uint32_t s)
{
	return ck_ring_size(&f->p->rings[s].ring);
}

static struct kn_chunk *ring_take(struct fixture *f, uint32_t s)
{
	void *c = NULL;
	if (!ck_ring_dequeue_spsc(&f->p->rings[s].ring, f->p->rings[s].buf, &c))
		return NULL;
	return c;
}

static uint64_t metric(struct fixture *f, const char *name, const char *labels)
{
	return kn_metric_value(kn_metrics_counter(f->rt.metrics, name, "", labels));
}

static void test_split_onto_shards(void **st)
{
	(void)st;
	struct fixture f;
	setup_rt(&f, 3, 8, 0);
	struct req r = make_req(30, 6, 0);
	struct kn_ingest_result res;
	struct kn_tracectx tc;
	const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
	kn_tracectx_set(&tc, tp, strlen(tp), "k=v", 3);
	assert_int_equal(kn_ingest(f.p, r.buf, r.len, &tc, &res), KN_OK);
	assert_int_equal(res.accepted, 30);
	assert_int_equal(res.rejected, 0);
	unsigned total = 0;
	for (uint32_t s = 0; s < 3; s++) {
		struct kn_chunk *c;
		while ((c = ring_take(&f, s))) {
			assert_int_equal(c->shard, s);
			assert_true(c->charged > 0);
			assert_string_equal(c->ctx.traceparent, tp);
			assert_string_equal(c->ctx.tracestate, "k=v");
			for (uint32_t i = 0; i < c->nspans; i++)
				assert_int_equal(kn_shard_of(c->spans[i].trace_id, 3), s);
			total += c->nspans;
			kn_chunk_unref(c);
		}
	}
	assert_int_equal(total, 30);
	assert_int_equal(metric(&f, "kansatsu_receiver_accepted_spans_total",
				"receiver=\"otlp\",transport=\"http\""), 30);
	free(r.buf);
	teardown_rt(&f);
}

/* No processor keeps traces: each request is one chunk on the next shard. */
static void test_whole_requests(void **st)
{
	(void)st;
	struct fixture f;
	setup_rt(&f, 3, 4, 0); /* a ring of 4 holds 3 */
	f.rt.whole_traces = 0;
	struct req r = make_req(30, 6, 0);
	struct kn_ingest_result res;
	for (int i = 0; i < 9; i++) {
		assert_int_equal(kn_ingest(f.p, r.buf, r.len, NULL, &res), KN_OK);
		assert_int_equal(res.accepted, 30);
	}
	/* 9 requests over 3 shards: 3 chunks each, every ring now full */
	for (uint32_t s = 0; s < 3; s++)
		assert_int_equal(ring_count(&f, s), 3);
	assert_int_equal(kn_ingest(f.p, r.buf, r.len, NULL, &res), KN_AGAIN);
	assert_int_equal(res.accepted, 0);
	/* one chunk taken from shard 1: the next request goes there, whatever
	 * shard was next in turn */
	kn_chunk_unref(ring_take(&f, 1));
	assert_int_equal(kn_ingest(f.p, r.buf, r.len, NULL, &res), KN_OK);
	assert_int_equal(ring_count(&f, 1), 3);
	for (uint32_t s = 0; s < 3; s++) {
		struct kn_chunk *c;
		while ((c = ring_take(&f, s))) {
			assert_int_equal(c->shard, s);
			assert_int_equal(c->nspans, 30);
			for (uint32_t i = 0; i < c->nspans; i++) /* request order kept */
				assert_int_equal(c->spans[i].start_ns, 1000 + i);
			kn_chunk_unref(c);
		}
	}
	assert_int_equal(metric(&f, "kansatsu_receiver_accepted_spans_total",
				"receiver=\"otlp\",transport=\"http\""), 300);
	assert_int_equal(metric(&f, "kansatsu_receiver_refused_spans_total",
				"receiver=\"otlp\",transport=\"http\",reason=\"pipeline_full\""), 30);
	free(r.buf);
	teardown_rt(&f);
}

static void test_full_ring_refuses_all_or_nothing(void **st)
{
	(void)st;
	struct fixture f;
	setup_rt(&f, 2, 4, 0); /* a ring of 4 holds 3 */
	struct req r = make_req(20, 10, 0); /* spans on both shards */
	struct kn_ingest_result res;
	int ok = 0, again = 0;
	for (int i = 0; i < 6; i++) {
		int rc = kn_ingest(f.p, r.buf, r.len, NULL, &res);
		if (rc == KN_OK)
			ok++;
		else {
			assert_int_equal(rc, KN_AGAIN);
			assert_true(res.retry_after_ms >= 5 && res.retry_after_ms <= 5000);
			assert_int_equal(res.accepted, 0);
			again++;
		}
	}
	assert_int_equal(ok, 3);
	assert_int_equal(again, 3);
	/* Every accepted request put one chunk on each shard; refused ones none. */
	assert_int_equal(ring_count(&f, 0), 3);
	assert_int_equal(ring_count(&f, 1), 3);
	assert_int_equal(metric(&f, "kansatsu_receiver_refused_spans_total",
				"receiver=\"otlp\",transport=\"http\",reason=\"pipeline_full\""), 60);
	free(r.buf);
	teardown_rt(&f);
}

static void test_budget_refusal_charges_nothing(void **st)
{
	(void)st;
	struct fixture f;
	setup_rt(&f, 2, 64, 6000);
	struct req r = make_req(10, 10, 0);
	struct kn_ingest_result res;
	unsigned ok = 0;
	int rc;
	while ((rc = kn_ingest(f.p, r.buf, r.len, NULL, &res)) == KN_OK)
		ok++;
	assert_int_equal(rc, KN_AGAIN);
	assert_true(ok >= 1);
	size_t used = kn_budget_used();
	assert_true(used <= 6000);
	assert_int_equal(kn_ingest(f.p, r.buf, r.len, NULL, &res), KN_AGAIN);
	assert_int_equal(kn_budget_used(), used);
	assert_int_equal(ring_count(&f, 0) + ring_count(&f, 1), ok * 2);
	assert_true(metric(&f, "kansatsu_receiver_refused_spans_total",
			   "receiver=\"otlp\",transport=\"http\",reason=\"memory_limit\"") >= 20);
	free(r.buf);
	teardown_rt(&f); /* freeing the ring contents returns the budget to 0 */
}

/* A request that cannot fit is refused before the wire reader: its spans
 * are counted by a walk of the message levels (all of them, as the reader
 * would), nothing is charged, the delay is within the clamps; a malformed
 * request is still answered as invalid, not "retry later" for ever. */
static void test_refusal_before_reading(void **st)
{
	(void)st;
	struct fixture f;
	setup_rt(&f, 2, 64, 100); /* room for no request */
	struct req r = make_req(12, 6, 0);
	struct kn_ingest_result res;
	assert_int_equal(kn_ingest(f.p, r.buf, r.len, NULL, &res), KN_AGAIN);
	assert_int_equal(res.accepted, 0);
	assert_true(res.retry_after_ms >= 5 && res.retry_after_ms <= 5000);
	assert_int_equal(kn_budget_used(), 0);
	assert_int_equal(ring_count(&f, 0) + ring_count(&f, 1), 0);
	assert_int_equal(metric(&f, "kansatsu_receiver_refused_spans_total",
				"receiver=\"otlp\",transport=\"http\",reason=\"memory_limit\""), 12);
	const uint8_t garbage[] = {0x0a, 0x05, 0x12, 0x10, 0x01};
	assert_int_equal(kn_ingest(f.p, garbage, sizeof garbage, NULL, &res), KN_INVALID);
	free(r.buf);
	teardown_rt(&f);
}

static void test_invalid_and_rejected(void **st)
{
	(void)st;
	struct fixture f;
	setup_rt(&f, 2, 8, 0);
	struct kn_ingest_result res;
	const uint8_t garbage[] = {0x0a, 0x05, 0x12, 0x10, 0x01};
	assert_int_equal(kn_ingest(f.p, garbage, sizeof garbage, NULL, &res), KN_INVALID);
	assert_true(strlen(res.message) > 0);
	assert_int_equal(ring_count(&f, 0) + ring_count(&f, 1), 0);
	assert_int_equal(metric(&f, "kansatsu_receiver_refused_requests_total",
				"receiver=\"otlp\",transport=\"http\",reason=\"decode_error\""), 1);

	struct req r = make_req(10, 5, 5); /* spans 0 and 5 carry 8-byte trace ids */
	assert_int_equal(kn_ingest(f.p, r.buf, r.len, NULL, &res), KN_OK);
	assert_int_equal(res.accepted, 8);
	assert_int_equal(res.rejected, 2);
	assert_non_null(strstr(res.message, "trace_id"));
	assert_int_equal(metric(&f, "kansatsu_receiver_refused_spans_total",
				"receiver=\"otlp\",transport=\"http\",reason=\"invalid_span\""), 2);

	/* an empty request is valid and accepts nothing */
	assert_int_equal(kn_ingest(f.p, (const uint8_t *)"", 0, NULL, &res), KN_OK);
	assert_int_equal(res.accepted, 0);
	free(r.buf);
	teardown_rt(&f);
}

static void test_shutting_down(void **st)
{
	(void)st;
	struct fixture f;
	setup_rt(&f, 2, 8, 0);
	atomic_store(&f.rt.accepting, 0);
	struct req r = make_req(4, 4, 0);
	struct kn_ingest_result res;
	assert_int_equal(kn_ingest(f.p, r.buf, r.len, NULL, &res), KN_AGAIN);
	assert_int_equal(ring_count(&f, 0) + ring_count(&f, 1), 0);
	assert_int_equal(metric(&f, "kansatsu_receiver_refused_spans_total",
				"receiver=\"otlp\",transport=\"http\",reason=\"shutting_down\""), 4);
	free(r.buf);
	teardown_rt(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_onto_shards),
		cmocka_unit_test(test_whole_requests),
		cmocka_unit_test(test_full_ring_refuses_all_or_nothing),
		cmocka_unit_test(test_budget_refusal_charges_nothing),
		cmocka_unit_test(test_refusal_before_reading),
		cmocka_unit_test(test_invalid_and_rejected),
		cmocka_unit_test(test_shutting_down),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
