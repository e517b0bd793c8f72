/* SPDX-License-Identifier: Apache-2.0
 * The memory_limiter processor: OpenTelemetry's validation rules, the
 * limits computed from mib / percentages (spike default 20%), the total
 * memory read from test files (cgroup v2 memory.max, cgroup v1
 * memory.limit_in_bytes, "max" and v1's unlimited value falling back to
 * /proc/meminfo), the cap handed to the runtime, the RSS check setting the
 * budget's over flag, and that process() forwards the batch untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_budget.h"
#include "collector/core/kn_metrics.h"
#include "processors/memory_limiter/kn_memory_limiter.h"

static int parse(const char *yaml, struct kn_memory_limiter_cfg *cfg, struct kn_err *err)
{
	struct kn_cnode *root = NULL;
	memset(cfg, 0, sizeof *cfg);
	assert_int_equal(kn_config_parse(yaml, strlen(yaml), "m", &root, err), KN_OK);
	int rc = kn_cfg_apply(kn_processor_memory_limiter.config_fields, root, cfg, err);
	if (rc == KN_OK)
		rc = kn_processor_memory_limiter.validate(cfg, "processors.memory_limiter", err);
	kn_cnode_free(root);
	return rc;
}

static void test_validation(void **state)
{
	(void)state;
	static const struct {
		const char *yaml, *want;
	} bad[] = {
		{"{limit_mib: 100}", "processors.memory_limiter.check_interval: must be greater than zero"},
		{"{check_interval: 0s, limit_mib: 100}", "check_interval: must be greater than zero"},
		{"{check_interval: 1s}", "'limit_mib' or 'limit_percentage' must be greater than zero"},
		{"{check_interval: 1s, limit_percentage: 101}", "limit_percentage: 'limit_percentage' and 'spike_limit_percentage' must be"},
		{"{check_interval: 1s, limit_percentage: 50, spike_limit_percentage: 101}", "spike_limit_percentage:"},
		{"{check_interval: 1s, limit_mib: 100, spike_limit_mib: 100}", "spike_limit_mib: 'spike_limit_mib' must be smaller than 'limit_mib'"},
		{"{check_interval: 1s, limit_percentage: 50, spike_limit_percentage: 50}", "'spike_limit_percentage' must be smaller than 'limit_percentage'"},
		{"{check_interval: 1s, limit_mib: 100, min_gc_interval_when_soft_limited: 10s}", "min_gc_interval_when_soft_limited: not supported"},
		{"{check_interval: 1s, limit_mib: 100, min_gc_interval_when_hard_limited: 1s}", "min_gc_interval_when_hard_limited: not supported"},
		{"{check_interval: 1s, limit_mib: 100, ballast_size_mib: 10}", "ballast_size_mib"},
		{"{check_interval: 1s, limit_mib: -1}", "limit_mib"},
	};
	struct kn_memory_limiter_cfg cfg;
	struct kn_err err = {{0}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err.msg[0] = '\0';
		int rc = parse(bad[i].yaml, &cfg, &err);
		if (rc == KN_OK || !strstr(err.msg, bad[i].want))
			fail_msg("%s: rc %d \"%s\", want \"%s\"", bad[i].yaml, rc, err.msg, bad[i].want);
	}
	static const char *const good[] = {
		"{check_interval: 1s, limit_mib: 4000, spike_limit_mib: 800}",
		"{check_interval: 5s, limit_percentage: 80, spike_limit_percentage: 25}",
		"{check_interval: 1s, limit_mib: 100, limit_percentage: 50}",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (parse(good[i], &cfg, &err) != KN_OK)
			fail_msg("%s: %s", good[i], err.msg);
}

static void test_limits(void **state)
{
	(void)state;
	struct kn_memory_limiter_cfg c = {.check_interval_ns = 1, .limit_mib = 400};
	uint64_t hard, spike;
	kn_memory_limiter_limits(&c, 0, &hard, &spike);
	assert_true(hard == 400ull << 20 && spike == 80ull << 20); /* 20% default */
	c.spike_limit_mib = 50;
	kn_memory_limiter_limits(&c, 0, &hard, &spike);
	assert_true(spike == 50ull << 20);
	struct kn_memory_limiter_cfg p = {.check_interval_ns = 1, .limit_percentage = 80,
					  .spike_limit_percentage = 25};
	kn_memory_limiter_limits(&p, 1000ull << 20, &hard, &spike);
	assert_true(hard == 800ull << 20 && spike == 250ull << 20);
	p.spike_limit_percentage = 0;
	kn_memory_limiter_limits(&p, 1000ull << 20, &hard, &spike);
	assert_true(spike == 160ull << 20);
	c.limit_percentage = 10; /* limit_mib wins */
	kn_memory_limiter_limits(&c, 1000ull << 20, &hard, &spike);
	assert_true(hard == 400ull << 20);
}

/* The split the runtime applies with a limiter's cap: the spike is the
 * headroom when it is larger than kansatsu's own (limit/8, 16 MiB). */
static void test_split_with_spike(void **state)
{
	(void)state;
	struct kn_budget_split sp = kn_budget_for_process_min(192ull << 20, 20ull << 20, 48ull << 20);
	assert_true(sp.headroom == 48ull << 20);
	assert_true(sp.spans == (192ull - 20 - 48) << 20);
	assert_int_equal(sp.floored, 0);
	sp = kn_budget_for_process_min(512ull << 20, 20ull << 20, 8ull << 20);
	assert_true(sp.headroom == 64ull << 20); /* limit/8 wins over a small spike */
	sp = kn_budget_for_process_min(512ull << 20, 20ull << 20, 0);
	struct kn_budget_split plain = kn_budget_for_process(512ull << 20, 20ull << 20);
	assert_true(sp.headroom == plain.headroom && sp.spans == plain.spans);
}

static char root[64];

static void put(const char *path, const char *text)
{
	char full[512], dir[512];
	snprintf(full, sizeof full, "%s%s", root, path);
	snprintf(dir, sizeof dir, "%s", full);
	for (char *p = dir + strlen(root) + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(dir, 0755);
			*p = '/';
		}
	FILE *f = fopen(full, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void fresh_root(void)
{
	char cmd[128];
	if (root[0]) {
		snprintf(cmd, sizeof cmd, "rm -rf %s", root);
		assert_int_equal(system(cmd), 0);
	}
	snprintf(root, sizeof root, "/tmp/kn_ml_XXXXXX");
	assert_non_null(mkdtemp(root));
	put("/proc/meminfo", "MemTotal:        8000000 kB\nMemFree:         1000 kB\n");
}

static void test_total_memory(void **state)
{
	(void)state;
	/* no cgroup files: MemTotal */
	fresh_root();
	assert_true(kn_memory_limiter_total(root) == 8000000ull * 1024);
	/* v2 with a limit in this process's cgroup */
	put("/sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
	put("/proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
	put("/sys/fs/cgroup/kubepods/pod1/ctr/memory.max", "536870912\n");
	assert_true(kn_memory_limiter_total(root) == 536870912ull);
	/* v2 "max": no limit -> MemTotal */
	put("/sys/fs/cgroup/kubepods/pod1/ctr/memory.max", "max\n");
	assert_true(kn_memory_limiter_total(root) == 8000000ull * 1024);
	/* v2, namespaced path hidden: the mount point's own file */
	fresh_root();
	put("/sys/fs/cgroup/cgroup.controllers", "memory\n");
	put("/proc/self/cgroup", "0::/\n");
	put("/sys/fs/cgroup/memory.max", "268435456\n");
	assert_true(kn_memory_limiter_total(root) == 268435456ull);
	/* v1 */
	fresh_root();
	put("/proc/self/cgroup", "12:cpu,cpuacct:/x\n7:memory:/docker/abc\n0::/\n");
	put("/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "1073741824\n");
	assert_true(kn_memory_limiter_total(root) == 1073741824ull);
	/* v1 unlimited -> MemTotal */
	put("/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n");
	assert_true(kn_memory_limiter_total(root) == 8000000ull * 1024);
	/* nothing readable at all */
	fresh_root();
	put("/proc/meminfo", "garbage\n");
	assert_true(kn_memory_limiter_total(root) == 0);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
}

static int forwarded;
static int fwd(void *ctx, struct kn_batch *b)
{
	(void)ctx;
	forwarded++;
	kn_batch_free(b);
	return KN_OK;
}

/* The tick on shard 0 sets the budget's over flag when the RSS is above
 * the soft limit, which makes charges fail (while something is charged). */
static void test_rss_check(void **state)
{
	(void)state;
	struct kn_err err;
	struct kn_metrics *m = kn_metrics_create();
	struct kn_component_ctx ctx = {.id = "memory_limiter", .metrics = m, .nshards = 2};
	/* 2 MiB hard, 1 MiB spike: any real process is above 1 MiB */
	struct kn_memory_limiter_cfg c = {.check_interval_ns = 1000000, .limit_mib = 2,
					  .spike_limit_mib = 1};
	void *inst, *s0, *s1;
	kn_budget_init(0);
	assert_int_equal(kn_processor_memory_limiter.create(&ctx, &c, &inst, &err), KN_OK);
	assert_int_equal(kn_processor_memory_limiter.shard_create(inst, 0, &s0, &err), KN_OK);
	assert_int_equal(kn_processor_memory_limiter.shard_create(inst, 1, &s1, &err), KN_OK);
	struct kn_emit next = {fwd, NULL};
	assert_int_equal(kn_processor_memory_limiter.tick(s1, 5, &next), 0); /* not the checker */
	assert_int_equal(kn_budget_over(), 0);
	uint64_t d = kn_processor_memory_limiter.tick(s0, 5, &next);
	assert_true(d == 5 + 1000000);
	assert_int_equal(kn_budget_over(), 1);
	assert_int_equal(kn_budget_try_charge(100), 1); /* nothing charged yet: admitted */
	assert_int_equal(kn_budget_try_charge(100), 0); /* now refused */
	kn_budget_release(100);
	struct kn_batch *b = kn_batch_new(1);
	assert_int_equal(kn_processor_memory_limiter.process(s0, b, &next), KN_OK);
	assert_int_equal(forwarded, 1);
	kn_processor_memory_limiter.shard_destroy(s1);
	kn_processor_memory_limiter.shard_destroy(s0);
	assert_int_equal(kn_budget_over(), 0); /* cleared on the way out */
	kn_processor_memory_limiter.destroy(inst);
	/* a limit far above the RSS: never over */
	struct kn_memory_limiter_cfg big = {.check_interval_ns = 1000000, .limit_mib = 1 << 20};
	assert_int_equal(kn_processor_memory_limiter.create(&ctx, &big, &inst, &err), KN_OK);
	assert_int_equal(kn_processor_memory_limiter.shard_create(inst, 0, &s0, &err), KN_OK);
	kn_processor_memory_limiter.tick(s0, 5, &next);
	assert_int_equal(kn_budget_over(), 0);
	kn_processor_memory_limiter.shard_destroy(s0);
	kn_processor_memory_limiter.destroy(inst);
	kn_metrics_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_split_with_spike),
		cmocka_unit_test(test_total_memory),
		cmocka_unit_test(test_rss_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
