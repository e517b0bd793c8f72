/* SPDX-License-Identifier: Apache-2.0
 * kn_hll: HyperLogLog distinct counter for the sink's "distinct traces".
 *
 * 2^12 one-byte registers (4 KiB, standard error ~1.6%), fixed size, no
 * allocation. One writer per counter (registers are relaxed atomics so a
 * /stats reader on another thread may merge them while the writer runs). */
#ifndef KN_HLL_H
#define KN_HLL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define KN_HLL_P 12
#define KN_HLL_M (1u << KN_HLL_P)

struct kn_hll {
	_Atomic uint8_t reg[KN_HLL_M];
};

void kn_hll_init(struct kn_hll *h);
/* A well-mixed 64-bit hash of a trace id (16 bytes). */
uint64_t kn_hll_hash16(const uint8_t id[16]);
void kn_hll_add(struct kn_hll *h, uint64_t hash);
/* dst = max(dst, src) per register. */
void kn_hll_merge(struct kn_hll *dst, const struct kn_hll *src);
double kn_hll_estimate(const struct kn_hll *h);

#endif
