/* SPDX-License-Identifier: Apache-2.0
 * kn_lb_route: splitting a batch by ring position (see
 * kn_exporter_loadbalancing.h). Runs on shard workers inside a read section.
 *
 * Costs per chunk: with one endpoint, or a traceID (or journey) chunk whose
 * spans all map to one endpoint, a reference and no copy; otherwise one re-index of the
 * chunk (kn_wire_index_trusted, no allocation once the slot's arrays have
 * grown) and one copy of its bytes into per-endpoint chunks
 * (kn_wire_split_by). Per batch: one batch per endpoint that gets spans.
 * Wire indexes come from a pool of nshards + 4 slots claimed with a CAS
 * (export is called by shard workers and, on re-routes, by a retiring
 * endpoint's consumer threads); when all are busy a temporary index is used.
 *
 * routing_key journey: each span's key is its journey id attribute
 * (kn_lb_journey_id: one scan of the span's top-level fields and of its
 * attribute KeyValues, no allocation) or, when absent or invalid, its trace
 * id. The first pass over the chunk's span headers computes every key once
 * and counts the keyed / invalid spans (added to the counters once per
 * chunk); a chunk that must be split computes them a second time inside
 * kn_wire_split_by (not counted again). With one endpoint no key is
 * computed, so nothing is counted. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../../collector/core/kn_budget.h"
#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_log.h"
#include "../../collector/core/kn_metrics.h"
#include "kn_lb_int.h"
#include "kn_lb_key.h"

int kn_lb_slots_init(struct kn_lb *x, uint32_t nshards)
{
	x->nslots = (nshards ? nshards : 1) + 4;
	x->slots = calloc(x->nslots, sizeof *x->slots);
	if (!x->slots) {
		x->nslots = 0;
		return KN_ERR;
	}
	for (unsigned i = 0; i < x->nslots; i++)
		kn_wire_index_init(&x->slots[i].ix);
	return KN_OK;
}

static void slot_release_arrays(struct lb_slot *s)
{
	kn_wire_index_free(&s->ix);
	free(s->res_ep);
	s->res_ep = NULL;
	s->cap_res_ep = 0;
}

void kn_lb_slots_free(struct kn_lb *x)
{
	for (unsigned i = 0; x->slots && i < x->nslots; i++)
		slot_release_arrays(&x->slots[i]);
	free(x->slots);
	x->slots = NULL;
}

static struct lb_slot *slot_get(struct kn_lb *x, struct lb_slot *tmp)
{
	unsigned start = atomic_fetch_add_explicit(&x->slot_hint, 1, memory_order_relaxed);
	for (unsigned k = 0; k < x->nslots; k++) {
		struct lb_slot *s = &x->slots[(start + k) % x->nslots];
		int zero = 0;
		if (atomic_load_explicit(&s->busy, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_strong_explicit(&s->busy, &zero, 1, memory_order_acquire,
							    memory_order_relaxed))
			return s;
	}
	memset(tmp, 0, sizeof *tmp);
	kn_wire_index_init(&tmp->ix);
	return tmp;
}

static void slot_put(struct lb_slot *s, struct lb_slot *tmp)
{
	if (s == tmp)
		slot_release_arrays(tmp);
	else
		atomic_store_explicit(&s->busy, 0, memory_order_release);
}

static void warn_limited(struct kn_lb *x, const char *what, const char *msg)
{
	uint64_t now = kn_now_ns(), last = atomic_load(&x->last_log_ns);
	if (last != 0 && now - last < KN_NS_PER_SEC)
		return;
	if (atomic_compare_exchange_strong(&x->last_log_ns, &last, now))
		kn_warn("exporter %s: %s: %s", x->id, what, msg);
}

struct route_ctx {
	const struct kn_lb_ring *r;
	const uint32_t *res_ep;       /* NULL: by trace id (or journey) */
	const struct kn_lb *x;
	const uint8_t *buf;           /* the chunk's bytes (span offsets point into them) */
};

/* routing_key journey: the key hash of one span; *how is KN_LB_JID_*. */
static uint64_t journey_key(const struct kn_lb *x, const uint8_t *buf, const struct kn_span_hdr *h, int *how)
{
	uint8_t id[16];
	*how = kn_lb_journey_id(buf + h->off, h->len, x->jid_key, x->jid_keylen, id);
	return kn_lb_key_trace(*how == KN_LB_JID_OK ? id : h->trace_id);
}

static uint32_t route_span(const struct kn_span_hdr *h, void *ctx)
{
	const struct route_ctx *rc = ctx;
	if (rc->res_ep)
		return rc->res_ep[h->resource_idx];
	if (rc->x->by_journey) {
		int how;
		return kn_lb_ring_lookup(rc->r, journey_key(rc->x, rc->buf, h, &how));
	}
	return kn_lb_ring_lookup(rc->r, kn_lb_key_trace(h->trace_id));
}

/* routing_key journey: counts how c's spans are keyed and returns the
 * endpoint they all map to, or UINT32_MAX when they do not. */
static uint32_t journey_scan(struct kn_lb *x, const struct kn_lb_ring *r, const struct kn_chunk *c)
{
	uint64_t n[3] = {0, 0, 0}; /* absent, ok, invalid */
	uint32_t first = UINT32_MAX;
	int same = 1;
	for (uint32_t i = 0; i < c->nspans; i++) {
		int how;
		uint32_t e = kn_lb_ring_lookup(r, journey_key(x, c->data, &c->spans[i], &how));
		n[how == KN_LB_JID_OK ? 1 : how == KN_LB_JID_INVALID ? 2 : 0]++;
		if (i == 0)
			first = e;
		else if (e != first)
			same = 0;
	}
	if (n[1])
		kn_counter_add(x->m_jid_routed, n[1]);
	if (n[0] + n[2])
		kn_counter_add(x->m_jid_trace, n[0] + n[2]);
	if (n[2]) {
		kn_counter_add(x->m_jid_invalid, n[2]);
		warn_limited(x, "journey_id_attribute", "a span's journey id is not 32 hex digits or 16 bytes; "
			     "routed by its trace id");
	}
	return same ? first : UINT32_MAX;
}

/* Appends c (one reference, taken over) to parts[i]. Spans lost (0 = ok). */
static uint32_t add_part(struct kn_batch **parts, uint32_t i, struct kn_chunk *c)
{
	uint32_t n = c->nspans;
	if (!parts[i] && !(parts[i] = kn_batch_new(4))) {
		kn_chunk_unref(c);
		return n;
	}
	return kn_batch_add(&parts[i], c) == KN_OK ? 0 : n;
}

/* Routes one chunk into parts; returns the spans lost (counted by the caller). */
static uint32_t route_chunk(struct kn_lb *x, const struct kn_lb_ring *r, struct kn_chunk *c,
			    struct kn_batch **parts, struct kn_chunk **outs)
{
	if (r->n == 1)
		return add_part(parts, 0, kn_chunk_ref(c));
	if (!x->by_service && !x->by_journey && c->nspans > 0) {
		uint32_t first = kn_lb_ring_lookup(r, kn_lb_key_trace(c->spans[0].trace_id));
		uint32_t i = 1;
		while (i < c->nspans && kn_lb_ring_lookup(r, kn_lb_key_trace(c->spans[i].trace_id)) == first)
			i++;
		if (i == c->nspans)
			return add_part(parts, first, kn_chunk_ref(c));
	}
	if (x->by_journey && c->nspans > 0) {
		uint32_t e = journey_scan(x, r, c);
		if (e != UINT32_MAX)
			return add_part(parts, e, kn_chunk_ref(c));
	}
	struct lb_slot tmp, *s = slot_get(x, &tmp);
	struct kn_err err;
	uint32_t lost = 0;
	int rc = kn_wire_index_trusted(&s->ix, c->data, c->len, &err);
	struct route_ctx rctx = {.r = r, .res_ep = NULL, .x = x, .buf = c->data};
	if (rc == KN_OK && x->by_service) {
		if (s->ix.nres > s->cap_res_ep) {
			uint32_t cap = s->cap_res_ep ? s->cap_res_ep : 16;
			while (cap < s->ix.nres)
				cap *= 2;
			uint32_t *p = realloc(s->res_ep, (size_t)cap * sizeof *p);
			if (!p)
				rc = kn_errf(&err, "out of memory for %u resources", s->ix.nres);
			else {
				s->res_ep = p;
				s->cap_res_ep = cap;
			}
		}
		for (uint32_t k = 0; rc == KN_OK && k < s->ix.nres; k++)
			s->res_ep[k] = kn_lb_ring_lookup(r, kn_lb_key_service(s->ix.res[k].msg, s->ix.res[k].len));
		rctx.res_ep = s->res_ep;
	}
	if (rc == KN_OK) {
		if (s->ix.rejected) {
			lost += s->ix.rejected; /* cannot happen for a chunk a receiver built */
			warn_limited(x, "invalid spans in a chunk", s->ix.reject_reason);
		}
		rc = kn_wire_split_by(&s->ix, c->data, r->n, route_span, &rctx, outs, &err);
	}
	slot_put(s, &tmp);
	if (rc != KN_OK) {
		warn_limited(x, "cannot route a chunk", err.msg);
		return c->nspans;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		struct kn_chunk *o = outs[i];
		if (!o)
			continue;
		o->source = c->source;
		o->accepted_ns = c->accepted_ns;
		o->ctx = c->ctx;
		size_t charge = sizeof *o + (size_t)o->nspans * sizeof(struct kn_span_hdr) + o->cap;
		if (kn_budget_try_charge(charge))
			o->charged = charge;
		lost += add_part(parts, i, o);
	}
	return lost;
}

int kn_lb_route_batch(struct kn_lb *x, const struct kn_lb_ring *r, struct kn_batch *b)
{
	struct kn_batch *pst[16], **parts = r->n <= 16 ? pst : calloc(r->n, sizeof *parts);
	struct kn_chunk *ost[16], **outs = r->n <= 16 ? ost : calloc(r->n, sizeof *outs);
	uint64_t lost = 0;
	int rc = KN_OK;
	if (!parts || !outs) {
		lost = b->nspans;
		warn_limited(x, "cannot route a batch", "out of memory");
		goto done;
	}
	memset(parts, 0, r->n * sizeof *parts);
	for (uint32_t i = 0; i < b->n; i++)
		lost += route_chunk(x, r, b->chunks[i], parts, outs);
	for (uint32_t i = 0; i < r->n; i++) {
		if (!parts[i])
			continue;
		struct lb_backend *be = r->user[i];
		kn_counter_add(be->routed, parts[i]->nspans);
		if (kn_exporter_otlp.export(be->otlp, parts[i]) != KN_OK)
			rc = KN_DROP; /* counted by the endpoint's sender */
	}
done:
	if (lost) {
		kn_counter_add(x->m_drop_route, lost);
		rc = KN_DROP;
	}
	kn_batch_free(b);
	if (parts != pst)
		free(parts);
	if (outs != ost)
		free(outs);
	return rc;
}
