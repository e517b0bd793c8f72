/* SPDX-License-Identifier: Apache-2.0
 * sink: a minimal OTLP receiver for benchmarks. It counts what arrives and
 * throws it away.
 *
 *   sink [--grpc HOST:PORT] [--http HOST:PORT] [--stats HOST:PORT]
 *        [--threads N] [--timeout S]
 *
 * OTLP/gRPC (collector/grpc/kn_otlp_grpc, libgrpc core) and OTLP/HTTP
 * (collector/http/kn_otlp_http: HTTP/1.1 keep-alive and h2c, protobuf and
 * JSON, gzip/zstd) feed one kn_ingest_sink that indexes each request with the
 * zero-copy wire reader (so a malformed request is refused as the collector
 * would refuse it) and counts requests, spans, bytes, distinct trace ids
 * (HyperLogLog, ~1.6% error) and the end-to-end latency of root spans:
 * arrival (CLOCK_REALTIME) minus the span's end_time_unix_nano. loadgen
 * --stamp makes every root span end at the moment its request is built, so
 * that histogram is "loadgen built the request -> the sink got it", through
 * whatever sits in between (roots ending more than 10 minutes before arrival,
 * e.g. W1's 2024 clock, are not sampled).
 *
 * GET /stats on the stats endpoint answers the counts as JSON (the scenario
 * runner polls it); SIGTERM or SIGINT prints the same JSON on stdout and
 * exits 0. Ports (":0" = ephemeral, the default, all on 127.0.0.1) are
 * printed on stdout as "sink: listening <grpc|http|stats> <port>", then
 * "sink: ready".
 *
 * Threads: each serving thread owns a slot (wire index, counters, HLL,
 * histogram) and is its only writer; counters are relaxed atomics so the
 * stats thread reads them without locks. Cost per request: one index pass;
 * per span: one hash and one HLL register update. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/core/kn_clock.h"
#include "collector/grpc/kn_grpc_absl.h"
#include "collector/grpc/kn_otlp_grpc.h"
#include "collector/http/kn_httpd.h"
#include "collector/http/kn_otlp_http.h"
#include "collector/wire/kn_wire.h"
#include "kn_hist.h"
#include "kn_hll.h"

#define E2E_WINDOW_NS (600ull * KN_NS_PER_SEC)

struct slot {
	struct kn_wire_index ix;
	_Atomic uint64_t requests, spans, bytes, invalid, rejected;
	struct kn_hll hll;
	struct kn_hist e2e;
};

struct sink;

struct door {                /* one transport's view: its threads' slots */
	struct sink *sink;
	uint32_t base;
};

struct sink {
	struct slot *slots;
	uint32_t nslots;
	struct door grpc_door, http_door;
	uint64_t t0;
};

static int sink_ingest(void *ctx, uint32_t thread, const uint8_t *req, size_t len,
		       const struct kn_tracectx *tc, struct kn_ingest_result *res)
{
	(void)tc;
	struct door *d = ctx;
	struct slot *s = &d->sink->slots[d->base + thread];
	uint64_t now = kn_unix_ns();
	struct kn_err err;
	int rc = kn_wire_index_request(&s->ix, req, len, &err);
	if (rc != KN_OK) {
		snprintf(res->message, sizeof res->message, "%s", err.msg);
		atomic_fetch_add_explicit(&s->invalid, 1, memory_order_relaxed);
		return rc;
	}
	static const uint8_t zero[8];
	for (uint32_t i = 0; i < s->ix.nspans; i++) {
		const struct kn_span_hdr *h = &s->ix.spans[i];
		kn_hll_add(&s->hll, kn_hll_hash16(h->trace_id));
		if (memcmp(h->parent_span_id, zero, 8) == 0 && h->end_ns + E2E_WINDOW_NS > now &&
		    h->end_ns <= now + KN_NS_PER_SEC)
			kn_hist_add(&s->e2e, h->end_ns < now ? now - h->end_ns : 0);
	}
	res->accepted = s->ix.nspans;
	res->rejected = s->ix.rejected;
	if (s->ix.rejected)
		snprintf(res->message, sizeof res->message, "%s", s->ix.reject_reason);
	atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->spans, s->ix.nspans, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->rejected, s->ix.rejected, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->bytes, len, memory_order_relaxed);
	return KN_OK;
}

static void sink_refused(void *ctx, uint32_t thread, const char *reason)
{
	(void)reason;
	struct door *d = ctx;
	atomic_fetch_add_explicit(&d->sink->slots[d->base + thread].invalid, 1, memory_order_relaxed);
}

/* The stats as one JSON object (malloc'ed; NULL on OOM). Sums every slot. */
static char *stats_json(struct sink *k)
{
	uint64_t req = 0, spans = 0, bytes = 0, invalid = 0, rejected = 0;
	struct kn_hll *hll = malloc(sizeof *hll);
	struct kn_hist *e2e = malloc(sizeof *e2e);
	char *out = malloc(1024);
	if (!hll || !e2e || !out) {
		free(out);
		out = NULL;
		goto done;
	}
	kn_hll_init(hll);
	kn_hist_init(e2e);
	for (uint32_t i = 0; i < k->nslots; i++) {
		struct slot *s = &k->slots[i];
		req += atomic_load_explicit(&s->requests, memory_order_relaxed);
		spans += atomic_load_explicit(&s->spans, memory_order_relaxed);
		bytes += atomic_load_explicit(&s->bytes, memory_order_relaxed);
		invalid += atomic_load_explicit(&s->invalid, memory_order_relaxed);
		rejected += atomic_load_explicit(&s->rejected, memory_order_relaxed);
		kn_hll_merge(hll, &s->hll);
		kn_hist_merge(e2e, &s->e2e);
	}
	snprintf(out, 1024,
		 "{\"requests\": %" PRIu64 ", \"spans\": %" PRIu64 ", \"bytes\": %" PRIu64
		 ", \"invalid_requests\": %" PRIu64 ", \"rejected_spans\": %" PRIu64
		 ", \"traces_approx\": %.0f, \"uptime_s\": %.3f"
		 ", \"e2e_latency_ms\": {\"samples\": %" PRIu64 ", \"p50\": %.3f, \"p99\": %.3f"
		 ", \"p999\": %.3f, \"max\": %.3f}}\n",
		 req, spans, bytes, invalid, rejected, spans ? kn_hll_estimate(hll) : 0.0,
		 (double)(kn_now_ns() - k->t0) / 1e9, kn_hist_count(e2e),
		 (double)kn_hist_quantile(e2e, 0.50) / 1e6, (double)kn_hist_quantile(e2e, 0.99) / 1e6,
		 (double)kn_hist_quantile(e2e, 0.999) / 1e6,
		 (double)atomic_load_explicit(&e2e->max, memory_order_relaxed) / 1e6);
done:
	free(hll);
	free(e2e);
	return out;
}

static void stats_handler(void *ctx, const struct kn_http_req *req, struct kn_http_resp *resp)
{
	if (strcmp(req->path, "/stats") != 0) {
		resp->status = 404;
		return;
	}
	if (strcmp(req->method, "GET") != 0) {
		resp->status = 405;
		kn_http_resp_header(resp, "allow", "GET");
		return;
	}
	char *j = stats_json(ctx);
	if (!j) {
		resp->status = 500;
		return;
	}
	resp->status = 200;
	resp->content_type = "application/json";
	resp->body = (uint8_t *)j;
	resp->body_len = strlen(j);
	resp->body_free = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: sink [--grpc HOST:PORT] [--http HOST:PORT] [--stats HOST:PORT]\n"
			"            [--threads N] [--timeout S]\n"
			"  defaults: 127.0.0.1:0 (ephemeral) each, 2 threads per transport,\n"
			"  no timeout (runs until SIGTERM / SIGINT; --timeout exits after S seconds)\n");
}

int main(int argc, char **argv)
{
	const char *grpc_ep = "127.0.0.1:0", *http_ep = "127.0.0.1:0", *stats_ep = "127.0.0.1:0";
	unsigned long threads = 2, timeout_s = 0;
	struct sink k = {0};
	struct kn_otlp_grpc *g = NULL;
	struct kn_otlp_http *h = NULL;
	struct kn_httpd *st = NULL;
	struct kn_err err = {{0}};
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage();
			return 0;
		}
		if (!v) {
			fprintf(stderr, "sink: %s: missing value\n", a);
			usage();
			return 2;
		}
		i++;
		if (strcmp(a, "--grpc") == 0) {
			grpc_ep = v;
		} else if (strcmp(a, "--http") == 0) {
			http_ep = v;
		} else if (strcmp(a, "--stats") == 0) {
			stats_ep = v;
		} else if (strcmp(a, "--threads") == 0) {
			threads = strtoul(v, &end, 10);
			if (*end || threads < 1 || threads > 64) {
				fprintf(stderr, "sink: --threads: expected 1..64, got \"%s\"\n", v);
				return 2;
			}
		} else if (strcmp(a, "--timeout") == 0) {
			timeout_s = strtoul(v, &end, 10);
			if (*end) {
				fprintf(stderr, "sink: --timeout: expected seconds, got \"%s\"\n", v);
				return 2;
			}
		} else {
			fprintf(stderr, "sink: unknown option %s\n", a);
			usage();
			return 2;
		}
	}

	/* signals are taken by sigwait below; every thread inherits the mask */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	k.t0 = kn_now_ns();
	k.nslots = (uint32_t)threads * 2;
	k.slots = calloc(k.nslots, sizeof *k.slots);
	if (!k.slots) {
		fprintf(stderr, "sink: out of memory\n");
		goto fail;
	}
	for (uint32_t i = 0; i < k.nslots; i++) {
		kn_wire_index_init(&k.slots[i].ix);
		kn_hll_init(&k.slots[i].hll);
		kn_hist_init(&k.slots[i].e2e);
	}
	k.grpc_door = (struct door){.sink = &k, .base = 0};
	k.http_door = (struct door){.sink = &k, .base = (uint32_t)threads};

	struct kn_otlp_grpc_opts go = {.endpoint = grpc_ep, .name = "sink/grpc",
				       .threads = (uint32_t)threads, .max_recv_msg_size_mib = 64};
	struct kn_ingest_sink gs = {.ingest = sink_ingest, .refused = sink_refused, .ctx = &k.grpc_door};
	struct kn_otlp_http_opts ho = {.endpoint = http_ep, .name = "sink/http",
				       .threads = (uint32_t)threads, .max_request_body_size = 64u << 20};
	struct kn_ingest_sink hs = {.ingest = sink_ingest, .refused = sink_refused, .ctx = &k.http_door};
	struct kn_httpd_opts so = {.endpoint = stats_ep, .name = "sink/stats", .threads = 1};
	kn_grpc_absl_init(); /* as the collector: see kn_grpc_absl.h */
	if (!(g = kn_otlp_grpc_create(&go, gs, &err)) || kn_otlp_grpc_start(g, &err) != KN_OK ||
	    !(h = kn_otlp_http_create(&ho, hs, &err)) || kn_otlp_http_start(h, &err) != KN_OK ||
	    !(st = kn_httpd_create(&so, stats_handler, NULL, &k, &err)) || kn_httpd_start(st, &err) != KN_OK) {
		fprintf(stderr, "sink: %s\n", err.msg);
		goto fail;
	}
	printf("sink: listening grpc %u\nsink: listening http %u\nsink: listening stats %u\nsink: ready\n",
	       kn_otlp_grpc_port(g), kn_otlp_http_port(h), kn_httpd_port(st));
	fflush(stdout);

	for (;;) {
		struct timespec ts = {.tv_sec = 1};
		int sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig < 0 && errno != EAGAIN && errno != EINTR)
			break;
		if (timeout_s && kn_now_ns() - k.t0 >= timeout_s * KN_NS_PER_SEC) {
			fprintf(stderr, "sink: --timeout %lu s reached\n", timeout_s);
			break;
		}
	}
	rc = 0;
fail:
	{
		uint64_t dl = kn_now_ns() + 2 * KN_NS_PER_SEC;
		kn_httpd_shutdown(st, dl);
		kn_otlp_http_shutdown(h, dl);
		kn_otlp_grpc_shutdown(g, dl);
	}
	if (rc == 0 && k.slots) {
		char *j = stats_json(&k);
		if (j)
			fputs(j, stdout);
		else
			rc = 1;
		free(j);
		fflush(stdout);
	}
	kn_httpd_destroy(st);
	kn_otlp_http_destroy(h);
	kn_otlp_grpc_destroy(g);
	for (uint32_t i = 0; k.slots && i < k.nslots; i++)
		kn_wire_index_free(&k.slots[i].ix);
	free(k.slots);
	return rc;
}
