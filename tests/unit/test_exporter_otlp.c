/* SPDX-License-Identifier: Apache-2.0
 * test_exporter_otlp: the otlp (gRPC) exporter against a real gRPC server in
 * the test (libgrpc core server API, insecure, 127.0.0.1:0). The server
 * records each request's payload and metadata and answers from a script:
 * a status, an optional RetryInfo detail in grpc-status-details-bin, and an
 * optional partial_success. Per-message decompression is disabled on the
 * server so the test sees whether the payload arrived gzip-compressed.
 * Completion is synchronised by the exporter's shutdown with a generous
 * deadline (it drains and joins the consumers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "collector/core/kn_clock.h"
#include "collector/core/kn_metrics.h"
#include "exporters/otlp/kn_exporter_otlp.h"
#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "kn_test_chunks.h"

#define MAX_REQ 16
#define TAG_NEW ((void *)1)
#define TAG_DONE ((void *)2)
#define TAG_SHUT ((void *)3)

struct reply {
	grpc_status_code status;
	const char *details;
	int64_t retry_delay_ms;   /* -1: no RetryInfo */
	int64_t rejected;         /* > 0: OK with partial_success */
};

struct rec {
	uint8_t *payload;
	size_t len;
	int compressed;           /* payload arrived gzip-compressed */
	char md[1024];            /* "key=value\n" lines */
	char peer[128];           /* the client's address:port: one per connection */
};

struct server {
	grpc_server *srv;
	grpc_completion_queue *cq;
	void *method;
	int port;
	pthread_t th;
	struct reply script[MAX_REQ];
	int nscript;
	struct rec recs[MAX_REQ];
	int nrecs;                /* written by the server thread, read after join */
};

static void record(struct server *sv, grpc_call *call, grpc_byte_buffer *payload, grpc_metadata_array *md)
{
	if (sv->nrecs >= MAX_REQ)
		return;
	struct rec *r = &sv->recs[sv->nrecs++];
	char *peer = grpc_call_get_peer(call);
	snprintf(r->peer, sizeof r->peer, "%s", peer ? peer : "");
	gpr_free(peer);
	grpc_byte_buffer_reader rd;
	assert_true(grpc_byte_buffer_reader_init(&rd, payload));
	grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
	const uint8_t *p = GRPC_SLICE_START_PTR(all);
	size_t n = GRPC_SLICE_LENGTH(all);
	/* With server-side decompression off, a gzip message arrives as gzip bytes. */
	r->compressed = n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
	if (r->compressed) {
		r->payload = malloc(65536);
		z_stream zs = {0};
		assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
		zs.next_in = (uint8_t *)p;
		zs.avail_in = (uInt)n;
		zs.next_out = r->payload;
		zs.avail_out = 65536;
		assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
		r->len = 65536 - zs.avail_out;
		inflateEnd(&zs);
	} else {
		r->len = n;
		r->payload = malloc(n + 1);
		memcpy(r->payload, p, n);
	}
	grpc_slice_unref(all);
	grpc_byte_buffer_reader_destroy(&rd);
	size_t o = 0;
	for (size_t i = 0; i < md->count; i++) {
		int n = snprintf(r->md + o, sizeof r->md - o, "%.*s=%.*s\n",
				 (int)GRPC_SLICE_LENGTH(md->metadata[i].key),
				 (const char *)GRPC_SLICE_START_PTR(md->metadata[i].key),
				 (int)GRPC_SLICE_LENGTH(md->metadata[i].value),
				 (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value));
		if (n < 0 || (size_t)n >= sizeof r->md - o)
			break;
		o += (size_t)n;
	}
}

static void answer(struct server *sv, grpc_call *call, const struct reply *rep)
{
	uint8_t detail_buf[256], resp_buf[256];
	grpc_metadata trail[1];
	size_t ntrail = 0;
	if (rep->retry_delay_ms >= 0) {
		Google__Rpc__Duration d = GOOGLE__RPC__DURATION__INIT;
		d.seconds = rep->retry_delay_ms / 1000;
		d.nanos = (int32_t)(rep->retry_delay_ms % 1000) * 1000000;
		Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
		ri.retry_delay = &d;
		uint8_t ri_buf[64];
		size_t ri_len = google__rpc__retry_info__pack(&ri, ri_buf);
		Google__Rpc__Any any = GOOGLE__RPC__ANY__INIT;
		any.type_url = (char *)"type.googleapis.com/google.rpc.RetryInfo";
		any.value = (ProtobufCBinaryData){ri_len, ri_buf};
		Google__Rpc__Any *anys[1] = {&any};
		Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
		st.code = rep->status;
		st.message = (char *)rep->details;
		st.n_details = 1;
		st.details = anys;
		size_t n = google__rpc__status__pack(&st, detail_buf);
		trail[0].key = grpc_slice_from_static_string("grpc-status-details-bin");
		trail[0].value = grpc_slice_from_copied_buffer((const char *)detail_buf, n);
		ntrail = 1;
	}
	grpc_byte_buffer *resp = NULL;
	if (rep->status == GRPC_STATUS_OK) {
		Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
			OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
		Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse r =
			OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
		if (rep->rejected > 0) {
			ps.rejected_spans = rep->rejected;
			ps.error_message = (char *)"spans too old";
			r.partial_success = &ps;
		}
		size_t n = opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(&r, resp_buf);
		grpc_slice s = grpc_slice_from_copied_buffer((const char *)resp_buf, n);
		resp = grpc_raw_byte_buffer_create(&s, 1);
		grpc_slice_unref(s);
	}
	int cancelled = 0;
	grpc_slice details = grpc_slice_from_static_string(rep->details ? rep->details : "");
	grpc_op ops[4];
	memset(ops, 0, sizeof ops);
	size_t nops = 0;
	ops[nops++].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[nops].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[nops++].data.recv_close_on_server.cancelled = &cancelled;
	if (resp) {
		ops[nops].op = GRPC_OP_SEND_MESSAGE;
		ops[nops++].data.send_message.send_message = resp;
	}
	ops[nops].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[nops].data.send_status_from_server.status = rep->status;
	ops[nops].data.send_status_from_server.status_details = &details;
	ops[nops].data.send_status_from_server.trailing_metadata_count = ntrail;
	ops[nops++].data.send_status_from_server.trailing_metadata = trail;
	assert_int_equal(grpc_call_start_batch(call, ops, nops, TAG_DONE, NULL), GRPC_CALL_OK);
	grpc_event ev;
	do
		ev = grpc_completion_queue_next(sv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	while (ev.tag != TAG_DONE);
	if (resp)
		grpc_byte_buffer_destroy(resp);
	if (ntrail)
		grpc_slice_unref(trail[0].value);
}

static void *server_main(void *arg)
{
	struct server *sv = arg;
	for (;;) {
		grpc_call *call = NULL;
		gpr_timespec deadline;
		grpc_metadata_array md;
		grpc_byte_buffer *payload = NULL;
		grpc_metadata_array_init(&md);
		assert_int_equal(grpc_server_request_registered_call(sv->srv, sv->method, &call, &deadline, &md,
								     &payload, sv->cq, sv->cq, TAG_NEW),
				 GRPC_CALL_OK);
		grpc_event ev = grpc_completion_queue_next(sv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.tag == TAG_NEW && ev.success) {
			if (payload)
				record(sv, call, payload, &md);
			int i = sv->nrecs - 1;
			answer(sv, call, &sv->script[i < sv->nscript ? i : sv->nscript - 1]);
		}
		if (payload)
			grpc_byte_buffer_destroy(payload);
		if (call)
			grpc_call_unref(call);
		grpc_metadata_array_destroy(&md);
		if (ev.tag == TAG_SHUT || (ev.tag == TAG_NEW && !ev.success))
			break;
	}
	return NULL;
}

static void server_start(struct server *sv)
{
	grpc_init();
	grpc_arg a = {.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION,
		      .value.integer = 0};
	grpc_channel_args args = {.num_args = 1, .args = &a};
	sv->srv = grpc_server_create(&args, NULL);
	sv->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(sv->srv, sv->cq, NULL);
	sv->method = grpc_server_register_method(sv->srv,
						 "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
						 NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	assert_non_null(sv->method);
	grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
	sv->port = grpc_server_add_http2_port(sv->srv, "127.0.0.1:0", creds);
	grpc_server_credentials_release(creds);
	assert_true(sv->port > 0);
	grpc_server_start(sv->srv);
	assert_int_equal(pthread_create(&sv->th, NULL, server_main, sv), 0);
}

static void server_stop(struct server *sv)
{
	grpc_server_shutdown_and_notify(sv->srv, sv->cq, TAG_SHUT);
	grpc_server_cancel_all_calls(sv->srv);
	pthread_join(sv->th, NULL);
	/* The thread left on one of the two events; wait for the other. */
	grpc_event ev;
	int shut_seen = 0;
	grpc_completion_queue_shutdown(sv->cq);
	do {
		ev = grpc_completion_queue_next(sv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.tag == TAG_SHUT)
			shut_seen = 1;
	} while (ev.type != GRPC_QUEUE_SHUTDOWN);
	(void)shut_seen;
	grpc_server_destroy(sv->srv);
	grpc_completion_queue_destroy(sv->cq);
	grpc_shutdown();
}

/* ---- batches ---- */

#define TP "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

static struct kn_batch *make_batch(void)
{
	return kn_test_service_batch(0, TP);
}

/* ---- fixture ---- */

struct fixture {
	struct server sv;
	struct kn_metrics *m;
	struct kn_otlpexp_cfg cfg;
	char endpoint[64];
	char *hkeys[1], *hvals[1];
};

static void fx_init(struct fixture *f)
{
	memset(f, 0, sizeof *f);
	server_start(&f->sv);
	f->m = kn_metrics_create();
	snprintf(f->endpoint, sizeof f->endpoint, "http://127.0.0.1:%d", f->sv.port);
	f->cfg.endpoint = f->endpoint;
	f->cfg.compression = (char *)"gzip";
	f->hkeys[0] = (char *)"X-Tenant";
	f->hvals[0] = (char *)"acme";
	f->cfg.headers = (struct kn_strmap){.keys = f->hkeys, .values = f->hvals, .n = 1};
	f->cfg.sender = (struct kn_sender_cfg){
		.timeout_ns = 10 * KN_NS_PER_SEC,
		.queue = {.enabled = 1, .num_consumers = 1, .queue_size = 10},
		.retry = {.enabled = 1, .initial_interval_ns = KN_NS_PER_MS, .max_interval_ns = 10 * KN_NS_PER_MS,
			  .max_elapsed_time_ns = 60 * KN_NS_PER_SEC, .multiplier = 2, .randomization_factor = 0},
	};
}

static void script_add(struct fixture *f, grpc_status_code st, const char *details, int64_t retry_ms,
		       int64_t rejected)
{
	f->sv.script[f->sv.nscript++] = (struct reply){st, details, retry_ms, rejected};
}

static void fx_run(struct fixture *f, int nbatches)
{
	struct kn_component_ctx ctx = {.id = "otlp/t", .metrics = f->m};
	struct kn_err err;
	void *inst;
	assert_int_equal(kn_exporter_otlp.validate(&f->cfg, "exporters.otlp/t", &err), KN_OK);
	assert_int_equal(kn_exporter_otlp.create(&ctx, &f->cfg, &inst, &err), KN_OK);
	assert_int_equal(kn_exporter_otlp.start(inst, &err), KN_OK);
	for (int i = 0; i < nbatches; i++)
		assert_int_equal(kn_exporter_otlp.export(inst, make_batch()), KN_OK);
	kn_exporter_otlp.shutdown(inst, kn_now_ns() + 30 * KN_NS_PER_SEC);
	kn_exporter_otlp.shutdown(inst, kn_now_ns() + 30 * KN_NS_PER_SEC);
	kn_exporter_otlp.destroy(inst);
	server_stop(&f->sv);
}

static void fx_fini(struct fixture *f)
{
	for (int i = 0; i < f->sv.nrecs; i++)
		free(f->sv.recs[i].payload);
	kn_metrics_destroy(f->m);
}

#define LB "exporter=\"otlp/t\""
static uint64_t counter(struct fixture *f, const char *name, const char *labels)
{
	return kn_metric_value(kn_metrics_counter(f->m, name, "", labels));
}
#define DROPPED(f, r) counter(f, "kansatsu_exporter_dropped_spans_total", LB ",reason=\"" r "\"")

static void expect_payload(const struct rec *r)
{
	struct kn_batch *b = make_batch();
	uint8_t *want = kn_batch_flatten(b);
	assert_int_equal(r->len, b->bytes);
	assert_memory_equal(r->payload, want, b->bytes);
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, r->len, r->payload);
	assert_non_null(req);
	assert_int_equal(req->n_resource_spans, 2);
	assert_int_equal(req->resource_spans[0]->scope_spans[0]->n_spans, 3);
	assert_int_equal(req->resource_spans[1]->scope_spans[0]->n_spans, 2);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
	free(want);
	kn_batch_free(b);
}

static void test_ok_payload_metadata_gzip(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	script_add(&f, GRPC_STATUS_OK, NULL, -1, 0);
	fx_run(&f, 2);
	assert_int_equal(f.sv.nrecs, 2);
	for (int i = 0; i < 2; i++) {
		struct rec *r = &f.sv.recs[i];
		expect_payload(r);
		assert_true(r->compressed);
		assert_non_null(strstr(r->md, "x-tenant=acme\n"));
		assert_non_null(strstr(r->md, "traceparent=" TP "\n"));
		assert_non_null(strstr(r->md, "tracestate=k=v\n"));
	}
	assert_int_equal(counter(&f, "kansatsu_exporter_sent_requests_total", LB), 2);
	assert_int_equal(counter(&f, "kansatsu_exporter_sent_spans_total", LB), 10);
	fx_fini(&f);
}

static void test_no_compression(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	f.cfg.compression = (char *)"none";
	script_add(&f, GRPC_STATUS_OK, NULL, -1, 0);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nrecs, 1);
	assert_false(f.sv.recs[0].compressed);
	expect_payload(&f.sv.recs[0]);
	fx_fini(&f);
}

static void test_unavailable_retryinfo_then_ok(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	script_add(&f, GRPC_STATUS_UNAVAILABLE, "busy", 20, 0);
	script_add(&f, GRPC_STATUS_OK, NULL, -1, 0);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nrecs, 2);
	expect_payload(&f.sv.recs[0]);
	expect_payload(&f.sv.recs[1]);
	assert_int_equal(counter(&f, "kansatsu_exporter_retries_total", LB), 1);
	assert_int_equal(counter(&f, "kansatsu_exporter_failed_requests_total", LB), 1);
	assert_int_equal(counter(&f, "kansatsu_exporter_sent_requests_total", LB), 1);
	fx_fini(&f);
}

static void test_retryinfo_delay_reaches_retry_loop(void **state)
{
	(void)state;
	/* RetryInfo asks for 120s, more than max_elapsed_time: the sender gives
	 * up at once, which it only does if the delay was honoured. */
	struct fixture f;
	fx_init(&f);
	f.cfg.sender.retry.max_elapsed_time_ns = 5 * KN_NS_PER_SEC;
	script_add(&f, GRPC_STATUS_RESOURCE_EXHAUSTED, "slow down", 120000, 0);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nrecs, 1);
	assert_int_equal(DROPPED(&f, "retries_exhausted"), 5);
	assert_int_equal(DROPPED(&f, "permanent_error"), 0);
	fx_fini(&f);
}

static void test_resource_exhausted_without_retryinfo_is_permanent(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	script_add(&f, GRPC_STATUS_RESOURCE_EXHAUSTED, "quota", -1, 0);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nrecs, 1);
	assert_int_equal(DROPPED(&f, "permanent_error"), 5);
	fx_fini(&f);
}

static void test_invalid_argument_permanent(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	script_add(&f, GRPC_STATUS_INVALID_ARGUMENT, "bad trace id", -1, 0);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nrecs, 1);
	assert_int_equal(DROPPED(&f, "permanent_error"), 5);
	assert_int_equal(counter(&f, "kansatsu_exporter_retries_total", LB), 0);
	assert_int_equal(counter(&f, "kansatsu_exporter_sent_requests_total", LB), 0);
	fx_fini(&f);
}

static void test_partial_success(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	script_add(&f, GRPC_STATUS_OK, NULL, -1, 3);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nrecs, 1);
	assert_int_equal(DROPPED(&f, "rejected_by_server"), 3);
	assert_int_equal(counter(&f, "kansatsu_exporter_sent_requests_total", LB), 1);
	fx_fini(&f);
}

static void test_yaml_config(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	char yaml[512];
	snprintf(yaml, sizeof yaml,
		 "endpoint: 127.0.0.1:%d\n"
		 "tls:\n  insecure: true\n"
		 "headers:\n  X-Tenant: acme\n"
		 "sending_queue:\n  num_consumers: 2\n"
		 "retry_on_failure:\n  initial_interval: 1ms\n",
		 f.sv.port);
	struct kn_cnode *root;
	struct kn_err err;
	assert_int_equal(kn_config_parse(yaml, strlen(yaml), "<test>", &root, &err), KN_OK);
	struct kn_otlpexp_cfg cfg;
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(kn_cfg_apply_at(kn_exporter_otlp.config_fields, root, "exporters.otlp/t", &cfg, &err), KN_OK);
	assert_string_equal(cfg.compression, "gzip");
	assert_int_equal(cfg.tls.insecure, 1);
	assert_int_equal(cfg.sender.timeout_ns, 5 * KN_NS_PER_SEC);
	assert_int_equal(cfg.sender.queue.num_consumers, 2);
	assert_true(cfg.sender.retry.multiplier == 1.5);
	f.cfg = cfg;
	script_add(&f, GRPC_STATUS_UNAVAILABLE, "once", -1, 0);
	script_add(&f, GRPC_STATUS_OK, NULL, -1, 0);
	fx_run(&f, 1);
	assert_int_equal(f.sv.nrecs, 2);
	expect_payload(&f.sv.recs[1]);
	assert_true(f.sv.recs[1].compressed);
	assert_non_null(strstr(f.sv.recs[1].md, "x-tenant=acme\n"));
	assert_int_equal(counter(&f, "kansatsu_exporter_retries_total", LB), 1);
	kn_cfg_free(kn_exporter_otlp.config_fields, &cfg);
	kn_cnode_free(root);

	const char *missing = "compression: none\n";
	assert_int_equal(kn_config_parse(missing, strlen(missing), "<test>", &root, &err), KN_OK);
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(kn_cfg_apply_at(kn_exporter_otlp.config_fields, root, "exporters.otlp", &cfg, &err), KN_ERR);
	/* The path comes from the node (here the document root). */
	assert_non_null(strstr(err.msg, "endpoint: missing"));
	kn_cfg_free(kn_exporter_otlp.config_fields, &cfg);
	kn_cnode_free(root);
	fx_fini(&f);
}

static void test_validate(void **state)
{
	(void)state;
	struct kn_otlpexp_cfg cfg = {0};
	struct kn_err err;
	assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_ERR);
	assert_string_equal(err.msg, "exporters.otlp.endpoint: missing");
	const char *bad[] = {"collector", "collector:", "collector:99999", "ftp://c:1", "http://c:4317/x", ":4317"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cfg.endpoint = (char *)bad[i];
		assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_ERR);
		assert_non_null(strstr(err.msg, "exporters.otlp.endpoint"));
	}
	const char *good[] = {"collector:4317", "http://127.0.0.1:4317", "https://c.example:443/", "[::1]:4317"};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		cfg.endpoint = (char *)good[i];
		assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_OK);
	}
	cfg.tls.insecure_skip_verify = 1;
	assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlp.tls.insecure_skip_verify"));
	cfg.tls.insecure_skip_verify = 0;
	char *k[1] = {(char *)"grpc-timeout"}, *v[1] = {(char *)"1S"};
	cfg.headers = (struct kn_strmap){.keys = k, .values = v, .n = 1};
	assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlp.headers.grpc-timeout"));
	assert_int_equal(kn_exporter_otlp.kind, KN_EXPORTER);
	assert_string_equal(kn_exporter_otlp.type, "otlp");
	kn_exporter_otlp.destroy(NULL);
	kn_exporter_otlp.shutdown(NULL, 0);
}

/* gzip at another level, and three connections: every batch arrives
 * gzip-compressed (decoded with zlib by the server) and equal to its input,
 * and the calls came over three client connections (distinct peers). */
static void test_gzip_level_connections(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	f.cfg.compression_params.level = 9;
	f.cfg.connections = 3;
	f.cfg.sender.queue.num_consumers = 3;
	script_add(&f, GRPC_STATUS_OK, NULL, -1, 0);
	fx_run(&f, 9); /* the fixture's queue holds 10 */
	assert_int_equal(f.sv.nrecs, 9);
	char peers[3][128];
	int npeers = 0;
	for (int i = 0; i < 9; i++) {
		struct rec *r = &f.sv.recs[i];
		expect_payload(r);
		assert_true(r->compressed);
		int seen = 0;
		for (int k = 0; k < npeers; k++)
			seen |= strcmp(peers[k], r->peer) == 0;
		if (!seen) {
			assert_true(npeers < 3);
			snprintf(peers[npeers++], sizeof peers[0], "%s", r->peer);
		}
	}
	/* each consumer sends on its own connection; which consumer takes a
	 * batch is up to the scheduler, so at least one and at most three */
	assert_true(npeers >= 1 && npeers <= 3);
	assert_int_equal(counter(&f, "kansatsu_exporter_sent_spans_total", LB), 45);
	fx_fini(&f);
}

/* The same three connections without compression: zero-copy slices. */
static void test_connections_uncompressed(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	f.cfg.compression = (char *)"none";
	f.cfg.connections = 2;
	f.cfg.sender.queue.num_consumers = 4;
	script_add(&f, GRPC_STATUS_OK, NULL, -1, 0);
	fx_run(&f, 8);
	assert_int_equal(f.sv.nrecs, 8);
	for (int i = 0; i < 8; i++) {
		assert_false(f.sv.recs[i].compressed);
		expect_payload(&f.sv.recs[i]);
	}
	fx_fini(&f);
}

static void test_validate_compression_connections(void **state)
{
	(void)state;
	struct kn_otlpexp_cfg cfg = {0};
	struct kn_err err;
	cfg.endpoint = (char *)"collector:4317";
	cfg.compression = (char *)"zstd";
	assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlp.compression: zstd is not available over gRPC"));
	cfg.compression = (char *)"brotli";
	assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlp.compression"));
	cfg.compression = (char *)"gzip";
	cfg.compression_params.level = 13;
	assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlp.compression_params.level"));
	cfg.compression_params.level = 12;
	assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_OK);
	cfg.compression = (char *)"none";
	assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlp.compression_params.level: set, but compression is none"));
	cfg.compression_params.level = 0;
	cfg.connections = 4;
	cfg.sender.queue.num_consumers = 2;
	assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlp.connections: 4 connections need at least as many "
				       "sending_queue.num_consumers"));
	cfg.sender.queue.num_consumers = 0; /* auto: raised to the connections */
	assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_OK);
	cfg.connections = 65;
	assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlp.connections: must be between 0 and 64"));

	/* through the table: bounds and the OTel-shaped keys */
	const char *yaml = "endpoint: c:4317\nconnections: 100\n";
	struct kn_cnode *root;
	assert_int_equal(kn_config_parse(yaml, strlen(yaml), "<test>", &root, &err), KN_OK);
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(kn_cfg_apply_at(kn_exporter_otlp.config_fields, root, "exporters.otlp", &cfg, &err), KN_ERR);
	assert_non_null(strstr(err.msg, "connections: must be between 0 and 64, got 100"));
	kn_cfg_free(kn_exporter_otlp.config_fields, &cfg);
	kn_cnode_free(root);
	yaml = "endpoint: c:4317\nconnections: 4\ncompression_params: {level: 6}\n";
	assert_int_equal(kn_config_parse(yaml, strlen(yaml), "<test>", &root, &err), KN_OK);
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(kn_cfg_apply_at(kn_exporter_otlp.config_fields, root, "exporters.otlp", &cfg, &err), KN_OK);
	assert_int_equal(cfg.connections, 4);
	assert_int_equal(cfg.compression_params.level, 6);
	assert_int_equal(cfg.sender.queue.num_consumers, 0);
	assert_int_equal(kn_exporter_otlp.validate(&cfg, "exporters.otlp", &err), KN_OK);
	kn_cfg_free(kn_exporter_otlp.config_fields, &cfg);
	kn_cnode_free(root);
}

static void test_create_destroy_without_start(void **state)
{
	(void)state;
	struct kn_otlpexp_cfg cfg = {0};
	cfg.endpoint = (char *)"127.0.0.1:1";
	cfg.sender.queue = (struct kn_sender_queue_cfg){.enabled = 1, .num_consumers = 2, .queue_size = 4};
	struct kn_metrics *m = kn_metrics_create();
	struct kn_component_ctx ctx = {.id = "otlp", .metrics = m};
	struct kn_err err;
	void *inst;
	assert_int_equal(kn_exporter_otlp.create(&ctx, &cfg, &inst, &err), KN_OK);
	assert_int_equal(kn_exporter_otlp.export(inst, make_batch()), KN_OK);
	kn_exporter_otlp.shutdown(inst, kn_now_ns());
	kn_exporter_otlp.destroy(inst);
	assert_int_equal(kn_metric_value(kn_metrics_counter(m, "kansatsu_exporter_dropped_spans_total", "",
							     "exporter=\"otlp\",reason=\"shutdown\"")), 5);
	kn_metrics_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_payload_metadata_gzip),
		cmocka_unit_test(test_no_compression),
		cmocka_unit_test(test_unavailable_retryinfo_then_ok),
		cmocka_unit_test(test_retryinfo_delay_reaches_retry_loop),
		cmocka_unit_test(test_resource_exhausted_without_retryinfo_is_permanent),
		cmocka_unit_test(test_invalid_argument_permanent),
		cmocka_unit_test(test_partial_success),
		cmocka_unit_test(test_yaml_config),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_gzip_level_connections),
		cmocka_unit_test(test_connections_uncompressed),
		cmocka_unit_test(test_validate_compression_connections),
		cmocka_unit_test(test_create_destroy_without_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
