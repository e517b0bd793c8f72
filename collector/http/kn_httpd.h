/* SPDX-License-Identifier: Apache-2.0
 * kn_httpd: a small embedded HTTP server used by the OTLP/HTTP receiver and
 * the admin endpoints (/metrics, /healthz, /readyz).
 *
 * Threads: `threads` event-loop threads (epoll), each with its own
 * SO_REUSEPORT listener, so a connection lives on one thread for its life.
 * HTTP/1.1 (keep-alive, chunked request bodies) is parsed by libhttp-parser;
 * HTTP/2 cleartext with prior knowledge (the client starts with the h2
 * connection preface) is framed by nghttp2. Request bodies are assembled, and
 * decompressed when Content-Encoding is gzip (zlib) or zstd, with the size
 * limit applied after decompression (a bomb stops at the limit: 413). The
 * handler is called synchronously on the connection's thread with the whole
 * body; it must not block for long.
 *
 * Ownership: the request and its body belong to the server and are valid only
 * during the handler call. The handler fills resp; resp->body is freed by the
 * server with free() after sending when resp->body_free is set.
 *
 * Refusals the server makes on its own (413 body too large, 400 corrupt
 * compression or malformed request, 415 unknown Content-Encoding, and the
 * status a precheck returned) go through the optional refuse hook, which can
 * count them and replace the response body (e.g. with a google.rpc.Status).
 *
 * TLS (opts.tls): each connection runs a non-blocking OpenSSL handshake
 * first (bounded by read_header_timeout_ns), then the same protocol layer gets the
 * decrypted bytes, so HTTP/1.1 and HTTP/2 (ALPN "h2" clients start with the
 * connection preface) are served as in cleartext. */
#ifndef KN_HTTPD_H
#define KN_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "../core/kn_err.h"
#include "../core/kn_tls_server.h"

struct kn_http_header {
	const char *name;   /* lower-case */
	const char *value;
	size_t name_len, value_len;
};

struct kn_http_req {
	const char *method;       /* "POST", NUL-terminated */
	const char *path;         /* without query string, NUL-terminated */
	const char *query;        /* after '?', or "" */
	const struct kn_http_header *headers;
	size_t nheaders;
	const uint8_t *body;      /* decompressed */
	size_t body_len;
	size_t wire_body_len;     /* bytes as received (before decompression) */
	int http2;                /* 1 when served over h2c */
	int thread;               /* index of the serving thread, 0..threads-1 */
};

#define KN_HTTP_MAX_RESP_HEADERS 12
#define KN_HTTP_RESP_HEADER_MAX 256

struct kn_http_resp {
	int status;
	const char *content_type;             /* static string or NULL */
	struct { const char *name; char value[KN_HTTP_RESP_HEADER_MAX]; } headers[KN_HTTP_MAX_RESP_HEADERS];
	size_t nheaders;
	uint8_t *body;
	size_t body_len;
	int body_free;                        /* server frees body after sending */
};

/* Returns the header value (not NUL-terminated) or NULL; name is lower-case. */
const char *kn_http_req_header(const struct kn_http_req *req, const char *name, size_t *len);

/* Adds a response header (name must be a static string; value is copied,
 * truncated to KN_HTTP_RESP_HEADER_MAX - 1 bytes; ignored beyond
 * KN_HTTP_MAX_RESP_HEADERS headers). */
void kn_http_resp_header(struct kn_http_resp *resp, const char *name, const char *value);

typedef void (*kn_http_handler)(void *ctx, const struct kn_http_req *req,
				struct kn_http_resp *resp);

/* Called before the body arrives (headers complete). Return 0 to continue or
 * an HTTP status to refuse early (e.g. 404/405/415 without reading a large
 * body, 413 when Content-Length is already over the limit). Optional. */
typedef int (*kn_http_precheck)(void *ctx, const struct kn_http_req *req_without_body);

/* Called when the server refuses a request itself. `reason` is a short fixed
 * label: "too_large", "bad_encoding" (corrupt gzip/zstd),
 * "unsupported_encoding", "bad_request" (malformed HTTP), or for a precheck
 * refusal "not_found" (404), "method_not_allowed" (405), "bad_content_type"
 * (415), "too_large" (413), "unauthenticated" (401), "refused" (other).
 * resp arrives filled with the
 * status and a text/plain body; the hook may replace content_type/body and
 * add headers (keep the status). req may lack a path when the request line
 * itself was malformed (path ""). Optional. */
typedef void (*kn_http_refuse_hook)(void *ctx, const struct kn_http_req *req, const char *reason,
				    struct kn_http_resp *resp);

#define KN_HTTPD_NO_TIMEOUT UINT64_MAX

struct kn_metric;

struct kn_httpd_opts {
	const char *endpoint;        /* "0.0.0.0:4318", "127.0.0.1:0" */
	const char *name;            /* for log lines and errors: "otlp/http", "admin" */
	uint32_t threads;            /* event-loop threads, >= 1 */
	size_t max_body;             /* after decompression; 0 = 4 MiB default */
	int decompress;              /* honour Content-Encoding gzip / zstd (else 415) */
	int enable_h2c;              /* accept HTTP/2 prior knowledge */
	/* Timeouts (nanoseconds; 0 = the default, KN_HTTPD_NO_TIMEOUT = none),
	 * named and timed as Go's http.Server (the OpenTelemetry Collector's
	 * confighttp): a request starts when the connection is accepted (first
	 * request) or when its first byte arrives (keep-alive); on HTTP/2 each
	 * stream starts at its HEADERS frame. A connection whose request is not
	 * in within the limit is closed without an answer. */
	uint64_t read_header_timeout_ns; /* request start -> headers complete (TLS handshake
					  * included); 0 = 60 s */
	uint64_t read_timeout_ns;    /* request start -> body complete; 0 = 60 s */
	uint64_t idle_timeout_ns;    /* no byte received for this long (any phase), or an HTTP/2
				      * connection without a stream for this long; 0 = 60 s */
	uint32_t max_connections;    /* per server; 0 = 4096 */
	kn_http_refuse_hook refused; /* optional, called with the create() ctx */
	/* optional counters (kn_metrics) of connections the timeouts close */
	struct kn_http_closed_counters {
		struct kn_metric *read_header_timeout, *read_timeout, *idle_timeout;
	} closed;
	/* NULL = plaintext. Else TLS on every connection (see kn_http_tls.h):
	 * the files are loaded at start (errors name the key, "tls.key_file:
	 * ..."), mutual TLS with client_ca_file, ALPN "h2" (when enable_h2c)
	 * or "http/1.1", reloads every reload_interval_ns. Must outlive start. */
	const struct kn_tls_server_cfg *tls;
};

/* Counts the server keeps (read with kn_httpd_stats). */
struct kn_httpd_stats {
	uint64_t connections_accepted, connections_open, requests, bad_requests,
		too_large, decompress_errors;
	uint64_t connections_refused;  /* closed at accept: over max_connections */
	uint64_t idle_closed;          /* closed by idle_timeout_ns */
	uint64_t read_header_timeouts; /* closed by read_header_timeout_ns */
	uint64_t read_timeouts;        /* closed by read_timeout_ns */
	uint64_t tls_handshake_failures; /* TLS handshakes that failed (bad or no client
					  * certificate, not TLS, protocol mismatch) */
	uint64_t tls_reloads;          /* certificate reloads swapped in */
	uint64_t tls_reload_failures;  /* changed files that did not load (old ones kept) */
};

struct kn_httpd;

/* Validates options; binds nothing. */
struct kn_httpd *kn_httpd_create(const struct kn_httpd_opts *opts, kn_http_handler h,
				 kn_http_precheck pre, void *ctx, struct kn_err *err);
/* Binds, listens and starts the threads. */
int kn_httpd_start(struct kn_httpd *s, struct kn_err *err);
/* The bound port (useful with ":0"), valid after start. */
uint16_t kn_httpd_port(const struct kn_httpd *s);
/* Stops accepting, lets in-flight requests finish until deadline_ns, closes
 * connections, joins threads. Safe twice and before start. */
void kn_httpd_shutdown(struct kn_httpd *s, uint64_t deadline_ns);
void kn_httpd_destroy(struct kn_httpd *s);
void kn_httpd_stats(const struct kn_httpd *s, struct kn_httpd_stats *out);

#endif
