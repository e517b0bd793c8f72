/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_hash: the 64-bit hash of a 16-byte trace id shared by the trace
 * store's table and the decision caches.
 *
 * Both little-endian halves count: the high half goes through the
 * splitmix64 finaliser, is added to the low half multiplied by an odd
 * constant, and the sum goes through the finaliser again. Every step is a
 * bijection of one half for a fixed other half, so two ids that differ in
 * one half only never collide, and for random ids the result is close to
 * uniform over 2^64 (this is what the not-sampled cache's 64-bit
 * fingerprints rely on). The constants differ from kn_shard_of's, so the
 * ids of one shard (equal in kn_shard_of's top bits) still spread over a
 * table indexed by this hash's low bits. Not a keyed hash: a sender can
 * craft colliding ids, but only for its own traces. Pure, no state. */
#ifndef KN_TAIL_HASH_H
#define KN_TAIL_HASH_H

#include <stdint.h>
#include <string.h>

static inline uint64_t kn_tail_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static inline uint64_t kn_tail_id_hash(const uint8_t id[16])
{
	uint64_t lo = 0, hi = 0;
	for (int i = 7; i >= 0; i--) {
		lo = (lo << 8) | id[i];
		hi = (hi << 8) | id[8 + i];
	}
	return kn_tail_mix64(lo * 0xd6e8feb86659fd93ull + kn_tail_mix64(hi ^ 0x2545f4914f6cdd1dull));
}

#endif
