/* SPDX-License-Identifier: Apache-2.0
 * kn_grpc_reply: encodes the protobuf bodies the OTLP/gRPC receiver answers
 * with: the ExportTraceServiceResponse (partial_success) and the
 * google.rpc.Status carrying a RetryInfo that goes into the
 * grpc-status-details-bin trailer of an UNAVAILABLE answer.
 *
 * Internal to collector/grpc. Pure functions over caller buffers: no
 * allocation beyond protobuf-c's packing into the given buffer; callers wrap
 * the bytes into grpc slices. Thread-safe (no state). */
#ifndef KN_GRPC_REPLY_H
#define KN_GRPC_REPLY_H

#include <stddef.h>
#include <stdint.h>

/* Upper bounds of the encodings below, given messages of at most
 * KN_GRPC_REPLY_MAX_MSG bytes (longer messages are truncated). */
#define KN_GRPC_REPLY_MAX_MSG 256
#define KN_GRPC_REPLY_BUF 512

/* ExportTraceServiceResponse; empty (0 bytes) when rejected == 0 and the
 * message is empty, else with partial_success {rejected_spans, error_message}.
 * Returns the encoded length (<= KN_GRPC_REPLY_BUF). */
size_t kn_grpc_reply_export_response(uint8_t buf[KN_GRPC_REPLY_BUF], int64_t rejected,
				     const char *message);

/* google.rpc.Status {code, message, details: [Any{RetryInfo{retry_delay}}]},
 * the delay in milliseconds (a Duration of seconds + nanos: clients that
 * honour RetryInfo wait exactly this long). Returns the encoded length
 * (<= KN_GRPC_REPLY_BUF). */
size_t kn_grpc_reply_retry_status(uint8_t buf[KN_GRPC_REPLY_BUF], int32_t code,
				  const char *message, int64_t retry_delay_ms);

#endif
