/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_bytrace: a chunk's spans grouped by trace id, for the shards that
 * keep traces (tail_sampling, journey). O(spans): an open-addressing table
 * numbers the traces in order of first appearance, then a counting sort
 * lists each trace's span numbers in chunk order:
 *   order[start[k] .. start[k+1]) are trace k's spans, k < the count
 *   kn_tail_bytrace_chunk returned.
 * g[2 x spans] is scratch for kn_tail_frame_size / _write of one group.
 *
 * Ownership: the arrays are the struct's, grow-only, freed by
 * kn_tail_bytrace_free. Threads: one per shard. */
#ifndef KN_TAIL_BYTRACE_H
#define KN_TAIL_BYTRACE_H

#include <stdint.h>

#include "../../collector/core/kn_chunk.h"

struct kn_tail_bytrace {
	uint32_t *order, *start;     /* the result (see above) */
	uint32_t *g;                 /* frame scratch, 2 x spans */
	uint32_t *grp, *first, *tab; /* working space */
	uint32_t cap_spans, cap_tab;
};

/* Groups c's spans; the number of traces, or UINT32_MAX when out of memory. */
uint32_t kn_tail_bytrace_chunk(struct kn_tail_bytrace *gr, const struct kn_chunk *c);

void kn_tail_bytrace_free(struct kn_tail_bytrace *gr);

#endif
