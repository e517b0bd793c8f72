/* SPDX-License-Identifier: Apache-2.0
 * kn_backpressure: see kn_backpressure.h. */
#include "kn_backpressure.h"

#include "kn_clock.h"

static atomic_int nraised;
static _Atomic uint64_t hold_until;

void kn_bp_raise(struct kn_bp_source *s)
{
	if (atomic_exchange(&s->raised, 1) == 0)
		atomic_fetch_add(&nraised, 1);
}

void kn_bp_clear(struct kn_bp_source *s)
{
	if (atomic_exchange(&s->raised, 0) == 1)
		atomic_fetch_sub(&nraised, 1);
}

void kn_bp_hold_until(uint64_t until_ns)
{
	uint64_t cur = atomic_load(&hold_until);
	while (cur < until_ns && !atomic_compare_exchange_weak(&hold_until, &cur, until_ns))
		;
}

int kn_bp_active(void)
{
	if (atomic_load_explicit(&nraised, memory_order_relaxed) > 0)
		return 1;
	uint64_t u = atomic_load_explicit(&hold_until, memory_order_relaxed);
	if (u == 0)
		return 0;
	if (kn_now_ns() < u)
		return 1;
	/* expired: later checks need no clock read (a newer pulse wins the CAS) */
	atomic_compare_exchange_strong(&hold_until, &u, 0);
	return 0;
}

void kn_bp_reset(void)
{
	atomic_store(&nraised, 0);
	atomic_store(&hold_until, 0);
}
