/* SPDX-License-Identifier: Apache-2.0
 * kn_http_conn: protocol detection, HTTP/1.1 via libhttp-parser, HTTP/2 via
 * kn_http_h2 (see kn_http_conn.h). A refusal before the body (precheck,
 * Content-Length over the limit) or a malformed request answers and closes,
 * since the rest of the stream cannot be trusted or is not worth reading. */
#include "kn_http_conn.h"
#include "kn_http_conn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/kn_clock.h"

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN 24

int kn_http_buf_append(struct kn_http_buf *b, const void *data, size_t len)
{
	if (b->off && b->off == b->len) {
		b->off = b->len = 0;
	}
	if (b->len + len > b->cap) {
		if (b->off) { /* compact first */
			memmove(b->p, b->p + b->off, b->len - b->off);
			b->len -= b->off;
			b->off = 0;
		}
		if (b->len + len > b->cap) {
			size_t ncap = b->cap ? b->cap : 4096;
			while (ncap < b->len + len)
				ncap *= 2;
			uint8_t *n = realloc(b->p, ncap);
			if (!n)
				return -1;
			b->p = n;
			b->cap = ncap;
		}
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

struct kn_http_conn *kn_http_conn_create(const struct kn_http_conn_cfg *cfg, int thread)
{
	struct kn_http_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->cfg = cfg;
	c->thread = thread;
	c->mode = cfg->enable_h2c ? KN_CONN_DETECT : KN_CONN_H1;
	kn_http_msg_init(&c->msg, 0, thread);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->req_start_ns = c->idle_since_ns = kn_now_ns();
	return c;
}

void kn_http_conn_destroy(struct kn_http_conn *c)
{
	if (!c)
		return;
	kn_http_h2_free(c);
	kn_http_msg_free(&c->msg);
	free(c->out.p);
	free(c);
}

/* ---- HTTP/1.1 ---- */

static void h1_write_resp(struct kn_http_conn *c, struct kn_http_resp *resp, int keep_alive)
{
	char head[4096];
	size_t n = 0;
	n += (size_t)snprintf(head + n, sizeof head - n, "HTTP/1.1 %d %s\r\n", resp->status,
			      kn_http_status_text(resp->status));
	if (resp->content_type)
		n += (size_t)snprintf(head + n, sizeof head - n, "Content-Type: %s\r\n",
				      resp->content_type);
	if (resp->status != 204 && resp->status >= 200)
		n += (size_t)snprintf(head + n, sizeof head - n, "Content-Length: %zu\r\n",
				      resp->body_len);
	if (!keep_alive)
		n += (size_t)snprintf(head + n, sizeof head - n, "Connection: close\r\n");
	else if (c->parser.http_major == 1 && c->parser.http_minor == 0)
		n += (size_t)snprintf(head + n, sizeof head - n, "Connection: keep-alive\r\n");
	for (size_t i = 0; i < resp->nheaders && n < sizeof head; i++)
		n += (size_t)snprintf(head + n, sizeof head - n, "%s: %s\r\n", resp->headers[i].name,
				      resp->headers[i].value);
	if (n >= sizeof head - 3)
		n = sizeof head - 3;
	memcpy(head + n, "\r\n", 2);
	n += 2;
	if (kn_http_buf_append(&c->out, head, n) != 0 ||
	    (resp->status != 204 && resp->body_len &&
	     kn_http_buf_append(&c->out, resp->body, resp->body_len) != 0))
		c->close_after = 1; /* out of memory: give up on this connection */
	kn_http_resp_release(resp);
	if (!keep_alive)
		c->close_after = 1;
}

static void h1_refuse(struct kn_http_conn *c, int status, const char *reason)
{
	struct kn_http_resp resp;
	memset(&resp, 0, sizeof resp);
	if (status == 400 && strcmp(reason, "bad_request") == 0)
		KN_HTTP_COUNT(c->cfg, bad_requests);
	kn_http_refuse(c->cfg, &c->msg.req, status, reason, &resp);
	h1_write_resp(c, &resp, 0);
	c->in_message = 0;
}

static int on_message_begin(http_parser *p)
{
	struct kn_http_conn *c = p->data;
	kn_http_msg_reset(&c->msg);
	c->in_message = 1;
	c->headers_done = 0;
	/* the first request counts from the connection's creation (so a client
	 * that connects and sends nothing is timed too), later ones from here */
	if (c->began)
		c->req_start_ns = kn_now_ns();
	c->began = 1;
	c->last_was_value = 1;
	c->msg.url_off = 0;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct kn_http_conn *c = p->data;
	if (kn_http_msg_text(&c->msg, at, len) != 0) {
		c->early_status = 431;
		c->early_reason = "bad_request";
		return -1;
	}
	c->msg.url_len += (uint32_t)len;
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct kn_http_conn *c = p->data;
	if (c->last_was_value && kn_http_msg_begin_header(&c->msg) != 0)
		goto too_big;
	c->last_was_value = 0;
	if (kn_http_msg_text(&c->msg, at, len) != 0)
		goto too_big;
	c->msg.hoff[c->msg.nhdr - 1].name_len += (uint32_t)len;
	return 0;
too_big:
	c->early_status = 431;
	c->early_reason = "bad_request";
	return -1;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct kn_http_conn *c = p->data;
	struct kn_http_hoff *h = &c->msg.hoff[c->msg.nhdr - 1];
	if (!c->last_was_value) {
		h->value_off = (uint32_t)c->msg.text_len;
		h->value_len = 0;
		c->last_was_value = 1;
	}
	if (kn_http_msg_text(&c->msg, at, len) != 0) {
		c->early_status = 431;
		c->early_reason = "bad_request";
		return -1;
	}
	h->value_len += (uint32_t)len;
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct kn_http_conn *c = p->data;
	c->headers_done = 1;
	snprintf(c->msg.method, sizeof c->msg.method, "%s",
		 http_method_str((enum http_method)p->method));
	const char *reason = NULL;
	int st = kn_http_msg_headers_done(c->cfg, &c->msg, &reason);
	if (st) {
		c->early_status = st;
		c->early_reason = reason;
		return -1;
	}
	size_t len;
	const char *v = kn_http_req_header(&c->msg.req, "expect", &len);
	if (v && len == 12 && strncasecmp(v, "100-continue", 12) == 0) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (kn_http_buf_append(&c->out, cont, sizeof cont - 1) != 0)
			return -1;
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct kn_http_conn *c = p->data;
	const char *why = NULL;
	int st = kn_http_msg_body(c->cfg, &c->msg, (const uint8_t *)at, len, &why);
	if (st) {
		c->early_status = st;
		c->early_reason = why;
		return -1;
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct kn_http_conn *c = p->data;
	struct kn_http_resp resp;
	memset(&resp, 0, sizeof resp);
	kn_http_msg_dispatch(c->cfg, &c->msg, &resp);
	int keep = http_should_keep_alive(p) && !c->draining && !p->upgrade;
	h1_write_resp(c, &resp, keep);
	c->in_message = 0;
	c->idle_since_ns = kn_now_ns();
	kn_http_msg_reset(&c->msg);
	if (!keep)
		http_parser_pause(p, 1); /* ignore anything pipelined after a close */
	return 0;
}

static const http_parser_settings h1_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

static void h1_feed(struct kn_http_conn *c, const uint8_t *data, size_t len)
{
	http_parser_execute(&c->parser, &h1_settings, (const char *)data, len);
	if (c->close_after)
		return;
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
	if (e == HPE_OK && c->parser.upgrade) {
		c->close_after = 1; /* protocol upgrades are not supported */
		return;
	}
	if (e == HPE_OK || e == HPE_PAUSED)
		return;
	if (c->early_status)
		h1_refuse(c, c->early_status, c->early_reason);
	else
		h1_refuse(c, 400, "bad_request");
	c->close_after = 1;
}

/* ---- common ---- */

void kn_http_conn_feed(struct kn_http_conn *c, const uint8_t *data, size_t len)
{
	if (c->close_after || len == 0)
		return;
	if (c->mode == KN_CONN_DETECT) {
		size_t take = H2_PREFACE_LEN - c->npre;
		if (take > len)
			take = len;
		memcpy(c->pre + c->npre, data, take);
		c->npre += take;
		data += take;
		len -= take;
		if (memcmp(c->pre, h2_preface, c->npre) != 0) {
			c->mode = KN_CONN_H1;
			size_t n = c->npre;
			c->npre = 0;
			h1_feed(c, c->pre, n);
		} else if (c->npre == H2_PREFACE_LEN) {
			if (kn_http_h2_start(c) != 0) {
				c->close_after = 1;
				return;
			}
			c->mode = KN_CONN_H2;
			kn_http_h2_feed(c, c->pre, c->npre);
			c->npre = 0;
		} else {
			return; /* still a prefix of the preface: wait */
		}
	}
	if (len == 0 || c->close_after)
		return;
	if (c->mode == KN_CONN_H1)
		h1_feed(c, data, len);
	else
		kn_http_h2_feed(c, data, len);
}

const uint8_t *kn_http_conn_out(struct kn_http_conn *c, size_t *len)
{
	if (c->mode == KN_CONN_H2)
		kn_http_h2_pump(c);
	*len = c->out.len - c->out.off;
	/* out.p is NULL until the first response (and after a large buffer is
	 * given back): NULL + 0 is undefined, so no arithmetic on it */
	return c->out.p ? c->out.p + c->out.off : NULL;
}

void kn_http_conn_sent(struct kn_http_conn *c, size_t n)
{
	c->out.off += n;
	if (c->out.off == c->out.len) {
		c->out.off = c->out.len = 0;
		if (c->out.cap > (1u << 20)) {
			free(c->out.p);
			c->out.p = NULL;
			c->out.cap = 0;
		}
	}
}

int kn_http_conn_closing(const struct kn_http_conn *c)
{
	if (c->close_after)
		return 1;
	if (c->mode == KN_CONN_H2)
		return kn_http_h2_done(c);
	return 0;
}

int kn_http_conn_busy(const struct kn_http_conn *c)
{
	if (c->out.len > c->out.off)
		return 1;
	if (c->mode == KN_CONN_H1)
		return c->in_message;
	if (c->mode == KN_CONN_H2)
		return c->h2_streams > 0;
	return c->npre > 0;
}

enum kn_http_phase kn_http_conn_phase(const struct kn_http_conn *c, uint64_t *since_ns)
{
	if (c->mode == KN_CONN_H2)
		return kn_http_h2_phase(c, since_ns);
	if (c->in_message) {
		*since_ns = c->req_start_ns;
		return c->headers_done ? KN_HTTP_PHASE_BODY : KN_HTTP_PHASE_HEADERS;
	}
	if (!c->began) { /* nothing yet, or part of the protocol detection */
		*since_ns = c->req_start_ns;
		return KN_HTTP_PHASE_HEADERS;
	}
	*since_ns = c->idle_since_ns;
	return KN_HTTP_PHASE_IDLE;
}

void kn_http_conn_drain(struct kn_http_conn *c)
{
	if (c->draining)
		return;
	c->draining = 1;
	if (c->mode == KN_CONN_H2)
		kn_http_h2_goaway(c);
	else if (!kn_http_conn_busy(c))
		c->close_after = 1;
}
