/* SPDX-License-Identifier: Apache-2.0
 * test_grpc_absl: kn_grpc_absl_init turns off abseil's mutex deadlock
 * detection for libgrpc's mutexes (gpr_mu is an absl::Mutex).
 *
 * The probe is a lock-order inversion: A then B, later B then A, on one
 * thread (no deadlock can happen, but the deadlock graph sees a cycle).
 * With detection on (abseil's debug default, which Debian's build has, as
 * the test checks), abseil aborts the process there; with it off the
 * inversion passes. Each probe runs in a child process, so the abort is
 * observed, not suffered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpc/support/sync.h>

#include "collector/grpc/kn_grpc_absl.h"

static void invert(void)
{
	gpr_mu a, b;
	gpr_mu_init(&a);
	gpr_mu_init(&b);
	gpr_mu_lock(&a);
	gpr_mu_lock(&b);
	gpr_mu_unlock(&b);
	gpr_mu_unlock(&a);
	gpr_mu_lock(&b);
	gpr_mu_lock(&a);
	gpr_mu_unlock(&a);
	gpr_mu_unlock(&b);
	gpr_mu_destroy(&a);
	gpr_mu_destroy(&b);
}

/* Runs the inversion in a child, after kn_grpc_absl_init when init and then
 * kn_grpc_absl_set_detection(detection_after) when that is 0 or 1: 0 = it
 * passed, SIGABRT = abseil stopped it. */
static int probe(int init, int detection_after)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* silence abseil's report of the cycle in the child */
		if (!freopen("/dev/null", "w", stderr))
			_exit(3);
		if (init)
			kn_grpc_absl_init();
		if (detection_after >= 0)
			kn_grpc_absl_set_detection(detection_after);
		invert();
		_exit(0);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		return WTERMSIG(st);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	return 0;
}

static void test_init_turns_detection_off(void **state)
{
	(void)state;
	/* The premise the init rests on: Debian's abseil detects, and aborts.
	 * Should a later abseil stop detecting, this fails and says the init
	 * has become pointless. */
	assert_int_equal(probe(0, -1), SIGABRT);
	/* What the collector does at start: the inversion passes. */
	assert_int_equal(probe(1, -1), 0);
	/* Idempotent, and the switch works both ways. */
	assert_int_equal(probe(1, 0), 0);
	assert_int_equal(probe(1, 1), SIGABRT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_turns_detection_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
