/* SPDX-License-Identifier: Apache-2.0
 * kn_budget: see kn_budget.h. A CAS loop keeps `used` from ever exceeding the
 * limit, so concurrent receivers cannot overshoot together. The limit is an
 * atomic too because the runtime lowers it once everything has started and
 * the process's base size is known (receivers may already be charging). */
#include "kn_budget.h"
#include "kn_drain.h"
#include "kn_clock.h"

#include <fcntl.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_size_t used;
static atomic_size_t limit;
static atomic_size_t base, headroom; /* kn_budget_apply; read by kn_budget_trim */
static atomic_size_t req_used, req_limit; /* request bodies (kn_budget_req_*) */
static _Atomic int64_t held;              /* kn_budget_held_add */
static atomic_int over;                   /* kn_budget_set_over */

/* How fast released bytes leave the budget: the retry delay refusals carry
 * (kn_drain.h). */
static struct kn_drain drain;
static __thread uint64_t jitter_rng;

void kn_budget_init(size_t limit_bytes)
{
	atomic_store(&limit, limit_bytes);
	atomic_store(&used, 0);
	kn_drain_reset(&drain);
}

void kn_budget_set_limit(size_t limit_bytes)
{
	atomic_store_explicit(&limit, limit_bytes, memory_order_relaxed);
}

/* alone: the bytes also fit when all charged so far is the caller's own */
static int charge(atomic_size_t *u, const atomic_size_t *l, size_t bytes, int alone_ok,
		  size_t own)
{
	size_t lim = atomic_load_explicit(l, memory_order_relaxed);
	size_t cur = atomic_load_explicit(u, memory_order_relaxed);
	for (;;) {
		if (lim && (cur + bytes > lim || cur + bytes < cur) && !(alone_ok && cur == own))
			return 0;
		if (atomic_compare_exchange_weak_explicit(u, &cur, cur + bytes,
							  memory_order_relaxed, memory_order_relaxed))
			return 1;
	}
}

int kn_budget_try_charge(size_t bytes)
{
	if (atomic_load_explicit(&over, memory_order_relaxed) &&
	    atomic_load_explicit(&used, memory_order_relaxed) > 0)
		return 0;
	return charge(&used, &limit, bytes, 0, 0);
}

void kn_budget_set_over(int o)
{
	atomic_store_explicit(&over, o ? 1 : 0, memory_order_relaxed);
}

int kn_budget_over(void)
{
	return atomic_load_explicit(&over, memory_order_relaxed);
}

void kn_budget_req_set_limit(size_t limit_bytes)
{
	atomic_store_explicit(&req_limit, limit_bytes, memory_order_relaxed);
}

int kn_budget_req_try_charge(size_t bytes, size_t own)
{
	return charge(&req_used, &req_limit, bytes, 1, own);
}

void kn_budget_req_release(size_t bytes)
{
	atomic_fetch_sub_explicit(&req_used, bytes, memory_order_relaxed);
}

size_t kn_budget_req_used(void)
{
	return atomic_load_explicit(&req_used, memory_order_relaxed);
}

size_t kn_budget_req_limit(void)
{
	return atomic_load_explicit(&req_limit, memory_order_relaxed);
}

void kn_budget_release(size_t bytes)
{
	size_t u = atomic_fetch_sub_explicit(&used, bytes, memory_order_relaxed) - bytes;
	size_t lim = atomic_load_explicit(&limit, memory_order_relaxed);
	kn_drain_release(&drain, bytes, kn_now_ns(), lim && u >= lim / 4);
}

int kn_budget_would_fit(size_t bytes)
{
	size_t lim = atomic_load_explicit(&limit, memory_order_relaxed);
	size_t u = atomic_load_explicit(&used, memory_order_relaxed);
	if (atomic_load_explicit(&over, memory_order_relaxed) && u > 0)
		return 0;
	return !lim || u == 0 || (u + bytes >= u && u + bytes <= lim);
}

uint32_t kn_budget_retry_ms(size_t need)
{
	if (!jitter_rng)
		jitter_rng = kn_now_ns() ^ (uint64_t)(uintptr_t)&jitter_rng;
	uint64_t ns = kn_drain_refusal_ns(&drain, kn_budget_used(), kn_budget_limit(), need,
					  kn_now_ns(), &jitter_rng);
	uint64_t ms = (ns + 999999) / 1000000;
	return ms ? (uint32_t)ms : 1;
}

uint64_t kn_budget_retry_advertised_ns(void)
{
	return atomic_load_explicit(&drain.advertised_ns, memory_order_relaxed);
}

uint64_t kn_budget_drain_rate(void)
{
	return kn_drain_rate(&drain);
}

size_t kn_budget_used(void)
{
	return atomic_load_explicit(&used, memory_order_relaxed);
}

size_t kn_budget_limit(void)
{
	return atomic_load_explicit(&limit, memory_order_relaxed);
}

struct kn_budget_split kn_budget_for_process(size_t limit_bytes, size_t base_bytes)
{
	return kn_budget_for_process_min(limit_bytes, base_bytes, 0);
}

struct kn_budget_split kn_budget_for_process_min(size_t limit_bytes, size_t base_bytes,
						 size_t min_headroom)
{
	struct kn_budget_split s = {.limit = limit_bytes, .base = base_bytes};
	s.headroom = limit_bytes / 8;
	if (s.headroom < KN_BUDGET_HEADROOM_MIN)
		s.headroom = KN_BUDGET_HEADROOM_MIN;
	if (s.headroom < min_headroom)
		s.headroom = min_headroom;
	size_t floor = limit_bytes / 4;
	size_t fixed = base_bytes + s.headroom;
	if (fixed < base_bytes || fixed >= limit_bytes || limit_bytes - fixed < floor) {
		s.spans = floor;
		s.floored = 1;
	} else {
		s.spans = limit_bytes - fixed;
	}
	return s;
}

size_t kn_budget_process_rss(void)
{
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	unsigned long long size = 0, resident = 0;
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return 0;
	long page = sysconf(_SC_PAGESIZE);
	return (size_t)resident * (size_t)(page > 0 ? page : 4096);
}

void kn_budget_apply(const struct kn_budget_split *s)
{
	atomic_store(&base, s->base);
	atomic_store(&headroom, s->headroom);
	kn_budget_set_limit(s->spans);
}

void kn_budget_held_add(int64_t delta)
{
	atomic_fetch_add_explicit(&held, delta, memory_order_relaxed);
}

size_t kn_budget_held(void)
{
	int64_t v = atomic_load_explicit(&held, memory_order_relaxed);
	return v > 0 ? (size_t)v : 0;
}

int kn_budget_trim(void)
{
	size_t b = atomic_load(&base), h = atomic_load(&headroom);
	if (!b)
		return 0;
	size_t rss = kn_budget_process_rss();
	if (!rss || rss <= b + kn_budget_used() + kn_budget_held() + h / 4)
		return 0;
	malloc_trim(0);
	return 1;
}
