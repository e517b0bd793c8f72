/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_gen: a deterministic random ExportTraceServiceRequest builder for
 * the wire reader's tests, the fuzz seed corpus and load generators. Builds a
 * protobuf-c message tree (every AnyValue type including nested arrays and
 * kvlists, events, links, status, flags, trace_state, entity refs) from a
 * seed; the same seed and options always give the same request.
 *
 * Ownership: the tree is malloc'ed throughout; free it with kn_wire_gen_free.
 * kn_wire_gen_pack returns a malloc'ed buffer the caller frees. Not a hot
 * path: it allocates per field. Thread-safe (no global state). */
#ifndef KN_WIRE_GEN_H
#define KN_WIRE_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest kn_wire_gen_req;

struct kn_wire_gen_opts {
	uint32_t max_resources;   /* ResourceSpans per request: 0..max */
	uint32_t max_scopes;      /* ScopeSpans per ResourceSpans: 0..max */
	uint32_t max_spans;       /* Spans per ScopeSpans: 0..max */
	uint32_t max_attrs;       /* attributes per span / event / link / scope: 0..max */
	uint32_t max_depth;       /* AnyValue nesting: 1..max */
	uint32_t invalid_pct;     /* percent of spans with an invalid id */
	uint32_t trace_pool;      /* spans pick trace ids from a pool this big (0: all fresh) */
};

/* The request for seed (NULL on OOM). */
kn_wire_gen_req *kn_wire_gen_request(uint64_t seed, const struct kn_wire_gen_opts *o);
void kn_wire_gen_free(kn_wire_gen_req *req);
/* Packs req into a new buffer (*len its size); NULL on OOM. */
uint8_t *kn_wire_gen_pack(const kn_wire_gen_req *req, size_t *len);

struct kn_wire_index;
/* 1 when two indexes of the same bytes agree on every resource, scope and
 * span header field and on the rejected count (kn_wire_index_trusted
 * against kn_wire_index_request in tests and fuzzing). */
int kn_wire_index_same(const struct kn_wire_index *a, const struct kn_wire_index *b);

#endif
