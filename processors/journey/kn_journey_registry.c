/* SPDX-License-Identifier: Apache-2.0
 * kn_journey_registry: per-shard tables of journey entries, one writer
 * (the owning shard) and any number of readers, no locks (see
 * kn_journey_registry.h).
 *
 * A slot is a sequence counter followed by the key (trace id, two words),
 * the put time, and the head copied as 64-bit words. Every word is an
 * _Atomic uint64_t accessed with relaxed loads and stores, so a reader that
 * races the writer reads stale or mixed words, never undefined behaviour;
 * the counter tells it to retry (the C11 seqlock: writer stores seq odd,
 * release fence, the words, then seq even with release; reader loads seq
 * with acquire, the words, acquire fence, seq again). A reader retries a slot
 * at most a bounded number of times, then reports "not found" (never blocks;
 * the writer holds a slot for a few hundred nanoseconds).
 *
 * Placement: a probe window of WINDOW consecutive slots from the id's hash.
 * put takes the slot holding the same id, else a free or expired one, else
 * evicts the one put earliest (returns 1; counted). get scans the window.
 * No deletion, so no tombstones and no probe chains beyond the window.
 *
 * Costs: put writes one slot (~630 bytes); get compares up to WINDOW keys
 * and copies one head. Memory: nshards * slots * sizeof(struct slot),
 * calloc'd (untouched pages stay uncommitted until written). */
#include "kn_journey_registry.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../tail_sampling/kn_tail_hash.h"

#define WINDOW 8
#define READ_TRIES 64
#define HEAD_WORDS ((sizeof(struct kn_journey_head) + 7) / 8)

struct slot {
	_Atomic uint32_t seq;               /* odd while being written */
	uint32_t pad;
	_Atomic uint64_t id[2];             /* trace id; both 0 = empty */
	_Atomic uint64_t put_ns;            /* 0 = empty */
	_Atomic uint64_t head[HEAD_WORDS];
};

struct table {
	struct slot *slots;
	_Atomic uint64_t evictions;
	_Atomic uint64_t puts;
};

struct kn_journey_registry {
	uint32_t nshards;
	uint32_t mask;                      /* slots per shard - 1 */
	uint64_t ttl_ns;
	struct table *t;                    /* [nshards] */
};

static void id_words(const uint8_t id[16], uint64_t w[2])
{
	memcpy(&w[0], id, 8);
	memcpy(&w[1], id + 8, 8);
}

struct kn_journey_registry *kn_journey_registry_create(uint32_t nshards, uint32_t slots_per_shard,
						       uint64_t ttl_ns, struct kn_err *err)
{
	struct kn_journey_registry *r = NULL;
	if (nshards == 0 || slots_per_shard == 0 || slots_per_shard > (1u << 28)) {
		kn_errf(err, "journey registry: need 1..2^28 slots per shard and at least one shard "
			     "(got %u shards, %u slots)", nshards, slots_per_shard);
		goto fail;
	}
	uint32_t n = WINDOW;
	while (n < slots_per_shard)
		n <<= 1;
	r = calloc(1, sizeof *r);
	if (!r)
		goto oom;
	r->nshards = nshards;
	r->mask = n - 1;
	r->ttl_ns = ttl_ns;
	r->t = calloc(nshards, sizeof *r->t);
	if (!r->t)
		goto oom;
	for (uint32_t s = 0; s < nshards; s++) {
		r->t[s].slots = calloc(n, sizeof(struct slot));
		if (!r->t[s].slots)
			goto oom;
	}
	return r;
oom:
	kn_errf(err, "journey registry: out of memory for %u shards x %u slots of %zu bytes",
		nshards, slots_per_shard, sizeof(struct slot));
fail:
	kn_journey_registry_destroy(r);
	return NULL;
}

void kn_journey_registry_destroy(struct kn_journey_registry *r)
{
	if (!r)
		return;
	if (r->t)
		for (uint32_t s = 0; s < r->nshards; s++)
			free(r->t[s].slots);
	free(r->t);
	free(r);
}

static uint64_t ld(const _Atomic uint64_t *w)
{
	return atomic_load_explicit(w, memory_order_relaxed);
}

int kn_journey_registry_put(struct kn_journey_registry *r, uint32_t shard,
			    const uint8_t trace_id[16], const struct kn_journey_head *h, uint64_t now_ns)
{
	if (!r || shard >= r->nshards)
		return 0;
	struct table *t = &r->t[shard];
	uint64_t key[2];
	id_words(trace_id, key);
	uint32_t home = (uint32_t)kn_tail_id_hash(trace_id) & r->mask;
	uint32_t pick = UINT32_MAX, oldest = home;
	uint64_t oldest_ns = UINT64_MAX;
	int evicted = 0;
	/* the only writer of this table: its own reads need no sequence check */
	for (uint32_t k = 0; k < WINDOW; k++) {
		uint32_t i = (home + k) & r->mask;
		struct slot *s = &t->slots[i];
		uint64_t put = ld(&s->put_ns);
		if (put && ld(&s->id[0]) == key[0] && ld(&s->id[1]) == key[1]) {
			pick = i;
			break;
		}
		if (pick == UINT32_MAX && (put == 0 || put + r->ttl_ns <= now_ns))
			pick = i;
		if (put < oldest_ns) {
			oldest_ns = put;
			oldest = i;
		}
	}
	if (pick == UINT32_MAX) {
		pick = oldest;
		evicted = 1;
		atomic_fetch_add_explicit(&t->evictions, 1, memory_order_relaxed);
	}
	uint64_t words[HEAD_WORDS] = {0};
	memcpy(words, h, sizeof *h);
	struct slot *s = &t->slots[pick];
	uint32_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
	atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&s->id[0], key[0], memory_order_relaxed);
	atomic_store_explicit(&s->id[1], key[1], memory_order_relaxed);
	atomic_store_explicit(&s->put_ns, now_ns ? now_ns : 1, memory_order_relaxed);
	for (size_t w = 0; w < HEAD_WORDS; w++)
		atomic_store_explicit(&s->head[w], words[w], memory_order_relaxed);
	atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
	atomic_fetch_add_explicit(&t->puts, 1, memory_order_relaxed);
	return evicted;
}

int kn_journey_registry_get(const struct kn_journey_registry *r, uint32_t shard_of_trace,
			    const uint8_t trace_id[16], uint64_t now_ns, struct kn_journey_head *out)
{
	if (!r || shard_of_trace >= r->nshards)
		return 0;
	const struct table *t = &r->t[shard_of_trace];
	uint64_t key[2];
	id_words(trace_id, key);
	uint32_t home = (uint32_t)kn_tail_id_hash(trace_id) & r->mask;
	uint64_t words[HEAD_WORDS];
	for (uint32_t k = 0; k < WINDOW; k++) {
		struct slot *s = &t->slots[(home + k) & r->mask];
		for (int tries = 0; tries < READ_TRIES; tries++) {
			uint32_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
			if (s1 & 1)
				continue;
			uint64_t id0 = ld(&s->id[0]), id1 = ld(&s->id[1]), put = ld(&s->put_ns);
			int match = put && id0 == key[0] && id1 == key[1];
			if (match)
				for (size_t w = 0; w < HEAD_WORDS; w++)
					words[w] = ld(&s->head[w]);
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&s->seq, memory_order_relaxed) != s1)
				continue;
			if (!match)
				break;                 /* a consistent other key: next slot */
			if (put + r->ttl_ns <= now_ns)
				return 0;              /* expired */
			memcpy(out, words, sizeof *out);
			return 1;
		}
	}
	return 0;
}

uint64_t kn_journey_registry_evictions(const struct kn_journey_registry *r)
{
	uint64_t n = 0;
	if (r)
		for (uint32_t s = 0; s < r->nshards; s++)
			n += atomic_load_explicit(&r->t[s].evictions, memory_order_relaxed);
	return n;
}

uint64_t kn_journey_registry_puts(const struct kn_journey_registry *r)
{
	uint64_t n = 0;
	if (r)
		for (uint32_t s = 0; s < r->nshards; s++)
			n += atomic_load_explicit(&r->t[s].puts, memory_order_relaxed);
	return n;
}

size_t kn_journey_registry_bytes(const struct kn_journey_registry *r)
{
	return r ? (size_t)r->nshards * ((size_t)r->mask + 1) * sizeof(struct slot) : 0;
}

uint32_t kn_journey_registry_nshards(const struct kn_journey_registry *r)
{
	return r ? r->nshards : 0;
}
