/* SPDX-License-Identifier: Apache-2.0
 * kn_export_status: decoding what an OTLP server answers, shared by the otlp
 * (gRPC) and otlphttp exporters: the ExportTraceServiceResponse's
 * partial_success, and a google.rpc.Status (gRPC's grpc-status-details-bin
 * trailer, or an OTLP/HTTP error body) with its RetryInfo detail.
 *
 * Pure functions over bytes; protobuf-c allocates while decoding and
 * everything is freed before returning. Called once per request, never per
 * span. */
#ifndef KN_EXPORT_STATUS_H
#define KN_EXPORT_STATUS_H

#include <stddef.h>
#include <stdint.h>

/* Parses an ExportTraceServiceResponse. Returns 0 and sets *rejected (0 when
 * no partial_success) and msg (error_message, "" when none; truncated to
 * cap), or -1 when the bytes do not decode. */
int kn_export_response_parse(const uint8_t *p, size_t n, int64_t *rejected, char *msg, size_t cap);

struct kn_rpc_status {
	int32_t code;
	char message[256];
	int has_retry_info;      /* a google.rpc.RetryInfo detail was present */
	uint64_t retry_delay_ns; /* its retry_delay (0 when absent or negative) */
};

/* Parses a google.rpc.Status. Returns 0, or -1 when the bytes do not decode. */
int kn_rpc_status_parse(const uint8_t *p, size_t n, struct kn_rpc_status *st);

#endif
