/* SPDX-License-Identifier: Apache-2.0
 * kn_journey: the journey processor's config table (with the `propagate`
 * list parsed by a nested table per item), its checks, the instance (keys
 * flattened and renamed, per-shard bounds, metrics, the registry created at
 * start) and the component vtable. The per-shard work is in
 * kn_journey_shard.c. create opens nothing; start allocates the registry;
 * the first started instance publishes it for kn_journey_registry_shared. */
#include "kn_journey.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../collector/core/kn_budget.h"
#include "../../collector/core/kn_clock.h"
#include "../../collector/config/kn_config.h"
#include "kn_journey_int.h"

#define CFG(f) offsetof(struct kn_journey_cfg, f)
#define PROP(f) offsetof(struct kn_journey_prop, f)

static const char *const from_choices[] = {"span", "resource", NULL};

static const struct kn_cfg_field prop_fields[] = {
	{.key = "from", .type = KN_F_STR, .off = PROP(from), .def = "span",
	 .choices = from_choices, .help = "where the head's value is read: span or resource"},
	{.key = "keys", .type = KN_F_STRLIST, .off = PROP(keys), .required = 1,
	 .help = "attribute keys to carry from the journey head"},
	{.key = "prefix", .type = KN_F_STR, .off = PROP(prefix), .def = "",
	 .help = "prepended to each key on the spans that receive it"},
	KN_CFG_END,
};

static void props_free(void *dst)
{
	struct kn_journey_props *ps = dst;
	if (!ps)
		return;
	for (size_t i = 0; i < ps->n; i++)
		kn_cfg_free(prop_fields, &ps->v[i]);
	free(ps->v);
	ps->v = NULL;
	ps->n = 0;
}

static int props_parse(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	struct kn_journey_props *ps = dst;
	if (node->type == KN_CNODE_NULL)
		return KN_OK;
	if (node->type != KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a list of {from, keys, prefix}", node->path);
	if (node->n == 0)
		return KN_OK;
	ps->v = calloc(node->n, sizeof *ps->v);
	if (!ps->v)
		return kn_errf(err, "%s: out of memory", node->path);
	for (size_t i = 0; i < node->n; i++) {
		const struct kn_cnode *item = &node->children[i];
		ps->n = i + 1; /* freed by props_free even when this item fails */
		if (item->type != KN_CNODE_MAP)
			return kn_errf(err, "%s: expected a map {from, keys, prefix}", item->path);
		if (kn_cfg_apply_at(prop_fields, item, item->path, &ps->v[i], err) != KN_OK)
			return KN_ERR;
		if (ps->v[i].keys.n == 0)
			return kn_errf(err, "%s.keys: at least one key is required", item->path);
		for (size_t k = 0; k < ps->v[i].keys.n; k++)
			if (!ps->v[i].keys.v[k] || !*ps->v[i].keys.v[k])
				return kn_errf(err, "%s.keys[%zu]: empty key", item->path, k);
	}
	return KN_OK;
}

#define RCFG(f) offsetof(struct kn_journey_redis_cfg, f)

static const char *const write_choices[] = {"producers", "all", NULL};

static const struct kn_cfg_field redis_fields[] = {
	{.key = "endpoint", .type = KN_F_STR, .off = RCFG(endpoint), .required = 1,
	 .help = "Redis host:port, or the path of its unix socket"},
	{.key = "username", .type = KN_F_STR, .off = RCFG(username), .def = "",
	 .help = "ACL user (Redis 6+); \"\" = AUTH with the password alone"},
	{.key = "password", .type = KN_F_STR, .off = RCFG(password), .def = "",
	 .help = "AUTH password; \"\" = no AUTH"},
	{.key = "db", .type = KN_F_UINT, .off = RCFG(db), .def = "0", .min = 0, .max = 1 << 20,
	 .help = "database number (SELECT)"},
	{.key = "key_prefix", .type = KN_F_STR, .off = RCFG(key_prefix), .def = "kansatsu:j:",
	 .help = "prepended to the 32 hex digits of the trace id"},
	{.key = "ttl", .type = KN_F_DURATION, .off = RCFG(ttl_ns), .def = "10m",
	 .help = "how long a published entry can be found (SET PX)"},
	{.key = "timeout", .type = KN_F_DURATION, .off = RCFG(timeout_ns), .def = "200ms",
	 .help = "longest round trip; past it the connection is reset and its lookups fail"},
	{.key = "max_pending", .type = KN_F_UINT, .off = RCFG(max_pending), .def = "65536",
	 .min = 1, .max = 1 << 24, .help = "lookups + writes waiting; past it they are counted, not queued"},
	{.key = "write", .type = KN_F_STR, .off = RCFG(write), .def = "producers", .choices = write_choices,
	 .help = "which released traces get an entry: producers (a PRODUCER span) or all"},
	KN_CFG_END,
};

static const struct kn_cfg_field registry_fields[] = {
	{.key = "redis", .type = KN_F_SUB, .off = offsetof(struct kn_journey_registry_cfg, redis),
	 .sub = redis_fields,
	 .present_off = offsetof(struct kn_journey_registry_cfg, redis.enabled),
	 .help = "share journey heads with other collectors through Redis"},
	KN_CFG_END,
};

static const struct kn_cfg_field journey_fields[] = {
	{.key = "propagate", .type = KN_F_CUSTOM, .off = CFG(propagate), .parse = props_parse,
	 .free = props_free, .help = "head attributes carried onto every later span of the journey"},
	{.key = "overwrite", .type = KN_F_BOOL, .off = CFG(overwrite), .def = "false",
	 .help = "replace a span's own attribute with the same (renamed) key"},
	{.key = "journey_id_attribute", .type = KN_F_STR, .off = CFG(journey_id_attribute),
	 .def = "journey.id", .help = "attribute holding the journey id (head trace id, hex); \"\" = off"},
	{.key = "wait_window", .type = KN_F_DURATION, .off = CFG(wait_window_ns), .def = "2s",
	 .help = "longest wait from a trace's first span for its root / its linked head"},
	{.key = "root_grace", .type = KN_F_DURATION, .off = CFG(root_grace_ns), .def = "200ms",
	 .help = "after the root span arrived, wait this long for the rest of the trace"},
	{.key = "ttl", .type = KN_F_DURATION, .off = CFG(ttl_ns), .def = "10m",
	 .help = "how long journey entries stay in the registry"},
	{.key = "max_heads", .type = KN_F_UINT, .off = CFG(max_heads), .def = "65536",
	 .help = "registry slots over all shards (~630 bytes each: the default reserves ~40 MiB)", .min = 64, .max = 1 << 28},
	{.key = "max_memory_mib", .type = KN_F_UINT, .off = CFG(max_memory_mib), .def = "128",
	 .help = "bound of the buffered traces; past it the oldest are released early",
	 .min = 1, .max = 1 << 20},
	{.key = "registry", .type = KN_F_SUB, .off = CFG(registry), .sub = registry_fields,
	 .help = "a registry shared by several collectors (second level after the local one)"},
	KN_CFG_END,
};

static int journey_validate(const void *cfg, const char *path, struct kn_err *err)
{
	const struct kn_journey_cfg *c = cfg;
	if (c->wait_window_ns == 0)
		return kn_errf(err, "%s.wait_window: must be greater than 0", path);
	if (c->root_grace_ns > c->wait_window_ns)
		return kn_errf(err, "%s.root_grace: must not exceed wait_window", path);
	if (c->ttl_ns < c->wait_window_ns)
		return kn_errf(err, "%s.ttl: must be at least wait_window", path);
	const struct kn_journey_redis_cfg *rc = &c->registry.redis;
	if (rc->enabled) {
		if (!rc->endpoint || !*rc->endpoint)
			return kn_errf(err, "%s.registry.redis.endpoint: empty", path);
		char ep[256], host[256];
		uint16_t port;
		snprintf(ep, sizeof ep, "%s.registry.redis.endpoint", path);
		if (rc->endpoint[0] != '/' &&
		    kn_parse_endpoint(rc->endpoint, ep, host, sizeof host, &port, err) != KN_OK)
			return KN_ERR;
		if (rc->endpoint[0] != '/' && (!host[0] || !port))
			return kn_errf(err, "%s: \"%s\" needs a host and a port (or a socket path)", ep,
				       rc->endpoint);
		if (rc->ttl_ns < KN_NS_PER_MS)
			return kn_errf(err, "%s.registry.redis.ttl: must be at least 1ms", path);
		if (rc->timeout_ns < KN_NS_PER_MS)
			return kn_errf(err, "%s.registry.redis.timeout: must be at least 1ms", path);
		if (strlen(rc->key_prefix ? rc->key_prefix : "") > 200)
			return kn_errf(err, "%s.registry.redis.key_prefix: longer than 200 bytes", path);
		if (rc->username && *rc->username && !(rc->password && *rc->password))
			return kn_errf(err, "%s.registry.redis.password: needed with username", path);
	}
	if (c->journey_id_attribute && strlen(c->journey_id_attribute) > 64)
		return kn_errf(err, "%s.journey_id_attribute: longer than 64 bytes", path);
	size_t nkeys = 0;
	for (size_t i = 0; i < c->propagate.n; i++) {
		const struct kn_journey_prop *pr = &c->propagate.v[i];
		nkeys += pr->keys.n;
		for (size_t k = 0; k < pr->keys.n; k++)
			if (strlen(pr->prefix ? pr->prefix : "") + strlen(pr->keys.v[k]) > 200)
				return kn_errf(err, "%s.propagate[%zu].keys[%zu]: prefix + key longer than 200 bytes",
					       path, i, k);
	}
	if (nkeys > KN_JOURNEY_MAX_PLAN - 1)
		return kn_errf(err, "%s.propagate: more than %d keys in total", path,
			       KN_JOURNEY_MAX_PLAN - 1);
	return KN_OK;
}

/* ---- the shared registry ---- */

static _Atomic(struct kn_journey_registry *) shared_reg;

const struct kn_journey_registry *kn_journey_registry_shared(void)
{
	return atomic_load_explicit(&shared_reg, memory_order_acquire);
}

/* ---- instance ---- */

static int64_t sum_gauge(const struct kn_journey_proc *p, size_t off)
{
	return kn_metrics_sum_blocks(p->gauges, sizeof *p->gauges, p->nshards, off);
}

static int64_t g_traces(void *ctx)
{
	return sum_gauge(ctx, offsetof(struct kn_journey_gauges, traces));
}

static int64_t g_bytes(void *ctx)
{
	return sum_gauge(ctx, offsetof(struct kn_journey_gauges, bytes));
}

static void register_metrics(struct kn_journey_proc *p, struct kn_metrics *m, const char *id)
{
	char esc[128], labels[160];
	kn_metrics_label_escape(id, esc, sizeof esc);
	struct kn_journey_metrics *x = &p->m;
	x->started = kn_metrics_processor_counter(m, "kansatsu_journey_started_total",
			     "Traces that became the head of a new journey.", esc, NULL);
	x->joined = kn_metrics_processor_counter(m, "kansatsu_journey_traces_joined_total",
			    "Traces that joined an earlier trace's journey through a span link.", esc, NULL);
	const char *cw = "kansatsu_journey_closed_without_head_total";
	const char *cwh = "Journeys released without their head, by reason (head_not_seen: the linked "
			  "head or the root never arrived; registry_unavailable: the shared registry "
			  "could not be asked).";
	x->closed_without_head = kn_metrics_processor_counter(m, cw, cwh, esc, "reason=\"head_not_seen\"");
	x->closed_unavailable = kn_metrics_processor_counter(m, cw, cwh, esc,
							     "reason=\"registry_unavailable\"");
	x->late_spans = kn_metrics_processor_counter(m, "kansatsu_journey_late_spans_total",
				"Spans that arrived after their trace was released, annotated from the registry.",
				esc, NULL);
	x->evictions = kn_metrics_processor_counter(m, "kansatsu_journey_registry_evictions_total",
			       "Journey entries evicted from the registry before their ttl.", esc, NULL);
	x->early_memory = kn_metrics_processor_counter(m, "kansatsu_journey_released_early_total",
				  "Traces released before their wait ended, by reason.", esc,
				  "reason=\"memory\"");
	x->attrs_truncated = kn_metrics_processor_counter(m, "kansatsu_journey_attrs_truncated_total",
				     "Head attributes left out because the entry's attribute room was full.",
				     esc, NULL);
	const char *n = "kansatsu_journey_spans_lost_total";
	const char *h = "Spans the journey processor could not handle, by reason.";
	x->lost_malformed = kn_metrics_processor_counter(m, n, h, esc, "reason=\"malformed\"");
	x->lost_oom = kn_metrics_processor_counter(m, n, h, esc, "reason=\"out_of_memory\"");
	x->budget_overrun = kn_metrics_processor_counter(m, "kansatsu_journey_budget_overrun_spans_total",
				    "Rewritten spans emitted although the memory budget was spent.", esc,
				    NULL);
	snprintf(labels, sizeof labels, "processor=\"%s\"", esc);
	kn_metrics_gauge_fn(m, "kansatsu_journey_traces_in_memory", "Traces buffered awaiting their journey.",
			    labels, g_traces, p);
	kn_metrics_gauge_fn(m, "kansatsu_journey_bytes_in_memory",
			    "Bytes of the journey trace stores (records, tables, buffers).", labels,
			    g_bytes, p);
}

static void journey_destroy(void *inst)
{
	struct kn_journey_proc *p = inst;
	if (!p)
		return;
	struct kn_journey_registry *mine = p->reg;
	if (mine)
		atomic_compare_exchange_strong(&shared_reg, &mine, NULL);
	kn_jr_destroy(p->redis);
	kn_budget_held_add(-(int64_t)kn_journey_registry_bytes(p->reg));
	kn_journey_registry_destroy(p->reg);
	if (p->keys)
		for (uint32_t i = 0; i < p->nkeys; i++)
			free(p->keys[i].out_key);
	free(p->keys);
	free(p->gauges);
	free(p);
}

static int journey_create(const struct kn_component_ctx *ctx, const void *cfg, void **inst,
			  struct kn_err *err)
{
	const struct kn_journey_cfg *c = cfg;
	uint64_t per;
	struct kn_journey_proc *p = calloc(1, sizeof *p);
	if (!p)
		return kn_errf(err, "out of memory");
	p->cfg = *c;
	p->nshards = ctx->nshards ? ctx->nshards : 1;
	p->gauges = calloc(p->nshards, sizeof *p->gauges);
	size_t nkeys = 0;
	for (size_t i = 0; i < c->propagate.n; i++)
		nkeys += c->propagate.v[i].keys.n;
	p->keys = calloc(nkeys ? nkeys : 1, sizeof *p->keys);
	if (!p->gauges || !p->keys)
		goto oom;
	for (size_t i = 0; i < c->propagate.n; i++) {
		const struct kn_journey_prop *pr = &c->propagate.v[i];
		const char *prefix = pr->prefix ? pr->prefix : "";
		for (size_t k = 0; k < pr->keys.n; k++) {
			struct kn_journey_key *jk = &p->keys[p->nkeys++];
			jk->key = pr->keys.v[k];
			jk->keylen = strlen(jk->key);
			jk->from_resource = pr->from && strcmp(pr->from, "resource") == 0;
			jk->out_len = strlen(prefix) + jk->keylen;
			jk->out_key = malloc(jk->out_len + 1);
			if (!jk->out_key)
				goto oom;
			memcpy(jk->out_key, prefix, strlen(prefix));
			memcpy(jk->out_key + strlen(prefix), jk->key, jk->keylen + 1);
		}
	}
	p->shard_max_bytes = (size_t)((c->max_memory_mib << 20) / p->nshards);
	p->poll_ns = c->root_grace_ns && c->root_grace_ns < 100 * KN_NS_PER_MS ? c->root_grace_ns
									       : 100 * KN_NS_PER_MS;
	register_metrics(p, ctx->metrics, ctx->id);
	p->metrics = ctx->metrics;
	kn_metrics_label_escape(ctx->id, p->esc_id, sizeof p->esc_id);
	p->write_all = c->registry.redis.write && strcmp(c->registry.redis.write, "all") == 0;
	per = (c->max_heads + p->nshards - 1) / p->nshards / 4;
	p->remote_slots = (uint32_t)(per < 64 ? 64 : per);
	*inst = p;
	return KN_OK;
oom:
	kn_errf(err, "out of memory");
	journey_destroy(p);
	return KN_ERR;
}

static int journey_start(void *inst, struct kn_err *err)
{
	struct kn_journey_proc *p = inst;
	if (p->reg)
		return KN_OK;
	uint64_t per = (p->cfg.max_heads + p->nshards - 1) / p->nshards;
	p->reg = kn_journey_registry_create(p->nshards, (uint32_t)(per < 64 ? 64 : per), p->cfg.ttl_ns,
					    err);
	if (!p->reg)
		return kn_err_prefix(err, "max_heads: ");
	kn_budget_held_add((int64_t)kn_journey_registry_bytes(p->reg)); /* a table, not garbage to trim */
	struct kn_journey_registry *none = NULL;
	atomic_compare_exchange_strong(&shared_reg, &none, p->reg);
	if (p->cfg.registry.redis.enabled && !p->redis) {
		p->redis = kn_jr_create(&p->cfg.registry.redis, p->nshards, p->metrics, p->esc_id, err);
		if (!p->redis || kn_jr_start(p->redis, err) != KN_OK)
			return KN_ERR; /* the message names registry.redis */
	}
	return KN_OK;
}

/* After every shard flushed: the writes of the last rounds reach Redis. */
static void journey_shutdown(void *inst, uint64_t deadline_ns)
{
	struct kn_journey_proc *p = inst;
	if (p && p->redis)
		kn_jr_stop(p->redis, deadline_ns);
}

const struct kn_component kn_processor_journey = {
	.type = "journey",
	.kind = KN_PROCESSOR,
	.summary = "carries journey head attributes onto every later span, across span links",
	.config_size = sizeof(struct kn_journey_cfg),
	.config_fields = journey_fields,
	.validate = journey_validate,
	.create = journey_create,
	.start = journey_start,
	.shutdown = journey_shutdown,
	.destroy = journey_destroy,
	.shard_create = kn_journey_shard_create,
	.process = kn_journey_process,
	.tick = kn_journey_tick,
	.flush = kn_journey_flush,
	.flush_rounds = 2, /* publish what is free, then release what waits (kn_journey_shard.c) */
	.flush_round = kn_journey_flush_round,
	.shard_destroy = kn_journey_shard_destroy,
};
