/* SPDX-License-Identifier: Apache-2.0
 * kn_http_conn_int: the connection's insides, shared by kn_http_conn.c
 * (detection, HTTP/1.1) and kn_http_h2.c (HTTP/2). Internal. */
#ifndef KN_HTTP_CONN_INT_H
#define KN_HTTP_CONN_INT_H

#include <http_parser.h>
#include <nghttp2/nghttp2.h>

#include "kn_http_conn.h"

struct kn_http_buf {
	uint8_t *p;
	size_t off, len, cap;   /* unsent bytes are p[off..len) */
};

int kn_http_buf_append(struct kn_http_buf *b, const void *data, size_t len);

enum kn_conn_mode { KN_CONN_DETECT, KN_CONN_H1, KN_CONN_H2 };

struct kn_http_conn {
	const struct kn_http_conn_cfg *cfg;
	int thread;
	enum kn_conn_mode mode;
	uint8_t pre[24];
	size_t npre;
	int close_after;     /* close once the output is sent */
	int draining;
	struct kn_http_buf out;
	/* HTTP/1.1 */
	http_parser parser;
	struct kn_http_msg msg;
	int in_message, last_was_value;
	int early_status;
	const char *early_reason;
	int headers_done;    /* of the message in progress */
	int began;           /* a request has begun on this connection */
	uint64_t req_start_ns; /* creation, then each message's first byte */
	uint64_t idle_since_ns; /* the last message's end (H1), the last stream event (H2) */
	/* HTTP/2 */
	nghttp2_session *h2;
	size_t h2_streams;   /* streams with request state alive */
	struct kn_h2_stream *h2_list; /* those streams, freed with the session */
};

int kn_http_h2_start(struct kn_http_conn *c);
enum kn_http_phase kn_http_h2_phase(const struct kn_http_conn *c, uint64_t *since_ns);
void kn_http_h2_feed(struct kn_http_conn *c, const uint8_t *data, size_t len);
void kn_http_h2_pump(struct kn_http_conn *c);
int kn_http_h2_done(const struct kn_http_conn *c);
void kn_http_h2_goaway(struct kn_http_conn *c);
void kn_http_h2_free(struct kn_http_conn *c);

#endif
