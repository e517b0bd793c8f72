/* SPDX-License-Identifier: Apache-2.0
 * kn_budget: see kn_budget.h. A CAS loop keeps `used` from ever exceeding the
 * limit, so concurrent receivers cannot overshoot together. */
#include "kn_budget.h"

#include <stdatomic.h>

static atomic_size_t used;
static size_t limit;

void kn_budget_init(size_t limit_bytes)
{
	limit = limit_bytes;
	atomic_store(&used, 0);
}

int kn_budget_try_charge(size_t bytes)
{
	size_t cur = atomic_load_explicit(&used, memory_order_relaxed);
	for (;;) {
		if (limit && (cur + bytes > limit || cur + bytes < cur))
			return 0;
		if (atomic_compare_exchange_weak_explicit(&used, &cur, cur + bytes,
							  memory_order_relaxed, memory_order_relaxed))
			return 1;
	}
}

void kn_budget_release(size_t bytes)
{
	atomic_fetch_sub_explicit(&used, bytes, memory_order_relaxed);
}

size_t kn_budget_used(void)
{
	return atomic_load_explicit(&used, memory_order_relaxed);
}

size_t kn_budget_limit(void)
{
	return limit;
}
