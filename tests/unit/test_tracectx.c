/* SPDX-License-Identifier: Apache-2.0
 * kn_tracectx: only valid W3C version-00 traceparents are carried. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "collector/core/kn_tracectx.h"

static void check(const char *tp, int valid)
{
	struct kn_tracectx tc;
	kn_tracectx_set(&tc, tp, strlen(tp), "a=b", 3);
	assert_int_equal(kn_tracectx_present(&tc), valid);
	if (valid) {
		assert_string_equal(tc.traceparent, tp);
		assert_string_equal(tc.tracestate, "a=b");
	} else {
		assert_string_equal(tc.tracestate, "");
	}
}

static void test_traceparent(void **st)
{
	(void)st;
	check("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 1);
	check("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", 1);
	check("00-00000000000000000000000000000000-b7ad6b7169203331-01", 0); /* zero trace id */
	check("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", 0); /* zero parent */
	check("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", 0); /* upper case */
	check("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 0); /* version ff */
	check("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0", 0);  /* short */
	check("00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 0);
	check("", 0);
	struct kn_tracectx tc;
	kn_tracectx_set(&tc, NULL, 0, NULL, 0);
	assert_false(kn_tracectx_present(&tc));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_traceparent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
