/* SPDX-License-Identifier: Apache-2.0
 * kn_hll: HyperLogLog (Flajolet et al. 2007) with the small-range (linear
 * counting) correction; no large-range correction is needed with 64-bit
 * hashes. */
#include "kn_hll.h"

#include <math.h>
#include <string.h>

void kn_hll_init(struct kn_hll *h)
{
	for (uint32_t i = 0; i < KN_HLL_M; i++)
		atomic_init(&h->reg[i], 0);
}

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t kn_hll_hash16(const uint8_t id[16])
{
	uint64_t a, b;
	memcpy(&a, id, 8);
	memcpy(&b, id + 8, 8);
	return mix64(a ^ mix64(b + 0x9e3779b97f4a7c15ull));
}

void kn_hll_add(struct kn_hll *h, uint64_t hash)
{
	uint32_t idx = (uint32_t)(hash >> (64 - KN_HLL_P));
	uint64_t rest = hash << KN_HLL_P;
	uint8_t rank = rest ? (uint8_t)(__builtin_clzll(rest) + 1) : (uint8_t)(64 - KN_HLL_P + 1);
	if (rank > atomic_load_explicit(&h->reg[idx], memory_order_relaxed))
		atomic_store_explicit(&h->reg[idx], rank, memory_order_relaxed);
}

void kn_hll_merge(struct kn_hll *dst, const struct kn_hll *src)
{
	for (uint32_t i = 0; i < KN_HLL_M; i++) {
		uint8_t s = atomic_load_explicit(&src->reg[i], memory_order_relaxed);
		if (s > atomic_load_explicit(&dst->reg[i], memory_order_relaxed))
			atomic_store_explicit(&dst->reg[i], s, memory_order_relaxed);
	}
}

double kn_hll_estimate(const struct kn_hll *h)
{
	const double m = KN_HLL_M;
	double sum = 0;
	uint32_t zeros = 0;
	for (uint32_t i = 0; i < KN_HLL_M; i++) {
		uint8_t r = atomic_load_explicit(&h->reg[i], memory_order_relaxed);
		sum += ldexp(1.0, -(int)r);
		zeros += r == 0;
	}
	double e = (0.7213 / (1.0 + 1.079 / m)) * m * m / sum;
	if (e <= 2.5 * m && zeros)
		e = m * log(m / zeros);
	return e;
}
