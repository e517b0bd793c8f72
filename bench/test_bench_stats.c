/* SPDX-License-Identifier: Apache-2.0
 * Unit tests of the bench statistics: kn_hist (log-linear histogram) and
 * kn_hll (HyperLogLog), plus the shape options of the W1 generator that
 * loadgen relies on (journeys carry a link to a PRODUCER span, depth and
 * attribute counts are honoured). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kn_hist.h"
#include "kn_hll.h"
#include "kn_w1.h"

static void test_hist_buckets(void **state)
{
	(void)state;
	/* every bucket's low bound maps back to it, and buckets are ordered */
	for (uint32_t i = 0; i < KN_HIST_BUCKETS; i++) {
		assert_int_equal(kn_hist_bucket(kn_hist_bucket_low(i)), i);
		if (i)
			assert_true(kn_hist_bucket_low(i) > kn_hist_bucket_low(i - 1));
	}
	assert_int_equal(kn_hist_bucket(UINT64_MAX), KN_HIST_BUCKETS - 1);
	/* relative width of a bucket is at most 1/32 */
	for (uint64_t v = 40; v < (1ull << 60); v = v * 3 + 7) {
		uint32_t b = kn_hist_bucket(v);
		uint64_t lo = kn_hist_bucket_low(b), hi = kn_hist_bucket_low(b + 1);
		assert_true(lo <= v && v < hi);
		assert_true((hi - lo) * 32 <= lo);
	}
}

static void test_hist_quantiles(void **state)
{
	(void)state;
	struct kn_hist *h = malloc(sizeof *h), *m = malloc(sizeof *m);
	assert_non_null(h);
	assert_non_null(m);
	kn_hist_init(h);
	kn_hist_init(m);
	assert_int_equal(kn_hist_quantile(h, 0.5), 0);
	/* 1..100000 us: p50 ~ 50 ms, p99 ~ 99 ms, within the bucket error */
	for (uint64_t i = 1; i <= 100000; i++)
		kn_hist_add(i % 2 ? h : m, i * 1000);
	kn_hist_merge(h, m);
	assert_int_equal(kn_hist_count(h), 100000);
	double p50 = (double)kn_hist_quantile(h, 0.5), p99 = (double)kn_hist_quantile(h, 0.99);
	assert_true(p50 > 50e6 * 0.96 && p50 < 50e6 * 1.04);
	assert_true(p99 > 99e6 * 0.96 && p99 < 99e6 * 1.04);
	assert_true(kn_hist_quantile(h, 1.0) <= 100000000);
	free(h);
	free(m);
}

static void test_hll(void **state)
{
	(void)state;
	struct kn_hll *a = malloc(sizeof *a), *b = malloc(sizeof *b);
	assert_non_null(a);
	assert_non_null(b);
	kn_hll_init(a);
	kn_hll_init(b);
	assert_true(kn_hll_estimate(a) < 0.5);
	const uint32_t sizes[] = {10, 1000, 100000};
	uint32_t done = 0;
	for (size_t s = 0; s < 3; s++) {
		for (; done < sizes[s]; done++) {
			uint8_t id[16] = {0};
			memcpy(id, &done, sizeof done);
			/* every id twice, across two counters: duplicates do not count */
			kn_hll_add(done % 2 ? a : b, kn_hll_hash16(id));
			kn_hll_add(a, kn_hll_hash16(id));
		}
		kn_hll_merge(a, b);
		double e = kn_hll_estimate(a);
		assert_true(e > sizes[s] * 0.93 && e < sizes[s] * 1.07);
	}
	free(a);
	free(b);
}

static void test_shape_journeys(void **state)
{
	(void)state;
	struct kn_w1_shape sh;
	kn_w1_shape_default(&sh);
	sh.spans = 400;
	sh.trace_spans = 4;
	sh.depth = 3;
	sh.span_attrs = 12;
	sh.attr_bytes = 40;
	sh.async_pct = 100;
	struct kn_w1 *w = kn_w1_new_shape(7, &sh);
	assert_non_null(w);
	kn_w1_set_end(w, 1800000000000000000ull);
	struct kn_w1_stats st;
	const kn_w1_req *req = kn_w1_build(w, 3, &st);
	assert_non_null(req);
	assert_int_equal(st.spans, 400);
	assert_int_equal(st.traces, 100);
	assert_int_equal(st.journeys, 50);   /* every other trace is a consumer */
	uint32_t producers = 0, consumers = 0, linked = 0, deep = 0, roots = 0;
	for (size_t r = 0; r < req->n_resource_spans; r++) {
		const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = req->resource_spans[r]->scope_spans[0];
		for (size_t i = 0; i < ss->n_spans; i++) {
			const Opentelemetry__Proto__Trace__V1__Span *s = ss->spans[i];
			assert_int_equal(s->n_attributes, 12);
			assert_int_equal(strlen(s->attributes[11]->value->string_value), 40);
			if (s->parent_span_id.len == 0) {
				roots++;
				assert_int_equal(s->end_time_unix_nano, 1800000000000000000ull);
			}
			if (s->kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_PRODUCER)
				producers++;
			if (s->kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER) {
				consumers++;
				assert_int_equal(s->n_links, 1);
				/* the link names a PRODUCER span of the request */
				const Opentelemetry__Proto__Trace__V1__Span__Link *l = s->links[0];
				for (size_t r2 = 0; r2 < req->n_resource_spans; r2++) {
					const Opentelemetry__Proto__Trace__V1__ScopeSpans *s2 =
						req->resource_spans[r2]->scope_spans[0];
					for (size_t j = 0; j < s2->n_spans; j++)
						if (memcmp(s2->spans[j]->span_id.data, l->span_id.data, 8) == 0 &&
						    memcmp(s2->spans[j]->trace_id.data, l->trace_id.data, 16) == 0 &&
						    s2->spans[j]->kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_PRODUCER)
							linked++;
				}
			}
			/* depth 3: some span's parent is not the root */
			if (s->parent_span_id.len == 8 && i > 0 && ss->spans[i - 1]->parent_span_id.len == 8 &&
			    memcmp(s->parent_span_id.data, ss->spans[i - 1]->span_id.data, 8) == 0)
				deep++;
		}
	}
	assert_int_equal(roots, 100);
	assert_int_equal(producers, 50);
	assert_int_equal(consumers, 50);
	assert_int_equal(linked, 50);
	assert_true(deep > 0);
	kn_w1_free(w);
}

static void test_shape_check(void **state)
{
	(void)state;
	struct kn_w1_shape sh;
	char msg[128];
	kn_w1_shape_default(&sh);
	assert_int_equal(kn_w1_shape_check(&sh, msg, sizeof msg), 0);
	sh.resources = 20;
	assert_int_equal(kn_w1_shape_check(&sh, msg, sizeof msg), -1);
	assert_non_null(strstr(msg, "resources"));
	assert_null(kn_w1_new_shape(1, &sh));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_buckets),
		cmocka_unit_test(test_hist_quantiles),
		cmocka_unit_test(test_hll),
		cmocka_unit_test(test_shape_journeys),
		cmocka_unit_test(test_shape_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
