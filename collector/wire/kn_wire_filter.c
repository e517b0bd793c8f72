/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_filter: see kn_wire_filter.h. Pass 1 walks the framing
 * (ResourceSpans -> ScopeSpans -> Span), records the new size of every kept
 * group in f->g (0 for a group left out) and the total; pass 2 replays the
 * walk and writes. The input was indexed by this collector, so pass 2 does
 * not check again what pass 1 checked, and it writes the new chunk's span
 * headers as it goes (a kept span's header is its old one with the offsets
 * moved and the ResourceSpans / ScopeSpans renumbered): the output is never
 * walked again. test_wire_filter checks them against a fresh index. */
#include "kn_wire_filter.h"

#include <stdlib.h>
#include <string.h>

#include "kn_wire_field.h"
#include "../core/kn_grow.h"

#define TOO_BIG 0x7fffffffull

void kn_wire_filter_init(struct kn_wire_filter *f)
{
	memset(f, 0, sizeof *f);
}

void kn_wire_filter_free(struct kn_wire_filter *f)
{
	if (!f)
		return;
	free(f->g);
	memset(f, 0, sizeof *f);
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

/* The walk's state: which span header comes next. */
struct walk {
	const struct kn_chunk *c;
	const struct kn_wire_keep *keep;
	uint32_t k;
};

/* The keep entry of the Span whose payload starts at b, NULL when the
 * headers do not match the bytes. */
static const struct kn_wire_keep *span_keep(struct walk *w, const uint8_t *b)
{
	if (w->k >= w->c->nspans || w->c->spans[w->k].off != (uint32_t)(b - w->c->data))
		return NULL;
	return &w->keep[w->k++];
}

static int g_push(struct kn_wire_filter *f, uint32_t *ng)
{
	if (kn_grow((void **)&f->g, &f->cap_g, *ng + 1, sizeof *f->g))
		return -1;
	return (int)(*ng)++;
}

/* Sizes; UINT64_MAX when malformed, out of memory or too big. */
static uint64_t pass1(struct kn_wire_filter *f, struct walk *wk, uint32_t *nkept)
{
	const uint8_t *p = wk->c->data, *end = p + wk->c->len;
	struct kn_wire_field rf, sf, xf;
	uint64_t total = 0;
	uint32_t ng = 0;
	int r;
	*nkept = 0;
	while ((r = kn_wire_field_next(&p, end, &rf)) > 0) {
		if (rf.num != 1 || rf.wt != KN_WIRE_FIELD_LEN)
			return UINT64_MAX;
		int rslot = g_push(f, &ng);
		if (rslot < 0)
			return UINT64_MAX;
		uint64_t rsz = 0;
		int rscopes = 0, rkept = 0;
		const uint8_t *q = rf.payload, *qend = q + rf.len;
		for (const uint8_t *f0 = q; (r = kn_wire_field_next(&q, qend, &sf)) > 0; f0 = q) {
			if (sf.num != 2 || sf.wt != KN_WIRE_FIELD_LEN) {
				rsz += (uint64_t)(q - f0);
				continue;
			}
			int sslot = g_push(f, &ng);
			if (sslot < 0)
				return UINT64_MAX;
			uint64_t ssz = 0;
			int sspans = 0, skept = 0;
			const uint8_t *u = sf.payload, *uend = u + sf.len;
			for (const uint8_t *f1 = u; (r = kn_wire_field_next(&u, uend, &xf)) > 0; f1 = u) {
				if (xf.num != 2 || xf.wt != KN_WIRE_FIELD_LEN) {
					ssz += (uint64_t)(u - f1);
					continue;
				}
				const struct kn_wire_keep *k = span_keep(wk, xf.payload);
				if (!k)
					return UINT64_MAX;
				sspans = 1;
				if (!k->keep)
					continue;
				skept = 1;
				(*nkept)++;
				ssz += fsize(xf.len + k->add_len);
			}
			if (r < 0 || ssz > TOO_BIG)
				return UINT64_MAX;
			rscopes = 1;
			if (sspans && !skept) {
				f->g[sslot] = UINT32_MAX; /* left out */
				continue;
			}
			rkept = 1;
			f->g[sslot] = (uint32_t)ssz;
			rsz += fsize(ssz);
		}
		if (r < 0 || rsz > TOO_BIG)
			return UINT64_MAX;
		if (rscopes && !rkept) {
			f->g[rslot] = UINT32_MAX;
			continue;
		}
		f->g[rslot] = (uint32_t)rsz;
		total += fsize(rsz);
		if (total > TOO_BIG)
			return UINT64_MAX;
	}
	if (r < 0 || wk->k != wk->c->nspans)
		return UINT64_MAX;
	return total;
}

/* Replays pass 1's walk (the bytes were checked there); writes into n's
 * data and headers. */
static uint8_t *pass2(const struct kn_wire_filter *f, struct walk *wk, const uint8_t *arena,
		      struct kn_chunk *n)
{
	const uint8_t *p = wk->c->data, *end = p + wk->c->len;
	struct kn_wire_field rf, sf, xf;
	uint32_t ng = 0, nres = 0, nscopes = 0, nout = 0;
	uint8_t *w = n->data;
	while (kn_wire_field_next(&p, end, &rf) > 0) {
		uint32_t rsz = f->g[ng++];
		const uint8_t *q = rf.payload, *qend = q + rf.len;
		uint32_t res_idx = nres;
		if (rsz != UINT32_MAX) {
			w = put_field(w, 0x0a, rsz);
			nres++;
		}
		for (const uint8_t *f0 = q; kn_wire_field_next(&q, qend, &sf) > 0; f0 = q) {
			if (sf.num != 2 || sf.wt != KN_WIRE_FIELD_LEN) {
				if (rsz != UINT32_MAX) {
					memcpy(w, f0, (size_t)(q - f0));
					w += q - f0;
				}
				continue;
			}
			uint32_t ssz = f->g[ng++];
			int out = rsz != UINT32_MAX && ssz != UINT32_MAX;
			uint32_t scope_idx = nscopes;
			if (out) {
				w = put_field(w, 0x12, ssz);
				nscopes++;
			}
			const uint8_t *u = sf.payload, *uend = u + sf.len;
			for (const uint8_t *f1 = u; kn_wire_field_next(&u, uend, &xf) > 0; f1 = u) {
				if (xf.num != 2 || xf.wt != KN_WIRE_FIELD_LEN) {
					if (out) {
						memcpy(w, f1, (size_t)(u - f1));
						w += u - f1;
					}
					continue;
				}
				const struct kn_span_hdr *oh = &wk->c->spans[wk->k];
				const struct kn_wire_keep *k = &wk->keep[wk->k++];
				if (!k->keep)
					continue;
				w = put_field(w, 0x12, xf.len + k->add_len);
				struct kn_span_hdr *h = &n->spans[nout++];
				*h = *oh;
				h->off = (uint32_t)(w - n->data);
				h->len = oh->len + k->add_len;
				h->name_off = h->off + (oh->name_off - oh->off);
				h->resource_idx = res_idx;
				h->scope_idx = scope_idx;
				memcpy(w, xf.payload, xf.len);
				w += xf.len;
				if (k->add_len) {
					memcpy(w, arena + k->add_off, k->add_len);
					w += k->add_len;
				}
			}
		}
	}
	return w;
}

int kn_wire_filter_run(struct kn_wire_filter *f, const struct kn_chunk *c,
		       const struct kn_wire_keep *keep, const uint8_t *arena,
		       struct kn_chunk **out, struct kn_err *err)
{
	struct walk wk = {c, keep, 0};
	uint32_t nkept;
	*out = NULL;
	uint64_t size = pass1(f, &wk, &nkept);
	if (size == UINT64_MAX)
		return kn_errf(err, "a chunk's bytes disagree with its span headers, or the "
				    "result would pass 2 GiB");
	if (!nkept)
		return KN_OK;
	struct kn_chunk *n = kn_chunk_alloc(nkept, (uint32_t)size);
	if (!n)
		return kn_errf(err, "out of memory for a %llu-byte chunk", (unsigned long long)size);
	wk.k = 0;
	uint8_t *w = pass2(f, &wk, arena, n);
	n->len = (uint32_t)size;
	if ((uint64_t)(w - n->data) != size) {
		kn_chunk_unref(n);
		return kn_errf(err, "filter wrote an unexpected size");
	}
	n->nspans = nkept;
	n->shard = c->shard;
	n->source = c->source;
	n->accepted_ns = c->accepted_ns;
	n->ctx = c->ctx;
	*out = n;
	return KN_OK;
}
