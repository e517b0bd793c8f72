/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_edit: edits Resources and Spans inside encoded OTLP bytes by
 * splicing, so that everything nobody changes is copied byte for byte.
 *
 * The caller walks nothing itself: kn_wire_edit_run walks a buffer of
 * concatenated ResourceSpans (a chunk's data, a tail-store trace) and calls
 *   ops->resource(ctx, ed, res)  once per ResourceSpans (res->msg NULL when
 *                                the ResourceSpans has no Resource: splices
 *                                at offset 0 then create one), and
 *   ops->scope(ctx, ed, sc)      once per ScopeSpans' InstrumentationScope
 *                                (optional; msg NULL when absent), and
 *   ops->span(ctx, ed, sp)       once per Span, with its Resource and scope
 *                                (the original bytes) for matching.
 * A callback describes its change as splices on the message it was given:
 * kn_wire_edit_splice(ed, off, del, n) removes del bytes at off and inserts
 * n bytes there, returning where to write those n bytes. Splices of one
 * message must come in increasing offset and not overlap. A message with no
 * splice is copied whole; ScopeSpans / ResourceSpans lengths are written anew
 * only when something inside them changed size (otherwise every byte of
 * theirs is copied too). Unknown fields are kept where they were.
 *
 * Two passes: the callbacks run once (pass 1, sizes of every changed group
 * recorded), then the output is written from the recorded splices (pass 2),
 * then the span headers of the new chunk: carried over from `like` when it
 * is the input chunk (a copied span's header moved to its new offset, a
 * spliced span's read again alone, kn_wire_span_reread), else by
 * kn_wire_index_trusted over the whole output.
 * When no callback spliced anything the input is left alone and *out is NULL:
 * the caller keeps passing the original chunk by reference.
 *
 * Costs: pass 1 is one walk of the framing (plus what the callbacks read);
 * pass 2 one copy; all scratch (splices, sizes, inserted bytes, the index)
 * lives in the kn_wire_edit and only grows: no allocation per span once warm.
 * Threads: one kn_wire_edit per thread (per shard).
 *
 * kn_wire_attrs.h builds on this to edit KeyValue lists (attributes). */
#ifndef KN_WIRE_EDIT_H
#define KN_WIRE_EDIT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kn_wire.h"
#include "../core/kn_chunk.h"
#include "../core/kn_err.h"

struct kn_wire_splice {
	uint32_t off;       /* in the message: start of the removed bytes / insertion point */
	uint32_t del;       /* bytes removed at off */
	uint32_t ins_off;   /* inserted bytes: offset in the editor's arena */
	uint32_t ins_len;
};

/* Per visited message (Resource or Span): its new length and its splices. */
struct kn_wire_edit_rec {
	uint32_t new_len;
	uint32_t nsplices;
	int32_t nattrs;     /* a Span whose splices only touched its attributes:
			     * their new count (its header is patched, not read
			     * again); -1 otherwise */
};

struct kn_wire_edit {
	struct kn_wire_splice *sp;   uint32_t nsp, cap_sp;
	struct kn_wire_edit_rec *rec; uint32_t nrec, cap_rec;
	uint32_t *g;                 uint32_t ng, cap_g;     /* group sizes (pass 1) */
	uint8_t *arena;              uint32_t narena, cap_arena;
	struct kn_wire_index ix;
	/* the message being edited (checks on splices) */
	uint32_t cur_len, cur_end, cur_first;
	int32_t cur_nattrs;          /* kn_wire_edit_span_nattrs's count, or -1 */
	int cur_other;               /* a splice not declared as the span's attributes */
	int failed;
	int scope_ops;               /* the run visits scopes (records for them) */
};

/* What a span callback is told. Pointers are into the input buffer. */
struct kn_wire_edit_span {
	const uint8_t *resource; uint32_t resource_len;  /* NULL when absent */
	const uint8_t *scope; uint32_t scope_len;        /* InstrumentationScope; NULL when absent */
	const uint8_t *span; uint32_t span_len;          /* the Span message */
	uint32_t resource_idx;                           /* ResourceSpans index in the buffer */
};

struct kn_wire_edit_res {
	const uint8_t *msg; uint32_t len;   /* the Resource message; NULL when absent */
	uint32_t resource_idx;
};

/* An InstrumentationScope (ScopeSpans field 1). */
struct kn_wire_edit_scope {
	const uint8_t *msg; uint32_t len;   /* NULL when the ScopeSpans has none */
	uint32_t resource_idx;
};

struct kn_wire_edit_ops {
	/* Each optional; 0, or -1 to abandon the run (KN_ERR). */
	int (*resource)(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_res *res);
	int (*span)(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_span *sp);
	/* Once per ScopeSpans, at its scope field (the first one; before the
	 * spans when, as encoders write it, the scope comes first), or before
	 * its spans with msg NULL when it has none (splices at 0 create one). */
	int (*scope)(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_scope *sc);
};

void kn_wire_edit_init(struct kn_wire_edit *ed);
void kn_wire_edit_free(struct kn_wire_edit *ed);

/* Inside a callback: replace message bytes [off, off+del) with n new bytes,
 * written by the caller at the returned address (valid until the next
 * splice). NULL when out of memory or off/del are out of order or bounds
 * (the run then fails). */
uint8_t *kn_wire_edit_splice(struct kn_wire_edit *ed, uint32_t off, uint32_t del, uint32_t n);

/* For kn_wire_attrs_emit on a Span's attributes (field 9): the same as
 * kn_wire_edit_splice for splices that replace, delete or append whole
 * attribute KeyValues, then kn_wire_edit_span_nattrs with their new count.
 * When every splice of a span came this way, the span's output header is its
 * input header with offsets, length and nattrs patched instead of read
 * again (kn_wire_span_reread); any other splice, or a second count for the
 * same message, falls back to reading it again. */
uint8_t *kn_wire_edit_splice_span_attrs(struct kn_wire_edit *ed, uint32_t off, uint32_t del,
					uint32_t n);
void kn_wire_edit_span_nattrs(struct kn_wire_edit *ed, uint32_t nattrs);

/* Edits buf[0..len) (concatenated ResourceSpans). KN_OK with *out NULL when
 * nothing changed; KN_OK with *out a new chunk (refs 1, charged 0, span
 * headers filled; shard / source / accepted_ns / ctx copied from `like`
 * when not NULL) that must index exactly nspans spans; KN_ERR with err set
 * (malformed buffer, OOM, a callback failing, a result over 2 GiB). */
int kn_wire_edit_run(struct kn_wire_edit *ed, const struct kn_wire_edit_ops *ops, void *ctx,
		     const uint8_t *buf, size_t len, uint32_t nspans,
		     const struct kn_chunk *like, struct kn_chunk **out, struct kn_err *err);

/* Fills c's span headers by indexing c->data (trusted: bytes the project
 * wrote), which must hold exactly c->nspans spans, none rejected: what a
 * run does for an output whose headers it cannot carry, for callers that
 * build a chunk from bytes no callback changed. KN_OK / KN_ERR. */
int kn_wire_edit_index(struct kn_wire_edit *ed, struct kn_chunk *c, struct kn_err *err);

/* Runs whose span headers were carried over from `like` rather than indexed
 * again (process-wide, relaxed; tests read it). */
extern _Atomic uint64_t kn_wire_edit_carried;

struct kn_batch;
/* kn_wire_edit_run over every chunk of b: a changed chunk is replaced in b
 * by its edited copy (charged to the memory budget when it fits there; the
 * original is unref'd), an unchanged one stays by reference. A chunk that
 * cannot be edited (out of memory) is removed from b and unref'd: its spans
 * are added to *dropped and err says why (the caller counts them), so data
 * an action had to hash or delete never leaves unedited. KN_OK, or KN_ERR
 * when something was dropped. */
int kn_wire_edit_batch(struct kn_wire_edit *ed, const struct kn_wire_edit_ops *ops, void *ctx,
		       struct kn_batch *b, uint64_t *dropped, struct kn_err *err);

#endif
