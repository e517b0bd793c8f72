/* SPDX-License-Identifier: Apache-2.0
 * kn_exporter_otlphttp: OTLP/HTTP exporter (see kn_exporter_otlphttp.h).
 *
 * Threads: export() runs on shard workers and only enqueues into the
 * kn_sender; the sender's consumer threads call send_batch(). Each consumer
 * owns a compressor (selected by kn_sender_consumer_index, no locks) and
 * sends on `conn` i mod `connections` (kn_conns.h): a libcurl easy handle
 * (kept across requests, so the connection is reused) and a response buffer.
 * By default every consumer has its own conn and the conn's mutex is never
 * contended; with fewer connections than consumers, consumers take turns on
 * a conn (HTTP/1.1 carries one request at a time) but still compress in
 * parallel, before they take its mutex.
 *
 * Body: with gzip or zstd the batch is compressed whole (kn_compress.h:
 * libdeflate from the chunks, zstd streaming over them) into the consumer's
 * reusable buffer, sent with Content-Encoding; without compression curl
 * reads the chunks straight from the batch through a read callback. Per
 * request the only allocations are curl's header list (base headers +
 * traceparent/tracestate).
 *
 * Ownership: the instance copies what it needs from the config at create. */
#include "kn_exporter_otlphttp.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_extension.h"
#include "../../collector/core/kn_log.h"
#include "../common/kn_compress.h"
#include "../common/kn_conns.h"
#include "../common/kn_export_status.h"

#define RESP_MAX (64 * 1024) /* response bytes kept for partial_success / Status */

static const char *const compression_choices[] = {"gzip", "zstd", "none", NULL};

static const struct kn_cfg_field tls_fields[] = {
	{.key = "ca_file", .type = KN_F_STR, .off = offsetof(struct kn_otlphttp_tls_cfg, ca_file),
	 .help = "PEM file of CAs to verify the server with (default: system store)"},
	{.key = "cert_file", .type = KN_F_STR, .off = offsetof(struct kn_otlphttp_tls_cfg, cert_file),
	 .help = "client certificate (PEM) for mutual TLS"},
	{.key = "key_file", .type = KN_F_STR, .off = offsetof(struct kn_otlphttp_tls_cfg, key_file),
	 .help = "client key (PEM) for mutual TLS"},
	{.key = "insecure_skip_verify", .type = KN_F_BOOL,
	 .off = offsetof(struct kn_otlphttp_tls_cfg, insecure_skip_verify), .def = "false",
	 .help = "do not verify the server's certificate (testing only)"},
	KN_CFG_END,
};

static const struct kn_cfg_field auth_fields[] = {
	{.key = "authenticator", .type = KN_F_STR, .off = 0, .required = 1,
	 .help = "id of a client authenticator extension (bearertokenauth, basicauth) in service.extensions"},
	KN_CFG_END,
};

static const struct kn_cfg_field compression_params_fields[] = {
	{.key = "level", .type = KN_F_INT, .off = 0, .def = "0",
	 .help = "compression level; 0 = the default (gzip: 1 of libdeflate's 1..12; zstd: 1 of 1..19)"},
	KN_CFG_END,
};

static const struct kn_cfg_field otlphttp_fields[] = {
	{.key = "endpoint", .type = KN_F_STR, .off = offsetof(struct kn_otlphttp_cfg, endpoint),
	 .help = "base URL, \"/v1/traces\" is appended: http://host:4318"},
	{.key = "traces_endpoint", .type = KN_F_STR, .off = offsetof(struct kn_otlphttp_cfg, traces_endpoint),
	 .help = "full URL of the traces endpoint, used as is"},
	{.key = "compression", .type = KN_F_STR, .off = offsetof(struct kn_otlphttp_cfg, compression),
	 .def = "gzip", .help = "request body compression", .choices = compression_choices},
	{.key = "compression_params", .type = KN_F_SUB, .off = offsetof(struct kn_otlphttp_cfg, compression_params),
	 .sub = compression_params_fields, .help = "compression settings"},
	{.key = "connections", .type = KN_F_UINT, .off = offsetof(struct kn_otlphttp_cfg, connections), .def = "0",
	 .help = KN_CONNS_HELP, .min = 0, .max = KN_CONNS_MAX},
	{.key = "headers", .type = KN_F_STRMAP, .off = offsetof(struct kn_otlphttp_cfg, headers),
	 .help = "extra request headers"},
	{.key = "timeout", .type = KN_F_DURATION, .off = offsetof(struct kn_otlphttp_cfg, sender.timeout_ns),
	 .def = "5s", .help = "per request"},
	{.key = "tls", .type = KN_F_SUB, .off = offsetof(struct kn_otlphttp_cfg, tls), .sub = tls_fields,
	 .help = "TLS settings for https endpoints"},
	{.key = "sending_queue", .type = KN_F_SUB, .off = offsetof(struct kn_otlphttp_cfg, sender.queue),
	 .sub = kn_sender_queue_fields, .help = "queue between the pipeline and the senders"},
	{.key = "retry_on_failure", .type = KN_F_SUB, .off = offsetof(struct kn_otlphttp_cfg, sender.retry),
	 .sub = kn_sender_retry_fields, .help = "backoff for retryable failures"},
	{.key = "auth", .type = KN_F_SUB, .off = offsetof(struct kn_otlphttp_cfg, auth), .sub = auth_fields,
	 .help = "add a client authenticator extension's header to every request"},
	KN_CFG_END,
};

struct conn {
	pthread_mutex_t mu;       /* taken by the consumer sending on it */
	CURL *h;
	uint8_t *resp;
	size_t resp_len;
	char retry_after[64];
	/* read cursor for uncompressed bodies */
	const struct kn_batch *b;
	uint32_t ci;
	size_t off;
};

struct otlphttp {
	char *id;
	char *url;
	enum kn_zalg alg;
	int level;
	struct kn_compressor **zc; /* per consumer */
	unsigned nzc;
	char **hdrs;              /* "Key: value" lines sent on every request */
	size_t nhdrs;
	char *ca_file, *cert_file, *key_file;
	int skip_verify;
	struct kn_sender *sender;
	struct conn *conns;
	unsigned nconns;
	const struct kn_client_auth_ops *auth; /* NULL: none */
	void *auth_inst;
};

static int has_scheme(const char *u)
{
	return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

static int otlphttp_validate(const void *cfgp, const char *path, struct kn_err *err)
{
	const struct kn_otlphttp_cfg *cfg = cfgp;
	const char *u = cfg->traces_endpoint ? cfg->traces_endpoint : cfg->endpoint;
	const char *key = cfg->traces_endpoint ? "traces_endpoint" : "endpoint";
	if (!u || !*u)
		return kn_errf(err, "%s.endpoint: missing (or set traces_endpoint)", path);
	if (!has_scheme(u))
		return kn_errf(err, "%s.%s: expected an http:// or https:// URL, got \"%s\"", path, key, u);
	enum kn_zalg alg;
	if (kn_zalg_parse(cfg->compression, &alg) != 0)
		return kn_errf(err, "%s.compression: expected gzip, zstd or none, got \"%s\"", path, cfg->compression);
	if (cfg->compression_params.level && alg == KN_Z_NONE)
		return kn_errf(err, "%s.compression_params.level: set, but compression is none", path);
	if (kn_zalg_level_ok(alg, cfg->compression_params.level) != 0)
		return kn_errf(err, "%s.compression_params.level: %s levels are 1 to %d (0 = default %d), got %" PRId64,
			       path, kn_zalg_name(alg), alg == KN_Z_GZIP ? KN_GZIP_LEVEL_MAX : KN_ZSTD_LEVEL_MAX,
			       alg == KN_Z_GZIP ? KN_GZIP_LEVEL_DEFAULT : KN_ZSTD_LEVEL_DEFAULT,
			       cfg->compression_params.level);
	if (kn_conns_check(cfg->connections, cfg->sender.queue.num_consumers, path, err) != KN_OK)
		return KN_ERR;
	if ((cfg->tls.cert_file == NULL) != (cfg->tls.key_file == NULL))
		return kn_errf(err, "%s.tls.%s: missing (cert_file and key_file go together)", path,
			       cfg->tls.cert_file ? "key_file" : "cert_file");
	for (size_t i = 0; i < cfg->headers.n; i++)
		if (strpbrk(cfg->headers.keys[i], ": \r\n") || strpbrk(cfg->headers.values[i], "\r\n"))
			return kn_errf(err, "%s.headers.%s: invalid header name or value", path,
				       cfg->headers.keys[i]);
	return KN_OK;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void conn_fini(struct conn *c)
{
	if (c->h)
		curl_easy_cleanup(c->h);
	free(c->resp);
	c->h = NULL;
	c->resp = NULL;
}

static void otlphttp_destroy(void *inst)
{
	struct otlphttp *x = inst;
	if (!x)
		return;
	kn_sender_destroy(x->sender); /* joins consumers before their conns go */
	for (unsigned i = 0; x->conns && i < x->nconns; i++) {
		conn_fini(&x->conns[i]);
		pthread_mutex_destroy(&x->conns[i].mu);
	}
	free(x->conns);
	for (unsigned i = 0; x->zc && i < x->nzc; i++)
		kn_compressor_free(x->zc[i]);
	free(x->zc);
	for (size_t i = 0; x->hdrs && i < x->nhdrs; i++)
		free(x->hdrs[i]);
	free(x->hdrs);
	free(x->url);
	free(x->ca_file);
	free(x->cert_file);
	free(x->key_file);
	free(x->id);
	free(x);
}

static int send_batch(void *ctx, const struct kn_batch *b, uint64_t deadline_ns,
		      uint64_t *retry_after_ns, struct kn_err *err);

static char *dup_or_null(const char *s, int *oom)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*oom = 1;
	return d;
}

static int otlphttp_create(const struct kn_component_ctx *ctx, const void *cfgp, void **inst,
			   struct kn_err *err)
{
	const struct kn_otlphttp_cfg *cfg = cfgp;
	char path[256];
	snprintf(path, sizeof path, "exporters.%s", ctx->id);
	*inst = NULL;
	if (otlphttp_validate(cfg, path, err) != KN_OK)
		return KN_ERR;
	pthread_once(&curl_once, curl_init_once);
	int oom = 0;
	struct otlphttp *x = calloc(1, sizeof *x);
	if (!x)
		return kn_errf(err, "%s: out of memory", path);
	x->id = dup_or_null(ctx->id, &oom);
	if (kn_zalg_parse(cfg->compression ? cfg->compression : "gzip", &x->alg) != 0)
		x->alg = KN_Z_GZIP;
	x->level = kn_zalg_level(x->alg, cfg->compression_params.level);
	x->ca_file = dup_or_null(cfg->tls.ca_file, &oom);
	x->cert_file = dup_or_null(cfg->tls.cert_file, &oom);
	x->key_file = dup_or_null(cfg->tls.key_file, &oom);
	x->skip_verify = cfg->tls.insecure_skip_verify;
	if (cfg->traces_endpoint) {
		x->url = dup_or_null(cfg->traces_endpoint, &oom);
	} else {
		size_t n = strlen(cfg->endpoint);
		while (n > 0 && cfg->endpoint[n - 1] == '/')
			n--;
		x->url = malloc(n + sizeof "/v1/traces");
		if (x->url)
			snprintf(x->url, n + sizeof "/v1/traces", "%.*s/v1/traces", (int)n, cfg->endpoint);
		else
			oom = 1;
	}
	x->hdrs = calloc(cfg->headers.n + 3, sizeof *x->hdrs);
	if (!x->hdrs)
		oom = 1;
	else {
		x->hdrs[x->nhdrs++] = dup_or_null("Content-Type: application/x-protobuf", &oom);
		if (x->alg == KN_Z_GZIP)
			x->hdrs[x->nhdrs++] = dup_or_null("Content-Encoding: gzip", &oom);
		else if (x->alg == KN_Z_ZSTD)
			x->hdrs[x->nhdrs++] = dup_or_null("Content-Encoding: zstd", &oom);
		for (size_t i = 0; i < cfg->headers.n; i++) {
			size_t n = strlen(cfg->headers.keys[i]) + strlen(cfg->headers.values[i]) + 3;
			char *h = malloc(n);
			if (!h) {
				oom = 1;
				break;
			}
			snprintf(h, n, "%s: %s", cfg->headers.keys[i], cfg->headers.values[i]);
			x->hdrs[x->nhdrs++] = h;
		}
	}
	if (oom) {
		kn_errf(err, "%s: out of memory", path);
		goto fail;
	}
	struct kn_sender_cfg scfg = cfg->sender;
	unsigned nconns;
	kn_conns_resolve(cfg->connections, &scfg.queue.num_consumers, &nconns);
	x->sender = kn_sender_create_ctx(ctx, &scfg, send_batch, x, err);
	if (!x->sender)
		goto fail;
	x->nzc = kn_sender_consumers(x->sender);
	x->zc = calloc(x->nzc, sizeof *x->zc);
	x->conns = calloc(nconns, sizeof *x->conns);
	if (!x->conns || !x->zc) {
		kn_errf(err, "%s: out of memory", path);
		goto fail;
	}
	for (; x->nconns < nconns; x->nconns++)
		pthread_mutex_init(&x->conns[x->nconns].mu, NULL);
	if (cfg->auth.authenticator) {
		char ref[300];
		struct kn_ext_ref ext;
		snprintf(ref, sizeof ref, "%s.auth.authenticator", path);
		if (kn_extension_find(ctx->rt, cfg->auth.authenticator, KN_EXT_CLIENT_AUTH, ref, &ext, err) != KN_OK)
			goto fail;
		x->auth = ext.comp->client_auth;
		x->auth_inst = ext.inst;
		if (strncmp(x->url, "https://", 8) != 0)
			kn_warn("%s.auth: credentials go over a plaintext connection (http://)", path);
	}
	*inst = x;
	return KN_OK;
fail:
	otlphttp_destroy(x);
	return KN_ERR;
}

static int otlphttp_start(void *inst, struct kn_err *err)
{
	struct otlphttp *x = inst;
	return kn_sender_start(x->sender, err);
}

static void otlphttp_shutdown(void *inst, uint64_t deadline_ns)
{
	struct otlphttp *x = inst;
	if (x)
		kn_sender_shutdown(x->sender, deadline_ns);
}

static int otlphttp_export(void *inst, struct kn_batch *b)
{
	struct otlphttp *x = inst;
	return kn_sender_enqueue(x->sender, b);
}

/* ---- per-request machinery (consumer threads) ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct conn *c = ud;
	size_t len = size * n, keep = len;
	if (c->resp_len + keep > RESP_MAX)
		keep = RESP_MAX - c->resp_len;
	if (keep) {
		memcpy(c->resp + c->resp_len, p, keep);
		c->resp_len += keep;
	}
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct conn *c = ud;
	size_t len = size * n;
	static const char name[] = "retry-after:";
	if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
		const char *v = p + sizeof name - 1, *e = p + len;
		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
			e--;
		snprintf(c->retry_after, sizeof c->retry_after, "%.*s", (int)(e - v), v);
	}
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
	struct conn *c = ud;
	size_t want = size * n, got = 0;
	while (got < want && c->ci < c->b->n) {
		const struct kn_chunk *ch = c->b->chunks[c->ci];
		size_t take = ch->len - c->off;
		if (take > want - got)
			take = want - got;
		memcpy(buf + got, ch->data + c->off, take);
		got += take;
		c->off += take;
		if (c->off == ch->len) {
			c->ci++;
			c->off = 0;
		}
	}
	return got;
}

static int conn_setup(struct otlphttp *x, struct conn *c, struct kn_err *err)
{
	c->resp = malloc(RESP_MAX);
	c->h = curl_easy_init();
	if (!c->h || !c->resp)
		return kn_errf(err, "exporters.%s: cannot create an HTTP client", x->id);
	CURL *h = c->h;
	curl_easy_setopt(h, CURLOPT_URL, x->url);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "kansatsu/" KN_VERSION);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (x->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, x->ca_file);
	if (x->cert_file) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, x->cert_file);
		curl_easy_setopt(h, CURLOPT_SSLKEY, x->key_file);
	}
	if (x->skip_verify) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return KN_OK;
}

/* Retry-After: delay-seconds or an HTTP-date. 0 when absent or unparsable. */
static uint64_t parse_retry_after(const char *v)
{
	if (!*v)
		return 0;
	char *end;
	unsigned long long secs = strtoull(v, &end, 10);
	if (end != v && *end == '\0')
		return secs > 86400ull * 365 ? 86400ull * 365 * KN_NS_PER_SEC : secs * KN_NS_PER_SEC;
	time_t when = curl_getdate(v, NULL);
	time_t now = time(NULL);
	if (when == (time_t)-1 || when <= now)
		return 0;
	return (uint64_t)(when - now) * KN_NS_PER_SEC;
}

static int send_on(struct otlphttp *x, struct conn *c, const struct kn_batch *b, const struct kn_zbuf *body,
		   uint64_t deadline_ns, uint64_t *retry_after_ns, struct kn_err *err);

static int send_batch(void *ctx, const struct kn_batch *b, uint64_t deadline_ns,
		      uint64_t *retry_after_ns, struct kn_err *err)
{
	struct otlphttp *x = ctx;
	int idx = kn_sender_consumer_index();
	if (idx < 0 || (unsigned)idx >= x->nzc)
		return kn_errf(err, "exporters.%s: send outside a consumer thread", x->id);
	/* Compressed before the conn is taken: consumers sharing a conn still
	 * compress in parallel. */
	struct kn_zbuf *body = NULL;
	if (x->alg != KN_Z_NONE) {
		if (!x->zc[idx])
			x->zc[idx] = kn_compressor_new(x->alg, x->level);
		if (!x->zc[idx] || !(body = kn_compress_batch(x->zc[idx], b))) {
			kn_errf(err, "exporters.%s.compression: %s failed (out of memory)", x->id, kn_zalg_name(x->alg));
			return KN_AGAIN; /* retried like a failed request, dropped and counted when retries end */
		}
	}
	struct conn *c = &x->conns[kn_conns_of((unsigned)idx, x->nconns)];
	pthread_mutex_lock(&c->mu);
	int rc = send_on(x, c, b, body, deadline_ns, retry_after_ns, err);
	pthread_mutex_unlock(&c->mu);
	kn_zbuf_unref(body);
	return rc;
}

static int send_on(struct otlphttp *x, struct conn *c, const struct kn_batch *b, const struct kn_zbuf *body,
		   uint64_t deadline_ns, uint64_t *retry_after_ns, struct kn_err *err)
{
	if (!c->h && conn_setup(x, c, err) != KN_OK) {
		conn_fini(c);
		return KN_AGAIN;
	}
	CURL *h = c->h;
	struct curl_slist *hl = NULL, *t;
	int rc = KN_AGAIN;
	/* Asked per request: a rotated token file is picked up. */
	char aname[KN_AUTH_NAME_MAX], *aline = NULL;
	size_t anl = 0;
	if (x->auth) {
		aline = malloc(KN_AUTH_NAME_MAX + 2 + KN_AUTH_VALUE_MAX);
		if (!aline || x->auth->header(x->auth_inst, aname, sizeof aname, aline + KN_AUTH_NAME_MAX + 2,
					      KN_AUTH_VALUE_MAX) != KN_OK) {
			free(aline);
			kn_errf(err, "exporters.%s.auth: the authenticator has no credentials to give", x->id);
			return KN_AGAIN;
		}
		anl = strlen(aname);
		/* "name: value", built in place in front of the value */
		char *v = aline + KN_AUTH_NAME_MAX + 2;
		memmove(aline + anl + 2, v, strlen(v) + 1);
		memcpy(aline, aname, anl);
		aline[anl] = ':';
		aline[anl + 1] = ' ';
	}
	for (size_t i = 0; i < x->nhdrs; i++) {
		if (aline && strncasecmp(x->hdrs[i], aname, anl) == 0 && x->hdrs[i][anl] == ':')
			continue; /* the authenticator's header replaces it */
		if (!(t = curl_slist_append(hl, x->hdrs[i])))
			goto oom;
		hl = t;
	}
	if (aline) {
		t = curl_slist_append(hl, aline);
		OPENSSL_cleanse(aline, KN_AUTH_NAME_MAX + 2 + KN_AUTH_VALUE_MAX);
		free(aline);
		if (!t)
			goto oom;
		hl = t;
	}
	const struct kn_tracectx *tc = kn_batch_ctx(b);
	if (tc) {
		char line[sizeof tc->tracestate + 16];
		snprintf(line, sizeof line, "traceparent: %s", tc->traceparent);
		if (!(t = curl_slist_append(hl, line)))
			goto oom;
		hl = t;
		if (tc->tracestate[0]) {
			snprintf(line, sizeof line, "tracestate: %s", tc->tracestate);
			if (!(t = curl_slist_append(hl, line)))
				goto oom;
			hl = t;
		}
	}
	/* No "Expect: 100-continue" round trip. */
	if (!(t = curl_slist_append(hl, "Expect:")))
		goto oom;
	hl = t;
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	if (body) {
		curl_easy_setopt(h, CURLOPT_READFUNCTION, NULL);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const void *)body->data);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
	} else {
		c->b = b;
		c->ci = 0;
		c->off = 0;
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, c);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->bytes);
	}
	uint64_t now = kn_now_ns();
	long ms = deadline_ns > now ? (long)((deadline_ns - now) / KN_NS_PER_MS) : 1;
	if (deadline_ns == UINT64_MAX || ms > 3600L * 1000)
		ms = 3600L * 1000;
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms < 1 ? 1L : ms);
	c->resp_len = 0;
	c->retry_after[0] = '\0';

	CURLcode cr = curl_easy_perform(h);
	c->b = NULL;
	if (cr != CURLE_OK) {
		/* Connection-level failures are retryable, except a URL curl cannot use. */
		int perm = cr == CURLE_UNSUPPORTED_PROTOCOL || cr == CURLE_URL_MALFORMAT;
		kn_errf(err, "POST %s: %s", x->url, curl_easy_strerror(cr));
		rc = perm ? KN_ERR : KN_AGAIN;
		goto done;
	}
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300) {
		int64_t rejected = 0;
		char msg[256];
		if (c->resp_len > 0 && kn_export_response_parse(c->resp, c->resp_len, &rejected, msg, sizeof msg) == 0 &&
		    rejected > 0) {
			kn_sender_count_rejected(x->sender, (uint64_t)rejected);
			kn_sender_warn(x->sender, "server rejected %" PRId64 " of %" PRIu32 " spans: %s", rejected,
				       b->nspans, msg);
		}
		rc = KN_OK;
		goto done;
	}
	struct kn_rpc_status st;
	const char *detail = "";
	if (c->resp_len > 0 && kn_rpc_status_parse(c->resp, c->resp_len, &st) == 0 && st.message[0])
		detail = st.message;
	kn_errf(err, "POST %s: HTTP %ld%s%s", x->url, status, *detail ? ": " : "", detail);
	if (status == 429 || status == 502 || status == 503 || status == 504) {
		*retry_after_ns = parse_retry_after(c->retry_after);
		rc = KN_AGAIN;
	} else {
		rc = KN_ERR;
	}
	goto done;
oom:
	kn_errf(err, "exporters.%s: out of memory building headers", x->id);
	rc = KN_AGAIN;
done:
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hl);
	return rc;
}

const struct kn_component kn_exporter_otlphttp = {
	.type = "otlphttp",
	.kind = KN_EXPORTER,
	.summary = "OTLP/HTTP protobuf exporter (libcurl), with queue and retries",
	.config_size = sizeof(struct kn_otlphttp_cfg),
	.config_fields = otlphttp_fields,
	.validate = otlphttp_validate,
	.create = otlphttp_create,
	.start = otlphttp_start,
	.shutdown = otlphttp_shutdown,
	.destroy = otlphttp_destroy,
	.export = otlphttp_export,
};
