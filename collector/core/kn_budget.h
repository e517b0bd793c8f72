/* SPDX-License-Identifier: Apache-2.0
 * kn_budget: the global memory budget (kansatsu.memory_limit_mib). Receivers
 * charge a chunk's bytes before acknowledging; the last unref of the chunk
 * releases them. When a charge would pass the limit the receiver refuses the
 * request with a retryable error instead. Lock-free: one atomic counter. */
#ifndef KN_BUDGET_H
#define KN_BUDGET_H

#include <stddef.h>

/* limit 0 means unlimited. Resets the used count; call before threads run. */
void kn_budget_init(size_t limit_bytes);

/* Returns 1 and charges `bytes` if they fit under the limit, else 0. */
int kn_budget_try_charge(size_t bytes);

void kn_budget_release(size_t bytes);

size_t kn_budget_used(void);
size_t kn_budget_limit(void);

#endif
