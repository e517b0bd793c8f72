/* SPDX-License-Identifier: Apache-2.0
 * fuzz_ottl: the OTTL lexer, parser and compiler on arbitrary text, and
 * every program that compiles evaluated against a fixed request (two
 * resources, scopes, spans with attributes of every type, events).
 *
 * Input: byte 0 chooses statement or condition (bit 0) and the context
 * (bits 1-2: resource, scope, span, spanevent; bit 3: infer it); the rest
 * is the text. A compile error must come with a message naming the config
 * path; a program that compiles runs through kn_wire_edit exactly as the
 * transform processor runs it, and its output (when something changed)
 * must be accepted by the wire reader and by protobuf-c with the same
 * number of spans; a condition is evaluated on every element of its
 * context. Nothing may crash, leak or read out of bounds; a disagreement
 * abort()s. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/ottl/kn_ottl.h"
#include "collector/wire/kn_wire.h"
#include "collector/wire/kn_wire_edit.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* The fixed request, encoded by hand: protobuf field by field. */
static uint8_t req[2048];
static size_t req_len;

struct w {
	uint8_t *p;
	size_t n;
};

static void put(struct w *w, const void *b, size_t n)
{
	memcpy(w->p + w->n, b, n);
	w->n += n;
}

static void varint(struct w *w, uint64_t v)
{
	w->n += kn_wire_put_varint(w->p + w->n, v);
}

static void lenf(struct w *w, uint32_t num, const struct w *in)
{
	varint(w, (uint64_t)num << 3 | 2);
	varint(w, in->n);
	put(w, in->p, in->n);
}

static void strf(struct w *w, uint32_t num, const char *s)
{
	struct w in = {(uint8_t *)s, strlen(s)};
	lenf(w, num, &in);
}

/* A KeyValue whose AnyValue is `any` (already encoded). */
static void kvf(struct w *w, uint32_t num, const char *k, const uint8_t *any, size_t alen)
{
	uint8_t b[256];
	struct w kv = {b, 0}, a = {(uint8_t *)any, alen};
	strf(&kv, 1, k);
	lenf(&kv, 2, &a);
	lenf(w, num, &kv);
}

static void build(void)
{
	uint8_t rb[1024], sb[1024], spb[2][512], b[256];
	struct w r = {req, 0};
	for (int ri = 0; ri < 2; ri++) {
		struct w rs = {rb, 0}, res = {b, 0}, ss = {sb, 0};
		kvf(&res, 1, "service.name", (const uint8_t *)(ri ? "\x0a\x02" "db" : "\x0a\x03" "api"), ri ? 4 : 5);
		lenf(&rs, 1, &res);
		uint8_t scb[64];
		struct w sc = {scb, 0};
		strf(&sc, 1, ri ? "db-lib" : "lib");
		strf(&sc, 2, "1.0");
		lenf(&ss, 1, &sc);
		for (int k = 0; k < 2; k++) {
			struct w sp = {spb[k], 0};
			uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, (uint8_t)(ri * 2 + k + 1)};
			uint8_t sid[8] = {0xa1, 0, 0, 0, 0, 0, 0, (uint8_t)(k + 1)};
			struct w t = {tid, 16}, s = {sid, 8};
			lenf(&sp, 1, &t);
			lenf(&sp, 2, &s);
			if (k) {
				sid[7] = 1;
				lenf(&sp, 4, &s);
			}
			strf(&sp, 5, k ? "/healthz" : "GET /users/42");
			varint(&sp, 6 << 3);
			varint(&sp, (uint64_t)(k ? 1 : 2));
			uint8_t ts[9] = {7 << 3 | 1, 0, 0xca, 0x9a, 0x3b, 0, 0, 0, 0};
			put(&sp, ts, 9);
			uint8_t te[9] = {8 << 3 | 1, 0x20, 0x25, 0xaa, 0x3b, 0, 0, 0, 0};
			put(&sp, te, 9);
			kvf(&sp, 9, "http.route", (const uint8_t *)"\x0a\x0a/users/:id", 12);
			kvf(&sp, 9, "http.status_code", (const uint8_t *)"\x18\xc8\x01", 3);
			kvf(&sp, 9, "ratio", (const uint8_t *)"\x21\x00\x00\x00\x00\x00\x00\xe0\x3f", 9);
			kvf(&sp, 9, "ok", (const uint8_t *)"\x10\x01", 2);
			kvf(&sp, 9, "tags", (const uint8_t *)"\x2a\x0a\x0a\x03\x0a\x01" "a" "\x0a\x03\x0a\x01" "b", 12);
			kvf(&sp, 9, "http", (const uint8_t *)"\x32\x0c\x0a\x0a\x0a\x04" "port" "\x12\x02\x18\x50", 14);
			kvf(&sp, 9, "raw", (const uint8_t *)"\x3a\x02\x01\x02", 4);
			kvf(&sp, 9, "note", (const uint8_t *)"\x0a\x06h\xc3\xa9llo", 8);
			uint8_t evb[64];
			struct w ev = {evb, 0};
			strf(&ev, 2, k ? "log" : "exception");
			kvf(&ev, 3, "exception.type", (const uint8_t *)"\x0a\x01" "E", 3);
			lenf(&sp, 11, &ev);
			lenf(&sp, 11, &ev);
			uint8_t stb[16];
			struct w st = {stb, 0};
			strf(&st, 2, "boom");
			varint(&st, 3 << 3);
			varint(&st, 2);
			lenf(&sp, 15, &st);
			lenf(&ss, 2, &sp);
		}
		lenf(&rs, 2, &ss);
		lenf(&r, 1, &rs);
	}
	req_len = r.n;
}

struct run {
	struct kn_ottl_tx *tx;
	const struct kn_ottl_prog *p;
	int ctx, stmt;
};

static void one(struct run *r, int ctx)
{
	if (ctx != r->ctx)
		return;
	if (r->stmt)
		kn_ottl_exec(r->p, r->tx);
	else
		kn_ottl_cond(r->p, r->tx);
}

static int on_res(void *c, struct kn_wire_edit *ed, const struct kn_wire_edit_res *rr)
{
	struct run *r = c;
	kn_ottl_tx_resource(r->tx, rr->msg, rr->len);
	one(r, KN_OTTL_CTX_RESOURCE);
	if (kn_ottl_tx_emit(r->tx, KN_OTTL_CTX_RESOURCE, ed) < 0)
		abort();
	return 0;
}

static int on_scope(void *c, struct kn_wire_edit *ed, const struct kn_wire_edit_scope *sc)
{
	struct run *r = c;
	kn_ottl_tx_scope(r->tx, sc->msg, sc->len);
	one(r, KN_OTTL_CTX_SCOPE);
	if (kn_ottl_tx_emit(r->tx, KN_OTTL_CTX_SCOPE, ed) < 0)
		abort();
	return 0;
}

static int on_span(void *c, struct kn_wire_edit *ed, const struct kn_wire_edit_span *sp)
{
	struct run *r = c;
	kn_ottl_tx_span(r->tx, sp->span, sp->span_len);
	one(r, KN_OTTL_CTX_SPAN);
	if (r->ctx == KN_OTTL_CTX_SPANEVENT) {
		int n = kn_ottl_tx_nevents(r->tx);
		for (int i = 0; i < n; i++) {
			kn_ottl_tx_event(r->tx, (uint32_t)i);
			one(r, KN_OTTL_CTX_SPANEVENT);
			if (kn_ottl_tx_event_done(r->tx) < 0)
				abort();
		}
	}
	if (kn_ottl_tx_emit(r->tx, KN_OTTL_CTX_SPAN, ed) < 0)
		abort();
	return 0;
}

static const struct kn_wire_edit_ops ops = {.resource = on_res, .scope = on_scope, .span = on_span};

/* The request's index (built once, then reused to check outputs). The OTTL
 * context and the editor are fresh for every input, as a new shard's are:
 * state kept across inputs hides the bugs of a first use (the NULL + 0
 * found in kn_tail_scan_attr hid that way). */
static struct kn_wire_index ix;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!req_len) {
		build();
		kn_wire_index_init(&ix);
		struct kn_err e = {{0}};
		if (kn_wire_index_request(&ix, req, req_len, &e) != KN_OK || ix.nspans != 4)
			abort();
	}
	if (size < 1 || size > 4096)
		return 0;
	int stmt = data[0] & 1, ctx = data[0] >> 1 & 3, infer = data[0] & 8;
	char *src = malloc(size);
	if (!src)
		return 0;
	memcpy(src, data + 1, size - 1);
	src[size - 1] = '\0';
	struct kn_ottl_prog *p = NULL;
	struct kn_err err = {{0}};
	if (kn_ottl_compile(src, stmt ? KN_OTTL_STATEMENT : KN_OTTL_CONDITION, infer ? KN_OTTL_CTX_INFER : ctx,
			    KN_OTTL_CTX_SPAN, "fuzz.ottl[0]", &p, &err) != KN_OK) {
		if (strncmp(err.msg, "fuzz.ottl[0]: ", 14) != 0)
			abort();
		free(src);
		return 0;
	}
	struct kn_ottl_tx *tx = kn_ottl_tx_new();
	if (!tx)
		abort();
	struct kn_wire_edit ed;
	kn_wire_edit_init(&ed);
	struct run r = {.tx = tx, .p = p, .ctx = kn_ottl_prog_ctx(p), .stmt = stmt};
	struct kn_chunk *out = NULL;
	/* the callbacks abort on a failed emit: a run on the valid request cannot fail */
	if (kn_wire_edit_run(&ed, &ops, &r, req, req_len, 4, NULL, &out, &err) != KN_OK)
		abort();
	if (out) {
		struct kn_err e2 = {{0}};
		if (kn_wire_index_request(&ix, out->data, out->len, &e2) != KN_OK || ix.nspans != 4 || ix.rejected)
			abort();
		Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *m =
			opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, out->len, out->data);
		if (!m)
			abort();
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(m, NULL);
		kn_chunk_unref(out);
	}
	kn_wire_edit_free(&ed);
	kn_ottl_tx_free(tx);
	kn_ottl_prog_free(p);
	free(src);
	return 0;
}
