/* SPDX-License-Identifier: Apache-2.0
 * kn_hex: hex digits for ids and thresholds, one implementation for every
 * module (OTLP/JSON ids, journey ids in attributes, the debug exporter's
 * ids, `ot` tracestate thresholds). Header only, pure, no allocation.
 *
 * kn_hex_digit accepts either case (OTLP/JSON and attribute values are
 * read leniently); kn_hex_digit_lower only lower case (the W3C tracestate
 * `ot` member allows nothing else). Encoding always writes lower case. */
#ifndef KN_HEX_H
#define KN_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The value of a lower-case hex digit, or -1. */
static inline int kn_hex_digit_lower(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The value of a hex digit of either case, or -1. */
static inline int kn_hex_digit(int c)
{
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return kn_hex_digit_lower(c);
}

/* s[0..n) (either case, n even) into n/2 bytes at out; false when n is odd
 * or a character is not a hex digit (out may then be partly written). */
static inline bool kn_hex_decode(const char *s, size_t n, uint8_t *out)
{
	if (n % 2)
		return false;
	for (size_t i = 0; i < n; i += 2) {
		int hi = kn_hex_digit((unsigned char)s[i]), lo = kn_hex_digit((unsigned char)s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* n bytes as 2n lower-case hex digits at out (no terminator). */
static inline void kn_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
}

#endif
