/* SPDX-License-Identifier: Apache-2.0
 * kn_sli windows and weights, against values computed independently here:
 * a pseudo-random stream of good/bad events over three days, stepping a fake
 * clock by minutes and hours, summed over each burn-rate window and the SLO
 * window by brute force over the event list; bucket recycling after the
 * ring wraps; burn rate and budget formulas; adjusted counts from
 * tracestate thresholds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "processors/sli/kn_sli_int.h"

#define MIN KN_NS_PER_MIN
#define HOUR KN_NS_PER_HOUR
#define T0 (1700000000ull * 1000000000ull) /* a unix time */

struct ev {
	uint64_t t;
	int good;
};

/* Brute force: events whose minute (or hour) is among the last n units. */
static void expect(const struct ev *e, size_t n, uint64_t now, uint64_t unit, uint64_t units,
		   double *good, double *total)
{
	*good = *total = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t u = e[i].t / unit, nu = now / unit;
		if (u <= nu && nu - u < units) {
			*total += 1;
			*good += e[i].good;
		}
	}
}

static void test_windows_match_brute_force(void **st)
{
	(void)st;
	uint32_t nh = kn_sli_win_hours(30 * 24 * HOUR);
	assert_int_equal(nh, 720);
	struct kn_sli_win *w = calloc(1, kn_sli_win_size(nh));
	kn_sli_win_init(w, nh);
	size_t cap = 20000, n = 0;
	struct ev *e = calloc(cap, sizeof *e);
	uint64_t now = T0 + 17 * 1000000000ull;
	uint32_t seed = 12345;
	/* 3.5 days: steps of 1..40 minutes, each 0..5 events, ~10% bad */
	while (now < T0 + 84 * HOUR && n + 5 < cap) {
		seed = seed * 1103515245u + 12345u;
		uint32_t k = (seed >> 16) % 6;
		for (uint32_t i = 0; i < k; i++) {
			seed = seed * 1103515245u + 12345u;
			int good = (seed >> 16) % 10 != 0;
			kn_sli_win_add(w, now, good, 1);
			e[n++] = (struct ev){now, good};
		}
		seed = seed * 1103515245u + 12345u;
		now += (1 + (seed >> 16) % 40) * MIN + 7 * 1000000000ull;
		/* check every window now */
		static const uint64_t mins[] = {5, 30, 60, 360};
		for (size_t m = 0; m < 4; m++) {
			double g = 0, t = 0, eg, et;
			kn_sli_win_sum(w, now, mins[m] * MIN, &g, &t);
			expect(e, n, now, MIN, mins[m], &eg, &et);
			assert_true(g == eg && t == et);
		}
		static const uint64_t hours[] = {72, 720};
		for (size_t h = 0; h < 2; h++) {
			double g = 0, t = 0, eg, et;
			kn_sli_win_sum(w, now, hours[h] * HOUR, &g, &t);
			expect(e, n, now, HOUR, hours[h], &eg, &et);
			assert_true(g == eg && t == et);
		}
	}
	assert_true(n > 300);
	free(e);
	free(w);
}

static void test_ring_recycles(void **st)
{
	(void)st;
	struct kn_sli_win *w = calloc(1, kn_sli_win_size(72));
	kn_sli_win_init(w, 72);
	kn_sli_win_add(w, T0, 0, 10);
	double g = 0, t = 0;
	kn_sli_win_sum(w, T0 + 359 * MIN, 360 * MIN, &g, &t);
	assert_true(t == 10);
	/* exactly one ring later the same bucket is reused: the old 10 is gone */
	kn_sli_win_add(w, T0 + 360 * MIN, 1, 1);
	g = t = 0;
	kn_sli_win_sum(w, T0 + 360 * MIN, 5 * MIN, &g, &t);
	assert_true(g == 1 && t == 1);
	/* and a window past everything sees nothing */
	g = t = 0;
	kn_sli_win_sum(w, T0 + 1000 * HOUR, 360 * MIN, &g, &t);
	assert_true(t == 0);
	free(w);
}

static void test_formulas(void **st)
{
	(void)st;
	/* 99.9%: 2 bad of 1000 = 0.2% -> burn 2, budget 1 - 2 = -1 */
	assert_true(fabs(kn_sli_burn_rate(998, 1000, 99.9) - 2.0) < 1e-9);
	assert_true(fabs(kn_sli_budget_remaining(998, 1000, 99.9) + 1.0) < 1e-9);
	assert_true(fabs(kn_sli_budget_remaining(9995, 10000, 99.9) - 0.5) < 1e-9);
	assert_true(kn_sli_burn_rate(0, 0, 99.9) == 0);
	assert_true(kn_sli_budget_remaining(0, 0, 99.9) == 1);
}

static void test_weight(void **st)
{
	(void)st;
	assert_true(kn_sli_weight("", 0) == 1);
	assert_true(kn_sli_weight("ot=th:8", 7) == 2);             /* p = 1/2 */
	assert_true(kn_sli_weight("ot=th:c", 7) == 4);             /* p = 1/4 */
	assert_true(kn_sli_weight("ot=th:0", 7) == 1);
	const char *ts = "vendor=x,ot=rv:abcdefabcdefab;th:e,other=1";
	assert_true(kn_sli_weight(ts, strlen(ts)) == 8);           /* p = 1/8 */
	assert_true(kn_sli_weight("ot=th:XYZ", 9) == 1);           /* invalid: ignored */
	assert_true(kn_sli_weight("ot=th:123456789abcdef", 21) == 1); /* > 14 digits */
	/* th = 2^56 - 2^40 -> p = 2^-16 */
	assert_true(kn_sli_weight("ot=th:ffff", 10) == 65536);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_windows_match_brute_force),
		cmocka_unit_test(test_ring_recycles),
		cmocka_unit_test(test_formulas),
		cmocka_unit_test(test_weight),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
