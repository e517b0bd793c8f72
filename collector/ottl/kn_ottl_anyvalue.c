/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_anyvalue: maps and slices as OTLP encodes them, read and written
 * without a decoded tree.
 *
 * A map value is a KeyValue list (a message's attributes field, a
 * KeyValueList's values) or a live kn_wire_attrs view; a slice is an
 * ArrayValue's repeated AnyValue. Lookups walk the bytes (the first
 * KeyValue with the key wins, pdata's rule). Writing a nested key
 * (`attributes["a"]["b"][0]`) rebuilds only the AnyValues on the way down:
 * the untouched KeyValues and elements around the changed one are copied
 * as they are; a missing or empty map on the way is created, an index past
 * a slice's end is an error (OTel's setter). New bytes go to the tx's
 * arena of the current context. */
#include <string.h>

#include "kn_ottl_int.h"
#include "../wire/kn_wire_field.h"

/* ---- KeyValue encoding ---- */

static size_t lenfield(uint64_t n)
{
	return 1 + kn_wire_varint_len(n) + (size_t)n;
}

static size_t kv_inner(uint32_t klen, const struct kn_av *v)
{
	return lenfield(klen) + lenfield(kn_av_encoded_size(v));
}

size_t kn_ottl_kv_size(uint32_t klen, const struct kn_av *v)
{
	size_t in = kv_inner(klen, v);
	return 2 + kn_wire_varint_len(in) + in;
}

uint8_t *kn_ottl_kv_write(uint8_t *w, uint32_t field, const uint8_t *k, uint32_t klen, const struct kn_av *v)
{
	size_t in = kv_inner(klen, v), any = kn_av_encoded_size(v);
	w += kn_wire_put_varint(w, ((uint64_t)field << 3) | 2);
	w += kn_wire_put_varint(w, in);
	*w++ = 0x0a;
	w += kn_wire_put_varint(w, klen);
	if (klen)
		memcpy(w, k, klen);
	w += klen;
	*w++ = 0x12;
	w += kn_wire_put_varint(w, any);
	return kn_av_encode(v, w);
}

/* One KeyValue's key and value. 0, -1 malformed. */
static int kv_read(const uint8_t *p, size_t len, const uint8_t **k, uint32_t *klen, struct kn_av *v)
{
	const uint8_t *q = p, *end = p + len, *vp = NULL;
	size_t vl = 0;
	struct kn_wire_field f;
	int r = 0;
	*k = (const uint8_t *)"";
	*klen = 0;
	while ((r = kn_wire_field_next(&q, end, &f)) > 0) {
		if (f.num == 1 && f.wt == KN_WIRE_FIELD_LEN) {
			*k = f.payload;
			*klen = (uint32_t)f.len;
		} else if (f.num == 2 && f.wt == KN_WIRE_FIELD_LEN) {
			vp = f.payload;
			vl = f.len;
		}
	}
	if (r < 0)
		return -1;
	if (!vp) {
		memset(v, 0, sizeof *v);
		return 0;
	}
	return kn_av_decode(vp, vl, v);
}

/* ---- maps ---- */

int kn_ottl_map_each(const struct kn_ottl_val *m, kn_ottl_kv_fn fn, void *ctx)
{
	if (m->view) {
		const struct kn_wire_attrs *at = m->view;
		for (uint32_t i = 0; i < at->n; i++)
			if (at->a[i].state != KN_WA_DELETED && fn(ctx, at->a[i].key, at->a[i].key_len, &at->a[i].v))
				return 1;
		return 0;
	}
	if (!m->p)
		return 0;
	const uint8_t *p = m->p, *end = m->p + m->len;
	struct kn_wire_field f;
	int r = 0;
	while ((r = kn_wire_field_next(&p, end, &f)) > 0) {
		if (f.num != m->field || f.wt != KN_WIRE_FIELD_LEN)
			continue;
		const uint8_t *k = NULL;
		uint32_t kl = 0;
		struct kn_av v;
		if (kv_read(f.payload, f.len, &k, &kl, &v) < 0)
			return -1;
		if (fn(ctx, k, kl, &v))
			return 1;
	}
	return r < 0 ? -1 : 0;
}

struct getctx {
	const uint8_t *k;
	uint32_t klen;
	struct kn_av v;
	int found;
};

static int get_cb(void *ctx, const uint8_t *k, uint32_t klen, const struct kn_av *v)
{
	struct getctx *g = ctx;
	if (klen == g->klen && (!klen || memcmp(k, g->k, klen) == 0)) {
		g->v = *v;
		g->found = 1;
		return 1;
	}
	return 0;
}

int kn_ottl_map_get(const struct kn_ottl_val *m, const uint8_t *k, uint32_t klen, struct kn_ottl_val *out)
{
	struct getctx g = {.k = k, .klen = klen};
	memset(out, 0, sizeof *out);
	if (kn_ottl_map_each(m, get_cb, &g) < 0)
		return -1;
	if (!g.found)
		return 0;
	return kn_ottl_val_from_av(&g.v, out);
}

static int count_cb(void *ctx, const uint8_t *k, uint32_t klen, const struct kn_av *v)
{
	(void)k;
	(void)klen;
	(void)v;
	(*(int64_t *)ctx)++;
	return 0;
}

int64_t kn_ottl_map_len(const struct kn_ottl_val *m)
{
	if (m->view)
		return m->view->nlive;
	int64_t n = 0;
	if (kn_ottl_map_each(m, count_cb, &n) < 0)
		return -1;
	return n;
}

/* ---- slices ---- */

int kn_ottl_slice_get(const struct kn_ottl_val *s, int64_t i, struct kn_ottl_val *out)
{
	memset(out, 0, sizeof *out);
	if (i < 0 || !s->p)
		return 1;
	const uint8_t *p = s->p, *end = s->p + s->len;
	struct kn_wire_field f;
	int r = 0;
	int64_t k = 0;
	while ((r = kn_wire_field_next(&p, end, &f)) > 0) {
		if (f.num != 1 || f.wt != KN_WIRE_FIELD_LEN)
			continue;
		if (k++ == i)
			return kn_ottl_val_from_any(f.payload, (uint32_t)f.len, out) < 0 ? -1 : 0;
	}
	return r < 0 ? -1 : 1;
}

int64_t kn_ottl_slice_len(const struct kn_ottl_val *s)
{
	if (!s->p)
		return 0;
	const uint8_t *p = s->p, *end = s->p + s->len;
	struct kn_wire_field f;
	int64_t n = 0;
	int r = 0;
	while ((r = kn_wire_field_next(&p, end, &f)) > 0)
		if (f.num == 1 && f.wt == KN_WIRE_FIELD_LEN)
			n++;
	return r < 0 ? -1 : n;
}

/* ---- encoding whole maps ---- */

int kn_ottl_view_encode(struct kn_ottl_tx *tx, const struct kn_wire_attrs *at, const uint8_t **p,
			uint32_t *len)
{
	size_t n = 0;
	for (uint32_t i = 0; i < at->n; i++)
		if (at->a[i].state != KN_WA_DELETED)
			n += kn_ottl_kv_size(at->a[i].key_len, &at->a[i].v);
	if (n > 0x7fffffffu)
		return kn_ottl_rt_err(tx, "map too large");
	uint8_t *b = kn_ottl_tx_alloc(tx, n), *w = b;
	if (!b)
		return kn_ottl_rt_err(tx, "out of memory");
	for (uint32_t i = 0; i < at->n; i++)
		if (at->a[i].state != KN_WA_DELETED)
			w = kn_ottl_kv_write(w, 1, at->a[i].key, at->a[i].key_len, &at->a[i].v);
	*p = b;
	*len = (uint32_t)(w - b);
	return 0;
}

int kn_ottl_map_encode(struct kn_ottl_tx *tx, const struct kn_ottl_val *m, const uint8_t **p, uint32_t *len)
{
	if (m->view)
		return kn_ottl_view_encode(tx, m->view, p, len);
	if (!m->p) {
		*p = (const uint8_t *)"";
		*len = 0;
		return 0;
	}
	if (m->field == 1) {
		*p = m->p;
		*len = m->len;
		return 0;
	}
	const uint8_t *q = m->p, *end = m->p + m->len;
	struct kn_wire_field f;
	size_t n = 0;
	int r = 0;
	while ((r = kn_wire_field_next(&q, end, &f)) > 0)
		if (f.num == m->field && f.wt == KN_WIRE_FIELD_LEN)
			n += 1 + kn_wire_varint_len(f.len) + f.len;
	if (r < 0)
		return kn_ottl_rt_err(tx, "malformed map value");
	uint8_t *b = kn_ottl_tx_alloc(tx, n), *w = b;
	if (!b)
		return kn_ottl_rt_err(tx, "out of memory");
	q = m->p;
	while (kn_wire_field_next(&q, end, &f) > 0) {
		if (f.num != m->field || f.wt != KN_WIRE_FIELD_LEN)
			continue;
		*w++ = 0x0a;
		w += kn_wire_put_varint(w, f.len);
		memcpy(w, f.payload, f.len);
		w += f.len;
	}
	*p = b;
	*len = (uint32_t)(w - b);
	return 0;
}

/* ---- nested writes ---- */

/* What a value holds: 6 a map, 5 a slice (payload set), 0 empty, -1 other. */
static int any_payload(const struct kn_av *a, const uint8_t **p, uint32_t *len)
{
	*p = NULL;
	*len = 0;
	if (a->type == KN_AV_EMPTY)
		return 0;
	if (a->type != KN_AV_RAW)
		return -1;
	const uint8_t *q = a->s, *end = a->s + a->len;
	struct kn_wire_field f;
	int kind = -1;
	while (kn_wire_field_next(&q, end, &f) > 0) {
		if (f.wt != KN_WIRE_FIELD_LEN)
			continue;
		if (f.num == 5 || f.num == 6) {
			kind = (int)f.num;
			*p = f.payload;
			*len = (uint32_t)f.len;
		} else if (f.num == 7 || f.num == 8) {
			kind = -1;
		}
	}
	return kind;
}

static const char *av_kind(const struct kn_av *a)
{
	struct kn_ottl_val v;
	if (kn_ottl_val_from_av(a, &v) < 0)
		return "malformed value";
	return kn_ottl_vt_an(v.t);
}

/* payload[0..off) + ins + payload[off+del..) wrapped as AnyValue field `num`. */
static int wrap(struct kn_ottl_tx *tx, uint32_t num, const uint8_t *pl, uint32_t pllen, uint32_t off,
		uint32_t del, const uint8_t *ins, uint32_t inslen, struct kn_av *out)
{
	uint64_t n = (uint64_t)pllen - del + inslen;
	if (n > 0x7ffffff0u)
		return kn_ottl_rt_err(tx, "value too large");
	uint8_t *b = kn_ottl_tx_alloc(tx, (size_t)n + 11), *w = b;
	if (!b)
		return kn_ottl_rt_err(tx, "out of memory");
	*w++ = (uint8_t)(num << 3 | 2);
	w += kn_wire_put_varint(w, n);
	if (off)
		memcpy(w, pl, off);
	w += off;
	if (inslen)
		memcpy(w, ins, inslen);
	w += inslen;
	if (pllen > off + del)
		memcpy(w, pl + off + del, pllen - off - del);
	w += pllen - off - del;
	out->type = KN_AV_RAW;
	out->s = b;
	out->len = (uint32_t)(w - b);
	return 0;
}

int kn_ottl_any_set(struct kn_ottl_tx *tx, const struct kn_av *cur, const struct kn_ottl_node *path,
		    uint32_t from, const struct kn_av *nv, struct kn_av *out)
{
	if (from >= path->nkeys) {
		*out = *nv;
		return 0;
	}
	const uint8_t *key = NULL;
	uint32_t klen = 0;
	int64_t idx = 0;
	int kt = kn_ottl_key(path->keys[from], tx, &key, &klen, &idx);
	if (kt < 0)
		return -1;
	const uint8_t *pl = NULL;
	uint32_t pllen = 0;
	int kind = any_payload(cur, &pl, &pllen);
	const uint8_t *q = NULL, *end = NULL;
	struct kn_wire_field f;
	struct kn_av child = {.type = KN_AV_EMPTY}, nchild;
	uint32_t off = pllen, del = 0;
	int found = 0;
	if (kt == 0) {
		if (kind != 0 && kind != 6)
			return kn_ottl_rt_err(tx, "cannot set key \"%.*s\": the value is %s, not a map", (int)klen,
					      (const char *)key, av_kind(cur));
		q = pl;
		end = pl ? pl + pllen : NULL;
		while (pl) {
			const uint8_t *f0 = q;
			int r = kn_wire_field_next(&q, end, &f);
			if (r < 0)
				return kn_ottl_rt_err(tx, "malformed map value");
			if (r == 0)
				break;
			if (f.num != 1 || f.wt != KN_WIRE_FIELD_LEN)
				continue;
			const uint8_t *k = NULL;
			uint32_t kl = 0;
			struct kn_av v;
			if (kv_read(f.payload, f.len, &k, &kl, &v) < 0)
				return kn_ottl_rt_err(tx, "malformed map value");
			if (kl == klen && (!klen || memcmp(k, key, klen) == 0)) {
				found = 1;
				child = v;
				off = (uint32_t)(f0 - pl);
				del = (uint32_t)(q - f0);
				break;
			}
		}
		if (kn_ottl_any_set(tx, &child, path, from + 1, nv, &nchild) < 0)
			return -1;
		size_t n = kn_ottl_kv_size(klen, &nchild);
		uint8_t *b = kn_ottl_tx_alloc(tx, n), *w;
		if (!b)
			return kn_ottl_rt_err(tx, "out of memory");
		w = kn_ottl_kv_write(b, 1, key, klen, &nchild);
		(void)found;
		return wrap(tx, 6, pl, pllen, off, del, b, (uint32_t)(w - b), out);
	}
	if (kind != 5)
		return kn_ottl_rt_err(tx, "cannot set index %lld: the value is %s, not a slice", (long long)idx,
				      av_kind(cur));
	int64_t k = 0;
	q = pl;
	end = pl ? pl + pllen : NULL;
	while (pl && idx >= 0) {
		const uint8_t *f0 = q;
		int r = kn_wire_field_next(&q, end, &f);
		if (r < 0)
			return kn_ottl_rt_err(tx, "malformed slice value");
		if (r == 0)
			break;
		if (f.num != 1 || f.wt != KN_WIRE_FIELD_LEN)
			continue;
		if (k++ == idx) {
			if (kn_av_decode(f.payload, f.len, &child) < 0)
				return kn_ottl_rt_err(tx, "malformed slice value");
			off = (uint32_t)(f0 - pl);
			del = (uint32_t)(q - f0);
			found = 1;
			break;
		}
	}
	if (!found)
		return kn_ottl_rt_err(tx, "index %lld out of range", (long long)idx);
	if (kn_ottl_any_set(tx, &child, path, from + 1, nv, &nchild) < 0)
		return -1;
	size_t an = kn_av_encoded_size(&nchild);
	uint8_t *b = kn_ottl_tx_alloc(tx, an + 11), *w = b;
	if (!b)
		return kn_ottl_rt_err(tx, "out of memory");
	*w++ = 0x0a;
	w += kn_wire_put_varint(w, an);
	w = kn_av_encode(&nchild, w);
	return wrap(tx, 5, pl, pllen, off, del, b, (uint32_t)(w - b), out);
}
