/* SPDX-License-Identifier: Apache-2.0
 * The tail sampler's trace store and framing: a trace's spans cut out of a
 * chunk that mixes traces, resources and scopes unpack with protobuf-c as
 * exactly that trace's spans with their resources; parts appended from
 * several chunks; aggregates; deadlines (decision_wait, root grace, clock
 * clamping, arrival order); table growth and removal against a model;
 * memory accounting; (Resource, scope) groups held once per store and
 * written back verbatim (absent vs empty fields, schema_urls, parts of one
 * group sharing a frame; a random model of appends and removals); and the
 * bytes held per buffered span for W1-like traces (printed for the issue
 * note and held to encoded size + 64). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/wire/kn_wire.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "processors/tail_sampling/kn_tail_frame.h"
#include "processors/tail_sampling/kn_tail_store.h"
#include "kn_test_traces.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;

/* The request as one chunk (all spans on shard 0 of 1). */
static struct kn_chunk *chunk_of(const struct kn_test_span *sp, size_t n, uint64_t accepted, size_t *enc)
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
	kn_wire_index_free(&ix);
	free(buf);
	if (enc)
		*enc = len;
	return c;
}

static uint64_t last_part; /* buffer bytes of add()'s last part */

/* Appends trace number tr's spans of c to the store (opening it if new).
 * A new trace's view must be byte for byte what kn_tail_frame_write makes
 * of the same spans (the framing the store replaced). */
static uint32_t add(struct kn_tail_store *s, struct kn_tail_frame *f, struct kn_chunk *c,
		    uint32_t tr, uint64_t now)
{
	uint8_t id[16];
	uint32_t idx[4096], g[8192], n = 0;
	kn_test_trace_id(id, tr);
	for (uint32_t i = 0; i < c->nspans; i++)
		if (memcmp(c->spans[i].trace_id, id, 16) == 0)
			idx[n++] = i;
	assert_true(n > 0);
	assert_int_equal(kn_tail_frame_index(f, c->data, c->len), 0);
	assert_int_equal(kn_tail_frame_check(f, c), 0);
	uint64_t size = kn_tail_frame_size(f, c, idx, n, g);
	assert_true(size != UINT64_MAX);
	uint64_t part = kn_tail_store_part_bytes(c, idx, n);
	assert_true(part != UINT64_MAX && part < size + 8 * n);
	uint32_t t = kn_tail_store_find(s, id);
	int opened = t == KN_TAIL_NONE;
	if (opened)
		t = kn_tail_store_open(s, id, now);
	assert_int_not_equal(t, KN_TAIL_NONE);
	uint64_t before = kn_tail_store_trace_bytes(s, t);
	assert_int_equal(kn_tail_store_append(s, t, f, c, idx, n, part, size, now), KN_OK);
	last_part = part;
	/* the view grows by exactly what the old framing wrote */
	assert_int_equal(kn_tail_store_trace_bytes(s, t), before + size);
	if (opened) {
		uint8_t *want = malloc(size);
		assert_non_null(want);
		assert_ptr_equal(kn_tail_frame_write(f, c, idx, n, g, want), want + size);
		struct kn_tail_trace v;
		assert_int_equal(kn_tail_store_view(s, t, &v), KN_OK);
		assert_int_equal(v.len, size);
		assert_memory_equal(v.data, want, size);
		free(want);
	}
	return t;
}

/* Unpacks trace t's buffer; checks every span is of trace tr and counts. */
static void check_buffer(struct kn_tail_store *s, uint32_t t, uint32_t tr, uint32_t nspans,
			 uint32_t nrs)
{
	struct kn_tail_trace v;
	assert_int_equal(kn_tail_store_view(s, t, &v), KN_OK);
	assert_int_equal(v.len, v.bytes);
	assert_int_equal(kn_tail_store_trace_bytes(s, t), v.len);
	Req *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
		NULL, v.len, v.data);
	assert_non_null(r);
	uint8_t id[16];
	kn_test_trace_id(id, tr);
	uint32_t got = 0;
	if (nrs != 0xffffffffu) /* all ones: any number */
		assert_int_equal(r->n_resource_spans, nrs);
	for (size_t i = 0; i < r->n_resource_spans; i++) {
		assert_non_null(r->resource_spans[i]->resource);
		assert_string_equal(r->resource_spans[i]->resource->attributes[0]->key, "service.name");
		for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
			SS *x = r->resource_spans[i]->scope_spans[j];
			assert_non_null(x->scope);
			assert_true(strncmp(x->scope->name, "lib-", 4) == 0);
			for (size_t k = 0; k < x->n_spans; k++) {
				assert_int_equal(x->spans[k]->trace_id.len, 16);
				assert_memory_equal(x->spans[k]->trace_id.data, id, 16);
				got++;
			}
		}
	}
	assert_int_equal(got, nspans);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
}

static const struct kn_tail_store_cfg cfg_30s = {.decision_wait_ns = 30000, .root_wait_ns = 0};

static void test_cut_and_aggregates(void **st)
{
	(void)st;
	/* three traces interleaved over two resources and three scopes */
	struct kn_test_span sp[] = {
		{.trace = 1, .span = 1, .parent = 0, .res = 0, .scope = 0, .start = 100, .end = 900},
		{.trace = 2, .span = 2, .parent = 9, .res = 0, .scope = 0, .start = 50, .end = 60},
		{.trace = 1, .span = 3, .parent = 1, .res = 0, .scope = 1, .start = 90, .end = 300, .error = 1},
		{.trace = 3, .span = 4, .parent = 0, .res = 1, .scope = 0, .start = 1, .end = 2},
		{.trace = 1, .span = 5, .parent = 1, .res = 1, .scope = 0, .start = 200, .end = 950, .nattrs = 3},
		{.trace = 2, .span = 6, .parent = 9, .res = 1, .scope = 2, .start = 55, .end = 70, .error = 1},
	};
	struct kn_chunk *c = chunk_of(sp, 6, 1000, NULL);
	struct kn_tail_store *s = kn_tail_store_create(&cfg_30s);
	struct kn_tail_frame f = {0};
	assert_non_null(s);
	uint32_t t1 = add(s, &f, c, 1, 1000);
	uint32_t t2 = add(s, &f, c, 2, 1000);
	uint32_t t3 = add(s, &f, c, 3, 1000);
	kn_chunk_unref(c);   /* the store holds copies only */
	assert_int_equal(kn_tail_store_count(s), 3);
	assert_int_equal(kn_tail_store_spans(s), 6);
	struct kn_tail_trace v;
	kn_tail_store_view(s, t1, &v);
	assert_int_equal(v.nspans, 3);
	assert_int_equal(v.nerror, 1);
	assert_int_equal(v.min_start_ns, 90);
	assert_int_equal(v.max_end_ns, 950);
	assert_int_equal(v.first_seen_ns, 1000);
	assert_int_equal(v.root_seen_ns, 1000);
	check_buffer(s, t1, 1, 3, 2);
	kn_tail_store_view(s, t2, &v);
	assert_int_equal(v.nspans, 2);
	assert_int_equal(v.nerror, 1);
	assert_int_equal(v.root_seen_ns, 0);   /* no root yet */
	check_buffer(s, t2, 2, 2, 2);
	check_buffer(s, t3, 3, 1, 1);

	/* a later chunk adds to trace 2: a second part, and its root */
	struct kn_test_span more[] = {
		{.trace = 2, .span = 9, .parent = 0, .res = 5, .scope = 0, .start = 40, .end = 80},
		{.trace = 2, .span = 7, .parent = 9, .res = 5, .scope = 0, .start = 41, .end = 42},
	};
	c = chunk_of(more, 2, 2000, NULL);
	assert_int_equal(add(s, &f, c, 2, 2000), t2);
	kn_chunk_unref(c);
	kn_tail_store_view(s, t2, &v);
	assert_int_equal(v.nspans, 4);
	assert_int_equal(v.min_start_ns, 40);
	assert_int_equal(v.max_end_ns, 80);
	assert_int_equal(v.first_seen_ns, 1000);
	assert_int_equal(v.root_seen_ns, 2000);
	check_buffer(s, t2, 2, 4, 3);
	assert_int_equal(kn_tail_store_spans(s), 8);

	size_t b = kn_tail_store_bytes(s);
	kn_tail_store_remove(s, t1);
	assert_true(kn_tail_store_bytes(s) < b);
	assert_int_equal(kn_tail_store_count(s), 2);
	assert_int_equal(kn_tail_store_spans(s), 5);
	uint8_t id[16];
	kn_test_trace_id(id, 1);
	assert_int_equal(kn_tail_store_find(s, id), KN_TAIL_NONE);
	kn_tail_frame_free(&f);
	kn_tail_store_destroy(s);
	kn_tail_store_destroy(NULL);
}

static void test_deadlines(void **st)
{
	(void)st;
	struct kn_tail_store_cfg cfg = {.decision_wait_ns = 1000, .root_wait_ns = 100};
	struct kn_tail_store *s = kn_tail_store_create(&cfg);
	struct kn_tail_frame f = {0};
	assert_non_null(s);
	assert_int_equal(kn_tail_store_next_deadline(s), 0);
	assert_int_equal(kn_tail_store_due(s, UINT64_MAX), KN_TAIL_NONE);
	/* trace 1 at t=10 without root, trace 2 at t=20 without root */
	struct kn_test_span a = {.trace = 1, .span = 2, .parent = 1, .res = 0};
	struct kn_test_span b = {.trace = 2, .span = 3, .parent = 1, .res = 0};
	struct kn_chunk *c = chunk_of(&a, 1, 10, NULL);
	uint32_t t1 = add(s, &f, c, 1, 10);
	kn_chunk_unref(c);
	c = chunk_of(&b, 1, 20, NULL);
	uint32_t t2 = add(s, &f, c, 2, 20);
	kn_chunk_unref(c);
	assert_int_equal(kn_tail_store_oldest(s), t1);
	assert_int_equal(kn_tail_store_next_deadline(s), 1010);
	assert_int_equal(kn_tail_store_due(s, 1009), KN_TAIL_NONE);
	assert_int_equal(kn_tail_store_due(s, 1010), t1);
	/* trace 2's root arrives at t=500: due at 600, before trace 1 */
	struct kn_test_span broot = {.trace = 2, .span = 1, .parent = 0, .res = 0};
	c = chunk_of(&broot, 1, 500, NULL);
	add(s, &f, c, 2, 500);
	kn_chunk_unref(c);
	assert_int_equal(kn_tail_store_next_deadline(s), 600);
	assert_int_equal(kn_tail_store_due(s, 599), KN_TAIL_NONE);
	assert_int_equal(kn_tail_store_due(s, 600), t2);
	kn_tail_store_remove(s, t2);
	assert_int_equal(kn_tail_store_next_deadline(s), 1010);
	/* a time going backwards is clamped: trace 3 at "5" counts as 500 */
	struct kn_test_span x = {.trace = 3, .span = 1, .parent = 0, .res = 0};
	c = chunk_of(&x, 1, 5, NULL);
	uint32_t t3 = add(s, &f, c, 3, 5);
	kn_chunk_unref(c);
	struct kn_tail_trace v;
	kn_tail_store_view(s, t3, &v);
	assert_int_equal(v.first_seen_ns, 500);
	assert_int_equal(v.root_seen_ns, 500);
	assert_int_equal(kn_tail_store_next_deadline(s), 600);
	kn_tail_store_remove(s, t1);
	kn_tail_store_remove(s, t3);
	assert_int_equal(kn_tail_store_next_deadline(s), 0);
	assert_int_equal(kn_tail_store_oldest(s), KN_TAIL_NONE);
	kn_tail_frame_free(&f);
	kn_tail_store_destroy(s);
}

/* Many traces in and out in random order, against a model of which are live. */
static void test_table_model(void **st)
{
	(void)st;
	enum { N = 6000 };
	struct kn_tail_store *s = kn_tail_store_create(&cfg_30s);
	struct kn_tail_frame f = {0};
	assert_non_null(s);
	static uint32_t handle[N];
	static uint8_t live[N];
	uint64_t x = 7;
	struct kn_test_span one = {.span = 1, .res = 0};
	uint32_t nlive = 0;
	for (uint32_t op = 0; op < 4 * N; op++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t k = (uint32_t)(x >> 33) % N;
		uint8_t id[16];
		kn_test_trace_id(id, k);
		uint32_t t = kn_tail_store_find(s, id);
		assert_int_equal(t != KN_TAIL_NONE, live[k]);
		if (live[k]) {
			assert_int_equal(t, handle[k]);
			kn_tail_store_remove(s, t);
			live[k] = 0;
			nlive--;
		} else {
			one.trace = k;
			struct kn_chunk *c = chunk_of(&one, 1, op, NULL);
			handle[k] = add(s, &f, c, k, op);
			kn_chunk_unref(c);
			live[k] = 1;
			nlive++;
		}
		assert_int_equal(kn_tail_store_count(s), nlive);
	}
	/* the arrival list is in first-seen order */
	uint64_t last = 0;
	uint32_t t;
	while ((t = kn_tail_store_oldest(s)) != KN_TAIL_NONE) {
		struct kn_tail_trace v;
		kn_tail_store_view(s, t, &v);
		assert_true(v.first_seen_ns >= last);
		last = v.first_seen_ns;
		kn_tail_store_remove(s, t);
	}
	assert_int_equal(kn_tail_store_count(s), 0);
	assert_int_equal(kn_tail_store_spans(s), 0);
	kn_tail_frame_free(&f);
	kn_tail_store_destroy(s);
}

static void test_would(void **st)
{
	(void)st;
	struct kn_tail_store *s = kn_tail_store_create(&cfg_30s);
	struct kn_tail_frame f = {0};
	assert_non_null(s);
	size_t empty = kn_tail_store_bytes(s);
	assert_true(kn_tail_store_would(s, KN_TAIL_NONE, 500) >= empty + 500);
	struct kn_test_span a = {.trace = 1, .span = 1, .res = 0, .nattrs = 4};
	struct kn_chunk *c = chunk_of(&a, 1, 1, NULL);
	uint32_t t = add(s, &f, c, 1, 1);
	uint64_t part = last_part;
	/* the first part is sized exactly; its group is held once besides */
	size_t one = kn_tail_store_bytes(s);
	assert_int_equal(kn_tail_store_groups(s), 1);
	assert_true(one > empty + part);
	/* a small second part grows the buffer by half, a large one to its need */
	assert_int_equal(kn_tail_store_would(s, t, 10), one + part / 2);
	size_t w = kn_tail_store_would(s, t, part);
	assert_int_equal(w, one + part);
	add(s, &f, c, 1, 2); /* the same group: no new one */
	assert_int_equal(last_part, part);
	assert_int_equal(kn_tail_store_bytes(s), w);
	assert_int_equal(kn_tail_store_groups(s), 1);
	/* written out as two appends: two ResourceSpans */
	check_buffer(s, t, 1, 2, 2);
	kn_tail_store_remove(s, t);
	assert_int_equal(kn_tail_store_groups(s), 0);
	assert_true(kn_tail_store_bytes(s) < one);
	assert_true(kn_tail_store_bytes(s) <= empty + 256); /* the group table's arrays remain */
	kn_chunk_unref(c);
	kn_tail_frame_free(&f);
	kn_tail_store_destroy(s);
}

/* W1-like traces (5 spans: a root and 4 children, 10 attributes each,
 * 5 resource attributes, traces spread over 4 ResourceSpans per request):
 * bytes the store holds per buffered span versus encoded bytes per span. */
static void test_bytes_per_span(void **st)
{
	(void)st;
	enum { REQS = 40, TRACES = 100, SPANS = TRACES * 5 };
	struct kn_tail_store *s = kn_tail_store_create(&cfg_30s);
	struct kn_tail_frame f = {0};
	assert_non_null(s);
	static struct kn_test_span sp[SPANS];
	size_t enc_total = 0;
	uint32_t tr = 0;
	for (uint32_t r = 0; r < REQS; r++) {
		uint32_t n = 0;
		/* trace t -> resource t % 4; each ResourceSpans holds its traces whole */
		for (uint32_t res = 0; res < 4; res++)
			for (uint32_t t = res; t < TRACES; t += 4)
				for (uint32_t k = 0; k < 5; k++)
					sp[n++] = (struct kn_test_span){
						.trace = r * TRACES + t, .span = 1 + k,
						.parent = k ? 1 : 0, .res = res, .scope = 0,
						.start = 1000 + k, .end = 2000 + k, .nattrs = 10,
						.nres_attrs = 5};
		size_t enc;
		struct kn_chunk *c = chunk_of(sp, n, r, &enc);
		enc_total += enc;
		for (uint32_t t = 0; t < TRACES; t++)
			add(s, &f, c, r * TRACES + t, r);
		kn_chunk_unref(c);
		tr += TRACES;
	}
	double spans = (double)tr * 5;
	double held = (double)kn_tail_store_bytes(s) / spans;
	double encoded = (double)enc_total / spans;
	printf("tail store, W1-like traces: %u traces, %.0f spans: %.1f bytes encoded per span, "
	       "%.1f bytes held per span (+%.1f)\n", tr, spans, encoded, held, held - encoded);
	assert_true(held <= encoded + 64);
	/* the 4 resources of every request are held once each */
	assert_int_equal(kn_tail_store_groups(s), 4);
	uint32_t t;
	while ((t = kn_tail_store_oldest(s)) != KN_TAIL_NONE)
		kn_tail_store_remove(s, t);
	assert_int_equal(kn_tail_store_groups(s), 0);
	kn_tail_frame_free(&f);
	kn_tail_store_destroy(s);
}

/* A request packed by protobuf-c: ResourceSpans without a Resource but
 * with a schema_url, a present but empty scope with a schema_url, then a
 * second ResourceSpans whose Resource and scope equal the first's. */
static uint8_t *odd_request(size_t *len, int second)
{
	uint8_t id[16], sid[2][8];
	kn_test_trace_id(id, 7);
	Span sp[2];
	Span *spp[2][1] = {{&sp[0]}, {&sp[1]}};
	Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
		OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
	SS ss[2];
	SS *ssp[2][1] = {{&ss[0]}, {&ss[1]}};
	RS rs[2];
	RS *rsp[2] = {&rs[0], &rs[1]};
	for (int i = 0; i < 2; i++) {
		opentelemetry__proto__trace__v1__span__init(&sp[i]);
		kn_test_span_id(sid[i], 1 + (uint32_t)i);
		sp[i].trace_id = (ProtobufCBinaryData){16, id};
		sp[i].span_id = (ProtobufCBinaryData){8, sid[i]};
		sp[i].name = i ? "second" : "first";
		sp[i].start_time_unix_nano = 10;
		sp[i].end_time_unix_nano = 20;
		opentelemetry__proto__trace__v1__scope_spans__init(&ss[i]);
		ss[i].scope = &scope;
		ss[i].n_spans = 1;
		ss[i].spans = spp[i];
		ss[i].schema_url = "https://opentelemetry.io/schemas/1.26.0";
		opentelemetry__proto__trace__v1__resource_spans__init(&rs[i]);
		rs[i].n_scope_spans = 1;
		rs[i].scope_spans = ssp[i];
		rs[i].schema_url = "https://example.com/r";
	}
	Req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	req.n_resource_spans = second ? 2 : 1;
	req.resource_spans = rsp;
	*len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	uint8_t *buf = malloc(*len);
	assert_non_null(buf);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
	return buf;
}

static struct kn_chunk *chunk_of_bytes(const uint8_t *buf, size_t len)
{
	struct kn_wire_index ix;
	struct kn_err err;
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
	struct kn_chunk *c = NULL;
	assert_int_equal(kn_wire_split(&ix, buf, 1, &c, &err), KN_OK);
	assert_non_null(c);
	kn_wire_index_free(&ix);
	return c;
}

static void test_groups_verbatim(void **st)
{
	(void)st;
	struct kn_tail_store *s = kn_tail_store_create(&cfg_30s);
	struct kn_tail_frame f = {0};
	assert_non_null(s);
	/* one ResourceSpans: the view is the request, byte for byte */
	size_t len;
	uint8_t *buf = odd_request(&len, 0);
	assert_int_equal(buf[0], 0x0a);
	struct kn_chunk *c = chunk_of_bytes(buf, len);
	uint32_t t = add(s, &f, c, 7, 1);
	struct kn_tail_trace v;
	assert_int_equal(kn_tail_store_view(s, t, &v), KN_OK);
	assert_int_equal(v.len, len);
	assert_memory_equal(v.data, buf, len);
	kn_chunk_unref(c);
	/* the same group again, in a chunk of two ResourceSpans: one group
	 * held; the view is the first request followed by the second, byte
	 * for byte (both are one trace's spans in request order) */
	size_t len2;
	uint8_t *buf2 = odd_request(&len2, 1);
	c = chunk_of_bytes(buf2, len2);
	assert_int_equal(add(s, &f, c, 7, 2), t);
	assert_int_equal(kn_tail_store_groups(s), 1);
	assert_int_equal(kn_tail_store_view(s, t, &v), KN_OK);
	assert_int_equal(v.len, len + len2);
	assert_memory_equal(v.data, buf, len);
	assert_memory_equal(v.data + len, buf2, len2);
	Req *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
		NULL, v.len, v.data);
	assert_non_null(r);
	assert_int_equal(r->n_resource_spans, 3);
	for (int i = 0; i < 3; i++) {
		assert_null(r->resource_spans[i]->resource);
		assert_string_equal(r->resource_spans[i]->schema_url, "https://example.com/r");
		assert_int_equal(r->resource_spans[i]->n_scope_spans, 1);
		SS *x = r->resource_spans[i]->scope_spans[0];
		assert_non_null(x->scope);
		assert_string_equal(x->schema_url, "https://opentelemetry.io/schemas/1.26.0");
		assert_int_equal(x->n_spans, 1);
		assert_string_equal(x->spans[0]->name, i < 2 ? "first" : "second");
	}
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
	free(buf2);
	kn_chunk_unref(c);
	free(buf);
	kn_tail_store_remove(s, t);
	assert_int_equal(kn_tail_store_groups(s), 0);
	kn_tail_frame_free(&f);
	kn_tail_store_destroy(s);
}

/* Traces over many groups, appended and removed in random order: every
 * view unpacks to its own spans with its own Resource, and the groups
 * held are exactly those some live trace names. */
static void test_groups_model(void **st)
{
	(void)st;
	enum { TRACES = 300, RES = 12, OPS = 3000 };
	struct kn_tail_store *s = kn_tail_store_create(&cfg_30s);
	struct kn_tail_frame f = {0};
	assert_non_null(s);
	static uint8_t live[TRACES];
	static uint32_t nparts[TRACES], resof[TRACES][64], spans[TRACES];
	uint64_t x = 99;
	for (uint32_t op = 0; op < OPS; op++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t tr = (uint32_t)(x >> 33) % TRACES;
		uint8_t id[16];
		kn_test_trace_id(id, tr);
		uint32_t t = kn_tail_store_find(s, id);
		if (live[tr] && ((x >> 20) & 3) == 0) {
			kn_tail_store_remove(s, t);
			live[tr] = 0;
			nparts[tr] = spans[tr] = 0;
		} else if (nparts[tr] < 64) {
			uint32_t res = (uint32_t)(x >> 40) % RES;
			struct kn_test_span sp = {.trace = tr, .span = 1 + spans[tr], .parent = 1,
						  .res = res, .scope = 0, .nres_attrs = 1 + res % 5};
			/* kn_test_pack names Resource res after its number: distinct bytes */
			struct kn_chunk *c = chunk_of(&sp, 1, op, NULL);
			add(s, &f, c, tr, op);
			kn_chunk_unref(c);
			live[tr] = 1;
			resof[tr][nparts[tr]++] = res;
			spans[tr]++;
		}
		/* groups held == distinct resources among live traces' parts */
		uint8_t used[RES] = {0};
		uint32_t want = 0;
		for (uint32_t k = 0; k < TRACES; k++)
			for (uint32_t j = 0; live[k] && j < nparts[k]; j++)
				if (!used[resof[k][j]]++)
					want++;
		assert_int_equal(kn_tail_store_groups(s), want);
		if (live[tr]) {
			t = kn_tail_store_find(s, id);
			check_buffer(s, t, tr, spans[tr], 0xffffffffu);
		}
	}
	kn_tail_frame_free(&f);
	kn_tail_store_destroy(s);
}

static void test_frame_rejects_broken(void **st)
{
	(void)st;
	struct kn_tail_frame f = {0};
	const uint8_t bad1[] = {0x0a, 0x05, 0x12, 0x10};           /* length past the end */
	const uint8_t bad2[] = {0x0a, 0x03, 0x12, 0x05, 0x0a};     /* inner length past its message */
	const uint8_t bad3[] = {0x0b};                              /* group wire type */
	assert_int_equal(kn_tail_frame_index(&f, bad1, sizeof bad1), -1);
	assert_int_equal(kn_tail_frame_index(&f, bad2, sizeof bad2), -1);
	assert_int_equal(kn_tail_frame_index(&f, bad3, sizeof bad3), -1);
	const uint8_t ok[] = {0x0a, 0x04, 0x12, 0x02, 0x0a, 0x00};  /* RS{SS{scope{}}} */
	assert_int_equal(kn_tail_frame_index(&f, ok, sizeof ok), 0);
	assert_int_equal(f.nres, 1);
	assert_int_equal(f.nscopes, 1);
	kn_tail_frame_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cut_and_aggregates),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_table_model),
		cmocka_unit_test(test_would),
		cmocka_unit_test(test_bytes_per_span),
		cmocka_unit_test(test_groups_verbatim),
		cmocka_unit_test(test_groups_model),
		cmocka_unit_test(test_frame_rejects_broken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
