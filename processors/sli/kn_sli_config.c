/* SPDX-License-Identifier: Apache-2.0
 * kn_sli_config: the `sli` processor's configuration tables and checks (the
 * YAML shape is in kn_sli.h). `slis` and `dimensions` are lists of maps, each
 * applied with its own table so unknown keys and bad values are reported
 * with their path ("processors.sli.slis[1].end.kind: ..."). `window` takes a
 * duration or whole days ("30d"). Runs at startup only. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "kn_sli_int.h"

static const char *const kn_sli_kinds[] = {"internal", "server", "client", "producer", "consumer",
					   NULL};
static const char *const kn_sli_starts[] = {"any", "trace", "journey", NULL};
static const char *const kn_sli_froms[] = {"span", "resource", "head", NULL};

#define KN_SLI_MATCH_ROWS                                                                        \
	{.key = "service", .type = KN_F_STR, .off = offsetof(struct kn_sli_match, service),        \
	 .help = "resource service.name (journey head: its service)"},                             \
	{.key = "name", .type = KN_F_STR, .off = offsetof(struct kn_sli_match, name),              \
	 .help = "span name, exact"},                                                              \
	{.key = "kind", .type = KN_F_STR, .off = offsetof(struct kn_sli_match, kind),              \
	 .choices = kn_sli_kinds, .help = "span kind"},                                            \
	{.key = "attributes", .type = KN_F_STRMAP, .off = offsetof(struct kn_sli_match, attributes), \
	 .help = "attribute key -> value (as text); span attributes first, then resource"}

static const struct kn_cfg_field kn_sli_match_table[] = {
	KN_SLI_MATCH_ROWS,
	KN_CFG_END,
};

static const struct kn_cfg_field kn_sli_start_table[] = {
	KN_SLI_MATCH_ROWS,
	{.key = "from", .type = KN_F_STR, .off = offsetof(struct kn_sli_match, from), .def = "any",
	 .choices = kn_sli_starts,
	 .help = "where the start span is found: trace (same trace), journey (the head), any"},
	KN_CFG_END,
};

static const struct kn_cfg_field kn_sli_success_table[] = {
	{.key = "status", .type = KN_F_BOOL, .off = offsetof(struct kn_sli_success, status),
	 .def = "true", .help = "bad when the end span's status is ERROR"},
	{.key = "http", .type = KN_F_BOOL, .off = offsetof(struct kn_sli_success, http),
	 .def = "true", .help = "bad when http.response.status_code >= 500"},
	{.key = "grpc", .type = KN_F_BOOL, .off = offsetof(struct kn_sli_success, grpc),
	 .def = "true", .help = "bad for the gRPC codes the semantic conventions call errors"},
	KN_CFG_END,
};

static const struct kn_cfg_field kn_sli_dim_table[] = {
	{.key = "name", .type = KN_F_STR, .off = offsetof(struct kn_sli_dim, name), .required = 1,
	 .help = "label name on the SLI metrics"},
	{.key = "from", .type = KN_F_STR, .off = offsetof(struct kn_sli_dim, from), .def = "span",
	 .choices = kn_sli_froms, .help = "span (the end span), resource (its resource), head (journey head)"},
	{.key = "key", .type = KN_F_STR, .off = offsetof(struct kn_sli_dim, key), .required = 1,
	 .help = "attribute key (head: also `service` or `name`)"},
	KN_CFG_END,
};

static const char *kn_node_kind(const struct kn_cnode *n)
{
	return n->type == KN_CNODE_MAP ? "a map" : n->type == KN_CNODE_SEQ ? "a list" : "a scalar";
}

static void kn_sli_dims_free(void *dst)
{
	struct kn_sli_dims *l = dst;
	for (size_t i = 0; i < l->n; i++)
		kn_cfg_free(kn_sli_dim_table, &l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int kn_sli_dims_parse(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	struct kn_sli_dims *l = dst;
	if (node->type == KN_CNODE_NULL)
		return KN_OK;
	if (node->type != KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a list of {name, from, key}, got %s", node->path,
			       kn_node_kind(node));
	if (node->n && !(l->v = calloc(node->n, sizeof *l->v)))
		return kn_errf(err, "%s: out of memory", node->path);
	for (size_t i = 0; i < node->n; i++) {
		l->n = i + 1;
		if (node->children[i].type != KN_CNODE_MAP)
			return kn_errf(err, "%s: expected a map, got %s", node->children[i].path,
				       kn_node_kind(&node->children[i]));
		if (kn_cfg_apply(kn_sli_dim_table, &node->children[i], &l->v[i], err) != KN_OK)
			return KN_ERR;
		l->v[i].from_v = kn_sli_dim_from_value(l->v[i].from);
	}
	return KN_OK;
}

static void kn_sli_window_free(void *dst)
{
	*(uint64_t *)dst = 0;
}

static int kn_sli_window_parse(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	if (node->type != KN_CNODE_SCALAR || !node->value)
		return kn_errf(err, "%s: expected a duration like \"30d\" or \"720h\"", node->path);
	const char *s = node->value;
	size_t n = strlen(s);
	if (n >= 2 && s[n - 1] == 'd') {
		uint64_t days = 0;
		for (size_t i = 0; i + 1 < n; i++) {
			if (!isdigit((unsigned char)s[i]) || days > 100000)
				return kn_errf(err, "%s: expected whole days like \"30d\", got \"%s\"",
					       node->path, s);
			days = days * 10 + (uint64_t)(s[i] - '0');
		}
		*(uint64_t *)dst = days * 24 * KN_NS_PER_HOUR;
		return KN_OK;
	}
	return kn_parse_duration(s, node->path, (uint64_t *)dst, err);
}

static const struct kn_cfg_field kn_sli_def_table[] = {
	{.key = "name", .type = KN_F_STR, .off = offsetof(struct kn_sli_def, name), .required = 1,
	 .help = "the SLI's name (label sli, attributes sli.<name>.*)"},
	{.key = "span", .type = KN_F_SUB, .off = offsetof(struct kn_sli_def, span),
	 .sub = kn_sli_match_table, .present_off = offsetof(struct kn_sli_def, span.present),
	 .help = "single-span SLI: the span (latency = its duration)"},
	{.key = "start", .type = KN_F_SUB, .off = offsetof(struct kn_sli_def, start),
	 .sub = kn_sli_start_table, .present_off = offsetof(struct kn_sli_def, start.present),
	 .help = "cross-span SLI: where latency starts"},
	{.key = "end", .type = KN_F_SUB, .off = offsetof(struct kn_sli_def, end),
	 .sub = kn_sli_match_table, .present_off = offsetof(struct kn_sli_def, end.present),
	 .help = "cross-span SLI: the span that completes an event"},
	{.key = "threshold", .type = KN_F_DURATION, .off = offsetof(struct kn_sli_def, threshold_ns),
	 .def = "0", .help = "good needs latency <= threshold (0: no latency condition)"},
	{.key = "success", .type = KN_F_SUB, .off = offsetof(struct kn_sli_def, success),
	 .sub = kn_sli_success_table, .help = "which end-span outcomes are failures"},
	{.key = "objective", .type = KN_F_DOUBLE, .off = offsetof(struct kn_sli_def, objective),
	 .required = 1, .help = "SLO target in percent, e.g. 99.9"},
	{.key = "window", .type = KN_F_CUSTOM, .off = offsetof(struct kn_sli_def, window_ns),
	 .def = "30d", .parse = kn_sli_window_parse, .free = kn_sli_window_free,
	 .help = "SLO window for the error budget (e.g. 30d, 28d, 720h)"},
	{.key = "dimensions", .type = KN_F_CUSTOM, .off = offsetof(struct kn_sli_def, dims),
	 .parse = kn_sli_dims_parse, .free = kn_sli_dims_free,
	 .help = "labels: [{name, from: span|resource|head, key}]"},
	KN_CFG_END,
};

static void kn_sli_list_free(void *dst)
{
	struct kn_sli_list *l = dst;
	for (size_t i = 0; i < l->n; i++)
		kn_cfg_free(kn_sli_def_table, &l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int kn_sli_list_parse(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	struct kn_sli_list *l = dst;
	if (node->type == KN_CNODE_NULL)
		return KN_OK;
	if (node->type != KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a list of SLIs, got %s", node->path,
			       kn_node_kind(node));
	if (node->n && !(l->v = calloc(node->n, sizeof *l->v)))
		return kn_errf(err, "%s: out of memory", node->path);
	for (size_t i = 0; i < node->n; i++) {
		l->n = i + 1;
		const struct kn_cnode *c = &node->children[i];
		if (c->type != KN_CNODE_MAP)
			return kn_errf(err, "%s: expected a map, got %s", c->path, kn_node_kind(c));
		if (kn_cfg_apply(kn_sli_def_table, c, &l->v[i], err) != KN_OK)
			return KN_ERR;
		struct kn_sli_def *d = &l->v[i];
		d->span.kind_v = kn_sli_kind_value(d->span.kind);
		d->start.kind_v = kn_sli_kind_value(d->start.kind);
		d->end.kind_v = kn_sli_kind_value(d->end.kind);
		d->start.from_v = kn_sli_start_value(d->start.from);
	}
	return KN_OK;
}

const struct kn_cfg_field kn_sli_fields[] = {
	{.key = "slis", .type = KN_F_CUSTOM, .off = offsetof(struct kn_sli_cfg, slis),
	 .parse = kn_sli_list_parse, .free = kn_sli_list_free, .help = "the SLIs (see kn_sli.h); none: the processor only forwards"},
	{.key = "max_series", .type = KN_F_UINT, .off = offsetof(struct kn_sli_cfg, max_series),
	 .def = "200", .min = 1, .max = 100000,
	 .help = "dimension sets per SLI; more go to one overflow series"},
	{.key = "join_ttl", .type = KN_F_DURATION, .off = offsetof(struct kn_sli_cfg, join_ttl_ns),
	 .def = "10m", .help = "how long a start span waits for its end span (local join)"},
	{.key = "join_slots", .type = KN_F_UINT, .off = offsetof(struct kn_sli_cfg, join_slots),
	 .def = "65536", .min = 16, .max = 268435456, .help = "local-join map slots per shard"},
	{.key = "journey_id_attribute", .type = KN_F_STR,
	 .off = offsetof(struct kn_sli_cfg, journey_id_attribute), .def = "journey.id",
	 .help = "span attribute holding the journey id (written by the journey processor)"},
	{.key = "write_attributes", .type = KN_F_BOOL,
	 .off = offsetof(struct kn_sli_cfg, write_attributes), .def = "false",
	 .help = "write sli.<name>.latency_ms and sli.<name>.good on end spans"},
	{.key = "latency_buckets", .type = KN_F_STRLIST,
	 .off = offsetof(struct kn_sli_cfg, latency_buckets),
	 .def = "[5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 500ms, 1s, 2.5s, 5s, 10s, 30s]",
	 .help = "latency histogram bounds (durations, ascending)"},
	KN_CFG_END,
};

int kn_sli_kind_value(const char *kind)
{
	for (int i = 0; kind && kn_sli_kinds[i]; i++)
		if (strcmp(kind, kn_sli_kinds[i]) == 0)
			return i + 1; /* SpanKind: INTERNAL = 1 .. CONSUMER = 5 */
	return -1;
}

int kn_sli_start_value(const char *from)
{
	if (from && strcmp(from, "trace") == 0)
		return KN_SLI_START_TRACE;
	if (from && strcmp(from, "journey") == 0)
		return KN_SLI_START_JOURNEY;
	return KN_SLI_START_ANY;
}

int kn_sli_dim_from_value(const char *from)
{
	if (from && strcmp(from, "resource") == 0)
		return KN_SLI_FROM_RESOURCE;
	if (from && strcmp(from, "head") == 0)
		return KN_SLI_FROM_HEAD;
	return KN_SLI_FROM_SPAN;
}

int kn_sli_buckets(const struct kn_strlist *l, const char *path, double *out, struct kn_err *err)
{
	if (l->n == 0 || l->n > KN_SLI_MAX_BUCKETS)
		return kn_errf(err, "%s.latency_buckets: between 1 and %d bounds, got %zu", path,
			       KN_SLI_MAX_BUCKETS, l->n), -1;
	char p[300];
	for (size_t i = 0; i < l->n; i++) {
		uint64_t ns;
		snprintf(p, sizeof p, "%s.latency_buckets[%zu]", path, i);
		if (kn_parse_duration(l->v[i], p, &ns, err) != KN_OK)
			return -1;
		out[i] = (double)ns / 1e9;
		if (i && out[i] <= out[i - 1])
			return kn_errf(err, "%s: bounds must ascend", p), -1;
	}
	return (int)l->n;
}

static int label_name_ok(const char *s)
{
	if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_') || (s[0] == '_' && s[1] == '_'))
		return 0;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			return 0;
	static const char *const reserved[] = {"sli", "le", "window", "sli_overflow", NULL};
	for (int i = 0; reserved[i]; i++)
		if (strcmp(s, reserved[i]) == 0)
			return 0;
	return 1;
}

int kn_sli_validate(const void *cfg, const char *path, struct kn_err *err)
{
	const struct kn_sli_cfg *c = cfg;
	double b[KN_SLI_MAX_BUCKETS];
	if (kn_sli_buckets(&c->latency_buckets, path, b, err) < 0)
		return KN_ERR;
	if (!c->journey_id_attribute || !c->journey_id_attribute[0])
		return kn_errf(err, "%s.journey_id_attribute: must not be empty", path);
	for (size_t i = 0; i < c->slis.n; i++) {
		const struct kn_sli_def *d = &c->slis.v[i];
		if (!d->name || !d->name[0] || strlen(d->name) > 64)
			return kn_errf(err, "%s.slis[%zu].name: 1 to 64 characters", path, i);
		for (const char *p = d->name; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
				return kn_errf(err, "%s.slis[%zu].name: only letters, digits, '_', '-', '.' (got \"%s\")",
					       path, i, d->name);
		for (size_t k = 0; k < i; k++)
			if (strcmp(c->slis.v[k].name, d->name) == 0)
				return kn_errf(err, "%s.slis[%zu].name: \"%s\" is used twice", path, i,
					       d->name);
		if (d->span.present && (d->start.present || d->end.present))
			return kn_errf(err, "%s.slis[%zu]: give either span, or start and end, not both",
				       path, i);
		if (!d->span.present && !(d->start.present && d->end.present))
			return kn_errf(err, "%s.slis[%zu]: needs span, or start and end", path, i);
		if (!(d->objective > 0 && d->objective < 100))
			return kn_errf(err, "%s.slis[%zu].objective: a percentage strictly between 0 and 100, got %g",
				       path, i, d->objective);
		if (d->window_ns < KN_NS_PER_HOUR)
			return kn_errf(err, "%s.slis[%zu].window: at least 1h", path, i);
		if (d->window_ns > 400 * 24 * KN_NS_PER_HOUR)
			return kn_errf(err, "%s.slis[%zu].window: at most 400d", path, i);
		if (!d->threshold_ns && !d->success.status && !d->success.http && !d->success.grpc)
			return kn_errf(err, "%s.slis[%zu]: nothing can be bad: set threshold or a success rule",
				       path, i);
		if (d->dims.n > 16)
			return kn_errf(err, "%s.slis[%zu].dimensions: at most 16", path, i);
		for (size_t k = 0; k < d->dims.n; k++) {
			if (!label_name_ok(d->dims.v[k].name))
				return kn_errf(err, "%s.slis[%zu].dimensions[%zu].name: \"%s\" is not a usable label name",
					       path, i, k, d->dims.v[k].name ? d->dims.v[k].name : "");
			for (size_t q = 0; q < k; q++)
				if (strcmp(d->dims.v[q].name, d->dims.v[k].name) == 0)
					return kn_errf(err, "%s.slis[%zu].dimensions[%zu].name: \"%s\" is used twice",
						       path, i, k, d->dims.v[k].name);
		}
	}
	return KN_OK;
}
