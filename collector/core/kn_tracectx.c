/* SPDX-License-Identifier: Apache-2.0
 * kn_tracectx: validation of incoming W3C traceparent headers (see header). */
#include "kn_tracectx.h"

#include <string.h>

static int is_lower_hex(const char *s, size_t n)
{
	int nonzero = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
		if (c != '0')
			nonzero = 1;
	}
	return nonzero;
}

void kn_tracectx_set(struct kn_tracectx *tc, const char *tp, size_t tp_len,
		     const char *ts, size_t ts_len)
{
	tc->traceparent[0] = '\0';
	tc->tracestate[0] = '\0';
	if (!tp || tp_len != KN_TRACEPARENT_LEN)
		return;
	/* version 00: 2 hex '-' 32 hex '-' 16 hex '-' 2 hex; all-zero ids are invalid */
	if (tp[0] != '0' || tp[1] != '0' || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
		return;
	if (!is_lower_hex(tp + 3, 32) || !is_lower_hex(tp + 36, 16))
		return;
	const char *fl = tp + 53;
	for (int i = 0; i < 2; i++)
		if (!((fl[i] >= '0' && fl[i] <= '9') || (fl[i] >= 'a' && fl[i] <= 'f')))
			return;
	memcpy(tc->traceparent, tp, KN_TRACEPARENT_LEN);
	tc->traceparent[KN_TRACEPARENT_LEN] = '\0';
	if (ts && ts_len > 0 && ts_len <= KN_TRACESTATE_MAX) {
		memcpy(tc->tracestate, ts, ts_len);
		tc->tracestate[ts_len] = '\0';
	}
}
