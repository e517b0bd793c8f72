/* SPDX-License-Identifier: Apache-2.0
 * and: samples a trace when every sub-policy (and_sub_policy, leaf types
 * only) samples it: any NotSampled or InvertNotSampled from a sub-policy
 * gives NotSampled (evaluation stops there); otherwise Sampled
 * (InvertSampled counts as sampled, as in OTel). A consistent-sampling
 * threshold reported by a probabilistic sub-policy is passed up.
 * State: the sub-policies' instances for this shard. */
#include <stddef.h>
#include <stdlib.h>

#include "kn_tail_policy_int.h"

struct kn_and_conf {
	struct kn_tail_plist subs;
};

static const struct kn_cfg_field kn_and_table[] = {
	{.key = "and_sub_policy", .type = KN_F_CUSTOM, .off = offsetof(struct kn_and_conf, subs),
	 .required = 1, .parse = kn_tail_plist_parse_leaf, .free = kn_tail_plist_free,
	 .help = "policies that must all sample"},
	KN_CFG_END,
};

/* Shared by and / drop / not: instances of a sub-policy list. */
struct kn_subs {
	size_t n;
	struct kn_tail_pinst pi[];
};

static void kn_and_destroy(void *state)
{
	struct kn_subs *s = state;
	for (size_t i = 0; s && i < s->n; i++)
		kn_tail_pinst_destroy(&s->pi[i]);
	free(s);
}

static int kn_and_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			 struct kn_err *err)
{
	const struct kn_and_conf *c = pc->conf;
	struct kn_subs *s = calloc(1, sizeof *s + c->subs.n * sizeof s->pi[0]);
	if (!s)
		return kn_errf(err, "out of memory");
	for (size_t i = 0; i < c->subs.n; i++) {
		if (kn_tail_pinst_create(&c->subs.v[i], nshards, &s->pi[i], err) != KN_OK) {
			kn_and_destroy(s);
			return KN_ERR;
		}
		s->n = i + 1;
	}
	*state = s;
	return KN_OK;
}

static enum kn_tail_decision kn_and_eval(void *state, struct kn_tail_eval *ev)
{
	struct kn_subs *s = state;
	for (size_t i = 0; i < s->n; i++) {
		enum kn_tail_decision d = kn_tail_pinst_eval(&s->pi[i], ev);
		if (d == KN_TAIL_NOT_SAMPLED || d == KN_TAIL_INVERT_NOT_SAMPLED) {
			ev->has_th = 0;
			return KN_TAIL_NOT_SAMPLED;
		}
		if (d == KN_TAIL_ERROR) {
			ev->has_th = 0;
			return KN_TAIL_ERROR;
		}
	}
	return KN_TAIL_SAMPLED;
}

const struct kn_tail_policy_ops kn_policy_and_ops = {
	.type = "and",
	.table = kn_and_table,
	.conf_size = sizeof(struct kn_and_conf),
	.block_required = 1,
	.create = kn_and_create,
	.eval = kn_and_eval,
	.destroy = kn_and_destroy,
};
