/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_view: the allocation-free walk over a trace's ResourceSpans bytes
 * (see kn_tail_view.h), and the OTel "resource or span has an attribute that
 * matches" helper the attribute policies share.
 *
 * Every read is bounds-checked against the enclosing message; a malformed
 * field ends the walk of that message (never an error: a policy simply sees
 * fewer spans or attributes). Field numbers follow the OTLP protos:
 * ResourceSpans{1 resource, 2 scope_spans}, ScopeSpans{1 scope, 2 spans},
 * Span{1 trace_id, 3 trace_state, 7 start, 8 end, 9 attributes, 15 status,
 * 16 flags}, Status{3 code}, KeyValue{1 key, 2 value}, AnyValue{1 string,
 * 2 bool, 3 int, 4 double, 5 array, 6 kvlist, 7 bytes}. */
#include "kn_tail_view.h"

#include <string.h>

#include "../../collector/wire/kn_wire_field.h"

#include "policies/kn_tail_policy_int.h"

void kn_tail_walk_init_bytes(struct kn_tail_walk *w, const uint8_t *data, size_t len)
{
	w->p = data;
	w->end = data ? data + len : data;
}

void kn_tail_walk_init(struct kn_tail_walk *w, const struct kn_tail_trace *t)
{
	kn_tail_walk_init_bytes(w, t->data, t->data ? t->len : 0);
}

int kn_tail_walk_next(struct kn_tail_walk *w, struct kn_tail_rs *rs)
{
	struct kn_wire_field f;
	int r;
	while ((r = kn_wire_field_next(&w->p, w->end, &f)) > 0) {
		if (f.num != 1 || f.wt != KN_WIRE_FIELD_LEN)
			continue;
		memset(rs, 0, sizeof *rs);
		rs->p = f.payload;
		rs->end = f.payload + f.len;
		/* the Resource may sit anywhere among the fields: find it first (last wins) */
		const uint8_t *q = rs->p;
		struct kn_wire_field g = {0};
		while (kn_wire_field_next(&q, rs->end, &g) > 0) {
			if (g.num == 1 && g.wt == KN_WIRE_FIELD_LEN) {
				rs->resource = g.payload;
				rs->resource_len = g.len;
			}
		}
		return 1;
	}
	if (r < 0)
		w->p = w->end;
	return 0;
}

/* One KeyValue's bytes: fn(key, value), the last occurrence of each
 * winning; fn's return. */
static int kn_kv_one(const uint8_t *b, uint32_t blen, kn_tail_kv_fn fn, void *ctx)
{
	const uint8_t *q = b, *qend = b + blen;
	const uint8_t *k = NULL, *val = NULL;
	uint32_t klen = 0, vlen = 0;
	struct kn_wire_field g;
	/* the usual encoding, {0x0a len key 0x12 len value} with one-byte
	 * lengths filling the KeyValue, reads without the general loop */
	if (blen >= 4 && q[0] == 0x0a && q[1] < 0x80 && blen - 2 >= (uint32_t)q[1] + 2u &&
	    q[2 + q[1]] == 0x12 && q[3 + q[1]] < 0x80 && (uint32_t)q[1] + q[3 + q[1]] + 4u == blen)
		return fn(ctx, q + 2, q[1], q + 4 + q[1], q[3 + q[1]]);
	while (kn_wire_field_next(&q, qend, &g) > 0) {
		if (g.wt != KN_WIRE_FIELD_LEN)
			continue;
		if (g.num == 1) {
			k = g.payload;
			klen = g.len;
		} else if (g.num == 2) {
			val = g.payload;
			vlen = g.len;
		}
	}
	return fn(ctx, k, klen, val, vlen);
}

/* Parses the Span header fields into sp; with fn, also hands it each
 * attribute KeyValue in order (the same pass kn_tail_attrs_each makes).
 * 0, or -1 when fn stopped (the header is then incomplete). */
static int kn_tail_span_hdr(struct kn_tail_span *sp, kn_tail_kv_fn fn, void *ctx)
{
	const uint8_t *p = sp->msg, *end = sp->msg + sp->len;
	struct kn_wire_field f;
	sp->trace_id = NULL;
	sp->trace_state = "";
	sp->trace_state_len = 0;
	sp->start_ns = sp->end_ns = 0;
	sp->flags = 0;
	sp->status_code = 0;
	while (kn_wire_field_next(&p, end, &f) > 0) {
		switch (f.num) {
		case 1:
			if (f.wt == KN_WIRE_FIELD_LEN)
				sp->trace_id = f.len == 16 ? f.payload : NULL;
			break;
		case 3:
			if (f.wt == KN_WIRE_FIELD_LEN) {
				sp->trace_state = (const char *)f.payload;
				sp->trace_state_len = f.len;
			}
			break;
		case 7:
			if (f.wt == KN_WIRE_FIELD_I64)
				sp->start_ns = f.value;
			break;
		case 8:
			if (f.wt == KN_WIRE_FIELD_I64)
				sp->end_ns = f.value;
			break;
		case 15:
			if (f.wt == KN_WIRE_FIELD_LEN) {
				/* a Status occurrence replaces the code (proto3 merge of a scalar) */
				const uint8_t *q = f.payload;
				struct kn_wire_field g;
				int32_t code = 0;
				while (kn_wire_field_next(&q, f.payload + f.len, &g) > 0)
					if (g.num == 3 && g.wt == KN_WIRE_FIELD_VARINT)
						code = (int32_t)(uint32_t)g.value;
				sp->status_code = code;
			}
			break;
		case 16:
			if (f.wt == KN_WIRE_FIELD_I32)
				sp->flags = (uint32_t)f.value;
			break;
		case KN_TAIL_SPAN_ATTRS:
			if (fn && f.wt == KN_WIRE_FIELD_LEN && kn_kv_one(f.payload, f.len, fn, ctx))
				return -1;
			break;
		default:
			break;
		}
	}
	return 0;
}

int kn_tail_rs_next_span_kv(struct kn_tail_rs *rs, struct kn_tail_span *sp, kn_tail_kv_fn fn,
			    void *ctx)
{
	struct kn_wire_field f;
	for (;;) {
		/* inside a ScopeSpans: its next span */
		while (rs->ss_p && rs->ss_p < rs->ss_end) {
			if (kn_wire_field_next(&rs->ss_p, rs->ss_end, &f) <= 0) {
				rs->ss_p = rs->ss_end;
				break;
			}
			if (f.num != 2 || f.wt != KN_WIRE_FIELD_LEN)
				continue;
			sp->msg = f.payload;
			sp->len = f.len;
			sp->scope = rs->scope;
			sp->scope_len = rs->scope_len;
			return kn_tail_span_hdr(sp, fn, ctx) ? -1 : 1;
		}
		/* the next ScopeSpans */
		int r = kn_wire_field_next(&rs->p, rs->end, &f);
		if (r <= 0) {
			rs->p = rs->end;
			return 0;
		}
		if (f.num != 2 || f.wt != KN_WIRE_FIELD_LEN)
			continue;
		rs->ss_p = f.payload;
		rs->ss_end = f.payload + f.len;
		rs->scope = NULL;
		rs->scope_len = 0;
		const uint8_t *q = f.payload;
		struct kn_wire_field g;
		while (kn_wire_field_next(&q, rs->ss_end, &g) > 0) {
			if (g.num == 1 && g.wt == KN_WIRE_FIELD_LEN) {
				rs->scope = g.payload;
				rs->scope_len = g.len;
			}
		}
	}
}

int kn_tail_rs_next_span(struct kn_tail_rs *rs, struct kn_tail_span *sp)
{
	return kn_tail_rs_next_span_kv(rs, sp, NULL, NULL);
}

/* Decodes one AnyValue (the last value field set wins, as for a oneof). */
static void kn_tail_anyvalue(const uint8_t *p, uint32_t len, struct kn_tail_value *v)
{
	const uint8_t *end = p + len;
	struct kn_wire_field f = {0};
	memset(v, 0, sizeof *v);
	v->type = KN_TV_EMPTY;
	while (kn_wire_field_next(&p, end, &f) > 0) {
		switch (f.num) {
		case 1:
			if (f.wt == KN_WIRE_FIELD_LEN) {
				v->type = KN_TV_STR;
				v->s = (const char *)f.payload;
				v->slen = f.len;
			}
			break;
		case 2:
			if (f.wt == KN_WIRE_FIELD_VARINT) {
				v->type = KN_TV_BOOL;
				v->b = f.value != 0;
			}
			break;
		case 3:
			if (f.wt == KN_WIRE_FIELD_VARINT) {
				v->type = KN_TV_INT;
				v->i = (int64_t)f.value;
			}
			break;
		case 4:
			if (f.wt == KN_WIRE_FIELD_I64) {
				v->type = KN_TV_DOUBLE;
				memcpy(&v->d, &f.value, sizeof v->d);
			}
			break;
		case 5:
		case 6:
		case 7:
			if (f.wt == KN_WIRE_FIELD_LEN) {
				v->type = f.num == 5 ? KN_TV_ARRAY : f.num == 6 ? KN_TV_KVLIST : KN_TV_BYTES;
				v->s = (const char *)f.payload;
				v->slen = f.len;
			}
			break;
		default:
			break;
		}
	}
}

void kn_tail_value_decode(const uint8_t *val, uint32_t vlen, struct kn_tail_value *v)
{
	if (val) {
		kn_tail_anyvalue(val, vlen, v);
	} else {
		memset(v, 0, sizeof *v);
		v->type = KN_TV_EMPTY;
	}
}

int kn_tail_attrs_each(const uint8_t *msg, uint32_t len, uint32_t field, kn_tail_kv_fn fn,
		       void *ctx)
{
	const uint8_t *p = msg, *end = msg ? msg + len : msg;
	struct kn_wire_field f;
	if (!msg)
		return 0;
	while (kn_wire_field_next(&p, end, &f) > 0)
		if (f.num == field && f.wt == KN_WIRE_FIELD_LEN && kn_kv_one(f.payload, f.len, fn, ctx))
			return 1;
	return 0;
}

struct kn_attr_find {
	const char *key;
	size_t keylen;
	const uint8_t *val;
	uint32_t vlen;
};

static int kn_attr_find_fn(void *ctx, const uint8_t *k, uint32_t klen, const uint8_t *val,
			   uint32_t vlen)
{
	struct kn_attr_find *a = ctx;
	if (!kn_tail_key_eq(k, klen, a->key, a->keylen))
		return 0;
	a->val = val;
	a->vlen = vlen;
	return 1;
}

int kn_tail_attr_get(const uint8_t *msg, uint32_t len, uint32_t field, const char *key,
		     size_t keylen, struct kn_tail_value *v)
{
	struct kn_attr_find a = {.key = key, .keylen = keylen};
	if (!kn_tail_attrs_each(msg, len, field, kn_attr_find_fn, &a))
		return 0;
	kn_tail_value_decode(a.val, a.vlen, v);
	return 1;
}

/* The trace's index, built on first use (NULL: walk the bytes). */
static const struct kn_tail_scan *kn_eval_scan(struct kn_tail_eval *ev)
{
	if (!ev->scan)
		return NULL;
	if (ev->scan_state == 0)
		ev->scan_state = kn_tail_scan_build(ev->scan, ev->t) == 0 ? 1 : -1;
	return ev->scan_state == 1 ? ev->scan : NULL;
}

int kn_tail_each_span(struct kn_tail_eval *ev, kn_tail_span_fn fn, void *ctx)
{
	const struct kn_tail_scan *sc = kn_eval_scan(ev);
	if (sc) {
		for (uint32_t i = 0; i < sc->nspan; i++)
			if (fn(ctx, &sc->span[i].sp))
				return 1;
		return 0;
	}
	struct kn_tail_walk w;
	struct kn_tail_rs rs;
	struct kn_tail_span sp;
	kn_tail_walk_init(&w, ev->t);
	while (kn_tail_walk_next(&w, &rs))
		while (kn_tail_rs_next_span(&rs, &sp))
			if (fn(ctx, &sp))
				return 1;
	return 0;
}

enum kn_tail_decision kn_tail_match_attr(struct kn_tail_eval *ev, const char *key,
					 size_t keylen, kn_tail_attr_match_fn match, void *ctx,
					 int invert)
{
	const struct kn_tail_scan *sc = kn_eval_scan(ev);
	struct kn_tail_walk w;
	struct kn_tail_rs rs;
	struct kn_tail_span sp;
	struct kn_tail_value v;
	enum kn_tail_decision hit = invert ? KN_TAIL_INVERT_NOT_SAMPLED : KN_TAIL_SAMPLED;

	if (sc) {
		for (uint32_t r = 0; r < sc->nrs; r++) {
			const struct kn_tail_scan_rs *x = &sc->rs[r];
			if (kn_tail_scan_attr(sc, x->kv0, x->nkv, key, keylen, &v) && match(ctx, &v, 0))
				return hit;
			for (uint32_t i = x->s0; i < x->s1; i++)
				if (kn_tail_scan_attr(sc, sc->span[i].kv0, sc->span[i].nkv, key, keylen, &v) &&
				    match(ctx, &v, 1))
					return hit;
		}
		return invert ? KN_TAIL_INVERT_SAMPLED : KN_TAIL_NOT_SAMPLED;
	}
	kn_tail_walk_init(&w, ev->t);
	while (kn_tail_walk_next(&w, &rs)) {
		if (kn_tail_resource_attr(&rs, key, keylen, &v) && match(ctx, &v, 0))
			return hit;
		while (kn_tail_rs_next_span(&rs, &sp))
			if (kn_tail_span_attr(&sp, key, keylen, &v) && match(ctx, &v, 1))
				return hit;
	}
	return invert ? KN_TAIL_INVERT_SAMPLED : KN_TAIL_NOT_SAMPLED;
}
