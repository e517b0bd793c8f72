/* SPDX-License-Identifier: Apache-2.0
 * kn_htpasswd: an htpasswd table (Apache's "user:hash" lines) and the check
 * of a user's password against it, for the basicauth extension.
 *
 * Hash formats: what libcrypt (libxcrypt) checks - "$2y$"/"$2b$"/"$2a$"
 * bcrypt (htpasswd -B), "$5$"/"$6$" SHA-crypt, "$y$" yescrypt, "$1$" MD5 -
 * plus, written here on OpenSSL: "$apr1$" (Apache MD5, htpasswd -m and its
 * default), "{SHA}" (htpasswd -s) and "{SSHA}". Anything else that starts
 * with '$' or '{' is refused when the table is built, naming the line; any
 * other value is a plain-text password (as the OpenTelemetry Collector's
 * library reads it, so an inline "user:${env:PASSWORD}" works). A 13-
 * character value that looks like DES crypt (htpasswd -d) gets a warning:
 * it is compared as plain text.
 *
 * Comparisons are constant-time (CRYPTO_memcmp over equal lengths; plain
 * passwords through their SHA-256). bcrypt and friends are slow on purpose,
 * so each table remembers successful checks: an HMAC-SHA-256 (key random
 * per table) of "user:password" in a 256-slot direct-mapped cache of
 * relaxed atomic words, read and written without locks. A torn slot only
 * fails to match (a false hit would need an HMAC collision), and a table is
 * immutable, so a remembered success stays true for the table's life; a
 * reloaded file makes a new table with an empty cache. Failures are never
 * remembered. Unknown users are refused without hashing.
 *
 * Thread-safe: verify() may run on many threads; build/free are the
 * owner's. Passwords and hashes never reach messages (lines are named by
 * number). */
#ifndef KN_HTPASSWD_H
#define KN_HTPASSWD_H

#include <stddef.h>
#include <stdint.h>

#include "../../collector/core/kn_err.h"

#define KN_HTPASSWD_MAX_PASSWORD 1024

struct kn_htpasswd;

/* One source of lines; `where` names it in messages
 * ("extensions.basicauth.htpasswd.file: \"/etc/otel/htpasswd\""). */
struct kn_htpasswd_src {
	const char *text;
	size_t len;
	const char *where;
};

/* Builds a table from the sources in order; a user in a later source (or
 * later in the same one) replaces an earlier entry. At least one user. */
struct kn_htpasswd *kn_htpasswd_build(const struct kn_htpasswd_src *srcs, size_t n, struct kn_err *err);
void kn_htpasswd_free(struct kn_htpasswd *t);
size_t kn_htpasswd_users(const struct kn_htpasswd *t);

/* 1 when user has an entry and pw matches it. */
int kn_htpasswd_verify(struct kn_htpasswd *t, const char *user, size_t ulen, const char *pw, size_t plen);
/* Verifications answered from the cache (for tests). */
uint64_t kn_htpasswd_cache_hits(const struct kn_htpasswd *t);

/* The check of one stored value, without the cache: 1 match, 0 no match,
 * -1 a format this module cannot check (for tests). */
int kn_htpasswd_check(const char *stored, const char *pw, size_t plen);

#endif
