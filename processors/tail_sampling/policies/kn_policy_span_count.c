/* SPDX-License-Identifier: Apache-2.0
 * span_count: samples a trace holding at least min_spans spans and, when
 * max_spans is set (non-zero), at most max_spans. Uses the store's span
 * count (no walk). Stateless. */
#include <stddef.h>

#include "kn_tail_policy_int.h"

struct kn_span_count_conf {
	int64_t min_spans, max_spans;
};

static const struct kn_cfg_field kn_span_count_table[] = {
	{.key = "min_spans", .type = KN_F_INT, .off = offsetof(struct kn_span_count_conf, min_spans),
	 .required = 1, .min = 0, .max = 2147483647, .help = "fewest spans that match"},
	{.key = "max_spans", .type = KN_F_INT, .off = offsetof(struct kn_span_count_conf, max_spans),
	 .min = 0, .max = 2147483647, .help = "most spans that match; 0 = no upper bound"},
	KN_CFG_END,
};

static int kn_span_count_check(void *conf, const char *path, struct kn_err *err)
{
	struct kn_span_count_conf *c = conf;
	if (c->max_spans != 0 && c->max_spans < c->min_spans)
		return kn_errf(err, "%s.max_spans: %lld is less than min_spans %lld", path,
			       (long long)c->max_spans, (long long)c->min_spans);
	return KN_OK;
}

static int kn_span_count_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
				struct kn_err *err)
{
	(void)nshards;
	(void)err;
	*state = pc->conf;
	return KN_OK;
}

static enum kn_tail_decision kn_span_count_eval(void *state, struct kn_tail_eval *ev)
{
	const struct kn_span_count_conf *c = state;
	int64_t n = ev->t->nspans;
	if (n >= c->min_spans && (c->max_spans == 0 || n <= c->max_spans))
		return KN_TAIL_SAMPLED;
	return KN_TAIL_NOT_SAMPLED;
}

const struct kn_tail_policy_ops kn_policy_span_count_ops = {
	.type = "span_count",
	.table = kn_span_count_table,
	.conf_size = sizeof(struct kn_span_count_conf),
	.block_required = 1,
	.check = kn_span_count_check,
	.create = kn_span_count_create,
	.eval = kn_span_count_eval,
};
