/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_emit: turns a kept trace's buffer (ResourceSpans messages, see
 * kn_tail_trace.h) into one chunk for the next pipeline stage.
 *
 * Without a rewrite the bytes are copied as they are. With one, every span
 * gets fields appended to its bytes (protobuf merges repeated fields and
 * takes the last occurrence of a singular one):
 *  - an `attributes` entry (field 9) KeyValue{key, string_value: policy}
 *    naming the policy that kept the trace (policy_attribute), and/or
 *  - a `trace_state` (field 3) computed by kn_tracestate_set_th from
 *    the span's current trace_state (its last field 3), carrying the
 *    consistent-sampling threshold ot=th (left as it is when the result
 *    would not fit 2 KiB);
 * and the enclosing ScopeSpans / ResourceSpans lengths are written anew
 * (two passes: group sizes first, then the bytes). Unknown fields at the
 * framing levels are copied verbatim. Then kn_wire_index_trusted rebuilds
 * the span headers from the new bytes (the nested messages were checked at
 * ingest); it must find exactly the trace's spans, so a malformed buffer can
 * never leave as a half-indexed chunk.
 *
 * Kept traces are gathered: kn_tail_emit_add writes a trace's (rewritten)
 * bytes after those already pending, indexes only the new part and rebases
 * its span headers (offsets by the bytes before it, resource_idx /
 * scope_idx by the ResourceSpans / ScopeSpans before it), which is exactly
 * what indexing the whole concatenation would give: an
 * ExportTraceServiceRequest is a concatenation of ResourceSpans.
 * kn_tail_emit_take then turns everything pending into ONE chunk, so a
 * decision round leaves as a few large chunks instead of one per trace
 * (fewer allocations, batch entries and exporter slices). The bytes are in
 * the order the traces were added, the same as the per-trace chunks'.
 *
 * Costs: the trace is written into the pending buffer, then copied once
 * into the chunk at take; one index pass of its bytes; per-shard scratch
 * only grows. Threads: a kn_tail_emit is per shard. */
#ifndef KN_TAIL_EMIT_H
#define KN_TAIL_EMIT_H

#include <stddef.h>
#include <stdint.h>

#include "../../collector/core/kn_chunk.h"
#include "../../collector/core/kn_err.h"
#include "../../collector/wire/kn_wire.h"

struct kn_tail_rewrite {
	const uint8_t *attr;      /* an encoded Span.attributes field to append; NULL = none */
	uint32_t attr_len;
	int has_threshold;        /* set ot=th:<threshold> in every span's trace_state */
	uint64_t threshold;
};

struct kn_tail_emit {
	struct kn_wire_index ix;
	uint32_t *g;
	uint32_t cap_g;
	/* pending output (grow-only), taken by kn_tail_emit_take */
	uint8_t *buf;
	size_t len, cap;
	struct kn_span_hdr *hdr;
	uint32_t n, cap_hdr;          /* spans pending */
	uint32_t nres, nscopes;       /* ResourceSpans / ScopeSpans pending */
	uint64_t ns;                  /* the caller's: the accepted_ns the pending spans carry */
};

void kn_tail_emit_init(struct kn_tail_emit *e);
void kn_tail_emit_free(struct kn_tail_emit *e);

/* Appends buf[0..len) with rw applied (rw NULL or empty: a plain copy) to
 * the pending output. It must hold exactly nspans spans. KN_OK, or KN_ERR
 * on OOM, a malformed buffer or a pending output that would pass 2^31-1
 * bytes, with err set; the pending output is then unchanged. */
int kn_tail_emit_add(struct kn_tail_emit *e, const uint8_t *buf, size_t len, uint32_t nspans,
		     const struct kn_tail_rewrite *rw, struct kn_err *err);

/* Spans / bytes pending. */
static inline uint32_t kn_tail_emit_pending_spans(const struct kn_tail_emit *e) { return e->n; }
static inline size_t kn_tail_emit_pending_bytes(const struct kn_tail_emit *e) { return e->len; }

/* A new chunk (refs 1, charged 0, span headers filled) holding everything
 * pending, which is then empty. NULL when nothing is pending, or on OOM
 * with err set (the pending spans are dropped: count them first). */
struct kn_chunk *kn_tail_emit_take(struct kn_tail_emit *e, struct kn_err *err);

/* Drops what is pending. */
void kn_tail_emit_clear(struct kn_tail_emit *e);

/* add + take of one trace (nothing else may be pending). */
struct kn_chunk *kn_tail_emit_chunk(struct kn_tail_emit *e, const uint8_t *buf, size_t len,
				    uint32_t nspans, const struct kn_tail_rewrite *rw,
				    struct kn_err *err);

/* Encodes the Span.attributes field KeyValue{key, AnyValue{string_value}}
 * into out[cap]; returns its length, 0 when it does not fit. */
size_t kn_tail_emit_attr(const char *key, const char *value, uint8_t *out, size_t cap);

#endif
