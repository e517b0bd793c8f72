/* SPDX-License-Identifier: Apache-2.0
 * numeric_attribute: samples a trace when a resource or span attribute
 * `key` has an int value in [min_value, max_value] (either bound may be
 * omitted, not both). As in OTel, the value is read with pdata's Int(): a
 * non-int attribute (string, double, ...) reads as 0. invert_match: any match
 * gives InvertNotSampled, no match (or no such key) InvertSampled.
 * Stateless; one walk. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kn_tail_policy_int.h"

struct kn_numeric_conf {
	char *key;
	struct kn_tail_optint min_value, max_value;
	int invert_match;
};

static const struct kn_cfg_field kn_numeric_table[] = {
	{.key = "key", .type = KN_F_STR, .off = offsetof(struct kn_numeric_conf, key), .required = 1,
	 .help = "attribute key"},
	{.key = "min_value", .type = KN_F_CUSTOM, .off = offsetof(struct kn_numeric_conf, min_value),
	 .parse = kn_tail_optint_parse, .free = kn_tail_optint_free, .help = "lowest matching value"},
	{.key = "max_value", .type = KN_F_CUSTOM, .off = offsetof(struct kn_numeric_conf, max_value),
	 .parse = kn_tail_optint_parse, .free = kn_tail_optint_free, .help = "highest matching value"},
	{.key = "invert_match", .type = KN_F_BOOL, .off = offsetof(struct kn_numeric_conf, invert_match),
	 .help = "sample traces that do NOT match"},
	KN_CFG_END,
};

static int kn_numeric_check(void *conf, const char *path, struct kn_err *err)
{
	struct kn_numeric_conf *c = conf;
	if (!c->key || !c->key[0])
		return kn_errf(err, "%s.key: must not be empty", path);
	if (!c->min_value.set && !c->max_value.set)
		return kn_errf(err, "%s: min_value or max_value is required", path);
	if (c->min_value.set && c->max_value.set && c->min_value.v > c->max_value.v)
		return kn_errf(err, "%s.min_value: %lld is greater than max_value %lld", path,
			       (long long)c->min_value.v, (long long)c->max_value.v);
	return KN_OK;
}

struct kn_numeric {
	const char *key;
	size_t keylen;
	int64_t lo, hi;
	int invert;
};

static int kn_numeric_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			     struct kn_err *err)
{
	const struct kn_numeric_conf *c = pc->conf;
	struct kn_numeric *n = calloc(1, sizeof *n);
	(void)nshards;
	if (!n)
		return kn_errf(err, "out of memory");
	n->key = c->key;
	n->keylen = strlen(c->key);
	n->lo = c->min_value.set ? c->min_value.v : INT64_MIN;
	n->hi = c->max_value.set ? c->max_value.v : INT64_MAX;
	n->invert = c->invert_match;
	*state = n;
	return KN_OK;
}

static int kn_numeric_match(void *ctx, const struct kn_tail_value *v, int is_span)
{
	const struct kn_numeric *n = ctx;
	int64_t x = kn_tail_value_int(v);
	(void)is_span;
	return x >= n->lo && x <= n->hi;
}

static enum kn_tail_decision kn_numeric_eval(void *state, struct kn_tail_eval *ev)
{
	struct kn_numeric *n = state;
	return kn_tail_match_attr(ev, n->key, n->keylen, kn_numeric_match, n, n->invert);
}

const struct kn_tail_policy_ops kn_policy_numeric_attribute_ops = {
	.type = "numeric_attribute",
	.table = kn_numeric_table,
	.conf_size = sizeof(struct kn_numeric_conf),
	.block_required = 1,
	.check = kn_numeric_check,
	.create = kn_numeric_create,
	.eval = kn_numeric_eval,
	.destroy = free,
};
