/* SPDX-License-Identifier: Apache-2.0
 * kn_backpressure: how an exporter tells the receivers "do not acknowledge
 * more now", besides the memory budget (kn_budget.h). A persistent sending
 * queue that is full (sending_queue.queue_size batches, max_bytes on disk)
 * or whose disk refused a write must not drop spans the receivers already
 * acknowledged; it makes receivers refuse new requests instead, with a
 * retryable answer (503 + Retry-After / UNAVAILABLE + RetryInfo), exactly as
 * for the memory budget. kn_ingest checks this before it acknowledges.
 *
 * Two kinds of signal:
 *  - a level: a source (one per queue, owned by the exporter) is raised while
 *    its condition holds and cleared when it no longer does; receivers
 *    refuse while any source is raised;
 *  - a pulse: refuse until a given time (a disk that returned ENOSPC: after
 *    the pulse the next write probes whether there is room again).
 *
 * Global, like the memory budget: one full queue makes every receiver
 * refuse, also for pipelines that do not feed that exporter (collector/ does
 * not know which exporters a receiver's spans reach). Lock-free: one atomic
 * counter of raised sources and one atomic deadline; the receivers' check
 * is two relaxed loads. */
#ifndef KN_BACKPRESSURE_H
#define KN_BACKPRESSURE_H

#include <stdatomic.h>
#include <stdint.h>

struct kn_bp_source {
	atomic_int raised; /* 0 or 1; zero-initialised = cleared */
};

/* Level: idempotent; only transitions touch the global count. Any thread. */
void kn_bp_raise(struct kn_bp_source *s);
void kn_bp_clear(struct kn_bp_source *s);
static inline int kn_bp_is_raised(struct kn_bp_source *s)
{
	return atomic_load_explicit(&s->raised, memory_order_relaxed);
}

/* Pulse: receivers refuse until now_ns (kn_now_ns clock) passes until_ns;
 * a later deadline extends an earlier one, never shortens it. */
void kn_bp_hold_until(uint64_t until_ns);

/* 1 when receivers must refuse. now_ns is read only when a pulse is set. */
int kn_bp_active(void);

/* For tests: clears every source count and the pulse. */
void kn_bp_reset(void);

#endif
