/* SPDX-License-Identifier: Apache-2.0
 * composite: sub-policies (composite_sub_policy: leaf types or `and`) each
 * with a share of max_total_spans_per_second, as OTel does it:
 *  - a sub-policy's allocation is percent% of the total (truncated to whole
 *    spans) for its rate_allocation entry, total / number of sub-policies for
 *    an entry with percent 0, and 0 (it never samples) when it has no entry;
 *  - sub-policies are evaluated in composite_sub_policy order (OTel ignores
 *    policy_order; kansatsu checks its names and ignores it too);
 *  - the first sub-policy that samples (Sampled or InvertSampled) decides:
 *    Sampled if its spans this second plus the trace's spans stay within its
 *    allocation and within the total (each checked against that sub-policy's
 *    own count, as in OTel), else NotSampled without trying the others;
 *  - counters restart every second (now_ns / 1e9 of the monotonic clock,
 *    where OTel uses the wall-clock Unix second).
 * Per shard: allocations and the total are divided by the number of shards.
 * State per shard: sub-policy instances and their counters. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kn_tail_policy_int.h"

struct kn_ralloc {
	char *policy;
	int64_t percent;
};

struct kn_ralloc_list {
	struct kn_ralloc *v;
	size_t n;
};

static const struct kn_cfg_field kn_ralloc_table[] = {
	{.key = "policy", .type = KN_F_STR, .off = offsetof(struct kn_ralloc, policy), .required = 1,
	 .help = "name of a composite_sub_policy"},
	{.key = "percent", .type = KN_F_INT, .off = offsetof(struct kn_ralloc, percent), .min = 0,
	 .max = 100, .help = "share of max_total_spans_per_second; 0 = an equal share"},
	KN_CFG_END,
};

static void kn_ralloc_free(void *dst)
{
	struct kn_ralloc_list *l = dst;
	for (size_t i = 0; i < l->n; i++)
		kn_cfg_free(kn_ralloc_table, &l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int kn_ralloc_parse(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	struct kn_ralloc_list *l = dst;
	if (node->type == KN_CNODE_NULL)
		return KN_OK;
	if (node->type != KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a list of {policy, percent}", node->path);
	if (node->n && !(l->v = calloc(node->n, sizeof *l->v)))
		return kn_errf(err, "%s: out of memory", node->path);
	for (size_t i = 0; i < node->n; i++) {
		const struct kn_cnode *it = &node->children[i];
		l->n = i + 1;
		if (it->type != KN_CNODE_MAP)
			return kn_errf(err, "%s: expected a map {policy, percent}", it->path);
		if (kn_cfg_apply_at(kn_ralloc_table, it, it->path, &l->v[i], err) != KN_OK)
			return KN_ERR;
	}
	return KN_OK;
}

struct kn_comp_conf {
	int64_t max_total_spans_per_second;
	struct kn_strlist policy_order;
	struct kn_tail_plist subs;
	struct kn_ralloc_list rate_allocation;
};

static const struct kn_cfg_field kn_comp_table[] = {
	{.key = "max_total_spans_per_second", .type = KN_F_INT,
	 .off = offsetof(struct kn_comp_conf, max_total_spans_per_second), .required = 1, .min = 0,
	 .max = 1e12, .help = "spans per second shared by the sub-policies"},
	{.key = "policy_order", .type = KN_F_STRLIST, .off = offsetof(struct kn_comp_conf, policy_order),
	 .help = "names of the sub-policies (checked; evaluation follows composite_sub_policy)"},
	{.key = "composite_sub_policy", .type = KN_F_CUSTOM, .off = offsetof(struct kn_comp_conf, subs),
	 .required = 1, .parse = kn_tail_plist_parse_composite, .free = kn_tail_plist_free,
	 .help = "the sub-policies, in evaluation order"},
	{.key = "rate_allocation", .type = KN_F_CUSTOM,
	 .off = offsetof(struct kn_comp_conf, rate_allocation), .parse = kn_ralloc_parse,
	 .free = kn_ralloc_free, .help = "list of {policy, percent}"},
	KN_CFG_END,
};

static int kn_comp_has(const struct kn_comp_conf *c, const char *name)
{
	for (size_t i = 0; i < c->subs.n; i++)
		if (c->subs.v[i].name && strcmp(c->subs.v[i].name, name) == 0)
			return 1;
	return 0;
}

static int kn_comp_check(void *conf, const char *path, struct kn_err *err)
{
	struct kn_comp_conf *c = conf;
	for (size_t i = 0; i < c->policy_order.n; i++)
		if (!kn_comp_has(c, c->policy_order.v[i]))
			return kn_errf(err, "%s.policy_order[%zu]: no composite_sub_policy named \"%s\"",
				       path, i, c->policy_order.v[i]);
	for (size_t i = 0; i < c->rate_allocation.n; i++)
		if (!kn_comp_has(c, c->rate_allocation.v[i].policy))
			return kn_errf(err, "%s.rate_allocation[%zu].policy: no composite_sub_policy named \"%s\"",
				       path, i, c->rate_allocation.v[i].policy);
	return KN_OK;
}

struct kn_comp_sub {
	struct kn_tail_pinst pi;
	double allocated;       /* spans per second, this shard's share */
	int64_t sampled;        /* spans sampled this second */
};

struct kn_comp {
	double max_total;
	uint64_t cur_sec;
	int started;
	size_t n;
	struct kn_comp_sub sub[];
};

static void kn_comp_destroy(void *state)
{
	struct kn_comp *s = state;
	for (size_t i = 0; s && i < s->n; i++)
		kn_tail_pinst_destroy(&s->sub[i].pi);
	free(s);
}

static int kn_comp_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			  struct kn_err *err)
{
	const struct kn_comp_conf *c = pc->conf;
	struct kn_comp *s = calloc(1, sizeof *s + c->subs.n * sizeof s->sub[0]);
	double total = (double)c->max_total_spans_per_second;
	if (!s)
		return kn_errf(err, "out of memory");
	s->max_total = total / nshards;
	for (size_t i = 0; i < c->subs.n; i++) {
		const struct kn_tail_pcfg *sp = &c->subs.v[i];
		double alloc = 0;
		for (size_t j = 0; j < c->rate_allocation.n; j++) {
			if (strcmp(c->rate_allocation.v[j].policy, sp->name) != 0)
				continue;
			if (c->rate_allocation.v[j].percent > 0)
				alloc = (double)c->rate_allocation.v[j].percent / 100 * total;
			else
				alloc = total / (double)c->subs.n;
		}
		s->sub[i].allocated = (double)(int64_t)alloc / nshards;
		if (kn_tail_pinst_create(sp, nshards, &s->sub[i].pi, err) != KN_OK) {
			kn_comp_destroy(s);
			return KN_ERR;
		}
		s->n = i + 1;
	}
	*state = s;
	return KN_OK;
}

static enum kn_tail_decision kn_comp_eval(void *state, struct kn_tail_eval *ev)
{
	struct kn_comp *s = state;
	uint64_t sec = ev->now_ns / 1000000000ull;
	if (!s->started || sec != s->cur_sec) {
		s->started = 1;
		s->cur_sec = sec;
		for (size_t i = 0; i < s->n; i++)
			s->sub[i].sampled = 0;
	}
	for (size_t i = 0; i < s->n; i++) {
		struct kn_comp_sub *sub = &s->sub[i];
		enum kn_tail_decision d = kn_tail_pinst_eval(&sub->pi, ev);
		ev->has_th = 0;
		if (d == KN_TAIL_ERROR)
			return KN_TAIL_ERROR;
		if (d != KN_TAIL_SAMPLED && d != KN_TAIL_INVERT_SAMPLED)
			continue;
		int64_t if_sampled = sub->sampled + (int64_t)ev->t->nspans;
		if ((double)if_sampled <= sub->allocated && (double)if_sampled <= s->max_total) {
			sub->sampled = if_sampled;
			return KN_TAIL_SAMPLED;
		}
		return KN_TAIL_NOT_SAMPLED;
	}
	return KN_TAIL_NOT_SAMPLED;
}

const struct kn_tail_policy_ops kn_policy_composite_ops = {
	.type = "composite",
	.table = kn_comp_table,
	.conf_size = sizeof(struct kn_comp_conf),
	.block_required = 1,
	.check = kn_comp_check,
	.create = kn_comp_create,
	.eval = kn_comp_eval,
	.destroy = kn_comp_destroy,
};
