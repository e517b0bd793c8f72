/* SPDX-License-Identifier: Apache-2.0
 * kn_strconv: Go's strconv.ParseInt(s, 10, 64) on a byte string, for the
 * components that must convert attribute values exactly as the OpenTelemetry
 * Collector does (the attributes actions' `convert`, OTTL's Int): an
 * optional sign, then decimal digits only (no spaces, no underscores, no
 * base prefix), within int64. Header only, no state. */
#ifndef KN_STRCONV_H
#define KN_STRCONV_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 0 with *out set, or -1 when s is not such an integer. */
static inline int kn_strconv_int(const uint8_t *s, uint32_t len, int64_t *out)
{
	char buf[32];
	if (len == 0 || len >= sizeof buf)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	const char *d = buf + (buf[0] == '-' || buf[0] == '+');
	if (!*d || strspn(d, "0123456789") != strlen(d))
		return -1;
	errno = 0;
	long long x = strtoll(buf, NULL, 10);
	if (errno)
		return -1;
	*out = x;
	return 0;
}

#endif
