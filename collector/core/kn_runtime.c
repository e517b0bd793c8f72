/* SPDX-License-Identifier: Apache-2.0
 * kn_runtime: assembles the collector from the config tree and runs its
 * lifecycle (see kn_runtime.h). Config checks happen here, before any socket
 * or thread exists, so `kansatsu validate` and startup report the same
 * errors, each naming its path. */
#include "kn_runtime.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../admin/kn_admin.h"
#include "../config/kn_config.h"
#include "../http/kn_httpd.h"
#include "kn_budget.h"
#include "kn_clock.h"
#include "kn_cpus.h"
#include "kn_extension.h"
#include "kn_log.h"
#include "kn_metrics.h"
#include "kn_runtime_impl.h"

/* ---- the config sections that belong to the collector itself ---- */

struct settings {
	uint64_t shards;
	uint64_t memory_limit_mib;
	uint64_t shutdown_timeout_ns;
	uint64_t ring_size;
};

static const struct kn_cfg_field settings_fields[] = {
	{.key = "shards", .type = KN_F_UINT, .off = offsetof(struct settings, shards), .def = "0",
	 .help = "shard workers; 0 = one per CPU of the process (its affinity)", .min = 0, .max = KN_MAX_SHARDS},
	{.key = "memory_limit_mib", .type = KN_F_UINT, .off = offsetof(struct settings, memory_limit_mib),
	 .def = "512", .help = "the process's resident memory limit; spans get what the process itself "
			       "and a headroom leave of it, past that receivers refuse (retryable)",
	 .min = 1, .max = 1 << 20},
	{.key = "shutdown_timeout", .type = KN_F_DURATION,
	 .off = offsetof(struct settings, shutdown_timeout_ns), .def = "30s",
	 .help = "time to drain accepted spans to the exporters on SIGTERM"},
	{.key = "ring_size", .type = KN_F_UINT, .off = offsetof(struct settings, ring_size), .def = "1024",
	 .help = "entries per receiver-thread-to-shard ring (a power of two)", .min = 4, .max = 1 << 20},
	KN_CFG_END,
};

static const char *const metric_levels[] = {"none", "basic", "normal", "detailed", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

struct telemetry {
	struct {
		char *address;
		char *level;
	} metrics;
	struct {
		char *level;
		char *encoding;
	} logs;
};

static const struct kn_cfg_field telemetry_metrics_fields[] = {
	{.key = "address", .type = KN_F_STR, .off = 0, .def = "localhost:8888",
	 .help = "where /metrics is served (Prometheus text); default: this host only"},
	{.key = "level", .type = KN_F_STR, .off = sizeof(char *), .def = "normal",
	 .help = "none disables the metrics endpoint", .choices = metric_levels},
	KN_CFG_END,
};

static const char *const log_encodings[] = {"console", NULL};

static const struct kn_cfg_field telemetry_logs_fields[] = {
	{.key = "level", .type = KN_F_STR, .off = 0, .def = "info", .choices = log_levels},
	{.key = "encoding", .type = KN_F_STR, .off = sizeof(char *), .def = "console",
	 .choices = log_encodings},
	KN_CFG_END,
};

static const struct kn_cfg_field telemetry_fields[] = {
	{.key = "metrics", .type = KN_F_SUB, .off = offsetof(struct telemetry, metrics),
	 .sub = telemetry_metrics_fields},
	{.key = "logs", .type = KN_F_SUB, .off = offsetof(struct telemetry, logs),
	 .sub = telemetry_logs_fields},
	KN_CFG_END,
};

/* Stores the node itself: sections whose keys are component ids. */
static int keep_node(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	if (node->type != KN_CNODE_MAP && node->type != KN_CNODE_NULL)
		return kn_errf(err, "%s: expected a map", node->path);
	*(const struct kn_cnode **)dst = node;
	return KN_OK;
}

struct service {
	struct kn_strlist extensions;
	struct telemetry telemetry;
	const struct kn_cnode *pipelines;
};

static const struct kn_cfg_field service_fields[] = {
	{.key = "extensions", .type = KN_F_STRLIST, .off = offsetof(struct service, extensions)},
	{.key = "telemetry", .type = KN_F_SUB, .off = offsetof(struct service, telemetry),
	 .sub = telemetry_fields},
	{.key = "pipelines", .type = KN_F_CUSTOM, .off = offsetof(struct service, pipelines),
	 .parse = keep_node, .required = 1},
	KN_CFG_END,
};

struct root {
	const struct kn_cnode *receivers, *processors, *exporters, *extensions, *connectors;
	struct service service;
	struct settings kansatsu;
};

static const struct kn_cfg_field root_fields[] = {
	{.key = "receivers", .type = KN_F_CUSTOM, .off = offsetof(struct root, receivers),
	 .parse = keep_node, .required = 1},
	{.key = "processors", .type = KN_F_CUSTOM, .off = offsetof(struct root, processors),
	 .parse = keep_node},
	{.key = "exporters", .type = KN_F_CUSTOM, .off = offsetof(struct root, exporters),
	 .parse = keep_node, .required = 1},
	{.key = "extensions", .type = KN_F_CUSTOM, .off = offsetof(struct root, extensions),
	 .parse = keep_node},
	{.key = "connectors", .type = KN_F_CUSTOM, .off = offsetof(struct root, connectors),
	 .parse = keep_node},
	{.key = "service", .type = KN_F_SUB, .off = offsetof(struct root, service),
	 .sub = service_fields, .required = 1},
	{.key = "kansatsu", .type = KN_F_SUB, .off = offsetof(struct root, kansatsu),
	 .sub = settings_fields},
	KN_CFG_END,
};

struct health_cfg {
	char *endpoint;
};

static const struct kn_cfg_field health_fields[] = {
	{.key = "endpoint", .type = KN_F_STR, .off = offsetof(struct health_cfg, endpoint),
	 .def = "localhost:13133", .help = "default: this host only"},
	KN_CFG_END,
};

struct pipeline_cfg {
	struct kn_strlist receivers, processors, exporters;
};

static const struct kn_cfg_field pipeline_fields[] = {
	{.key = "receivers", .type = KN_F_STRLIST, .off = offsetof(struct pipeline_cfg, receivers),
	 .required = 1},
	{.key = "processors", .type = KN_F_STRLIST, .off = offsetof(struct pipeline_cfg, processors)},
	{.key = "exporters", .type = KN_F_STRLIST, .off = offsetof(struct pipeline_cfg, exporters),
	 .required = 1},
	KN_CFG_END,
};

const char kn_default_config[] =
	"# kansatsu's embedded default: OTLP on both standard ports -> debug exporter.\n"
	"receivers:\n"
	"  otlp:\n"
	"    protocols:\n"
	"      grpc:\n"
	"        endpoint: 0.0.0.0:4317\n"
	"      http:\n"
	"        endpoint: 0.0.0.0:4318\n"
	"processors:\n"
	"  batch: {}\n"
	"exporters:\n"
	"  debug:\n"
	"    verbosity: basic\n"
	"extensions:\n"
	"  health_check:\n"
	"    endpoint: 0.0.0.0:13133\n"
	"service:\n"
	"  extensions: [health_check]\n"
	"  telemetry:\n"
	"    metrics:\n"
	"      address: 0.0.0.0:8888\n"
	"  pipelines:\n"
	"    traces:\n"
	"      receivers: [otlp]\n"
	"      processors: [batch]\n"
	"      exporters: [debug]\n";

/* ---- component instances ---- */

static const char *kind_section(enum kn_kind k)
{
	return k == KN_RECEIVER	   ? "receivers"
	       : k == KN_PROCESSOR ? "processors"
	       : k == KN_EXPORTER  ? "exporters"
				   : "extensions";
}

static const char *kind_name(enum kn_kind k)
{
	return k == KN_RECEIVER	   ? "receiver"
	       : k == KN_PROCESSOR ? "processor"
	       : k == KN_EXPORTER  ? "exporter"
				   : "extension";
}

static void supported_types(enum kn_kind k, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = '\0';
	if (k == KN_EXTENSION) /* the runtime's own, not a component */
		o = (size_t)snprintf(out, cap, "health_check");
	for (size_t i = 0; kn_components[i]; i++) {
		if (kn_components[i]->kind != k)
			continue;
		int n = snprintf(out + o, cap - o, "%s%s", o ? ", " : "", kn_components[i]->type);
		if (n < 0 || (size_t)n >= cap - o)
			break;
		o += (size_t)n;
	}
}

/* Finds `id` in a section map, resolves its type, applies its config table.
 * `ref` names where the id was referenced (for messages). */
static int instance_config(const struct kn_cnode *section, enum kn_kind kind, const char *id,
			   const char *ref, struct kn_instance *out, struct kn_err *err)
{
	const struct kn_cnode *node = section ? kn_cnode_get(section, id) : NULL;
	if (!node)
		return kn_errf(err, "%s: %s \"%s\" is not configured under %s", ref, kind_name(kind), id,
			       kind_section(kind));
	char type[64];
	size_t tl = strcspn(id, "/");
	if (tl == 0 || tl >= sizeof type)
		return kn_errf(err, "%s: bad component id \"%s\"", node->path, id);
	memcpy(type, id, tl);
	type[tl] = '\0';
	const struct kn_component *comp = kn_component_find(kind, type);
	if (!comp) {
		char sup[256];
		supported_types(kind, sup, sizeof sup);
		return kn_errf(err, "%s: unknown %s type \"%s\" (supported: %s)", node->path,
			       kind_name(kind), type, sup);
	}
	out->comp = comp;
	out->id = strdup(id);
	out->path = strdup(node->path);
	out->cfg = calloc(1, comp->config_size ? comp->config_size : 1);
	if (!out->id || !out->path || !out->cfg)
		return kn_errf(err, "%s: out of memory", node->path);
	if (comp->config_fields && kn_cfg_apply(comp->config_fields, node, out->cfg, err) != KN_OK)
		return KN_ERR;
	if (!comp->config_fields && node->type == KN_CNODE_MAP && node->n > 0)
		return kn_errf(err, "%s.%s: unknown key", node->path, node->children[0].key);
	if (comp->validate && comp->validate(out->cfg, node->path, err) != KN_OK)
		return KN_ERR;
	return KN_OK;
}

static int instance_create(struct kn_runtime *rt, struct kn_instance *in, uint16_t source,
			   struct kn_err *err)
{
	struct kn_component_ctx ctx = {
		.id = in->id,
		.metrics = rt->metrics,
		.rt = rt,
		.source = source,
		.nshards = (uint32_t)rt->nshards,
	};
	if (in->comp->create(&ctx, in->cfg, &in->inst, err) != KN_OK) {
		/* messages that already name a key under the component keep their path */
		size_t pl = strlen(in->path);
		if (err && strncmp(err->msg, in->path, pl) == 0 && (err->msg[pl] == '.' || err->msg[pl] == ':'))
			return KN_ERR;
		return kn_err_prefix(err, "%s: ", in->path);
	}
	return KN_OK;
}

static void instance_fini(struct kn_instance *in)
{
	if (in->comp) {
		if (in->inst && in->comp->destroy)
			in->comp->destroy(in->inst);
		if (in->cfg && in->comp->config_fields)
			kn_cfg_free(in->comp->config_fields, in->cfg);
	}
	free(in->cfg);
	free(in->id);
	free(in->path);
	memset(in, 0, sizeof *in);
}

/* Index of id in a list of instances, adding it (configured, not created) when new. */
static int intern(struct kn_instance **arr, uint32_t *n, const struct kn_cnode *section,
		  enum kn_kind kind, const char *id, const char *ref, uint32_t *idx, struct kn_err *err)
{
	for (uint32_t i = 0; i < *n; i++)
		if (strcmp((*arr)[i].id, id) == 0) {
			*idx = i;
			return KN_OK;
		}
	struct kn_instance *na = realloc(*arr, (*n + 1) * sizeof **arr);
	if (!na)
		return kn_errf(err, "%s: out of memory", ref);
	*arr = na;
	memset(&na[*n], 0, sizeof na[*n]);
	*idx = (*n)++;
	return instance_config(section, kind, id, ref, &na[*idx], err);
}

static int check_section_types(const struct kn_cnode *section, enum kn_kind kind, struct kn_err *err)
{
	/* Every configured component is validated, used in a pipeline or not. */
	if (!section || section->type != KN_CNODE_MAP)
		return KN_OK;
	for (size_t i = 0; i < section->n; i++) {
		struct kn_instance tmp = {0};
		int rc = instance_config(section, kind, section->children[i].key,
					 section->children[i].path, &tmp, err);
		instance_fini(&tmp);
		if (rc != KN_OK)
			return KN_ERR;
	}
	return KN_OK;
}

static int build_pipelines(struct kn_runtime *rt, const struct root *root, struct kn_err *err)
{
	const struct kn_cnode *pls = root->service.pipelines;
	if (!pls || pls->type != KN_CNODE_MAP || pls->n == 0)
		return kn_errf(err, "service.pipelines: at least one traces pipeline is required");
	rt->pipelines = calloc(pls->n, sizeof *rt->pipelines);
	if (!rt->pipelines)
		return kn_errf(err, "service.pipelines: out of memory");
	for (size_t p = 0; p < pls->n; p++) {
		const struct kn_cnode *pn = &pls->children[p];
		struct kn_pipeline *pl = &rt->pipelines[rt->npipelines++];
		pl->name = strdup(pn->key);
		if (!pl->name)
			return kn_errf(err, "%s: out of memory", pn->path);
		size_t tl = strcspn(pn->key, "/");
		if (tl != 6 || strncmp(pn->key, "traces", 6) != 0)
			return kn_errf(err, "%s: only traces pipelines are supported (\"traces\" or \"traces/<name>\")",
				       pn->path);
		struct pipeline_cfg pc = {0};
		if (kn_cfg_apply(pipeline_fields, pn, &pc, err) != KN_OK) {
			kn_cfg_free(pipeline_fields, &pc);
			return KN_ERR;
		}
		int rc = KN_OK;
		char ref[512];
		if (pc.receivers.n == 0)
			rc = kn_errf(err, "%s.receivers: at least one receiver is required", pn->path);
		if (rc == KN_OK && pc.exporters.n == 0)
			rc = kn_errf(err, "%s.exporters: at least one exporter is required", pn->path);
		pl->recv = calloc(pc.receivers.n + 1, sizeof *pl->recv);
		pl->exp = calloc(pc.exporters.n + 1, sizeof *pl->exp);
		pl->exp_inst = calloc(pc.exporters.n + 1, sizeof *pl->exp_inst);
		pl->procs = calloc(pc.processors.n + 1, sizeof *pl->procs);
		if (rc == KN_OK && (!pl->recv || !pl->exp || !pl->exp_inst || !pl->procs))
			rc = kn_errf(err, "%s: out of memory", pn->path);
		for (size_t i = 0; rc == KN_OK && i < pc.receivers.n; i++) {
			snprintf(ref, sizeof ref, "%s.receivers[%zu]", pn->path, i);
			for (size_t j = 0; j < i; j++)
				if (strcmp(pc.receivers.v[j], pc.receivers.v[i]) == 0)
					rc = kn_errf(err, "%s: receiver \"%s\" is listed twice", ref,
						     pc.receivers.v[i]);
			if (rc == KN_OK)
				rc = intern(&rt->receivers, &rt->nreceivers, root->receivers, KN_RECEIVER,
					    pc.receivers.v[i], ref, &pl->recv[pl->nrecv++], err);
		}
		for (size_t i = 0; rc == KN_OK && i < pc.exporters.n; i++) {
			snprintf(ref, sizeof ref, "%s.exporters[%zu]", pn->path, i);
			for (size_t j = 0; j < i; j++)
				if (strcmp(pc.exporters.v[j], pc.exporters.v[i]) == 0)
					rc = kn_errf(err, "%s: exporter \"%s\" is listed twice", ref,
						     pc.exporters.v[i]);
			if (rc == KN_OK)
				rc = intern(&rt->exporters, &rt->nexporters, root->exporters, KN_EXPORTER,
					    pc.exporters.v[i], ref, &pl->exp[pl->nexp++], err);
		}
		for (size_t i = 0; rc == KN_OK && i < pc.processors.n; i++) {
			snprintf(ref, sizeof ref, "%s.processors[%zu]", pn->path, i);
			rc = instance_config(root->processors, KN_PROCESSOR, pc.processors.v[i], ref,
					     &pl->procs[pl->nproc++], err);
		}
		kn_cfg_free(pipeline_fields, &pc);
		if (rc != KN_OK)
			return KN_ERR;
		char labels[160], esc[128];
		kn_metrics_label_escape(pl->name, esc, sizeof esc);
		snprintf(labels, sizeof labels, "pipeline=\"%s\"", esc);
		pl->exported_spans = kn_metrics_counter(rt->metrics, "kansatsu_pipeline_exported_spans_total",
							"Spans handed to the pipeline's exporters.", labels);
		pl->dropped_spans = kn_metrics_counter(rt->metrics, "kansatsu_pipeline_dropped_spans_total",
						       "Spans dropped inside the pipeline (out of memory).",
						       labels);
	}
	/* rt->exporters no longer moves: resolve the pipelines' exporter pointers */
	for (uint32_t p = 0; p < rt->npipelines; p++)
		for (uint32_t i = 0; i < rt->pipelines[p].nexp; i++)
			rt->pipelines[p].exp_inst[i] = &rt->exporters[rt->pipelines[p].exp[i]];
	/* receiver index -> pipelines it feeds */
	rt->source_pipes = calloc(rt->nreceivers + 1, sizeof *rt->source_pipes);
	rt->nsource_pipes = calloc(rt->nreceivers + 1, sizeof *rt->nsource_pipes);
	if (!rt->source_pipes || !rt->nsource_pipes)
		return kn_errf(err, "service.pipelines: out of memory");
	for (uint32_t r = 0; r < rt->nreceivers; r++) {
		rt->source_pipes[r] = calloc(rt->npipelines, sizeof **rt->source_pipes);
		if (!rt->source_pipes[r])
			return kn_errf(err, "service.pipelines: out of memory");
		for (uint32_t p = 0; p < rt->npipelines; p++)
			for (uint32_t i = 0; i < rt->pipelines[p].nrecv; i++)
				if (rt->pipelines[p].recv[i] == r)
					rt->source_pipes[r][rt->nsource_pipes[r]++] = p;
	}
	return KN_OK;
}

static int is_health_check(const char *id)
{
	return strcspn(id, "/") == 12 && strncmp(id, "health_check", 12) == 0;
}

static int health_check_config(struct kn_runtime *rt, int used,
			       const struct kn_cnode *e, struct kn_err *err);

/* extensions: every configured one is checked; the ones service.extensions
 * lists are instantiated (created here, before every other component). */
static int build_extensions(struct kn_runtime *rt, const struct root *root, struct kn_err *err)
{
	const struct kn_cnode *ext = root->extensions;
	const struct kn_strlist *list = &root->service.extensions;
	if (ext && ext->type == KN_CNODE_MAP) {
		rt->ext_configured = calloc(ext->n + 1, sizeof *rt->ext_configured);
		if (!rt->ext_configured)
			return kn_errf(err, "extensions: out of memory");
		for (size_t i = 0; i < ext->n; i++) {
			const struct kn_cnode *e = &ext->children[i];
			if (!(rt->ext_configured[rt->next_configured++] = strdup(e->key)))
				return kn_errf(err, "extensions: out of memory");
			int used = 0;
			for (size_t j = 0; j < list->n; j++)
				if (strcmp(list->v[j], e->key) == 0)
					used = 1;
			if (is_health_check(e->key)) {
				if (health_check_config(rt, used, e, err) != KN_OK)
					return KN_ERR;
				continue;
			}
			struct kn_instance tmp = {0};
			int rc = instance_config(ext, KN_EXTENSION, e->key, e->path, &tmp, err);
			instance_fini(&tmp);
			if (rc != KN_OK)
				return KN_ERR;
		}
	}
	for (size_t j = 0; j < list->n; j++) {
		char ref[64];
		snprintf(ref, sizeof ref, "service.extensions[%zu]", j);
		if (!ext || !kn_cnode_get(ext, list->v[j]))
			return kn_errf(err, "%s: extension \"%s\" is not configured under extensions", ref,
				       list->v[j]);
		for (size_t k = 0; k < j; k++)
			if (strcmp(list->v[k], list->v[j]) == 0)
				return kn_errf(err, "%s: extension \"%s\" is listed twice", ref, list->v[j]);
		if (is_health_check(list->v[j]))
			continue;
		uint32_t idx;
		if (intern(&rt->extensions, &rt->nextensions, ext, KN_EXTENSION, list->v[j], ref, &idx,
			   err) != KN_OK)
			return KN_ERR;
	}
	return KN_OK;
}

static int health_check_config(struct kn_runtime *rt, int used,
			       const struct kn_cnode *e, struct kn_err *err)
{
	struct health_cfg hc = {0};
	int rc = kn_cfg_apply(health_fields, e, &hc, err);
	if (rc == KN_OK) {
		char host[256];
		uint16_t port;
		char p[512];
		snprintf(p, sizeof p, "%s.endpoint", e->path);
		rc = kn_parse_endpoint(hc.endpoint, p, host, sizeof host, &port, err);
	}
	if (rc == KN_OK && used && !rt->health_endpoint) {
		rt->health_endpoint = strdup(hc.endpoint);
		if (!rt->health_endpoint)
			rc = kn_errf(err, "%s: out of memory", e->path);
	}
	kn_cfg_free(health_fields, &hc);
	return rc;
}

const char *kn_auth_verdict_name(enum kn_auth_verdict v)
{
	static const char *const names[] = {"ok", "missing", "malformed", "denied"};
	return (unsigned)v < KN_AUTH_NVERDICTS ? names[v] : "unknown";
}

int kn_extension_find(struct kn_runtime *rt, const char *id, enum kn_ext_iface want,
		      const char *ref, struct kn_ext_ref *out, struct kn_err *err)
{
	static const char *const what[] = {"a server authenticator", "a client authenticator",
					   "a storage"};
	if (!id || !*id)
		return kn_errf(err, "%s: missing", ref);
	if (!rt)
		return kn_errf(err, "%s: extension \"%s\": no extensions outside a collector", ref, id);
	for (uint32_t i = 0; i < rt->nextensions; i++) {
		struct kn_instance *in = &rt->extensions[i];
		if (strcmp(in->id, id) != 0)
			continue;
		const void *ops = want == KN_EXT_SERVER_AUTH   ? (const void *)in->comp->server_auth
				  : want == KN_EXT_CLIENT_AUTH ? (const void *)in->comp->client_auth
							       : (const void *)in->comp->storage;
		if (!ops)
			return kn_errf(err, "%s: extension \"%s\" (type %s) is not %s", ref, id,
				       in->comp->type, what[want]);
		if (!in->inst)
			return kn_errf(err, "%s: extension \"%s\" is not created yet", ref, id);
		const char *why = NULL;
		if (want == KN_EXT_SERVER_AUTH && in->comp->server_auth->unusable)
			why = in->comp->server_auth->unusable(in->inst);
		else if (want == KN_EXT_CLIENT_AUTH && in->comp->client_auth->unusable)
			why = in->comp->client_auth->unusable(in->inst);
		if (why)
			return kn_errf(err, "%s: extension \"%s\" is not %s: %s", ref, id, what[want], why);
		out->comp = in->comp;
		out->inst = in->inst;
		return KN_OK;
	}
	for (size_t i = 0; i < rt->next_configured; i++)
		if (strcmp(rt->ext_configured[i], id) == 0)
			return kn_errf(err, "%s: extension \"%s\" is configured but not listed in "
					    "service.extensions", ref, id);
	return kn_errf(err, "%s: extension \"%s\" is not configured under extensions", ref, id);
}

struct kn_runtime *kn_runtime_create(const struct kn_cnode *tree, struct kn_err *err)
{
	struct root root;
	memset(&root, 0, sizeof root);
	struct kn_runtime *rt = calloc(1, sizeof *rt);
	if (!rt) {
		kn_errf(err, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&rt->producers_mu, NULL);
	rt->metrics = kn_metrics_create();
	if (!rt->metrics) {
		kn_errf(err, "out of memory");
		goto fail;
	}
	if (!tree || tree->type != KN_CNODE_MAP) {
		kn_errf(err, "config: expected a map with receivers, exporters and service");
		goto fail;
	}
	if (kn_cfg_apply(root_fields, tree, &root, err) != KN_OK)
		goto fail;
	rt->nshards = root.kansatsu.shards;
	if (rt->nshards == 0) {
		rt->nshards = kn_cpus(); /* the process's affinity: taskset / cpusets size it */
		if (rt->nshards > KN_MAX_SHARDS)
			rt->nshards = KN_MAX_SHARDS;
	}
	rt->memory_limit_mib = root.kansatsu.memory_limit_mib;
	rt->shutdown_timeout_ns = root.kansatsu.shutdown_timeout_ns;
	rt->ring_size = root.kansatsu.ring_size;
	if (rt->ring_size & (rt->ring_size - 1)) {
		kn_errf(err, "kansatsu.ring_size: must be a power of two, got %llu",
			(unsigned long long)rt->ring_size);
		goto fail;
	}
	if (root.connectors && root.connectors->type == KN_CNODE_MAP && root.connectors->n) {
		kn_errf(err, "%s: connectors are not supported", root.connectors->children[0].path);
		goto fail;
	}
	if (check_section_types(root.receivers, KN_RECEIVER, err) != KN_OK ||
	    check_section_types(root.processors, KN_PROCESSOR, err) != KN_OK ||
	    check_section_types(root.exporters, KN_EXPORTER, err) != KN_OK)
		goto fail;
	if (build_pipelines(rt, &root, err) != KN_OK)
		goto fail;
	for (uint32_t p = 0; p < rt->npipelines; p++)
		for (uint32_t i = 0; i < rt->pipelines[p].nproc; i++)
			if (!rt->pipelines[p].procs[i].comp->any_shard)
				rt->whole_traces = 1;
	if (build_extensions(rt, &root, err) != KN_OK)
		goto fail;
	if (strcmp(root.service.telemetry.metrics.level, "none") != 0) {
		char host[256];
		uint16_t port;
		if (kn_parse_endpoint(root.service.telemetry.metrics.address,
				      "service.telemetry.metrics.address", host, sizeof host, &port,
				      err) != KN_OK)
			goto fail;
		rt->metrics_endpoint = strdup(root.service.telemetry.metrics.address);
		if (!rt->metrics_endpoint) {
			kn_errf(err, "out of memory");
			goto fail;
		}
	}
	const char *lvl = root.service.telemetry.logs.level;
	kn_log_set_level(strcmp(lvl, "debug") == 0  ? KN_LOG_DEBUG
			 : strcmp(lvl, "warn") == 0 ? KN_LOG_WARN
			 : strcmp(lvl, "error") == 0 ? KN_LOG_ERROR
						     : KN_LOG_INFO);

	/* Create instances: extensions, exporters, processors, receivers.
	 * Nothing opens yet. */
	for (uint32_t i = 0; i < rt->nextensions; i++)
		if (instance_create(rt, &rt->extensions[i], 0, err) != KN_OK)
			goto fail;
	for (uint32_t i = 0; i < rt->nexporters; i++)
		if (instance_create(rt, &rt->exporters[i], 0, err) != KN_OK)
			goto fail;
	for (uint32_t p = 0; p < rt->npipelines; p++)
		for (uint32_t i = 0; i < rt->pipelines[p].nproc; i++)
			if (instance_create(rt, &rt->pipelines[p].procs[i], 0, err) != KN_OK)
				goto fail;
	for (uint32_t i = 0; i < rt->nreceivers; i++)
		if (instance_create(rt, &rt->receivers[i], (uint16_t)i, err) != KN_OK)
			goto fail;
	kn_cfg_free(root_fields, &root);
	return rt;
fail:
	kn_cfg_free(root_fields, &root);
	kn_runtime_destroy(rt);
	return NULL;
}

static int64_t memory_used(void *ctx)
{
	(void)ctx;
	return (int64_t)kn_budget_used();
}

/* The process limit in force: kansatsu.memory_limit_mib, or a component's
 * lower cap (kn_runtime_limit_memory). */
static size_t effective_limit(const struct kn_runtime *rt, size_t *spike)
{
	size_t own = (size_t)rt->memory_limit_mib << 20;
	*spike = 0;
	if (rt->comp_limit && rt->comp_limit < own) {
		*spike = rt->comp_spike;
		return rt->comp_limit;
	}
	return own;
}

void kn_runtime_limit_memory(struct kn_runtime *rt, size_t limit_bytes, size_t spike_bytes,
			     const char *who)
{
	if (!rt || !limit_bytes || (rt->comp_limit && rt->comp_limit <= limit_bytes))
		return;
	rt->comp_limit = limit_bytes;
	rt->comp_spike = spike_bytes;
	snprintf(rt->comp_who, sizeof rt->comp_who, "%s", who ? who : "a component");
}

static int64_t memory_limit(void *ctx)
{
	const struct kn_runtime *rt = ctx;
	size_t spike;
	return (int64_t)effective_limit(rt, &spike);
}

static int64_t memory_budget(void *ctx)
{
	(void)ctx;
	return (int64_t)kn_budget_limit();
}

static int64_t request_bytes(void *ctx)
{
	(void)ctx;
	return (int64_t)kn_budget_req_used();
}

static int64_t request_bytes_limit(void *ctx)
{
	(void)ctx;
	return (int64_t)kn_budget_req_limit();
}

static int64_t memory_rss(void *ctx)
{
	(void)ctx;
	return (int64_t)kn_budget_process_rss();
}

/* The retry delay receivers advertise (kn_drain.h) and the drain estimate
 * it comes from: a collector, since the delay is a fraction of a second. */
static void retry_delay_collect(void *ctx, struct kn_metrics_out *o)
{
	(void)ctx;
	kn_metrics_out_family(o, KN_MFAM_GAUGE, "kansatsu_receiver_retry_delay_seconds",
			      "Delay (before jitter) the latest refusal by the memory budget or a full "
			      "pipeline advised: gRPC RetryInfo as is, HTTP Retry-After rounded up to "
			      "whole seconds; 0 before any.");
	kn_metrics_out_sample(o, "", "", (double)kn_budget_retry_advertised_ns() / 1e9, NULL);
	kn_metrics_out_family(o, KN_MFAM_GAUGE, "kansatsu_memory_drain_bytes_per_second",
			      "How fast accepted spans leave the memory budget (moving average while "
			      "it holds a backlog); retry delays follow it. 0 before any estimate.");
	kn_metrics_out_sample(o, "", "", (double)kn_budget_drain_rate(), NULL);
}

/* kansatsu.memory_limit_mib is the whole process (see kn_budget.h). Before
 * anything starts the span budget is set from the RSS so far (a safe upper
 * bound); once everything runs (libgrpc's threads, the exporters' channels,
 * the admin servers) it is lowered to what the measured base leaves. */
static void apply_memory_limit(struct kn_runtime *rt, int final)
{
	size_t spike, lim = effective_limit(rt, &spike);
	struct kn_budget_split sp = kn_budget_for_process_min(lim, kn_budget_process_rss(), spike);
	kn_budget_req_set_limit(sp.headroom / 2); /* request bodies in the receivers */
	if (!final) {
		kn_budget_init(sp.spans);
		return;
	}
	kn_budget_apply(&sp);
	double mib = 1024.0 * 1024.0;
	if (spike || rt->comp_limit) {
		/* a memory_limiter: say which bound won and where refusals start */
		char why[256];
		if (spike)
			snprintf(why, sizeof why, "%s: limit %.1f MiB, spike %.1f MiB, soft limit %.1f MiB; "
				 "below kansatsu.memory_limit_mib %llu MiB", rt->comp_who, lim / mib,
				 spike / mib, (lim - (spike < lim ? spike : lim)) / mib,
				 (unsigned long long)rt->memory_limit_mib);
		else
			snprintf(why, sizeof why, "kansatsu.memory_limit_mib; %s asks for %.1f MiB, the "
				 "lower bound wins", rt->comp_who, rt->comp_limit / mib);
		kn_info("memory: limit %.1f MiB (%s) = %.1f MiB process at start + %.1f MiB headroom "
			"+ %.1f MiB for spans%s", lim / mib, why, sp.base / mib, sp.headroom / mib,
			sp.spans / mib, sp.floored ? " (too small: the process will grow past it)" : "");
		return;
	}
	if (sp.floored)
		kn_warn("kansatsu.memory_limit_mib: %llu MiB is too small for this process (%.1f MiB "
			"resident after start, plus %.1f MiB headroom); spans get %.1f MiB, and the "
			"process will grow past the limit under load",
			(unsigned long long)rt->memory_limit_mib, sp.base / mib, sp.headroom / mib,
			sp.spans / mib);
	else
		kn_info("memory: limit %llu MiB (kansatsu.memory_limit_mib) = %.1f MiB process at start "
			"+ %.1f MiB headroom + %.1f MiB for spans",
			(unsigned long long)rt->memory_limit_mib, sp.base / mib, sp.headroom / mib,
			sp.spans / mib);
}

int kn_runtime_start(struct kn_runtime *rt, struct kn_err *err)
{
	rt->started = 1;
	apply_memory_limit(rt, 0);
	kn_metrics_gauge_fn(rt->metrics, "kansatsu_memory_used_bytes",
			    "Bytes of accepted spans held by the pipeline and exporter queues.", "",
			    memory_used, NULL);
	kn_metrics_gauge_fn(rt->metrics, "kansatsu_memory_limit_bytes",
			    "The process memory limit (kansatsu.memory_limit_mib).", "", memory_limit, rt);
	kn_metrics_gauge_fn(rt->metrics, "kansatsu_memory_budget_bytes",
			    "The part of the memory limit accepted spans may use; past it receivers refuse.",
			    "", memory_budget, NULL);
	kn_metrics_gauge_fn(rt->metrics, "kansatsu_receiver_request_bytes",
			    "Bytes of HTTP request bodies held by receivers before ingest (buffers by "
			    "capacity, inflated bodies while handled).", "", request_bytes, NULL);
	kn_metrics_gauge_fn(rt->metrics, "kansatsu_receiver_request_bytes_limit",
			    "Past this many request-body bytes receivers refuse with 503 (half the "
			    "headroom of kansatsu.memory_limit_mib).", "", request_bytes_limit, NULL);
	kn_metrics_gauge_fn(rt->metrics, "kansatsu_process_resident_memory_bytes",
			    "Resident set size of the process.", "", memory_rss, NULL);
	if (kn_metrics_collector(rt->metrics, retry_delay_collect, NULL) != 0)
		return kn_errf(err, "out of memory");
	for (uint32_t i = 0; i < rt->nextensions; i++) {
		struct kn_instance *in = &rt->extensions[i];
		if (in->comp->start && in->comp->start(in->inst, err) != KN_OK)
			return kn_err_prefix(err, "%s: ", in->path);
		in->started = 1;
	}
	for (uint32_t i = 0; i < rt->nexporters; i++) {
		struct kn_instance *in = &rt->exporters[i];
		if (in->comp->start && in->comp->start(in->inst, err) != KN_OK)
			return kn_err_prefix(err, "%s: ", in->path);
		in->started = 1;
	}
	for (uint32_t p = 0; p < rt->npipelines; p++)
		for (uint32_t i = 0; i < rt->pipelines[p].nproc; i++) {
			struct kn_instance *in = &rt->pipelines[p].procs[i];
			if (in->comp->start && in->comp->start(in->inst, err) != KN_OK)
				return kn_err_prefix(err, "%s: ", in->path);
			in->started = 1;
		}
	rt->shards = calloc(rt->nshards, sizeof *rt->shards);
	if (!rt->shards)
		return kn_errf(err, "out of memory");
	for (uint32_t s = 0; s < rt->nshards; s++) {
		rt->shards[s] = kn_shard_create(rt, s, err);
		if (!rt->shards[s])
			return KN_ERR;
	}
	for (uint32_t s = 0; s < rt->nshards; s++)
		if (kn_shard_start(rt->shards[s], err) != KN_OK)
			return KN_ERR;
	if (rt->metrics_endpoint) {
		rt->metrics_srv = kn_admin_metrics_create(rt->metrics_endpoint, rt->metrics, err);
		if (!rt->metrics_srv || kn_httpd_start(rt->metrics_srv, err) != KN_OK)
			return kn_err_prefix(err, "service.telemetry.metrics.address: ");
	}
	atomic_store(&rt->accepting, 1);
	for (uint32_t i = 0; i < rt->nreceivers; i++) {
		struct kn_instance *in = &rt->receivers[i];
		if (in->comp->start && in->comp->start(in->inst, err) != KN_OK)
			return kn_err_prefix(err, "%s: ", in->path);
		in->started = 1;
	}
	if (rt->health_endpoint) {
		rt->health = kn_admin_health_create(rt->health_endpoint, rt, err);
		if (!rt->health || kn_httpd_start(rt->health, err) != KN_OK)
			return kn_err_prefix(err, "extensions.health_check.endpoint: ");
	}
	apply_memory_limit(rt, 1);
	atomic_store(&rt->ready, 1);
	kn_log_event("ready");
	return KN_OK;
}

void kn_runtime_shutdown(struct kn_runtime *rt)
{
	if (!rt || !rt->started)
		return;
	rt->started = 0;
	uint64_t deadline = kn_now_ns() + rt->shutdown_timeout_ns;
	atomic_store(&rt->ready, 0);
	/* 1. receivers: stop accepting, finish requests in flight */
	for (uint32_t i = 0; i < rt->nreceivers; i++)
		if (rt->receivers[i].inst && rt->receivers[i].comp->shutdown)
			rt->receivers[i].comp->shutdown(rt->receivers[i].inst, deadline);
	atomic_store(&rt->accepting, 0);
	/* 2. shards, all together in phases (kn_shard.c): every shard drains its
	 * rings, then each processor stage flushes on every shard, round by round
	 * with a barrier in between, into the exporters. The first stop starts
	 * the phases for every shard; the loop joins them. */
	if (rt->shards)
		for (uint32_t s = 0; s < rt->nshards; s++)
			kn_shard_stop(rt->shards[s]);
	for (uint32_t p = 0; p < rt->npipelines; p++)
		for (uint32_t i = 0; i < rt->pipelines[p].nproc; i++) {
			struct kn_instance *in = &rt->pipelines[p].procs[i];
			if (in->inst && in->comp->shutdown)
				in->comp->shutdown(in->inst, deadline);
		}
	/* 3. exporters: drain queues until the deadline */
	for (uint32_t i = 0; i < rt->nexporters; i++)
		if (rt->exporters[i].inst && rt->exporters[i].comp->shutdown)
			rt->exporters[i].comp->shutdown(rt->exporters[i].inst, deadline);
	/* 4. extensions, in reverse order: everything that used them has stopped */
	for (uint32_t i = rt->nextensions; i-- > 0;)
		if (rt->extensions[i].inst && rt->extensions[i].comp->shutdown)
			rt->extensions[i].comp->shutdown(rt->extensions[i].inst, deadline);
	/* 5. admin last, so /metrics shows the drain */
	kn_httpd_shutdown(rt->health, deadline);
	kn_httpd_shutdown(rt->metrics_srv, deadline);
}

void kn_runtime_destroy(struct kn_runtime *rt)
{
	if (!rt)
		return;
	kn_runtime_shutdown(rt);
	for (uint32_t i = 0; i < rt->nreceivers; i++)
		instance_fini(&rt->receivers[i]);
	free(rt->receivers);
	if (rt->shards) {
		for (uint32_t s = 0; s < rt->nshards; s++)
			kn_shard_destroy(rt->shards[s]);
		free(rt->shards);
	}
	for (unsigned i = 0; i < atomic_load(&rt->nproducers); i++)
		kn_producer_free(rt->producers[i]);
	for (uint32_t p = 0; p < rt->npipelines; p++) {
		struct kn_pipeline *pl = &rt->pipelines[p];
		for (uint32_t i = 0; i < pl->nproc; i++)
			instance_fini(&pl->procs[i]);
		free(pl->procs);
		free(pl->recv);
		free(pl->exp);
		free(pl->exp_inst);
		free(pl->name);
	}
	free(rt->pipelines);
	for (uint32_t i = 0; i < rt->nexporters; i++)
		instance_fini(&rt->exporters[i]);
	free(rt->exporters);
	for (uint32_t i = rt->nextensions; i-- > 0;)
		instance_fini(&rt->extensions[i]);
	free(rt->extensions);
	for (size_t i = 0; i < rt->next_configured; i++)
		free(rt->ext_configured[i]);
	free(rt->ext_configured);
	if (rt->source_pipes)
		for (uint32_t r = 0; r < rt->nreceivers; r++)
			free(rt->source_pipes[r]);
	free(rt->source_pipes);
	free(rt->nsource_pipes);
	kn_httpd_destroy(rt->health);
	kn_httpd_destroy(rt->metrics_srv);
	free(rt->health_endpoint);
	free(rt->metrics_endpoint);
	kn_metrics_destroy(rt->metrics);
	pthread_mutex_destroy(&rt->producers_mu);
	free(rt);
}

struct kn_metrics *kn_runtime_metrics(struct kn_runtime *rt)
{
	return rt->metrics;
}

int kn_runtime_prom_rules(const struct kn_runtime *rt, FILE *out, struct kn_err *err)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	if (!mem)
		return kn_errf(err, "out of memory");
	int groups = 0, rc = KN_OK;
	for (uint32_t p = 0; p < rt->npipelines && rc == KN_OK; p++)
		for (uint32_t i = 0; i < rt->pipelines[p].nproc && rc == KN_OK; i++) {
			const struct kn_instance *in = &rt->pipelines[p].procs[i];
			if (!in->comp->prom_rules)
				continue;
			int seen = 0; /* the same processor in an earlier pipeline */
			for (uint32_t q = 0; q <= p && !seen; q++)
				for (uint32_t k = 0; k < rt->pipelines[q].nproc && !seen; k++) {
					if (q == p && k == i)
						break;
					seen = strcmp(rt->pipelines[q].procs[k].id, in->id) == 0;
				}
			if (seen)
				continue;
			int n = in->comp->prom_rules(in->cfg, in->id, mem, err);
			if (n < 0)
				rc = kn_err_prefix(err, "%s: ", in->path);
			else
				groups += n;
		}
	if (fclose(mem) != 0 && rc == KN_OK)
		rc = kn_errf(err, "out of memory");
	if (rc == KN_OK) {
		fputs(groups ? "groups:\n" : "groups: []\n", out);
		fwrite(text, 1, len, out);
		if (fflush(out) != 0 || ferror(out))
			rc = kn_errf(err, "cannot write the rules");
	}
	free(text);
	return rc;
}

int kn_runtime_ready(const struct kn_runtime *rt)
{
	return atomic_load(&((struct kn_runtime *)rt)->ready);
}
