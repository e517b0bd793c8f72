/* SPDX-License-Identifier: Apache-2.0
 * Unit tests of the config value parsers: durations (Go syntax), integers
 * with ranges, bools, numbers, endpoints, the duration formatter and ${env:}
 * substitution. Each case is a table row; errors are compared in full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/config/kn_config.h"

struct dur_case {
	const char *in;
	uint64_t ns;
	const char *err; /* NULL: must parse to ns */
};

static void test_durations(void **state)
{
	(void)state;
	static const struct dur_case cases[] = {
		{ "300ms", 300000000ull, NULL },
		{ "1.5h", 5400000000000ull, NULL },
		{ "2h45m", 9900000000000ull, NULL },
		{ "1us", 1000ull, NULL },
		{ "1\xc2\xb5s", 1000ull, NULL },
		{ "1\xce\xbcs", 1000ull, NULL },
		{ "0", 0, NULL },
		{ "-0", 0, NULL },
		{ "0s", 0, NULL },
		{ "+5s", 5000000000ull, NULL },
		{ ".5s", 500000000ull, NULL },
		{ "5.s", 5000000000ull, NULL },
		{ "1m30s", 90000000000ull, NULL },
		{ "1h0m0.5s", 3600500000000ull, NULL },
		{ "7ns", 7ull, NULL },
		{ "1.000000001s", 1000000001ull, NULL },
		{ "2562047h47m16.854775807s", 9223372036854775807ull, NULL },
		{ "five", 0, "t.timeout: expected a duration like \"5s\", got \"five\"" },
		{ "5", 0,
		  "t.timeout: expected a duration like \"5s\", got \"5\" (missing unit: ns, us, ms, s, m or h)" },
		{ "00", 0,
		  "t.timeout: expected a duration like \"5s\", got \"00\" (missing unit: ns, us, ms, s, m or h)" },
		{ "1.5.5s", 0,
		  "t.timeout: expected a duration like \"5s\", got \"1.5.5s\" (missing unit: ns, us, ms, s, m or h)" },
		{ "5d", 0, "t.timeout: expected a duration like \"5s\", got \"5d\" (units: ns, us, ms, s, m, h)" },
		{ "", 0, "t.timeout: expected a duration like \"5s\", got \"\"" },
		{ "-", 0, "t.timeout: expected a duration like \"5s\", got \"-\"" },
		{ ".s", 0, "t.timeout: expected a duration like \"5s\", got \".s\"" },
		{ "5s ", 0, "t.timeout: expected a duration like \"5s\", got \"5s \" (units: ns, us, ms, s, m, h)" },
		{ "-5s", 0, "t.timeout: expected a duration like \"5s\", got \"-5s\" (must not be negative)" },
		{ "9223372036854775808ns", 0,
		  "t.timeout: expected a duration like \"5s\", got \"9223372036854775808ns\" (too large)" },
		{ "2562048h", 0, "t.timeout: expected a duration like \"5s\", got \"2562048h\" (too large)" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kn_err err = { "" };
		uint64_t ns = 12345;
		int rc = kn_parse_duration(cases[i].in, "t.timeout", &ns, &err);
		if (cases[i].err) {
			assert_int_equal(rc, KN_ERR);
			assert_string_equal(err.msg, cases[i].err);
			assert_int_equal(ns, 12345); /* untouched on error */
		} else {
			if (rc != KN_OK)
				fail_msg("%s: %s", cases[i].in, err.msg);
			assert_int_equal(ns, cases[i].ns);
		}
	}
}

static void test_format_duration(void **state)
{
	(void)state;
	static const struct {
		uint64_t ns;
		const char *s;
	} cases[] = {
		{ 0, "0s" },
		{ 7, "7ns" },
		{ 1500, "1.5us" },
		{ 250000000ull, "250ms" },
		{ 1000000000ull, "1s" },
		{ 1500000000ull, "1.5s" },
		{ 90000000000ull, "1m30s" },
		{ 5400000000000ull, "1h30m" },
		{ 7200000000000ull, "2h" },
		{ 3600000000001ull, "1h0.000000001s" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[40];
		uint64_t back = 0;
		assert_string_equal(kn_format_duration(cases[i].ns, buf, sizeof buf), cases[i].s);
		/* what it prints parses back to the same value */
		assert_int_equal(kn_parse_duration(buf, "x", &back, NULL), KN_OK);
		assert_int_equal(back, cases[i].ns);
	}
}

static void test_ints(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int64_t v;
		const char *err;
	} cases[] = {
		{ "42", 42, NULL },
		{ "-42", -42, NULL },
		{ "+7", 7, NULL },
		{ "0", 0, NULL },
		{ "9223372036854775807", INT64_MAX, NULL },
		{ "-9223372036854775808", INT64_MIN, NULL },
		{ "9223372036854775808", 0, "a.b: integer out of range, got \"9223372036854775808\"" },
		{ "-9223372036854775809", 0, "a.b: integer out of range, got \"-9223372036854775809\"" },
		{ "99999999999999999999999", 0, "a.b: integer out of range, got \"99999999999999999999999\"" },
		{ "four", 0, "a.b: expected an integer, got \"four\"" },
		{ "1.5", 0, "a.b: expected an integer, got \"1.5\"" },
		{ "", 0, "a.b: expected an integer, got \"\"" },
		{ " 1", 0, "a.b: expected an integer, got \" 1\"" },
		{ "0x10", 0, "a.b: expected an integer, got \"0x10\"" },
		{ "-", 0, "a.b: expected an integer, got \"-\"" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kn_err err = { "" };
		int64_t v = 99;
		int rc = kn_parse_int(cases[i].in, "a.b", &v, &err);
		if (cases[i].err) {
			assert_int_equal(rc, KN_ERR);
			assert_string_equal(err.msg, cases[i].err);
		} else {
			assert_int_equal(rc, KN_OK);
			assert_true(v == cases[i].v);
		}
	}
}

static void test_uints(void **state)
{
	(void)state;
	struct kn_err err;
	uint64_t v = 0;
	assert_int_equal(kn_parse_uint("18446744073709551615", "q", &v, &err), KN_OK);
	assert_true(v == UINT64_MAX);
	assert_int_equal(kn_parse_uint("-0", "q", &v, &err), KN_OK);
	assert_true(v == 0);
	assert_int_equal(kn_parse_uint("18446744073709551616", "q", &v, &err), KN_ERR);
	assert_string_equal(err.msg, "q: integer out of range, got \"18446744073709551616\"");
	assert_int_equal(kn_parse_uint("-1", "q", &v, &err), KN_ERR);
	assert_string_equal(err.msg, "q: expected a non-negative integer, got \"-1\"");
}

static void test_bools(void **state)
{
	(void)state;
	static const char *const yes[] = { "true", "True", "TRUE" };
	static const char *const no[] = { "false", "False", "FALSE" };
	static const char *const bad[] = { "yes", "no", "on", "off", "1", "0", "", "tRUE", "y" };
	struct kn_err err;
	int v;
	for (size_t i = 0; i < 3; i++) {
		v = 0;
		assert_int_equal(kn_parse_bool(yes[i], "b", &v, &err), KN_OK);
		assert_int_equal(v, 1);
		assert_int_equal(kn_parse_bool(no[i], "b", &v, &err), KN_OK);
		assert_int_equal(v, 0);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char want[80];
		assert_int_equal(kn_parse_bool(bad[i], "x.insecure", &v, &err), KN_ERR);
		snprintf(want, sizeof want, "x.insecure: expected true or false, got \"%s\"", bad[i]);
		assert_string_equal(err.msg, want);
	}
}

static void test_doubles(void **state)
{
	(void)state;
	struct kn_err err;
	double v = 0;
	assert_int_equal(kn_parse_double("1.5", "d", &v, &err), KN_OK);
	assert_true(v == 1.5);
	assert_int_equal(kn_parse_double("-2e3", "d", &v, &err), KN_OK);
	assert_true(v == -2000);
	assert_int_equal(kn_parse_double(".25", "d", &v, &err), KN_OK);
	assert_true(v == 0.25);
	assert_int_equal(kn_parse_double("10", "d", &v, &err), KN_OK);
	assert_true(v == 10);
	static const char *const bad[] = { "nan", "inf", "-inf", ".inf", "0x1p3", "1e", "e5", ".", "", "1.5x" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char want[80];
		assert_int_equal(kn_parse_double(bad[i], "d", &v, &err), KN_ERR);
		snprintf(want, sizeof want, "d: expected a number, got \"%s\"", bad[i]);
		assert_string_equal(err.msg, want);
	}
	assert_int_equal(kn_parse_double("1e999", "d", &v, &err), KN_ERR);
	assert_string_equal(err.msg, "d: number out of range, got \"1e999\"");
}

static void test_endpoints(void **state)
{
	(void)state;
	static const struct {
		const char *in, *host;
		uint16_t port;
		const char *err;
	} cases[] = {
		{ "localhost:4317", "localhost", 4317, NULL },
		{ "0.0.0.0:4318", "0.0.0.0", 4318, NULL },
		{ "[::1]:4317", "::1", 4317, NULL },
		{ "[fe80::1%eth0]:80", "fe80::1%eth0", 80, NULL },
		{ ":4317", "", 4317, NULL },
		{ "localhost:0", "localhost", 0, NULL },
		{ "collector.observability.svc.cluster.local:65535", "collector.observability.svc.cluster.local", 65535, NULL },
		{ "localhost", NULL, 0, "r.endpoint: expected host:port, got \"localhost\" (missing port)" },
		{ "localhost:", NULL, 0, "r.endpoint: expected host:port, got \"localhost:\" (missing port)" },
		{ "localhost:65536", NULL, 0, "r.endpoint: port must be between 0 and 65535, got \"localhost:65536\"" },
		{ "localhost:99999999999999999999", NULL, 0,
		  "r.endpoint: port must be between 0 and 65535, got \"localhost:99999999999999999999\"" },
		{ "localhost:43a", NULL, 0, "r.endpoint: expected host:port, got \"localhost:43a\" (port is not a number)" },
		{ "localhost:-1", NULL, 0, "r.endpoint: expected host:port, got \"localhost:-1\" (port is not a number)" },
		{ "::1:4317", NULL, 0,
		  "r.endpoint: an IPv6 address needs brackets, as in \"[::1]:4317\"; got \"::1:4317\"" },
		{ "[::1]", NULL, 0, "r.endpoint: expected host:port or [ipv6]:port, got \"[::1]\"" },
		{ "[::1:4317", NULL, 0, "r.endpoint: expected host:port or [ipv6]:port, got \"[::1:4317\"" },
		{ "[]:4317", NULL, 0, "r.endpoint: empty IPv6 address in \"[]:4317\"" },
		{ "http://x:4317", NULL, 0,
		  "r.endpoint: an IPv6 address needs brackets, as in \"[::1]:4317\"; got \"http://x:4317\"" },
		{ "a b:1", NULL, 0, "r.endpoint: expected host:port, got \"a b:1\" (bad character in host)" },
		{ "", NULL, 0, "r.endpoint: expected host:port, got \"\" (missing port)" },
		{ "averyveryverylonghostname:1", NULL, 0,
		  "r.endpoint: host is longer than 15 bytes in \"averyveryverylonghostname:1\"" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kn_err err = { "" };
		char host[64];
		uint16_t port = 7;
		size_t cap = strlen(cases[i].in) > 20 && cases[i].err ? 16 : sizeof host;
		int rc = kn_parse_endpoint(cases[i].in, "r.endpoint", host, cap, &port, &err);
		if (cases[i].err) {
			assert_int_equal(rc, KN_ERR);
			assert_string_equal(err.msg, cases[i].err);
		} else {
			if (rc != KN_OK)
				fail_msg("%s: %s", cases[i].in, err.msg);
			assert_string_equal(host, cases[i].host);
			assert_int_equal(port, cases[i].port);
		}
	}
}

static char *expand(const char *in, struct kn_err *err)
{
	char *out = NULL;
	size_t len = 0;
	if (kn_config_expand(in, strlen(in), "c.yaml", &out, &len, err) != KN_OK) {
		assert_null(out);
		return NULL;
	}
	assert_int_equal(len, strlen(out));
	return out;
}

static void test_env(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out, *err;
	} cases[] = {
		{ "a: ${env:KN_T_A}", "a: hello", NULL },
		{ "a: ${KN_T_A}", "a: hello", NULL },
		{ "a: x${KN_T_A}y${env:KN_T_A}", "a: xhelloyhello", NULL },
		{ "a: $$", "a: $", NULL },
		{ "a: $${KN_T_A}", "a: ${KN_T_A}", NULL },
		{ "a: $$$${KN_T_A}", "a: $${KN_T_A}", NULL },
		{ "a: $$${KN_T_A}", "a: $hello", NULL },
		{ "a: $KN_T_A b$", "a: $KN_T_A b$", NULL },
		{ "a: ${KN_T_EMPTY}.", "a: .", NULL },
		{ "a: ${KN_T_LOOP}", "a: ${KN_T_A}", NULL }, /* not substituted again */
		{ "a: ${env:KN_T_UNSET:-dflt}", "a: dflt", NULL },
		{ "a: ${env:KN_T_A:-dflt}", "a: hello", NULL },
		{ "a: ${KN_T_UNSET:-}", "a: ", NULL },
		{ "x: 1\ny: 2\n\nz: ${env:KN_T_UNSET}", NULL,
		  "c.yaml: line 4: environment variable \"KN_T_UNSET\" is not set" },
		{ "a: ${KN_T_UNSET}", NULL, "c.yaml: line 1: environment variable \"KN_T_UNSET\" is not set" },
		{ "a: 1\nb: ${KN_T_A", NULL, "c.yaml: line 2: unterminated \"${KN_T_A\" (expected ${env:NAME})" },
		{ "a: ${KN_T_A\n}", NULL, "c.yaml: line 1: unterminated \"${KN_T_A\" (expected ${env:NAME})" },
		{ "a: ${1abc}", NULL,
		  "c.yaml: line 1: \"${1abc}\": expected ${env:NAME} or ${NAME} with NAME made of letters, "
		  "digits and '_' (write $$ for a literal '$')" },
		{ "a: ${file:/etc/x}", NULL,
		  "c.yaml: line 1: \"${file:/etc/x}\": expected ${env:NAME} or ${NAME} with NAME made of "
		  "letters, digits and '_' (write $$ for a literal '$')" },
		{ "a: ${}", NULL,
		  "c.yaml: line 1: \"${}\": expected ${env:NAME} or ${NAME} with NAME made of letters, "
		  "digits and '_' (write $$ for a literal '$')" },
	};
	setenv("KN_T_A", "hello", 1);
	setenv("KN_T_EMPTY", "", 1);
	setenv("KN_T_LOOP", "${KN_T_A}", 1);
	unsetenv("KN_T_UNSET");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kn_err err = { "" };
		char *out = expand(cases[i].in, &err);
		if (cases[i].err) {
			assert_null(out);
			assert_string_equal(err.msg, cases[i].err);
		} else {
			if (!out)
				fail_msg("%s: %s", cases[i].in, err.msg);
			assert_string_equal(out, cases[i].out);
			free(out);
		}
	}
}

static void test_env_binary(void **state)
{
	(void)state;
	/* Works on lengths: NUL bytes pass through, substitution after them works. */
	static const char in[] = "a\0b ${KN_T_A} $";
	char *out = NULL;
	size_t len = 0;
	setenv("KN_T_A", "hi", 1);
	assert_int_equal(kn_config_expand(in, sizeof in - 1, "n", &out, &len, NULL), KN_OK);
	assert_int_equal(len, 8);
	assert_memory_equal(out, "a\0b hi $", 8);
	assert_int_equal(out[8], '\0');
	free(out);
	/* empty input */
	assert_int_equal(kn_config_expand("", 0, "n", &out, &len, NULL), KN_OK);
	assert_int_equal(len, 0);
	assert_string_equal(out, "");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations), cmocka_unit_test(test_format_duration),
		cmocka_unit_test(test_ints),      cmocka_unit_test(test_uints),
		cmocka_unit_test(test_bools),     cmocka_unit_test(test_doubles),
		cmocka_unit_test(test_endpoints), cmocka_unit_test(test_env),
		cmocka_unit_test(test_env_binary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
