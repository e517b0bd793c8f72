/* SPDX-License-Identifier: Apache-2.0
 * Tests for kn_httpd's TLS over real sockets on 127.0.0.1: HTTP/1.1 over
 * TLS (small and multi-record bodies), ALPN (h2, http/1.1, neither), an h2
 * request through curl, mutual TLS (no certificate and another CA's
 * certificate refused, the right one answered), cleartext to the TLS port,
 * the handshake under idle_timeout, start errors naming the key, and the
 * certificate reload (new connections get the new certificate, an
 * established keep-alive connection keeps working, a bad file keeps the old
 * context). Certificates are made at test time with the openssl command
 * (kn_test_certs).
 * Waits are on sockets with timeouts or polls of a real condition with a
 * deadline. */
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
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "collector/core/kn_clock.h"
#include "collector/http/kn_httpd.h"
#include "kn_test_certs.h"

#define SERIAL_SRV KN_TEST_CERT_SERIAL_SERVER
#define SERIAL_SRV2 KN_TEST_CERT_SERIAL_SERVER2

static int group_setup(void **state)
{
	(void)state;
	return kn_test_certs_make("kn_httpd_tls_");
}

static int group_teardown(void **state)
{
	(void)state;
	return kn_test_certs_remove();
}

/* ---- server side ---- */

static void handler(void *ctx, const struct kn_http_req *req, struct kn_http_resp *resp)
{
	(void)ctx;
	char head[256];
	int n = snprintf(head, sizeof head, "%s %s h2=%d len=%zu\n", req->method, req->path,
			 req->http2, req->body_len);
	resp->status = 200;
	resp->content_type = "text/plain";
	resp->body = malloc((size_t)n + req->body_len);
	memcpy(resp->body, head, (size_t)n);
	if (req->body_len)
		memcpy(resp->body + n, req->body, req->body_len);
	resp->body_len = (size_t)n + req->body_len;
	resp->body_free = 1;
}

static struct kn_tls_server_cfg tls_cfg(const char *cert, const char *key, const char *client_ca,
					uint64_t reload_ns)
{
	struct kn_tls_server_cfg c = {
		.cert_file = (char *)cert,
		.key_file = (char *)key,
		.client_ca_file = (char *)(client_ca ? client_ca : ""),
		.min_version = (char *)"1.2",
		.max_version = (char *)"",
		.reload_interval_ns = reload_ns,
		.enabled = 1,
	};
	return c;
}

static struct kn_httpd *start_tls(const struct kn_tls_server_cfg *tls, uint64_t idle_ns)
{
	struct kn_httpd_opts o = {
		.endpoint = "127.0.0.1:0",
		.name = "test",
		.threads = 2,
		.max_body = 8u << 20,
		.decompress = 1,
		.enable_h2c = 1,
		.idle_timeout_ns = idle_ns,
		.tls = tls,
	};
	struct kn_err err = {{0}};
	struct kn_httpd *s = kn_httpd_create(&o, handler, NULL, NULL, &err);
	assert_non_null(s);
	if (kn_httpd_start(s, &err) != KN_OK)
		fail_msg("start: %s", err.msg);
	assert_true(kn_httpd_port(s) != 0);
	return s;
}

/* ---- client side ---- */

static int tcp_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

struct tc {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char *buf;
	size_t len, cap;
};

static void tc_close(struct tc *c)
{
	if (!c)
		return;
	if (c->ssl)
		SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	close(c->fd);
	free(c->buf);
	free(c);
}

/* A TLS client connection verifying the server against ca.crt (and its name
 * "localhost"); with a client certificate when cert is set; offering the
 * ALPN list when set. NULL when the handshake fails. */
static struct tc *tc_open(uint16_t port, const char *cert, const char *key,
			  const unsigned char *alpn, unsigned alpn_len)
{
	struct tc *c = calloc(1, sizeof *c);
	c->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(c->ctx);
	assert_int_equal(SSL_CTX_load_verify_locations(c->ctx, kn_test_cert_path("ca.crt"), NULL), 1);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	if (cert) {
		assert_int_equal(SSL_CTX_use_certificate_file(c->ctx, cert, SSL_FILETYPE_PEM), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM), 1);
	}
	if (alpn)
		assert_int_equal(SSL_CTX_set_alpn_protos(c->ctx, alpn, alpn_len), 0);
	c->fd = tcp_connect(port);
	c->ssl = SSL_new(c->ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	SSL_set1_host(c->ssl, "localhost");
	if (SSL_connect(c->ssl) != 1) {
		ERR_clear_error();
		tc_close(c);
		return NULL;
	}
	c->cap = 16u << 20;
	c->buf = malloc(c->cap + 1);
	return c;
}

static long tc_serial(struct tc *c)
{
	X509 *x = SSL_get1_peer_certificate(c->ssl);
	assert_non_null(x);
	long v = ASN1_INTEGER_get(X509_get_serialNumber(x));
	X509_free(x);
	return v;
}

static const char *tc_alpn(struct tc *c, char *buf, size_t len)
{
	const unsigned char *p;
	unsigned n;
	SSL_get0_alpn_selected(c->ssl, &p, &n);
	snprintf(buf, len, "%.*s", (int)n, p ? (const char *)p : "");
	return buf;
}

static int tc_fill(struct tc *c, size_t need)
{
	while (c->len < need) {
		int n = SSL_read(c->ssl, c->buf + c->len, (int)(c->cap - c->len));
		if (n <= 0) {
			ERR_clear_error();
			return 0;
		}
		c->len += (size_t)n;
	}
	return 1;
}

/* POSTs body to path; returns the status (-1 when no answer came) and the
 * response body in *out (malloc'd) when out is set. */
static int tc_post(struct tc *c, const char *path, const void *body, size_t blen, char **out,
		   size_t *out_len)
{
	char head[512];
	int hn = snprintf(head, sizeof head,
			  "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
			  "Content-Length: %zu\r\n\r\n", path, blen);
	if (SSL_write(c->ssl, head, hn) != hn) {
		ERR_clear_error();
		return -1;
	}
	if (blen && SSL_write(c->ssl, body, (int)blen) != (int)blen) {
		ERR_clear_error();
		return -1;
	}
	char *end;
	for (;;) {
		c->buf[c->len] = '\0';
		end = c->len ? strstr(c->buf, "\r\n\r\n") : NULL;
		if (end)
			break;
		if (!tc_fill(c, c->len + 1))
			return -1;
	}
	size_t hlen = (size_t)(end - c->buf) + 4;
	int status = 0;
	if (sscanf(c->buf, "HTTP/1.1 %d", &status) != 1)
		return -1;
	const char *cl = strcasestr(c->buf, "\r\nContent-Length: ");
	size_t rl = cl && cl < end ? strtoul(cl + 18, NULL, 10) : 0;
	if (!tc_fill(c, hlen + rl))
		return -1;
	if (out) {
		*out = malloc(rl + 1);
		memcpy(*out, c->buf + hlen, rl);
		(*out)[rl] = '\0';
		*out_len = rl;
	}
	memmove(c->buf, c->buf + hlen + rl, c->len - hlen - rl);
	c->len -= hlen + rl;
	return status;
}

/* 1 when a client with this certificate (or none) gets no HTTP answer: the
 * handshake fails, or (TLS 1.3, where the client finishes first) the
 * server's alert ends the connection before any answer. */
static int refused(uint16_t port, const char *cert, const char *key)
{
	struct tc *c = tc_open(port, cert, key, NULL, 0);
	if (!c)
		return 1;
	int st = tc_post(c, "/x", "hi", 2, NULL, NULL);
	tc_close(c);
	return st < 0;
}

static void nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static uint64_t stat_of(struct kn_httpd *s, size_t off)
{
	struct kn_httpd_stats st;
	kn_httpd_stats(s, &st);
	uint64_t v;
	memcpy(&v, (const char *)&st + off, sizeof v);
	return v;
}

/* Polls a stats field until it reaches want or the deadline passes. */
static int wait_stat(struct kn_httpd *s, size_t off, uint64_t want, int secs)
{
	uint64_t deadline = kn_now_ns() + (uint64_t)secs * KN_NS_PER_SEC;
	while (stat_of(s, off) < want) {
		if (kn_now_ns() > deadline)
			return 0;
		nap_ms(10);
	}
	return 1;
}

#define STAT(f) offsetof(struct kn_httpd_stats, f)

/* ---- tests ---- */

static void test_http1_over_tls(void **state)
{
	(void)state;
	struct kn_tls_server_cfg cfg = tls_cfg(kn_test_cert_path("server.crt"), kn_test_cert_path("server.key"), NULL, 0);
	struct kn_httpd *s = start_tls(&cfg, 0);
	struct tc *c = tc_open(kn_httpd_port(s), NULL, NULL, NULL, 0);
	assert_non_null(c);
	assert_int_equal(tc_serial(c), SERIAL_SRV);
	char *body;
	size_t bl;
	assert_int_equal(tc_post(c, "/one", "hello", 5, &body, &bl), 200);
	assert_string_equal(body, "POST /one h2=0 len=5\nhello");
	free(body);
	/* keep-alive: a second request on the same connection */
	assert_int_equal(tc_post(c, "/two", "", 0, &body, &bl), 200);
	assert_string_equal(body, "POST /two h2=0 len=0\n");
	free(body);
	/* a body of many TLS records both ways (server writes past the socket
	 * buffer: SSL_write retried after WANT_WRITE) */
	size_t big = 3u << 20;
	char *data = malloc(big);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)('a' + i % 26);
	assert_int_equal(tc_post(c, "/big", data, big, &body, &bl), 200);
	const char *hd = "POST /big h2=0 len=3145728\n";
	assert_int_equal(bl, strlen(hd) + big);
	assert_memory_equal(body, hd, strlen(hd));
	assert_memory_equal(body + strlen(hd), data, big);
	free(body);
	free(data);
	tc_close(c);
	kn_httpd_destroy(s);
}

static void test_alpn(void **state)
{
	(void)state;
	struct kn_tls_server_cfg cfg = tls_cfg(kn_test_cert_path("server.crt"), kn_test_cert_path("server.key"), NULL, 0);
	struct kn_httpd *s = start_tls(&cfg, 0);
	uint16_t port = kn_httpd_port(s);
	char a[32];
	static const unsigned char both[] = "\x08http/1.1\x02h2";
	struct tc *c = tc_open(port, NULL, NULL, both, sizeof both - 1);
	assert_non_null(c);
	assert_string_equal(tc_alpn(c, a, sizeof a), "h2"); /* the server's preference */
	tc_close(c);
	static const unsigned char h1[] = "\x08http/1.1";
	c = tc_open(port, NULL, NULL, h1, sizeof h1 - 1);
	assert_non_null(c);
	assert_string_equal(tc_alpn(c, a, sizeof a), "http/1.1");
	assert_int_equal(tc_post(c, "/h1", "x", 1, NULL, NULL), 200);
	tc_close(c);
	/* offering neither: no ALPN, and HTTP/1.1 still served */
	static const unsigned char other[] = "\x06spdy/3" "\x03" "foo";
	c = tc_open(port, NULL, NULL, other, sizeof other - 1);
	assert_non_null(c);
	assert_string_equal(tc_alpn(c, a, sizeof a), "");
	assert_int_equal(tc_post(c, "/none", "x", 1, NULL, NULL), 200);
	tc_close(c);
	kn_httpd_destroy(s);
}

/* Runs curl; returns its output (malloc'd) or NULL when it failed. */
static char *run_curl(const char *args)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "curl -sS --max-time 20 --cacert '%s' %s 2>&1", kn_test_cert_path("ca.crt"),
		 args);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char *out = calloc(1, 65536);
	size_t n = fread(out, 1, 65535, p);
	out[n] = '\0';
	int rc = pclose(p);
	if (rc != 0) {
		fprintf(stderr, "curl failed (%d): %s\n", rc, out);
		free(out);
		return NULL;
	}
	return out;
}

static int have_curl(void)
{
	return system("curl --version >/dev/null 2>&1") == 0;
}

static void test_h2_curl(void **state)
{
	(void)state;
	if (!have_curl())
		skip();
	struct kn_tls_server_cfg cfg = tls_cfg(kn_test_cert_path("server.crt"), kn_test_cert_path("server.key"), NULL, 0);
	struct kn_httpd *s = start_tls(&cfg, 0);
	char args[512];
	snprintf(args, sizeof args,
		 "--http2 -d hello -w '\\nversion=%%{http_version}' https://127.0.0.1:%u/h2path",
		 kn_httpd_port(s));
	char *out = run_curl(args);
	assert_non_null(out);
	assert_non_null(strstr(out, "POST /h2path h2=1 len=5\nhello"));
	assert_non_null(strstr(out, "version=2"));
	free(out);
	snprintf(args, sizeof args,
		 "--http1.1 -d hello -w '\\nversion=%%{http_version}' https://localhost:%u/h1path",
		 kn_httpd_port(s));
	out = run_curl(args);
	assert_non_null(out);
	assert_non_null(strstr(out, "POST /h1path h2=0 len=5\nhello"));
	assert_non_null(strstr(out, "version=1.1"));
	free(out);
	kn_httpd_destroy(s);
}

static void test_mutual_tls(void **state)
{
	(void)state;
	struct kn_tls_server_cfg cfg =
		tls_cfg(kn_test_cert_path("server.crt"), kn_test_cert_path("server.key"), kn_test_cert_path("ca.crt"), 0);
	struct kn_httpd *s = start_tls(&cfg, 0);
	uint16_t port = kn_httpd_port(s);
	assert_true(refused(port, NULL, NULL));
	assert_true(refused(port, kn_test_cert_path("stranger.crt"), kn_test_cert_path("stranger.key")));
	assert_true(wait_stat(s, STAT(tls_handshake_failures), 2, 10));
	struct tc *c = tc_open(port, kn_test_cert_path("client.crt"), kn_test_cert_path("client.key"), NULL, 0);
	assert_non_null(c);
	char *body;
	size_t bl;
	assert_int_equal(tc_post(c, "/mtls", "ok", 2, &body, &bl), 200);
	assert_string_equal(body, "POST /mtls h2=0 len=2\nok");
	free(body);
	tc_close(c);
	if (have_curl()) {
		char args[1024];
		snprintf(args, sizeof args, "--http2 --cert '%s' --key '%s' -d hi https://127.0.0.1:%u/c",
			 kn_test_cert_path("client.crt"), kn_test_cert_path("client.key"), port);
		char *out = run_curl(args);
		assert_non_null(out);
		assert_non_null(strstr(out, "POST /c h2=1 len=2\nhi"));
		free(out);
	}
	kn_httpd_destroy(s);
}

static void test_plaintext_to_tls_port(void **state)
{
	(void)state;
	struct kn_tls_server_cfg cfg = tls_cfg(kn_test_cert_path("server.crt"), kn_test_cert_path("server.key"), NULL, 0);
	struct kn_httpd *s = start_tls(&cfg, 0);
	int fd = tcp_connect(kn_httpd_port(s));
	const char req[] = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi";
	assert_int_equal(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
	char buf[4096];
	size_t got = 0;
	for (;;) { /* until the server closes (or the receive timeout) */
		ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	assert_true(got < 5 || memcmp(buf, "HTTP/", 5) != 0);
	close(fd);
	assert_true(wait_stat(s, STAT(tls_handshake_failures), 1, 10));
	kn_httpd_destroy(s);
}

static void test_handshake_idle_timeout(void **state)
{
	(void)state;
	struct kn_tls_server_cfg cfg = tls_cfg(kn_test_cert_path("server.crt"), kn_test_cert_path("server.key"), NULL, 0);
	struct kn_httpd *s = start_tls(&cfg, 200 * KN_NS_PER_MS);
	int fd = tcp_connect(kn_httpd_port(s));
	/* a client that connects and never says hello is closed */
	char b[16];
	ssize_t n = recv(fd, b, sizeof b, 0);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	close(fd);
	assert_true(wait_stat(s, STAT(idle_closed), 1, 10));
	kn_httpd_destroy(s);
}

static void test_start_errors(void **state)
{
	(void)state;
	struct kn_err err = {{0}};
	struct kn_httpd_opts o = {.endpoint = "127.0.0.1:0", .name = "otlp/http", .threads = 1};
	struct kn_tls_server_cfg cfg = tls_cfg(kn_test_cert_path("server.crt"), kn_test_cert_path("client.key"), NULL, 0);
	o.tls = &cfg;
	struct kn_httpd *s = kn_httpd_create(&o, handler, NULL, NULL, &err);
	assert_non_null(s);
	assert_int_equal(kn_httpd_start(s, &err), KN_ERR);
	assert_non_null(strstr(err.msg, "otlp/http: tls.key_file:"));
	assert_non_null(strstr(err.msg, "does not match cert_file"));
	assert_null(strstr(err.msg, "PRIVATE KEY"));
	kn_httpd_destroy(s);

	cfg = tls_cfg(kn_test_cert_path("missing.crt"), kn_test_cert_path("server.key"), NULL, 0);
	s = kn_httpd_create(&o, handler, NULL, NULL, &err);
	assert_int_equal(kn_httpd_start(s, &err), KN_ERR);
	assert_non_null(strstr(err.msg, "tls.cert_file:"));
	kn_httpd_destroy(s);

	cfg = tls_cfg(kn_test_cert_path("server.crt"), kn_test_cert_path("server.key"), kn_test_cert_path("server.key"), 0);
	s = kn_httpd_create(&o, handler, NULL, NULL, &err);
	assert_int_equal(kn_httpd_start(s, &err), KN_ERR);
	assert_non_null(strstr(err.msg, "tls.client_ca_file:"));
	kn_httpd_destroy(s);
}

/* New connections until one is served with the certificate of `serial`. */
static int wait_serial(uint16_t port, long serial, int secs)
{
	uint64_t deadline = kn_now_ns() + (uint64_t)secs * KN_NS_PER_SEC;
	for (;;) {
		struct tc *c = tc_open(port, NULL, NULL, NULL, 0);
		long got = c ? tc_serial(c) : -1;
		tc_close(c);
		if (got == serial)
			return 1;
		if (kn_now_ns() > deadline)
			return 0;
		nap_ms(20);
	}
}

static void test_reload(void **state)
{
	(void)state;
	assert_int_equal(kn_test_certs_sh("cp server.crt live.crt && cp server.key live.key"), 0);
	struct kn_tls_server_cfg cfg =
		tls_cfg(kn_test_cert_path("live.crt"), kn_test_cert_path("live.key"), NULL, KN_NS_PER_SEC);
	struct kn_httpd *s = start_tls(&cfg, 0);
	uint16_t port = kn_httpd_port(s);
	struct tc *old = tc_open(port, NULL, NULL, NULL, 0);
	assert_non_null(old);
	assert_int_equal(tc_serial(old), SERIAL_SRV);
	assert_int_equal(tc_post(old, "/before", "a", 1, NULL, NULL), 200);

	/* replace both files (renames, as a certificate manager does) */
	assert_int_equal(kn_test_certs_sh("cp server2.crt live.crt.tmp && cp server2.key live.key.tmp && "
			    "mv live.crt.tmp live.crt && mv live.key.tmp live.key"), 0);
	assert_true(wait_serial(port, SERIAL_SRV2, 20));
	assert_true(stat_of(s, STAT(tls_reloads)) >= 1);

	/* the connection opened before keeps its session and is still served */
	char *body;
	size_t bl;
	assert_int_equal(tc_post(old, "/after", "b", 1, &body, &bl), 200);
	assert_string_equal(body, "POST /after h2=0 len=1\nb");
	free(body);
	assert_int_equal(tc_serial(old), SERIAL_SRV);
	tc_close(old);

	/* a bad new file is refused and the current certificate stays */
	uint64_t fails = stat_of(s, STAT(tls_reload_failures));
	assert_int_equal(kn_test_certs_sh("printf 'not a certificate\\n' > live.crt.tmp && mv live.crt.tmp live.crt"), 0);
	assert_true(wait_stat(s, STAT(tls_reload_failures), fails + 1, 20));
	struct tc *c = tc_open(port, NULL, NULL, NULL, 0);
	assert_non_null(c);
	assert_int_equal(tc_serial(c), SERIAL_SRV2);
	assert_int_equal(tc_post(c, "/still", "c", 1, NULL, NULL), 200);
	tc_close(c);

	/* and a good file after that is taken again */
	assert_int_equal(kn_test_certs_sh("cp server.crt live.crt.tmp && cp server.key live.key.tmp && "
			    "mv live.key.tmp live.key && mv live.crt.tmp live.crt"), 0);
	assert_true(wait_serial(port, SERIAL_SRV, 20));
	kn_httpd_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http1_over_tls),
		cmocka_unit_test(test_alpn),
		cmocka_unit_test(test_h2_curl),
		cmocka_unit_test(test_mutual_tls),
		cmocka_unit_test(test_plaintext_to_tls_port),
		cmocka_unit_test(test_handshake_idle_timeout),
		cmocka_unit_test(test_start_errors),
		cmocka_unit_test(test_reload),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
