/* SPDX-License-Identifier: Apache-2.0
 * bench_grpc_mutex: what abseil's mutex deadlock detection costs libgrpc's
 * mutexes, and how it scales with threads (see collector/grpc/kn_grpc_absl.h).
 *
 *   bench_grpc_mutex [-t MILLISECONDS] [-T MAX_THREADS]
 *
 * Each of T threads locks and unlocks its own gpr_mu (an absl::Mutex in
 * libgrpc 1.51), so no two threads ever touch the same mutex: whatever
 * makes them slower together is shared state inside the lock itself. Rows:
 * T = 1, 2, 4, ... up to MAX_THREADS (default: the CPUs this process may use,
 * at least 2, at most 64), each for MILLISECONDS (default 500) with
 * detection on (Debian's abseil default) and then off (what kansatsu,
 * loadgen and sink set at start). Columns: lock/unlock pairs per second of
 * all threads together, and wall ns per pair per thread. Prints a Markdown
 * table; times nothing it asserts on. */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <grpc/support/sync.h>

#include "collector/core/kn_cpus.h"
#include "collector/grpc/kn_grpc_absl.h"

static atomic_int g_go, g_stop;

struct worker {
	pthread_t th;
	uint64_t pairs;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	gpr_mu mu;
	gpr_mu_init(&mu);
	while (!atomic_load_explicit(&g_go, memory_order_acquire))
		;
	uint64_t n = 0;
	while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
		for (int i = 0; i < 256; i++) {
			gpr_mu_lock(&mu);
			gpr_mu_unlock(&mu);
		}
		n += 256;
	}
	gpr_mu_destroy(&mu);
	w->pairs = n;
	return NULL;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Pairs per second of all threads together; *ns_each = wall ns per pair per thread. */
static double run(unsigned threads, unsigned ms, double *ns_each)
{
	struct worker *w = calloc(threads, sizeof *w);
	if (!w) {
		fprintf(stderr, "bench_grpc_mutex: out of memory\n");
		exit(1);
	}
	atomic_store(&g_go, 0);
	atomic_store(&g_stop, 0);
	unsigned started = 0;
	for (; started < threads; started++)
		if (pthread_create(&w[started].th, NULL, work, &w[started]) != 0)
			break;
	if (started < threads) {
		fprintf(stderr, "bench_grpc_mutex: cannot start thread %u\n", started + 1);
		exit(1);
	}
	double t0 = now_s();
	atomic_store_explicit(&g_go, 1, memory_order_release);
	struct timespec d = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&d, NULL);
	atomic_store(&g_stop, 1);
	uint64_t total = 0;
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(w[i].th, NULL);
		total += w[i].pairs;
	}
	double dt = now_s() - t0;
	free(w);
	*ns_each = total ? dt * 1e9 * threads / (double)total : 0;
	return (double)total / dt;
}

int main(int argc, char **argv)
{
	unsigned ms = 500, max = 0;
	int opt;
	while ((opt = getopt(argc, argv, "t:T:")) != -1) {
		switch (opt) {
		case 't':
			ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'T':
			max = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: bench_grpc_mutex [-t MILLISECONDS] [-T MAX_THREADS]\n");
			return 2;
		}
	}
	if (!max) {
		max = kn_cpus();
		if (max < 2)
			max = 2;
	}
	if (max > 64)
		max = 64;
	printf("gpr_mu lock/unlock pairs, each thread on its own mutex, %u ms per cell, %u CPUs\n\n", ms,
	       kn_cpus());
	printf("| threads | detection on: M pairs/s (all threads) | ns per pair per thread | "
	       "detection off: M pairs/s (all threads) | ns per pair per thread |\n");
	printf("| ---: | ---: | ---: | ---: | ---: |\n");
	for (unsigned t = 1;; t = t * 2 < max ? t * 2 : max) {
		double on_ns, off_ns;
		kn_grpc_absl_set_detection(1);
		double on = run(t, ms, &on_ns);
		kn_grpc_absl_set_detection(0);
		double off = run(t, ms, &off_ns);
		printf("| %u | %.1f | %.1f | %.1f | %.1f |\n", t, on / 1e6, on_ns, off / 1e6, off_ns);
		fflush(stdout);
		if (t >= max)
			break;
	}
	return 0;
}
