/* SPDX-License-Identifier: Apache-2.0
 * kn_metrics: registration returns the same series for the same name and
 * labels, rendering groups series under one HELP/TYPE, gauges computed at
 * render time, label escaping, collectors in both formats (OpenMetrics
 * counter naming, exemplars, # EOF) and Accept negotiation. */
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

static void collect(void *ctx, struct kn_metrics_out *o)
{
	(void)ctx;
	kn_metrics_out_family(o, KN_MFAM_HISTOGRAM, "kn_h_seconds", "A histogram.");
	struct kn_metrics_exemplar ex = {.labels = "trace_id=\"ab\"", .value = 0.25, .ts = 12.5};
	kn_metrics_out_sample(o, "_bucket", "le=\"0.5\"", 1, &ex);
	kn_metrics_out_sample(o, "_bucket", "le=\"+Inf\"", 2, NULL);
	kn_metrics_out_sample(o, "_count", "", 2, NULL);
	kn_metrics_out_sample(o, "_sum", "", 0.1 + 0.2, NULL);
	kn_metrics_out_family(o, KN_MFAM_COUNTER, "kn_c", "A counter.");
	kn_metrics_out_sample(o, "_total", "a=\"1\"", 3, NULL);
}

static void test_collector_formats(void **st)
{
	(void)st;
	struct kn_metrics *m = kn_metrics_create();
	kn_counter_add(kn_metrics_counter(m, "kn_x_total", "X things.", ""), 3);
	kn_metrics_counter(m, "kn_odd", "Counter without _total.", "");
	assert_int_equal(kn_metrics_collector(m, collect, NULL), 0);
	assert_int_equal(kn_metrics_collector(m, collect, NULL), 0); /* same one: once */
	char *out;
	size_t len;
	assert_int_equal(kn_metrics_render_fmt(m, KN_METRICS_OPENMETRICS, &out, &len), 0);
	const char *want_om = "# HELP kn_x X things.\n# TYPE kn_x counter\nkn_x_total 3\n"
			      "# HELP kn_odd Counter without _total.\n# TYPE kn_odd unknown\nkn_odd 0\n"
			      "# HELP kn_h_seconds A histogram.\n# TYPE kn_h_seconds histogram\n"
			      "kn_h_seconds_bucket{le=\"0.5\"} 1 # {trace_id=\"ab\"} 0.25 12.500\n"
			      "kn_h_seconds_bucket{le=\"+Inf\"} 2\nkn_h_seconds_count 2\n"
			      "kn_h_seconds_sum 0.30000000000000004\n"
			      "# HELP kn_c A counter.\n# TYPE kn_c counter\nkn_c_total{a=\"1\"} 3\n# EOF\n";
	assert_string_equal(out, want_om);
	free(out);
	assert_int_equal(kn_metrics_render(m, &out, &len), 0);
	const char *want_prom = "# HELP kn_x_total X things.\n# TYPE kn_x_total counter\nkn_x_total 3\n"
				"# HELP kn_odd Counter without _total.\n# TYPE kn_odd counter\nkn_odd 0\n"
				"# HELP kn_h_seconds A histogram.\n# TYPE kn_h_seconds histogram\n"
				"kn_h_seconds_bucket{le=\"0.5\"} 1\n"
				"kn_h_seconds_bucket{le=\"+Inf\"} 2\nkn_h_seconds_count 2\n"
				"kn_h_seconds_sum 0.30000000000000004\n"
				"# HELP kn_c_total A counter.\n# TYPE kn_c_total counter\nkn_c_total{a=\"1\"} 3\n";
	assert_string_equal(out, want_prom);
	free(out);
	kn_metrics_collector_remove(m, collect, NULL);
	assert_int_equal(kn_metrics_render(m, &out, &len), 0);
	assert_null(strstr(out, "kn_h_seconds"));
	free(out);
	kn_metrics_destroy(m);
}

static void test_negotiate(void **st)
{
	(void)st;
	static const struct { const char *accept; enum kn_metrics_format want; } cases[] = {
		{NULL, KN_METRICS_PROMETHEUS},
		{"", KN_METRICS_PROMETHEUS},
		{"text/plain", KN_METRICS_PROMETHEUS},
		{"application/openmetrics-text", KN_METRICS_OPENMETRICS},
		/* Prometheus 2.x's scrape header */
		{"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
		 "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", KN_METRICS_OPENMETRICS},
		{"text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5", KN_METRICS_PROMETHEUS},
		{"application/openmetrics-text;q=0", KN_METRICS_PROMETHEUS},
		{"*/*", KN_METRICS_PROMETHEUS},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *a = cases[i].accept;
		if (kn_metrics_negotiate(a, a ? strlen(a) : 0) != cases[i].want)
			fail_msg("case %zu (%s)", i, a ? a : "NULL");
	}
	assert_non_null(strstr(kn_metrics_content_type(KN_METRICS_OPENMETRICS),
			       "application/openmetrics-text; version=1.0.0"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_collector_formats),
		cmocka_unit_test(test_negotiate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
