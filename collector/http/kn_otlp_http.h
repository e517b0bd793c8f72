/* SPDX-License-Identifier: Apache-2.0
 * kn_otlp_http: the OTLP/HTTP receiver transport (POST /v1/traces) on kn_httpd.
 *
 * Follows the OTLP/HTTP specification: application/x-protobuf bodies go to
 * the sink as they are, application/json bodies are converted to protobuf
 * first (kn_pbjson); the answer is in the request's content type:
 *   KN_OK      -> 200 ExportTraceServiceResponse (partialSuccess when spans
 *                 were rejected)
 *   KN_INVALID -> 400 google.rpc.Status{code 3 INVALID_ARGUMENT}
 *   KN_AGAIN   -> 503 + Retry-After, Status{code 14 UNAVAILABLE}
 *   opts.auth refuses the credentials -> 401 + WWW-Authenticate,
 *                 Status{code 16 UNAUTHENTICATED} (checked first),
 *   other path 404, other method 405 (Allow), other content type 415,
 *   unknown Content-Encoding 415, corrupt gzip/zstd 400, body over
 *   max_request_body_size (after decompression too) 413.
 * Refusals are checked before the body is read where possible (precheck) and
 * each is reported through sink.refused with a reason label. CORS (when
 * allowed_origins is set): preflight OPTIONS and Access-Control-Allow-Origin
 * on matching actual requests.
 *
 * Threads: kn_httpd's `threads` loop threads; the sink's `thread` argument is
 * the loop index (0..threads-1), so a sink can own one producer per thread.
 * The sink is called synchronously on that thread and must not block long.
 * Lifecycle: create (validates, binds nothing) -> start (binds, logs
 * "kansatsu: listening <name> <host>:<port>") -> shutdown (safe twice and
 * before start) -> destroy (NULL-safe). */
#ifndef KN_OTLP_HTTP_H
#define KN_OTLP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "../core/kn_err.h"
#include "../core/kn_extension.h"
#include "../core/kn_ingest.h"
#include "../core/kn_tls_server.h"

#define KN_OTLP_HTTP_DEFAULT_ENDPOINT "0.0.0.0:4318"
#define KN_OTLP_HTTP_DEFAULT_PATH "/v1/traces"
#define KN_OTLP_HTTP_DEFAULT_MAX_BODY (20u << 20)
#define KN_OTLP_HTTP_NO_TIMEOUT UINT64_MAX  /* = KN_HTTPD_NO_TIMEOUT */

struct kn_metric;

/* Zero / NULL means "default" for every field. Names follow
 * receivers.otlp.protocols.http of the OpenTelemetry Collector. */
struct kn_otlp_http_opts {
	const char *endpoint;          /* host:port; "0.0.0.0:4318" when NULL; ":0" = ephemeral */
	const char *name;              /* for log lines; "otlp/http" when NULL */
	const char *traces_url_path;   /* "/v1/traces" when NULL */
	size_t max_request_body_size;  /* bytes after decompression; 0 = 20 MiB */
	uint32_t threads;              /* event-loop threads; 0 = 2 */
	/* read_header_timeout / read_timeout / idle_timeout (kn_httpd.h says
	 * what each measures); 0 = 60 s, KN_OTLP_HTTP_NO_TIMEOUT = none */
	uint64_t read_header_timeout_ns;
	uint64_t read_timeout_ns;
	uint64_t idle_timeout_ns;
	/* optional counters of the connections those timeouts close */
	struct kn_metric *closed_read_header_timeout, *closed_read_timeout, *closed_idle_timeout;
	struct {
		/* exact origins, "*" for any, or one wildcard star as in "https://(star).example.com" */
		const char *const *allowed_origins;
		size_t n_allowed_origins;
		/* request headers allowed besides Content-Type and Content-Encoding;
		 * "*" allows any */
		const char *const *allowed_headers;
		size_t n_allowed_headers;
		uint64_t max_age;      /* seconds; 0 = no Access-Control-Max-Age */
	} cors;
	const struct kn_tls_server_cfg *tls;  /* NULL = plaintext; must outlive the receiver */
	/* A server authenticator (kn_extension.h; NULL = none) checked on the
	 * headers before the body is read: a refusal is 401 with
	 * WWW-Authenticate and Status{code 16 UNAUTHENTICATED}, reported to
	 * sink.refused as "unauthenticated". CORS preflights are not checked.
	 * Both must outlive the receiver. */
	const struct kn_server_auth_ops *auth;
	void *auth_inst;
};

struct kn_otlp_http_stats {
	uint64_t requests;          /* POSTs answered by the handler */
	uint64_t ok, invalid, unavailable;
	uint64_t refused;           /* answered with 4xx before ingest */
	uint64_t unauthenticated;   /* of those: 401 (opts.auth refused the credentials) */
	uint64_t preflights;        /* CORS OPTIONS answered */
	/* connections the server closed on its own, by the timeout that closed them */
	uint64_t closed_read_header_timeout, closed_read_timeout, closed_idle_timeout;
};

struct kn_otlp_http;

/* Validates and copies the options (strings included); binds nothing. */
struct kn_otlp_http *kn_otlp_http_create(const struct kn_otlp_http_opts *opts,
					 struct kn_ingest_sink sink, struct kn_err *err);
int kn_otlp_http_start(struct kn_otlp_http *r, struct kn_err *err);
/* The bound port (the real one with ":0"); 0 before start. */
uint16_t kn_otlp_http_port(const struct kn_otlp_http *r);
/* deadline_ns is on kn_now_ns()'s clock. */
void kn_otlp_http_shutdown(struct kn_otlp_http *r, uint64_t deadline_ns);
void kn_otlp_http_destroy(struct kn_otlp_http *r);
void kn_otlp_http_stats(const struct kn_otlp_http *r, struct kn_otlp_http_stats *out);

/* CORS origin matching (exposed for tests): 1 when origin[0..len) matches
 * pattern ("*", exact, or one '*' standing for any run of characters). */
int kn_otlp_http_origin_match(const char *pattern, const char *origin, size_t len);

#endif
