/* SPDX-License-Identifier: Apache-2.0
 * kn_test_auth: helpers for the authenticator tests: an extension instance
 * made from a YAML flow map the way the runtime makes one (table, validate,
 * create), request headers from a NULL-terminated list of "name", "value"
 * pairs, and a bounded wait for a condition (polled every millisecond, up to
 * a deadline; never a fixed sleep). */
#ifndef KN_TEST_AUTH_H
#define KN_TEST_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "collector/core/kn_component.h"
#include "collector/core/kn_extension.h"

struct kn_test_ext {
	const struct kn_component *comp;
	void *cfg;
	void *inst;
	struct kn_metrics *m;
};

/* 0 and e filled, or -1 with err->msg set (validate or create failed). */
int kn_test_ext_make(const struct kn_component *c, const char *id, const char *yaml, struct kn_test_ext *e,
		     struct kn_err *err);
void kn_test_ext_free(struct kn_test_ext *e);

/* Headers: pairs[0] name, pairs[1] value, ..., NULL. */
struct kn_test_headers {
	const char *const *pairs;
};
struct kn_auth_headers kn_test_headers(const struct kn_test_headers *h);
enum kn_auth_verdict kn_test_auth(const struct kn_test_ext *e, const char *name, const char *value);

/* Polls fn(ctx) every millisecond until it returns nonzero or ms pass; returns its last value. */
int kn_test_wait(int (*fn)(void *ctx), void *ctx, int ms);

/* Writes text to path atomically (a temp file renamed over it) or in place. */
void kn_test_write_file(const char *path, const char *text, int atomic_rename);

/* The value of a counter in m's Prometheus text, by its full sample line
 * prefix ("kansatsu_auth_reloads_total{extension=\"x\",result=\"ok\"}"); -1 when absent. */
long long kn_test_metric(struct kn_metrics *m, const char *sample);
/* Waits (bounded by ms) until that value is at least `atleast`; 1 when it got there. */
int kn_test_wait_metric(struct kn_metrics *m, const char *sample, long long atleast, int ms);

#endif
