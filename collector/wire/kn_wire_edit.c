/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_edit: splicing editor of Resources and Spans in encoded bytes (see
 * kn_wire_edit.h). Pass 1 visits every Resource and Span in order, one
 * record each (new length, splice count), and one group record per
 * ResourceSpans / ScopeSpans (new size, changed or not, where its records
 * end); pass 2 replays them: a group with nothing changed inside is copied
 * whole, a message without splices is copied whole. */
#include "kn_wire_edit.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kn_wire_field.h"
#include "../core/kn_batch.h"
#include "../core/kn_budget.h"
#include "../core/kn_grow.h"

#define TOO_BIG 0x7fffffffull

_Atomic uint64_t kn_wire_edit_carried;

struct grp {
	uint32_t size;      /* new payload size */
	uint32_t dirty;     /* something inside changed */
	uint32_t has_res;   /* a Resource (ResourceSpans) / scope (ScopeSpans) field is present */
	uint32_t rec_end;   /* first record / group after this group's own */
	uint32_t g_end;
};

void kn_wire_edit_init(struct kn_wire_edit *ed)
{
	memset(ed, 0, sizeof *ed);
	kn_wire_index_init(&ed->ix);
}

void kn_wire_edit_free(struct kn_wire_edit *ed)
{
	if (!ed)
		return;
	free(ed->sp);
	free(ed->rec);
	free(ed->g);
	free(ed->arena);
	kn_wire_index_free(&ed->ix);
	memset(ed, 0, sizeof *ed);
}

static uint8_t *splice(struct kn_wire_edit *ed, uint32_t off, uint32_t del, uint32_t n);

uint8_t *kn_wire_edit_splice(struct kn_wire_edit *ed, uint32_t off, uint32_t del, uint32_t n)
{
	ed->cur_other = 1;
	return splice(ed, off, del, n);
}

uint8_t *kn_wire_edit_splice_span_attrs(struct kn_wire_edit *ed, uint32_t off, uint32_t del,
					uint32_t n)
{
	return splice(ed, off, del, n);
}

void kn_wire_edit_span_nattrs(struct kn_wire_edit *ed, uint32_t nattrs)
{
	if (ed->cur_nattrs >= 0 || nattrs > INT32_MAX)
		ed->cur_other = 1;
	ed->cur_nattrs = (int32_t)nattrs;
}

static uint8_t *splice(struct kn_wire_edit *ed, uint32_t off, uint32_t del, uint32_t n)
{
	if (ed->failed || off < ed->cur_end || del > ed->cur_len || off > ed->cur_len - del ||
	    n > TOO_BIG || (uint64_t)ed->narena + n > TOO_BIG) {
		ed->failed = 1;
		return NULL;
	}
	if (kn_grow((void **)&ed->sp, &ed->cap_sp, ed->nsp, sizeof *ed->sp)) {
		ed->failed = 1;
		return NULL;
	}
	if (!ed->arena || (uint64_t)ed->narena + n > ed->cap_arena) {
		uint64_t cap = ed->cap_arena ? ed->cap_arena : 4096;
		while (cap < (uint64_t)ed->narena + n)
			cap *= 2;
		if (cap > TOO_BIG + 1)
			cap = TOO_BIG + 1;
		uint8_t *a = realloc(ed->arena, (size_t)cap);
		if (!a) {
			ed->failed = 1;
			return NULL;
		}
		ed->arena = a;
		ed->cap_arena = (uint32_t)cap;
	}
	struct kn_wire_splice *s = &ed->sp[ed->nsp++];
	s->off = off;
	s->del = del;
	s->ins_off = ed->narena;
	s->ins_len = n;
	ed->narena += n;
	ed->cur_end = off + del;
	return ed->arena + s->ins_off;
}

static size_t fsize(uint64_t len)
{
	return 1 + kn_wire_varint_len(len) + (size_t)len;
}

static int rec_push(struct kn_wire_edit *ed, uint32_t len)
{
	if (kn_grow((void **)&ed->rec, &ed->cap_rec, ed->nrec, sizeof *ed->rec))
		return -1;
	uint64_t n = len;
	for (uint32_t i = ed->cur_first; i < ed->nsp; i++)
		n = n - ed->sp[i].del + ed->sp[i].ins_len;
	if (n > TOO_BIG)
		return -1;
	ed->rec[ed->nrec].new_len = (uint32_t)n;
	ed->rec[ed->nrec].nsplices = ed->nsp - ed->cur_first;
	ed->rec[ed->nrec].nattrs = ed->cur_other ? -1 : ed->cur_nattrs;
	ed->nrec++;
	return 0;
}

static void begin(struct kn_wire_edit *ed, uint32_t len)
{
	ed->cur_len = len;
	ed->cur_end = 0;
	ed->cur_first = ed->nsp;
	ed->cur_nattrs = -1;
	ed->cur_other = 0;
}

static struct grp *grp_at(struct kn_wire_edit *ed, uint32_t i)
{
	return (struct grp *)(void *)ed->g + i;
}

static int grp_push(struct kn_wire_edit *ed, uint32_t *slot)
{
	/* g is a uint32_t array used as struct grp records */
	uint32_t words = sizeof(struct grp) / sizeof(uint32_t);
	uint32_t need = (ed->ng + 1) * words;
	while (ed->cap_g < need)
		if (kn_grow((void **)&ed->g, &ed->cap_g, ed->cap_g, sizeof *ed->g))
			return -1;
	*slot = ed->ng++;
	memset(grp_at(ed, *slot), 0, sizeof(struct grp));
	return 0;
}

/* The first field `num` (LEN) of a message, or NULL. */
static const uint8_t *first_len(const uint8_t *m, size_t len, uint32_t num, uint32_t *out_len)
{
	const uint8_t *p = m, *end = m + len;
	struct kn_wire_field f;
	while (kn_wire_field_next(&p, end, &f) > 0)
		if (f.num == num && f.wt == KN_WIRE_FIELD_LEN) {
			*out_len = (uint32_t)f.len;
			return f.payload;
		}
	*out_len = 0;
	return NULL;
}

/* Pass 1. Returns the output size, or UINT64_MAX. */
static uint64_t measure(struct kn_wire_edit *ed, const struct kn_wire_edit_ops *ops, void *ctx,
			const uint8_t *buf, size_t len)
{
	uint64_t total = 0;
	const uint8_t *p = buf, *end = buf + len;
	struct kn_wire_field f, s, x;
	uint32_t ridx = 0;
	int r;
	for (;;) {
		const uint8_t *f0 = p;
		if ((r = kn_wire_field_next(&p, end, &f)) < 0)
			return UINT64_MAX;
		if (r == 0)
			break;
		if (f.num != 1 || f.wt != KN_WIRE_FIELD_LEN) {   /* an unknown field: kept */
			total += (uint64_t)(p - f0);
			continue;
		}
		uint32_t rslot;
		if (grp_push(ed, &rslot))
			return UINT64_MAX;
		uint64_t rsz = 0;
		int rdirty = 0;
		uint32_t reslen;
		const uint8_t *res = first_len(f.payload, f.len, 1, &reslen);
		grp_at(ed, rslot)->has_res = res != NULL;
		if (!res) {
			begin(ed, 0);
			struct kn_wire_edit_res rr = {.msg = NULL, .len = 0, .resource_idx = ridx};
			if (ops->resource && ops->resource(ctx, ed, &rr) < 0)
				return UINT64_MAX;
			if (ed->failed || rec_push(ed, 0))
				return UINT64_MAX;
			const struct kn_wire_edit_rec *rc = &ed->rec[ed->nrec - 1];
			if (rc->nsplices) {
				rdirty = 1;
				if (rc->new_len)
					rsz += fsize(rc->new_len);
			}
		}
		const uint8_t *q = f.payload, *qend = f.payload + f.len;
		for (;;) {
			const uint8_t *s0 = q;
			if ((r = kn_wire_field_next(&q, qend, &s)) < 0)
				return UINT64_MAX;
			if (r == 0)
				break;
			if (s.num == 1 && s.wt == KN_WIRE_FIELD_LEN) {
				begin(ed, (uint32_t)s.len);
				struct kn_wire_edit_res rr = {.msg = s.payload, .len = (uint32_t)s.len,
							      .resource_idx = ridx};
				if (ops->resource && ops->resource(ctx, ed, &rr) < 0)
					return UINT64_MAX;
				if (ed->failed || rec_push(ed, (uint32_t)s.len))
					return UINT64_MAX;
				const struct kn_wire_edit_rec *rc = &ed->rec[ed->nrec - 1];
				if (rc->nsplices) {
					rdirty = 1;
					rsz += fsize(rc->new_len);
				} else {
					rsz += (uint64_t)(q - s0);
				}
				continue;
			}
			if (s.num != 2 || s.wt != KN_WIRE_FIELD_LEN) {
				rsz += (uint64_t)(q - s0);
				continue;
			}
			uint32_t sslot;
			if (grp_push(ed, &sslot))
				return UINT64_MAX;
			if (!ops->scope && !ops->span) {
				/* nothing to visit inside: kept whole, its spans not walked
				 * (a resource-only edit touched every span's first line) */
				struct grp *sg = grp_at(ed, sslot);
				sg->rec_end = ed->nrec;
				sg->g_end = ed->ng;
				rsz += (uint64_t)(q - s0);
				continue;
			}
			uint64_t ssz = 0;
			int sdirty = 0;
			uint32_t scopelen;
			const uint8_t *scope = first_len(s.payload, s.len, 1, &scopelen);
			grp_at(ed, sslot)->has_res = scope != NULL;
			if (ops->scope && !scope) {   /* no scope: splices at 0 create one */
				begin(ed, 0);
				struct kn_wire_edit_scope sc = {.msg = NULL, .len = 0, .resource_idx = ridx};
				if (ops->scope(ctx, ed, &sc) < 0)
					return UINT64_MAX;
				if (ed->failed || rec_push(ed, 0))
					return UINT64_MAX;
				const struct kn_wire_edit_rec *rc = &ed->rec[ed->nrec - 1];
				if (rc->nsplices) {
					sdirty = 1;
					if (rc->new_len)
						ssz += fsize(rc->new_len);
				}
			}
			const uint8_t *u = s.payload, *uend = s.payload + s.len;
			for (;;) {
				const uint8_t *x0 = u;
				if ((r = kn_wire_field_next(&u, uend, &x)) < 0)
					return UINT64_MAX;
				if (r == 0)
					break;
				if (ops->scope && x.num == 1 && x.wt == KN_WIRE_FIELD_LEN && x.payload == scope) {
					begin(ed, (uint32_t)x.len);
					struct kn_wire_edit_scope sc = {.msg = x.payload, .len = (uint32_t)x.len,
									.resource_idx = ridx};
					if (ops->scope(ctx, ed, &sc) < 0)
						return UINT64_MAX;
					if (ed->failed || rec_push(ed, (uint32_t)x.len))
						return UINT64_MAX;
					const struct kn_wire_edit_rec *rc = &ed->rec[ed->nrec - 1];
					if (rc->nsplices) {
						sdirty = 1;
						ssz += fsize(rc->new_len);
					} else {
						ssz += (uint64_t)(u - x0);
					}
					continue;
				}
				if (x.num != 2 || x.wt != KN_WIRE_FIELD_LEN) {
					ssz += (uint64_t)(u - x0);
					continue;
				}
				begin(ed, (uint32_t)x.len);
				struct kn_wire_edit_span sp = {
					.resource = res, .resource_len = reslen,
					.scope = scope, .scope_len = scopelen,
					.span = x.payload, .span_len = (uint32_t)x.len,
					.resource_idx = ridx,
				};
				if (ops->span && ops->span(ctx, ed, &sp) < 0)
					return UINT64_MAX;
				if (ed->failed || rec_push(ed, (uint32_t)x.len))
					return UINT64_MAX;
				const struct kn_wire_edit_rec *rc = &ed->rec[ed->nrec - 1];
				if (rc->nsplices) {
					sdirty = 1;
					ssz += fsize(rc->new_len);
				} else {
					ssz += (uint64_t)(u - x0);
				}
			}
			if (ssz > TOO_BIG)
				return UINT64_MAX;
			struct grp *sg = grp_at(ed, sslot);
			sg->size = (uint32_t)ssz;
			sg->dirty = (uint32_t)sdirty;
			sg->rec_end = ed->nrec;
			sg->g_end = ed->ng;
			if (sdirty) {
				rdirty = 1;
				rsz += fsize(ssz);
			} else {
				rsz += (uint64_t)(q - s0);
			}
		}
		if (rsz > TOO_BIG)
			return UINT64_MAX;
		struct grp *rg = grp_at(ed, rslot);
		rg->size = (uint32_t)rsz;
		rg->dirty = (uint32_t)rdirty;
		rg->rec_end = ed->nrec;
		rg->g_end = ed->ng;
		total += rdirty ? fsize(rsz) : (uint64_t)(p - f0);
		if (total > TOO_BIG)
			return UINT64_MAX;
		ridx++;
	}
	return total > TOO_BIG ? UINT64_MAX : total;
}

static uint8_t *put_field(uint8_t *w, uint8_t tag, uint64_t len)
{
	*w++ = tag;
	return w + kn_wire_put_varint(w, len);
}

/* Writes one visited message (record *ri, splices from *si). */
static uint8_t *write_msg(const struct kn_wire_edit *ed, const uint8_t *m, uint32_t len,
			  uint32_t *ri, uint32_t *si, uint8_t *o)
{
	const struct kn_wire_edit_rec *rc = &ed->rec[(*ri)++];
	if (!rc->nsplices) {
		memcpy(o, m, len);
		return o + len;
	}
	uint32_t pos = 0;
	for (uint32_t k = 0; k < rc->nsplices; k++) {
		const struct kn_wire_splice *s = &ed->sp[(*si)++];
		memcpy(o, m + pos, s->off - pos);
		o += s->off - pos;
		memcpy(o, ed->arena + s->ins_off, s->ins_len);
		o += s->ins_len;
		pos = s->off + s->del;
	}
	memcpy(o, m + pos, len - pos);
	return o + (len - pos);
}

/* The span headers of the output, carried over from the input chunk's
 * instead of indexing the output again: a span copied unchanged keeps its
 * header with its offsets moved by where its bytes landed; a spliced span's
 * header is read again from the output (kn_wire_span_reread). Input headers
 * are in offset order (the index's), and every copy of input bytes goes
 * through copy_in, which moves the headers inside the copied range; a header
 * found out of step clears ok and the caller indexes the output instead. */
struct hcarry {
	const struct kn_span_hdr *old;
	struct kn_span_hdr *new;
	uint32_t n, k;
	const uint8_t *buf;   /* the input the old offsets are relative to */
	uint8_t *obase;       /* the output the new ones are relative to */
	int ok;
};

static uint8_t *copy_in(struct hcarry *hc, uint8_t *o, const uint8_t *src, size_t n)
{
	memcpy(o, src, n);
	if (hc && hc->ok) {
		uint64_t a = (uint64_t)(src - hc->buf), b = a + n;
		int64_t d = (int64_t)(o - hc->obase) - (int64_t)a;
		while (hc->k < hc->n && hc->old[hc->k].off < b) {
			const struct kn_span_hdr *h = &hc->old[hc->k];
			if (h->off < a) {   /* a span no copy covered */
				hc->ok = 0;
				break;
			}
			struct kn_span_hdr *nh = &hc->new[hc->k++];
			*nh = *h;
			nh->off = (uint32_t)((int64_t)h->off + d);
			nh->name_off = (uint32_t)((int64_t)h->name_off + d);
		}
	}
	return o + n;
}

/* A span whose splices (sp[0..rc->nsplices)) only replaced, removed or
 * appended attribute KeyValues: its output header is the input one with
 * off, len, name_off and nattrs moved. 0 when the name is missing or a
 * splice overlaps it (the caller reads the span again). */
static int patch_spliced(const struct kn_span_hdr *h, struct kn_span_hdr *nh,
			 const struct kn_wire_edit_rec *rc, const struct kn_wire_splice *sp,
			 uint32_t new_off)
{
	if (!h->name_len || h->name_off < h->off)
		return 0;
	uint32_t rel = h->name_off - h->off;
	int64_t d = 0;
	for (uint32_t i = 0; i < rc->nsplices; i++) {
		if ((uint64_t)sp[i].off + sp[i].del <= rel)
			d += (int64_t)sp[i].ins_len - (int64_t)sp[i].del;
		else if (sp[i].off < rel + h->name_len)
			return 0;
		else
			break;   /* splices come in offset order: the rest are after the name */
	}
	*nh = *h;
	nh->off = new_off;
	nh->len = rc->new_len;
	nh->name_off = (uint32_t)((int64_t)new_off + rel + d);
	nh->nattrs = (uint32_t)rc->nattrs;
	return 1;
}

/* A spliced span written at o (its payload: new_len bytes): its header
 * patched (patch_spliced) or read again from there. */
static void carry_spliced(struct hcarry *hc, const struct kn_wire_edit *ed,
			  const struct kn_wire_edit_rec *rc, uint32_t si0,
			  const uint8_t *in_payload, const uint8_t *o, uint32_t new_len)
{
	if (!hc || !hc->ok)
		return;
	if (hc->k >= hc->n || hc->old[hc->k].off != (uint64_t)(in_payload - hc->buf)) {
		hc->ok = 0;
		return;
	}
	struct kn_span_hdr *nh = &hc->new[hc->k];
	if (rc->nattrs >= 0 &&
	    patch_spliced(&hc->old[hc->k], nh, rc, &ed->sp[si0], (uint32_t)(o - hc->obase))) {
		hc->k++;
		return;
	}
	nh->resource_idx = hc->old[hc->k].resource_idx;
	nh->scope_idx = hc->old[hc->k].scope_idx;
	if (kn_wire_span_reread(hc->obase, o, new_len, nh) != KN_OK) {
		hc->ok = 0;
		return;
	}
	hc->k++;
}

/* The splices a skipped (unchanged) group's records hold: none. */
static uint8_t *write_all(struct kn_wire_edit *ed, const uint8_t *buf, size_t len, uint8_t *o,
			  struct hcarry *hc)
{
	uint32_t gi = 0, ri = 0, si = 0;
	const uint8_t *p = buf, *end = buf + len;
	struct kn_wire_field f, s, x;
	for (;;) {
		const uint8_t *f0 = p;
		if (kn_wire_field_next(&p, end, &f) <= 0)
			break;
		if (f.num != 1 || f.wt != KN_WIRE_FIELD_LEN) {
			o = copy_in(hc, o, f0, (size_t)(p - f0));
			continue;
		}
		const struct grp *rg = grp_at(ed, gi++);
		if (!rg->dirty) {
			o = copy_in(hc, o, f0, (size_t)(p - f0));
			ri = rg->rec_end;
			gi = rg->g_end;
			continue;
		}
		o = put_field(o, 0x0a, rg->size);
		if (!rg->has_res) {
			uint32_t r0 = ri;
			const struct kn_wire_edit_rec *rc = &ed->rec[r0];
			if (rc->nsplices && rc->new_len)
				o = put_field(o, 0x0a, rc->new_len);
			o = write_msg(ed, (const uint8_t *)"", 0, &ri, &si, o);
		}
		const uint8_t *q = f.payload, *qend = f.payload + f.len;
		for (;;) {
			const uint8_t *s0 = q;
			if (kn_wire_field_next(&q, qend, &s) <= 0)
				break;
			if (s.num == 1 && s.wt == KN_WIRE_FIELD_LEN) {
				const struct kn_wire_edit_rec *rc = &ed->rec[ri];
				if (!rc->nsplices) {
					o = copy_in(hc, o, s0, (size_t)(q - s0));
					ri++;
				} else {
					o = put_field(o, 0x0a, rc->new_len);
					o = write_msg(ed, s.payload, (uint32_t)s.len, &ri, &si, o);
				}
				continue;
			}
			if (s.num != 2 || s.wt != KN_WIRE_FIELD_LEN) {
				o = copy_in(hc, o, s0, (size_t)(q - s0));
				continue;
			}
			const struct grp *sg = grp_at(ed, gi++);
			if (!sg->dirty) {
				o = copy_in(hc, o, s0, (size_t)(q - s0));
				ri = sg->rec_end;
				gi = sg->g_end;
				continue;
			}
			o = put_field(o, 0x12, sg->size);
			uint32_t scopelen;
			const uint8_t *scope = ed->scope_ops ? first_len(s.payload, s.len, 1, &scopelen) : NULL;
			if (ed->scope_ops && !sg->has_res) {
				const struct kn_wire_edit_rec *rc = &ed->rec[ri];
				if (rc->nsplices && rc->new_len)
					o = put_field(o, 0x0a, rc->new_len);
				o = write_msg(ed, (const uint8_t *)"", 0, &ri, &si, o);
			}
			const uint8_t *u = s.payload, *uend = s.payload + s.len;
			for (;;) {
				const uint8_t *x0 = u;
				if (kn_wire_field_next(&u, uend, &x) <= 0)
					break;
				if (ed->scope_ops && x.num == 1 && x.wt == KN_WIRE_FIELD_LEN && x.payload == scope) {
					const struct kn_wire_edit_rec *rc = &ed->rec[ri];
					if (!rc->nsplices) {
						o = copy_in(hc, o, x0, (size_t)(u - x0));
						ri++;
					} else {
						o = put_field(o, 0x0a, rc->new_len);
						o = write_msg(ed, x.payload, (uint32_t)x.len, &ri, &si, o);
					}
					continue;
				}
				if (x.num != 2 || x.wt != KN_WIRE_FIELD_LEN) {
					o = copy_in(hc, o, x0, (size_t)(u - x0));
					continue;
				}
				const struct kn_wire_edit_rec *rc = &ed->rec[ri];
				if (!rc->nsplices) {
					o = copy_in(hc, o, x0, (size_t)(u - x0));
					ri++;
				} else {
					o = put_field(o, 0x12, rc->new_len);
					uint8_t *at = o;
					uint32_t si0 = si;
					o = write_msg(ed, x.payload, (uint32_t)x.len, &ri, &si, o);
					carry_spliced(hc, ed, rc, si0, x.payload, at, rc->new_len);
				}
			}
		}
	}
	return o;
}

int kn_wire_edit_index(struct kn_wire_edit *ed, struct kn_chunk *c, struct kn_err *err)
{
	if (kn_wire_index_trusted(&ed->ix, c->data, c->len, err) != KN_OK)
		return KN_ERR;
	if (ed->ix.nspans != c->nspans || ed->ix.rejected)
		return kn_errf(err, "wire edit: the bytes index %u spans (%u rejected), expected %u",
			       ed->ix.nspans, ed->ix.rejected, c->nspans);
	if (c->nspans)
		memcpy(c->spans, ed->ix.spans, (size_t)c->nspans * sizeof *c->spans);
	return KN_OK;
}

int kn_wire_edit_run(struct kn_wire_edit *ed, const struct kn_wire_edit_ops *ops, void *ctx,
		     const uint8_t *buf, size_t len, uint32_t nspans,
		     const struct kn_chunk *like, struct kn_chunk **out, struct kn_err *err)
{
	struct kn_chunk *c = NULL;
	*out = NULL;
	ed->nsp = ed->nrec = ed->ng = ed->narena = 0;
	ed->failed = 0;
	ed->scope_ops = ops->scope != NULL;
	if (len > TOO_BIG)
		return kn_errf(err, "wire edit: input over 2 GiB");
	uint64_t size = measure(ed, ops, ctx, buf, len);
	if (size == UINT64_MAX)
		return kn_errf(err, "wire edit: malformed input, a failed edit, out of memory, or a result over 2 GiB");
	if (ed->nsp == 0)
		return KN_OK;
	c = kn_chunk_alloc(nspans, (uint32_t)size);
	if (!c)
		return kn_errf(err, "wire edit: out of memory for a %llu-byte chunk",
			       (unsigned long long)size);
	struct hcarry hc = {.old = like ? like->spans : NULL, .new = c->spans, .n = nspans,
			    .buf = buf, .obase = c->data, .ok = 1};
	int carry = like && like->data == buf && like->nspans == nspans && nspans && like->spans;
	if ((uint64_t)(write_all(ed, buf, len, c->data, carry ? &hc : NULL) - c->data) != size) {
		kn_errf(err, "wire edit: wrote an unexpected size");
		goto fail;
	}
	c->len = (uint32_t)size;
	if (carry && hc.ok && hc.k == nspans) {
		atomic_fetch_add_explicit(&kn_wire_edit_carried, 1, memory_order_relaxed);
		goto done;
	}
	if (kn_wire_edit_index(ed, c, err) != KN_OK)
		goto fail;
done:
	if (like) {
		c->shard = like->shard;
		c->source = like->source;
		c->accepted_ns = like->accepted_ns;
		c->ctx = like->ctx;
	}
	*out = c;
	return KN_OK;
fail:
	kn_chunk_unref(c);
	return KN_ERR;
}

int kn_wire_edit_batch(struct kn_wire_edit *ed, const struct kn_wire_edit_ops *ops, void *ctx,
		       struct kn_batch *b, uint64_t *dropped, struct kn_err *err)
{
	int rc = KN_OK;
	uint32_t w = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		struct kn_chunk *c = b->chunks[i], *nc = NULL;
		if (kn_wire_edit_run(ed, ops, ctx, c->data, c->len, c->nspans, c, &nc, err) != KN_OK) {
			*dropped += c->nspans;
			b->nspans -= c->nspans;
			b->bytes -= c->len;
			kn_chunk_unref(c);
			rc = KN_ERR;
			continue;
		}
		if (nc) {
			if (kn_budget_try_charge(nc->len))
				nc->charged = nc->len;
			b->bytes = b->bytes - c->len + nc->len;
			kn_chunk_unref(c);
			c = nc;
		}
		b->chunks[w++] = c;
	}
	b->n = w;
	return rc;
}
