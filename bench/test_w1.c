/* SPDX-License-Identifier: Apache-2.0
 * test_w1: the W1 workload is what bench/README.md says it is. Decodes
 * generated requests with protobuf-c and checks the shape (resources,
 * traces, parents, attribute counts, ids), determinism per (seed, index),
 * the measured size and event / error rates, that the zero-copy wire
 * reader indexes every span, and that kn_w1_patch (loadgen --pool --stamp)
 * re-stamps a body's ids and times and nothing else. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "collector/wire/kn_wire.h"
#include "kn_w1.h"
#include "kn_w1_patch.h"

#define UNPACK opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack
#define FREE opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked

static uint8_t *pack(struct kn_w1 *w, uint64_t idx, size_t *len, struct kn_w1_stats *st)
{
	uint8_t *b = kn_w1_pack(w, idx, len, st);
	assert_non_null(b);
	return b;
}

static void test_deterministic(void **state)
{
	(void)state;
	struct kn_w1 *a = kn_w1_new(7), *b = kn_w1_new(7), *c = kn_w1_new(8);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	size_t la, lb, la1, lc;
	uint8_t *ba = pack(a, 3, &la, NULL);
	free(kn_w1_pack(b, 0, &lb, NULL));   /* b's history must not matter */
	uint8_t *bb = pack(b, 3, &lb, NULL);
	uint8_t *ba1 = pack(a, 4, &la1, NULL);
	uint8_t *bc = pack(c, 3, &lc, NULL);
	assert_int_equal(la, lb);
	assert_memory_equal(ba, bb, la);
	assert_true(la != la1 || memcmp(ba, ba1, la) != 0);
	assert_true(la != lc || memcmp(ba, bc, la) != 0);
	free(ba);
	free(bb);
	free(ba1);
	free(bc);
	kn_w1_free(a);
	kn_w1_free(b);
	kn_w1_free(c);
}

static const char *attr_str(Opentelemetry__Proto__Common__V1__KeyValue **kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i]->key, key) == 0 && kv[i]->value &&
		    kv[i]->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
			return kv[i]->value->string_value;
	return NULL;
}

static void test_shape(void **state)
{
	(void)state;
	struct kn_w1 *w = kn_w1_new(1);
	assert_non_null(w);
	struct kn_w1_stats st;
	size_t len;
	uint8_t *buf = pack(w, 11, &len, &st);
	assert_int_equal(st.bytes, len);
	assert_int_equal(st.spans, KN_W1_SPANS);
	assert_int_equal(st.resources, KN_W1_RESOURCES);
	assert_int_equal(st.traces, (KN_W1_SPANS + KN_W1_TRACE_SPANS - 1) / KN_W1_TRACE_SPANS);

	kn_w1_req *m = UNPACK(NULL, len, buf);
	assert_non_null(m);
	assert_int_equal(m->n_resource_spans, KN_W1_RESOURCES);
	uint32_t spans = 0, events = 0, errors = 0, roots = 0;
	const char *services[KN_W1_RESOURCES];
	for (size_t r = 0; r < m->n_resource_spans; r++) {
		Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = m->resource_spans[r];
		assert_non_null(rs->resource);
		assert_int_equal(rs->resource->n_attributes, KN_W1_RESOURCE_ATTRS);
		static const char *const keys[] = { "service.name", "service.version", "host.name",
			"deployment.environment.name", "telemetry.sdk.language" };
		for (size_t k = 0; k < 5; k++)
			assert_non_null(attr_str(rs->resource->attributes, rs->resource->n_attributes, keys[k]));
		services[r] = attr_str(rs->resource->attributes, rs->resource->n_attributes, "service.name");
		for (size_t q = 0; q < r; q++)
			assert_string_not_equal(services[q], services[r]);
		assert_int_equal(rs->n_scope_spans, 1);
		Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[0];
		const uint8_t *root_id = NULL, *trace_id = NULL;
		for (size_t i = 0; i < ss->n_spans; i++) {
			Opentelemetry__Proto__Trace__V1__Span *s = ss->spans[i];
			assert_int_equal(s->trace_id.len, 16);
			assert_int_equal(s->span_id.len, 8);
			assert_int_equal(s->n_attributes, KN_W1_SPAN_ATTRS);
			assert_true(s->end_time_unix_nano > s->start_time_unix_nano);
			if (s->parent_span_id.len == 0) {
				assert_int_equal(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
				assert_non_null(attr_str(s->attributes, s->n_attributes, "http.request.method"));
				assert_non_null(attr_str(s->attributes, s->n_attributes, "url.path"));
				root_id = s->span_id.data;
				trace_id = s->trace_id.data;
				roots++;
			} else {
				/* a child follows its root in the same trace */
				assert_non_null(root_id);
				assert_int_equal(s->parent_span_id.len, 8);
				assert_memory_equal(s->parent_span_id.data, root_id, 8);
				assert_memory_equal(s->trace_id.data, trace_id, 16);
				assert_int_equal(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
			}
			events += s->n_events > 0;
			errors += s->status && s->status->code ==
				OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
			spans++;
		}
	}
	assert_int_equal(spans, KN_W1_SPANS);
	assert_int_equal(roots, st.traces);
	assert_int_equal(events, st.events);
	assert_int_equal(errors, st.errors);
	FREE(m, NULL);
	free(buf);
	kn_w1_free(w);
}

/* Over 100 requests (51,200 spans) the figures W1 promises hold. */
static void test_rates_and_size(void **state)
{
	(void)state;
	struct kn_w1 *w = kn_w1_new(1);
	assert_non_null(w);
	uint64_t bytes = 0, spans = 0, events = 0, errors = 0;
	for (uint64_t i = 0; i < 100; i++) {
		struct kn_w1_stats st;
		size_t len;
		free(pack(w, i, &len, &st));
		bytes += len;
		spans += st.spans;
		events += st.events;
		errors += st.errors;
	}
	double per_span = (double)bytes / (double)spans;
	assert_true(per_span > 300.0 && per_span < 400.0);
	assert_true(events * 100 > spans * 8 && events * 100 < spans * 12);
	assert_true(errors * 1000 > spans * 5 && errors * 1000 < spans * 15);
	kn_w1_free(w);
}

static void test_wire_reader_accepts(void **state)
{
	(void)state;
	struct kn_w1 *w = kn_w1_new(3);
	struct kn_wire_index ix;
	struct kn_err err;
	kn_wire_index_init(&ix);
	assert_non_null(w);
	for (uint64_t i = 0; i < 5; i++) {
		size_t len;
		uint8_t *buf = pack(w, i, &len, NULL);
		assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
		assert_int_equal(ix.nspans, KN_W1_SPANS);
		assert_int_equal(ix.rejected, 0);
		assert_int_equal(ix.nres, KN_W1_RESOURCES);
		free(buf);
	}
	kn_wire_index_free(&ix);
	kn_w1_free(w);
}

typedef Opentelemetry__Proto__Trace__V1__Span W1Span;

/* The spans of a decoded request, in order (at most cap). */
static size_t spans_of(Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r,
		       W1Span **out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_resource_spans; i++)
		for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
			for (size_t k = 0; k < r->resource_spans[i]->scope_spans[j]->n_spans && n < cap; k++)
				out[n++] = r->resource_spans[i]->scope_spans[j]->spans[k];
	return n;
}

static void xor_eq(const ProtobufCBinaryData *got, const ProtobufCBinaryData *orig, const uint8_t key[16])
{
	assert_int_equal(got->len, 16);
	assert_int_equal(orig->len, 16);
	for (int b = 0; b < 16; b++)
		assert_int_equal(got->data[b], orig->data[b] ^ key[b]);
}

static void test_patch(void **state)
{
	(void)state;
	struct kn_w1_shape sh;
	kn_w1_shape_default(&sh);
	sh.async_pct = 40;   /* links, and events on 10% of spans */
	struct kn_w1 *w = kn_w1_new_shape(11, &sh);
	assert_non_null(w);
	const uint64_t end0 = 1700000000000000000ull;
	kn_w1_set_end(w, end0);
	size_t len;
	uint8_t *orig = pack(w, 2, &len, NULL);
	uint8_t *body = malloc(len);
	assert_non_null(body);
	memcpy(body, orig, len);
	struct kn_w1_patch p;
	assert_int_equal(kn_w1_patch_init(&p, body, len), 0);
	assert_int_equal(p.end_ns, end0);   /* every root ends at the end set */
	const uint8_t k1[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	const uint8_t k2[16] = {0xff, 0, 0x80, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42};
	const uint8_t zero[16] = {0};
	const uint64_t end1 = end0 + 123456789, end2 = end0 - 1000;
	kn_w1_patch_apply(&p, body, k1, end1);
	kn_w1_patch_apply(&p, body, k2, end2); /* relative to the original, not to k1 */
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *ro =
		UNPACK(NULL, len, orig), *rp = UNPACK(NULL, len, body);
	assert_non_null(ro);
	assert_non_null(rp);
	static W1Span *so[KN_W1_SPANS], *sp[KN_W1_SPANS];
	size_t n = spans_of(ro, so, KN_W1_SPANS);
	assert_int_equal(spans_of(rp, sp, KN_W1_SPANS), n);
	assert_int_equal(n, KN_W1_SPANS);
	size_t links = 0, events = 0;
	for (size_t i = 0; i < n; i++) {
		xor_eq(&sp[i]->trace_id, &so[i]->trace_id, k2);
		assert_memory_equal(sp[i]->span_id.data, so[i]->span_id.data, 8);
		assert_int_equal(sp[i]->start_time_unix_nano, so[i]->start_time_unix_nano - 1000);
		assert_int_equal(sp[i]->end_time_unix_nano, so[i]->end_time_unix_nano - 1000);
		assert_string_equal(sp[i]->name, so[i]->name);
		assert_int_equal(sp[i]->n_attributes, so[i]->n_attributes);
		assert_int_equal(sp[i]->n_events, so[i]->n_events);
		for (size_t e = 0; e < sp[i]->n_events; e++, events++)
			assert_int_equal(sp[i]->events[e]->time_unix_nano, so[i]->events[e]->time_unix_nano - 1000);
		assert_int_equal(sp[i]->n_links, so[i]->n_links);
		for (size_t l = 0; l < sp[i]->n_links; l++, links++)
			xor_eq(&sp[i]->links[l]->trace_id, &so[i]->links[l]->trace_id, k2);
		if (so[i]->parent_span_id.len == 0)
			assert_true(sp[i]->end_time_unix_nano <= end2);
	}
	assert_true(links > 0);
	assert_true(events > 0);
	FREE(ro, NULL);
	FREE(rp, NULL);
	/* back to the original ids and times: the original bytes */
	kn_w1_patch_apply(&p, body, zero, end0);
	assert_memory_equal(body, orig, len);
	kn_w1_patch_free(&p);
	/* a broken body is refused */
	assert_int_equal(kn_w1_patch_init(&p, orig, len - 1), -1);
	free(body);
	free(orig);
	kn_w1_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_shape),
		cmocka_unit_test(test_rates_and_size),
		cmocka_unit_test(test_wire_reader_accepts),
		cmocka_unit_test(test_patch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
