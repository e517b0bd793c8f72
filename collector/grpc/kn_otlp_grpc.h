/* SPDX-License-Identifier: Apache-2.0
 * kn_otlp_grpc: the OTLP/gRPC receiver transport (TraceService/Export) on
 * libgrpc's core C API.
 *
 * Threads: `threads` serving threads; thread i owns completion queue i and
 * is the sink's thread index i, so a sink can keep one kn_producer per
 * thread without locks. Each thread keeps `calls_per_thread` Export calls
 * requested at once (so requests on one thread are not serialized behind
 * the request/re-request round trip) plus one call for unknown methods,
 * which are answered UNIMPLEMENTED instead of hanging until the deadline.
 * The sink is called synchronously on the serving thread with the whole,
 * already decompressed request; it must not block for long.
 *
 * Answers (OTLP spec): KN_OK -> OK + ExportTraceServiceResponse (with
 * partial_success when spans were rejected); KN_INVALID -> INVALID_ARGUMENT;
 * KN_AGAIN -> UNAVAILABLE with a google.rpc.Status/RetryInfo trailer
 * (grpc-status-details-bin); anything else -> INTERNAL. Messages larger
 * than max_recv_msg_size_mib on the wire are refused by the library with
 * RESOURCE_EXHAUSTED; the receiver sees the receive fail and reports it to
 * sink.refused as "too_large" (see kn_grpc_call.c for what else libgrpc
 * reports the same way). gzip messages are inflated by the receiver, not by
 * libgrpc (whose 1.51 inflates a whole message before checking its size):
 * kn_decompress stops at max_recv_msg_size_mib, answered RESOURCE_EXHAUSTED
 * and counted "too_large" as well. Only gzip and identity are enabled
 * (libgrpc answers UNIMPLEMENTED to deflate).
 *
 * Memory: libgrpc's buffers (transport reads, messages being received) are
 * bounded by a resource quota sized at start from the request-bytes bound
 * of kansatsu.memory_limit_mib (kn_budget_req_limit, see kn_otlp_grpc.c);
 * none when that bound is 0 (no memory limit).
 *
 * TLS (opts.tls, see kn_grpc_tls.h): libgrpc's TLS credentials with a file
 * watcher re-reading the certificate files every reload_interval; mutual TLS
 * when client_ca_file is set. libgrpc serves TLS 1.2 and 1.3 only, so other
 * min_version / max_version values fail create, as do files that do not load
 * (a key that does not match its certificate included); start checks the
 * files again. A bad file at a reload is logged as a warning, and libgrpc
 * then refuses new TLS connections until the files load again.
 *
 * Lifecycle: create (validates, grpc_init, binds nothing) -> start (binds,
 * logs "kansatsu: listening <name> <host>:<port>", starts threads) ->
 * shutdown (stop accepting, finish in-flight calls until deadline_ns, then
 * cancel the rest; safe twice and before start) -> destroy (NULL-safe,
 * shuts down if needed, grpc_shutdown). */
#ifndef KN_OTLP_GRPC_H
#define KN_OTLP_GRPC_H

#include <stdint.h>

#include "../core/kn_err.h"
#include "../core/kn_extension.h"
#include "../core/kn_ingest.h"
#include "../core/kn_tls_server.h"

#define KN_OTLP_GRPC_DEFAULT_ENDPOINT "0.0.0.0:4317"
#define KN_OTLP_GRPC_EXPORT_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

/* Zero means "default" for every field. Field names follow
 * receivers.otlp.protocols.grpc of the OpenTelemetry Collector. */
struct kn_otlp_grpc_opts {
	const char *endpoint;             /* host:port, "0.0.0.0:4317" when NULL; ":0" = ephemeral */
	const char *name;                 /* for log lines: "otlp/grpc" when NULL */
	uint32_t max_recv_msg_size_mib;   /* after decompression; 0 = 4 MiB */
	uint32_t threads;                 /* completion-queue threads; 0 = 2 */
	uint32_t max_concurrent_streams;  /* per connection; 0 = library default */
	uint32_t calls_per_thread;        /* Export calls kept requested per thread; 0 = 16 */
	/* keepalive.server_parameters / enforcement_policy (milliseconds; 0 = library default) */
	uint32_t keepalive_time_ms;
	uint32_t keepalive_timeout_ms;
	uint32_t max_connection_idle_ms;
	uint32_t max_connection_age_ms;
	uint32_t max_connection_age_grace_ms;
	uint32_t keepalive_min_time_ms;          /* enforcement_policy.min_time */
	int keepalive_permit_without_stream;     /* enforcement_policy.permit_without_stream */
	const struct kn_tls_server_cfg *tls;     /* NULL = plaintext; must outlive the server */
	/* A server authenticator (kn_extension.h; NULL = none) checked on each
	 * Export call's metadata before its message is received: a refusal is
	 * UNAUTHENTICATED with a message naming the reason (never the
	 * credentials), reported to sink.refused as "unauthenticated". Both
	 * must outlive the server. */
	const struct kn_server_auth_ops *auth;
	void *auth_inst;
};

/* Counts kept by the server (relaxed atomics, read with kn_otlp_grpc_stats). */
struct kn_otlp_grpc_stats {
	uint64_t calls;           /* Export calls answered (any status) */
	uint64_t ok, invalid, unavailable, internal;
	uint64_t unimplemented;   /* calls to unknown methods */
	uint64_t cancelled;       /* calls the client or shutdown cancelled */
	uint64_t payload_copies;  /* requests gathered from several slices (not zero-copy) */
	uint64_t unauthenticated; /* Export calls opts.auth refused */
	uint64_t too_large;       /* Export calls whose message failed to arrive (see above) or
				   * inflated past max_recv_msg_size_mib */
	uint64_t decompressed;    /* gzip messages inflated by the receiver (kn_decompress) */
	uint64_t quota_bytes;     /* libgrpc's resource quota; 0 = none */
};

struct kn_otlp_grpc;

/* Validates options and copies them; binds nothing. The sink is copied. */
struct kn_otlp_grpc *kn_otlp_grpc_create(const struct kn_otlp_grpc_opts *opts,
					 struct kn_ingest_sink sink, struct kn_err *err);
/* Binds, starts the server and its threads. Once only. */
int kn_otlp_grpc_start(struct kn_otlp_grpc *s, struct kn_err *err);
/* The bound port (the real one with ":0"); 0 before start. */
uint16_t kn_otlp_grpc_port(const struct kn_otlp_grpc *s);
/* deadline_ns is on kn_now_ns()'s clock. */
void kn_otlp_grpc_shutdown(struct kn_otlp_grpc *s, uint64_t deadline_ns);
void kn_otlp_grpc_destroy(struct kn_otlp_grpc *s);
void kn_otlp_grpc_stats(const struct kn_otlp_grpc *s, struct kn_otlp_grpc_stats *out);

#endif
