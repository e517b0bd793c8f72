/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_errlog: OTTL run-time errors in the log without flooding it. A
 * statement that fails on every span would otherwise write a line per span
 * on the shard workers; here one line a second per owner (a processor, a
 * policy) goes out, with the count of the ones skipped since. Lock-free:
 * a CAS on the next allowed time decides which thread logs. */
#include <stdatomic.h>
#include <string.h>

#include "kn_ottl.h"
#include "../core/kn_clock.h"
#include "../core/kn_log.h"

void kn_ottl_errlog(struct kn_ottl_errlog *l, const char *who, int errmode, const char *msg, const char *outcome)
{
	if (errmode == KN_OTTL_SILENT)
		return;
	const char *what = outcome ? outcome
			   : errmode == KN_OTTL_IGNORE ? "error_mode ignore: evaluation went on"
						       : "error_mode propagate: the data holding it was dropped";
	uint64_t now = kn_now_ns(), next = atomic_load_explicit(&l->next_ns, memory_order_relaxed);
	if (now < next ||
	    !atomic_compare_exchange_strong_explicit(&l->next_ns, &next, now + KN_NS_PER_SEC, memory_order_relaxed,
						     memory_order_relaxed)) {
		atomic_fetch_add_explicit(&l->suppressed, 1, memory_order_relaxed);
		return;
	}
	uint64_t skipped = atomic_exchange_explicit(&l->suppressed, 0, memory_order_relaxed);
	/* msg names the statement's config path; who only when it does not */
	const char *sep = strncmp(msg, who, strlen(who)) == 0 ? "" : ": ";
	if (skipped)
		kn_warn("%s%s%s (%s; %llu more errors not logged)", *sep ? who : "", sep, msg, what,
			(unsigned long long)skipped);
	else
		kn_warn("%s%s%s (%s)", *sep ? who : "", sep, msg, what);
}
