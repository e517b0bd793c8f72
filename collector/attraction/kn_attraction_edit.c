/* SPDX-License-Identifier: Apache-2.0
 * kn_attraction_edit: the shared instance / shard / batch steps of the
 * attribute-editing processors (see kn_attraction_edit.h). */
#include "kn_attraction_edit.h"

#include <stdio.h>

#include "../core/kn_log.h"
#include "../core/kn_metrics.h"

void kn_attraction_edit_inst_init(struct kn_attraction_edit_inst *in, const struct kn_component_ctx *ctx,
				  const char *type)
{
	char label[64];
	snprintf(label, sizeof label, "type=\"%s\"", type);
	kn_metrics_label_escape(ctx->id, in->id, sizeof in->id);
	in->dropped = kn_metrics_processor_counter(ctx->metrics, "kansatsu_processor_edit_dropped_spans_total",
		"Spans an attribute-editing processor dropped because their chunk could not be edited (out of memory).",
		in->id, label);
}

int kn_attraction_edit_shard_init(struct kn_attraction_edit_shard *s, uint32_t max_groups, struct kn_err *err)
{
	s->sc = kn_attraction_scratch_new(max_groups);
	if (!s->sc)
		return kn_errf(err, "out of memory");
	kn_wire_edit_init(&s->ed);
	kn_wire_attrs_init(&s->at);
	return KN_OK;
}

void kn_attraction_edit_shard_free(struct kn_attraction_edit_shard *s)
{
	kn_wire_edit_free(&s->ed);
	kn_wire_attrs_free(&s->at);
	kn_attraction_scratch_free(s->sc);
	s->sc = NULL;
}

int kn_attraction_edit_process(struct kn_attraction_edit_shard *s, const struct kn_attraction_edit_inst *in,
			       const struct kn_wire_edit_ops *ops, void *ctx, struct kn_batch *b,
			       const struct kn_emit *next)
{
	uint64_t dropped = 0;
	struct kn_err err = {{0}};
	if (kn_wire_edit_batch(&s->ed, ops, ctx, b, &dropped, &err) != KN_OK) {
		kn_counter_add(in->dropped, dropped);
		kn_warn("processors.%s: dropped %llu spans: %s", in->id, (unsigned long long)dropped, err.msg);
	}
	if (b->n == 0) {
		kn_batch_free(b);
		return KN_DROP;
	}
	kn_emit(next, b);
	return KN_OK;
}
