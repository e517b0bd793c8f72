/* SPDX-License-Identifier: Apache-2.0
 * The `journey` processor: places every trace in its user journey and
 * carries the journey head's attributes onto every later span, across
 * traces joined by span links (async boundaries), before export.
 *
 *   propagate:                       what to carry (list; may be empty)
 *     - from: span                   span | resource (of the head span)
 *       keys: [tenant.plan, room.type]
 *       prefix: ""                   rename: the span gets prefix + key
 *   overwrite: false                 a span's own attribute with the same
 *                                    (renamed) key wins unless true
 *   journey_id_attribute: journey.id written on every span: the journey id
 *                                    (head trace id, 32 lowercase hex); "" = off
 *   wait_window: 2s                  first span -> release at the latest
 *   root_grace: 200ms                root span -> release (rest of the trace)
 *   ttl: 10m                         how long journey entries stay published
 *   max_heads: 65536                 registry slots over all shards (~630 B each)
 *   max_memory_mib: 128              bound of the per-shard trace buffers
 *   registry:                        a second level shared by a fleet (optional)
 *     redis:
 *       endpoint: redis:6379         host:port (or a unix socket path)
 *       username: "", password: "", db: 0
 *       key_prefix: "kansatsu:j:"    key = prefix + 32 hex digits of the trace id
 *       ttl: 10m                     how long a published entry can be found
 *       timeout: 200ms               per round trip; past it the connection is reset
 *       max_pending: 65536           lookups + writes waiting; past it: counted, not queued
 *       write: producers             producers (traces with a PRODUCER span) | all
 *
 * Journeys. A trace is buffered per shard (the tail sampler's trace store)
 * until root_grace after its root span arrived, or wait_window after its
 * first span. Then its journey is decided:
 *  - Links considered: the links of its root span and of its CONSUMER spans
 *    (span kind 5), to other traces (up to 16 distinct linked trace ids).
 *  - If there are such links, the journey is that of the linked trace whose
 *    entry is in the registry with the EARLIEST head start time (a batch
 *    consumer with several links joins the oldest journey among them; ties
 *    go to the first link in span order). While none of the linked traces
 *    is published yet, the trace keeps waiting, polled at most every
 *    min(root_grace, 100ms), until wait_window after its first span; then it
 *    is released as the head of its own journey and counted in
 *    kansatsu_journey_closed_without_head_total.
 *  - Otherwise the trace is the head of its own journey: its root span is
 *    the head. A trace released at wait_window without any root span and
 *    without usable links is also its own head, with its earliest-starting
 *    span standing in for the missing root, and counted as closed without
 *    head.
 * The trace's entry (journey id, head summary, propagated attributes
 * encoded and renamed) is published in the registry under its own trace id,
 * so traces linking to it later join the same journey (chains work: the
 * entry carries the journey's head, not the trace's own root).
 *
 * Rewrite: every span gets the propagated attributes it does not already
 * have (overwrite: true removes the span's own attributes with those keys
 * first, so first-wins readers such as pdata see the head's value) and the
 * journey id attribute (any existing attribute with that key is replaced).
 * Nothing else in a span changes: trace_state, links, events, flags and
 * unknown fields stay byte for byte; Resource and scope bytes are verbatim.
 * Head attributes that do not fit KN_JOURNEY_ATTRS_MAX encoded bytes are
 * left out (last keys first), counted in kansatsu_journey_attrs_truncated_total.
 *
 * Late spans (their trace already released, its entry still in the
 * registry): rewritten from the entry at once and forwarded. Spans of a
 * trace whose entry expired (ttl) or was evicted start a new buffered trace.
 *
 * Bounds: per shard max_memory_mib / shards MiB of buffered traces; when a
 * new part would pass it, the OLDEST traces are released early (journey
 * decided with what is known then), counted in
 * kansatsu_journey_released_early_total{reason="memory"}. Registry: max_heads
 * / shards slots per shard of ~630 bytes each (committed as written).
 *
 * Shutdown (flush): two rounds on every shard with a barrier between them
 * (flush_rounds = 2): round 0 releases and publishes every trace that does
 * not wait for a head from elsewhere, round 1 releases the rest, so a trace
 * waiting for a linked head finds it if the head was anywhere in the
 * collector (chains of up to two shard crossings). Only a head that never
 * arrived is counted as closed without head. Nothing is dropped.
 *
 * Metrics (label processor="<id>"): kansatsu_journey_started_total,
 * kansatsu_journey_traces_joined_total,
 * kansatsu_journey_closed_without_head_total{reason=head_not_seen|registry_unavailable},
 * kansatsu_journey_late_spans_total, kansatsu_journey_registry_evictions_total,
 * kansatsu_journey_released_early_total{reason}, kansatsu_journey_spans_lost_total{reason},
 * kansatsu_journey_attrs_truncated_total, gauges kansatsu_journey_traces_in_memory,
 * kansatsu_journey_bytes_in_memory.
 *
 * Across processes (registry.redis, kn_journey_redis.h): a trace whose links
 * are not found in this process is looked up in Redis (one MGET per shard
 * round for every waiting trace), the answers cached per shard; a trace
 * another trace can link to is written there when released (one SET each,
 * pipelined per round). A lookup the registry could not answer leaves the
 * trace waiting for a local head; released without one, it is counted with
 * reason="registry_unavailable" instead of "head_not_seen".
 *
 * Threads: config and instance are immutable after start; per-shard state
 * is touched by its shard worker only; the registry is shared lock-free. */
#ifndef KN_JOURNEY_H
#define KN_JOURNEY_H

#include <stddef.h>
#include <stdint.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_component.h"
#include "kn_journey_registry.h"

/* One `propagate` item. */
struct kn_journey_prop {
	char *from;                  /* "span" | "resource" */
	struct kn_strlist keys;
	char *prefix;                /* "" = keep the key */
};

struct kn_journey_props {
	struct kn_journey_prop *v;
	size_t n;
};

/* journey.registry.redis */
struct kn_journey_redis_cfg {
	char *endpoint;
	int enabled;                 /* the block is present (not first: present_off 0 means none) */
	char *username;
	char *password;
	uint64_t db;
	char *key_prefix;
	uint64_t ttl_ns;
	uint64_t timeout_ns;
	uint64_t max_pending;
	char *write;                 /* "producers" | "all" */
};

struct kn_journey_registry_cfg {
	struct kn_journey_redis_cfg redis;
};

struct kn_journey_cfg {
	struct kn_journey_props propagate;
	int overwrite;
	char *journey_id_attribute;  /* "" = off */
	uint64_t wait_window_ns;
	uint64_t root_grace_ns;
	uint64_t ttl_ns;
	uint64_t max_heads;
	uint64_t max_memory_mib;
	struct kn_journey_registry_cfg registry;
};

extern const struct kn_component kn_processor_journey;

/* The registry of the first journey processor instance that started, for
 * other processors (sli) that want journey heads; NULL when none is
 * running. Valid until that instance is destroyed (after every shard
 * stopped); readers use kn_journey_registry_get, owner shard =
 * kn_shard_of(trace id, kn_journey_registry_nshards(r)). */
const struct kn_journey_registry *kn_journey_registry_shared(void);

#endif
