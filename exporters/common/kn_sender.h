/* SPDX-License-Identifier: Apache-2.0
 * kn_sender: what every exporter shares: a bounded queue of batches fed by
 * the shard workers (Concurrency Kit MPSC ring; no lock on the enqueue path),
 * `num_consumers` sending threads, retries with exponential backoff and
 * randomised jitter on retryable failures (honouring a server's Retry-After / RetryInfo),
 * and counters for what was sent, retried, failed and dropped, by reason.
 *
 * Config follows the OpenTelemetry Collector's exporterhelper:
 *   timeout: 5s
 *   sending_queue: { enabled: true, num_consumers: 0, queue_size: 65536 }  # batches
 * num_consumers is 10 in the OpenTelemetry Collector; here 0 means auto:
 * max(4, CPUs of the process), at most 64 (kn_sender_auto_consumers). A batch
 * already holds many requests' spans (shards batch before export) and each
 * consumer holds one request in flight, so 4 keep a remote collector busy on
 * a small machine; on a large one a consumer also compresses its batch
 * (gzip, zstd), so compression scales with the cores only when there is
 * about one consumer per core. Idle consumers sleep on a condition variable.
 *   retry_on_failure: { enabled: true, initial_interval: 5s, max_interval: 30s,
 *                       max_elapsed_time: 300s, multiplier: 1.5, randomization_factor: 0.5 }
 * With sending_queue disabled, enqueue still hands the batch to a consumer
 * thread (queue of 1 per consumer) so shard workers never block on I/O.
 *
 * Persistent queue (`sending_queue.storage: <id of a file_storage extension>`,
 * through kn_storage.h; otlp, otlphttp and the loadbalancing endpoints):
 *  - enqueue appends the batch to the queue's log before it returns, on the
 *    shard worker (one write per batch; batches are large), so a batch is on
 *    disk before the exporter's first try; the record is marked done after
 *    the server accepted it or it was dropped (permanent error, retries
 *    exhausted: counted as before). A batch is also kept in memory (the
 *    ring) while fewer than a window of batches (4 per consumer, at least 8,
 *    and 16 MiB) wait there and nothing waits on disk; otherwise it is
 *    released and read back from disk when a consumer is free. Consumers take
 *    from memory first, then from disk, so the queue stays first in first
 *    out, and records found on disk at start go out before anything new.
 *  - bounds: queue_size counts batches not yet finished (on disk or in
 *    memory), and sending_queue.max_bytes (kansatsu's own key; 0 = none)
 *    the bytes of the queue's files. Past either the sender raises an
 *    exporter backpressure source (kn_backpressure.h): receivers refuse
 *    (retryable) until it is below again. The bounds are soft: what was
 *    acknowledged before receivers saw the flag still arrives and is
 *    appended, so they may be passed by what the pipeline holds.
 *  - a failed append (disk full, quota, file size limit, I/O error) never
 *    drops the batch: it stays in memory (charged to the memory budget,
 *    which bounds it) and is sent from there, without a disk copy; receivers
 *    refuse for one second (a backpressure pulse), after which the next
 *    append probes the disk again. At shutdown such a batch gets one more
 *    append try before it is counted as dropped.
 *  - shutdown does not send what is on disk: consumers finish the attempt in
 *    flight and stop; batches on disk stay for the next start (a batch whose
 *    attempt was interrupted is sent again: at least once).
 *  - the load-balancing exporter takes back a removed endpoint's batches as
 *    before (kn_sender_reclaim), and marks their records done once they are
 *    routed again; what was only on disk stays in that endpoint's queue, which
 *    the exporter reads and routes again (kn_exporter_loadbalancing.h).
 * Metrics with a persistent queue: kansatsu_exporter_queue_batches/_bytes
 * count batches waiting in memory and on disk; kansatsu_exporter_queue_disk_bytes,
 * _disk_batches (gauges), _replayed_batches_total / _replayed_spans_total
 * (found on disk at start), _spilled_batches_total (kept on disk only),
 * _persisted_spans_total (written to disk),
 * _skipped_records_total{reason}, _append_failures_total{reason},
 * kansatsu_exporter_queue_full (gauge, 1 while receivers refuse for it).
 *
 * Scheduling (`sending_queue.consumer_scheduling`, kansatsu's own): the
 * consumer threads run under Linux's SCHED_BATCH policy by default ("batch").
 * They wake several times per request (the queue, then libgrpc's or
 * libcurl's completions); under the default policy each wake-up preempts
 * the receiver or shard thread running on that core, so every request costs
 * extra context switches where the pipeline shares cores. SCHED_BATCH keeps
 * the same fair share of CPU and the same nice value; its wake-ups only do
 * not preempt. Measured on one core: otlp passthrough +10% spans per core,
 * latency at half load unchanged (bench/results/2core-vm-sched.md).
 * "normal" leaves the threads as created. If the kernel refuses the policy
 * (a seccomp filter), the consumers log it once and run as created.
 *
 * Metrics (labels exporter="<id>"):
 *   kansatsu_exporter_sent_spans_total, kansatsu_exporter_sent_requests_total,
 *   kansatsu_exporter_retries_total, kansatsu_exporter_failed_requests_total,
 *   kansatsu_exporter_dropped_spans_total{reason="queue_full"|"retries_exhausted"|"permanent_error"|"shutdown"|"rejected_by_server"},
 *   kansatsu_exporter_queue_batches, kansatsu_exporter_queue_bytes (gauges).
 * sent_* count batches the server accepted (all their spans, even those a
 * partial success then rejected: those are also counted as dropped with
 * reason rejected_by_server). retries_total counts attempts after the first;
 * failed_requests_total counts every attempt that failed (retryable or not).
 *
 * Backoff: the n-th retry waits initial_interval * multiplier^n, capped at
 * max_interval, randomised uniformly within +-randomization_factor of itself;
 * a server's retry-after raises the wait to at least that value. A batch is
 * dropped (retries_exhausted) when the next attempt would start later than
 * max_elapsed_time after the first one.
 *
 * Threads: enqueue is lock-free (a ck_ring plus an atomic count for the
 * bound); a producer takes the wake mutex only when a consumer sleeps.
 * Failure logs are rate-limited to one line per second per exporter. */
#ifndef KN_SENDER_H
#define KN_SENDER_H

#include <stdint.h>

#include "../../collector/core/kn_batch.h"
#include "../../collector/core/kn_err.h"
#include "../../collector/config/kn_config.h"

struct kn_metrics;

struct kn_sender_queue_cfg {
	int enabled;
	uint64_t num_consumers;
	uint64_t queue_size;          /* batches */
	char *storage;                /* id of a storage extension, or NULL (in memory) */
	uint64_t max_bytes;           /* with storage: bytes on disk past which receivers refuse; 0 = none */
	char *consumer_scheduling;    /* "batch" (NULL: the same) or "normal"; see above */
};

struct kn_sender_retry_cfg {
	int enabled;
	uint64_t initial_interval_ns;
	uint64_t max_interval_ns;
	uint64_t max_elapsed_time_ns; /* 0 = retry until shutdown */
	double multiplier;
	double randomization_factor;
};

struct kn_sender_cfg {
	uint64_t timeout_ns;          /* per attempt; 0 = no limit (send gets deadline_ns UINT64_MAX) */
	struct kn_sender_queue_cfg queue;
	struct kn_sender_retry_cfg retry;
};

/* Config table fragments for an exporter's own table:
 *   {.key = "timeout", .type = KN_F_DURATION, .off = offsetof(cfg, sender.timeout_ns), .def = "5s"},
 *   {.key = "sending_queue", .type = KN_F_SUB, .off = offsetof(cfg, sender.queue),
 *    .sub = kn_sender_queue_fields},
 *   {.key = "retry_on_failure", .type = KN_F_SUB, .off = offsetof(cfg, sender.retry),
 *    .sub = kn_sender_retry_fields}, */
extern const struct kn_cfg_field kn_sender_queue_fields[];
extern const struct kn_cfg_field kn_sender_retry_fields[];

/* Sends one batch, once, before deadline_ns. Returns KN_OK, KN_AGAIN (a
 * retryable failure; set *retry_after_ns when the server said how long), or
 * KN_ERR (permanent: the batch is dropped and counted). Called from consumer
 * threads, concurrently when num_consumers > 1. */
typedef int (*kn_send_fn)(void *ctx, const struct kn_batch *b, uint64_t deadline_ns,
			  uint64_t *retry_after_ns, struct kn_err *err);

struct kn_sender;
struct kn_component_ctx;
struct kn_storage_ops;

/* An in-memory sender; sending_queue.storage set is an error (an exporter
 * without a persistent queue). */
struct kn_sender *kn_sender_create(const char *exporter_id, const struct kn_sender_cfg *cfg,
				   kn_send_fn send, void *send_ctx, struct kn_metrics *m,
				   struct kn_err *err);
/* The exporter's sender, named by ctx->id, metrics in ctx->metrics; with
 * sending_queue.storage, the storage extension is found through ctx->rt
 * (errors name exporters.<id>.sending_queue.storage). */
struct kn_sender *kn_sender_create_ctx(const struct kn_component_ctx *ctx,
				       const struct kn_sender_cfg *cfg, kn_send_fn send,
				       void *send_ctx, struct kn_err *err);
/* The same with the storage given (NULL: in memory); for tests and for
 * exporters that resolved the extension themselves. */
struct kn_sender *kn_sender_create_with(const char *exporter_id, const struct kn_sender_cfg *cfg,
					kn_send_fn send, void *send_ctx, struct kn_metrics *m,
					const struct kn_storage_ops *storage, void *storage_inst,
					struct kn_err *err);
/* Cross-field checks of a sending_queue block at `path` ("exporters.x.sending_queue"). */
int kn_sender_queue_check(const struct kn_sender_queue_cfg *q, const char *path, struct kn_err *err);
int kn_sender_start(struct kn_sender *s, struct kn_err *err);
/* Takes ownership of b. KN_OK (queued) or KN_DROP (queue full or shut down: counted, freed). */
int kn_sender_enqueue(struct kn_sender *s, struct kn_batch *b);
/* Stops intake, sends what is queued until deadline_ns (retrying only while
 * time remains), then drops the rest (counted, reason "shutdown") and joins.
 * With a persistent queue, only the attempts in flight are finished and
 * what is on disk stays there (see above). Safe twice and before start. */
void kn_sender_shutdown(struct kn_sender *s, uint64_t deadline_ns);
void kn_sender_destroy(struct kn_sender *s);

/* Takes back instead of sending or dropping (the load-balancing exporter,
 * when an endpoint leaves its ring): stops intake like shutdown, then hands
 * every batch the sender still holds to fn (which takes ownership) instead
 * of sending it: the queued ones, and those a consumer holds after a failed
 * attempt or while it waits to retry (that wait is cut short). An attempt
 * already in flight is not interrupted: it ends by itself (the sender's
 * `timeout` bounds it; with timeout 0 it may take as long as the server
 * does); if it succeeds the batch counts as sent, otherwise it goes to fn.
 * fn runs on the calling thread and on consumer threads (possibly
 * concurrently), never under a sender lock. Joins the consumers and leaves
 * the sender shut down (kn_sender_shutdown then does nothing); a no-op after
 * shutdown. Returns the number of batches handed to fn. */
typedef void (*kn_sender_reclaim_fn)(void *ctx, struct kn_batch *b);
unsigned kn_sender_reclaim(struct kn_sender *s, kn_sender_reclaim_fn fn, void *ctx);

/* The consumers num_consumers 0 stands for: max(4, kn_cpus()), at most 64. */
unsigned kn_sender_auto_consumers(void);
/* Number of consumer threads (fixed at create). */
unsigned kn_sender_consumers(const struct kn_sender *s);
/* Inside a send function: the calling consumer's index in
 * [0, kn_sender_consumers), so an exporter can keep one connection / queue
 * per consumer without locks. -1 outside consumer threads. */
int kn_sender_consumer_index(void);
/* Counts spans a server reported as rejected (partial success). */
void kn_sender_count_rejected(struct kn_sender *s, uint64_t nspans);

/* A warning line naming the exporter, rate-limited together with the
 * sender's own failure lines (one per second per exporter). */
void kn_sender_warn(struct kn_sender *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Test hook: called by a consumer before each backoff wait with the attempt
 * number (1 = the wait before the first retry) and the computed delay. */
typedef void (*kn_sender_retry_hook)(void *ctx, unsigned attempt, uint64_t delay_ns);
void kn_sender_set_retry_hook(struct kn_sender *s, kn_sender_retry_hook fn, void *ctx);

#endif
