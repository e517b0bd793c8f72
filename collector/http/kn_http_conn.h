/* SPDX-License-Identifier: Apache-2.0
 * kn_http_conn: the protocol side of one server connection, without sockets.
 * Received bytes go in with kn_http_conn_feed; responses come out of an
 * output buffer the caller writes to the socket. The first bytes decide the
 * protocol: the HTTP/2 connection preface selects h2c (nghttp2), anything
 * else HTTP/1.1 (libhttp-parser, keep-alive, pipelining, chunked bodies).
 * Handlers run synchronously inside feed. Because nothing here touches a
 * socket, the fuzz target drives exactly the code the server runs.
 *
 * Threading: a connection is used by one thread only. Memory: the request
 * being assembled (bounded by max_body and KN_HTTP_MAX_HEADER_BYTES, per
 * HTTP/2 stream) plus unsent output; the server stops reading while the
 * output backlog is large. */
#ifndef KN_HTTP_CONN_H
#define KN_HTTP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "kn_http_msg.h"

struct kn_http_conn;

/* cfg must outlive the connection. */
struct kn_http_conn *kn_http_conn_create(const struct kn_http_conn_cfg *cfg, int thread);
void kn_http_conn_destroy(struct kn_http_conn *c);

/* Consumes received bytes (all of them). */
void kn_http_conn_feed(struct kn_http_conn *c, const uint8_t *data, size_t len);
/* The bytes waiting to be sent (HTTP/2 frames are produced here). */
const uint8_t *kn_http_conn_out(struct kn_http_conn *c, size_t *len);
/* n bytes of the output were sent. */
void kn_http_conn_sent(struct kn_http_conn *c, size_t n);
/* 1 when the connection should be closed once the output is sent. */
int kn_http_conn_closing(const struct kn_http_conn *c);
/* 1 while a request is partly received or being answered. */
int kn_http_conn_busy(const struct kn_http_conn *c);
/* What the connection waits for from the client, for the server's read
 * timeouts, and since when (*since_ns, on kn_now_ns()'s clock):
 * HEADERS: a request whose headers are not complete (a new connection
 * counts from its creation, HTTP/1.1 keep-alive from the request's first
 * byte, HTTP/2 from the oldest such stream's HEADERS frame); BODY: headers
 * complete, body not (since the request's start); IDLE: nothing partly
 * received (HTTP/2: since the last stream began or closed, else since the
 * last request ended). */
enum kn_http_phase { KN_HTTP_PHASE_IDLE, KN_HTTP_PHASE_HEADERS, KN_HTTP_PHASE_BODY };
enum kn_http_phase kn_http_conn_phase(const struct kn_http_conn *c, uint64_t *since_ns);
/* Shutdown: finish what is in progress, then close (HTTP/1.1: no more
 * keep-alive; HTTP/2: GOAWAY). */
void kn_http_conn_drain(struct kn_http_conn *c);

#endif
