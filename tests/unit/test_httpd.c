/* SPDX-License-Identifier: Apache-2.0
 * Tests for kn_httpd over real sockets on 127.0.0.1 (ephemeral ports): keep-
 * alive, chunked and pipelined HTTP/1.1, malformed requests, size limits
 * before and after decompression, idle timeout, connection limit, HTTP/2
 * prior knowledge (libcurl, several streams on one connection) and shutdown
 * with a connection open. Every wait is on a socket with a generous receive
 * timeout, never a sleep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <curl/curl.h>
#include <nghttp2/nghttp2.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#include "collector/core/kn_clock.h"
#include "collector/http/kn_httpd.h"

/* ---- server side ---- */

static void handler(void *ctx, const struct kn_http_req *req, struct kn_http_resp *resp)
{
	(void)ctx;
	char head[256];
	int n = snprintf(head, sizeof head, "%s %s q=%s h2=%d wire=%zu len=%zu\n", req->method,
			 req->path, req->query, req->http2, req->wire_body_len, req->body_len);
	resp->status = strcmp(req->path, "/teapot") == 0 ? 418 : 200;
	resp->content_type = "text/plain";
	resp->body = malloc((size_t)n + req->body_len);
	memcpy(resp->body, head, (size_t)n);
	memcpy(resp->body + n, req->body, req->body_len);
	resp->body_len = (size_t)n + req->body_len;
	resp->body_free = 1;
	size_t vl;
	const char *v = kn_http_req_header(req, "x-echo", &vl);
	if (v) {
		char buf[64];
		snprintf(buf, sizeof buf, "%.*s", (int)vl, v);
		kn_http_resp_header(resp, "X-Echo", buf);
	}
}

static int precheck(void *ctx, const struct kn_http_req *req)
{
	(void)ctx;
	return strcmp(req->path, "/forbidden") == 0 ? 404 : 0;
}

static int refused_count;
static char last_reason[64];

static void on_refused(void *ctx, const struct kn_http_req *req, const char *reason,
		       struct kn_http_resp *resp)
{
	(void)ctx;
	(void)req;
	(void)resp;
	__atomic_fetch_add(&refused_count, 1, __ATOMIC_RELAXED);
	snprintf(last_reason, sizeof last_reason, "%s", reason);
}

static struct kn_httpd *start_server(size_t max_body, uint64_t idle_ns, uint32_t max_conns)
{
	struct kn_httpd_opts o = {
		.endpoint = "127.0.0.1:0",
		.name = "test",
		.threads = 2,
		.max_body = max_body,
		.decompress = 1,
		.enable_h2c = 1,
		.idle_timeout_ns = idle_ns,
		.max_connections = max_conns,
		.refused = on_refused,
	};
	struct kn_err err;
	struct kn_httpd *s = kn_httpd_create(&o, handler, precheck, NULL, &err);
	assert_non_null(s);
	assert_int_equal(kn_httpd_start(s, &err), KN_OK);
	assert_true(kn_httpd_port(s) != 0);
	return s;
}

/* ---- raw client ---- */

struct client {
	int fd;
	char buf[1 << 20];
	size_t len;
};

struct resp {
	int status;
	char headers[4096];
	char *body;
	size_t body_len;
};

static struct client *client_open(uint16_t port)
{
	struct client *c = calloc(1, sizeof *c);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	struct timeval tv = {.tv_sec = 20};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
	return c;
}

static void client_close(struct client *c)
{
	close(c->fd);
	free(c);
}

static void client_send(struct client *c, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void client_sends(struct client *c, const char *s)
{
	client_send(c, s, strlen(s));
}

/* Reads until `need` bytes are buffered; 0 on EOF/timeout. */
static int fill(struct client *c, size_t need)
{
	while (c->len < need) {
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
		if (n <= 0)
			return 0;
		c->len += (size_t)n;
	}
	return 1;
}

/* 1 when the server closed the connection (EOF) with nothing more to read. */
static int client_eof(struct client *c)
{
	if (c->len)
		return 0;
	char b[64];
	ssize_t n = recv(c->fd, b, sizeof b, 0);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static int read_resp(struct client *c, struct resp *r)
{
	memset(r, 0, sizeof *r);
	char *end;
	for (;;) {
		c->buf[c->len] = '\0';
		end = c->len ? strstr(c->buf, "\r\n\r\n") : NULL;
		if (end)
			break;
		if (!fill(c, c->len + 1))
			return 0;
	}
	size_t hlen = (size_t)(end - c->buf) + 4;
	assert_true(hlen < sizeof r->headers);
	memcpy(r->headers, c->buf, hlen);
	r->headers[hlen] = '\0';
	assert_int_equal(sscanf(r->headers, "HTTP/1.1 %d", &r->status), 1);
	const char *cl = strcasestr(r->headers, "\r\nContent-Length: ");
	size_t blen = cl ? strtoul(cl + 18, NULL, 10) : 0;
	if (!fill(c, hlen + blen))
		return 0;
	r->body = malloc(blen + 1);
	memcpy(r->body, c->buf + hlen, blen);
	r->body[blen] = '\0';
	r->body_len = blen;
	memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
	c->len -= hlen + blen;
	if (r->status == 100) { /* interim: the real answer follows */
		free(r->body);
		return read_resp(c, r);
	}
	return 1;
}

static void post(struct client *c, const char *path, const char *body)
{
	char req[4096];
	snprintf(req, sizeof req, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s", path,
		 strlen(body), body);
	client_sends(c, req);
}

/* ---- tests ---- */

static void test_keepalive(void **state)
{
	(void)state;
	struct kn_httpd *s = start_server(0, 0, 0);
	struct client *c = client_open(kn_httpd_port(s));
	for (int i = 0; i < 3; i++) {
		char body[32];
		snprintf(body, sizeof body, "hello %d", i);
		post(c, "/a/b?x=1", body);
		struct resp r;
		assert_true(read_resp(c, &r));
		assert_int_equal(r.status, 200);
		assert_non_null(strstr(r.headers, "Content-Type: text/plain"));
		assert_null(strstr(r.headers, "Connection: close"));
		char want[128];
		snprintf(want, sizeof want, "POST /a/b q=x=1 h2=0 wire=%zu len=%zu\n%s", strlen(body),
			 strlen(body), body);
		assert_string_equal(r.body, want);
		free(r.body);
	}
	/* a GET with a custom header and a non-200 status */
	client_sends(c, "GET /teapot HTTP/1.1\r\nHost: x\r\nX-Echo:  abc \r\n\r\n");
	struct resp r;
	assert_true(read_resp(c, &r));
	assert_int_equal(r.status, 418);
	assert_non_null(strstr(r.headers, "X-Echo: abc\r\n"));
	free(r.body);
	/* Connection: close is honoured */
	client_sends(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_true(read_resp(c, &r));
	assert_non_null(strstr(r.headers, "Connection: close"));
	free(r.body);
	assert_true(client_eof(c));
	client_close(c);
	struct kn_httpd_stats st;
	kn_httpd_stats(s, &st);
	assert_int_equal(st.connections_accepted, 1);
	assert_int_equal(st.requests, 5);
	kn_httpd_shutdown(s, kn_now_ns() + KN_NS_PER_SEC);
	kn_httpd_destroy(s);
}

static void test_chunked_and_pipelined(void **state)
{
	(void)state;
	struct kn_httpd *s = start_server(0, 0, 0);
	struct client *c = client_open(kn_httpd_port(s));
	/* a chunked body, sent in awkward pieces, then two pipelined requests */
	const char *parts[] = {"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
			       "lo\r\n6\r\n world\r\n0\r\n\r\n"
			       "POST /p1 HTTP/1.1\r\nContent-Length: 3\r\n\r\none"
			       "GET /p2 HTTP/1.1\r\n\r\n"};
	client_sends(c, parts[0]);
	client_sends(c, parts[1]);
	struct resp r;
	assert_true(read_resp(c, &r));
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "POST /c q= h2=0 wire=11 len=11\nhello world");
	free(r.body);
	assert_true(read_resp(c, &r));
	assert_string_equal(r.body, "POST /p1 q= h2=0 wire=3 len=3\none");
	free(r.body);
	assert_true(read_resp(c, &r));
	assert_string_equal(r.body, "GET /p2 q= h2=0 wire=0 len=0\n");
	free(r.body);
	/* Expect: 100-continue gets the interim answer before the body is sent */
	client_sends(c, "POST /e HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
	assert_true(fill(c, 25));
	assert_memory_equal(c->buf, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	client_sends(c, "ok");
	assert_true(read_resp(c, &r));
	assert_string_equal(r.body, "POST /e q= h2=0 wire=2 len=2\nok");
	free(r.body);
	client_close(c);
	kn_httpd_destroy(s);
}

static void test_malformed(void **state)
{
	(void)state;
	struct kn_httpd *s = start_server(0, 0, 0);
	struct client *good = client_open(kn_httpd_port(s));
	static const char *bad[] = {
		"GARBAGE\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct client *c = client_open(kn_httpd_port(s));
		client_sends(c, bad[i]);
		struct resp r;
		assert_true(read_resp(c, &r));
		assert_int_equal(r.status, 400);
		assert_non_null(strstr(r.headers, "Connection: close"));
		free(r.body);
		assert_true(client_eof(c));
		client_close(c);
	}
	/* too many headers */
	/* One send: the server answers 431 and closes as soon as it has read
	 * too many headers, so a client still sending line by line could hit a
	 * reset before reading the answer. */
	struct client *c = client_open(kn_httpd_port(s));
	char many[1024];
	size_t ml = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 70; i++)
		ml += (size_t)snprintf(many + ml, sizeof many - ml, "X-A: b\r\n");
	ml += (size_t)snprintf(many + ml, sizeof many - ml, "\r\n");
	client_send(c, many, ml);
	struct resp r;
	assert_true(read_resp(c, &r));
	assert_int_equal(r.status, 431);
	free(r.body);
	client_close(c);
	/* the connection opened before is still served */
	post(good, "/ok", "x");
	assert_true(read_resp(good, &r));
	assert_int_equal(r.status, 200);
	free(r.body);
	client_close(good);
	struct kn_httpd_stats st;
	kn_httpd_stats(s, &st);
	assert_int_equal(st.bad_requests, 5);
	kn_httpd_destroy(s);
}

static void test_limits(void **state)
{
	(void)state;
	struct kn_httpd *s = start_server(1024, 0, 0);
	refused_count = 0;
	/* Content-Length over the limit: 413 before any body byte is sent */
	struct client *c = client_open(kn_httpd_port(s));
	client_sends(c, "POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n");
	struct resp r;
	assert_true(read_resp(c, &r));
	assert_int_equal(r.status, 413);
	free(r.body);
	assert_true(client_eof(c));
	client_close(c);
	assert_string_equal(last_reason, "too_large");
	/* chunked body growing over the limit */
	c = client_open(kn_httpd_port(s));
	client_sends(c, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	char chunk[600];
	memset(chunk, 'x', sizeof chunk);
	for (int i = 0; i < 2; i++) {
		client_sends(c, "258\r\n");
		client_send(c, chunk, sizeof chunk);
		client_sends(c, "\r\n");
	}
	assert_true(read_resp(c, &r));
	assert_int_equal(r.status, 413);
	free(r.body);
	client_close(c);
	/* precheck refusal */
	c = client_open(kn_httpd_port(s));
	post(c, "/forbidden", "abc");
	assert_true(read_resp(c, &r));
	assert_int_equal(r.status, 404);
	free(r.body);
	client_close(c);
	assert_string_equal(last_reason, "not_found");
	/* gzip: fine, too large after inflation, corrupt, unknown encoding */
	uint8_t plain[2000], gz[4096];
	memset(plain, 'z', sizeof plain);
	uLongf glen;
	struct {
		size_t n;
		int status;
	} cases[] = {{1000, 200}, {2000, 413}};
	for (size_t i = 0; i < 2; i++) {
		z_stream z;
		memset(&z, 0, sizeof z);
		deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
		z.next_in = plain;
		z.avail_in = (uInt)cases[i].n;
		z.next_out = gz;
		z.avail_out = sizeof gz;
		assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
		glen = sizeof gz - z.avail_out;
		deflateEnd(&z);
		c = client_open(kn_httpd_port(s));
		char head[256];
		snprintf(head, sizeof head,
			 "POST /gz HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: %lu\r\n\r\n",
			 (unsigned long)glen);
		client_sends(c, head);
		client_send(c, gz, glen);
		assert_true(read_resp(c, &r));
		assert_int_equal(r.status, cases[i].status);
		if (r.status == 200) {
			char want[128];
			snprintf(want, sizeof want, "POST /gz q= h2=0 wire=%lu len=1000\n", (unsigned long)glen);
			assert_memory_equal(r.body, want, strlen(want));
		}
		free(r.body);
		client_close(c);
	}
	c = client_open(kn_httpd_port(s));
	client_sends(c, "POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nabcd");
	assert_true(read_resp(c, &r));
	assert_int_equal(r.status, 400);
	free(r.body);
	assert_string_equal(last_reason, "bad_encoding");
	client_sends(c, "POST / HTTP/1.1\r\nContent-Encoding: br\r\nContent-Length: 4\r\n\r\nabcd");
	assert_true(read_resp(c, &r));
	assert_int_equal(r.status, 415);
	free(r.body);
	client_close(c);
	assert_string_equal(last_reason, "unsupported_encoding");
	struct kn_httpd_stats st;
	kn_httpd_stats(s, &st);
	assert_int_equal(st.too_large, 3);
	assert_int_equal(st.decompress_errors, 1);
	assert_int_equal(refused_count, 6);
	kn_httpd_destroy(s);
}

static void test_idle_timeout(void **state)
{
	(void)state;
	struct kn_httpd *s = start_server(0, 100 * KN_NS_PER_MS, 0);
	struct client *c = client_open(kn_httpd_port(s));
	post(c, "/", "x");
	struct resp r;
	assert_true(read_resp(c, &r));
	free(r.body);
	/* nothing more is sent: the server closes the idle connection (the
	 * client's receive timeout, 20 s, bounds the wait) */
	assert_true(client_eof(c));
	client_close(c);
	struct kn_httpd_stats st;
	kn_httpd_stats(s, &st);
	assert_int_equal(st.idle_closed, 1);
	kn_httpd_destroy(s);
}

static void test_max_connections(void **state)
{
	(void)state;
	struct kn_httpd *s = start_server(0, 0, 2);
	struct client *a = client_open(kn_httpd_port(s)), *b = client_open(kn_httpd_port(s));
	struct resp r;
	post(a, "/", "a");
	assert_true(read_resp(a, &r));
	free(r.body);
	post(b, "/", "b");
	assert_true(read_resp(b, &r));
	free(r.body);
	struct client *x = client_open(kn_httpd_port(s));
	assert_true(client_eof(x));
	client_close(x);
	post(a, "/", "a");
	assert_true(read_resp(a, &r));
	assert_int_equal(r.status, 200);
	free(r.body);
	struct kn_httpd_stats st;
	kn_httpd_stats(s, &st);
	assert_int_equal(st.connections_refused, 1);
	assert_int_equal(st.connections_open, 2);
	client_close(a);
	client_close(b);
	kn_httpd_destroy(s);
}

/* ---- HTTP/2 with libcurl ---- */

struct sink {
	char data[8192];
	size_t len;
};

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
	struct sink *s = ud;
	size_t len = sz * n;
	if (len > sizeof s->data - 1 - s->len)
		len = sizeof s->data - 1 - s->len;
	memcpy(s->data + s->len, p, len);
	s->len += len;
	s->data[s->len] = '\0';
	return sz * n;
}

/* A small nghttp2 client: N concurrent streams on one connection. (libcurl
 * 7.88 cannot reuse prior-knowledge connections: curl issue 10634.) */
struct h2req {
	const char *path, *body;
	size_t body_len, sent;
	int32_t id;
	int status, closed;
	struct sink out, hdr;
};

static ssize_t h2c_send(nghttp2_session *s, const uint8_t *d, size_t len, int flags, void *ud)
{
	(void)s;
	(void)flags;
	struct client *c = ud;
	client_send(c, d, len);
	return (ssize_t)len;
}

static ssize_t h2c_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
			     uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	(void)s;
	(void)id;
	(void)ud;
	struct h2req *r = src->ptr;
	size_t n = r->body_len - r->sent < len ? r->body_len - r->sent : len;
	memcpy(buf, r->body + r->sent, n);
	r->sent += n;
	if (r->sent == r->body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int h2c_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
			 size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	(void)flags;
	(void)ud;
	struct h2req *r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (!r)
		return 0;
	if (nl == 7 && memcmp(name, ":status", 7) == 0)
		r->status = atoi((const char *)value);
	char line[300];
	int n = snprintf(line, sizeof line, "%.*s: %.*s\n", (int)nl, name, (int)vl, value);
	on_data(line, 1, (size_t)n, &r->hdr);
	return 0;
}

static int h2c_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d,
		       size_t len, void *ud)
{
	(void)flags;
	(void)ud;
	struct h2req *r = nghttp2_session_get_stream_user_data(s, id);
	if (r)
		on_data((char *)(uintptr_t)d, 1, len, &r->out);
	return 0;
}

static int h2c_on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	(void)code;
	(void)ud;
	struct h2req *r = nghttp2_session_get_stream_user_data(s, id);
	if (r)
		r->closed = 1;
	return 0;
}

static void h2_run(uint16_t port, struct h2req *reqs, size_t n)
{
	struct client *c = client_open(port);
	nghttp2_session_callbacks *cb;
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_send_callback(cb, h2c_send);
	nghttp2_session_callbacks_set_on_header_callback(cb, h2c_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2c_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2c_on_close);
	nghttp2_session *s;
	assert_int_equal(nghttp2_session_client_new(&s, cb, c), 0);
	nghttp2_session_callbacks_del(cb);
	nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
	for (size_t i = 0; i < n; i++) {
		char auth[32];
		snprintf(auth, sizeof auth, "127.0.0.1:%u", port);
		nghttp2_nv nv[] = {
			{(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
			{(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
			{(uint8_t *)":authority", (uint8_t *)auth, 10, strlen(auth), 0},
			{(uint8_t *)":path", (uint8_t *)reqs[i].path, 5, strlen(reqs[i].path), 0},
			{(uint8_t *)"x-echo", (uint8_t *)"h2", 6, 2, 0},
		};
		nghttp2_data_provider dp = {.source.ptr = &reqs[i], .read_callback = h2c_read_body};
		reqs[i].id = nghttp2_submit_request(s, NULL, nv, 5, &dp, &reqs[i]);
		assert_true(reqs[i].id > 0);
	}
	for (;;) {
		assert_int_equal(nghttp2_session_send(s), 0);
		size_t done = 0;
		for (size_t i = 0; i < n; i++)
			done += reqs[i].closed;
		if (done == n)
			break;
		uint8_t buf[16384];
		ssize_t got = recv(c->fd, buf, sizeof buf, 0);
		assert_true(got > 0); /* bounded by the 20 s receive timeout */
		assert_int_equal(nghttp2_session_mem_recv(s, buf, (size_t)got), got);
	}
	nghttp2_session_del(s);
	client_close(c);
}

static void test_h2c(void **state)
{
	(void)state;
	struct kn_httpd *s = start_server(1 << 20, 0, 0);
	enum { N = 5 };
	struct h2req reqs[N];
	memset(reqs, 0, sizeof reqs);
	char paths[N][32], bodies[N][32];
	for (int i = 0; i < N; i++) {
		snprintf(paths[i], sizeof paths[i], "/s%d?i=%d", i, i);
		snprintf(bodies[i], sizeof bodies[i], "body-%d", i);
		reqs[i].path = paths[i];
		reqs[i].body = bodies[i];
		reqs[i].body_len = strlen(bodies[i]);
	}
	/* one refused by the precheck, one over the 1 MiB limit */
	reqs[3].path = "/forbidden";
	char *big = malloc((1 << 20) + 10);
	memset(big, 'b', (1 << 20) + 10);
	reqs[4].body = big;
	reqs[4].body_len = (1 << 20) + 10;
	h2_run(kn_httpd_port(s), reqs, N);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(reqs[i].status, 200);
		char want[128];
		snprintf(want, sizeof want, "POST /s%d q=i=%d h2=1 wire=6 len=6\nbody-%d", i, i, i);
		assert_string_equal(reqs[i].out.data, want);
		assert_non_null(strstr(reqs[i].hdr.data, "x-echo: h2\n"));
		assert_non_null(strstr(reqs[i].hdr.data, "content-type: text/plain\n"));
	}
	assert_int_equal(reqs[3].status, 404);
	assert_int_equal(reqs[4].status, 413);
	free(big);
	struct kn_httpd_stats st;
	kn_httpd_stats(s, &st);
	assert_int_equal(st.connections_accepted, 1); /* all streams on one connection */
	assert_int_equal(st.requests, N);
	assert_int_equal(st.too_large, 1);

	/* libcurl with prior knowledge, one request per connection */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *e = curl_easy_init();
	struct sink out;
	memset(&out, 0, sizeof out);
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/curl", kn_httpd_port(s));
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, "hi");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	long code = 0, ver = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &ver);
	assert_int_equal(code, 200);
	assert_int_equal(ver, CURL_HTTP_VERSION_2_0);
	assert_string_equal(out.data, "POST /curl q= h2=1 wire=2 len=2\nhi");
	curl_easy_cleanup(e);
	curl_global_cleanup();
	kn_httpd_destroy(s);
}

static void test_shutdown_with_open_connection(void **state)
{
	(void)state;
	struct kn_httpd *s = start_server(0, 0, 0);
	struct client *idle = client_open(kn_httpd_port(s));
	struct client *partial = client_open(kn_httpd_port(s));
	struct resp r;
	post(idle, "/", "x");
	assert_true(read_resp(idle, &r));
	free(r.body);
	/* a request whose body never completes: cut at the deadline */
	client_sends(partial, "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
	post(idle, "/", "y"); /* make sure both are being served */
	assert_true(read_resp(idle, &r));
	free(r.body);
	uint64_t t0 = kn_now_ns();
	kn_httpd_shutdown(s, t0 + 200 * KN_NS_PER_MS);
	assert_true(client_eof(idle));
	assert_true(client_eof(partial));
	kn_httpd_shutdown(s, 0); /* twice is fine */
	struct kn_httpd_stats st;
	kn_httpd_stats(s, &st);
	assert_int_equal(st.connections_open, 0);
	/* no longer accepting */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(kn_httpd_port(s))};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_not_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	close(fd);
	client_close(idle);
	client_close(partial);
	kn_httpd_destroy(s);
}

/* ---- read timeouts (slow clients) ---- */

static struct kn_httpd *start_timed(uint64_t header_ns, uint64_t read_ns, uint64_t idle_ns)
{
	struct kn_httpd_opts o = {
		.endpoint = "127.0.0.1:0",
		.name = "timed",
		.threads = 2,
		.decompress = 1,
		.enable_h2c = 1,
		.read_header_timeout_ns = header_ns,
		.read_timeout_ns = read_ns,
		.idle_timeout_ns = idle_ns,
		.refused = on_refused,
	};
	struct kn_err err;
	struct kn_httpd *s = kn_httpd_create(&o, handler, precheck, NULL, &err);
	assert_non_null(s);
	assert_int_equal(kn_httpd_start(s, &err), KN_OK);
	return s;
}

/* Waits up to ms for the server to close the connection; 1 if it did. A
 * wait on the socket, returning as soon as the close arrives. */
static int closed_within(struct client *c, int ms)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	int r = poll(&p, 1, ms);
	if (r <= 0)
		return 0;
	return client_eof(c);
}

/* Sends `bytes` one at a time, one every 50 ms (the pacing of a slow
 * client), until the server closes the connection (1) or limit_ms passes or
 * the bytes run out (0). */
static int trickle_until_closed(struct client *c, const char *bytes, int limit_ms)
{
	uint64_t end = kn_now_ns() + (uint64_t)limit_ms * KN_NS_PER_MS;
	for (size_t i = 0; bytes[i] && kn_now_ns() < end; i++) {
		if (send(c->fd, bytes + i, 1, MSG_NOSIGNAL) != 1)
			return 1; /* reset by the server's close */
		if (closed_within(c, 50))
			return 1;
	}
	return 0;
}

static void test_read_timeouts(void **state)
{
	(void)state;
	/* idle_timeout (20 s) is longer than every wait below, so each close
	 * seen here comes from a read timeout, and the counters say which */
	struct kn_httpd *s = start_timed(500 * KN_NS_PER_MS, 1000 * KN_NS_PER_MS, 20 * KN_NS_PER_SEC);
	uint16_t port = kn_httpd_port(s);
	char slow[400];
	memset(slow, 'a', sizeof slow - 1);
	slow[sizeof slow - 1] = '\0';
	struct kn_httpd_stats st;

	/* headers a byte at a time: the bytes keep coming, the header timeout
	 * still closes it (the idle timeout alone never would) */
	struct client *a = client_open(port);
	client_sends(a, "POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
	assert_true(trickle_until_closed(a, slow, 10000));
	client_close(a);
	kn_httpd_stats(s, &st);
	assert_int_equal(st.read_header_timeouts, 1);
	assert_int_equal(st.read_timeouts, 0);

	/* headers whole, the body a byte at a time: read_timeout */
	struct client *b = client_open(port);
	client_sends(b, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 399\r\n\r\n");
	assert_true(trickle_until_closed(b, slow, 10000));
	client_close(b);
	kn_httpd_stats(s, &st);
	assert_int_equal(st.read_header_timeouts, 1);
	assert_int_equal(st.read_timeouts, 1);

	/* a client that connects and sends nothing: timed from the accept */
	struct client *n = client_open(port);
	assert_true(closed_within(n, 10000));
	client_close(n);
	kn_httpd_stats(s, &st);
	assert_int_equal(st.read_header_timeouts, 2);

	/* an HTTP/2 preface cut short is a request that never gets its headers */
	struct client *p = client_open(port);
	client_sends(p, "PRI * HTTP/2.0\r\n");
	assert_true(closed_within(p, 10000));
	client_close(p);
	kn_httpd_stats(s, &st);
	assert_int_equal(st.read_header_timeouts, 3);

	/* keep-alive: waiting between requests longer than both read timeouts
	 * is idle time, not a slow request; the next one is timed from its
	 * first byte and answered */
	struct client *k = client_open(port);
	struct resp r;
	post(k, "/", "one");
	assert_true(read_resp(k, &r));
	assert_int_equal(r.status, 200);
	free(r.body);
	assert_false(closed_within(k, 1500));
	post(k, "/", "two");
	assert_true(read_resp(k, &r));
	assert_int_equal(r.status, 200);
	free(r.body);
	client_close(k);

	/* HTTP/2: a stream whose body never ends is closed by read_timeout */
	struct client *h = client_open(port);
	nghttp2_session_callbacks *cb;
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_send_callback(cb, h2c_send);
	nghttp2_session *hs;
	assert_int_equal(nghttp2_session_client_new(&hs, cb, h), 0);
	nghttp2_session_callbacks_del(cb);
	nghttp2_submit_settings(hs, NGHTTP2_FLAG_NONE, NULL, 0);
	nghttp2_nv nv[] = {
		{(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
		{(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
		{(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
		{(uint8_t *)":path", (uint8_t *)"/", 5, 1, 0},
	};
	/* no data provider and no END_STREAM: headers only, the body pending */
	assert_true(nghttp2_submit_headers(hs, NGHTTP2_FLAG_NONE, -1, NULL, nv, 4, NULL) > 0);
	assert_int_equal(nghttp2_session_send(hs), 0);
	uint64_t t0 = kn_now_ns();
	int closed = 0;
	while (!closed && kn_now_ns() - t0 < 10 * KN_NS_PER_SEC) {
		uint8_t buf[4096];
		ssize_t got = recv(h->fd, buf, sizeof buf, 0); /* SETTINGS, its ACK, then EOF */
		closed = got == 0 || (got < 0 && errno == ECONNRESET);
		assert_true(closed || got > 0);
	}
	assert_true(closed);
	nghttp2_session_del(hs);
	client_close(h);
	kn_httpd_stats(s, &st);
	assert_int_equal(st.read_timeouts, 2);
	assert_int_equal(st.read_header_timeouts, 3);
	assert_int_equal(st.idle_closed, 0);
	/* requests whose headers arrived: the slow body, the two keep-alive
	 * ones and the HTTP/2 stream */
	assert_int_equal(st.requests, 4);
	kn_httpd_destroy(s);
}

static void test_create_errors(void **state)
{
	(void)state;
	struct kn_err err;
	struct kn_httpd_opts o = {.endpoint = "nohostport", .name = "t", .threads = 1};
	assert_null(kn_httpd_create(&o, handler, NULL, NULL, &err));
	assert_non_null(strstr(err.msg, "endpoint"));
	o.endpoint = "127.0.0.1:99999";
	assert_null(kn_httpd_create(&o, handler, NULL, NULL, &err));
	o.endpoint = "127.0.0.1:0";
	o.threads = 0;
	assert_null(kn_httpd_create(&o, handler, NULL, NULL, &err));
	assert_non_null(strstr(err.msg, "threads"));
	kn_httpd_destroy(NULL);
	o.threads = 1;
	struct kn_httpd *s = kn_httpd_create(&o, handler, NULL, NULL, &err);
	kn_httpd_shutdown(s, 0); /* before start */
	kn_httpd_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_chunked_and_pipelined),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_max_connections),
		cmocka_unit_test(test_h2c),
		cmocka_unit_test(test_shutdown_with_open_connection),
		cmocka_unit_test(test_read_timeouts),
		cmocka_unit_test(test_create_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
