/* SPDX-License-Identifier: Apache-2.0
 * test_otlp_grpc_tls: the OTLP/gRPC receiver with `tls` against a real
 * libgrpc client (SSL channel credentials). The certificates are made at
 * test time with the openssl command (kn_test_certs): a CA, a server
 * certificate for localhost / 127.0.0.1 signed by it (and a second one with
 * another serial for the reload case), a client certificate signed by it and
 * one signed by another CA. Calls are waited for on a completion queue with
 * a deadline; the reload case polls the certificate a fresh TLS handshake
 * sees (openssl s_client) until it changes or a deadline passes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "collector/core/kn_clock.h"
#include "collector/grpc/kn_otlp_grpc.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "kn_test_certs.h"

#define WAIT_S 20      /* generous bound for every wait */
#define FAIL_CALL_S 10 /* deadline of calls that must fail */

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s", kn_test_cert_path(name));
}

static char *slurp(const char *name)
{
	char p[512];
	FILE *f;
	long n;
	char *b;

	path_of(p, sizeof p, name);
	f = fopen(p, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)n + 1);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	b[n] = '\0';
	fclose(f);
	return b;
}

static int group_setup(void **state)
{
	(void)state;
	if (kn_test_certs_make("kn-grpc-tls-") != 0)
		return -1;
	grpc_init();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	grpc_shutdown();
	return kn_test_certs_remove();
}

/* ---- server ------------------------------------------------------------ */

struct srv {
	pthread_mutex_t mu;
	unsigned ingests;
	struct kn_tls_server_cfg tls;
	char cert[512], key[512], ca[512];
	struct kn_otlp_grpc *s;
	char target[64];
};

static int sink_ingest(void *ctx, uint32_t thread, const uint8_t *req, size_t len,
		       const struct kn_tracectx *tc, struct kn_ingest_result *res)
{
	struct srv *v = ctx;
	(void)thread;
	(void)req;
	(void)len;
	(void)tc;
	pthread_mutex_lock(&v->mu);
	v->ingests++;
	pthread_mutex_unlock(&v->mu);
	res->accepted = 1;
	return KN_OK;
}

static void sink_refused(void *ctx, uint32_t thread, const char *reason)
{
	(void)ctx;
	(void)thread;
	(void)reason;
}

static unsigned ingests(struct srv *v)
{
	pthread_mutex_lock(&v->mu);
	unsigned n = v->ingests;
	pthread_mutex_unlock(&v->mu);
	return n;
}

/* A server config over the test certificates; client_ca NULL = not mutual. */
static void srv_init(struct srv *v, const char *cert, const char *key, const char *client_ca)
{
	memset(v, 0, sizeof *v);
	pthread_mutex_init(&v->mu, NULL);
	path_of(v->cert, sizeof v->cert, cert);
	path_of(v->key, sizeof v->key, key);
	if (client_ca)
		path_of(v->ca, sizeof v->ca, client_ca);
	v->tls.enabled = 1;
	v->tls.cert_file = v->cert;
	v->tls.key_file = v->key;
	v->tls.client_ca_file = v->ca;
	v->tls.min_version = (char *)"1.2";
	v->tls.max_version = (char *)"";
}

static struct kn_otlp_grpc *srv_create(struct srv *v, struct kn_err *err)
{
	struct kn_otlp_grpc_opts o = {
		.endpoint = "127.0.0.1:0",
		.threads = 1,
		.tls = &v->tls,
	};
	struct kn_ingest_sink s = {sink_ingest, sink_refused, v};
	return kn_otlp_grpc_create(&o, s, err);
}

static void srv_start(struct srv *v)
{
	struct kn_err err = {{0}};
	v->s = srv_create(v, &err);
	assert_non_null(v->s);
	if (kn_otlp_grpc_start(v->s, &err) != KN_OK)
		fail_msg("start: %s", err.msg);
	snprintf(v->target, sizeof v->target, "127.0.0.1:%u", kn_otlp_grpc_port(v->s));
}

static void srv_free(struct srv *v)
{
	kn_otlp_grpc_shutdown(v->s, kn_now_ns() + 5 * KN_NS_PER_SEC);
	kn_otlp_grpc_destroy(v->s);
	pthread_mutex_destroy(&v->mu);
}

/* ---- client ------------------------------------------------------------ */

/* who: NULL = no client certificate, else "client" / "stranger". */
static grpc_channel *tls_channel(const char *target, const char *who)
{
	char *ca = slurp("ca.crt"), *key = NULL, *crt = NULL;
	grpc_ssl_pem_key_cert_pair pair;
	grpc_arg a = {.type = GRPC_ARG_STRING,
		      .key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
		      .value.string = (char *)"localhost"};
	grpc_channel_args args = {.num_args = 1, .args = &a};
	grpc_channel_credentials *cr;
	grpc_channel *ch;

	if (who) {
		char n[64];
		snprintf(n, sizeof n, "%s.key", who);
		key = slurp(n);
		snprintf(n, sizeof n, "%s.crt", who);
		crt = slurp(n);
		pair.private_key = key;
		pair.cert_chain = crt;
	}
	cr = grpc_ssl_credentials_create(ca, who ? &pair : NULL, NULL, NULL);
	assert_non_null(cr);
	ch = grpc_channel_create(target, cr, &args);
	grpc_channel_credentials_release(cr);
	free(ca);
	free(key);
	free(crt);
	return ch;
}

static grpc_channel *plain_channel(const char *target)
{
	grpc_channel_credentials *cr = grpc_insecure_credentials_create();
	grpc_channel *ch = grpc_channel_create(target, cr, NULL);
	grpc_channel_credentials_release(cr);
	return ch;
}

static uint8_t *make_request(size_t *len)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
		OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
		OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
	Opentelemetry__Proto__Trace__V1__Span sp = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
	Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
	Opentelemetry__Proto__Trace__V1__Span *spp = &sp;
	uint8_t tid[16], sid[8];
	uint8_t *buf;

	memset(tid, 1, sizeof tid);
	memset(sid, 2, sizeof sid);
	sp.trace_id.data = tid;
	sp.trace_id.len = 16;
	sp.span_id.data = sid;
	sp.span_id.len = 8;
	sp.name = (char *)"tls";
	ss.n_spans = 1;
	ss.spans = &spp;
	rs.n_scope_spans = 1;
	rs.scope_spans = &ssp;
	req.n_resource_spans = 1;
	req.resource_spans = &rsp;
	*len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
		&req);
	buf = malloc(*len);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
	return buf;
}

/* One Export on ch; returns its status. The wait is bounded by the call's
 * deadline plus a margin. */
static grpc_status_code export_once(grpc_channel *ch, int deadline_s)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	size_t len;
	uint8_t *req = make_request(&len);
	grpc_slice body = grpc_slice_from_copied_buffer((const char *)req, len);
	grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&body, 1), *recv = NULL;
	grpc_metadata_array init_md, trailers;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
					     gpr_time_from_seconds(deadline_s, GPR_TIMESPAN));
	grpc_call *call = grpc_channel_create_call(
		ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
		grpc_slice_from_static_string(KN_OTLP_GRPC_EXPORT_METHOD), NULL, deadline, NULL);
	grpc_event ev;
	int tag;

	assert_non_null(call);
	grpc_slice_unref(body);
	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trailers);
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
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
	ops[5].data.recv_status_on_client.status_details = &details;
	assert_int_equal(grpc_call_start_batch(call, ops, 6, &tag, NULL), GRPC_CALL_OK);
	ev = grpc_completion_queue_next(
		cq, gpr_time_add(deadline, gpr_time_from_seconds(WAIT_S, GPR_TIMESPAN)), NULL);
	assert_int_equal(ev.type, GRPC_OP_COMPLETE);
	assert_ptr_equal(ev.tag, &tag);

	grpc_byte_buffer_destroy(send);
	if (recv)
		grpc_byte_buffer_destroy(recv);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trailers);
	grpc_slice_unref(details);
	grpc_call_unref(call);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	free(req);
	return status;
}

static void assert_refused(struct srv *v, grpc_channel *ch)
{
	struct kn_otlp_grpc_stats st;
	grpc_status_code c = export_once(ch, FAIL_CALL_S);
	assert_int_not_equal(c, GRPC_STATUS_OK);
	assert_int_equal(ingests(v), 0);
	kn_otlp_grpc_stats(v->s, &st);
	assert_int_equal(st.calls, 0);
}

/* ---- cases --------------------------------------------------------------- */

static void test_tls_export(void **state)
{
	(void)state;
	struct srv v;
	grpc_channel *ch;

	srv_init(&v, "server.crt", "server.key", NULL);
	srv_start(&v);
	ch = tls_channel(v.target, NULL);
	assert_int_equal(export_once(ch, WAIT_S), GRPC_STATUS_OK);
	assert_int_equal(export_once(ch, WAIT_S), GRPC_STATUS_OK);
	assert_int_equal(ingests(&v), 2);
	grpc_channel_destroy(ch);
	srv_free(&v);
}

static void test_plaintext_client_refused(void **state)
{
	(void)state;
	struct srv v;
	grpc_channel *ch;

	srv_init(&v, "server.crt", "server.key", NULL);
	srv_start(&v);
	ch = plain_channel(v.target);
	assert_refused(&v, ch);
	grpc_channel_destroy(ch);
	srv_free(&v);
}

static void test_mutual_tls(void **state)
{
	(void)state;
	struct srv v;
	grpc_channel *ch;

	srv_init(&v, "server.crt", "server.key", "ca.crt");
	srv_start(&v);

	ch = tls_channel(v.target, NULL); /* no client certificate */
	assert_refused(&v, ch);
	grpc_channel_destroy(ch);

	ch = tls_channel(v.target, "stranger"); /* signed by another CA */
	assert_refused(&v, ch);
	grpc_channel_destroy(ch);

	ch = plain_channel(v.target);
	assert_refused(&v, ch);
	grpc_channel_destroy(ch);

	ch = tls_channel(v.target, "client");
	assert_int_equal(export_once(ch, WAIT_S), GRPC_STATUS_OK);
	assert_int_equal(ingests(&v), 1);
	grpc_channel_destroy(ch);
	srv_free(&v);
}

/* The serial of the certificate a new TLS handshake on port sees; "" when
 * none could be read. */
static void served_serial(const char *target, char *out, size_t n)
{
	char cmd[512];
	FILE *p;

	snprintf(cmd, sizeof cmd,
		 "openssl s_client -connect %s -servername localhost -alpn h2 </dev/null "
		 "2>/dev/null | openssl x509 -noout -serial 2>/dev/null",
		 target);
	out[0] = '\0';
	p = popen(cmd, "r");
	assert_non_null(p);
	if (!fgets(out, (int)n, p))
		out[0] = '\0';
	pclose(p);
	out[strcspn(out, "\r\n")] = '\0';
}

static void file_serial(const char *name, char *out, size_t n)
{
	char cmd[768];
	FILE *p;

	snprintf(cmd, sizeof cmd, "openssl x509 -noout -serial -in %s", kn_test_cert_path(name));
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(out, (int)n, p));
	pclose(p);
	out[strcspn(out, "\r\n")] = '\0';
}

static void test_reload(void **state)
{
	(void)state;
	struct srv v;
	grpc_channel *before, *after;
	char first[128], second[128], seen[128];
	uint64_t deadline;

	/* copies of the server files that the test can replace */
	assert_int_equal(kn_test_certs_sh("cp server.crt live.crt && cp server.key live.key"), 0);
	file_serial("server.crt", first, sizeof first);
	file_serial("server2.crt", second, sizeof second);
	assert_string_not_equal(first, second);

	srv_init(&v, "live.crt", "live.key", NULL);
	v.tls.reload_interval_ns = 1 * KN_NS_PER_SEC;
	srv_start(&v);
	before = tls_channel(v.target, NULL);
	assert_int_equal(export_once(before, WAIT_S), GRPC_STATUS_OK);
	served_serial(v.target, seen, sizeof seen);
	assert_string_equal(seen, first);

	/* replace the certificate in one step (same key, another serial) */
	assert_int_equal(kn_test_certs_sh("cp server2.crt live.tmp && mv -f live.tmp live.crt"), 0);
	deadline = kn_now_ns() + WAIT_S * KN_NS_PER_SEC;
	for (;;) {
		served_serial(v.target, seen, sizeof seen);
		if (strcmp(seen, second) == 0 || kn_now_ns() > deadline)
			break;
		/* polling period of an outside observation, not synchronisation */
		nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
	}
	assert_string_equal(seen, second);

	/* the connection opened before keeps working; a new one works too */
	assert_int_equal(export_once(before, WAIT_S), GRPC_STATUS_OK);
	after = tls_channel(v.target, NULL);
	assert_int_equal(export_once(after, WAIT_S), GRPC_STATUS_OK);
	assert_int_equal(ingests(&v), 3);
	grpc_channel_destroy(after);
	grpc_channel_destroy(before);
	srv_free(&v);
}

static void test_versions(void **state)
{
	(void)state;
	struct srv v;
	struct kn_err err = {{0}};
	struct kn_otlp_grpc *s;

	srv_init(&v, "server.crt", "server.key", NULL);
	v.tls.min_version = (char *)"1.3";
	assert_null(srv_create(&v, &err));
	assert_string_equal(err.msg, "tls.min_version: \"1.3\" is not supported by the gRPC "
				     "receiver (libgrpc serves TLS 1.2 and 1.3)");

	v.tls.min_version = (char *)"1.0";
	assert_null(srv_create(&v, &err));
	assert_non_null(strstr(err.msg, "tls.min_version: \"1.0\" is not supported"));

	v.tls.min_version = (char *)"1.2";
	v.tls.max_version = (char *)"1.2";
	assert_null(srv_create(&v, &err));
	assert_non_null(strstr(err.msg, "tls.max_version: \"1.2\" is not supported"));

	v.tls.max_version = (char *)"1.3";
	s = srv_create(&v, &err);
	assert_non_null(s);
	kn_otlp_grpc_destroy(s);
	pthread_mutex_destroy(&v.mu);
}

/* Bad files fail create (so `kansatsu validate` names them) with err naming
 * the key. */
static void expect_create_error(const char *cert, const char *key, const char *ca,
				const char *want)
{
	struct srv v;
	struct kn_err err = {{0}};

	srv_init(&v, cert, key, ca);
	assert_null(srv_create(&v, &err));
	if (!strstr(err.msg, want))
		fail_msg("error \"%s\" does not name \"%s\"", err.msg, want);
	pthread_mutex_destroy(&v.mu);
}

static void test_bad_files(void **state)
{
	(void)state;
	assert_int_equal(kn_test_certs_sh("printf -- '-----BEGIN CERTIFICATE-----\\nbm90IGEgY2VydA==\\n"
			    "-----END CERTIFICATE-----\\n' > garbage.crt"),
			 0);
	/* a key that is not the certificate's */
	expect_create_error("server.crt", "client.key", NULL,
			    "tls.key_file: \"");
	expect_create_error("server.crt", "client.key", NULL, "is not the key of the certificate");
	expect_create_error("garbage.crt", "server.key", NULL,
			    "tls.cert_file: \"");
	expect_create_error("server.crt", "server.crt", NULL, "tls.key_file:");
	expect_create_error("missing.crt", "server.key", NULL, "tls.cert_file: cannot read");
	expect_create_error("server.crt", "server.key", "garbage.crt", "tls.client_ca_file:");
}

/* Files that changed between create and start fail start, naming the key,
 * before anything listens. */
static void test_bad_files_at_start(void **state)
{
	(void)state;
	struct srv v;
	struct kn_err err = {{0}};

	assert_int_equal(kn_test_certs_sh("cp server.crt start.crt && cp server.key start.key"), 0);
	srv_init(&v, "start.crt", "start.key", NULL);
	v.s = srv_create(&v, &err);
	assert_non_null(v.s);
	assert_int_equal(kn_test_certs_sh("cp client.key start.key"), 0);
	assert_int_equal(kn_otlp_grpc_start(v.s, &err), KN_ERR);
	if (!strstr(err.msg, "tls.key_file: \"") || !strstr(err.msg, "is not the key of"))
		fail_msg("start error: %s", err.msg);
	assert_int_equal(kn_otlp_grpc_port(v.s), 0);
	srv_free(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_export),
		cmocka_unit_test(test_plaintext_client_refused),
		cmocka_unit_test(test_mutual_tls),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_bad_files_at_start),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
