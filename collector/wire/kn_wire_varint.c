/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_varint: base-128 varints as protobuf encodes them (the public
 * helpers of kn_wire.h; the reader's hot loop uses inlined copies in
 * kn_wire_internal.h). Pure functions, no allocation, any thread. */
#include "kn_wire.h"

size_t kn_wire_varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t kn_wire_put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

int kn_wire_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	const uint8_t *q = *p;
	uint64_t r = 0;
	for (unsigned i = 0; i < 10; i++) {
		if (q >= end)
			return -1;
		uint8_t b = *q++;
		/* the 10th byte carries bit 63 only; higher bits are dropped */
		r |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*p = q;
			*v = r;
			return 0;
		}
	}
	return -1;
}
