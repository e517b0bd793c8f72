/* SPDX-License-Identifier: Apache-2.0
 * kn_chunk: allocation and release of chunks (see kn_chunk.h). */
#include "kn_chunk.h"
#include "kn_budget.h"

#include <stdlib.h>

struct kn_chunk *kn_chunk_alloc(uint32_t nspans, uint32_t cap)
{
	size_t hdrs = (size_t)nspans * sizeof(struct kn_span_hdr);
	struct kn_chunk *c = malloc(sizeof *c + hdrs + cap);
	if (!c)
		return NULL;
	atomic_init(&c->refs, 1);
	c->shard = 0;
	c->source = 0;
	c->nspans = nspans;
	c->len = 0;
	c->cap = cap;
	c->accepted_ns = 0;
	c->charged = 0;
	c->ctx.traceparent[0] = '\0';
	c->ctx.tracestate[0] = '\0';
	c->spans = (struct kn_span_hdr *)(c + 1);
	c->data = (uint8_t *)c->spans + hdrs;
	return c;
}

void kn_chunk_unref(struct kn_chunk *c)
{
	if (!c)
		return;
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (c->charged)
		kn_budget_release(c->charged);
	free(c);
}
