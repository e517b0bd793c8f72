/* SPDX-License-Identifier: Apache-2.0
 * kn_shard: one worker thread per shard. A trace always hashes to the same
 * shard, so the worker owns its traces and its processors' per-shard state
 * alone: no locks between shards.
 *
 * Loop: drain every producer's ring for this shard, hand each chunk to the
 * pipelines its receiver feeds, run processor timers that are due, and sleep
 * on an eventfd when there is nothing to do. Producers write the eventfd only
 * when the worker announced it is going to sleep (`sleeping`), so a busy
 * shard costs producers no syscall. The sleeping flag and the ring tail form a
 * Dekker pair: both sides store, fence seq_cst, then load the other side.
 *
 * Stop, in phases, all shards of the runtime together (kn_shard_stop of any
 * one starts it for every running shard): (1) each worker drains what is in
 * its rings, then waits at a barrier until every worker has drained; (2)
 * stage by stage in pipeline order, each flush round of the stage (see
 * flush_rounds in kn_component.h) runs on every worker in parallel, with a
 * barrier after each round; (3) the workers exit. A stage's round can thus
 * rely on everything other shards published in earlier rounds (the journey
 * processor releases producer traces in round 0 and the consumers waiting
 * for their heads in round 1), and what a stage emits on a shard has gone
 * through that shard's later stages before they flush. Producers have
 * stopped before (receivers shut down first), so nothing acknowledged is
 * left behind. If the group cannot be set up (out of memory) each worker
 * runs the same phases alone. Cost: one pthread barrier, 1 + sum of rounds
 * waits per worker, at shutdown only. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kn_clock.h"
#include "kn_log.h"
#include "kn_metrics.h"
#include "kn_runtime_impl.h"

/* One processor stage of one pipeline on this shard. */
struct stage {
	const struct kn_component *comp;
	void *state;
	uint64_t deadline;        /* next tick; 0 = none */
	struct kn_emit next;
};

struct shard_pipe {
	struct kn_pipeline *pl;
	struct stage *stages;     /* pl->nproc */
	struct kn_emit head;      /* where a chunk's batch enters */
};

/* The shards stopping together; owned by the stopping (runtime) thread,
 * freed when its last member has been joined. */
struct stop_group {
	pthread_barrier_t barrier;
	uint32_t members;         /* worker threads that wait at the barrier */
	uint32_t joined;          /* members joined so far */
};

struct kn_shard {
	struct kn_runtime *rt;
	uint32_t index;
	pthread_t thread;
	int thread_started;
	int efd;
	atomic_int sleeping;
	atomic_int stopping;
	struct stop_group *group; /* set before `stopping` (release); NULL = alone */
	struct shard_pipe *pipes; /* rt->npipelines */
	struct kn_metric *chunks_in;
};

static int64_t ring_occupancy(void *ctx)
{
	struct kn_shard *s = ctx;
	struct kn_runtime *rt = s->rt;
	unsigned np = atomic_load_explicit(&rt->nproducers, memory_order_acquire);
	int64_t n = 0;
	for (unsigned i = 0; i < np; i++)
		n += ck_ring_size(&rt->producers[i]->rings[s->index].ring);
	return n;
}

static int emit_to_stage(void *ctx, struct kn_batch *b)
{
	struct stage *st = ctx;
	return st->comp->process(st->state, b, &st->next);
}

/* The end of a pipeline: hand the batch to every exporter (a clone each but
 * the last, which gets the original). */
static int emit_to_exporters(void *ctx, struct kn_batch *b)
{
	struct kn_pipeline *pl = ctx;
	kn_counter_add(pl->exported_spans, b->nspans);
	for (uint32_t i = 0; i < pl->nexp; i++) {
		struct kn_instance *ex = pl->exp_inst[i];
		struct kn_batch *give = (i + 1 == pl->nexp) ? b : kn_batch_clone(b);
		if (!give) {
			kn_counter_add(pl->dropped_spans, b->nspans);
			continue;
		}
		ex->comp->export(ex->inst, give);
	}
	return KN_OK;
}

struct kn_shard *kn_shard_create(struct kn_runtime *rt, uint32_t index, struct kn_err *err)
{
	struct kn_shard *s = calloc(1, sizeof *s);
	if (!s)
		goto oom;
	s->rt = rt;
	s->index = index;
	s->efd = -1;
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->efd < 0) {
		kn_errf(err, "shard %u: eventfd: %s", index, strerror(errno));
		goto fail;
	}
	s->pipes = calloc(rt->npipelines ? rt->npipelines : 1, sizeof *s->pipes);
	if (!s->pipes)
		goto oom;
	for (uint32_t p = 0; p < rt->npipelines; p++) {
		struct kn_pipeline *pl = &rt->pipelines[p];
		struct shard_pipe *sp = &s->pipes[p];
		sp->pl = pl;
		sp->stages = calloc(pl->nproc ? pl->nproc : 1, sizeof *sp->stages);
		if (!sp->stages)
			goto oom;
		struct kn_emit next = {emit_to_exporters, pl};
		for (uint32_t i = pl->nproc; i-- > 0;) {
			struct stage *st = &sp->stages[i];
			st->comp = pl->procs[i].comp;
			st->next = next;
			if (st->comp->shard_create &&
			    st->comp->shard_create(pl->procs[i].inst, index, &st->state, err) != KN_OK) {
				kn_err_prefix(err, "%s: ", pl->procs[i].path);
				goto fail;
			}
			next = (struct kn_emit){emit_to_stage, st};
		}
		sp->head = next;
	}
	char labels[32];
	snprintf(labels, sizeof labels, "shard=\"%u\"", index);
	s->chunks_in = kn_metrics_counter(rt->metrics, "kansatsu_shard_chunks_total",
					  "Chunks (per-shard parts of export requests) taken from the rings.",
					  labels);
	kn_metrics_gauge_fn(rt->metrics, "kansatsu_ring_occupancy_chunks",
			    "Chunks waiting in the receiver-to-shard rings.", labels, ring_occupancy, s);
	return s;
oom:
	kn_errf(err, "shard %u: out of memory", index);
fail:
	kn_shard_destroy(s);
	return NULL;
}

void kn_shard_wake(struct kn_shard *s)
{
	/* The caller fenced after enqueueing. */
	if (atomic_load_explicit(&s->sleeping, memory_order_relaxed) &&
	    atomic_exchange(&s->sleeping, 0)) {
		uint64_t one = 1;
		ssize_t w = write(s->efd, &one, sizeof one);
		(void)w;
	}
}

static void dispatch(struct kn_shard *s, struct kn_chunk *c)
{
	struct kn_runtime *rt = s->rt;
	uint32_t np = rt->nsource_pipes[c->source];
	uint32_t *pipes = rt->source_pipes[c->source];
	for (uint32_t i = 0; i < np; i++) {
		struct shard_pipe *sp = &s->pipes[pipes[i]];
		struct kn_batch *b = kn_batch_new(1);
		if (!b) {
			kn_counter_add(sp->pl->dropped_spans, c->nspans);
			continue;
		}
		kn_batch_add(&b, (i + 1 == np) ? c : kn_chunk_ref(c));
		kn_emit(&sp->head, b);
	}
	if (np == 0)
		kn_chunk_unref(c);
}

/* Takes up to `max` chunks from the rings; returns how many. */
static unsigned drain(struct kn_shard *s, unsigned max)
{
	struct kn_runtime *rt = s->rt;
	unsigned np = atomic_load_explicit(&rt->nproducers, memory_order_acquire);
	unsigned n = 0;
	for (unsigned i = 0; i < np; i++) {
		struct kn_pring *r = &rt->producers[i]->rings[s->index];
		void *c;
		while (n < max && ck_ring_dequeue_spsc(&r->ring, r->buf, &c)) {
			dispatch(s, c);
			n++;
		}
	}
	if (n)
		kn_counter_add(s->chunks_in, n);
	return n;
}

static int rings_empty(struct kn_shard *s)
{
	struct kn_runtime *rt = s->rt;
	unsigned np = atomic_load_explicit(&rt->nproducers, memory_order_acquire);
	for (unsigned i = 0; i < np; i++)
		if (ck_ring_size(&rt->producers[i]->rings[s->index].ring))
			return 0;
	return 1;
}

/* Runs due timers; returns the earliest pending deadline (0 = none). After
 * new data (`all`), every stage's tick runs: process() may have made
 * something due sooner than the deadline the stage last returned (a root
 * span arriving brings a tail-sampling decision forward). tick() acts only on
 * what is due, so early calls are cheap. */
static uint64_t run_timers(struct kn_shard *s, uint64_t now, int all)
{
	uint64_t next = 0;
	for (uint32_t p = 0; p < s->rt->npipelines; p++) {
		struct shard_pipe *sp = &s->pipes[p];
		for (uint32_t i = 0; i < sp->pl->nproc; i++) {
			struct stage *st = &sp->stages[i];
			if (!st->comp->tick)
				continue;
			if (all || st->deadline == 0 || st->deadline <= now)
				st->deadline = st->comp->tick(st->state, now, &st->next);
			if (st->deadline && (next == 0 || st->deadline < next))
				next = st->deadline;
		}
	}
	return next;
}

static void group_wait(struct kn_shard *s)
{
	if (s->group)
		pthread_barrier_wait(&s->group->barrier);
}

/* Phase 2: in pipeline order, so what a stage flushes passes through the
 * later ones before they flush themselves; every shard runs the same
 * sequence of rounds, so the barrier counts match. */
static void flush_phases(struct kn_shard *s)
{
	for (uint32_t p = 0; p < s->rt->npipelines; p++) {
		struct shard_pipe *sp = &s->pipes[p];
		for (uint32_t i = 0; i < sp->pl->nproc; i++) {
			struct stage *st = &sp->stages[i];
			unsigned rounds = st->comp->flush_round && st->comp->flush_rounds > 1
						  ? st->comp->flush_rounds : 1;
			for (unsigned r = 0; r < rounds; r++) {
				if (rounds > 1)
					st->comp->flush_round(st->state, r, &st->next);
				else if (st->comp->flush)
					st->comp->flush(st->state, &st->next);
				group_wait(s);
			}
		}
	}
}

static void *shard_main(void *arg)
{
	struct kn_shard *s = arg;
	char name[16];
	snprintf(name, sizeof name, "kn-shard-%u", s->index);
	pthread_setname_np(pthread_self(), name);
	uint64_t deadline = run_timers(s, kn_now_ns(), 1);
	for (;;) {
		unsigned n = drain(s, 256);
		uint64_t now = kn_now_ns();
		if (n || (deadline && now >= deadline))
			deadline = run_timers(s, now, n > 0);
		if (n)
			continue;
		if (atomic_load_explicit(&s->stopping, memory_order_acquire)) {
			if (rings_empty(s))
				break;
			continue;
		}
		atomic_store(&s->sleeping, 1);
		atomic_thread_fence(memory_order_seq_cst);
		if (!rings_empty(s) || atomic_load(&s->stopping)) {
			atomic_store(&s->sleeping, 0);
			continue;
		}
		int timeout = -1;
		if (deadline) {
			now = kn_now_ns();
			timeout = deadline <= now ? 0 : (int)((deadline - now + KN_NS_PER_MS - 1) / KN_NS_PER_MS);
		}
		struct pollfd pfd = {.fd = s->efd, .events = POLLIN};
		poll(&pfd, 1, timeout);
		uint64_t v;
		ssize_t r = read(s->efd, &v, sizeof v);
		(void)r;
		atomic_store(&s->sleeping, 0);
	}
	group_wait(s); /* phase 1 ends when every shard has drained */
	flush_phases(s);
	return NULL;
}

int kn_shard_start(struct kn_shard *s, struct kn_err *err)
{
	int rc = pthread_create(&s->thread, NULL, shard_main, s);
	if (rc != 0)
		return kn_errf(err, "shard %u: cannot start thread: %s", s->index, strerror(rc));
	s->thread_started = 1;
	return KN_OK;
}

static int running(const struct kn_shard *s)
{
	return s && s->thread_started && !atomic_load_explicit(&s->stopping, memory_order_relaxed);
}

static void signal_stop(struct kn_shard *s, struct stop_group *g)
{
	s->group = g;
	atomic_store_explicit(&s->stopping, 1, memory_order_release);
	uint64_t one = 1;
	ssize_t w = write(s->efd, &one, sizeof one);
	(void)w;
}

/* Starts the phased stop of every running shard of s's runtime (s among
 * them). Shards are started and stopped by one thread, so no race here. */
static void group_stop(struct kn_shard *s)
{
	struct kn_runtime *rt = s->rt;
	uint32_t n = 0;
	int in_rt = 0;
	for (uint32_t i = 0; rt->shards && i < rt->nshards; i++)
		if (running(rt->shards[i])) {
			n++;
			in_rt |= rt->shards[i] == s;
		}
	struct stop_group *g = NULL;
	if (in_rt && n > 1) {
		g = calloc(1, sizeof *g);
		if (g && pthread_barrier_init(&g->barrier, NULL, n) != 0) {
			free(g);
			g = NULL;
		}
		if (!g)
			kn_warn("shards: out of memory for the shutdown barrier; each shard flushes alone");
	}
	if (!g) {
		signal_stop(s, NULL);
		return;
	}
	g->members = n;
	for (uint32_t i = 0; i < rt->nshards; i++)
		if (running(rt->shards[i]))
			signal_stop(rt->shards[i], g);
}

void kn_shard_stop(struct kn_shard *s)
{
	if (!s || !s->thread_started)
		return;
	if (!atomic_load_explicit(&s->stopping, memory_order_relaxed))
		group_stop(s);
	pthread_join(s->thread, NULL);
	s->thread_started = 0;
	struct stop_group *g = s->group;
	s->group = NULL;
	if (g && ++g->joined == g->members) {
		pthread_barrier_destroy(&g->barrier);
		free(g);
	}
}

void kn_shard_destroy(struct kn_shard *s)
{
	if (!s)
		return;
	kn_shard_stop(s);
	if (s->pipes) {
		for (uint32_t p = 0; p < s->rt->npipelines; p++) {
			struct shard_pipe *sp = &s->pipes[p];
			if (!sp->stages)
				continue;
			for (uint32_t i = 0; i < sp->pl->nproc; i++)
				if (sp->stages[i].state && sp->stages[i].comp->shard_destroy)
					sp->stages[i].comp->shard_destroy(sp->stages[i].state);
			free(sp->stages);
		}
		free(s->pipes);
	}
	if (s->efd >= 0)
		close(s->efd);
	free(s);
}
