/* SPDX-License-Identifier: Apache-2.0
 * Fuzz target: arbitrary bytes as the request stream of one server
 * connection, through kn_http_conn (the exact code the server runs, without
 * sockets). The first byte picks the framing: odd = HTTP/2 (the preface is
 * prepended so nghttp2 sees the frames), even = HTTP/1.1; the second byte
 * splits the stream into two feeds to exercise resumable parsing. Output is
 * drained after every feed. Must never crash or leak, and must give back
 * every request-body byte it charged (kn_budget_req_used() returns to 0). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/core/kn_budget.h"
#include "collector/http/kn_http_conn.h"

static void handler(void *ctx, const struct kn_http_req *req, struct kn_http_resp *resp)
{
	(void)ctx;
	size_t len;
	const char *v = kn_http_req_header(req, "x-status", &len);
	resp->status = v && len == 3 ? atoi(v) : 200;
	resp->content_type = "text/plain";
	kn_http_resp_header(resp, "X-Path", req->path);
	if (req->body_len) {
		resp->body = malloc(req->body_len);
		if (resp->body) {
			memcpy(resp->body, req->body, req->body_len);
			resp->body_len = req->body_len;
			resp->body_free = 1;
		}
	}
}

static int precheck(void *ctx, const struct kn_http_req *req)
{
	(void)ctx;
	return strcmp(req->path, "/refuse") == 0 ? 415 : 0;
}

static void refused(void *ctx, const struct kn_http_req *req, const char *reason,
		    struct kn_http_resp *resp)
{
	(void)ctx;
	(void)req;
	(void)reason;
	kn_http_resp_header(resp, "X-Refused", "1");
}

static void drain(struct kn_http_conn *c)
{
	size_t len;
	kn_http_conn_out(c, &len);
	kn_http_conn_sent(c, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct kn_http_conn_cfg cfg = {
		.max_body = 4096,
		.decompress = 1,
		.enable_h2c = 1,
		.handler = handler,
		.precheck = precheck,
		.refused = refused,
	};
	if (size < 2)
		return 0;
	int h2 = data[0] & 1;
	size_t split = data[1];
	data += 2;
	size -= 2;
	if (split > size)
		split = size;
	struct kn_http_conn *c = kn_http_conn_create(&cfg, 0);
	if (!c)
		return 0;
	if (h2)
		kn_http_conn_feed(c, (const uint8_t *)"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
	drain(c);
	kn_http_conn_feed(c, data, split);
	drain(c);
	kn_http_conn_feed(c, data + split, size - split);
	drain(c);
	kn_http_conn_busy(c);
	kn_http_conn_drain(c);
	drain(c);
	kn_http_conn_closing(c);
	kn_http_conn_destroy(c);
	if (kn_budget_req_used() != 0)
		abort(); /* a body buffer's charge was not given back */
	return 0;
}
