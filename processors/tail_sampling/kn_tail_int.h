/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_int: the tail_sampling processor's instance and shard state,
 * shared by kn_tail_sampling.c (config, instance, metrics) and
 * kn_tail_shard.c (the per-shard engine). Not a public header.
 *
 * The instance is immutable after create apart from per-shard gauge
 * atomics (each written by its own shard, read by the metrics renderer).
 * A shard's state is touched only by that shard's worker. */
#ifndef KN_TAIL_INT_H
#define KN_TAIL_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../../collector/core/kn_batch.h"
#include "../../collector/core/kn_component.h"
#include "../../collector/core/kn_emit_out.h"
#include "../../collector/core/kn_metrics.h"
#include "kn_tail_cache.h"
#include "kn_tail_emit.h"
#include "kn_tail_frame.h"
#include "kn_tail_bytrace.h"
#include "kn_tail_policy.h"
#include "kn_tail_sampling.h"
#include "kn_tail_store.h"

struct kn_tail_metrics {
	struct kn_metric *traces_sampled, *traces_not_sampled;
	struct kn_metric *spans_sampled, *spans_not_sampled;
	struct kn_metric *late_sampled, *late_not_sampled;
	struct kn_metric *early_memory, *early_num_traces, *early_shutdown;
	struct kn_metric *too_large;
	struct kn_metric *latency_sum_ms, *latency_count;
	struct kn_metric *lost_malformed, *lost_oom;
	struct kn_metric *budget_overrun;
};

struct kn_tail_gauges {
	_Atomic int64_t traces, spans, bytes;
};

struct kn_tail_proc {
	struct kn_tail_sampling_cfg cfg;   /* shallow copy: strings and policies stay the runtime's */
	uint32_t nshards;
	struct kn_tail_engine *engine;
	struct kn_tail_metrics m;
	struct kn_tail_gauges *gauges;     /* [nshards] */
	/* per-shard bounds */
	size_t shard_max_bytes;
	uint32_t shard_max_traces;
	uint32_t shard_initial;
	uint32_t lru_cap, fp_cap;
};

struct kn_tail_name {
	const char *orig;                  /* the pointer the engine gave */
	char *name;
	uint8_t *attr;                     /* encoded attributes field; NULL when policy_attribute is off */
	uint32_t attr_len;
};

struct kn_tail_shard {
	struct kn_tail_proc *p;
	uint32_t index;
	struct kn_tail_engine_shard *eng;
	struct kn_tail_store *store;
	struct kn_tail_lru *sampled;
	struct kn_tail_fpring *dropped;
	struct kn_tail_frame frame;
	struct kn_tail_emit emit;
	struct kn_tail_bytrace grp;          /* a chunk's spans by trace (scratch) */
	uint8_t *late;                     /* framed late spans */
	size_t cap_late;
	struct kn_tail_name *names;        /* winning policies seen, by number */
	uint32_t nnames, cap_names;
	struct kn_emit_out out;            /* kept traces of this call, emitted at its end */
	int64_t held;                      /* store bytes last declared to kn_budget_held_add */
};

/* The component's per-shard entry points (kn_tail_shard.c). */
int kn_tail_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err);
int kn_tail_process(void *state, struct kn_batch *b, const struct kn_emit *next);
uint64_t kn_tail_tick(void *state, uint64_t now_ns, const struct kn_emit *next);
void kn_tail_flush(void *state, const struct kn_emit *next);
void kn_tail_shard_destroy(void *state);

#endif
