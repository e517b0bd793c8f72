/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_trace: a buffered trace as the tail-sampling policies see it.
 *
 * `data` is the trace as kn_tail_store_view writes it out: the
 * concatenation of ResourceSpans messages (each with its tag 0x0a and
 * length) holding the trace's spans and their Resource and
 * InstrumentationScope bytes, exactly as they arrived. That buffer is
 * itself a valid encoded ExportTraceServiceRequest, so a sampled trace is
 * exported without re-encoding any span. Alongside it the store keeps
 * the aggregates that cost nothing to maintain at ingest (counts, earliest
 * start, latest end, error spans). Attribute and tracestate lookups are done
 * by policies at decision time by walking `data` (kn_tail_view.h).
 *
 * Ownership: the store owns the trace; policies get a const view that is
 * valid only during kn_tail_decide. Threading: per shard, no locks. */
#ifndef KN_TAIL_TRACE_H
#define KN_TAIL_TRACE_H

#include <stddef.h>
#include <stdint.h>

struct kn_tail_trace {
	uint8_t trace_id[16];
	uint32_t nspans;          /* spans held */
	uint32_t nerror;          /* spans whose Status.code is ERROR */
	uint64_t min_start_ns;    /* earliest start_time_unix_nano (UINT64_MAX when none) */
	uint64_t max_end_ns;      /* latest end_time_unix_nano (0 when none) */
	uint64_t first_seen_ns;   /* kn_now_ns() when its first span arrived */
	uint64_t root_seen_ns;    /* kn_now_ns() when a span without parent arrived; 0 = not yet */
	size_t bytes;             /* encoded bytes in data */
	const uint8_t *data;      /* concatenated ResourceSpans messages (see above) */
	size_t len;               /* == bytes */
};

#endif
