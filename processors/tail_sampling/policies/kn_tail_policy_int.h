/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_policy_int: what the policy files in this folder share with
 * kn_tail_policies_cfg.c and kn_tail_decide.c (not a public header).
 *
 * A policy type is one const struct kn_tail_policy_ops: its config table
 * (the `<type>:` block, applied with kn_cfg_apply so unknown keys and bad
 * values are reported with their path), an optional `check` run after the
 * table (cross-field rules, regex compilation), and the {create, eval,
 * destroy} triple. `create` is called once per engine shard, so a policy's
 * state (regex cache, token bucket, per-second counters) belongs to one
 * shard thread and eval takes no lock. eval must not allocate.
 *
 * Parsed configs (struct kn_tail_pcfg) are immutable after parsing and are
 * shared by every shard; they own their strings and sub-policies. */
#ifndef KN_TAIL_POLICY_INT_H
#define KN_TAIL_POLICY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "../../../collector/core/kn_tracestate.h"
#include "../kn_tail_policy.h"
#include "../kn_tail_scan.h"
#include "../kn_tail_view.h"

struct kn_tail_policy_ops;

/* One parsed policy (top level or a sub-policy). */
struct kn_tail_pcfg {
	char *name;                          /* may be NULL for and/drop/not sub-policies */
	char *path;                          /* config path, e.g. "...policies[2]" */
	const struct kn_tail_policy_ops *ops;
	void *conf;                          /* ops->conf_size bytes, filled by ops->table */
};

/* A parsed list of policies (the top-level `policies:`, or sub-policies). */
struct kn_tail_plist {
	struct kn_tail_pcfg *v;
	size_t n;
};

struct kn_tail_policies_cfg {
	struct kn_tail_plist list;
};

/* The per-call evaluation context. A consistent probabilistic sampler that
 * samples sets has_th/th (the threshold to write into kept spans). `scan`
 * (may be NULL) is the engine shard's scratch for the trace's index, built
 * by the first policy that reads spans or attributes (scan_state 0: not
 * yet, 1: built, -1: out of memory, so policies walk the bytes). Policies
 * read the trace through kn_tail_each_span / kn_tail_match_attr, which use
 * the index when there is one. */
struct kn_tail_eval {
	const struct kn_tail_trace *t;
	uint64_t now_ns;
	int has_th;
	uint64_t th;
	struct kn_tail_scan *scan;
	int scan_state;
};

/* Calls fn with each span of the trace in order (the view's walk) until fn
 * returns nonzero; returns 1 when fn stopped it, else 0. */
typedef int (*kn_tail_span_fn)(void *ctx, const struct kn_tail_span *sp);
int kn_tail_each_span(struct kn_tail_eval *ev, kn_tail_span_fn fn, void *ctx);

struct kn_tail_policy_ops {
	const char *type;
	const struct kn_cfg_field *table;   /* NULL: the type takes no block */
	size_t conf_size;
	int block_required;                 /* "<path>.<type>: missing" when absent */
	/* Cross-field validation after the table was applied; `path` names the block. */
	int (*check)(void *conf, const char *path, struct kn_err *err);
	/* One instance for one shard (nshards spreads rates). */
	int (*create)(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
		      struct kn_err *err);
	enum kn_tail_decision (*eval)(void *state, struct kn_tail_eval *ev);
	void (*destroy)(void *state);
};

/* The registry: every type kansatsu implements, in README order. */
extern const struct kn_tail_policy_ops *const kn_tail_policy_types[];
const struct kn_tail_policy_ops *kn_tail_policy_find(const char *type);

extern const struct kn_tail_policy_ops kn_policy_always_sample_ops;
extern const struct kn_tail_policy_ops kn_policy_latency_ops;
extern const struct kn_tail_policy_ops kn_policy_numeric_attribute_ops;
extern const struct kn_tail_policy_ops kn_policy_probabilistic_ops;
extern const struct kn_tail_policy_ops kn_policy_status_code_ops;
extern const struct kn_tail_policy_ops kn_policy_string_attribute_ops;
extern const struct kn_tail_policy_ops kn_policy_boolean_attribute_ops;
extern const struct kn_tail_policy_ops kn_policy_rate_limiting_ops;
extern const struct kn_tail_policy_ops kn_policy_bytes_limiting_ops;
extern const struct kn_tail_policy_ops kn_policy_span_count_ops;
extern const struct kn_tail_policy_ops kn_policy_trace_state_ops;
extern const struct kn_tail_policy_ops kn_policy_and_ops;
extern const struct kn_tail_policy_ops kn_policy_not_ops;
extern const struct kn_tail_policy_ops kn_policy_drop_ops;
extern const struct kn_tail_policy_ops kn_policy_composite_ops;

/* KN_F_CUSTOM parsers for sub-policy fields (kn_tail_policies_cfg.c); dst is
 * a struct kn_tail_plist. `leaf` lists accept only the leaf types (OTel's
 * and_sub_policy / drop_sub_policy); composite_sub_policy also accepts `and`;
 * not_sub_policy is one map holding a leaf policy (a one-element list). */
int kn_tail_plist_parse_leaf(const struct kn_cnode *node, void *dst, struct kn_err *err);
int kn_tail_plist_parse_composite(const struct kn_cnode *node, void *dst, struct kn_err *err);
int kn_tail_plist_parse_one_leaf(const struct kn_cnode *node, void *dst, struct kn_err *err);
void kn_tail_plist_free(void *dst);

/* An instantiated (sub-)policy, for combinators (kn_tail_decide.c). */
struct kn_tail_pinst {
	const struct kn_tail_policy_ops *ops;
	void *state;
};
int kn_tail_pinst_create(const struct kn_tail_pcfg *pc, uint32_t nshards,
			 struct kn_tail_pinst *pi, struct kn_err *err);
void kn_tail_pinst_destroy(struct kn_tail_pinst *pi);
static inline enum kn_tail_decision kn_tail_pinst_eval(struct kn_tail_pinst *pi,
						       struct kn_tail_eval *ev)
{
	return pi->ops->eval(pi->state, ev);
}

/* An optional int64 config value (numeric_attribute's min/max), KN_F_CUSTOM. */
struct kn_tail_optint {
	int set;
	int64_t v;
};
int kn_tail_optint_parse(const struct kn_cnode *node, void *dst, struct kn_err *err);
void kn_tail_optint_free(void *dst);

/* OTel's "hasResourceOrSpanWithCondition" over attribute `key`: match() is
 * called with each resource's and each span's value of the key (first
 * KeyValue with that key; absent keys are not passed). Without invert: any
 * match -> SAMPLED else NOT_SAMPLED. With invert: any match ->
 * INVERT_NOT_SAMPLED else INVERT_SAMPLED. Resources are checked before the
 * spans of their ResourceSpans (the order only decides when the walk stops). */
typedef int (*kn_tail_attr_match_fn)(void *ctx, const struct kn_tail_value *v, int is_span);
enum kn_tail_decision kn_tail_match_attr(struct kn_tail_eval *ev, const char *key,
					 size_t keylen, kn_tail_attr_match_fn match, void *ctx,
					 int invert);

/* tracestate helpers: collector/core/kn_tracestate.h (shared with the
 * probabilistic_sampler processor). */

/* FNV-1a, 64 bit (Go's hash/fnv New64a): start from KN_TAIL_FNV_OFFSET. */
#define KN_TAIL_FNV_OFFSET 14695981039346656037ull
static inline uint64_t kn_tail_fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* Token bucket with golang.org/x/time/rate's AllowN semantics: starts full,
 * refills continuously at `rate` per second up to `burst`; a request of n
 * passes iff n <= burst and n tokens are there (then they are taken). */
struct kn_tail_bucket {
	double rate, burst, tokens;
	uint64_t last_ns;
	int started;
};
static inline int kn_tail_bucket_allow(struct kn_tail_bucket *b, uint64_t now_ns, double n)
{
	double tokens = b->burst;
	if (b->started && now_ns > b->last_ns)
		tokens = b->tokens + (double)(now_ns - b->last_ns) * 1e-9 * b->rate;
	else if (b->started)
		tokens = b->tokens;
	if (tokens > b->burst)
		tokens = b->burst;
	if (n > b->burst || tokens < n)
		return 0;
	b->tokens = tokens - n;
	if (!b->started || now_ns > b->last_ns)
		b->last_ns = now_ns;
	b->started = 1;
	return 1;
}

#endif
