/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_emit: the sampled trace -> chunk step, with the optional span
 * rewrite (see kn_tail_emit.h). */
#include "kn_tail_emit.h"

#include <stdlib.h>
#include <string.h>

#include "../../collector/core/kn_grow.h"
#include "../../collector/core/kn_tracestate.h"
#include "../../collector/wire/kn_wire_field.h"
#include "kn_tail_frame.h"
#include "kn_tail_policy.h"

#define TS_CAP 2048

void kn_tail_emit_init(struct kn_tail_emit *e)
{
	memset(e, 0, sizeof *e);
	kn_wire_index_init(&e->ix);
}

void kn_tail_emit_free(struct kn_tail_emit *e)
{
	if (!e)
		return;
	kn_wire_index_free(&e->ix);
	free(e->g);
	free(e->buf);
	free(e->hdr);
	memset(e, 0, sizeof *e);
}

static inline uint64_t fsize(uint64_t len)
{
	return 1 + kn_wire_varint_len(len) + len;
}

static inline uint8_t *put_field(uint8_t *w, uint8_t tag, uint64_t len)
{
	*w++ = tag;
	return w + kn_wire_put_varint(w, len);
}

size_t kn_tail_emit_attr(const char *key, const char *value, uint8_t *out, size_t cap)
{
	size_t kl = strlen(key), vl = strlen(value);
	uint64_t any = fsize(vl);                 /* AnyValue{string_value = 1} */
	uint64_t kv = fsize(kl) + fsize(any);     /* KeyValue{key = 1, value = 2} */
	uint64_t total = fsize(kv);               /* Span.attributes = 9: tag 0x4a */
	if (total > cap)
		return 0;
	uint8_t *w = put_field(out, 0x4a, kv);
	w = put_field(w, 0x0a, kl);
	memcpy(w, key, kl);
	w += kl;
	w = put_field(w, 0x12, any);
	w = put_field(w, 0x0a, vl);
	memcpy(w, value, vl);
	w += vl;
	return (size_t)(w - out);
}

/* One field at *p: its number, wire type, and for LEN its body; 0, or -1.
 * The shared reader in LAX mode, because this walk has always refused only
 * field number 0 (not numbers above 2^29-1, which it passes through as their
 * low 32 bits) and has no 2^31-1 cap on lengths; kept exactly. */
static inline int next_field(const uint8_t **p, const uint8_t *end, uint32_t *num, uint32_t *wt,
			     const uint8_t **body, uint64_t *blen)
{
	struct kn_wire_field f;
	if (kn_wire_field_read(p, end, &f, KN_WIRE_FIELD_LAX) <= 0 || (f.tag >> 3) == 0)
		return -1;
	*num = f.num;
	*wt = f.wt;
	if (f.wt == KN_WIRE_FIELD_LEN) {
		*body = f.payload;
		*blen = f.len;
	}
	return 0;
}

/* The new trace_state of a span (its last field 3 rewritten); 0 = keep. */
static size_t span_tracestate(const uint8_t *span, uint64_t len, uint64_t threshold, char *out)
{
	const uint8_t *p = span, *end = span + len, *ts = NULL;
	uint64_t tslen = 0;
	while (p < end) {
		uint32_t num = 0, wt = 0;
		const uint8_t *b = NULL;
		uint64_t bl = 0;
		if (next_field(&p, end, &num, &wt, &b, &bl))
			return 0;
		if (num == 3 && wt == 2) {
			ts = b;
			tslen = bl;
		}
	}
	return kn_tracestate_set_th(ts ? (const char *)ts : "", ts ? tslen : 0, threshold, out,
				    TS_CAP);
}

static int g_push(struct kn_tail_emit *e, uint32_t *ng)
{
	if (kn_grow((void **)&e->g, &e->cap_g, *ng, sizeof *e->g))
		return -1;
	return (int)(*ng)++;
}

/* Pass 1: group sizes into e->g; returns the total, UINT64_MAX on error. */
static uint64_t rewrite_size(struct kn_tail_emit *e, const uint8_t *buf, size_t len,
			     const struct kn_tail_rewrite *rw)
{
	char ts[TS_CAP];
	uint64_t total = 0;
	uint32_t ng = 0;
	const uint8_t *p = buf, *end = buf + len;
	while (p < end) {
		uint32_t num = 0, wt = 0;
		const uint8_t *rb = NULL;
		uint64_t rl = 0;
		if (next_field(&p, end, &num, &wt, &rb, &rl) || num != 1 || wt != 2)
			return UINT64_MAX;
		int rslot = g_push(e, &ng);
		if (rslot < 0)
			return UINT64_MAX;
		uint64_t rsz = 0;
		const uint8_t *q = rb, *qend = rb + rl;
		while (q < qend) {
			const uint8_t *f0 = q, *sb = NULL;
			uint64_t sl = 0;
			if (next_field(&q, qend, &num, &wt, &sb, &sl))
				return UINT64_MAX;
			if (num != 2 || wt != 2) {
				rsz += (uint64_t)(q - f0);
				continue;
			}
			int sslot = g_push(e, &ng);
			if (sslot < 0)
				return UINT64_MAX;
			uint64_t ssz = 0;
			const uint8_t *u = sb, *uend = sb + sl;
			while (u < uend) {
				const uint8_t *f1 = u, *xb = NULL;
				uint64_t xl = 0;
				if (next_field(&u, uend, &num, &wt, &xb, &xl))
					return UINT64_MAX;
				if (num != 2 || wt != 2) {
					ssz += (uint64_t)(u - f1);
					continue;
				}
				uint64_t nl = xl + (rw->attr ? rw->attr_len : 0);
				if (rw->has_threshold) {
					size_t tl = span_tracestate(xb, xl, rw->threshold, ts);
					if (tl)
						nl += fsize(tl);
				}
				ssz += fsize(nl);
			}
			if (ssz > 0x7fffffff)
				return UINT64_MAX;
			e->g[sslot] = (uint32_t)ssz;
			rsz += fsize(ssz);
		}
		if (rsz > 0x7fffffff)
			return UINT64_MAX;
		e->g[rslot] = (uint32_t)rsz;
		total += fsize(rsz);
		if (total > 0x7fffffff)
			return UINT64_MAX;
	}
	return total;
}

/* Pass 2: writes what pass 1 measured (the input was checked there). */
static uint8_t *rewrite_write(const struct kn_tail_emit *e, const uint8_t *buf, size_t len,
			      const struct kn_tail_rewrite *rw, uint8_t *w)
{
	char ts[TS_CAP];
	uint32_t ng = 0;
	const uint8_t *p = buf, *end = buf + len;
	while (p < end) {
		uint32_t num = 0, wt = 0;
		const uint8_t *rb = NULL;
		uint64_t rl = 0;
		next_field(&p, end, &num, &wt, &rb, &rl);
		w = put_field(w, 0x0a, e->g[ng++]);
		const uint8_t *q = rb, *qend = rb + rl;
		while (q < qend) {
			const uint8_t *f0 = q, *sb = NULL;
			uint64_t sl = 0;
			next_field(&q, qend, &num, &wt, &sb, &sl);
			if (num != 2 || wt != 2) {
				memcpy(w, f0, (size_t)(q - f0));
				w += q - f0;
				continue;
			}
			w = put_field(w, 0x12, e->g[ng++]);
			const uint8_t *u = sb, *uend = sb + sl;
			while (u < uend) {
				const uint8_t *f1 = u, *xb = NULL;
				uint64_t xl = 0;
				next_field(&u, uend, &num, &wt, &xb, &xl);
				if (num != 2 || wt != 2) {
					memcpy(w, f1, (size_t)(u - f1));
					w += u - f1;
					continue;
				}
				size_t tl = rw->has_threshold ? span_tracestate(xb, xl, rw->threshold, ts) : 0;
				uint64_t nl = xl + (rw->attr ? rw->attr_len : 0) + (tl ? fsize(tl) : 0);
				w = put_field(w, 0x12, nl);
				memcpy(w, xb, (size_t)xl);
				w += xl;
				if (rw->attr) {
					memcpy(w, rw->attr, rw->attr_len);
					w += rw->attr_len;
				}
				if (tl) {
					w = put_field(w, 0x1a, tl);
					memcpy(w, ts, tl);
					w += tl;
				}
			}
		}
	}
	return w;
}

static int reserve(struct kn_tail_emit *e, uint64_t add, uint32_t nspans)
{
	if (e->len + add > e->cap) {
		size_t nc = e->cap ? e->cap : 64 * 1024;
		while (nc < e->len + add)
			nc *= 2;
		uint8_t *p = realloc(e->buf, nc);
		if (!p)
			return -1;
		e->buf = p;
		e->cap = nc;
	}
	if ((uint64_t)e->n + nspans > e->cap_hdr) {
		uint64_t nc = e->cap_hdr ? e->cap_hdr : 256;
		while (nc < (uint64_t)e->n + nspans)
			nc *= 2;
		if (nc > UINT32_MAX)
			return -1;
		struct kn_span_hdr *p = realloc(e->hdr, (size_t)nc * sizeof *p);
		if (!p)
			return -1;
		e->hdr = p;
		e->cap_hdr = (uint32_t)nc;
	}
	return 0;
}

int kn_tail_emit_add(struct kn_tail_emit *e, const uint8_t *buf, size_t len, uint32_t nspans,
		     const struct kn_tail_rewrite *rw, struct kn_err *err)
{
	int plain = !rw || (!rw->attr && !rw->has_threshold);
	uint64_t size = plain ? len : rewrite_size(e, buf, len, rw);
	if (size == UINT64_MAX || size > 0x7fffffff) {
		kn_errf(err, "tail_sampling: a kept trace's buffer is malformed or over 2 GiB");
		return KN_ERR;
	}
	if (e->len + size > 0x7fffffff) {
		kn_errf(err, "tail_sampling: %llu bytes pending would pass 2 GiB",
			(unsigned long long)(e->len + size));
		return KN_ERR;
	}
	if (reserve(e, size, nspans)) {
		kn_errf(err, "tail_sampling: out of memory for a %llu-byte kept trace",
			(unsigned long long)size);
		return KN_ERR;
	}
	uint8_t *seg = e->buf + e->len;
	if (plain)
		memcpy(seg, buf, len);
	else if ((uint64_t)(rewrite_write(e, buf, len, rw, seg) - seg) != size)
		return kn_errf(err, "tail_sampling: rewrite wrote an unexpected size");
	if (kn_wire_index_trusted(&e->ix, seg, (size_t)size, err) != KN_OK)
		return KN_ERR;
	if (e->ix.nspans != nspans || e->ix.rejected)
		return kn_errf(err,
			       "tail_sampling: emitted trace indexes %u spans (%u rejected), expected %u",
			       e->ix.nspans, e->ix.rejected, nspans);
	/* rebase: what indexing the whole concatenation would have given */
	uint32_t base = (uint32_t)e->len;
	struct kn_span_hdr *h = e->hdr + e->n;
	memcpy(h, e->ix.spans, (size_t)nspans * sizeof *h);
	for (uint32_t i = 0; i < nspans; i++) {
		h[i].off += base;
		h[i].name_off += base;
		h[i].resource_idx += e->nres;
		h[i].scope_idx += e->nscopes;
	}
	e->n += nspans;
	e->nres += e->ix.nres;
	e->nscopes += e->ix.nscopes;
	e->len += (size_t)size;
	return KN_OK;
}

void kn_tail_emit_clear(struct kn_tail_emit *e)
{
	e->len = 0;
	e->n = e->nres = e->nscopes = 0;
}

struct kn_chunk *kn_tail_emit_take(struct kn_tail_emit *e, struct kn_err *err)
{
	if (!e->n && !e->len)
		return NULL;
	struct kn_chunk *c = kn_chunk_alloc(e->n, (uint32_t)e->len);
	if (!c) {
		kn_errf(err, "tail_sampling: out of memory for a %zu-byte chunk", e->len);
		kn_tail_emit_clear(e);
		return NULL;
	}
	memcpy(c->data, e->buf, e->len);
	memcpy(c->spans, e->hdr, (size_t)e->n * sizeof *c->spans);
	c->len = (uint32_t)e->len;
	kn_tail_emit_clear(e);
	return c;
}

struct kn_chunk *kn_tail_emit_chunk(struct kn_tail_emit *e, const uint8_t *buf, size_t len,
				    uint32_t nspans, const struct kn_tail_rewrite *rw,
				    struct kn_err *err)
{
	kn_tail_emit_clear(e);
	if (kn_tail_emit_add(e, buf, len, nspans, rw, err) != KN_OK)
		return NULL;
	return kn_tail_emit_take(e, err);
}
