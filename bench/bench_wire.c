/* SPDX-License-Identifier: Apache-2.0
 * bench_wire: the in-process ingest path per core, on W1.
 *
 * Builds N distinct W1 requests (default 300, ~55 MB, more than any cache),
 * then for each row walks them all, again and again until the row has used
 * at least T seconds of thread CPU time:
 *   index          kn_wire_index_request alone
 *   split S        kn_wire_index_request + kn_wire_split into S shards
 *                  (+ kn_chunk_unref of every chunk: what a receiver pays
 *                  before handing chunks to the rings)
 *   protobuf-c     ExportTraceServiceRequest unpack + free_unpacked, the
 *                  reference a receiver built on protobuf-c would pay
 * and prints a Markdown table. Rates are per core: spans and bytes divided by
 * CLOCK_THREAD_CPUTIME_ID seconds of the one benchmarking thread;
 * CLOCK_MONOTONIC wall time is shown beside it (they differ when the machine
 * is busy). Every pass checks the results (512 spans indexed, none rejected,
 * the shards' chunks hold all spans), so a broken reader fails the run
 * (exit 1) instead of printing a fast number.
 *
 * Usage: bench_wire [-n requests] [-t seconds_per_row] [-s seed] [-r row]
 *   -r runs one row only (index, split1, split2, split4, protobuf-c): handy
 *      under perf or callgrind
 * Single-threaded; memory: the requests plus one request's chunks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collector/wire/kn_wire.h"
#include "kn_w1.h"

struct req {
	uint8_t *buf;
	size_t len;
};

struct row {
	const char *key;      /* for -r */
	const char *name;
	uint32_t shards;      /* 0: index only; UINT32_MAX: protobuf-c */
	uint64_t spans, bytes;
	double cpu_s, wall_s;
};

#define ROW_PBC UINT32_MAX

static double now_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One pass over every request; returns spans handled, or -1 on a wrong result. */
static long long one_pass(const struct row *r, struct kn_wire_index *ix,
			  const struct req *reqs, size_t n)
{
	long long spans = 0;
	struct kn_err err;
	struct kn_chunk *out[8];
	for (size_t i = 0; i < n; i++) {
		if (r->shards == ROW_PBC) {
			kn_w1_req *m = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
				NULL, reqs[i].len, reqs[i].buf);
			if (!m || m->n_resource_spans != KN_W1_RESOURCES) {
				fprintf(stderr, "bench_wire: protobuf-c unpack of request %zu failed\n", i);
				if (m)
					opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(m, NULL);
				return -1;
			}
			for (size_t k = 0; k < m->n_resource_spans; k++)
				spans += (long long)m->resource_spans[k]->scope_spans[0]->n_spans;
			opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(m, NULL);
			continue;
		}
		if (kn_wire_index_request(ix, reqs[i].buf, reqs[i].len, &err) != KN_OK ||
		    ix->nspans != KN_W1_SPANS || ix->rejected) {
			fprintf(stderr, "bench_wire: index of request %zu: %s (spans %u, rejected %u)\n",
				i, err.msg, ix->nspans, ix->rejected);
			return -1;
		}
		if (r->shards == 0) {
			spans += ix->nspans;
			continue;
		}
		if (kn_wire_split(ix, reqs[i].buf, r->shards, out, &err) != KN_OK) {
			fprintf(stderr, "bench_wire: split of request %zu: %s\n", i, err.msg);
			return -1;
		}
		uint32_t got = 0;
		for (uint32_t s = 0; s < r->shards; s++) {
			if (out[s])
				got += out[s]->nspans;
			kn_chunk_unref(out[s]);
		}
		if (got != KN_W1_SPANS) {
			fprintf(stderr, "bench_wire: split of request %zu holds %u spans\n", i, got);
			return -1;
		}
		spans += got;
	}
	return spans;
}

static int run_row(struct row *r, struct kn_wire_index *ix, const struct req *reqs, size_t n,
		   uint64_t bytes_per_pass, double min_cpu_s)
{
	if (one_pass(r, ix, reqs, n) < 0)   /* warm-up: grows the index, faults pages in */
		return -1;
	double c0 = now_s(CLOCK_THREAD_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
	do {
		long long s = one_pass(r, ix, reqs, n);
		if (s < 0)
			return -1;
		r->spans += (uint64_t)s;
		r->bytes += bytes_per_pass;
		r->cpu_s = now_s(CLOCK_THREAD_CPUTIME_ID) - c0;
	} while (r->cpu_s < min_cpu_s);
	r->wall_s = now_s(CLOCK_MONOTONIC) - w0;
	return 0;
}

int main(int argc, char **argv)
{
	size_t n = 300;
	double min_cpu_s = 2.0;
	uint64_t seed = 1;
	const char *only = NULL;
	int opt, rc = 1;
	while ((opt = getopt(argc, argv, "n:t:s:r:")) != -1) {
		switch (opt) {
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 't': min_cpu_s = strtod(optarg, NULL); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'r': only = optarg; break;
		default:
			fprintf(stderr, "usage: bench_wire [-n requests] [-t seconds_per_row] [-s seed] "
				"[-r index|split1|split2|split4|protobuf-c]\n");
			return 2;
		}
	}
	if (n == 0) {
		fprintf(stderr, "bench_wire: -n: at least 1 request\n");
		return 2;
	}
	struct row rows[] = {
		{ .key = "index", .name = "index only", .shards = 0 },
		{ .key = "split1", .name = "index + split", .shards = 1 },
		{ .key = "split2", .name = "index + split", .shards = 2 },
		{ .key = "split4", .name = "index + split", .shards = 4 },
		{ .key = "protobuf-c", .name = "protobuf-c unpack+free (reference)", .shards = ROW_PBC },
	};
	size_t nrows = sizeof rows / sizeof rows[0], nmatch = 0;
	for (size_t i = 0; i < nrows; i++)
		nmatch += !only || strcmp(only, rows[i].key) == 0;
	if (nmatch == 0) {
		fprintf(stderr, "bench_wire: -r: no row named %s\n", only);
		return 2;
	}

	struct kn_w1 *w = kn_w1_new(seed);
	struct req *reqs = calloc(n, sizeof *reqs);
	struct kn_wire_index ix;
	kn_wire_index_init(&ix);
	if (!w || !reqs)
		goto fail;

	uint64_t bytes = 0, spans = 0, events = 0, errors = 0, traces = 0;
	for (size_t i = 0; i < n; i++) {
		struct kn_w1_stats st;
		if (!(reqs[i].buf = kn_w1_pack(w, i, &reqs[i].len, &st))) {
			fprintf(stderr, "bench_wire: out of memory building request %zu\n", i);
			goto fail;
		}
		bytes += reqs[i].len;
		spans += st.spans;
		events += st.events;
		errors += st.errors;
		traces += st.traces;
	}
	printf("W1: %zu requests, %u spans each (%llu traces), %.1f bytes/span encoded, "
	       "%.1f KiB/request, events on %.1f%% of spans, ERROR on %.2f%%\n\n",
	       n, KN_W1_SPANS, (unsigned long long)traces, (double)bytes / (double)spans,
	       (double)bytes / (double)n / 1024.0, 100.0 * (double)events / (double)spans,
	       100.0 * (double)errors / (double)spans);

	for (size_t i = 0; i < nrows; i++) {
		if (only && strcmp(only, rows[i].key) != 0)
			continue;
		if (run_row(&rows[i], &ix, reqs, n, bytes, min_cpu_s) < 0)
			goto fail;
	}

	printf("| path | shards | spans/s (per core) | MB/s | ns/span | CPU s | wall s |\n");
	printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (size_t i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		char shards[16];
		if (r->spans == 0)
			continue;
		if (r->shards == 0 || r->shards == ROW_PBC)
			snprintf(shards, sizeof shards, "-");
		else
			snprintf(shards, sizeof shards, "%u", r->shards);
		printf("| %s | %s | %.0f | %.0f | %.1f | %.2f | %.2f |\n", r->name, shards,
		       (double)r->spans / r->cpu_s, (double)r->bytes / r->cpu_s / 1e6,
		       r->cpu_s * 1e9 / (double)r->spans, r->cpu_s, r->wall_s);
	}
	rc = 0;
fail:
	kn_wire_index_free(&ix);
	if (reqs)
		for (size_t i = 0; i < n; i++)
			free(reqs[i].buf);
	free(reqs);
	kn_w1_free(w);
	return rc;
}
