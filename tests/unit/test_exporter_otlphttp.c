/* SPDX-License-Identifier: Apache-2.0
 * test_exporter_otlphttp: the otlphttp exporter against a minimal HTTP/1.1
 * server in the test (plain sockets on 127.0.0.1:0, one thread, keep-alive,
 * Content-Length or chunked bodies) that records every request and answers
 * from a script. Completion is synchronised by the exporter's shutdown with
 * a generous deadline (it drains the queue and joins the consumers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "collector/core/kn_clock.h"
#include "collector/core/kn_metrics.h"
#include "exporters/otlphttp/kn_exporter_otlphttp.h"
#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "kn_test_chunks.h"

/* ---- the test server ---- */

#define MAX_REQ 16

struct reply {
	int status;
	const char *headers;   /* extra header lines, each ending in \r\n */
	uint8_t body[256];
	size_t body_len;
};

struct req {
	char head[4096];       /* request line + headers */
	uint8_t *body;
	size_t body_len;
};

struct server {
	int lfd, stop[2];
	uint16_t port;
	pthread_t th;
	pthread_mutex_t mu;
	struct reply script[MAX_REQ];
	int nscript;
	struct req reqs[MAX_REQ];
	int nreqs;
	int naccepted;          /* connections: keep-alive reuses one */
};

/* Reads into buf, waiting on fd or the stop pipe. <= 0: closed or stopping. */
static ssize_t rd(struct server *sv, int fd, void *buf, size_t n)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = sv->stop[0], .events = POLLIN}};
	if (poll(p, 2, -1) <= 0 || (p[1].revents & POLLIN))
		return -1;
	return read(fd, buf, n);
}

struct inbuf {
	uint8_t d[1 << 20];
	size_t len;
};

static int fill(struct server *sv, int fd, struct inbuf *in)
{
	if (in->len == sizeof in->d)
		return -1;
	ssize_t n = rd(sv, fd, in->d + in->len, sizeof in->d - in->len);
	if (n <= 0)
		return -1;
	in->len += (size_t)n;
	return 0;
}

static void consume(struct inbuf *in, size_t n)
{
	memmove(in->d, in->d + n, in->len - n);
	in->len -= n;
}

static const char *hdr(const char *head, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *l = strstr(head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
		const char *s = l + 2;
		if (strncasecmp(s, name, nl) == 0 && s[nl] == ':') {
			s += nl + 1;
			while (*s == ' ')
				s++;
			const char *e = strstr(s, "\r\n");
			snprintf(out, cap, "%.*s", (int)(e - s), s);
			return out;
		}
	}
	return NULL;
}

/* One request off the connection into r. 0 ok, -1 closed / malformed. */
static int read_request(struct server *sv, int fd, struct inbuf *in, struct req *r)
{
	uint8_t *end;
	while (!(end = memmem(in->d, in->len, "\r\n\r\n", 4)))
		if (fill(sv, fd, in) != 0)
			return -1;
	size_t hl = (size_t)(end - in->d) + 4;
	if (hl >= sizeof r->head)
		return -1;
	memcpy(r->head, in->d, hl);
	r->head[hl] = '\0';
	consume(in, hl);
	char v[64];
	r->body = NULL;
	r->body_len = 0;
	if (hdr(r->head, "content-length", v, sizeof v)) {
		size_t n = strtoul(v, NULL, 10);
		while (in->len < n)
			if (fill(sv, fd, in) != 0)
				return -1;
		r->body = malloc(n + 1);
		memcpy(r->body, in->d, n);
		r->body_len = n;
		consume(in, n);
	} else if (hdr(r->head, "transfer-encoding", v, sizeof v) && strcasecmp(v, "chunked") == 0) {
		for (;;) {
			uint8_t *le;
			while (!(le = memmem(in->d, in->len, "\r\n", 2)))
				if (fill(sv, fd, in) != 0)
					return -1;
			size_t n = strtoul((char *)in->d, NULL, 16);
			consume(in, (size_t)(le - in->d) + 2);
			while (in->len < n + 2)
				if (fill(sv, fd, in) != 0)
					return -1;
			r->body = realloc(r->body, r->body_len + n + 1);
			memcpy(r->body + r->body_len, in->d, n);
			r->body_len += n;
			consume(in, n + 2);
			if (n == 0)
				break;
		}
	}
	return 0;
}

static void *server_main(void *arg)
{
	struct server *sv = arg;
	static struct inbuf in;
	for (;;) {
		struct pollfd p[2] = {{.fd = sv->lfd, .events = POLLIN}, {.fd = sv->stop[0], .events = POLLIN}};
		if (poll(p, 2, -1) <= 0 || (p[1].revents & POLLIN))
			break;
		int fd = accept(sv->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		sv->naccepted++;
		in.len = 0;
		for (;;) {
			struct req r;
			if (read_request(sv, fd, &in, &r) != 0)
				break;
			pthread_mutex_lock(&sv->mu);
			int i = sv->nreqs;
			struct reply rep = sv->script[i < sv->nscript ? i : sv->nscript - 1];
			if (i < MAX_REQ) {
				sv->reqs[i] = r;
				sv->nreqs++;
			} else {
				free(r.body);
			}
			pthread_mutex_unlock(&sv->mu);
			char head[512];
			int hn = snprintf(head, sizeof head,
					  "HTTP/1.1 %d X\r\nContent-Type: application/x-protobuf\r\n"
					  "Content-Length: %zu\r\n%s\r\n",
					  rep.status, rep.body_len, rep.headers ? rep.headers : "");
			if (write(fd, head, (size_t)hn) != hn ||
			    write(fd, rep.body, rep.body_len) != (ssize_t)rep.body_len)
				break;
		}
		close(fd);
	}
	return NULL;
}

static void server_start(struct server *sv)
{
	memset(sv, 0, sizeof *sv);
	pthread_mutex_init(&sv->mu, NULL);
	assert_int_equal(pipe(sv->stop), 0);
	sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(sv->lfd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(sv->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(sv->lfd, 16), 0);
	socklen_t al = sizeof a;
	assert_int_equal(getsockname(sv->lfd, (struct sockaddr *)&a, &al), 0);
	sv->port = ntohs(a.sin_port);
}

static void server_run(struct server *sv)
{
	assert_int_equal(pthread_create(&sv->th, NULL, server_main, sv), 0);
}

static void server_stop(struct server *sv)
{
	assert_int_equal(write(sv->stop[1], "x", 1), 1);
	pthread_join(sv->th, NULL);
	close(sv->lfd);
	close(sv->stop[0]);
	close(sv->stop[1]);
	pthread_mutex_destroy(&sv->mu);
}

static void script_add(struct server *sv, int status, const char *headers, const uint8_t *body, size_t n)
{
	struct reply *r = &sv->script[sv->nscript++];
	r->status = status;
	r->headers = headers;
	assert_true(n <= sizeof r->body);
	if (n)
		memcpy(r->body, body, n);
	r->body_len = n;
}

/* ---- batches ---- */

#define TP "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

static struct kn_batch *make_batch(void)
{
	return kn_test_service_batch(1, TP);
}

/* ---- the exporter under test ---- */

struct fixture {
	struct server sv;
	struct kn_metrics *m;
	struct kn_otlphttp_cfg cfg;
	char url[128];
	char *hkeys[1], *hvals[1];
	void *inst;
	uint64_t delays[8];
	int ndelays;
};

static void fx_init(struct fixture *f)
{
	memset(f, 0, sizeof *f);
	server_start(&f->sv);
	f->m = kn_metrics_create();
	snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u/", f->sv.port);
	f->cfg.endpoint = f->url;
	f->cfg.compression = (char *)"gzip";
	f->hkeys[0] = (char *)"x-tenant";
	f->hvals[0] = (char *)"acme";
	f->cfg.headers = (struct kn_strmap){.keys = f->hkeys, .values = f->hvals, .n = 1};
	f->cfg.sender = (struct kn_sender_cfg){
		.timeout_ns = 10 * KN_NS_PER_SEC,
		.queue = {.enabled = 1, .num_consumers = 1, .queue_size = 10},
		.retry = {.enabled = 1, .initial_interval_ns = KN_NS_PER_MS, .max_interval_ns = 10 * KN_NS_PER_MS,
			  .max_elapsed_time_ns = 60 * KN_NS_PER_SEC, .multiplier = 2, .randomization_factor = 0},
	};
}

static void fx_run(struct fixture *f, int nbatches)
{
	struct kn_component_ctx ctx = {.id = "otlphttp/t", .metrics = f->m};
	struct kn_err err;
	server_run(&f->sv);
	assert_int_equal(kn_exporter_otlphttp.validate(&f->cfg, "exporters.otlphttp/t", &err), KN_OK);
	assert_int_equal(kn_exporter_otlphttp.create(&ctx, &f->cfg, &f->inst, &err), KN_OK);
	assert_int_equal(kn_exporter_otlphttp.start(f->inst, &err), KN_OK);
	for (int i = 0; i < nbatches; i++)
		assert_int_equal(kn_exporter_otlphttp.export(f->inst, make_batch()), KN_OK);
	kn_exporter_otlphttp.shutdown(f->inst, kn_now_ns() + 30 * KN_NS_PER_SEC);
	kn_exporter_otlphttp.shutdown(f->inst, kn_now_ns() + 30 * KN_NS_PER_SEC);
	kn_exporter_otlphttp.destroy(f->inst);
	server_stop(&f->sv);
}

static void fx_fini(struct fixture *f)
{
	for (int i = 0; i < f->sv.nreqs; i++)
		free(f->sv.reqs[i].body);
	kn_metrics_destroy(f->m);
}

#define LB "exporter=\"otlphttp/t\""
static uint64_t counter(struct fixture *f, const char *name, const char *labels)
{
	return kn_metric_value(kn_metrics_counter(f->m, name, "", labels));
}
#define DROPPED(f, r) counter(f, "kansatsu_exporter_dropped_spans_total", LB ",reason=\"" r "\"")

static void expect_body(const struct req *r, int gzip)
{
	struct kn_batch *b = make_batch();
	uint8_t *want = kn_batch_flatten(b);
	uint8_t *got = r->body;
	size_t got_len = r->body_len;
	uint8_t out[65536];
	if (gzip) {
		z_stream zs = {0};
		assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
		zs.next_in = r->body;
		zs.avail_in = (uInt)r->body_len;
		zs.next_out = out;
		zs.avail_out = sizeof out;
		assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
		got = out;
		got_len = sizeof out - zs.avail_out;
		inflateEnd(&zs);
	}
	assert_int_equal(got_len, b->bytes);
	assert_memory_equal(got, want, b->bytes);
	/* And it is a valid request with both chunks' resources. */
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, got_len, got);
	assert_non_null(req);
	assert_int_equal(req->n_resource_spans, 2);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
	free(want);
	kn_batch_free(b);
}

static void test_ok_gzip_headers(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	script_add(&f.sv, 200, NULL, NULL, 0);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nreqs, 1);
	struct req *r = &f.sv.reqs[0];
	assert_true(strncmp(r->head, "POST /v1/traces HTTP/1.1\r\n", 26) == 0);
	char v[128];
	assert_string_equal(hdr(r->head, "content-type", v, sizeof v), "application/x-protobuf");
	assert_string_equal(hdr(r->head, "content-encoding", v, sizeof v), "gzip");
	assert_string_equal(hdr(r->head, "x-tenant", v, sizeof v), "acme");
	assert_string_equal(hdr(r->head, "traceparent", v, sizeof v), TP);
	assert_string_equal(hdr(r->head, "tracestate", v, sizeof v), "k=v");
	expect_body(r, 1);
	assert_int_equal(counter(&f, "kansatsu_exporter_sent_requests_total", LB), 1);
	assert_int_equal(counter(&f, "kansatsu_exporter_sent_spans_total", LB), 5);
	fx_fini(&f);
}

static void test_none_traces_endpoint_keepalive(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/custom/path", f.sv.port);
	f.cfg.traces_endpoint = url;
	f.cfg.compression = (char *)"none";
	f.cfg.headers.n = 0;
	script_add(&f.sv, 202, NULL, NULL, 0);
	fx_run(&f, 3);
	assert_int_equal(f.sv.nreqs, 3);
	assert_int_equal(f.sv.naccepted, 1);
	for (int i = 0; i < 3; i++) {
		struct req *r = &f.sv.reqs[i];
		char v[64];
		assert_true(strncmp(r->head, "POST /custom/path HTTP/1.1\r\n", 28) == 0);
		assert_null(hdr(r->head, "content-encoding", v, sizeof v));
		expect_body(r, 0);
	}
	assert_int_equal(counter(&f, "kansatsu_exporter_sent_requests_total", LB), 3);
	fx_fini(&f);
}

/* zstd: Content-Encoding zstd, the body one frame that libzstd decodes to
 * the batch's bytes (with the content size in the frame header). */
static void test_zstd(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	f.cfg.compression = (char *)"zstd";
	f.cfg.compression_params.level = 3;
	script_add(&f.sv, 200, NULL, NULL, 0);
	fx_run(&f, 2);
	assert_int_equal(f.sv.nreqs, 2);
	for (int i = 0; i < 2; i++) {
		struct req *r = &f.sv.reqs[i];
		char v[64];
		assert_string_equal(hdr(r->head, "content-encoding", v, sizeof v), "zstd");
		struct kn_batch *b = make_batch();
		uint8_t *want = kn_batch_flatten(b);
		assert_int_equal(ZSTD_getFrameContentSize(r->body, r->body_len), b->bytes);
		uint8_t out[65536];
		size_t n = ZSTD_decompress(out, sizeof out, r->body, r->body_len);
		assert_false(ZSTD_isError(n));
		assert_int_equal(n, b->bytes);
		assert_memory_equal(out, want, n);
		free(want);
		kn_batch_free(b);
	}
	fx_fini(&f);
}

/* Three consumers on one connection: they take turns (one keep-alive
 * connection accepted), every body arrives whole (gzip, checked with zlib). */
static void test_consumers_share_one_connection(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	f.cfg.connections = 1;
	f.cfg.sender.queue.num_consumers = 3;
	script_add(&f.sv, 200, NULL, NULL, 0);
	fx_run(&f, 9);
	assert_int_equal(f.sv.nreqs, 9);
	assert_int_equal(f.sv.naccepted, 1);
	for (int i = 0; i < 9; i++)
		expect_body(&f.sv.reqs[i], 1);
	assert_int_equal(counter(&f, "kansatsu_exporter_sent_spans_total", LB), 45);
	fx_fini(&f);
}

static void test_retry_503_retry_after(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	script_add(&f.sv, 503, "Retry-After: 1\r\n", NULL, 0);
	script_add(&f.sv, 200, NULL, NULL, 0);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nreqs, 2);
	expect_body(&f.sv.reqs[0], 1);
	expect_body(&f.sv.reqs[1], 1);
	assert_int_equal(counter(&f, "kansatsu_exporter_retries_total", LB), 1);
	assert_int_equal(counter(&f, "kansatsu_exporter_failed_requests_total", LB), 1);
	assert_int_equal(counter(&f, "kansatsu_exporter_sent_requests_total", LB), 1);
	assert_int_equal(DROPPED(&f, "retries_exhausted"), 0);
	fx_fini(&f);
}

static void test_retry_after_bounds_give_up(void **state)
{
	(void)state;
	/* A Retry-After longer than max_elapsed_time makes the sender give up
	 * at once: proof that the header's value reached the retry loop. */
	struct fixture f;
	fx_init(&f);
	f.cfg.sender.retry.max_elapsed_time_ns = 5 * KN_NS_PER_SEC;
	script_add(&f.sv, 429, "Retry-After: 120\r\n", NULL, 0);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nreqs, 1);
	assert_int_equal(DROPPED(&f, "retries_exhausted"), 5);
	fx_fini(&f);
}

static void test_retry_after_http_date(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	f.cfg.sender.retry.max_elapsed_time_ns = 5 * KN_NS_PER_SEC;
	char h[128];
	time_t later = time(NULL) + 3600;
	struct tm tm;
	gmtime_r(&later, &tm);
	strftime(h, sizeof h, "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
	script_add(&f.sv, 503, h, NULL, 0);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nreqs, 1);
	assert_int_equal(DROPPED(&f, "retries_exhausted"), 5);
	fx_fini(&f);
}

static void test_permanent_400(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	st.code = 3;
	st.message = (char *)"bad span";
	uint8_t body[128];
	size_t n = google__rpc__status__pack(&st, body);
	script_add(&f.sv, 400, NULL, body, n);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nreqs, 1);
	assert_int_equal(DROPPED(&f, "permanent_error"), 5);
	assert_int_equal(counter(&f, "kansatsu_exporter_retries_total", LB), 0);
	fx_fini(&f);
}

static void test_partial_success(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
	ps.rejected_spans = 2;
	ps.error_message = (char *)"too old";
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse resp =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
	resp.partial_success = &ps;
	uint8_t body[128];
	size_t n = opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(&resp, body);
	script_add(&f.sv, 200, NULL, body, n);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nreqs, 1);
	assert_int_equal(DROPPED(&f, "rejected_by_server"), 2);
	assert_int_equal(counter(&f, "kansatsu_exporter_sent_requests_total", LB), 1);
	fx_fini(&f);
}

static void test_connection_refused_retryable(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	/* A bound socket that never listens: connections to its port are refused,
	 * and nobody else can take the port meanwhile. */
	close(f.sv.lfd);
	f.sv.lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(f.sv.lfd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t al = sizeof a;
	assert_int_equal(getsockname(f.sv.lfd, (struct sockaddr *)&a, &al), 0);
	snprintf(f.url, sizeof f.url, "http://127.0.0.1:%u/", ntohs(a.sin_port));
	f.cfg.sender.retry.max_elapsed_time_ns = 20 * KN_NS_PER_MS;
	script_add(&f.sv, 200, NULL, NULL, 0);
	struct kn_component_ctx ctx = {.id = "otlphttp/t", .metrics = f.m};
	struct kn_err err;
	assert_int_equal(kn_exporter_otlphttp.create(&ctx, &f.cfg, &f.inst, &err), KN_OK);
	assert_int_equal(kn_exporter_otlphttp.start(f.inst, &err), KN_OK);
	assert_int_equal(kn_exporter_otlphttp.export(f.inst, make_batch()), KN_OK);
	kn_exporter_otlphttp.shutdown(f.inst, kn_now_ns() + 30 * KN_NS_PER_SEC);
	kn_exporter_otlphttp.destroy(f.inst);
	assert_int_equal(DROPPED(&f, "retries_exhausted"), 5);
	assert_true(counter(&f, "kansatsu_exporter_failed_requests_total", LB) >= 2);
	close(f.sv.lfd);
	close(f.sv.stop[0]);
	close(f.sv.stop[1]);
	pthread_mutex_destroy(&f.sv.mu);
	fx_fini(&f);
}

static void test_yaml_config(void **state)
{
	(void)state;
	/* The config table through the real config loader, then a real request. */
	struct fixture f;
	fx_init(&f);
	char yaml[512];
	snprintf(yaml, sizeof yaml,
		 "endpoint: http://127.0.0.1:%u\n"
		 "headers:\n  x-tenant: acme\n"
		 "timeout: 7s\n"
		 "sending_queue:\n  num_consumers: 2\n"
		 "retry_on_failure:\n  initial_interval: 1ms\n  randomization_factor: 0\n",
		 f.sv.port);
	struct kn_cnode *root;
	struct kn_err err;
	assert_int_equal(kn_config_parse(yaml, strlen(yaml), "<test>", &root, &err), KN_OK);
	struct kn_otlphttp_cfg cfg;
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(kn_cfg_apply_at(kn_exporter_otlphttp.config_fields, root, "exporters.otlphttp/t", &cfg, &err),
			 KN_OK);
	assert_string_equal(cfg.compression, "gzip");
	assert_int_equal(cfg.sender.timeout_ns, 7 * KN_NS_PER_SEC);
	assert_int_equal(cfg.sender.queue.num_consumers, 2);
	assert_int_equal(cfg.sender.queue.queue_size, 65536);
	assert_int_equal(cfg.sender.retry.initial_interval_ns, KN_NS_PER_MS);
	assert_int_equal(cfg.sender.retry.max_elapsed_time_ns, 300 * KN_NS_PER_SEC);
	assert_int_equal(cfg.headers.n, 1);
	f.cfg = cfg;
	script_add(&f.sv, 503, NULL, NULL, 0);
	script_add(&f.sv, 200, NULL, NULL, 0);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nreqs, 2);
	char v[64];
	assert_string_equal(hdr(f.sv.reqs[1].head, "x-tenant", v, sizeof v), "acme");
	expect_body(&f.sv.reqs[1], 1);
	assert_int_equal(counter(&f, "kansatsu_exporter_sent_requests_total", LB), 1);
	kn_cfg_free(kn_exporter_otlphttp.config_fields, &cfg);
	kn_cnode_free(root);

	const char *bad = "endpoint: http://x:1\nsending_queue:\n  num_consumer: 2\n";
	assert_int_equal(kn_config_parse(bad, strlen(bad), "<test>", &root, &err), KN_OK);
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(kn_cfg_apply_at(kn_exporter_otlphttp.config_fields, root, "exporters.otlphttp", &cfg, &err),
			 KN_ERR);
	assert_non_null(strstr(err.msg, "sending_queue.num_consumer"));
	kn_cfg_free(kn_exporter_otlphttp.config_fields, &cfg);
	kn_cnode_free(root);
	fx_fini(&f);
}

static void test_validate(void **state)
{
	(void)state;
	struct kn_otlphttp_cfg cfg = {0};
	struct kn_err err;
	assert_int_equal(kn_exporter_otlphttp.validate(&cfg, "exporters.otlphttp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlphttp.endpoint: missing"));
	cfg.endpoint = (char *)"collector:4318";
	assert_int_equal(kn_exporter_otlphttp.validate(&cfg, "exporters.otlphttp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlphttp.endpoint"));
	cfg.endpoint = (char *)"https://collector:4318";
	cfg.tls.cert_file = (char *)"c.pem";
	assert_int_equal(kn_exporter_otlphttp.validate(&cfg, "exporters.otlphttp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlphttp.tls.key_file"));
	cfg.tls.key_file = (char *)"k.pem";
	assert_int_equal(kn_exporter_otlphttp.validate(&cfg, "exporters.otlphttp", &err), KN_OK);
	cfg.compression = (char *)"zstd";
	cfg.compression_params.level = 19;
	assert_int_equal(kn_exporter_otlphttp.validate(&cfg, "exporters.otlphttp", &err), KN_OK);
	cfg.compression_params.level = 20;
	assert_int_equal(kn_exporter_otlphttp.validate(&cfg, "exporters.otlphttp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlphttp.compression_params.level: zstd levels are 1 to 19"));
	cfg.compression = (char *)"gzip";
	cfg.compression_params.level = 13;
	assert_int_equal(kn_exporter_otlphttp.validate(&cfg, "exporters.otlphttp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlphttp.compression_params.level: gzip levels are 1 to 12"));
	cfg.compression = (char *)"lz4";
	cfg.compression_params.level = 0;
	assert_int_equal(kn_exporter_otlphttp.validate(&cfg, "exporters.otlphttp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlphttp.compression: expected gzip, zstd or none"));
	cfg.compression = NULL;
	cfg.connections = 3;
	cfg.sender.queue.num_consumers = 2;
	assert_int_equal(kn_exporter_otlphttp.validate(&cfg, "exporters.otlphttp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlphttp.connections: 3 connections need at least as many"));
	cfg.sender.queue.num_consumers = 3;
	assert_int_equal(kn_exporter_otlphttp.validate(&cfg, "exporters.otlphttp", &err), KN_OK);
	assert_int_equal(kn_exporter_otlphttp.kind, KN_EXPORTER);
	assert_string_equal(kn_exporter_otlphttp.type, "otlphttp");
	kn_exporter_otlphttp.destroy(NULL);
	kn_exporter_otlphttp.shutdown(NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_gzip_headers),
		cmocka_unit_test(test_none_traces_endpoint_keepalive),
		cmocka_unit_test(test_zstd),
		cmocka_unit_test(test_consumers_share_one_connection),
		cmocka_unit_test(test_retry_503_retry_after),
		cmocka_unit_test(test_retry_after_bounds_give_up),
		cmocka_unit_test(test_retry_after_http_date),
		cmocka_unit_test(test_permanent_400),
		cmocka_unit_test(test_partial_success),
		cmocka_unit_test(test_connection_refused_retryable),
		cmocka_unit_test(test_yaml_config),
		cmocka_unit_test(test_validate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
