/* SPDX-License-Identifier: Apache-2.0
 * kn_drain: how fast the memory budget drains, and the retry delay a
 * refusal advertises from it (gRPC RetryInfo, HTTP Retry-After).
 *
 * Why: a refused client waits for the delay it is told. A fixed 1 s left the
 * connections idle while the pipeline drained its whole budget in ~150 ms
 * (3x overload on 2 cores: goodput 33% of the unloaded maximum; 80% now). The
 * delay now follows the drain:
 *
 *   delay = clamp(max(used + need - limit, 0) / rate, KN_RETRY_MIN_NS, KN_RETRY_MAX_NS)
 *           then +-25% jitter (clamped again)
 *
 * `need` is what the refused request would charge, `used` what the budget
 * holds, `rate` the drain estimate below: the time until the request fits.
 * While the pipeline drains fast that is the floor: refused clients come
 * back within a few milliseconds, spread by the jitter, and the budget, so
 * the exporters, never run dry (the budget holds ~150 ms of work at 64 MiB
 * on 2 cores). Limit 0 (a full ring with an unlimited budget): the floor.
 * Two ways of making refused clients wait longer, to be refused less often,
 * measured worse under 3x overload on 2 cores (bench/results/2core-vm-
 * throttling.md): waiting for half the backlog to drain (a sawtooth: the
 * collector sat idle while the budget drained, receiving and exporting no
 * longer overlapped), and appointments one request's drain apart after the
 * clients refused before (clients refused again and again pushed the queue
 * ahead faster than it drained, to the cap).
 *
 * No estimate yet, or nothing draining (a backend that is down): the cap.
 * The floor (5 ms) bounds how often a client that is refused again and
 * again resends its whole body (libgrpc receives it before we can refuse);
 * the cap (5 s, the OpenTelemetry Collector exporters' initial retry
 * interval) is short enough that no client's retry budget runs out while
 * it waits, long enough to cost nothing while a backend is down.
 *
 * The estimate: every release adds to `released` (one relaxed atomic add);
 * at most every KN_DRAIN_PERIOD_NS someone (a releasing thread, or a
 * refusing one) wins a CAS on fold_ns and folds the bytes released since the
 * last fold into an EWMA with time constant KN_DRAIN_TAU_NS
 * (alpha = dt / (dt + tau)). A sample below the estimate counts only while
 * the budget holds a backlog (used >= limit / 4): otherwise the pipeline
 * drained all it was given, and the sample is the input rate, not what it
 * could drain. Lock-free, no per-thread state; any thread.
 *
 * Time is passed in (kn_now_ns in production), so unit tests drive it with a
 * synthetic clock. */
#ifndef KN_DRAIN_H
#define KN_DRAIN_H

#include <stdatomic.h>
#include <stdint.h>

#define KN_DRAIN_PERIOD_NS (10ull * 1000000ull)   /* fold at most every 10 ms */
#define KN_DRAIN_TAU_NS (100ull * 1000000ull)     /* EWMA time constant */
#define KN_RETRY_MIN_NS (5ull * 1000000ull)       /* floor: 5 ms */
#define KN_RETRY_MAX_NS (5ull * 1000000000ull)    /* cap: 5 s */

struct kn_drain {
	_Atomic uint64_t released;      /* bytes released in all */
	_Atomic uint64_t fold_ns;       /* time of the last fold; 0 = none yet */
	_Atomic uint64_t fold_released; /* `released` at the last fold */
	_Atomic uint64_t rate;          /* estimate, bytes per second; 0 = none */
	_Atomic uint64_t advertised_ns; /* base delay of the latest refusal (gauge) */
};

/* Zeroes the estimate (a static struct is already zero). */
void kn_drain_reset(struct kn_drain *d);

/* `bytes` left the budget at now_ns; `backlogged`: used >= limit / 4 after
 * the release. Folds when a period has passed since the last fold. */
void kn_drain_release(struct kn_drain *d, uint64_t bytes, uint64_t now_ns, int backlogged);

/* Folds what was released since the last fold when a period has passed. */
void kn_drain_fold(struct kn_drain *d, uint64_t now_ns, int backlogged);

/* The estimate in bytes per second (0: none yet). */
uint64_t kn_drain_rate(const struct kn_drain *d);

/* The delay before jitter for a request of `need` bytes refused with `used`
 * of `limit` charged (limit 0 = unlimited), clamped to [KN_RETRY_MIN_NS,
 * KN_RETRY_MAX_NS]. Pure: reads the estimate. */
uint64_t kn_drain_delay_ns(const struct kn_drain *d, uint64_t used, uint64_t limit, uint64_t need);

/* base * [0.75, 1.25) from the caller's PRNG state (splitmix64), clamped to
 * [KN_RETRY_MIN_NS, KN_RETRY_MAX_NS]. */
uint64_t kn_drain_jitter(uint64_t base_ns, uint64_t *rng);

/* The whole refusal: fold (backlogged = used >= limit / 4), delay, jitter;
 * records the base delay as advertised. Returns nanoseconds. */
uint64_t kn_drain_refusal_ns(struct kn_drain *d, uint64_t used, uint64_t limit, uint64_t need,
			     uint64_t now_ns, uint64_t *rng);

#endif
