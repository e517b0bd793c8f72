/* SPDX-License-Identifier: Apache-2.0
 * kn_journey_registry: what the shards know about journey heads, shared
 * between shards without locks.
 *
 * A journey is a set of traces joined by span links (a consumer trace whose
 * CONSUMER span links to a PRODUCER span of another trace) and parent/child
 * edges inside each trace; its head is the root span of its earliest trace,
 * and its id is that trace's id. When the journey processor has placed a
 * trace in its journey it publishes an entry for that trace id: the journey
 * id, and a summary of the head span (times, name, service, kind, status and
 * the head attributes that propagation carries). A linked trace on another
 * shard looks up the trace id it links to.
 *
 * Concurrency: one table per shard; only the shard that owns a trace id
 * (kn_shard_of(trace id)) writes entries for it, any shard reads: single
 * writer, many readers per table. Slots are fixed size (no reclamation
 * problem) and guarded by a per-slot sequence counter (odd while being
 * written; readers copy the slot and retry if the counter moved). Entries
 * expire after `ttl`; a full probe window evicts the oldest entry (counted).
 * Memory: nshards * slots_per_shard * sizeof(slot), allocated at start. */
#ifndef KN_JOURNEY_REGISTRY_H
#define KN_JOURNEY_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "../../collector/core/kn_err.h"

#define KN_JOURNEY_NAME_MAX 96     /* head span name bytes kept */
#define KN_JOURNEY_SERVICE_MAX 64  /* head service.name bytes kept */
#define KN_JOURNEY_ATTRS_MAX 384   /* encoded KeyValue bytes of the propagated head attributes */

/* The head of a journey as other spans and processors see it. */
struct kn_journey_head {
	uint8_t journey_id[16];      /* the head trace's id */
	uint8_t head_span_id[8];
	uint64_t start_ns, end_ns;   /* head span start/end (unix nanoseconds) */
	int32_t kind;                /* Span.SpanKind of the head span */
	int32_t status_code;         /* Status.StatusCode of the head span */
	uint16_t name_len, service_len, attrs_len;
	char name[KN_JOURNEY_NAME_MAX];
	char service[KN_JOURNEY_SERVICE_MAX];
	/* The attributes to propagate, already renamed (prefix applied), as
	 * encoded KeyValue messages each with its Span.attributes tag (field 9):
	 * appendable as they are to any span's bytes. */
	uint8_t attrs[KN_JOURNEY_ATTRS_MAX];
};

struct kn_journey_registry;

/* slots_per_shard is rounded up to a power of two. */
struct kn_journey_registry *kn_journey_registry_create(uint32_t nshards, uint32_t slots_per_shard,
						       uint64_t ttl_ns, struct kn_err *err);
void kn_journey_registry_destroy(struct kn_journey_registry *r);

/* Writer side: only the shard owning trace_id calls this. now_ns is
 * kn_now_ns(). Returns 1 if an unexpired entry had to be evicted. */
int kn_journey_registry_put(struct kn_journey_registry *r, uint32_t shard,
			    const uint8_t trace_id[16], const struct kn_journey_head *h, uint64_t now_ns);

/* Reader side, any thread: copies the entry for trace_id into *out.
 * Returns 1 when found and unexpired, else 0. Never blocks. */
int kn_journey_registry_get(const struct kn_journey_registry *r, uint32_t shard_of_trace,
			    const uint8_t trace_id[16], uint64_t now_ns, struct kn_journey_head *out);

/* Added by the journey processor (additive, for metrics and tests). */
/* Entries evicted before their TTL, over all shards (relaxed read). */
uint64_t kn_journey_registry_evictions(const struct kn_journey_registry *r);
/* Puts done, over all shards (relaxed read). */
uint64_t kn_journey_registry_puts(const struct kn_journey_registry *r);
/* The bytes its tables take (0 for NULL). */
size_t kn_journey_registry_bytes(const struct kn_journey_registry *r);
/* The shard count it was created with (0 for NULL). */
uint32_t kn_journey_registry_nshards(const struct kn_journey_registry *r);

#endif
