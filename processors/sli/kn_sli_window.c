/* SPDX-License-Identifier: Apache-2.0
 * kn_sli_window: the good/total windows of one series, as two rings indexed
 * by absolute time unit (minute or hour since the epoch): KN_SLI_MINUTES
 * per-minute buckets serve the short burn-rate windows (5m .. 6h), per-hour
 * buckets the 3d burn rate and the SLO window (e.g. 30d). A bucket carries
 * the unit it holds; the writer resets a bucket when time moves into it, and
 * a reader only counts buckets whose unit lies in its window, so no clearing
 * timer is needed and stale buckets never count.
 *
 * Threads: one writer (the shard), any readers (the scrape). The writer
 * resets a bucket's values before publishing its new unit (release), so a
 * reader that sees the new unit sees the reset; a bucket being recycled holds
 * a unit older than any window the ring serves, so readers skip it anyway.
 * Costs: add is O(1); sum is O(window in units). */
#include "kn_sli_int.h"

uint32_t kn_sli_win_hours(uint64_t window_ns)
{
	uint64_t h = (window_ns + KN_NS_PER_HOUR - 1) / KN_NS_PER_HOUR;
	return h < KN_SLI_MIN_HOURS ? KN_SLI_MIN_HOURS : (uint32_t)h;
}

size_t kn_sli_win_size(uint32_t nhours)
{
	return sizeof(struct kn_sli_win) + (size_t)nhours * sizeof(struct kn_sli_wbucket);
}

static void bucket_init(struct kn_sli_wbucket *b)
{
	atomic_init(&b->stamp, 0);
	atomic_init(&b->good, 0);
	atomic_init(&b->total, 0);
}

void kn_sli_win_init(struct kn_sli_win *w, uint32_t nhours)
{
	w->nhours = nhours;
	for (uint32_t i = 0; i < KN_SLI_MINUTES; i++)
		bucket_init(&w->min[i]);
	for (uint32_t i = 0; i < nhours; i++)
		bucket_init(&w->hour[i]);
}

static void bucket_add(struct kn_sli_wbucket *b, uint64_t unit, double good, double total)
{
	if (atomic_load_explicit(&b->stamp, memory_order_relaxed) != unit + 1) {
		kn_sli_st(&b->good, 0);
		kn_sli_st(&b->total, 0);
		atomic_store_explicit(&b->stamp, unit + 1, memory_order_release);
	}
	kn_sli_addd(&b->good, good);
	kn_sli_addd(&b->total, total);
}

void kn_sli_win_add(struct kn_sli_win *w, uint64_t now_ns, double good, double total)
{
	uint64_t m = now_ns / KN_NS_PER_MIN, h = now_ns / KN_NS_PER_HOUR;
	bucket_add(&w->min[m % KN_SLI_MINUTES], m, good, total);
	bucket_add(&w->hour[h % w->nhours], h, good, total);
}

static void ring_sum(const struct kn_sli_wbucket *ring, uint32_t size, uint64_t unit, uint64_t n,
		     double *good, double *total)
{
	if (n > size)
		n = size;
	for (uint64_t k = 0; k < n && k <= unit; k++) {
		uint64_t u = unit - k;
		const struct kn_sli_wbucket *b = &ring[u % size];
		if (atomic_load_explicit(&b->stamp, memory_order_acquire) != u + 1)
			continue;
		*good += kn_sli_ld(&b->good);
		*total += kn_sli_ld(&b->total);
	}
}

void kn_sli_win_sum(const struct kn_sli_win *w, uint64_t now_ns, uint64_t window_ns, double *good,
		    double *total)
{
	if (window_ns <= KN_SLI_MINUTES * KN_NS_PER_MIN && window_ns % KN_NS_PER_MIN == 0)
		ring_sum(w->min, KN_SLI_MINUTES, now_ns / KN_NS_PER_MIN, window_ns / KN_NS_PER_MIN,
			 good, total);
	else
		ring_sum(w->hour, w->nhours, now_ns / KN_NS_PER_HOUR,
			 (window_ns + KN_NS_PER_HOUR - 1) / KN_NS_PER_HOUR, good, total);
}

double kn_sli_burn_rate(double good, double total, double objective_pct)
{
	double allowed = 1 - objective_pct / 100;
	if (total <= 0 || allowed <= 0)
		return 0;
	double bad = total - good;
	if (bad < 0)
		bad = 0;
	return (bad / total) / allowed;
}

double kn_sli_budget_remaining(double good, double total, double objective_pct)
{
	if (total <= 0)
		return 1;
	return 1 - kn_sli_burn_rate(good, total, objective_pct);
}
