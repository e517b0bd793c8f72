/* SPDX-License-Identifier: Apache-2.0
 * kn_exporter_otlphttp: the `otlphttp` exporter: OTLP/HTTP binary protobuf
 * (POST application/x-protobuf) with libcurl, in the OpenTelemetry
 * Collector's config shape:
 *   otlphttp:
 *     endpoint: http://collector:4318        # "/v1/traces" is appended
 *     traces_endpoint: http://c:4318/v1/traces  # used as is (wins over endpoint)
 *     compression: gzip                      # gzip | zstd | none (Content-Encoding)
 *     compression_params: { level: 0 }      # 0 = default (kn_compress.h: gzip 1..12, zstd 1..19)
 *     connections: 0                         # kansatsu's own; 0 = one per consumer (kn_conns.h)
 *     headers: { authorization: "Bearer x" }
 *     timeout: 5s
 *     tls: { ca_file: ..., cert_file: ..., key_file: ..., insecure_skip_verify: false }
 *     auth: { authenticator: basicauth/client }   # a client authenticator extension
 *     sending_queue: {...}  retry_on_failure: {...}    # see kn_sender.h
 * auth adds the authenticator's header to every request, asked for per
 * request (a rotated token file is picked up); it replaces a `headers`
 * entry of the same name.
 * Status mapping (OTLP/HTTP spec): 2xx ok (partial_success counted as
 * dropped, reason rejected_by_server); 429/502/503/504 retryable honouring
 * Retry-After (seconds or HTTP-date); other statuses permanent; connection
 * errors retryable. */
#ifndef KN_EXPORTER_OTLPHTTP_H
#define KN_EXPORTER_OTLPHTTP_H

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_component.h"
#include "../common/kn_sender.h"

struct kn_otlphttp_tls_cfg {
	char *ca_file;
	char *cert_file;
	char *key_file;
	int insecure_skip_verify;
};

struct kn_otlphttp_cfg {
	char *endpoint;
	char *traces_endpoint;
	char *compression;          /* "gzip" | "zstd" | "none" */
	struct {
		int64_t level;          /* 0 = the algorithm's default */
	} compression_params;
	uint64_t connections;       /* 0 = one per consumer */
	struct kn_strmap headers;
	struct kn_otlphttp_tls_cfg tls;
	struct kn_sender_cfg sender;
	struct {
		char *authenticator;    /* client authenticator extension id, or NULL */
	} auth;
};

extern const struct kn_component kn_exporter_otlphttp;

#endif
