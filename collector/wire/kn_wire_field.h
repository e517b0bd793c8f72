/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_field: the one "read the next protobuf field" helper for code that
 * walks bytes already in memory (tail sampling view / frame / emit, journey,
 * load-balancing keys, debug rendering, SLI rebuild). Header only, static
 * inline, no allocation, no state: safe from any thread on any buffer.
 *
 * kn_wire_field_next(&p, end, &f) reads one field at p (p < end expected;
 * p == end is "no more fields"):
 *   1  a field: f->num, f->wt, and
 *        VARINT (0): f->value
 *        I64 (1) / I32 (5): f->value, the little-endian fixed value
 *        LEN (2): f->payload / f->len, checked to lie before end
 *      and p moves past the field;
 *   0  p == end;
 *  -1  malformed: truncated tag / varint / fixed / payload, a varint longer
 *      than 10 bytes, a field number outside [1, 2^29-1], a length above
 *      2^31-1, or wire type 3, 4 (groups), 6 or 7. p is then unspecified.
 * Varints follow protobuf: at most 10 bytes, bits beyond 64 dropped. Tags and
 * lengths may be padded (non-canonical) varints of up to 10 bytes.
 *
 * This is deliberately more permissive than collector/wire's own checked
 * reader (kn_wire_internal.h: tags and length prefixes of at most 5 bytes,
 * with named errors), which decides what enters the collector; bytes it has
 * accepted always read the same way here.
 *
 * kn_wire_field_read(.., KN_WIRE_FIELD_LAX) is the same walk for the few
 * callers that historically accepted any field number (0, or above 2^29-1:
 * f->num is then the low 32 bits of tag >> 3 and f->tag the whole tag) and
 * any in-bounds length. The mode is a compile-time constant at every call,
 * so the strict path carries no cost for it.
 *
 * Speed: a one-byte tag (fields 1..15) and a one-byte length or varint are
 * taken first; every struct member is written on every path, so a caller's
 * struct on the stack is scalar-replaced after inlining. */
#ifndef KN_WIRE_FIELD_H
#define KN_WIRE_FIELD_H

#include <stddef.h>
#include <stdint.h>

enum {
	KN_WIRE_FIELD_VARINT = 0,
	KN_WIRE_FIELD_I64 = 1,
	KN_WIRE_FIELD_LEN = 2,
	KN_WIRE_FIELD_I32 = 5,
};

enum kn_wire_field_mode {
	KN_WIRE_FIELD_STRICT = 0,  /* field numbers in [1, 2^29-1], lengths <= 2^31-1 */
	KN_WIRE_FIELD_LAX = 1,     /* any field number, any in-bounds length */
};

struct kn_wire_field {
	uint32_t num;              /* field number */
	uint32_t wt;               /* wire type: 0, 1, 2 or 5 */
	uint64_t value;            /* VARINT / I64 / I32 value; 0 for LEN */
	const uint8_t *payload;    /* LEN: the payload; NULL otherwise */
	size_t len;                /* LEN: payload bytes; 0 otherwise */
	uint64_t tag;              /* the whole tag as read (num = tag >> 3, wt = tag & 7) */
};

static inline uint64_t kn_wire_field_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint32_t kn_wire_field_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A varint of at most 10 bytes at *p; 0, or -1 when truncated or longer. */
static inline int kn_wire_field_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;
	if (p < end && *p < 0x80) {
		*out = *p;
		*pp = p + 1;
		return 0;
	}
	for (unsigned i = 0; i < 10; i++) {
		if (p >= end)
			return -1;
		uint8_t c = *p++;
		v |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			*pp = p;
			*out = v;
			return 0;
		}
	}
	return -1;
}

/* Skips the value of a field of wire type wt at *p: 0, or -1 when malformed
 * (truncated, a group, wire type 6 / 7). Lengths are only bounds-checked. */
static inline int kn_wire_field_skip(const uint8_t **p, const uint8_t *end, uint32_t wt)
{
	uint64_t v;
	switch (wt) {
	case KN_WIRE_FIELD_VARINT:
		return kn_wire_field_varint(p, end, &v);
	case KN_WIRE_FIELD_I64:
		if (end - *p < 8)
			return -1;
		*p += 8;
		return 0;
	case KN_WIRE_FIELD_I32:
		if (end - *p < 4)
			return -1;
		*p += 4;
		return 0;
	case KN_WIRE_FIELD_LEN:
		if (kn_wire_field_varint(p, end, &v) || v > (uint64_t)(end - *p))
			return -1;
		*p += v;
		return 0;
	default:
		return -1;
	}
}

/* The next field of [*pp, end) in the given mode (a constant): 1, 0, -1. */
static inline int kn_wire_field_read(const uint8_t **pp, const uint8_t *end,
				     struct kn_wire_field *f, enum kn_wire_field_mode mode)
{
	const uint8_t *p = *pp;
	uint64_t tag, len;
	f->value = 0;
	f->payload = NULL;
	f->len = 0;
	if (p >= end)
		return 0;
	if (*p < 0x80 && (mode == KN_WIRE_FIELD_LAX || *p >= 8)) {
		tag = *p++;                       /* one-byte tag: fields 1..15 */
	} else {
		if (kn_wire_field_varint(&p, end, &tag) < 0)
			return -1;
		if (mode == KN_WIRE_FIELD_STRICT && ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffffu))
			return -1;
	}
	f->tag = tag;
	f->num = (uint32_t)(tag >> 3);
	f->wt = (uint32_t)(tag & 7);
	switch (f->wt) {
	case KN_WIRE_FIELD_VARINT:
		if (kn_wire_field_varint(&p, end, &f->value) < 0)
			return -1;
		*pp = p;
		return 1;
	case KN_WIRE_FIELD_I64:
		if (end - p < 8)
			return -1;
		f->value = kn_wire_field_le64(p);
		*pp = p + 8;
		return 1;
	case KN_WIRE_FIELD_I32:
		if (end - p < 4)
			return -1;
		f->value = kn_wire_field_le32(p);
		*pp = p + 4;
		return 1;
	case KN_WIRE_FIELD_LEN:
		if (p < end && *p < 0x80 && *p < end - p) {    /* one-byte length, in bounds */
			len = *p++;
		} else {
			if (kn_wire_field_varint(&p, end, &len) < 0 || len > (uint64_t)(end - p))
				return -1;
			if (mode == KN_WIRE_FIELD_STRICT && len > 0x7fffffffu)
				return -1;
		}
		f->payload = p;
		f->len = (size_t)len;
		*pp = p + len;
		return 1;
	default:
		return -1;
	}
}

/* The next field of [*pp, end), strict: 1 a field, 0 at the end, -1 malformed. */
static inline int kn_wire_field_next(const uint8_t **pp, const uint8_t *end,
				     struct kn_wire_field *f)
{
	return kn_wire_field_read(pp, end, f, KN_WIRE_FIELD_STRICT);
}

#endif
