/* SPDX-License-Identifier: Apache-2.0
 * The `filter` processor (see kn_filter_processor.h). Per shard: one OTTL
 * transform context, one splicing editor (events cut out of kept spans),
 * one span filter (dropped spans left out) and the keep list. Per chunk:
 * one walk of the framing with the resource / scope / span callbacks; the
 * copies happen only when something is dropped. */
#include "kn_filter_processor.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_budget.h"
#include "../../collector/core/kn_grow.h"
#include "../../collector/core/kn_log.h"
#include "../../collector/core/kn_metrics.h"
#include "../../collector/ottl/kn_ottl_proc.h"
#include "../../collector/wire/kn_wire_filter.h"

enum { R_SPAN, R_RESOURCE, R_SCOPE, R_ERROR, R_OOM, R_N };
static const char *const reasons[R_N] = {"span", "resource", "scope", "error", "out_of_memory"};

struct fp {
	const struct kn_filter_cfg *cfg;
	struct kn_ottl_proc op;      /* error_mode, ids, the OTTL error counter and log */
	/* groups by context, from both shapes, in config order */
	const struct kn_ottl_group *g[KN_OTTL_NCTX][32];
	uint32_t ng[KN_OTTL_NCTX];
	struct kn_metric *dropped[R_N], *events;
};

struct fp_shard {
	struct fp *fp;
	struct kn_ottl_proc_shard ps;   /* OTTL context, editor, error count, failed */
	struct kn_wire_filter wf;
	struct kn_wire_keep *keep;
	uint32_t cap_keep, nspan, ndrop;
	int res_drop, scope_drop;   /* the current resource / scope is dropped (a reason) */
	uint64_t cnt[R_N], events;
};

/* ---- config ---- */

static const char *const errmodes[] = {"propagate", "ignore", "silent", NULL};

static int parse_traces(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	struct kn_ottl_groups *g = dst;
	if (node->type == KN_CNODE_NULL)
		return KN_OK;
	if (node->type != KN_CNODE_MAP)
		return kn_errf(err, "%s: expected a map with span and/or spanevent", node->path);
	for (size_t i = 0; i < node->n; i++) {
		const struct kn_cnode *c = &node->children[i];
		int ctx = !strcmp(c->key, "span") ? KN_OTTL_CTX_SPAN
			  : !strcmp(c->key, "spanevent") ? KN_OTTL_CTX_SPANEVENT : -1;
		if (ctx < 0)
			return kn_errf(err, "%s: unknown key (supported: span, spanevent)", c->path);
		struct kn_ottl_group *v = realloc(g->v, (g->n + 1) * sizeof *v);
		if (!v)
			return kn_errf(err, "%s: out of memory", c->path);
		g->v = v;
		memset(&v[g->n], 0, sizeof v[g->n]);
		v[g->n].ctx = ctx;
		v[g->n].errmode = -1;
		g->n++;
		if (kn_ottl_cfg_list(c, KN_OTTL_CONDITION, ctx, &v[g->n - 1].progs, err) != KN_OK)
			return KN_ERR;
	}
	return KN_OK;
}

static int parse_conditions(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	return kn_ottl_cfg_groups(node, KN_OTTL_CONDITION, -1, dst, err);
}

static void free_groups(void *dst)
{
	kn_ottl_groups_free(dst);
}

static int refuse_signal(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	(void)dst;
	return kn_errf(err, "%s: kansatsu is a trace collector: the filter processor filters traces only "
		       "(traces.span, traces.spanevent, trace_conditions)", node->path);
}

static int refuse_spans(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	(void)dst;
	return kn_errf(err, "%s: the legacy include/exclude shape is not supported; write OTTL conditions "
		       "under traces.span (a span for which one holds is dropped)", node->path);
}

static void no_free(void *dst)
{
	(void)dst;
}

#define REFUSE(k, fn) {.key = k, .type = KN_F_CUSTOM, .off = offsetof(struct kn_filter_cfg, refused), \
		       .help = "refused", .parse = fn, .free = no_free}

static const struct kn_cfg_field fp_fields[] = {
	{.key = "error_mode", .type = KN_F_STR, .off = offsetof(struct kn_filter_cfg, error_mode),
	 .def = "propagate", .choices = errmodes,
	 .help = "what a condition failing at run time does: propagate (drop the data), ignore (log), silent"},
	{.key = "traces", .type = KN_F_CUSTOM, .off = offsetof(struct kn_filter_cfg, traces),
	 .help = "span / spanevent: OTTL conditions; what any matches is dropped",
	 .parse = parse_traces, .free = free_groups},
	{.key = "trace_conditions", .type = KN_F_CUSTOM, .off = offsetof(struct kn_filter_cfg, conditions),
	 .help = "OTTL conditions with inferred contexts, or {context, conditions, error_mode} groups",
	 .parse = parse_conditions, .free = free_groups},
	REFUSE("metrics", refuse_signal), REFUSE("logs", refuse_signal), REFUSE("profiles", refuse_signal),
	REFUSE("metric_conditions", refuse_signal), REFUSE("log_conditions", refuse_signal),
	REFUSE("profile_conditions", refuse_signal), REFUSE("spans", refuse_spans),
	KN_CFG_END,
};

static int fp_validate(const void *cfg, const char *path, struct kn_err *err)
{
	const struct kn_filter_cfg *c = cfg;
	uint32_t n = 0;
	for (uint32_t i = 0; i < c->traces.n; i++)
		n += c->traces.v[i].progs.n;
	for (uint32_t i = 0; i < c->conditions.n; i++)
		n += c->conditions.v[i].progs.n;
	if (n == 0)
		return kn_errf(err, "%s: no conditions (traces.span, traces.spanevent or trace_conditions)", path);
	if (c->traces.n + c->conditions.n > 32)
		return kn_errf(err, "%s: more than 32 condition groups", path);
	return KN_OK;
}

/* ---- instance ---- */

static int fp_create(const struct kn_component_ctx *ctx, const void *cfg, void **inst, struct kn_err *err)
{
	const struct kn_filter_cfg *c = cfg;
	struct fp *p = calloc(1, sizeof *p);
	if (!p)
		return kn_errf(err, "out of memory");
	p->cfg = c;
	kn_ottl_proc_init(&p->op, ctx, c->error_mode, "propagate");
	const struct kn_ottl_groups *all[2] = {&c->traces, &c->conditions};
	for (int a = 0; a < 2; a++)
		for (uint32_t i = 0; i < all[a]->n; i++) {
			const struct kn_ottl_group *g = &all[a]->v[i];
			if (p->ng[g->ctx] < 32)
				p->g[g->ctx][p->ng[g->ctx]++] = g;
		}
	for (int r = 0; r < R_N; r++) {
		char extra[64];
		snprintf(extra, sizeof extra, "reason=\"%s\"", reasons[r]);
		p->dropped[r] = kn_metrics_processor_counter(ctx->metrics, "kansatsu_processor_filter_spans_dropped_total",
			"Spans the filter processor dropped, by reason (the level whose condition matched, a failed condition under error_mode propagate, out of memory).",
			p->op.id, extra);
	}
	p->events = kn_metrics_processor_counter(ctx->metrics, "kansatsu_processor_filter_span_events_dropped_total",
		"Span events the filter processor dropped (a spanevent condition matched).", p->op.id, NULL);
	*inst = p;
	return KN_OK;
}

static void fp_destroy(void *inst)
{
	free(inst);
}

static int fp_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err)
{
	(void)shard;
	struct fp_shard *s = calloc(1, sizeof *s);
	if (!s)
		return kn_errf(err, "out of memory");
	if (kn_ottl_proc_shard_init(&s->ps, err) != KN_OK) {
		free(s);
		return KN_ERR;
	}
	s->fp = inst;
	kn_wire_filter_init(&s->wf);
	*state = s;
	return KN_OK;
}

static void fp_shard_destroy(void *state)
{
	struct fp_shard *s = state;
	if (!s)
		return;
	kn_ottl_proc_shard_free(&s->ps);
	kn_wire_filter_free(&s->wf);
	free(s->keep);
	free(s);
}

/* 1 when a group of ctx matches, 0 none, -1 failed under propagate. */
static int level(struct fp_shard *s, int ctx)
{
	struct fp *p = s->fp;
	for (uint32_t i = 0; i < p->ng[ctx]; i++) {
		const struct kn_ottl_group *g = p->g[ctx][i];
		int em = g->errmode >= 0 ? g->errmode : p->op.errmode;
		int r = kn_ottl_proc_guards(&p->op, &s->ps, g->progs.v, g->progs.n, em);
		if (r < 0)
			return -1;   /* logged, with error_mode propagate's words */
		if (r > 0)
			return 1;
	}
	return 0;
}

static int on_resource(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_res *r)
{
	(void)ed;
	struct fp_shard *s = ctx;
	kn_ottl_tx_resource(s->ps.tx, r->msg, r->len);
	s->res_drop = 0;
	s->scope_drop = 0;
	if (s->fp->ng[KN_OTTL_CTX_RESOURCE]) {
		int m = level(s, KN_OTTL_CTX_RESOURCE);
		if (m < 0)
			return -1;
		s->res_drop = m ? R_RESOURCE + 1 : 0;
	}
	return 0;
}

static int on_scope(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_scope *sc)
{
	(void)ed;
	struct fp_shard *s = ctx;
	kn_ottl_tx_scope(s->ps.tx, sc->msg, sc->len);
	s->scope_drop = 0;
	if (!s->res_drop && s->fp->ng[KN_OTTL_CTX_SCOPE]) {
		int m = level(s, KN_OTTL_CTX_SCOPE);
		if (m < 0)
			return -1;
		s->scope_drop = m ? R_SCOPE + 1 : 0;
	}
	return 0;
}

static int on_span(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_span *sp)
{
	struct fp_shard *s = ctx;
	struct fp *p = s->fp;
	if (kn_grow((void **)&s->keep, &s->cap_keep, s->nspan, sizeof *s->keep))
		return -1;
	struct kn_wire_keep *k = &s->keep[s->nspan++];
	k->keep = 1;
	k->add_off = k->add_len = 0;
	int why = s->res_drop ? s->res_drop : s->scope_drop;
	if (!why) {
		kn_ottl_tx_span(s->ps.tx, sp->span, sp->span_len);
		if (p->ng[KN_OTTL_CTX_SPAN]) {
			int m = level(s, KN_OTTL_CTX_SPAN);
			if (m < 0)
				return -1;
			if (m)
				why = R_SPAN + 1;
		}
	}
	if (why) {
		k->keep = 0;
		s->ndrop++;
		s->cnt[why - 1]++;
		return 0;
	}
	if (!p->ng[KN_OTTL_CTX_SPANEVENT])
		return 0;
	int n = kn_ottl_tx_nevents(s->ps.tx);
	for (int i = 0; i < n; i++) {
		kn_ottl_tx_event(s->ps.tx, (uint32_t)i);
		int m = level(s, KN_OTTL_CTX_SPANEVENT);
		if (m < 0)
			return -1;
		if (m) {
			kn_ottl_tx_drop_event(s->ps.tx, (uint32_t)i);
			s->events++;
		}
	}
	return kn_ottl_tx_emit(s->ps.tx, KN_OTTL_CTX_SPAN, ed) < 0 ? -1 : 0;
}

static const struct kn_wire_edit_ops fp_ops = {.resource = on_resource, .scope = on_scope, .span = on_span};

/* c filtered: the chunk to forward (a new one, c itself) or NULL when
 * nothing is left; c's reference is consumed. */
static struct kn_chunk *filter_chunk(struct fp_shard *s, struct kn_chunk *c)
{
	struct kn_err err = {{0}};
	struct kn_chunk *ed = NULL, *out = NULL;
	s->nspan = s->ndrop = 0;
	s->ps.failed = 0;
	uint64_t cnt0[R_N], ev0 = s->events;
	memcpy(cnt0, s->cnt, sizeof cnt0);
	if (kn_wire_edit_run(&s->ps.ed, &fp_ops, s, c->data, c->len, c->nspans, c, &ed, &err) != KN_OK) {
		/* drops counted for this chunk are undone: it goes whole */
		memcpy(s->cnt, cnt0, sizeof cnt0);
		s->events = ev0;
		int r = s->ps.failed ? R_ERROR : R_OOM;
		if (!s->ps.failed)
			kn_warn("%s: dropped a chunk of %u spans: %s", s->fp->op.who, c->nspans, err.msg);
		s->cnt[r] += c->nspans;
		kn_chunk_unref(c);
		return NULL;
	}
	if (s->nspan != c->nspans) {   /* cannot happen on indexed chunks; never guess */
		memcpy(s->cnt, cnt0, sizeof cnt0);
		s->events = ev0;
		if (ed)
			kn_chunk_unref(ed);
		return c;
	}
	if (ed) {
		if (kn_budget_try_charge(ed->len))
			ed->charged = ed->len;
		kn_chunk_unref(c);
		c = ed;
	}
	if (!s->ndrop)
		return c;
	if (s->ndrop == c->nspans) {
		kn_chunk_unref(c);
		return NULL;
	}
	if (kn_wire_filter_run(&s->wf, c, s->keep, NULL, &out, &err) != KN_OK) {
		memcpy(s->cnt, cnt0, sizeof cnt0);
		s->events = ev0;
		kn_warn("%s: dropped a chunk of %u spans: %s", s->fp->op.who, c->nspans, err.msg);
		s->cnt[R_OOM] += c->nspans;
		kn_chunk_unref(c);
		return NULL;
	}
	if (out && kn_budget_try_charge(out->len))
		out->charged = out->len;
	kn_chunk_unref(c);
	return out;
}

static int fp_process(void *state, struct kn_batch *b, const struct kn_emit *next)
{
	struct fp_shard *s = state;
	struct fp *p = s->fp;
	uint32_t w = 0;
	b->nspans = 0;
	b->bytes = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		struct kn_chunk *c = filter_chunk(s, b->chunks[i]);
		if (!c)
			continue;
		b->chunks[w++] = c;
		b->nspans += c->nspans;
		b->bytes += c->len;
	}
	b->n = w;
	for (int r = 0; r < R_N; r++)
		if (s->cnt[r]) {
			kn_counter_add(p->dropped[r], s->cnt[r]);
			s->cnt[r] = 0;
		}
	if (s->events) {
		kn_counter_add(p->events, s->events);
		s->events = 0;
	}
	kn_ottl_proc_flush(&p->op, &s->ps);
	if (b->n == 0) {
		kn_batch_free(b);
		return KN_DROP;
	}
	kn_emit(next, b);
	return KN_OK;
}

const struct kn_component kn_processor_filter = {
	.type = "filter",
	.kind = KN_PROCESSOR,
	.summary = "drops spans, span events, scopes or resources for which an OTTL condition holds",
	.any_shard = 1,
	.config_size = sizeof(struct kn_filter_cfg),
	.config_fields = fp_fields,
	.validate = fp_validate,
	.create = fp_create,
	.destroy = fp_destroy,
	.shard_create = fp_shard_create,
	.process = fp_process,
	.shard_destroy = fp_shard_destroy,
};
