/* SPDX-License-Identifier: Apache-2.0
 * kn_apr1: the MD5-based crypt of FreeBSD ("$1$") and its Apache variant
 * ("$apr1$", what `htpasswd -m` writes, and Apache's default), which differ
 * only in the magic string. libxcrypt knows "$1$" but not "$apr1$", so this
 * one is written here on OpenSSL's MD5; the tests check it against
 * libxcrypt's "$1$" and against `openssl passwd -apr1`. */
#ifndef KN_APR1_H
#define KN_APR1_H

#include <stddef.h>

#define KN_APR1_OUT 64 /* "$apr1$" + 8 salt + "$" + 22, with room */

/* Computes the crypt string of pw with magic ("$apr1$" or "$1$") and the
 * salt taken from `setting` (the part after magic up to '$', at most 8
 * characters) into out[KN_APR1_OUT]. Returns 0, or -1 when setting does not
 * start with magic or MD5 is unavailable. */
int kn_apr1_crypt(const char *magic, const char *pw, size_t pwlen, const char *setting,
		  char out[KN_APR1_OUT]);

#endif
