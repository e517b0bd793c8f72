/* SPDX-License-Identifier: Apache-2.0
 * kn_hist: a log-linear latency histogram for the bench tools (loadgen's
 * request latency, the sink's end-to-end latency).
 *
 * Values are nanoseconds. Below 32 every value has its own bucket; above,
 * each power of two is cut into 32 equal buckets, so a quantile read from the
 * histogram is within ~3% of the true value, over the whole uint64 range, in
 * a fixed 15 KiB with no allocation. Counters are relaxed atomics: one
 * thread adds, any thread may read (a read taken while the writer runs is a
 * consistent-enough snapshot for a progress line). Merging sums buckets. */
#ifndef KN_HIST_H
#define KN_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define KN_HIST_SUB_BITS 5
#define KN_HIST_SUB (1u << KN_HIST_SUB_BITS)
#define KN_HIST_BUCKETS (KN_HIST_SUB + (64 - KN_HIST_SUB_BITS) * KN_HIST_SUB)

struct kn_hist {
	_Atomic uint64_t b[KN_HIST_BUCKETS];
	_Atomic uint64_t n;     /* samples */
	_Atomic uint64_t max;   /* largest sample */
	_Atomic uint64_t sum;   /* of samples, wraps only past 584 years */
};

void kn_hist_init(struct kn_hist *h);
/* One writer per histogram. */
void kn_hist_add(struct kn_hist *h, uint64_t v);
/* dst += src (dst's single writer calls it, or nobody writes dst). */
void kn_hist_merge(struct kn_hist *dst, const struct kn_hist *src);
uint64_t kn_hist_count(const struct kn_hist *h);
/* The q-quantile (0 <= q <= 1) as the middle of its bucket, capped at the
 * max seen; 0 when empty. */
uint64_t kn_hist_quantile(const struct kn_hist *h, double q);
/* Bucket index of v and the lowest value of bucket i (exposed for tests). */
uint32_t kn_hist_bucket(uint64_t v);
uint64_t kn_hist_bucket_low(uint32_t i);

#endif
