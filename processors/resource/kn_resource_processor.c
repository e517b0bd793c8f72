/* SPDX-License-Identifier: Apache-2.0
 * The `resource` processor (see kn_resource_processor.h). Per shard: one
 * splicing editor, one attribute view and one regex scratch, reused batch
 * after batch. The resource callback loads the Resource's attributes (field
 * 1), applies the actions and emits splices; spans are not visited. */
#include "kn_resource_processor.h"

#include <stddef.h>
#include <stdlib.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_log.h"
#include "../../collector/core/kn_metrics.h"
#include "../../collector/wire/kn_wire_attrs.h"

struct rp {
	const struct kn_resource_processor_cfg *cfg;
	struct kn_metric *dropped;
	char id[96];
};

struct rp_shard {
	struct rp *rp;
	struct kn_wire_edit ed;
	struct kn_wire_attrs at;
	struct kn_attraction_scratch *sc;
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
	kn_metrics_label_escape(ctx->id, p->id, sizeof p->id);
	p->dropped = kn_metrics_processor_counter(ctx->metrics, "kansatsu_processor_edit_dropped_spans_total",
		"Spans an attribute-editing processor dropped because their chunk could not be edited (out of memory).",
		p->id, "type=\"resource\"");
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
	kn_wire_edit_init(&s->ed);
	kn_wire_attrs_init(&s->at);
	s->sc = kn_attraction_scratch_new(p->cfg->attributes.max_groups);
	if (!s->sc) {
		free(s);
		return kn_errf(err, "out of memory");
	}
	*state = s;
	return KN_OK;
}

static void rp_shard_destroy(void *state)
{
	struct rp_shard *s = state;
	if (!s)
		return;
	kn_wire_edit_free(&s->ed);
	kn_wire_attrs_free(&s->at);
	kn_attraction_scratch_free(s->sc);
	free(s);
}

static int on_resource(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_res *r)
{
	struct rp_shard *s = ctx;
	if (kn_wire_attrs_load(&s->at, r->msg, r->len, 1) < 0)
		return 0;   /* not an attribute list we can read: left as it is */
	if (kn_attractions_apply(&s->rp->cfg->attributes, s->sc, &s->at) < 0)
		return -1;
	return kn_wire_attrs_emit(&s->at, ed) < 0 ? -1 : 0;
}

static const struct kn_wire_edit_ops rp_ops = {.resource = on_resource};

static int rp_process(void *state, struct kn_batch *b, const struct kn_emit *next)
{
	struct rp_shard *s = state;
	uint64_t dropped = 0;
	struct kn_err err = {{0}};
	if (kn_wire_edit_batch(&s->ed, &rp_ops, s, b, &dropped, &err) != KN_OK) {
		kn_counter_add(s->rp->dropped, dropped);
		kn_warn("processors.%s: dropped %llu spans: %s", s->rp->id,
			    (unsigned long long)dropped, err.msg);
	}
	if (b->n == 0) {
		kn_batch_free(b);
		return KN_DROP;
	}
	kn_emit(next, b);
	return KN_OK;
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
