/* SPDX-License-Identifier: Apache-2.0
 * kn_sli_join: the per-shard memory of start spans for local joins: (trace
 * id, SLI) -> earliest start time, kept `join_ttl` (clock time) after it was
 * last seen. A trace always lands on the same shard, so a shard's map sees
 * every start span of its traces and needs no lock.
 *
 * Layout: a power-of-two array of fixed slots, linear probing over a window
 * of KN_SLI_JOIN_PROBE slots; an expired slot is free; when the window has no
 * free slot the entry expiring first is evicted (counted). Memory: slots *
 * sizeof(slot) (40 bytes), allocated once. */
#include <stdlib.h>

#include "kn_sli_int.h"

#define KN_SLI_JOIN_PROBE 8

static uint32_t slot_of(const uint8_t id[16], uint32_t sli)
{
	uint64_t h;
	memcpy(&h, id + 8, 8);
	h ^= (uint64_t)sli * 0x9e3779b97f4a7c15ull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (uint32_t)h;
}

int kn_sli_join_init(struct kn_sli_join *j, uint64_t slots, uint64_t ttl_ns)
{
	uint64_t n = 16;
	while (n < slots && n < (1ull << 28))
		n <<= 1;
	memset(j, 0, sizeof *j);
	j->slots = calloc(n, sizeof *j->slots);
	if (!j->slots)
		return -1;
	j->mask = (uint32_t)(n - 1);
	j->ttl_ns = ttl_ns;
	return 0;
}

void kn_sli_join_free(struct kn_sli_join *j)
{
	if (!j)
		return;
	free(j->slots);
	j->slots = NULL;
}

static int live(const struct kn_sli_join_slot *s, uint64_t now_ns)
{
	return s->sli != 0 && s->expires_ns > now_ns;
}

int kn_sli_join_put(struct kn_sli_join *j, const uint8_t trace_id[16], uint32_t sli,
		    uint64_t start_ns, uint64_t now_ns)
{
	uint32_t h = slot_of(trace_id, sli);
	struct kn_sli_join_slot *free_slot = NULL, *oldest = NULL;
	for (uint32_t k = 0; k < KN_SLI_JOIN_PROBE; k++) {
		struct kn_sli_join_slot *s = &j->slots[(h + k) & j->mask];
		if (!live(s, now_ns)) {
			if (!free_slot)
				free_slot = s;
			continue;
		}
		if (s->sli == sli + 1 && memcmp(s->trace_id, trace_id, 16) == 0) {
			if (start_ns < s->start_ns)
				s->start_ns = start_ns;
			s->expires_ns = now_ns + j->ttl_ns;
			return 0;
		}
		if (!oldest || s->expires_ns < oldest->expires_ns)
			oldest = s;
	}
	int evicted = 0;
	if (!free_slot) {
		free_slot = oldest;
		evicted = 1;
		j->evicted++;
	}
	memcpy(free_slot->trace_id, trace_id, 16);
	free_slot->sli = sli + 1;
	free_slot->start_ns = start_ns;
	free_slot->expires_ns = now_ns + j->ttl_ns;
	return evicted;
}

int kn_sli_join_get(const struct kn_sli_join *j, const uint8_t trace_id[16], uint32_t sli,
		    uint64_t now_ns, uint64_t *start_ns)
{
	uint32_t h = slot_of(trace_id, sli);
	for (uint32_t k = 0; k < KN_SLI_JOIN_PROBE; k++) {
		const struct kn_sli_join_slot *s = &j->slots[(h + k) & j->mask];
		if (live(s, now_ns) && s->sli == sli + 1 && memcmp(s->trace_id, trace_id, 16) == 0) {
			*start_ns = s->start_ns;
			return 1;
		}
	}
	return 0;
}
