/* SPDX-License-Identifier: Apache-2.0
 * kn_w1: the standard benchmark workload W1, fixed in code so every figure
 * the project quotes is measured on the same bytes.
 *
 * One W1 request is an ExportTraceServiceRequest of exactly KN_W1_SPANS
 * spans: KN_W1_RESOURCES ResourceSpans (distinct services drawn from a pool
 * of 16), each with one ScopeSpans; traces of KN_W1_TRACE_SPANS spans (one
 * root SERVER span with HTTP server attributes, four CLIENT children with the
 * root as parent, alternately HTTP client and gRPC client attributes; the last
 * trace of a request is cut short so the count is exact), each trace wholly
 * inside one ResourceSpans (trace t -> resource t % KN_W1_RESOURCES).
 * Every span carries KN_W1_SPAN_ATTRS attributes (strings and ints following
 * the HTTP / RPC semantic conventions), every Resource KN_W1_RESOURCE_ATTRS
 * (service.name, service.version, host.name, deployment.environment.name,
 * telemetry.sdk.language). About 10% of spans carry one event, about 1% have
 * status ERROR (Bernoulli draws). Ids, values and times come from a
 * splitmix64 PRNG seeded with (seed, request index), so every request differs
 * and the same (seed, index) always gives the same bytes. About 350 bytes per
 * span encoded (bench_wire and w1_bodies print the measured figure).
 *
 * Ownership: a kn_w1 generator owns a bump arena holding the protobuf-c tree
 * of the last request built; kn_w1_build's tree is valid until the next call
 * on the same generator. kn_w1_pack returns a malloc'ed buffer the caller
 * frees. Threads: one generator per thread. Not a hot path (a few hundred
 * microseconds per request), but allocation-free in steady state. */
#ifndef KN_W1_H
#define KN_W1_H

#include <stddef.h>
#include <stdint.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define KN_W1_SPANS 512          /* spans per request */
#define KN_W1_TRACE_SPANS 5      /* spans per trace: root + 4 children */
#define KN_W1_RESOURCES 4        /* ResourceSpans per request */
#define KN_W1_SPAN_ATTRS 10      /* attributes per span */
#define KN_W1_RESOURCE_ATTRS 5   /* attributes per Resource */
#define KN_W1_EVENT_PCT 10       /* percent of spans with one event */
#define KN_W1_ERROR_PCT 1        /* percent of spans with status ERROR */

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest kn_w1_req;

/* What one request holds (filled by kn_w1_build / kn_w1_pack). */
struct kn_w1_stats {
	uint32_t spans;
	uint32_t traces;
	uint32_t resources;
	uint32_t events;     /* spans with an event */
	uint32_t errors;     /* spans with status ERROR */
	size_t bytes;        /* encoded size (kn_w1_pack only; 0 from kn_w1_build) */
};

struct kn_w1;

/* A generator for the given seed; NULL on OOM. */
struct kn_w1 *kn_w1_new(uint64_t seed);
/* NULL-safe. */
void kn_w1_free(struct kn_w1 *w);

/* Builds request number idx as a protobuf-c tree owned by w (valid until the
 * next call on w). st may be NULL. NULL on OOM. */
const kn_w1_req *kn_w1_build(struct kn_w1 *w, uint64_t idx, struct kn_w1_stats *st);

/* Builds and encodes request number idx; returns a malloc'ed buffer of *len
 * bytes (the caller frees it), NULL on OOM. st may be NULL. */
uint8_t *kn_w1_pack(struct kn_w1 *w, uint64_t idx, size_t *len, struct kn_w1_stats *st);

#endif
