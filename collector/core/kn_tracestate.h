/* SPDX-License-Identifier: Apache-2.0
 * kn_tracestate: the W3C tracestate pieces OpenTelemetry consistent
 * probability sampling needs, shared by every sampler (the tail sampler's
 * probabilistic policy and trace rewrite, the probabilistic_sampler
 * processor): find a list-member, parse the OpenTelemetry `ot` member's `th`
 * (56-bit rejection threshold) and `rv` (56-bit randomness) sub-keys, and
 * write a tracestate with a new `th` (and `rv`).
 *
 * Syntax (W3C Trace Context): list-members separated by "," with optional
 * spaces/tabs around them, at most 32, empty members ignored; key is
 * [a-z0-9][a-z0-9_*\-/@]{0,255}; value is 1..256 printable ASCII characters
 * without "," and "=" and not ending in a space. The `ot` value is
 * "<subkey>:<value>" pairs separated by ";" (OpenTelemetry tracestate
 * handling). th is 1..14 hex digits, the threshold's 14-digit hex form with
 * trailing zeros removed (so "8" is 2^55, i.e. 50%); rv is exactly 14 hex
 * digits. A span is sampled at threshold T iff its randomness R >= T
 * (T = 0 keeps everything, T = 2^56 nothing).
 *
 * Two readers: kn_tracestate_ot_parse is lenient (invalid sub-values are
 * ignored, as the tail sampler has always done: lowercase only);
 * kn_tracestate_ot_check is OpenTelemetry's processor reading (an invalid
 * th or rv is an error; hex digits of either case, as Go's ParseUint takes
 * them). Two writers: kn_tracestate_set_th puts th first and keeps the
 * other sub-keys in order (the tail sampler's form); kn_tracestate_set_ot
 * writes OpenTelemetry's canonical order rv, th, then the other sub-keys
 * (the OTel probabilistic_sampler's serialisation, so kansatsu's output is
 * byte-equal to its published test vectors). Both move `ot` to the front
 * (W3C: a modified member goes first) and keep at most 32 members.
 *
 * Pure functions over caller buffers; no allocation, no state. */
#ifndef KN_TRACESTATE_H
#define KN_TRACESTATE_H

#include <stddef.h>
#include <stdint.h>

#define KN_TRACESTATE_MAX_TH (1ull << 56) /* the never-sample threshold */

/* Finds list-member `key`; 1 and its value, 0 when absent, -1 when the
 * tracestate is not valid W3C syntax. Duplicate keys: the first wins. */
int kn_tracestate_get(const char *ts, size_t len, const char *key, size_t keylen,
		      const char **val, size_t *vlen);

/* Lenient: has_th/th and has_rv/rv set for valid sub-keys (lowercase hex;
 * an invalid th or rv is ignored). */
void kn_tracestate_ot_parse(const char *v, size_t len, int *has_th, uint64_t *th, int *has_rv,
			    uint64_t *rv);

/* OpenTelemetry's reading of an `ot` value. */
struct kn_ot_value {
	int has_th, has_rv;
	uint64_t th, rv;
	const char *rv_text;   /* the rv value as written (kept verbatim on rewrite) */
};
/* 0, or -1 with *why set to a static reason ("r-value must have 14 hex
 * digits", "t-value exceeds 14 hex digits", "invalid t-value syntax", ...). */
int kn_tracestate_ot_check(const char *v, size_t len, struct kn_ot_value *out, const char **why);

/* The `th` text of a threshold: 14 hex digits, trailing zeros removed;
 * zero is "0". Returns the length written (1..14) plus a NUL. */
size_t kn_tracestate_th_format(uint64_t th, char out[15]);

/* `in` with its `ot` member's th set (th first, other sub-keys kept in
 * order, `ot` moved to the front) into out[cap]; the length, or 0 if it
 * does not fit. in may be NULL when inlen is 0. */
size_t kn_tracestate_set_th(const char *in, size_t inlen, uint64_t threshold, char *out,
			    size_t cap);

/* What kn_tracestate_set_ot writes into `ot`. */
struct kn_ot_edit {
	int set_rv;            /* 1: rv = rv (14 lowercase digits), replacing any */
	uint64_t rv;
	int th;                /* 1: th = threshold; -1: remove th; 0: keep as it is */
	uint64_t threshold;
};
/* `in` rewritten in OpenTelemetry's order: "ot=rv:..;th:..;<other ot
 * sub-keys in order>" first (left out when empty), then the other members
 * in order. An existing rv is kept as written unless set_rv. The length,
 * or 0 if it does not fit. */
size_t kn_tracestate_set_ot(const char *in, size_t inlen, const struct kn_ot_edit *e, char *out,
			    size_t cap);

#endif
