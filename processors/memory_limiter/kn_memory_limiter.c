/* SPDX-License-Identifier: Apache-2.0
 * The `memory_limiter` processor (see kn_memory_limiter.h): the config and
 * its OTel rules, the cap it hands the runtime at create, and the RSS check
 * on shard 0's timer. process() forwards the batch untouched. */
#include "kn_memory_limiter.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_budget.h"
#include "../../collector/core/kn_log.h"
#include "../../collector/core/kn_metrics.h"
#include "../../collector/core/kn_runtime.h"

#define MIB (1024ull * 1024ull)

/* Go garbage-collector keys: present in OTel configs, meaningless here. */
static int reject_gc(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	(void)dst;
	return kn_errf(err, "%s: not supported (a Go garbage-collector setting; kansatsu has no "
			    "garbage collector): remove it", node->path);
}

static void no_free(void *dst)
{
	(void)dst;
}

static const struct kn_cfg_field ml_fields[] = {
	{.key = "check_interval", .type = KN_F_DURATION,
	 .off = offsetof(struct kn_memory_limiter_cfg, check_interval_ns), .def = "0",
	 .help = "how often the process RSS is compared with the soft limit (required)"},
	{.key = "limit_mib", .type = KN_F_UINT, .off = offsetof(struct kn_memory_limiter_cfg, limit_mib),
	 .def = "0", .help = "hard limit of the process in MiB", .min = 0, .max = 4294967295.0},
	{.key = "spike_limit_mib", .type = KN_F_UINT,
	 .off = offsetof(struct kn_memory_limiter_cfg, spike_limit_mib), .def = "0",
	 .help = "headroom below the hard limit (default 20% of it)", .min = 0, .max = 4294967295.0},
	{.key = "limit_percentage", .type = KN_F_UINT,
	 .off = offsetof(struct kn_memory_limiter_cfg, limit_percentage), .def = "0",
	 .help = "hard limit in % of the cgroup limit or total memory", .min = 0,
	 .max = 4294967295.0},
	{.key = "spike_limit_percentage", .type = KN_F_UINT,
	 .off = offsetof(struct kn_memory_limiter_cfg, spike_limit_percentage), .def = "0",
	 .help = "headroom in % of the same", .min = 0, .max = 4294967295.0},
	{.key = "min_gc_interval_when_soft_limited", .type = KN_F_CUSTOM,
	 .off = offsetof(struct kn_memory_limiter_cfg, gc_soft), .parse = reject_gc, .free = no_free},
	{.key = "min_gc_interval_when_hard_limited", .type = KN_F_CUSTOM,
	 .off = offsetof(struct kn_memory_limiter_cfg, gc_hard), .parse = reject_gc, .free = no_free},
	KN_CFG_END,
};

static int ml_validate(const void *cfg, const char *path, struct kn_err *err)
{
	const struct kn_memory_limiter_cfg *c = cfg;
	if (c->check_interval_ns == 0)
		return kn_errf(err, "%s.check_interval: must be greater than zero", path);
	if (c->limit_mib == 0 && c->limit_percentage == 0)
		return kn_errf(err, "%s: 'limit_mib' or 'limit_percentage' must be greater than zero",
			       path);
	if (c->limit_percentage > 100)
		return kn_errf(err, "%s.limit_percentage: 'limit_percentage' and "
				    "'spike_limit_percentage' must be greater than zero and less than or "
				    "equal to hundred", path);
	if (c->spike_limit_percentage > 100)
		return kn_errf(err, "%s.spike_limit_percentage: 'limit_percentage' and "
				    "'spike_limit_percentage' must be greater than zero and less than or "
				    "equal to hundred", path);
	if (c->limit_mib > 0 && c->limit_mib <= c->spike_limit_mib)
		return kn_errf(err, "%s.spike_limit_mib: 'spike_limit_mib' must be smaller than "
				    "'limit_mib'", path);
	if (c->limit_percentage > 0 && c->limit_percentage <= c->spike_limit_percentage)
		return kn_errf(err, "%s.spike_limit_percentage: 'spike_limit_percentage' must be "
				    "smaller than 'limit_percentage'", path);
	return KN_OK;
}

void kn_memory_limiter_limits(const struct kn_memory_limiter_cfg *c, uint64_t total,
			      uint64_t *hard, uint64_t *spike)
{
	if (c->limit_mib) {
		*hard = c->limit_mib * MIB;
		*spike = c->spike_limit_mib * MIB;
	} else {
		*hard = c->limit_percentage * total / 100;
		*spike = c->spike_limit_percentage * total / 100;
	}
	if (*spike == 0)
		*spike = *hard / 5; /* OTel: 20% of the limit when unset */
}

struct ml {
	uint64_t interval_ns;
	uint64_t hard, spike, soft;
	int over;                 /* shard 0's last verdict (for the gauge) */
};

struct ml_shard {
	struct ml *ml;
	int checker;              /* shard 0 measures */
	uint64_t next_ns;
};

static int64_t g_hard(void *ctx) { return (int64_t)((struct ml *)ctx)->hard; }
static int64_t g_soft(void *ctx) { return (int64_t)((struct ml *)ctx)->soft; }
static int64_t g_over(void *ctx) { return __atomic_load_n(&((struct ml *)ctx)->over, __ATOMIC_RELAXED); }

static int ml_create(const struct kn_component_ctx *ctx, const void *cfg, void **inst,
		     struct kn_err *err)
{
	const struct kn_memory_limiter_cfg *c = cfg;
	uint64_t total = 0;
	if (!c->limit_mib) {
		total = kn_memory_limiter_total("");
		if (!total)
			return kn_errf(err, "limit_percentage: failed to get total memory, use fixed "
					    "memory settings (limit_mib)");
	}
	struct ml *ml = calloc(1, sizeof *ml);
	if (!ml)
		return kn_errf(err, "out of memory");
	ml->interval_ns = c->check_interval_ns;
	kn_memory_limiter_limits(c, total, &ml->hard, &ml->spike);
	ml->soft = ml->hard > ml->spike ? ml->hard - ml->spike : 0;
	char who[96];
	snprintf(who, sizeof who, "processors.%s", ctx->id);
	kn_runtime_limit_memory(ctx->rt, (size_t)ml->hard, (size_t)ml->spike, who);
	if (ctx->metrics) {
		char esc[96], labels[160];
		kn_metrics_label_escape(ctx->id, esc, sizeof esc);
		snprintf(labels, sizeof labels, "processor=\"%s\",limit=\"hard\"", esc);
		kn_metrics_gauge_fn(ctx->metrics, "kansatsu_processor_memory_limiter_limit_bytes",
				    "The memory_limiter's limits: hard (limit) and soft (limit - spike; "
				    "above it receivers refuse).", labels, g_hard, ml);
		snprintf(labels, sizeof labels, "processor=\"%s\",limit=\"soft\"", esc);
		kn_metrics_gauge_fn(ctx->metrics, "kansatsu_processor_memory_limiter_limit_bytes",
				    "The memory_limiter's limits: hard (limit) and soft (limit - spike; "
				    "above it receivers refuse).", labels, g_soft, ml);
		snprintf(labels, sizeof labels, "processor=\"%s\"", esc);
		kn_metrics_gauge_fn(ctx->metrics, "kansatsu_processor_memory_limiter_over",
				    "1 while the process RSS is above the soft limit (receivers refuse).",
				    labels, g_over, ml);
	}
	*inst = ml;
	return KN_OK;
}

static void ml_destroy(void *inst)
{
	free(inst);
}

static int ml_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err)
{
	struct ml_shard *s = calloc(1, sizeof *s);
	if (!s)
		return kn_errf(err, "out of memory");
	s->ml = inst;
	s->checker = shard == 0;
	*state = s;
	return KN_OK;
}

static void ml_shard_destroy(void *state)
{
	struct ml_shard *s = state;
	if (s && s->checker && s->ml->over) {
		kn_budget_set_over(0);
		s->ml->over = 0;
	}
	free(s);
}

static int ml_process(void *state, struct kn_batch *b, const struct kn_emit *next)
{
	(void)state;
	kn_emit(next, b);
	return KN_OK;
}

static uint64_t ml_tick(void *state, uint64_t now_ns, const struct kn_emit *next)
{
	struct ml_shard *s = state;
	(void)next;
	if (!s->checker)
		return 0;
	if (now_ns >= s->next_ns) {
		size_t rss = kn_budget_process_rss();
		int over = rss && rss > s->ml->soft;
		if (over != s->ml->over) {
			kn_budget_set_over(over);
			__atomic_store_n(&s->ml->over, over, __ATOMIC_RELAXED);
			if (over)
				kn_warn("memory_limiter: resident memory %.1f MiB is above the soft limit "
					"%.1f MiB; receivers refuse until it is below",
					rss / (double)MIB, s->ml->soft / (double)MIB);
			else
				kn_info("memory_limiter: resident memory %.1f MiB is below the soft limit "
					"again", rss / (double)MIB);
		}
		s->next_ns = now_ns + s->ml->interval_ns;
	}
	return s->next_ns;
}

const struct kn_component kn_processor_memory_limiter = {
	.type = "memory_limiter",
	.kind = KN_PROCESSOR,
	.summary = "caps the process memory; receivers refuse (retryably) above limit - spike",
	.any_shard = 1,
	.config_size = sizeof(struct kn_memory_limiter_cfg),
	.config_fields = ml_fields,
	.validate = ml_validate,
	.create = ml_create,
	.destroy = ml_destroy,
	.shard_create = ml_shard_create,
	.process = ml_process,
	.tick = ml_tick,
	.shard_destroy = ml_shard_destroy,
};
