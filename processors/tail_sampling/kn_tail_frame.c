/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_frame: framing of one trace's part of a chunk (see kn_tail_frame.h).
 * The two passes mirror kn_wire_split's: pass 1 reserves a slot for each
 * group when it opens and fills it when it closes, so pass 2 meets every
 * length before the group's contents. Costs O(spans of the part). */
#include "kn_tail_frame.h"

#include <stdlib.h>
#include <string.h>

#include "../../collector/core/kn_grow.h"
#include "../../collector/wire/kn_wire.h"
#include "../../collector/wire/kn_wire_field.h"

void kn_tail_frame_free(struct kn_tail_frame *f)
{
	if (!f)
		return;
	free(f->res);
	free(f->scopes);
	memset(f, 0, sizeof *f);
}

static int index_scope(struct kn_tail_frame *f, const uint8_t *p, const uint8_t *end,
		       uint32_t res_idx)
{
	if (kn_grow((void **)&f->scopes, &f->cap_scopes, f->nscopes, sizeof *f->scopes))
		return -1;
	struct kn_tail_frame_msg *s = &f->scopes[f->nscopes++];
	memset(s, 0, sizeof *s);
	s->resource_idx = res_idx;
	while (p < end) {
		struct kn_wire_field fl;
		if (kn_wire_field_next(&p, end, &fl) < 0)
			return -1;
		if (fl.wt != KN_WIRE_FIELD_LEN)
			continue;
		if (fl.num == 1) {
			s->msg = fl.payload;
			s->len = (uint32_t)fl.len;
		} else if (fl.num == 3) {
			s->url = fl.payload;
			s->url_len = (uint32_t)fl.len;
		}
	}
	return 0;
}

int kn_tail_frame_index(struct kn_tail_frame *f, const uint8_t *data, size_t len)
{
	const uint8_t *p = data, *end = data + len;
	f->nres = f->nscopes = 0;
	while (p < end) {
		struct kn_wire_field fl;
		if (kn_wire_field_next(&p, end, &fl) < 0)
			return -1;
		if (fl.num != 1 || fl.wt != KN_WIRE_FIELD_LEN)
			continue;
		if (kn_grow((void **)&f->res, &f->cap_res, f->nres, sizeof *f->res))
			return -1;
		uint32_t ri = f->nres++, first_scope = f->nscopes;
		memset(&f->res[ri], 0, sizeof f->res[ri]);
		const uint8_t *q = fl.payload, *qend = fl.payload + fl.len;
		while (q < qend) {
			struct kn_wire_field g;
			if (kn_wire_field_next(&q, qend, &g) < 0)
				return -1;
			if (g.wt != KN_WIRE_FIELD_LEN)
				continue;
			uint32_t n2 = g.num, l2 = (uint32_t)g.len;
			const uint8_t *b2 = g.payload;
			if (n2 == 1) {
				f->res[ri].msg = b2;
				f->res[ri].len = l2;
			} else if (n2 == 3) {
				f->res[ri].url = b2;
				f->res[ri].url_len = l2;
			} else if (n2 == 2 && index_scope(f, b2, b2 + l2, ri)) {
				return -1;
			}
		}
		/* the resource's schema_url may follow its scopes: hash them now */
		for (uint32_t k = first_scope; k < f->nscopes; k++) {
			struct kn_tail_group g;
			kn_tail_frame_group(f, k, &g);
			f->scopes[k].ghash = kn_tail_group_hash(&g);
		}
	}
	return 0;
}

void kn_tail_frame_group(const struct kn_tail_frame *f, uint32_t scope_idx, struct kn_tail_group *g)
{
	const struct kn_tail_frame_msg *s = &f->scopes[scope_idx];
	const struct kn_tail_frame_msg *r = &f->res[s->resource_idx];
	g->res = r->msg;
	g->res_len = r->len;
	g->res_url = r->url;
	g->res_url_len = r->url_len;
	g->scope = s->msg;
	g->scope_len = s->len;
	g->scope_url = s->url;
	g->scope_url_len = s->url_len;
}

int kn_tail_frame_check(const struct kn_tail_frame *f, const struct kn_chunk *c)
{
	for (uint32_t i = 0; i < c->nspans; i++) {
		const struct kn_span_hdr *h = &c->spans[i];
		if (h->scope_idx >= f->nscopes || h->resource_idx >= f->nres ||
		    f->scopes[h->scope_idx].resource_idx != h->resource_idx ||
		    (uint64_t)h->off + h->len > c->len)
			return -1;
	}
	return 0;
}


uint64_t kn_tail_frame_size(const struct kn_tail_frame *f, const struct kn_chunk *c,
			    const uint32_t *idx, uint32_t n, uint32_t *g)
{
	uint64_t total = 0, rsz = 0, ssz = 0;
	uint32_t ng = 0, rslot = 0, sslot = 0, cur_r = UINT32_MAX, cur_s = UINT32_MAX;

	for (uint32_t k = 0; k <= n; k++) {
		const struct kn_span_hdr *h = k < n ? &c->spans[idx[k]] : NULL;
		if (cur_s != UINT32_MAX && (!h || h->scope_idx != cur_s)) {
			const struct kn_tail_frame_msg *s = &f->scopes[cur_s];
			if (s->url)
				ssz += kn_tail_fsize(s->url_len);
			if (ssz > 0x7fffffff)
				return UINT64_MAX;
			g[sslot] = (uint32_t)ssz;
			rsz += kn_tail_fsize(ssz);
			cur_s = UINT32_MAX;
		}
		if (cur_r != UINT32_MAX && (!h || h->resource_idx != cur_r)) {
			const struct kn_tail_frame_msg *r = &f->res[cur_r];
			if (r->url)
				rsz += kn_tail_fsize(r->url_len);
			if (rsz > 0x7fffffff)
				return UINT64_MAX;
			g[rslot] = (uint32_t)rsz;
			total += kn_tail_fsize(rsz);
			cur_r = UINT32_MAX;
		}
		if (!h)
			break;
		if (cur_r == UINT32_MAX) {
			cur_r = h->resource_idx;
			rslot = ng++;
			rsz = f->res[cur_r].msg ? kn_tail_fsize(f->res[cur_r].len) : 0;
		}
		if (cur_s == UINT32_MAX) {
			cur_s = h->scope_idx;
			sslot = ng++;
			ssz = f->scopes[cur_s].msg ? kn_tail_fsize(f->scopes[cur_s].len) : 0;
		}
		ssz += kn_tail_fsize(h->len);
	}
	return total;
}

uint8_t *kn_tail_frame_write(const struct kn_tail_frame *f, const struct kn_chunk *c,
			     const uint32_t *idx, uint32_t n, const uint32_t *g, uint8_t *w)
{
	uint32_t ng = 0, cur_r = UINT32_MAX, cur_s = UINT32_MAX;

	for (uint32_t k = 0; k <= n; k++) {
		const struct kn_span_hdr *h = k < n ? &c->spans[idx[k]] : NULL;
		if (cur_s != UINT32_MAX && (!h || h->scope_idx != cur_s)) {
			const struct kn_tail_frame_msg *s = &f->scopes[cur_s];
			if (s->url)
				w = kn_tail_put_bytes(w, 0x1a, s->url, s->url_len);
			cur_s = UINT32_MAX;
		}
		if (cur_r != UINT32_MAX && (!h || h->resource_idx != cur_r)) {
			const struct kn_tail_frame_msg *r = &f->res[cur_r];
			if (r->url)
				w = kn_tail_put_bytes(w, 0x1a, r->url, r->url_len);
			cur_r = UINT32_MAX;
		}
		if (!h)
			break;
		if (cur_r == UINT32_MAX) {
			cur_r = h->resource_idx;
			w = kn_tail_put_field(w, 0x0a, g[ng++]);
			if (f->res[cur_r].msg)
				w = kn_tail_put_bytes(w, 0x0a, f->res[cur_r].msg, f->res[cur_r].len);
		}
		if (cur_s == UINT32_MAX) {
			cur_s = h->scope_idx;
			w = kn_tail_put_field(w, 0x12, g[ng++]);
			if (f->scopes[cur_s].msg)
				w = kn_tail_put_bytes(w, 0x0a, f->scopes[cur_s].msg, f->scopes[cur_s].len);
		}
		w = kn_tail_put_bytes(w, 0x12, c->data + h->off, h->len);
	}
	return w;
}
