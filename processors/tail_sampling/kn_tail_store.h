/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_store: one shard's buffered traces for the tail sampler.
 *
 * One record per trace (no allocation per span): the 16-byte id, the
 * aggregates of kn_tail_trace.h updated at append, and one growable byte
 * buffer of parts (the first append is sized exactly, later ones grow it by
 * half again, so a trace that arrives in one chunk holds no slack). A part
 * is one run of spans of one (Resource, scope) group: the group's id in the
 * shard's kn_tail_intern (4 bytes, little-endian, the top bit set when the
 * part shares the previous part's ResourceSpans), a varint length, then the
 * spans as ScopeSpans.spans fields (tag, length, the span bytes verbatim).
 * The Resource and scope bytes are held once per shard, not once per trace.
 * kn_tail_store_view puts them back: it writes the trace as ResourceSpans
 * messages (a valid ExportTraceServiceRequest body, what policies walk and
 * exporters send) into a scratch buffer of the store, byte for byte what
 * kn_tail_frame_write made of each append; the record keeps that size
 * (vlen), so size limits and the shard's bound see the written-out size.
 * Records are numbered by u32 and
 * allocated in slabs of 256 that never move (free list for reuse); an
 * open-addressing table of u32 slots at load <= 1/2 maps ids to records
 * (linear probing, backward-shift deletion).
 *
 * Decision timing without scanning: each record sits on an arrival list
 * ordered by first_seen, and, once its root span arrived and
 * decision_wait_after_root_received is set, on a root list ordered by
 * root_seen. Both orders are arrival orders, so the earliest deadline is at
 * one of the two heads: finding what is due and the next deadline is O(1),
 * and each trace is touched once when it is decided. Time is whatever the
 * caller passes as `now` (kn_now_ns() in production, a fake clock in tests);
 * it is clamped to never go backwards, which keeps both lists sorted when
 * chunks from different receiver threads carry slightly unordered times.
 * The arrival list is also the eviction order when a bound is hit (the
 * caller decides the oldest trace early; the store never drops one).
 *
 * Memory accounting, in bytes: the store struct, the record slabs and the
 * table at their capacities, every buffer's capacity and the group table
 * (W1 in bench/bench_tail's steady state: encoded size + ~22 bytes per
 * span, of which ~18 are the 88-byte record and ~2 the table; it was + 68.5
 * when every trace copied its Resource and scope bytes). The view's scratch
 * buffer is not counted, like the shard's other scratch arrays: it is as
 * large as the largest view (freed when a view of at most 1 MiB follows one
 * above), and callers keep every trace's view under their bound with
 * kn_tail_store_trace_bytes. kn_tail_store_would tells what an append would
 * make the store; the caller keeps that under its bound too.
 *
 * Ownership: the store owns records, buffers and groups; a view's data is
 * valid until the next view or the next call that changes the store. Threads: one shard worker. */
#ifndef KN_TAIL_STORE_H
#define KN_TAIL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../../collector/core/kn_chunk.h"
#include "kn_tail_frame.h"
#include "kn_tail_trace.h"

#define KN_TAIL_NONE UINT32_MAX

struct kn_tail_store_cfg {
	uint64_t decision_wait_ns;    /* first_seen -> decision */
	uint64_t root_wait_ns;        /* root_seen -> decision; 0 = off */
	uint32_t initial_traces;      /* sizing hint for the record array and table */
};

struct kn_tail_store;

struct kn_tail_store *kn_tail_store_create(const struct kn_tail_store_cfg *cfg);
/* Frees every record and buffer; NULL-safe. */
void kn_tail_store_destroy(struct kn_tail_store *s);

/* The record of id, or KN_TAIL_NONE. */
uint32_t kn_tail_store_find(const struct kn_tail_store *s, const uint8_t id[16]);

/* Bytes the store would hold after adding `add` buffer bytes to trace t
 * (t == KN_TAIL_NONE: to a new trace, with record and table growth). */
size_t kn_tail_store_would(const struct kn_tail_store *s, uint32_t t, size_t add);

/* A new, empty record for id (absent); KN_TAIL_NONE on OOM. */
uint32_t kn_tail_store_open(struct kn_tail_store *s, const uint8_t id[16], uint64_t now);

/* Buffer bytes that spans idx[0..n) of c take as parts (what `add` of
 * kn_tail_store_would and `size` of kn_tail_store_append mean); UINT64_MAX
 * when one run passes 2^31-1 bytes. */
uint64_t kn_tail_store_part_bytes(const struct kn_chunk *c, const uint32_t *idx, uint32_t n);

/* Appends spans idx[0..n) of c (all of trace t, chunk order; f indexes c)
 * as `size` bytes of parts (kn_tail_store_part_bytes) that the view writes
 * out as `framed` bytes (kn_tail_frame_size of the same spans), and updates
 * the aggregates. KN_OK, or KN_ERR on OOM or when the trace's view would
 * pass 2^31-1 bytes (the trace is then unchanged). */
int kn_tail_store_append(struct kn_tail_store *s, uint32_t t, const struct kn_tail_frame *f,
			 const struct kn_chunk *c, const uint32_t *idx, uint32_t n, uint64_t size,
			 uint64_t framed, uint64_t now);

/* Trace t's aggregates only (data NULL, bytes and len 0). */
void kn_tail_store_info(const struct kn_tail_store *s, uint32_t t, struct kn_tail_trace *v);
/* The policies' view of trace t, its spans written out as ResourceSpans
 * (valid until the next view or change). KN_OK, or KN_ERR when out of
 * memory for the scratch buffer (v then holds the aggregates only). */
int kn_tail_store_view(struct kn_tail_store *s, uint32_t t, struct kn_tail_trace *v);

/* Frees trace t's buffer and record. */
void kn_tail_store_remove(struct kn_tail_store *s, uint32_t t);

/* The oldest trace (first arrival), or KN_TAIL_NONE when empty. */
uint32_t kn_tail_store_oldest(const struct kn_tail_store *s);
/* A trace whose deadline is <= now, or KN_TAIL_NONE. */
uint32_t kn_tail_store_due(const struct kn_tail_store *s, uint64_t now);
/* The earliest deadline of any trace; 0 when empty. */
uint64_t kn_tail_store_next_deadline(const struct kn_tail_store *s);

uint32_t kn_tail_store_count(const struct kn_tail_store *s);   /* traces held */
uint64_t kn_tail_store_spans(const struct kn_tail_store *s);   /* spans held */
size_t kn_tail_store_bytes(const struct kn_tail_store *s);     /* accounted bytes */
/* Bytes of t's view: the sum of what its appends framed (O(1)). */
uint64_t kn_tail_store_trace_bytes(const struct kn_tail_store *s, uint32_t t);
uint32_t kn_tail_store_groups(const struct kn_tail_store *s);  /* (Resource, scope) groups held */
/* The clamped clock: max of every `now` seen so far. */
uint64_t kn_tail_store_now(const struct kn_tail_store *s, uint64_t now);

#endif
