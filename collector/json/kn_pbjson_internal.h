/* SPDX-License-Identifier: Apache-2.0
 * kn_pbjson_internal: helpers shared by the OTLP/JSON decoder and encoder
 * (not part of the public API). Pure functions over caller-owned buffers:
 * no allocation, no global state, safe from any thread.
 *  - field naming: the lowerCamelCase JSON name of a proto field, derived on
 *    the fly from the snake_case name (protobuf-c 1.4 has no json_name);
 *  - which bytes fields are hex ids (trace_id 16 bytes, span_id and
 *    parent_span_id 8 bytes, in any message) and which are base64;
 *  - hex and base64 codecs. */
#ifndef KN_PBJSON_INTERNAL_H
#define KN_PBJSON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "../core/kn_err.h"

/* True when `key` names the field: its snake_case proto name or its
 * lowerCamelCase JSON name. */
bool kn_pbjson_key_matches(const char *key, const char *field_name);

/* Writes the lowerCamelCase name of `field_name` into out (NUL-terminated,
 * truncated to cap) and returns its full length. */
size_t kn_pbjson_camel(const char *field_name, char *out, size_t cap);

/* Size of one element of a repeated field of type t in protobuf-c's arrays. */
size_t kn_pbjson_elem_size(ProtobufCType t);

/* For a bytes field carried as a hex id, the id's length in bytes (16 or 8);
 * 0 for every other field (base64). */
size_t kn_pbjson_hex_id_len(const ProtobufCFieldDescriptor *f);

/* Hex ids are decoded / encoded by kn_hex_decode / kn_hex_encode
 * (collector/core/kn_hex.h). */

/* Upper bound of the decoded size of n base64 characters. */
static inline size_t kn_pbjson_b64_decoded_max(size_t n) { return n / 4 * 3 + 3; }

/* Base64 (standard or URL-safe alphabet, padding optional) -> bytes.
 * False on a bad character, misplaced padding or an impossible length. */
bool kn_pbjson_b64_decode(const char *s, size_t n, uint8_t *out, size_t *out_len);

/* Length of the padded standard base64 encoding of n bytes. */
static inline size_t kn_pbjson_b64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }

/* Bytes -> padded standard base64 (kn_pbjson_b64_encoded_len(n) characters,
 * not NUL-terminated). */
void kn_pbjson_b64_encode(const uint8_t *in, size_t n, char *out);

/* Encoder with an error report: KN_OK, KN_INVALID (message nested deeper than
 * KN_PBJSON_MAX_DEPTH, said in err) or KN_ERR (out of memory). */
int kn_pbjson_encode_checked(const ProtobufCMessage *msg, char **out, size_t *out_len,
			     struct kn_err *err);

#endif
