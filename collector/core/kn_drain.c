/* SPDX-License-Identifier: Apache-2.0
 * kn_drain: see kn_drain.h. Costs: a release is one relaxed atomic add and
 * one relaxed load (plus, once per period, a CAS, an exchange and a store);
 * a refusal is a fold check, a division and a splitmix64 step. */
#include "kn_drain.h"

#define RELAXED memory_order_relaxed

void kn_drain_reset(struct kn_drain *d)
{
	atomic_store(&d->released, 0);
	atomic_store(&d->fold_ns, 0);
	atomic_store(&d->fold_released, 0);
	atomic_store(&d->rate, 0);
	atomic_store(&d->advertised_ns, 0);
}

void kn_drain_fold(struct kn_drain *d, uint64_t now_ns, int backlogged)
{
	uint64_t last = atomic_load_explicit(&d->fold_ns, RELAXED);
	/* now <= last: another thread folded with a later clock reading */
	if (last && (now_ns <= last || now_ns - last < KN_DRAIN_PERIOD_NS))
		return;
	if (!atomic_compare_exchange_strong_explicit(&d->fold_ns, &last, now_ns, RELAXED, RELAXED))
		return; /* someone else folds this period */
	uint64_t rel = atomic_load_explicit(&d->released, RELAXED);
	uint64_t prev = atomic_exchange_explicit(&d->fold_released, rel, RELAXED);
	if (!last)
		return; /* the first fold only sets the baseline */
	double dt = (double)(now_ns - last);
	double inst = (double)(rel - prev) * 1e9 / dt;
	double r = (double)atomic_load_explicit(&d->rate, RELAXED);
	if (r == 0) {
		/* no estimate yet: take the first sample that shows a drain */
		if (inst >= 1)
			atomic_store_explicit(&d->rate, (uint64_t)inst, RELAXED);
		return;
	}
	if (inst < r && !backlogged)
		return; /* the pipeline drained all it had: that is the input rate */
	r += (inst - r) * dt / (dt + (double)KN_DRAIN_TAU_NS);
	/* decayed to nothing (a stalled backend): keep 1 B/s, which means "no
	 * drain" (the maximum delay) without going back to "no estimate" */
	atomic_store_explicit(&d->rate, r >= 1 ? (uint64_t)r : 1, RELAXED);
}

void kn_drain_release(struct kn_drain *d, uint64_t bytes, uint64_t now_ns, int backlogged)
{
	atomic_fetch_add_explicit(&d->released, bytes, RELAXED);
	kn_drain_fold(d, now_ns, backlogged);
}

uint64_t kn_drain_rate(const struct kn_drain *d)
{
	return atomic_load_explicit(&d->rate, RELAXED);
}

static uint64_t clamp(double ns)
{
	if (ns < (double)KN_RETRY_MIN_NS)
		return KN_RETRY_MIN_NS;
	if (ns > (double)KN_RETRY_MAX_NS)
		return KN_RETRY_MAX_NS;
	return (uint64_t)ns;
}

uint64_t kn_drain_delay_ns(const struct kn_drain *d, uint64_t used, uint64_t limit, uint64_t need)
{
	uint64_t rate = kn_drain_rate(d);
	if (!rate)
		return KN_RETRY_MAX_NS;
	double over = limit ? (double)used + (double)need - (double)limit : 0;
	return clamp(over > 0 ? over * 1e9 / (double)rate : 0);
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t kn_drain_jitter(uint64_t base_ns, uint64_t *rng)
{
	double u = (double)(splitmix64(rng) >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
	return clamp((double)base_ns * (0.75 + 0.5 * u));
}

uint64_t kn_drain_refusal_ns(struct kn_drain *d, uint64_t used, uint64_t limit, uint64_t need,
			     uint64_t now_ns, uint64_t *rng)
{
	kn_drain_fold(d, now_ns, !limit || used >= limit / 4);
	uint64_t base = kn_drain_delay_ns(d, used, limit, need);
	atomic_store_explicit(&d->advertised_ns, base, RELAXED);
	return kn_drain_jitter(base, rng);
}
