/* SPDX-License-Identifier: Apache-2.0
 * kn_tracectx: the W3C trace context (traceparent / tracestate) of an incoming
 * export request. It rides with the request's spans through the rings and is
 * continued on the exporter's outgoing request, so a chain of collectors is
 * traceable. Fixed size: no allocation on the hot path. */
#ifndef KN_TRACECTX_H
#define KN_TRACECTX_H

#include <stddef.h>

#define KN_TRACEPARENT_LEN 55   /* "00-<32 hex>-<16 hex>-<2 hex>" */
#define KN_TRACESTATE_MAX 512   /* W3C: at most 32 members; longer values are not carried */

struct kn_tracectx {
	char traceparent[KN_TRACEPARENT_LEN + 1]; /* "" when absent or invalid */
	char tracestate[KN_TRACESTATE_MAX + 1];   /* "" when absent or too long */
};

/* Stores traceparent (only if it is a valid version-00 W3C traceparent) and
 * tracestate (only alongside a valid traceparent). Either input may be NULL;
 * lengths are explicit because header values are not NUL-terminated. */
void kn_tracectx_set(struct kn_tracectx *tc, const char *traceparent, size_t tp_len,
		     const char *tracestate, size_t ts_len);

static inline int kn_tracectx_present(const struct kn_tracectx *tc)
{
	return tc && tc->traceparent[0] != '\0';
}

#endif
