/* SPDX-License-Identifier: Apache-2.0
 * kn_pbjson: OTLP/JSON <-> protobuf, driven by protobuf-c message descriptors
 * (so one small converter serves every OTLP message), with the OTLP/JSON rules
 * of the OpenTelemetry protocol specification:
 *  - keys are lowerCamelCase field names (the original snake_case names are
 *    accepted too when decoding);
 *  - trace_id / span_id / parent_span_id (and Link's ids) are hex strings,
 *    not base64; other bytes fields are base64;
 *  - enums are integers (enum value names are accepted when decoding);
 *  - 64-bit integers are decimal strings when encoding; strings or numbers are
 *    accepted when decoding;
 *  - unknown fields are ignored when decoding; null means "absent".
 * Parsing uses jansson. Errors name the JSON path at fault:
 * "resourceSpans[0].scopeSpans[0].spans[3].traceId: not 32 hex characters". */
#ifndef KN_PBJSON_H
#define KN_PBJSON_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "../core/kn_err.h"

/* JSON text -> a new protobuf-c message of type `desc` (free with
 * protobuf_c_message_free_unpacked(msg, NULL)). KN_OK, KN_INVALID or KN_ERR. */
int kn_pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
		     ProtobufCMessage **out, struct kn_err *err);

/* Message -> compact JSON text (malloc'd, NUL-terminated). Fields at their
 * default value are omitted. KN_OK or KN_ERR (OOM). */
int kn_pbjson_encode(const ProtobufCMessage *msg, char **out, size_t *out_len);

/* Convenience for the receivers: OTLP/JSON ExportTraceServiceRequest -> the
 * protobuf encoding (malloc'd). */
int kn_pbjson_traces_to_proto(const char *json, size_t len, uint8_t **out, size_t *out_len,
			      struct kn_err *err);

/* Convenience for exporters: encoded ExportTraceServiceRequest (or TracesData,
 * same wire form) -> OTLP/JSON text (malloc'd). KN_OK, KN_INVALID, KN_ERR. */
int kn_pbjson_traces_from_proto(const uint8_t *pb, size_t len, char **out, size_t *out_len,
				struct kn_err *err);

#endif
