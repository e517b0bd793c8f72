/* SPDX-License-Identifier: Apache-2.0
 * drop: returns Dropped when every sub-policy (drop_sub_policy, leaf types
 * only) samples the trace, which makes the final decision "not sampled"
 * whatever the other policies say; any NotSampled or InvertNotSampled from a
 * sub-policy gives NotSampled. State: the sub-policies' instances. */
#include <stddef.h>
#include <stdlib.h>

#include "kn_tail_policy_int.h"

struct kn_drop_conf {
	struct kn_tail_plist subs;
};

static const struct kn_cfg_field kn_drop_table[] = {
	{.key = "drop_sub_policy", .type = KN_F_CUSTOM, .off = offsetof(struct kn_drop_conf, subs),
	 .required = 1, .parse = kn_tail_plist_parse_leaf, .free = kn_tail_plist_free,
	 .help = "policies that must all match for the trace to be dropped"},
	KN_CFG_END,
};

struct kn_drop {
	size_t n;
	struct kn_tail_pinst pi[];
};

static void kn_drop_destroy(void *state)
{
	struct kn_drop *s = state;
	for (size_t i = 0; s && i < s->n; i++)
		kn_tail_pinst_destroy(&s->pi[i]);
	free(s);
}

static int kn_drop_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			  struct kn_err *err)
{
	const struct kn_drop_conf *c = pc->conf;
	struct kn_drop *s = calloc(1, sizeof *s + c->subs.n * sizeof s->pi[0]);
	if (!s)
		return kn_errf(err, "out of memory");
	for (size_t i = 0; i < c->subs.n; i++) {
		if (kn_tail_pinst_create(&c->subs.v[i], nshards, &s->pi[i], err) != KN_OK) {
			kn_drop_destroy(s);
			return KN_ERR;
		}
		s->n = i + 1;
	}
	*state = s;
	return KN_OK;
}

static enum kn_tail_decision kn_drop_eval(void *state, struct kn_tail_eval *ev)
{
	struct kn_drop *s = state;
	enum kn_tail_decision out = KN_TAIL_DROPPED;
	for (size_t i = 0; i < s->n; i++) {
		enum kn_tail_decision d = kn_tail_pinst_eval(&s->pi[i], ev);
		if (d == KN_TAIL_NOT_SAMPLED || d == KN_TAIL_INVERT_NOT_SAMPLED) {
			out = KN_TAIL_NOT_SAMPLED;
			break;
		}
		if (d == KN_TAIL_ERROR) {
			out = KN_TAIL_ERROR;
			break;
		}
	}
	ev->has_th = 0;
	return out;
}

const struct kn_tail_policy_ops kn_policy_drop_ops = {
	.type = "drop",
	.table = kn_drop_table,
	.conf_size = sizeof(struct kn_drop_conf),
	.block_required = 1,
	.create = kn_drop_create,
	.eval = kn_drop_eval,
	.destroy = kn_drop_destroy,
};
