/* SPDX-License-Identifier: Apache-2.0
 * kn_journey_rewrite: a released trace's buffer (concatenated ResourceSpans,
 * as the tail store keeps it) -> one chunk whose spans carry the journey's
 * attributes.
 *
 * Per span: the span's fields are copied in order except its `attributes`
 * (field 9) whose key is one the plan replaces; then the plan's attributes
 * are appended (protobuf merges repeated fields), each unless the span
 * already has that key and the entry does not replace. Every other byte of
 * the span (trace_state, links, events, unknown fields) is copied as it is.
 * The ScopeSpans / ResourceSpans lengths are written anew; their other
 * fields (Resource, scope, schema_url, unknown ones) are copied verbatim.
 * Two passes: sizes of every group and span first (into w->g), then the
 * bytes; then kn_wire_index_trusted rebuilds the span headers and must find
 * exactly the trace's spans.
 *
 * This is kn_tail_emit's walk with a per-span decision instead of one
 * suffix for all spans. Costs: one copy plus one index pass per trace;
 * scratch only grows. Threads: a kn_journey_rw is per shard. */
#include <stdlib.h>
#include <string.h>

#include "kn_journey_int.h"
#include "../../collector/core/kn_grow.h"
#include "../../collector/core/kn_hex.h"
#include "../../collector/wire/kn_wire_field.h"

void kn_journey_rw_init(struct kn_journey_rw *w)
{
	memset(w, 0, sizeof *w);
	kn_wire_index_init(&w->ix);
}

void kn_journey_rw_free(struct kn_journey_rw *w)
{
	if (!w)
		return;
	kn_wire_index_free(&w->ix);
	free(w->g);
	free(w->has);
	memset(w, 0, sizeof *w);
}

static size_t fsize(uint64_t len)
{
	return 1 + kn_wire_varint_len(len) + (size_t)len;
}

static uint8_t *put_field(uint8_t *w, uint8_t tag, uint64_t len)
{
	*w++ = tag;
	return w + kn_wire_put_varint(w, len);
}

void kn_journey_plan_build(struct kn_journey_plan *pl, const struct kn_journey_head *h,
			   int overwrite, const char *idkey)
{
	pl->n = 0;
	const uint8_t *p = h->attrs, *end = h->attrs + (h->attrs_len <= KN_JOURNEY_ATTRS_MAX
								 ? h->attrs_len : 0);
	struct kn_wire_field f, g;
	while (pl->n + 1 < KN_JOURNEY_MAX_PLAN) {
		const uint8_t *f0 = p;
		if (kn_wire_field_next(&p, end, &f) <= 0)
			break;
		if (f.num != 9 || f.wt != 2)
			continue;
		struct kn_journey_add *a = &pl->add[pl->n];
		memset(a, 0, sizeof *a);
		const uint8_t *q = f.payload;
		while (kn_wire_field_next(&q, f.payload + f.len, &g) > 0)
			if (g.num == 1 && g.wt == 2) {
				a->key = g.payload;
				a->key_len = g.len;
			}
		if (!a->key)
			continue;
		a->field = f0;
		a->field_len = (uint32_t)(p - f0);
		a->replace = overwrite;
		pl->n++;
	}
	size_t kl = idkey ? strlen(idkey) : 0;
	if (kl == 0 || kl > 64)
		return;
	/* KeyValue{key, AnyValue{string_value: 32 hex}} */
	size_t any = fsize(32), kv = fsize(kl) + fsize(any);
	uint8_t *w = put_field(pl->id_field, 0x4a, kv);
	w = put_field(w, 0x0a, kl);
	memcpy(w, idkey, kl);
	uint8_t *key = w;
	w += kl;
	w = put_field(w, 0x12, any);
	w = put_field(w, 0x0a, 32);
	kn_hex_encode(h->journey_id, 16, (char *)w);
	w += 32;
	struct kn_journey_add *a = &pl->add[pl->n++];
	a->field = pl->id_field;
	a->field_len = (uint32_t)(w - pl->id_field);
	a->key = key;
	a->key_len = (uint32_t)kl;
	a->replace = 1;
}

/* The plan entry named by an attribute field's KeyValue, or -1. The usual
 * shape, key (short) then one value field ending the KeyValue, is read
 * directly; anything else is walked (the last key field wins). */
static int plan_key(const struct kn_journey_plan *pl, const uint8_t *kv, uint32_t kvlen)
{
	const uint8_t *q = kv, *k = NULL, *end = kv + kvlen;
	uint32_t klen = 0;
	if (kvlen >= 2 && kv[0] == 0x0a && kv[1] < 0x80 && (uint32_t)kv[1] + 2 <= kvlen) {
		const uint8_t *v = kv + 2 + kv[1];
		if (v == end || (end - v >= 2 && v[0] == 0x12 && v[1] < 0x80 && v + 2 + v[1] == end)) {
			k = kv + 2;
			klen = kv[1];
		}
	}
	if (!k) {
		struct kn_wire_field g;
		while (kn_wire_field_next(&q, end, &g) > 0)
			if (g.num == 1 && g.wt == 2) {
				k = g.payload;
				klen = g.len;
			}
	}
	if (!k && klen == 0)
		k = (const uint8_t *)"";
	for (uint32_t i = 0; i < pl->n; i++)
		if (pl->add[i].key_len == klen && memcmp(pl->add[i].key, k, klen) == 0)
			return (int)i;
	return -1;
}

/* Which plan entries the span already has (bit i) and the bytes its
 * replaced attributes take. -1 when the span is malformed. */
static int span_has(const struct kn_journey_plan *pl, const uint8_t *span, uint32_t len,
		    uint64_t *has, uint64_t *removed)
{
	const uint8_t *p = span, *end = span + len;
	struct kn_wire_field f;
	int r;
	*has = 0;
	*removed = 0;
	for (;;) {
		const uint8_t *f0 = p;
		if ((r = kn_wire_field_next(&p, end, &f)) <= 0)
			return r;
		if (f.num != 9 || f.wt != 2)
			continue;
		int i = plan_key(pl, f.payload, f.len);
		if (i < 0)
			continue;
		*has |= 1ull << i;
		if (pl->add[i].replace)
			*removed += (uint64_t)(p - f0);
	}
}

static uint64_t span_new_len(const struct kn_journey_plan *pl, const uint8_t *span, uint32_t len,
			     uint64_t *has)
{
	uint64_t removed;
	if (span_has(pl, span, len, has, &removed) < 0)
		return UINT64_MAX;
	uint64_t n = len - removed;
	for (uint32_t i = 0; i < pl->n; i++)
		if (pl->add[i].replace || !(*has & (1ull << i)))
			n += pl->add[i].field_len;
	return n;
}

/* Writes the span (its plan entries known from pass 1: has) rewritten. A
 * span holding none of the entries to replace is copied whole. */
static uint8_t *span_write(const struct kn_journey_plan *pl, const uint8_t *span, uint32_t len,
			   uint64_t has, uint64_t replace_mask, uint8_t *w)
{
	const uint8_t *p = span, *end = span + len;
	struct kn_wire_field f;
	if (!(has & replace_mask)) {
		memcpy(w, span, len);
		w += len;
		p = end;
	}
	for (;;) {
		const uint8_t *f0 = p;
		if (kn_wire_field_next(&p, end, &f) <= 0)
			break;
		if (f.num == 9 && f.wt == 2) {
			int i = plan_key(pl, f.payload, f.len);
			if (i >= 0 && pl->add[i].replace)
				continue;
		}
		memcpy(w, f0, (size_t)(p - f0));
		w += p - f0;
	}
	for (uint32_t i = 0; i < pl->n; i++)
		if (pl->add[i].replace || !(has & (1ull << i))) {
			memcpy(w, pl->add[i].field, pl->add[i].field_len);
			w += pl->add[i].field_len;
		}
	return w;
}

static int g_push(struct kn_journey_rw *w, uint32_t *ng)
{
	if (kn_grow((void **)&w->g, &w->cap_g, *ng, sizeof *w->g))
		return -1;
	return (int)(*ng)++;
}

static int has_push(struct kn_journey_rw *w, uint32_t *nh, uint64_t has)
{
	if (kn_grow((void **)&w->has, &w->cap_has, *nh, sizeof *w->has))
		return -1;
	w->has[(*nh)++] = has;
	return 0;
}

#define TOO_BIG 0x7fffffffull

/* Pass 1: sizes into w->g (ResourceSpans, ScopeSpans, span, in order). */
static uint64_t measure(struct kn_journey_rw *w, const uint8_t *buf, size_t len,
			const struct kn_journey_plan *pl)
{
	uint64_t total = 0;
	uint32_t ng = 0, nh = 0;
	const uint8_t *p = buf, *end = buf + len;
	struct kn_wire_field f;
	int r;
	while ((r = kn_wire_field_next(&p, end, &f)) > 0) {
		if (f.num != 1 || f.wt != 2)
			return UINT64_MAX;
		int rslot = g_push(w, &ng);
		if (rslot < 0)
			return UINT64_MAX;
		uint64_t rsz = 0;
		const uint8_t *q = f.payload, *qend = f.payload + f.len;
		struct kn_wire_field s;
		for (;;) {
			const uint8_t *s0 = q;
			if ((r = kn_wire_field_next(&q, qend, &s)) < 0)
				return UINT64_MAX;
			if (r == 0)
				break;
			if (s.num != 2 || s.wt != 2) {
				rsz += (uint64_t)(q - s0);
				continue;
			}
			int sslot = g_push(w, &ng);
			if (sslot < 0)
				return UINT64_MAX;
			uint64_t ssz = 0;
			const uint8_t *u = s.payload, *uend = s.payload + s.len;
			struct kn_wire_field x;
			for (;;) {
				const uint8_t *x0 = u;
				if ((r = kn_wire_field_next(&u, uend, &x)) < 0)
					return UINT64_MAX;
				if (r == 0)
					break;
				if (x.num != 2 || x.wt != 2) {
					ssz += (uint64_t)(u - x0);
					continue;
				}
				uint64_t has = 0;
				uint64_t nl = span_new_len(pl, x.payload, x.len, &has);
				int xslot = g_push(w, &ng);
				if (nl > TOO_BIG || xslot < 0 || has_push(w, &nh, has) < 0)
					return UINT64_MAX;
				w->g[xslot] = (uint32_t)nl;
				ssz += fsize(nl);
			}
			if (ssz > TOO_BIG)
				return UINT64_MAX;
			w->g[sslot] = (uint32_t)ssz;
			rsz += fsize(ssz);
		}
		if (rsz > TOO_BIG)
			return UINT64_MAX;
		w->g[rslot] = (uint32_t)rsz;
		total += fsize(rsz);
		if (total > TOO_BIG)
			return UINT64_MAX;
	}
	return r < 0 ? UINT64_MAX : total;
}

/* Pass 2: writes what pass 1 measured (the input was checked there). */
static uint8_t *write_all(const struct kn_journey_rw *w, const uint8_t *buf, size_t len,
			  const struct kn_journey_plan *pl, uint8_t *o)
{
	uint32_t ng = 0, nh = 0;
	uint64_t replace_mask = 0;
	for (uint32_t i = 0; i < pl->n; i++)
		if (pl->add[i].replace)
			replace_mask |= 1ull << i;
	const uint8_t *p = buf, *end = buf + len;
	struct kn_wire_field f, s, x;
	while (kn_wire_field_next(&p, end, &f) > 0) {
		o = put_field(o, 0x0a, w->g[ng++]);
		const uint8_t *q = f.payload, *qend = f.payload + f.len;
		for (;;) {
			const uint8_t *s0 = q;
			if (kn_wire_field_next(&q, qend, &s) <= 0)
				break;
			if (s.num != 2 || s.wt != 2) {
				memcpy(o, s0, (size_t)(q - s0));
				o += q - s0;
				continue;
			}
			o = put_field(o, 0x12, w->g[ng++]);
			const uint8_t *u = s.payload, *uend = s.payload + s.len;
			for (;;) {
				const uint8_t *x0 = u;
				if (kn_wire_field_next(&u, uend, &x) <= 0)
					break;
				if (x.num != 2 || x.wt != 2) {
					memcpy(o, x0, (size_t)(u - x0));
					o += u - x0;
					continue;
				}
				o = put_field(o, 0x12, w->g[ng++]);
				o = span_write(pl, x.payload, x.len, w->has[nh++], replace_mask, o);
			}
		}
	}
	return o;
}

struct kn_chunk *kn_journey_rw_chunk(struct kn_journey_rw *w, const uint8_t *buf, size_t len,
				     uint32_t nspans, const struct kn_journey_plan *pl,
				     struct kn_err *err)
{
	struct kn_chunk *c = NULL;
	uint64_t size = measure(w, buf, len, pl);
	if (size == UINT64_MAX) {
		kn_errf(err, "journey: a trace's buffer is malformed or over 2 GiB");
		goto fail;
	}
	c = kn_chunk_alloc(nspans, (uint32_t)size);
	if (!c) {
		kn_errf(err, "journey: out of memory for a %llu-byte chunk", (unsigned long long)size);
		goto fail;
	}
	if ((uint64_t)(write_all(w, buf, len, pl, c->data) - c->data) != size) {
		kn_errf(err, "journey: rewrite wrote an unexpected size");
		goto fail;
	}
	c->len = (uint32_t)size;
	if (kn_wire_index_trusted(&w->ix, c->data, c->len, err) != KN_OK)
		goto fail;
	if (w->ix.nspans != nspans || w->ix.rejected) {
		kn_errf(err, "journey: rewritten chunk indexes %u spans (%u rejected), expected %u",
			w->ix.nspans, w->ix.rejected, nspans);
		goto fail;
	}
	memcpy(c->spans, w->ix.spans, (size_t)nspans * sizeof *c->spans);
	return c;
fail:
	kn_chunk_unref(c);
	return NULL;
}
