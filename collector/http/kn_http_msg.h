/* SPDX-License-Identifier: Apache-2.0
 * kn_http_msg: one request being assembled (HTTP/1.1 message or HTTP/2
 * stream), independent of the wire protocol, plus the response helpers both
 * protocols share. Internal to collector/http.
 *
 * The request line and headers are appended into one growable text buffer
 * (bounded by KN_HTTP_MAX_HEADER_BYTES) as offsets, resolved into pointers
 * once the headers are complete (so reallocations never dangle). The body
 * buffer grows by doubling as bytes arrive, never beyond Content-Length or
 * max_body; past 64 KiB it comes from, and goes back to, a small per-thread
 * cache of body buffers. A msg is owned by its connection
 * (HTTP/1.1) or stream (HTTP/2) and lives on that connection's thread. */
#ifndef KN_HTTP_MSG_H
#define KN_HTTP_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "kn_decompress.h"
#include "kn_httpd.h"

#define KN_HTTP_MAX_HEADERS 64
#define KN_HTTP_MAX_HEADER_BYTES (64 * 1024)

/* Server counters, updated with relaxed atomics from any loop thread. */
struct kn_http_counters {
	uint64_t connections_accepted, connections_open, requests, bad_requests, too_large,
		decompress_errors, connections_refused, idle_closed;
	uint64_t tls_handshake_failures;
	uint64_t read_header_timeouts, read_timeouts; /* connections closed by those timeouts */
};

#define KN_HTTP_COUNT(cfg, field) \
	do { \
		if ((cfg)->counters) \
			__atomic_fetch_add(&(cfg)->counters->field, 1, __ATOMIC_RELAXED); \
	} while (0)

/* What every connection of a server shares (read-only while serving). */
struct kn_http_conn_cfg {
	size_t max_body;
	int decompress;
	int enable_h2c;
	kn_http_handler handler;
	kn_http_precheck precheck;
	kn_http_refuse_hook refused;
	void *ctx;
	struct kn_http_counters *counters; /* may be NULL */
};

struct kn_http_hoff {
	uint32_t name_off, name_len, value_off, value_len;
};

struct kn_http_msg {
	char *text;
	size_t text_len, text_cap;
	uint32_t url_off, url_len;
	char method[24];
	struct kn_http_hoff hoff[KN_HTTP_MAX_HEADERS];
	size_t nhdr;
	struct kn_http_header headers[KN_HTTP_MAX_HEADERS];
	uint8_t *body;
	size_t body_len, body_cap;
	size_t content_length;     /* declared by the Content-Length header ... */
	int has_content_length;    /* ... when there is one */
	size_t charged;            /* request-body bytes charged (kn_budget_req_*) */
	enum kn_encoding enc;
	int resolved;
	struct kn_http_req req;
};

void kn_http_msg_init(struct kn_http_msg *m, int http2, int thread);
/* Forgets the request; keeps small buffers for the next one. */
void kn_http_msg_reset(struct kn_http_msg *m);
void kn_http_msg_free(struct kn_http_msg *m);
/* Frees the calling thread's cached body buffers (a loop thread, at exit). */
void kn_http_msg_cache_release(void);

/* Appends to the text buffer; -1 when KN_HTTP_MAX_HEADER_BYTES is passed. */
int kn_http_msg_text(struct kn_http_msg *m, const char *data, size_t len);
/* Starts a header (name follows via kn_http_msg_text); -1 beyond the limit. */
int kn_http_msg_begin_header(struct kn_http_msg *m);

/* Headers complete: resolves req and runs the server's checks and the
 * precheck. Returns 0 to continue, else the refusal status with *reason. */
int kn_http_msg_headers_done(const struct kn_http_conn_cfg *cfg, struct kn_http_msg *m,
			     const char **reason);
/* Appends body bytes; returns 0, or the refusal status with *reason: 413
 * "too_large" (wire body over max_body), 503 "memory_limit" (kn_budget's
 * request-body counter has no room for the buffer, and other requests hold
 * some of it: a body that is alone is always admitted, so a retry succeeds
 * once the others are done) or 503 "no_memory". A body buffer is charged
 * by capacity while a request is read and handled; a small buffer kept for
 * the connection's next request is not charged while it waits. */
int kn_http_msg_body(const struct kn_http_conn_cfg *cfg, struct kn_http_msg *m,
		     const uint8_t *data, size_t len, const char **reason);
/* The whole request is here: decompresses and calls the handler (or fills a
 * refusal). resp must be zeroed by the caller. */
void kn_http_msg_dispatch(const struct kn_http_conn_cfg *cfg, struct kn_http_msg *m,
			  struct kn_http_resp *resp);
/* Fills resp with a refusal (status + text body) and runs the refuse hook. */
void kn_http_refuse(const struct kn_http_conn_cfg *cfg, const struct kn_http_req *req,
		    int status, const char *reason, struct kn_http_resp *resp);

const char *kn_http_status_text(int status);
/* Frees resp->body when the server owns it. */
void kn_http_resp_release(struct kn_http_resp *resp);

#endif
