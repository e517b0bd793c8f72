/* SPDX-License-Identifier: Apache-2.0
 * kn_sender: the exporters' shared queue, consumer threads and retry loop
 * (see kn_sender.h for the contract and the metrics).
 *
 * Queue: a ck_ring of batch pointers sized to the next power of two above
 * queue_size, used MPMC (shard workers produce, consumers consume); the bound
 * is an atomic count reserved before the ring enqueue, so the ring itself can
 * never be full. A consumer that finds the ring empty registers as a sleeper
 * (atomic count) and waits on `cv` under `mu`; a producer takes `mu` only
 * when the sleeper count is nonzero after its enqueue (a full fence orders
 * the enqueue before that read, the consumer's increment before its re-check,
 * so a wakeup cannot be lost).
 *
 * Backoff waits use a second condition variable, `cv_stop`, broadcast only by
 * shutdown, so a producer's signal always reaches an idle consumer.
 *
 * Shutdown: `stopping` refuses new batches (after waiting for producers that
 * already passed the check), consumers keep sending until the deadline (each
 * attempt's deadline is clipped to it), then every batch still held or queued
 * is dropped with reason "shutdown".
 *
 * Costs: per batch one ring slot and a few atomic adds; no allocation.
 *
 * Persistent queue (kn_sender.h): the ring holds batches kept in memory
 * (their record id in b->tag; 0 for a batch the disk refused), `queued`
 * bounds it at queue_size as before; `pend` counts batches not finished
 * (queue_size's bound with storage), `mem_bytes` the ring's bytes (the
 * window). A consumer that finds the ring empty reads the next unread record
 * (storage->next); it sleeps only when both are empty (the enqueue's
 * unread increment happens inside append, before the sleeper check, so the
 * same fence argument holds). */
#include "kn_sender.h"

#include <ck_ring.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "../../collector/core/kn_backpressure.h"
#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_component.h"
#include "../../collector/core/kn_cpus.h"
#include "../../collector/core/kn_extension.h"
#include "../../collector/core/kn_log.h"
#include "../../collector/core/kn_metrics.h"
#include "../../collector/core/kn_storage.h"

/* Batches a persistent queue keeps in memory besides on disk: enough to keep
 * every consumer busy without reading back, small against the memory budget. */
#define WINDOW_PER_CONSUMER 4
#define WINDOW_MIN 8
#define WINDOW_BYTES ((size_t)16 << 20)
/* How long receivers refuse after the disk refused an append. */
#define DISK_FULL_HOLD_NS KN_NS_PER_SEC

static const char *const consumer_scheduling_choices[] = {"batch", "normal", NULL};

const struct kn_cfg_field kn_sender_queue_fields[] = {
	{.key = "enabled", .type = KN_F_BOOL, .off = offsetof(struct kn_sender_queue_cfg, enabled),
	 .def = "true", .help = "queue batches and send them from consumer threads"},
	{.key = "num_consumers", .type = KN_F_UINT,
	 .off = offsetof(struct kn_sender_queue_cfg, num_consumers), .def = "0",
	 .help = "sending threads (concurrent requests); 0 = max(4, CPUs), at most 64", .min = 0, .max = 256},
	{.key = "queue_size", .type = KN_F_UINT, .off = offsetof(struct kn_sender_queue_cfg, queue_size),
	 .def = "65536",
	 .help = "batches held before new ones are dropped; the default is large so that "
		 "kansatsu.memory_limit_mib binds first and receivers refuse (retryable) instead "
		 "of the queue dropping acknowledged spans; with storage: batches on disk or in memory "
		 "past which receivers refuse (retryable)",
	 .min = 1, .max = 1 << 24},
	{.key = "storage", .type = KN_F_STR, .off = offsetof(struct kn_sender_queue_cfg, storage),
	 .help = "id of a file_storage extension: a persistent queue (batches on disk before the first "
		 "try, replayed after a restart)"},
	{.key = "max_bytes", .type = KN_F_UINT, .off = offsetof(struct kn_sender_queue_cfg, max_bytes),
	 .def = "0", .help = "kansatsu's own, with storage: bytes of queue files on disk past which "
			     "receivers refuse (retryable); 0 = no bound but the disk"},
	{.key = "consumer_scheduling", .type = KN_F_STR,
	 .off = offsetof(struct kn_sender_queue_cfg, consumer_scheduling), .def = "batch",
	 .choices = consumer_scheduling_choices,
	 .help = "kansatsu's own: batch = consumer threads run as SCHED_BATCH (their wake-ups do not "
		 "preempt receivers and shards; same CPU share); normal = as created"},
	KN_CFG_END,
};

unsigned kn_sender_auto_consumers(void)
{
	unsigned n = kn_cpus();
	return n < 4 ? 4 : n > 64 ? 64 : n;
}

const struct kn_cfg_field kn_sender_retry_fields[] = {
	{.key = "enabled", .type = KN_F_BOOL, .off = offsetof(struct kn_sender_retry_cfg, enabled),
	 .def = "true", .help = "retry retryable failures with backoff"},
	{.key = "initial_interval", .type = KN_F_DURATION,
	 .off = offsetof(struct kn_sender_retry_cfg, initial_interval_ns), .def = "5s",
	 .help = "wait before the first retry"},
	{.key = "max_interval", .type = KN_F_DURATION,
	 .off = offsetof(struct kn_sender_retry_cfg, max_interval_ns), .def = "30s",
	 .help = "upper bound of one wait"},
	{.key = "max_elapsed_time", .type = KN_F_DURATION,
	 .off = offsetof(struct kn_sender_retry_cfg, max_elapsed_time_ns), .def = "300s",
	 .help = "give up on a batch this long after its first attempt (0: never)"},
	{.key = "multiplier", .type = KN_F_DOUBLE, .off = offsetof(struct kn_sender_retry_cfg, multiplier),
	 .def = "1.5", .help = "growth of the wait per retry", .min = 1, .max = 100},
	{.key = "randomization_factor", .type = KN_F_DOUBLE,
	 .off = offsetof(struct kn_sender_retry_cfg, randomization_factor), .def = "0.5",
	 .help = "jitter: each wait is randomised within +-factor of itself", .min = 0, .max = 1},
	KN_CFG_END,
};

enum { DROP_QUEUE_FULL, DROP_RETRIES, DROP_PERMANENT, DROP_SHUTDOWN, DROP_REJECTED, DROP_N };
static const char *const drop_reasons[DROP_N] = {
	"queue_full", "retries_exhausted", "permanent_error", "shutdown", "rejected_by_server",
};

struct kn_sender;

struct consumer {
	struct kn_sender *s;
	unsigned idx;
};

struct kn_sender {
	char *id;
	struct kn_sender_cfg cfg;
	kn_send_fn send;
	void *send_ctx;
	unsigned nconsumers;
	int sched_batch;                /* consumers run as SCHED_BATCH */
	_Atomic int sched_warned;
	uint64_t bound;                 /* max batches queued */

	struct ck_ring ring;
	struct ck_ring_buffer *buf;
	_Atomic uint64_t queued;        /* reserved slots (>= batches in the ring) */
	_Atomic int sleepers;
	_Atomic int producers;          /* inside enqueue */
	_Atomic int stopping;
	_Atomic uint64_t deadline_ns;   /* valid once stopping */
	_Atomic int reclaiming;         /* kn_sender_reclaim: hand batches back, send nothing new */
	kn_sender_reclaim_fn reclaim_fn;
	void *reclaim_ctx;
	_Atomic unsigned reclaimed;

	pthread_mutex_t mu;
	pthread_cond_t cv, cv_stop;
	int sync_ok;

	struct consumer *cons;
	pthread_t *threads;
	unsigned nthreads;
	int started, shut;

	_Atomic uint64_t last_log_ns;
	kn_sender_retry_hook hook;
	void *hook_ctx;

	struct kn_metrics *own_metrics, *metrics;
	struct kn_metric *sent_spans, *sent_reqs, *retries, *failed, *q_batches, *q_bytes;
	struct kn_metric *dropped[DROP_N];

	/* persistent queue (NULL st: in memory) */
	const struct kn_storage_ops *st;
	void *st_inst;
	void *sq;                       /* the open queue, from start to destroy */
	uint64_t window;                /* batches kept in the ring besides on disk */
	_Atomic uint64_t mem_bytes;     /* bytes of the batches in the ring */
	_Atomic uint64_t pend;          /* batches not finished (on disk or in memory) */
	struct kn_bp_source bp;
	_Atomic uint64_t left_on_disk;  /* batches left in the queue at shutdown */
	struct kn_metric *m_spilled, *m_replayed_b, *m_replayed_s, *m_full, *m_persisted;
};

static _Thread_local int tl_consumer = -1;

int kn_sender_consumer_index(void)
{
	return tl_consumer;
}

unsigned kn_sender_consumers(const struct kn_sender *s)
{
	return s->nconsumers;
}

void kn_sender_set_retry_hook(struct kn_sender *s, kn_sender_retry_hook fn, void *ctx)
{
	s->hook = fn;
	s->hook_ctx = ctx;
}

/* Persistent queue: past queue_size batches or max_bytes on disk, receivers
 * refuse until the queue is below both again. */
static void update_bp(struct kn_sender *s)
{
	if (!s->sq)
		return;
	int full = atomic_load(&s->pend) >= s->cfg.queue.queue_size ||
		   (s->cfg.queue.max_bytes && s->st->disk_bytes(s->sq) >= s->cfg.queue.max_bytes);
	if (full == kn_bp_is_raised(&s->bp))
		return;
	if (full)
		kn_bp_raise(&s->bp);
	else
		kn_bp_clear(&s->bp);
	kn_gauge_set(s->m_full, full);
}

/* A batch is finished (sent, dropped or handed back): its record is done. */
static void finish(struct kn_sender *s, uint64_t id)
{
	if (!s->sq)
		return;
	if (id)
		s->st->done(s->sq, id);
	atomic_fetch_sub(&s->pend, 1);
	update_bp(s);
}

static void drop(struct kn_sender *s, struct kn_batch *b, int reason)
{
	uint64_t id = b->tag;
	if (reason != DROP_PERMANENT && reason != DROP_REJECTED && atomic_load(&s->reclaiming)) {
		/* kn_sender_reclaim: what would be dropped for shutdown, queue
		 * or retry reasons goes back to the owner instead. */
		atomic_fetch_add(&s->reclaimed, 1);
		s->reclaim_fn(s->reclaim_ctx, b);
		finish(s, id); /* routed again: in another queue now */
		return;
	}
	if (s->sq && reason == DROP_SHUTDOWN) {
		/* Not lost: on disk for the next start. A batch the disk refused
		 * earlier gets one more try. */
		struct kn_err err;
		if (id || s->st->append(s->sq, b, 1, &id, &err) == KN_OK) {
			atomic_fetch_add(&s->left_on_disk, 1);
			kn_batch_free(b);
			return;
		}
	}
	kn_counter_add(s->dropped[reason], b->nspans);
	kn_batch_free(b);
	finish(s, id);
}

void kn_sender_count_rejected(struct kn_sender *s, uint64_t nspans)
{
	kn_counter_add(s->dropped[DROP_REJECTED], nspans);
}

/* At most one failure line per second per exporter. */
static int log_allowed(struct kn_sender *s)
{
	uint64_t now = kn_now_ns(), last = atomic_load(&s->last_log_ns);
	if (last != 0 && now - last < KN_NS_PER_SEC)
		return 0;
	return atomic_compare_exchange_strong(&s->last_log_ns, &last, now);
}

void kn_sender_warn(struct kn_sender *s, const char *fmt, ...)
{
	if (!log_allowed(s))
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	kn_warn("exporter %s: %s", s->id, msg);
}

static void register_metrics(struct kn_sender *s, struct kn_metrics *m)
{
	char esc[256], lb[320];
	kn_metrics_label_escape(s->id, esc, sizeof esc);
	snprintf(lb, sizeof lb, "exporter=\"%s\"", esc);
	s->sent_spans = kn_metrics_counter(m, "kansatsu_exporter_sent_spans_total",
					   "Spans in requests the destination accepted.", lb);
	s->sent_reqs = kn_metrics_counter(m, "kansatsu_exporter_sent_requests_total",
					  "Requests the destination accepted.", lb);
	s->retries = kn_metrics_counter(m, "kansatsu_exporter_retries_total",
					"Send attempts after the first, per batch.", lb);
	s->failed = kn_metrics_counter(m, "kansatsu_exporter_failed_requests_total",
				       "Send attempts that failed (retryable or permanent).", lb);
	s->q_batches = kn_metrics_gauge(m, "kansatsu_exporter_queue_batches",
					"Batches waiting in the exporter's queue.", lb);
	s->q_bytes = kn_metrics_gauge(m, "kansatsu_exporter_queue_bytes",
				      "Encoded bytes of the batches waiting in the exporter's queue.", lb);
	if (s->st) {
		s->m_spilled = kn_metrics_counter(m, "kansatsu_exporter_queue_spilled_batches_total",
						  "Persistent queue: batches kept only on disk and read back "
						  "before sending (the in-memory window was full).", lb);
		s->m_replayed_b = kn_metrics_counter(m, "kansatsu_exporter_queue_replayed_batches_total",
						     "Persistent queue: batches found on disk at start, sent "
						     "before new ones.", lb);
		s->m_replayed_s = kn_metrics_counter(m, "kansatsu_exporter_queue_replayed_spans_total",
						     "Persistent queue: spans in the batches found on disk at start.",
						     lb);
		s->m_persisted = kn_metrics_counter(m, "kansatsu_exporter_queue_persisted_spans_total",
						    "Persistent queue: spans written to disk (counted once the "
						    "append returned).", lb);
		s->m_full = kn_metrics_gauge(m, "kansatsu_exporter_queue_full",
					     "Persistent queue: 1 while it is past queue_size or max_bytes and "
					     "receivers refuse (retryable).", lb);
	}
	for (int r = 0; r < DROP_N; r++) {
		char l2[400];
		snprintf(l2, sizeof l2, "%s,reason=\"%s\"", lb, drop_reasons[r]);
		s->dropped[r] = kn_metrics_counter(m, "kansatsu_exporter_dropped_spans_total",
						   "Spans the exporter gave up on, by reason.", l2);
	}
}

int kn_sender_queue_check(const struct kn_sender_queue_cfg *q, const char *path, struct kn_err *err)
{
	if (q->storage && !*q->storage)
		return kn_errf(err, "%s.storage: empty (the id of a storage extension)", path);
	if (q->storage && !q->enabled)
		return kn_errf(err, "%s.storage: needs enabled: true (a persistent queue is a queue)", path);
	if (q->max_bytes && !q->storage)
		return kn_errf(err, "%s.max_bytes: only with storage (an in-memory queue is bounded by "
			       "kansatsu.memory_limit_mib)", path);
	return KN_OK;
}

struct kn_sender *kn_sender_create(const char *exporter_id, const struct kn_sender_cfg *cfg,
				   kn_send_fn send, void *send_ctx, struct kn_metrics *m,
				   struct kn_err *err)
{
	if (cfg->queue.storage) {
		kn_errf(err, "exporters.%s.sending_queue.storage: this exporter has no persistent queue",
			exporter_id);
		return NULL;
	}
	return kn_sender_create_with(exporter_id, cfg, send, send_ctx, m, NULL, NULL, err);
}

struct kn_sender *kn_sender_create_ctx(const struct kn_component_ctx *ctx,
				       const struct kn_sender_cfg *cfg, kn_send_fn send,
				       void *send_ctx, struct kn_err *err)
{
	struct kn_ext_ref ext = {0};
	if (cfg->queue.storage) {
		char ref[400];
		snprintf(ref, sizeof ref, "exporters.%s.sending_queue.storage", ctx->id);
		if (kn_extension_find(ctx->rt, cfg->queue.storage, KN_EXT_STORAGE, ref, &ext, err) != KN_OK)
			return NULL;
	}
	return kn_sender_create_with(ctx->id, cfg, send, send_ctx, ctx->metrics,
				     ext.comp ? ext.comp->storage : NULL, ext.inst, err);
}

struct kn_sender *kn_sender_create_with(const char *exporter_id, const struct kn_sender_cfg *cfg,
					kn_send_fn send, void *send_ctx, struct kn_metrics *m,
					const struct kn_storage_ops *storage, void *storage_inst,
					struct kn_err *err)
{
	char qpath[320];
	snprintf(qpath, sizeof qpath, "exporters.%s.sending_queue", exporter_id ? exporter_id : "");
	if (kn_sender_queue_check(&cfg->queue, qpath, err) != KN_OK)
		return NULL;
	if (cfg->queue.storage && !storage) {
		kn_errf(err, "%s.storage: no storage extension given", qpath);
		return NULL;
	}
	struct kn_sender *s = calloc(1, sizeof *s);
	if (!s) {
		kn_errf(err, "exporters.%s: out of memory", exporter_id);
		return NULL;
	}
	s->cfg = *cfg;
	s->cfg.queue.storage = NULL; /* not kept: the config may go before the sender */
	s->cfg.queue.consumer_scheduling = NULL; /* read into sched_batch */
	s->st = cfg->queue.storage ? storage : NULL;
	s->st_inst = storage_inst;
	s->send = send;
	s->send_ctx = send_ctx;
	s->id = strdup(exporter_id ? exporter_id : "");
	if (!s->id) {
		kn_errf(err, "exporters.%s: out of memory", exporter_id);
		goto fail;
	}
	if (cfg->queue.num_consumers > 256) {
		kn_errf(err, "exporters.%s.sending_queue.num_consumers: must be in [0, 256], got %" PRIu64,
			s->id, cfg->queue.num_consumers);
		goto fail;
	}
	s->nconsumers = cfg->queue.num_consumers ? (unsigned)cfg->queue.num_consumers : kn_sender_auto_consumers();
	s->sched_batch = !cfg->queue.consumer_scheduling || strcmp(cfg->queue.consumer_scheduling, "normal") != 0;
	if (cfg->queue.enabled) {
		if (cfg->queue.queue_size < 1 || cfg->queue.queue_size > (1u << 24)) {
			kn_errf(err, "exporters.%s.sending_queue.queue_size: must be in [1, 16777216], got %" PRIu64,
				s->id, cfg->queue.queue_size);
			goto fail;
		}
		s->bound = cfg->queue.queue_size;
	} else {
		s->bound = s->nconsumers; /* one batch in hand per consumer */
	}
	if (cfg->retry.enabled && (cfg->retry.multiplier < 1.0 || cfg->retry.randomization_factor < 0 ||
				   cfg->retry.randomization_factor > 1)) {
		kn_errf(err, "exporters.%s.retry_on_failure: multiplier must be >= 1 and "
			"randomization_factor in [0, 1]", s->id);
		goto fail;
	}
	unsigned size = 4;
	while (size < s->bound + 1)
		size <<= 1;
	s->buf = calloc(size, sizeof *s->buf);
	s->cons = calloc(s->nconsumers, sizeof *s->cons);
	s->threads = calloc(s->nconsumers, sizeof *s->threads);
	if (!s->buf || !s->cons || !s->threads) {
		kn_errf(err, "exporters.%s: out of memory for the sending queue", s->id);
		goto fail;
	}
	ck_ring_init(&s->ring, size);

	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, &ca);
	pthread_cond_init(&s->cv_stop, &ca);
	pthread_condattr_destroy(&ca);
	s->sync_ok = 1;

	if (!m) {
		m = s->own_metrics = kn_metrics_create();
		if (!m) {
			kn_errf(err, "exporters.%s: out of memory", s->id);
			goto fail;
		}
	}
	s->metrics = m;
	s->window = WINDOW_PER_CONSUMER * (uint64_t)s->nconsumers;
	if (s->window < WINDOW_MIN)
		s->window = WINDOW_MIN;
	if (s->window > s->bound)
		s->window = s->bound;
	register_metrics(s, m);
	return s;
fail:
	kn_sender_destroy(s);
	return NULL;
}

/* Sleeps until `until` (monotonic). Returns 0 if shutdown's deadline comes
 * first (the caller drops the batch), or at once on shutdown for a batch
 * that is on disk (`stored`: it waits there for the next start); 1 otherwise. */
static int backoff_wait(struct kn_sender *s, uint64_t until, int stored)
{
	int ok = 1;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (atomic_load(&s->stopping) && (stored || atomic_load(&s->deadline_ns) < until)) {
			ok = 0;
			break;
		}
		if (kn_now_ns() >= until)
			break;
		struct timespec ts = {.tv_sec = (time_t)(until / KN_NS_PER_SEC),
				      .tv_nsec = (long)(until % KN_NS_PER_SEC)};
		pthread_cond_timedwait(&s->cv_stop, &s->mu, &ts);
	}
	pthread_mutex_unlock(&s->mu);
	return ok;
}

static uint64_t rng_next(uint64_t *st)
{
	/* xorshift64*: jitter only, no quality needed beyond uniformity. */
	uint64_t x = *st;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*st = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t backoff_delay(const struct kn_sender_retry_cfg *r, unsigned attempt, uint64_t *rng)
{
	double iv = (double)r->initial_interval_ns;
	for (unsigned i = 1; i < attempt && iv < (double)r->max_interval_ns; i++)
		iv *= r->multiplier;
	if (r->max_interval_ns && iv > (double)r->max_interval_ns)
		iv = (double)r->max_interval_ns;
	double u = (double)(rng_next(rng) >> 11) / (double)(1ull << 53); /* [0, 1) */
	double d = iv * (1.0 + r->randomization_factor * (2.0 * u - 1.0));
	return d < 0 ? 0 : (uint64_t)d;
}

static void deliver(struct kn_sender *s, struct kn_batch *b, uint64_t *rng)
{
	uint64_t start = kn_now_ns();
	unsigned attempt = 0;
	for (;;) {
		uint64_t now = kn_now_ns();
		uint64_t dl = s->cfg.timeout_ns ? now + s->cfg.timeout_ns : UINT64_MAX;
		if (atomic_load(&s->stopping)) {
			uint64_t sd = atomic_load(&s->deadline_ns);
			if (now >= sd || (s->sq && b->tag)) { /* on disk: it waits there */
				drop(s, b, DROP_SHUTDOWN);
				return;
			}
			if (sd < dl)
				dl = sd;
		}
		uint64_t retry_after = 0;
		struct kn_err err;
		err.msg[0] = '\0';
		int rc = s->send(s->send_ctx, b, dl, &retry_after, &err);
		if (rc == KN_OK) {
			uint64_t id = b->tag;
			kn_counter_add(s->sent_reqs, 1);
			kn_counter_add(s->sent_spans, b->nspans);
			kn_batch_free(b);
			finish(s, id);
			return;
		}
		kn_counter_add(s->failed, 1);
		if (rc == KN_AGAIN && atomic_load(&s->reclaiming)) {
			drop(s, b, DROP_SHUTDOWN); /* handed back, not dropped */
			return;
		}
		if (rc != KN_AGAIN) {
			if (log_allowed(s))
				kn_warn("exporter %s: dropping %" PRIu32 " spans: permanent error: %s", s->id,
					b->nspans, err.msg);
			drop(s, b, DROP_PERMANENT);
			return;
		}
		if (!s->cfg.retry.enabled) {
			if (log_allowed(s))
				kn_warn("exporter %s: dropping %" PRIu32 " spans (retry_on_failure disabled): %s",
					s->id, b->nspans, err.msg);
			drop(s, b, DROP_RETRIES);
			return;
		}
		attempt++;
		uint64_t delay = backoff_delay(&s->cfg.retry, attempt, rng);
		if (retry_after > delay)
			delay = retry_after;
		now = kn_now_ns();
		if (s->cfg.retry.max_elapsed_time_ns && now + delay - start > s->cfg.retry.max_elapsed_time_ns) {
			if (log_allowed(s))
				kn_warn("exporter %s: dropping %" PRIu32 " spans after %u attempts "
					"(retry_on_failure.max_elapsed_time reached): %s",
					s->id, b->nspans, attempt, err.msg);
			drop(s, b, DROP_RETRIES);
			return;
		}
		if (s->hook)
			s->hook(s->hook_ctx, attempt, delay);
		if (log_allowed(s))
			kn_warn("exporter %s: retrying in %" PRIu64 " ms: %s", s->id, (uint64_t)(delay / KN_NS_PER_MS),
				err.msg);
		if (!backoff_wait(s, now + delay, s->sq && b->tag)) {
			drop(s, b, DROP_SHUTDOWN);
			return;
		}
		kn_counter_add(s->retries, 1);
	}
}

static int ring_empty(struct kn_sender *s)
{
	return ck_ring_size(&s->ring) == 0 && (!s->sq || s->st->unread(s->sq) == 0);
}

/* The next record that is only on disk, or NULL. */
static struct kn_batch *take_stored(struct kn_sender *s)
{
	struct kn_batch *b;
	uint64_t id;
	struct kn_squeue_info sk;
	int rc = s->st->next(s->sq, &b, &id, &sk);
	if (sk.batches) { /* damaged on disk: counted by the storage, gone */
		kn_gauge_add(s->q_batches, -(int64_t)sk.batches);
		kn_gauge_add(s->q_bytes, -(int64_t)sk.bytes);
		atomic_fetch_sub(&s->pend, sk.batches);
		update_bp(s);
	}
	if (rc != KN_OK)
		return NULL;
	b->tag = id;
	kn_gauge_add(s->q_batches, -1);
	kn_gauge_add(s->q_bytes, -(int64_t)b->bytes);
	return b;
}

/* The next batch, or NULL when the consumer should exit. */
static struct kn_batch *take(struct kn_sender *s)
{
	for (;;) {
		if (atomic_load(&s->stopping) && kn_now_ns() >= atomic_load(&s->deadline_ns))
			return NULL;
		if (atomic_load(&s->reclaiming))
			return NULL; /* the queue goes back to the owner, not out */
		if (s->sq && atomic_load(&s->stopping))
			return NULL; /* persistent: what is queued is on disk (or kept by shutdown) */
		struct kn_batch *b;
		if (ck_ring_dequeue_mpmc(&s->ring, s->buf, &b)) {
			atomic_fetch_sub(&s->queued, 1);
			atomic_fetch_sub(&s->mem_bytes, b->bytes);
			kn_gauge_add(s->q_batches, -1);
			kn_gauge_add(s->q_bytes, -(int64_t)b->bytes);
			return b;
		}
		if (s->sq && s->st->unread(s->sq) > 0) {
			if ((b = take_stored(s)) != NULL)
				return b;
			continue; /* another consumer took it, or it was damaged */
		}
		if (atomic_load(&s->stopping))
			return NULL;
		pthread_mutex_lock(&s->mu);
		atomic_fetch_add(&s->sleepers, 1);
		while (ring_empty(s) && !atomic_load(&s->stopping))
			pthread_cond_wait(&s->cv, &s->mu);
		atomic_fetch_sub(&s->sleepers, 1);
		pthread_mutex_unlock(&s->mu);
	}
}

/* SCHED_BATCH for the calling consumer thread (see kn_sender.h). */
static void consumer_sched(struct kn_sender *s)
{
	if (!s->sched_batch)
		return;
	struct sched_param sp = {.sched_priority = 0};
	int e = pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	if (e != 0 && !atomic_exchange(&s->sched_warned, 1))
		kn_warn("exporters.%s.sending_queue.consumer_scheduling: SCHED_BATCH refused (%s); "
			"the consumer threads run with the default policy", s->id, strerror(e));
}

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;
	struct kn_sender *s = c->s;
	consumer_sched(s);
	tl_consumer = (int)c->idx;
	uint64_t rng = (kn_now_ns() ^ ((uint64_t)(c->idx + 1) * 0x9E3779B97F4A7C15ull)) | 1;
	struct kn_batch *b;
	while ((b = take(s)) != NULL)
		deliver(s, b, &rng);
	tl_consumer = -1;
	return NULL;
}

int kn_sender_start(struct kn_sender *s, struct kn_err *err)
{
	if (s->started || s->shut)
		return kn_errf(err, "exporters.%s: sender started twice or after shutdown", s->id);
	s->started = 1;
	if (s->st) {
		struct kn_squeue_info info;
		if (s->st->open(s->st_inst, s->id, s->metrics, &s->sq, &info, err) != KN_OK)
			return kn_err_prefix(err, "exporters.%s.sending_queue.storage: ", s->id);
		atomic_store(&s->pend, info.batches);
		kn_gauge_add(s->q_batches, (int64_t)info.batches);
		kn_gauge_add(s->q_bytes, (int64_t)info.bytes);
		kn_counter_add(s->m_replayed_b, info.batches);
		kn_counter_add(s->m_replayed_s, info.spans);
		if (info.batches)
			kn_info("exporter %s: %" PRIu64 " batches (%" PRIu64 " spans) found in the persistent "
				"queue; they are sent first", s->id, info.batches, info.spans);
		update_bp(s);
	}
	for (unsigned i = 0; i < s->nconsumers; i++) {
		s->cons[i].s = s;
		s->cons[i].idx = i;
		int e = pthread_create(&s->threads[i], NULL, consumer_main, &s->cons[i]);
		if (e != 0)
			return kn_errf(err, "exporters.%s: cannot start consumer thread: %s", s->id,
				       strerror(e));
		s->nthreads++;
	}
	return KN_OK;
}

static void wake_one(struct kn_sender *s)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&s->sleepers) > 0) {
		pthread_mutex_lock(&s->mu);
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
}

/* Persistent queue: on disk first, then in the ring or only on disk. */
static int enqueue_stored(struct kn_sender *s, struct kn_batch *b)
{
	size_t bytes = b->bytes;
	int held = s->st->unread(s->sq) == 0 && atomic_load(&s->queued) < s->window &&
		   atomic_load(&s->mem_bytes) + bytes <= WINDOW_BYTES;
	uint64_t id = 0;
	struct kn_err err;
	err.msg[0] = '\0';
	int rc = s->st->append(s->sq, b, held, &id, &err);
	atomic_fetch_add(&s->pend, 1);
	kn_gauge_add(s->q_batches, 1);
	kn_gauge_add(s->q_bytes, (int64_t)bytes);
	if (rc == KN_OK)
		kn_counter_add(s->m_persisted, b->nspans);
	if (rc == KN_OK && !held) {
		kn_counter_add(s->m_spilled, 1);
		kn_batch_free(b);
	} else {
		if (rc != KN_OK) {
			/* Acknowledged spans are not dropped: kept in memory (the
			 * memory budget bounds them), receivers refuse for a while. */
			kn_bp_hold_until(kn_now_ns() + DISK_FULL_HOLD_NS);
			if (log_allowed(s))
				kn_warn("exporter %s: persistent queue: %s; the batch stays in memory and "
					"receivers refuse for 1 s", s->id, err.msg);
			id = 0;
		}
		b->tag = id;
		if (atomic_fetch_add(&s->queued, 1) >= s->bound ||
		    !ck_ring_enqueue_mpmc(&s->ring, s->buf, b)) {
			atomic_fetch_sub(&s->queued, 1);
			kn_gauge_add(s->q_batches, -1);
			kn_gauge_add(s->q_bytes, -(int64_t)bytes);
			drop(s, b, DROP_QUEUE_FULL); /* the ring holds queue_size batches: not reached */
			atomic_fetch_sub(&s->producers, 1);
			return KN_DROP;
		}
		atomic_fetch_add(&s->mem_bytes, bytes);
	}
	update_bp(s);
	wake_one(s);
	atomic_fetch_sub(&s->producers, 1);
	return KN_OK;
}

int kn_sender_enqueue(struct kn_sender *s, struct kn_batch *b)
{
	atomic_fetch_add(&s->producers, 1);
	if (atomic_load(&s->stopping)) {
		atomic_fetch_sub(&s->producers, 1);
		if (s->sq) {
			b->tag = 0;
			atomic_fetch_add(&s->pend, 1); /* finish() balances it if dropped */
		}
		drop(s, b, DROP_SHUTDOWN);
		return KN_DROP;
	}
	if (s->sq)
		return enqueue_stored(s, b);
	if (atomic_fetch_add(&s->queued, 1) >= s->bound) {
		atomic_fetch_sub(&s->queued, 1);
		atomic_fetch_sub(&s->producers, 1);
		drop(s, b, DROP_QUEUE_FULL);
		return KN_DROP;
	}
	size_t bytes = b->bytes;
	if (!ck_ring_enqueue_mpmc(&s->ring, s->buf, b)) {
		/* Cannot happen: the ring holds more than `bound`. Count it anyway. */
		atomic_fetch_sub(&s->queued, 1);
		atomic_fetch_sub(&s->producers, 1);
		drop(s, b, DROP_QUEUE_FULL);
		return KN_DROP;
	}
	kn_gauge_add(s->q_batches, 1);
	kn_gauge_add(s->q_bytes, (int64_t)bytes);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&s->sleepers) > 0) {
		pthread_mutex_lock(&s->mu);
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	atomic_fetch_sub(&s->producers, 1);
	return KN_OK;
}

void kn_sender_shutdown(struct kn_sender *s, uint64_t deadline_ns)
{
	if (!s || s->shut)
		return;
	s->shut = 1;
	atomic_store(&s->deadline_ns, deadline_ns);
	atomic_store(&s->stopping, 1);
	while (atomic_load(&s->producers) > 0)
		sched_yield(); /* a producer past the stopping check finishes its enqueue */
	if (s->sync_ok) {
		pthread_mutex_lock(&s->mu);
		pthread_cond_broadcast(&s->cv);
		pthread_cond_broadcast(&s->cv_stop);
		pthread_mutex_unlock(&s->mu);
	}
	for (unsigned i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	s->nthreads = 0;
	struct kn_batch *b;
	if (s->buf) {
		while (ck_ring_dequeue_mpmc(&s->ring, s->buf, &b)) {
			atomic_fetch_sub(&s->queued, 1);
			atomic_fetch_sub(&s->mem_bytes, b->bytes);
			kn_gauge_add(s->q_batches, -1);
			kn_gauge_add(s->q_bytes, -(int64_t)b->bytes);
			drop(s, b, DROP_SHUTDOWN);
		}
	}
	if (s->sq) {
		uint64_t n = atomic_load(&s->left_on_disk) + s->st->unread(s->sq);
		if (n && !atomic_load(&s->reclaiming))
			kn_info("exporter %s: about %" PRIu64 " batches stay in the persistent queue for the "
				"next start", s->id, n);
		kn_bp_clear(&s->bp);
		kn_gauge_set(s->m_full, 0);
	}
}

unsigned kn_sender_reclaim(struct kn_sender *s, kn_sender_reclaim_fn fn, void *ctx)
{
	if (!s || s->shut || !fn)
		return 0;
	s->reclaim_fn = fn;
	s->reclaim_ctx = ctx;
	atomic_store(&s->reclaiming, 1);
	/* Shutdown with no deadline: consumers stop taking new batches (take()
	 * sees `reclaiming`), a backoff wait ends at once (its `until` is past
	 * the deadline 0), and drop() hands every batch back. */
	kn_sender_shutdown(s, 0);
	return atomic_load(&s->reclaimed);
}

void kn_sender_destroy(struct kn_sender *s)
{
	if (!s)
		return;
	if (s->sync_ok && s->dropped[0])
		kn_sender_shutdown(s, 0);
	if (s->sync_ok) {
		pthread_cond_destroy(&s->cv);
		pthread_cond_destroy(&s->cv_stop);
		pthread_mutex_destroy(&s->mu);
	}
	if (s->sq)
		s->st->close(s->sq);
	kn_bp_clear(&s->bp);
	kn_metrics_destroy(s->own_metrics);
	free(s->buf);
	free(s->cons);
	free(s->threads);
	free(s->id);
	free(s);
}
