/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_filter: a chunk with some of its spans left out, and optionally
 * bytes appended to some kept spans, in one copy. For per-span samplers
 * (the probabilistic_sampler processor): dropping spans is what
 * kn_wire_edit's splices cannot express (they edit inside messages), and
 * a sampler that also rewrites the kept spans' trace_state would otherwise
 * copy the chunk twice.
 *
 * keep[k] describes c->spans[k]: keep it or not, and add_len bytes at
 * arena + add_off to append to its Span message (protobuf merges repeated
 * fields and takes the last occurrence of a singular one, so an appended
 * `trace_state` field replaces the old one). Spans are matched to the chunk's
 * bytes by offset, in order. Resource and scope bytes, kept spans' bytes and
 * unknown fields at the framing levels are copied verbatim; a ScopeSpans
 * whose spans were all left out is left out, and so is a ResourceSpans
 * whose ScopeSpans all were (as OpenTelemetry's processors remove empty
 * groups). Lengths are written anew (two passes: sizes, then bytes); the
 * kept spans' headers are carried over with their offsets moved (the bytes
 * are not indexed again), so appended bytes must not be fields a span
 * header records (ids, times, name, kind, status, flags, attributes,
 * links): `trace_state` is what the samplers append.
 *
 * The caller decides when to call: when every span is kept unchanged it
 * should pass the chunk on by reference, and when none is kept, unref it.
 *
 * Scratch (group sizes) lives in the kn_wire_filter and only
 * grows. Threads: one per thread (per shard). */
#ifndef KN_WIRE_FILTER_H
#define KN_WIRE_FILTER_H

#include <stdint.h>

#include "kn_wire.h"
#include "../core/kn_chunk.h"
#include "../core/kn_err.h"

struct kn_wire_keep {
	uint32_t keep;              /* 1: the span stays */
	uint32_t add_off, add_len;  /* bytes of the arena appended to it (add_len 0: none) */
};

struct kn_wire_filter {
	uint32_t *g;
	uint32_t cap_g;
};

void kn_wire_filter_init(struct kn_wire_filter *f);
void kn_wire_filter_free(struct kn_wire_filter *f);

/* A new chunk (refs 1, charged 0; shard, source, accepted_ns and ctx copied
 * from c) holding c's kept spans, or NULL with KN_OK when none is kept.
 * KN_ERR with err set on OOM or when c's bytes and headers disagree. */
int kn_wire_filter_run(struct kn_wire_filter *f, const struct kn_chunk *c,
		       const struct kn_wire_keep *keep, const uint8_t *arena,
		       struct kn_chunk **out, struct kn_err *err);

#endif
