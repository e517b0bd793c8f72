/* SPDX-License-Identifier: Apache-2.0
 * kn_budget: the global memory budget for accepted spans. Receivers charge a
 * chunk's bytes before acknowledging; the last unref of the chunk releases
 * them. When a charge would pass the limit the receiver refuses the request
 * with a retryable error instead. Lock-free: one atomic counter.
 *
 * What kansatsu.memory_limit_mib means: the whole process's resident memory,
 * as a container limit counts it. The span budget is what is left of it once
 * the process's own base (code, libraries, thread stacks, libgrpc's state:
 * measured as the RSS right after start) and a headroom for memory outside
 * the budget (request bodies being read and decompressed, libgrpc's transport
 * buffers, allocator slack, the chunk pool) are set aside:
 * kn_budget_for_process() computes it, kn_runtime applies it. */
#ifndef KN_BUDGET_H
#define KN_BUDGET_H

#include <stddef.h>
#include <stdint.h>

/* limit 0 means unlimited. Resets the used count; call before threads run. */
void kn_budget_init(size_t limit_bytes);

/* Changes the limit without touching what is charged (0 = unlimited); safe
 * while receivers run. A lower limit only makes later charges fail. */
void kn_budget_set_limit(size_t limit_bytes);

/* Returns 1 and charges `bytes` if they fit under the limit, else 0. */
int kn_budget_try_charge(size_t bytes);

void kn_budget_release(size_t bytes);

size_t kn_budget_used(void);
size_t kn_budget_limit(void);

/* A second counter, for request bodies the HTTP receiver holds before
 * ingest (wire buffers by capacity, inflated bodies while handled). It is
 * carved out of the headroom, not the span budget (kn_runtime sets it to
 * half the headroom), so many large uploads at once are refused with a
 * retryable 503 instead of growing the process past its limit, and the
 * span budget keeps its meaning. Limit 0 = unlimited (the default, and in
 * tests that do not set it). */
void kn_budget_req_set_limit(size_t limit_bytes);
/* As kn_budget_try_charge, except that it also succeeds past the limit when
 * everything charged is the caller's own (`own` bytes): one request alone is
 * always admitted, so a body larger than the limit is delayed, not refused
 * for ever. */
int kn_budget_req_try_charge(size_t bytes, size_t own);
void kn_budget_req_release(size_t bytes);
size_t kn_budget_req_used(void);
size_t kn_budget_req_limit(void);

/* How a process limit splits (all in bytes). */
struct kn_budget_split {
	size_t limit;     /* kansatsu.memory_limit_mib */
	size_t base;      /* the process without spans (RSS after start) */
	size_t headroom;  /* memory outside the budget while loaded */
	size_t spans;     /* the span budget: limit - base - headroom, or the floor */
	int floored;      /* 1 when limit - base - headroom was below the floor */
};

/* Headroom is limit/8, at least KN_BUDGET_HEADROOM_MIN: measured under
 * overload (bench/run_scenarios.py overload: 8 connections retrying together
 * after a refusal), request bodies in libgrpc's buffers and our receive
 * slots, the idle chunk pool and allocator slack between trims peak at
 * 10-14 MiB above base + charged spans, independently of the limit. The span
 * budget is never below limit/4, so a limit smaller than the process itself
 * still accepts data (and the caller warns). */
#define KN_BUDGET_HEADROOM_MIN ((size_t)16 << 20)
struct kn_budget_split kn_budget_for_process(size_t limit_bytes, size_t base_bytes);
/* The same with a headroom of at least min_headroom (a memory_limiter's
 * spike: refusals then start at limit - spike at the latest). */
struct kn_budget_split kn_budget_for_process_min(size_t limit_bytes, size_t base_bytes,
						 size_t min_headroom);

/* Applies a split: the span limit becomes s->spans (as kn_budget_set_limit)
 * and base and headroom are kept for kn_budget_trim(). */
void kn_budget_apply(const struct kn_budget_split *s);

/* Housekeeping, called every 100 ms by one thread (kansatsu's main thread):
 * when the RSS exceeds base + spans charged + memory processors hold (kn_budget_held) + a quarter of the headroom, the
 * allocator holds that much freed memory (glibc keeps freed blocks in the
 * middle of its arenas), and malloc_trim(0) gives those pages back.
 * Costs one /proc read per call, and a walk of the arenas' free lists (with
 * each arena's lock held briefly) only when it trims. Returns 1 if it
 * trimmed. A no-op before kn_budget_apply. */
int kn_budget_trim(void);

/* Memory processors hold outside the span budget on purpose (trace stores
 * waiting for a decision, registries, caches), in bytes: kn_budget_trim does
 * not try to give it back. Before this was counted, a processor buffering
 * tens of MiB made every 100 ms check trim (and the shards fault the pages
 * back in). Relaxed atomic; any thread; the holder adds and removes its own. */
void kn_budget_held_add(int64_t delta);
size_t kn_budget_held(void);

/* Would `bytes` more fit the span budget now (as kn_budget_try_charge would
 * decide, without charging)? Refusals before the decode use it. */
int kn_budget_would_fit(size_t bytes);
/* The retry delay a refusal of `need` bytes carries, in milliseconds (>= 1):
 * the time the pipeline's measured drain rate needs to make room, clamped
 * to 5 ms .. 5 s, with +-25% jitter (kn_drain.h). */
uint32_t kn_budget_retry_ms(size_t need);
/* Gauges: the latest advised delay before jitter, and the drain rate. */
uint64_t kn_budget_retry_advertised_ns(void);
uint64_t kn_budget_drain_rate(void);

/* A soft limit on the whole process measured by someone else (the
 * memory_limiter processor compares the RSS with its soft limit every
 * check_interval): while `over` is set, kn_budget_try_charge fails as when
 * the span budget is spent, so receivers refuse retryably (reason
 * memory_limit), except when nothing is charged at all (refusing then
 * would free nothing, and the pipeline would never drain a stuck state).
 * Relaxed atomic; any thread. */
void kn_budget_set_over(int over);
int kn_budget_over(void);

/* The process's resident set size in bytes (/proc/self/statm), 0 if unknown.
 * One open+read: for startup and metric scrapes, not for hot paths. */
size_t kn_budget_process_rss(void);

#endif
