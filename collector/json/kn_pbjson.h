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
 * "resourceSpans[0].scopeSpans[0].spans[3].traceId: not 32 hex characters".
 * Further choices where the mapping leaves room:
 *  - a field given twice (as camelCase and snake_case) or a duplicated JSON
 *    key is rejected; two members of one oneof (AnyValue's stringValue and
 *    intValue, say) are rejected too, rather than "last wins";
 *  - hex ids must be empty or exactly 32 (trace id) / 16 (span ids) digits;
 *  - base64 accepts the standard and the URL-safe alphabet, padding optional;
 *  - integers may be JSON numbers (also integral reals like 1.0 or 1e3),
 *    or decimal strings; floats/doubles may be numbers, numeric strings or
 *    "NaN" / "Infinity" / "-Infinity"; bools must be true / false;
 *  - null inside a JSON array is rejected; a null field is absent;
 *  - messages nest at most KN_PBJSON_MAX_DEPTH deep (hostile input), in
 *    both directions.
 * A JSON number above INT64_MAX (a uint64 written as a number) is refused by
 * jansson itself; such values must be strings (as the mapping writes them).
 * Threading: no shared state; every call is independent. Cost: decoding
 * builds jansson's DOM of the whole document, then one protobuf-c message. */
#ifndef KN_PBJSON_H
#define KN_PBJSON_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "../core/kn_err.h"

/* Deepest message nesting accepted (the request itself is depth 1). */
#define KN_PBJSON_MAX_DEPTH 64

/* JSON text -> a new protobuf-c message of type `desc` (free with
 * protobuf_c_message_free_unpacked(msg, NULL)). KN_OK, KN_INVALID or KN_ERR. */
int kn_pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
		     ProtobufCMessage **out, struct kn_err *err);

/* Message -> compact JSON text (malloc'd, NUL-terminated). Fields at their
 * default value are omitted (a set oneof member is always written); out_len
 * may be NULL. Strings
 * that are not valid UTF-8 get U+FFFD for each bad byte. KN_OK, or KN_ERR on
 * out of memory or a message nested deeper than KN_PBJSON_MAX_DEPTH. */
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
