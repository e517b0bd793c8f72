/* SPDX-License-Identifier: Apache-2.0
 * bench_tail: the tail_sampling processor on one shard, in process, on W1,
 * with the `tail` scenario's config (bench/run_scenarios.py: 10 policies,
 * decision_wait 5s, num_traces 200000, expected_new_traces_per_sec 20000).
 *
 * Request after request (each a distinct W1 request, so every trace id is
 * new), it does what a receiver and a shard worker do: kn_wire_index_request
 * + kn_wire_split into one shard (untimed: that is the receiver's cost, see
 * bench_wire), then the component's process() with the chunk, then tick() at
 * the same instant. Time is simulated: request i is accepted at i x (512 /
 * rate) seconds, so traces are decided decision_wait after they arrived and
 * the store holds decision_wait x rate spans in steady state. The first
 * decision_wait (+ one request) of simulated time warms the store up; then
 * the measured phase runs until process() + tick() have used at least T
 * seconds of thread CPU time. Rows (per core: spans divided by
 * CLOCK_THREAD_CPUTIME_ID seconds spent inside the component's calls):
 *   ingest into store    spans fed / process() CPU s
 *   decide + emit        spans decided / tick() CPU s (policies, copies of
 *                        the kept traces into chunks; freeing the emitted
 *                        batches is the exporter's, so it is not counted)
 *   total                spans fed / (process() + tick()) CPU s
 * plus the store's bytes held per buffered span at the end of the run
 * against the encoded bytes per span of the requests (the target:
 * encoded + 64).
 *
 * Every run checks itself (exit 1 on a wrong result): at the end every
 * trace is flushed; spans decided sampled + not sampled == spans fed, no
 * span late, lost or malformed, the emitted chunks hold exactly the sampled
 * spans, and the memory budget is back to 0. It prints a checksum of every
 * emitted byte: with the same options (and -n) two builds that decide and
 * emit alike print the same sum, which is how optimisations are checked to
 * change nothing.
 *
 * Usage: bench_tail [-t cpu_seconds | -n requests] [-R spans_per_s] [-w decision_wait_ms]
 *                   [-s seed]
 *   -n measures exactly n requests instead of T seconds (repeatable instruction
 *      counts under callgrind, which counts the component only with:
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=kn_tail_process \
 *     --toggle-collect=kn_tail_tick bench/bench_tail -n 400 -w 1000)
 * Single-threaded; memory: the store (about decision_wait x rate x ~390 bytes,
 * ~200 MB with the defaults) plus one request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_budget.h"
#include "collector/core/kn_clock.h"
#include "collector/core/kn_metrics.h"
#include "collector/wire/kn_wire.h"
#include "kn_w1.h"
#include "processors/tail_sampling/kn_tail_sampling.h"

/* the `tail` scenario's policies, as in bench/run_scenarios.py */
static const char tail_policies[] =
	"policies:\n"
	"  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n"
	"  - {name: slow, type: latency, latency: {threshold_ms: 45}}\n"
	"  - {name: big-traces, type: span_count, span_count: {min_spans: 50}}\n"
	"  - {name: checkout-route, type: string_attribute,\n"
	"     string_attribute: {key: http.route, values: [/api/checkout]}}\n"
	"  - {name: server-errors, type: numeric_attribute,\n"
	"     numeric_attribute: {key: http.response.status_code, min_value: 500, max_value: 599}}\n"
	"  - {name: canary, type: boolean_attribute, boolean_attribute: {key: deployment.canary, value: true}}\n"
	"  - {name: tenant-sampled, type: trace_state, trace_state: {key: tenant, values: [gold]}}\n"
	"  - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 5}}\n"
	"  - {name: rate-cap, type: rate_limiting, rate_limiting: {spans_per_second: 50000}}\n"
	"  - {name: bytes-cap, type: bytes_limiting,\n"
	"     bytes_limiting: {bytes_per_second: 20000000, burst_capacity: 40000000}}\n";

#define PROC_ID "tail_sampling"

/* Emitted batches are kept aside and freed outside the timed calls. */
struct sink {
	struct kn_batch **b;
	size_t n, cap;
	uint64_t spans, chunks;
	uint64_t sum;      /* FNV-1a over every emitted byte, in order */
	int oom;
};

static int sink_fn(void *ctx, struct kn_batch *b)
{
	struct sink *s = ctx;
	if (s->n == s->cap) {
		size_t nc = s->cap ? 2 * s->cap : 64;
		struct kn_batch **q = realloc(s->b, nc * sizeof *q);
		if (!q) {
			s->oom = 1;
			kn_batch_free(b);
			return KN_OK;
		}
		s->b = q;
		s->cap = nc;
	}
	s->b[s->n++] = b;
	return KN_OK;
}

static void sink_drain(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++) {
		s->spans += s->b[i]->nspans;
		s->chunks += s->b[i]->n;
		for (uint32_t k = 0; k < s->b[i]->n; k++) {
			const struct kn_chunk *c = s->b[i]->chunks[k];
			for (uint32_t j = 0; j < c->len; j++)
				s->sum = (s->sum ^ c->data[j]) * 1099511628211ull;
		}
		kn_batch_free(s->b[i]);
	}
	s->n = 0;
}

static double now_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The value of the sample `name{processor="...",<labels>}` in rendered metrics;
 * -1 when absent. */
static double metric(struct kn_metrics *m, const char *name, const char *labels)
{
	char *text = NULL, key[256];
	size_t len = 0;
	double v = -1;
	if (kn_metrics_render(m, &text, &len) != 0)
		return -1;
	snprintf(key, sizeof key, "\n%s{processor=\"%s\"%s%s} ", name, PROC_ID, labels ? "," : "",
		 labels ? labels : "");
	const char *p = strstr(text, key);
	if (p)
		v = strtod(p + strlen(key), NULL);
	free(text);
	return v;
}

struct phase {
	uint64_t spans_in, bytes_in, requests;
	double process_s, tick_s, wall_s;
};

int main(int argc, char **argv)
{
	double min_cpu_s = 3.0, rate = 100000;
	uint64_t wait_ms = 5000, seed = 1, nreq = 0;
	int opt, rc = 1;
	while ((opt = getopt(argc, argv, "t:n:R:w:s:")) != -1) {
		switch (opt) {
		case 't': min_cpu_s = strtod(optarg, NULL); break;
		case 'n': nreq = strtoull(optarg, NULL, 10); break;
		case 'R': rate = strtod(optarg, NULL); break;
		case 'w': wait_ms = strtoull(optarg, NULL, 10); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: bench_tail [-t cpu_seconds | -n requests] [-R spans_per_s] "
				"[-w decision_wait_ms] [-s seed]\n");
			return 2;
		}
	}
	if (!(rate >= 1000) || wait_ms == 0) {
		fprintf(stderr, "bench_tail: -R: at least 1000 spans/s; -w: at least 1 ms\n");
		return 2;
	}

	const struct kn_component *comp = &kn_processor_tail_sampling;
	struct kn_tail_sampling_cfg cfg;
	struct kn_cnode *root = NULL;
	struct kn_metrics *m = NULL;
	struct kn_w1 *w = NULL;
	struct kn_wire_index ix;
	struct kn_err err = {{0}};
	struct sink sink = {.sum = 14695981039346656037ull};
	void *inst = NULL, *state = NULL;
	uint8_t *buf = NULL;
	char yaml[4096];
	memset(&cfg, 0, sizeof cfg);
	kn_wire_index_init(&ix);
	kn_budget_init(0);

	snprintf(yaml, sizeof yaml,
		 "decision_wait: %llums\nnum_traces: 200000\nexpected_new_traces_per_sec: 20000\n%s",
		 (unsigned long long)wait_ms, tail_policies);
	if (kn_config_parse(yaml, strlen(yaml), "bench_tail", &root, &err) != KN_OK ||
	    kn_cfg_apply_at(comp->config_fields, root, "processors." PROC_ID, &cfg, &err) != KN_OK ||
	    comp->validate(&cfg, "processors." PROC_ID, &err) != KN_OK) {
		fprintf(stderr, "bench_tail: config: %s\n", err.msg);
		goto fail;
	}
	if (!(m = kn_metrics_create()) || !(w = kn_w1_new(seed))) {
		fprintf(stderr, "bench_tail: out of memory\n");
		goto fail;
	}
	struct kn_component_ctx ctx = {.id = PROC_ID, .metrics = m, .nshards = 1};
	if (comp->create(&ctx, &cfg, &inst, &err) != KN_OK ||
	    (comp->start && comp->start(inst, &err) != KN_OK) ||
	    comp->shard_create(inst, 0, &state, &err) != KN_OK) {
		fprintf(stderr, "bench_tail: %s\n", err.msg);
		goto fail;
	}
	const struct kn_emit next = {sink_fn, &sink};

	const uint64_t t0 = 1000 * KN_NS_PER_SEC;
	const double dt_ns = (double)KN_W1_SPANS / rate * 1e9;
	const uint64_t warm_ns = wait_ms * KN_NS_PER_MS + (uint64_t)dt_ns;
	struct phase ph[2] = {{0}};   /* 0: warm-up, 1: measured */
	uint64_t fed = 0, dec0 = 0;
	double c_meas = 0, w0 = 0;
	for (uint64_t i = 0;; i++) {
		uint64_t now = t0 + (uint64_t)((double)i * dt_ns);
		int measuring = now - t0 >= warm_ns;
		struct phase *p = &ph[measuring];
		if (measuring && p->requests == 0) {
			sink_drain(&sink);
			dec0 = (uint64_t)(metric(m, "kansatsu_tail_spans_total", "decision=\"sampled\"") +
					  metric(m, "kansatsu_tail_spans_total", "decision=\"not_sampled\""));
			w0 = now_s(CLOCK_MONOTONIC);
		} else if (measuring && (nreq ? p->requests >= nreq : c_meas >= min_cpu_s)) {
			break;
		}
		size_t len;
		struct kn_chunk *out[1];
		if (!(buf = kn_w1_pack(w, i, &len, NULL))) {
			fprintf(stderr, "bench_tail: out of memory building request %llu\n",
				(unsigned long long)i);
			goto fail;
		}
		if (kn_wire_index_request(&ix, buf, len, &err) != KN_OK || ix.nspans != KN_W1_SPANS ||
		    ix.rejected || kn_wire_split(&ix, buf, 1, out, &err) != KN_OK || !out[0]) {
			fprintf(stderr, "bench_tail: index/split of request %llu: %s\n",
				(unsigned long long)i, err.msg);
			goto fail;
		}
		free(buf);
		buf = NULL;
		out[0]->accepted_ns = now;
		struct kn_batch *b = kn_batch_new(1);
		if (!b || kn_batch_add(&b, out[0]) != KN_OK) {
			kn_batch_free(b);
			fprintf(stderr, "bench_tail: out of memory\n");
			goto fail;
		}
		p->spans_in += KN_W1_SPANS;
		p->bytes_in += len;
		p->requests++;
		fed += KN_W1_SPANS;
		double c1 = now_s(CLOCK_THREAD_CPUTIME_ID);
		comp->process(state, b, &next);
		double c2 = now_s(CLOCK_THREAD_CPUTIME_ID);
		comp->tick(state, now, &next);
		double c3 = now_s(CLOCK_THREAD_CPUTIME_ID);
		p->process_s += c2 - c1;
		p->tick_s += c3 - c2;
		if (measuring)
			c_meas = p->process_s + p->tick_s;
		sink_drain(&sink);
	}
	ph[1].wall_s = now_s(CLOCK_MONOTONIC) - w0;
	uint64_t decided = (uint64_t)(metric(m, "kansatsu_tail_spans_total", "decision=\"sampled\"") +
				      metric(m, "kansatsu_tail_spans_total", "decision=\"not_sampled\"")) -
			   dec0;
	double held_bytes = metric(m, "kansatsu_tail_bytes_in_memory", NULL);
	double held_spans = metric(m, "kansatsu_tail_spans_in_memory", NULL);
	double held_traces = metric(m, "kansatsu_tail_traces_in_memory", NULL);
	double kept_traces = metric(m, "kansatsu_tail_traces_total", "decision=\"sampled\"");
	double all_traces = kept_traces + metric(m, "kansatsu_tail_traces_total", "decision=\"not_sampled\"");
	double early = metric(m, "kansatsu_tail_traces_decided_early_total", "reason=\"memory\"") +
		       metric(m, "kansatsu_tail_traces_decided_early_total", "reason=\"num_traces\"");

	/* check: flush everything, then every span is accounted for */
	comp->flush(state, &next);
	sink_drain(&sink);
	double s_kept = metric(m, "kansatsu_tail_spans_total", "decision=\"sampled\"");
	double s_drop = metric(m, "kansatsu_tail_spans_total", "decision=\"not_sampled\"");
	double bad = metric(m, "kansatsu_tail_late_spans_total", "decision=\"sampled\"") +
		     metric(m, "kansatsu_tail_late_spans_total", "decision=\"not_sampled\"") +
		     metric(m, "kansatsu_tail_spans_lost_total", "reason=\"malformed\"") +
		     metric(m, "kansatsu_tail_spans_lost_total", "reason=\"out_of_memory\"");
	if (s_kept + s_drop != (double)fed || bad != 0 || (double)sink.spans != s_kept || sink.oom) {
		fprintf(stderr, "bench_tail: wrong result: fed %llu spans, decided %.0f kept + %.0f "
			"not kept, %.0f late/lost, %llu emitted\n", (unsigned long long)fed, s_kept,
			s_drop, bad, (unsigned long long)sink.spans);
		goto fail;
	}

	const struct phase *p = &ph[1];
	double enc = (double)(ph[0].bytes_in + p->bytes_in) / (double)fed;
	printf("bench_tail: W1, tail scenario policies (10), decision_wait %llu ms, simulated %.0f spans/s "
	       "on 1 shard; warm-up %llu requests, measured %llu requests (%llu spans)\n",
	       (unsigned long long)wait_ms, rate, (unsigned long long)ph[0].requests,
	       (unsigned long long)p->requests, (unsigned long long)p->spans_in);
	printf("kept %.1f%% of %.0f traces; decided early (bounds) %.0f; store at the end: %.0f traces, "
	       "%.0f spans\n\n", all_traces > 0 ? 100.0 * kept_traces / all_traces : 0.0, all_traces,
	       early, held_traces, held_spans);
	printf("| stage | spans | spans/s (per core) | ns/span | CPU s |\n");
	printf("| --- | ---: | ---: | ---: | ---: |\n");
	if (p->process_s > 0)
		printf("| ingest into store (process) | %llu | %.0f | %.1f | %.3f |\n",
		       (unsigned long long)p->spans_in, (double)p->spans_in / p->process_s,
		       p->process_s * 1e9 / (double)p->spans_in, p->process_s);
	if (p->tick_s > 0 && decided)
		printf("| decide + emit (tick) | %llu | %.0f | %.1f | %.3f |\n",
		       (unsigned long long)decided, (double)decided / p->tick_s,
		       p->tick_s * 1e9 / (double)decided, p->tick_s);
	if (p->process_s + p->tick_s > 0)
		printf("| total | %llu | %.0f | %.1f | %.3f |\n", (unsigned long long)p->spans_in,
		       (double)p->spans_in / (p->process_s + p->tick_s),
		       (p->process_s + p->tick_s) * 1e9 / (double)p->spans_in, p->process_s + p->tick_s);
	printf("\nwall s (measured phase, with request building): %.2f\n", p->wall_s);
	printf("emitted: %llu spans in %llu chunks, FNV-1a of the bytes %016llx (equal runs give equal "
	       "sums)\n", (unsigned long long)sink.spans, (unsigned long long)sink.chunks,
	       (unsigned long long)sink.sum);
	if (held_spans > 0)
		printf("memory: %.1f bytes held per buffered span, %.1f bytes encoded per span (+%.1f)\n",
		       held_bytes / held_spans, enc, held_bytes / held_spans - enc);
	rc = 0;
fail:
	free(buf);
	if (state)
		comp->shard_destroy(state);
	if (inst) {
		if (comp->shutdown)
			comp->shutdown(inst, 0);
		comp->destroy(inst);
	}
	sink_drain(&sink);
	free(sink.b);
	kn_cfg_free(comp->config_fields, &cfg);
	kn_cnode_free(root);
	kn_metrics_destroy(m);
	kn_wire_index_free(&ix);
	kn_w1_free(w);
	if (rc == 0 && kn_budget_used() != 0) {
		fprintf(stderr, "bench_tail: %zu bytes still charged to the memory budget\n",
			kn_budget_used());
		rc = 1;
	}
	return rc;
}
