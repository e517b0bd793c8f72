/* SPDX-License-Identifier: Apache-2.0
 * kn_err: the one error carrier. Functions that can fail return a kn_rc and,
 * when given a struct kn_err, write a human message that names the config key
 * or request field at fault ("exporters.otlp.endpoint: missing"). */
#ifndef KN_ERR_H
#define KN_ERR_H

#include <stddef.h>

/* The small set of return codes used across the collector. */
enum kn_rc {
	KN_OK = 0,       /* done; for pipeline stages: forward */
	KN_AGAIN = 1,    /* temporarily full: becomes a retryable refusal upstream */
	KN_INVALID = 2,  /* bad input data: a non-retryable refusal (400 / INVALID_ARGUMENT) */
	KN_RETAINED = 3, /* a pipeline stage kept the data and will emit it later */
	KN_DROP = 4,     /* a pipeline stage dropped the data (and counted why) */
	KN_ERR = -1,     /* failure; the kn_err says what */
};

struct kn_err {
	char msg[512];
};

/* Formats into err (if not NULL) and returns KN_ERR. */
int kn_errf(struct kn_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prefixes an existing message: "receivers.otlp: " + old message. */
int kn_err_prefix(struct kn_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
