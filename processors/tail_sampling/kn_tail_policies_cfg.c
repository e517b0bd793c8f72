/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_policies_cfg: parses the OpenTelemetry Collector's tail_sampling
 * `policies:` list (and the sub-policy lists of and / drop / not /
 * composite) into immutable struct kn_tail_pcfg trees, and holds the
 * registry of policy types.
 *
 * Shape (as in the OTel Collector): a list of maps
 *   {name, type, <type>: {type-specific keys}}
 * where the block key equals the type ("latency: {threshold_ms: 5000}").
 * Rules, each an error naming its path:
 *  - `type` is required and must be a type kansatsu implements (other OTel
 *    types, trace_flags, are reported as unsupported, never ignored);
 *  - `name` is required for top-level and composite sub-policies (metrics and
 *    rate_allocation refer to it) and unique among its siblings;
 *  - any other key is the type's block; a block for a different type
 *    ("latency:" on a string_attribute policy) is an error, where OTel
 *    silently ignores it; keys inside the block go through the type's config
 *    table (unknown keys, wrong types, bounds, missing required keys);
 *  - sub-policy nesting is OTel's: and_sub_policy, drop_sub_policy and
 *    not_sub_policy hold leaf policies only; composite_sub_policy holds leaf
 *    policies or `and`.
 *
 * Ownership: the parsed tree owns its strings (malloc'd) and is freed by
 * kn_tail_policies_free. Runs at config time only (allocation is fine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kn_tail_policy.h"
#include "policies/kn_tail_policy_int.h"

extern const struct kn_tail_policy_ops kn_policy_sli_ops; /* policies/kn_policy_sli.c */
extern const struct kn_tail_policy_ops kn_policy_ottl_condition_ops; /* policies/kn_policy_ottl_condition.c */

const struct kn_tail_policy_ops *const kn_tail_policy_types[] = {
	&kn_policy_always_sample_ops,
	&kn_policy_latency_ops,
	&kn_policy_numeric_attribute_ops,
	&kn_policy_probabilistic_ops,
	&kn_policy_status_code_ops,
	&kn_policy_string_attribute_ops,
	&kn_policy_rate_limiting_ops,
	&kn_policy_bytes_limiting_ops,
	&kn_policy_span_count_ops,
	&kn_policy_trace_state_ops,
	&kn_policy_boolean_attribute_ops,
	&kn_policy_ottl_condition_ops,
	&kn_policy_and_ops,
	&kn_policy_not_ops,
	&kn_policy_drop_ops,
	&kn_policy_composite_ops,
	&kn_policy_sli_ops,
	NULL,
};

/* OTel types kansatsu knows about but does not implement. */
static const char *const kn_tail_unsupported[] = {
	"trace_flags", NULL,
};

enum kn_tail_level { KN_LVL_TOP, KN_LVL_COMPOSITE, KN_LVL_LEAF };

const struct kn_tail_policy_ops *kn_tail_policy_find(const char *type)
{
	for (size_t i = 0; kn_tail_policy_types[i]; i++)
		if (strcmp(kn_tail_policy_types[i]->type, type) == 0)
			return kn_tail_policy_types[i];
	return NULL;
}

static int kn_tail_is_combinator(const struct kn_tail_policy_ops *ops)
{
	return ops == &kn_policy_and_ops || ops == &kn_policy_not_ops ||
	       ops == &kn_policy_drop_ops || ops == &kn_policy_composite_ops;
}

static const char *kn_node_kind(const struct kn_cnode *n)
{
	switch (n->type) {
	case KN_CNODE_MAP:
		return "a map";
	case KN_CNODE_SEQ:
		return "a list";
	case KN_CNODE_SCALAR:
		return "a scalar";
	default:
		return "nothing";
	}
}

static void kn_tail_pcfg_free(struct kn_tail_pcfg *pc)
{
	if (!pc)
		return;
	if (pc->conf && pc->ops && pc->ops->table)
		kn_cfg_free(pc->ops->table, pc->conf);
	free(pc->conf);
	free(pc->name);
	free(pc->path);
	memset(pc, 0, sizeof *pc);
}

static int kn_tail_type_list(char *buf, size_t cap, enum kn_tail_level lvl)
{
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; kn_tail_policy_types[i]; i++) {
		const struct kn_tail_policy_ops *o = kn_tail_policy_types[i];
		if (lvl == KN_LVL_LEAF && kn_tail_is_combinator(o))
			continue;
		if (lvl == KN_LVL_COMPOSITE && kn_tail_is_combinator(o) && o != &kn_policy_and_ops)
			continue;
		int w = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", o->type);
		if (w < 0 || (size_t)w >= cap - n)
			return -1;
		n += (size_t)w;
	}
	return 0;
}

static int kn_tail_pcfg_parse(const struct kn_cnode *n, enum kn_tail_level lvl,
			      struct kn_tail_pcfg *pc, struct kn_err *err)
{
	const struct kn_cnode *type, *name, *block;
	char types[400], bpath[600];

	memset(pc, 0, sizeof *pc);
	if (n->type != KN_CNODE_MAP)
		return kn_errf(err, "%s: expected a map (a policy with name and type), got %s",
			       n->path, kn_node_kind(n));
	if (!(pc->path = strdup(n->path)))
		return kn_errf(err, "%s: out of memory", n->path);
	name = kn_cnode_get(n, "name");
	if (name && name->type != KN_CNODE_NULL) {
		if (name->type != KN_CNODE_SCALAR)
			return kn_errf(err, "%s.name: expected a string, got %s", n->path,
				       kn_node_kind(name));
		if (name->value[0] && !(pc->name = strdup(name->value)))
			return kn_errf(err, "%s.name: out of memory", n->path);
	}
	if (!pc->name && lvl != KN_LVL_LEAF)
		return kn_errf(err, "%s.name: missing", n->path);
	type = kn_cnode_get(n, "type");
	if (!type || type->type == KN_CNODE_NULL)
		return kn_errf(err, "%s.type: missing", n->path);
	if (type->type != KN_CNODE_SCALAR)
		return kn_errf(err, "%s.type: expected a string, got %s", n->path, kn_node_kind(type));
	pc->ops = kn_tail_policy_find(type->value);
	if (!pc->ops) {
		for (size_t i = 0; kn_tail_unsupported[i]; i++)
			if (strcmp(kn_tail_unsupported[i], type->value) == 0)
				return kn_errf(err, "%s.type: policy type \"%s\" is not supported by kansatsu",
					       n->path, type->value);
		kn_tail_type_list(types, sizeof types, KN_LVL_TOP);
		return kn_errf(err, "%s.type: unknown policy type \"%s\" (known: %s)", n->path,
			       type->value, types);
	}
	if ((lvl == KN_LVL_LEAF && kn_tail_is_combinator(pc->ops)) ||
	    (lvl == KN_LVL_COMPOSITE && kn_tail_is_combinator(pc->ops) &&
	     pc->ops != &kn_policy_and_ops)) {
		kn_tail_type_list(types, sizeof types, lvl);
		return kn_errf(err, "%s.type: \"%s\" cannot be used here (allowed: %s)", n->path,
			       type->value, types);
	}
	/* every other key must be this type's block */
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->children[i].key;
		if (strcmp(k, "name") == 0 || strcmp(k, "type") == 0)
			continue;
		if (pc->ops->table && strcmp(k, pc->ops->type) == 0)
			continue;
		if (kn_tail_policy_find(k))
			return kn_errf(err, "%s.%s: does not apply to a policy of type \"%s\"", n->path,
				       k, pc->ops->type);
		return kn_errf(err, "%s.%s: unknown key", n->path, k);
	}
	if (!pc->ops->table)
		return KN_OK;
	snprintf(bpath, sizeof bpath, "%s.%s", n->path, pc->ops->type);
	block = kn_cnode_get(n, pc->ops->type);
	if (pc->ops->block_required && (!block || block->type == KN_CNODE_NULL))
		return kn_errf(err, "%s: missing", bpath);
	if (block && block->type != KN_CNODE_NULL && block->type != KN_CNODE_MAP)
		return kn_errf(err, "%s: expected a map, got %s", bpath, kn_node_kind(block));
	if (!(pc->conf = calloc(1, pc->ops->conf_size)))
		return kn_errf(err, "%s: out of memory", bpath);
	if (kn_cfg_apply_at(pc->ops->table, block, bpath, pc->conf, err) != KN_OK)
		return KN_ERR;
	if (pc->ops->check && pc->ops->check(pc->conf, bpath, err) != KN_OK)
		return KN_ERR;
	return KN_OK;
}

static void kn_tail_plist_clear(struct kn_tail_plist *l)
{
	for (size_t i = 0; i < l->n; i++)
		kn_tail_pcfg_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void kn_tail_plist_free(void *dst)
{
	if (dst)
		kn_tail_plist_clear(dst);
}

/* Parses a list node into l (zeroed); l holds what was parsed on error. */
static int kn_tail_plist_parse_lvl(const struct kn_cnode *node, enum kn_tail_level lvl,
				   struct kn_tail_plist *l, struct kn_err *err)
{
	if (node->type == KN_CNODE_NULL || (node->type == KN_CNODE_SEQ && node->n == 0))
		return kn_errf(err, "%s: at least one policy is required", node->path);
	if (node->type != KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a list of policies, got %s", node->path,
			       kn_node_kind(node));
	if (!(l->v = calloc(node->n, sizeof *l->v)))
		return kn_errf(err, "%s: out of memory", node->path);
	for (size_t i = 0; i < node->n; i++) {
		l->n = i + 1;
		if (kn_tail_pcfg_parse(&node->children[i], lvl, &l->v[i], err) != KN_OK)
			return KN_ERR;
		for (size_t j = 0; l->v[i].name && j < i; j++)
			if (l->v[j].name && strcmp(l->v[j].name, l->v[i].name) == 0)
				return kn_errf(err, "%s.name: duplicate policy name \"%s\" (also %s)",
					       l->v[i].path, l->v[i].name, l->v[j].path);
	}
	return KN_OK;
}

int kn_tail_plist_parse_leaf(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	return kn_tail_plist_parse_lvl(node, KN_LVL_LEAF, dst, err);
}

int kn_tail_plist_parse_composite(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	return kn_tail_plist_parse_lvl(node, KN_LVL_COMPOSITE, dst, err);
}

int kn_tail_plist_parse_one_leaf(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	struct kn_tail_plist *l = dst;
	if (node->type == KN_CNODE_NULL)
		return kn_errf(err, "%s: missing", node->path);
	if (node->type != KN_CNODE_MAP)
		return kn_errf(err, "%s: expected a map (one policy), got %s", node->path,
			       kn_node_kind(node));
	if (!(l->v = calloc(1, sizeof *l->v)))
		return kn_errf(err, "%s: out of memory", node->path);
	l->n = 1;
	return kn_tail_pcfg_parse(node, KN_LVL_LEAF, &l->v[0], err);
}

int kn_tail_optint_parse(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	struct kn_tail_optint *o = dst;
	o->set = 0;
	if (node->type == KN_CNODE_NULL)
		return KN_OK;
	if (node->type != KN_CNODE_SCALAR)
		return kn_errf(err, "%s: expected an integer, got %s", node->path, kn_node_kind(node));
	if (kn_parse_int(node->value, node->path, &o->v, err) != KN_OK)
		return KN_ERR;
	o->set = 1;
	return KN_OK;
}

void kn_tail_optint_free(void *dst)
{
	memset(dst, 0, sizeof(struct kn_tail_optint));
}

int kn_tail_policies_parse(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	struct kn_tail_policies_cfg **out = dst, *cfg;
	if (!(cfg = calloc(1, sizeof *cfg)))
		return kn_errf(err, "%s: out of memory", node->path);
	*out = cfg; /* freed by kn_tail_policies_free even when parsing fails */
	return kn_tail_plist_parse_lvl(node, KN_LVL_TOP, &cfg->list, err);
}

void kn_tail_policies_free(void *dst)
{
	struct kn_tail_policies_cfg **p = dst;
	if (!p || !*p)
		return;
	kn_tail_plist_clear(&(*p)->list);
	free(*p);
	*p = NULL;
}

size_t kn_tail_policies_count(const struct kn_tail_policies_cfg *cfg)
{
	return cfg ? cfg->list.n : 0;
}
