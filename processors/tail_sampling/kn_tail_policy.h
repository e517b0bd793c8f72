/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_policy: the tail-sampling policies and the final decision, with
 * the OpenTelemetry Collector tail_sampling processor's config and semantics.
 *
 * `policies:` is parsed into an immutable kn_tail_policies_cfg (a custom
 * field of the processor's config table). The engine compiles it once per
 * processor instance (regexes, value sets); each shard gets its own engine
 * shard for the little mutable state some policies keep (rate_limiting,
 * bytes_limiting, composite), so deciding takes no lock. Rates in a shard are
 * the configured rate divided by the number of shards (documented: traces are
 * spread evenly over shards by trace id hash).
 *
 * Each policy type is one file in policies/ implementing struct
 * kn_tail_policy_ops {create, eval, destroy}; `and`, `not`, `drop` and
 * `composite` hold sub-policies. A policy's eval returns one of the OTel
 * decisions below; kn_tail_decide combines them with the OTel Collector's
 * precedence: any Dropped -> not sampled; else any InvertNotSampled -> not
 * sampled; else any Sampled -> sampled; else any InvertSampled -> sampled;
 * else not sampled. With sample_on_first_match, evaluation stops at the first
 * policy that samples.
 *
 * Consistent probability sampling (W3C tracestate `ot=th:<hex>`, the
 * OpenTelemetry threshold spec): the probabilistic policy derives its
 * randomness from the trace id (or an explicit `ot=rv:`), respects a
 * threshold already present in the spans' tracestate, and reports the
 * threshold to write into every kept span's tracestate. */
#ifndef KN_TAIL_POLICY_H
#define KN_TAIL_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_err.h"
#include "kn_tail_trace.h"

struct kn_metrics;

enum kn_tail_decision {
	KN_TAIL_UNSPECIFIED = 0,
	KN_TAIL_NOT_SAMPLED,
	KN_TAIL_SAMPLED,
	KN_TAIL_INVERT_SAMPLED,
	KN_TAIL_INVERT_NOT_SAMPLED,
	KN_TAIL_DROPPED,
	KN_TAIL_ERROR,
};

struct kn_tail_verdict {
	int sampled;             /* the final decision */
	const char *policy;      /* name of the (first) policy whose decision won; NULL if none */
	int has_threshold;       /* write ot=th:<threshold> into kept spans' tracestate */
	uint64_t threshold;      /* 56-bit rejection threshold (0 = keep all) */
};

/* Parsed `policies:` list (opaque). */
struct kn_tail_policies_cfg;

/* KN_F_CUSTOM parse/free for the `policies` key: dst is a
 * `struct kn_tail_policies_cfg *` field. Errors name the path
 * ("processors.tail_sampling.policies[3].latency.threshold_ms: ..."). */
int kn_tail_policies_parse(const struct kn_cnode *node, void *dst, struct kn_err *err);
void kn_tail_policies_free(void *dst);
size_t kn_tail_policies_count(const struct kn_tail_policies_cfg *cfg);

struct kn_tail_engine;
struct kn_tail_engine_shard;

/* `proc_id` labels the per-policy metrics
 * (kansatsu_tail_policy_decisions_total{processor,policy,decision}). */
struct kn_tail_engine *kn_tail_engine_create(const struct kn_tail_policies_cfg *cfg,
					     int sample_on_first_match, uint32_t nshards,
					     struct kn_metrics *m, const char *proc_id,
					     struct kn_err *err);
void kn_tail_engine_destroy(struct kn_tail_engine *e);
struct kn_tail_engine_shard *kn_tail_engine_shard_create(struct kn_tail_engine *e, uint32_t shard,
							 struct kn_err *err);
void kn_tail_engine_shard_destroy(struct kn_tail_engine_shard *s);

/* Decides one trace. now_ns is kn_now_ns(). Never blocks, never allocates
 * on the common path. */
void kn_tail_decide(struct kn_tail_engine_shard *s, const struct kn_tail_trace *t, uint64_t now_ns,
		    struct kn_tail_verdict *v);

#endif
