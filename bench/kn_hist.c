/* SPDX-License-Identifier: Apache-2.0
 * kn_hist: log-linear histogram (see kn_hist.h). Bucket i < 32 holds value i;
 * above, for v with highest set bit e (>= 5), the bucket is
 * 32 + (e - 5) * 32 + the 5 bits below bit e. */
#include "kn_hist.h"

#include <string.h>

void kn_hist_init(struct kn_hist *h)
{
	for (uint32_t i = 0; i < KN_HIST_BUCKETS; i++)
		atomic_init(&h->b[i], 0);
	atomic_init(&h->n, 0);
	atomic_init(&h->max, 0);
	atomic_init(&h->sum, 0);
}

uint32_t kn_hist_bucket(uint64_t v)
{
	if (v < KN_HIST_SUB)
		return (uint32_t)v;
	uint32_t e = 63u - (uint32_t)__builtin_clzll(v);
	uint32_t sub = (uint32_t)(v >> (e - KN_HIST_SUB_BITS)) & (KN_HIST_SUB - 1);
	return KN_HIST_SUB + (e - KN_HIST_SUB_BITS) * KN_HIST_SUB + sub;
}

uint64_t kn_hist_bucket_low(uint32_t i)
{
	if (i < KN_HIST_SUB)
		return i;
	uint32_t e = (i - KN_HIST_SUB) / KN_HIST_SUB + KN_HIST_SUB_BITS;
	uint64_t sub = (i - KN_HIST_SUB) % KN_HIST_SUB;
	return (1ull << e) | (sub << (e - KN_HIST_SUB_BITS));
}

void kn_hist_add(struct kn_hist *h, uint64_t v)
{
	atomic_fetch_add_explicit(&h->b[kn_hist_bucket(v)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->n, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
	if (v > atomic_load_explicit(&h->max, memory_order_relaxed))
		atomic_store_explicit(&h->max, v, memory_order_relaxed);
}

void kn_hist_merge(struct kn_hist *dst, const struct kn_hist *src)
{
	for (uint32_t i = 0; i < KN_HIST_BUCKETS; i++) {
		uint64_t c = atomic_load_explicit(&src->b[i], memory_order_relaxed);
		if (c)
			atomic_fetch_add_explicit(&dst->b[i], c, memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&dst->n, atomic_load_explicit(&src->n, memory_order_relaxed),
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&dst->sum, atomic_load_explicit(&src->sum, memory_order_relaxed),
				  memory_order_relaxed);
	uint64_t m = atomic_load_explicit(&src->max, memory_order_relaxed);
	if (m > atomic_load_explicit(&dst->max, memory_order_relaxed))
		atomic_store_explicit(&dst->max, m, memory_order_relaxed);
}

uint64_t kn_hist_count(const struct kn_hist *h)
{
	return atomic_load_explicit(&h->n, memory_order_relaxed);
}

uint64_t kn_hist_quantile(const struct kn_hist *h, double q)
{
	/* count from the buckets themselves: n may run ahead of them mid-write */
	uint64_t total = 0;
	for (uint32_t i = 0; i < KN_HIST_BUCKETS; i++)
		total += atomic_load_explicit(&h->b[i], memory_order_relaxed);
	if (total == 0)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	uint64_t rank = (uint64_t)(q * (double)total);
	if (rank >= total)
		rank = total - 1;
	uint64_t seen = 0;
	uint64_t max = atomic_load_explicit(&h->max, memory_order_relaxed);
	for (uint32_t i = 0; i < KN_HIST_BUCKETS; i++) {
		seen += atomic_load_explicit(&h->b[i], memory_order_relaxed);
		if (seen > rank) {
			uint64_t lo = kn_hist_bucket_low(i);
			uint64_t hi = i + 1 < KN_HIST_BUCKETS ? kn_hist_bucket_low(i + 1) : UINT64_MAX;
			uint64_t mid = lo + (hi - lo) / 2;
			return mid > max ? max : mid;
		}
	}
	return max;
}
