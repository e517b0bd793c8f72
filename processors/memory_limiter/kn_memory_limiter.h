/* SPDX-License-Identifier: Apache-2.0
 * The `memory_limiter` processor, with the OpenTelemetry Collector's keys
 * and validation rules:
 *   check_interval          how often the process RSS is compared with the
 *                           soft limit (required, > 0)
 *   limit_mib               hard limit of the process, MiB
 *   spike_limit_mib         headroom below it (default 20% of the limit);
 *                           the soft limit is limit - spike
 *   limit_percentage        hard limit as a percentage of the cgroup memory
 *   spike_limit_percentage  limit (v2 memory.max, v1 memory.limit_in_bytes)
 *                           or, without one, of MemTotal (/proc/meminfo);
 *                           limit_mib wins when both are set
 *   min_gc_interval_when_soft_limited, min_gc_interval_when_hard_limited:
 *                           Go garbage-collector settings: errors here
 * Rules (OTel's): check_interval > 0; limit_mib or limit_percentage > 0;
 * percentages <= 100; spike_limit_mib < limit_mib; spike_limit_percentage
 * < limit_percentage.
 *
 * How it limits, without per-span work (process() only forwards):
 *  - at create it caps the process through kn_runtime_limit_memory(limit,
 *    spike): the runtime takes the lower of that and kansatsu.memory_limit_mib
 *    as the process limit, with at least `spike` of headroom, so the span
 *    budget is spent (and receivers refuse, retryably, reason memory_limit)
 *    at limit - spike at the latest; the startup log line shows the split;
 *  - every check_interval (its tick on shard 0: no thread) it compares the
 *    RSS with the soft limit and sets kn_budget_set_over while above it, so
 *    receivers also refuse when memory the span budget does not count
 *    (buffers, processors' state) pushes the process past the soft limit,
 *    which is OTel's rule. Refusals end when the RSS is below it again.
 * Several memory_limiters: the lowest limit wins; each checks its own soft
 * limit. Metrics: kansatsu_processor_memory_limiter_limit_bytes{limit="hard"
 * |"soft"} and kansatsu_processor_memory_limiter_over (0/1). */
#ifndef KN_MEMORY_LIMITER_H
#define KN_MEMORY_LIMITER_H

#include <stddef.h>
#include <stdint.h>

#include "../../collector/core/kn_component.h"

struct kn_memory_limiter_cfg {
	uint64_t check_interval_ns;
	uint64_t limit_mib;
	uint64_t spike_limit_mib;
	uint64_t limit_percentage;
	uint64_t spike_limit_percentage;
	int gc_soft, gc_hard;   /* set only to reject the keys */
};

extern const struct kn_component kn_processor_memory_limiter;

/* The memory a percentage is taken of, as OTel reads it, with every path
 * under root ("" for the real system; a test directory in tests): the
 * cgroup v2 memory.max of this process's cgroup (when
 * <root>/sys/fs/cgroup/cgroup.controllers exists), else the cgroup v1
 * memory.limit_in_bytes; "max" or v1's unlimited value means none, and then
 * MemTotal of <root>/proc/meminfo. 0 when nothing could be read. */
uint64_t kn_memory_limiter_total(const char *root);

/* hard and spike limits in bytes of a checked config (total: as above). */
void kn_memory_limiter_limits(const struct kn_memory_limiter_cfg *c, uint64_t total,
			      uint64_t *hard, uint64_t *spike);

#endif
