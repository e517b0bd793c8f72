/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_split: per-shard chunks from an indexed request, and kn_shard_of.
 *
 * The index lists spans in request order, so the spans of one ScopeSpans (and
 * of one ResourceSpans) are contiguous and a shard's spans, taken in order,
 * form runs per scope. Per shard: a stable counting sort puts its spans in
 * order; pass 1 walks them and computes the size of every ResourceSpans /
 * ScopeSpans group it will write (slots reserved when a group opens, filled
 * when it closes, so pass 2 meets each length before the group's contents);
 * pass 2 allocates the chunk (one kn_chunk_alloc) and writes the framing
 * anew around verbatim copies of the Resource, scope and span bytes.
 *
 * Costs: O(spans + shards) per request; no allocation per span (the working
 * space ix->scratch grows geometrically and is reused). Threads: as the
 * index. */
#include "kn_wire_internal.h"

#include <stdlib.h>

/* kn_shard_of: the high little-endian 64-bit half of the trace id is
 * multiplied by an odd constant (2^64 / golden ratio) and xor-ed with the low
 * half (every byte counts, and ids whose halves are equal do not cancel to
 * one value, as a plain xor would), passed through the 64-bit finaliser of
 * MurmurHash3 (fmix64: xor-shift / multiply rounds, full avalanche), and the
 * top 32 bits are mapped onto [0, nshards) by a multiply-shift range
 * reduction ((h * n) >> 32), which is unbiased enough and avoids a division.
 * The result depends only on the id bytes: stable across runs, machines and
 * endianness. A shard count of 0 maps everything to 0. */
uint32_t kn_shard_of(const uint8_t trace_id[16], uint32_t nshards)
{
	uint64_t x = kn_wire_le64(trace_id) ^ (kn_wire_le64(trace_id + 8) * 0x9e3779b97f4a7c15ull);
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return (uint32_t)(((x >> 32) * (uint64_t)nshards) >> 32);
}

static inline uint64_t kn_wire_field_size(uint64_t len)
{
	return 1 + kn_wire_varint_len(len) + len;   /* tags here are all 1 byte */
}

static inline uint8_t *kn_wire_put_field(uint8_t *w, uint8_t tag, uint64_t len)
{
	*w++ = tag;
	return w + kn_wire_put_varint(w, len);
}

static inline uint8_t *kn_wire_put_bytes(uint8_t *w, uint8_t tag, const uint8_t *b, uint32_t len)
{
	w = kn_wire_put_field(w, tag, len);
	memcpy(w, b, len);
	return w + len;
}

#define TAG_RESOURCE_SPANS 0x0a   /* field 1, LEN, in the request */
#define TAG_1 0x0a                /* resource / scope */
#define TAG_2 0x12                /* scope_spans / spans */
#define TAG_3 0x1a                /* schema_url */

/* Pass 1 for one shard: group sizes into g[] (opening order); returns the
 * request size, or UINT64_MAX when a size overflows 2^31-1. */
static uint64_t kn_wire_sizes(const struct kn_wire_index *ix, const uint32_t *ord, uint32_t n,
			      uint32_t *g)
{
	uint64_t total = 0, rsz = 0, ssz = 0;
	uint32_t ng = 0, rslot = 0, sslot = 0;
	uint32_t cur_r = UINT32_MAX, cur_s = UINT32_MAX;

	for (uint32_t k = 0; k <= n; k++) {
		const struct kn_span_hdr *h = k < n ? &ix->spans[ord[k]] : NULL;
		if (cur_s != UINT32_MAX && (!h || h->scope_idx != cur_s)) {
			const struct kn_wire_scope *s = &ix->scopes[cur_s];
			if (s->schema_url_len)
				ssz += kn_wire_field_size(s->schema_url_len);
			g[sslot] = (uint32_t)ssz;
			rsz += kn_wire_field_size(ssz);
			if (ssz > 0x7fffffff)
				return UINT64_MAX;
			cur_s = UINT32_MAX;
		}
		if (cur_r != UINT32_MAX && (!h || h->resource_idx != cur_r)) {
			const struct kn_wire_resource *r = &ix->res[cur_r];
			if (r->schema_url_len)
				rsz += kn_wire_field_size(r->schema_url_len);
			g[rslot] = (uint32_t)rsz;
			total += kn_wire_field_size(rsz);
			if (rsz > 0x7fffffff || total > 0x7fffffff)
				return UINT64_MAX;
			cur_r = UINT32_MAX;
		}
		if (!h)
			break;
		if (cur_r == UINT32_MAX) {
			const struct kn_wire_resource *r = &ix->res[h->resource_idx];
			cur_r = h->resource_idx;
			rslot = ng++;
			rsz = r->msg ? kn_wire_field_size(r->len) : 0;
		}
		if (cur_s == UINT32_MAX) {
			const struct kn_wire_scope *s = &ix->scopes[h->scope_idx];
			cur_s = h->scope_idx;
			sslot = ng++;
			ssz = s->msg ? kn_wire_field_size(s->len) : 0;
		}
		ssz += kn_wire_field_size(h->len);
	}
	return total;
}

/* Pass 2 for one shard: writes the request into c (sized by pass 1). */
static void kn_wire_write(const struct kn_wire_index *ix, const uint8_t *buf, const uint32_t *ord,
			  uint32_t n, const uint32_t *g, struct kn_chunk *c)
{
	uint8_t *w = c->data;
	uint32_t ng = 0, cur_r = UINT32_MAX, cur_s = UINT32_MAX;
	int32_t nr = -1, ns = -1;

	for (uint32_t k = 0; k <= n; k++) {
		const struct kn_span_hdr *h = k < n ? &ix->spans[ord[k]] : NULL;
		if (cur_s != UINT32_MAX && (!h || h->scope_idx != cur_s)) {
			const struct kn_wire_scope *s = &ix->scopes[cur_s];
			if (s->schema_url_len)
				w = kn_wire_put_bytes(w, TAG_3, s->schema_url, s->schema_url_len);
			cur_s = UINT32_MAX;
		}
		if (cur_r != UINT32_MAX && (!h || h->resource_idx != cur_r)) {
			const struct kn_wire_resource *r = &ix->res[cur_r];
			if (r->schema_url_len)
				w = kn_wire_put_bytes(w, TAG_3, r->schema_url, r->schema_url_len);
			cur_r = UINT32_MAX;
		}
		if (!h)
			break;
		if (cur_r == UINT32_MAX) {
			const struct kn_wire_resource *r = &ix->res[h->resource_idx];
			cur_r = h->resource_idx;
			nr++;
			w = kn_wire_put_field(w, TAG_RESOURCE_SPANS, g[ng++]);
			if (r->msg)
				w = kn_wire_put_bytes(w, TAG_1, r->msg, r->len);
		}
		if (cur_s == UINT32_MAX) {
			const struct kn_wire_scope *s = &ix->scopes[h->scope_idx];
			cur_s = h->scope_idx;
			ns++;
			w = kn_wire_put_field(w, TAG_2, g[ng++]);
			if (s->msg)
				w = kn_wire_put_bytes(w, TAG_1, s->msg, s->len);
		}
		struct kn_span_hdr *o = &c->spans[k];
		*o = *h;
		w = kn_wire_put_field(w, TAG_2, h->len);
		o->off = (uint32_t)(w - c->data);
		o->name_off = o->off + (h->name_off - h->off);
		o->resource_idx = (uint32_t)nr;
		o->scope_idx = (uint32_t)ns;
		memcpy(w, buf + h->off, h->len);
		w += h->len;
	}
	c->len = (uint32_t)(w - c->data);
}

static uint32_t route_by_shard(const struct kn_span_hdr *h, void *ctx)
{
	return kn_shard_of(h->trace_id, *(const uint32_t *)ctx);
}

int kn_wire_split(struct kn_wire_index *ix, const uint8_t *buf, uint32_t nshards,
		  struct kn_chunk **out, struct kn_err *err)
{
	return kn_wire_split_by(ix, buf, nshards, route_by_shard, &nshards, out, err);
}

int kn_wire_split_by(struct kn_wire_index *ix, const uint8_t *buf, uint32_t nshards,
		     kn_wire_route_fn route, void *route_ctx, struct kn_chunk **out,
		     struct kn_err *err)
{
	uint32_t n = ix->nspans;
	uint32_t *shard, *ord, *g, *start;
	uint64_t need;

	if (nshards == 0 || nshards > 65536)
		return kn_errf(err, "split: shard count %u outside [1, 65536]", nshards);
	for (uint32_t s = 0; s < nshards; s++)
		out[s] = NULL;
	/* scratch: shard[n] + ord[n] + g[2n] + start[nshards + 1] */
	need = 4 * (uint64_t)n + nshards + 1;
	if (need > UINT32_MAX)
		return kn_errf(err, "split: %u spans is too many", n);
	if (need > ix->cap_scratch) {
		uint64_t cap = ix->cap_scratch ? ix->cap_scratch : 256;
		while (cap < need)
			cap *= 2;
		uint32_t *p = realloc(ix->scratch, (size_t)cap * sizeof *p);
		if (!p)
			return kn_errf(err, "split: out of memory for %u spans", n);
		ix->scratch = p;
		ix->cap_scratch = (uint32_t)(cap > UINT32_MAX ? UINT32_MAX : cap);
	}
	shard = ix->scratch;
	ord = shard + n;
	g = ord + n;
	start = g + 2 * (size_t)n;

	/* stable counting sort of span indexes by shard */
	memset(start, 0, ((size_t)nshards + 1) * sizeof *start);
	for (uint32_t i = 0; i < n; i++) {
		shard[i] = route(&ix->spans[i], route_ctx);
		if (shard[i] >= nshards) {
			kn_errf(err, "split: route gave %u for %u outputs", shard[i], nshards);
			for (uint32_t s = 0; s < nshards; s++)
				out[s] = NULL;
			return KN_ERR;
		}
		start[shard[i] + 1]++;
	}
	for (uint32_t s = 0; s < nshards; s++)
		start[s + 1] += start[s];
	for (uint32_t i = 0; i < n; i++)
		ord[start[shard[i]]++] = i;
	/* start[s] is now the end of shard s; shard s begins at start[s - 1] */
	for (uint32_t s = 0; s < nshards; s++) {
		uint32_t b = s ? start[s - 1] : 0, cnt = start[s] - b;
		if (!cnt)
			continue;
		uint64_t size = kn_wire_sizes(ix, ord + b, cnt, g);
		if (size == UINT64_MAX) {
			kn_errf(err, "split: shard %u's request would exceed 2 GiB", s);
			goto fail;
		}
		struct kn_chunk *c = kn_chunk_alloc(cnt, (uint32_t)size);
		if (!c) {
			kn_errf(err, "split: out of memory for a %llu-byte chunk",
				(unsigned long long)size);
			goto fail;
		}
		c->shard = (uint16_t)s;
		kn_wire_write(ix, buf, ord + b, cnt, g, c);
		out[s] = c;
	}
	return KN_OK;
fail:
	for (uint32_t s = 0; s < nshards; s++) {
		kn_chunk_unref(out[s]);
		out[s] = NULL;
	}
	return KN_ERR;
}
