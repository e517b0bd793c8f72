/* SPDX-License-Identifier: Apache-2.0
 * test_wire: the zero-copy wire reader (collector/wire) cross-checked against
 * protobuf-c. Random requests from kn_wire_gen (fixed seeds) are packed by
 * protobuf-c, indexed, and every span header field, every Resource / scope
 * byte range and every span byte range is compared with protobuf-c's unpack.
 * Hand-built buffers cover the edges: empty request and messages, unknown
 * fields of every wire type at every level, the nesting limit, every
 * truncation of a valid request, wrong wire types, groups, long varints,
 * invalid ids and the error / reject texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "collector/wire/kn_wire.h"
#include "collector/wire/kn_wire_gen.h"
#include "collector/wire/kn_wire_internal.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

static req_t *pb_unpack(const uint8_t *buf, size_t len)
{
	return opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len, buf);
}

static void pb_free(req_t *r)
{
	if (r)
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
}

/* A byte writer for hand-built protobuf. */
struct wb {
	uint8_t b[8192];
	size_t n;
};

static void wb_varint(struct wb *w, uint64_t v)
{
	w->n += kn_wire_put_varint(w->b + w->n, v);
}

static void wb_tag(struct wb *w, uint32_t field, uint32_t wt)
{
	wb_varint(w, (uint64_t)field << 3 | wt);
}

static void wb_bytes(struct wb *w, uint32_t field, const void *p, size_t len)
{
	wb_tag(w, field, 2);
	wb_varint(w, len);
	memcpy(w->b + w->n, p, len);
	w->n += len;
}

static void wb_sub(struct wb *w, uint32_t field, const struct wb *in)
{
	wb_bytes(w, field, in->b, in->n);
}

static void wb_fixed64(struct wb *w, uint32_t field, uint64_t v)
{
	wb_tag(w, field, 1);
	for (int i = 0; i < 8; i++)
		w->b[w->n++] = (uint8_t)(v >> (8 * i));
}

static void wb_fixed32(struct wb *w, uint32_t field, uint32_t v)
{
	wb_tag(w, field, 5);
	for (int i = 0; i < 4; i++)
		w->b[w->n++] = (uint8_t)(v >> (8 * i));
}

static void wb_vfield(struct wb *w, uint32_t field, uint64_t v)
{
	wb_tag(w, field, 0);
	wb_varint(w, v);
}

/* Unknown fields of all four wire types, numbered from 90. */
static void wb_unknown(struct wb *w)
{
	wb_vfield(w, 90, 300);
	wb_fixed64(w, 91, 7);
	wb_bytes(w, 92, "junk", 4);
	wb_fixed32(w, 93, 9);
	wb_vfield(w, 536870911, 1); /* the largest field number */
}

static const uint8_t TID[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t SID[8] = { 0xa1, 2, 3, 4, 5, 6, 7, 8 };

/* A valid span with the ids above, name "op" and the given extra bytes. */
static void wb_span(struct wb *s, const struct wb *extra)
{
	s->n = 0;
	wb_bytes(s, 1, TID, 16);
	wb_bytes(s, 2, SID, 8);
	wb_bytes(s, 5, "op", 2);
	if (extra) {
		memcpy(s->b + s->n, extra->b, extra->n);
		s->n += extra->n;
	}
}

/* request { resource_spans { scope_spans { spans: span } } } */
static void wb_request(struct wb *out, const struct wb *span)
{
	static struct wb ss, rs;
	ss.n = rs.n = out->n = 0;
	wb_sub(&ss, 2, span);
	wb_sub(&rs, 2, &ss);
	wb_sub(out, 1, &rs);
}

static int index_buf(struct kn_wire_index *ix, const uint8_t *buf, size_t len, struct kn_err *err)
{
	/* an exact-size copy, so ASan sees any read past the end */
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, buf, len);
	int rc = kn_wire_index_request(ix, copy, len, err);
	free(copy);
	return rc;
}

static void expect_invalid(const struct wb *req, const char *msg)
{
	struct kn_wire_index ix;
	struct kn_err err = { { 0 } };
	kn_wire_index_init(&ix);
	assert_int_equal(index_buf(&ix, req->b, req->n, &err), KN_INVALID);
	if (strcmp(err.msg, msg) != 0)
		fail_msg("error text\n  got:  %s\n  want: %s", err.msg, msg);
	kn_wire_index_free(&ix);
}

static void expect_ok_both(const struct wb *req, uint32_t nspans)
{
	struct kn_wire_index ix;
	struct kn_err err = { { 0 } };
	kn_wire_index_init(&ix);
	int rc = index_buf(&ix, req->b, req->n, &err);
	if (rc != KN_OK)
		fail_msg("indexing failed: %s", err.msg);
	assert_int_equal(ix.nspans, nspans);
	req_t *r = pb_unpack(req->b, req->n);
	assert_non_null(r);
	pb_free(r);
	kn_wire_index_free(&ix);
}

static uint8_t *pack_msg(const ProtobufCMessage *m, size_t *n)
{
	uint8_t *b = malloc(protobuf_c_message_get_packed_size(m) + 1);
	assert_non_null(b);
	*n = protobuf_c_message_pack(m, b);
	return b;
}

/* bytes [p, p+len) unpack to a message that packs like m does (so the
 * range is exactly that message, whatever order its fields came in) */
static void same_msg(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m,
		     const uint8_t *p, size_t len)
{
	ProtobufCMessage *u = protobuf_c_message_unpack(d, NULL, len, p);
	assert_non_null(u);
	size_t n1, n2;
	uint8_t *b1 = pack_msg(m, &n1), *b2 = pack_msg(u, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(b1, b2, n1);
	free(b1);
	free(b2);
	protobuf_c_message_free_unpacked(u, NULL);
}

/* Compares the index of buf with protobuf-c's unpack of it. */
static void cross_check(const uint8_t *buf, size_t len, const struct kn_wire_index *ix)
{
	req_t *r = pb_unpack(buf, len);
	assert_non_null(r);
	uint32_t k = 0, sc = 0;
	assert_int_equal(ix->nres, r->n_resource_spans);
	for (size_t i = 0; i < r->n_resource_spans; i++) {
		Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[i];
		const struct kn_wire_resource *xr = &ix->res[i];
		if (rs->resource) {
			assert_non_null(xr->msg);
			same_msg(&opentelemetry__proto__resource__v1__resource__descriptor,
				 &rs->resource->base, xr->msg, xr->len);
		} else {
			assert_null(xr->msg);
		}
		assert_int_equal(xr->schema_url_len, strlen(rs->schema_url));
		if (xr->schema_url_len)
			assert_memory_equal(xr->schema_url, rs->schema_url, xr->schema_url_len);
		for (size_t j = 0; j < rs->n_scope_spans; j++, sc++) {
			Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
			const struct kn_wire_scope *xs = &ix->scopes[sc];
			assert_true(sc < ix->nscopes);
			assert_int_equal(xs->resource_idx, i);
			if (ss->scope) {
				assert_non_null(xs->msg);
				same_msg(&opentelemetry__proto__common__v1__instrumentation_scope__descriptor,
					 &ss->scope->base, xs->msg, xs->len);
			} else {
				assert_null(xs->msg);
			}
			assert_int_equal(xs->schema_url_len, strlen(ss->schema_url));
			for (size_t m = 0; m < ss->n_spans; m++) {
				span_t *s = ss->spans[m];
				if (s->trace_id.len != 16 || s->span_id.len != 8 ||
				    (s->parent_span_id.len != 0 && s->parent_span_id.len != 8))
					continue; /* rejected; counted below */
				static const uint8_t zero[16];
				if (!memcmp(s->trace_id.data, zero, 16) || !memcmp(s->span_id.data, zero, 8))
					continue;
				assert_true(k < ix->nspans);
				const struct kn_span_hdr *h = &ix->spans[k++];
				assert_memory_equal(h->trace_id, s->trace_id.data, 16);
				assert_memory_equal(h->span_id, s->span_id.data, 8);
				if (s->parent_span_id.len)
					assert_memory_equal(h->parent_span_id, s->parent_span_id.data, 8);
				else
					assert_memory_equal(h->parent_span_id, zero, 8);
				assert_true(h->start_ns == s->start_time_unix_nano);
				assert_true(h->end_ns == s->end_time_unix_nano);
				assert_int_equal(h->flags, s->flags);
				assert_int_equal(h->kind, s->kind);
				assert_int_equal(h->status_code, s->status ? s->status->code : 0);
				assert_int_equal(h->nattrs, s->n_attributes);
				assert_int_equal(h->nlinks, s->n_links);
				assert_int_equal(h->name_len, strlen(s->name));
				assert_memory_equal(buf + h->name_off, s->name, h->name_len);
				assert_int_equal(h->resource_idx, i);
				assert_int_equal(h->scope_idx, sc);
				/* the span's byte range is exactly the span */
				same_msg(&opentelemetry__proto__trace__v1__span__descriptor, &s->base,
					 buf + h->off, h->len);
			}
		}
	}
	assert_int_equal(ix->nscopes, sc);
	assert_int_equal(ix->nspans, k);
	pb_free(r);
}

static void test_random_cross_check(void **state)
{
	(void)state;
	struct kn_wire_index ix;
	kn_wire_index_init(&ix); /* reused across requests: arrays only grow */
	uint64_t total = 0;
	for (uint64_t seed = 1; seed <= 200; seed++) {
		struct kn_wire_gen_opts o = { .max_resources = 4, .max_scopes = 4, .max_spans = 12,
					      .max_attrs = 5, .max_depth = 5,
					      .invalid_pct = seed % 3 == 0 ? 10 : 0, .trace_pool = 8 };
		req_t *req = kn_wire_gen_request(seed, &o);
		assert_non_null(req);
		size_t len;
		uint8_t *buf = kn_wire_gen_pack(req, &len);
		assert_non_null(buf);
		struct kn_err err = { { 0 } };
		int rc = kn_wire_index_request(&ix, buf, len, &err);
		if (rc != KN_OK)
			fail_msg("seed %llu: %s", (unsigned long long)seed, err.msg);
		cross_check(buf, len, &ix);
		/* the trusted index of accepted bytes is the same index */
		struct kn_wire_index tix;
		kn_wire_index_init(&tix);
		assert_int_equal(kn_wire_index_trusted(&tix, buf, len, &err), KN_OK);
		assert_true(kn_wire_index_same(&ix, &tix));
		kn_wire_index_free(&tix);
		/* the rejected count is what the input holds */
		uint32_t all = 0;
		for (size_t i = 0; i < req->n_resource_spans; i++)
			for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++)
				all += (uint32_t)req->resource_spans[i]->scope_spans[j]->n_spans;
		assert_int_equal(ix.nspans + ix.rejected, all);
		if (o.invalid_pct == 0)
			assert_int_equal(ix.rejected, 0);
		if (ix.rejected)
			assert_non_null(strstr(ix.reject_reason, "resource_spans["));
		total += ix.nspans;
		free(buf);
		kn_wire_gen_free(req);
	}
	assert_true(total > 1000); /* the generator really made spans */
	kn_wire_index_free(&ix);
}

static void test_empty(void **state)
{
	(void)state;
	struct wb w = { .n = 0 };
	expect_ok_both(&w, 0);
	/* empty ResourceSpans, empty ScopeSpans */
	static const uint8_t rs0[] = { 0x0a, 0x00 };
	static const uint8_t ss0[] = { 0x0a, 0x02, 0x12, 0x00 };
	memcpy(w.b, rs0, sizeof rs0);
	w.n = sizeof rs0;
	expect_ok_both(&w, 0);
	memcpy(w.b, ss0, sizeof ss0);
	w.n = sizeof ss0;
	expect_ok_both(&w, 0);
	/* an empty span is well-formed but invalid OTLP */
	static const uint8_t sp0[] = { 0x0a, 0x04, 0x12, 0x02, 0x12, 0x00 };
	struct kn_wire_index ix;
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, sp0, sizeof sp0, NULL), KN_OK);
	assert_int_equal(ix.nspans, 0);
	assert_int_equal(ix.rejected, 1);
	assert_string_equal(ix.reject_reason,
			    "resource_spans[0].scope_spans[0].spans[0].trace_id: must be 16 bytes, got 0");
	assert_int_equal(ix.nres, 1);
	assert_int_equal(ix.nscopes, 1);
	kn_wire_index_free(&ix);
}

/* A KeyValue with unknown fields in it and in its AnyValue. */
static void wb_kv_unknown(struct wb *kv)
{
	static struct wb av;
	av.n = 0;
	wb_unknown(&av);
	wb_bytes(&av, 1, "v", 1);
	kv->n = 0;
	wb_unknown(kv);
	wb_bytes(kv, 1, "k", 1);
	wb_sub(kv, 2, &av);
	wb_vfield(kv, 3, 5); /* key_strindex */
}

static void test_unknown_fields_everywhere(void **state)
{
	(void)state;
	static struct wb kv, ev, lk, st, sp, ss, rs, res, scope, req, extra;
	wb_kv_unknown(&kv);
	ev.n = 0;
	wb_unknown(&ev);
	wb_fixed64(&ev, 1, 5);
	wb_sub(&ev, 3, &kv);
	lk.n = 0;
	wb_unknown(&lk);
	wb_bytes(&lk, 1, TID, 16);
	wb_sub(&lk, 4, &kv);
	wb_fixed32(&lk, 6, 1);
	st.n = 0;
	wb_unknown(&st);
	wb_vfield(&st, 1, 4); /* reserved field 1: skipped */
	wb_vfield(&st, 3, 2);
	extra.n = 0;
	wb_unknown(&extra);
	wb_sub(&extra, 9, &kv);
	wb_sub(&extra, 11, &ev);
	wb_sub(&extra, 13, &lk);
	wb_sub(&extra, 15, &st);
	wb_span(&sp, &extra);
	res.n = 0;
	wb_unknown(&res);
	wb_sub(&res, 1, &kv);
	scope.n = 0;
	wb_unknown(&scope);
	wb_bytes(&scope, 1, "lib", 3);
	wb_sub(&scope, 3, &kv);
	ss.n = 0;
	wb_unknown(&ss);
	wb_sub(&ss, 1, &scope);
	wb_sub(&ss, 2, &sp);
	wb_unknown(&ss);
	rs.n = 0;
	wb_unknown(&rs);
	wb_sub(&rs, 1, &res);
	wb_sub(&rs, 2, &ss);
	req.n = 0;
	wb_unknown(&req);
	wb_sub(&req, 1, &rs);
	wb_unknown(&req);
	expect_ok_both(&req, 1);

	struct kn_wire_index ix;
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, req.b, req.n, NULL), KN_OK);
	cross_check(req.b, req.n, &ix);
	assert_int_equal(ix.spans[0].status_code, 2);
	assert_int_equal(ix.spans[0].nattrs, 1);
	assert_int_equal(ix.spans[0].nlinks, 1);
	assert_int_equal(ix.spans[0].len, sp.n); /* unknown fields stay in the span's bytes */
	kn_wire_index_free(&ix);
}

/* A span whose first attribute's value nests `levels` AnyValues. */
static void wb_nested_request(struct wb *req, int levels, int kvlist)
{
	static struct wb a, b, kv, sp, extra;
	a.n = 0;
	wb_bytes(&a, 1, "leaf", 4); /* innermost AnyValue: string */
	for (int i = 1; i < levels; i++) {
		b.n = 0;
		if (kvlist) { /* AnyValue{kvlist{values: KeyValue{key, value: a}}} */
			static struct wb k2, l;
			k2.n = l.n = 0;
			wb_bytes(&k2, 1, "k", 1);
			wb_sub(&k2, 2, &a);
			wb_sub(&l, 1, &k2);
			wb_sub(&b, 6, &l);
		} else { /* AnyValue{array{values: a}} */
			static struct wb arr;
			arr.n = 0;
			wb_sub(&arr, 1, &a);
			wb_sub(&b, 5, &arr);
		}
		a = b;
	}
	kv.n = 0;
	wb_bytes(&kv, 1, "deep", 4);
	wb_sub(&kv, 2, &a);
	extra.n = 0;
	wb_sub(&extra, 9, &kv);
	wb_span(&sp, &extra);
	wb_request(req, &sp);
}

static void test_nesting_limit(void **state)
{
	(void)state;
	static struct wb req;
	for (int kvlist = 0; kvlist < 2; kvlist++) {
		wb_nested_request(&req, KN_WIRE_MAX_DEPTH, kvlist);
		expect_ok_both(&req, 1);
		wb_nested_request(&req, KN_WIRE_MAX_DEPTH + 1, kvlist);
		struct kn_wire_index ix;
		struct kn_err err = { { 0 } };
		kn_wire_index_init(&ix);
		assert_int_equal(kn_wire_index_request(&ix, req.b, req.n, &err), KN_INVALID);
		assert_non_null(strstr(err.msg, "resource_spans[0].scope_spans[0].spans[0].attributes[0].value."));
		if (!strstr(err.msg, ": AnyValue nested deeper than 32"))
			fail_msg("%s", err.msg);
		kn_wire_index_free(&ix);
	}
}

static void test_truncation_every_offset(void **state)
{
	(void)state;
	struct kn_wire_gen_opts o = { .max_resources = 2, .max_scopes = 2, .max_spans = 3,
				      .max_attrs = 3, .max_depth = 3 };
	struct kn_wire_index ix;
	kn_wire_index_init(&ix);
	int checked = 0;
	for (uint64_t seed = 1000; seed < 1010; seed++) {
		req_t *req = kn_wire_gen_request(seed, &o);
		size_t len;
		uint8_t *buf = kn_wire_gen_pack(req, &len);
		for (size_t cut = 0; cut < len; cut++) {
			struct kn_err err = { { 0 } };
			/* an exact-size copy, so ASan sees any read past the end */
			uint8_t *copy = malloc(cut ? cut : 1);
			assert_non_null(copy);
			memcpy(copy, buf, cut);
			int rc = kn_wire_index_request(&ix, copy, cut, &err);
			assert_true(rc == KN_OK || rc == KN_INVALID);
			req_t *r = pb_unpack(buf, cut);
			if (rc == KN_OK) {
				/* a cut between two resource_spans is a valid request */
				if (!r)
					fail_msg("seed %llu cut %zu: accepted, protobuf-c refuses",
						 (unsigned long long)seed, cut);
				cross_check(copy, cut, &ix);
			} else {
				assert_true(strlen(err.msg) > 0);
			}
			free(copy);
			pb_free(r);
			checked++;
		}
		free(buf);
		kn_wire_gen_free(req);
	}
	assert_true(checked > 500);
	kn_wire_index_free(&ix);
}

static void test_wrong_wire_types(void **state)
{
	(void)state;
	static struct wb sp, req, extra, kv, av;
	const char *pre = "resource_spans[0].scope_spans[0].spans[0].";
	char want[256];

	extra.n = 0; /* name as a varint */
	wb_vfield(&extra, 5, 1);
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	snprintf(want, sizeof want, "%sname: wrong wire type 0, want 2", pre);
	expect_invalid(&req, want);

	extra.n = 0; /* start time as a varint */
	wb_vfield(&extra, 7, 1);
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	snprintf(want, sizeof want, "%sstart_time_unix_nano: wrong wire type 0, want 1", pre);
	expect_invalid(&req, want);

	extra.n = 0; /* flags as fixed64 */
	wb_fixed64(&extra, 16, 1);
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	snprintf(want, sizeof want, "%sflags: wrong wire type 1, want 5", pre);
	expect_invalid(&req, want);

	/* attributes[1].value.int_value as fixed32 */
	av.n = 0;
	wb_fixed32(&av, 3, 1);
	kv.n = 0;
	wb_bytes(&kv, 1, "k", 1);
	wb_sub(&kv, 2, &av);
	extra.n = 0;
	wb_bytes(&extra, 9, "\x0a\x01x", 3);
	wb_sub(&extra, 9, &kv);
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	snprintf(want, sizeof want, "%sattributes[1].value.int_value: wrong wire type 5, want 0", pre);
	expect_invalid(&req, want);

	/* resource_spans as a varint at the top */
	req.n = 0;
	wb_vfield(&req, 1, 3);
	expect_invalid(&req, "resource_spans[0]: wrong wire type 0, want 2");

	/* a group in a span, and wire type 7 */
	extra.n = 0;
	wb_tag(&extra, 40, 3);
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	snprintf(want, sizeof want, "%sfield_40: groups are not supported", pre);
	expect_invalid(&req, want);
	extra.n = 0;
	wb_tag(&extra, 41, 7);
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	snprintf(want, sizeof want, "%sfield_41: invalid wire type 7", pre);
	expect_invalid(&req, want);
}

static void test_malformed_framing(void **state)
{
	(void)state;
	static struct wb sp, req, extra, kv;
	const char *pre = "resource_spans[0].scope_spans[0].spans[0].";
	char want[256];

	/* attributes[3].value whose length runs past the KeyValue */
	extra.n = 0;
	for (int i = 0; i < 3; i++)
		wb_bytes(&extra, 9, "\x0a\x01x", 3);
	kv.n = 0;
	wb_bytes(&kv, 1, "k", 1);
	wb_tag(&kv, 2, 2);
	wb_varint(&kv, 5);
	kv.b[kv.n++] = 0x08; /* 1 byte where 5 were promised */
	wb_sub(&extra, 9, &kv);
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	snprintf(want, sizeof want, "%sattributes[3].value: truncated", pre);
	expect_invalid(&req, want);

	/* an 11-byte varint */
	extra.n = 0;
	wb_tag(&extra, 6, 0);
	for (int i = 0; i < 10; i++)
		extra.b[extra.n++] = 0xff;
	extra.b[extra.n++] = 0x01;
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	snprintf(want, sizeof want, "%skind: varint longer than 10 bytes", pre);
	expect_invalid(&req, want);

	/* a 10-byte varint is fine: kind = -1 */
	extra.n = 0;
	wb_vfield(&extra, 6, (uint64_t)-1);
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	expect_ok_both(&req, 1);

	/* field number 0 */
	req.n = 0;
	req.b[req.n++] = 0x02;
	req.b[req.n++] = 0x00;
	expect_invalid(&req, "request: field number 0");

	/* a length prefix longer than 5 bytes */
	req.n = 0;
	req.b[req.n++] = 0x0a;
	for (int i = 0; i < 5; i++)
		req.b[req.n++] = 0x80;
	req.b[req.n++] = 0x00;
	expect_invalid(&req, "resource_spans[0]: length prefix longer than 5 bytes");

	/* the span's length runs past the ScopeSpans */
	req.n = 0;
	static const uint8_t bad[] = { 0x0a, 0x04, 0x12, 0x02, 0x12, 0x05 };
	memcpy(req.b, bad, sizeof bad);
	req.n = sizeof bad;
	expect_invalid(&req, "resource_spans[0].scope_spans[0].spans[0]: truncated");
}

static void test_invalid_ids(void **state)
{
	(void)state;
	static struct wb sp, ss, rs, req, sp2;
	const uint8_t zero[16] = { 0 };
	struct kn_wire_index ix;
	kn_wire_index_init(&ix);

	/* scope_spans[1].spans[4] has an 8-byte trace id: the first reason */
	wb_span(&sp, NULL);
	sp2.n = 0;
	wb_bytes(&sp2, 1, TID, 8);
	wb_bytes(&sp2, 2, SID, 8);
	rs.n = 0;
	ss.n = 0;
	wb_sub(&ss, 2, &sp);
	wb_sub(&rs, 2, &ss);
	ss.n = 0;
	for (int i = 0; i < 4; i++)
		wb_sub(&ss, 2, &sp);
	wb_sub(&ss, 2, &sp2);
	/* more invalid spans after it: zero ids, long span id, odd parent */
	sp2.n = 0;
	wb_bytes(&sp2, 1, zero, 16);
	wb_bytes(&sp2, 2, SID, 8);
	wb_sub(&ss, 2, &sp2);
	sp2.n = 0;
	wb_bytes(&sp2, 1, TID, 16);
	wb_bytes(&sp2, 2, zero, 8);
	wb_sub(&ss, 2, &sp2);
	sp2.n = 0;
	wb_bytes(&sp2, 1, TID, 16);
	wb_bytes(&sp2, 2, SID, 8);
	wb_bytes(&sp2, 4, SID, 3);
	wb_sub(&ss, 2, &sp2);
	wb_sub(&rs, 2, &ss);
	req.n = 0;
	wb_sub(&req, 1, &rs);
	assert_int_equal(kn_wire_index_request(&ix, req.b, req.n, NULL), KN_OK);
	assert_int_equal(ix.nspans, 5);
	assert_int_equal(ix.rejected, 4);
	assert_string_equal(ix.reject_reason,
			    "resource_spans[0].scope_spans[1].spans[4].trace_id: must be 16 bytes, got 8");
	assert_int_equal(ix.spans[4].scope_idx, 1);

	/* each reason on its own */
	static const struct { int which; const char *why; } cases[] = {
		{ 0, "trace_id: must not be all zero" },
		{ 1, "span_id: must be 8 bytes, got 9" },
		{ 2, "span_id: must not be all zero" },
		{ 3, "parent_span_id: must be empty or 8 bytes, got 3" },
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		uint8_t sid9[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
		sp2.n = 0;
		wb_bytes(&sp2, 1, cases[c].which == 0 ? zero : TID, 16);
		if (cases[c].which == 1)
			wb_bytes(&sp2, 2, sid9, 9);
		else
			wb_bytes(&sp2, 2, cases[c].which == 2 ? zero : SID, 8);
		if (cases[c].which == 3)
			wb_bytes(&sp2, 4, SID, 3);
		wb_request(&req, &sp2);
		assert_int_equal(kn_wire_index_request(&ix, req.b, req.n, NULL), KN_OK);
		assert_int_equal(ix.rejected, 1);
		assert_int_equal(ix.nspans, 0);
		char want[200];
		snprintf(want, sizeof want, "resource_spans[0].scope_spans[0].spans[0].%s", cases[c].why);
		assert_string_equal(ix.reject_reason, want);
	}
	/* the index forgets the last request's rejects */
	wb_request(&req, &sp);
	assert_int_equal(kn_wire_index_request(&ix, req.b, req.n, NULL), KN_OK);
	assert_int_equal(ix.rejected, 0);
	assert_string_equal(ix.reject_reason, "");
	kn_wire_index_free(&ix);
}

static void test_last_one_wins(void **state)
{
	(void)state;
	static struct wb sp, req, extra, st1, st2;
	extra.n = 0;
	wb_bytes(&extra, 5, "second", 6);
	wb_vfield(&extra, 6, 2);
	wb_vfield(&extra, 6, 3);
	wb_fixed64(&extra, 7, 10);
	wb_fixed64(&extra, 7, 11);
	wb_fixed32(&extra, 16, 1);
	wb_fixed32(&extra, 16, 0x301);
	wb_bytes(&extra, 4, SID, 8);
	st1.n = 0;
	wb_vfield(&st1, 3, 2);
	st2.n = 0;
	wb_bytes(&st2, 2, "msg", 3);
	wb_sub(&extra, 15, &st1);
	wb_sub(&extra, 15, &st2); /* protobuf-c's merge: the later scalar wins, 0 */
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	struct kn_wire_index ix;
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, req.b, req.n, NULL), KN_OK);
	cross_check(req.b, req.n, &ix);
	const struct kn_span_hdr *h = &ix.spans[0];
	assert_int_equal(h->name_len, 6);
	assert_memory_equal(req.b + h->name_off, "second", 6);
	assert_int_equal(h->kind, 3);
	assert_true(h->start_ns == 11);
	assert_int_equal(h->flags, 0x301);
	assert_int_equal(h->status_code, 0);
	assert_memory_equal(h->parent_span_id, SID, 8);
	kn_wire_index_free(&ix);
}

/* The KeyValue fast path (kn_wire_kv_fast) must take the common shapes, and
 * whatever it accepts the general checker must accept too, under every
 * truncation and every single-byte change of those shapes: it may only
 * decline, never decide differently. */
static void test_kv_fast_agrees(void **state)
{
	(void)state;
	static struct wb kvs[16], av, tmp;
	static const uint8_t vals[] = { 0x00, 0x01, 0x07, 0x08, 0x0a, 0x10, 0x12, 0x18, 0x21, 0x3a,
					0x40, 0x4a, 0x7f, 0x80, 0x81, 0xff };
	char big[300];
	size_t nkv = 0;
	memset(big, 'a', sizeof big);
#define KV_BEGIN(key, klen) (kvs[nkv].n = 0, wb_bytes(&kvs[nkv], 1, key, klen), av.n = 0)
#define KV_END() (wb_sub(&kvs[nkv], 2, &av), nkv++)
	KV_BEGIN("http.route", 10); wb_bytes(&av, 1, "/api/v1/x", 9); KV_END();
	KV_BEGIN("http.response.status_code", 25); wb_vfield(&av, 3, 200); KV_END();
	KV_BEGIN("neg", 3); wb_vfield(&av, 3, (uint64_t)-1); KV_END();       /* 10-byte varint */
	KV_BEGIN("ok", 2); wb_vfield(&av, 2, 1); KV_END();
	KV_BEGIN("ratio", 5); wb_fixed64(&av, 4, 0x3ff0000000000000ull); KV_END();
	KV_BEGIN("blob", 4); wb_bytes(&av, 7, "\x00\x01", 2); KV_END();
	KV_BEGIN("idx", 3); wb_vfield(&av, 8, 7); KV_END();
	KV_BEGIN(big, 200); wb_bytes(&av, 1, big, 300); KV_END();           /* 2-byte lengths */
	KV_BEGIN("empty", 5); KV_END();                                      /* empty AnyValue */
	kvs[nkv].n = 0; wb_bytes(&kvs[nkv], 1, "k", 1); nkv++;              /* key only */
	kvs[nkv].n = 0; av.n = 0; wb_bytes(&av, 1, "v", 1); wb_sub(&kvs[nkv], 2, &av); nkv++;
	kvs[nkv].n = 0; nkv++;                                               /* empty KeyValue */
#undef KV_BEGIN
#undef KV_END
	for (size_t k = 0; k < nkv; k++) {
		const struct wb *kv = &kvs[k];
		struct kn_wire_ctx c = { 0 };
		if (!kn_wire_kv_fast(kv->b, kv->b + kv->n))
			fail_msg("shape %zu not taken by the fast path", k);
		assert_int_equal(kn_wire_check_msg(&c, KN_WM_KEYVALUE, kv->b, kv->b + kv->n, 0), 0);
		for (size_t len = 0; len <= kv->n; len++) {           /* truncations */
			if (!kn_wire_kv_fast(kv->b, kv->b + len))
				continue;
			c.nframes = 0;
			if (kn_wire_check_msg(&c, KN_WM_KEYVALUE, kv->b, kv->b + len, 0) != 0)
				fail_msg("shape %zu cut to %zu: fast path accepts, checker says %s",
					 k, len, c.why);
		}
		for (size_t i = 0; i < kv->n; i++) {                  /* one byte changed */
			for (size_t v = 0; v < sizeof vals + 2; v++) {
				tmp = *kv;
				tmp.b[i] = v < sizeof vals ? vals[v] : (uint8_t)(kv->b[i] + (v == sizeof vals ? 1 : -1));
				if (!kn_wire_kv_fast(tmp.b, tmp.b + tmp.n))
					continue;
				c.nframes = 0;
				if (kn_wire_check_msg(&c, KN_WM_KEYVALUE, tmp.b, tmp.b + tmp.n, 0) != 0)
					fail_msg("shape %zu byte %zu = 0x%02x: fast path accepts, checker says %s",
						 k, i, tmp.b[i], c.why);
			}
		}
	}
	/* at the depth bound the fast path stands aside: the value is too deep */
	{
		struct kn_wire_ctx c = { 0 };
		assert_int_equal(kn_wire_check_kv(&c, kvs[0].b, kvs[0].b + kvs[0].n, KN_WIRE_MAX_DEPTH), -1);
		assert_non_null(strstr(c.why, "nested deeper"));
		c.nframes = 0;
		assert_int_equal(kn_wire_check_kv(&c, kvs[9].b, kvs[9].b + kvs[9].n, KN_WIRE_MAX_DEPTH), 0);
	}
}

/* Attribute indexes in error paths stay right when fast-path attributes,
 * general-path ones (kvlist values, unknown fields) and long ones mix. */
static void test_attr_index_after_mixed_shapes(void **state)
{
	(void)state;
	static struct wb sp, req, extra, kv, av, list, inner;
	const char *pre = "resource_spans[0].scope_spans[0].spans[0].";
	char want[256], big[300];
	memset(big, 'b', sizeof big);

	extra.n = 0;
	wb_bytes(&extra, 9, "\x0a\x01x", 3);                   /* [0] fast */
	inner.n = 0; wb_bytes(&inner, 1, "in", 2);
	list.n = 0; wb_sub(&list, 1, &inner);
	av.n = 0; wb_sub(&av, 6, &list);
	kv.n = 0; wb_bytes(&kv, 1, "kv", 2); wb_sub(&kv, 2, &av);
	wb_sub(&extra, 9, &kv);                                    /* [1] kvlist: general */
	av.n = 0; wb_bytes(&av, 1, big, 300);
	kv.n = 0; wb_bytes(&kv, 1, big, 150); wb_sub(&kv, 2, &av);
	wb_sub(&extra, 9, &kv);                                    /* [2] fast, 2-byte lengths */
	kv.n = 0; wb_bytes(&kv, 1, "u", 1); wb_unknown(&kv);
	wb_sub(&extra, 9, &kv);                                    /* [3] unknown fields: general */
	wb_vfield(&extra, 6, 2);
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	expect_ok_both(&req, 1);

	/* [4]: an int_value whose varint runs off the end of the AnyValue */
	av.n = 0;
	wb_tag(&av, 3, 0);
	av.b[av.n++] = 0x80;
	kv.n = 0; wb_bytes(&kv, 1, "bad", 3); wb_sub(&kv, 2, &av);
	wb_sub(&extra, 9, &kv);
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	snprintf(want, sizeof want, "%sattributes[4].value.int_value: truncated varint", pre);
	expect_invalid(&req, want);
}

/* A KeyValue whose `value` comes more than once: protobuf-c 1.4 merges the
 * AnyValues, and some merges fail (one without a value into one without a
 * value, where a string or empty bytes counts as none once merged). The
 * reader must draw the same line: every sequence of up to 4 occurrences
 * drawn from the shapes below is checked against protobuf-c itself, then
 * the error text is pinned (fuzz_wire found the gap). */
static void test_repeated_value_like_protobuf_c(void **state)
{
	(void)state;
	static const struct { const char *b; size_t n; } av[] = {
		{ "", 0 },                               /* no value */
		{ "\x65mpty", 5 },                       /* unknown fixed32 only */
		{ "\x0a\x01\x61", 3 },                   /* string */
		{ "\x0a\x00", 2 },                       /* empty string */
		{ "\x18\x05", 2 },                       /* int */
		{ "\x10\x00", 2 },                       /* bool false */
		{ "\x21\0\0\0\0\0\0\0\0", 9 },          /* double */
		{ "\x3a\x00", 2 },                       /* empty bytes */
		{ "\x3a\x01\x62", 3 },                   /* bytes */
		{ "\x2a\x00", 2 },                       /* empty array_value */
		{ "\x32\x00", 2 },                       /* empty kvlist_value */
		{ "\x40\x02", 2 },                       /* string_value_strindex */
		{ "\x18\x05\x0a\x01\x61", 5 },           /* int, then string */
		{ "\x0a\x01\x61\x18\x05", 5 },           /* string, then int */
	};
	enum { NAV = sizeof av / sizeof av[0] };
	static struct wb kv;
	uint32_t accepted = 0, refused = 0;
	for (uint32_t len = 1; len <= 4; len++) {
		uint32_t combos = 1;
		for (uint32_t i = 0; i < len; i++)
			combos *= NAV;
		for (uint32_t x = 0; x < combos; x++) {
			kv.n = 0;
			wb_bytes(&kv, 1, "k", 1);
			for (uint32_t i = 0, y = x; i < len; i++, y /= NAV)
				wb_bytes(&kv, 2, av[y % NAV].b, av[y % NAV].n);
			Opentelemetry__Proto__Common__V1__KeyValue *r =
				opentelemetry__proto__common__v1__key_value__unpack(NULL, kv.n, kv.b);
			struct kn_wire_ctx c = { 0 };
			int ours = kn_wire_check_kv(&c, kv.b, kv.b + kv.n, 0) == 0;
			if (ours != (r != NULL))
				fail_msg("%u occurrences, combination %u: reader %s, protobuf-c %s",
					 len, x, ours ? "accepts" : "refuses", r ? "accepts" : "refuses");
			if (r)
				opentelemetry__proto__common__v1__key_value__free_unpacked(r, NULL);
			accepted += ours;
			refused += !ours;
		}
	}
	assert_true(accepted > 0 && refused > 0);   /* both sides of the line were met */

	/* the message, at the top and inside a kvlist */
	static struct wb sp, req, extra, list, val;
	const char *pre = "resource_spans[0].scope_spans[0].spans[0].";
	const char *why = "repeated without a value where the one before has none either "
			  "(protobuf-c cannot merge them)";
	char want[300];
	kv.n = 0;
	wb_bytes(&kv, 1, "k", 1);
	wb_bytes(&kv, 2, "\x0a\x01\x61", 3);
	wb_bytes(&kv, 2, "", 0);
	wb_bytes(&kv, 2, "", 0);
	extra.n = 0;
	wb_bytes(&extra, 9, "\x0a\x01x", 3);
	wb_sub(&extra, 9, &kv);
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	assert_null(pb_unpack(req.b, req.n));
	snprintf(want, sizeof want, "%sattributes[1].value: %s", pre, why);
	expect_invalid(&req, want);
	kv.n = 0;
	wb_bytes(&kv, 1, "k", 1);
	wb_bytes(&kv, 2, "", 0);
	wb_bytes(&kv, 2, "", 0);
	list.n = 0;
	wb_sub(&list, 1, &kv);
	val.n = 0;
	wb_sub(&val, 6, &list);
	kv.n = 0;
	wb_bytes(&kv, 1, "outer", 5);
	wb_sub(&kv, 2, &val);
	extra.n = 0;
	wb_sub(&extra, 9, &kv);
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	assert_null(pb_unpack(req.b, req.n));
	snprintf(want, sizeof want, "%sattributes[0].value.kvlist_value.values[0].value: %s", pre, why);
	expect_invalid(&req, want);
	/* an int survives the merge: accepted by both */
	kv.n = 0;
	wb_bytes(&kv, 1, "k", 1);
	wb_bytes(&kv, 2, "\x18\x05", 2);
	wb_bytes(&kv, 2, "", 0);
	wb_bytes(&kv, 2, "", 0);
	extra.n = 0;
	wb_sub(&extra, 9, &kv);
	wb_span(&sp, &extra);
	wb_request(&req, &sp);
	expect_ok_both(&req, 1);
}

static void test_varint_helpers(void **state)
{
	(void)state;
	static const uint64_t vals[] = { 0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX,
					 (uint64_t)1 << 63, UINT64_MAX };
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		uint8_t b[10];
		size_t n = kn_wire_put_varint(b, vals[i]);
		assert_int_equal(n, kn_wire_varint_len(vals[i]));
		const uint8_t *p = b;
		uint64_t v;
		assert_int_equal(kn_wire_get_varint(&p, b + n, &v), 0);
		assert_true(v == vals[i]);
		assert_ptr_equal(p, b + n);
		p = b;
		if (n > 1)
			assert_int_equal(kn_wire_get_varint(&p, b + n - 1, &v), -1);
	}
	uint8_t eleven[11];
	memset(eleven, 0x80, 10);
	eleven[10] = 0;
	const uint8_t *p = eleven;
	uint64_t v;
	assert_int_equal(kn_wire_get_varint(&p, eleven + 11, &v), -1);
	assert_int_equal(kn_wire_varint_len(UINT64_MAX), 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint_helpers),
		cmocka_unit_test(test_random_cross_check),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_unknown_fields_everywhere),
		cmocka_unit_test(test_nesting_limit),
		cmocka_unit_test(test_truncation_every_offset),
		cmocka_unit_test(test_wrong_wire_types),
		cmocka_unit_test(test_malformed_framing),
		cmocka_unit_test(test_invalid_ids),
		cmocka_unit_test(test_last_one_wins),
		cmocka_unit_test(test_kv_fast_agrees),
		cmocka_unit_test(test_attr_index_after_mixed_shapes),
		cmocka_unit_test(test_repeated_value_like_protobuf_c),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
