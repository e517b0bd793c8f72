/* SPDX-License-Identifier: Apache-2.0
 * kn_metrics: registration returns the same series for the same name and
 * labels, rendering groups series under one HELP/TYPE, gauges computed at
 * render time, label escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "collector/core/kn_metrics.h"

static int64_t forty_two(void *ctx)
{
	return *(int64_t *)ctx;
}

static void test_render(void **st)
{
	(void)st;
	struct kn_metrics *m = kn_metrics_create();
	struct kn_metric *a = kn_metrics_counter(m, "kn_x_total", "X things.", "k=\"a\"");
	struct kn_metric *g = kn_metrics_gauge(m, "kn_g", "A gauge.", "");
	struct kn_metric *b = kn_metrics_counter(m, "kn_x_total", "X things.", "k=\"b\"");
	assert_ptr_equal(a, kn_metrics_counter(m, "kn_x_total", "X things.", "k=\"a\""));
	assert_ptr_not_equal(a, b);
	int64_t v = 42;
	kn_metrics_gauge_fn(m, "kn_fn", "Computed.", "s=\"0\"", forty_two, &v);
	kn_counter_add(a, 3);
	kn_counter_add(b, 5);
	kn_gauge_set(g, -7);
	char *out;
	size_t len;
	assert_int_equal(kn_metrics_render(m, &out, &len), 0);
	assert_int_equal(strlen(out), len);
	const char *want = "# HELP kn_x_total X things.\n# TYPE kn_x_total counter\n"
			   "kn_x_total{k=\"a\"} 3\nkn_x_total{k=\"b\"} 5\n"
			   "# HELP kn_g A gauge.\n# TYPE kn_g gauge\nkn_g -7\n"
			   "# HELP kn_fn Computed.\n# TYPE kn_fn gauge\nkn_fn{s=\"0\"} 42\n";
	assert_string_equal(out, want);
	free(out);
	kn_metrics_destroy(m);
}

static void test_escape(void **st)
{
	(void)st;
	char out[64];
	kn_metrics_label_escape("a\"b\\c\nd", out, sizeof out);
	assert_string_equal(out, "a\\\"b\\\\c\\nd");
	kn_metrics_label_escape("abcdefgh", out, 5);
	assert_string_equal(out, "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
