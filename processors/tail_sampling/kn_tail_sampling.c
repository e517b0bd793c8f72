/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_sampling: the processor's config table (OTel names and
 * defaults), its cross-field checks, the instance (the compiled policy
 * engine, per-shard bounds, metrics) and the component vtable. The
 * per-shard work is in kn_tail_shard.c. create opens nothing. */
#include "kn_tail_sampling.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../collector/config/kn_config.h"
#include "kn_tail_int.h"

#define CFG(f) offsetof(struct kn_tail_sampling_cfg, f)

/* A cache size: a non-negative integer up to 1e9, with digit-separating
 * underscores accepted unquoted (`100_000`, as the OTel Collector's YAML
 * decoder reads the tail_sampling README's example). */
static int parse_cache_size(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	uint64_t *out = dst;
	char buf[64];
	size_t n = 0;
	if (node->type == KN_CNODE_NULL)
		return KN_OK;
	if (node->type != KN_CNODE_SCALAR)
		return kn_errf(err, "%s: expected a non-negative integer", node->path);
	const char *v = node->value;
	for (size_t i = 0; v[i]; i++) {
		int sep = v[i] == '_' && !node->quoted && i > 0 && v[i - 1] >= '0' && v[i - 1] <= '9' &&
			  v[i + 1] >= '0' && v[i + 1] <= '9';
		if (sep)
			continue;
		if (n + 1 >= sizeof buf)
			return kn_errf(err, "%s: expected a non-negative integer, got \"%s\"", node->path, v);
		buf[n++] = v[i];
	}
	buf[n] = '\0';
	if (kn_parse_uint(buf, node->path, out, err) != KN_OK)
		return kn_errf(err, "%s: expected a non-negative integer, got \"%s\"", node->path, v);
	if (*out > 1000000000u)
		return kn_errf(err, "%s: must be at most 1000000000, got %s", node->path, v);
	return KN_OK;
}

static void free_cache_size(void *dst)
{
	*(uint64_t *)dst = 0;
}

static const struct kn_cfg_field cache_fields[] = {
	{.key = "sampled_cache_size", .type = KN_F_CUSTOM,
	 .off = offsetof(struct kn_tail_sampling_cfg, decision_cache.sampled_cache_size) -
		CFG(decision_cache),
	 .help = "sampled trace ids remembered for late spans (0 = num_traces)",
	 .parse = parse_cache_size, .free = free_cache_size},
	{.key = "non_sampled_cache_size", .type = KN_F_CUSTOM,
	 .off = offsetof(struct kn_tail_sampling_cfg, decision_cache.non_sampled_cache_size) -
		CFG(decision_cache),
	 .help = "not-sampled trace ids remembered for late spans (0 = num_traces)",
	 .parse = parse_cache_size, .free = free_cache_size},
	{.key = "sampled_cache_bytes", .type = KN_F_UINT,
	 .off = offsetof(struct kn_tail_sampling_cfg, decision_cache.sampled_cache_bytes) -
		CFG(decision_cache),
	 .def = "0", .help = "kansatsu: memory for sampled ids (~48 B each); wins over the count when set",
	 .min = 0, .max = 1e12},
	{.key = "non_sampled_cache_bytes", .type = KN_F_UINT,
	 .off = offsetof(struct kn_tail_sampling_cfg, decision_cache.non_sampled_cache_bytes) -
		CFG(decision_cache),
	 .def = "0", .help = "kansatsu: memory for not-sampled ids (~16 B each); wins over the count when set",
	 .min = 0, .max = 1e12},
	KN_CFG_END,
};

/* Bytes per remembered id in each cache, as kn_tail_cache.h gives them. */
#define LRU_BYTES_PER_ID 48u
#define FP_BYTES_PER_ID 16u

static const struct kn_cfg_field tail_fields[] = {
	{.key = "decision_wait", .type = KN_F_DURATION, .off = CFG(decision_wait_ns), .def = "30s",
	 .help = "wait from a trace's first span to its decision"},
	{.key = "decision_wait_after_root_received", .type = KN_F_DURATION, .off = CFG(root_wait_ns),
	 .def = "0s", .help = "decide this long after the root span arrived, if earlier (0 = off)"},
	{.key = "num_traces", .type = KN_F_UINT, .off = CFG(num_traces), .def = "50000",
	 .help = "undecided traces held (over all shards)", .min = 1, .max = 1e9},
	{.key = "expected_new_traces_per_sec", .type = KN_F_UINT,
	 .off = CFG(expected_new_traces_per_sec), .def = "0",
	 .help = "sizes the initial trace tables", .min = 0, .max = 1e9},
	{.key = "decision_cache", .type = KN_F_SUB, .off = CFG(decision_cache), .sub = cache_fields,
	 .help = "decisions remembered for spans that arrive after them"},
	{.key = "sample_on_first_match", .type = KN_F_BOOL, .off = CFG(sample_on_first_match),
	 .def = "false", .help = "stop evaluating policies at the first that samples"},
	{.key = "block_on_overflow", .type = KN_F_BOOL, .off = CFG(block_on_overflow),
	 .def = "false", .help = "accepted for OTel compatibility; kansatsu decides the oldest early instead"},
	{.key = "drop_pending_traces_on_shutdown", .type = KN_F_BOOL,
	 .off = CFG(drop_pending_traces_on_shutdown), .def = "false",
	 .help = "at shutdown drop undecided traces instead of deciding them early"},
	{.key = "maximum_trace_size_bytes", .type = KN_F_UINT, .off = CFG(maximum_trace_size_bytes),
	 .def = "0", .help = "a trace passing this many buffered bytes is not sampled (0 = off)"},
	{.key = "policies", .type = KN_F_CUSTOM, .off = CFG(policies), .required = 1,
	 .parse = kn_tail_policies_parse, .free = kn_tail_policies_free,
	 .help = "the sampling policies (OTel tail_sampling syntax)"},
	{.key = "max_memory_mib", .type = KN_F_UINT, .off = CFG(max_memory_mib), .def = "256",
	 .help = "hard bound of buffered traces; past it the oldest are decided early",
	 .min = 1, .max = 1 << 20},
	{.key = "policy_attribute", .type = KN_F_STR, .off = CFG(policy_attribute), .def = "",
	 .help = "attribute written on kept spans naming the policy that kept the trace (\"\" = off)"},
	KN_CFG_END,
};

static int tail_validate(const void *cfg, const char *path, struct kn_err *err)
{
	const struct kn_tail_sampling_cfg *c = cfg;
	if (c->decision_wait_ns == 0)
		return kn_errf(err, "%s.decision_wait: must be greater than 0", path);
	if (!c->policies || kn_tail_policies_count(c->policies) == 0)
		return kn_errf(err, "%s.policies: at least one policy is required", path);
	return KN_OK;
}

static int64_t sum_gauge(const struct kn_tail_proc *p, size_t off)
{
	return kn_metrics_sum_blocks(p->gauges, sizeof *p->gauges, p->nshards, off);
}

static int64_t g_traces(void *ctx)
{
	return sum_gauge(ctx, offsetof(struct kn_tail_gauges, traces));
}

static int64_t g_spans(void *ctx)
{
	return sum_gauge(ctx, offsetof(struct kn_tail_gauges, spans));
}

static int64_t g_bytes(void *ctx)
{
	return sum_gauge(ctx, offsetof(struct kn_tail_gauges, bytes));
}

static void register_metrics(struct kn_tail_proc *p, struct kn_metrics *m, const char *id)
{
	char esc[128], labels[160];
	kn_metrics_label_escape(id, esc, sizeof esc);
	struct kn_tail_metrics *x = &p->m;
	const char *n = "kansatsu_tail_traces_total", *h = "Traces decided by the tail sampler.";
	x->traces_sampled = kn_metrics_processor_counter(m, n, h, esc, "decision=\"sampled\"");
	x->traces_not_sampled = kn_metrics_processor_counter(m, n, h, esc, "decision=\"not_sampled\"");
	n = "kansatsu_tail_spans_total";
	h = "Spans of the traces decided by the tail sampler.";
	x->spans_sampled = kn_metrics_processor_counter(m, n, h, esc, "decision=\"sampled\"");
	x->spans_not_sampled = kn_metrics_processor_counter(m, n, h, esc, "decision=\"not_sampled\"");
	n = "kansatsu_tail_late_spans_total";
	h = "Spans that arrived after their trace's decision and followed it.";
	x->late_sampled = kn_metrics_processor_counter(m, n, h, esc, "decision=\"sampled\"");
	x->late_not_sampled = kn_metrics_processor_counter(m, n, h, esc, "decision=\"not_sampled\"");
	n = "kansatsu_tail_traces_decided_early_total";
	h = "Traces decided before their deadline, by reason.";
	x->early_memory = kn_metrics_processor_counter(m, n, h, esc, "reason=\"memory\"");
	x->early_num_traces = kn_metrics_processor_counter(m, n, h, esc, "reason=\"num_traces\"");
	x->early_shutdown = kn_metrics_processor_counter(m, n, h, esc, "reason=\"shutdown\"");
	x->too_large = kn_metrics_processor_counter(m, "kansatsu_tail_traces_too_large_total",
			       "Traces not sampled because they passed maximum_trace_size_bytes.",
			       esc, NULL);
	x->latency_sum_ms = kn_metrics_processor_counter(m, "kansatsu_tail_decision_latency_ms_sum",
				    "Sum of first-span-arrival to decision times, in milliseconds.",
				    esc, NULL);
	x->latency_count = kn_metrics_processor_counter(m, "kansatsu_tail_decision_latency_ms_count",
				   "Decisions measured in kansatsu_tail_decision_latency_ms_sum.",
				   esc, NULL);
	n = "kansatsu_tail_spans_lost_total";
	h = "Spans the tail sampler could not handle, by reason.";
	x->lost_malformed = kn_metrics_processor_counter(m, n, h, esc, "reason=\"malformed\"");
	x->lost_oom = kn_metrics_processor_counter(m, n, h, esc, "reason=\"out_of_memory\"");
	x->budget_overrun = kn_metrics_processor_counter(m, "kansatsu_tail_budget_overrun_spans_total",
				    "Kept spans emitted although the memory budget was spent.", esc,
				    NULL);
	snprintf(labels, sizeof labels, "processor=\"%s\"", esc);
	kn_metrics_gauge_fn(m, "kansatsu_tail_traces_in_memory", "Undecided traces buffered.",
			    labels, g_traces, p);
	kn_metrics_gauge_fn(m, "kansatsu_tail_spans_in_memory", "Spans of undecided traces buffered.",
			    labels, g_spans, p);
	kn_metrics_gauge_fn(m, "kansatsu_tail_bytes_in_memory",
			    "Bytes of the trace stores (records, tables, buffers).", labels, g_bytes, p);
}

static void tail_destroy(void *inst)
{
	struct kn_tail_proc *p = inst;
	if (!p)
		return;
	kn_tail_engine_destroy(p->engine);
	free(p->gauges);
	free(p);
}

static uint32_t per_shard(uint64_t total, uint32_t nshards)
{
	uint64_t v = (total + nshards - 1) / nshards;
	if (v < 1)
		v = 1;
	return v > UINT32_MAX / 4 ? UINT32_MAX / 4 : (uint32_t)v;
}

static int tail_create(const struct kn_component_ctx *ctx, const void *cfg, void **inst,
		       struct kn_err *err)
{
	const struct kn_tail_sampling_cfg *c = cfg;
	struct kn_tail_proc *p = calloc(1, sizeof *p);
	if (!p)
		return kn_errf(err, "out of memory");
	p->cfg = *c;
	p->nshards = ctx->nshards ? ctx->nshards : 1;
	p->gauges = calloc(p->nshards, sizeof *p->gauges);
	if (!p->gauges) {
		kn_errf(err, "out of memory");
		goto fail;
	}
	p->shard_max_bytes = (size_t)((c->max_memory_mib << 20) / p->nshards);
	p->shard_max_traces = per_shard(c->num_traces, p->nshards);
	uint64_t lru_ids = c->decision_cache.sampled_cache_bytes
				   ? c->decision_cache.sampled_cache_bytes / LRU_BYTES_PER_ID
			   : c->decision_cache.sampled_cache_size ? c->decision_cache.sampled_cache_size
								  : c->num_traces;
	uint64_t fp_ids = c->decision_cache.non_sampled_cache_bytes
				  ? c->decision_cache.non_sampled_cache_bytes / FP_BYTES_PER_ID
			  : c->decision_cache.non_sampled_cache_size ? c->decision_cache.non_sampled_cache_size
								     : c->num_traces;
	p->lru_cap = per_shard(lru_ids, p->nshards);
	p->fp_cap = per_shard(fp_ids, p->nshards);
	/* OTel sizes its structures for expected_new_traces_per_sec over decision_wait */
	uint64_t expect = c->expected_new_traces_per_sec *
			  ((c->decision_wait_ns + 999999999ull) / 1000000000ull) / p->nshards;
	uint64_t fit = p->shard_max_bytes / 4 / 112; /* records + table stay a fraction of the bound */
	if (expect > p->shard_max_traces)
		expect = p->shard_max_traces;
	if (expect > fit)
		expect = fit;
	p->shard_initial = (uint32_t)expect;
	p->engine = kn_tail_engine_create(c->policies, c->sample_on_first_match, p->nshards,
					  ctx->metrics, ctx->id, err);
	if (!p->engine)
		goto fail;
	register_metrics(p, ctx->metrics, ctx->id);
	*inst = p;
	return KN_OK;
fail:
	tail_destroy(p);
	return KN_ERR;
}

const struct kn_component kn_processor_tail_sampling = {
	.type = "tail_sampling",
	.kind = KN_PROCESSOR,
	.summary = "keeps whole traces chosen by policies after decision_wait (OTel tail_sampling)",
	.config_size = sizeof(struct kn_tail_sampling_cfg),
	.config_fields = tail_fields,
	.validate = tail_validate,
	.create = tail_create,
	.destroy = tail_destroy,
	.shard_create = kn_tail_shard_create,
	.process = kn_tail_process,
	.tick = kn_tail_tick,
	.flush = kn_tail_flush,
	.shard_destroy = kn_tail_shard_destroy,
};
