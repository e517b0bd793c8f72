/* SPDX-License-Identifier: Apache-2.0
 * kn_chunk: allocation and release of chunks (see kn_chunk.h), with a small
 * process-wide pool of released chunk blocks.
 *
 * Why a pool: a receiver splits every request into a few chunks of tens to
 * hundreds of KiB and the shards release them soon after. With plain
 * malloc/free, glibc hands such blocks back to the kernel (heap trim above
 * 128 KiB at the top, munmap of mmap'ed blocks) and the next request faults
 * the same pages in again: in bench_wire that churn cost more than the whole
 * wire reader. A released block of a poolable size is parked in one of
 * KN_CHUNK_POOL_SLOTS slots instead and the next kn_chunk_alloc of a similar
 * size takes it back.
 *
 * Threads: chunks are allocated by receivers and released by shard workers
 * or exporters, so the pool is shared and lock-free: each slot is an atomic
 * pointer that owns the block it holds; a block moves in with a CAS from NULL
 * and out with an exchange, so no block can be taken twice (no ABA: nothing
 * is ever read through a pointer the taker does not own).
 *
 * Bounds and costs: at most KN_CHUNK_POOL_SLOTS blocks of at most
 * KN_CHUNK_POOL_MAX bytes sit idle (4 MiB today). Block sizes are rounded up
 * to 1/8 of their power of two (so similar requests share sizes) and a block
 * is reused only for a chunk that needs at least 2/3 of it. alloc and unref
 * each scan the slots once (a few atomic loads). The memory budget is charged
 * by the callers from nspans and cap, exactly as before; the rounding and the
 * idle pool are allocator overhead outside it, like malloc's own.
 *
 * Under AddressSanitizer a parked block is poisoned, so a use after the last
 * kn_chunk_unref is still reported. */
#include "kn_chunk.h"
#include "kn_budget.h"

#include <stdalign.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define KN_CHUNK_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define KN_CHUNK_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define KN_CHUNK_POISON(p, n) ((void)(p), (void)(n))
#define KN_CHUNK_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define KN_CHUNK_POOL_SLOTS 16
#define KN_CHUNK_POOL_MIN (16u << 10)   /* smaller blocks: malloc handles them well */
#define KN_CHUNK_POOL_MAX (256u << 10)  /* a W1 request whole is ~250 KiB */

/* Precedes every chunk: the usable size of its block (bytes after the head). */
union kn_chunk_head {
	size_t size;
	max_align_t align;
};

static _Atomic(union kn_chunk_head *) kn_chunk_pool[KN_CHUNK_POOL_SLOTS];

/* Rounds a poolable size up to 1/8 of its power of two. */
static size_t kn_chunk_round(size_t n)
{
	if (n < KN_CHUNK_POOL_MIN || n > KN_CHUNK_POOL_MAX)
		return n;
	size_t g = KN_CHUNK_POOL_MIN / 8;
	while (g * 16 <= n)
		g *= 2;
	return (n + g - 1) & ~(g - 1);
}

/* A parked block of at least need bytes (and not much more), or NULL. */
static union kn_chunk_head *kn_chunk_pool_take(size_t need)
{
	if (need < KN_CHUNK_POOL_MIN || need > KN_CHUNK_POOL_MAX)
		return NULL;
	for (int i = 0; i < KN_CHUNK_POOL_SLOTS; i++) {
		union kn_chunk_head *h = atomic_load_explicit(&kn_chunk_pool[i], memory_order_relaxed);
		if (!h)
			continue;
		h = atomic_exchange_explicit(&kn_chunk_pool[i], NULL, memory_order_acquire);
		if (!h)
			continue;
		if (h->size >= need && h->size - need <= h->size / 3) {
			KN_CHUNK_UNPOISON(h + 1, h->size);
			return h;
		}
		/* not for this size: park it again, or let it go */
		union kn_chunk_head *empty = NULL;
		if (!atomic_compare_exchange_strong_explicit(&kn_chunk_pool[i], &empty, h,
							     memory_order_release, memory_order_relaxed))
			free(h);
	}
	return NULL;
}

/* Parks h in a free slot; 0 when the pool is full (the caller frees it). */
static int kn_chunk_pool_put(union kn_chunk_head *h)
{
	if (h->size < KN_CHUNK_POOL_MIN || h->size > KN_CHUNK_POOL_MAX)
		return 0;
	KN_CHUNK_POISON(h + 1, h->size);
	for (int i = 0; i < KN_CHUNK_POOL_SLOTS; i++) {
		union kn_chunk_head *empty = NULL;
		if (atomic_load_explicit(&kn_chunk_pool[i], memory_order_relaxed))
			continue;
		if (atomic_compare_exchange_strong_explicit(&kn_chunk_pool[i], &empty, h,
							    memory_order_release, memory_order_relaxed))
			return 1;
	}
	KN_CHUNK_UNPOISON(h + 1, h->size);
	return 0;
}

struct kn_chunk *kn_chunk_alloc(uint32_t nspans, uint32_t cap)
{
	size_t hdrs = (size_t)nspans * sizeof(struct kn_span_hdr);
	size_t need = sizeof(struct kn_chunk) + hdrs + cap;
	union kn_chunk_head *h = kn_chunk_pool_take(need);
	if (!h) {
		size_t size = kn_chunk_round(need);
		h = malloc(sizeof *h + size);
		if (!h)
			return NULL;
		h->size = size;
	}
	struct kn_chunk *c = (struct kn_chunk *)(h + 1);
	atomic_init(&c->refs, 1);
	c->shard = 0;
	c->source = 0;
	c->nspans = nspans;
	c->len = 0;
	c->cap = cap;
	c->accepted_ns = 0;
	c->charged = 0;
	c->ctx.traceparent[0] = '\0';
	c->ctx.tracestate[0] = '\0';
	c->spans = (struct kn_span_hdr *)(c + 1);
	c->data = (uint8_t *)c->spans + hdrs;
	return c;
}

void kn_chunk_unref(struct kn_chunk *c)
{
	if (!c)
		return;
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (c->charged)
		kn_budget_release(c->charged);
	union kn_chunk_head *h = (union kn_chunk_head *)c - 1;
	if (!kn_chunk_pool_put(h))
		free(h);
}
