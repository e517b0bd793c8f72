/* SPDX-License-Identifier: Apache-2.0
 * kn_otlp_http: OTLP/HTTP on kn_httpd (see kn_otlp_http.h). Per request:
 * classify (path, method, content type) -> optional JSON->protobuf -> sink
 * -> encode the answer in the request's content type. Refusals made by the
 * server itself (size, compression) come back through the refuse hook so they
 * get the same Status bodies and are counted the same way. The only per-
 * request allocations are the JSON conversion and the small response body. */
#include "kn_otlp_http.h"
#include "kn_http_msg.h"
#include "kn_httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/kn_tracectx.h"
#include "../json/kn_pbjson.h"
#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

enum ctype { CT_NONE, CT_PROTO, CT_JSON };

struct kn_otlp_http {
	char *name, *endpoint, *path;
	size_t max_body;
	uint32_t threads;
	uint64_t idle_ns;
	char **origins, **headers;
	size_t norigins, nheaders;
	uint64_t max_age;
	struct kn_ingest_sink sink;
	const struct kn_server_auth_ops *auth;
	void *auth_inst;
	struct kn_httpd *httpd;
	struct kn_otlp_http_stats stats; /* relaxed atomics */
};

#define STAT(r, f) __atomic_fetch_add(&(r)->stats.f, 1, __ATOMIC_RELAXED)

int kn_otlp_http_origin_match(const char *pat, const char *o, size_t len)
{
	const char *star = strchr(pat, '*');
	if (!star)
		return strlen(pat) == len && strncasecmp(pat, o, len) == 0;
	size_t pre = (size_t)(star - pat), suf = strlen(star + 1);
	if (len < pre + suf)
		return 0;
	return strncasecmp(pat, o, pre) == 0 && strncasecmp(star + 1, o + len - suf, suf) == 0;
}

static enum ctype content_type(const struct kn_http_req *req)
{
	size_t len;
	const char *v = kn_http_req_header(req, "content-type", &len);
	if (!v)
		return CT_NONE;
	const char *semi = memchr(v, ';', len);
	if (semi)
		len = (size_t)(semi - v);
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len == 22 && strncasecmp(v, "application/x-protobuf", 22) == 0)
		return CT_PROTO;
	if (len == 16 && strncasecmp(v, "application/json", 16) == 0)
		return CT_JSON;
	return CT_NONE;
}

static int cors_on(const struct kn_otlp_http *r)
{
	return r->norigins > 0;
}

static const char *origin_allowed(const struct kn_otlp_http *r, const struct kn_http_req *req,
				  size_t *len)
{
	if (!cors_on(r))
		return NULL;
	const char *o = kn_http_req_header(req, "origin", len);
	if (!o || *len == 0 || *len >= KN_HTTP_RESP_HEADER_MAX)
		return NULL;
	for (size_t i = 0; i < r->norigins; i++)
		if (kn_otlp_http_origin_match(r->origins[i], o, *len))
			return o;
	return NULL;
}

static void add_cors_origin(const struct kn_otlp_http *r, const struct kn_http_req *req,
			    struct kn_http_resp *resp)
{
	size_t len;
	const char *o = origin_allowed(r, req, &len);
	if (!o)
		return;
	char v[KN_HTTP_RESP_HEADER_MAX];
	snprintf(v, sizeof v, "%.*s", (int)len, o);
	kn_http_resp_header(resp, "Access-Control-Allow-Origin", v);
	kn_http_resp_header(resp, "Vary", "Origin");
}

/* 0 when the request is ours to serve, else the refusal status + reason. */
static int classify(const struct kn_otlp_http *r, const struct kn_http_req *req,
		    const char **reason)
{
	if (strcmp(req->path, r->path) != 0) {
		*reason = "not_found";
		return 404;
	}
	if (strcmp(req->method, "OPTIONS") == 0 && cors_on(r))
		return 0;
	if (strcmp(req->method, "POST") != 0) {
		*reason = "method_not_allowed";
		return 405;
	}
	if (content_type(req) == CT_NONE) {
		*reason = "bad_content_type";
		return 415;
	}
	return 0;
}

/* ---- response bodies ---- */

static void set_body(struct kn_http_resp *resp, uint8_t *body, size_t len)
{
	kn_http_resp_release(resp);
	resp->body = body;
	resp->body_len = len;
	resp->body_free = body != NULL;
}

/* Appends s as a JSON string literal (with quotes). */
static size_t json_str(char *dst, size_t cap, const char *s)
{
	size_t n = 0;
#define PUT(ch) do { if (n + 1 < cap) dst[n] = (ch); n++; } while (0)
	PUT('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			PUT('\\');
			PUT((char)*p);
		} else if (*p < 0x20) {
			char esc[8];
			snprintf(esc, sizeof esc, "\\u%04x", *p);
			for (int i = 0; esc[i]; i++)
				PUT(esc[i]);
		} else {
			PUT((char)*p);
		}
	}
	PUT('"');
#undef PUT
	if (cap)
		dst[n < cap ? n : cap - 1] = '\0';
	return n;
}

static void status_body(enum ctype ct, int code, const char *msg, struct kn_http_resp *resp)
{
	if (ct == CT_JSON) {
		char buf[1024], m[900];
		json_str(m, sizeof m, msg);
		int n = snprintf(buf, sizeof buf, "{\"code\":%d,\"message\":%s}", code, m);
		uint8_t *b = malloc((size_t)n);
		if (b)
			memcpy(b, buf, (size_t)n);
		set_body(resp, b, b ? (size_t)n : 0);
		resp->content_type = "application/json";
		return;
	}
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	st.code = code;
	st.message = (char *)msg;
	size_t n = google__rpc__status__get_packed_size(&st);
	uint8_t *b = malloc(n ? n : 1);
	if (b)
		google__rpc__status__pack(&st, b);
	set_body(resp, b, b ? n : 0);
	resp->content_type = "application/x-protobuf";
}

static void ok_body(enum ctype ct, const struct kn_ingest_result *res, struct kn_http_resp *resp)
{
	if (ct == CT_JSON) {
		char buf[1024], m[600];
		int n;
		if (res->rejected > 0) {
			json_str(m, sizeof m, res->message);
			n = snprintf(buf, sizeof buf,
				     "{\"partialSuccess\":{\"rejectedSpans\":\"%u\",\"errorMessage\":%s}}",
				     res->rejected, m);
		} else {
			n = snprintf(buf, sizeof buf, "{}");
		}
		uint8_t *b = malloc((size_t)n);
		if (b)
			memcpy(b, buf, (size_t)n);
		set_body(resp, b, b ? (size_t)n : 0);
		resp->content_type = "application/json";
		return;
	}
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse out =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
	Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
	char msg[sizeof res->message];
	if (res->rejected > 0) {
		snprintf(msg, sizeof msg, "%s", res->message);
		ps.rejected_spans = res->rejected;
		ps.error_message = msg;
		out.partial_success = &ps;
	}
	size_t n = opentelemetry__proto__collector__trace__v1__export_trace_service_response__get_packed_size(&out);
	uint8_t *b = NULL;
	if (n) {
		b = malloc(n);
		if (b)
			opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(&out, b);
	}
	set_body(resp, b, b ? n : 0);
	resp->content_type = "application/x-protobuf";
}

static int grpc_code_for(int status)
{
	switch (status) {
	case 401: return 16;  /* UNAUTHENTICATED */
	case 404: return 5;   /* NOT_FOUND */
	case 405: return 12;  /* UNIMPLEMENTED */
	case 413: return 8;   /* RESOURCE_EXHAUSTED */
	case 503: return 14;  /* UNAVAILABLE */
	case 500: return 13;  /* INTERNAL */
	default: return 3;    /* INVALID_ARGUMENT */
	}
}

static const char *reason_text(const char *reason)
{
	static const char *const texts[][2] = {
		{"too_large", "request body too large (max_request_body_size)"},
		{"bad_encoding", "Content-Encoding: corrupt or truncated compressed body"},
		{"unsupported_encoding", "Content-Encoding: unsupported (use gzip, zstd or identity)"},
		{"bad_content_type", "Content-Type: must be application/x-protobuf or application/json"},
		{"not_found", "path: not found"},
		{"unauthenticated", "authentication failed"},
		{"method_not_allowed", "method: only POST is allowed"},
		{"bad_request", "malformed HTTP request"},
		{"memory_limit", "the collector's memory limit is reached; retry later"},
		{"no_memory", "out of memory; retry later"},
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
		if (strcmp(reason, texts[i][0]) == 0)
			return texts[i][1];
	return reason;
}

/* A refusal before ingest: count, Status body, Allow / CORS headers. */
static void refusal(struct kn_otlp_http *r, const struct kn_http_req *req, int status,
		    const char *reason, const char *message, struct kn_http_resp *resp)
{
	if (r->sink.refused)
		r->sink.refused(r->sink.ctx, (uint32_t)req->thread, reason);
	STAT(r, refused);
	resp->status = status;
	enum ctype ct = content_type(req);
	status_body(ct == CT_NONE ? CT_PROTO : ct, grpc_code_for(status),
		    message ? message : reason_text(reason), resp);
	if (status == 405)
		kn_http_resp_header(resp, "Allow", cors_on(r) ? "POST, OPTIONS" : "POST");
	if (status == 503) /* retryable: say when, as the ingest refusals do */
		kn_http_resp_header(resp, "Retry-After", "1");
	if (status == 401 && r->auth) {
		STAT(r, unauthenticated);
		kn_http_resp_header(resp, "WWW-Authenticate", r->auth->challenge(r->auth_inst));
	}
	add_cors_origin(r, req, resp);
}

/* The verdict of the last refused authentication on this thread: precheck
 * returns only a status, and the server calls the refuse hook right after
 * it on the same thread (for both HTTP/1.1 and HTTP/2). */
static _Thread_local enum kn_auth_verdict last_verdict;

static const char *verdict_text(enum kn_auth_verdict v)
{
	switch (v) {
	case KN_AUTH_MISSING: return "authentication required: the request carries no credentials";
	case KN_AUTH_MALFORMED: return "authentication failed: malformed credentials (scheme or encoding)";
	default: return "authentication failed: the credentials are not valid";
	}
}

static void on_refused(void *ctx, const struct kn_http_req *req, const char *reason,
		       struct kn_http_resp *resp)
{
	const char *msg = resp->status == 401 ? verdict_text(last_verdict) : NULL;
	refusal(ctx, req, resp->status, reason, msg, resp);
}

static const char *req_header(void *ctx, const char *name, size_t *len)
{
	return kn_http_req_header(ctx, name, len);
}

/* Credentials first (as the OTel Collector's auth wraps its whole handler),
 * except for CORS preflights, which browsers send without them. */
static int precheck(void *ctx, const struct kn_http_req *req)
{
	struct kn_otlp_http *r = ctx;
	const char *reason;
	if (r->auth && !(cors_on(r) && strcmp(req->method, "OPTIONS") == 0)) {
		struct kn_auth_headers h = {.get = req_header, .ctx = (void *)req};
		enum kn_auth_verdict v = r->auth->authenticate(r->auth_inst, &h);
		if (v != KN_AUTH_OK) {
			last_verdict = v;
			return 401;
		}
	}
	return classify(r, req, &reason);
}

static int header_allowed(const struct kn_otlp_http *r, const char *h, size_t len)
{
	static const char *const always[] = {"content-type", "content-encoding", "accept",
					     "accept-language", "content-language"};
	for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
		if (strlen(always[i]) == len && strncasecmp(always[i], h, len) == 0)
			return 1;
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcmp(r->headers[i], "*") == 0 ||
		    (strlen(r->headers[i]) == len && strncasecmp(r->headers[i], h, len) == 0))
			return 1;
	return 0;
}

static void preflight(struct kn_otlp_http *r, const struct kn_http_req *req,
		      struct kn_http_resp *resp)
{
	STAT(r, preflights);
	resp->status = 204;
	size_t olen;
	if (!origin_allowed(r, req, &olen))
		return; /* no CORS headers: the browser refuses */
	add_cors_origin(r, req, resp);
	kn_http_resp_header(resp, "Access-Control-Allow-Methods", "POST");
	char list[KN_HTTP_RESP_HEADER_MAX];
	size_t n = 0;
	list[0] = '\0';
	size_t rl;
	const char *rh = kn_http_req_header(req, "access-control-request-headers", &rl);
	if (rh) {
		size_t i = 0;
		while (i < rl) {
			while (i < rl && (rh[i] == ' ' || rh[i] == ',' || rh[i] == '\t'))
				i++;
			size_t start = i;
			while (i < rl && rh[i] != ',')
				i++;
			size_t end = i;
			while (end > start && (rh[end - 1] == ' ' || rh[end - 1] == '\t'))
				end--;
			if (end > start && header_allowed(r, rh + start, end - start) &&
			    n + (end - start) + 3 < sizeof list)
				n += (size_t)snprintf(list + n, sizeof list - n, "%s%.*s", n ? ", " : "",
						      (int)(end - start), rh + start);
		}
	} else {
		n = (size_t)snprintf(list, sizeof list, "Content-Type, Content-Encoding");
		for (size_t i = 0; i < r->nheaders && n < sizeof list; i++)
			if (strcmp(r->headers[i], "*") != 0)
				n += (size_t)snprintf(list + n, sizeof list - n, ", %s", r->headers[i]);
	}
	if (list[0])
		kn_http_resp_header(resp, "Access-Control-Allow-Headers", list);
	if (r->max_age) {
		char v[32];
		snprintf(v, sizeof v, "%llu", (unsigned long long)r->max_age);
		kn_http_resp_header(resp, "Access-Control-Max-Age", v);
	}
}

static void handle(void *ctx, const struct kn_http_req *req, struct kn_http_resp *resp)
{
	struct kn_otlp_http *r = ctx;
	const char *reason;
	int st = classify(r, req, &reason);
	if (st) {
		refusal(r, req, st, reason, NULL, resp);
		return;
	}
	if (strcmp(req->method, "OPTIONS") == 0) {
		preflight(r, req, resp);
		return;
	}
	enum ctype ct = content_type(req);
	const uint8_t *pb = req->body;
	size_t pb_len = req->body_len;
	uint8_t *conv = NULL;
	if (ct == CT_JSON) {
		struct kn_err err = {{0}};
		if (kn_pbjson_traces_to_proto((const char *)req->body, req->body_len, &conv, &pb_len,
					      &err) != KN_OK) {
			char msg[600];
			snprintf(msg, sizeof msg, "body: %s", err.msg[0] ? err.msg : "invalid JSON");
			refusal(r, req, 400, "decode_error", msg, resp);
			free(conv);
			return;
		}
		pb = conv ? conv : (const uint8_t *)"";
	}
	struct kn_tracectx tc;
	size_t tpl = 0, tsl = 0;
	const char *tp = kn_http_req_header(req, "traceparent", &tpl);
	const char *ts = kn_http_req_header(req, "tracestate", &tsl);
	kn_tracectx_set(&tc, tp, tpl, ts, tsl);
	struct kn_ingest_result res;
	memset(&res, 0, sizeof res);
	STAT(r, requests);
	int rc = r->sink.ingest(r->sink.ctx, (uint32_t)req->thread, pb, pb_len,
				kn_tracectx_present(&tc) ? &tc : NULL, &res);
	free(conv);
	res.message[sizeof res.message - 1] = '\0';
	if (rc == KN_OK) {
		STAT(r, ok);
		resp->status = 200;
		ok_body(ct, &res, resp);
	} else if (rc == KN_INVALID) {
		STAT(r, invalid);
		resp->status = 400;
		status_body(ct, 3, res.message[0] ? res.message : "invalid request", resp);
	} else if (rc == KN_AGAIN) {
		STAT(r, unavailable);
		resp->status = 503;
		char v[16];
		/* whole seconds (RFC 9110 delay-seconds), rounded up: at least 1 */
		uint32_t ms = res.retry_after_ms ? res.retry_after_ms : 1000;
		snprintf(v, sizeof v, "%u", (unsigned)(ms / 1000 + (ms % 1000 != 0)));
		kn_http_resp_header(resp, "Retry-After", v);
		status_body(ct, 14, res.message[0] ? res.message : "pipeline full, retry later", resp);
	} else {
		resp->status = 500;
		status_body(ct, 13, res.message[0] ? res.message : "internal error", resp);
	}
	add_cors_origin(r, req, resp);
}

static char **dup_list(const char *const *v, size_t n)
{
	char **out = calloc(n ? n : 1, sizeof *out);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		out[i] = strdup(v[i] ? v[i] : "");
		if (!out[i]) {
			for (size_t k = 0; k < i; k++)
				free(out[k]);
			free(out);
			return NULL;
		}
	}
	return out;
}

static void free_list(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

struct kn_otlp_http *kn_otlp_http_create(const struct kn_otlp_http_opts *opts,
					 struct kn_ingest_sink sink, struct kn_err *err)
{
	struct kn_otlp_http *r = calloc(1, sizeof *r);
	if (!r) {
		kn_errf(err, "otlp/http: out of memory");
		return NULL;
	}
	struct kn_otlp_http_opts o = {0};
	if (opts)
		o = *opts;
	if (!sink.ingest) {
		kn_errf(err, "otlp/http: sink.ingest is required");
		goto fail;
	}
	r->sink = sink;
	r->auth = o.auth;
	r->auth_inst = o.auth_inst;
	if (r->auth && (!r->auth->authenticate || !r->auth->challenge)) {
		kn_errf(err, "otlp/http: auth: authenticate and challenge are required");
		goto fail;
	}
	r->name = strdup(o.name ? o.name : "otlp/http");
	r->endpoint = strdup(o.endpoint ? o.endpoint : KN_OTLP_HTTP_DEFAULT_ENDPOINT);
	r->path = strdup(o.traces_url_path ? o.traces_url_path : KN_OTLP_HTTP_DEFAULT_PATH);
	r->origins = dup_list(o.cors.allowed_origins, o.cors.n_allowed_origins);
	r->headers = dup_list(o.cors.allowed_headers, o.cors.n_allowed_headers);
	if (!r->name || !r->endpoint || !r->path || !r->origins || !r->headers) {
		kn_errf(err, "otlp/http: out of memory");
		goto fail;
	}
	r->norigins = o.cors.n_allowed_origins;
	r->nheaders = o.cors.n_allowed_headers;
	r->max_age = o.cors.max_age;
	if (r->path[0] != '/') {
		kn_errf(err, "%s: traces_url_path: must start with '/' (got \"%s\")", r->name, r->path);
		goto fail;
	}
	for (size_t i = 0; i < r->norigins; i++) {
		const char *star = strchr(r->origins[i], '*');
		if (r->origins[i][0] == '\0' || (star && strchr(star + 1, '*'))) {
			kn_errf(err, "%s: cors.allowed_origins[%zu]: \"%s\": empty or more than one '*'",
				r->name, i, r->origins[i]);
			goto fail;
		}
	}
	r->max_body = o.max_request_body_size ? o.max_request_body_size : KN_OTLP_HTTP_DEFAULT_MAX_BODY;
	r->threads = o.threads ? o.threads : 2;
	r->idle_ns = o.idle_timeout_ns;
	struct kn_httpd_opts ho = {
		.endpoint = r->endpoint,
		.name = r->name,
		.threads = r->threads,
		.max_body = r->max_body,
		.decompress = 1,
		.enable_h2c = 1,
		.idle_timeout_ns = r->idle_ns,
		.read_header_timeout_ns = o.read_header_timeout_ns,
		.read_timeout_ns = o.read_timeout_ns,
		.closed = {o.closed_read_header_timeout, o.closed_read_timeout, o.closed_idle_timeout},
		.refused = on_refused,
		.tls = o.tls,
	};
	r->httpd = kn_httpd_create(&ho, handle, precheck, r, err);
	if (!r->httpd)
		goto fail;
	return r;
fail:
	kn_otlp_http_destroy(r);
	return NULL;
}

int kn_otlp_http_start(struct kn_otlp_http *r, struct kn_err *err)
{
	return kn_httpd_start(r->httpd, err);
}

uint16_t kn_otlp_http_port(const struct kn_otlp_http *r)
{
	return r ? kn_httpd_port(r->httpd) : 0;
}

void kn_otlp_http_shutdown(struct kn_otlp_http *r, uint64_t deadline_ns)
{
	if (r)
		kn_httpd_shutdown(r->httpd, deadline_ns);
}

void kn_otlp_http_destroy(struct kn_otlp_http *r)
{
	if (!r)
		return;
	kn_httpd_destroy(r->httpd);
	free_list(r->origins, r->norigins);
	free_list(r->headers, r->nheaders);
	free(r->name);
	free(r->endpoint);
	free(r->path);
	free(r);
}

void kn_otlp_http_stats(const struct kn_otlp_http *r, struct kn_otlp_http_stats *out)
{
	memset(out, 0, sizeof *out);
	if (!r)
		return;
	out->requests = __atomic_load_n(&r->stats.requests, __ATOMIC_RELAXED);
	out->ok = __atomic_load_n(&r->stats.ok, __ATOMIC_RELAXED);
	out->invalid = __atomic_load_n(&r->stats.invalid, __ATOMIC_RELAXED);
	out->unavailable = __atomic_load_n(&r->stats.unavailable, __ATOMIC_RELAXED);
	out->refused = __atomic_load_n(&r->stats.refused, __ATOMIC_RELAXED);
	out->unauthenticated = __atomic_load_n(&r->stats.unauthenticated, __ATOMIC_RELAXED);
	out->preflights = __atomic_load_n(&r->stats.preflights, __ATOMIC_RELAXED);
	struct kn_httpd_stats hs;
	kn_httpd_stats(r->httpd, &hs);
	out->closed_read_header_timeout = hs.read_header_timeouts;
	out->closed_read_timeout = hs.read_timeouts;
	out->closed_idle_timeout = hs.idle_closed;
}
