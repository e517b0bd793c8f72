/* SPDX-License-Identifier: Apache-2.0
 * kn_batch: what flows between pipeline stages and into exporters: a list of
 * chunk references. Its encoded form is the concatenation of the chunks' data
 * (a valid ExportTraceServiceRequest), so exporters never re-encode.
 *
 * Ownership: a batch owns one reference on each chunk it lists. Whoever is
 * handed a batch owns it and must pass it on or kn_batch_free it. */
#ifndef KN_BATCH_H
#define KN_BATCH_H

#include <stdint.h>
#include <stddef.h>
#include <sys/uio.h>

#include "kn_chunk.h"

struct kn_batch {
	uint32_t n, cap;
	uint32_t nspans;      /* sum of chunks' nspans */
	size_t bytes;         /* sum of chunks' len: the encoded request size */
	uint64_t first_ns;    /* earliest accepted_ns of its chunks */
	uint64_t tag;         /* its holder's note, 0 when new or cloned: a persistent
			       * sending queue keeps the batch's record id here */
	struct kn_chunk *chunks[];
};

/* A new empty batch with room for cap chunks (grows as needed). */
struct kn_batch *kn_batch_new(uint32_t cap);

/* Appends c, taking over the caller's reference. May reallocate *b.
 * Returns KN_OK, or KN_ERR on OOM (then the reference is dropped). */
int kn_batch_add(struct kn_batch **b, struct kn_chunk *c);

/* A second batch listing the same chunks (each gets one more reference). */
struct kn_batch *kn_batch_clone(const struct kn_batch *b);

/* Unrefs every chunk and frees the batch. NULL-safe. */
void kn_batch_free(struct kn_batch *b);

/* The trace context to continue on an outgoing request: that of the first
 * chunk that carries one, or NULL. */
const struct kn_tracectx *kn_batch_ctx(const struct kn_batch *b);

/* Fills iov[0..b->n) with the chunks' data. */
void kn_batch_iov(const struct kn_batch *b, struct iovec *iov);

/* Copies the encoded request (concatenated chunk data) into a new malloc'd
 * buffer of b->bytes bytes. Returns NULL on OOM (or for an empty batch). */
uint8_t *kn_batch_flatten(const struct kn_batch *b);

#endif
