/* SPDX-License-Identifier: Apache-2.0
 * kn_export_status: partial_success and google.rpc.Status decoding (see
 * kn_export_status.h). */
#include "kn_export_status.h"

#include <stdio.h>
#include <string.h>

#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define RETRY_INFO_TYPE "type.googleapis.com/google.rpc.RetryInfo"

int kn_export_response_parse(const uint8_t *p, size_t n, int64_t *rejected, char *msg, size_t cap)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *r =
		opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, n, p);
	if (!r)
		return -1;
	*rejected = 0;
	if (cap)
		msg[0] = '\0';
	if (r->partial_success) {
		*rejected = r->partial_success->rejected_spans;
		if (cap && r->partial_success->error_message)
			snprintf(msg, cap, "%s", r->partial_success->error_message);
	}
	opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(r, NULL);
	return 0;
}

int kn_rpc_status_parse(const uint8_t *p, size_t n, struct kn_rpc_status *st)
{
	memset(st, 0, sizeof *st);
	Google__Rpc__Status *s = google__rpc__status__unpack(NULL, n, p);
	if (!s)
		return -1;
	st->code = s->code;
	if (s->message)
		snprintf(st->message, sizeof st->message, "%s", s->message);
	for (size_t i = 0; i < s->n_details; i++) {
		Google__Rpc__Any *a = s->details[i];
		if (!a->type_url || strcmp(a->type_url, RETRY_INFO_TYPE) != 0)
			continue;
		Google__Rpc__RetryInfo *ri = google__rpc__retry_info__unpack(NULL, a->value.len, a->value.data);
		if (!ri)
			continue;
		st->has_retry_info = 1;
		if (ri->retry_delay && ri->retry_delay->seconds >= 0 && ri->retry_delay->nanos >= 0)
			st->retry_delay_ns = (uint64_t)ri->retry_delay->seconds * 1000000000ull +
					     (uint64_t)ri->retry_delay->nanos;
		google__rpc__retry_info__free_unpacked(ri, NULL);
		break;
	}
	google__rpc__status__free_unpacked(s, NULL);
	return 0;
}
