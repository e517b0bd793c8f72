/* SPDX-License-Identifier: Apache-2.0
 * kn_exporter_otlp: OTLP/gRPC exporter on libgrpc's core C API (see
 * kn_exporter_otlp.h).
 *
 * Threads: export() runs on shard workers and only enqueues into the
 * kn_sender. The sender's consumer threads call send_batch(); each consumer
 * owns one pluck completion queue and one compressor (slot
 * kn_sender_consumer_index(), created on its first call, no locks). The
 * exporter opens `connections` channels, each with its own subchannel pool
 * (GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL: channels with equal arguments would
 * otherwise share one connection); consumer i calls on channel i mod N
 * (kn_conns.h), and HTTP/2 multiplexes the calls of the consumers that share
 * a channel. libgrpc's own threads do the I/O.
 *
 * Message without compression: one grpc_slice per chunk, pointing at the
 * chunk's bytes with a chunk reference held by the slice (released by
 * libgrpc when it is done), so nothing is flattened or copied on our side.
 * With gzip: the consumer compresses the batch itself (libdeflate, from the
 * chunks, kn_compress.h) and sends the result as a *compressed* byte buffer
 * (grpc_raw_compressed_byte_buffer_create with GRPC_COMPRESS_GZIP): the core
 * then sets GRPC_WRITE_INTERNAL_COMPRESS on the message, so its compression
 * filter leaves it alone and the transport sets the frame's compressed flag;
 * the channel's default algorithm (gzip) makes the filter send
 * `grpc-encoding: gzip`. The slice holds a reference on the compressed
 * buffer, dropped when libgrpc is done; the consumer then reuses it.
 *
 * Lifecycle: create checks the config and copies what it needs (no grpc
 * calls); start takes a grpc_init reference, reads the TLS files and opens the
 * channel; destroy joins the consumers, then drops the queues, the channel
 * and the grpc_init reference. */
#include "kn_exporter_otlp.h"

#include <ctype.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_extension.h"
#include "../../collector/core/kn_log.h"
#include "../common/kn_compress.h"
#include "../common/kn_conns.h"
#include "../common/kn_export_status.h"

#define EXPORT_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

static const char *const compression_choices[] = {"gzip", "zstd", "none", NULL};

static const struct kn_cfg_field tls_fields[] = {
	{.key = "insecure", .type = KN_F_BOOL, .off = offsetof(struct kn_otlpexp_tls_cfg, insecure),
	 .def = "false", .help = "plaintext gRPC (no TLS)"},
	{.key = "ca_file", .type = KN_F_STR, .off = offsetof(struct kn_otlpexp_tls_cfg, ca_file),
	 .help = "PEM file of CAs to verify the server with (default: system roots)"},
	{.key = "cert_file", .type = KN_F_STR, .off = offsetof(struct kn_otlpexp_tls_cfg, cert_file),
	 .help = "client certificate (PEM) for mutual TLS"},
	{.key = "key_file", .type = KN_F_STR, .off = offsetof(struct kn_otlpexp_tls_cfg, key_file),
	 .help = "client key (PEM) for mutual TLS"},
	{.key = "insecure_skip_verify", .type = KN_F_BOOL,
	 .off = offsetof(struct kn_otlpexp_tls_cfg, insecure_skip_verify), .def = "false",
	 .help = "not supported by the gRPC exporter (use ca_file)"},
	KN_CFG_END,
};

static const struct kn_cfg_field auth_fields[] = {
	{.key = "authenticator", .type = KN_F_STR, .off = 0, .required = 1,
	 .help = "id of a client authenticator extension (bearertokenauth, basicauth) in service.extensions"},
	KN_CFG_END,
};

static const struct kn_cfg_field compression_params_fields[] = {
	{.key = "level", .type = KN_F_INT, .off = 0, .def = "0",
	 .help = "compression level; 0 = the default (gzip: 1, libdeflate's 1..12)"},
	KN_CFG_END,
};

static const struct kn_cfg_field otlp_fields[] = {
	{.key = "endpoint", .type = KN_F_STR, .off = offsetof(struct kn_otlpexp_cfg, endpoint),
	 .required = 1, .help = "host:port of the OTLP/gRPC server (http:// = insecure, https:// = TLS)"},
	{.key = "tls", .type = KN_F_SUB, .off = offsetof(struct kn_otlpexp_cfg, tls), .sub = tls_fields,
	 .help = "TLS settings"},
	{.key = "compression", .type = KN_F_STR, .off = offsetof(struct kn_otlpexp_cfg, compression),
	 .def = "gzip", .help = "message compression (zstd is not available over gRPC with libgrpc 1.51)",
	 .choices = compression_choices},
	{.key = "compression_params", .type = KN_F_SUB, .off = offsetof(struct kn_otlpexp_cfg, compression_params),
	 .sub = compression_params_fields, .help = "compression settings"},
	{.key = "connections", .type = KN_F_UINT, .off = offsetof(struct kn_otlpexp_cfg, connections), .def = "0",
	 .help = KN_CONNS_HELP, .min = 0, .max = KN_CONNS_MAX},
	{.key = "headers", .type = KN_F_STRMAP, .off = offsetof(struct kn_otlpexp_cfg, headers),
	 .help = "extra request metadata"},
	{.key = "timeout", .type = KN_F_DURATION, .off = offsetof(struct kn_otlpexp_cfg, sender.timeout_ns),
	 .def = "5s", .help = "per request"},
	{.key = "sending_queue", .type = KN_F_SUB, .off = offsetof(struct kn_otlpexp_cfg, sender.queue),
	 .sub = kn_sender_queue_fields, .help = "queue between the pipeline and the senders"},
	{.key = "retry_on_failure", .type = KN_F_SUB, .off = offsetof(struct kn_otlpexp_cfg, sender.retry),
	 .sub = kn_sender_retry_fields, .help = "backoff for retryable failures"},
	{.key = "auth", .type = KN_F_SUB, .off = offsetof(struct kn_otlpexp_cfg, auth), .sub = auth_fields,
	 .help = "add a client authenticator extension's header to every call"},
	KN_CFG_END,
};

struct otlp {
	char *id;
	char *target;              /* "host:port" */
	int secure, gzip, level;
	char *ca_file, *cert_file, *key_file;
	char **hkeys, **hvals;     /* config headers (keys lowercased), copied at create */
	size_t nh;
	grpc_metadata *md;         /* the same as slices, built at start (slices need grpc_init) */
	size_t nmd;
	int grpc_up;
	grpc_channel **ch;         /* nconns channels, one connection each */
	unsigned nconns;
	grpc_slice method;
	grpc_completion_queue **cqs;
	struct kn_compressor **zc; /* per consumer, with gzip */
	unsigned ncqs;
	struct kn_sender *sender;
	const struct kn_client_auth_ops *auth; /* NULL: none */
	void *auth_inst;
};

/* Splits the endpoint into target and security. 0 ok, -1 malformed. */
static int split_endpoint(const char *ep, int insecure_cfg, char *target, size_t cap, int *secure)
{
	*secure = !insecure_cfg;
	if (strncmp(ep, "http://", 7) == 0) {
		ep += 7;
		*secure = 0;
	} else if (strncmp(ep, "https://", 8) == 0) {
		ep += 8;
		*secure = 1;
	} else if (strstr(ep, "://")) {
		return -1;
	}
	size_t n = strlen(ep);
	while (n > 0 && ep[n - 1] == '/')
		n--;
	if (n == 0 || n >= cap)
		return -1;
	memcpy(target, ep, n);
	target[n] = '\0';
	char *colon = strrchr(target, ':');
	if (!colon || colon == target || colon[1] == '\0' || strlen(colon + 1) > 5 || strchr(target, '/'))
		return -1;
	for (const char *p = colon + 1; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -1;
	long port = strtol(colon + 1, NULL, 10);
	return port >= 1 && port <= 65535 ? 0 : -1;
}

static int valid_md_key(const char *k)
{
	if (!*k)
		return 0;
	for (; *k; k++) {
		char c = (char)tolower((unsigned char)*k);
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

static int otlp_validate(const void *cfgp, const char *path, struct kn_err *err)
{
	const struct kn_otlpexp_cfg *cfg = cfgp;
	char target[512];
	int secure;
	if (!cfg->endpoint || !*cfg->endpoint)
		return kn_errf(err, "%s.endpoint: missing", path);
	if (split_endpoint(cfg->endpoint, cfg->tls.insecure, target, sizeof target, &secure) != 0)
		return kn_errf(err, "%s.endpoint: expected host:port (optionally http:// or https://), got \"%s\"",
			       path, cfg->endpoint);
	enum kn_zalg alg;
	if (cfg->compression && strcmp(cfg->compression, "zstd") == 0)
		return kn_errf(err, "%s.compression: zstd is not available over gRPC here: libgrpc 1.51 (Debian 12) "
			       "has no zstd message encoding; use gzip or none, or the otlphttp exporter, "
			       "which sends zstd", path);
	if (kn_zalg_parse(cfg->compression, &alg) != 0 || alg == KN_Z_ZSTD)
		return kn_errf(err, "%s.compression: expected gzip or none, got \"%s\"", path, cfg->compression);
	if (cfg->compression_params.level && alg == KN_Z_NONE)
		return kn_errf(err, "%s.compression_params.level: set, but compression is none", path);
	if (kn_zalg_level_ok(alg, cfg->compression_params.level) != 0)
		return kn_errf(err, "%s.compression_params.level: gzip levels are 1 to %d (0 = default %d), got %" PRId64,
			       path, KN_GZIP_LEVEL_MAX, KN_GZIP_LEVEL_DEFAULT, cfg->compression_params.level);
	if (kn_conns_check(cfg->connections, cfg->sender.queue.num_consumers, path, err) != KN_OK)
		return KN_ERR;
	if (cfg->tls.insecure_skip_verify)
		return kn_errf(err, "%s.tls.insecure_skip_verify: not supported by the gRPC exporter; "
			       "give the server's CA in tls.ca_file", path);
	if ((cfg->tls.cert_file == NULL) != (cfg->tls.key_file == NULL))
		return kn_errf(err, "%s.tls.%s: missing (cert_file and key_file go together)", path,
			       cfg->tls.cert_file ? "key_file" : "cert_file");
	for (size_t i = 0; i < cfg->headers.n; i++) {
		const char *k = cfg->headers.keys[i];
		if (!valid_md_key(k) || strncmp(k, "grpc-", 5) == 0 || strchr(cfg->headers.values[i], '\n'))
			return kn_errf(err, "%s.headers.%s: not a valid gRPC metadata key or value", path, k);
	}
	return KN_OK;
}

static void otlp_destroy(void *inst)
{
	struct otlp *x = inst;
	if (!x)
		return;
	kn_sender_destroy(x->sender); /* joins the consumers first */
	for (unsigned i = 0; x->cqs && i < x->ncqs; i++) {
		if (x->zc)
			kn_compressor_free(x->zc[i]);
		if (!x->cqs[i])
			continue;
		grpc_completion_queue_shutdown(x->cqs[i]);
		grpc_completion_queue_destroy(x->cqs[i]);
	}
	free(x->cqs);
	free(x->zc);
	for (unsigned i = 0; x->ch && i < x->nconns; i++)
		if (x->ch[i])
			grpc_channel_destroy(x->ch[i]);
	free(x->ch);
	for (size_t i = 0; x->md && i < x->nmd; i++) {
		grpc_slice_unref(x->md[i].key);
		grpc_slice_unref(x->md[i].value);
	}
	free(x->md);
	for (size_t i = 0; i < x->nh; i++) {
		free(x->hkeys[i]);
		free(x->hvals[i]);
	}
	free(x->hkeys);
	free(x->hvals);
	if (x->grpc_up) {
		grpc_shutdown();
	}
	free(x->target);
	free(x->ca_file);
	free(x->cert_file);
	free(x->key_file);
	free(x->id);
	free(x);
}

static int send_batch(void *ctx, const struct kn_batch *b, uint64_t deadline_ns,
		      uint64_t *retry_after_ns, struct kn_err *err);

static char *dup_opt(const char *s, int *oom)
{
	char *d = s ? strdup(s) : NULL;
	if (s && !d)
		*oom = 1;
	return d;
}

static int otlp_create(const struct kn_component_ctx *ctx, const void *cfgp, void **inst, struct kn_err *err)
{
	const struct kn_otlpexp_cfg *cfg = cfgp;
	char path[256], target[512];
	snprintf(path, sizeof path, "exporters.%s", ctx->id);
	*inst = NULL;
	if (otlp_validate(cfg, path, err) != KN_OK)
		return KN_ERR;
	int oom = 0;
	struct otlp *x = calloc(1, sizeof *x);
	if (!x)
		return kn_errf(err, "%s: out of memory", path);
	split_endpoint(cfg->endpoint, cfg->tls.insecure, target, sizeof target, &x->secure);
	x->id = dup_opt(ctx->id, &oom);
	x->target = dup_opt(target, &oom);
	x->gzip = !cfg->compression || strcmp(cfg->compression, "gzip") == 0;
	x->level = kn_zalg_level(KN_Z_GZIP, cfg->compression_params.level);
	x->ca_file = dup_opt(cfg->tls.ca_file, &oom);
	x->cert_file = dup_opt(cfg->tls.cert_file, &oom);
	x->key_file = dup_opt(cfg->tls.key_file, &oom);
	if (oom) {
		kn_errf(err, "%s: out of memory", path);
		goto fail;
	}
	struct kn_sender_cfg scfg = cfg->sender;
	kn_conns_resolve(cfg->connections, &scfg.queue.num_consumers, &x->nconns);
	x->sender = kn_sender_create_ctx(ctx, &scfg, send_batch, x, err);
	if (!x->sender)
		goto fail;
	x->ncqs = kn_sender_consumers(x->sender);
	x->cqs = calloc(x->ncqs, sizeof *x->cqs);
	x->zc = calloc(x->ncqs, sizeof *x->zc);
	x->ch = calloc(x->nconns, sizeof *x->ch);
	if (!x->cqs || !x->zc || !x->ch) {
		kn_errf(err, "%s: out of memory", path);
		goto fail;
	}
	x->md = calloc(cfg->headers.n + 1, sizeof *x->md);
	x->hkeys = calloc(cfg->headers.n + 1, sizeof *x->hkeys);
	x->hvals = calloc(cfg->headers.n + 1, sizeof *x->hvals);
	if (!x->md || !x->hkeys || !x->hvals) {
		kn_errf(err, "%s: out of memory", path);
		goto fail;
	}
	for (size_t i = 0; i < cfg->headers.n; i++, x->nh++) {
		x->hkeys[i] = dup_opt(cfg->headers.keys[i], &oom);
		x->hvals[i] = dup_opt(cfg->headers.values[i], &oom);
		for (char *p = x->hkeys[i]; p && *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	if (oom) {
		kn_errf(err, "%s: out of memory", path);
		goto fail;
	}
	if (cfg->auth.authenticator) {
		char ref[300];
		struct kn_ext_ref ext;
		snprintf(ref, sizeof ref, "%s.auth.authenticator", path);
		if (kn_extension_find(ctx->rt, cfg->auth.authenticator, KN_EXT_CLIENT_AUTH, ref, &ext, err) != KN_OK)
			goto fail;
		x->auth = ext.comp->client_auth;
		x->auth_inst = ext.inst;
		if (!x->secure)
			kn_warn("%s.auth: credentials go over a plaintext connection (tls.insecure or http://)", path);
	}
	*inst = x;
	return KN_OK;
fail:
	otlp_destroy(x);
	return KN_ERR;
}

static char *read_file(const char *file, const char *key, const char *id, struct kn_err *err)
{
	FILE *f = fopen(file, "rb");
	if (!f) {
		kn_errf(err, "exporters.%s.tls.%s: cannot open \"%s\"", id, key, file);
		return NULL;
	}
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			char *p = realloc(buf, cap);
			if (!p) {
				free(buf);
				fclose(f);
				kn_errf(err, "exporters.%s.tls.%s: out of memory", id, key);
				return NULL;
			}
			buf = p;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		kn_errf(err, "exporters.%s.tls.%s: cannot read \"%s\"", id, key, file);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

static int otlp_start(void *inst, struct kn_err *err)
{
	struct otlp *x = inst;
	char *ca = NULL, *cert = NULL, *key = NULL;
	grpc_channel_credentials *creds = NULL;
	int rc = KN_ERR;
	if (x->grpc_up)
		return kn_errf(err, "exporters.%s: started twice", x->id);
	grpc_init();
	x->grpc_up = 1;
	x->method = grpc_slice_from_static_string(EXPORT_METHOD);
	for (size_t i = 0; i < x->nh; i++, x->nmd++) {
		x->md[i].key = grpc_slice_from_copied_string(x->hkeys[i]);
		x->md[i].value = grpc_slice_from_copied_string(x->hvals[i]);
	}
	if (x->secure) {
		if (x->ca_file && !(ca = read_file(x->ca_file, "ca_file", x->id, err)))
			goto done;
		if (x->cert_file && !(cert = read_file(x->cert_file, "cert_file", x->id, err)))
			goto done;
		if (x->key_file && !(key = read_file(x->key_file, "key_file", x->id, err)))
			goto done;
		grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
		creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
	} else {
		creds = grpc_insecure_credentials_create();
	}
	if (!creds) {
		kn_errf(err, "exporters.%s.tls: cannot create credentials", x->id);
		goto done;
	}
	grpc_arg args[4];
	size_t nargs = 0;
	args[nargs].type = GRPC_ARG_INTEGER;
	args[nargs].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL; /* a connection per channel */
	args[nargs++].value.integer = 1;
	args[nargs].type = GRPC_ARG_INTEGER;
	args[nargs].key = (char *)GRPC_ARG_ENABLE_RETRIES; /* kn_sender retries, with metrics */
	args[nargs++].value.integer = 0;
	args[nargs].type = GRPC_ARG_STRING;
	args[nargs].key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
	args[nargs++].value.string = (char *)"kansatsu/" KN_VERSION;
	if (x->gzip) {
		/* only for the grpc-encoding header: messages arrive compressed */
		args[nargs].type = GRPC_ARG_INTEGER;
		args[nargs].key = (char *)GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM;
		args[nargs++].value.integer = GRPC_COMPRESS_GZIP;
	}
	grpc_channel_args ca_args = {.num_args = nargs, .args = args};
	for (unsigned i = 0; i < x->nconns; i++) {
		x->ch[i] = grpc_channel_create(x->target, creds, &ca_args);
		if (!x->ch[i]) {
			kn_errf(err, "exporters.%s.endpoint: cannot create a channel to %s", x->id, x->target);
			goto done;
		}
	}
	rc = kn_sender_start(x->sender, err);
done:
	if (creds)
		grpc_channel_credentials_release(creds);
	free(ca);
	free(cert);
	free(key);
	return rc;
}

/* ---- per-request machinery (consumer threads) ---- */

static void unref_chunk(void *chunk)
{
	kn_chunk_unref(chunk);
}

static int retryable(grpc_status_code c)
{
	switch (c) {
	case GRPC_STATUS_CANCELLED:
	case GRPC_STATUS_DEADLINE_EXCEEDED:
	case GRPC_STATUS_ABORTED:
	case GRPC_STATUS_OUT_OF_RANGE:
	case GRPC_STATUS_UNAVAILABLE:
	case GRPC_STATUS_DATA_LOSS:
		return 1;
	default:
		return 0;
	}
}

static const char *status_name(grpc_status_code c)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
		"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
		"UNAUTHENTICATED",
	};
	return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "?";
}

static void unref_zbuf(void *z)
{
	kn_zbuf_unref(z);
}

/* The batch gzip-compressed by this consumer, as a compressed byte buffer. */
static grpc_byte_buffer *gzip_message_of(struct otlp *x, int idx, const struct kn_batch *b)
{
	if (!x->zc[idx] && !(x->zc[idx] = kn_compressor_new(KN_Z_GZIP, x->level)))
		return NULL;
	struct kn_zbuf *z = kn_compress_batch(x->zc[idx], b);
	if (!z)
		return NULL;
	grpc_slice sl = grpc_slice_new_with_user_data(z->data, z->len, unref_zbuf, z);
	grpc_byte_buffer *bb = grpc_raw_compressed_byte_buffer_create(&sl, 1, GRPC_COMPRESS_GZIP);
	grpc_slice_unref(sl);
	return bb;
}

static grpc_byte_buffer *message_of(const struct kn_batch *b)
{
	grpc_slice stack[16], *sl = b->n <= 16 ? stack : malloc(b->n * sizeof *sl);
	if (!sl)
		return NULL;
	for (uint32_t i = 0; i < b->n; i++) {
		struct kn_chunk *c = kn_chunk_ref(b->chunks[i]);
		sl[i] = grpc_slice_new_with_user_data(c->data, c->len, unref_chunk, c);
	}
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(sl, b->n);
	for (uint32_t i = 0; i < b->n; i++)
		grpc_slice_unref(sl[i]);
	if (sl != stack)
		free(sl);
	return bb;
}

static int send_batch(void *ctx, const struct kn_batch *b, uint64_t deadline_ns,
		      uint64_t *retry_after_ns, struct kn_err *err)
{
	struct otlp *x = ctx;
	int idx = kn_sender_consumer_index();
	if (idx < 0 || (unsigned)idx >= x->ncqs)
		return kn_errf(err, "exporters.%s: send outside a consumer thread", x->id);
	if (!x->cqs[idx] && !(x->cqs[idx] = grpc_completion_queue_create_for_pluck(NULL))) {
		kn_errf(err, "exporters.%s: cannot create a completion queue", x->id);
		return KN_AGAIN;
	}
	grpc_completion_queue *cq = x->cqs[idx];

	uint64_t now = kn_now_ns();
	gpr_timespec dl = gpr_inf_future(GPR_CLOCK_MONOTONIC);
	if (deadline_ns != UINT64_MAX)
		dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				  gpr_time_from_nanos(deadline_ns > now ? (int64_t)(deadline_ns - now) : 0,
						      GPR_TIMESPAN));

	/* Asked per call: a rotated token file is picked up. */
	char aname[KN_AUTH_NAME_MAX], *aval = NULL;
	if (x->auth) {
		aval = malloc(KN_AUTH_VALUE_MAX);
		if (!aval || x->auth->header(x->auth_inst, aname, sizeof aname, aval, KN_AUTH_VALUE_MAX) != KN_OK) {
			free(aval);
			kn_errf(err, "exporters.%s.auth: the authenticator has no credentials to give", x->id);
			return KN_AGAIN;
		}
	}
	/* Metadata: config headers (but the authenticator's), its header, then
	 * this batch's trace context. */
	grpc_metadata md[64 + 3];
	grpc_metadata *mdp = x->nmd + 3 <= 67 ? md : malloc((x->nmd + 3) * sizeof *mdp);
	if (!mdp) {
		if (aval)
			OPENSSL_cleanse(aval, KN_AUTH_VALUE_MAX);
		free(aval);
		kn_errf(err, "exporters.%s: out of memory", x->id);
		return KN_AGAIN;
	}
	size_t nmd = 0;
	for (size_t i = 0; i < x->nmd; i++)
		if (!aval || grpc_slice_str_cmp(x->md[i].key, aname) != 0)
			mdp[nmd++] = x->md[i];
	size_t nfixed = nmd; /* the entries below are ours to release */
	if (aval) {
		mdp[nmd].key = grpc_slice_from_copied_string(aname);
		mdp[nmd++].value = grpc_slice_from_copied_string(aval);
		OPENSSL_cleanse(aval, KN_AUTH_VALUE_MAX);
		free(aval);
	}
	const struct kn_tracectx *tc = kn_batch_ctx(b);
	if (tc) {
		/* Copied: libgrpc may keep metadata slices past the call. */
		mdp[nmd].key = grpc_slice_from_static_string("traceparent");
		mdp[nmd++].value = grpc_slice_from_copied_string(tc->traceparent);
		if (tc->tracestate[0]) {
			mdp[nmd].key = grpc_slice_from_static_string("tracestate");
			mdp[nmd++].value = grpc_slice_from_copied_string(tc->tracestate);
		}
	}

	grpc_byte_buffer *msg = x->gzip ? gzip_message_of(x, idx, b) : message_of(b), *resp = NULL;
	grpc_metadata_array init_md, trail_md;
	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trail_md);
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	const char *errstr = NULL;
	grpc_call *call = NULL;
	int rc = KN_AGAIN;
	if (!msg) {
		kn_errf(err, "exporters.%s: out of memory%s", x->id, x->gzip ? " (compressing the batch)" : "");
		goto done;
	}
	grpc_channel *ch = x->ch[kn_conns_of((unsigned)idx, x->nconns)];
	call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, x->method, NULL, dl, NULL);
	if (!call) {
		kn_errf(err, "exporters.%s: cannot create a call to %s", x->id, x->target);
		goto done;
	}
	grpc_op ops[6];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = nmd;
	ops[0].data.send_initial_metadata.metadata = mdp;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = msg;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &resp;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	ops[5].data.recv_status_on_client.error_string = &errstr;
	grpc_call_error ce = grpc_call_start_batch(call, ops, 6, ops, NULL);
	if (ce != GRPC_CALL_OK) {
		kn_errf(err, "exporters.%s: grpc_call_start_batch failed (%d)", x->id, (int)ce);
		goto done;
	}
	grpc_event ev = grpc_completion_queue_pluck(cq, ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (ev.type != GRPC_OP_COMPLETE || !ev.success) {
		kn_errf(err, "Export to %s: the call did not complete", x->target);
		goto done;
	}

	struct kn_rpc_status st = {0};
	for (size_t i = 0; i < trail_md.count; i++)
		if (grpc_slice_str_cmp(trail_md.metadata[i].key, "grpc-status-details-bin") == 0) {
			grpc_slice v = trail_md.metadata[i].value;
			kn_rpc_status_parse(GRPC_SLICE_START_PTR(v), GRPC_SLICE_LENGTH(v), &st);
			break;
		}
	if (status == GRPC_STATUS_OK) {
		if (resp) {
			grpc_byte_buffer_reader rd;
			if (grpc_byte_buffer_reader_init(&rd, resp)) {
				grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
				int64_t rejected = 0;
				char m[256];
				if (kn_export_response_parse(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all),
							     &rejected, m, sizeof m) == 0 && rejected > 0) {
					kn_sender_count_rejected(x->sender, (uint64_t)rejected);
					kn_sender_warn(x->sender, "server rejected %" PRId64 " of %" PRIu32 " spans: %s",
						       rejected, b->nspans, m);
				}
				grpc_slice_unref(all);
				grpc_byte_buffer_reader_destroy(&rd);
			}
		}
		rc = KN_OK;
		goto done;
	}
	kn_errf(err, "Export to %s: %s (%d): %.*s", x->target, status_name(status), (int)status,
		(int)GRPC_SLICE_LENGTH(details), (const char *)GRPC_SLICE_START_PTR(details));
	if (retryable(status) || (status == GRPC_STATUS_RESOURCE_EXHAUSTED && st.has_retry_info)) {
		*retry_after_ns = st.retry_delay_ns;
		rc = KN_AGAIN;
	} else {
		rc = KN_ERR;
	}
done:
	if (call)
		grpc_call_unref(call);
	if (msg)
		grpc_byte_buffer_destroy(msg);
	if (resp)
		grpc_byte_buffer_destroy(resp);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trail_md);
	grpc_slice_unref(details);
	gpr_free((void *)errstr);
	for (size_t i = nfixed; i < nmd; i++) {
		grpc_slice_unref(mdp[i].key);
		grpc_slice_unref(mdp[i].value);
	}
	if (mdp != md)
		free(mdp);
	return rc;
}

/* ---- component ---- */

static void otlp_shutdown(void *inst, uint64_t deadline_ns)
{
	struct otlp *x = inst;
	if (x)
		kn_sender_shutdown(x->sender, deadline_ns);
}

static int otlp_export(void *inst, struct kn_batch *b)
{
	struct otlp *x = inst;
	return kn_sender_enqueue(x->sender, b);
}

unsigned kn_exporter_otlp_reclaim(void *inst, kn_sender_reclaim_fn fn, void *ctx)
{
	struct otlp *x = inst;
	return x ? kn_sender_reclaim(x->sender, fn, ctx) : 0;
}

const struct kn_component kn_exporter_otlp = {
	.type = "otlp",
	.kind = KN_EXPORTER,
	.summary = "OTLP/gRPC exporter (libgrpc core), with queue and retries",
	.config_size = sizeof(struct kn_otlpexp_cfg),
	.config_fields = otlp_fields,
	.validate = otlp_validate,
	.create = otlp_create,
	.start = otlp_start,
	.shutdown = otlp_shutdown,
	.destroy = otlp_destroy,
	.export = otlp_export,
};
