/* SPDX-License-Identifier: Apache-2.0
 * The journey entry codec (processors/journey/kn_journey_entry.h), the bytes
 * a shared registry holds for a trace: a head with every field set survives
 * encode -> decode exactly (also at the maximum lengths); every truncation,
 * a byte too many, another version, lengths past the limits and attributes
 * that are not Span.attributes fields are rejected with the head zeroed; and
 * the Redis key is the prefix + 32 lowercase hex digits of the trace id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "processors/journey/kn_journey_entry.h"
#include "processors/journey/kn_journey_redis.h"

/* Span.attributes {key: k, value: {string_value: v}} */
static size_t kv(uint8_t *w, const char *k, const char *v)
{
	size_t kl = strlen(k), vl = strlen(v);
	size_t inner = 2 + kl + 2 + 2 + vl;
	uint8_t *p = w;
	*p++ = 0x4a;
	*p++ = (uint8_t)inner;
	*p++ = 0x0a;
	*p++ = (uint8_t)kl;
	memcpy(p, k, kl);
	p += kl;
	*p++ = 0x12;
	*p++ = (uint8_t)(vl + 2);
	*p++ = 0x0a;
	*p++ = (uint8_t)vl;
	memcpy(p, v, vl);
	p += vl;
	return (size_t)(p - w);
}

static void sample_head(struct kn_journey_head *h)
{
	memset(h, 0, sizeof *h);
	for (int i = 0; i < 16; i++)
		h->journey_id[i] = (uint8_t)(0xa0 + i);
	for (int i = 0; i < 8; i++)
		h->head_span_id[i] = (uint8_t)(0x10 + i);
	h->start_ns = 1700000000123456789ull;
	h->end_ns = 1700000000223456789ull;
	h->kind = 2;
	h->status_code = 2;
	h->name_len = (uint16_t)strlen("POST /messages");
	memcpy(h->name, "POST /messages", h->name_len);
	h->service_len = 3;
	memcpy(h->service, "api", 3);
	size_t n = kv(h->attrs, "tenant.plan", "gold");
	n += kv(h->attrs + n, "room.type", "group");
	h->attrs_len = (uint16_t)n;
}

static void round_trip(void **state)
{
	(void)state;
	struct kn_journey_head h, back;
	uint8_t buf[KN_JOURNEY_ENTRY_MAX];
	sample_head(&h);
	size_t n = kn_journey_entry_encode(&h, buf);
	assert_int_equal(n, KN_JOURNEY_ENTRY_FIXED + h.name_len + h.service_len + h.attrs_len);
	assert_int_equal(kn_journey_entry_decode(buf, n, &back), 0);
	assert_memory_equal(&back, &h, sizeof h);
	/* the largest entry */
	memset(&h, 0, sizeof h);
	h.name_len = KN_JOURNEY_NAME_MAX;
	memset(h.name, 'n', KN_JOURNEY_NAME_MAX);
	h.service_len = KN_JOURNEY_SERVICE_MAX;
	memset(h.service, 's', KN_JOURNEY_SERVICE_MAX);
	size_t a = 0;
	while (a + 12 <= KN_JOURNEY_ATTRS_MAX)
		a += kv(h.attrs + a, "k", "vvvv");
	h.attrs_len = (uint16_t)a;
	n = kn_journey_entry_encode(&h, buf);
	assert_true(n <= KN_JOURNEY_ENTRY_MAX);
	assert_int_equal(kn_journey_entry_decode(buf, n, &back), 0);
	assert_memory_equal(&back, &h, sizeof h);
}

static void rejects(void **state)
{
	(void)state;
	struct kn_journey_head h, back, zero;
	uint8_t buf[KN_JOURNEY_ENTRY_MAX + 1];
	memset(&zero, 0, sizeof zero);
	sample_head(&h);
	size_t n = kn_journey_entry_encode(&h, buf);
	for (size_t cut = 0; cut < n; cut++) {
		memset(&back, 0x55, sizeof back);
		assert_int_equal(kn_journey_entry_decode(buf, cut, &back), -1);
		assert_memory_equal(&back, &zero, sizeof zero);
	}
	buf[n] = 0;
	assert_int_equal(kn_journey_entry_decode(buf, n + 1, &back), -1);
	assert_int_equal(kn_journey_entry_decode(NULL, 0, &back), -1);
	uint8_t bad[KN_JOURNEY_ENTRY_MAX];
	memcpy(bad, buf, n);
	bad[0] = 2; /* another version */
	assert_int_equal(kn_journey_entry_decode(bad, n, &back), -1);
	memcpy(bad, buf, n);
	bad[49] = (uint8_t)(KN_JOURNEY_NAME_MAX + 1); /* name longer than a head holds */
	bad[50] = 0;
	assert_int_equal(kn_journey_entry_decode(bad, n, &back), -1);
	/* attrs that are not field-9 messages: the first tag becomes field 1 */
	memcpy(bad, buf, n);
	bad[KN_JOURNEY_ENTRY_FIXED + h.name_len + h.service_len] = 0x0a;
	assert_int_equal(kn_journey_entry_decode(bad, n, &back), -1);
	/* a KeyValue whose length runs past the end */
	memcpy(bad, buf, n);
	bad[KN_JOURNEY_ENTRY_FIXED + h.name_len + h.service_len + 1] = 0x7f;
	assert_int_equal(kn_journey_entry_decode(bad, n, &back), -1);
}

static void key(void **state)
{
	(void)state;
	uint8_t id[16];
	char k[64];
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(i * 17);
	assert_int_equal(kn_jr_key("kansatsu:j:", id, k), 11 + 32);
	assert_string_equal(k, "kansatsu:j:00112233445566778899aabbccddeeff");
	assert_int_equal(kn_jr_key("", id, k), 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),
		cmocka_unit_test(rejects),
		cmocka_unit_test(key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
