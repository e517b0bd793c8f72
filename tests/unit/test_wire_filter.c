/* SPDX-License-Identifier: Apache-2.0
 * collector/wire's span filter (kn_wire_filter): random requests
 * (kn_wire_gen) with random spans left out and random trace_state fields
 * appended to kept ones. The output must decode (protobuf-c), hold exactly
 * the kept spans in order with the appended bytes, and its span headers
 * (carried over by the filter, not indexed) must equal what a fresh,
 * checked index of the output finds, field by field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/wire/kn_wire.h"
#include "collector/wire/kn_wire_filter.h"
#include "collector/wire/kn_wire_gen.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "kn_test_chunks.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A chunk holding buf and its index (what a receiver makes). */
static struct kn_chunk *chunk_of(const uint8_t *buf, size_t len, const struct kn_wire_index *ix)
{
	struct kn_chunk *c = kn_chunk_alloc(ix->nspans, (uint32_t)len);
	assert_non_null(c);
	memcpy(c->data, buf, len);
	c->len = (uint32_t)len;
	memcpy(c->spans, ix->spans, (size_t)ix->nspans * sizeof *c->spans);
	c->nspans = ix->nspans;
	return c;
}

static void run_one(uint64_t seed, struct kn_wire_filter *f, uint64_t *rng, uint32_t keep_pct,
		    uint32_t *tried, uint32_t *emptied)
{
	struct kn_wire_gen_opts o = {.max_resources = 4, .max_scopes = 3, .max_spans = 5,
				     .max_attrs = 4, .max_depth = 2};
	kn_wire_gen_req *g = kn_wire_gen_request(seed, &o);
	assert_non_null(g);
	size_t len;
	uint8_t *buf = kn_wire_gen_pack(g, &len);
	assert_non_null(buf);
	struct kn_wire_index ix, ox;
	struct kn_err err;
	kn_wire_index_init(&ix);
	kn_wire_index_init(&ox);
	assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
	if (ix.nspans == 0) {
		kn_wire_index_free(&ix);
		kn_wire_index_free(&ox);
		free(buf);
		kn_wire_gen_free(g);
		return;
	}
	struct kn_chunk *c = chunk_of(buf, len, &ix);
	struct kn_wire_keep *keep = calloc(c->nspans, sizeof *keep);
	uint8_t arena[64 * 32];
	uint32_t narena = 0, nkept = 0;
	for (uint32_t i = 0; i < c->nspans; i++) {
		keep[i].keep = rng_next(rng) % 100 < keep_pct;
		nkept += keep[i].keep;
		if (keep[i].keep && rng_next(rng) % 2) {
			/* Span.trace_state = "k=v<i>" */
			char ts[16];
			int n = snprintf(ts, sizeof ts, "k=v%u", i);
			keep[i].add_off = narena;
			arena[narena++] = 0x1a;
			arena[narena++] = (uint8_t)n;
			memcpy(arena + narena, ts, (size_t)n);
			narena += (uint32_t)n;
			keep[i].add_len = narena - keep[i].add_off;
		}
	}
	struct kn_chunk *n = NULL;
	assert_int_equal(kn_wire_filter_run(f, c, keep, arena, &n, &err), KN_OK);
	(*tried)++;
	if (!nkept) {
		assert_null(n);
		(*emptied)++;
	} else {
		assert_non_null(n);
		assert_int_equal(n->nspans, nkept);
		/* the carried headers equal a fresh, checked index */
		assert_int_equal(kn_wire_index_request(&ox, n->data, n->len, &err), KN_OK);
		assert_int_equal(ox.nspans, nkept);
		assert_int_equal(ox.rejected, 0);
		for (uint32_t i = 0; i < nkept; i++)
			kn_test_assert_hdr_equal(&n->spans[i], &ox.spans[i]);
		/* the kept spans, in order, with the appended bytes */
		for (uint32_t i = 0, j = 0; i < c->nspans; i++) {
			if (!keep[i].keep)
				continue;
			const struct kn_span_hdr *a = &c->spans[i], *b = &n->spans[j++];
			assert_int_equal(b->len, a->len + keep[i].add_len);
			assert_memory_equal(n->data + b->off, c->data + a->off, a->len);
			if (keep[i].add_len)
				assert_memory_equal(n->data + b->off + a->len, arena + keep[i].add_off,
						    keep[i].add_len);
		}
		Req *out = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
			NULL, n->len, n->data);
		assert_non_null(out);
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(out, NULL);
		kn_chunk_unref(n);
	}
	free(keep);
	kn_chunk_unref(c);
	kn_wire_index_free(&ix);
	kn_wire_index_free(&ox);
	free(buf);
	kn_wire_gen_free(g);
}

static void test_random_keep(void **st)
{
	(void)st;
	struct kn_wire_filter f;
	kn_wire_filter_init(&f);
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	uint32_t tried = 0, emptied = 0;
	for (uint64_t seed = 1; seed <= 600; seed++)
		run_one(seed, &f, &rng, seed % 3 == 0 ? 20 : 70, &tried, &emptied);
	/* the sweep covered both outcomes */
	assert_true(tried > 400);
	assert_true(emptied > 0 && emptied < tried);
	kn_wire_filter_free(&f);
}

/* Keeping every span with nothing appended copies the bytes exactly. */
static void test_keep_all_is_identity(void **st)
{
	(void)st;
	struct kn_wire_gen_opts o = {.max_resources = 3, .max_scopes = 2, .max_spans = 4,
				     .max_attrs = 3, .max_depth = 2};
	struct kn_wire_filter f;
	kn_wire_filter_init(&f);
	for (uint64_t seed = 1; seed <= 100; seed++) {
		kn_wire_gen_req *g = kn_wire_gen_request(seed, &o);
		size_t len;
		uint8_t *buf = kn_wire_gen_pack(g, &len);
		struct kn_wire_index ix;
		struct kn_err err;
		kn_wire_index_init(&ix);
		assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
		if (ix.nspans) {
			struct kn_chunk *c = chunk_of(buf, len, &ix);
			struct kn_wire_keep *keep = calloc(c->nspans, sizeof *keep);
			for (uint32_t i = 0; i < c->nspans; i++)
				keep[i].keep = 1;
			struct kn_chunk *n = NULL;
			assert_int_equal(kn_wire_filter_run(&f, c, keep, NULL, &n, &err), KN_OK);
			assert_non_null(n);
			assert_int_equal(n->len, c->len);
			assert_memory_equal(n->data, c->data, c->len);
			for (uint32_t i = 0; i < c->nspans; i++)
				kn_test_assert_hdr_equal(&n->spans[i], &c->spans[i]);
			kn_chunk_unref(n);
			kn_chunk_unref(c);
			free(keep);
		}
		kn_wire_index_free(&ix);
		free(buf);
		kn_wire_gen_free(g);
	}
	kn_wire_filter_free(&f);
}

/* Headers that do not match the bytes are an error, not a bad chunk. */
static void test_headers_disagree(void **st)
{
	(void)st;
	struct kn_wire_gen_opts o = {.max_resources = 2, .max_scopes = 2, .max_spans = 4,
				     .max_attrs = 2, .max_depth = 1};
	struct kn_wire_filter f;
	kn_wire_filter_init(&f);
	int checked = 0;
	for (uint64_t seed = 1; seed <= 50 && !checked; seed++) {
		kn_wire_gen_req *g = kn_wire_gen_request(seed, &o);
		size_t len;
		uint8_t *buf = kn_wire_gen_pack(g, &len);
		struct kn_wire_index ix;
		struct kn_err err;
		kn_wire_index_init(&ix);
		assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
		if (ix.nspans >= 2) {
			struct kn_chunk *c = chunk_of(buf, len, &ix);
			c->spans[1].off += 1;
			struct kn_wire_keep *keep = calloc(c->nspans, sizeof *keep);
			keep[0].keep = 1;
			struct kn_chunk *n = NULL;
			assert_int_equal(kn_wire_filter_run(&f, c, keep, NULL, &n, &err), KN_ERR);
			assert_null(n);
			assert_non_null(strstr(err.msg, "disagree"));
			kn_chunk_unref(c);
			free(keep);
			checked = 1;
		}
		kn_wire_index_free(&ix);
		free(buf);
		kn_wire_gen_free(g);
	}
	assert_true(checked);
	kn_wire_filter_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_keep),
		cmocka_unit_test(test_keep_all_is_identity),
		cmocka_unit_test(test_headers_disagree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
