/* SPDX-License-Identifier: Apache-2.0
 * collector/wire's splicing editor (kn_wire_edit) and attribute view
 * (kn_wire_attrs): results decoded with protobuf-c and compared with what
 * the edit meant; spans and resources nobody changed stay byte-identical;
 * no edit means no new chunk; the framing lengths are consistent (the full
 * checked reader accepts every output); random requests (kn_wire_gen) with
 * random edits; mutated (malformed) inputs never crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/wire/kn_wire.h"
#include "collector/wire/kn_wire_attrs.h"
#include "collector/wire/kn_wire_edit.h"
#include "collector/wire/kn_wire_gen.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "kn_test_chunks.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Resource__V1__Resource Res;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;

#define unpack_req(len, buf) \
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len, buf)
#define free_req(r) \
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL)

/* The output's span headers (carried over from the input chunk) equal a
 * fresh, checked index of its bytes. */
static void assert_headers_fresh(const struct kn_chunk *c, uint32_t nspans)
{
	struct kn_wire_index ix;
	struct kn_err err;
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, c->data, c->len, &err), KN_OK);
	assert_int_equal(ix.nspans, nspans);
	assert_int_equal(ix.rejected, 0);
	for (uint32_t i = 0; i < nspans; i++)
		kn_test_assert_hdr_equal(&c->spans[i], &ix.spans[i]);
	kn_wire_index_free(&ix);
}

/* ---- building requests ---- */

static KV *kv_str(const char *k, const char *v)
{
	KV *kv = calloc(1, sizeof *kv);
	AV *av = calloc(1, sizeof *av);
	opentelemetry__proto__common__v1__key_value__init(kv);
	opentelemetry__proto__common__v1__any_value__init(av);
	av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	av->string_value = strdup(v);
	kv->key = strdup(k);
	kv->value = av;
	return kv;
}

static KV *kv_int(const char *k, int64_t v)
{
	KV *kv = kv_str(k, "");
	free(kv->value->string_value);
	kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
	kv->value->int_value = v;
	return kv;
}

/* A request: nres resources ("svc<r>", attrs: service.name, env=prod (r even),
 * no Resource at all when r == 2), one scope each with nspans spans, span s
 * with attrs a=s, b=<int s>, c=x. Spans get distinct ids. */
static uint8_t *build(uint32_t nres, uint32_t nspans, size_t *len)
{
	Req req;
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
	req.n_resource_spans = nres;
	req.resource_spans = calloc(nres, sizeof *req.resource_spans);
	static uint8_t ids[64][24];
	uint32_t k = 0;
	for (uint32_t r = 0; r < nres; r++) {
		RS *rs = calloc(1, sizeof *rs);
		opentelemetry__proto__trace__v1__resource_spans__init(rs);
		req.resource_spans[r] = rs;
		if (r != 2) {
			Res *res = calloc(1, sizeof *res);
			opentelemetry__proto__resource__v1__resource__init(res);
			res->n_attributes = r % 2 == 0 ? 2 : 1;
			res->attributes = calloc(2, sizeof *res->attributes);
			char svc[16];
			snprintf(svc, sizeof svc, "svc%u", r);
			res->attributes[0] = kv_str("service.name", svc);
			if (r % 2 == 0)
				res->attributes[1] = kv_str("env", "prod");
			rs->resource = res;
		}
		SS *ss = calloc(1, sizeof *ss);
		opentelemetry__proto__trace__v1__scope_spans__init(ss);
		rs->n_scope_spans = 1;
		rs->scope_spans = calloc(1, sizeof *rs->scope_spans);
		rs->scope_spans[0] = ss;
		ss->n_spans = nspans;
		ss->spans = calloc(nspans, sizeof *ss->spans);
		for (uint32_t s = 0; s < nspans; s++, k++) {
			Span *sp = calloc(1, sizeof *sp);
			opentelemetry__proto__trace__v1__span__init(sp);
			memset(ids[k % 64], 0, 24);
			ids[k % 64][0] = (uint8_t)(k + 1);
			ids[k % 64][16] = (uint8_t)(k + 1);
			sp->trace_id.data = ids[k % 64];
			sp->trace_id.len = 16;
			sp->span_id.data = ids[k % 64] + 16;
			sp->span_id.len = 8;
			sp->name = strdup("op");
			sp->start_time_unix_nano = 1000;
			sp->end_time_unix_nano = 2000;
			char v[16];
			snprintf(v, sizeof v, "%u", s);
			sp->n_attributes = 3;
			sp->attributes = calloc(3, sizeof *sp->attributes);
			sp->attributes[0] = kv_str("a", v);
			sp->attributes[1] = kv_int("b", s);
			sp->attributes[2] = kv_str("c", "x");
			ss->spans[s] = sp;
		}
	}
	*len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	uint8_t *buf = malloc(*len);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
	/* free the tree (ids are static) */
	for (uint32_t r = 0; r < nres; r++) {
		RS *rs = req.resource_spans[r];
		for (uint32_t s = 0; s < rs->scope_spans[0]->n_spans; s++) {
			Span *sp = rs->scope_spans[0]->spans[s];
			sp->trace_id.data = sp->span_id.data = NULL;
			sp->trace_id.len = sp->span_id.len = 0;
		}
		opentelemetry__proto__trace__v1__resource_spans__free_unpacked(rs, NULL);
	}
	free(req.resource_spans);
	return buf;
}

static const KV *find_kv(KV **kvs, size_t n, const char *k)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kvs[i]->key, k))
			return kvs[i];
	return NULL;
}

/* ---- edits used by the tests ---- */

struct ectx {
	struct kn_wire_attrs at;
	int mode;
	uint32_t nspans_seen, nres_seen;
};

enum { M_NONE, M_SPAN_ONE, M_SPAN_ALL, M_RES, M_RENAME, M_DEL_ALL };

static int on_res(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_res *r)
{
	struct ectx *e = ctx;
	e->nres_seen++;
	if (e->mode != M_RES)
		return 0;
	if (kn_wire_attrs_load(&e->at, r->msg, r->len, 1) < 0)
		return -1;
	struct kn_av v = {.type = KN_AV_STR, .s = (const uint8_t *)"eu-1", .len = 4};
	if (kn_wire_attrs_put(&e->at, "cloud.region", 12, &v) < 0)
		return -1;
	int i = kn_wire_attrs_find(&e->at, "env", 3);
	if (i >= 0)
		kn_wire_attrs_del(&e->at, (uint32_t)i);
	return kn_wire_attrs_emit(&e->at, ed) < 0 ? -1 : 0;
}

static int on_span(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_span *sp)
{
	struct ectx *e = ctx;
	uint32_t n = e->nspans_seen++;
	if (e->mode == M_NONE || e->mode == M_RES)
		return 0;
	if (e->mode == M_SPAN_ONE && n != 1)
		return 0;
	if (kn_wire_attrs_load(&e->at, sp->span, sp->span_len, 9) < 0)
		return -1;
	if (e->mode == M_RENAME) {
		int i = kn_wire_attrs_find(&e->at, "a", 1);
		kn_wire_attrs_rename(&e->at, (uint32_t)i, "renamed", 7);
	} else if (e->mode == M_DEL_ALL) {
		for (uint32_t i = 0; i < e->at.n; i++)
			kn_wire_attrs_del(&e->at, i);
	} else {
		/* update a (string -> double), insert d (bool), delete c */
		struct kn_av d = {.type = KN_AV_DOUBLE, .d = 2.5};
		kn_wire_attrs_set(&e->at, (uint32_t)kn_wire_attrs_find(&e->at, "a", 1), &d);
		struct kn_av b = {.type = KN_AV_BOOL, .b = 1};
		if (kn_wire_attrs_add(&e->at, "d", 1, &b) < 0)
			return -1;
		kn_wire_attrs_del(&e->at, (uint32_t)kn_wire_attrs_find(&e->at, "c", 1));
	}
	return kn_wire_attrs_emit(&e->at, ed) < 0 ? -1 : 0;
}

static const struct kn_wire_edit_ops ops = {.resource = on_res, .span = on_span};

/* Runs mode on buf; returns the new chunk (NULL when unchanged) and checks
 * the output with the full checked reader. */
static struct kn_chunk *run(int mode, const uint8_t *buf, size_t len, uint32_t nspans)
{
	struct kn_wire_edit ed;
	struct ectx e = {.mode = mode};
	kn_wire_edit_init(&ed);
	kn_wire_attrs_init(&e.at);
	struct kn_chunk *c = NULL;
	struct kn_err err = {{0}};
	/* the input as a chunk: its headers from the index, carried to the output */
	struct kn_wire_index in;
	kn_wire_index_init(&in);
	assert_int_equal(kn_wire_index_request(&in, buf, len, &err), KN_OK);
	struct kn_chunk like = {.nspans = in.nspans, .len = (uint32_t)len, .spans = in.spans,
				.data = (uint8_t *)buf};
	uint64_t carried = kn_wire_edit_carried;
	int rc = kn_wire_edit_run(&ed, &ops, &e, buf, len, nspans, &like, &c, &err);
	if (rc != KN_OK)
		fail_msg("edit: %s", err.msg);
	if (c) {
		assert_true(kn_wire_edit_carried == carried + 1);
		assert_headers_fresh(c, nspans);
	}
	kn_wire_index_free(&in);
	kn_wire_attrs_free(&e.at);
	kn_wire_edit_free(&ed);
	return c;
}

/* The bytes of span i (Span message) in buf, via the index. */
static void span_bytes(const uint8_t *buf, size_t len, uint32_t i, const uint8_t **p, uint32_t *n)
{
	struct kn_wire_index ix;
	struct kn_err err;
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
	*p = buf + ix.spans[i].off;
	*n = ix.spans[i].len;
	kn_wire_index_free(&ix);
}

static void test_no_edit_no_chunk(void **st)
{
	(void)st;
	size_t len;
	uint8_t *buf = build(3, 4, &len);
	assert_null(run(M_NONE, buf, len, 12));
	free(buf);
}

static void test_span_edit(void **st)
{
	(void)st;
	size_t len;
	uint8_t *buf = build(2, 3, &len);
	struct kn_chunk *c = run(M_SPAN_ONE, buf, len, 6);
	assert_non_null(c);
	/* every other span byte-identical; resources too */
	for (uint32_t i = 0; i < 6; i++) {
		const uint8_t *a, *b;
		uint32_t na, nb;
		span_bytes(buf, len, i, &a, &na);
		span_bytes(c->data, c->len, i, &b, &nb);
		if (i == 1)
			continue;
		assert_int_equal(na, nb);
		assert_memory_equal(a, b, na);
	}
	/* the second ResourceSpans was untouched: its bytes are in the output verbatim */
	Req *in = unpack_req(len, buf), *out = unpack_req(c->len, c->data);
	assert_non_null(out);
	Span *sp = out->resource_spans[0]->scope_spans[0]->spans[1];
	assert_int_equal(sp->n_attributes, 3);
	assert_string_equal(sp->attributes[0]->key, "a");   /* updated in place */
	assert_int_equal(sp->attributes[0]->value->value_case,
			 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
	assert_true(sp->attributes[0]->value->double_value == 2.5);
	assert_string_equal(sp->attributes[1]->key, "b");
	assert_int_equal(sp->attributes[1]->value->int_value, 1);
	assert_string_equal(sp->attributes[2]->key, "d");   /* appended */
	assert_true(sp->attributes[2]->value->bool_value);
	assert_null(find_kv(sp->attributes, sp->n_attributes, "c"));
	/* everything else of the span as it was */
	Span *si = in->resource_spans[0]->scope_spans[0]->spans[1];
	assert_string_equal(sp->name, si->name);
	assert_memory_equal(sp->span_id.data, si->span_id.data, 8);
	assert_int_equal(sp->end_time_unix_nano, si->end_time_unix_nano);
	free_req(in);
	free_req(out);
	kn_chunk_unref(c);
	free(buf);
}

static void test_resource_edit(void **st)
{
	(void)st;
	size_t len;
	uint8_t *buf = build(3, 2, &len);   /* resource 2 is absent */
	struct kn_chunk *c = run(M_RES, buf, len, 6);
	assert_non_null(c);
	Req *out = unpack_req(c->len, c->data);
	assert_non_null(out);
	assert_int_equal(out->n_resource_spans, 3);
	for (uint32_t r = 0; r < 3; r++) {
		Res *res = out->resource_spans[r]->resource;
		assert_non_null(res);
		const KV *kv = find_kv(res->attributes, res->n_attributes, "cloud.region");
		assert_non_null(kv);
		assert_string_equal(kv->value->string_value, "eu-1");
		assert_null(find_kv(res->attributes, res->n_attributes, "env"));
		assert_int_equal(out->resource_spans[r]->scope_spans[0]->n_spans, 2);
	}
	assert_string_equal(out->resource_spans[0]->resource->attributes[0]->key, "service.name");
	assert_int_equal(out->resource_spans[2]->resource->n_attributes, 1);
	/* spans untouched, byte for byte */
	for (uint32_t i = 0; i < 6; i++) {
		const uint8_t *a, *b;
		uint32_t na, nb;
		span_bytes(buf, len, i, &a, &na);
		span_bytes(c->data, c->len, i, &b, &nb);
		assert_int_equal(na, nb);
		assert_memory_equal(a, b, na);
	}
	free_req(out);
	kn_chunk_unref(c);
	free(buf);
}

static void test_rename_and_delete_all(void **st)
{
	(void)st;
	size_t len;
	uint8_t *buf = build(1, 2, &len);
	struct kn_chunk *c = run(M_RENAME, buf, len, 2);
	Req *out = unpack_req(c->len, c->data);
	Span *sp = out->resource_spans[0]->scope_spans[0]->spans[0];
	assert_string_equal(sp->attributes[0]->key, "renamed");
	assert_string_equal(sp->attributes[0]->value->string_value, "0");
	assert_int_equal(sp->n_attributes, 3);
	free_req(out);
	kn_chunk_unref(c);
	c = run(M_DEL_ALL, buf, len, 2);
	out = unpack_req(c->len, c->data);
	assert_int_equal(out->resource_spans[0]->scope_spans[0]->spans[1]->n_attributes, 0);
	free_req(out);
	kn_chunk_unref(c);
	free(buf);
}

static void test_av_strings(void **st)
{
	(void)st;
	char buf[64];
	const char *t;
	struct kn_av v = {.type = KN_AV_DOUBLE, .d = 0.1};
	assert_int_equal(kn_av_string(&v, buf, &t), 3);
	assert_string_equal(t, "0.1");
	v.d = 1e21;
	kn_av_string(&v, buf, &t);
	assert_string_equal(t, "1e+21");
	v.d = 1e-7;
	kn_av_string(&v, buf, &t);
	assert_string_equal(t, "1e-7");
	v.d = 123456.5;
	kn_av_string(&v, buf, &t);
	assert_string_equal(t, "123456.5");
	v.d = 3;
	kn_av_string(&v, buf, &t);
	assert_string_equal(t, "3");
	v = (struct kn_av){.type = KN_AV_INT, .i = -42};
	kn_av_string(&v, buf, &t);
	assert_string_equal(t, "-42");
	v = (struct kn_av){.type = KN_AV_BOOL, .b = 0};
	kn_av_string(&v, buf, &t);
	assert_string_equal(t, "false");
}

/* Random requests of every shape, random edits of every kind on spans and
 * resources: the output is a request protobuf-c and the checked reader
 * accept, with the same number of spans. */
struct rctx {
	struct kn_wire_attrs at;
	uint64_t rng;
	uint32_t edits;
};

static uint32_t rnd(struct rctx *r)
{
	r->rng = r->rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(r->rng >> 33);
}

static int rand_edit(struct rctx *r, struct kn_wire_edit *ed, const uint8_t *m, uint32_t len, uint32_t field)
{
	if (kn_wire_attrs_load(&r->at, m, len, field) < 0)
		return 0;
	uint32_t n = rnd(r) % 4;
	for (uint32_t k = 0; k < n; k++) {
		struct kn_av v = {.type = (enum kn_av_type)(1 + rnd(r) % 4), .s = (const uint8_t *)"vv", .len = 2,
				  .i = -7, .d = 1.25, .b = 1};
		uint32_t what = rnd(r) % 4;
		if (what == 0 || r->at.n == 0) {
			if (kn_wire_attrs_add(&r->at, "new", 3, &v) < 0)
				return -1;
		} else if (what == 1) {
			kn_wire_attrs_del(&r->at, rnd(r) % r->at.n);
		} else if (what == 2) {
			uint32_t i = rnd(r) % r->at.n;
			if (r->at.a[i].state != KN_WA_DELETED)
				kn_wire_attrs_set(&r->at, i, &v);
		} else {
			uint32_t i = rnd(r) % r->at.n;
			if (r->at.a[i].state != KN_WA_DELETED)
				kn_wire_attrs_rename(&r->at, i, "rn", 2);
		}
	}
	int rc = kn_wire_attrs_emit(&r->at, ed);
	r->edits += rc > 0;
	return rc < 0 ? -1 : 0;
}

static int r_res(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_res *res)
{
	return rand_edit(ctx, ed, res->msg, res->len, 1);
}

static int r_span(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_span *sp)
{
	return rand_edit(ctx, ed, sp->span, sp->span_len, 9);
}

static const struct kn_wire_edit_ops rops = {.resource = r_res, .span = r_span};

static void test_random(void **st)
{
	(void)st;
	struct kn_wire_gen_opts o = {.max_resources = 3, .max_scopes = 3, .max_spans = 4,
				     .max_attrs = 5, .max_depth = 3};
	struct kn_wire_edit ed;
	kn_wire_edit_init(&ed);
	struct rctx r = {.rng = 42};
	kn_wire_attrs_init(&r.at);
	for (uint64_t seed = 1; seed <= 400; seed++) {
		kn_wire_gen_req *g = kn_wire_gen_request(seed, &o);
		size_t len;
		uint8_t *buf = kn_wire_gen_pack(g, &len);
		struct kn_wire_index ix;
		struct kn_err err;
		kn_wire_index_init(&ix);
		assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
		uint32_t nspans = ix.nspans;
		struct kn_chunk *c = NULL, *c2 = NULL;
		struct kn_chunk like = {.nspans = nspans, .len = (uint32_t)len, .spans = ix.spans,
					.data = buf};
		uint64_t rng = r.rng;
		r.edits = 0;
		assert_int_equal(kn_wire_edit_run(&ed, &rops, &r, buf, len, nspans, &like, &c, &err), KN_OK);
		/* the same edits without an input chunk: the output indexed instead */
		r.rng = rng;
		assert_int_equal(kn_wire_edit_run(&ed, &rops, &r, buf, len, nspans, NULL, &c2, &err), KN_OK);
		if (r.edits == 0) {
			assert_null(c);
			assert_null(c2);
		} else {
			assert_non_null(c);
			assert_non_null(c2);
			assert_int_equal(c->len, c2->len);
			assert_memory_equal(c->data, c2->data, c->len);
			assert_headers_fresh(c, nspans);
			for (uint32_t i = 0; i < nspans; i++)
				kn_test_assert_hdr_equal(&c->spans[i], &c2->spans[i]);
			kn_chunk_unref(c2);
			assert_int_equal(kn_wire_index_request(&ix, c->data, c->len, &err), KN_OK);
			assert_int_equal(ix.nspans, nspans);
			Req *out = unpack_req(c->len, c->data);
			assert_non_null(out);
			free_req(out);
			kn_chunk_unref(c);
		}
		kn_wire_index_free(&ix);
		free(buf);
		kn_wire_gen_free(g);
	}
	kn_wire_attrs_free(&r.at);
	kn_wire_edit_free(&ed);
}

/* Mutated inputs: truncations and flipped bytes never crash (ASan / UBSan
 * builds check that); an accepted result is a buffer of the stated size. */
static void test_malformed(void **st)
{
	(void)st;
	size_t len;
	uint8_t *buf = build(3, 3, &len);
	struct kn_wire_edit ed;
	kn_wire_edit_init(&ed);
	struct rctx r = {.rng = 7};
	kn_wire_attrs_init(&r.at);
	uint8_t *m = malloc(len);
	for (uint32_t it = 0; it < 3000; it++) {
		memcpy(m, buf, len);
		size_t n = len;
		if (it % 3 == 0)
			n = rnd(&r) % len;
		else
			for (uint32_t k = 0; k < 1 + it % 4; k++)
				m[rnd(&r) % len] = (uint8_t)rnd(&r);
		struct kn_chunk *c = NULL;
		struct kn_err err;
		if (kn_wire_edit_run(&ed, &rops, &r, m, n, 9, NULL, &c, &err) == KN_OK && c) {
			assert_true(c->len > 0);
			kn_chunk_unref(c);
		}
	}
	free(m);
	kn_wire_attrs_free(&r.at);
	kn_wire_edit_free(&ed);
	free(buf);
}

/* A splice out of order or out of bounds fails the run instead of writing. */
static int bad_span(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_span *sp)
{
	(void)ctx;
	if (!kn_wire_edit_splice(ed, 4, 0, 1))
		return -1;
	if (kn_wire_edit_splice(ed, 2, 0, 1))   /* before the previous one */
		return 0;
	if (kn_wire_edit_splice(ed, sp->span_len, 1, 0))
		return 0;
	return -1;
}

static void test_bad_splices(void **st)
{
	(void)st;
	size_t len;
	uint8_t *buf = build(1, 1, &len);
	struct kn_wire_edit ed;
	kn_wire_edit_init(&ed);
	const struct kn_wire_edit_ops o = {.span = bad_span};
	struct kn_chunk *c = NULL;
	struct kn_err err;
	assert_int_equal(kn_wire_edit_run(&ed, &o, NULL, buf, len, 1, NULL, &c, &err), KN_ERR);
	assert_null(c);
	kn_wire_edit_free(&ed);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_edit_no_chunk),
		cmocka_unit_test(test_span_edit),
		cmocka_unit_test(test_resource_edit),
		cmocka_unit_test(test_rename_and_delete_all),
		cmocka_unit_test(test_av_strings),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bad_splices),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
