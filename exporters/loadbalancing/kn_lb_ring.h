/* SPDX-License-Identifier: Apache-2.0
 * kn_lb_ring: the load-balancing exporter's consistent-hash ring, written
 * down exactly so that any collector (or another implementation) given the
 * same endpoint list routes every key to the same endpoint.
 *
 * Hash (kn_lb_hash): 64-bit FNV-1a over the bytes (offset basis
 * 0xcbf29ce484222325, prime 0x100000001b3; per byte: h ^= byte; h *= prime),
 * then MurmurHash3's 64-bit finaliser to spread FNV's weak low bits:
 *   h ^= h >> 33; h *= 0xff51afd7ed558ccd; h ^= h >> 33;
 *   h *= 0xc4ceb9fe1a85ec53; h ^= h >> 33.
 * Check value: kn_lb_hash("127.0.0.1:4317#0") = 0x1857004cdb9e27b8 (pinned in
 * tests/unit/test_exporter_loadbalancing.c).
 *
 * Ring: the endpoint strings ("host:port", exactly as resolved: "10.0.0.2:4317",
 * "[fd00::2]:4317") are sorted bytewise (strcmp) and deduplicated; endpoint
 * e gets KN_LB_POINTS points, point i at kn_lb_hash of the ASCII text
 * "<e>#<i>" (i in decimal, no padding: "10.0.0.2:4317#0" .. "#255"). Points
 * are sorted by hash, equal hashes by endpoint position in the sorted list.
 * A key goes to the endpoint of the first point whose hash is >= the key's
 * hash, wrapping to the first point.
 * Keys: routing_key traceID hashes the 16 raw trace id bytes; routing_key
 * service hashes the UTF-8 bytes of the resource's service.name (the empty
 * string when absent).
 *
 * With 256 points per endpoint each endpoint's share is within a few percent
 * of 1/N, and adding or removing one of N endpoints moves about 1/N of the
 * keys (only to, or only from, that endpoint).
 *
 * Ownership and threads: a ring is immutable once built; readers on any
 * thread may look up concurrently. `user` is a per-endpoint slot the owner
 * fills before publishing the ring (the exporter keeps its backends there).
 * Costs: build O(N * 256 log), lookup a binary search over N * 256 points. */
#ifndef KN_LB_RING_H
#define KN_LB_RING_H

#include <stddef.h>
#include <stdint.h>

#include "../../collector/core/kn_err.h"

#define KN_LB_POINTS 256

struct kn_lb_point {
	uint64_t hash;
	uint32_t ep;        /* index into endpoints[] */
};

struct kn_lb_ring {
	uint32_t n;         /* endpoints, >= 1 */
	char **endpoints;   /* sorted, unique, owned */
	void **user;        /* n slots, NULL-initialised, not owned */
	uint32_t npoints;
	struct kn_lb_point *points;
};

uint64_t kn_lb_hash(const void *p, size_t n);

/* Builds a ring from n endpoint strings (copied, sorted, duplicates removed).
 * NULL on OOM or when n is 0 (err says which). */
struct kn_lb_ring *kn_lb_ring_build(const char *const *endpoints, size_t n, struct kn_err *err);
void kn_lb_ring_free(struct kn_lb_ring *r);

/* The endpoint index for a key hash. */
uint32_t kn_lb_ring_lookup(const struct kn_lb_ring *r, uint64_t key_hash);
/* Index of an endpoint string, or -1. */
int kn_lb_ring_find(const struct kn_lb_ring *r, const char *endpoint);
/* 1 when both rings hold the same endpoint set (NULL = empty). */
int kn_lb_ring_same(const struct kn_lb_ring *a, const struct kn_lb_ring *b);

#endif
