/* SPDX-License-Identifier: Apache-2.0
 * The `otlp` receiver component: the OpenTelemetry Collector's
 *   receivers.otlp.protocols.grpc   (libgrpc core server, kn_otlp_grpc)
 *   receivers.otlp.protocols.http   (kn_httpd + OTLP/HTTP, kn_otlp_http)
 * A protocol is on when its key is present (`grpc:` alone means defaults).
 * Each serving thread of each transport gets its own kn_producer, so the
 * transports reach the shard rings without locks. `auth.authenticator`
 * names a server authenticator extension, found at create and handed to
 * the transport wrapped (auth_check) so refusals are counted by reason. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../config/kn_config.h"
#include "../grpc/kn_otlp_grpc.h"
#include "../http/kn_otlp_http.h"
#include "kn_clock.h"
#include "kn_component.h"
#include "kn_cpus.h"
#include "kn_extension.h"
#include "kn_ingest.h"
#include "kn_log.h"
#include "kn_metrics.h"
#include "kn_tls_server.h"

/* protocols.<p>.auth, the `auth` of the OpenTelemetry Collector's configgrpc and
 * confighttp servers (request_params is not supported) */
struct otlp_auth_cfg {
	char *authenticator;
};

static const struct kn_cfg_field auth_fields[] = {
	{.key = "authenticator", .type = KN_F_STR, .off = offsetof(struct otlp_auth_cfg, authenticator),
	 .required = 1,
	 .help = "id of a server authenticator extension (bearertokenauth, basicauth) in service.extensions"},
	KN_CFG_END,
};

struct otlp_grpc_cfg {
	char *endpoint;
	uint64_t max_recv_msg_size_mib;
	uint64_t threads;
	uint64_t max_concurrent_streams;
	struct {
		struct {
			uint64_t max_connection_idle_ns, max_connection_age_ns,
				max_connection_age_grace_ns, time_ns, timeout_ns;
		} server_parameters;
		struct {
			uint64_t min_time_ns;
			int permit_without_stream;
		} enforcement_policy;
	} keepalive;
	struct kn_tls_server_cfg tls;
	struct otlp_auth_cfg auth;
};

struct otlp_http_cfg {
	char *endpoint;
	uint64_t max_request_body_size;
	uint64_t threads;
	char *traces_url_path;
	uint64_t read_header_timeout_ns, read_timeout_ns, idle_timeout_ns; /* 0 = none */
	struct {
		struct kn_strlist allowed_origins, allowed_headers;
		uint64_t max_age;
	} cors;
	struct kn_tls_server_cfg tls;
	struct otlp_auth_cfg auth;
};

struct otlp_protocols {
	struct otlp_grpc_cfg grpc;
	struct otlp_http_cfg http;
	int grpc_on, http_on; /* the key was present (after the structs: offset 0 means "none") */
};

struct otlp_cfg {
	struct otlp_protocols protocols;
};

#define G(f) offsetof(struct otlp_grpc_cfg, f)
#define SP(f) offsetof(struct otlp_grpc_cfg, keepalive.server_parameters.f)
#define EP(f) offsetof(struct otlp_grpc_cfg, keepalive.enforcement_policy.f)

static const struct kn_cfg_field server_params_fields[] = {
	{.key = "max_connection_idle", .type = KN_F_DURATION, .off = SP(max_connection_idle_ns) - SP(max_connection_idle_ns)},
	{.key = "max_connection_age", .type = KN_F_DURATION, .off = SP(max_connection_age_ns) - SP(max_connection_idle_ns)},
	{.key = "max_connection_age_grace", .type = KN_F_DURATION, .off = SP(max_connection_age_grace_ns) - SP(max_connection_idle_ns)},
	{.key = "time", .type = KN_F_DURATION, .off = SP(time_ns) - SP(max_connection_idle_ns)},
	{.key = "timeout", .type = KN_F_DURATION, .off = SP(timeout_ns) - SP(max_connection_idle_ns)},
	KN_CFG_END,
};

static const struct kn_cfg_field enforcement_fields[] = {
	{.key = "min_time", .type = KN_F_DURATION, .off = EP(min_time_ns) - EP(min_time_ns)},
	{.key = "permit_without_stream", .type = KN_F_BOOL, .off = EP(permit_without_stream) - EP(min_time_ns)},
	KN_CFG_END,
};

static const struct kn_cfg_field keepalive_fields[] = {
	{.key = "server_parameters", .type = KN_F_SUB, .off = SP(max_connection_idle_ns) - G(keepalive),
	 .sub = server_params_fields},
	{.key = "enforcement_policy", .type = KN_F_SUB, .off = EP(min_time_ns) - G(keepalive),
	 .sub = enforcement_fields},
	KN_CFG_END,
};

static const struct kn_cfg_field grpc_fields[] = {
	{.key = "endpoint", .type = KN_F_STR, .off = G(endpoint), .def = "localhost:4317",
	 .help = "host:port to listen on (default: this host only; 0.0.0.0:4317 for every interface)"},
	{.key = "max_recv_msg_size_mib", .type = KN_F_UINT, .off = G(max_recv_msg_size_mib), .def = "4",
	 .help = "largest request after decompression; larger -> RESOURCE_EXHAUSTED", .min = 1, .max = 2047},
	{.key = "threads", .type = KN_F_UINT, .off = G(threads), .def = "0",
	 .help = "serving threads (completion queues); 0 = one per CPU of the process, at most 64", .min = 0, .max = 64},
	{.key = "max_concurrent_streams", .type = KN_F_UINT, .off = G(max_concurrent_streams), .def = "0",
	 .help = "per connection; 0 = library default"},
	{.key = "keepalive", .type = KN_F_SUB, .off = G(keepalive), .sub = keepalive_fields},
	{.key = "tls", .type = KN_F_SUB, .off = G(tls), .sub = kn_tls_server_fields,
	 .present_off = G(tls.enabled), .help = "serve TLS (and mutual TLS with client_ca_file)"},
	{.key = "auth", .type = KN_F_SUB, .off = G(auth), .sub = auth_fields,
	 .help = "authenticate every call with a server authenticator extension"},
	KN_CFG_END,
};

#define H(f) offsetof(struct otlp_http_cfg, f)
static const struct kn_cfg_field cors_fields[] = {
	{.key = "allowed_origins", .type = KN_F_STRLIST, .off = H(cors.allowed_origins) - H(cors)},
	{.key = "allowed_headers", .type = KN_F_STRLIST, .off = H(cors.allowed_headers) - H(cors)},
	{.key = "max_age", .type = KN_F_UINT, .off = H(cors.max_age) - H(cors), .def = "0",
	 .help = "seconds browsers may cache a preflight answer"},
	KN_CFG_END,
};

static const struct kn_cfg_field http_fields[] = {
	{.key = "endpoint", .type = KN_F_STR, .off = H(endpoint), .def = "localhost:4318",
	 .help = "host:port to listen on (default: this host only; 0.0.0.0:4318 for every interface)"},
	{.key = "max_request_body_size", .type = KN_F_UINT, .off = H(max_request_body_size),
	 .def = "20971520", .help = "bytes, after decompression; larger -> 413", .min = 1,
	 .max = 2147483647.0},
	{.key = "threads", .type = KN_F_UINT, .off = H(threads), .def = "0",
	 .help = "event-loop threads; 0 = one per CPU of the process, at most 64", .min = 0, .max = 64},
	{.key = "traces_url_path", .type = KN_F_STR, .off = H(traces_url_path), .def = "/v1/traces"},
	/* confighttp's names; read_timeout defaults to 1m here where OTel's is
	 * 0 (none): no OTLP client waits a minute for its answer, and without
	 * it a body sent a byte at a time holds a connection for ever */
	{.key = "read_header_timeout", .type = KN_F_DURATION, .off = H(read_header_timeout_ns),
	 .def = "1m", .help = "connection or request start -> headers complete (TLS handshake "
	 "included); later, closed without an answer; 0 = none"},
	{.key = "read_timeout", .type = KN_F_DURATION, .off = H(read_timeout_ns), .def = "1m",
	 .help = "request start -> body complete; later, closed without an answer; 0 = none"},
	{.key = "idle_timeout", .type = KN_F_DURATION, .off = H(idle_timeout_ns), .def = "1m",
	 .help = "close a connection that sends nothing (HTTP/2: has no stream) this long; 0 = none"},
	{.key = "cors", .type = KN_F_SUB, .off = H(cors), .sub = cors_fields},
	{.key = "tls", .type = KN_F_SUB, .off = H(tls), .sub = kn_tls_server_fields,
	 .present_off = H(tls.enabled), .help = "serve TLS (and mutual TLS with client_ca_file)"},
	{.key = "auth", .type = KN_F_SUB, .off = H(auth), .sub = auth_fields,
	 .help = "authenticate every request (CORS preflights aside) with a server authenticator extension"},
	KN_CFG_END,
};

static const struct kn_cfg_field protocols_fields[] = {
	{.key = "grpc", .type = KN_F_SUB, .off = offsetof(struct otlp_protocols, grpc),
	 .sub = grpc_fields, .present_off = offsetof(struct otlp_protocols, grpc_on)},
	{.key = "http", .type = KN_F_SUB, .off = offsetof(struct otlp_protocols, http),
	 .sub = http_fields, .present_off = offsetof(struct otlp_protocols, http_on)},
	KN_CFG_END,
};

static const struct kn_cfg_field otlp_fields[] = {
	{.key = "protocols", .type = KN_F_SUB, .off = offsetof(struct otlp_cfg, protocols),
	 .sub = protocols_fields, .required = 1},
	KN_CFG_END,
};

static int otlp_validate(const void *cfg, const char *path, struct kn_err *err)
{
	const struct otlp_cfg *c = cfg;
	char host[256], p[512];
	uint16_t port;
	if (!c->protocols.grpc_on && !c->protocols.http_on)
		return kn_errf(err, "%s.protocols: enable grpc and/or http", path);
	if (c->protocols.grpc_on) {
		snprintf(p, sizeof p, "%s.protocols.grpc.endpoint", path);
		if (kn_parse_endpoint(c->protocols.grpc.endpoint, p, host, sizeof host, &port, err) != KN_OK)
			return KN_ERR;
		snprintf(p, sizeof p, "%s.protocols.grpc.tls", path);
		if (kn_tls_server_validate(&c->protocols.grpc.tls, p, err) != KN_OK)
			return KN_ERR;
	}
	if (c->protocols.http_on) {
		snprintf(p, sizeof p, "%s.protocols.http.endpoint", path);
		if (kn_parse_endpoint(c->protocols.http.endpoint, p, host, sizeof host, &port, err) != KN_OK)
			return KN_ERR;
		if (c->protocols.http.traces_url_path[0] != '/')
			return kn_errf(err, "%s.protocols.http.traces_url_path: must start with '/', got \"%s\"",
				       path, c->protocols.http.traces_url_path);
		snprintf(p, sizeof p, "%s.protocols.http.tls", path);
		if (kn_tls_server_validate(&c->protocols.http.tls, p, err) != KN_OK)
			return KN_ERR;
	}
	return KN_OK;
}

/* A transport's authenticator: the extension's, wrapped so that refusals
 * are counted by reason and logged (at most once a second, the reason
 * only) whichever transport asked. */
struct otlp_auth {
	const struct kn_server_auth_ops *ops; /* NULL: no auth */
	void *inst;
	struct kn_metric *failures[KN_AUTH_NVERDICTS];
	atomic_uint_fast64_t last_log_ns;
	char what[200];                       /* "receivers.otlp.protocols.grpc" */
};

struct otlp_transport {
	struct kn_producer **producers; /* one per serving thread */
	uint32_t nthreads;
	const char *transport;
	struct otlp *owner;
	struct otlp_auth auth;
};

struct otlp {
	const struct otlp_cfg *cfg;
	char *id;
	struct kn_runtime *rt;
	uint16_t source;
	struct otlp_transport tg, th;
	struct kn_otlp_grpc *grpc;
	struct kn_otlp_http *http;
};

static int sink_ingest(void *ctx, uint32_t thread, const uint8_t *req, size_t len,
		       const struct kn_tracectx *tc, struct kn_ingest_result *res)
{
	struct otlp_transport *t = ctx;
	return kn_ingest(t->producers[thread], req, len, tc, res);
}

static void sink_refused(void *ctx, uint32_t thread, const char *reason)
{
	struct otlp_transport *t = ctx;
	kn_ingest_count_refused_request(t->producers[thread], reason);
}

static enum kn_auth_verdict auth_check(void *inst, const struct kn_auth_headers *h)
{
	struct otlp_auth *a = &((struct otlp_transport *)inst)->auth;
	enum kn_auth_verdict v = a->ops->authenticate(a->inst, h);
	if (v == KN_AUTH_OK)
		return v;
	if ((unsigned)v < KN_AUTH_NVERDICTS && a->failures[v])
		kn_counter_add(a->failures[v], 1);
	uint64_t now = kn_now_ns(), last = atomic_load(&a->last_log_ns);
	if ((last == 0 || now - last >= KN_NS_PER_SEC) &&
	    atomic_compare_exchange_strong(&a->last_log_ns, &last, now))
		kn_warn("%s: refused a request: unauthenticated (%s credentials)", a->what,
			kn_auth_verdict_name(v));
	return v;
}

static const char *auth_challenge(void *inst)
{
	struct otlp_auth *a = &((struct otlp_transport *)inst)->auth;
	return a->ops->challenge(a->inst);
}

static const struct kn_server_auth_ops auth_wrapper = {
	.authenticate = auth_check,
	.challenge = auth_challenge,
};

/* Finds the authenticator protocols.<proto>.auth names (at create, so
 * `kansatsu validate` reports a wrong id) and registers the failure counts
 * kansatsu_receiver_auth_failures_total{receiver,transport,reason}. */
static int auth_setup(const struct kn_component_ctx *ctx, struct otlp_transport *t, const char *id,
		      struct kn_err *err)
{
	struct otlp_auth *a = &t->auth;
	char ref[300];
	snprintf(a->what, sizeof a->what, "receivers.%s.protocols.%s", ctx->id, t->transport);
	snprintf(ref, sizeof ref, "%s.auth.authenticator", a->what);
	struct kn_ext_ref ext;
	if (kn_extension_find(ctx->rt, id, KN_EXT_SERVER_AUTH, ref, &ext, err) != KN_OK)
		return KN_ERR;
	a->ops = ext.comp->server_auth;
	a->inst = ext.inst;
	atomic_init(&a->last_log_ns, 0);
	if (!ctx->metrics)
		return KN_OK;
	char esc[128], labels[300];
	kn_metrics_label_escape(ctx->id, esc, sizeof esc);
	for (int v = KN_AUTH_MISSING; v < KN_AUTH_NVERDICTS; v++) {
		snprintf(labels, sizeof labels, "receiver=\"%s\",transport=\"%s\",reason=\"%s\"", esc,
			 t->transport, kn_auth_verdict_name((enum kn_auth_verdict)v));
		a->failures[v] = kn_metrics_counter(ctx->metrics, "kansatsu_receiver_auth_failures_total",
						    "Requests refused by the receiver's authenticator, by reason "
						    "(missing, malformed or denied credentials).",
						    labels);
	}
	return KN_OK;
}

/* config 0 = no timeout */
static uint64_t http_timeout(uint64_t ns)
{
	return ns ? ns : KN_OTLP_HTTP_NO_TIMEOUT;
}

static struct kn_metric *closed_counter(const struct kn_component_ctx *ctx, const char *reason)
{
	char esc[128], labels[300];
	if (!ctx->metrics)
		return NULL;
	kn_metrics_label_escape(ctx->id, esc, sizeof esc);
	snprintf(labels, sizeof labels, "receiver=\"%s\",transport=\"http\",reason=\"%s\"", esc,
		 reason);
	return kn_metrics_counter(ctx->metrics, "kansatsu_receiver_connections_closed_total",
				 "Connections the receiver closed on its own, by the timeout that "
				 "closed them (read_header_timeout, read_timeout, idle_timeout).",
				 labels);
}

static int ms(uint64_t ns)
{
	uint64_t v = ns / 1000000u;
	return v > 0x7fffffff ? 0x7fffffff : (int)v;
}

/* threads: 0 = one per CPU the process may use (kn_cpus), at most 64. */
static uint32_t threads_or_auto(uint64_t threads)
{
	unsigned n = threads ? (unsigned)threads : kn_cpus();
	return n > 64 ? 64 : n;
}

static int otlp_create(const struct kn_component_ctx *ctx, const void *cfgp, void **inst,
		       struct kn_err *err)
{
	const struct otlp_cfg *cfg = cfgp;
	struct otlp *o = calloc(1, sizeof *o);
	if (!o)
		return kn_errf(err, "out of memory");
	*inst = o;
	o->cfg = cfg;
	o->rt = ctx->rt;
	o->source = ctx->source;
	o->id = strdup(ctx->id);
	if (!o->id)
		return kn_errf(err, "out of memory");
	char name[160];
	if (cfg->protocols.grpc_on) {
		const struct otlp_grpc_cfg *g = &cfg->protocols.grpc;
		o->tg = (struct otlp_transport){.nthreads = threads_or_auto(g->threads), .transport = "grpc", .owner = o};
		if (g->auth.authenticator && auth_setup(ctx, &o->tg, g->auth.authenticator, err) != KN_OK)
			return KN_ERR;
		snprintf(name, sizeof name, "%s/grpc", ctx->id);
		struct kn_otlp_grpc_opts go = {
			.endpoint = g->endpoint,
			.name = name,
			.max_recv_msg_size_mib = (uint32_t)g->max_recv_msg_size_mib,
			.threads = o->tg.nthreads,
			.max_concurrent_streams = (uint32_t)g->max_concurrent_streams,
			.keepalive_time_ms = (uint32_t)ms(g->keepalive.server_parameters.time_ns),
			.keepalive_timeout_ms = (uint32_t)ms(g->keepalive.server_parameters.timeout_ns),
			.max_connection_idle_ms = (uint32_t)ms(g->keepalive.server_parameters.max_connection_idle_ns),
			.max_connection_age_ms = (uint32_t)ms(g->keepalive.server_parameters.max_connection_age_ns),
			.max_connection_age_grace_ms =
				(uint32_t)ms(g->keepalive.server_parameters.max_connection_age_grace_ns),
			.keepalive_min_time_ms = (uint32_t)ms(g->keepalive.enforcement_policy.min_time_ns),
			.keepalive_permit_without_stream = g->keepalive.enforcement_policy.permit_without_stream,
			.tls = g->tls.enabled ? &g->tls : NULL,
			.auth = o->tg.auth.ops ? &auth_wrapper : NULL,
			.auth_inst = &o->tg,
		};
		struct kn_ingest_sink sink = {sink_ingest, sink_refused, &o->tg};
		o->grpc = kn_otlp_grpc_create(&go, sink, err);
		if (!o->grpc)
			return kn_err_prefix(err, "protocols.grpc: ");
	}
	if (cfg->protocols.http_on) {
		const struct otlp_http_cfg *h = &cfg->protocols.http;
		o->th = (struct otlp_transport){.nthreads = threads_or_auto(h->threads), .transport = "http", .owner = o};
		if (h->auth.authenticator && auth_setup(ctx, &o->th, h->auth.authenticator, err) != KN_OK)
			return KN_ERR;
		snprintf(name, sizeof name, "%s/http", ctx->id);
		struct kn_otlp_http_opts ho = {
			.endpoint = h->endpoint,
			.name = name,
			.traces_url_path = h->traces_url_path,
			.max_request_body_size = h->max_request_body_size,
			.threads = o->th.nthreads,
			.read_header_timeout_ns = http_timeout(h->read_header_timeout_ns),
			.read_timeout_ns = http_timeout(h->read_timeout_ns),
			.idle_timeout_ns = http_timeout(h->idle_timeout_ns),
			.closed_read_header_timeout = closed_counter(ctx, "read_header_timeout"),
			.closed_read_timeout = closed_counter(ctx, "read_timeout"),
			.closed_idle_timeout = closed_counter(ctx, "idle_timeout"),
			.cors = {
				.allowed_origins = (const char *const *)h->cors.allowed_origins.v,
				.n_allowed_origins = h->cors.allowed_origins.n,
				.allowed_headers = (const char *const *)h->cors.allowed_headers.v,
				.n_allowed_headers = h->cors.allowed_headers.n,
				.max_age = h->cors.max_age,
			},
			.tls = h->tls.enabled ? &h->tls : NULL,
			.auth = o->th.auth.ops ? &auth_wrapper : NULL,
			.auth_inst = &o->th,
		};
		struct kn_ingest_sink sink = {sink_ingest, sink_refused, &o->th};
		o->http = kn_otlp_http_create(&ho, sink, err);
		if (!o->http)
			return kn_err_prefix(err, "protocols.http: ");
	}
	return KN_OK;
}

static int make_producers(struct otlp *o, struct otlp_transport *t, struct kn_err *err)
{
	t->producers = calloc(t->nthreads, sizeof *t->producers);
	if (!t->producers)
		return kn_errf(err, "out of memory");
	for (uint32_t i = 0; i < t->nthreads; i++) {
		t->producers[i] = kn_producer_create(o->rt, o->source, o->id, t->transport, err);
		if (!t->producers[i])
			return KN_ERR;
	}
	return KN_OK;
}

static int otlp_start(void *inst, struct kn_err *err)
{
	struct otlp *o = inst;
	if (o->grpc) {
		if (make_producers(o, &o->tg, err) != KN_OK || kn_otlp_grpc_start(o->grpc, err) != KN_OK)
			return kn_err_prefix(err, "protocols.grpc: ");
	}
	if (o->http) {
		if (make_producers(o, &o->th, err) != KN_OK || kn_otlp_http_start(o->http, err) != KN_OK)
			return kn_err_prefix(err, "protocols.http: ");
	}
	return KN_OK;
}

static void otlp_shutdown(void *inst, uint64_t deadline_ns)
{
	struct otlp *o = inst;
	/* Both stop accepting first, then finish what is in flight. */
	if (o->grpc)
		kn_otlp_grpc_shutdown(o->grpc, deadline_ns);
	if (o->http)
		kn_otlp_http_shutdown(o->http, deadline_ns);
}

static void otlp_destroy(void *inst)
{
	struct otlp *o = inst;
	if (!o)
		return;
	kn_otlp_grpc_destroy(o->grpc);
	kn_otlp_http_destroy(o->http);
	/* producers belong to the runtime */
	free(o->tg.producers);
	free(o->th.producers);
	free(o->id);
	free(o);
}

const struct kn_component kn_receiver_otlp = {
	.type = "otlp",
	.kind = KN_RECEIVER,
	.summary = "OTLP over gRPC (:4317) and HTTP (:4318), protobuf and JSON, gzip and zstd",
	.config_size = sizeof(struct otlp_cfg),
	.config_fields = otlp_fields,
	.validate = otlp_validate,
	.create = otlp_create,
	.start = otlp_start,
	.shutdown = otlp_shutdown,
	.destroy = otlp_destroy,
};
