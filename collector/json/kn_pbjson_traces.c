/* SPDX-License-Identifier: Apache-2.0
 * kn_pbjson_traces: the OTLP/JSON <-> protobuf conversions the receivers and
 * exporters use for ExportTraceServiceRequest (TracesData has the same wire
 * form). Each call builds one transient protobuf-c message (malloc) and frees
 * it before returning; output buffers belong to the caller (free()). */
#include "kn_pbjson.h"
#include "kn_pbjson_internal.h"

#include <stdlib.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define REQ_DESC opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor

int kn_pbjson_traces_to_proto(const char *json, size_t len, uint8_t **out, size_t *out_len,
			      struct kn_err *err)
{
	ProtobufCMessage *msg = NULL;
	*out = NULL;
	*out_len = 0;
	int rc = kn_pbjson_decode(&REQ_DESC, json, len, &msg, err);
	if (rc != KN_OK)
		return rc;
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		protobuf_c_message_free_unpacked(msg, NULL);
		return kn_errf(err, "converting OTLP/JSON traces: out of memory");
	}
	protobuf_c_message_pack(msg, buf);
	protobuf_c_message_free_unpacked(msg, NULL);
	*out = buf;
	*out_len = n;
	return KN_OK;
}

int kn_pbjson_traces_from_proto(const uint8_t *pb, size_t len, char **out, size_t *out_len,
				struct kn_err *err)
{
	*out = NULL;
	*out_len = 0;
	ProtobufCMessage *msg = protobuf_c_message_unpack(&REQ_DESC, NULL, len, pb);
	if (!msg) {
		kn_errf(err, "ExportTraceServiceRequest: not a valid protobuf encoding (%zu bytes)", len);
		return KN_INVALID;
	}
	int rc = kn_pbjson_encode_checked(msg, out, out_len, err);
	protobuf_c_message_free_unpacked(msg, NULL);
	return rc;
}
