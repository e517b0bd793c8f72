/* SPDX-License-Identifier: Apache-2.0
 * latency: samples a trace whose duration (earliest span start to latest
 * span end) reaches threshold_ms, or, with upper_threshold_ms set, lies in
 * (threshold_ms, upper_threshold_ms]. As in OTel the duration is computed
 * while walking the spans (a running min start / max end where a zero
 * timestamp counts as "not seen yet") and the walk stops at the first span
 * where the running duration satisfies the condition; durations are whole
 * milliseconds, truncated. Stateless; one walk over the spans. */
#include <stddef.h>

#include "kn_tail_policy_int.h"

struct kn_latency_conf {
	int64_t threshold_ms;         /* lower bound in milliseconds */
	int64_t upper_threshold_ms;   /* upper bound in milliseconds; 0 = none */
};

static const struct kn_cfg_field kn_latency_table[] = {
	{.key = "threshold_ms", .type = KN_F_INT, .off = offsetof(struct kn_latency_conf, threshold_ms),
	 .required = 1, .min = 0, .max = 1e12, .help = "lower bound of the trace duration (ms)"},
	{.key = "upper_threshold_ms", .type = KN_F_INT,
	 .off = offsetof(struct kn_latency_conf, upper_threshold_ms), .min = 0, .max = 1e12,
	 .help = "upper bound of the trace duration (ms); 0 = none"},
	KN_CFG_END,
};

static int kn_latency_check(void *conf, const char *path, struct kn_err *err)
{
	struct kn_latency_conf *c = conf;
	if (c->upper_threshold_ms != 0 && c->upper_threshold_ms <= c->threshold_ms)
		return kn_errf(err, "%s.upper_threshold_ms: must be greater than threshold_ms (%lld)",
			       path, (long long)c->threshold_ms);
	return KN_OK;
}

static int kn_latency_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			     struct kn_err *err)
{
	(void)nshards;
	(void)err;
	*state = pc->conf;   /* read-only */
	return KN_OK;
}

struct kn_latency_run {
	const struct kn_latency_conf *c;
	uint64_t mn, mx;
};

/* OTel checks the duration so far after every span, so with an upper bound
 * a prefix of the trace can match when the whole would not. */
static int kn_latency_span(void *ctx, const struct kn_tail_span *sp)
{
	struct kn_latency_run *r = ctx;
	const struct kn_latency_conf *c = r->c;
	if (r->mn == 0 || sp->start_ns < r->mn)
		r->mn = sp->start_ns;
	if (r->mx == 0 || sp->end_ns > r->mx)
		r->mx = sp->end_ns;
	/* Go: time.Unix(0, int64(ts)) and Sub, which saturates */
	int64_t d;
	if (__builtin_sub_overflow((int64_t)r->mx, (int64_t)r->mn, &d))
		d = (int64_t)r->mx < (int64_t)r->mn ? INT64_MIN : INT64_MAX;
	int64_t ms = d / 1000000;
	if (c->upper_threshold_ms == 0)
		return ms >= c->threshold_ms;
	return c->threshold_ms < ms && ms <= c->upper_threshold_ms;
}

static enum kn_tail_decision kn_latency_eval(void *state, struct kn_tail_eval *ev)
{
	struct kn_latency_run r = {.c = state};
	return kn_tail_each_span(ev, kn_latency_span, &r) ? KN_TAIL_SAMPLED : KN_TAIL_NOT_SAMPLED;
}

const struct kn_tail_policy_ops kn_policy_latency_ops = {
	.type = "latency",
	.table = kn_latency_table,
	.conf_size = sizeof(struct kn_latency_conf),
	.block_required = 1,
	.check = kn_latency_check,
	.create = kn_latency_create,
	.eval = kn_latency_eval,
};
