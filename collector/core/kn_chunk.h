/* SPDX-License-Identifier: Apache-2.0
 * kn_chunk: the unit that travels from a receiver to one shard.
 *
 * A receiver splits an export request by trace id; the spans that hash to one
 * shard become one chunk. A chunk's data is itself a valid encoded
 * ExportTraceServiceRequest holding only those spans, with their Resource and
 * InstrumentationScope bytes copied verbatim and each span's original bytes
 * copied verbatim (nothing is re-encoded). Because ExportTraceServiceRequest
 * is `repeated ResourceSpans resource_spans = 1`, the concatenation of several
 * chunks' data is again a valid request: exporters send batches by
 * concatenation.
 *
 * Layout: one allocation = struct kn_chunk + spans[nspans] + data[cap].
 * Ownership: refcounted, because one chunk can feed several pipelines and
 * several exporters. The last kn_chunk_unref releases the chunk's bytes from
 * the global memory budget and frees it. Processors that change a chunk must
 * copy it first when refs > 1. */
#ifndef KN_CHUNK_H
#define KN_CHUNK_H

#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>

#include "kn_tracectx.h"

/* Parsed header of one span; offsets are into the chunk's data (or, for the
 * wire reader's index, into the request buffer). */
struct kn_span_hdr {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8];   /* all zero for a root span */
	uint64_t start_ns;           /* start_time_unix_nano */
	uint64_t end_ns;             /* end_time_unix_nano */
	uint32_t off, len;           /* the Span message's bytes (no tag/length prefix) */
	uint32_t name_off, name_len; /* the name string's bytes */
	uint32_t flags;              /* Span.flags (W3C trace flags in the low byte) */
	int32_t kind;                /* Span.SpanKind */
	int32_t status_code;         /* Status.StatusCode */
	uint32_t nattrs;             /* count of Span.attributes */
	uint32_t nlinks;             /* count of Span.links */
	uint32_t resource_idx;       /* index of its ResourceSpans within the chunk/request */
	uint32_t scope_idx;          /* index of its ScopeSpans within the chunk/request */
};

struct kn_chunk {
	atomic_uint refs;
	uint16_t shard;          /* shard the spans hash to */
	uint16_t source;         /* receiver instance index (selects pipelines) */
	uint32_t nspans;
	uint32_t len;            /* bytes used in data */
	uint32_t cap;            /* bytes allocated for data */
	uint64_t accepted_ns;    /* kn_now_ns() when the receiver accepted it */
	size_t charged;          /* bytes charged to the memory budget */
	struct kn_tracectx ctx;  /* trace context of the request that carried it */
	struct kn_span_hdr *spans;
	uint8_t *data;
};

/* Allocates a chunk with room for nspans headers and cap data bytes, refs = 1,
 * charged = 0 (the caller charges the budget). Returns NULL on OOM. */
struct kn_chunk *kn_chunk_alloc(uint32_t nspans, uint32_t cap);

static inline struct kn_chunk *kn_chunk_ref(struct kn_chunk *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

/* Drops one reference; the last one releases c->charged from the global
 * memory budget and frees the chunk. NULL-safe. */
void kn_chunk_unref(struct kn_chunk *c);

#endif
