/* SPDX-License-Identifier: Apache-2.0
 * test_otlp_grpc: the OTLP/gRPC receiver against a real libgrpc client
 * (core C API, insecure channel to 127.0.0.1:<ephemeral>). A test sink
 * unpacks each request with protobuf-c and records it; it can be told to
 * answer KN_INVALID, KN_AGAIN, partial rejections, or to block until the
 * test releases it (for the shutdown cases). Every wait is on a completion
 * queue, a condition variable or a connectivity watch, with a generous
 * bound; nothing sleeps for synchronisation. One case prints the cost of a
 * call (requests/s on one server thread) for the notes; it asserts nothing
 * about speed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "collector/core/kn_budget.h"
#include "collector/core/kn_clock.h"
#include "collector/grpc/kn_otlp_grpc.h"
#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define WAIT_S 20 /* generous bound for every wait */

/* ---- test sink ---------------------------------------------------------- */

enum sink_mode { MODE_OK, MODE_REJECT, MODE_INVALID, MODE_AGAIN, MODE_BLOCK };

#define MAX_THREADS 8

struct test_sink {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum sink_mode mode;
	uint32_t threads;            /* server threads, to check indices */
	unsigned ingests, spans, decode_errors, bad_thread;
	unsigned per_thread[MAX_THREADS];
	unsigned refused_too_large, refused_unimplemented, refused_other;
	uint8_t *last;               /* copy of the last request */
	size_t last_len;
	struct kn_tracectx last_tc;
	int blocked, release;        /* MODE_BLOCK handshake */
	int keep_copy;
};

static int sink_ingest(void *ctx, uint32_t thread, const uint8_t *req, size_t len,
		       const struct kn_tracectx *tc, struct kn_ingest_result *res)
{
	struct test_sink *ts = ctx;
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
			NULL, len, req);
	unsigned nspans = 0;
	int rc = KN_OK;

	for (size_t i = 0; r && i < r->n_resource_spans; i++)
		for (size_t k = 0; k < r->resource_spans[i]->n_scope_spans; k++)
			nspans += (unsigned)r->resource_spans[i]->scope_spans[k]->n_spans;

	pthread_mutex_lock(&ts->mu);
	ts->ingests++;
	if (thread >= ts->threads || thread >= MAX_THREADS)
		ts->bad_thread++;
	else
		ts->per_thread[thread]++;
	if (!r)
		ts->decode_errors++;
	ts->spans += nspans;
	if (ts->keep_copy) {
		free(ts->last);
		ts->last = malloc(len ? len : 1);
		memcpy(ts->last, req, len);
		ts->last_len = len;
	}
	ts->last_tc = *tc;
	switch (ts->mode) {
	case MODE_OK:
		res->accepted = nspans;
		break;
	case MODE_REJECT:
		res->accepted = nspans - 2;
		res->rejected = 2;
		snprintf(res->message, sizeof res->message, "2 spans: trace_id must be 16 bytes");
		break;
	case MODE_INVALID:
		snprintf(res->message, sizeof res->message, "resource_spans[0]: bad wire type");
		rc = KN_INVALID;
		break;
	case MODE_AGAIN:
		snprintf(res->message, sizeof res->message, "memory budget spent");
		res->retry_after_ms = 7250; /* RetryInfo: 7 s + 250 ms */
		rc = KN_AGAIN;
		break;
	case MODE_BLOCK:
		ts->blocked = 1;
		pthread_cond_broadcast(&ts->cv);
		while (!ts->release)
			pthread_cond_wait(&ts->cv, &ts->mu);
		res->accepted = nspans;
		break;
	}
	pthread_mutex_unlock(&ts->mu);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
		r, NULL);
	return rc;
}

static void sink_refused(void *ctx, uint32_t thread, const char *reason)
{
	struct test_sink *ts = ctx;
	(void)thread;
	pthread_mutex_lock(&ts->mu);
	if (strcmp(reason, "too_large") == 0)
		ts->refused_too_large++;
	else if (strcmp(reason, "unimplemented") == 0)
		ts->refused_unimplemented++;
	else
		ts->refused_other++;
	pthread_cond_broadcast(&ts->cv);
	pthread_mutex_unlock(&ts->mu);
}

/* The client can see libgrpc's RESOURCE_EXHAUSTED before the server thread
 * has handled the failed receive: wait (bounded) for the count. */
static unsigned wait_too_large(struct test_sink *ts, unsigned n)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&ts->mu);
	while (ts->refused_too_large < n &&
	       pthread_cond_timedwait(&ts->cv, &ts->mu, &until) == 0)
		;
	unsigned got = ts->refused_too_large;
	pthread_mutex_unlock(&ts->mu);
	return got;
}

/* ---- fixture: server + client channel ------------------------------------ */

struct fx {
	struct test_sink sink;
	struct kn_otlp_grpc *srv;
	grpc_channel *ch;
	grpc_completion_queue *cq;   /* client queue */
	char target[64];
};

static struct fx *fx_new(uint32_t threads, uint32_t max_mib, uint32_t calls_per_thread)
{
	struct fx *f = calloc(1, sizeof *f);
	struct kn_otlp_grpc_opts o = {
		.endpoint = "127.0.0.1:0",
		.threads = threads,
		.max_recv_msg_size_mib = max_mib,
		.calls_per_thread = calls_per_thread,
	};
	struct kn_err err = { { 0 } };
	struct kn_ingest_sink s;
	grpc_channel_credentials *cr;

	assert_non_null(f);
	pthread_mutex_init(&f->sink.mu, NULL);
	pthread_cond_init(&f->sink.cv, NULL);
	f->sink.threads = threads ? threads : 2;
	f->sink.keep_copy = 1;
	s.ingest = sink_ingest;
	s.refused = sink_refused;
	s.ctx = &f->sink;
	f->srv = kn_otlp_grpc_create(&o, s, &err);
	assert_non_null(f->srv);
	assert_int_equal(kn_otlp_grpc_start(f->srv, &err), KN_OK);
	assert_int_not_equal(kn_otlp_grpc_port(f->srv), 0);
	snprintf(f->target, sizeof f->target, "127.0.0.1:%u", kn_otlp_grpc_port(f->srv));
	grpc_init();
	cr = grpc_insecure_credentials_create();
	f->ch = grpc_channel_create(f->target, cr, NULL);
	grpc_channel_credentials_release(cr);
	f->cq = grpc_completion_queue_create_for_next(NULL);
	return f;
}

static void drain_destroy_cq(grpc_completion_queue *cq)
{
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
}

static void fx_free(struct fx *f)
{
	if (f->ch)
		grpc_channel_destroy(f->ch);
	drain_destroy_cq(f->cq);
	kn_otlp_grpc_shutdown(f->srv, kn_now_ns() + 5 * KN_NS_PER_SEC);
	kn_otlp_grpc_destroy(f->srv);
	grpc_shutdown();
	free(f->sink.last);
	pthread_mutex_destroy(&f->sink.mu);
	pthread_cond_destroy(&f->sink.cv);
	free(f);
}

static grpc_channel *channel_with_gzip(const char *target)
{
	grpc_arg a = { .type = GRPC_ARG_INTEGER,
		       .key = (char *)GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM,
		       .value.integer = GRPC_COMPRESS_GZIP };
	grpc_channel_args args = { .num_args = 1, .args = &a };
	grpc_channel_credentials *cr = grpc_insecure_credentials_create();
	grpc_channel *ch = grpc_channel_create(target, cr, &args);
	grpc_channel_credentials_release(cr);
	return ch;
}

/* ---- requests ------------------------------------------------------------ */

/* An ExportTraceServiceRequest with nspans spans named by name_len 'a's. */
static uint8_t *make_request(unsigned nspans, size_t name_len, size_t *len)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
		OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
		OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
	Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
	Opentelemetry__Proto__Trace__V1__Span *spans = calloc(nspans, sizeof *spans);
	Opentelemetry__Proto__Trace__V1__Span **sp = calloc(nspans, sizeof *sp);
	uint8_t tid[16], sid[8];
	char *name = malloc(name_len + 1);
	uint8_t *buf;

	memset(name, 'a', name_len);
	name[name_len] = '\0';
	for (unsigned i = 0; i < nspans; i++) {
		Opentelemetry__Proto__Trace__V1__Span init =
			OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
		spans[i] = init;
		memset(tid, (int)(i % 250) + 1, sizeof tid);
		memset(sid, (int)(i % 250) + 2, sizeof sid);
		spans[i].trace_id.data = tid;
		spans[i].trace_id.len = 16;
		spans[i].span_id.data = sid;
		spans[i].span_id.len = 8;
		spans[i].name = name;
		spans[i].start_time_unix_nano = 1000 + i;
		spans[i].end_time_unix_nano = 2000 + i;
		sp[i] = &spans[i];
	}
	ss.n_spans = nspans;
	ss.spans = sp;
	rs.n_scope_spans = 1;
	rs.scope_spans = &ssp;
	req.n_resource_spans = 1;
	req.resource_spans = &rsp;
	*len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
		&req);
	buf = malloc(*len);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
	free(spans);
	free(sp);
	free(name);
	return buf;
}

/* ---- client call ----------------------------------------------------------- */

struct ccall {
	grpc_call *call;
	grpc_byte_buffer *send, *recv;
	grpc_metadata_array init_md, trailers;
	grpc_status_code status;
	grpc_slice details;
	grpc_metadata md[2];
	size_t nmd;
};

static void ccall_start(struct ccall *c, grpc_channel *ch, grpc_completion_queue *cq,
			const char *method, const uint8_t *req, size_t len, int deadline_s,
			void *tag)
{
	grpc_slice m = grpc_slice_from_static_string(method);
	grpc_slice body = grpc_slice_from_copied_buffer((const char *)req, len);
	grpc_op ops[6];
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
					     gpr_time_from_seconds(deadline_s, GPR_TIMESPAN));

	c->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m, NULL,
					   deadline, NULL);
	assert_non_null(c->call);
	c->send = grpc_raw_byte_buffer_create(&body, 1);
	grpc_slice_unref(body);
	c->recv = NULL;
	grpc_metadata_array_init(&c->init_md);
	grpc_metadata_array_init(&c->trailers);
	c->details = grpc_empty_slice();
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = c->nmd;
	ops[0].data.send_initial_metadata.metadata = c->nmd ? c->md : NULL;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = c->send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &c->recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &c->trailers;
	ops[5].data.recv_status_on_client.status = &c->status;
	ops[5].data.recv_status_on_client.status_details = &c->details;
	assert_int_equal(grpc_call_start_batch(c->call, ops, 6, tag, NULL), GRPC_CALL_OK);
}

static void ccall_free(struct ccall *c)
{
	if (c->send)
		grpc_byte_buffer_destroy(c->send);
	if (c->recv)
		grpc_byte_buffer_destroy(c->recv);
	grpc_metadata_array_destroy(&c->init_md);
	grpc_metadata_array_destroy(&c->trailers);
	grpc_slice_unref(c->details);
	if (c->call)
		grpc_call_unref(c->call);
	memset(c, 0, sizeof *c);
}

/* Waits (bounded) for the next client completion and returns its tag. */
static void *cq_wait(grpc_completion_queue *cq)
{
	grpc_event ev = grpc_completion_queue_next(
		cq, gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(WAIT_S, GPR_TIMESPAN)),
		NULL);
	assert_int_equal(ev.type, GRPC_OP_COMPLETE);
	assert_true(ev.success);
	return ev.tag;
}

static void ccall_run(struct fx *f, grpc_channel *ch, struct ccall *c, const char *method,
		      const uint8_t *req, size_t len)
{
	ccall_start(c, ch ? ch : f->ch, f->cq, method, req, len, WAIT_S, c);
	assert_ptr_equal(cq_wait(f->cq), c);
}

/* Flattens a received byte buffer. Caller frees. */
static uint8_t *bb_bytes(grpc_byte_buffer *bb, size_t *len)
{
	grpc_byte_buffer_reader r;
	grpc_slice s;
	uint8_t *out;

	assert_true(grpc_byte_buffer_reader_init(&r, bb));
	s = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	*len = GRPC_SLICE_LENGTH(s);
	out = malloc(*len ? *len : 1);
	memcpy(out, GRPC_SLICE_START_PTR(s), *len);
	grpc_slice_unref(s);
	return out;
}

static int details_eq(const struct ccall *c, const char *s)
{
	return grpc_slice_str_cmp(c->details, s) == 0;
}

static int details_has(const struct ccall *c, const char *s)
{
	return memmem(GRPC_SLICE_START_PTR(c->details), GRPC_SLICE_LENGTH(c->details), s,
		      strlen(s)) != NULL;
}

#define EXPORT KN_OTLP_GRPC_EXPORT_METHOD

/* ---- cases --------------------------------------------------------------- */

static void test_valid_request(void **state)
{
	(void)state;
	struct fx *f = fx_new(2, 0, 0);
	struct ccall c = { 0 };
	size_t len, rlen;
	uint8_t *req = make_request(5, 20, &len);
	uint8_t *resp;

	ccall_run(f, NULL, &c, EXPORT, req, len);
	assert_int_equal(c.status, GRPC_STATUS_OK);
	assert_non_null(c.recv);
	resp = bb_bytes(c.recv, &rlen);
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *r =
		opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
			NULL, rlen, resp);
	assert_non_null(r);
	assert_null(r->partial_success);
	opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(
		r, NULL);
	assert_int_equal(f->sink.ingests, 1);
	assert_int_equal(f->sink.spans, 5);
	assert_int_equal(f->sink.decode_errors, 0);
	assert_int_equal(f->sink.bad_thread, 0);
	assert_int_equal(f->sink.last_len, len);
	assert_memory_equal(f->sink.last, req, len);
	assert_false(kn_tracectx_present(&f->sink.last_tc));
	struct kn_otlp_grpc_stats st;
	kn_otlp_grpc_stats(f->srv, &st);
	assert_int_equal(st.payload_copies, 0); /* a small message is one slice: no copy */
	assert_int_equal(st.ok, 1);
	free(resp);
	free(req);
	ccall_free(&c);
	fx_free(f);
}

static void test_partial_success(void **state)
{
	(void)state;
	struct fx *f = fx_new(1, 0, 0);
	struct ccall c = { 0 };
	size_t len, rlen;
	uint8_t *req = make_request(6, 8, &len);
	uint8_t *resp;

	f->sink.mode = MODE_REJECT;
	ccall_run(f, NULL, &c, EXPORT, req, len);
	assert_int_equal(c.status, GRPC_STATUS_OK);
	assert_non_null(c.recv);
	resp = bb_bytes(c.recv, &rlen);
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *r =
		opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
			NULL, rlen, resp);
	assert_non_null(r);
	assert_non_null(r->partial_success);
	assert_int_equal(r->partial_success->rejected_spans, 2);
	assert_string_equal(r->partial_success->error_message,
			    "2 spans: trace_id must be 16 bytes");
	opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(
		r, NULL);
	free(resp);
	free(req);
	ccall_free(&c);
	fx_free(f);
}

static void test_invalid_argument(void **state)
{
	(void)state;
	struct fx *f = fx_new(1, 0, 0);
	struct ccall c = { 0 };
	size_t len;
	uint8_t *req = make_request(1, 8, &len);

	f->sink.mode = MODE_INVALID;
	ccall_run(f, NULL, &c, EXPORT, req, len);
	assert_int_equal(c.status, GRPC_STATUS_INVALID_ARGUMENT);
	assert_true(details_eq(&c, "resource_spans[0]: bad wire type"));
	free(req);
	ccall_free(&c);
	fx_free(f);
}

static void test_unavailable_retry_info(void **state)
{
	(void)state;
	struct fx *f = fx_new(1, 0, 0);
	struct ccall c = { 0 };
	size_t len;
	uint8_t *req = make_request(1, 8, &len);
	const grpc_metadata *bin = NULL;

	f->sink.mode = MODE_AGAIN;
	ccall_run(f, NULL, &c, EXPORT, req, len);
	assert_int_equal(c.status, GRPC_STATUS_UNAVAILABLE);
	assert_true(details_eq(&c, "memory budget spent"));
	for (size_t i = 0; i < c.trailers.count; i++)
		if (grpc_slice_str_cmp(c.trailers.metadata[i].key, "grpc-status-details-bin") == 0)
			bin = &c.trailers.metadata[i];
	assert_non_null(bin);
	Google__Rpc__Status *st = google__rpc__status__unpack(
		NULL, GRPC_SLICE_LENGTH(bin->value), GRPC_SLICE_START_PTR(bin->value));
	assert_non_null(st);
	assert_int_equal(st->code, 14);
	assert_string_equal(st->message, "memory budget spent");
	assert_int_equal(st->n_details, 1);
	assert_string_equal(st->details[0]->type_url, "type.googleapis.com/google.rpc.RetryInfo");
	Google__Rpc__RetryInfo *ri = google__rpc__retry_info__unpack(
		NULL, st->details[0]->value.len, st->details[0]->value.data);
	assert_non_null(ri);
	assert_non_null(ri->retry_delay);
	assert_int_equal(ri->retry_delay->seconds, 7);
	assert_int_equal(ri->retry_delay->nanos, 250000000); /* milliseconds survive */
	google__rpc__retry_info__free_unpacked(ri, NULL);
	google__rpc__status__free_unpacked(st, NULL);
	free(req);
	ccall_free(&c);
	fx_free(f);
}

static void test_too_large(void **state)
{
	(void)state;
	struct fx *f = fx_new(1, 1, 0);
	struct ccall c = { 0 };
	size_t len;
	uint8_t *req = make_request(3, 600 * 1024, &len); /* ~1.8 MiB > 1 MiB */

	ccall_run(f, NULL, &c, EXPORT, req, len);
	assert_int_equal(c.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
	/* libgrpc refuses it (its own status text); the receiver sees the
	 * receive fail and counts it once, as too_large */
	assert_true(details_has(&c, "Received message larger than max"));
	assert_int_equal(wait_too_large(&f->sink, 1), 1);
	assert_int_equal(f->sink.ingests, 0);
	assert_int_equal(f->sink.refused_other, 0);
	struct kn_otlp_grpc_stats st;
	kn_otlp_grpc_stats(f->srv, &st);
	assert_int_equal(st.too_large, 1);
	assert_int_equal(st.calls, 1);
	free(req);
	ccall_free(&c);

	/* just under the limit passes; the server keeps serving after the refusal */
	req = make_request(1, 1000 * 1024, &len);
	assert_true(len < 1024 * 1024);
	ccall_run(f, NULL, &c, EXPORT, req, len);
	assert_int_equal(c.status, GRPC_STATUS_OK);
	assert_int_equal(f->sink.ingests, 1);
	assert_int_equal(f->sink.last_len, len);
	assert_memory_equal(f->sink.last, req, len);
	free(req);
	ccall_free(&c);
	req = make_request(2, 8, &len);
	ccall_run(f, NULL, &c, EXPORT, req, len);
	assert_int_equal(c.status, GRPC_STATUS_OK);
	assert_int_equal(f->sink.ingests, 2);
	assert_int_equal(f->sink.refused_too_large, 1);
	kn_otlp_grpc_stats(f->srv, &st);
	assert_int_equal(st.too_large, 1);
	assert_int_equal(st.ok, 2);
	free(req);
	ccall_free(&c);
	fx_free(f);
}

/* libgrpc's resource quota: the request-bytes bound of the memory limit,
 * never below what one legal message needs (received and inflated) plus
 * slack; none without a limit. A legal message near the size limit still
 * passes with the quota at its floor. */
static void test_memory_quota(void **state)
{
	(void)state;
	struct kn_otlp_grpc_stats st;
	struct ccall c = { 0 };
	size_t len;
	uint8_t *req;

	kn_budget_req_set_limit(0);
	struct fx *f = fx_new(1, 1, 0);
	kn_otlp_grpc_stats(f->srv, &st);
	assert_int_equal(st.quota_bytes, 0);
	fx_free(f);

	kn_budget_req_set_limit((size_t)64 << 20);
	f = fx_new(1, 1, 0);
	kn_otlp_grpc_stats(f->srv, &st);
	assert_int_equal(st.quota_bytes, (size_t)64 << 20);
	fx_free(f);

	kn_budget_req_set_limit((size_t)1 << 20); /* less than one 4 MiB message */
	f = fx_new(1, 4, 0);
	kn_otlp_grpc_stats(f->srv, &st);
	assert_int_equal(st.quota_bytes, (size_t)(2 * 4 + 4) << 20);
	f->sink.keep_copy = 0;
	req = make_request(4, 1000 * 1024, &len); /* ~3.9 MiB */
	assert_true(len < (size_t)4 << 20);
	for (int i = 0; i < 3; i++) {
		ccall_run(f, NULL, &c, EXPORT, req, len);
		assert_int_equal(c.status, GRPC_STATUS_OK);
		ccall_free(&c);
	}
	assert_int_equal(f->sink.ingests, 3);
	free(req);
	fx_free(f);
	kn_budget_req_set_limit(0);
}

static void test_gzip(void **state)
{
	(void)state;
	struct fx *f = fx_new(1, 1, 0);
	grpc_channel *gz = channel_with_gzip(f->target);
	struct ccall c = { 0 };
	size_t len;
	/* ~600 KiB of 'a's: gzip shrinks it to a few KiB */
	uint8_t *req = make_request(3, 200 * 1024, &len);

	ccall_run(f, gz, &c, EXPORT, req, len);
	assert_int_equal(c.status, GRPC_STATUS_OK);
	assert_int_equal(f->sink.ingests, 1);
	assert_int_equal(f->sink.last_len, len);
	assert_memory_equal(f->sink.last, req, len);
	struct kn_otlp_grpc_stats st;
	kn_otlp_grpc_stats(f->srv, &st);
	print_message("gzip: %zu-byte request, gathered from several slices: %s\n", len,
		      st.payload_copies ? "yes" : "no (one slice)");
	/* inflated by the receiver (bounded), not by libgrpc */
	assert_int_equal(st.decompressed, 1);
	free(req);
	ccall_free(&c);

	/* the size limit applies after decompression: ~1.8 MiB that is a few KiB on the wire */
	req = make_request(3, 600 * 1024, &len);
	ccall_run(f, gz, &c, EXPORT, req, len);
	assert_int_equal(c.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_int_equal(wait_too_large(&f->sink, 1), 1);
	assert_int_equal(f->sink.ingests, 1);
	free(req);
	ccall_free(&c);
	grpc_channel_destroy(gz);
	fx_free(f);
}

static void test_unknown_method(void **state)
{
	(void)state;
	struct fx *f = fx_new(2, 0, 0);
	struct ccall c = { 0 };
	size_t len;
	uint8_t *req = make_request(1, 8, &len);

	/* a short deadline: a hang would end in DEADLINE_EXCEEDED, not UNIMPLEMENTED */
	ccall_start(&c, f->ch, f->cq, "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
		    req, len, 10, &c);
	assert_ptr_equal(cq_wait(f->cq), &c);
	assert_int_equal(c.status, GRPC_STATUS_UNIMPLEMENTED);
	assert_int_equal(f->sink.refused_unimplemented, 1);
	assert_int_equal(f->sink.ingests, 0);
	ccall_free(&c);

	/* the unknown-method slot is re-requested: a second one is answered too */
	ccall_start(&c, f->ch, f->cq, "/nope.Service/Method", req, len, 10, &c);
	assert_ptr_equal(cq_wait(f->cq), &c);
	assert_int_equal(c.status, GRPC_STATUS_UNIMPLEMENTED);
	assert_int_equal(f->sink.refused_unimplemented, 2);
	ccall_free(&c);
	free(req);
	fx_free(f);
}

static void test_traceparent(void **state)
{
	(void)state;
	struct fx *f = fx_new(1, 0, 0);
	struct ccall c = { 0 };
	size_t len;
	uint8_t *req = make_request(1, 8, &len);
	const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

	c.md[0].key = grpc_slice_from_static_string("traceparent");
	c.md[0].value = grpc_slice_from_static_string(tp);
	c.md[1].key = grpc_slice_from_static_string("tracestate");
	c.md[1].value = grpc_slice_from_static_string("congo=t61rcWkgMzE");
	c.nmd = 2;
	ccall_run(f, NULL, &c, EXPORT, req, len);
	assert_int_equal(c.status, GRPC_STATUS_OK);
	assert_true(kn_tracectx_present(&f->sink.last_tc));
	assert_string_equal(f->sink.last_tc.traceparent, tp);
	assert_string_equal(f->sink.last_tc.tracestate, "congo=t61rcWkgMzE");
	free(req);
	ccall_free(&c);
	fx_free(f);
}

#define NCONC 300
#define NCHAN 6

static void test_concurrent_calls(void **state)
{
	(void)state;
	struct fx *f = fx_new(3, 0, 4);
	grpc_channel *chs[NCHAN];
	struct ccall *calls = calloc(NCONC, sizeof *calls);
	size_t len;
	uint8_t *req = make_request(4, 16, &len);
	unsigned ok = 0;

	f->sink.keep_copy = 0;
	for (int i = 0; i < NCHAN; i++) {
		grpc_channel_credentials *cr = grpc_insecure_credentials_create();
		chs[i] = grpc_channel_create(f->target, cr, NULL);
		grpc_channel_credentials_release(cr);
	}
	/* all outstanding at once: more than the server's 3 x 4 requested slots */
	for (int i = 0; i < NCONC; i++)
		ccall_start(&calls[i], chs[i % NCHAN], f->cq, EXPORT, req, len, WAIT_S, &calls[i]);
	for (int i = 0; i < NCONC; i++) {
		struct ccall *c = cq_wait(f->cq);
		assert_true(c >= calls && c < calls + NCONC);
		if (c->status == GRPC_STATUS_OK)
			ok++;
	}
	assert_int_equal(ok, NCONC);
	assert_int_equal(f->sink.ingests, NCONC);
	assert_int_equal(f->sink.spans, 4 * NCONC);
	assert_int_equal(f->sink.bad_thread, 0);
	print_message("concurrent: calls per server thread %u %u %u\n", f->sink.per_thread[0],
		      f->sink.per_thread[1], f->sink.per_thread[2]);
	struct kn_otlp_grpc_stats st;
	kn_otlp_grpc_stats(f->srv, &st);
	assert_int_equal(st.calls, NCONC);
	assert_int_equal(st.ok, NCONC);
	for (int i = 0; i < NCONC; i++)
		ccall_free(&calls[i]);
	for (int i = 0; i < NCHAN; i++)
		grpc_channel_destroy(chs[i]);
	free(calls);
	free(req);
	fx_free(f);
}

/* ---- shutdown ------------------------------------------------------------ */

struct shut_arg {
	struct kn_otlp_grpc *srv;
	uint64_t grace_ns;
};

static void *shutdown_thread(void *p)
{
	struct shut_arg *a = p;
	kn_otlp_grpc_shutdown(a->srv, kn_now_ns() + a->grace_ns);
	return NULL;
}

static void wait_blocked(struct test_sink *ts)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_S;
	pthread_mutex_lock(&ts->mu);
	while (!ts->blocked)
		assert_int_equal(pthread_cond_timedwait(&ts->cv, &ts->mu, &until), 0);
	pthread_mutex_unlock(&ts->mu);
}

static void release_sink(struct test_sink *ts)
{
	pthread_mutex_lock(&ts->mu);
	ts->release = 1;
	pthread_cond_broadcast(&ts->cv);
	pthread_mutex_unlock(&ts->mu);
}

/* Graceful: shutdown starts while a call sits in the sink; the call is still
 * answered OK. The client sees shutdown start as its channel leaving READY
 * (the server's GOAWAY), and only then is the sink released. */
static void test_shutdown_graceful_in_flight(void **state)
{
	(void)state;
	struct fx *f = fx_new(1, 0, 0);
	struct ccall c = { 0 };
	size_t len;
	uint8_t *req = make_request(2, 8, &len);
	struct shut_arg a = { f->srv, 60 * KN_NS_PER_SEC };
	pthread_t th;
	int watch_tag;

	f->sink.mode = MODE_BLOCK;
	ccall_start(&c, f->ch, f->cq, EXPORT, req, len, WAIT_S, &c);
	wait_blocked(&f->sink);
	assert_int_equal(grpc_channel_check_connectivity_state(f->ch, 0), GRPC_CHANNEL_READY);
	grpc_channel_watch_connectivity_state(
		f->ch, GRPC_CHANNEL_READY,
		gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(WAIT_S, GPR_TIMESPAN)),
		f->cq, &watch_tag);
	assert_int_equal(pthread_create(&th, NULL, shutdown_thread, &a), 0);
	assert_ptr_equal(cq_wait(f->cq), &watch_tag); /* GOAWAY seen: shutdown has begun */
	release_sink(&f->sink);
	assert_ptr_equal(cq_wait(f->cq), &c);
	assert_int_equal(c.status, GRPC_STATUS_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(f->sink.ingests, 1);
	kn_otlp_grpc_shutdown(f->srv, 0); /* twice is safe */
	free(req);
	ccall_free(&c);
	fx_free(f);
}

/* Deadline: the grace ends while a call sits in the sink; the server cancels
 * it (the client sees CANCELLED while the sink is still blocked), and the
 * shutdown completes once the sink returns. */
static void test_shutdown_deadline_cancels(void **state)
{
	(void)state;
	struct fx *f = fx_new(1, 0, 0);
	struct ccall c = { 0 };
	size_t len;
	uint8_t *req = make_request(2, 8, &len);
	struct shut_arg a = { f->srv, 50 * KN_NS_PER_MS };
	pthread_t th;

	f->sink.mode = MODE_BLOCK;
	ccall_start(&c, f->ch, f->cq, EXPORT, req, len, WAIT_S, &c);
	wait_blocked(&f->sink);
	assert_int_equal(pthread_create(&th, NULL, shutdown_thread, &a), 0);
	assert_ptr_equal(cq_wait(f->cq), &c);
	/* cancel_all_calls also drops the connection: CANCELLED or UNAVAILABLE */
	assert_true(c.status == GRPC_STATUS_CANCELLED || c.status == GRPC_STATUS_UNAVAILABLE);
	release_sink(&f->sink);
	assert_int_equal(pthread_join(th, NULL), 0);
	free(req);
	ccall_free(&c);
	fx_free(f);
}

static void test_lifecycle_edges(void **state)
{
	(void)state;
	struct kn_err err = { { 0 } };
	struct kn_ingest_sink s = { sink_ingest, sink_refused, NULL };
	struct kn_otlp_grpc_opts bad = { .endpoint = "127.0.0.1" };
	struct kn_otlp_grpc *srv;

	kn_otlp_grpc_destroy(NULL);
	kn_otlp_grpc_shutdown(NULL, 0);
	assert_null(kn_otlp_grpc_create(&bad, s, &err));
	assert_non_null(strstr(err.msg, "endpoint"));
	bad.endpoint = "127.0.0.1:99999";
	assert_null(kn_otlp_grpc_create(&bad, s, &err));
	assert_non_null(strstr(err.msg, "endpoint"));

	/* shutdown before start, twice, then destroy */
	srv = kn_otlp_grpc_create(NULL, s, &err);
	assert_non_null(srv);
	assert_int_equal(kn_otlp_grpc_port(srv), 0);
	kn_otlp_grpc_shutdown(srv, 0);
	kn_otlp_grpc_shutdown(srv, 0);
	kn_otlp_grpc_destroy(srv);

	/* destroy without shutdown after start */
	struct kn_otlp_grpc_opts o = { .endpoint = "127.0.0.1:0", .threads = 1 };
	srv = kn_otlp_grpc_create(&o, s, &err);
	assert_non_null(srv);
	assert_int_equal(kn_otlp_grpc_start(srv, &err), KN_OK);
	assert_int_equal(kn_otlp_grpc_start(srv, &err), KN_ERR);

	/* a second server on the same port fails with the endpoint named */
	char ep[64];
	snprintf(ep, sizeof ep, "127.0.0.1:%u", kn_otlp_grpc_port(srv));
	struct kn_otlp_grpc_opts o2 = { .endpoint = ep, .threads = 1 };
	struct kn_otlp_grpc *srv2 = kn_otlp_grpc_create(&o2, s, &err);
	assert_non_null(srv2);
	assert_int_equal(kn_otlp_grpc_start(srv2, &err), KN_ERR);
	assert_non_null(strstr(err.msg, "endpoint"));
	kn_otlp_grpc_destroy(srv2);
	kn_otlp_grpc_destroy(srv);
}

/* ---- cost of a call (printed, not asserted) -------------------------------- */

static double run_calls(struct fx *f, unsigned total, unsigned window, const uint8_t *req,
			size_t len)
{
	struct ccall *calls = calloc(window, sizeof *calls);
	unsigned started = 0, done = 0;
	uint64_t t0 = kn_now_ns();

	for (; started < window && started < total; started++)
		ccall_start(&calls[started], f->ch, f->cq, EXPORT, req, len, WAIT_S, &calls[started]);
	while (done < total) {
		struct ccall *c = cq_wait(f->cq);
		assert_int_equal(c->status, GRPC_STATUS_OK);
		ccall_free(c);
		done++;
		if (started < total) {
			ccall_start(c, f->ch, f->cq, EXPORT, req, len, WAIT_S, c);
			started++;
		}
	}
	free(calls);
	return (double)total / ((double)(kn_now_ns() - t0) / 1e9);
}

static void test_cost_per_call(void **state)
{
	(void)state;
	struct fx *f = fx_new(1, 0, 0);
	size_t len;
	uint8_t *req = make_request(10, 24, &len);
	const char *n = getenv("KN_GRPC_BENCH_CALLS");
	unsigned total = n ? (unsigned)atoi(n) : 3000;

	f->sink.keep_copy = 0;
	run_calls(f, 200, 16, req, len); /* warm up the connection */
	double serial = run_calls(f, total / 3, 1, req, len);
	double piped = run_calls(f, total, 32, req, len);
	print_message("cost: %zu-byte request (10 spans), 1 server thread, 1 connection: "
		      "%.0f req/s with 1 call in flight, %.0f req/s with 32 in flight\n",
		      len, serial, piped);
	free(req);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_request),
		cmocka_unit_test(test_partial_success),
		cmocka_unit_test(test_invalid_argument),
		cmocka_unit_test(test_unavailable_retry_info),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_memory_quota),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_unknown_method),
		cmocka_unit_test(test_traceparent),
		cmocka_unit_test(test_concurrent_calls),
		cmocka_unit_test(test_shutdown_graceful_in_flight),
		cmocka_unit_test(test_shutdown_deadline_cancels),
		cmocka_unit_test(test_lifecycle_edges),
		cmocka_unit_test(test_cost_per_call),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
