/* SPDX-License-Identifier: Apache-2.0
 * bytes_limiting: samples traces while a token bucket of bytes allows it:
 * bytes_per_second refill, burst_capacity bucket (default twice
 * bytes_per_second), same token-bucket rules as rate_limiting. A trace's size
 * is its encoded OTLP size as the store writes it out (kn_tail_trace.bytes,
 * each part with its Resource and scope, as it arrived): OTel
 * uses an in-memory estimate instead (string lengths plus fixed sizes per
 * field), so with the same limit kansatsu admits somewhat fewer traces.
 * Per shard: rates divided by the number of shards. */
#include <stddef.h>
#include <stdlib.h>

#include "kn_tail_policy_int.h"

struct kn_bytes_conf {
	int64_t bytes_per_second;
	int64_t burst_capacity;
};

static const struct kn_cfg_field kn_bytes_table[] = {
	{.key = "bytes_per_second", .type = KN_F_INT, .off = offsetof(struct kn_bytes_conf, bytes_per_second),
	 .required = 1, .min = 0, .max = 1e12, .help = "trace bytes sampled per second"},
	{.key = "burst_capacity", .type = KN_F_INT, .off = offsetof(struct kn_bytes_conf, burst_capacity),
	 .min = 0, .max = 1e12, .help = "bucket size in bytes; 0 = 2 x bytes_per_second"},
	KN_CFG_END,
};

static int kn_bytes_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			   struct kn_err *err)
{
	const struct kn_bytes_conf *c = pc->conf;
	struct kn_tail_bucket *b = calloc(1, sizeof *b);
	if (!b)
		return kn_errf(err, "out of memory");
	b->rate = (double)c->bytes_per_second / nshards;
	b->burst = (double)(c->burst_capacity ? c->burst_capacity : 2 * c->bytes_per_second) / nshards;
	*state = b;
	return KN_OK;
}

static enum kn_tail_decision kn_bytes_eval(void *state, struct kn_tail_eval *ev)
{
	return kn_tail_bucket_allow(state, ev->now_ns, (double)ev->t->bytes) ? KN_TAIL_SAMPLED
									     : KN_TAIL_NOT_SAMPLED;
}

const struct kn_tail_policy_ops kn_policy_bytes_limiting_ops = {
	.type = "bytes_limiting",
	.table = kn_bytes_table,
	.conf_size = sizeof(struct kn_bytes_conf),
	.block_required = 1,
	.create = kn_bytes_create,
	.eval = kn_bytes_eval,
	.destroy = free,
};
