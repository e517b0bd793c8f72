/* SPDX-License-Identifier: Apache-2.0
 * kn_runtime_impl: the runtime's insides, shared only by the core files that
 * assemble and run the pipeline (kn_runtime.c, kn_ingest.c, kn_shard.c,
 * kn_pipeline.c). Components never include this. */
#ifndef KN_RUNTIME_IMPL_H
#define KN_RUNTIME_IMPL_H

#include <ck_ring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../wire/kn_wire.h"
#include "kn_component.h"
#include "kn_runtime.h"

#define KN_MAX_PRODUCERS 128
#define KN_MAX_SHARDS 256

struct kn_metric;
struct kn_httpd;

/* One configured component ("otlp/2") and its live instance. */
struct kn_instance {
	const struct kn_component *comp;
	char *id;
	char *path;        /* "receivers.otlp/2" for messages */
	void *cfg;         /* comp->config_size bytes, filled by kn_cfg_apply */
	void *inst;
	int started;
};

struct kn_pipeline {
	char *name;        /* "traces", "traces/tail" */
	uint32_t nrecv, nproc, nexp;
	uint32_t *recv;    /* indices into rt->receivers */
	struct kn_instance *procs; /* processor instances, one per pipeline as in the OTel Collector */
	uint32_t *exp;     /* indices into rt->exporters */
	struct kn_instance **exp_inst; /* the same, resolved once rt->exporters is final */
	struct kn_metric *dropped_spans;
	struct kn_metric *exported_spans;
};

/* A producer's ring into one shard. */
struct kn_pring {
	struct ck_ring ring;
	struct ck_ring_buffer *buf;
};

struct kn_producer {
	struct kn_runtime *rt;
	uint16_t source;
	uint32_t index;
	struct kn_wire_index ix;
	struct kn_chunk **out;        /* nshards scratch slots */
	struct kn_pring *rings;       /* nshards */
	struct kn_metric *accepted, *rejected_invalid, *refused_memory, *refused_full,
		*refused_shutdown, *refused_decode, *refused_queue;
	char receiver[64], transport[16];
	uint32_t next_shard;          /* whole requests (!rt->whole_traces): round robin */
};

struct kn_shard;

struct kn_runtime {
	/* settings (kansatsu: section) */
	uint64_t nshards;
	uint64_t memory_limit_mib;
	size_t comp_limit, comp_spike;    /* kn_runtime_limit_memory: lowest limit, its spike */
	char comp_who[96];                /* the component that set it */
	uint64_t shutdown_timeout_ns;
	uint64_t ring_size;
	int whole_traces;             /* some processor needs a trace's spans in one shard */
	char *log_level;

	struct kn_metrics *metrics;
	struct kn_instance *receivers, *exporters;
	uint32_t nreceivers, nexporters;
	/* extensions listed in service.extensions (health_check aside), in
	 * that order; ext_configured: every id under extensions (for messages) */
	struct kn_instance *extensions;
	uint32_t nextensions;
	char **ext_configured;
	size_t next_configured;
	struct kn_pipeline *pipelines;
	uint32_t npipelines;
	/* for each receiver index: the pipelines it feeds */
	uint32_t **source_pipes;
	uint32_t *nsource_pipes;

	struct kn_shard **shards;
	struct kn_producer *producers[KN_MAX_PRODUCERS];
	atomic_uint nproducers;
	pthread_mutex_t producers_mu; /* serialises producer creation only */

	/* admin endpoints */
	char *health_endpoint;        /* NULL when the health_check extension is off */
	char *metrics_endpoint;       /* NULL when telemetry metrics are off */
	struct kn_httpd *health, *metrics_srv;

	atomic_int accepting;
	atomic_int ready;
	int started;
};

/* kn_shard.c */
struct kn_shard *kn_shard_create(struct kn_runtime *rt, uint32_t index, struct kn_err *err);
int kn_shard_start(struct kn_shard *s, struct kn_err *err);
/* Producer side: called after enqueueing into this shard's ring. */
void kn_shard_wake(struct kn_shard *s);
/* Stops every running shard of the runtime together, in phases (drain all
 * rings, then flush stage by stage and round by round with barriers; see
 * kn_shard.c), then joins this one. Safe twice and before start. */
void kn_shard_stop(struct kn_shard *s);
void kn_shard_destroy(struct kn_shard *s);

/* kn_ingest.c */
void kn_producer_free(struct kn_producer *p);

#endif
