/* SPDX-License-Identifier: Apache-2.0
 * kn_auth_util: what the authenticator extensions share: reading a small
 * secret file, digests compared in constant time, base64 (OpenSSL's), the
 * "<scheme> <credentials>" split of an Authorization value, the reload
 * counters, and a rate-limited warning.
 *
 * Secrets never reach a log line or an error message through these
 * helpers: file errors name the file and the line, never its content. */
#ifndef KN_AUTH_UTIL_H
#define KN_AUTH_UTIL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../../collector/core/kn_err.h"
#include "../../collector/core/kn_metrics.h"

#define KN_AUTH_DIGEST 32 /* SHA-256 */

/* Reads a whole file of at most `max` bytes into a malloc'd NUL-terminated
 * buffer (caller frees with kn_auth_free_secret). Errors name `key`
 * ("extensions.bearertokenauth.filename") and the file. */
int kn_auth_read_file(const char *path, size_t max, const char *key, char **out, size_t *len,
		      struct kn_err *err);
/* Zeroes then frees a secret buffer of len bytes (NULL-safe). */
void kn_auth_free_secret(char *p, size_t len);

void kn_auth_digest(const void *p, size_t n, unsigned char out[KN_AUTH_DIGEST]);
/* 1 when equal; the time taken does not depend on where they differ. */
int kn_auth_digest_eq(const unsigned char a[KN_AUTH_DIGEST], const unsigned char b[KN_AUTH_DIGEST]);

/* Standard base64 with padding. encode writes a NUL-terminated string and
 * returns its length (cap must be at least 4 * ((n + 2) / 3) + 1). decode
 * returns the decoded length or -1 when `in` is not base64 (or does not fit
 * cap). */
size_t kn_auth_b64_encode(const void *in, size_t n, char *out, size_t cap);
long kn_auth_b64_decode(const char *in, size_t n, unsigned char *out, size_t cap);

/* Splits an Authorization value "<scheme> <credentials>": 1 when value
 * starts with scheme (case-insensitive) followed by one or more spaces or
 * tabs and non-empty credentials (*cred, *cred_len, trailing blanks cut),
 * else 0. */
int kn_auth_split(const char *value, size_t len, const char *scheme, const char **cred,
		  size_t *cred_len);

/* kansatsu_auth_reloads_total{extension,result="ok|failed"}: re-reads of a
 * credentials file after it changed. */
struct kn_auth_reloads {
	struct kn_metric *ok, *failed;
};
void kn_auth_reloads_register(struct kn_auth_reloads *r, struct kn_metrics *m, const char *id);

/* A warning at most once per second per `last` (a kn_now_ns timestamp). */
void kn_auth_warn_limited(atomic_uint_fast64_t *last, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
