/* SPDX-License-Identifier: Apache-2.0
 * rate_limiting: samples traces while a token bucket of spans allows it, as
 * the current OTel Collector does (golang.org/x/time/rate): tokens refill
 * continuously at spans_per_second up to burst_capacity (default twice
 * spans_per_second; the bucket starts full); a trace of n spans passes iff
 * n tokens are there, and a trace bigger than the bucket never passes.
 * (Older OTel versions counted spans per wall-clock second instead.)
 * Per shard: rate and burst are divided by the number of shards, since
 * traces are spread evenly over shards. Time is the monotonic now_ns given to
 * kn_tail_decide. State: one bucket per shard. */
#include <stddef.h>
#include <stdlib.h>

#include "kn_tail_policy_int.h"

struct kn_rate_conf {
	int64_t spans_per_second;
	int64_t burst_capacity;
};

static const struct kn_cfg_field kn_rate_table[] = {
	{.key = "spans_per_second", .type = KN_F_INT, .off = offsetof(struct kn_rate_conf, spans_per_second),
	 .required = 1, .min = 0, .max = 1e12, .help = "spans sampled per second"},
	{.key = "burst_capacity", .type = KN_F_INT, .off = offsetof(struct kn_rate_conf, burst_capacity),
	 .min = 0, .max = 1e12, .help = "bucket size in spans; 0 = 2 x spans_per_second"},
	KN_CFG_END,
};

static int kn_rate_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			  struct kn_err *err)
{
	const struct kn_rate_conf *c = pc->conf;
	struct kn_tail_bucket *b = calloc(1, sizeof *b);
	if (!b)
		return kn_errf(err, "out of memory");
	b->rate = (double)c->spans_per_second / nshards;
	b->burst = (double)(c->burst_capacity ? c->burst_capacity : 2 * c->spans_per_second) / nshards;
	*state = b;
	return KN_OK;
}

static enum kn_tail_decision kn_rate_eval(void *state, struct kn_tail_eval *ev)
{
	return kn_tail_bucket_allow(state, ev->now_ns, (double)ev->t->nspans) ? KN_TAIL_SAMPLED
									       : KN_TAIL_NOT_SAMPLED;
}

const struct kn_tail_policy_ops kn_policy_rate_limiting_ops = {
	.type = "rate_limiting",
	.table = kn_rate_table,
	.conf_size = sizeof(struct kn_rate_conf),
	.block_required = 1,
	.create = kn_rate_create,
	.eval = kn_rate_eval,
	.destroy = free,
};
