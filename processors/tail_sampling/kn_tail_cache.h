/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_cache: the tail sampler's decision caches, one pair per shard,
 * so that spans arriving after their trace was decided follow the decision
 * already made (decision_cache.sampled_cache_size / non_sampled_cache_size,
 * counts of trace ids as in the OpenTelemetry Collector).
 *
 * Sampled ids: a least-recently-used cache of full 16-byte ids (exact: a
 * false hit would forward an unrelated trace's spans), kept as an array of
 * entries on an intrusive doubly linked recency list plus an open-addressing
 * (linear probing, backward-shift deletion) index of u32 entry numbers at
 * load <= 1/2. An entry also remembers how the trace was kept (the winning
 * policy's number in the shard's name table, the consistent-sampling
 * threshold), so late spans get the same rewrite as the trace. A hit
 * refreshes recency, as OTel's LRU does. ~48 bytes per id.
 *
 * Not-sampled ids: most traces are dropped, so this side is the large one
 * and holds only a 64-bit fingerprint per id (kn_tail_id_hash) in a FIFO
 * ring, with the same kind of index over ring positions. ~16 bytes per id.
 * A fingerprint match is taken as "this id was dropped": for a new trace id
 * that is wrong only if its 64-bit hash equals one of the N stored ones,
 * probability about N / 2^64 per new trace (1e6 stored ids: 5e-14), since
 * the hash spreads random ids uniformly and never maps ids differing in one
 * half to the same value (see kn_tail_hash.h). A false match would drop the
 * new trace's spans; it is counted like any late span.
 *
 * Costs: O(1) expected per lookup and insert, no allocation after create.
 * Threads: owned by one shard worker; no locks. */
#ifndef KN_TAIL_CACHE_H
#define KN_TAIL_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* How a sampled trace was kept. */
struct kn_tail_kept {
	uint64_t threshold;      /* ot=th threshold, valid when has_threshold */
	uint16_t policy;         /* shard's policy-name number; UINT16_MAX = none */
	uint8_t has_threshold;
};

struct kn_tail_lru;

/* cap >= 1 ids. NULL on OOM. */
struct kn_tail_lru *kn_tail_lru_create(uint32_t cap);
void kn_tail_lru_destroy(struct kn_tail_lru *c);
/* Inserts or refreshes id (the least recently used id leaves when full). */
void kn_tail_lru_put(struct kn_tail_lru *c, const uint8_t id[16], const struct kn_tail_kept *k);
/* 1 and *k filled (k may be NULL) when id is cached, refreshing it; 0 otherwise. */
int kn_tail_lru_get(struct kn_tail_lru *c, const uint8_t id[16], struct kn_tail_kept *k);
uint32_t kn_tail_lru_count(const struct kn_tail_lru *c);
size_t kn_tail_lru_bytes(const struct kn_tail_lru *c);

struct kn_tail_fpring;

/* cap >= 1 ids. NULL on OOM. */
struct kn_tail_fpring *kn_tail_fpring_create(uint32_t cap);
void kn_tail_fpring_destroy(struct kn_tail_fpring *r);
/* Remembers id (the oldest one leaves when full); a no-op when present. */
void kn_tail_fpring_put(struct kn_tail_fpring *r, const uint8_t id[16]);
/* 1 when id's fingerprint is held. */
int kn_tail_fpring_has(const struct kn_tail_fpring *r, const uint8_t id[16]);
uint32_t kn_tail_fpring_count(const struct kn_tail_fpring *r);
size_t kn_tail_fpring_bytes(const struct kn_tail_fpring *r);

#endif
