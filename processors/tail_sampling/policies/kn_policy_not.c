/* SPDX-License-Identifier: Apache-2.0
 * not: the opposite of one sub-policy (not_sub_policy, a single leaf policy
 * map): Sampled <-> NotSampled; any other decision (the inverted ones,
 * Dropped, Error) passes through unchanged, as in OTel. A threshold reported
 * by a probabilistic sub-policy is discarded (negating a sample is not a
 * consistent sample). State: the sub-policy's instance. */
#include <stddef.h>
#include <stdlib.h>

#include "kn_tail_policy_int.h"

struct kn_not_conf {
	struct kn_tail_plist sub;   /* exactly one */
};

static const struct kn_cfg_field kn_not_table[] = {
	{.key = "not_sub_policy", .type = KN_F_CUSTOM, .off = offsetof(struct kn_not_conf, sub),
	 .required = 1, .parse = kn_tail_plist_parse_one_leaf, .free = kn_tail_plist_free,
	 .help = "the policy whose decision is negated"},
	KN_CFG_END,
};

static void kn_not_destroy(void *state)
{
	kn_tail_pinst_destroy(state);
	free(state);
}

static int kn_not_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			 struct kn_err *err)
{
	const struct kn_not_conf *c = pc->conf;
	struct kn_tail_pinst *pi = calloc(1, sizeof *pi);
	if (!pi)
		return kn_errf(err, "out of memory");
	if (kn_tail_pinst_create(&c->sub.v[0], nshards, pi, err) != KN_OK) {
		free(pi);
		return KN_ERR;
	}
	*state = pi;
	return KN_OK;
}

static enum kn_tail_decision kn_not_eval(void *state, struct kn_tail_eval *ev)
{
	enum kn_tail_decision d = kn_tail_pinst_eval(state, ev);
	ev->has_th = 0;
	if (d == KN_TAIL_SAMPLED)
		return KN_TAIL_NOT_SAMPLED;
	if (d == KN_TAIL_NOT_SAMPLED)
		return KN_TAIL_SAMPLED;
	return d;
}

const struct kn_tail_policy_ops kn_policy_not_ops = {
	.type = "not",
	.table = kn_not_table,
	.conf_size = sizeof(struct kn_not_conf),
	.block_required = 1,
	.create = kn_not_create,
	.eval = kn_not_eval,
	.destroy = kn_not_destroy,
};
