/* SPDX-License-Identifier: Apache-2.0
 * The tail sampler's decision caches: the sampled-id LRU (recency, refresh
 * on hit, eviction of the least recently used, metadata kept) and the
 * not-sampled fingerprint ring (FIFO eviction, duplicates, no false hits),
 * each also checked against a naive model under long random runs that
 * exercise the index's backward-shift deletion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "processors/tail_sampling/kn_tail_cache.h"

static uint64_t rng_state = 0x1234567;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* id number k -> a 16-byte id (distinct for distinct k) */
static void mkid(uint8_t id[16], uint64_t k)
{
	memset(id, 0, 16);
	memcpy(id, &k, sizeof k);
	id[15] = 0x5a;
}

static void test_lru_basic(void **st)
{
	(void)st;
	struct kn_tail_lru *c = kn_tail_lru_create(3);
	assert_non_null(c);
	uint8_t id[16];
	struct kn_tail_kept k = {.policy = 7, .has_threshold = 1, .threshold = 42}, got;
	for (uint64_t i = 1; i <= 3; i++) {
		mkid(id, i);
		k.policy = (uint16_t)i;
		kn_tail_lru_put(c, id, &k);
	}
	assert_int_equal(kn_tail_lru_count(c), 3);
	/* touch 1 so that 2 is the least recently used */
	mkid(id, 1);
	assert_true(kn_tail_lru_get(c, id, &got));
	assert_int_equal(got.policy, 1);
	assert_int_equal(got.threshold, 42);
	assert_int_equal(got.has_threshold, 1);
	mkid(id, 4);
	kn_tail_lru_put(c, id, &k);
	assert_int_equal(kn_tail_lru_count(c), 3);
	mkid(id, 2);
	assert_false(kn_tail_lru_get(c, id, NULL));
	for (uint64_t i = 1; i <= 4; i++) {
		mkid(id, i);
		assert_int_equal(kn_tail_lru_get(c, id, NULL), i != 2);
	}
	/* put on a present id updates it and does not grow */
	mkid(id, 3);
	k.policy = 99;
	kn_tail_lru_put(c, id, &k);
	assert_true(kn_tail_lru_get(c, id, &got));
	assert_int_equal(got.policy, 99);
	assert_int_equal(kn_tail_lru_count(c), 3);
	assert_true(kn_tail_lru_bytes(c) > 0);
	kn_tail_lru_destroy(c);
	kn_tail_lru_destroy(NULL);
}

/* The LRU against a model: an array ordered by recency. */
static void test_lru_model(void **st)
{
	(void)st;
	enum { CAP = 37, KEYS = 120, OPS = 200000 };
	struct kn_tail_lru *c = kn_tail_lru_create(CAP);
	assert_non_null(c);
	uint64_t model[CAP];   /* model[0] = most recent */
	uint16_t meta[KEYS];
	uint32_t n = 0;
	uint8_t id[16];
	for (uint32_t op = 0; op < OPS; op++) {
		uint64_t key = rnd() % KEYS;
		mkid(id, key);
		uint32_t pos = n;
		for (uint32_t i = 0; i < n; i++)
			if (model[i] == key)
				pos = i;
		if (rnd() & 1) {
			struct kn_tail_kept k = {.policy = (uint16_t)(op & 0x7fff)};
			kn_tail_lru_put(c, id, &k);
			meta[key] = k.policy;
			if (pos == n) {
				if (n < CAP)
					n++;
				pos = n - 1; /* the last (least recent) falls off when full */
			}
			memmove(model + 1, model, pos * sizeof *model);
			model[0] = key;
		} else {
			struct kn_tail_kept got;
			int hit = kn_tail_lru_get(c, id, &got);
			assert_int_equal(hit, pos < n);
			if (hit) {
				assert_int_equal(got.policy, meta[key]);
				memmove(model + 1, model, pos * sizeof *model);
				model[0] = key;
			}
		}
		assert_int_equal(kn_tail_lru_count(c), n);
	}
	kn_tail_lru_destroy(c);
}

static void test_fpring_basic(void **st)
{
	(void)st;
	struct kn_tail_fpring *r = kn_tail_fpring_create(4);
	assert_non_null(r);
	uint8_t id[16];
	for (uint64_t i = 1; i <= 4; i++) {
		mkid(id, i);
		kn_tail_fpring_put(r, id);
	}
	/* a duplicate is a no-op: 1 stays the oldest */
	mkid(id, 2);
	kn_tail_fpring_put(r, id);
	assert_int_equal(kn_tail_fpring_count(r), 4);
	mkid(id, 5);
	kn_tail_fpring_put(r, id);
	for (uint64_t i = 1; i <= 5; i++) {
		mkid(id, i);
		assert_int_equal(kn_tail_fpring_has(r, id), i != 1);
	}
	assert_true(kn_tail_fpring_bytes(r) > 0);
	kn_tail_fpring_destroy(r);
	kn_tail_fpring_destroy(NULL);
}

/* FIFO against a model; ids never inserted are never reported. */
static void test_fpring_model(void **st)
{
	(void)st;
	enum { CAP = 1000, N = 300000 };
	struct kn_tail_fpring *r = kn_tail_fpring_create(CAP);
	assert_non_null(r);
	uint8_t id[16];
	for (uint64_t i = 0; i < N; i++) {
		mkid(id, i);
		kn_tail_fpring_put(r, id);
		/* the last CAP ids are held, the one before them is gone */
		uint64_t probe = i >= CAP ? i - CAP + 1 + rnd() % CAP : rnd() % (i + 1);
		mkid(id, probe);
		assert_true(kn_tail_fpring_has(r, id));
		if (i >= CAP) {
			mkid(id, i - CAP);
			assert_false(kn_tail_fpring_has(r, id));
		}
		mkid(id, N + rnd() % 1000000); /* never inserted */
		assert_false(kn_tail_fpring_has(r, id));
	}
	assert_int_equal(kn_tail_fpring_count(r), CAP);
	kn_tail_fpring_destroy(r);
}

/* Ids that differ only in one half are told apart (no shortcut hashing of
 * one half, unlike OTel's cache keyed by the last 8 bytes). */
static void test_fpring_halves(void **st)
{
	(void)st;
	struct kn_tail_fpring *r = kn_tail_fpring_create(64);
	struct kn_tail_lru *c = kn_tail_lru_create(64);
	assert_non_null(r);
	assert_non_null(c);
	uint8_t a[16] = {0}, b[16] = {0};
	a[15] = b[15] = 1;   /* same high half, low halves differ */
	a[0] = 1;
	b[0] = 2;
	kn_tail_fpring_put(r, a);
	struct kn_tail_kept k = {0};
	kn_tail_lru_put(c, a, &k);
	assert_true(kn_tail_fpring_has(r, a));
	assert_false(kn_tail_fpring_has(r, b));
	assert_false(kn_tail_lru_get(c, b, NULL));
	memset(b, 0, 16);    /* same low half, high halves differ */
	b[0] = 1;
	b[14] = 1;
	assert_false(kn_tail_fpring_has(r, b));
	assert_false(kn_tail_lru_get(c, b, NULL));
	kn_tail_fpring_destroy(r);
	kn_tail_lru_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lru_basic),
		cmocka_unit_test(test_lru_model),
		cmocka_unit_test(test_fpring_basic),
		cmocka_unit_test(test_fpring_model),
		cmocka_unit_test(test_fpring_halves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
