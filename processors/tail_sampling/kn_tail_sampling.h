/* SPDX-License-Identifier: Apache-2.0
 * The `tail_sampling` processor: the OpenTelemetry Collector's
 * tail_sampling config, unchanged, deciding the same way, plus a hard
 * memory bound, late spans that follow the decision made, decisions spread
 * over time, and metrics.
 *
 *   decision_wait: 30s                      first span -> decision
 *   decision_wait_after_root_received: 0s   root span -> decision, if earlier (0 = off)
 *   num_traces: 50000                       undecided traces held (all shards)
 *   expected_new_traces_per_sec: 0          sizes the initial tables
 *   decision_cache: {sampled_cache_size: 0, non_sampled_cache_size: 0,
 *                    sampled_cache_bytes: 0, non_sampled_cache_bytes: 0}
 *                                           ids remembered after the decision; 0 = as
 *                                           many as num_traces (see below);
 *                                           kansatsu: *_bytes size a cache by memory
 *                                           instead (~48 B per sampled id, ~16 B per
 *                                           not-sampled id), and win when set
 *   sample_on_first_match: false
 *   maximum_trace_size_bytes: 0             0 = off (see below)
 *   block_on_overflow: false                accepted; kansatsu never blocks (see below)
 *   drop_pending_traces_on_shutdown: false
 *   policies: [...]                         required (kn_tail_policy.h)
 *   max_memory_mib: 256                     kansatsu: hard bound of the trace store
 *   policy_attribute: ""                    kansatsu: e.g. "sampling.policy", written on
 *                                           every kept span naming the policy that kept it
 *
 * Semantics where kansatsu differs or adds, documented for users:
 *  - Bounds. Per shard the store holds at most num_traces / shards traces
 *    and max_memory_mib / shards MiB (records, table, trace buffers). When
 *    a new span would pass either, the OLDEST traces (first arrival) are
 *    decided early, with the policies, until it fits
 *    (kansatsu_tail_traces_decided_early_total{reason="num_traces"|"memory"});
 *    an undecided trace is never dropped. OTel drops the oldest trace
 *    undecided (or blocks with block_on_overflow); kansatsu does neither,
 *    because a shard worker must not block, so block_on_overflow is
 *    accepted and has no effect.
 *  - maximum_trace_size_bytes: as in OTel, once a trace's buffered bytes
 *    (including the spans that just arrived) pass it, the trace is decided
 *    "not sampled" without evaluating policies, its buffered spans are
 *    dropped, and its later spans are dropped too (it enters the
 *    not-sampled cache); counted in kansatsu_tail_traces_too_large_total.
 *  - Decision caches: OTel's caches are off at 0, but OTel keeps decided
 *    traces in its map until num_traces pushes them out, so late spans still
 *    follow the decision for about num_traces traces. kansatsu frees a trace
 *    at its decision, so a size of 0 means "num_traces ids" to keep that
 *    behaviour. Sizes are split evenly over shards.
 *  - Shutdown: traces still buffered are decided early (reason="shutdown"),
 *    not dropped, unless drop_pending_traces_on_shutdown is true.
 *  - Memory: the emitted trace is charged to the global memory budget; if
 *    the budget is spent the trace is emitted anyway (its spans were
 *    acknowledged, and the policies chose to keep them) and counted in
 *    kansatsu_tail_budget_overrun_spans_total.
 *
 * Metrics (label processor="<id>"): kansatsu_tail_traces_total{decision},
 * kansatsu_tail_spans_total{decision}, kansatsu_tail_late_spans_total{decision},
 * kansatsu_tail_traces_decided_early_total{reason},
 * kansatsu_tail_traces_too_large_total, kansatsu_tail_decision_latency_ms_sum /
 * _count (first span arrival -> decision), kansatsu_tail_spans_lost_total{reason}
 * (malformed chunk, out of memory), kansatsu_tail_budget_overrun_spans_total,
 * and gauges kansatsu_tail_traces_in_memory, kansatsu_tail_spans_in_memory,
 * kansatsu_tail_bytes_in_memory (summed over shards). */
#ifndef KN_TAIL_SAMPLING_H
#define KN_TAIL_SAMPLING_H

#include <stdint.h>

#include "../../collector/core/kn_component.h"

struct kn_tail_policies_cfg;

struct kn_tail_sampling_cfg {
	uint64_t decision_wait_ns;
	uint64_t root_wait_ns;                 /* decision_wait_after_root_received */
	uint64_t num_traces;
	uint64_t expected_new_traces_per_sec;
	struct {
		uint64_t sampled_cache_size;
		uint64_t non_sampled_cache_size;
		uint64_t sampled_cache_bytes;      /* kansatsu: size by memory instead (0 = off) */
		uint64_t non_sampled_cache_bytes;  /* kansatsu: size by memory instead (0 = off) */
	} decision_cache;
	int sample_on_first_match;
	int block_on_overflow;
	int drop_pending_traces_on_shutdown;
	uint64_t maximum_trace_size_bytes;     /* 0 = off */
	struct kn_tail_policies_cfg *policies;
	uint64_t max_memory_mib;
	char *policy_attribute;                /* "" = off */
};

extern const struct kn_component kn_processor_tail_sampling;

#endif
