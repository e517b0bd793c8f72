/* SPDX-License-Identifier: Apache-2.0
 * kansatsu's command line.
 *
 *   kansatsu [--config FILE]            run (embedded default config without --config)
 *   kansatsu validate [--config FILE]   check a config and exit (0 good, 1 bad)
 *   kansatsu slo-rules [--config FILE]  print Prometheus rules for the config's SLIs
 *   kansatsu default-config             print the embedded default config
 *   kansatsu --version | --help
 *
 * Signals are blocked in every thread before any thread starts; the main
 * thread waits for SIGTERM/SIGINT with sigwait and then runs the orderly
 * shutdown (stop intake, drain what was acknowledged, exit 0). While it
 * waits it trims the allocator every 100 ms when it holds much freed memory
 * (kn_budget_trim); SIGUSR1 logs where the memory is (malloc_info). */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config/kn_config.h"
#include "grpc/kn_grpc_absl.h"
#include "grpc/kn_grpc_log.h"
#include "core/kn_budget.h"
#include "core/kn_log.h"
#include "core/kn_metrics.h"
#include "core/kn_runtime.h"

static void usage(FILE *f)
{
	fprintf(f,
		"kansatsu %s: OpenTelemetry-compatible trace collector and tail-sampler\n"
		"\n"
		"usage:\n"
		"  kansatsu [--config FILE]            run the collector (embedded default config\n"
		"                                      without --config: OTLP gRPC :4317 and HTTP :4318\n"
		"                                      -> batch -> debug exporter)\n"
		"  kansatsu validate [--config FILE]   check a config file and exit\n"
		"  kansatsu slo-rules [--config FILE]  print Prometheus recording and alerting rules\n"
		"                                      (YAML) for every SLI of every `sli` processor:\n"
		"                                      error ratios and burn rates summed over a fleet\n"
		"                                      of collectors, multi-window burn-rate alerts,\n"
		"                                      error budget, canary verdict per service.version\n"
		"  kansatsu default-config             print the embedded default config\n"
		"  kansatsu --version                  print the version\n"
		"  kansatsu --help                     this text\n"
		"\n"
		"The config file uses the OpenTelemetry Collector's YAML shape (receivers,\n"
		"processors, exporters, extensions, service.pipelines.traces) plus a `kansatsu:`\n"
		"section (shards, memory_limit_mib, shutdown_timeout, ring_size). ${env:VAR}\n"
		"is substituted. Signals: SIGTERM/SIGINT drain and exit 0; SIGUSR1 logs memory use.\n",
		KN_VERSION);
}

/* SIGUSR1: where the process's memory is, for tuning memory_limit_mib. One
 * summary line, then glibc's per-arena XML (malloc_info(3)) on stderr. */
static void report_memory(void)
{
	struct mallinfo2 mi = mallinfo2();
	kn_info("memory: budget used %zu of %zu bytes; malloc: arena %zu, mmap %zu, in use %zu, "
		"free %zu (top %zu)",
		kn_budget_used(), kn_budget_limit(), mi.arena, mi.hblkhd, mi.uordblks + mi.hblkhd,
		mi.fordblks, mi.keepcost);
	malloc_info(0, stderr);
}

static struct kn_cnode *load(const char *file, struct kn_err *err)
{
	struct kn_cnode *root = NULL;
	int rc = file ? kn_config_load_file(file, &root, err)
		      : kn_config_parse(kn_default_config, strlen(kn_default_config), "<default>",
					&root, err);
	return rc == KN_OK ? root : NULL;
}

/* glibc malloc, tuned for a process whose big blocks (chunks, request
 * bodies) are allocated on one thread and freed on another:
 * - at most two arenas per CPU instead of eight: every arena keeps its own
 *   freed memory, so fewer arenas hold less of it;
 * - fixed mmap and trim thresholds: left dynamic, glibc raises both after the
 *   first large free (up to 32 and 64 MiB), and an arena then keeps tens of
 *   MiB of freed memory that count against kansatsu.memory_limit_mib.
 * A lower mmap threshold (64 KiB) would bound RSS without the periodic trim
 * but costs ~25% CPU per span (a fresh mapping and its page faults per chunk);
 * see bench/results/2core-vm.md. */
static void tune_malloc(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	mallopt(M_ARENA_MAX, ncpu > 0 && ncpu < 64 ? (int)(2 * ncpu) : 128);
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}

/* Every client connection is a descriptor, and systemd, docker and most
 * shells start services with a soft limit of 1024 (the hard limit is often
 * far higher): raise the soft limit to the hard one, as nginx's
 * worker_rlimit_nofile and Go's runtime (1.19+) do, so the receivers'
 * max_connections (HTTP: 4096 per receiver) is what bounds connections, not
 * accept() failing with EMFILE. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rlim_t was = rl.rlim_cur;
	/* "unlimited" is refused for descriptors; Linux's fs.nr_open default */
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		kn_warn("open files: cannot raise the soft limit %llu to the hard limit %llu",
			(unsigned long long)was, (unsigned long long)rl.rlim_max);
		return;
	}
	kn_info("open files: soft limit raised from %llu to the hard limit %llu",
		(unsigned long long)was, (unsigned long long)rl.rlim_max);
}

int main(int argc, char **argv)
{
	tune_malloc();
	const char *config = NULL;
	int validate = 0, slo_rules = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			printf("kansatsu %s\n", KN_VERSION);
			return 0;
		} else if (strcmp(a, "validate") == 0 && i == 1) {
			validate = 1;
		} else if (strcmp(a, "slo-rules") == 0 && i == 1) {
			slo_rules = 1;
		} else if (strcmp(a, "default-config") == 0 && i == 1) {
			fputs(kn_default_config, stdout);
			return 0;
		} else if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "kansatsu: %s needs a file name\n", a);
				return 2;
			}
			config = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			config = a + 9;
		} else {
			fprintf(stderr, "kansatsu: unknown argument \"%s\" (see kansatsu --help)\n", a);
			return 2;
		}
	}

	/* Before anything can start a thread (libgrpc starts its own in create),
	 * so every thread inherits the mask and sigwait below sees the signal. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	kn_grpc_absl_init(); /* before any libgrpc mutex: see kn_grpc_absl.h */
	kn_grpc_log_init();
	struct kn_err err = {{0}};
	struct kn_cnode *root = load(config, &err);
	if (!root) {
		fprintf(stderr, "kansatsu: invalid config: %s\n", err.msg);
		return 1;
	}
	struct kn_runtime *rt = kn_runtime_create(root, &err);
	kn_cnode_free(root);
	if (!rt) {
		fprintf(stderr, "kansatsu: invalid config: %s\n", err.msg);
		return 1;
	}
	if (validate) {
		kn_runtime_destroy(rt);
		printf("kansatsu: config %s is valid\n", config ? config : "<default>");
		return 0;
	}
	if (slo_rules) {
		printf("# Prometheus rules for kansatsu's SLIs over a fleet of collectors, generated by\n"
		       "# `kansatsu slo-rules` from the config; regenerate them instead of editing.\n");
		int rc = kn_runtime_prom_rules(rt, stdout, &err);
		kn_runtime_destroy(rt);
		if (rc != KN_OK) {
			fprintf(stderr, "kansatsu: slo-rules: %s\n", err.msg);
			return 1;
		}
		return 0;
	}

	raise_nofile();
	if (kn_runtime_start(rt, &err) != KN_OK) {
		kn_error("cannot start: %s", err.msg);
		kn_runtime_destroy(rt);
		return 1;
	}
	/* The main thread waits for signals and, meanwhile, gives memory the
	 * allocator holds back to the system (see kn_budget_trim). */
	int sig = 0;
	struct kn_metric *trims = kn_metrics_counter(
		kn_runtime_metrics(rt), "kansatsu_memory_trims_total",
		"Times freed memory held by the allocator was given back to the system.", "");
	for (;;) {
		struct timespec tick = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig < 0) {
			if (kn_budget_trim())
				kn_counter_add(trims, 1);
			continue;
		}
		if (sig != SIGUSR1)
			break;
		report_memory();
	}
	kn_info("received %s, draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	kn_runtime_shutdown(rt);
	kn_runtime_destroy(rt);
	kn_log_event("stopped");
	return 0;
}
