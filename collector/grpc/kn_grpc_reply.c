/* SPDX-License-Identifier: Apache-2.0
 * kn_grpc_reply: protobuf bodies of OTLP/gRPC answers (see header). Sizes are
 * bounded by truncating messages, so packing into fixed buffers is safe. */
#include "kn_grpc_reply.h"

#include <string.h>

#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define RETRY_INFO_TYPE_URL "type.googleapis.com/google.rpc.RetryInfo"

/* Copies at most KN_GRPC_REPLY_MAX_MSG - 1 bytes so the encoding stays bounded. */
static void bounded_copy(char dst[KN_GRPC_REPLY_MAX_MSG], const char *src)
{
	size_t n = src ? strnlen(src, KN_GRPC_REPLY_MAX_MSG - 1) : 0;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

size_t kn_grpc_reply_export_response(uint8_t buf[KN_GRPC_REPLY_BUF], int64_t rejected,
				     const char *message)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse resp =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
	Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
	char msg[KN_GRPC_REPLY_MAX_MSG];

	bounded_copy(msg, message);
	if (rejected == 0 && msg[0] == '\0')
		return 0;
	ps.rejected_spans = rejected;
	ps.error_message = msg;
	resp.partial_success = &ps;
	return opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(
		&resp, buf);
}

size_t kn_grpc_reply_retry_status(uint8_t buf[KN_GRPC_REPLY_BUF], int32_t code,
				  const char *message, int64_t retry_delay_ms)
{
	Google__Rpc__Duration delay = GOOGLE__RPC__DURATION__INIT;
	Google__Rpc__RetryInfo info = GOOGLE__RPC__RETRY_INFO__INIT;
	Google__Rpc__Any any = GOOGLE__RPC__ANY__INIT;
	Google__Rpc__Any *details[1] = { &any };
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	uint8_t info_buf[32]; /* Duration{int64, int32}: at most 2 + 11 + 11 + 2 bytes */
	char msg[KN_GRPC_REPLY_MAX_MSG];

	if (retry_delay_ms < 0)
		retry_delay_ms = 0;
	delay.seconds = retry_delay_ms / 1000;
	delay.nanos = (int32_t)(retry_delay_ms % 1000) * 1000000;
	info.retry_delay = &delay;
	any.type_url = (char *)RETRY_INFO_TYPE_URL;
	any.value.data = info_buf;
	any.value.len = google__rpc__retry_info__pack(&info, info_buf);

	bounded_copy(msg, message);
	st.code = code;
	st.message = msg;
	st.n_details = 1;
	st.details = details;
	return google__rpc__status__pack(&st, buf);
}
