/* SPDX-License-Identifier: Apache-2.0
 * kn_journey_int: the journey processor's instance, shard state and the
 * helpers its files share (head scan, span rewrite). Not a public header.
 *
 * The instance is immutable after start apart from the per-shard gauge
 * atomics and the registry (lock-free, see kn_journey_registry.h). A shard's
 * state is touched only by that shard's worker. */
#ifndef KN_JOURNEY_INT_H
#define KN_JOURNEY_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../../collector/core/kn_batch.h"
#include "../../collector/core/kn_component.h"
#include "../../collector/core/kn_metrics.h"
#include "../../collector/wire/kn_wire.h"
#include "../../collector/wire/kn_wire_edit.h"
#include "../tail_sampling/kn_tail_frame.h"
#include "../tail_sampling/kn_tail_store.h"
#include "kn_journey.h"
#include "kn_journey_redis.h"

#define KN_JOURNEY_MAX_LINKS 16    /* distinct linked trace ids considered per trace */
#define KN_JOURNEY_MAX_PLAN 64     /* attributes appended per span (propagated + id) */

/* One configured key to propagate (flattened over the propagate items). */
struct kn_journey_key {
	const char *key;           /* source key (the config's string) */
	size_t keylen;
	int from_resource;
	char *out_key;             /* prefix + key (owned) */
	size_t out_len;
};

struct kn_journey_metrics {
	struct kn_metric *started, *joined, *closed_without_head, *closed_unavailable, *late_spans;
	struct kn_metric *evictions, *early_memory, *attrs_truncated;
	struct kn_metric *lost_malformed, *lost_oom, *budget_overrun;
};

struct kn_journey_gauges {
	_Atomic int64_t traces, bytes;
};

struct kn_journey_proc {
	struct kn_journey_cfg cfg;          /* shallow copy: strings stay the runtime's */
	uint32_t nshards;
	struct kn_journey_key *keys;
	uint32_t nkeys;
	struct kn_journey_registry *reg;    /* created at start */
	struct kn_jr *redis;                /* the shared second level; NULL without registry.redis */
	int write_all;                      /* registry.redis.write: all */
	uint32_t remote_slots;              /* per-shard cache of heads found in Redis */
	struct kn_metrics *metrics;         /* for the client's metrics at start */
	char esc_id[128];                   /* the instance id, label-escaped */
	struct kn_journey_metrics m;
	struct kn_journey_gauges *gauges;   /* [nshards] */
	size_t shard_max_bytes;
	uint64_t poll_ns;                   /* re-check of traces waiting for a linked head */
};

/* ---- head scan (kn_journey_head.c) ---- */

/* What a buffered trace says about its journey. */
struct kn_journey_scan {
	int has_root;
	int has_producer;                   /* a span of kind PRODUCER */
	/* the head candidate: the root span, else the earliest-starting span */
	const uint8_t *span;
	uint32_t span_len;
	const uint8_t *resource;            /* its Resource bytes; NULL when absent */
	uint32_t resource_len;
	uint8_t links[KN_JOURNEY_MAX_LINKS][16];
	uint32_t nlinks;                    /* distinct linked trace ids (not the trace's own) */
};

/* Walks a trace buffer (concatenated ResourceSpans). 0, or -1 when it holds
 * no span at all. */
int kn_journey_scan(const uint8_t *data, size_t len, const uint8_t self_id[16],
		    struct kn_journey_scan *out);

/* Fills h as the head of a new journey whose id is trace_id, with the
 * configured attributes of the scan's head span / resource encoded and
 * renamed. Returns the number of attributes left out for lack of room. */
uint32_t kn_journey_head_build(const struct kn_journey_proc *p, const struct kn_journey_scan *sc,
			       const uint8_t trace_id[16], struct kn_journey_head *h);

/* The first KeyValue named key[0..keylen) among the fields `field` of msg:
 * 1 and its AnyValue bytes (*val NULL, *vlen 0 when it has no value), or 0. */
int kn_journey_find_attr(const uint8_t *msg, uint32_t len, uint32_t field, const char *key,
			 size_t keylen, const uint8_t **val, uint32_t *vlen);

/* ---- span rewrite (kn_journey_rewrite.c) ---- */

/* One attribute to append: its encoded Span.attributes field and its key. */
struct kn_journey_add {
	const uint8_t *field;
	uint32_t field_len;
	const uint8_t *key;
	uint32_t key_len;
	int replace;                        /* remove the span's own attributes with this key first */
};

/* The attributes every span of a journey gets. */
struct kn_journey_plan {
	struct kn_journey_add add[KN_JOURNEY_MAX_PLAN];
	uint32_t n;
	uint8_t id_field[128];              /* encoded journey id attribute */
};

/* Builds the plan from a head: its attrs (replace = overwrite) and the
 * journey id attribute (replace always) when idkey is not empty. */
void kn_journey_plan_build(struct kn_journey_plan *pl, const struct kn_journey_head *h,
			   int overwrite, const char *idkey);

struct kn_journey_rw {
	struct kn_wire_edit ed;             /* the splicing editor (and its index) */
};

void kn_journey_rw_init(struct kn_journey_rw *w);
void kn_journey_rw_free(struct kn_journey_rw *w);

/* A new chunk (refs 1, charged 0, headers filled by indexing) holding
 * buf[0..len) (concatenated ResourceSpans) with every span rewritten per
 * plan; it must index exactly nspans spans. NULL with err set on OOM or a
 * malformed buffer. */
struct kn_chunk *kn_journey_rw_chunk(struct kn_journey_rw *w, const uint8_t *buf, size_t len,
				     uint32_t nspans, const struct kn_journey_plan *pl,
				     struct kn_err *err);

/* ---- shard entry points (kn_journey_shard.c) ---- */

int kn_journey_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err);
int kn_journey_process(void *state, struct kn_batch *b, const struct kn_emit *next);
uint64_t kn_journey_tick(void *state, uint64_t now_ns, const struct kn_emit *next);
void kn_journey_flush(void *state, const struct kn_emit *next);
void kn_journey_flush_round(void *state, unsigned round, const struct kn_emit *next);
void kn_journey_shard_destroy(void *state);

#endif
