/* SPDX-License-Identifier: Apache-2.0
 * kn_lb_key: routing keys (see kn_lb_key.h). Protobuf facts used:
 * Resource.attributes = 1 (KeyValue), KeyValue.key = 1 (string),
 * KeyValue.value = 2 (AnyValue), AnyValue.string_value = 1 (string). */
#include "kn_lb_key.h"

#include <string.h>

#include "../../collector/core/kn_hex.h"
#include "../../collector/wire/kn_wire_field.h"
#include "../../processors/tail_sampling/kn_tail_view.h"
#include "kn_lb_ring.h"

/* One field at *p: its number and, for LEN, the payload (else NULL).
 * 0 on success, -1 on malformed input or a group. The shared reader in LAX
 * mode: this walk has always accepted any field number (0, or above 2^29-1
 * as its low 32 bits) and any in-bounds length; kept exactly. */
static inline int next_field(const uint8_t **p, const uint8_t *end, uint32_t *num,
			     const uint8_t **val, size_t *vlen)
{
	struct kn_wire_field f;
	if (kn_wire_field_read(p, end, &f, KN_WIRE_FIELD_LAX) <= 0)
		return -1;
	*num = f.num;
	*val = f.payload;
	*vlen = f.len;
	return 0;
}

/* The string_value of an AnyValue, or NULL. */
static const uint8_t *any_string(const uint8_t *p, const uint8_t *end, size_t *len)
{
	const uint8_t *found = NULL;
	while (p < end) {
		uint32_t num;
		const uint8_t *v;
		size_t vl;
		if (next_field(&p, end, &num, &v, &vl) != 0)
			return NULL;
		if (num == 1 && v) {
			found = v;  /* a oneof: the last one on the wire wins */
			*len = vl;
		} else if (num >= 2 && num <= 7) {
			found = NULL; /* another member of the oneof replaced it */
		}
	}
	return found;
}

int kn_lb_service_name(const uint8_t *res, size_t len, const uint8_t **name, size_t *name_len)
{
	static const char want[] = "service.name";
	const uint8_t *p = res, *end = res ? res + len : NULL;
	while (p && p < end) {
		uint32_t num;
		const uint8_t *kv;
		size_t kvl;
		if (next_field(&p, end, &num, &kv, &kvl) != 0)
			return 0;
		if (num != 1 || !kv)
			continue;
		const uint8_t *q = kv, *qend = kv + kvl, *key = NULL, *val = NULL;
		size_t keyl = 0, vall = 0;
		while (q < qend) {
			uint32_t f;
			const uint8_t *v;
			size_t vl;
			if (next_field(&q, qend, &f, &v, &vl) != 0)
				return 0;
			if (f == 1 && v) {
				key = v;
				keyl = vl;
			} else if (f == 2 && v) {
				val = v;
				vall = vl;
			}
		}
		if (!key || keyl != sizeof want - 1 || memcmp(key, want, keyl) != 0 || !val)
			continue;
		size_t sl = 0;
		const uint8_t *s = any_string(val, val + vall, &sl);
		if (s) {
			*name = s;
			*name_len = sl;
			return 1;
		}
	}
	return 0;
}

uint64_t kn_lb_key_trace(const uint8_t trace_id[16])
{
	return kn_lb_hash(trace_id, 16);
}

uint64_t kn_lb_key_service(const uint8_t *res, size_t len)
{
	const uint8_t *name = (const uint8_t *)"";
	size_t nl = 0;
	kn_lb_service_name(res, len, &name, &nl);
	return kn_lb_hash(name, nl);
}

int kn_lb_journey_id(const uint8_t *span, size_t len, const char *key, size_t keylen, uint8_t id[16])
{
	struct kn_tail_value v;
	if (!span || len > UINT32_MAX || !kn_tail_attr_get(span, (uint32_t)len, KN_TAIL_SPAN_ATTRS, key, keylen, &v))
		return KN_LB_JID_ABSENT;
	uint8_t any = 0;
	if (v.type == KN_TV_STR && v.slen == 32) {
		if (!kn_hex_decode((const char *)v.s, 32, id))
			return KN_LB_JID_INVALID;
		for (int i = 0; i < 16; i++)
			any |= id[i];
	} else if (v.type == KN_TV_BYTES && v.slen == 16) {
		memcpy(id, v.s, 16);
		for (int i = 0; i < 16; i++)
			any |= id[i];
	} else {
		return KN_LB_JID_INVALID;
	}
	return any ? KN_LB_JID_OK : KN_LB_JID_INVALID;
}
