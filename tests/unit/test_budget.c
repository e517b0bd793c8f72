/* SPDX-License-Identifier: Apache-2.0
 * Tests of kn_budget: the span budget's charge/release accounting (no
 * overshoot, limit changes while charged) and how kansatsu.memory_limit_mib
 * splits into the process base, a headroom and the span budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/core/kn_budget.h"

#define MIB ((size_t)1 << 20)

static void test_charge_and_release(void **st)
{
	(void)st;
	kn_budget_init(1000);
	assert_int_equal(kn_budget_limit(), 1000);
	assert_true(kn_budget_try_charge(600));
	assert_false(kn_budget_try_charge(401)); /* would pass the limit */
	assert_int_equal(kn_budget_used(), 600);  /* a refused charge charges nothing */
	assert_true(kn_budget_try_charge(400));   /* exactly up to the limit */
	kn_budget_release(1000);
	assert_int_equal(kn_budget_used(), 0);
	assert_false(kn_budget_try_charge(SIZE_MAX)); /* no wrap-around */
	kn_budget_init(0);
	assert_true(kn_budget_try_charge(SIZE_MAX / 2)); /* 0 = unlimited */
	kn_budget_release(SIZE_MAX / 2);
}

static void test_set_limit_keeps_charges(void **st)
{
	(void)st;
	kn_budget_init(1000);
	assert_true(kn_budget_try_charge(800));
	kn_budget_set_limit(500); /* lowered while charged: later charges fail */
	assert_int_equal(kn_budget_used(), 800);
	assert_false(kn_budget_try_charge(1));
	kn_budget_release(400);
	assert_true(kn_budget_try_charge(100));
	assert_false(kn_budget_try_charge(1));
	kn_budget_release(500);
	assert_int_equal(kn_budget_used(), 0);
	kn_budget_init(0);
}

struct split_case {
	const char *name;
	size_t limit, base;
	size_t headroom, spans;
	int floored;
};

static void test_split_table(void **st)
{
	(void)st;
	static const struct split_case cases[] = {
		/* headroom at least 16 MiB; spans what is left */
		{"64 MiB, 17 MiB base", 64 * MIB, 17 * MIB, 16 * MIB, 31 * MIB, 0},
		/* headroom limit/8 above 128 MiB */
		{"512 MiB, 20 MiB base", 512 * MIB, 20 * MIB, 64 * MIB, 428 * MIB, 0},
		/* what is left is below limit/4: the floor */
		{"64 MiB, 36 MiB base", 64 * MIB, 36 * MIB, 16 * MIB, 16 * MIB, 1},
		/* the limit is smaller than the process itself */
		{"1 MiB, 17 MiB base", 1 * MIB, 17 * MIB, 16 * MIB, MIB / 4, 1},
		/* base unknown (no /proc): only the headroom is set aside */
		{"64 MiB, base unknown", 64 * MIB, 0, 16 * MIB, 48 * MIB, 0},
		/* overflow of base + headroom */
		{"huge base", 64 * MIB, SIZE_MAX - MIB, 16 * MIB, 16 * MIB, 1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct split_case *c = &cases[i];
		struct kn_budget_split s = kn_budget_for_process(c->limit, c->base);
		print_message("%s\n", c->name);
		assert_int_equal(s.limit, c->limit);
		assert_int_equal(s.base, c->base);
		assert_int_equal(s.headroom, c->headroom);
		assert_int_equal(s.spans, c->spans);
		assert_int_equal(s.floored, c->floored);
		if (!s.floored)
			assert_int_equal(s.base + s.headroom + s.spans, s.limit);
	}
}

static void test_process_rss(void **st)
{
	(void)st;
	/* Touching 8 MiB more must show in the RSS (Linux /proc/self/statm). */
	size_t before = kn_budget_process_rss();
	assert_true(before > 0);
	size_t n = 8 * MIB;
	unsigned char *p = malloc(n);
	assert_non_null(p);
	memset(p, 0x5a, n);
	size_t after = kn_budget_process_rss();
	assert_true(after >= before + n / 2);
	free(p);
}

static void test_apply_and_trim(void **st)
{
	(void)st;
	kn_budget_init(0);
	assert_int_equal(kn_budget_trim(), 0); /* nothing applied yet: a no-op */
	/* A base far above the RSS: nothing to trim, the limit is the split's. */
	struct kn_budget_split s = kn_budget_for_process(1 << 30, (size_t)1 << 29);
	kn_budget_apply(&s);
	assert_int_equal(kn_budget_limit(), s.spans);
	assert_int_equal(kn_budget_trim(), 0);
	/* A base of one byte and no headroom: any RSS is slack, so it trims. */
	struct kn_budget_split tiny = {.limit = 2, .base = 1, .headroom = 0, .spans = 1};
	kn_budget_apply(&tiny);
	assert_int_equal(kn_budget_trim(), 1);
	/* Memory a processor declares held (a trace store) is not slack: with
	 * more declared than the whole RSS nothing is trimmed; released, it is. */
	size_t rss = kn_budget_process_rss();
	assert_true(rss > 0);
	kn_budget_held_add((int64_t)rss * 2);
	assert_int_equal(kn_budget_held(), rss * 2);
	assert_int_equal(kn_budget_trim(), 0);
	kn_budget_held_add(-(int64_t)rss * 2);
	assert_int_equal(kn_budget_held(), 0);
	assert_int_equal(kn_budget_trim(), 1);
	struct kn_budget_split off = {0};
	kn_budget_apply(&off);
	kn_budget_init(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_charge_and_release),
		cmocka_unit_test(test_set_limit_keeps_charges),
		cmocka_unit_test(test_split_table),
		cmocka_unit_test(test_process_rss),
		cmocka_unit_test(test_apply_and_trim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
