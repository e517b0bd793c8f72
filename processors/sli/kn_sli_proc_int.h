/* SPDX-License-Identifier: Apache-2.0
 * kn_sli_proc_int: the processor instance and shard structs, shared by
 * kn_sli_processor.c (hot path), kn_sli_render.c (scrape) and
 * kn_sli_attrs.c (attribute writing). Not a public header. */
#ifndef KN_SLI_PROC_INT_H
#define KN_SLI_PROC_INT_H

#include "../../collector/core/kn_metrics.h"
#include "../../collector/wire/kn_wire.h"
#include "kn_sli_int.h"

struct kn_sli_rt {               /* one SLI, instance-wide */
	const struct kn_sli_def *d;
	struct kn_sli_dimtab tab;
	uint32_t nhours;
	struct kn_metric *overflow;   /* events that went to the overflow series */
	struct kn_metric *unjoined;   /* end spans without a start */
	char *attr_good, *attr_latency; /* "sli.<name>.good", "sli.<name>.latency_ms" */
};

struct kn_sli_shard;

struct kn_sli {
	struct kn_sli_cfg cfg;        /* shallow copy; strings owned by the config */
	uint32_t nshards;
	double bounds[KN_SLI_MAX_BUCKETS];
	uint32_t nb;
	struct kn_sli_rt *slis;
	size_t nslis;
	struct kn_metrics *metrics;
	uint64_t (*clock)(void *ctx);
	void *clock_ctx;
	const struct kn_journey_registry *journeys; /* test override */
	struct kn_metric *join_evicted, *attrs_failed;
	pthread_mutex_t mu;           /* guards shards[] against shard_destroy during a scrape */
	struct kn_sli_shard **shards; /* [nshards] */
	struct kn_sli *next_inst;     /* the process-wide list the collector walks */
	int listed;
};

/* A pending attribute write on an end span. */
struct kn_sli_write {
	uint32_t chunk;               /* index in the batch */
	uint32_t span_off;            /* the span's offset in the chunk's data */
	uint32_t sli;
	int64_t latency_ms;
	int good;
};

struct kn_sli_shard {
	struct kn_sli *p;
	uint32_t shard;
	struct kn_sli_shard_sli *per; /* [nslis] */
	struct kn_sli_join join;
	struct kn_sli_write *writes;
	uint32_t nwrites, capwrites;
	struct kn_wire_index ix;      /* re-indexing rewritten chunks */
	char key[KN_SLI_KEY_MAX];
};

uint64_t kn_sli_now(const struct kn_sli *p);

/* kn_sli_render.c: the collector and the list it walks. */
void kn_sli_collect(void *ctx, struct kn_metrics_out *out);
int kn_sli_list_add(struct kn_sli *p);
void kn_sli_list_remove(struct kn_sli *p);

/* kn_sli_attrs.c: applies s->writes to the batch's chunks (a rewritten
 * chunk replaces the original in b). Failures are counted, never fatal. */
void kn_sli_apply_writes(struct kn_sli_shard *s, struct kn_batch *b);

#endif
