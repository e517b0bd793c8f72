/* SPDX-License-Identifier: Apache-2.0
 * kn_journey_rewrite: a released trace's buffer (concatenated ResourceSpans,
 * as the tail store keeps it) -> one chunk whose spans carry the journey's
 * attributes.
 *
 * Per span (kn_wire_edit's span callback): the `attributes` (field 9)
 * whose key is one the plan replaces are cut out where they are, then the
 * plan's attributes are appended (protobuf merges repeated fields), each
 * unless the span already has that key and the entry does not replace.
 * Every other byte of the span (trace_state, links, events, unknown fields)
 * stays as it is; kn_wire_edit copies Resources, scopes and unchanged spans
 * byte for byte, writes the group lengths anew and indexes the result, which
 * must hold exactly the trace's spans. A trace no entry changes is copied
 * whole and indexed.
 *
 * Costs: one copy plus one index pass per trace; the editor's scratch only
 * grows. Threads: a kn_journey_rw is per shard. */
#include <stdlib.h>
#include <string.h>

#include "kn_journey_int.h"
#include "../../collector/core/kn_hex.h"
#include "../../collector/wire/kn_wire_field.h"

void kn_journey_rw_init(struct kn_journey_rw *w)
{
	kn_wire_edit_init(&w->ed);
}

void kn_journey_rw_free(struct kn_journey_rw *w)
{
	if (w)
		kn_wire_edit_free(&w->ed);
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

/* The span callback: the plan's replaced attributes are cut out where they
 * are, then every entry to add is appended after the span's last byte, as
 * splices on the span (attribute KeyValues only, so the editor can patch
 * the header). A span that already has every entry and replaces none gets
 * no splice and is copied whole. */
static int on_span(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_span *sp)
{
	const struct kn_journey_plan *pl = ctx;
	const uint8_t *p = sp->span, *end = sp->span + sp->span_len;
	struct kn_wire_field f;
	uint64_t has = 0;
	uint32_t nattrs = 0, nsplices = 0;
	int r;
	for (;;) {
		const uint8_t *f0 = p;
		if ((r = kn_wire_field_next(&p, end, &f)) < 0)
			return -1;
		if (r == 0)
			break;
		if (f.num != 9 || f.wt != 2)
			continue;
		nattrs++;
		int i = plan_key(pl, f.payload, f.len);
		if (i < 0)
			continue;
		has |= 1ull << i;
		if (!pl->add[i].replace)
			continue;
		if (!kn_wire_edit_splice_span_attrs(ed, (uint32_t)(f0 - sp->span), (uint32_t)(p - f0), 0))
			return -1;
		nattrs--;
		nsplices++;
	}
	uint32_t add = 0, nadd = 0;
	for (uint32_t i = 0; i < pl->n; i++)
		if (pl->add[i].replace || !(has & (1ull << i))) {
			add += pl->add[i].field_len;
			nadd++;
		}
	if (add) {
		uint8_t *w = kn_wire_edit_splice_span_attrs(ed, sp->span_len, 0, add);
		if (!w)
			return -1;
		for (uint32_t i = 0; i < pl->n; i++)
			if (pl->add[i].replace || !(has & (1ull << i))) {
				memcpy(w, pl->add[i].field, pl->add[i].field_len);
				w += pl->add[i].field_len;
			}
		nsplices++;
	}
	if (nsplices)
		kn_wire_edit_span_nattrs(ed, nattrs + nadd);
	return 0;
}

static const struct kn_wire_edit_ops rw_ops = {.span = on_span};

struct kn_chunk *kn_journey_rw_chunk(struct kn_journey_rw *w, const uint8_t *buf, size_t len,
				     uint32_t nspans, const struct kn_journey_plan *pl,
				     struct kn_err *err)
{
	struct kn_chunk *c = NULL;
	struct kn_err e = {{0}};
	if (kn_wire_edit_run(&w->ed, &rw_ops, (void *)(uintptr_t)pl, buf, len, nspans, NULL, &c, &e) != KN_OK) {
		kn_errf(err, "journey: %s", e.msg);
		return NULL;
	}
	if (c)
		return c;
	/* nothing to change in any span: the buffer as a chunk of its own */
	if (len > UINT32_MAX || !(c = kn_chunk_alloc(nspans, (uint32_t)len))) {
		kn_errf(err, "journey: out of memory for a %zu-byte chunk", len);
		return NULL;
	}
	memcpy(c->data, buf, len);
	c->len = (uint32_t)len;
	if (kn_wire_edit_index(&w->ed, c, &e) != KN_OK) {
		kn_errf(err, "journey: %s", e.msg);
		kn_chunk_unref(c);
		return NULL;
	}
	return c;
}
