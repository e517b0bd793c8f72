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
 * journey without head. flush() runs every round at once on one shard.
 *
 * With registry.redis (kn_journey_redis.h): a trace blocked on links not
 * found locally is looked up in Redis: its linked ids join this round's
 * LOOKUP message (one MGET per round), submitted at the end of the call;
 * answers are taken at the start of the next process()/tick() (polled every
 * 2ms while lookups are out), their heads put in the shard's `remote` cache
 * (a one-table kn_journey_registry this shard alone writes), and the waiting
 * traces decided again. A trace still blocked is looked up again on the next
 * poll. An UNAVAILABLE answer (or the registry down) marks the waiter
 * `failed`: it still waits for a local head, and one released at its
 * wait_window without head counts reason="registry_unavailable". Released
 * traces that another trace may link to (a PRODUCER span, or write: all)
 * join this round's WRITE message. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../collector/core/kn_budget.h"
#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_emit_out.h"
#include "../../collector/core/kn_log.h"
#include "../tail_sampling/kn_tail_bytrace.h"
#include "kn_journey_int.h"

#define OUT_MAX 256                  /* chunks per emitted batch */
#define MSG_FIRST 8                  /* registry message items at first (grows to KN_JR_MAX_ITEMS) */

struct pend {
	uint8_t id[16];
	uint64_t at;                     /* FIFO: root arrival + root_grace */
};

/* A trace waiting for a linked head (after its root grace). */
struct waiter {
	uint8_t id[16];
	uint64_t lookup_seq;             /* LOOKUP message it waits for; 0 = none out */
	uint64_t next_lookup;            /* not asked again before (backs off per miss) */
	uint8_t lookups;                 /* answers so far */
	uint8_t failed;                  /* the registry could not answer its last lookup */
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
	struct waiter *wait;
	uint32_t nwait, cap_wait;
	uint32_t nfailed;                 /* waiters with failed set */
	/* registry.redis */
	struct kn_journey_registry *remote; /* heads found in Redis (one table, this shard writes) */
	struct kn_jr_msg *lk, *wr;        /* this round's LOOKUP and WRITE messages */
	uint64_t lk_seq;
	uint64_t lk_answered;             /* seq of the last answer taken */
	uint32_t lk_out;                  /* LOOKUP messages submitted, not answered */
	uint8_t blk[KN_JOURNEY_MAX_LINKS][16]; /* links of the last BLOCKED decide */
	uint32_t nblk;
	uint64_t next_poll;
	struct kn_tail_bytrace grp;       /* a chunk's spans by trace (scratch) */
	uint8_t *late;
	size_t cap_late;
	struct kn_emit_out out;         /* released traces of this call */
	/* shutdown: traces waiting for a linked head, oldest first */
	struct parked *parked;
	uint32_t nparked, cap_parked;
	int64_t held;                     /* bytes last declared to kn_budget_held_add */
};

/* ---- lifecycle ---- */

void kn_journey_shard_destroy(void *state)
{
	struct kn_journey_shard *s = state;
	if (!s)
		return;
	kn_budget_held_add(-s->held - (int64_t)kn_journey_registry_bytes(s->remote));
	kn_tail_store_destroy(s->store);
	kn_tail_frame_free(&s->frame);
	kn_journey_rw_free(&s->rw);
	free(s->fifo);
	free(s->wait);
	kn_tail_bytrace_free(&s->grp);
	free(s->late);
	kn_emit_out_free(&s->out);
	kn_journey_registry_destroy(s->remote);
	kn_jr_msg_free(s->lk);
	kn_jr_msg_free(s->wr);
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
	if (p->redis) {
		s->remote = kn_journey_registry_create(1, p->remote_slots, p->cfg.registry.redis.ttl_ns, err);
		if (!s->remote)
			goto fail;
		kn_budget_held_add((int64_t)kn_journey_registry_bytes(s->remote));
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
	int64_t bytes = (int64_t)kn_tail_store_bytes(s->store);
	atomic_store_explicit(&g->bytes, bytes, memory_order_relaxed);
	kn_budget_held_add(bytes - s->held); /* buffered on purpose: not for malloc_trim */
	s->held = bytes;
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
		if (!kn_journey_registry_get(p->reg, owner, sc->links[i], now, &cand) &&
		    !kn_journey_registry_get(s->remote, 0, sc->links[i], now, &cand))
			continue;
		if (!found || cand.start_ns < h->start_ns) {
			*h = cand;
			found = 1;
		}
	}
	return found;
}

static void write_add(struct kn_journey_shard *s, const uint8_t id[16],
		      const struct kn_journey_head *h);

/* Decides the journey of the trace `id` held in data[0..len) and emits it,
 * unless it must wait for a linked head and `final` is 0 (then BLOCKED,
 * nothing changed; its links are left in s->blk for a registry lookup). The
 * caller drops its copy when RELEASED. final 1: release with whatever is
 * known; 2: the same, and a registry lookup for this trace failed (the
 * reason counted when no head is found). */
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
			memcpy(s->blk, sc.links, (size_t)sc.nlinks * 16);
			s->nblk = sc.nlinks;
			return BLOCKED;
		} else {
			kn_counter_add(final == 2 ? p->m.closed_unavailable : p->m.closed_without_head, 1);
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
	if (p->redis && (p->write_all || sc.has_producer))
		write_add(s, id, &h);
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

static struct waiter *wait_push(struct kn_journey_shard *s, const uint8_t id[16])
{
	if (s->nwait == s->cap_wait) {
		uint32_t nc = s->cap_wait ? s->cap_wait * 2 : 16;
		struct waiter *q = realloc(s->wait, (size_t)nc * sizeof *q);
		if (!q)
			return NULL;
		s->wait = q;
		s->cap_wait = nc;
	}
	struct waiter *w = &s->wait[s->nwait++];
	memcpy(w->id, id, 16);
	w->lookup_seq = 0;
	w->next_lookup = 0;
	w->lookups = 0;
	w->failed = 0;
	return w;
}

/* ---- the shared registry (registry.redis) ---- */

static void set_failed(struct kn_journey_shard *s, struct waiter *w, int failed)
{
	if (w->failed == failed)
		return;
	w->failed = (uint8_t)failed;
	if (failed)
		s->nfailed++;
	else
		s->nfailed--;
}

static void lookup_submit(struct kn_journey_shard *s)
{
	struct kn_jr_msg *m = s->lk;
	s->lk = NULL;
	if (!m)
		return;
	if (kn_jr_submit(s->p->redis, s->index, m) == 0) {
		s->lk_out++;
		return;
	}
	/* refused (max_pending, counted): its waiters ask again next poll */
	for (uint32_t i = 0; i < s->nwait; i++)
		if (s->wait[i].lookup_seq == m->seq)
			s->wait[i].lookup_seq = 0;
	kn_jr_msg_free(m);
}

/* Adds the last BLOCKED decide's links (s->blk) to this round's lookup. */
static void lookup_add(struct kn_journey_shard *s, struct waiter *w, uint64_t now)
{
	if (!s->p->redis || w->lookup_seq || now < w->next_lookup)
		return;
	if (!kn_jr_up(s->p->redis)) {
		set_failed(s, w, 1);
		return;
	}
	for (uint32_t i = 0; i < s->nblk; i++) {
		if (s->lk && kn_jr_msg_room(&s->lk) != 0)
			lookup_submit(s);
		if (!s->lk) {
			s->lk = kn_jr_msg_new(KN_JR_LOOKUP, MSG_FIRST);
			if (!s->lk)
				return;
			s->lk->seq = ++s->lk_seq;
		}
		memcpy(s->lk->items[s->lk->n++].id, s->blk[i], 16);
	}
	if (s->lk)
		w->lookup_seq = s->lk->seq;
}

static void write_add(struct kn_journey_shard *s, const uint8_t id[16],
		      const struct kn_journey_head *h)
{
	if (s->wr && kn_jr_msg_room(&s->wr) != 0) {
		if (kn_jr_submit(s->p->redis, s->index, s->wr) != 0)
			kn_jr_msg_free(s->wr); /* counted by the client */
		s->wr = NULL;
	}
	if (!s->wr && !(s->wr = kn_jr_msg_new(KN_JR_WRITE, MSG_FIRST)))
		return;
	struct kn_jr_item *it = &s->wr->items[s->wr->n++];
	memcpy(it->id, id, 16);
	it->head = *h;
}

/* End of a round: hands this round's messages to the client thread. */
static void registry_round_end(struct kn_journey_shard *s)
{
	if (!s->p->redis || (!s->lk && !s->wr))
		return;
	lookup_submit(s);
	if (s->wr && kn_jr_submit(s->p->redis, s->index, s->wr) != 0)
		kn_jr_msg_free(s->wr);
	s->wr = NULL;
	kn_jr_kick(s->p->redis);
}

/* Takes the answered lookups: heads into the remote cache, their waiters
 * unmarked. Returns 1 when any answer came. */
static int registry_answers(struct kn_journey_shard *s, uint64_t now)
{
	if (!s->p->redis)
		return 0;
	struct kn_jr_msg *m;
	int got = 0;
	while ((m = kn_jr_answer(s->p->redis, s->index)) != NULL) {
		got = 1;
		if (s->lk_out)
			s->lk_out--;
		s->lk_answered = m->seq;
		for (uint32_t i = 0; i < m->n; i++)
			if (m->items[i].found)
				kn_journey_registry_put(s->remote, 0, m->items[i].id, &m->items[i].head, now);
		for (uint32_t i = 0; i < s->nwait; i++)
			if (s->wait[i].lookup_seq == m->seq) {
				struct waiter *w = &s->wait[i];
				/* asked again after poll, 2 poll, 4 poll, then every 8 poll */
				w->lookup_seq = 0;
				w->next_lookup = now + (s->p->poll_ns << (w->lookups < 3 ? w->lookups : 3));
				if (w->lookups < 255)
					w->lookups++;
				set_failed(s, w, m->status == KN_JR_UNAVAILABLE);
			}
		kn_jr_msg_free(m);
	}
	return got;
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
	if (release(s, t, 0, now, next) != BLOCKED)
		return;
	struct waiter *w = wait_push(s, id);
	if (!w)
		release(s, t, 1, now, next); /* cannot park it: release without head */
	else
		lookup_add(s, w, now);
}

static void poll_waiting(struct kn_journey_shard *s, uint64_t now, int force,
			 const struct kn_emit *next)
{
	if (!s->nwait || (!force && now < s->next_poll))
		return;
	uint32_t k = 0;
	for (uint32_t i = 0; i < s->nwait; i++) {
		struct waiter *w = &s->wait[i];
		uint32_t t = kn_tail_store_find(s->store, w->id);
		if (t == KN_TAIL_NONE || release(s, t, 0, now, next) == RELEASED) {
			set_failed(s, w, 0);
			continue;
		}
		s->wait[k] = *w;
		lookup_add(s, &s->wait[k], now);
		k++;
	}
	s->nwait = k;
	s->next_poll = now + s->p->poll_ns;
}

/* Waiters whose registry lookup failed and whose wait_window is over:
 * released without head, reason registry_unavailable (before the store's
 * own deadline release would count them as head_not_seen). */
static void release_failed_due(struct kn_journey_shard *s, uint64_t now, const struct kn_emit *next)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < s->nwait; i++) {
		struct waiter *w = &s->wait[i];
		uint32_t t = kn_tail_store_find(s->store, w->id);
		struct kn_tail_trace v;
		if (t != KN_TAIL_NONE && w->failed) {
			kn_tail_store_info(s->store, t, &v);
			if (v.first_seen_ns + s->p->cfg.wait_window_ns <= now) {
				release(s, t, 2, now, next);
				t = KN_TAIL_NONE;
			}
		}
		if (t == KN_TAIL_NONE) {
			set_failed(s, w, 0);
			continue;
		}
		s->wait[k++] = *w;
	}
	s->nwait = k;
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
	if (registry_answers(s, kn_tail_store_now(s->store, kn_now_ns())))
		s->next_poll = 0; /* decided again at the next tick */
	for (uint32_t i = 0; i < b->n; i++) {
		take_chunk(s, b->chunks[i], next);
		kn_chunk_unref(b->chunks[i]); /* spans copied: never keep the input alive */
	}
	b->n = 0;
	kn_batch_free(b);
	registry_round_end(s);
	kn_emit_out_flush(&s->out, next);
	publish_gauges(s);
	return KN_RETAINED;
}

uint64_t kn_journey_tick(void *state, uint64_t now_ns, const struct kn_emit *next)
{
	struct kn_journey_shard *s = state;
	uint64_t now = kn_tail_store_now(s->store, now_ns);
	int answered = registry_answers(s, now);
	while (s->fcount && s->fifo[s->fhead].at <= now) {
		struct pend e = s->fifo[s->fhead];
		s->fhead = (s->fhead + 1) % s->fcap;
		s->fcount--;
		root_due(s, e.id, now, next);
	}
	poll_waiting(s, now, answered, next);
	if (s->nfailed)
		release_failed_due(s, now, next);
	uint32_t t;
	while ((t = kn_tail_store_due(s->store, now)) != KN_TAIL_NONE)
		release(s, t, 1, now, next);
	registry_round_end(s);
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
	/* answers are read on ticks: look again soon while lookups are out */
	if (s->lk_out && (!d || now + 2 * KN_NS_PER_MS < d))
		d = now + 2 * KN_NS_PER_MS;
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

/* Before the last round gives up on the parked traces: one lookup of all
 * their links in the shared registry, waited for (at most registry.redis.
 * timeout), so a consumer whose head another collector published is still
 * joined at shutdown. */
static void lookup_parked(struct kn_journey_shard *s, uint64_t now)
{
	struct kn_jr *r = s->p->redis;
	if (!r || !s->nparked || !kn_jr_up(r))
		return;
	struct waiter w;
	for (uint32_t i = 0; i < s->nparked; i++) {
		struct kn_journey_scan sc;
		if (kn_journey_scan(s->parked[i].data, s->parked[i].len, s->parked[i].id, &sc) != 0)
			continue;
		memcpy(s->blk, sc.links, (size_t)sc.nlinks * 16);
		s->nblk = sc.nlinks;
		memset(&w, 0, sizeof w);
		lookup_add(s, &w, now);
	}
	s->nfailed = 0; /* `w` stood in for waiters; nothing waits any more */
	if (!s->lk)
		return;
	uint64_t want = s->lk->seq;
	uint32_t out = s->lk_out;
	lookup_submit(s);
	if (s->lk_out == out)
		return; /* refused (counted) */
	kn_jr_kick(r);
	uint64_t deadline = kn_now_ns() + s->p->cfg.registry.redis.timeout_ns;
	while (s->lk_answered < want && kn_now_ns() < deadline) {
		if (!registry_answers(s, now)) {
			struct timespec ts = {0, 1000000}; /* the answer is a round trip away */
			nanosleep(&ts, NULL);
		}
	}
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
	s->nfailed = 0;
	/* parked traces: again while that releases more (a chain on this shard) */
	while (s->nparked && retry_parked(s, 0, now, next) > 0)
		;
	if (final && s->nparked) {
		lookup_parked(s, now);
		while (s->nparked && retry_parked(s, 0, now, next) > 0)
			;
		retry_parked(s, 1, now, next);
	}
	registry_round_end(s);
	kn_emit_out_flush(&s->out, next);
	publish_gauges(s);
}

void kn_journey_flush(void *state, const struct kn_emit *next)
{
	unsigned rounds = kn_processor_journey.flush_rounds ? kn_processor_journey.flush_rounds : 1;
	for (unsigned r = 0; r < rounds; r++)
		kn_journey_flush_round(state, r, next);
}
