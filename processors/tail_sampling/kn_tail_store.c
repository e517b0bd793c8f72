/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_store: records, id table, arrival and root lists, buffers (see
 * kn_tail_store.h). Records are allocated in slabs of 256 (never moved, so
 * growing never copies the live ones and capacity stays within one slab of
 * use); a record is 88 bytes (the two flags are bit-fields of len and cap,
 * whose values never exceed 31 bits), and the root-list links (8 bytes per
 * record) live in a parallel slab allocated only when root_wait_ns is set.
 * With the table at load <= 1/2 a buffered trace costs ~96-104 bytes (~104-112
 * with root_wait) plus its spans (each with a 2-4 byte field header) plus
 * ~6 bytes per part; its (Resource, scope) groups are shared through the
 * shard's kn_tail_intern. */
#include "kn_tail_store.h"

#include <stdlib.h>
#include <string.h>

#include "../../collector/wire/kn_wire.h"
#include "kn_tail_hash.h"
#include "kn_tail_intern.h"

#define NIL UINT32_MAX
#define SLAB_BITS 8
#define SLAB (1u << SLAB_BITS)
#define MAT_KEEP (1u << 20) /* scratch kept between views */

struct rec {
	uint8_t id[16];
	uint8_t *buf;
	uint32_t len : 31;        /* buffer bytes used (<= 0x7fffffff, see append) */
	uint32_t live : 1;
	uint32_t cap : 31;        /* buffer bytes allocated (<= 0x7fffffff) */
	uint32_t on_root : 1;     /* on the root list */
	uint32_t nspans, nerror;
	uint64_t min_start_ns, max_end_ns;
	uint64_t first_seen_ns, root_seen_ns;
	uint32_t prev, next;      /* arrival list; next is the free-list link when unused */
	uint32_t vlen;            /* bytes of the view (<= 0x7fffffff, see append) */
};

_Static_assert(sizeof(struct rec) <= 80 + sizeof(uint8_t *), "struct rec grew");

/* Root-list links of a record; only allocated when cfg.root_wait_ns != 0. */
struct rlink {
	uint32_t prev, next;
};

struct kn_tail_store {
	struct kn_tail_store_cfg cfg;
	struct rec **slab;        /* record t: slab[t >> SLAB_BITS][t & (SLAB - 1)] */
	struct rlink **rslab;     /* its root links, same indexing; NULL without root_wait */
	uint32_t nslabs, cap_slabs;
	uint32_t nlive, free_head;
	uint32_t *slot;
	uint32_t mask;            /* table size - 1 */
	uint32_t head, tail;      /* arrival list: head = oldest */
	uint32_t rhead, rtail;    /* root list */
	uint64_t spans;
	size_t buf_bytes;
	uint64_t last_now;
	struct kn_tail_intern *in; /* the groups parts name */
	uint8_t *mat;             /* the last view's ResourceSpans (scratch) */
	size_t cap_mat;
	uint32_t *mg;             /* group sizes while materialising (scratch) */
	uint32_t cap_mg;
};

static inline struct rec *R(const struct kn_tail_store *s, uint32_t t)
{
	return &s->slab[t >> SLAB_BITS][t & (SLAB - 1)];
}

static inline struct rlink *RL(const struct kn_tail_store *s, uint32_t t)
{
	return &s->rslab[t >> SLAB_BITS][t & (SLAB - 1)];
}

/* Bytes of one slab: records plus, with root_wait, their root links. */
static size_t slab_bytes(const struct kn_tail_store *s)
{
	return SLAB * (sizeof(struct rec) + (s->cfg.root_wait_ns ? sizeof(struct rlink) : 0));
}

static size_t table_bytes(uint32_t mask)
{
	return ((size_t)mask + 1) * sizeof(uint32_t);
}

static int slab_add(struct kn_tail_store *s)
{
	if ((uint64_t)(s->nslabs + 1) * SLAB >= NIL)
		return -1;
	if (s->nslabs == s->cap_slabs) {
		uint32_t nc = s->cap_slabs ? s->cap_slabs * 2 : 4;
		struct rec **ns = realloc(s->slab, (size_t)nc * sizeof *ns);
		if (!ns)
			return -1;
		s->slab = ns;
		if (s->cfg.root_wait_ns) {
			struct rlink **nr = realloc(s->rslab, (size_t)nc * sizeof *nr);
			if (!nr)
				return -1;
			s->rslab = nr;
		}
		s->cap_slabs = nc;
	}
	struct rlink *rl = NULL;
	if (s->cfg.root_wait_ns) {
		rl = calloc(SLAB, sizeof *rl);
		if (!rl)
			return -1;
	}
	struct rec *r = calloc(SLAB, sizeof *r);
	if (!r) {
		free(rl);
		return -1;
	}
	uint32_t base = s->nslabs * SLAB;
	for (uint32_t i = 0; i < SLAB; i++)
		r[i].next = i + 1 < SLAB ? base + i + 1 : s->free_head;
	if (rl)
		s->rslab[s->nslabs] = rl;
	s->slab[s->nslabs++] = r;
	s->free_head = base;
	return 0;
}

struct kn_tail_store *kn_tail_store_create(const struct kn_tail_store_cfg *cfg)
{
	struct kn_tail_store *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->free_head = s->head = s->tail = s->rhead = s->rtail = NIL;
	uint32_t tsize = 32;
	while (tsize < 2 * (uint64_t)cfg->initial_traces && tsize < (1u << 30))
		tsize <<= 1;
	s->slot = calloc(tsize, sizeof *s->slot);
	s->mask = tsize - 1;
	s->in = kn_tail_intern_create();
	if (!s->slot || !s->in)
		goto fail;
	do {
		if (slab_add(s))
			goto fail;
	} while ((uint64_t)s->nslabs * SLAB < cfg->initial_traces);
	return s;
fail:
	kn_tail_store_destroy(s);
	return NULL;
}

void kn_tail_store_destroy(struct kn_tail_store *s)
{
	if (!s)
		return;
	for (uint32_t k = 0; k < s->nslabs; k++) {
		for (uint32_t i = 0; i < SLAB; i++)
			if (s->slab[k][i].live)
				free(s->slab[k][i].buf);
		free(s->slab[k]);
		if (s->rslab)
			free(s->rslab[k]);
	}
	free(s->slab);
	free(s->rslab);
	free(s->slot);
	kn_tail_intern_destroy(s->in);
	free(s->mat);
	free(s->mg);
	free(s);
}

uint32_t kn_tail_store_find(const struct kn_tail_store *s, const uint8_t id[16])
{
	for (uint32_t i = (uint32_t)kn_tail_id_hash(id) & s->mask; s->slot[i];
	     i = (i + 1) & s->mask) {
		uint32_t t = s->slot[i] - 1;
		if (memcmp(R(s, t)->id, id, 16) == 0)
			return t;
	}
	return NIL;
}

static uint32_t grown_cap(uint32_t len, uint32_t cap, size_t add)
{
	uint64_t need = (uint64_t)len + add;
	if (need <= cap)
		return cap;
	if (cap == 0)
		return (uint32_t)need;
	uint64_t nc = (uint64_t)cap + cap / 2;
	if (nc < need)
		nc = need;
	if (nc > 0x7fffffff)
		nc = need;
	return (uint32_t)nc;
}

size_t kn_tail_store_would(const struct kn_tail_store *s, uint32_t t, size_t add)
{
	size_t now = kn_tail_store_bytes(s);
	if (t != NIL) {
		const struct rec *r = R(s, t);
		return now + (grown_cap(r->len, r->cap, add) - r->cap);
	}
	size_t more = add;
	if (s->free_head == NIL)
		more += slab_bytes(s);
	if (2 * ((uint64_t)s->nlive + 1) > (uint64_t)s->mask + 1)
		more += table_bytes(s->mask);
	return now + more;
}

static int table_grow(struct kn_tail_store *s)
{
	if (s->mask >= (1u << 30))
		return -1;
	uint32_t nsize = (s->mask + 1) * 2;
	uint32_t *ns = calloc(nsize, sizeof *ns);
	if (!ns)
		return -1;
	uint32_t nmask = nsize - 1;
	for (uint32_t i = 0; i <= s->mask; i++) {
		if (!s->slot[i])
			continue;
		uint32_t j = (uint32_t)kn_tail_id_hash(R(s, s->slot[i] - 1)->id) & nmask;
		while (ns[j])
			j = (j + 1) & nmask;
		ns[j] = s->slot[i];
	}
	free(s->slot);
	s->slot = ns;
	s->mask = nmask;
	return 0;
}

uint64_t kn_tail_store_now(const struct kn_tail_store *s, uint64_t now)
{
	return now > s->last_now ? now : s->last_now;
}

uint32_t kn_tail_store_open(struct kn_tail_store *s, const uint8_t id[16], uint64_t now)
{
	if (2 * ((uint64_t)s->nlive + 1) > (uint64_t)s->mask + 1 && table_grow(s))
		return NIL;
	if (s->free_head == NIL && slab_add(s))
		return NIL;
	now = kn_tail_store_now(s, now);
	s->last_now = now;
	uint32_t t = s->free_head;
	struct rec *r = R(s, t);
	s->free_head = r->next;
	memset(r, 0, sizeof *r);
	memcpy(r->id, id, 16);
	r->live = 1;
	r->min_start_ns = UINT64_MAX;
	r->first_seen_ns = now;
	/* arrival list tail */
	r->prev = s->tail;
	r->next = NIL;
	if (s->tail != NIL)
		R(s, s->tail)->next = t;
	else
		s->head = t;
	s->tail = t;
	uint32_t i = (uint32_t)kn_tail_id_hash(id) & s->mask;
	while (s->slot[i])
		i = (i + 1) & s->mask;
	s->slot[i] = t + 1;
	s->nlive++;
	return t;
}


/* Span fields of spans idx[k..end) of one scope run, and end. */
static uint64_t run_len(const struct kn_chunk *c, const uint32_t *idx, uint32_t n, uint32_t k,
			uint32_t *end)
{
	uint32_t scope = c->spans[idx[k]].scope_idx;
	uint64_t l = 0;
	for (; k < n && c->spans[idx[k]].scope_idx == scope; k++)
		l += kn_tail_fsize(c->spans[idx[k]].len);
	*end = k;
	return l;
}

uint64_t kn_tail_store_part_bytes(const struct kn_chunk *c, const uint32_t *idx, uint32_t n)
{
	uint64_t total = 0;
	for (uint32_t k = 0, e; k < n; k = e) {
		uint64_t l = run_len(c, idx, n, k, &e);
		if (l > 0x7fffffff)
			return UINT64_MAX;
		total += 4 + kn_wire_varint_len(l) + l;
	}
	return total;
}

/* One part of a trace buffer (see kn_tail_store.h): 4 bytes (little-endian)
 * of group id, whose top bit says the part continues the previous part's
 * ResourceSpans (the same Resource of the same chunk, as kn_tail_frame_write
 * frames it), a varint length, that many bytes of Span fields. */
#define CONT 0x80000000u

struct part {
	uint32_t id;
	uint32_t cont;
	uint32_t len;
	const uint8_t *spans;
};

static const uint8_t *part_read(const uint8_t *p, const uint8_t *end, struct part *pt)
{
	uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	pt->id = v & ~CONT;
	pt->cont = v & CONT;
	p += 4;
	uint64_t l = 0;
	kn_wire_get_varint(&p, end, &l); /* written by append: never fails */
	pt->len = (uint32_t)l;
	pt->spans = p;
	return p + l;
}

static void put_parts(struct kn_tail_store *s, const uint8_t *p, const uint8_t *end)
{
	while (p < end) {
		struct part pt;
		p = part_read(p, end, &pt);
		kn_tail_intern_put(s->in, pt.id);
	}
}

int kn_tail_store_append(struct kn_tail_store *s, uint32_t t, const struct kn_tail_frame *f,
			 const struct kn_chunk *c, const uint32_t *idx, uint32_t n, uint64_t size,
			 uint64_t framed, uint64_t now)
{
	static const uint8_t zero[8];
	struct rec *r = R(s, t);
	if (size > 0x7fffffff || (uint64_t)r->len + size > 0x7fffffff ||
	    (uint64_t)r->vlen + framed > 0x7fffffff)
		return -1;
	uint32_t ncap = grown_cap(r->len, r->cap, size);
	if (ncap != r->cap) {
		uint8_t *nb = realloc(r->buf, ncap);
		if (!nb)
			return -1;
		s->buf_bytes += ncap - r->cap;
		r->buf = nb;
		r->cap = ncap;
	}
	uint8_t *w = r->buf + r->len;
	for (uint32_t k = 0, e; k < n; k = e) {
		uint64_t l = run_len(c, idx, n, k, &e);
		uint32_t scope = c->spans[idx[k]].scope_idx;
		struct kn_tail_group g;
		kn_tail_frame_group(f, scope, &g);
		uint32_t id = kn_tail_intern_get(s->in, &g, f->scopes[scope].ghash);
		if (id == UINT32_MAX) {
			put_parts(s, r->buf + r->len, w);
			return -1;
		}
		if (k > 0 && c->spans[idx[k - 1]].resource_idx == c->spans[idx[k]].resource_idx)
			id |= CONT;
		w[0] = (uint8_t)id;
		w[1] = (uint8_t)(id >> 8);
		w[2] = (uint8_t)(id >> 16);
		w[3] = (uint8_t)(id >> 24);
		w += 4;
		w += kn_wire_put_varint(w, l);
		for (uint32_t j = k; j < e; j++) { /* ScopeSpans.spans */
			const struct kn_span_hdr *h = &c->spans[idx[j]];
			w = kn_tail_put_bytes(w, 0x12, c->data + h->off, h->len);
		}
	}
	r->len = (uint32_t)(w - r->buf);
	r->vlen += (uint32_t)framed;
	now = kn_tail_store_now(s, now);
	s->last_now = now;
	for (uint32_t k = 0; k < n; k++) {
		const struct kn_span_hdr *h = &c->spans[idx[k]];
		if (h->status_code == 2) /* STATUS_CODE_ERROR */
			r->nerror++;
		if (h->start_ns < r->min_start_ns)
			r->min_start_ns = h->start_ns;
		if (h->end_ns > r->max_end_ns)
			r->max_end_ns = h->end_ns;
		if (!r->root_seen_ns && memcmp(h->parent_span_id, zero, 8) == 0) {
			r->root_seen_ns = now ? now : 1;
			if (s->cfg.root_wait_ns) {
				r->on_root = 1;
				RL(s, t)->prev = s->rtail;
				RL(s, t)->next = NIL;
				if (s->rtail != NIL)
					RL(s, s->rtail)->next = t;
				else
					s->rhead = t;
				s->rtail = t;
			}
		}
	}
	r->nspans += n;
	s->spans += n;
	return 0;
}

/* Writing a trace out: every part is one ScopeSpans; a part opens a new
 * ResourceSpans unless it continues the previous one (CONT), so the view is
 * the concatenation of what kn_tail_frame_write made of each append, and
 * its size is the sum of their kn_tail_frame_size (rec.vlen). Pass 1 (w ==
 * NULL) sizes every ResourceSpans and ScopeSpans into s->mg in the order
 * pass 2 opens them and returns the total; pass 2 writes at w. UINT64_MAX
 * when out of memory. */
static uint64_t materialise(struct kn_tail_store *s, const struct rec *r, uint8_t *w)
{
	const uint8_t *p = r->buf, *end = r->buf + r->len;
	const struct kn_tail_entry *cr = NULL, *cs = NULL;
	uint32_t ng = 0, rslot = 0, sslot = 0;
	uint64_t total = 0, rsz = 0, ssz = 0;
	for (;;) {
		struct part pt = {0};
		const struct kn_tail_entry *e = NULL;
		int have = p < end;
		if (have) {
			p = part_read(p, end, &pt);
			e = kn_tail_intern_at(s->in, pt.id);
		}
		if (cs) { /* every part closes its ScopeSpans */
			if (w) {
				if (cs->has & 8) /* ScopeSpans.schema_url */
					w = kn_tail_put_bytes(w, 0x1a, cs->bytes + cs->res_len +
							      cs->res_url_len + cs->scope_len,
							      cs->scope_url_len);
			} else {
				s->mg[sslot] = (uint32_t)ssz;
				rsz += kn_tail_fsize(ssz);
			}
			cs = NULL;
		}
		if (cr && (!have || !pt.cont)) {
			if (w) {
				if (cr->has & 2) /* ResourceSpans.schema_url */
					w = kn_tail_put_bytes(w, 0x1a, cr->bytes + cr->res_len,
							      cr->res_url_len);
			} else {
				s->mg[rslot] = (uint32_t)rsz;
				total += kn_tail_fsize(rsz);
			}
			cr = NULL;
		}
		if (!have)
			break;
		if (!w && ng + 2 > s->cap_mg) {
			uint32_t nc = s->cap_mg ? s->cap_mg * 2 : 16;
			uint32_t *q = realloc(s->mg, (size_t)nc * sizeof *q);
			if (!q)
				return UINT64_MAX;
			s->mg = q;
			s->cap_mg = nc;
		}
		if (!cr) {
			cr = e;
			rslot = ng++;
			if (w) {
				/* ExportTraceServiceRequest.resource_spans, its resource */
				w = kn_tail_put_field(w, 0x0a, s->mg[rslot]);
				if (e->has & 1)
					w = kn_tail_put_bytes(w, 0x0a, e->bytes, e->res_len);
			} else {
				rsz = e->res_fields;
			}
		}
		cs = e;
		sslot = ng++;
		if (w) {
			/* ResourceSpans.scope_spans, its scope, its spans */
			w = kn_tail_put_field(w, 0x12, s->mg[sslot]);
			if (e->has & 4)
				w = kn_tail_put_bytes(w, 0x0a, e->bytes + e->res_len + e->res_url_len,
						      e->scope_len);
			memcpy(w, pt.spans, pt.len);
			w += pt.len;
		} else {
			ssz = (uint64_t)e->scope_fields + pt.len;
		}
	}
	return total;
}

static void fill_info(const struct rec *r, struct kn_tail_trace *v)
{
	memcpy(v->trace_id, r->id, 16);
	v->nspans = r->nspans;
	v->nerror = r->nerror;
	v->min_start_ns = r->min_start_ns;
	v->max_end_ns = r->max_end_ns;
	v->first_seen_ns = r->first_seen_ns;
	v->root_seen_ns = r->root_seen_ns;
	v->bytes = v->len = 0;
	v->data = NULL;
}

void kn_tail_store_info(const struct kn_tail_store *s, uint32_t t, struct kn_tail_trace *v)
{
	fill_info(R(s, t), v);
}

int kn_tail_store_view(struct kn_tail_store *s, uint32_t t, struct kn_tail_trace *v)
{
	const struct rec *r = R(s, t);
	fill_info(r, v);
	if (s->cap_mat > MAT_KEEP && r->vlen <= MAT_KEEP) { /* a huge trace's scratch is not kept */
		free(s->mat);
		s->mat = NULL;
		s->cap_mat = 0;
	}
	if (r->vlen > s->cap_mat) {
		size_t nc = s->cap_mat ? s->cap_mat : 4096;
		while (nc < r->vlen)
			nc *= 2;
		uint8_t *q = realloc(s->mat, nc);
		if (!q)
			return -1;
		s->mat = q;
		s->cap_mat = nc;
	}
	if (materialise(s, r, NULL) != r->vlen) /* sizes the groups (pass 1) */
		return -1;
	materialise(s, r, s->mat);
	v->bytes = v->len = r->vlen;
	v->data = s->mat;
	return 0;
}

void kn_tail_store_remove(struct kn_tail_store *s, uint32_t t)
{
	struct rec *r = R(s, t);
	/* table: find the slot, then shift the rest of its probe run back */
	uint32_t i = (uint32_t)kn_tail_id_hash(r->id) & s->mask;
	while (s->slot[i] != t + 1)
		i = (i + 1) & s->mask;
	for (uint32_t j = i;;) {
		j = (j + 1) & s->mask;
		if (!s->slot[j])
			break;
		uint32_t home = (uint32_t)kn_tail_id_hash(R(s, s->slot[j] - 1)->id) & s->mask;
		if (((j - home) & s->mask) >= ((j - i) & s->mask)) {
			s->slot[i] = s->slot[j];
			i = j;
		}
	}
	s->slot[i] = 0;
	/* lists */
	if (r->prev != NIL)
		R(s, r->prev)->next = r->next;
	else
		s->head = r->next;
	if (r->next != NIL)
		R(s, r->next)->prev = r->prev;
	else
		s->tail = r->prev;
	if (r->on_root) {
		struct rlink *l = RL(s, t);
		if (l->prev != NIL)
			RL(s, l->prev)->next = l->next;
		else
			s->rhead = l->next;
		if (l->next != NIL)
			RL(s, l->next)->prev = l->prev;
		else
			s->rtail = l->prev;
	}
	s->buf_bytes -= r->cap;
	s->spans -= r->nspans;
	put_parts(s, r->buf, r->buf + r->len);
	free(r->buf);
	memset(r, 0, sizeof *r);
	r->next = s->free_head;
	s->free_head = t;
	s->nlive--;
}

uint32_t kn_tail_store_oldest(const struct kn_tail_store *s)
{
	return s->head;
}

uint32_t kn_tail_store_due(const struct kn_tail_store *s, uint64_t now)
{
	if (s->head != NIL && R(s, s->head)->first_seen_ns + s->cfg.decision_wait_ns <= now)
		return s->head;
	if (s->rhead != NIL && R(s, s->rhead)->root_seen_ns + s->cfg.root_wait_ns <= now)
		return s->rhead;
	return NIL;
}

uint64_t kn_tail_store_next_deadline(const struct kn_tail_store *s)
{
	if (s->head == NIL)
		return 0;
	uint64_t d = R(s, s->head)->first_seen_ns + s->cfg.decision_wait_ns;
	if (s->rhead != NIL) {
		uint64_t rd = R(s, s->rhead)->root_seen_ns + s->cfg.root_wait_ns;
		if (rd < d)
			d = rd;
	}
	return d ? d : 1;
}

uint32_t kn_tail_store_count(const struct kn_tail_store *s)
{
	return s->nlive;
}

uint64_t kn_tail_store_spans(const struct kn_tail_store *s)
{
	return s->spans;
}

size_t kn_tail_store_bytes(const struct kn_tail_store *s)
{
	size_t ptrs = (size_t)s->cap_slabs * sizeof *s->slab * (s->cfg.root_wait_ns ? 2 : 1);
	return sizeof *s + ptrs + (size_t)s->nslabs * slab_bytes(s) + table_bytes(s->mask) +
	       s->buf_bytes + kn_tail_intern_bytes(s->in);
}

uint64_t kn_tail_store_trace_bytes(const struct kn_tail_store *s, uint32_t t)
{
	return R(s, t)->vlen;
}

uint32_t kn_tail_store_groups(const struct kn_tail_store *s)
{
	return kn_tail_intern_count(s->in);
}
