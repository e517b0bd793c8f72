/* SPDX-License-Identifier: Apache-2.0
 * kn_grow: room for one more element in a grow-only array, the one
 * doubling rule every per-thread scratch array uses (wire index, tail scan,
 * frame, emission and journey rewrite sizes). Header only. */
#ifndef KN_GROW_H
#define KN_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Makes element n of *arr (*cap elements of elsz bytes) exist: when n is
 * past the end the array doubles (64 elements at first; never shrinks).
 * 0, or -1 when out of memory or past 2^32-1 elements (*arr unchanged). */
static inline int kn_grow(void **arr, uint32_t *cap, uint32_t n, size_t elsz)
{
	if (n < *cap)
		return 0;
	uint64_t ncap = *cap ? (uint64_t)*cap * 2 : 64;
	if (ncap > UINT32_MAX)
		return -1;
	void *p = realloc(*arr, (size_t)ncap * elsz);
	if (!p)
		return -1;
	*arr = p;
	*cap = (uint32_t)ncap;
	return 0;
}

#endif
