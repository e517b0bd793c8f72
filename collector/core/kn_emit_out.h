/* SPDX-License-Identifier: Apache-2.0
 * kn_emit_out: the output batch of a processor that emits chunks one by one
 * (tail_sampling's kept traces, journey's released traces): chunks collect in
 * one batch, which goes to `next` when it holds `max` chunks or `max_bytes`
 * bytes (a chunk that would pass max_bytes starts a new batch), or when the
 * processor flushes at the end of a call. Per shard, no locks.
 *
 * Ownership: add() takes the caller's chunk reference; on out-of-memory the
 * chunk is released and its spans are counted in `lost`. */
#ifndef KN_EMIT_OUT_H
#define KN_EMIT_OUT_H

#include "kn_component.h"

struct kn_metric;

struct kn_emit_out {
	struct kn_batch *b;       /* NULL when empty */
	uint32_t max;             /* chunks per emitted batch */
	size_t max_bytes;         /* bytes per emitted batch (0 = no bound): one
				   * batch is one export request downstream */
	struct kn_metric *lost;   /* spans lost to out-of-memory */
};

void kn_emit_out_add(struct kn_emit_out *o, struct kn_chunk *c, const struct kn_emit *next);
/* Emits what is collected (nothing when empty). */
void kn_emit_out_flush(struct kn_emit_out *o, const struct kn_emit *next);
/* Frees what is collected without emitting (destroy paths). */
void kn_emit_out_free(struct kn_emit_out *o);

#endif
