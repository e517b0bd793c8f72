/* SPDX-License-Identifier: Apache-2.0
 * kn_emit_out: see kn_emit_out.h. */
#include "kn_emit_out.h"

#include "kn_metrics.h"

void kn_emit_out_flush(struct kn_emit_out *o, const struct kn_emit *next)
{
	struct kn_batch *b = o->b;
	o->b = NULL;
	if (b)
		kn_emit(next, b);
}

void kn_emit_out_add(struct kn_emit_out *o, struct kn_chunk *c, const struct kn_emit *next)
{
	if (o->b && o->max_bytes && o->b->bytes + c->len > o->max_bytes)
		kn_emit_out_flush(o, next);
	if (!o->b && !(o->b = kn_batch_new(16))) {
		kn_counter_add(o->lost, c->nspans);
		kn_chunk_unref(c);
		return;
	}
	uint32_t n = c->nspans;
	if (kn_batch_add(&o->b, c) != KN_OK) {
		kn_counter_add(o->lost, n);
		return;
	}
	if (o->b->n >= o->max || (o->max_bytes && o->b->bytes >= o->max_bytes))
		kn_emit_out_flush(o, next);
}

void kn_emit_out_free(struct kn_emit_out *o)
{
	kn_batch_free(o->b);
	o->b = NULL;
}
