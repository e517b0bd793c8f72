/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_emit: turns a kept trace's buffer (ResourceSpans messages, see
 * kn_tail_trace.h) into one chunk for the next pipeline stage.
 *
 * Without a rewrite the bytes are copied as they are. With one, every span
 * gets fields appended to its bytes (protobuf merges repeated fields and
 * takes the last occurrence of a singular one):
 *  - an `attributes` entry (field 9) KeyValue{key, string_value: policy}
 *    naming the policy that kept the trace (policy_attribute), and/or
 *  - a `trace_state` (field 3) computed by kn_tail_tracestate_set_th from
 *    the span's current trace_state (its last field 3), carrying the
 *    consistent-sampling threshold ot=th (left as it is when the result
 *    would not fit 2 KiB);
 * and the enclosing ScopeSpans / ResourceSpans lengths are written anew
 * (two passes: group sizes first, then the bytes). Unknown fields at the
 * framing levels are copied verbatim. Then kn_wire_index_request rebuilds
 * the span headers from the new bytes; it must find exactly the trace's
 * spans, so a malformed buffer can never leave as a half-indexed chunk.
 *
 * Costs: one copy of the trace plus one index pass; per-shard scratch only
 * grows. Threads: a kn_tail_emit is per shard. */
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
};

void kn_tail_emit_init(struct kn_tail_emit *e);
void kn_tail_emit_free(struct kn_tail_emit *e);

/* A new chunk (refs 1, charged 0, span headers filled) holding buf[0..len)
 * with rw applied (rw NULL or empty: a plain copy). It must hold exactly
 * nspans spans. NULL on OOM or a malformed buffer, with err set. */
struct kn_chunk *kn_tail_emit_chunk(struct kn_tail_emit *e, const uint8_t *buf, size_t len,
				    uint32_t nspans, const struct kn_tail_rewrite *rw,
				    struct kn_err *err);

/* Encodes the Span.attributes field KeyValue{key, AnyValue{string_value}}
 * into out[cap]; returns its length, 0 when it does not fit. */
size_t kn_tail_emit_attr(const char *key, const char *value, uint8_t *out, size_t cap);

#endif
