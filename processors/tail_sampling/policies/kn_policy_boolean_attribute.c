/* SPDX-License-Identifier: Apache-2.0
 * boolean_attribute: samples a trace when a resource or span attribute `key`
 * equals `value`. As in OTel the attribute is read with pdata's Bool(): a
 * non-bool attribute reads as false (so `value: false` matches it).
 * invert_match: any match -> InvertNotSampled, none -> InvertSampled.
 * Stateless; one walk. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kn_tail_policy_int.h"

struct kn_bool_conf {
	char *key;
	int value;
	int invert_match;
};

static const struct kn_cfg_field kn_bool_table[] = {
	{.key = "key", .type = KN_F_STR, .off = offsetof(struct kn_bool_conf, key), .required = 1,
	 .help = "attribute key"},
	{.key = "value", .type = KN_F_BOOL, .off = offsetof(struct kn_bool_conf, value),
	 .help = "the value that matches"},
	{.key = "invert_match", .type = KN_F_BOOL, .off = offsetof(struct kn_bool_conf, invert_match),
	 .help = "sample traces that do NOT match"},
	KN_CFG_END,
};

static int kn_bool_check(void *conf, const char *path, struct kn_err *err)
{
	struct kn_bool_conf *c = conf;
	if (!c->key || !c->key[0])
		return kn_errf(err, "%s.key: must not be empty", path);
	return KN_OK;
}

static int kn_bool_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			  struct kn_err *err)
{
	(void)nshards;
	(void)err;
	*state = pc->conf;
	return KN_OK;
}

static int kn_bool_match(void *ctx, const struct kn_tail_value *v, int is_span)
{
	const struct kn_bool_conf *c = ctx;
	(void)is_span;
	return kn_tail_value_bool(v) == (c->value != 0);
}

static enum kn_tail_decision kn_bool_eval(void *state, struct kn_tail_eval *ev)
{
	struct kn_bool_conf *c = state;
	return kn_tail_match_attr(ev, c->key, strlen(c->key), kn_bool_match, c, c->invert_match);
}

const struct kn_tail_policy_ops kn_policy_boolean_attribute_ops = {
	.type = "boolean_attribute",
	.table = kn_bool_table,
	.conf_size = sizeof(struct kn_bool_conf),
	.block_required = 1,
	.check = kn_bool_check,
	.create = kn_bool_create,
	.eval = kn_bool_eval,
};
