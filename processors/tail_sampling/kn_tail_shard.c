/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_shard: the tail sampler on one shard: ingest, bounds, deciding,
 * late spans, emission.
 *
 * process(): each chunk's spans are grouped by trace id (a small open-
 * addressing table and a stable counting sort in per-shard scratch; no
 * allocation per span), then per trace:
 *   - buffered already -> appended to its record;
 *   - else in the sampled cache -> forwarded at once (same rewrite as the
 *     trace got), counted as a late span;
 *   - else in the not-sampled cache -> dropped, counted as a late span;
 *   - else a new trace.
 * Before an append: a trace passing maximum_trace_size_bytes is decided
 * "not sampled" (OTel's rule); then while the store would pass its byte
 * bound, or a new trace its trace count, the oldest trace is decided early.
 * If that was the very trace being appended to, its new spans follow the
 * decision just made, like any late span. The chunk is unreffed as soon as
 * its spans are copied. `now` is the chunk's accepted_ns (the receiver's
 * kn_now_ns()), so tests drive time through the chunks and tick().
 *
 * tick(): decides what is due (the store keeps deadlines in arrival order,
 * O(1) per decision, no scan) and returns the next deadline. The shard
 * worker re-ticks a stage only at its deadline, so while a root span could
 * still bring a trace's decision earlier (decision_wait_after_root_received
 * set, traces buffered) the deadline returned is at most min(grace, 100 ms)
 * away: decisions are then at most that late.
 *
 * Deciding: kn_tail_decide on the store's view; kept traces (and late
 * spans of kept traces) are written one after another into the shard's
 * pending output (kn_tail_emit_add), which becomes one chunk (charged to
 * the global memory budget) when it reaches OUT_BYTES, when the time the
 * chunks carry (accepted_ns = the decision's `now`) changes, and at the end
 * of every call; the chunks go out as one batch per call. A decision round
 * thus leaves as a few large chunks, not one chunk per trace. */
#include <stdlib.h>
#include <string.h>

#include "../../collector/core/kn_budget.h"
#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_log.h"
#include "kn_tail_hash.h"
#include "kn_tail_int.h"

#define NO_POLICY UINT16_MAX
#define OUT_MAX 256                        /* chunks per emitted batch */
#define OUT_BYTES (1u << 20)               /* bytes that close an output chunk and an emitted batch (= one export request downstream) */
#define ROOT_POLL_NS (100 * KN_NS_PER_MS)

/* ---- shard lifecycle ---- */

void kn_tail_shard_destroy(void *state)
{
	struct kn_tail_shard *s = state;
	if (!s)
		return;
	kn_budget_held_add(-s->held);
	kn_tail_engine_shard_destroy(s->eng);
	kn_tail_store_destroy(s->store);
	kn_tail_lru_destroy(s->sampled);
	kn_tail_fpring_destroy(s->dropped);
	kn_tail_frame_free(&s->frame);
	kn_tail_emit_free(&s->emit);
	kn_tail_bytrace_free(&s->grp);
	free(s->late);
	for (uint32_t i = 0; i < s->nnames; i++) {
		free(s->names[i].name);
		free(s->names[i].attr);
	}
	free(s->names);
	kn_emit_out_free(&s->out);
	free(s);
}

int kn_tail_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err)
{
	struct kn_tail_proc *p = inst;
	struct kn_tail_shard *s = calloc(1, sizeof *s);
	if (!s)
		return kn_errf(err, "shard %u: out of memory", shard);
	s->p = p;
	s->out = (struct kn_emit_out){.max = OUT_MAX, .max_bytes = OUT_BYTES, .lost = p->m.lost_oom};
	s->index = shard;
	kn_tail_emit_init(&s->emit);
	struct kn_tail_store_cfg sc = {
		.decision_wait_ns = p->cfg.decision_wait_ns,
		.root_wait_ns = p->cfg.root_wait_ns,
		.initial_traces = p->shard_initial,
	};
	s->store = kn_tail_store_create(&sc);
	s->sampled = kn_tail_lru_create(p->lru_cap);
	s->dropped = kn_tail_fpring_create(p->fp_cap);
	if (!s->store || !s->sampled || !s->dropped) {
		kn_errf(err, "shard %u: out of memory for the trace store and decision caches", shard);
		goto fail;
	}
	s->eng = kn_tail_engine_shard_create(p->engine, shard, err);
	if (!s->eng)
		goto fail;
	*state = s;
	return KN_OK;
fail:
	kn_tail_shard_destroy(s);
	return KN_ERR;
}

/* ---- output ---- */


/* The number of a policy name in this shard's table (interned, so cached
 * decisions stay valid whatever the engine does with its strings). */
static uint16_t policy_number(struct kn_tail_shard *s, const char *policy)
{
	if (!policy)
		return NO_POLICY;
	for (uint32_t i = 0; i < s->nnames; i++)
		if (s->names[i].orig == policy || strcmp(s->names[i].name, policy) == 0)
			return (uint16_t)i;
	if (s->nnames >= NO_POLICY)
		return NO_POLICY;
	if (s->nnames == s->cap_names) {
		uint32_t nc = s->cap_names ? s->cap_names * 2 : 8;
		struct kn_tail_name *nn = realloc(s->names, nc * sizeof *nn);
		if (!nn)
			return NO_POLICY;
		s->names = nn;
		s->cap_names = nc;
	}
	struct kn_tail_name *x = &s->names[s->nnames];
	memset(x, 0, sizeof *x);
	x->orig = policy;
	x->name = strdup(policy);
	if (!x->name)
		return NO_POLICY;
	const char *key = s->p->cfg.policy_attribute;
	if (key && *key) {
		size_t cap = strlen(key) + strlen(policy) + 32;
		x->attr = malloc(cap);
		if (!x->attr) {
			free(x->name);
			return NO_POLICY;
		}
		x->attr_len = (uint32_t)kn_tail_emit_attr(key, policy, x->attr, cap);
	}
	return (uint16_t)s->nnames++;
}

/* Turns the pending output into one chunk for the output batch. */
static void emit_pending(struct kn_tail_shard *s, const struct kn_emit *next)
{
	uint32_t n = kn_tail_emit_pending_spans(&s->emit);
	struct kn_err err;
	struct kn_chunk *c = kn_tail_emit_take(&s->emit, &err);
	if (!c) {
		if (n) {
			kn_warn("tail_sampling: shard %u: %u kept spans lost: %s", s->index, n, err.msg);
			kn_counter_add(s->p->m.lost_oom, n);
		}
		return;
	}
	c->shard = (uint16_t)s->index;
	c->accepted_ns = s->emit.ns;
	if (kn_budget_try_charge(c->len))
		c->charged = c->len;
	else
		kn_counter_add(s->p->m.budget_overrun, n);
	kn_emit_out_add(&s->out, c, next);
}

/* Ends a call: the pending output, then the batch, go to next. */
static void emit_all(struct kn_tail_shard *s, const struct kn_emit *next)
{
	emit_pending(s, next);
	kn_emit_out_flush(&s->out, next);
}

/* Adds a kept trace's bytes (buffer or framed late spans) to the pending
 * output. */
static void emit_kept(struct kn_tail_shard *s, const uint8_t *data, size_t len, uint32_t nspans,
		      const struct kn_tail_kept *k, uint64_t now, const struct kn_emit *next)
{
	struct kn_tail_rewrite rw = {0};
	if (k->policy != NO_POLICY && s->names[k->policy].attr) {
		rw.attr = s->names[k->policy].attr;
		rw.attr_len = s->names[k->policy].attr_len;
	}
	rw.has_threshold = k->has_threshold;
	rw.threshold = k->threshold;
	if (kn_tail_emit_pending_spans(&s->emit) &&
	    (s->emit.ns != now || kn_tail_emit_pending_bytes(&s->emit) >= OUT_BYTES))
		emit_pending(s, next);
	struct kn_err err;
	if (kn_tail_emit_add(&s->emit, data, len, nspans, &rw, &err) != KN_OK) {
		kn_warn("tail_sampling: shard %u: %u kept spans lost: %s", s->index, nspans, err.msg);
		kn_counter_add(s->p->m.lost_oom, nspans);
		return;
	}
	s->emit.ns = now;
}

/* Decides trace t and frees it; `early` names why it was decided before its
 * deadline (NULL: it was due). */
static void decide(struct kn_tail_shard *s, uint32_t t, uint64_t now, struct kn_metric *early,
		   const struct kn_emit *next)
{
	struct kn_tail_metrics *m = &s->p->m;
	struct kn_tail_trace v;
	struct kn_tail_verdict vd = {0};
	if (kn_tail_store_view(s->store, t, &v) != KN_OK) {
		kn_warn("tail_sampling: shard %u: %u spans lost: out of memory writing out their trace",
			s->index, v.nspans);
		kn_counter_add(m->lost_oom, v.nspans);
		kn_tail_fpring_put(s->dropped, v.trace_id); /* its late spans go too */
		kn_tail_store_remove(s->store, t);
		return;
	}
	kn_tail_decide(s->eng, &v, now, &vd);
	if (early)
		kn_counter_add(early, 1);
	kn_counter_add(m->latency_sum_ms, now > v.first_seen_ns ? (now - v.first_seen_ns) / KN_NS_PER_MS : 0);
	kn_counter_add(m->latency_count, 1);
	if (vd.sampled) {
		struct kn_tail_kept k = {
			.policy = policy_number(s, vd.policy),
			.has_threshold = vd.has_threshold ? 1 : 0,
			.threshold = vd.threshold,
		};
		kn_tail_lru_put(s->sampled, v.trace_id, &k);
		kn_counter_add(m->traces_sampled, 1);
		kn_counter_add(m->spans_sampled, v.nspans);
		emit_kept(s, v.data, v.len, v.nspans, &k, now, next);
	} else {
		kn_tail_fpring_put(s->dropped, v.trace_id);
		kn_counter_add(m->traces_not_sampled, 1);
		kn_counter_add(m->spans_not_sampled, v.nspans);
	}
	kn_tail_store_remove(s->store, t);
}

static void publish(struct kn_tail_shard *s)
{
	struct kn_tail_gauges *g = &s->p->gauges[s->index < s->p->nshards ? s->index : 0];
	atomic_store_explicit(&g->traces, kn_tail_store_count(s->store), memory_order_relaxed);
	atomic_store_explicit(&g->spans, (int64_t)kn_tail_store_spans(s->store), memory_order_relaxed);
	int64_t bytes = (int64_t)kn_tail_store_bytes(s->store);
	atomic_store_explicit(&g->bytes, bytes, memory_order_relaxed);
	kn_budget_held_add(bytes - s->held); /* buffered on purpose: not for malloc_trim */
	s->held = bytes;
}

/* ---- ingest ---- */

/* Spans of a decided trace: follow the cached decision. 1 when handled. */
static int late(struct kn_tail_shard *s, const struct kn_chunk *c, const uint32_t *idx, uint32_t n,
		uint64_t size, uint64_t now, const struct kn_emit *next)
{
	const uint8_t *id = c->spans[idx[0]].trace_id;
	struct kn_tail_kept k;
	if (kn_tail_lru_get(s->sampled, id, &k)) {
		if (size > s->cap_late) {
			uint8_t *q = realloc(s->late, size);
			if (!q) {
				kn_counter_add(s->p->m.lost_oom, n);
				return 1;
			}
			s->late = q;
			s->cap_late = size;
		}
		uint8_t *end = kn_tail_frame_write(&s->frame, c, idx, n, s->grp.g, s->late);
		kn_counter_add(s->p->m.late_sampled, n);
		emit_kept(s, s->late, (size_t)(end - s->late), n, &k, now, next);
		return 1;
	}
	if (kn_tail_fpring_has(s->dropped, id)) {
		kn_counter_add(s->p->m.late_not_sampled, n);
		return 1;
	}
	return 0;
}

static void take_group(struct kn_tail_shard *s, const struct kn_chunk *c, const uint32_t *idx,
		       uint32_t n, uint64_t now, const struct kn_emit *next)
{
	const struct kn_tail_proc *p = s->p;
	const uint8_t *id = c->spans[idx[0]].trace_id;
	uint64_t size = kn_tail_frame_size(&s->frame, c, idx, n, s->grp.g);
	if (size == UINT64_MAX) {
		kn_counter_add(p->m.lost_malformed, n);
		return;
	}
	uint32_t t = kn_tail_store_find(s->store, id);
	if (t == KN_TAIL_NONE && late(s, c, idx, n, size, now, next))
		return;
	if (p->cfg.maximum_trace_size_bytes &&
	    (t == KN_TAIL_NONE ? 0 : kn_tail_store_trace_bytes(s->store, t)) + size >
		    p->cfg.maximum_trace_size_bytes) {
		struct kn_tail_trace v = {0};
		if (t != KN_TAIL_NONE)
			kn_tail_store_info(s->store, t, &v);
		kn_counter_add(p->m.too_large, 1);
		kn_counter_add(p->m.traces_not_sampled, 1);
		kn_counter_add(p->m.spans_not_sampled, v.nspans + n);
		kn_tail_fpring_put(s->dropped, id);
		if (t != KN_TAIL_NONE)
			kn_tail_store_remove(s->store, t);
		return;
	}
	uint64_t part = kn_tail_store_part_bytes(c, idx, n);
	/* the trace written out would pass the bound: decide it now */
	if (t != KN_TAIL_NONE && kn_tail_store_trace_bytes(s->store, t) + size > p->shard_max_bytes) {
		decide(s, t, now, p->m.early_memory, next);
		if (late(s, c, idx, n, size, now, next))
			return;
		t = KN_TAIL_NONE;
	}
	/* make room: decide the oldest early */
	while (kn_tail_store_count(s->store) > 0) {
		int over_traces = t == KN_TAIL_NONE &&
				  kn_tail_store_count(s->store) >= p->shard_max_traces;
		int over_bytes = kn_tail_store_would(s->store, t, part) > p->shard_max_bytes;
		if (!over_traces && !over_bytes)
			break;
		uint32_t o = kn_tail_store_oldest(s->store);
		decide(s, o, now, over_bytes ? p->m.early_memory : p->m.early_num_traces, next);
		if (o == t) {
			/* our own trace: the new spans follow the decision just made */
			if (late(s, c, idx, n, size, now, next))
				return;
			t = KN_TAIL_NONE;
		}
	}
	int opened = 0;
	if (t == KN_TAIL_NONE) {
		t = kn_tail_store_open(s->store, id, now);
		opened = 1;
		if (t == KN_TAIL_NONE) {
			kn_counter_add(p->m.lost_oom, n);
			return;
		}
	}
	if (kn_tail_store_append(s->store, t, &s->frame, c, idx, n, part, size, now) != KN_OK) {
		kn_counter_add(p->m.lost_oom, n);
		if (opened)
			kn_tail_store_remove(s->store, t);
		return;
	}
	/* a part larger than the whole bound: nothing older was left to decide */
	while (kn_tail_store_count(s->store) > 0 && kn_tail_store_bytes(s->store) > p->shard_max_bytes)
		decide(s, kn_tail_store_oldest(s->store), now, p->m.early_memory, next);
}

static void take_chunk(struct kn_tail_shard *s, const struct kn_chunk *c, const struct kn_emit *next)
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

int kn_tail_process(void *state, struct kn_batch *b, const struct kn_emit *next)
{
	struct kn_tail_shard *s = state;
	for (uint32_t i = 0; i < b->n; i++) {
		take_chunk(s, b->chunks[i], next);
		kn_chunk_unref(b->chunks[i]); /* spans copied: never keep the input alive */
	}
	b->n = 0;
	kn_batch_free(b);
	emit_all(s, next);
	publish(s);
	return KN_RETAINED;
}

uint64_t kn_tail_tick(void *state, uint64_t now_ns, const struct kn_emit *next)
{
	struct kn_tail_shard *s = state;
	uint64_t now = kn_tail_store_now(s->store, now_ns);
	uint32_t t;
	while ((t = kn_tail_store_due(s->store, now)) != KN_TAIL_NONE)
		decide(s, t, now, NULL, next);
	emit_all(s, next);
	publish(s);
	uint64_t d = kn_tail_store_next_deadline(s->store);
	if (d && s->p->cfg.root_wait_ns) {
		uint64_t poll = s->p->cfg.root_wait_ns < ROOT_POLL_NS ? s->p->cfg.root_wait_ns : ROOT_POLL_NS;
		if (d > now + poll)
			d = now + poll;
	}
	return d;
}

void kn_tail_flush(void *state, const struct kn_emit *next)
{
	struct kn_tail_shard *s = state;
	uint64_t now = kn_tail_store_now(s->store, kn_now_ns());
	uint32_t t;
	while ((t = kn_tail_store_oldest(s->store)) != KN_TAIL_NONE) {
		if (s->p->cfg.drop_pending_traces_on_shutdown) {
			struct kn_tail_trace v;
			kn_tail_store_info(s->store, t, &v);
			kn_counter_add(s->p->m.traces_not_sampled, 1);
			kn_counter_add(s->p->m.spans_not_sampled, v.nspans);
			kn_counter_add(s->p->m.early_shutdown, 1);
			kn_tail_fpring_put(s->dropped, v.trace_id);
			kn_tail_store_remove(s->store, t);
			continue;
		}
		decide(s, t, now, s->p->m.early_shutdown, next);
	}
	emit_all(s, next);
	publish(s);
}
