/* SPDX-License-Identifier: Apache-2.0
 * kn_attraction_edit: what every attribute-editing processor (`resource`,
 * `attributes`) holds and does around its own callbacks, in one place:
 *   - per instance: its escaped id and the counter
 *     kansatsu_processor_edit_dropped_spans_total{processor, type};
 *   - per shard: one splicing editor (kn_wire_edit), one attribute view
 *     (kn_wire_attrs) and one regex match scratch, reused batch after batch;
 *   - per batch: run the editor with the processor's callbacks, count and
 *     log what it had to drop (out of memory), drop an emptied batch,
 *     forward the rest.
 * The processor keeps its own callbacks (which attributes, which filters)
 * and embeds these structs in its own instance and shard state.
 *
 * Threads: an instance is shared read-only by the shards; a shard struct
 * belongs to its shard's thread. */
#ifndef KN_ATTRACTION_EDIT_H
#define KN_ATTRACTION_EDIT_H

#include <stdint.h>

#include "../core/kn_component.h"
#include "../wire/kn_wire_attrs.h"
#include "../wire/kn_wire_edit.h"
#include "kn_attraction.h"

struct kn_attraction_edit_inst {
	struct kn_metric *dropped;
	char id[96];               /* the component id, escaped for a label */
};

/* Fills `in` for the component ctx->id of processor type `type`. */
void kn_attraction_edit_inst_init(struct kn_attraction_edit_inst *in, const struct kn_component_ctx *ctx,
				  const char *type);

struct kn_attraction_edit_shard {
	struct kn_wire_edit ed;
	struct kn_wire_attrs at;
	struct kn_attraction_scratch *sc;   /* room for max_groups capture groups */
};

/* KN_OK, or KN_ERR ("out of memory") with nothing to free. */
int kn_attraction_edit_shard_init(struct kn_attraction_edit_shard *s, uint32_t max_groups, struct kn_err *err);
void kn_attraction_edit_shard_free(struct kn_attraction_edit_shard *s);

/* The processor's `process`: edits b in place with ops / ctx, then forwards
 * it to next (KN_OK), or frees it when no chunk is left (KN_DROP). */
int kn_attraction_edit_process(struct kn_attraction_edit_shard *s, const struct kn_attraction_edit_inst *in,
			       const struct kn_wire_edit_ops *ops, void *ctx, struct kn_batch *b,
			       const struct kn_emit *next);

#endif
