/* SPDX-License-Identifier: Apache-2.0
 * kn_journey_shard: the journey processor on one shard: buffering, timing,
 * deciding a trace's journey, publishing it, rewriting and emitting.
 *
 * Buffer: the tail sampler's trace store (kn_tail_store) with
 * decision_wait = wait_window and its root list off; the store gives the
 * wait_window deadlines (arrival order, O(1)). Root timing is kept here in
 * a FIFO of (trace id, root arrival + root_grace): root arrivals are in
 * clock order, so that FIFO is sorted too. A trace whose root grace passed
 * but whose linked heads are not published yet moves to the `waiting` list,
 * re-checked every poll_ns until its wait_window deadline releases it for
 * good. FIFO and waiting entries name traces by id (store records are
 * reused), and an entry whose trace is gone is skipped.
 *
 * process(): each chunk's spans are grouped by trace id (kn_tail_bytrace,
 * the tail sampler's grouping: traces in order of first appearance, O(spans),
 * no allocation per span) and per trace:
 * buffered -> appended; else published in the registry (the trace was
 * released) -> rewritten from the entry and forwarded at once (late spans);
 * else a new buffered trace. Room is made first by releasing the oldest
 * traces early (memory bound). The input chunk is unreffed once copied.
 *
 * Time is the chunk's accepted_ns and tick's now (kn_now_ns() in
 * production), clamped by the store to never go backwards; tests drive it.
 * Released traces become one chunk each, gathered into one batch per call.
 *
 * Shutdown, in kn_processor_journey.flush_rounds (2) rounds that the shard workers run on
 * every shard with a barrier in between (kn_component.h flush_round). Every
 * round but the last releases what does not wait for a linked head (and so
 * publishes its entry); a trace that still waits is moved out of the store
 * into the `parked` list (a copy of its bytes: the store cannot be walked
 * past its oldest trace) and retried in the next rounds, again and again
 * within a round while that releases more (chains on one shard). The last
 * round releases the parked traces for good: a linked head published by any
 * shard in an earlier round is found; only a head never seen (or further
 * up a chain crossing shards more times than there are rounds) closes the
 * journey without head. flush() runs every round at once on one shard. */
#include <stdlib.h>
#include <string.h>

#include "../../collector/core/kn_budget.h"
#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_emit_out.h"
#include "../../collector/core/kn_log.h"
#include "../tail_sampling/kn_tail_bytrace.h"
#include "kn_journey_int.h"

#define OUT_MAX 256                  /* chunks per emitted batch */

struct pend {
	uint8_t id[16];
	uint64_t at;                     /* FIFO: root arrival + root_grace */
};

/* A trace taken out of the store at shutdown, waiting for a linked head. */
struct parked {
	uint8_t id[16];
	uint8_t *data;                   /* concatenated ResourceSpans (owned) */
	size_t len;
	uint32_t nspans;
};

struct kn_journey_shard {
	struct kn_journey_proc *p;
	uint32_t index;
	struct kn_tail_store *store;
	struct kn_tail_frame frame;
	struct kn_journey_rw rw;
	struct kn_journey_plan plan;
	/* root FIFO: ring of pend */
	struct pend *fifo;
	uint32_t fhead, fcount, fcap;
	/* traces waiting for a linked head */
	struct pend *wait;
	uint32_t nwait, cap_wait;
	uint64_t next_poll;
	struct kn_tail_bytrace grp;       /* a chunk's spans by trace (scratch) */
	uint8_t *late;
	size_t cap_late;
	struct kn_emit_out out;         /* released traces of this call */
	/* shutdown: traces waiting for a linked head, oldest first */
	struct parked *parked;
	uint32_t nparked, cap_parked;
};

/* ---- lifecycle ---- */

void kn_journey_shard_destroy(void *state)
{
	struct kn_journey_shard *s = state;
	if (!s)
		return;
	kn_tail_store_destroy(s->store);
	kn_tail_frame_free(&s->frame);
	kn_journey_rw_free(&s->rw);
	free(s->fifo);
	free(s->wait);
	kn_tail_bytrace_free(&s->grp);
	free(s->late);
	kn_emit_out_free(&s->out);
	for (uint32_t i = 0; i < s->nparked; i++)
		free(s->parked[i].data);
	free(s->parked);
	free(s);
}

int kn_journey_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err)
{
	struct kn_journey_proc *p = inst;
	if (!p->reg)
		return kn_errf(err, "journey: shard %u created before start", shard);
	struct kn_journey_shard *s = calloc(1, sizeof *s);
	if (!s)
		return kn_errf(err, "journey: shard %u: out of memory", shard);
	s->p = p;
	s->out = (struct kn_emit_out){.max = OUT_MAX, .max_bytes = 1u << 20, .lost = p->m.lost_oom};
	s->index = shard;
	kn_journey_rw_init(&s->rw);
	struct kn_tail_store_cfg sc = {.decision_wait_ns = p->cfg.wait_window_ns};
	s->store = kn_tail_store_create(&sc);
	if (!s->store) {
		kn_errf(err, "journey: shard %u: out of memory for the trace store", shard);
		goto fail;
	}
	*state = s;
	return KN_OK;
fail:
	kn_journey_shard_destroy(s);
	return KN_ERR;
}

/* ---- output ---- */


/* Rewrites buf (nspans spans of one trace) for head h and queues it. */
static void emit_rewritten(struct kn_journey_shard *s, const uint8_t *buf, size_t len,
			   uint32_t nspans, const struct kn_journey_head *h, uint64_t now,
			   const struct kn_emit *next)
{
	const struct kn_journey_proc *p = s->p;
	struct kn_err err;
	kn_journey_plan_build(&s->plan, h, p->cfg.overwrite, p->cfg.journey_id_attribute);
	struct kn_chunk *c = kn_journey_rw_chunk(&s->rw, buf, len, nspans, &s->plan, &err);
	if (!c) {
		kn_warn("journey: shard %u: %u spans lost: %s", s->index, nspans, err.msg);
		kn_counter_add(p->m.lost_oom, nspans);
		return;
	}
	c->shard = (uint16_t)s->index;
	c->accepted_ns = now;
	if (kn_budget_try_charge(c->len))
		c->charged = c->len;
	else
		kn_counter_add(p->m.budget_overrun, nspans);
	kn_emit_out_add(&s->out, c, next);
}

static void publish_gauges(struct kn_journey_shard *s)
{
	struct kn_journey_gauges *g = &s->p->gauges[s->index < s->p->nshards ? s->index : 0];
	atomic_store_explicit(&g->traces, kn_tail_store_count(s->store), memory_order_relaxed);
	atomic_store_explicit(&g->bytes, (int64_t)kn_tail_store_bytes(s->store), memory_order_relaxed);
}

/* ---- deciding a journey ---- */

enum { RELEASED, BLOCKED };

/* The journey of the earliest-headed linked trace that is published: 1 and
 * *h, or 0. */
static int linked_head(const struct kn_journey_shard *s, const struct kn_journey_scan *sc,
		       uint64_t now, struct kn_journey_head *h)
{
	const struct kn_journey_proc *p = s->p;
	struct kn_journey_head cand;
	int found = 0;
	for (uint32_t i = 0; i < sc->nlinks; i++) {
		uint32_t owner = kn_shard_of(sc->links[i], p->nshards);
		if (!kn_journey_registry_get(p->reg, owner, sc->links[i], now, &cand))
			continue;
		if (!found || cand.start_ns < h->start_ns) {
			*h = cand;
			found = 1;
		}
	}
	return found;
}

/* Decides the journey of the trace `id` held in data[0..len) and emits it,
 * unless it must wait for a linked head and `final` is 0 (then BLOCKED,
 * nothing changed). The caller drops its copy when RELEASED. */
static int decide(struct kn_journey_shard *s, const uint8_t id[16], const uint8_t *data,
		  size_t len, uint32_t nspans, int final, uint64_t now, const struct kn_emit *next)
{
	const struct kn_journey_proc *p = s->p;
	struct kn_journey_scan sc;
	struct kn_journey_head h;
	if (kn_journey_scan(data, len, id, &sc) != 0) {
		kn_counter_add(p->m.lost_malformed, nspans);
		return RELEASED;
	}
	int own = 1;
	if (sc.nlinks) {
		if (linked_head(s, &sc, now, &h)) {
			own = 0;
			kn_counter_add(p->m.joined, 1);
		} else if (!final) {
			return BLOCKED;
		} else {
			kn_counter_add(p->m.closed_without_head, 1);
		}
	} else if (!sc.has_root) {
		kn_counter_add(p->m.closed_without_head, 1);
	}
	if (own) {
		uint32_t tr = kn_journey_head_build(p, &sc, id, &h);
		if (tr)
			kn_counter_add(p->m.attrs_truncated, tr);
		kn_counter_add(p->m.started, 1);
	}
	if (kn_journey_registry_put(p->reg, s->index, id, &h, now))
		kn_counter_add(p->m.evictions, 1);
	emit_rewritten(s, data, len, nspans, &h, now, next);
	return RELEASED;
}

/* decide() for the buffered trace t, which leaves the store when RELEASED. */
static int release(struct kn_journey_shard *s, uint32_t t, int final, uint64_t now,
		   const struct kn_emit *next)
{
	struct kn_tail_trace v;
	if (kn_tail_store_view(s->store, t, &v) != KN_OK) {
		kn_warn("journey: shard %u: %u spans lost: out of memory writing out their trace",
			s->index, v.nspans);
		kn_counter_add(s->p->m.lost_oom, v.nspans);
		kn_tail_store_remove(s->store, t);
		return RELEASED;
	}
	if (decide(s, v.trace_id, v.data, v.len, v.nspans, final, now, next) == BLOCKED)
		return BLOCKED;
	kn_tail_store_remove(s->store, t);
	return RELEASED;
}

/* ---- root FIFO and waiting list ---- */

static int fifo_push(struct kn_journey_shard *s, const uint8_t id[16], uint64_t at)
{
	if (s->fcount == s->fcap) {
		uint32_t nc = s->fcap ? s->fcap * 2 : 64;
		struct pend *q = malloc((size_t)nc * sizeof *q);
		if (!q)
			return -1;
		for (uint32_t i = 0; i < s->fcount; i++)
			q[i] = s->fifo[(s->fhead + i) % s->fcap];
		free(s->fifo);
		s->fifo = q;
		s->fcap = nc;
		s->fhead = 0;
	}
	struct pend *e = &s->fifo[(s->fhead + s->fcount++) % s->fcap];
	memcpy(e->id, id, 16);
	e->at = at;
	return 0;
}

static int wait_push(struct kn_journey_shard *s, const uint8_t id[16])
{
	if (s->nwait == s->cap_wait) {
		uint32_t nc = s->cap_wait ? s->cap_wait * 2 : 16;
		struct pend *q = realloc(s->wait, (size_t)nc * sizeof *q);
		if (!q)
			return -1;
		s->wait = q;
		s->cap_wait = nc;
	}
	memcpy(s->wait[s->nwait].id, id, 16);
	s->wait[s->nwait++].at = 0;
	return 0;
}

/* A trace whose root grace passed: released, or parked until its linked
 * head is published. */
static void root_due(struct kn_journey_shard *s, const uint8_t id[16], uint64_t now,
		     const struct kn_emit *next)
{
	uint32_t t = kn_tail_store_find(s->store, id);
	if (t == KN_TAIL_NONE)
		return;
	struct kn_tail_trace v;
	kn_tail_store_info(s->store, t, &v);
	if (!v.root_seen_ns || v.root_seen_ns + s->p->cfg.root_grace_ns > now)
		return; /* a newer trace with the same id; its own FIFO entry comes later */
	if (release(s, t, 0, now, next) == BLOCKED && wait_push(s, id) != 0)
		release(s, t, 1, now, next); /* cannot park it: release without head */
}

static void poll_waiting(struct kn_journey_shard *s, uint64_t now, int force,
			 const struct kn_emit *next)
{
	if (!s->nwait || (!force && now < s->next_poll))
		return;
	uint32_t k = 0;
	for (uint32_t i = 0; i < s->nwait; i++) {
		uint32_t t = kn_tail_store_find(s->store, s->wait[i].id);
		if (t == KN_TAIL_NONE || release(s, t, 0, now, next) == RELEASED)
			continue;
		s->wait[k++] = s->wait[i];
	}
	s->nwait = k;
	s->next_poll = now + s->p->poll_ns;
}

/* ---- ingest ---- */

/* Spans of a released trace whose entry is published: rewritten at once. */
static int late(struct kn_journey_shard *s, const struct kn_chunk *c, const uint32_t *idx,
		uint32_t n, uint64_t size, uint64_t now, const struct kn_emit *next)
{
	const struct kn_journey_proc *p = s->p;
	struct kn_journey_head h;
	if (!kn_journey_registry_get(p->reg, s->index, c->spans[idx[0]].trace_id, now, &h))
		return 0;
	if (size > s->cap_late) {
		uint8_t *q = realloc(s->late, size);
		if (!q) {
			kn_counter_add(p->m.lost_oom, n);
			return 1;
		}
		s->late = q;
		s->cap_late = size;
	}
	uint8_t *end = kn_tail_frame_write(&s->frame, c, idx, n, s->grp.g, s->late);
	kn_counter_add(p->m.late_spans, n);
	emit_rewritten(s, s->late, (size_t)(end - s->late), n, &h, now, next);
	return 1;
}

static void take_group(struct kn_journey_shard *s, const struct kn_chunk *c, const uint32_t *idx,
		       uint32_t n, uint64_t now, const struct kn_emit *next)
{
	const struct kn_journey_proc *p = s->p;
	const uint8_t *id = c->spans[idx[0]].trace_id;
	uint64_t size = kn_tail_frame_size(&s->frame, c, idx, n, s->grp.g);
	if (size == UINT64_MAX) {
		kn_counter_add(p->m.lost_malformed, n);
		return;
	}
	uint32_t t = kn_tail_store_find(s->store, id);
	if (t == KN_TAIL_NONE && late(s, c, idx, n, size, now, next))
		return;
	uint64_t part = kn_tail_store_part_bytes(c, idx, n);
	/* the trace written out would pass the bound: release it now */
	if (t != KN_TAIL_NONE && kn_tail_store_trace_bytes(s->store, t) + size > p->shard_max_bytes) {
		kn_counter_add(p->m.early_memory, 1);
		release(s, t, 1, now, next);
		if (late(s, c, idx, n, size, now, next))
			return;
		t = KN_TAIL_NONE;
	}
	/* make room: release the oldest early */
	while (kn_tail_store_count(s->store) > 0 &&
	       kn_tail_store_would(s->store, t, part) > p->shard_max_bytes) {
		uint32_t o = kn_tail_store_oldest(s->store);
		kn_counter_add(p->m.early_memory, 1);
		release(s, o, 1, now, next);
		if (o == t) {
			if (late(s, c, idx, n, size, now, next))
				return;
			t = KN_TAIL_NONE;
		}
	}
	int opened = 0;
	uint64_t root_before = 0;
	if (t == KN_TAIL_NONE) {
		t = kn_tail_store_open(s->store, id, now);
		opened = 1;
		if (t == KN_TAIL_NONE) {
			kn_counter_add(p->m.lost_oom, n);
			return;
		}
	} else {
		struct kn_tail_trace v;
		kn_tail_store_info(s->store, t, &v);
		root_before = v.root_seen_ns;
	}
	if (kn_tail_store_append(s->store, t, &s->frame, c, idx, n, part, size, now) != KN_OK) {
		kn_counter_add(p->m.lost_oom, n);
		if (opened)
			kn_tail_store_remove(s->store, t);
		return;
	}
	/* new groups may have passed the bound: release the oldest until under */
	int self = 0;
	while (kn_tail_store_count(s->store) > 0 &&
	       kn_tail_store_bytes(s->store) > p->shard_max_bytes) {
		uint32_t o = kn_tail_store_oldest(s->store);
		self |= o == t;
		kn_counter_add(p->m.early_memory, 1);
		release(s, o, 1, now, next);
	}
	if (self)
		return; /* released with its head decided; nothing waits for its root */
	struct kn_tail_trace v;
	kn_tail_store_info(s->store, t, &v);
	if (!root_before && v.root_seen_ns &&
	    fifo_push(s, id, v.root_seen_ns + p->cfg.root_grace_ns) != 0)
		kn_warn("journey: shard %u: out of memory for the root queue; the trace waits for wait_window",
			s->index);
}

static void take_chunk(struct kn_journey_shard *s, const struct kn_chunk *c,
		       const struct kn_emit *next)
{
	if (!c->nspans)
		return;
	uint64_t now = kn_tail_store_now(s->store, c->accepted_ns ? c->accepted_ns : kn_now_ns());
	if (kn_tail_frame_index(&s->frame, c->data, c->len) || kn_tail_frame_check(&s->frame, c)) {
		kn_counter_add(s->p->m.lost_malformed, c->nspans);
		return;
	}
	uint32_t ng = kn_tail_bytrace_chunk(&s->grp, c);
	if (ng == UINT32_MAX) {
		kn_counter_add(s->p->m.lost_oom, c->nspans);
		return;
	}
	const struct kn_tail_bytrace *gr = &s->grp;
	for (uint32_t k = 0; k < ng; k++)
		take_group(s, c, gr->order + gr->start[k], gr->start[k + 1] - gr->start[k], now, next);
}

int kn_journey_process(void *state, struct kn_batch *b, const struct kn_emit *next)
{
	struct kn_journey_shard *s = state;
	for (uint32_t i = 0; i < b->n; i++) {
		take_chunk(s, b->chunks[i], next);
		kn_chunk_unref(b->chunks[i]); /* spans copied: never keep the input alive */
	}
	b->n = 0;
	kn_batch_free(b);
	kn_emit_out_flush(&s->out, next);
	publish_gauges(s);
	return KN_RETAINED;
}

uint64_t kn_journey_tick(void *state, uint64_t now_ns, const struct kn_emit *next)
{
	struct kn_journey_shard *s = state;
	uint64_t now = kn_tail_store_now(s->store, now_ns);
	while (s->fcount && s->fifo[s->fhead].at <= now) {
		struct pend e = s->fifo[s->fhead];
		s->fhead = (s->fhead + 1) % s->fcap;
		s->fcount--;
		root_due(s, e.id, now, next);
	}
	poll_waiting(s, now, 0, next);
	uint32_t t;
	while ((t = kn_tail_store_due(s->store, now)) != KN_TAIL_NONE)
		release(s, t, 1, now, next);
	kn_emit_out_flush(&s->out, next);
	publish_gauges(s);
	/* drop FIFO entries of traces already gone, so the deadline is real */
	while (s->fcount && kn_tail_store_find(s->store, s->fifo[s->fhead].id) == KN_TAIL_NONE) {
		s->fhead = (s->fhead + 1) % s->fcap;
		s->fcount--;
	}
	uint64_t d = kn_tail_store_next_deadline(s->store);
	if (s->fcount && (!d || s->fifo[s->fhead].at < d))
		d = s->fifo[s->fhead].at;
	if (s->nwait) {
		if (s->next_poll <= now)
			s->next_poll = now + s->p->poll_ns;
		if (!d || s->next_poll < d)
			d = s->next_poll;
	}
	return d;
}

/* ---- shutdown ---- */

/* Moves the buffered trace t (blocked) out of the store into `parked`.
 * -1 when there is no memory for the copy (t stays). */
static int park(struct kn_journey_shard *s, uint32_t t)
{
	struct kn_tail_trace v;
	if (kn_tail_store_view(s->store, t, &v) != KN_OK)
		return -1;
	if (s->nparked == s->cap_parked) {
		uint32_t nc = s->cap_parked ? s->cap_parked * 2 : 16;
		struct parked *q = realloc(s->parked, (size_t)nc * sizeof *q);
		if (!q)
			return -1;
		s->parked = q;
		s->cap_parked = nc;
	}
	struct parked *pk = &s->parked[s->nparked];
	pk->data = malloc(v.len ? v.len : 1);
	if (!pk->data)
		return -1;
	memcpy(pk->id, v.trace_id, 16);
	memcpy(pk->data, v.data, v.len);
	pk->len = v.len;
	pk->nspans = v.nspans;
	s->nparked++;
	kn_tail_store_remove(s->store, t);
	return 0;
}

/* Retries the parked traces (oldest first); returns how many left. */
static uint32_t retry_parked(struct kn_journey_shard *s, int final, uint64_t now,
			     const struct kn_emit *next)
{
	uint32_t k = 0, released = 0;
	for (uint32_t i = 0; i < s->nparked; i++) {
		struct parked *pk = &s->parked[i];
		if (decide(s, pk->id, pk->data, pk->len, pk->nspans, final, now, next) == RELEASED) {
			free(pk->data);
			released++;
			continue;
		}
		s->parked[k++] = *pk;
	}
	s->nparked = k;
	return released;
}

/* The component's flush_round (flush_rounds = 2; see kn_component.h). */

void kn_journey_flush_round(void *state, unsigned round, const struct kn_emit *next)
{
	struct kn_journey_shard *s = state;
	uint64_t now = kn_tail_store_now(s->store, kn_now_ns());
	int final = round + 1 >= kn_processor_journey.flush_rounds;
	uint32_t t;
	/* Everything buffered leaves the store: released, or parked when it
	 * waits for a linked head (and this is not the last round). */
	while ((t = kn_tail_store_oldest(s->store)) != KN_TAIL_NONE)
		if (release(s, t, final, now, next) == BLOCKED && park(s, t) != 0)
			release(s, t, 1, now, next); /* cannot park it: release without head */
	s->fcount = 0;
	s->nwait = 0;
	/* parked traces: again while that releases more (a chain on this shard) */
	while (s->nparked && retry_parked(s, 0, now, next) > 0)
		;
	if (final)
		retry_parked(s, 1, now, next);
	kn_emit_out_flush(&s->out, next);
	publish_gauges(s);
}

void kn_journey_flush(void *state, const struct kn_emit *next)
{
	unsigned rounds = kn_processor_journey.flush_rounds ? kn_processor_journey.flush_rounds : 1;
	for (unsigned r = 0; r < rounds; r++)
		kn_journey_flush_round(state, r, next);
}
