/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_internal: protobuf wire primitives and the error-path machinery
 * shared by the files of collector/wire (not a public header).
 *
 * Acceptance rule: everything here is at least as strict as protobuf-c 1.4's
 * unpack, so a buffer the reader accepts is one protobuf-c accepts too:
 * tags are 1..5 bytes with a field number in [1, 2^29-1]; varints are at most
 * 10 bytes; length prefixes are at most 5 bytes, <= INT32_MAX and within the
 * enclosing message; groups (wire types 3, 4) and wire types 6, 7 are errors;
 * a known field must carry its declared wire type.
 *
 * Errors: the function that finds the fault sets ctx->why and returns -1;
 * every caller on the way out appends one path frame (field name, repeated
 * index). Nothing is recorded on the success path, so paths cost nothing until
 * something is wrong. kn_wire_ctx_format writes "a[1].b.c[2]: why".
 *
 * Speed: the readers below take the one-byte tag / length / varint case
 * first; kn_wire_kv_fast validates the usual KeyValue shape with no context at
 * all and only ever declines (never rejects), so every error still comes from
 * the general path with its exact message. */
#ifndef KN_WIRE_INTERNAL_H
#define KN_WIRE_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "kn_wire.h"
#include "kn_wire_field.h"

enum {
	KN_WT_VARINT = 0,
	KN_WT_I64 = 1,
	KN_WT_LEN = 2,
	KN_WT_I32 = 5,
};

/* each AnyValue level adds at most 3 frames (kvlist_value.values[i].value) */
#define KN_WIRE_MAX_FRAMES (3 * KN_WIRE_MAX_DEPTH + 16)

struct kn_wire_frame {
	const char *name;   /* NULL for an unknown field: printed as field_<n> */
	uint32_t field;
	int32_t idx;        /* index among the field's occurrences; -1 for singular */
};

struct kn_wire_ctx {
	int trusted;                              /* kn_wire_index_trusted: nested messages not checked */
	const char *why;                          /* static text, or whybuf */
	char whybuf[80];
	uint32_t nframes;                         /* innermost first */
	struct kn_wire_frame frames[KN_WIRE_MAX_FRAMES];
};

/* Sets the reason; returns -1 so callers can `return kn_wire_fail(...)`. */
int kn_wire_fail(struct kn_wire_ctx *c, const char *why);
int kn_wire_failf(struct kn_wire_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends one path frame (on the way out of a failure); returns -1. */
int kn_wire_frame(struct kn_wire_ctx *c, const char *name, uint32_t field, int32_t idx);
/* Writes the path (outermost first) and the reason into out. */
void kn_wire_ctx_format(const struct kn_wire_ctx *c, char *out, size_t outlen);

/* Reads a tag at *p (< end). 0, or -1 with c->why set. */
static inline int kn_wire_tag(struct kn_wire_ctx *c, const uint8_t **p, const uint8_t *end,
			      uint32_t *field, uint32_t *wt)
{
	const uint8_t *q = *p;
	uint64_t v = 0;
	unsigned shift = 0;
	if (q < end && *q < 0x80 && *q >= 8) {   /* one-byte tag: fields 1..15 */
		*p = q + 1;
		*wt = *q & 7u;
		*field = *q >> 3;
		return 0;
	}
	for (int i = 0; i < 5; i++) {
		if (q >= end)
			return kn_wire_fail(c, "truncated tag");
		uint8_t b = *q++;
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80)) {
			*p = q;
			*wt = (uint32_t)(v & 7);
			v >>= 3;
			if (v == 0)
				return kn_wire_fail(c, "field number 0");
			if (v > 0x1fffffffu)
				return kn_wire_fail(c, "field number above 2^29-1");
			*field = (uint32_t)v;
			return 0;
		}
	}
	return kn_wire_fail(c, "tag longer than 5 bytes");
}

/* Reads a varint of at most 10 bytes (extra high bits are dropped, as
 * protobuf does). 0, or -1 with c->why set. */
static inline int kn_wire_varint(struct kn_wire_ctx *c, const uint8_t **p, const uint8_t *end,
				 uint64_t *out)
{
	const uint8_t *q = *p;
	if (q < end && !(*q & 0x80)) {
		*out = *q;
		*p = q + 1;
		return 0;
	}
	if (kn_wire_get_varint(p, end, out) < 0)
		return kn_wire_fail(c, (end - q) >= 10 ? "varint longer than 10 bytes" : "truncated varint");
	return 0;
}

/* Reads a length prefix (at most 5 bytes) and checks the bytes are there:
 * on success *p points at the payload and *len is its size. */
static inline int kn_wire_len(struct kn_wire_ctx *c, const uint8_t **p, const uint8_t *end,
			      uint32_t *len)
{
	const uint8_t *q = *p;
	uint64_t v = 0;
	unsigned shift = 0;
	if (q < end && *q < 0x80 && *q < end - q) {   /* one-byte prefix, in bounds */
		*len = *q;
		*p = q + 1;
		return 0;
	}
	for (int i = 0; i < 5; i++) {
		if (q >= end)
			return kn_wire_fail(c, "truncated length");
		uint8_t b = *q++;
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80)) {
			if (v > 0x7fffffffu)
				return kn_wire_fail(c, "length above 2^31-1");
			if (v > (uint64_t)(end - q))
				return kn_wire_fail(c, "truncated");
			*p = q;
			*len = (uint32_t)v;
			return 0;
		}
	}
	return kn_wire_fail(c, "length prefix longer than 5 bytes");
}

/* Checks wt against the declared one; names both on failure. */
static inline int kn_wire_want(struct kn_wire_ctx *c, uint32_t wt, uint32_t want)
{
	if (wt == want)
		return 0;
	return kn_wire_failf(c, "wrong wire type %u, want %u", wt, want);
}

/* The general case of kn_wire_skip (every wire type, every error). */
int kn_wire_skip_any(struct kn_wire_ctx *c, uint32_t wt, const uint8_t **p, const uint8_t *end);

/* Skips the value of a field of wire type wt (unknown fields). The common
 * cases (a one-byte varint, an in-bounds one-byte length) stay inline. */
static inline int kn_wire_skip(struct kn_wire_ctx *c, uint32_t wt, const uint8_t **p,
			       const uint8_t *end)
{
	const uint8_t *q = *p;
	if (q < end && *q < 0x80) {
		if (wt == KN_WT_VARINT) {
			*p = q + 1;
			return 0;
		}
		if (wt == KN_WT_LEN && *q < end - q) {
			*p = q + 1 + *q;
			return 0;
		}
	}
	return kn_wire_skip_any(c, wt, p, end);
}

/* Fixed-width little-endian values: the shared reader's (kn_wire_field.h). */
static inline uint64_t kn_wire_le64(const uint8_t *p)
{
	return kn_wire_field_le64(p);
}

static inline uint32_t kn_wire_le32(const uint8_t *p)
{
	return kn_wire_field_le32(p);
}

/* The nested message types the reader validates without extracting data. */
enum kn_wire_msg {
	KN_WM_NONE = 0,
	KN_WM_KEYVALUE,
	KN_WM_ANYVALUE,
	KN_WM_ARRAYVALUE,
	KN_WM_KVLIST,
	KN_WM_SCOPE,        /* InstrumentationScope */
	KN_WM_RESOURCE,
	KN_WM_ENTITYREF,
	KN_WM_EVENT,        /* Span.Event */
	KN_WM_LINK,         /* Span.Link */
	KN_WM_STATUS,
	KN_WM_COUNT
};

/* Validates the framing of one message of type m occupying [p, end).
 * depth counts the AnyValue messages enclosing it; an AnyValue deeper than
 * KN_WIRE_MAX_DEPTH is an error. 0, or -1 with c->why and frames set. */
int kn_wire_check_msg(struct kn_wire_ctx *c, enum kn_wire_msg m, const uint8_t *p,
		      const uint8_t *end, uint32_t depth);

/* A length prefix of one or two bytes at p whose payload fits before end:
 * returns the payload (*len its size), or NULL when the prefix is longer or
 * the payload does not fit (the caller then takes the checked path). */
static inline const uint8_t *kn_wire_fast_len(const uint8_t *p, const uint8_t *end, uint32_t *len)
{
	if (p < end && p[0] < 0x80) {
		*len = p[0];
		p += 1;
	} else if (end - p >= 2 && p[1] < 0x80) {
		*len = (uint32_t)(p[0] & 0x7f) | (uint32_t)p[1] << 7;
		p += 2;
	} else {
		return NULL;
	}
	return *len <= (size_t)(end - p) ? p : NULL;
}

/* The common shape of a KeyValue, proved well-formed without the general
 * machinery: an optional key (field 1) and then, filling the rest, an
 * optional value (field 2) that is empty or holds exactly one scalar
 * (string, bool, int, double, bytes, string_value_strindex). 1 when [p, end)
 * has that shape and is valid; 0 when it does not have it (which says
 * nothing about validity: the general checker then decides, and names the
 * fault). Only called where the value's AnyValue is within the depth bound. */
static inline int kn_wire_kv_fast(const uint8_t *p, const uint8_t *end)
{
	uint32_t n = 0;
	if (p < end && p[0] == 0x0a) {                    /* key */
		if (!(p = kn_wire_fast_len(p + 1, end, &n)))
			return 0;
		p += n;
	}
	if (p == end)
		return 1;
	if (p[0] != 0x12 || !(p = kn_wire_fast_len(p + 1, end, &n)) || n != (size_t)(end - p))
		return 0;                                 /* value, filling the rest */
	if (p == end)
		return 1;
	switch (*p++) {
	case 0x0a:                                        /* string_value */
	case 0x3a:                                        /* bytes_value */
		return (p = kn_wire_fast_len(p, end, &n)) && n == (size_t)(end - p);
	case 0x10:                                        /* bool_value */
	case 0x18:                                        /* int_value */
	case 0x40:                                        /* string_value_strindex */
		for (int i = 0; i < 10 && p < end; i++)
			if (!(*p++ & 0x80))
				return p == end;
		return 0;
	case 0x21:                                        /* double_value */
		return end - p == 8;
	default:
		return 0;
	}
}

/* Validates one KeyValue whose enclosing AnyValue depth is depth: the fast
 * shape inline, anything else (and every error) through kn_wire_check_msg. */
static inline int kn_wire_check_kv(struct kn_wire_ctx *c, const uint8_t *p, const uint8_t *end,
				   uint32_t depth)
{
	if (depth < KN_WIRE_MAX_DEPTH && kn_wire_kv_fast(p, end))
		return 0;
	return kn_wire_check_msg(c, KN_WM_KEYVALUE, p, end, depth);
}

#endif
