/* SPDX-License-Identifier: Apache-2.0
 * kn_ingest: the receivers' door into the pipeline.
 *
 * Every receiver thread owns one producer. A producer owns one single-producer
 * single-consumer ring (Concurrency Kit ck_ring) into each shard, so the path
 * from a receiver thread to a shard worker has no locks and no CAS.
 *
 * kn_ingest takes one encoded ExportTraceServiceRequest, indexes it with the
 * zero-copy wire reader, splits it by trace id into one chunk per shard,
 * charges the memory budget and enqueues the chunks. It is all or nothing: if
 * any ring lacks space or the budget is spent, nothing is enqueued and the
 * caller must answer with a retryable refusal. Only after KN_OK may the
 * receiver acknowledge. Spans that are individually invalid (trace id not 16
 * bytes, ...) are left out and reported for partial_success. Every span is
 * counted: accepted, or refused with a reason. */
#ifndef KN_INGEST_H
#define KN_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "kn_err.h"
#include "kn_tracectx.h"

struct kn_runtime;
struct kn_producer;

struct kn_ingest_result {
	uint32_t accepted;       /* spans now inside the pipeline */
	uint32_t rejected;       /* invalid spans left out (partial success) */
	uint32_t retry_after_ms; /* KN_AGAIN: suggested client back-off, milliseconds
				  * (gRPC RetryInfo as is; HTTP Retry-After rounds
				  * up to whole seconds) */
	char message[256];       /* KN_INVALID: what is wrong; KN_OK with rejected: why */
};

/* Registers a producer for one receiver thread. `receiver` is the receiver's
 * config id, `transport` "grpc" or "http" (metric labels). The runtime owns the
 * producer; it lives until the runtime is destroyed. Safe to call while shard
 * workers run (rings are published with release semantics). */
struct kn_producer *kn_producer_create(struct kn_runtime *rt, uint16_t source,
				       const char *receiver, const char *transport,
				       struct kn_err *err);

/* Returns KN_OK, KN_INVALID (nothing accepted; message says why) or KN_AGAIN
 * (nothing accepted; pipeline full, memory budget spent, an exporter's
 * persistent queue full (kn_backpressure.h) or shutting down). `ctx` may be
 * NULL. A refusal known before the spans are read (shutting down, a queue
 * full, a budget without room for `len` bytes) skips the wire reader: the
 * refused spans are counted by a walk of the three message levels only.
 * retry_after_ms: from the budget's drain rate (kn_budget_retry_ms) for the
 * budget and a full pipeline; 1000 for the rest. */
int kn_ingest(struct kn_producer *p, const uint8_t *req, size_t len,
	      const struct kn_tracectx *ctx, struct kn_ingest_result *res);

/* Counts a request the receiver refused before kn_ingest could see its spans
 * (body too large, bad compression, wrong content type, ...), as
 * kansatsu_receiver_refused_requests_total{receiver,transport,reason}.
 * `reason` is a short fixed label value ("too_large", "bad_encoding", ...). */
void kn_ingest_count_refused_request(struct kn_producer *p, const char *reason);

/* How transport code (the gRPC and HTTP servers) hands requests to the
 * pipeline without knowing the runtime: the otlp receiver component wires a
 * sink to kn_ingest with one producer per server thread; unit tests of the
 * transports supply their own sink. `thread` is the serving thread's index. */
struct kn_ingest_sink {
	int (*ingest)(void *ctx, uint32_t thread, const uint8_t *req, size_t len,
		      const struct kn_tracectx *tc, struct kn_ingest_result *res);
	/* A request refused before ingest (reason: "too_large", "bad_encoding",
	 * "bad_content_type", "decode_error", ...). */
	void (*refused)(void *ctx, uint32_t thread, const char *reason);
	void *ctx;
};

#endif
