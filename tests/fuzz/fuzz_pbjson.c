/* SPDX-License-Identifier: Apache-2.0
 * Fuzz target for kn_pbjson (OTLP/JSON -> ExportTraceServiceRequest): decode
 * arbitrary bytes; when accepted, encode the message, decode that JSON again
 * and require that both messages pack to the same protobuf bytes (abort
 * otherwise). Refusals must be KN_INVALID with a message, never a crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/json/kn_pbjson.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define REQ_DESC opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
	*n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(*n ? *n : 1);
	if (!b)
		abort();
	protobuf_c_message_pack(m, b);
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtobufCMessage *m1 = NULL, *m2 = NULL;
	struct kn_err err = { { 0 } };
	int rc = kn_pbjson_decode(&REQ_DESC, (const char *)data, size, &m1, &err);
	if (rc != KN_OK) {
		if (rc != KN_INVALID || m1 || err.msg[0] == '\0')
			abort();
		return 0;
	}
	char *json = NULL;
	size_t jn = 0;
	if (kn_pbjson_encode(m1, &json, &jn) != KN_OK)
		abort();
	if (kn_pbjson_decode(&REQ_DESC, json, jn, &m2, &err) != KN_OK) {
		fprintf(stderr, "re-decode failed: %s\n%s\n", err.msg, json);
		abort();
	}
	size_t n1, n2;
	uint8_t *b1 = pack(m1, &n1), *b2 = pack(m2, &n2);
	if (n1 != n2 || memcmp(b1, b2, n1) != 0) {
		fprintf(stderr, "round trip differs:\n%s\n", json);
		abort();
	}
	free(b1);
	free(b2);
	free(json);
	protobuf_c_message_free_unpacked(m1, NULL);
	protobuf_c_message_free_unpacked(m2, NULL);
	return 0;
}
