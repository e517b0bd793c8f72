/* SPDX-License-Identifier: Apache-2.0
 * The `attributes` processor (see kn_attributes_processor.h). Per shard: one
 * splicing editor, a view of the span's attributes, a view of the current
 * Resource's attributes (loaded once per ResourceSpans, only when a filter
 * needs it), and a regex scratch. Per span: load its attributes, match the
 * filters, apply the actions, emit splices. */
#include "kn_attributes_processor.h"

#include <stddef.h>
#include <stdlib.h>

#include "../../collector/attraction/kn_attraction_edit.h"
#include "../../collector/config/kn_config.h"
#include "../../collector/wire/kn_wire_field.h"

struct ap {
	const struct kn_attributes_processor_cfg *cfg;
	struct kn_attraction_edit_inst in;
};

struct ap_shard {
	struct ap *ap;
	struct kn_attraction_edit_shard es; /* es.at: the span's attributes */
	struct kn_wire_attrs rat;    /* the resource's */
	int res_loaded;
	const uint8_t *scope;        /* scope whose name / version are below */
	const uint8_t *scope_name, *scope_version;
	uint32_t scope_name_len, scope_version_len;
};

static const struct kn_cfg_field ap_fields[] = {
	{.key = "actions", .type = KN_F_CUSTOM,
	 .off = offsetof(struct kn_attributes_processor_cfg, actions),
	 .help = "actions on span attributes (OTel's attributes actions)",
	 .parse = kn_attractions_parse, .free = kn_attractions_free},
	{.key = "include", .type = KN_F_CUSTOM,
	 .off = offsetof(struct kn_attributes_processor_cfg, include),
	 .help = "only spans matching these properties",
	 .parse = kn_af_parse, .free = kn_af_free},
	{.key = "exclude", .type = KN_F_CUSTOM,
	 .off = offsetof(struct kn_attributes_processor_cfg, exclude),
	 .help = "never spans matching these properties (wins over include)",
	 .parse = kn_af_parse, .free = kn_af_free},
	KN_CFG_END,
};

static int ap_validate(const void *cfg, const char *path, struct kn_err *err)
{
	const struct kn_attributes_processor_cfg *c = cfg;
	if (c->actions.n == 0)
		return kn_errf(err, "%s.actions: missing (a list of at least one action)", path);
	return KN_OK;
}

static int ap_create(const struct kn_component_ctx *ctx, const void *cfg, void **inst,
		     struct kn_err *err)
{
	struct ap *p = calloc(1, sizeof *p);
	if (!p)
		return kn_errf(err, "out of memory");
	p->cfg = cfg;
	kn_attraction_edit_inst_init(&p->in, ctx, "attributes");
	*inst = p;
	return KN_OK;
}

static void ap_destroy(void *inst)
{
	free(inst);
}

static int ap_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err)
{
	(void)shard;
	struct ap *p = inst;
	struct ap_shard *s = calloc(1, sizeof *s);
	if (!s)
		return kn_errf(err, "out of memory");
	s->ap = p;
	if (kn_attraction_edit_shard_init(&s->es, p->cfg->actions.max_groups, err) != KN_OK) {
		free(s);
		return KN_ERR;
	}
	kn_wire_attrs_init(&s->rat);
	*state = s;
	return KN_OK;
}

static void ap_shard_destroy(void *state)
{
	struct ap_shard *s = state;
	if (!s)
		return;
	kn_attraction_edit_shard_free(&s->es);
	kn_wire_attrs_free(&s->rat);
	free(s);
}

/* A new ResourceSpans: what was read of the previous one is stale. */
static int on_resource(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_res *r)
{
	(void)ed;
	(void)r;
	struct ap_shard *s = ctx;
	s->res_loaded = 0;
	s->scope = NULL;
	return 0;
}

static void read_scope(struct ap_shard *s, const uint8_t *scope, uint32_t len)
{
	s->scope = scope;
	s->scope_name = s->scope_version = (const uint8_t *)"";
	s->scope_name_len = s->scope_version_len = 0;
	const uint8_t *p = scope, *end = scope + len;
	struct kn_wire_field f;
	while (scope && kn_wire_field_next(&p, end, &f) > 0) {
		if (f.wt != KN_WIRE_FIELD_LEN)
			continue;
		if (f.num == 1) {
			s->scope_name = f.payload;
			s->scope_name_len = (uint32_t)f.len;
		} else if (f.num == 2) {
			s->scope_version = f.payload;
			s->scope_version_len = (uint32_t)f.len;
		}
	}
}

static int selected(struct ap_shard *s, const struct kn_wire_edit_span *sp)
{
	const struct kn_attributes_processor_cfg *c = s->ap->cfg;
	if (!c->include.present && !c->exclude.present)
		return 1;
	if (!s->res_loaded) {
		if (kn_wire_attrs_load(&s->rat, sp->resource, sp->resource_len, 1) < 0)
			kn_wire_attrs_load(&s->rat, NULL, 0, 1);
		s->res_loaded = 1;
	}
	if (!sp->scope || s->scope != sp->scope)
		read_scope(s, sp->scope, sp->scope_len);
	struct kn_af_subject subj = {
		.span_attrs = &s->es.at, .res_attrs = &s->rat,
		.scope_name = s->scope_name, .scope_name_len = s->scope_name_len,
		.scope_version = s->scope_version, .scope_version_len = s->scope_version_len,
		.name = (const uint8_t *)"", .name_len = 0, .kind = 0,
	};
	const uint8_t *p = sp->span, *end = sp->span + sp->span_len;
	struct kn_wire_field f;
	while (kn_wire_field_next(&p, end, &f) > 0) {
		if (f.num == 5 && f.wt == KN_WIRE_FIELD_LEN) {
			subj.name = f.payload;
			subj.name_len = (uint32_t)f.len;
		} else if (f.num == 6 && f.wt == KN_WIRE_FIELD_VARINT) {
			subj.kind = (int32_t)f.value;
		}
	}
	if (c->include.present && !kn_af_match(&c->include, s->es.sc, &subj))
		return 0;
	if (c->exclude.present && kn_af_match(&c->exclude, s->es.sc, &subj))
		return 0;
	return 1;
}

static int on_span(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_span *sp)
{
	struct ap_shard *s = ctx;
	if (kn_wire_attrs_load(&s->es.at, sp->span, sp->span_len, 9) < 0)
		return 0;   /* not an attribute list we can read: left as it is */
	if (!selected(s, sp))
		return 0;
	if (kn_attractions_apply(&s->ap->cfg->actions, s->es.sc, &s->es.at) < 0)
		return -1;
	return kn_wire_attrs_emit(&s->es.at, ed) < 0 ? -1 : 0;
}

static const struct kn_wire_edit_ops ap_ops = {.resource = on_resource, .span = on_span};

static int ap_process(void *state, struct kn_batch *b, const struct kn_emit *next)
{
	struct ap_shard *s = state;
	return kn_attraction_edit_process(&s->es, &s->ap->in, &ap_ops, s, b, next);
}

const struct kn_component kn_processor_attributes = {
	.type = "attributes",
	.kind = KN_PROCESSOR,
	.summary = "inserts, updates, deletes, hashes, extracts and converts span attributes, with include/exclude",
	.any_shard = 1,
	.config_size = sizeof(struct kn_attributes_processor_cfg),
	.config_fields = ap_fields,
	.validate = ap_validate,
	.create = ap_create,
	.destroy = ap_destroy,
	.shard_create = ap_shard_create,
	.process = ap_process,
	.shard_destroy = ap_shard_destroy,
};
