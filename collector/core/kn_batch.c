/* SPDX-License-Identifier: Apache-2.0
 * kn_batch: chunk lists (see kn_batch.h). */
#include "kn_batch.h"
#include "kn_err.h"

#include <stdlib.h>
#include <string.h>

struct kn_batch *kn_batch_new(uint32_t cap)
{
	if (cap == 0)
		cap = 4;
	struct kn_batch *b = malloc(sizeof *b + cap * sizeof(b->chunks[0]));
	if (!b)
		return NULL;
	b->n = 0;
	b->cap = cap;
	b->nspans = 0;
	b->bytes = 0;
	b->first_ns = 0;
	b->tag = 0;
	return b;
}

int kn_batch_add(struct kn_batch **bp, struct kn_chunk *c)
{
	struct kn_batch *b = *bp;
	if (b->n == b->cap) {
		uint32_t cap = b->cap * 2;
		struct kn_batch *nb = realloc(b, sizeof *b + cap * sizeof(b->chunks[0]));
		if (!nb) {
			kn_chunk_unref(c);
			return KN_ERR;
		}
		nb->cap = cap;
		*bp = b = nb;
	}
	b->chunks[b->n++] = c;
	b->nspans += c->nspans;
	b->bytes += c->len;
	if (b->first_ns == 0 || c->accepted_ns < b->first_ns)
		b->first_ns = c->accepted_ns;
	return KN_OK;
}

struct kn_batch *kn_batch_clone(const struct kn_batch *b)
{
	struct kn_batch *nb = kn_batch_new(b->n);
	if (!nb)
		return NULL;
	for (uint32_t i = 0; i < b->n; i++)
		nb->chunks[i] = kn_chunk_ref(b->chunks[i]);
	nb->n = b->n;
	nb->nspans = b->nspans;
	nb->bytes = b->bytes;
	nb->first_ns = b->first_ns;
	return nb;
}

void kn_batch_free(struct kn_batch *b)
{
	if (!b)
		return;
	for (uint32_t i = 0; i < b->n; i++)
		kn_chunk_unref(b->chunks[i]);
	free(b);
}

const struct kn_tracectx *kn_batch_ctx(const struct kn_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		if (kn_tracectx_present(&b->chunks[i]->ctx))
			return &b->chunks[i]->ctx;
	return NULL;
}

void kn_batch_iov(const struct kn_batch *b, struct iovec *iov)
{
	for (uint32_t i = 0; i < b->n; i++) {
		iov[i].iov_base = b->chunks[i]->data;
		iov[i].iov_len = b->chunks[i]->len;
	}
}

uint8_t *kn_batch_flatten(const struct kn_batch *b)
{
	if (b->bytes == 0)
		return NULL;
	uint8_t *out = malloc(b->bytes);
	if (!out)
		return NULL;
	size_t off = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		memcpy(out + off, b->chunks[i]->data, b->chunks[i]->len);
		off += b->chunks[i]->len;
	}
	return out;
}
