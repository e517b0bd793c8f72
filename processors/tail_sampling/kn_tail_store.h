/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_store: one shard's buffered traces for the tail sampler.
 *
 * One record per trace (no allocation per span): the 16-byte id, the
 * aggregates of kn_tail_trace.h updated at append, and one growable byte
 * buffer holding the trace's spans as ResourceSpans messages (the first
 * part is sized exactly, later parts grow it by half again, so a trace that
 * arrives in one chunk holds no slack). Records are numbered by u32 and
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
 * table at their capacities, and every buffer's capacity (W1-like traces:
 * encoded size + ~60 bytes per span, see tests/unit/test_tail_store.c; W1
 * itself in bench/bench_tail's steady state: + ~68.5, of which ~16 are the
 * 80-byte record (+8 bytes of root links with root_wait), ~2 the table and
 * ~50 the Resource and scope bytes every trace's buffer copies).
 * kn_tail_store_would
 * tells what an append would make it; the caller keeps it under its bound.
 *
 * Ownership: the store owns records and buffers; views are valid until
 * the next call that changes the store. Threads: one shard worker. */
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

/* Appends spans idx[0..n) of c (all of trace t, chunk order), framed in
 * `size` bytes per kn_tail_frame_size (whose g[] is passed on), and updates
 * the aggregates. KN_OK, or KN_ERR on OOM (the trace is then unchanged). */
int kn_tail_store_append(struct kn_tail_store *s, uint32_t t, const struct kn_tail_frame *f,
			 const struct kn_chunk *c, const uint32_t *idx, uint32_t n,
			 const uint32_t *g, uint64_t size, uint64_t now);

/* The policies' view of trace t (valid until the store changes). */
void kn_tail_store_view(const struct kn_tail_store *s, uint32_t t, struct kn_tail_trace *v);

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
size_t kn_tail_store_trace_bytes(const struct kn_tail_store *s, uint32_t t); /* encoded bytes of t */
/* The clamped clock: max of every `now` seen so far. */
uint64_t kn_tail_store_now(const struct kn_tail_store *s, uint64_t now);

#endif
