/* SPDX-License-Identifier: Apache-2.0
 * Tests of kn_drain: the drain-rate estimate of the memory budget and the
 * retry delay derived from it, driven by a synthetic clock (every time below
 * is passed in; nothing reads a real clock or sleeps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/core/kn_drain.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define MIB (1ull << 20)

static struct kn_drain d;

/* `bytes` every `step` ns from t0 for `n` steps (backlogged or not);
 * returns the time after the last step. */
static uint64_t feed(uint64_t t0, uint64_t step, unsigned n, uint64_t bytes, int backlogged)
{
	uint64_t t = t0;
	for (unsigned i = 0; i < n; i++) {
		t += step;
		kn_drain_release(&d, bytes, t, backlogged);
	}
	return t;
}

static void near(double got, double want, double tol)
{
	if (got < want - tol || got > want + tol)
		fail_msg("got %.3f, want %.3f +- %.3f", got, want, tol);
}

static void test_no_estimate_is_the_cap(void **st)
{
	(void)st;
	kn_drain_reset(&d);
	assert_int_equal(kn_drain_rate(&d), 0);
	assert_int_equal(kn_drain_delay_ns(&d, 32 * MIB, 32 * MIB, 200000), KN_RETRY_MAX_NS);
	/* the first fold only sets the baseline: still no estimate */
	kn_drain_release(&d, MIB, 1 * SEC, 1);
	assert_int_equal(kn_drain_rate(&d), 0);
	/* nothing released in the next period: a zero sample is no estimate */
	kn_drain_fold(&d, 1 * SEC + 20 * MS, 1);
	assert_int_equal(kn_drain_rate(&d), 0);
}

static void test_steady_rate_is_measured(void **st)
{
	(void)st;
	kn_drain_reset(&d);
	/* 1 MB every 10 ms = 100 MB/s; the first fold sets the baseline, the
	 * second one gives the first estimate as it is */
	uint64_t t = feed(5 * SEC, 10 * MS, 1, 1000000, 1);
	t = feed(t, 10 * MS, 1, 1000000, 1);
	near((double)kn_drain_rate(&d), 100e6, 1);
	/* the same rate in 1 ms steps: folds every 10 ms, the estimate holds */
	feed(t, 1 * MS, 200, 100000, 1);
	near((double)kn_drain_rate(&d), 100e6, 100e6 * 0.02);
}

static void test_fold_once_per_period(void **st)
{
	(void)st;
	kn_drain_reset(&d);
	uint64_t t = feed(SEC, 10 * MS, 2, 1000000, 1); /* 100 MB/s */
	uint64_t r = kn_drain_rate(&d);
	/* 9 ms later, ten times as much: not folded yet */
	kn_drain_release(&d, 9000000, t + 9 * MS, 1);
	assert_int_equal(kn_drain_rate(&d), r);
	/* a clock reading behind the last fold (another thread's) folds nothing */
	kn_drain_fold(&d, t - 1 * MS, 1);
	assert_int_equal(kn_drain_rate(&d), r);
	/* at 10 ms it is: 9 MB in 10 ms = 900 MB/s, weighted 10 / (10 + 100) */
	kn_drain_fold(&d, t + 10 * MS, 1);
	near((double)kn_drain_rate(&d), 100e6 + (900e6 - 100e6) * 10.0 / 110.0, 2);
}

static void test_low_samples_count_only_with_a_backlog(void **st)
{
	(void)st;
	kn_drain_reset(&d);
	uint64_t t = feed(SEC, 10 * MS, 2, 1000000, 1); /* 100 MB/s */
	/* the pipeline drained everything it got (10 MB/s of input, budget
	 * nearly empty): what it could drain is not lower for that */
	t = feed(t, 10 * MS, 50, 100000, 0);
	near((double)kn_drain_rate(&d), 100e6, 1);
	/* with a backlog the same low rate is the drain rate: the estimate follows
	 * (after 50 periods of alpha = 1/11 the old value is 0.9%) */
	t = feed(t, 10 * MS, 50, 100000, 1);
	near((double)kn_drain_rate(&d), 10e6, 1e6);
	/* a higher sample counts either way */
	feed(t, 10 * MS, 50, 2000000, 0);
	near((double)kn_drain_rate(&d), 200e6, 4e6);
}

static void test_stalled_backend_reaches_the_cap(void **st)
{
	(void)st;
	kn_drain_reset(&d);
	uint64_t t = feed(SEC, 10 * MS, 2, 1000000, 1); /* 100 MB/s */
	/* then nothing leaves while the budget is full: each refusal folds a
	 * zero sample, the estimate decays and the delay grows to the cap */
	uint64_t rng = 1;
	for (unsigned i = 1; i <= 300; i++) {
		uint64_t ns = kn_drain_refusal_ns(&d, 32 * MIB, 32 * MIB, 200000, t + i * 10 * MS, &rng);
		assert_true(ns >= KN_RETRY_MIN_NS && ns <= KN_RETRY_MAX_NS);
	}
	assert_int_equal(atomic_load(&d.advertised_ns), KN_RETRY_MAX_NS);
	assert_true(kn_drain_rate(&d) >= 1); /* "nothing drains", not "no estimate" */
}

struct delay_case {
	const char *name;
	uint64_t rate;  /* bytes per second */
	uint64_t used, limit, need;
	uint64_t want_ns;
};

static void test_delay_table(void **st)
{
	(void)st;
	/* the time until the request fits, max(used + need - limit, 0) / rate,
	 * within [5 ms, 5 s] */
	static const struct delay_case cases[] = {
		{"budget full: until the request fits", 10000000, 32 * MIB, 32 * MIB, 200000, 20 * MS},
		{"far over (a lowered limit): until enough left", 10000000, 33 * MIB, 32 * MIB, 200000,
		 (uint64_t)((1.0 * MIB + 200000) / 10e6 * 1e9)},
		{"fits already (a full ring): the floor", 10000000, 16 * MIB, 32 * MIB, 200000,
		 KN_RETRY_MIN_NS},
		{"unlimited budget (a full ring): the floor", 10000000, 32 * MIB, 0, 200000,
		 KN_RETRY_MIN_NS},
		{"fast drain: the 5 ms floor", 1000000000, 32 * MIB, 32 * MIB, 200000, KN_RETRY_MIN_NS},
		{"slow drain: the 5 s cap", 10000, 32 * MIB, 32 * MIB, 200000, KN_RETRY_MAX_NS},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct delay_case *c = &cases[i];
		kn_drain_reset(&d);
		atomic_store(&d.rate, c->rate);
		uint64_t got = kn_drain_delay_ns(&d, c->used, c->limit, c->need);
		if (got + 1 < c->want_ns || got > c->want_ns + 1)
			fail_msg("%s: %llu ns, want %llu", c->name, (unsigned long long)got,
				 (unsigned long long)c->want_ns);
	}
}

static void test_jitter_spreads_and_clamps(void **st)
{
	(void)st;
	uint64_t rng = 42, rng2 = 42;
	const uint64_t base = 100 * MS;
	uint64_t lo = UINT64_MAX, hi = 0;
	double sum = 0;
	unsigned below = 0;
	for (unsigned i = 0; i < 10000; i++) {
		uint64_t j = kn_drain_jitter(base, &rng);
		assert_int_equal(j, kn_drain_jitter(base, &rng2)); /* same seed, same stream */
		assert_true(j >= base * 3 / 4 && j < base * 5 / 4);
		lo = j < lo ? j : lo;
		hi = j > hi ? j : hi;
		below += j < base;
		sum += (double)j;
	}
	/* spread over the whole +-25%, centred */
	assert_true(lo < base * 76 / 100 && hi > base * 124 / 100);
	assert_true(below > 4500 && below < 5500);
	near(sum / 10000, (double)base, (double)base * 0.01);
	/* never below the floor nor above the cap */
	for (unsigned i = 0; i < 1000; i++) {
		uint64_t a = kn_drain_jitter(KN_RETRY_MIN_NS, &rng);
		uint64_t b = kn_drain_jitter(KN_RETRY_MAX_NS, &rng);
		assert_true(a >= KN_RETRY_MIN_NS && a < KN_RETRY_MIN_NS * 5 / 4);
		assert_true(b <= KN_RETRY_MAX_NS && b >= KN_RETRY_MAX_NS * 3 / 4);
	}
}

static void test_refusal_records_the_advertised_delay(void **st)
{
	(void)st;
	kn_drain_reset(&d);
	assert_int_equal(atomic_load(&d.advertised_ns), 0);
	uint64_t t = feed(SEC, 10 * MS, 2, 100000, 1); /* 10 MB/s */
	uint64_t rng = 7;
	uint64_t ns = kn_drain_refusal_ns(&d, 32 * MIB, 32 * MIB, 200000, t + 1 * MS, &rng);
	uint64_t base = atomic_load(&d.advertised_ns);
	assert_true(base + 1 >= 20 * MS && base <= 20 * MS + 1); /* 200 kB at 10 MB/s */
	assert_true(ns >= base * 3 / 4 && ns < base * 5 / 4);
	/* 100 MB/s: the floor, well below the old fixed second */
	atomic_store(&d.rate, 100000000);
	kn_drain_refusal_ns(&d, 32 * MIB, 32 * MIB, 200000, t + 2 * MS, &rng);
	assert_int_equal(atomic_load(&d.advertised_ns), KN_RETRY_MIN_NS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_estimate_is_the_cap),
		cmocka_unit_test(test_steady_rate_is_measured),
		cmocka_unit_test(test_fold_once_per_period),
		cmocka_unit_test(test_low_samples_count_only_with_a_backlog),
		cmocka_unit_test(test_stalled_backend_reaches_the_cap),
		cmocka_unit_test(test_delay_table),
		cmocka_unit_test(test_jitter_spreads_and_clamps),
		cmocka_unit_test(test_refusal_records_the_advertised_delay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
