/* SPDX-License-Identifier: Apache-2.0
 * always_sample: samples every trace (OTel `type: always_sample`, no block).
 * Stateless; eval costs nothing. */
#include "kn_tail_policy_int.h"

static enum kn_tail_decision kn_always_eval(void *state, struct kn_tail_eval *ev)
{
	(void)state;
	(void)ev;
	return KN_TAIL_SAMPLED;
}

const struct kn_tail_policy_ops kn_policy_always_sample_ops = {
	.type = "always_sample",
	.eval = kn_always_eval,
};
