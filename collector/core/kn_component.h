/* SPDX-License-Identifier: Apache-2.0
 * kn_component: the one interface every receiver, processor and exporter
 * implements, as a const struct with named-field initializers. The collector
 * lists the components it links in one registry table (kn_registry.c);
 * nothing else in the collector knows a component's insides.
 *
 * Lifecycle: create -> start -> shutdown -> destroy.
 *  - create opens nothing (no sockets, no threads): it checks and keeps config.
 *  - start opens sockets and starts threads.
 *  - shutdown stops intake and flushes what was accepted, until deadline_ns
 *    (kn_now_ns clock). It is safe twice and safe before start.
 *  - destroy frees everything; NULL-safe and safe on a half-built instance.
 *
 * Ownership of data: a processor's process() and an exporter's export() are
 * always handed ownership of the batch, whatever they return. */
#ifndef KN_COMPONENT_H
#define KN_COMPONENT_H

#include <stdint.h>
#include <stdio.h>

#include "kn_batch.h"
#include "kn_err.h"

struct kn_cfg_field;
struct kn_metrics;
struct kn_runtime;

enum kn_kind { KN_RECEIVER, KN_PROCESSOR, KN_EXPORTER, KN_EXTENSION };

/* What extensions offer (kn_extension.h); a component finds them by id
 * through kn_extension_find. */
struct kn_server_auth_ops;
struct kn_client_auth_ops;
struct kn_storage_ops;

/* What a component instance is told about its place in the collector. */
struct kn_component_ctx {
	const char *id;             /* as written in the config: "otlp", "otlp/secondary" */
	struct kn_metrics *metrics;
	struct kn_runtime *rt;      /* receivers: for kn_producer_create */
	uint16_t source;            /* receivers: the index to give kn_producer_create */
	uint32_t nshards;
};

/* Where a processor sends what it forwards; the callee owns the batch. */
struct kn_emit {
	int (*fn)(void *ctx, struct kn_batch *b);
	void *ctx;
};

static inline int kn_emit(const struct kn_emit *e, struct kn_batch *b)
{
	return e->fn(e->ctx, b);
}

struct kn_component {
	const char *type;                 /* "otlp", "batch", "otlphttp", ... */
	enum kn_kind kind;
	const char *summary;              /* one line for --help */
	size_t config_size;               /* bytes of the config struct */
	const struct kn_cfg_field *config_fields;
	/* Cross-field checks after the table applied (optional). */
	int (*validate)(const void *cfg, const char *path, struct kn_err *err);

	int (*create)(const struct kn_component_ctx *ctx, const void *cfg, void **inst,
		      struct kn_err *err);
	int (*start)(void *inst, struct kn_err *err);
	void (*shutdown)(void *inst, uint64_t deadline_ns);
	void (*destroy)(void *inst);

	/* Processors: 1 when spans of one trace may reach different shards
	 * (the processor keeps nothing per trace across chunks, like batch).
	 * When every processor of every pipeline says so, receivers send each
	 * request whole to one shard instead of splitting it by trace id. */
	uint8_t any_shard;
	/* Processors: state per shard, touched only by that shard's worker. */
	int (*shard_create)(void *inst, uint32_t shard, void **state, struct kn_err *err);
	/* Takes ownership of b. Returns KN_OK (forwarded), KN_RETAINED or KN_DROP. */
	int (*process)(void *state, struct kn_batch *b, const struct kn_emit *next);
	/* Timers: called at the latest when now_ns reaches the last returned
	 * deadline, and possibly earlier (after new data arrived); it acts only on
	 * what is due and returns the next deadline (0 = none). Optional. */
	uint64_t (*tick)(void *state, uint64_t now_ns, const struct kn_emit *next);
	/* Emit everything retained (shutdown). Optional. On its own it must
	 * leave nothing behind (tests and callers without phases use it). */
	void (*flush)(void *state, const struct kn_emit *next);
	/* Shutdown in rounds (optional). The shard workers stop together: every
	 * shard drains its rings; then, stage by stage in pipeline order, round
	 * r = 0 .. flush_rounds-1 runs on every shard (in parallel), and no
	 * shard starts round r+1, or the next stage, before every shard ended
	 * round r. What a round emits on a shard goes through that shard's later
	 * stages (they flush afterwards). So a round may rely on what other
	 * shards' state published in earlier rounds (e.g. round 0 releases and
	 * publishes journey heads, round 1 the traces that wait for them).
	 *   flush_rounds 0 or 1: one round, calling flush (if set).
	 *   flush_rounds >= 2:   flush_round(state, r, next) for each round
	 *                        (required then); flush is not called. The last
	 *                        round must leave nothing behind. */
	uint8_t flush_rounds;
	void (*flush_round)(void *state, unsigned round, const struct kn_emit *next);
	void (*shard_destroy)(void *state);

	/* Exporters: called from any shard worker thread, concurrently. Takes
	 * ownership of b: queues it (KN_OK) or drops it and counts why (KN_DROP). */
	int (*export)(void *inst, struct kn_batch *b);

	/* Any kind, optional: writes the component's Prometheus rule groups
	 * (`kansatsu slo-rules`) as YAML list items of a top-level `groups:`
	 * key, each starting "  - name: ". Called on a checked config, before
	 * anything starts; id is the component's id as configured ("sli/edge").
	 * Returns the number of groups written (0: none), or KN_ERR. */
	int (*prom_rules)(const void *cfg, const char *id, FILE *out, struct kn_err *err);

	/* Extensions: the interfaces this one offers (NULL: not offered).
	 * Extensions listed in service.extensions are created before, started
	 * before and shut down after every other component. */
	const struct kn_server_auth_ops *server_auth;
	const struct kn_client_auth_ops *client_auth;
	const struct kn_storage_ops *storage;
};

/* The registry (kn_registry.c): NULL-terminated. */
extern const struct kn_component *const kn_components[];
const struct kn_component *kn_component_find(enum kn_kind kind, const char *type);

#endif
