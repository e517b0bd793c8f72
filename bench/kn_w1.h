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
 * Shapes: kn_w1_new gives W1 exactly. kn_w1_new_shape takes a struct
 * kn_w1_shape (kn_w1_shape_default fills W1's values) so a load generator can
 * vary spans per request, spans per trace and depth (a child at level L has
 * the latest span of level L-1 as parent), resources and the service pool,
 * attributes per span (beyond the 10 semantic-convention ones, "app.attr.N"
 * strings of attr_bytes), event and error shares, the root duration
 * distribution (uniform or lognormal), and a share of async journeys: a
 * producer trace whose first child is a PRODUCER span, followed in the same
 * request by a consumer trace whose root is a CONSUMER span with a span link
 * to that producer span. With the default shape the PRNG draws are the same
 * as W1's, so the bytes are W1's. kn_w1_set_end switches times from W1's
 * fixed 2024 clock to "every root span ends at this Unix time", which lets a
 * sink measure end-to-end latency from root end times.
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
	uint32_t journeys;   /* producer -> consumer trace pairs (links) */
	size_t bytes;        /* encoded size (kn_w1_pack only; 0 from kn_w1_build) */
};

/* A trace shape; kn_w1_shape_default gives W1. */
struct kn_w1_shape {
	uint32_t spans;          /* spans per request (512), 1..1000000 */
	uint32_t trace_spans;    /* spans per trace (5), 1..10000; a journey's traces each */
	uint32_t depth;          /* levels below the root (1), 1..trace_spans */
	uint32_t resources;      /* ResourceSpans per request (4), 1..services */
	uint32_t services;       /* service pool (16), 1..10000 */
	uint32_t span_attrs;     /* attributes per span (10), 0..1000 */
	uint32_t attr_bytes;     /* value length of attributes beyond the 10th (0 = 16) */
	uint32_t event_pct;      /* percent of spans with one event (10) */
	uint32_t error_pct;      /* percent of spans with status ERROR (1) */
	uint32_t async_pct;      /* percent of traces that start an async journey (0) */
	uint64_t dur_min_ns;     /* root duration, uniform in [min, max) (1 ms .. 51 ms) */
	uint64_t dur_max_ns;
	double dur_median_ns;    /* when > 0: lognormal root duration with this median */
	double dur_sigma;        /* and this sigma (of the natural log) */
};

struct kn_w1;

/* A generator for the given seed; NULL on OOM. */
struct kn_w1 *kn_w1_new(uint64_t seed);
void kn_w1_shape_default(struct kn_w1_shape *s);
/* 0 when the shape is usable; else -1 and msg names the bad field. */
int kn_w1_shape_check(const struct kn_w1_shape *s, char *msg, size_t cap);
/* A generator for seed and shape (copied); NULL on OOM or a bad shape. */
struct kn_w1 *kn_w1_new_shape(uint64_t seed, const struct kn_w1_shape *s);
/* 0 (default): W1 times (request idx covers second idx after 2024-01-01).
 * Else every root span of the following requests ends at end_unix_ns. */
void kn_w1_set_end(struct kn_w1 *w, uint64_t end_unix_ns);
/* NULL-safe. */
void kn_w1_free(struct kn_w1 *w);

/* Builds request number idx as a protobuf-c tree owned by w (valid until the
 * next call on w). st may be NULL. NULL on OOM. */
const kn_w1_req *kn_w1_build(struct kn_w1 *w, uint64_t idx, struct kn_w1_stats *st);

/* Builds and encodes request number idx; returns a malloc'ed buffer of *len
 * bytes (the caller frees it), NULL on OOM. st may be NULL. */
uint8_t *kn_w1_pack(struct kn_w1 *w, uint64_t idx, size_t *len, struct kn_w1_stats *st);

#endif
