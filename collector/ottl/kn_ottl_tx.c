/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_tx: the transform context one shard worker evaluates with.
 *
 * One message state per context (resource, scope, span, current span
 * event): the bytes it points at, its scalar fields read in one pass when
 * a path first needs them (last occurrence wins, as protobuf merges; the
 * Status message's code and message merged over its occurrences), its
 * attribute view loaded only when something edits it (reads before that
 * scan the bytes), and the fields statements changed. One arena per
 * context holds what statements made while that context was current
 * (strings, encoded values): it is reset when the caller moves to the next
 * resource / scope / span, so a resource's edited values stay readable by
 * the span statements of that resource. Span events share the span's arena.
 *
 * Everything here only grows: after warm-up a span costs no allocation. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kn_ottl_int.h"
#include "../core/kn_grow.h"
#include "../wire/kn_wire_field.h"

/* ---- the tx ---- */

struct kn_ottl_tx *kn_ottl_tx_new(void)
{
	struct kn_ottl_tx *tx = calloc(1, sizeof *tx);
	if (!tx)
		return NULL;
	for (int c = 0; c < KN_OTTL_NCTX; c++) {
		tx->m[c].kind = (uint8_t)c;
		kn_wire_attrs_init(&tx->m[c].at);
		tx->ar[c].min_block = 16384;
	}
	kn_wire_attrs_init(&tx->tmp);
	tx->ev_cur = -1;
	tx->cur = KN_OTTL_CTX_SPAN;
	return tx;
}

void kn_ottl_tx_free(struct kn_ottl_tx *tx)
{
	if (!tx)
		return;
	for (int c = 0; c < KN_OTTL_NCTX; c++) {
		kn_wire_attrs_free(&tx->m[c].at);
		kn_arena_free(&tx->ar[c]);
	}
	kn_wire_attrs_free(&tx->tmp);
	free(tx->ev);
	free(tx->sp);
	free(tx->rbuf);
	free(tx->tbuf);
	if (tx->md)
		pcre2_match_data_free(tx->md);
	free(tx);
}

/* Cheap on purpose (once per span): the fields are cleared when parsed. */
static void msg_reset(struct kn_ottl_m *m, const uint8_t *msg, uint32_t len)
{
	m->msg = msg;
	m->len = msg ? len : 0;
	m->parsed = 0;
	m->at_loaded = 0;
	m->bad = 0;
	m->chg = 0;
	m->at.edited = 0;
}

void kn_ottl_tx_resource(struct kn_ottl_tx *tx, const uint8_t *msg, uint32_t len)
{
	msg_reset(&tx->m[KN_OTTL_CTX_RESOURCE], msg, len);
	kn_arena_reset(&tx->ar[KN_OTTL_CTX_RESOURCE]);
}

void kn_ottl_tx_scope(struct kn_ottl_tx *tx, const uint8_t *msg, uint32_t len)
{
	msg_reset(&tx->m[KN_OTTL_CTX_SCOPE], msg, len);
	kn_arena_reset(&tx->ar[KN_OTTL_CTX_SCOPE]);
}

void kn_ottl_tx_span(struct kn_ottl_tx *tx, const uint8_t *msg, uint32_t len)
{
	msg_reset(&tx->m[KN_OTTL_CTX_SPAN], msg, len);
	msg_reset(&tx->m[KN_OTTL_CTX_SPANEVENT], NULL, 0);
	kn_arena_reset(&tx->ar[KN_OTTL_CTX_SPAN]);
	tx->nev = 0;
	tx->ev_state = 0;
	tx->ev_cur = -1;
	tx->ev_dirty = 0;
}

/* Which wire type each scalar field of a context's message has (0: none). */
static int wire_type(int ctx, uint32_t num)
{
	switch (ctx) {
	case KN_OTTL_CTX_RESOURCE:
		return num == 2 ? KN_WIRE_FIELD_VARINT : -1;
	case KN_OTTL_CTX_SCOPE:
		return num == 1 || num == 2 ? KN_WIRE_FIELD_LEN : num == 4 ? KN_WIRE_FIELD_VARINT : -1;
	case KN_OTTL_CTX_SPAN:
		switch (num) {
		case 1: case 2: case 3: case 4: case 5: case 15:
			return KN_WIRE_FIELD_LEN;
		case 6: case 10: case 12: case 14:
			return KN_WIRE_FIELD_VARINT;
		case 7: case 8:
			return KN_WIRE_FIELD_I64;
		case 16:
			return KN_WIRE_FIELD_I32;
		default:
			return -1;
		}
	case KN_OTTL_CTX_SPANEVENT:
		return num == 1 ? KN_WIRE_FIELD_I64 : num == 2 ? KN_WIRE_FIELD_LEN : num == 4 ? KN_WIRE_FIELD_VARINT : -1;
	default:
		return -1;
	}
}

int kn_ottl_scalar_wt(int ctx, uint32_t num)
{
	return wire_type(ctx, num);
}

static int parse_status(struct kn_ottl_fv *fv, const uint8_t *p, size_t len)
{
	const uint8_t *q = p, *end = p + len;
	struct kn_wire_field f;
	int r = 0;
	while ((r = kn_wire_field_next(&q, end, &f)) > 0) {
		if (f.num == 2 && f.wt == KN_WIRE_FIELD_LEN) {
			fv->s = f.payload;
			fv->len = (uint32_t)f.len;
		} else if (f.num == 3 && f.wt == KN_WIRE_FIELD_VARINT) {
			fv->u = f.value;
		}
	}
	return r;
}

static int msg_parse(struct kn_ottl_m *m)
{
	struct kn_wire_field f;
	int r = 0;
	m->parsed = 1;
	memset(m->f, 0, sizeof m->f);
	if (!m->msg)
		return 0;
	const uint8_t *p = m->msg, *end = m->msg + m->len;
	while ((r = kn_wire_field_next(&p, end, &f)) > 0) {
		if (f.num >= KN_OTTL_MAXF || (int)f.wt != wire_type(m->kind, f.num))
			continue;
		struct kn_ottl_fv *fv = &m->f[f.num];
		if (m->kind == KN_OTTL_CTX_SPAN && f.num == 15) {
			if (parse_status(fv, f.payload, f.len) < 0)
				r = -1;
			if (r < 0)
				break;
			continue;
		}
		if (f.wt == KN_WIRE_FIELD_LEN) {
			fv->s = f.payload;
			fv->len = (uint32_t)f.len;
		} else {
			fv->u = f.value;
		}
	}
	if (r < 0)
		m->bad = 1;
	return r < 0 ? -1 : 0;
}

struct kn_ottl_m *kn_ottl_tx_msg(struct kn_ottl_tx *tx, int ctx)
{
	struct kn_ottl_m *m = &tx->m[ctx];
	if (ctx == KN_OTTL_CTX_SPANEVENT && tx->ev_cur < 0) {
		kn_ottl_rt_err(tx, "no span event is current");
		return NULL;
	}
	if (m->bad) {
		kn_ottl_rt_err(tx, "malformed %s bytes", kn_ottl_ctx_name(ctx));
		return NULL;
	}
	return m;
}

struct kn_ottl_m *kn_ottl_tx_fields(struct kn_ottl_tx *tx, int ctx)
{
	struct kn_ottl_m *m = kn_ottl_tx_msg(tx, ctx);
	if (m && !m->parsed && msg_parse(m) < 0) {
		kn_ottl_rt_err(tx, "malformed %s bytes", kn_ottl_ctx_name(ctx));
		return NULL;
	}
	return m;
}

struct kn_wire_attrs *kn_ottl_tx_attrs(struct kn_ottl_tx *tx, int ctx)
{
	struct kn_ottl_m *m = kn_ottl_tx_msg(tx, ctx);
	if (!m)
		return NULL;
	if (!m->at_loaded) {
		uint32_t field = ctx == KN_OTTL_CTX_RESOURCE ? 1 : ctx == KN_OTTL_CTX_SPAN ? 9 : 3;
		if (kn_wire_attrs_load(&m->at, m->msg, m->len, field) < 0) {
			m->bad = 1;
			return NULL;
		}
		m->at_loaded = 1;
	}
	return &m->at;
}

uint8_t *kn_ottl_tx_alloc(struct kn_ottl_tx *tx, size_t n)
{
	int c = tx->cur == KN_OTTL_CTX_SPANEVENT ? KN_OTTL_CTX_SPAN : tx->cur;
	if (c < 0 || c >= KN_OTTL_NCTX)
		c = KN_OTTL_CTX_SPAN;
	/* rounded to 8: values made here are read as words */
	n = (n + 7) & ~(size_t)7;
	return kn_arena_alloc(&tx->ar[c], n ? n : 8);
}

void *kn_ottl_tx_md(struct kn_ottl_tx *tx, uint32_t pairs)
{
	if (pairs < 16)
		pairs = 16;
	if (!tx->md || tx->md_pairs < pairs) {
		pcre2_match_data *md = pcre2_match_data_create(pairs, NULL);
		if (!md)
			return NULL;
		if (tx->md)
			pcre2_match_data_free(tx->md);
		tx->md = md;
		tx->md_pairs = pairs;
	}
	return tx->md;
}

int kn_ottl_rt_err(struct kn_ottl_tx *tx, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (tx->prog) {
		const char *src = tx->prog->src;
		int n = (int)strlen(src);
		snprintf(tx->errbuf, sizeof tx->errbuf, "%s: %s \"%.*s%s\": %s", tx->prog->where,
			 tx->prog->kind == KN_OTTL_STATEMENT ? "statement" : "condition", n > 120 ? 120 : n, src,
			 n > 120 ? "..." : "", msg);
	} else {
		snprintf(tx->errbuf, sizeof tx->errbuf, "%s", msg);
	}
	return -1;
}

const char *kn_ottl_tx_error(const struct kn_ottl_tx *tx)
{
	return tx->errbuf;
}

/* ---- events ---- */

int kn_ottl_tx_nevents(struct kn_ottl_tx *tx)
{
	if (tx->ev_state)
		return tx->ev_state < 0 ? -1 : (int)tx->nev;
	const struct kn_ottl_m *m = &tx->m[KN_OTTL_CTX_SPAN];
	const uint8_t *p = m->msg, *end = m->msg ? m->msg + m->len : NULL;
	struct kn_wire_field f;
	int r = 0;
	tx->nev = 0;
	while (m->msg) {
		const uint8_t *f0 = p;
		if ((r = kn_wire_field_next(&p, end, &f)) <= 0)
			break;
		if (f.num != 11 || f.wt != KN_WIRE_FIELD_LEN)
			continue;
		if (kn_grow((void **)&tx->ev, &tx->cap_ev, tx->nev, sizeof *tx->ev)) {
			r = -1;
			break;
		}
		struct kn_ottl_ev *e = &tx->ev[tx->nev++];
		e->off = (uint32_t)(f0 - m->msg);
		e->flen = (uint32_t)(p - f0);
		e->msg = f.payload;
		e->len = (uint32_t)f.len;
		e->dropped = 0;
		e->out = NULL;
		e->out_len = 0;
	}
	tx->ev_state = r < 0 ? -1 : 1;
	return r < 0 ? -1 : (int)tx->nev;
}

void kn_ottl_tx_event(struct kn_ottl_tx *tx, uint32_t i)
{
	if (i >= tx->nev) {
		tx->ev_cur = -1;
		return;
	}
	tx->ev_cur = (int)i;
	msg_reset(&tx->m[KN_OTTL_CTX_SPANEVENT], tx->ev[i].msg, tx->ev[i].len);
}

void kn_ottl_tx_drop_event(struct kn_ottl_tx *tx, uint32_t i)
{
	if (i < tx->nev) {
		tx->ev[i].dropped = 1;
		tx->ev_dirty = 1;
	}
}

int kn_ottl_tx_event_done(struct kn_ottl_tx *tx)
{
	if (tx->ev_cur < 0)
		return 0;
	struct kn_ottl_m *m = &tx->m[KN_OTTL_CTX_SPANEVENT];
	struct kn_ottl_ev *e = &tx->ev[tx->ev_cur];
	tx->ev_cur = -1;
	if (!m->chg && !(m->at_loaded && m->at.edited))
		return 0;
	const uint8_t *o = NULL;
	uint32_t ol = 0;
	int saved = tx->cur;
	tx->cur = KN_OTTL_CTX_SPAN;
	int r = kn_ottl_msg_rebuild(tx, m, KN_OTTL_CTX_SPANEVENT, &o, &ol);
	tx->cur = saved;
	if (r < 0)
		return -1;
	if (r > 0) {
		e->out = o;
		e->out_len = ol;
		tx->ev_dirty = 1;
	}
	return 0;
}
