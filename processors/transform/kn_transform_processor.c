/* SPDX-License-Identifier: Apache-2.0
 * The `transform` processor (see kn_transform_processor.h). The groups are
 * cut into walks at create; per shard one OTTL transform context and one
 * splicing editor; per chunk one kn_wire_edit run per walk (most configs:
 * one), whose callbacks run the walk's groups of that level and emit the
 * edits of the message they were given. */
#include "kn_transform_processor.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_budget.h"
#include "../../collector/core/kn_log.h"
#include "../../collector/core/kn_metrics.h"
#include "../../collector/ottl/kn_ottl_proc.h"

#define MAX_WALKS 16
#define MAX_GROUPS 64

struct walk {
	const struct kn_ottl_group *g[MAX_GROUPS];
	uint32_t ng;
	uint8_t has[KN_OTTL_NCTX];
};

struct tp {
	struct kn_ottl_proc op;      /* error_mode, ids, the OTTL error counter and log */
	struct walk walks[MAX_WALKS];
	uint32_t nwalks;
	struct kn_metric *dropped_err, *dropped_oom;
};

struct tp_shard {
	struct tp *tp;
	struct kn_ottl_proc_shard ps;   /* OTTL context, editor, error count, failed */
	const struct walk *w;
};

/* ---- config ---- */

static const char *const errmodes[] = {"propagate", "ignore", "silent", NULL};

static int parse_statements(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	return kn_ottl_cfg_groups(node, KN_OTTL_STATEMENT, -1, dst, err);
}

static void free_groups(void *dst)
{
	kn_ottl_groups_free(dst);
}

static int refuse_signal(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	(void)dst;
	return kn_errf(err, "%s: kansatsu is a trace collector: the transform processor takes trace_statements only",
		       node->path);
}

static void no_free(void *dst)
{
	(void)dst;
}

#define REFUSE(k) {.key = k, .type = KN_F_CUSTOM, .off = offsetof(struct kn_transform_cfg, refused), \
		   .help = "refused", .parse = refuse_signal, .free = no_free}

static const struct kn_cfg_field tp_fields[] = {
	{.key = "error_mode", .type = KN_F_STR, .off = offsetof(struct kn_transform_cfg, error_mode),
	 .def = "ignore", .choices = errmodes,
	 .help = "what a statement failing at run time does: ignore (log, go on), silent, propagate (drop the data)"},
	{.key = "trace_statements", .type = KN_F_CUSTOM, .off = offsetof(struct kn_transform_cfg, statements),
	 .help = "OTTL statements (contexts inferred), or {context, statements, conditions, error_mode} groups",
	 .parse = parse_statements, .free = free_groups},
	{.key = "flatten_data", .type = KN_F_BOOL, .off = offsetof(struct kn_transform_cfg, flatten_data),
	 .help = "OTel's logs-only regrouping: only false is accepted"},
	REFUSE("metric_statements"), REFUSE("log_statements"), REFUSE("profile_statements"),
	KN_CFG_END,
};

static int tp_validate(const void *cfg, const char *path, struct kn_err *err)
{
	const struct kn_transform_cfg *c = cfg;
	if (c->flatten_data)
		return kn_errf(err, "%s.flatten_data: only false is supported (it regroups logs in OTel)", path);
	uint32_t n = 0;
	for (uint32_t i = 0; i < c->statements.n; i++)
		n += c->statements.v[i].progs.n;
	if (n == 0)
		return kn_errf(err, "%s.trace_statements: missing (a list of at least one OTTL statement)", path);
	/* walks: a group of a higher context after a lower one starts a new one */
	uint32_t walks = 1;
	for (uint32_t i = 1; i < c->statements.n; i++)
		if (c->statements.v[i].ctx < c->statements.v[i - 1].ctx)
			walks++;
	if (walks > MAX_WALKS || c->statements.n > MAX_WALKS * MAX_GROUPS)
		return kn_errf(err, "%s.trace_statements: too many groups whose contexts go back up (%u walks, at most %u)",
			       path, walks, MAX_WALKS);
	return KN_OK;
}

/* ---- instance ---- */

static int tp_create(const struct kn_component_ctx *ctx, const void *cfg, void **inst, struct kn_err *err)
{
	const struct kn_transform_cfg *c = cfg;
	struct tp *p = calloc(1, sizeof *p);
	if (!p)
		return kn_errf(err, "out of memory");
	int prev = -1;
	for (uint32_t i = 0; i < c->statements.n; i++) {
		const struct kn_ottl_group *g = &c->statements.v[i];
		if (!p->nwalks || g->ctx < prev || p->walks[p->nwalks - 1].ng == MAX_GROUPS) {
			if (p->nwalks == MAX_WALKS) {
				free(p);
				return kn_errf(err, "processors.%s.trace_statements: too many walks", ctx->id);
			}
			p->nwalks++;
		}
		struct walk *w = &p->walks[p->nwalks - 1];
		w->g[w->ng++] = g;
		w->has[g->ctx] = 1;
		prev = g->ctx;
	}
	kn_ottl_proc_init(&p->op, ctx, c->error_mode, "ignore");
	const char *dname = "kansatsu_processor_transform_spans_dropped_total";
	const char *dhelp = "Spans the transform processor dropped: a statement failed under error_mode propagate (error), or an edit could not be allocated (out_of_memory).";
	p->dropped_err = kn_metrics_processor_counter(ctx->metrics, dname, dhelp, p->op.id, "reason=\"error\"");
	p->dropped_oom = kn_metrics_processor_counter(ctx->metrics, dname, dhelp, p->op.id, "reason=\"out_of_memory\"");
	*inst = p;
	return KN_OK;
}

static void tp_destroy(void *inst)
{
	free(inst);
}

static int tp_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err)
{
	(void)shard;
	struct tp_shard *s = calloc(1, sizeof *s);
	if (!s)
		return kn_errf(err, "out of memory");
	if (kn_ottl_proc_shard_init(&s->ps, err) != KN_OK) {
		free(s);
		return KN_ERR;
	}
	s->tp = inst;
	*state = s;
	return KN_OK;
}

static void tp_shard_destroy(void *state)
{
	struct tp_shard *s = state;
	if (!s)
		return;
	kn_ottl_proc_shard_free(&s->ps);
	free(s);
}

/* Runs the walk's groups of context ctx on the current element. 0, -1 (propagate). */
static int run_groups(struct tp_shard *s, int ctx)
{
	struct tp *p = s->tp;
	const struct walk *w = s->w;
	for (uint32_t i = 0; i < w->ng; i++) {
		const struct kn_ottl_group *g = w->g[i];
		if (g->ctx != ctx)
			continue;
		int em = g->errmode >= 0 ? g->errmode : p->op.errmode;
		if (g->guards.n) {
			int r = kn_ottl_proc_guards(&p->op, &s->ps, g->guards.v, g->guards.n, em);
			if (r < 0)
				return -1;   /* logged, with error_mode propagate's words */
			if (r == 0)
				continue;
		}
		for (uint32_t k = 0; k < g->progs.n; k++) {
			if (kn_ottl_exec(g->progs.v[k], s->ps.tx) >= 0)
				continue;
			s->ps.errors++;
			kn_ottl_errlog(&p->op.log, p->op.who, em, kn_ottl_tx_error(s->ps.tx), NULL);
			if (em == KN_OTTL_PROPAGATE) {
				s->ps.failed = 1;
				return -1;
			}
		}
	}
	return 0;
}

static int on_resource(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_res *r)
{
	struct tp_shard *s = ctx;
	kn_ottl_tx_resource(s->ps.tx, r->msg, r->len);
	if (!s->w->has[KN_OTTL_CTX_RESOURCE])
		return 0;
	if (run_groups(s, KN_OTTL_CTX_RESOURCE) < 0)
		return -1;
	return kn_ottl_tx_emit(s->ps.tx, KN_OTTL_CTX_RESOURCE, ed) < 0 ? -1 : 0;
}

static int on_scope(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_scope *sc)
{
	struct tp_shard *s = ctx;
	kn_ottl_tx_scope(s->ps.tx, sc->msg, sc->len);
	if (!s->w->has[KN_OTTL_CTX_SCOPE])
		return 0;
	if (run_groups(s, KN_OTTL_CTX_SCOPE) < 0)
		return -1;
	return kn_ottl_tx_emit(s->ps.tx, KN_OTTL_CTX_SCOPE, ed) < 0 ? -1 : 0;
}

static int on_span(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_span *sp)
{
	struct tp_shard *s = ctx;
	const struct walk *w = s->w;
	if (!w->has[KN_OTTL_CTX_SPAN] && !w->has[KN_OTTL_CTX_SPANEVENT])
		return 0;
	kn_ottl_tx_span(s->ps.tx, sp->span, sp->span_len);
	if (w->has[KN_OTTL_CTX_SPAN] && run_groups(s, KN_OTTL_CTX_SPAN) < 0)
		return -1;
	if (w->has[KN_OTTL_CTX_SPANEVENT]) {
		int n = kn_ottl_tx_nevents(s->ps.tx);
		if (n < 0)
			return -1;
		for (int i = 0; i < n; i++) {
			kn_ottl_tx_event(s->ps.tx, (uint32_t)i);
			if (run_groups(s, KN_OTTL_CTX_SPANEVENT) < 0 || kn_ottl_tx_event_done(s->ps.tx) < 0)
				return -1;
		}
	}
	return kn_ottl_tx_emit(s->ps.tx, KN_OTTL_CTX_SPAN, ed) < 0 ? -1 : 0;
}

static const struct kn_wire_edit_ops tp_ops = {.resource = on_resource, .scope = on_scope, .span = on_span};

static int tp_process(void *state, struct kn_batch *b, const struct kn_emit *next)
{
	struct tp_shard *s = state;
	struct tp *p = s->tp;
	uint64_t drop_err = 0, drop_oom = 0;
	uint32_t w = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		struct kn_chunk *c = b->chunks[i];
		int ok = 1;
		for (uint32_t k = 0; k < p->nwalks && ok; k++) {
			struct kn_chunk *nc = NULL;
			struct kn_err err = {{0}};
			s->w = &p->walks[k];
			s->ps.failed = 0;
			if (kn_wire_edit_run(&s->ps.ed, &tp_ops, s, c->data, c->len, c->nspans, c, &nc, &err) != KN_OK) {
				if (s->ps.failed) {
					drop_err += c->nspans;
				} else {
					drop_oom += c->nspans;
					kn_warn("%s: dropped a chunk of %u spans: %s", p->op.who, c->nspans, err.msg);
				}
				b->nspans -= c->nspans;
				b->bytes -= c->len;
				kn_chunk_unref(c);
				ok = 0;
				break;
			}
			if (nc) {
				if (kn_budget_try_charge(nc->len))
					nc->charged = nc->len;
				b->bytes = b->bytes - c->len + nc->len;
				kn_chunk_unref(c);
				c = nc;
			}
		}
		if (ok)
			b->chunks[w++] = c;
	}
	b->n = w;
	if (drop_err)
		kn_counter_add(p->dropped_err, drop_err);
	if (drop_oom)
		kn_counter_add(p->dropped_oom, drop_oom);
	kn_ottl_proc_flush(&p->op, &s->ps);
	if (b->n == 0) {
		kn_batch_free(b);
		return KN_DROP;
	}
	kn_emit(next, b);
	return KN_OK;
}

const struct kn_component kn_processor_transform = {
	.type = "transform",
	.kind = KN_PROCESSOR,
	.summary = "changes resources, scopes, spans and span events with OTTL statements",
	.any_shard = 1,
	.config_size = sizeof(struct kn_transform_cfg),
	.config_fields = tp_fields,
	.validate = tp_validate,
	.create = tp_create,
	.destroy = tp_destroy,
	.shard_create = tp_shard_create,
	.process = tp_process,
	.shard_destroy = tp_shard_destroy,
};
