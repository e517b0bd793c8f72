/* SPDX-License-Identifier: Apache-2.0
 * kn_test_traces: test helpers shared by the tail-sampling unit tests. A
 * request is described as a table of spans (struct kn_test_span) and packed
 * with protobuf-c; trace and span numbers map to fixed, distinct ids. */
#ifndef KN_TEST_TRACES_H
#define KN_TEST_TRACES_H

#include <stddef.h>
#include <stdint.h>

struct kn_test_span {
	uint32_t trace;     /* trace number -> id */
	uint32_t span;      /* span number (>= 1) -> span id */
	uint32_t parent;    /* 0 = root */
	uint32_t res;       /* ResourceSpans number; consecutive equal ones share one */
	uint32_t scope;     /* ScopeSpans number within it; consecutive equal ones share one */
	int error;
	uint64_t start, end;
	uint32_t nattrs;    /* extra string attributes */
	uint32_t nres_attrs;/* resource attributes (W1: 5) */
	uint32_t flags;     /* Span.flags */
	const char *tracestate;
};

/* The 16-byte trace id of trace number t, the 8-byte span id of span s. */
void kn_test_trace_id(uint8_t id[16], uint32_t t);
void kn_test_span_id(uint8_t id[8], uint32_t s);
/* The packed ExportTraceServiceRequest (malloc'd) of the n spans. */
uint8_t *kn_test_pack(const struct kn_test_span *sp, size_t n, size_t *len);

#endif
