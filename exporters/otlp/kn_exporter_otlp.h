/* SPDX-License-Identifier: Apache-2.0
 * kn_exporter_otlp: the `otlp` exporter: OTLP/gRPC with libgrpc's core C API,
 * in the OpenTelemetry Collector's config shape:
 *   otlp:
 *     endpoint: collector:4317     # required; "http://h:p" = insecure, "https://h:p" = TLS
 *     tls: { insecure: false, ca_file: ..., cert_file: ..., key_file: ... }
 *     compression: gzip            # gzip | none (zstd: an error, see below)
 *     compression_params: { level: 0 }   # 0 = kn_compress.h's default (gzip 1..12)
 *     connections: 0               # kansatsu's own: channels (connections); 0 = one per consumer (kn_conns.h)
 *     headers: { authorization: "Bearer x" }   # sent as metadata
 *     timeout: 5s
 *     auth: { authenticator: bearertokenauth }   # a client authenticator extension
 *     sending_queue: {...}  retry_on_failure: {...}    # see kn_sender.h
 * auth adds the authenticator's header (e.g. authorization) to every call,
 * asked for per call so a rotated token file is picked up; it replaces a
 * `headers` entry of the same name.
 * tls.insecure_skip_verify is not supported over gRPC (libgrpc's core API
 * has no switch for it); it is rejected with a message.
 * gzip: kansatsu compresses each batch itself (libdeflate, kn_compress.h)
 * and hands libgrpc an already-compressed message; `compression: zstd` is a
 * config error naming the key, because libgrpc 1.51 (Debian 12) knows only
 * identity, deflate and gzip as message encodings and could neither send
 * grpc-encoding: zstd nor mark the message compressed with it.
 * Status mapping (OTLP spec): OK (partial_success counted as dropped, reason
 * rejected_by_server); CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE,
 * UNAVAILABLE, DATA_LOSS retryable, RESOURCE_EXHAUSTED retryable only with a
 * RetryInfo detail; RetryInfo.retry_delay (grpc-status-details-bin) is
 * honoured; everything else is permanent. */
#ifndef KN_EXPORTER_OTLP_H
#define KN_EXPORTER_OTLP_H

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_component.h"
#include "../common/kn_sender.h"

struct kn_otlpexp_tls_cfg {
	int insecure;               /* plaintext (default false: TLS) */
	char *ca_file;
	char *cert_file;
	char *key_file;
	int insecure_skip_verify;   /* accepted by the table, rejected by validate */
};

struct kn_otlpexp_cfg {
	char *endpoint;
	struct kn_otlpexp_tls_cfg tls;
	char *compression;          /* "gzip" | "none" ("zstd" is refused by validate) */
	struct {
		int64_t level;          /* 0 = the algorithm's default */
	} compression_params;
	uint64_t connections;       /* 0 = auto */
	struct kn_strmap headers;
	struct kn_sender_cfg sender;
	struct {
		char *authenticator;    /* client authenticator extension id, or NULL */
	} auth;
};

extern const struct kn_component kn_exporter_otlp;

/* For the load-balancing exporter: an instance of kn_exporter_otlp (created
 * and possibly started) stops its intake and hands every batch it still
 * holds to fn instead of sending it (kn_sender_reclaim); afterwards it is
 * shut down, and only destroy is left to call. Returns the number of batches
 * handed back; 0 for NULL. */
unsigned kn_exporter_otlp_reclaim(void *inst, kn_sender_reclaim_fn fn, void *ctx);

#endif
