/* SPDX-License-Identifier: Apache-2.0
 * Tests for the OTLP/HTTP receiver transport over real sockets (libcurl as
 * the client, 127.0.0.1, ephemeral ports) with a test sink that unpacks each
 * request with protobuf-c and can be told how to answer. Checks status codes,
 * response bodies in both content types, compression, trace context, CORS,
 * the refusal reasons, and request bodies charged to the memory budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "collector/core/kn_budget.h"
#include "collector/core/kn_clock.h"
#include "collector/http/kn_otlp_http.h"
#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* ---- the test sink ---- */

struct tsink {
	int mode;               /* KN_OK, KN_INVALID, KN_AGAIN; rejected when > 0 */
	uint32_t reject;
	int calls;
	size_t spans;
	uint32_t thread;
	char traceparent[64], tracestate[64];
	char reasons[16][32];
	int nreasons;
};

static int sink_ingest(void *ctx, uint32_t thread, const uint8_t *req, size_t len,
		       const struct kn_tracectx *tc, struct kn_ingest_result *res)
{
	struct tsink *t = ctx;
	t->calls++;
	t->thread = thread;
	snprintf(t->traceparent, sizeof t->traceparent, "%s", tc ? tc->traceparent : "");
	snprintf(t->tracestate, sizeof t->tracestate, "%s", tc ? tc->tracestate : "");
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *m =
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len, req);
	if (!m) {
		snprintf(res->message, sizeof res->message, "cannot unpack request");
		return KN_INVALID;
	}
	size_t spans = 0;
	for (size_t i = 0; i < m->n_resource_spans; i++)
		for (size_t k = 0; k < m->resource_spans[i]->n_scope_spans; k++)
			spans += m->resource_spans[i]->scope_spans[k]->n_spans;
	t->spans = spans;
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(m, NULL);
	if (t->mode == KN_INVALID) {
		snprintf(res->message, sizeof res->message, "spans[0].traceId: \"bad\"");
		return KN_INVALID;
	}
	if (t->mode == KN_AGAIN) {
		res->retry_after_ms = 6001; /* HTTP: rounded up to 7 s */
		return KN_AGAIN;
	}
	res->accepted = (uint32_t)spans - t->reject;
	res->rejected = t->reject;
	if (t->reject)
		snprintf(res->message, sizeof res->message, "span without \"id\"");
	return KN_OK;
}

static void sink_refused(void *ctx, uint32_t thread, const char *reason)
{
	(void)thread;
	struct tsink *t = ctx;
	if (t->nreasons < 16)
		snprintf(t->reasons[t->nreasons++], sizeof t->reasons[0], "%s", reason);
}

static const char *last_reason(const struct tsink *t)
{
	return t->nreasons ? t->reasons[t->nreasons - 1] : "";
}

/* ---- requests ---- */

static uint8_t *make_request(size_t nspans, size_t *len)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	Opentelemetry__Proto__Trace__V1__ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
	Opentelemetry__Proto__Trace__V1__Span sp[8];
	Opentelemetry__Proto__Trace__V1__Span *spp[8];
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
	Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
	static uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	static uint8_t sid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	for (size_t i = 0; i < nspans; i++) {
		opentelemetry__proto__trace__v1__span__init(&sp[i]);
		sp[i].trace_id.data = tid;
		sp[i].trace_id.len = 16;
		sp[i].span_id.data = sid;
		sp[i].span_id.len = 8;
		sp[i].name = "op";
		spp[i] = &sp[i];
	}
	ss.n_spans = nspans;
	ss.spans = spp;
	rs.n_scope_spans = 1;
	rs.scope_spans = &ssp;
	req.n_resource_spans = 1;
	req.resource_spans = &rsp;
	*len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	uint8_t *b = malloc(*len);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, b);
	return b;
}

struct buf {
	char *p;
	size_t len;
};

static size_t collect(char *d, size_t sz, size_t n, void *ud)
{
	struct buf *b = ud;
	b->p = realloc(b->p, b->len + sz * n + 1);
	memcpy(b->p + b->len, d, sz * n);
	b->len += sz * n;
	b->p[b->len] = '\0';
	return sz * n;
}

struct answer {
	long status;
	struct buf headers, body;
};

static void answer_free(struct answer *a)
{
	free(a->headers.p);
	free(a->body.p);
	memset(a, 0, sizeof *a);
}

/* headers: NULL-terminated "Name: value" list */
static void request(uint16_t port, const char *method, const char *path, const char **headers,
		    const void *body, size_t len, struct answer *a)
{
	memset(a, 0, sizeof *a);
	CURL *e = curl_easy_init();
	char url[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	struct curl_slist *hl = NULL;
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &a->body);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &a->headers);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(e);
	if (!a->headers.p)
		collect("", 0, 0, &a->headers);
	if (!a->body.p)
		collect("", 0, 0, &a->body);
}

static int has_header(const struct answer *a, const char *line)
{
	return strcasestr(a->headers.p, line) != NULL;
}

static struct tsink sink_state;
static struct kn_otlp_http *recv_;
static uint16_t port_;

static int setup(void **state)
{
	(void)state;
	memset(&sink_state, 0, sizeof sink_state);
	struct kn_otlp_http_opts o = {.endpoint = "127.0.0.1:0", .max_request_body_size = 4096,
				      .threads = 2};
	struct kn_ingest_sink s = {.ingest = sink_ingest, .refused = sink_refused, .ctx = &sink_state};
	struct kn_err err;
	recv_ = kn_otlp_http_create(&o, s, &err);
	assert_non_null(recv_);
	assert_int_equal(kn_otlp_http_start(recv_, &err), KN_OK);
	port_ = kn_otlp_http_port(recv_);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kn_otlp_http_shutdown(recv_, kn_now_ns() + KN_NS_PER_SEC);
	kn_otlp_http_destroy(recv_);
	recv_ = NULL;
	return 0;
}

static const char *PB[] = {"Content-Type: application/x-protobuf", NULL};
static const char *JS[] = {"Content-Type: application/json; charset=utf-8", NULL};

static void test_protobuf_ok(void **state)
{
	(void)state;
	size_t len;
	uint8_t *req = make_request(2, &len);
	const char *h[] = {"Content-Type: application/x-protobuf",
			   "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			   "tracestate: congo=t61rcWkgMzE", NULL};
	struct answer a;
	request(port_, "POST", "/v1/traces", h, req, len, &a);
	assert_int_equal(a.status, 200);
	assert_true(has_header(&a, "Content-Type: application/x-protobuf"));
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *r =
		opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
			NULL, a.body.len, (uint8_t *)a.body.p);
	assert_non_null(r);
	assert_null(r->partial_success);
	opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(r, NULL);
	assert_int_equal(sink_state.calls, 1);
	assert_int_equal(sink_state.spans, 2);
	assert_true(sink_state.thread < 2);
	assert_string_equal(sink_state.traceparent,
			    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	assert_string_equal(sink_state.tracestate, "congo=t61rcWkgMzE");
	answer_free(&a);
	/* an invalid traceparent is not passed on */
	const char *h2[] = {"Content-Type: application/x-protobuf", "traceparent: 00-zz-01", NULL};
	request(port_, "POST", "/v1/traces", h2, req, len, &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(sink_state.traceparent, "");
	answer_free(&a);
	/* partial success */
	sink_state.reject = 1;
	request(port_, "POST", "/v1/traces", PB, req, len, &a);
	assert_int_equal(a.status, 200);
	r = opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
		NULL, a.body.len, (uint8_t *)a.body.p);
	assert_non_null(r);
	assert_non_null(r->partial_success);
	assert_int_equal(r->partial_success->rejected_spans, 1);
	assert_string_equal(r->partial_success->error_message, "span without \"id\"");
	opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(r, NULL);
	answer_free(&a);
	free(req);
}

static void test_json(void **state)
{
	(void)state;
	const char *body =
		"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
		"\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\",\"name\":\"a\"}]}]}]}";
	struct answer a;
	request(port_, "POST", "/v1/traces", JS, body, strlen(body), &a);
	assert_int_equal(a.status, 200);
	assert_true(has_header(&a, "Content-Type: application/json"));
	assert_string_equal(a.body.p, "{}");
	assert_int_equal(sink_state.spans, 1);
	answer_free(&a);
	sink_state.reject = 1;
	request(port_, "POST", "/v1/traces", JS, body, strlen(body), &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.body.p,
			    "{\"partialSuccess\":{\"rejectedSpans\":\"1\",\"errorMessage\":\"span without \\\"id\\\"\"}}");
	answer_free(&a);
	/* not JSON: 400 with a JSON Status, counted as decode_error */
	request(port_, "POST", "/v1/traces", JS, "{nope", 5, &a);
	assert_int_equal(a.status, 400);
	assert_true(has_header(&a, "Content-Type: application/json"));
	assert_non_null(strstr(a.body.p, "{\"code\":3,\"message\":\""));
	assert_string_equal(last_reason(&sink_state), "decode_error");
	answer_free(&a);
	/* sink refusals in JSON */
	sink_state.mode = KN_INVALID;
	request(port_, "POST", "/v1/traces", JS, body, strlen(body), &a);
	assert_int_equal(a.status, 400);
	assert_string_equal(a.body.p, "{\"code\":3,\"message\":\"spans[0].traceId: \\\"bad\\\"\"}");
	answer_free(&a);
	sink_state.mode = KN_AGAIN;
	request(port_, "POST", "/v1/traces", JS, body, strlen(body), &a);
	assert_int_equal(a.status, 503);
	assert_true(has_header(&a, "Retry-After: 7"));
	assert_non_null(strstr(a.body.p, "{\"code\":14,"));
	answer_free(&a);
}

static Google__Rpc__Status *status_of(const struct answer *a)
{
	return google__rpc__status__unpack(NULL, a->body.len, (uint8_t *)a->body.p);
}

static void test_sink_errors_protobuf(void **state)
{
	(void)state;
	size_t len;
	uint8_t *req = make_request(1, &len);
	struct answer a;
	sink_state.mode = KN_INVALID;
	request(port_, "POST", "/v1/traces", PB, req, len, &a);
	assert_int_equal(a.status, 400);
	Google__Rpc__Status *st = status_of(&a);
	assert_non_null(st);
	assert_int_equal(st->code, 3);
	assert_string_equal(st->message, "spans[0].traceId: \"bad\"");
	google__rpc__status__free_unpacked(st, NULL);
	answer_free(&a);
	sink_state.mode = KN_AGAIN;
	request(port_, "POST", "/v1/traces", PB, req, len, &a);
	assert_int_equal(a.status, 503);
	assert_true(has_header(&a, "Retry-After: 7"));
	st = status_of(&a);
	assert_non_null(st);
	assert_int_equal(st->code, 14);
	google__rpc__status__free_unpacked(st, NULL);
	answer_free(&a);
	/* garbage protobuf reaches the sink, which refuses it */
	sink_state.mode = KN_OK;
	request(port_, "POST", "/v1/traces", PB, "\xff\xff\xff", 3, &a);
	assert_int_equal(a.status, 400);
	answer_free(&a);
	free(req);
}

/* in[0..len) gzip-compressed into out[cap]; its length. */
static size_t gzip_of(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t n = cap - z.avail_out;
	deflateEnd(&z);
	return n;
}

static void test_refusals(void **state)
{
	(void)state;
	size_t len;
	uint8_t *req = make_request(1, &len);
	struct answer a;
	request(port_, "POST", "/v1/logs", PB, req, len, &a);
	assert_int_equal(a.status, 404);
	assert_string_equal(last_reason(&sink_state), "not_found");
	answer_free(&a);
	request(port_, "GET", "/v1/traces", NULL, NULL, 0, &a);
	assert_int_equal(a.status, 405);
	assert_true(has_header(&a, "Allow: POST\r\n"));
	assert_string_equal(last_reason(&sink_state), "method_not_allowed");
	answer_free(&a);
	const char *txt[] = {"Content-Type: text/plain", NULL};
	request(port_, "POST", "/v1/traces", txt, "x", 1, &a);
	assert_int_equal(a.status, 415);
	assert_string_equal(last_reason(&sink_state), "bad_content_type");
	answer_free(&a);
	/* over the 4096-byte limit on the wire */
	char *big = calloc(1, 5000);
	request(port_, "POST", "/v1/traces", PB, big, 5000, &a);
	assert_int_equal(a.status, 413);
	assert_string_equal(last_reason(&sink_state), "too_large");
	Google__Rpc__Status *st = status_of(&a);
	assert_non_null(st);
	assert_int_equal(st->code, 8);
	google__rpc__status__free_unpacked(st, NULL);
	answer_free(&a);
	/* compressed: gzip and zstd accepted; a small gzip that inflates past the
	 * limit is 413; corrupt is 400; unknown encoding is 415 */
	uint8_t gz[8192];
	size_t glen = gzip_of(req, len, gz, sizeof gz);
	const char *hgz[] = {"Content-Type: application/x-protobuf", "Content-Encoding: gzip", NULL};
	request(port_, "POST", "/v1/traces", hgz, gz, glen, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(sink_state.spans, 1);
	answer_free(&a);
	uint8_t zsb[8192];
	size_t zlen = ZSTD_compress(zsb, sizeof zsb, req, len, 3);
	const char *hzs[] = {"Content-Type: application/x-protobuf", "Content-Encoding: zstd", NULL};
	sink_state.spans = 0;
	request(port_, "POST", "/v1/traces", hzs, zsb, zlen, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(sink_state.spans, 1);
	answer_free(&a);
	zlen = ZSTD_compress(zsb, sizeof zsb, big, 5000, 3);
	int calls = sink_state.calls;
	request(port_, "POST", "/v1/traces", hzs, zsb, zlen, &a);
	assert_int_equal(a.status, 413);
	assert_int_equal(sink_state.calls, calls);
	assert_string_equal(last_reason(&sink_state), "too_large");
	answer_free(&a);
	request(port_, "POST", "/v1/traces", hgz, "not gzip", 8, &a);
	assert_int_equal(a.status, 400);
	assert_string_equal(last_reason(&sink_state), "bad_encoding");
	answer_free(&a);
	const char *hbr[] = {"Content-Type: application/x-protobuf", "Content-Encoding: br", NULL};
	request(port_, "POST", "/v1/traces", hbr, "x", 1, &a);
	assert_int_equal(a.status, 415);
	assert_string_equal(last_reason(&sink_state), "unsupported_encoding");
	answer_free(&a);
	assert_int_equal(sink_state.nreasons, 7);
	struct kn_otlp_http_stats s;
	kn_otlp_http_stats(recv_, &s);
	assert_int_equal(s.refused, 7);
	assert_int_equal(s.ok, 2);
	free(big);
	free(req);
}

/* Until the request-body counter reads `want` (the server sees curl's
 * close, or a held upload's bytes, a moment after the client acted): polls
 * the condition, at most 5 s. */
static void wait_budget(size_t want)
{
	uint64_t until = kn_now_ns() + 5 * KN_NS_PER_SEC;
	while (kn_budget_req_used() != want && kn_now_ns() < until) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(kn_budget_req_used(), want);
}

/* A connection that sent 2000 of its 3000 body bytes and waits: it holds a
 * body buffer of HELD bytes (room grows by doubling from 4096 but never
 * beyond the declared Content-Length). */
#define HELD 3000
static int hold_upload(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	static const char head[] = "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				   "Content-Type: application/x-protobuf\r\nContent-Length: 3000\r\n\r\n";
	static char body[2000];
	assert_int_equal(send(fd, head, sizeof head - 1, 0), (ssize_t)(sizeof head - 1));
	assert_int_equal(send(fd, body, sizeof body, 0), (ssize_t)sizeof body);
	return fd;
}

static void test_memory_budget(void **state)
{
	(void)state;
	size_t len;
	uint8_t *req = make_request(8, &len);
	struct answer a;
	int calls = sink_state.calls;
	/* alone, a body whose 4096-byte buffer passes the bound still passes */
	wait_budget(0);
	kn_budget_req_set_limit(1000);
	request(port_, "POST", "/v1/traces", PB, req, len, &a);
	assert_int_equal(a.status, 200);
	answer_free(&a);
	calls = sink_state.calls;
	/* another upload holds its buffer: no room, 503, retryable */
	wait_budget(0);
	int held = hold_upload(port_);
	wait_budget(HELD);
	request(port_, "POST", "/v1/traces", PB, req, len, &a);
	assert_int_equal(a.status, 503);
	assert_true(has_header(&a, "Retry-After: 1\r\n"));
	assert_string_equal(last_reason(&sink_state), "memory_limit");
	Google__Rpc__Status *st = status_of(&a);
	assert_non_null(st);
	assert_int_equal(st->code, 14); /* UNAVAILABLE */
	assert_non_null(strstr(st->message, "memory limit"));
	google__rpc__status__free_unpacked(st, NULL);
	assert_int_equal(sink_state.calls, calls);
	answer_free(&a);
	/* room for the wire body (a buffer of its Content-Length), not for the
	 * inflated one */
	uint8_t gz[4096];
	size_t glen = gzip_of(req, len, gz, sizeof gz);
	const char *hgz[] = {"Content-Type: application/x-protobuf", "Content-Encoding: gzip", NULL};
	wait_budget(HELD);
	kn_budget_req_set_limit(HELD + glen + len / 2);
	request(port_, "POST", "/v1/traces", hgz, gz, glen, &a);
	assert_int_equal(a.status, 503);
	assert_string_equal(last_reason(&sink_state), "memory_limit");
	assert_int_equal(sink_state.calls, calls);
	answer_free(&a);
	/* with room, it passes; every charge comes back */
	wait_budget(HELD);
	kn_budget_req_set_limit(HELD + glen + len);
	request(port_, "POST", "/v1/traces", hgz, gz, glen, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(sink_state.spans, 8);
	answer_free(&a);
	close(held);
	wait_budget(0);
	kn_budget_req_set_limit(0);
	request(port_, "POST", "/v1/traces", PB, req, len, &a);
	assert_int_equal(a.status, 200);
	answer_free(&a);
	wait_budget(0);
	free(req);
}

static void test_cors(void **state)
{
	(void)state;
	struct tsink t;
	memset(&t, 0, sizeof t);
	const char *origins[] = {"https://*.example.com", "http://localhost:3000"};
	const char *hdrs[] = {"X-Custom"};
	struct kn_otlp_http_opts o = {.endpoint = "127.0.0.1:0", .threads = 1,
				      .traces_url_path = "/otlp/traces"};
	o.cors.allowed_origins = origins;
	o.cors.n_allowed_origins = 2;
	o.cors.allowed_headers = hdrs;
	o.cors.n_allowed_headers = 1;
	o.cors.max_age = 600;
	struct kn_ingest_sink s = {.ingest = sink_ingest, .refused = sink_refused, .ctx = &t};
	struct kn_err err;
	struct kn_otlp_http *r = kn_otlp_http_create(&o, s, &err);
	assert_non_null(r);
	assert_int_equal(kn_otlp_http_start(r, &err), KN_OK);
	uint16_t port = kn_otlp_http_port(r);
	struct answer a;
	const char *pre[] = {"Origin: https://app.example.com", "Access-Control-Request-Method: POST",
			     "Access-Control-Request-Headers: content-type, x-custom, x-other", NULL};
	request(port, "OPTIONS", "/otlp/traces", pre, NULL, 0, &a);
	assert_int_equal(a.status, 204);
	assert_true(has_header(&a, "Access-Control-Allow-Origin: https://app.example.com\r\n"));
	assert_true(has_header(&a, "Access-Control-Allow-Methods: POST\r\n"));
	assert_true(has_header(&a, "Access-Control-Allow-Headers: content-type, x-custom\r\n"));
	assert_true(has_header(&a, "Access-Control-Max-Age: 600\r\n"));
	assert_true(has_header(&a, "Vary: Origin\r\n"));
	answer_free(&a);
	const char *pre2[] = {"Origin: http://localhost:3000", NULL};
	request(port, "OPTIONS", "/otlp/traces", pre2, NULL, 0, &a);
	assert_int_equal(a.status, 204);
	assert_true(has_header(&a, "Access-Control-Allow-Headers: Content-Type, Content-Encoding, X-Custom\r\n"));
	answer_free(&a);
	const char *bad[] = {"Origin: https://example.org", "Access-Control-Request-Method: POST", NULL};
	request(port, "OPTIONS", "/otlp/traces", bad, NULL, 0, &a);
	assert_int_equal(a.status, 204);
	assert_false(has_header(&a, "Access-Control-Allow-Origin"));
	answer_free(&a);
	size_t len;
	uint8_t *req = make_request(1, &len);
	const char *post[] = {"Content-Type: application/x-protobuf", "Origin: https://a.example.com", NULL};
	request(port, "POST", "/otlp/traces", post, req, len, &a);
	assert_int_equal(a.status, 200);
	assert_true(has_header(&a, "Access-Control-Allow-Origin: https://a.example.com\r\n"));
	assert_true(has_header(&a, "Vary: Origin\r\n"));
	answer_free(&a);
	const char *post_bad[] = {"Content-Type: application/x-protobuf", "Origin: https://evil.com", NULL};
	request(port, "POST", "/otlp/traces", post_bad, req, len, &a);
	assert_int_equal(a.status, 200);
	assert_false(has_header(&a, "Access-Control-Allow-Origin"));
	answer_free(&a);
	request(port, "GET", "/otlp/traces", NULL, NULL, 0, &a);
	assert_int_equal(a.status, 405);
	assert_true(has_header(&a, "Allow: POST, OPTIONS\r\n"));
	answer_free(&a);
	request(port, "POST", "/v1/traces", post, req, len, &a);
	assert_int_equal(a.status, 404);
	answer_free(&a);
	struct kn_otlp_http_stats st;
	kn_otlp_http_stats(r, &st);
	assert_int_equal(st.preflights, 3);
	free(req);
	kn_otlp_http_destroy(r);
}

static void test_origin_match_and_options(void **state)
{
	(void)state;
	assert_true(kn_otlp_http_origin_match("*", "https://x", 9));
	assert_true(kn_otlp_http_origin_match("https://*.example.com", "https://a.b.example.com", 23));
	assert_false(kn_otlp_http_origin_match("https://*.example.com", "https://example.com", 19));
	assert_false(kn_otlp_http_origin_match("https://*.example.com", "http://a.example.com", 20));
	assert_true(kn_otlp_http_origin_match("http://localhost:3000", "http://localhost:3000", 21));
	assert_false(kn_otlp_http_origin_match("http://localhost:3000", "http://localhost:30001", 22));
	struct kn_ingest_sink s = {.ingest = sink_ingest};
	struct kn_err err;
	struct kn_otlp_http_opts o = {.traces_url_path = "v1/traces"};
	assert_null(kn_otlp_http_create(&o, s, &err));
	assert_non_null(strstr(err.msg, "traces_url_path"));
	const char *two[] = {"https://*.*.com"};
	struct kn_otlp_http_opts o2 = {.cors.allowed_origins = two, .cors.n_allowed_origins = 1};
	assert_null(kn_otlp_http_create(&o2, s, &err));
	assert_non_null(strstr(err.msg, "cors.allowed_origins[0]"));
	/* defaults; shutdown before start and destroy without start */
	struct kn_otlp_http *r = kn_otlp_http_create(NULL, s, &err);
	assert_non_null(r);
	assert_int_equal(kn_otlp_http_port(r), 0);
	kn_otlp_http_shutdown(r, 0);
	kn_otlp_http_destroy(r);
	kn_otlp_http_destroy(NULL);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_protobuf_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_errors_protobuf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_budget, setup, teardown),
		cmocka_unit_test(test_cors),
		cmocka_unit_test(test_origin_match_and_options),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
