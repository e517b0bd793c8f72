/* SPDX-License-Identifier: Apache-2.0
 * The `resource` processor (see kn_resource_processor.h). Per shard: one
 * splicing editor, one attribute view and one regex scratch, reused batch
 * after batch. The resource callback loads the Resource's attributes (field
 * 1), applies the actions and emits splices; spans are not visited. */
#include "kn_resource_processor.h"

#include <stddef.h>
#include <stdlib.h>

#include "../../collector/attraction/kn_attraction_edit.h"
#include "../../collector/config/kn_config.h"

struct rp {
	const struct kn_resource_processor_cfg *cfg;
	struct kn_attraction_edit_inst in;
};

struct rp_shard {
	struct rp *rp;
	struct kn_attraction_edit_shard es;
};

static const struct kn_cfg_field rp_fields[] = {
	{.key = "attributes", .type = KN_F_CUSTOM,
	 .off = offsetof(struct kn_resource_processor_cfg, attributes),
	 .help = "actions on resource attributes (OTel's attributes actions)",
	 .parse = kn_attractions_parse, .free = kn_attractions_free},
	KN_CFG_END,
};

static int rp_validate(const void *cfg, const char *path, struct kn_err *err)
{
	const struct kn_resource_processor_cfg *c = cfg;
	if (c->attributes.n == 0)
		return kn_errf(err, "%s.attributes: missing (a list of at least one action)", path);
	return KN_OK;
}

static int rp_create(const struct kn_component_ctx *ctx, const void *cfg, void **inst,
		     struct kn_err *err)
{
	struct rp *p = calloc(1, sizeof *p);
	if (!p)
		return kn_errf(err, "out of memory");
	p->cfg = cfg;
	kn_attraction_edit_inst_init(&p->in, ctx, "resource");
	*inst = p;
	return KN_OK;
}

static void rp_destroy(void *inst)
{
	free(inst);
}

static int rp_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err)
{
	(void)shard;
	struct rp *p = inst;
	struct rp_shard *s = calloc(1, sizeof *s);
	if (!s)
		return kn_errf(err, "out of memory");
	s->rp = p;
	if (kn_attraction_edit_shard_init(&s->es, p->cfg->attributes.max_groups, err) != KN_OK) {
		free(s);
		return KN_ERR;
	}
	*state = s;
	return KN_OK;
}

static void rp_shard_destroy(void *state)
{
	struct rp_shard *s = state;
	if (!s)
		return;
	kn_attraction_edit_shard_free(&s->es);
	free(s);
}

static int on_resource(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_res *r)
{
	struct rp_shard *s = ctx;
	if (kn_wire_attrs_load(&s->es.at, r->msg, r->len, 1) < 0)
		return 0;   /* not an attribute list we can read: left as it is */
	if (kn_attractions_apply(&s->rp->cfg->attributes, s->es.sc, &s->es.at) < 0)
		return -1;
	return kn_wire_attrs_emit(&s->es.at, ed) < 0 ? -1 : 0;
}

static const struct kn_wire_edit_ops rp_ops = {.resource = on_resource};

static int rp_process(void *state, struct kn_batch *b, const struct kn_emit *next)
{
	struct rp_shard *s = state;
	return kn_attraction_edit_process(&s->es, &s->rp->in, &rp_ops, s, b, next);
}

const struct kn_component kn_processor_resource = {
	.type = "resource",
	.kind = KN_PROCESSOR,
	.summary = "inserts, updates, deletes, hashes, extracts and converts resource attributes",
	.any_shard = 1,
	.config_size = sizeof(struct kn_resource_processor_cfg),
	.config_fields = rp_fields,
	.validate = rp_validate,
	.create = rp_create,
	.destroy = rp_destroy,
	.shard_create = rp_shard_create,
	.process = rp_process,
	.shard_destroy = rp_shard_destroy,
};
