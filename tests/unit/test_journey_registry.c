/* SPDX-License-Identifier: Apache-2.0
 * The journey registry (processors/journey/kn_journey_registry.h): put/get
 * and replacement of one id, per-shard tables, TTL expiry and slot reuse,
 * eviction of the oldest entry in a full probe window (counted, and the
 * newest entry always readable), and one writer putting while reader
 * threads hammer get: every entry a reader copies is whole (all its fields
 * derive from one version number and carry a checksum, so a torn copy that
 * mixes two writes fails). Readers stop on a flag the writer sets when done
 * (a real condition; no sleeps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "processors/journey/kn_journey_registry.h"

#define SEC 1000000000ull
#define T0 (5000 * SEC)

static void tid(uint8_t id[16], uint32_t n)
{
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)((n * 2654435761u) >> (8 * (i % 4))) ^ (uint8_t)(i * 37);
	id[15] = 0x5a; /* never all zero */
}

/* A head whose every field derives from version v, plus a checksum. */
static void head_of(struct kn_journey_head *h, const uint8_t id[16], uint64_t v)
{
	memset(h, 0, sizeof *h);
	memcpy(h->journey_id, id, 16);
	memset(h->head_span_id, (int)(v & 0xff), 8);
	h->start_ns = v;
	h->end_ns = v ^ 0xa5a5a5a5a5a5a5a5ull;
	h->kind = (int32_t)(v % 6);
	h->name_len = (uint16_t)(v % KN_JOURNEY_NAME_MAX);
	h->service_len = (uint16_t)(v % KN_JOURNEY_SERVICE_MAX);
	h->attrs_len = (uint16_t)(v % KN_JOURNEY_ATTRS_MAX);
	memset(h->name, (int)((v >> 8) & 0xff), KN_JOURNEY_NAME_MAX);
	memset(h->service, (int)((v >> 16) & 0xff), KN_JOURNEY_SERVICE_MAX);
	for (int i = 0; i < KN_JOURNEY_ATTRS_MAX; i++)
		h->attrs[i] = (uint8_t)(v * 31 + (uint64_t)i);
	uint32_t sum = 0;
	const uint8_t *p = (const uint8_t *)h->attrs;
	for (int i = 0; i < KN_JOURNEY_ATTRS_MAX; i++)
		sum = sum * 131 + p[i];
	sum ^= (uint32_t)v;
	h->status_code = (int32_t)(sum & 0x7fffffff);
}

/* 1 when h is exactly head_of(id, h->start_ns). */
static int head_ok(const struct kn_journey_head *h, const uint8_t id[16])
{
	struct kn_journey_head want;
	head_of(&want, id, h->start_ns);
	return memcmp(h, &want, sizeof want) == 0;
}

static void test_put_get(void **state)
{
	(void)state;
	struct kn_err err;
	struct kn_journey_registry *r = kn_journey_registry_create(2, 100, 60 * SEC, &err);
	assert_non_null(r);
	assert_int_equal(kn_journey_registry_nshards(r), 2);
	uint8_t a[16], b[16];
	tid(a, 1);
	tid(b, 2);
	struct kn_journey_head h, out;
	assert_int_equal(kn_journey_registry_get(r, 0, a, T0, &out), 0);
	head_of(&h, a, 7);
	assert_int_equal(kn_journey_registry_put(r, 0, a, &h, T0), 0);
	assert_int_equal(kn_journey_registry_get(r, 0, a, T0 + 1, &out), 1);
	assert_memory_equal(&out, &h, sizeof h);
	/* per-shard tables: not on the other shard, other ids absent */
	assert_int_equal(kn_journey_registry_get(r, 1, a, T0, &out), 0);
	assert_int_equal(kn_journey_registry_get(r, 0, b, T0, &out), 0);
	/* out-of-range shard */
	assert_int_equal(kn_journey_registry_get(r, 2, a, T0, &out), 0);
	/* a second put of the same id replaces it, no eviction */
	head_of(&h, a, 9);
	assert_int_equal(kn_journey_registry_put(r, 0, a, &h, T0 + 2), 0);
	assert_int_equal(kn_journey_registry_get(r, 0, a, T0 + 3, &out), 1);
	assert_int_equal(out.start_ns, 9);
	assert_true(head_ok(&out, a));
	assert_int_equal(kn_journey_registry_evictions(r), 0);
	assert_int_equal(kn_journey_registry_puts(r), 2);
	kn_journey_registry_destroy(r);
	kn_journey_registry_destroy(NULL);
	/* bad sizes are errors naming what is wrong */
	assert_null(kn_journey_registry_create(0, 10, SEC, &err));
	assert_non_null(strstr(err.msg, "shard"));
}

static void test_ttl(void **state)
{
	(void)state;
	struct kn_err err;
	const uint64_t ttl = 10 * SEC;
	struct kn_journey_registry *r = kn_journey_registry_create(1, 8, ttl, &err);
	assert_non_null(r);
	uint8_t id[16];
	struct kn_journey_head h, out;
	tid(id, 42);
	head_of(&h, id, 1);
	kn_journey_registry_put(r, 0, id, &h, T0);
	assert_int_equal(kn_journey_registry_get(r, 0, id, T0 + ttl - 1, &out), 1);
	assert_int_equal(kn_journey_registry_get(r, 0, id, T0 + ttl, &out), 0);
	/* the table has exactly one window (8 slots): expired slots are reused
	 * without eviction */
	for (uint32_t i = 0; i < 7; i++) { /* with the first: 8 live entries, a full window */
		tid(id, 100 + i);
		head_of(&h, id, i);
		assert_int_equal(kn_journey_registry_put(r, 0, id, &h, T0), 0);
	}
	for (uint32_t i = 0; i < 8; i++) {
		tid(id, 200 + i);
		head_of(&h, id, i);
		assert_int_equal(kn_journey_registry_put(r, 0, id, &h, T0 + ttl + i), 0);
		assert_int_equal(kn_journey_registry_get(r, 0, id, T0 + ttl + i, &out), 1);
	}
	assert_int_equal(kn_journey_registry_evictions(r), 0);
	kn_journey_registry_destroy(r);
}

static void test_eviction(void **state)
{
	(void)state;
	struct kn_err err;
	struct kn_journey_registry *r = kn_journey_registry_create(1, 64, 600 * SEC, &err);
	assert_non_null(r);
	uint8_t id[16];
	struct kn_journey_head h, out;
	uint64_t returned = 0;
	for (uint32_t i = 0; i < 1000; i++) {
		tid(id, i);
		head_of(&h, id, i);
		returned += (uint64_t)kn_journey_registry_put(r, 0, id, &h, T0 + i);
		/* the newest entry is always there */
		assert_int_equal(kn_journey_registry_get(r, 0, id, T0 + i, &out), 1);
		assert_true(head_ok(&out, id));
	}
	/* 64 slots cannot hold 1000 live entries: at least 936 evictions */
	assert_true(returned >= 1000 - 64);
	assert_int_equal(kn_journey_registry_evictions(r), returned);
	/* the evicted ones are gone: at most 64 of the 1000 are found */
	uint32_t found = 0;
	for (uint32_t i = 0; i < 1000; i++) {
		tid(id, i);
		found += (uint32_t)kn_journey_registry_get(r, 0, id, T0 + 1000, &out);
	}
	assert_true(found <= 64);
	assert_true(found > 0);
	kn_journey_registry_destroy(r);
}

/* ---- one writer, many readers ---- */

#define NIDS 24
#define NREADERS 3
#define NPUTS 200000

struct race {
	struct kn_journey_registry *r;
	pthread_barrier_t go;
	atomic_int done;
	uint8_t ids[NIDS][16];
	_Atomic uint64_t found, torn, missing;
};

static void *writer(void *arg)
{
	struct race *x = arg;
	struct kn_journey_head h;
	pthread_barrier_wait(&x->go);
	for (uint64_t v = 1; v <= NPUTS; v++) {
		const uint8_t *id = x->ids[v % NIDS];
		head_of(&h, id, v);
		kn_journey_registry_put(x->r, 0, id, &h, T0 + v);
	}
	atomic_store(&x->done, 1);
	return NULL;
}

static void *reader(void *arg)
{
	struct race *x = arg;
	struct kn_journey_head out;
	uint64_t found = 0, torn = 0, missing = 0;
	pthread_barrier_wait(&x->go);
	for (uint32_t i = 0; !atomic_load(&x->done) || i < 1000; i++) {
		const uint8_t *id = x->ids[i % NIDS];
		if (kn_journey_registry_get(x->r, 0, id, T0 + 1, &out)) {
			found++;
			if (!head_ok(&out, id) || memcmp(out.journey_id, id, 16) != 0)
				torn++;
		} else {
			missing++;
		}
	}
	atomic_fetch_add(&x->found, found);
	atomic_fetch_add(&x->torn, torn);
	atomic_fetch_add(&x->missing, missing);
	return NULL;
}

static void test_concurrent_readers(void **state)
{
	(void)state;
	struct kn_err err;
	static struct race x;
	memset(&x, 0, sizeof x);
	x.r = kn_journey_registry_create(1, 4096, 3600 * SEC, &err);
	assert_non_null(x.r);
	struct kn_journey_head h;
	for (uint32_t i = 0; i < NIDS; i++) {
		tid(x.ids[i], 7000 + i);
		head_of(&h, x.ids[i], 0);
		kn_journey_registry_put(x.r, 0, x.ids[i], &h, T0);
	}
	assert_int_equal(pthread_barrier_init(&x.go, NULL, NREADERS + 1), 0);
	pthread_t w, rd[NREADERS];
	for (int i = 0; i < NREADERS; i++)
		assert_int_equal(pthread_create(&rd[i], NULL, reader, &x), 0);
	assert_int_equal(pthread_create(&w, NULL, writer, &x), 0);
	pthread_join(w, NULL);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(rd[i], NULL);
	pthread_barrier_destroy(&x.go);
	/* every id stayed in the table (24 ids in 4096 slots: no eviction) */
	assert_int_equal(kn_journey_registry_evictions(x.r), 0);
	assert_int_equal(atomic_load(&x.torn), 0);
	assert_true(atomic_load(&x.found) >= NREADERS * 1000 / 2);
	/* after the writer: the last version of every id */
	struct kn_journey_head out;
	for (uint32_t i = 0; i < NIDS; i++) {
		assert_int_equal(kn_journey_registry_get(x.r, 0, x.ids[i], T0 + NPUTS, &out), 1);
		assert_true(head_ok(&out, x.ids[i]));
		uint64_t last = NPUTS - ((NPUTS - i) % NIDS);
		assert_int_equal(out.start_ns, last);
	}
	kn_journey_registry_destroy(x.r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get),
		cmocka_unit_test(test_ttl),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_concurrent_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
