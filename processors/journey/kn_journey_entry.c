/* SPDX-License-Identifier: Apache-2.0
 * kn_journey_entry: encoding and checked decoding of a journey head (layout
 * in kn_journey_entry.h). No allocation; the decoder reads at most len
 * bytes and never trusts a length it has not checked. */
#include "kn_journey_entry.h"

#include <string.h>

#include "../../collector/wire/kn_wire_field.h"

static void put64(uint8_t *w, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		w[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *r)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)r[i] << (8 * i);
	return v;
}

static void put16(uint8_t *w, uint16_t v)
{
	w[0] = (uint8_t)v;
	w[1] = (uint8_t)(v >> 8);
}

static uint16_t get16(const uint8_t *r)
{
	return (uint16_t)(r[0] | (r[1] << 8));
}

size_t kn_journey_entry_encode(const struct kn_journey_head *h, uint8_t *out)
{
	uint16_t nl = h->name_len <= KN_JOURNEY_NAME_MAX ? h->name_len : KN_JOURNEY_NAME_MAX;
	uint16_t sl = h->service_len <= KN_JOURNEY_SERVICE_MAX ? h->service_len : KN_JOURNEY_SERVICE_MAX;
	uint16_t al = h->attrs_len <= KN_JOURNEY_ATTRS_MAX ? h->attrs_len : 0;
	out[0] = KN_JOURNEY_ENTRY_VERSION;
	memcpy(out + 1, h->journey_id, 16);
	memcpy(out + 17, h->head_span_id, 8);
	put64(out + 25, h->start_ns);
	put64(out + 33, h->end_ns);
	put64(out + 41, (uint32_t)h->kind | ((uint64_t)(uint32_t)h->status_code << 32));
	put16(out + 49, nl);
	put16(out + 51, sl);
	put16(out + 53, al);
	uint8_t *w = out + KN_JOURNEY_ENTRY_FIXED;
	memcpy(w, h->name, nl);
	w += nl;
	memcpy(w, h->service, sl);
	w += sl;
	memcpy(w, h->attrs, al);
	w += al;
	return (size_t)(w - out);
}

/* attrs must be whole Span.attributes (field 9, length-delimited) fields. */
static int attrs_ok(const uint8_t *a, size_t len)
{
	const uint8_t *p = a, *end = a + len;
	struct kn_wire_field f;
	int r;
	while ((r = kn_wire_field_next(&p, end, &f)) > 0)
		if (f.num != 9 || f.wt != 2)
			return 0;
	return r == 0 && p == end;
}

int kn_journey_entry_decode(const uint8_t *in, size_t len, struct kn_journey_head *h)
{
	memset(h, 0, sizeof *h);
	if (!in || len < KN_JOURNEY_ENTRY_FIXED || in[0] != KN_JOURNEY_ENTRY_VERSION)
		return -1;
	uint16_t nl = get16(in + 49), sl = get16(in + 51), al = get16(in + 53);
	if (nl > KN_JOURNEY_NAME_MAX || sl > KN_JOURNEY_SERVICE_MAX || al > KN_JOURNEY_ATTRS_MAX ||
	    len != (size_t)KN_JOURNEY_ENTRY_FIXED + nl + sl + al)
		return -1;
	const uint8_t *r = in + KN_JOURNEY_ENTRY_FIXED;
	if (!attrs_ok(r + nl + sl, al))
		return -1;
	memcpy(h->journey_id, in + 1, 16);
	memcpy(h->head_span_id, in + 17, 8);
	h->start_ns = get64(in + 25);
	h->end_ns = get64(in + 33);
	uint64_t ks = get64(in + 41);
	h->kind = (int32_t)(uint32_t)ks;
	h->status_code = (int32_t)(uint32_t)(ks >> 32);
	h->name_len = nl;
	h->service_len = sl;
	h->attrs_len = al;
	memcpy(h->name, r, nl);
	memcpy(h->service, r + nl, sl);
	memcpy(h->attrs, r + nl + sl, al);
	return 0;
}
