/* SPDX-License-Identifier: Apache-2.0
 * kn_wire: the zero-copy OTLP wire reader and the per-shard splitter.
 *
 * kn_wire_index walks an encoded ExportTraceServiceRequest once, without
 * allocating per span and without copying: it records where each
 * ResourceSpans' Resource, each ScopeSpans' InstrumentationScope and each
 * Span sit in the buffer, and parses a small header per span (ids, times,
 * kind, status, name, flags, counts of attributes and links). It checks the
 * protobuf framing all the way into every Span (including nested KeyValue /
 * AnyValue / Event / Link / Status messages, to a bounded nesting depth), so a
 * request it accepts is one protobuf-c also accepts. Unknown fields are
 * skipped (and kept: they stay inside the span's bytes).
 *
 * Malformed input -> KN_INVALID with a message naming the field path, e.g.
 * "resource_spans[0].scope_spans[2].spans[7].attributes[1]: truncated length".
 * Spans that are well-formed protobuf but invalid OTLP (trace_id not 16
 * bytes, span_id not 8 bytes, parent_span_id neither empty nor 8 bytes) are
 * not indexed; they are counted in `rejected` with the first reason kept.
 *
 * kn_wire_split then builds, for each shard that has spans, one kn_chunk whose
 * data is a valid ExportTraceServiceRequest holding only that shard's spans
 * (Resource / scope / span bytes copied verbatim, framing written anew). It
 * is the cross-checked heart of the hot path: see tests/unit/test_wire.c and
 * tests/fuzz/fuzz_wire.c.
 *
 * Threads: an index is owned by one thread and reused request after request
 * (its arrays only grow). */
#ifndef KN_WIRE_H
#define KN_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../core/kn_chunk.h"
#include "../core/kn_err.h"

#define KN_WIRE_MAX_DEPTH 32   /* nesting of AnyValue arrays / kvlists */

struct kn_wire_resource {
	const uint8_t *msg; uint32_t len;        /* Resource bytes; msg NULL when absent */
	const uint8_t *schema_url; uint32_t schema_url_len;
};

struct kn_wire_scope {
	uint32_t resource_idx;
	const uint8_t *msg; uint32_t len;        /* InstrumentationScope bytes; NULL when absent */
	const uint8_t *schema_url; uint32_t schema_url_len;
};

struct kn_wire_index {
	struct kn_wire_resource *res;  uint32_t nres,    cap_res;
	struct kn_wire_scope *scopes;  uint32_t nscopes, cap_scopes;
	struct kn_span_hdr *spans;     uint32_t nspans,  cap_spans;  /* offsets relative to the request buffer */
	uint32_t rejected;             /* invalid spans left out */
	char reject_reason[200];       /* the first one, with its field path */
	uint32_t *scratch; uint32_t cap_scratch; /* split's working space */
};

void kn_wire_index_init(struct kn_wire_index *ix);
void kn_wire_index_free(struct kn_wire_index *ix);

/* Indexes buf[0..len). KN_OK, KN_INVALID (err names the field), or KN_ERR (OOM). */
int kn_wire_index_request(struct kn_wire_index *ix, const uint8_t *buf, size_t len,
			  struct kn_err *err);

/* The same index for bytes the collector itself wrote out of requests
 * kn_wire_index_request accepted (a kept trace, a rewritten chunk): the
 * framing, the span fields and the ids are read and checked as there, but
 * Resource, scope, attribute, event and link messages are taken as well
 * formed, not walked (they are counted). On such bytes the result equals
 * kn_wire_index_request's (test_wire and fuzz_wire check that); on others
 * it may accept what that rejects. */
int kn_wire_index_trusted(struct kn_wire_index *ix, const uint8_t *buf, size_t len,
			  struct kn_err *err);

/* Re-reads the header of one Span the collector rewrote, from trusted bytes
 * (nested messages not checked, as kn_wire_index_trusted): the Span message
 * is span[0..len), offsets are made relative to base; resource_idx and
 * scope_idx are left as they were. KN_OK, or KN_INVALID when the bytes do
 * not frame or its ids are not valid OTLP (the index would reject it). */
int kn_wire_span_reread(const uint8_t *base, const uint8_t *span, uint32_t len,
			struct kn_span_hdr *h);

/* The shard a trace belongs to: a documented, stable mix of all 16 id bytes. */
uint32_t kn_shard_of(const uint8_t trace_id[16], uint32_t nshards);

/* For shard s in [0, nshards): out[s] = a new chunk with that shard's spans
 * (refs 1, shard set, span headers rebased to the chunk's data), or NULL when
 * it has none. KN_OK, or KN_ERR on OOM (then every out[] is NULL). */
int kn_wire_split(struct kn_wire_index *ix, const uint8_t *buf, uint32_t nshards,
		  struct kn_chunk **out, struct kn_err *err);

/* The general form: out[route(span)] for outputs [0, nout). kn_wire_split is
 * this with route = kn_shard_of; the load-balancing exporter routes by its
 * hash ring. route must return < nout (KN_ERR otherwise). */
typedef uint32_t (*kn_wire_route_fn)(const struct kn_span_hdr *span, void *ctx);
int kn_wire_split_by(struct kn_wire_index *ix, const uint8_t *buf, uint32_t nout,
		     kn_wire_route_fn route, void *route_ctx, struct kn_chunk **out,
		     struct kn_err *err);

/* Low-level helpers shared with tests and exporters. */
size_t kn_wire_varint_len(uint64_t v);
size_t kn_wire_put_varint(uint8_t *p, uint64_t v);
/* Reads a varint at *p (< end); 0 on success, -1 when truncated or > 10 bytes. */
int kn_wire_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);

/* An id of n bytes (8 or 16) that is all zero: OTLP calls a trace_id or
 * span_id like that invalid, and the reader rejects its span. Word loads
 * (memcpy, so any alignment) instead of a byte loop. */
static inline int kn_wire_all_zero(const uint8_t *p, uint32_t n)
{
	uint64_t acc = 0, w;
	for (uint32_t i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		acc |= w;
	}
	return acc == 0;
}

#endif
