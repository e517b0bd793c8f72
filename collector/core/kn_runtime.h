/* SPDX-License-Identifier: Apache-2.0
 * kn_runtime: the assembled collector. create() reads the whole config tree
 * (receivers, processors, exporters, extensions, service, kansatsu), checks
 * every reference and value and creates every component instance, opening
 * nothing; `kansatsu validate` stops there. start() starts exporters, then
 * shard workers, then receivers and the admin endpoints, and logs
 * "kansatsu: ready". shutdown() runs the other way round within
 * kansatsu.shutdown_timeout: receivers stop accepting and finish what is in
 * flight, shard workers drain their rings and flush their processors,
 * exporters drain their queues. */
#ifndef KN_RUNTIME_H
#define KN_RUNTIME_H

#include <stdio.h>

#include "kn_err.h"

struct kn_cnode;
struct kn_metrics;
struct kn_runtime;

struct kn_runtime *kn_runtime_create(const struct kn_cnode *root, struct kn_err *err);
int kn_runtime_start(struct kn_runtime *rt, struct kn_err *err);
void kn_runtime_shutdown(struct kn_runtime *rt);
void kn_runtime_destroy(struct kn_runtime *rt);

struct kn_metrics *kn_runtime_metrics(struct kn_runtime *rt);

/* A component (the memory_limiter processor) caps the process's memory at
 * create: limit_bytes for the whole process (RSS), of which spike_bytes are
 * kept free as headroom, so receivers start refusing at limit - spike. The
 * runtime applies the lowest of every cap and kansatsu.memory_limit_mib
 * (the headroom is at least the spike of the cap that won) and its startup
 * log line names who set it. `who` is the component's config path. */
void kn_runtime_limit_memory(struct kn_runtime *rt, size_t limit_bytes, size_t spike_bytes,
			     const char *who);
/* 1 once start() completed and until shutdown() begins. */
int kn_runtime_ready(const struct kn_runtime *rt);

/* `kansatsu slo-rules`: a Prometheus rule file on out ("groups:" and every
 * configured processor's groups, through kn_component.prom_rules, each
 * processor id once even when several pipelines use it; "groups: []" when
 * none has any). Call after create, before start. */
int kn_runtime_prom_rules(const struct kn_runtime *rt, FILE *out, struct kn_err *err);

/* The configuration used when no --config is given. */
extern const char kn_default_config[];

#endif
