/* SPDX-License-Identifier: Apache-2.0
 * kn_chunk: allocation and release of chunks (see kn_chunk.h), with a small
 * process-wide pool of released chunk blocks.
 *
 * Why a pool: a receiver splits every request into a few chunks of tens to
 * hundreds of KiB, every processor that edits a chunk makes a new one of
 * about the same size, and the shards and exporters release them soon
 * after. With plain malloc/free, glibc hands such blocks back to the kernel
 * (heap trim above 128 KiB at the top, munmap of mmap'ed blocks: kansatsu
 * fixes the mmap threshold at 128 KiB to bound RSS, see main.c) and the next
 * chunk faults the same pages in again, plus an munmap and its TLB flush per
 * block: in bench_wire that churn cost more than the whole wire reader, and
 * in the agent scenario on one shard (four chunks per request) it was 17% of
 * the CPU in a profile.
 *
 * Size classes: a poolable block's size is rounded up to 1/8 of its power of
 * two (8 classes per octave, 16 KiB to 1 MiB), and a released block is parked
 * in one of KN_CHUNK_POOL_PER_CLASS slots of its own class; an allocation
 * looks in its class and the next three up. A chunk that needs a block of
 * one size therefore never scans or evicts blocks of a much smaller one (the
 * earlier 16 shared slots filled with the half-size blocks a sampler makes
 * and the full-size ones went back to the kernel every time).
 *
 * Threads: chunks are allocated by receivers and processors and released by
 * shard workers or exporters, so the pool is shared and lock-free: each slot
 * is an atomic pointer that owns the block it holds; a block moves in with a
 * CAS from NULL and out with an exchange, so no block can be taken twice (no
 * ABA: nothing is ever read through a pointer the taker does not own).
 *
 * Bounds and costs: at most KN_CHUNK_POOL_BYTES (8 MiB) sit idle in all,
 * counted before a block is parked (so racing releases cannot overshoot) and
 * uncounted when it leaves. alloc scans at most four classes' slots, unref
 * one class's (a few atomic loads each). The memory budget is charged by the
 * callers from nspans and cap, exactly as before; the rounding and the idle
 * pool are allocator overhead outside it, like malloc's own (the budget's
 * headroom covers them, kn_budget.h).
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

#define KN_CHUNK_POOL_MIN_LOG 14        /* 16 KiB: smaller blocks, malloc handles them well */
#define KN_CHUNK_POOL_MAX_LOG 20        /* 1 MiB */
#define KN_CHUNK_POOL_MIN ((size_t)1 << KN_CHUNK_POOL_MIN_LOG)
#define KN_CHUNK_POOL_MAX ((size_t)1 << KN_CHUNK_POOL_MAX_LOG)
#define KN_CHUNK_POOL_CLASSES (8 * (KN_CHUNK_POOL_MAX_LOG - KN_CHUNK_POOL_MIN_LOG) + 1)
#define KN_CHUNK_POOL_PER_CLASS 32      /* bursts: an exporter releases a batch of chunks at once */
#define KN_CHUNK_POOL_BYTES ((size_t)8 << 20)
#define KN_CHUNK_POOL_REACH 3           /* classes above its own an allocation may take */

/* Precedes every chunk: the usable size of its block (bytes after the head). */
union kn_chunk_head {
	size_t size;
	max_align_t align;
};

static _Atomic(union kn_chunk_head *) kn_chunk_pool[KN_CHUNK_POOL_CLASSES][KN_CHUNK_POOL_PER_CLASS];
static atomic_size_t kn_chunk_pool_bytes;

static int kn_chunk_poolable(size_t n)
{
	return n >= KN_CHUNK_POOL_MIN && n <= KN_CHUNK_POOL_MAX;
}

/* Rounds a poolable size up to 1/8 of its power of two. */
static size_t kn_chunk_round(size_t n)
{
	if (!kn_chunk_poolable(n))
		return n;
	size_t g = KN_CHUNK_POOL_MIN / 8;
	while (g * 16 <= n)
		g *= 2;
	return (n + g - 1) & ~(g - 1);
}

/* The class of a rounded poolable size: 8 per octave from 16 KiB; 1 MiB is
 * the last. */
static unsigned kn_chunk_class(size_t rounded)
{
	unsigned lg = 63u - (unsigned)__builtin_clzll((unsigned long long)rounded);
	size_t g = (size_t)1 << (lg - 3);
	return 8 * (lg - KN_CHUNK_POOL_MIN_LOG) + (unsigned)(rounded / g) - 8;
}

static union kn_chunk_head *kn_chunk_pool_take_class(unsigned cls)
{
	for (int i = 0; i < KN_CHUNK_POOL_PER_CLASS; i++) {
		_Atomic(union kn_chunk_head *) *slot = &kn_chunk_pool[cls][i];
		if (!atomic_load_explicit(slot, memory_order_relaxed))
			continue;
		union kn_chunk_head *h = atomic_exchange_explicit(slot, NULL, memory_order_acquire);
		if (!h)
			continue;
		atomic_fetch_sub_explicit(&kn_chunk_pool_bytes, h->size, memory_order_relaxed);
		KN_CHUNK_UNPOISON(h + 1, h->size);
		return h;
	}
	return NULL;
}

/* A parked block for a rounded size: of its class, or of one of the next
 * KN_CHUNK_POOL_REACH classes up (at most ~42% larger: the sizes of one
 * flow of chunks straddle class bounds, an edit makes its output a little
 * smaller or larger than its input, and a class that only receives would
 * otherwise fill while its neighbour mallocs). */
static union kn_chunk_head *kn_chunk_pool_take(size_t rounded)
{
	if (!kn_chunk_poolable(rounded))
		return NULL;
	unsigned cls = kn_chunk_class(rounded);
	for (unsigned k = cls; k <= cls + KN_CHUNK_POOL_REACH && k < KN_CHUNK_POOL_CLASSES; k++) {
		union kn_chunk_head *h = kn_chunk_pool_take_class(k);
		if (h)
			return h;
	}
	return NULL;
}

/* Parks h in a free slot of its class; 0 when it cannot (the caller frees). */
static int kn_chunk_pool_put(union kn_chunk_head *h)
{
	if (!kn_chunk_poolable(h->size))
		return 0;
	if (atomic_fetch_add_explicit(&kn_chunk_pool_bytes, h->size, memory_order_relaxed) + h->size >
	    KN_CHUNK_POOL_BYTES) {
		atomic_fetch_sub_explicit(&kn_chunk_pool_bytes, h->size, memory_order_relaxed);
		return 0;
	}
	unsigned cls = kn_chunk_class(h->size);
	KN_CHUNK_POISON(h + 1, h->size);
	for (int i = 0; i < KN_CHUNK_POOL_PER_CLASS; i++) {
		_Atomic(union kn_chunk_head *) *slot = &kn_chunk_pool[cls][i];
		union kn_chunk_head *empty = NULL;
		if (atomic_load_explicit(slot, memory_order_relaxed))
			continue;
		if (atomic_compare_exchange_strong_explicit(slot, &empty, h, memory_order_release,
							    memory_order_relaxed))
			return 1;
	}
	atomic_fetch_sub_explicit(&kn_chunk_pool_bytes, h->size, memory_order_relaxed);
	KN_CHUNK_UNPOISON(h + 1, h->size);
	return 0;
}

struct kn_chunk *kn_chunk_alloc(uint32_t nspans, uint32_t cap)
{
	size_t hdrs = (size_t)nspans * sizeof(struct kn_span_hdr);
	size_t need = sizeof(struct kn_chunk) + hdrs + cap;
	size_t size = kn_chunk_round(need);
	union kn_chunk_head *h = kn_chunk_pool_take(size);
	if (!h) {
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
