/* SPDX-License-Identifier: Apache-2.0
 * test_exporter_loadbalancing: the loadbalancing exporter. The ring alone
 * (pinned hash values, determinism, balance over 100k random trace ids,
 * about 1/N of the keys moving when one of N endpoints comes or goes, and
 * only to / from that endpoint), the service.name scanner, the config (paths
 * in messages) and the lifecycle; then end to end against real gRPC servers
 * (libgrpc core, insecure, 127.0.0.1:0) in the test: every span arrives
 * exactly once and every trace (or service) at exactly the endpoint the ring
 * names; an endpoint whose server stops answering is removed while batches
 * are queued for it, and those batches arrive at the remaining endpoints;
 * the dns resolver on "localhost" (via /etc/hosts); routing_key journey:
 * the journey id scanner (hex / bytes / invalid values), and producer and
 * consumer traces sharing a journey.id arriving at the endpoint of that id,
 * spans without one (or with an invalid one, counted) at their trace id's.
 * Synchronisation: servers signal a condition variable per received call;
 * exporter shutdown with a generous deadline drains and joins the senders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_clock.h"
#include "collector/core/kn_metrics.h"
#include "collector/wire/kn_wire.h"
#include "exporters/loadbalancing/kn_exporter_loadbalancing.h"
#include "exporters/loadbalancing/kn_lb_key.h"
#include "exporters/loadbalancing/kn_lb_resolve.h"
#include "exporters/loadbalancing/kn_lb_ring.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* ---- deterministic randomness ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void rnd_id(uint8_t *id, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rnd();
		memcpy(id + i, &v, n - i < 8 ? n - i : 8);
	}
}

/* ---- ring ---- */

static void test_hash_pinned(void **st)
{
	(void)st;
	/* The values kn_lb_ring.h documents; another implementation must match. */
	assert_true(kn_lb_hash("127.0.0.1:4317#0", 16) == 0x1857004cdb9e27b8ull);
	assert_true(kn_lb_hash("", 0) == 0xefd01f60ba992926ull);
	assert_true(kn_lb_hash("api", 3) == 0x1acb604947b13cd3ull);
	uint8_t id[16];
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)i;
	assert_true(kn_lb_key_trace(id) == 0xf110b958da43f7e6ull);
}

static const char *const five[] = {"10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317", "10.0.0.4:4317",
				   "sampler-4.tier:4317"};

static void test_ring_deterministic_and_balanced(void **st)
{
	(void)st;
	struct kn_err err;
	const char *shuffled[] = {five[3], five[0], five[4], five[1], five[3], five[2]}; /* with a duplicate */
	struct kn_lb_ring *a = kn_lb_ring_build(five, 5, &err), *b = kn_lb_ring_build(shuffled, 6, &err);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(b->n, 5);
	assert_true(kn_lb_ring_same(a, b));
	assert_int_equal(a->npoints, 5 * KN_LB_POINTS);
	for (uint32_t i = 0; i + 1 < a->npoints; i++)
		assert_true(a->points[i].hash <= a->points[i + 1].hash);
	unsigned count[5] = {0};
	const unsigned N = 100000;
	for (unsigned k = 0; k < N; k++) {
		uint8_t id[16];
		rnd_id(id, 16);
		uint64_t h = kn_lb_key_trace(id);
		uint32_t ea = kn_lb_ring_lookup(a, h), eb = kn_lb_ring_lookup(b, h);
		assert_int_equal(ea, eb);
		assert_string_equal(a->endpoints[ea], b->endpoints[eb]);
		count[ea]++;
	}
	for (int e = 0; e < 5; e++)
		if (count[e] < N / 5 * 7 / 10 || count[e] > N / 5 * 13 / 10)
			fail_msg("endpoint %s got %u of %u keys (want about %u)", a->endpoints[e], count[e], N, N / 5);
	/* keys past the last point wrap to the first one */
	assert_int_equal(kn_lb_ring_lookup(a, UINT64_MAX), a->points[0].ep);
	assert_int_equal(kn_lb_ring_lookup(a, 0), a->points[0].ep);
	assert_int_equal(kn_lb_ring_find(a, "10.0.0.3:4317"), 2);
	assert_int_equal(kn_lb_ring_find(a, "10.0.0.9:4317"), -1);
	kn_lb_ring_free(a);
	kn_lb_ring_free(b);
	assert_null(kn_lb_ring_build(five, 0, &err));
	kn_lb_ring_free(NULL);
}

static void test_ring_moves_about_one_nth(void **st)
{
	(void)st;
	struct kn_err err;
	const char *six[6] = {five[0], five[1], five[2], five[3], five[4], "10.0.0.9:4317"};
	const char *four[4] = {five[0], five[1], five[3], five[4]}; /* five[2] removed */
	struct kn_lb_ring *r5 = kn_lb_ring_build(five, 5, &err), *r6 = kn_lb_ring_build(six, 6, &err),
			  *r4 = kn_lb_ring_build(four, 4, &err);
	assert_non_null(r5);
	assert_non_null(r6);
	assert_non_null(r4);
	const unsigned N = 100000;
	unsigned moved_add = 0, moved_rm = 0;
	for (unsigned k = 0; k < N; k++) {
		uint8_t id[16];
		rnd_id(id, 16);
		uint64_t h = kn_lb_key_trace(id);
		const char *e5 = r5->endpoints[kn_lb_ring_lookup(r5, h)];
		const char *e6 = r6->endpoints[kn_lb_ring_lookup(r6, h)];
		const char *e4 = r4->endpoints[kn_lb_ring_lookup(r4, h)];
		if (strcmp(e5, e6) != 0) {
			moved_add++;
			assert_string_equal(e6, "10.0.0.9:4317"); /* only to the new endpoint */
		}
		if (strcmp(e5, e4) != 0) {
			moved_rm++;
			assert_string_equal(e5, five[2]); /* only from the removed endpoint */
		}
	}
	/* about 1/6 and 1/5, loosely */
	if (moved_add < N / 6 / 2 || moved_add > N / 6 * 3 / 2)
		fail_msg("adding one of 6 moved %u of %u keys", moved_add, N);
	if (moved_rm < N / 5 / 2 || moved_rm > N / 5 * 3 / 2)
		fail_msg("removing one of 5 moved %u of %u keys", moved_rm, N);
	kn_lb_ring_free(r4);
	kn_lb_ring_free(r5);
	kn_lb_ring_free(r6);
}

/* ---- encoding helpers ---- */

typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;

static size_t pack_resource(const char *svc, int as_int, uint8_t *out)
{
	AV av[2];
	KV kv[2], *kvs[2];
	for (int i = 0; i < 2; i++) {
		opentelemetry__proto__common__v1__any_value__init(&av[i]);
		opentelemetry__proto__common__v1__key_value__init(&kv[i]);
		kv[i].value = &av[i];
		kvs[i] = &kv[i];
	}
	kv[0].key = (char *)"host.name";
	av[0].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	av[0].string_value = (char *)"node-1";
	kv[1].key = (char *)"service.name";
	if (as_int) {
		av[1].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
		av[1].int_value = 7;
	} else {
		av[1].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		av[1].string_value = (char *)svc;
	}
	Opentelemetry__Proto__Resource__V1__Resource res;
	opentelemetry__proto__resource__v1__resource__init(&res);
	res.n_attributes = svc || as_int ? 2 : 1;
	res.attributes = kvs;
	return opentelemetry__proto__resource__v1__resource__pack(&res, out);
}

static void test_service_name_scan(void **st)
{
	(void)st;
	uint8_t buf[256];
	const uint8_t *name;
	size_t nl;
	size_t n = pack_resource("checkout", 0, buf);
	assert_int_equal(kn_lb_service_name(buf, n, &name, &nl), 1);
	assert_int_equal(nl, 8);
	assert_memory_equal(name, "checkout", 8);
	assert_true(kn_lb_key_service(buf, n) == kn_lb_hash("checkout", 8));
	n = pack_resource(NULL, 1, buf); /* service.name is an int: not a name */
	assert_int_equal(kn_lb_service_name(buf, n, &name, &nl), 0);
	assert_true(kn_lb_key_service(buf, n) == kn_lb_hash("", 0));
	n = pack_resource(NULL, 0, buf);
	assert_int_equal(kn_lb_service_name(buf, n, &name, &nl), 0);
	assert_int_equal(kn_lb_service_name(NULL, 0, &name, &nl), 0);
	n = pack_resource("api", 0, buf);
	for (size_t cut = 0; cut < n; cut++) /* truncated input is never read past its end */
		(void)kn_lb_service_name(buf, cut, &name, &nl);
	assert_int_equal(kn_lb_service_name(buf, n, &name, &nl), 1);
}

/* ---- config ---- */

static int apply(const char *yaml, struct kn_lb_cfg *cfg, struct kn_err *err)
{
	struct kn_cnode *root = NULL;
	memset(cfg, 0, sizeof *cfg);
	/* root the paths where the collector would */
	char wrapped[2048];
	snprintf(wrapped, sizeof wrapped, "exporters:\n  loadbalancing:\n%s", yaml);
	assert_int_equal(kn_config_parse(wrapped, strlen(wrapped), "<test>", &root, err), KN_OK);
	const struct kn_cnode *node = kn_cnode_get(kn_cnode_get(root, "exporters"), "loadbalancing");
	int rc = kn_cfg_apply_at(kn_exporter_loadbalancing.config_fields, node, "exporters.loadbalancing", cfg, err);
	if (rc == KN_OK)
		rc = kn_exporter_loadbalancing.validate(cfg, "exporters.loadbalancing", err);
	kn_cnode_free(root);
	return rc;
}

struct bad_cfg {
	const char *yaml;
	const char *msg;
};

static const struct bad_cfg bad_cfgs[] = {
	{"    resolver: {static: {hostnames: [a]}, dns: {hostname: b}}\n",
	 "exporters.loadbalancing.resolver: exactly one of static or dns"},
	{"    protocol: {otlp: {tls: {insecure: true}}}\n",
	 "exporters.loadbalancing.resolver: exactly one of static or dns"},
	{"    resolver: {static: {hostnames: []}}\n",
	 "exporters.loadbalancing.resolver.static.hostnames: at least one host[:port]"},
	{"    resolver: {static: {}}\n", "exporters.loadbalancing.resolver.static.hostnames: missing"},
	{"    resolver: {static: {hostnames: [\"a:4317\", \"::1\"]}}\n",
	 "exporters.loadbalancing.resolver.static.hostnames[1]: an IPv6 address needs brackets: \"[::1]:4317\""},
	{"    resolver: {static: {hostnames: [\"http://a:4317\"]}}\n",
	 "exporters.loadbalancing.resolver.static.hostnames[0]: expected host[:port] without scheme or path, got \"http://a:4317\""},
	{"    resolver: {static: {hostnames: [\"a:70000\"]}}\n",
	 "exporters.loadbalancing.resolver.static.hostnames[0]: port must be in [1, 65535], got \"a:70000\""},
	{"    resolver: {dns: {port: 4317}}\n", "exporters.loadbalancing.resolver.dns.hostname: missing"},
	{"    resolver: {dns: {hostname: x, interval: 0s}}\n",
	 "exporters.loadbalancing.resolver.dns.interval: must be more than 0"},
	{"    resolver: {k8s: {service: x}}\n", "exporters.loadbalancing.resolver.k8s: unknown key"},
	{"    resolver: {static: {hostnames: [a]}}\n    protocol: {otlp: {tls: {insecure_skip_verify: true}}}\n",
	 "exporters.loadbalancing.protocol.otlp.tls.insecure_skip_verify: not supported by the gRPC exporter; "
	 "give the server's CA in tls.ca_file"},
	{"    resolver: {static: {hostnames: [a]}}\n    protocol: {otlp: {compresion: gzip}}\n",
	 "exporters.loadbalancing.protocol.otlp.compresion: unknown key (did you mean \"compression\"?)"},
};

static void test_config_errors(void **st)
{
	(void)st;
	for (size_t i = 0; i < sizeof bad_cfgs / sizeof bad_cfgs[0]; i++) {
		struct kn_lb_cfg cfg;
		struct kn_err err = {{0}};
		int rc = apply(bad_cfgs[i].yaml, &cfg, &err);
		kn_cfg_free(kn_exporter_loadbalancing.config_fields, &cfg);
		if (rc == KN_OK)
			fail_msg("config %zu accepted; wanted: %s", i, bad_cfgs[i].msg);
		if (strcmp(err.msg, bad_cfgs[i].msg) != 0)
			fail_msg("config %zu:\n got: %s\nwant: %s", i, err.msg, bad_cfgs[i].msg);
	}
	/* routing_key is checked by the table's choices; the message names it */
	struct kn_lb_cfg cfg;
	struct kn_err err = {{0}};
	assert_int_equal(apply("    routing_key: spanID\n    resolver: {static: {hostnames: [a]}}\n", &cfg, &err),
			 KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.loadbalancing.routing_key"));
	kn_cfg_free(kn_exporter_loadbalancing.config_fields, &cfg);
}

static void test_config_values(void **st)
{
	(void)st;
	struct kn_lb_cfg cfg;
	struct kn_err err = {{0}};
	const char *yaml = "    routing_key: service\n"
			   "    protocol:\n"
			   "      otlp:\n"
			   "        tls: {insecure: true}\n"
			   "        compression: none\n"
			   "        timeout: 2s\n"
			   "        sending_queue: {num_consumers: 2}\n"
			   "    resolver:\n"
			   "      dns: {hostname: sampler.tier.svc, interval: 30s}\n";
	if (apply(yaml, &cfg, &err) != KN_OK)
		fail_msg("%s", err.msg);
	assert_string_equal(cfg.routing_key, "service");
	assert_true(cfg.protocol.otlp.tls.insecure);
	assert_string_equal(cfg.protocol.otlp.compression, "none");
	assert_null(cfg.protocol.otlp.endpoint);
	assert_true(cfg.protocol.otlp.sender.timeout_ns == 2 * KN_NS_PER_SEC);
	assert_int_equal(cfg.protocol.otlp.sender.queue.num_consumers, 2);
	assert_int_equal(cfg.protocol.otlp.sender.queue.queue_size, 65536);
	assert_true(cfg.resolver.has_dns);
	assert_false(cfg.resolver.has_static);
	assert_string_equal(cfg.resolver.dns.hostname, "sampler.tier.svc");
	assert_int_equal(cfg.resolver.dns.port, 4317);
	assert_true(cfg.resolver.dns.interval_ns == 30 * KN_NS_PER_SEC);
	assert_true(cfg.resolver.dns.timeout_ns == KN_NS_PER_SEC);
	kn_cfg_free(kn_exporter_loadbalancing.config_fields, &cfg);

	/* defaults: routing by trace id, protocol.otlp with the otlp defaults */
	if (apply("    resolver: {static: {hostnames: [\"b\", \"[::1]:5\"]}}\n", &cfg, &err) != KN_OK)
		fail_msg("%s", err.msg);
	assert_string_equal(cfg.routing_key, "traceID");
	assert_string_equal(cfg.protocol.otlp.compression, "gzip");
	assert_false(cfg.protocol.otlp.tls.insecure);
	assert_true(cfg.protocol.otlp.sender.timeout_ns == 5 * KN_NS_PER_SEC);
	kn_cfg_free(kn_exporter_loadbalancing.config_fields, &cfg);

	char out[64];
	assert_int_equal(kn_lb_normalize("b", "p", out, sizeof out, &err), KN_OK);
	assert_string_equal(out, "b:4317");
	assert_int_equal(kn_lb_normalize("[::1]", "p", out, sizeof out, &err), KN_OK);
	assert_string_equal(out, "[::1]:4317");
	assert_int_equal(kn_lb_normalize("10.0.0.2:55690", "p", out, sizeof out, &err), KN_OK);
	assert_string_equal(out, "10.0.0.2:55690");
}

/* ---- a real gRPC server per endpoint ---- */

#define TAG_NEW ((void *)1)
#define TAG_DONE ((void *)2)
#define TAG_SHUT ((void *)3)
#define MAX_STALLED 64

struct rec {
	uint8_t *p;
	size_t n;
};

struct server {
	grpc_server *srv;
	grpc_completion_queue *cq;
	void *method;
	int port;
	char endpoint[32];
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stall;                 /* hold calls unanswered */
	int calls;                 /* calls received (under mu) */
	struct rec *recs;          /* answered OK (under mu) */
	int nrecs, caprecs;
	grpc_call *stalled[MAX_STALLED];
	int nstalled;
};

static void answer_ok(struct server *sv, grpc_call *call)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse r =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
	uint8_t buf[16];
	size_t n = opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(&r, buf);
	grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, n);
	grpc_byte_buffer *resp = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	int cancelled = 0;
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[4];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[1].data.recv_close_on_server.cancelled = &cancelled;
	ops[2].op = GRPC_OP_SEND_MESSAGE;
	ops[2].data.send_message.send_message = resp;
	ops[3].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[3].data.send_status_from_server.status = GRPC_STATUS_OK;
	ops[3].data.send_status_from_server.status_details = &details;
	assert_int_equal(grpc_call_start_batch(call, ops, 4, TAG_DONE, NULL), GRPC_CALL_OK);
	grpc_event ev;
	do
		ev = grpc_completion_queue_next(sv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	while (ev.tag != TAG_DONE);
	grpc_byte_buffer_destroy(resp);
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
		int keep = 0;
		if (ev.tag == TAG_NEW && ev.success) {
			pthread_mutex_lock(&sv->mu);
			int stall = sv->stall;
			pthread_mutex_unlock(&sv->mu);
			if (stall && sv->nstalled < MAX_STALLED) {
				sv->stalled[sv->nstalled++] = call;
				keep = 1;
			} else {
				struct rec r = {0};
				if (payload) {
					grpc_byte_buffer_reader rd;
					assert_true(grpc_byte_buffer_reader_init(&rd, payload));
					grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
					r.n = GRPC_SLICE_LENGTH(all);
					r.p = malloc(r.n + 1);
					memcpy(r.p, GRPC_SLICE_START_PTR(all), r.n);
					grpc_slice_unref(all);
					grpc_byte_buffer_reader_destroy(&rd);
				}
				answer_ok(sv, call);
				pthread_mutex_lock(&sv->mu);
				if (sv->nrecs == sv->caprecs) {
					sv->caprecs = sv->caprecs ? sv->caprecs * 2 : 16;
					sv->recs = realloc(sv->recs, (size_t)sv->caprecs * sizeof *sv->recs);
				}
				sv->recs[sv->nrecs++] = r;
				pthread_mutex_unlock(&sv->mu);
			}
			pthread_mutex_lock(&sv->mu);
			sv->calls++;
			pthread_cond_broadcast(&sv->cv);
			pthread_mutex_unlock(&sv->mu);
		}
		if (payload)
			grpc_byte_buffer_destroy(payload);
		if (call && !keep)
			grpc_call_unref(call);
		grpc_metadata_array_destroy(&md);
		if (ev.tag == TAG_SHUT || (ev.tag == TAG_NEW && !ev.success))
			break;
	}
	return NULL;
}

static void server_start(struct server *sv, int stall)
{
	memset(sv, 0, sizeof *sv);
	pthread_mutex_init(&sv->mu, NULL);
	pthread_cond_init(&sv->cv, NULL);
	sv->stall = stall;
	grpc_init();
	sv->srv = grpc_server_create(NULL, NULL);
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
	snprintf(sv->endpoint, sizeof sv->endpoint, "127.0.0.1:%d", sv->port);
	grpc_server_start(sv->srv);
	assert_int_equal(pthread_create(&sv->th, NULL, server_main, sv), 0);
}

/* Waits (bounded) until the server has received at least n calls. */
static int server_wait_calls(struct server *sv, int n, unsigned seconds)
{
	uint64_t until = (uint64_t)time(NULL) + seconds;
	struct timespec ts = {.tv_sec = (time_t)until, .tv_nsec = 0};
	pthread_mutex_lock(&sv->mu);
	while (sv->calls < n)
		if (pthread_cond_timedwait(&sv->cv, &sv->mu, &ts) != 0)
			break;
	int ok = sv->calls >= n;
	pthread_mutex_unlock(&sv->mu);
	return ok;
}

static void server_stop(struct server *sv)
{
	grpc_server_shutdown_and_notify(sv->srv, sv->cq, TAG_SHUT);
	grpc_server_cancel_all_calls(sv->srv);
	pthread_join(sv->th, NULL);
	grpc_completion_queue_shutdown(sv->cq);
	grpc_event ev;
	do
		ev = grpc_completion_queue_next(sv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	while (ev.type != GRPC_QUEUE_SHUTDOWN);
	for (int i = 0; i < sv->nstalled; i++)
		grpc_call_unref(sv->stalled[i]);
	grpc_server_destroy(sv->srv);
	grpc_completion_queue_destroy(sv->cq);
	grpc_shutdown();
}

static void server_free(struct server *sv)
{
	for (int i = 0; i < sv->nrecs; i++)
		free(sv->recs[i].p);
	free(sv->recs);
	pthread_mutex_destroy(&sv->mu);
	pthread_cond_destroy(&sv->cv);
}

/* ---- test data: spans with unique span ids ---- */

struct tspan {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	const char *svc;
	const char *jstr;          /* journey.id as string_value, or NULL */
	const uint8_t *jbytes;     /* journey.id as bytes_value (jblen bytes), or NULL */
	size_t jblen;
};

/* A chunk (with span headers, as a receiver builds it) holding spans[0..n),
 * one ResourceSpans per run of equal services. */
static struct kn_chunk *make_chunk(const struct tspan *spans, size_t n)
{
	Opentelemetry__Proto__Trace__V1__Span *sp = calloc(n, sizeof *sp), **spp = calloc(n, sizeof *spp);
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = calloc(n, sizeof *rs), **rsp = calloc(n, sizeof *rsp);
	Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = calloc(n, sizeof *ss), **ssp = calloc(n, sizeof *ssp);
	Opentelemetry__Proto__Resource__V1__Resource *res = calloc(n, sizeof *res);
	KV *kv = calloc(n, sizeof *kv), **kvp = calloc(n, sizeof *kvp);
	AV *av = calloc(n, sizeof *av);
	KV *skv = calloc(n, sizeof *skv), **skvp = calloc(n, sizeof *skvp);
	AV *sav = calloc(n, sizeof *sav);
	size_t nrs = 0;
	for (size_t i = 0; i < n; i++) {
		opentelemetry__proto__trace__v1__span__init(&sp[i]);
		sp[i].trace_id = (ProtobufCBinaryData){16, (uint8_t *)spans[i].trace_id};
		sp[i].span_id = (ProtobufCBinaryData){8, (uint8_t *)spans[i].span_id};
		sp[i].name = (char *)"op";
		sp[i].start_time_unix_nano = 1000;
		sp[i].end_time_unix_nano = 2000;
		spp[i] = &sp[i];
		if (spans[i].jstr || spans[i].jbytes) {
			opentelemetry__proto__common__v1__any_value__init(&sav[i]);
			if (spans[i].jstr) {
				sav[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
				sav[i].string_value = (char *)spans[i].jstr;
			} else {
				sav[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
				sav[i].bytes_value = (ProtobufCBinaryData){spans[i].jblen, (uint8_t *)spans[i].jbytes};
			}
			opentelemetry__proto__common__v1__key_value__init(&skv[i]);
			skv[i].key = (char *)"journey.id";
			skv[i].value = &sav[i];
			skvp[i] = &skv[i];
			sp[i].n_attributes = 1;
			sp[i].attributes = &skvp[i];
		}
		if (i == 0 || strcmp(spans[i].svc, spans[i - 1].svc) != 0) {
			size_t k = nrs++;
			opentelemetry__proto__common__v1__any_value__init(&av[k]);
			av[k].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
			av[k].string_value = (char *)spans[i].svc;
			opentelemetry__proto__common__v1__key_value__init(&kv[k]);
			kv[k].key = (char *)"service.name";
			kv[k].value = &av[k];
			kvp[k] = &kv[k];
			opentelemetry__proto__resource__v1__resource__init(&res[k]);
			res[k].n_attributes = 1;
			res[k].attributes = &kvp[k];
			opentelemetry__proto__trace__v1__scope_spans__init(&ss[k]);
			ss[k].spans = &spp[i];
			ssp[k] = &ss[k];
			opentelemetry__proto__trace__v1__resource_spans__init(&rs[k]);
			rs[k].resource = &res[k];
			rs[k].n_scope_spans = 1;
			rs[k].scope_spans = &ssp[k];
			rsp[k] = &rs[k];
		}
		ss[nrs - 1].n_spans++;
	}
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req;
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
	req.n_resource_spans = nrs;
	req.resource_spans = rsp;
	size_t len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	uint8_t *buf = malloc(len);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
	struct kn_wire_index ix;
	struct kn_err err;
	struct kn_chunk *c = NULL;
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
	assert_int_equal(ix.nspans, n);
	assert_int_equal(kn_wire_split(&ix, buf, 1, &c, &err), KN_OK);
	assert_non_null(c);
	c->accepted_ns = kn_now_ns();
	kn_wire_index_free(&ix);
	free(buf);
	free(sp);
	free(spp);
	free(rs);
	free(rsp);
	free(ss);
	free(ssp);
	free(res);
	free(kv);
	free(kvp);
	free(av);
	free(skv);
	free(skvp);
	free(sav);
	return c;
}

#define NTRACES 120
#define SPANS_PER_TRACE 5

struct dataset {
	struct tspan spans[NTRACES * SPANS_PER_TRACE];
	size_t n;
};

static const char *const services[] = {"api", "notifier", "db", "search", "billing"};

static void dataset_init(struct dataset *d)
{
	d->n = 0;
	for (int t = 0; t < NTRACES; t++) {
		uint8_t tid[16];
		rnd_id(tid, 16);
		for (int s = 0; s < SPANS_PER_TRACE; s++) {
			struct tspan *sp = &d->spans[d->n];
			memcpy(sp->trace_id, tid, 16);
			uint64_t sid = d->n + 1;
			memcpy(sp->span_id, &sid, 8);
			sp->svc = services[(t + s) % 5];
			d->n++;
		}
	}
}

/* Batch j (j < SPANS_PER_TRACE) holds span j of every trace, as two chunks
 * (so every trace is spread over several batches and chunks); batch
 * SPANS_PER_TRACE holds nothing. The last batch: one chunk per trace for the
 * first 10 traces, all their spans again with fresh span ids (the
 * one-endpoint fast path). */
static struct kn_batch *dataset_batch(const struct dataset *d, int j)
{
	struct kn_batch *b = kn_batch_new(4);
	struct tspan part[NTRACES];
	for (int half = 0; half < 2; half++) {
		size_t n = 0;
		for (int t = half * NTRACES / 2; t < (half + 1) * NTRACES / 2; t++)
			part[n++] = d->spans[t * SPANS_PER_TRACE + j];
		assert_int_equal(kn_batch_add(&b, make_chunk(part, n)), KN_OK);
	}
	return b;
}

/* ---- decoding what the servers received ---- */

struct seen {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	char svc[32];
	int server;
};

static size_t collect_server(struct server *sv, int idx, struct seen *out, size_t cap, size_t n)
{
	for (int r = 0; r < sv->nrecs; r++) {
		Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
			opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
				NULL, sv->recs[r].n, sv->recs[r].p);
		assert_non_null(req);
		for (size_t i = 0; i < req->n_resource_spans; i++) {
			Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[i];
			const char *svc = "";
			for (size_t a = 0; rs->resource && a < rs->resource->n_attributes; a++)
				if (strcmp(rs->resource->attributes[a]->key, "service.name") == 0)
					svc = rs->resource->attributes[a]->value->string_value;
			for (size_t s = 0; s < rs->n_scope_spans; s++)
				for (size_t k = 0; k < rs->scope_spans[s]->n_spans; k++) {
					Opentelemetry__Proto__Trace__V1__Span *sp = rs->scope_spans[s]->spans[k];
					assert_true(n < cap);
					assert_int_equal(sp->trace_id.len, 16);
					memcpy(out[n].trace_id, sp->trace_id.data, 16);
					memcpy(out[n].span_id, sp->span_id.data, 8);
					snprintf(out[n].svc, sizeof out[n].svc, "%s", svc);
					out[n].server = idx;
					n++;
				}
		}
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
	}
	return n;
}

/* ---- exporter helpers ---- */

static void *lb_create_from(const char *yaml, struct kn_metrics *m, const char *id, uint32_t nshards)
{
	struct kn_lb_cfg cfg;
	struct kn_err err = {{0}};
	if (apply(yaml, &cfg, &err) != KN_OK)
		fail_msg("config: %s", err.msg);
	struct kn_component_ctx ctx = {.id = id, .metrics = m, .nshards = nshards};
	void *inst = NULL;
	if (kn_exporter_loadbalancing.create(&ctx, &cfg, &inst, &err) != KN_OK)
		fail_msg("create: %s", err.msg);
	kn_cfg_free(kn_exporter_loadbalancing.config_fields, &cfg); /* create keeps its own copy */
	if (kn_exporter_loadbalancing.start(inst, &err) != KN_OK)
		fail_msg("start: %s", err.msg);
	return inst;
}

static uint64_t counter(struct kn_metrics *m, const char *name, const char *labels)
{
	return kn_metric_value(kn_metrics_counter(m, name, "", labels));
}

static int64_t gauge(struct kn_metrics *m, const char *name, const char *labels)
{
	return (int64_t)kn_metric_value(kn_metrics_gauge(m, name, "", labels));
}

#define OTLP_FAST                                                                                   \
	"    protocol:\n"                                                                            \
	"      otlp:\n"                                                                              \
	"        tls: {insecure: true}\n"                                                            \
	"        timeout: 2s\n"                                                                      \
	"        sending_queue: {num_consumers: 1, queue_size: 100}\n"                               \
	"        retry_on_failure: {initial_interval: 10ms, max_interval: 50ms, max_elapsed_time: 60s}\n"

static int cmp_seen(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;
	int c = memcmp(x->trace_id, y->trace_id, 16);
	return c ? c : memcmp(x->span_id, y->span_id, 8);
}

/* Checks: the received spans are exactly the dataset's spans (each once),
 * and every key (trace, or service) was received by exactly one server,
 * the one `ring` names. */
static void check_delivery(const struct dataset *d, struct seen *seen, size_t n, struct server *sv,
			   const struct kn_lb_ring *ring, int by_service)
{
	assert_int_equal(n, d->n);
	qsort(seen, n, sizeof *seen, cmp_seen);
	struct tspan *want = malloc(d->n * sizeof *want);
	memcpy(want, d->spans, d->n * sizeof *want);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			assert_true(cmp_seen(&seen[i - 1], &seen[i]) != 0); /* no duplicates */
		int found = 0;
		for (size_t k = 0; k < d->n && !found; k++)
			found = memcmp(want[k].trace_id, seen[i].trace_id, 16) == 0 &&
				memcmp(want[k].span_id, seen[i].span_id, 8) == 0 && strcmp(want[k].svc, seen[i].svc) == 0;
		assert_true(found);
		uint64_t key = by_service ? kn_lb_hash(seen[i].svc, strlen(seen[i].svc)) : kn_lb_key_trace(seen[i].trace_id);
		const char *ep = ring->endpoints[kn_lb_ring_lookup(ring, key)];
		if (strcmp(ep, sv[seen[i].server].endpoint) != 0)
			fail_msg("span of %s arrived at %s, the ring says %s", seen[i].svc, sv[seen[i].server].endpoint, ep);
	}
	free(want);
}

static void test_every_trace_to_one_endpoint(void **st)
{
	(void)st;
	struct server sv[3];
	for (int i = 0; i < 3; i++)
		server_start(&sv[i], 0);
	char yaml[2048];
	snprintf(yaml, sizeof yaml, OTLP_FAST "    resolver:\n      static: {hostnames: [\"%s\", \"%s\", \"%s\"]}\n",
		 sv[2].endpoint, sv[0].endpoint, sv[1].endpoint);
	struct kn_metrics *m = kn_metrics_create();
	void *lb = lb_create_from(yaml, m, "loadbalancing", 2);
	static struct dataset d;
	dataset_init(&d);
	for (int j = 0; j < SPANS_PER_TRACE; j++)
		assert_int_equal(kn_exporter_loadbalancing.export(lb, dataset_batch(&d, j)), KN_OK);
	/* a batch of whole traces: each chunk maps to one endpoint (no copy) */
	static struct dataset d2;
	rng_state ^= 0x5555;
	dataset_init(&d2);
	for (size_t i = 0; i < d2.n; i++) {
		uint64_t sid = 100000 + i;
		memcpy(d2.spans[i].span_id, &sid, 8);
	}
	struct kn_batch *b = kn_batch_new(4);
	for (int t = 0; t < 10; t++)
		assert_int_equal(kn_batch_add(&b, make_chunk(&d2.spans[t * SPANS_PER_TRACE], SPANS_PER_TRACE)), KN_OK);
	assert_int_equal(kn_exporter_loadbalancing.export(lb, b), KN_OK);

	struct kn_strlist eps;
	assert_int_equal(kn_lb_endpoints(lb, &eps), KN_OK);
	assert_int_equal(eps.n, 3);
	struct kn_err err;
	struct kn_lb_ring *ring = kn_lb_ring_build((const char *const *)eps.v, eps.n, &err);
	kn_lb_strlist_free(&eps);
	kn_exporter_loadbalancing.shutdown(lb, kn_now_ns() + 30 * KN_NS_PER_SEC);
	kn_exporter_loadbalancing.shutdown(lb, kn_now_ns() + 30 * KN_NS_PER_SEC);
	uint64_t routed = 0;
	for (int i = 0; i < 3; i++) {
		char lbl[128];
		snprintf(lbl, sizeof lbl, "exporter=\"loadbalancing\",endpoint=\"%s\"", sv[i].endpoint);
		uint64_t r = counter(m, "kansatsu_loadbalancer_routed_spans_total", lbl);
		assert_true(r > 0); /* 650 spans over 3 endpoints: each gets some */
		routed += r;
		snprintf(lbl, sizeof lbl, "exporter=\"loadbalancing/%s\"", sv[i].endpoint);
		assert_int_equal(counter(m, "kansatsu_exporter_sent_spans_total", lbl), r);
	}
	assert_int_equal(routed, d.n + 10 * SPANS_PER_TRACE);
	assert_int_equal(gauge(m, "kansatsu_loadbalancer_backends", "exporter=\"loadbalancing\""), 3);
	kn_exporter_loadbalancing.destroy(lb);

	size_t cap = d.n + d2.n, n = 0;
	struct seen *seen = calloc(cap, sizeof *seen);
	for (int i = 0; i < 3; i++) {
		server_stop(&sv[i]);
		n = collect_server(&sv[i], i, seen, cap, n);
	}
	/* the whole-trace batch: move its spans into a second check */
	struct dataset *both = malloc(sizeof *both);
	both->n = 0;
	for (size_t i = 0; i < d.n; i++)
		both->spans[both->n++] = d.spans[i];
	struct seen *seen2 = calloc(cap, sizeof *seen2);
	size_t n1 = 0, n2 = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t sid;
		memcpy(&sid, seen[i].span_id, 8);
		if (sid >= 100000)
			seen2[n2++] = seen[i];
		else
			seen[n1++] = seen[i];
	}
	check_delivery(both, seen, n1, sv, ring, 0);
	assert_int_equal(n2, 10 * SPANS_PER_TRACE);
	for (size_t i = 0; i < n2; i++) {
		const char *ep = ring->endpoints[kn_lb_ring_lookup(ring, kn_lb_key_trace(seen2[i].trace_id))];
		assert_string_equal(ep, sv[seen2[i].server].endpoint);
	}
	free(both);
	free(seen2);
	free(seen);
	kn_lb_ring_free(ring);
	kn_metrics_destroy(m);
	for (int i = 0; i < 3; i++)
		server_free(&sv[i]);
}

static void test_route_by_service(void **st)
{
	(void)st;
	struct server sv[3];
	for (int i = 0; i < 3; i++)
		server_start(&sv[i], 0);
	char yaml[2048];
	snprintf(yaml, sizeof yaml,
		 "    routing_key: service\n" OTLP_FAST
		 "    resolver:\n      static: {hostnames: [\"%s\", \"%s\", \"%s\"]}\n",
		 sv[0].endpoint, sv[1].endpoint, sv[2].endpoint);
	struct kn_metrics *m = kn_metrics_create();
	void *lb = lb_create_from(yaml, m, "loadbalancing/svc", 1);
	static struct dataset d;
	dataset_init(&d);
	for (int j = 0; j < SPANS_PER_TRACE; j++)
		assert_int_equal(kn_exporter_loadbalancing.export(lb, dataset_batch(&d, j)), KN_OK);
	kn_exporter_loadbalancing.shutdown(lb, kn_now_ns() + 30 * KN_NS_PER_SEC);
	kn_exporter_loadbalancing.destroy(lb);
	const char *eps[3] = {sv[0].endpoint, sv[1].endpoint, sv[2].endpoint};
	struct kn_err err;
	struct kn_lb_ring *ring = kn_lb_ring_build(eps, 3, &err);
	struct seen *seen = calloc(d.n, sizeof *seen);
	size_t n = 0;
	for (int i = 0; i < 3; i++) {
		server_stop(&sv[i]);
		n = collect_server(&sv[i], i, seen, d.n, n);
	}
	check_delivery(&d, seen, n, sv, ring, 1);
	/* every service at exactly one server */
	for (int s = 0; s < 5; s++) {
		int where = -1;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(seen[i].svc, services[s]) != 0)
				continue;
			if (where < 0)
				where = seen[i].server;
			assert_int_equal(seen[i].server, where);
		}
		assert_true(where >= 0);
	}
	free(seen);
	kn_lb_ring_free(ring);
	kn_metrics_destroy(m);
	for (int i = 0; i < 3; i++)
		server_free(&sv[i]);
}

static void test_removed_endpoint_batches_rerouted(void **st)
{
	(void)st;
	/* sv[2] accepts calls but never answers: its sub-exporter's single
	 * consumer is stuck in an attempt (timeout 2s) and the rest queues. */
	struct server sv[3];
	server_start(&sv[0], 0);
	server_start(&sv[1], 0);
	server_start(&sv[2], 1);
	char yaml[2048];
	snprintf(yaml, sizeof yaml, OTLP_FAST "    resolver:\n      static: {hostnames: [\"%s\", \"%s\", \"%s\"]}\n",
		 sv[0].endpoint, sv[1].endpoint, sv[2].endpoint);
	struct kn_metrics *m = kn_metrics_create();
	void *lb = lb_create_from(yaml, m, "lb", 2);
	static struct dataset d;
	dataset_init(&d);
	for (int j = 0; j < SPANS_PER_TRACE; j++)
		assert_int_equal(kn_exporter_loadbalancing.export(lb, dataset_batch(&d, j)), KN_OK);
	assert_true(server_wait_calls(&sv[2], 1, 30));
	char lq[128], lr[128];
	snprintf(lq, sizeof lq, "exporter=\"lb/%s\"", sv[2].endpoint);
	snprintf(lr, sizeof lr, "exporter=\"lb\",endpoint=\"%s\"", sv[2].endpoint);
	/* one batch in flight, the other four still queued for sv[2] */
	assert_int_equal(gauge(m, "kansatsu_exporter_queue_batches", lq), SPANS_PER_TRACE - 1);
	uint64_t routed_c = counter(m, "kansatsu_loadbalancer_routed_spans_total", lr);
	assert_true(routed_c > 0);

	const char *two[2] = {sv[1].endpoint, sv[0].endpoint};
	struct kn_err err;
	if (kn_lb_set_endpoints(lb, two, 2, &err) != KN_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(counter(m, "kansatsu_loadbalancer_rerouted_spans_total", "exporter=\"lb\""), routed_c);
	assert_int_equal(gauge(m, "kansatsu_loadbalancer_backends", "exporter=\"lb\""), 2);
	assert_int_equal(counter(m, "kansatsu_loadbalancer_backend_updates_total", "exporter=\"lb\""), 2);
	/* nothing was sent by, or dropped at, the removed endpoint */
	assert_int_equal(counter(m, "kansatsu_exporter_sent_spans_total", lq), 0);
	static const char *const reasons[] = {"queue_full", "retries_exhausted", "permanent_error", "shutdown",
					      "rejected_by_server"};
	for (int r = 0; r < 5; r++) {
		char l2[200];
		snprintf(l2, sizeof l2, "%s,reason=\"%s\"", lq, reasons[r]);
		assert_int_equal(counter(m, "kansatsu_exporter_dropped_spans_total", l2), 0);
	}
	assert_int_equal(gauge(m, "kansatsu_exporter_queue_batches", lq), 0);
	/* the same endpoint set again changes nothing */
	assert_int_equal(kn_lb_set_endpoints(lb, two, 2, &err), KN_OK);
	assert_int_equal(counter(m, "kansatsu_loadbalancer_backend_updates_total", "exporter=\"lb\""), 2);

	kn_exporter_loadbalancing.shutdown(lb, kn_now_ns() + 30 * KN_NS_PER_SEC);
	kn_exporter_loadbalancing.destroy(lb);
	struct kn_lb_ring *ring = kn_lb_ring_build(two, 2, &err);
	struct seen *seen = calloc(d.n, sizeof *seen);
	size_t n = 0;
	for (int i = 0; i < 3; i++) {
		server_stop(&sv[i]);
		n = collect_server(&sv[i], i, seen, d.n, n);
	}
	assert_int_equal(sv[2].nrecs, 0);
	/* every span exactly once at the two remaining endpoints, each trace
	 * at the one the new ring names */
	check_delivery(&d, seen, n, sv, ring, 0);
	free(seen);
	kn_lb_ring_free(ring);
	kn_metrics_destroy(m);
	for (int i = 0; i < 3; i++)
		server_free(&sv[i]);
}

static void test_add_endpoint_at_runtime(void **st)
{
	(void)st;
	struct server sv[2];
	server_start(&sv[0], 0);
	server_start(&sv[1], 0);
	char yaml[2048];
	snprintf(yaml, sizeof yaml, OTLP_FAST "    resolver:\n      static: {hostnames: [\"%s\"]}\n", sv[0].endpoint);
	struct kn_metrics *m = kn_metrics_create();
	void *lb = lb_create_from(yaml, m, "lb", 1);
	static struct dataset d;
	dataset_init(&d);
	assert_int_equal(kn_exporter_loadbalancing.export(lb, dataset_batch(&d, 0)), KN_OK);
	const char *two[2] = {sv[0].endpoint, sv[1].endpoint};
	struct kn_err err;
	assert_int_equal(kn_lb_set_endpoints(lb, two, 2, &err), KN_OK);
	for (int j = 1; j < SPANS_PER_TRACE; j++)
		assert_int_equal(kn_exporter_loadbalancing.export(lb, dataset_batch(&d, j)), KN_OK);
	kn_exporter_loadbalancing.shutdown(lb, kn_now_ns() + 30 * KN_NS_PER_SEC);
	/* after shutdown, batches are dropped and counted */
	assert_int_equal(kn_exporter_loadbalancing.export(lb, dataset_batch(&d, 0)), KN_DROP);
	assert_int_equal(counter(m, "kansatsu_exporter_dropped_spans_total", "exporter=\"lb\",reason=\"shutdown\""),
			 NTRACES);
	assert_int_equal(kn_lb_set_endpoints(lb, two, 1, &err), KN_ERR);
	kn_exporter_loadbalancing.destroy(lb);
	size_t n = 0;
	struct seen *seen = calloc(d.n, sizeof *seen);
	for (int i = 0; i < 2; i++) {
		server_stop(&sv[i]);
		n = collect_server(&sv[i], i, seen, d.n, n);
	}
	/* every span once; the first batch all went to sv[0] (the only endpoint then) */
	assert_int_equal(n, d.n);
	assert_true(sv[1].nrecs > 0);
	free(seen);
	kn_metrics_destroy(m);
	for (int i = 0; i < 2; i++)
		server_free(&sv[i]);
}

/* Shard workers export while the ring changes under them: nothing is lost
 * or duplicated (the grace period keeps every export() off a retired
 * endpoint, and whatever a retired endpoint held is routed again). */
#define NPRODUCERS 3
#define PRODUCER_ROUNDS 4

struct producer {
	void *lb;
	struct dataset d;
	pthread_t th;
	int failures;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	for (int r = 0; r < PRODUCER_ROUNDS; r++)
		for (int j = 0; j < SPANS_PER_TRACE; j++)
			p->failures += kn_exporter_loadbalancing.export(p->lb, dataset_batch(&p->d, j)) != KN_OK;
	return NULL;
}

static void test_ring_changes_under_load(void **st)
{
	(void)st;
	struct server sv[3];
	for (int i = 0; i < 3; i++)
		server_start(&sv[i], 0);
	char yaml[2048];
	snprintf(yaml, sizeof yaml,
		 "    protocol:\n      otlp:\n        tls: {insecure: true}\n"
		 "        sending_queue: {num_consumers: 2, queue_size: 1000}\n"
		 "        retry_on_failure: {initial_interval: 10ms, max_interval: 50ms}\n"
		 "    resolver:\n      static: {hostnames: [\"%s\", \"%s\", \"%s\"]}\n",
		 sv[0].endpoint, sv[1].endpoint, sv[2].endpoint);
	struct kn_metrics *m = kn_metrics_create();
	void *lb = lb_create_from(yaml, m, "lb", NPRODUCERS);
	struct producer *p = calloc(NPRODUCERS, sizeof *p);
	for (int i = 0; i < NPRODUCERS; i++) {
		p[i].lb = lb;
		dataset_init(&p[i].d);
		for (size_t k = 0; k < p[i].d.n; k++) {
			uint64_t sid = ((uint64_t)(i + 1) << 32) | k;
			memcpy(p[i].d.spans[k].span_id, &sid, 8);
		}
	}
	for (int i = 0; i < NPRODUCERS; i++)
		assert_int_equal(pthread_create(&p[i].th, NULL, producer_main, &p[i]), 0);
	const char *all[3] = {sv[0].endpoint, sv[1].endpoint, sv[2].endpoint};
	struct kn_err err;
	for (int k = 0; k < 12; k++) {
		const char *set[3];
		size_t n = 0;
		for (int i = 0; i < 3; i++)
			if (i != k % 3 || k % 2 == 1)
				set[n++] = all[i];
		if (kn_lb_set_endpoints(lb, set, n, &err) != KN_OK)
			fail_msg("%s", err.msg);
	}
	for (int i = 0; i < NPRODUCERS; i++) {
		pthread_join(p[i].th, NULL);
		assert_int_equal(p[i].failures, 0);
	}
	kn_exporter_loadbalancing.shutdown(lb, kn_now_ns() + 60 * KN_NS_PER_SEC);
	kn_exporter_loadbalancing.destroy(lb);
	size_t want = (size_t)NPRODUCERS * PRODUCER_ROUNDS * NTRACES * SPANS_PER_TRACE, n = 0;
	struct seen *seen = calloc(want + 1, sizeof *seen);
	for (int i = 0; i < 3; i++) {
		server_stop(&sv[i]);
		n = collect_server(&sv[i], i, seen, want + 1, n);
	}
	assert_int_equal(n, want);
	/* each (span id) arrives PRODUCER_ROUNDS times: once per round */
	qsort(seen, n, sizeof *seen, cmp_seen);
	for (size_t i = 0; i < n; i += PRODUCER_ROUNDS) {
		for (int r = 1; r < PRODUCER_ROUNDS; r++)
			assert_int_equal(cmp_seen(&seen[i], &seen[i + (size_t)r]), 0);
		if (i + PRODUCER_ROUNDS < n)
			assert_true(cmp_seen(&seen[i], &seen[i + PRODUCER_ROUNDS]) != 0);
	}
	free(seen);
	free(p);
	kn_metrics_destroy(m);
	for (int i = 0; i < 3; i++)
		server_free(&sv[i]);
}

static void test_dns_localhost(void **st)
{
	(void)st;
	struct kn_lb_lookup *l = kn_lb_lookup_new();
	struct kn_strlist out;
	struct kn_err err;
	if (kn_lb_lookup_run(l, "localhost", 4317, 5 * KN_NS_PER_SEC, &out, &err) != KN_OK)
		fail_msg("%s", err.msg);
	int v4 = 0;
	for (size_t i = 0; i < out.n; i++) {
		if (strcmp(out.v[i], "127.0.0.1:4317") == 0)
			v4 = 1;
		else
			assert_string_equal(out.v[i], "[::1]:4317");
	}
	assert_true(v4);
	kn_lb_strlist_free(&out);
	/* a name that cannot exist (RFC 6761 .invalid): an error or a timeout, never endpoints */
	int rc = kn_lb_lookup_run(l, "no-such-host.invalid", 4317, 5 * KN_NS_PER_SEC, &out, &err);
	assert_true(rc == KN_ERR || rc == KN_AGAIN);
	assert_int_equal(out.n, 0);
	assert_non_null(strstr(err.msg, "no-such-host.invalid"));
	kn_lb_lookup_free(l);

	/* the exporter with the dns resolver, refreshed every 20ms */
	struct kn_metrics *m = kn_metrics_create();
	void *lb = lb_create_from("    protocol: {otlp: {tls: {insecure: true}}}\n"
				  "    resolver: {dns: {hostname: localhost, port: 14317, interval: 20ms, timeout: 5s}}\n",
				  m, "lb/dns", 1);
	struct kn_strlist eps;
	assert_int_equal(kn_lb_endpoints(lb, &eps), KN_OK);
	int found = 0;
	for (size_t i = 0; i < eps.n; i++)
		found |= strcmp(eps.v[i], "127.0.0.1:14317") == 0;
	assert_true(found);
	kn_lb_strlist_free(&eps);
	const char *ok = "exporter=\"lb/dns\",resolver=\"dns\",success=\"true\"";
	uint64_t until = kn_now_ns() + 30 * KN_NS_PER_SEC;
	while (counter(m, "kansatsu_loadbalancer_resolutions_total", ok) < 3 && kn_now_ns() < until) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL); /* polling a counter the resolver thread advances */
	}
	assert_true(counter(m, "kansatsu_loadbalancer_resolutions_total", ok) >= 3);
	/* the same answer every time: the ring was built once */
	assert_int_equal(counter(m, "kansatsu_loadbalancer_backend_updates_total", "exporter=\"lb/dns\""), 1);
	kn_exporter_loadbalancing.shutdown(lb, kn_now_ns() + 5 * KN_NS_PER_SEC);
	kn_exporter_loadbalancing.destroy(lb);
	kn_metrics_destroy(m);
}

static void test_lifecycle(void **st)
{
	(void)st;
	/* the generic walk (tests/unit/test_lifecycle.c) with a minimal config */
	const char *yaml = "    protocol: {otlp: {tls: {insecure: true}}}\n"
			   "    resolver: {static: {hostnames: [\"127.0.0.1:9\"]}}\n";
	for (int start = 0; start < 2; start++) {
		struct kn_lb_cfg cfg;
		struct kn_err err = {{0}};
		assert_int_equal(apply(yaml, &cfg, &err), KN_OK);
		struct kn_metrics *m = kn_metrics_create();
		struct kn_component_ctx ctx = {.id = "loadbalancing", .metrics = m, .nshards = 2};
		void *inst = NULL;
		assert_int_equal(kn_exporter_loadbalancing.create(&ctx, &cfg, &inst, &err), KN_OK);
		if (start)
			assert_int_equal(kn_exporter_loadbalancing.start(inst, &err), KN_OK);
		else /* before start there is no ring: counted as no_endpoints */
			assert_int_equal(kn_exporter_loadbalancing.export(inst, kn_batch_new(1)), KN_DROP);
		kn_exporter_loadbalancing.shutdown(inst, kn_now_ns() + KN_NS_PER_SEC);
		kn_exporter_loadbalancing.shutdown(inst, kn_now_ns() + KN_NS_PER_SEC);
		if (start)
			assert_int_equal(kn_exporter_loadbalancing.start(inst, &err), KN_ERR);
		kn_exporter_loadbalancing.destroy(inst);
		kn_exporter_loadbalancing.destroy(NULL);
		kn_exporter_loadbalancing.shutdown(NULL, 0);
		kn_cfg_free(kn_exporter_loadbalancing.config_fields, &cfg);
		kn_metrics_destroy(m);
	}
	/* create refuses a bad config with the path, and opens nothing */
	struct kn_lb_cfg cfg;
	memset(&cfg, 0, sizeof cfg);
	struct kn_component_ctx ctx = {.id = "loadbalancing/x"};
	struct kn_err err;
	void *inst = (void *)1;
	assert_int_equal(kn_exporter_loadbalancing.create(&ctx, &cfg, &inst, &err), KN_ERR);
	assert_null(inst);
	assert_string_equal(err.msg, "exporters.loadbalancing/x.resolver: exactly one of static or dns");
	assert_ptr_equal(kn_component_find(KN_EXPORTER, "loadbalancing"), &kn_exporter_loadbalancing);
}

/* ---- routing_key journey ---- */

/* A Span message with the given attributes (key, AnyValue). */
static size_t pack_span_attrs(const char *const *keys, AV *vals, size_t n, uint8_t *out)
{
	KV kv[4], *kvp[4];
	assert_true(n <= 4);
	for (size_t i = 0; i < n; i++) {
		opentelemetry__proto__common__v1__key_value__init(&kv[i]);
		kv[i].key = (char *)keys[i];
		kv[i].value = &vals[i];
		kvp[i] = &kv[i];
	}
	uint8_t tid[16] = {1}, sid[8] = {2};
	Opentelemetry__Proto__Trace__V1__Span sp;
	opentelemetry__proto__trace__v1__span__init(&sp);
	sp.trace_id = (ProtobufCBinaryData){16, tid};
	sp.span_id = (ProtobufCBinaryData){8, sid};
	sp.name = (char *)"op";
	sp.n_attributes = n;
	sp.attributes = kvp;
	return opentelemetry__proto__trace__v1__span__pack(&sp, out);
}

static AV av_str(const char *s)
{
	AV v;
	opentelemetry__proto__common__v1__any_value__init(&v);
	v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	v.string_value = (char *)s;
	return v;
}

static AV av_bytes(const uint8_t *b, size_t n)
{
	AV v;
	opentelemetry__proto__common__v1__any_value__init(&v);
	v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
	v.bytes_value = (ProtobufCBinaryData){n, (uint8_t *)b};
	return v;
}

static int jid_of(const char *key, AV v, uint8_t id[16])
{
	uint8_t buf[512];
	const char *keys[1] = {key};
	size_t n = pack_span_attrs(keys, &v, 1, buf);
	return kn_lb_journey_id(buf, n, "journey.id", 10, id);
}

static void test_journey_id_scan(void **st)
{
	(void)st;
	static const uint8_t want[16] = {0x0a, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
					 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba};
	uint8_t id[16];
	memset(id, 0, sizeof id);
	assert_int_equal(jid_of("journey.id", av_str("0af0012345678" "9abcdef1032547698ba"), id), KN_LB_JID_OK);
	assert_memory_equal(id, want, 16);
	memset(id, 0, sizeof id);
	assert_int_equal(jid_of("journey.id", av_str("0AF0012345678" "9ABCDEF1032547698BA"), id), KN_LB_JID_OK);
	assert_memory_equal(id, want, 16);
	memset(id, 0, sizeof id);
	assert_int_equal(jid_of("journey.id", av_bytes(want, 16), id), KN_LB_JID_OK);
	assert_memory_equal(id, want, 16);
	/* invalid: wrong length, non-hex, wrong type, all zero */
	assert_int_equal(jid_of("journey.id", av_str("0af0012345678" "9abcdef1032547698b"), id), KN_LB_JID_INVALID);
	assert_int_equal(jid_of("journey.id", av_str("0af0012345678" "9abcdef1032547698ba0"), id), KN_LB_JID_INVALID);
	assert_int_equal(jid_of("journey.id", av_str("0af0012345678" "9abcdef1032547698bg"), id), KN_LB_JID_INVALID);
	assert_int_equal(jid_of("journey.id", av_str("0af0012345678" "9abcdef10325 7698ba"), id), KN_LB_JID_INVALID);
	assert_int_equal(jid_of("journey.id", av_str(""), id), KN_LB_JID_INVALID);
	assert_int_equal(jid_of("journey.id", av_bytes(want, 15), id), KN_LB_JID_INVALID);
	assert_int_equal(jid_of("journey.id", av_str("00000000000000000000000000000000"), id), KN_LB_JID_INVALID);
	AV iv;
	opentelemetry__proto__common__v1__any_value__init(&iv);
	iv.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
	iv.int_value = 42;
	assert_int_equal(jid_of("journey.id", iv, id), KN_LB_JID_INVALID);
	/* absent: another key, a prefix of the key, no attributes */
	assert_int_equal(jid_of("journey.idx", av_str("0af0012345678" "9abcdef1032547698ba"), id), KN_LB_JID_ABSENT);
	assert_int_equal(jid_of("journey", av_str("0af0012345678" "9abcdef1032547698ba"), id), KN_LB_JID_ABSENT);
	uint8_t buf[512];
	size_t n = pack_span_attrs(NULL, NULL, 0, buf);
	assert_int_equal(kn_lb_journey_id(buf, n, "journey.id", 10, id), KN_LB_JID_ABSENT);
	assert_int_equal(kn_lb_journey_id(NULL, 0, "journey.id", 10, id), KN_LB_JID_ABSENT);
	/* the first attribute with the key wins (pdata's Map.Get); a custom key */
	const char *keys[3] = {"tenant", "jid", "jid"};
	AV vals[3] = {av_str("acme"), av_bytes(want, 16), av_str("zz")};
	n = pack_span_attrs(keys, vals, 3, buf);
	memset(id, 0, sizeof id);
	assert_int_equal(kn_lb_journey_id(buf, n, "jid", 3, id), KN_LB_JID_OK);
	assert_memory_equal(id, want, 16);
	assert_int_equal(kn_lb_journey_id(buf, n, "journey.id", 10, id), KN_LB_JID_ABSENT);
	vals[1] = av_str("zz");
	vals[2] = av_bytes(want, 16);
	n = pack_span_attrs(keys, vals, 3, buf);
	assert_int_equal(kn_lb_journey_id(buf, n, "jid", 3, id), KN_LB_JID_INVALID);
	for (size_t cut = 0; cut < n; cut++) /* truncated input is never read past its end */
		(void)kn_lb_journey_id(buf, cut, "jid", 3, id);
}

static void test_journey_config(void **st)
{
	(void)st;
	struct kn_lb_cfg cfg;
	struct kn_err err = {{0}};
	if (apply("    routing_key: journey\n    resolver: {static: {hostnames: [a]}}\n", &cfg, &err) != KN_OK)
		fail_msg("%s", err.msg);
	assert_string_equal(cfg.routing_key, "journey");
	assert_string_equal(cfg.journey_id_attribute, "journey.id");
	kn_cfg_free(kn_exporter_loadbalancing.config_fields, &cfg);
	if (apply("    routing_key: journey\n    journey_id_attribute: app.journey\n"
		  "    resolver: {static: {hostnames: [a]}}\n", &cfg, &err) != KN_OK)
		fail_msg("%s", err.msg);
	assert_string_equal(cfg.journey_id_attribute, "app.journey");
	kn_cfg_free(kn_exporter_loadbalancing.config_fields, &cfg);
	/* accepted with any routing key, used only by journey */
	if (apply("    journey_id_attribute: \"\"\n    resolver: {static: {hostnames: [a]}}\n", &cfg, &err) != KN_OK)
		fail_msg("%s", err.msg);
	kn_cfg_free(kn_exporter_loadbalancing.config_fields, &cfg);
	assert_int_equal(apply("    routing_key: journey\n    journey_id_attribute: \"\"\n"
			       "    resolver: {static: {hostnames: [a]}}\n", &cfg, &err), KN_ERR);
	assert_string_equal(err.msg, "exporters.loadbalancing.journey_id_attribute: must not be empty with routing_key journey");
	kn_cfg_free(kn_exporter_loadbalancing.config_fields, &cfg);
}

#define NJOURNEYS 40
#define JSPANS 3        /* spans per producer and per consumer trace */
#define NPLAIN 20       /* traces without journey.id, 2 spans each */
#define NBAD 8          /* single-span traces with an invalid journey.id */
#define JTOTAL (NJOURNEYS * 2 * JSPANS + NPLAIN * 2 + NBAD)

struct jdata {
	struct tspan spans[JTOTAL];
	uint8_t key_id[JTOTAL][16];  /* the id each span must be routed by */
	int valid[JTOTAL];           /* 1: routed by a journey id */
	char hex[NJOURNEYS][33];
	uint8_t jbin[NJOURNEYS][16];
	size_t n;
};

static void to_hex(const uint8_t id[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static void jdata_add(struct jdata *d, const uint8_t tid[16], const char *svc, const char *jstr,
		      const uint8_t *jbytes, size_t jblen, const uint8_t *key, int valid)
{
	struct tspan *sp = &d->spans[d->n];
	memset(sp, 0, sizeof *sp);
	memcpy(sp->trace_id, tid, 16);
	uint64_t sid = 500000 + d->n;
	memcpy(sp->span_id, &sid, 8);
	sp->svc = svc;
	sp->jstr = jstr;
	sp->jbytes = jbytes;
	sp->jblen = jblen;
	memcpy(d->key_id[d->n], key, 16);
	d->valid[d->n] = valid;
	d->n++;
}

static const char *const bad_jids[NBAD] = {
	"0123456789abcdef0123456789abcde",   /* 31 digits */
	"0123456789abcdef0123456789abcdef0", /* 33 */
	"0123456789abcdef0123456789abcdeg",  /* non-hex */
	"journey-0123456789abcdef01234567",  /* non-hex, 32 chars */
	"",
	"00000000000000000000000000000000",  /* all zero */
	NULL,                                /* bytes_value of 15 bytes */
	"0x23456789abcdef0123456789abcdef",
};

static void jdata_init(struct jdata *d)
{
	d->n = 0;
	for (int j = 0; j < NJOURNEYS; j++) {
		uint8_t prod[16], cons[16];
		rnd_id(prod, 16);
		rnd_id(cons, 16);
		memcpy(d->jbin[j], prod, 16);
		to_hex(prod, d->hex[j]);
		for (int s = 0; s < JSPANS; s++) /* the producer (the head's trace) */
			jdata_add(d, prod, "api", d->hex[j], NULL, 0, prod, 1);
		for (int s = 0; s < JSPANS; s++) /* the consumer: its own trace id, the head's journey id */
			if (j % 4 == 3) /* some as bytes_value */
				jdata_add(d, cons, "notifier", NULL, d->jbin[j], 16, prod, 1);
			else
				jdata_add(d, cons, "notifier", d->hex[j], NULL, 0, prod, 1);
	}
	for (int t = 0; t < NPLAIN; t++) {
		uint8_t tid[16];
		rnd_id(tid, 16);
		jdata_add(d, tid, "db", NULL, NULL, 0, tid, 0);
		jdata_add(d, tid, "db", NULL, NULL, 0, tid, 0);
	}
	static const uint8_t short_id[15] = {1, 2, 3};
	for (int b = 0; b < NBAD; b++) {
		uint8_t tid[16];
		rnd_id(tid, 16);
		if (bad_jids[b])
			jdata_add(d, tid, "search", bad_jids[b], NULL, 0, tid, 0);
		else
			jdata_add(d, tid, "search", NULL, short_id, 15, tid, 0);
	}
	assert_int_equal(d->n, JTOTAL);
}

static void test_route_by_journey(void **st)
{
	(void)st;
	struct server sv[3];
	for (int i = 0; i < 3; i++)
		server_start(&sv[i], 0);
	char yaml[2048];
	snprintf(yaml, sizeof yaml,
		 "    routing_key: journey\n" OTLP_FAST
		 "    resolver:\n      static: {hostnames: [\"%s\", \"%s\", \"%s\"]}\n",
		 sv[0].endpoint, sv[1].endpoint, sv[2].endpoint);
	struct kn_metrics *m = kn_metrics_create();
	void *lb = lb_create_from(yaml, m, "loadbalancing/journey", 2);
	static struct jdata d;
	jdata_init(&d);
	/* Mixed chunks (split path): spans interleaved by a stride so producer,
	 * consumer, plain and bad spans share chunks. */
	static struct tspan part[JTOTAL];
	size_t sent = 0;
	for (int k = 0; k < 7; k++) {
		struct kn_batch *b = kn_batch_new(4);
		size_t n = 0;
		for (size_t i = (size_t)k; i < d.n; i += 7)
			part[n++] = d.spans[i];
		/* two chunks per batch */
		assert_int_equal(kn_batch_add(&b, make_chunk(part, n / 2)), KN_OK);
		assert_int_equal(kn_batch_add(&b, make_chunk(part + n / 2, n - n / 2)), KN_OK);
		sent += n;
		assert_int_equal(kn_exporter_loadbalancing.export(lb, b), KN_OK);
	}
	assert_int_equal(sent, d.n);
	/* One chunk holding a whole journey (producer + consumer): one endpoint,
	 * passed on by reference. Its spans get fresh span ids. */
	struct tspan whole[2 * JSPANS];
	for (int s = 0; s < 2 * JSPANS; s++) {
		whole[s] = d.spans[s];
		uint64_t sid = 900000 + (uint64_t)s;
		memcpy(whole[s].span_id, &sid, 8);
	}
	struct kn_batch *b = kn_batch_new(1);
	assert_int_equal(kn_batch_add(&b, make_chunk(whole, 2 * JSPANS)), KN_OK);
	assert_int_equal(kn_exporter_loadbalancing.export(lb, b), KN_OK);
	kn_exporter_loadbalancing.shutdown(lb, kn_now_ns() + 30 * KN_NS_PER_SEC);

	const char *lbl = "exporter=\"loadbalancing/journey\"";
	uint64_t nvalid = NJOURNEYS * 2 * JSPANS + 2 * JSPANS;
	assert_int_equal(counter(m, "kansatsu_loadbalancer_journey_keyed_spans_total",
				 "exporter=\"loadbalancing/journey\",key=\"journey_id\""), nvalid);
	assert_int_equal(counter(m, "kansatsu_loadbalancer_journey_keyed_spans_total",
				 "exporter=\"loadbalancing/journey\",key=\"trace_id\""), NPLAIN * 2 + NBAD);
	assert_int_equal(counter(m, "kansatsu_loadbalancer_invalid_journey_id_spans_total", lbl), NBAD);
	assert_int_equal(counter(m, "kansatsu_exporter_dropped_spans_total",
				 "exporter=\"loadbalancing/journey\",reason=\"routing_error\""), 0);
	kn_exporter_loadbalancing.destroy(lb);

	const char *eps[3] = {sv[0].endpoint, sv[1].endpoint, sv[2].endpoint};
	struct kn_err err;
	struct kn_lb_ring *ring = kn_lb_ring_build(eps, 3, &err);
	assert_non_null(ring);
	size_t cap = d.n + 2 * JSPANS, n = 0;
	struct seen *seen = calloc(cap, sizeof *seen);
	for (int i = 0; i < 3; i++) {
		server_stop(&sv[i]);
		n = collect_server(&sv[i], i, seen, cap, n);
	}
	assert_int_equal(n, cap);
	/* every span exactly once, at the endpoint of its key */
	qsort(seen, n, sizeof *seen, cmp_seen);
	int got[JTOTAL] = {0}, whole_got[2 * JSPANS] = {0};
	for (size_t i = 0; i < n; i++) {
		uint64_t sid;
		memcpy(&sid, seen[i].span_id, 8);
		const uint8_t *key;
		if (sid >= 900000) {
			assert_true(sid < 900000 + 2 * JSPANS);
			whole_got[sid - 900000]++;
			key = d.key_id[sid - 900000];
		} else {
			assert_true(sid >= 500000 && sid < 500000 + JTOTAL);
			size_t k = (size_t)(sid - 500000);
			got[k]++;
			assert_memory_equal(seen[i].trace_id, d.spans[k].trace_id, 16);
			key = d.key_id[k];
		}
		const char *ep = ring->endpoints[kn_lb_ring_lookup(ring, kn_lb_key_trace(key))];
		if (strcmp(ep, sv[seen[i].server].endpoint) != 0)
			fail_msg("span %" PRIu64 " arrived at %s, its key maps to %s", sid, sv[seen[i].server].endpoint, ep);
	}
	for (size_t k = 0; k < JTOTAL; k++)
		assert_int_equal(got[k], 1);
	for (int s = 0; s < 2 * JSPANS; s++)
		assert_int_equal(whole_got[s], 1);
	/* producer and consumer of each journey at one server; and the test has
	 * teeth: some consumers' own trace ids map elsewhere */
	int where[NJOURNEYS], apart = 0;
	for (int j = 0; j < NJOURNEYS; j++)
		where[j] = -1;
	for (size_t i = 0; i < n; i++) {
		uint64_t sid;
		memcpy(&sid, seen[i].span_id, 8);
		if (sid < 500000 || sid >= 500000 + NJOURNEYS * 2 * JSPANS)
			continue;
		int j = (int)((sid - 500000) / (2 * JSPANS));
		if (where[j] < 0)
			where[j] = seen[i].server;
		assert_int_equal(seen[i].server, where[j]);
	}
	for (int j = 0; j < NJOURNEYS; j++) {
		const struct tspan *c = &d.spans[j * 2 * JSPANS + JSPANS];
		assert_true(where[j] >= 0);
		if (kn_lb_ring_lookup(ring, kn_lb_key_trace(c->trace_id)) !=
		    kn_lb_ring_lookup(ring, kn_lb_key_trace(d.jbin[j])))
			apart++;
	}
	assert_true(apart > 0);
	free(seen);
	kn_lb_ring_free(ring);
	kn_metrics_destroy(m);
	for (int i = 0; i < 3; i++)
		server_free(&sv[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_pinned),
		cmocka_unit_test(test_ring_deterministic_and_balanced),
		cmocka_unit_test(test_ring_moves_about_one_nth),
		cmocka_unit_test(test_service_name_scan),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_config_values),
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_every_trace_to_one_endpoint),
		cmocka_unit_test(test_route_by_service),
		cmocka_unit_test(test_removed_endpoint_batches_rerouted),
		cmocka_unit_test(test_add_endpoint_at_runtime),
		cmocka_unit_test(test_ring_changes_under_load),
		cmocka_unit_test(test_dns_localhost),
		cmocka_unit_test(test_journey_id_scan),
		cmocka_unit_test(test_journey_config),
		cmocka_unit_test(test_route_by_journey),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
