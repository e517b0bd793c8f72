/* SPDX-License-Identifier: Apache-2.0
 * kn_http_h2: HTTP/2 cleartext (prior knowledge) for kn_http_conn, framed by
 * nghttp2 in memory mode (mem_recv / mem_send), so it shares the connection's
 * output buffer and needs no socket. Each request stream owns a kn_http_msg
 * and, once answered, its response; both are freed when nghttp2 closes the
 * stream. Concurrency per connection is bounded by SETTINGS_MAX_CONCURRENT_
 * STREAMS; each stream's body by max_body. */
#include "kn_http_conn_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/kn_clock.h"

#define KN_H2_MAX_STREAMS 100

struct kn_h2_stream {
	struct kn_h2_stream *prev, *next;
	struct kn_http_msg msg;
	int32_t id;
	int responded;
	int headers_done;
	uint64_t start_ns;   /* its HEADERS frame began (the read timeouts count from here) */
	struct kn_http_resp resp;
	size_t sent;
	char lname[KN_HTTP_MAX_RESP_HEADERS][48];
};

static void stream_free(struct kn_h2_stream *st)
{
	if (!st)
		return;
	kn_http_msg_free(&st->msg);
	kn_http_resp_release(&st->resp);
	free(st);
}

static ssize_t data_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *user)
{
	(void)s;
	(void)id;
	(void)user;
	struct kn_h2_stream *st = src->ptr;
	size_t left = st->resp.body_len - st->sent;
	size_t n = left < len ? left : len;
	if (n)
		memcpy(buf, st->resp.body + st->sent, n);
	st->sent += n;
	if (st->sent == st->resp.body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static void lower_copy(char *dst, size_t cap, const char *src)
{
	size_t i = 0;
	for (; src[i] && i + 1 < cap; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

#define MKNV(n, v, vl) \
	{ (uint8_t *)(n), (uint8_t *)(v), strlen(n), (vl), NGHTTP2_NV_FLAG_NONE }

static void respond(struct kn_http_conn *c, struct kn_h2_stream *st)
{
	struct kn_http_resp *r = &st->resp;
	nghttp2_nv nva[4 + KN_HTTP_MAX_RESP_HEADERS];
	size_t n = 0;
	char status[8], clen[24];
	snprintf(status, sizeof status, "%d", r->status);
	nva[n++] = (nghttp2_nv)MKNV(":status", status, strlen(status));
	if (r->content_type)
		nva[n++] = (nghttp2_nv)MKNV("content-type", r->content_type,
					    strlen(r->content_type));
	if (r->status != 204) {
		snprintf(clen, sizeof clen, "%zu", r->body_len);
		nva[n++] = (nghttp2_nv)MKNV("content-length", clen, strlen(clen));
	}
	for (size_t i = 0; i < r->nheaders; i++) {
		lower_copy(st->lname[i], sizeof st->lname[i], r->headers[i].name);
		nva[n++] = (nghttp2_nv)MKNV(st->lname[i], r->headers[i].value,
					    strlen(r->headers[i].value));
	}
	st->responded = 1;
	st->sent = 0;
	nghttp2_data_provider dp = {.source.ptr = st, .read_callback = data_read};
	int rv = nghttp2_submit_response(c->h2, st->id, nva, n,
					 (r->status != 204 && r->body_len) ? &dp : NULL);
	if (rv != 0)
		nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
}

static void refuse(struct kn_http_conn *c, struct kn_h2_stream *st, int status, const char *reason)
{
	kn_http_refuse(c->cfg, &st->msg.req, status, reason, &st->resp);
	respond(c, st);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct kn_http_conn *c = user;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct kn_h2_stream *st = calloc(1, sizeof *st);
	if (!st)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	st->id = f->hd.stream_id;
	st->start_ns = c->idle_since_ns = kn_now_ns();
	kn_http_msg_init(&st->msg, 1, c->thread);
	if (nghttp2_session_set_stream_user_data(s, st->id, st) != 0) {
		stream_free(st);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	c->h2_streams++;
	st->next = c->h2_list;
	if (c->h2_list)
		c->h2_list->prev = st;
	c->h2_list = st;
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *user)
{
	(void)flags;
	(void)user;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct kn_h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (!st || st->responded)
		return 0;
	struct kn_http_msg *m = &st->msg;
	if (namelen && name[0] == ':') {
		if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
			size_t n = valuelen < sizeof m->method - 1 ? valuelen : sizeof m->method - 1;
			memcpy(m->method, value, n);
			m->method[n] = '\0';
		} else if (namelen == 5 && memcmp(name, ":path", 5) == 0 && m->url_len == 0) {
			m->url_off = (uint32_t)m->text_len;
			if (kn_http_msg_text(m, (const char *)value, valuelen) != 0)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			m->url_len = (uint32_t)valuelen;
		}
		return 0;
	}
	if (kn_http_msg_begin_header(m) != 0 ||
	    kn_http_msg_text(m, (const char *)name, namelen) != 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
	struct kn_http_hoff *h = &m->hoff[m->nhdr - 1];
	h->name_len = (uint32_t)namelen;
	h->value_off = (uint32_t)m->text_len;
	if (kn_http_msg_text(m, (const char *)value, valuelen) != 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	h->value_len = (uint32_t)valuelen;
	return 0;
}

static void dispatch(struct kn_http_conn *c, struct kn_h2_stream *st)
{
	memset(&st->resp, 0, sizeof st->resp);
	kn_http_msg_dispatch(c->cfg, &st->msg, &st->resp);
	respond(c, st);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct kn_http_conn *c = user;
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	struct kn_h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (!st || st->responded)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		st->headers_done = 1;
		const char *reason = NULL;
		int status = kn_http_msg_headers_done(c->cfg, &st->msg, &reason);
		if (status) {
			refuse(c, st, status, reason);
			return 0;
		}
	}
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
		dispatch(c, st);
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *user)
{
	(void)flags;
	struct kn_http_conn *c = user;
	struct kn_h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
	if (!st || st->responded || !st->msg.resolved)
		return 0;
	const char *why = NULL;
	int status = kn_http_msg_body(c->cfg, &st->msg, data, len, &why);
	if (status)
		refuse(c, st, status, why);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
	(void)code;
	struct kn_http_conn *c = user;
	struct kn_h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
	if (st) {
		nghttp2_session_set_stream_user_data(s, id, NULL);
		if (st->prev)
			st->prev->next = st->next;
		else
			c->h2_list = st->next;
		if (st->next)
			st->next->prev = st->prev;
		stream_free(st);
		c->h2_streams--;
		c->idle_since_ns = kn_now_ns();
	}
	return 0;
}

/* The oldest stream still being received decides (see kn_http_conn_phase);
 * O(streams), at most KN_H2_MAX_STREAMS, once per timer tick. */
enum kn_http_phase kn_http_h2_phase(const struct kn_http_conn *c, uint64_t *since_ns)
{
	const struct kn_h2_stream *oldest = NULL;
	for (const struct kn_h2_stream *st = c->h2_list; st; st = st->next)
		if (!st->responded && (!oldest || st->start_ns < oldest->start_ns))
			oldest = st;
	if (!oldest) {
		*since_ns = c->idle_since_ns;
		return KN_HTTP_PHASE_IDLE;
	}
	*since_ns = oldest->start_ns;
	return oldest->headers_done ? KN_HTTP_PHASE_BODY : KN_HTTP_PHASE_HEADERS;
}

int kn_http_h2_start(struct kn_http_conn *c)
{
	nghttp2_session_callbacks *cbs = NULL;
	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return -1;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	c->idle_since_ns = kn_now_ns();
	int rv = nghttp2_session_server_new(&c->h2, cbs, c);
	nghttp2_session_callbacks_del(cbs);
	if (rv != 0) {
		c->h2 = NULL;
		return -1;
	}
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, KN_H2_MAX_STREAMS},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20},
	};
	if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2) != 0)
		return -1;
	/* a larger connection window too, so bodies need fewer round trips */
	nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 4 << 20);
	return 0;
}

void kn_http_h2_feed(struct kn_http_conn *c, const uint8_t *data, size_t len)
{
	if (!c->h2)
		return;
	ssize_t r = nghttp2_session_mem_recv(c->h2, data, len);
	if (r < 0) {
		KN_HTTP_COUNT(c->cfg, bad_requests);
		kn_http_h2_pump(c); /* nghttp2 queued a GOAWAY; send it, then close */
		c->close_after = 1;
	}
}

void kn_http_h2_pump(struct kn_http_conn *c)
{
	if (!c->h2)
		return;
	for (;;) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(c->h2, &p);
		if (n <= 0) {
			if (n < 0)
				c->close_after = 1;
			return;
		}
		if (kn_http_buf_append(&c->out, p, (size_t)n) != 0) {
			c->close_after = 1;
			return;
		}
	}
}

int kn_http_h2_done(const struct kn_http_conn *c)
{
	return !c->h2 || (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2));
}

void kn_http_h2_goaway(struct kn_http_conn *c)
{
	if (!c->h2)
		return;
	int32_t last = nghttp2_session_get_last_proc_stream_id(c->h2);
	nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
}

void kn_http_h2_free(struct kn_http_conn *c)
{
	if (!c->h2)
		return;
	/* nghttp2_session_del does not call on_stream_close: free streams here */
	nghttp2_session_del(c->h2);
	while (c->h2_list) {
		struct kn_h2_stream *st = c->h2_list;
		c->h2_list = st->next;
		stream_free(st);
	}
	c->h2_streams = 0;
	c->h2 = NULL;
}
