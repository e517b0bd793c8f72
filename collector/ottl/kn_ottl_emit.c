/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_emit: a message's edits as splices, in one walk of its fields.
 *
 * In byte order: an attribute entry the view deleted is cut, one it changed
 * is re-encoded where it was; a scalar field a statement set is re-encoded
 * at its first occurrence and its later occurrences are cut (protobuf would
 * take the last one: after the edit there is one); a span event that was
 * dropped is cut, one that was rewritten is replaced. Then, at the
 * message's end, the set fields that had no occurrence and the new
 * attribute entries are appended. Untouched bytes are never copied here:
 * the splices go to kn_wire_edit (Resource, scope, Span), or, for a span
 * event (a message inside the span), are applied to a copy in the span's
 * arena that then replaces the event's field. */
#include <string.h>

#include "kn_ottl_int.h"
#include "../core/kn_grow.h"
#include "../wire/kn_wire_field.h"

static int push(struct kn_ottl_tx *tx, uint32_t off, uint32_t del, const uint8_t *ins, uint32_t n)
{
	if (kn_grow((void **)&tx->sp, &tx->cap_sp, tx->nsp, sizeof *tx->sp))
		return -1;
	tx->sp[tx->nsp++] = (struct kn_ottl_splice){.off = off, .del = del, .ins = ins, .ins_len = n};
	return 0;
}

static size_t put_varint(uint8_t *w, uint64_t v)
{
	return kn_wire_put_varint(w, v);
}

/* The encoding of field num of m (tag included) in the arena. */
static const uint8_t *enc_field(struct kn_ottl_tx *tx, const struct kn_ottl_m *m, int ctx, uint32_t num,
				uint32_t *len)
{
	int wt = kn_ottl_scalar_wt(ctx, num);
	const struct kn_ottl_fv *fv = &m->f[num];
	uint64_t tag = ((uint64_t)num << 3) | (uint64_t)wt;
	size_t inner = 0;
	if (ctx == KN_OTTL_CTX_SPAN && num == 15) {
		if (fv->len)
			inner += 1 + kn_wire_varint_len(fv->len) + fv->len;
		if (fv->u)
			inner += 1 + kn_wire_varint_len((uint64_t)(int64_t)(int32_t)fv->u);
	} else if (wt == KN_WIRE_FIELD_LEN) {
		inner = fv->len;
	}
	uint8_t *b = kn_ottl_tx_alloc(tx, 10 + 10 + inner + 10);
	if (!b)
		return NULL;
	uint8_t *w = b + put_varint(b, tag);
	switch (wt) {
	case KN_WIRE_FIELD_LEN:
		w += put_varint(w, inner);
		if (ctx == KN_OTTL_CTX_SPAN && num == 15) {
			if (fv->len) {
				*w++ = 0x12;
				w += put_varint(w, fv->len);
				memcpy(w, fv->s, fv->len);
				w += fv->len;
			}
			if (fv->u) {
				*w++ = 0x18;
				w += put_varint(w, (uint64_t)(int64_t)(int32_t)fv->u);
			}
		} else if (fv->len) {
			memcpy(w, fv->s, fv->len);
			w += fv->len;
		}
		break;
	case KN_WIRE_FIELD_VARINT:
		w += put_varint(w, fv->u);
		break;
	case KN_WIRE_FIELD_I64:
		for (int k = 0; k < 8; k++)
			*w++ = (uint8_t)(fv->u >> (8 * k));
		break;
	case KN_WIRE_FIELD_I32:
		for (int k = 0; k < 4; k++)
			*w++ = (uint8_t)(fv->u >> (8 * k));
		break;
	default:
		return NULL;
	}
	*len = (uint32_t)(w - b);
	return b;
}

static int collect(struct kn_ottl_tx *tx, struct kn_ottl_m *m, int ctx)
{
	const struct kn_wire_attrs *at = &m->at;
	int attrs = m->at_loaded && at->edited;
	uint32_t af = ctx == KN_OTTL_CTX_RESOURCE ? 1 : ctx == KN_OTTL_CTX_SPAN ? 9 : 3;
	int evs = ctx == KN_OTTL_CTX_SPAN && tx->ev_dirty;
	uint32_t seen = 0, ai = 0, ei = 0;
	const uint8_t *p = m->msg, *end = m->msg ? m->msg + m->len : NULL;
	struct kn_wire_field f;
	int r = 0;
	tx->nsp = 0;
	if (attrs && !m->chg && !evs) {
		/* only attributes changed: the view knows where each entry is */
		for (uint32_t i = 0; i < at->n; i++) {
			const struct kn_wire_attr *e = &at->a[i];
			if (e->state == KN_WA_DELETED && e->flen) {
				if (push(tx, e->off, e->flen, NULL, 0) < 0)
					return -1;
			} else if (e->state == KN_WA_CHANGED) {
				uint8_t *b = kn_ottl_tx_alloc(tx, kn_ottl_kv_size(e->key_len, &e->v) + 10);
				if (!b)
					return -1;
				uint8_t *w = kn_ottl_kv_write(b, af, e->key, e->key_len, &e->v);
				if (push(tx, e->off, e->flen, b, (uint32_t)(w - b)) < 0)
					return -1;
			}
		}
		p = NULL;   /* the walk below is skipped; new entries are appended */
	}
	while (p) {
		const uint8_t *f0 = p;
		if ((r = kn_wire_field_next(&p, end, &f)) <= 0)
			break;
		uint32_t off = (uint32_t)(f0 - m->msg), flen = (uint32_t)(p - f0);
		if (attrs && f.num == af && f.wt == KN_WIRE_FIELD_LEN) {
			while (ai < at->n && (at->a[ai].state == KN_WA_NEW || at->a[ai].off < off))
				ai++;
			if (ai < at->n && at->a[ai].off == off && at->a[ai].flen == flen) {
				const struct kn_wire_attr *e = &at->a[ai++];
				if (e->state == KN_WA_DELETED) {
					if (push(tx, off, flen, NULL, 0) < 0)
						return -1;
				} else if (e->state == KN_WA_CHANGED) {
					size_t n = kn_ottl_kv_size(e->key_len, &e->v) + 10;
					uint8_t *b = kn_ottl_tx_alloc(tx, n);
					if (!b)
						return -1;
					uint8_t *w = kn_ottl_kv_write(b, af, e->key, e->key_len, &e->v);
					if (push(tx, off, flen, b, (uint32_t)(w - b)) < 0)
						return -1;
				}
			}
			continue;
		}
		if (evs && f.num == 11 && f.wt == KN_WIRE_FIELD_LEN) {
			if (ei >= tx->nev)
				continue;
			const struct kn_ottl_ev *e = &tx->ev[ei++];
			if (e->dropped) {
				if (push(tx, off, flen, NULL, 0) < 0)
					return -1;
			} else if (e->out) {
				uint8_t *b = kn_ottl_tx_alloc(tx, 11 + (size_t)e->out_len);
				if (!b)
					return -1;
				uint8_t *w = b;
				*w++ = 0x5a;
				w += put_varint(w, e->out_len);
				memcpy(w, e->out, e->out_len);
				w += e->out_len;
				if (push(tx, off, flen, b, (uint32_t)(w - b)) < 0)
					return -1;
			}
			continue;
		}
		if (f.num < KN_OTTL_MAXF && (m->chg >> f.num & 1u) && (int)f.wt == kn_ottl_scalar_wt(ctx, f.num)) {
			if (seen >> f.num & 1u) {
				if (push(tx, off, flen, NULL, 0) < 0)
					return -1;
				continue;
			}
			seen |= 1u << f.num;
			uint32_t n = 0;
			const uint8_t *b = enc_field(tx, m, ctx, f.num, &n);
			if (!b || push(tx, off, flen, b, n) < 0)
				return -1;
		}
	}
	if (r < 0)
		return -1;
	for (uint32_t num = 1; num < KN_OTTL_MAXF; num++) {
		if (!(m->chg >> num & 1u) || (seen >> num & 1u))
			continue;
		uint32_t n = 0;
		const uint8_t *b = enc_field(tx, m, ctx, num, &n);
		if (!b || push(tx, m->len, 0, b, n) < 0)
			return -1;
	}
	if (attrs) {
		size_t total = 0;
		for (uint32_t i = 0; i < at->n; i++)
			if (at->a[i].state == KN_WA_NEW)
				total += kn_ottl_kv_size(at->a[i].key_len, &at->a[i].v) + 2;
		if (total) {
			uint8_t *b = kn_ottl_tx_alloc(tx, total), *w = b;
			if (!b)
				return -1;
			for (uint32_t i = 0; i < at->n; i++)
				if (at->a[i].state == KN_WA_NEW)
					w = kn_ottl_kv_write(w, af, at->a[i].key, at->a[i].key_len, &at->a[i].v);
			if (push(tx, m->len, 0, b, (uint32_t)(w - b)) < 0)
				return -1;
		}
	}
	return 0;
}

static int has_edits(const struct kn_ottl_tx *tx, const struct kn_ottl_m *m, int ctx)
{
	return m->chg || (m->at_loaded && m->at.edited) || (ctx == KN_OTTL_CTX_SPAN && tx->ev_dirty);
}

int kn_ottl_tx_emit(struct kn_ottl_tx *tx, int ctx, struct kn_wire_edit *ed)
{
	if (ctx < 0 || ctx > KN_OTTL_CTX_SPAN)
		return -1;
	struct kn_ottl_m *m = &tx->m[ctx];
	if (!has_edits(tx, m, ctx))
		return 0;
	int saved = tx->cur;
	tx->cur = ctx;
	int r = collect(tx, m, ctx);
	tx->cur = saved;
	if (r < 0)
		return -1;
	for (uint32_t i = 0; i < tx->nsp; i++) {
		const struct kn_ottl_splice *s = &tx->sp[i];
		uint8_t *w = kn_wire_edit_splice(ed, s->off, s->del, s->ins_len);
		if (!w)
			return -1;
		if (s->ins_len)
			memcpy(w, s->ins, s->ins_len);
	}
	return tx->nsp ? 1 : 0;
}

/* The edited copy of m in the current arena: 1 (out set), 0 no change, -1. */
int kn_ottl_msg_rebuild(struct kn_ottl_tx *tx, struct kn_ottl_m *m, int ctx, const uint8_t **out,
			uint32_t *out_len)
{
	if (!has_edits(tx, m, ctx))
		return 0;
	if (collect(tx, m, ctx) < 0)
		return -1;
	if (!tx->nsp)
		return 0;
	uint64_t n = m->len;
	for (uint32_t i = 0; i < tx->nsp; i++)
		n = n - tx->sp[i].del + tx->sp[i].ins_len;
	if (n > 0x7fffffffu)
		return -1;
	uint8_t *b = kn_ottl_tx_alloc(tx, (size_t)n), *w = b;
	if (!b)
		return -1;
	uint32_t pos = 0;
	for (uint32_t i = 0; i < tx->nsp; i++) {
		const struct kn_ottl_splice *s = &tx->sp[i];
		if (s->off > pos)
			memcpy(w, m->msg + pos, s->off - pos);
		w += s->off - pos;
		if (s->ins_len)
			memcpy(w, s->ins, s->ins_len);
		w += s->ins_len;
		pos = s->off + s->del;
	}
	if (m->len > pos)
		memcpy(w, m->msg + pos, m->len - pos);
	*out = b;
	*out_len = (uint32_t)n;
	return 1;
}
