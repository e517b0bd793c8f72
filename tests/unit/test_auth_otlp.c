/* SPDX-License-Identifier: Apache-2.0
 * test_auth_otlp: authenticators on the wire, in one process.
 *  - the OTLP/gRPC receiver with bearertokenauth, called by a libgrpc
 *    client: the right token is ingested; a wrong, missing or malformed one
 *    gets UNAUTHENTICATED (16) with a message naming the reason and never
 *    the token, reaches no ingest, and is reported as "unauthenticated";
 *  - the OTLP/HTTP receiver with basicauth, called by libcurl (HTTP/1.1 and
 *    HTTP/2): 200 with the right credentials; 401 with WWW-Authenticate and
 *    a google.rpc.Status{code 16} body in the request's content type
 *    (protobuf or JSON) otherwise; refused before the body is read (curl
 *    waiting for "100 Continue" sends no body); a CORS preflight is not
 *    authenticated;
 *  - the otlp and otlphttp exporters with auth: the receivers above accept
 *    what they send with the right credentials and refuse (and the exporter
 *    counts a failure, sending nothing) with the wrong ones; a token file
 *    rotated on disk is used by the next export.
 * The extensions come from a runtime made from YAML (created, not started),
 * as the collector makes them. Every wait is a bounded poll, a completion
 * queue or an exporter's draining shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <curl/curl.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_clock.h"
#include "collector/core/kn_metrics.h"
#include "collector/core/kn_runtime.h"
#include "collector/grpc/kn_otlp_grpc.h"
#include "collector/http/kn_otlp_http.h"
#include "exporters/otlp/kn_exporter_otlp.h"
#include "exporters/otlphttp/kn_exporter_otlphttp.h"
#include "extensions/common/kn_auth_util.h"
#include "google/rpc/status.pb-c.h"
#include "kn_test_auth.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "kn_test_chunks.h"

#define WAIT_S 20
#define TP "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

static char tmpdir[64], tokfile[128];
static struct kn_runtime *rt;

static struct kn_ext_ref ext(const char *id, enum kn_ext_iface want)
{
	struct kn_ext_ref r;
	struct kn_err err = {{0}};
	if (kn_extension_find(rt, id, want, "test", &r, &err) != KN_OK)
		fail_msg("%s", err.msg);
	return r;
}

/* ---- a sink that counts ---- */

struct sink {
	pthread_mutex_t mu;
	unsigned ingests, spans, unauthenticated, other_refusals;
};

static unsigned count_spans(const uint8_t *req, size_t len)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len, req);
	unsigned n = 0;
	for (size_t i = 0; r && i < r->n_resource_spans; i++)
		for (size_t k = 0; k < r->resource_spans[i]->n_scope_spans; k++)
			n += (unsigned)r->resource_spans[i]->scope_spans[k]->n_spans;
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
	return n;
}

static int sink_ingest(void *ctx, uint32_t thread, const uint8_t *req, size_t len, const struct kn_tracectx *tc,
		       struct kn_ingest_result *res)
{
	(void)thread;
	(void)tc;
	struct sink *s = ctx;
	unsigned n = count_spans(req, len);
	pthread_mutex_lock(&s->mu);
	s->ingests++;
	s->spans += n;
	pthread_mutex_unlock(&s->mu);
	res->accepted = n;
	return KN_OK;
}

static void sink_refused(void *ctx, uint32_t thread, const char *reason)
{
	(void)thread;
	struct sink *s = ctx;
	pthread_mutex_lock(&s->mu);
	if (strcmp(reason, "unauthenticated") == 0)
		s->unauthenticated++;
	else
		s->other_refusals++;
	pthread_mutex_unlock(&s->mu);
}

static struct kn_ingest_sink sink_of(struct sink *s)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	return (struct kn_ingest_sink){.ingest = sink_ingest, .refused = sink_refused, .ctx = s};
}

/* ---- gRPC ---- */

struct grpc_rx {
	struct sink sink;
	struct kn_otlp_grpc *srv;
	char target[64];
};

static void grpc_rx_start(struct grpc_rx *g, const char *authenticator)
{
	struct kn_ext_ref r = ext(authenticator, KN_EXT_SERVER_AUTH);
	struct kn_otlp_grpc_opts o = {.endpoint = "127.0.0.1:0", .threads = 1,
				      .auth = r.comp->server_auth, .auth_inst = r.inst};
	struct kn_err err = {{0}};
	g->srv = kn_otlp_grpc_create(&o, sink_of(&g->sink), &err);
	assert_non_null(g->srv);
	assert_int_equal(kn_otlp_grpc_start(g->srv, &err), KN_OK);
	snprintf(g->target, sizeof g->target, "127.0.0.1:%u", kn_otlp_grpc_port(g->srv));
}

static void grpc_rx_stop(struct grpc_rx *g)
{
	kn_otlp_grpc_shutdown(g->srv, kn_now_ns() + 5 * KN_NS_PER_SEC);
	kn_otlp_grpc_destroy(g->srv);
	pthread_mutex_destroy(&g->sink.mu);
}

/* One Export call with an optional authorization metadata value; returns the
 * status and copies the details. */
static grpc_status_code grpc_export(const char *target, const char *authorization, char *details, size_t cap)
{
	grpc_channel_credentials *cr = grpc_insecure_credentials_create();
	grpc_channel *ch = grpc_channel_create(target, cr, NULL);
	grpc_channel_credentials_release(cr);
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	struct kn_batch *b = kn_test_service_batch(0, TP);
	grpc_slice body = grpc_slice_from_copied_buffer((const char *)b->chunks[0]->data, b->chunks[0]->len);
	kn_batch_free(b);
	grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&body, 1), *recv = NULL;
	grpc_slice_unref(body);
	grpc_metadata md[1];
	md[0].key = grpc_slice_from_static_string("authorization");
	md[0].value = grpc_slice_from_copied_string(authorization ? authorization : "");
	grpc_metadata_array init_md, trailers;
	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trailers);
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice det = grpc_empty_slice();
	grpc_call *call = grpc_channel_create_call(
		ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, grpc_slice_from_static_string(KN_OTLP_GRPC_EXPORT_METHOD), NULL,
		gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(WAIT_S, GPR_TIMESPAN)), NULL);
	grpc_op ops[6];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = authorization ? 1 : 0;
	ops[0].data.send_initial_metadata.metadata = md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailers;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &det;
	assert_int_equal(grpc_call_start_batch(call, ops, 6, ops, NULL), GRPC_CALL_OK);
	grpc_event ev = grpc_completion_queue_next(
		cq, gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(WAIT_S, GPR_TIMESPAN)), NULL);
	assert_int_equal(ev.type, GRPC_OP_COMPLETE);
	snprintf(details, cap, "%.*s", (int)GRPC_SLICE_LENGTH(det), (const char *)GRPC_SLICE_START_PTR(det));
	grpc_slice_unref(det);
	grpc_slice_unref(md[0].value);
	grpc_byte_buffer_destroy(send);
	if (recv)
		grpc_byte_buffer_destroy(recv);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trailers);
	grpc_call_unref(call);
	grpc_channel_destroy(ch);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return status;
}

static void test_grpc_receiver(void **st)
{
	(void)st;
	struct grpc_rx g;
	grpc_rx_start(&g, "bearertokenauth");
	grpc_init();
	char det[256];
	assert_int_equal(grpc_export(g.target, "Bearer right-token", det, sizeof det), GRPC_STATUS_OK);
	assert_int_equal(g.sink.ingests, 1);
	assert_int_equal(g.sink.spans, 3); /* the batch's first chunk */
	assert_int_equal(grpc_export(g.target, "Bearer wrong-token", det, sizeof det), GRPC_STATUS_UNAUTHENTICATED);
	assert_string_equal(det, "authentication failed: the credentials are not valid");
	assert_int_equal(grpc_export(g.target, NULL, det, sizeof det), GRPC_STATUS_UNAUTHENTICATED);
	assert_string_equal(det, "authentication required: the call carries no credentials");
	assert_int_equal(grpc_export(g.target, "Basic right-token", det, sizeof det), GRPC_STATUS_UNAUTHENTICATED);
	assert_string_equal(det, "authentication failed: malformed credentials (scheme or encoding)");
	assert_int_equal(g.sink.ingests, 1); /* the refused calls never reached ingest */
	assert_int_equal(g.sink.unauthenticated, 3);
	assert_int_equal(g.sink.other_refusals, 0);
	struct kn_otlp_grpc_stats s;
	kn_otlp_grpc_stats(g.srv, &s);
	assert_int_equal(s.unauthenticated, 3);
	assert_int_equal(s.ok, 1);
	grpc_shutdown();
	grpc_rx_stop(&g);
}

/* ---- HTTP ---- */

struct http_rx {
	struct sink sink;
	struct kn_otlp_http *srv;
	uint16_t port;
};

static void http_rx_start(struct http_rx *h, const char *authenticator)
{
	struct kn_ext_ref r = ext(authenticator, KN_EXT_SERVER_AUTH);
	static const char *const origins[] = {"https://app.example.com"};
	struct kn_otlp_http_opts o = {.endpoint = "127.0.0.1:0", .threads = 1,
				      .cors = {.allowed_origins = origins, .n_allowed_origins = 1},
				      .auth = r.comp->server_auth, .auth_inst = r.inst};
	struct kn_err err = {{0}};
	h->srv = kn_otlp_http_create(&o, sink_of(&h->sink), &err);
	assert_non_null(h->srv);
	assert_int_equal(kn_otlp_http_start(h->srv, &err), KN_OK);
	h->port = kn_otlp_http_port(h->srv);
}

static void http_rx_stop(struct http_rx *h)
{
	kn_otlp_http_shutdown(h->srv, kn_now_ns() + 5 * KN_NS_PER_SEC);
	kn_otlp_http_destroy(h->srv);
	pthread_mutex_destroy(&h->sink.mu);
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
	curl_off_t uploaded;
};

static void answer_free(struct answer *a)
{
	free(a->headers.p);
	free(a->body.p);
	memset(a, 0, sizeof *a);
}

enum { H1, H2, H1_EXPECT };

static void request(uint16_t port, const char *method, const char **headers, const void *body, size_t len,
		    int mode, struct answer *a)
{
	memset(a, 0, sizeof *a);
	CURL *e = curl_easy_init();
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/traces", port);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	struct curl_slist *hl = NULL;
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	if (mode == H1_EXPECT) {
		hl = curl_slist_append(hl, "Expect: 100-continue");
		/* wait for the server's answer instead of sending the body after 1 s */
		curl_easy_setopt(e, CURLOPT_EXPECT_100_TIMEOUT_MS, (long)WAIT_S * 1000);
	}
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	if (mode == H2)
		curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &a->body);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &a->headers);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)WAIT_S);
	CURLcode rc = curl_easy_perform(e);
	if (rc != CURLE_OK)
		fail_msg("curl: %s", curl_easy_strerror(rc));
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a->status);
	curl_easy_getinfo(e, CURLINFO_SIZE_UPLOAD_T, &a->uploaded);
	curl_slist_free_all(hl);
	curl_easy_cleanup(e);
	if (!a->headers.p)
		collect("", 0, 0, &a->headers);
	if (!a->body.p)
		collect("", 0, 0, &a->body);
}

static void basic_header(const char *user_pass, char *out, size_t cap)
{
	int n = snprintf(out, cap, "Authorization: Basic ");
	kn_auth_b64_encode(user_pass, strlen(user_pass), out + n, cap - (size_t)n);
}

static void test_http_receiver(void **st)
{
	(void)st;
	struct http_rx h;
	http_rx_start(&h, "basicauth/server");
	struct kn_batch *b = kn_test_service_batch(0, TP);
	const uint8_t *pb = b->chunks[0]->data;
	size_t pblen = b->chunks[0]->len;
	char good[128], bad[128], bcrypt_user[128];
	basic_header("alice:s3cret-pw", good, sizeof good);
	basic_header("alice:wrong-pw", bad, sizeof bad);
	basic_header("bob:bcrypt-pw", bcrypt_user, sizeof bcrypt_user);
	struct answer a;

	const char *ok_h[] = {"Content-Type: application/x-protobuf", good, NULL};
	for (int mode = H1; mode <= H1_EXPECT; mode++) {
		request(h.port, "POST", ok_h, pb, pblen, mode, &a);
		assert_int_equal(a.status, 200);
		answer_free(&a);
	}
	const char *bc_h[] = {"Content-Type: application/x-protobuf", bcrypt_user, NULL};
	for (int i = 0; i < 3; i++) { /* bcrypt once, then from the cache */
		request(h.port, "POST", bc_h, pb, pblen, H1, &a);
		assert_int_equal(a.status, 200);
		answer_free(&a);
	}
	assert_int_equal(h.sink.ingests, 6);
	assert_int_equal(h.sink.spans, 18); /* 3 spans each */

	/* wrong password, protobuf: Status{16} and the challenge */
	const char *bad_h[] = {"Content-Type: application/x-protobuf", bad, NULL};
	request(h.port, "POST", bad_h, pb, pblen, H1, &a);
	assert_int_equal(a.status, 401);
	assert_non_null(strcasestr(a.headers.p, "WWW-Authenticate: Basic realm=\"kansatsu\", charset=\"UTF-8\""));
	assert_non_null(strcasestr(a.headers.p, "Content-Type: application/x-protobuf"));
	Google__Rpc__Status *s = google__rpc__status__unpack(NULL, a.body.len, (uint8_t *)a.body.p);
	assert_non_null(s);
	assert_int_equal(s->code, 16);
	assert_string_equal(s->message, "authentication failed: the credentials are not valid");
	google__rpc__status__free_unpacked(s, NULL);
	assert_null(strstr(a.body.p, "wrong-pw"));
	answer_free(&a);
	/* missing, JSON: a JSON Status */
	const char *json_h[] = {"Content-Type: application/json", NULL};
	request(h.port, "POST", json_h, "{}", 2, H1, &a);
	assert_int_equal(a.status, 401);
	assert_string_equal(a.body.p,
			    "{\"code\":16,\"message\":\"authentication required: the request carries no credentials\"}");
	answer_free(&a);
	/* malformed, HTTP/2 */
	const char *mal_h[] = {"Content-Type: application/x-protobuf", "Authorization: Bearer abc", NULL};
	request(h.port, "POST", mal_h, pb, pblen, H2, &a);
	assert_int_equal(a.status, 401);
	assert_non_null(strcasestr(a.headers.p, "www-authenticate: Basic realm="));
	answer_free(&a);
	/* refused before the body: curl waits for 100 Continue and never sends it */
	request(h.port, "POST", bad_h, pb, pblen, H1_EXPECT, &a);
	assert_int_equal(a.status, 401);
	assert_int_equal(a.uploaded, 0);
	answer_free(&a);
	/* also refused where the request is wrong in other ways: credentials first */
	request(h.port, "GET", NULL, NULL, 0, H1, &a);
	assert_int_equal(a.status, 401);
	answer_free(&a);
	/* a CORS preflight is answered without credentials */
	const char *pre_h[] = {"Origin: https://app.example.com", "Access-Control-Request-Method: POST",
			       "Access-Control-Request-Headers: authorization, content-type", NULL};
	request(h.port, "OPTIONS", pre_h, NULL, 0, H1, &a);
	assert_int_equal(a.status, 204);
	assert_non_null(strcasestr(a.headers.p, "Access-Control-Allow-Origin: https://app.example.com"));
	answer_free(&a);

	assert_int_equal(h.sink.ingests, 6);
	assert_int_equal(h.sink.unauthenticated, 5);
	struct kn_otlp_http_stats hs;
	kn_otlp_http_stats(h.srv, &hs);
	assert_int_equal(hs.unauthenticated, 5);
	assert_int_equal(hs.preflights, 1);
	kn_batch_free(b);
	http_rx_stop(&h);
}

/* ---- exporters ---- */

struct exp {
	const struct kn_component *comp;
	void *cfg, *inst;
	struct kn_metrics *m;
	char id[64];
};

static void exp_make(struct exp *x, const struct kn_component *c, const char *id, const char *yaml)
{
	memset(x, 0, sizeof *x);
	x->comp = c;
	snprintf(x->id, sizeof x->id, "%s", id);
	struct kn_cnode *root = NULL;
	struct kn_err err = {{0}};
	assert_int_equal(kn_config_parse(yaml, strlen(yaml), "test", &root, &err), KN_OK);
	x->cfg = calloc(1, c->config_size);
	if (kn_cfg_apply(c->config_fields, root, x->cfg, &err) != KN_OK)
		fail_msg("%s", err.msg);
	kn_cnode_free(root);
	x->m = kn_metrics_create();
	struct kn_component_ctx ctx = {.id = x->id, .metrics = x->m, .rt = rt, .nshards = 1};
	if (c->create(&ctx, x->cfg, &x->inst, &err) != KN_OK)
		fail_msg("%s: %s", id, err.msg);
	assert_int_equal(c->start(x->inst, &err), KN_OK);
}

/* Exports one batch (5 spans) and drains: returns spans sent. */
static long long exp_send_one(struct exp *x)
{
	char sample[160];
	snprintf(sample, sizeof sample, "kansatsu_exporter_sent_spans_total{exporter=\"%s\"}", x->id);
	long long before = kn_test_metric(x->m, sample);
	assert_int_equal(x->comp->export(x->inst, kn_test_service_batch(0, TP)), KN_OK);
	/* done when sent, or when a failure was counted */
	char failed[160];
	snprintf(failed, sizeof failed, "kansatsu_exporter_failed_requests_total{exporter=\"%s\"}", x->id);
	long long f0 = kn_test_metric(x->m, failed);
	uint64_t end = kn_now_ns() + (uint64_t)WAIT_S * KN_NS_PER_SEC;
	while (kn_test_metric(x->m, sample) == before && kn_test_metric(x->m, failed) == f0) {
		if (kn_now_ns() > end)
			fail_msg("%s: the batch was neither sent nor failed within %d s", x->id, WAIT_S);
		usleep(1000);
	}
	return kn_test_metric(x->m, sample) - before;
}

static void exp_free(struct exp *x)
{
	x->comp->shutdown(x->inst, kn_now_ns() + 5 * KN_NS_PER_SEC);
	x->comp->destroy(x->inst);
	kn_cfg_free(x->comp->config_fields, x->cfg);
	free(x->cfg);
	kn_metrics_destroy(x->m);
}

#define NO_RETRY "retry_on_failure: {enabled: false}, sending_queue: {num_consumers: 1}"

static void test_exporters(void **st)
{
	(void)st;
	struct grpc_rx g;
	struct http_rx h;
	grpc_rx_start(&g, "bearertokenauth");
	http_rx_start(&h, "basicauth/server");
	char yaml[512];
	struct exp x;

	/* otlp: right token, then a wrong one (refused, nothing arrives) */
	snprintf(yaml, sizeof yaml, "{endpoint: \"%s\", tls: {insecure: true}, auth: {authenticator: bearertokenauth}, "
		 "headers: {authorization: \"Bearer overridden\"}, " NO_RETRY "}", g.target);
	exp_make(&x, &kn_exporter_otlp, "otlp/good", yaml);
	assert_int_equal(exp_send_one(&x), 5);
	exp_free(&x);
	assert_int_equal(g.sink.spans, 5);
	snprintf(yaml, sizeof yaml, "{endpoint: \"%s\", tls: {insecure: true}, auth: {authenticator: "
		 "bearertokenauth/wrong}, " NO_RETRY "}", g.target);
	exp_make(&x, &kn_exporter_otlp, "otlp/bad", yaml);
	assert_int_equal(exp_send_one(&x), 0);
	exp_free(&x);
	assert_int_equal(g.sink.spans, 5);
	assert_int_equal(g.sink.unauthenticated, 1);

	/* otlphttp: basic credentials */
	snprintf(yaml, sizeof yaml, "{endpoint: \"http://127.0.0.1:%u\", auth: {authenticator: basicauth/client}, "
		 NO_RETRY "}", h.port);
	exp_make(&x, &kn_exporter_otlphttp, "otlphttp/good", yaml);
	assert_int_equal(exp_send_one(&x), 5);
	exp_free(&x);
	assert_int_equal(h.sink.spans, 5);
	snprintf(yaml, sizeof yaml, "{endpoint: \"http://127.0.0.1:%u\", auth: {authenticator: basicauth/badclient}, "
		 NO_RETRY "}", h.port);
	exp_make(&x, &kn_exporter_otlphttp, "otlphttp/bad", yaml);
	assert_int_equal(exp_send_one(&x), 0);
	exp_free(&x);
	assert_int_equal(h.sink.spans, 5);
	assert_int_equal(h.sink.unauthenticated, 1);

	/* the same exporter, before and after its token file is rotated */
	struct grpc_rx g2;
	grpc_rx_start(&g2, "bearertokenauth/new");
	struct kn_ext_ref file = ext("bearertokenauth/file", KN_EXT_CLIENT_AUTH);
	struct kn_err err = {{0}};
	assert_int_equal(file.comp->start(file.inst, &err), KN_OK);
	snprintf(yaml, sizeof yaml, "{endpoint: \"%s\", tls: {insecure: true}, auth: {authenticator: "
		 "bearertokenauth/file}, " NO_RETRY "}", g2.target);
	exp_make(&x, &kn_exporter_otlp, "otlp/file", yaml);
	assert_int_equal(exp_send_one(&x), 0); /* "old-token" */
	kn_test_write_file(tokfile, "new-token\n", 1);
	char name[KN_AUTH_NAME_MAX], value[KN_AUTH_VALUE_MAX];
	for (int i = 0; i < WAIT_S * 1000; i++) {
		assert_int_equal(file.comp->client_auth->header(file.inst, name, sizeof name, value, sizeof value), KN_OK);
		if (strcmp(value, "Bearer new-token") == 0)
			break;
		usleep(1000);
	}
	assert_string_equal(value, "Bearer new-token");
	assert_int_equal(exp_send_one(&x), 5);
	exp_free(&x);
	assert_int_equal(g2.sink.spans, 5);
	assert_int_equal(g2.sink.unauthenticated, 1);
	grpc_rx_stop(&g2);
	grpc_rx_stop(&g);
	http_rx_stop(&h);
}

static int setup(void **st)
{
	(void)st;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kn-authotlp-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(tokfile, sizeof tokfile, "%s/token", tmpdir);
	kn_test_write_file(tokfile, "old-token\n", 0);
	char setting[64];
	/* bob's bcrypt hash (cost 4) of "bcrypt-pw", made with libcrypt */
	if (!crypt_gensalt_rn("$2b$", 4, NULL, 0, setting, sizeof setting))
		return -1;
	char bob[128];
	snprintf(bob, sizeof bob, "%s", crypt("bcrypt-pw", setting));
	char yaml[2048];
	snprintf(yaml, sizeof yaml,
		 "receivers: {otlp: {protocols: {http: {endpoint: \"127.0.0.1:0\"}}}}\n"
		 "exporters: {debug: {}}\n"
		 "extensions:\n"
		 "  bearertokenauth: {token: right-token}\n"
		 "  bearertokenauth/wrong: {token: wrong-token}\n"
		 "  bearertokenauth/new: {token: new-token}\n"
		 "  bearertokenauth/file: {filename: \"%s\"}\n"
		 "  basicauth/server: {htpasswd: {inline: \"alice:s3cret-pw\\nbob:%s\"}}\n"
		 "  basicauth/client: {client_auth: {username: alice, password: s3cret-pw}}\n"
		 "  basicauth/badclient: {client_auth: {username: alice, password: nope}}\n"
		 "service:\n"
		 "  extensions: [bearertokenauth, bearertokenauth/wrong, bearertokenauth/new, bearertokenauth/file,\n"
		 "               basicauth/server, basicauth/client, basicauth/badclient]\n"
		 "  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}\n",
		 tokfile, bob);
	struct kn_cnode *root = NULL;
	struct kn_err err = {{0}};
	if (kn_config_parse(yaml, strlen(yaml), "test", &root, &err) != KN_OK) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	rt = kn_runtime_create(root, &err);
	kn_cnode_free(root);
	if (!rt)
		fprintf(stderr, "%s\n", err.msg);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return rt ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	kn_runtime_destroy(rt);
	curl_global_cleanup();
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grpc_receiver),
		cmocka_unit_test(test_http_receiver),
		cmocka_unit_test(test_exporters),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
