/* SPDX-License-Identifier: Apache-2.0
 * kn_sli_weight: the adjusted count of a span that was already sampled
 * upstream, from the OpenTelemetry consistent-probability tracestate: the
 * `ot` list member's `th:<1..14 hex digits>` sub-key is a 56-bit rejection
 * threshold (trailing zeros omitted), the sampling probability is
 * p = (2^56 - th) / 2^56, and each kept span stands for 1/p spans. An
 * absent or invalid threshold counts 1 (the spec says to ignore it).
 * Pure function, no allocation. */
#include "kn_sli_int.h"

#include "../../collector/core/kn_hex.h"


/* The `th` value inside an `ot` member value ("th:c;rv:..."). */
static int parse_th(const char *v, size_t n, uint64_t *th)
{
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && v[j] != ';')
			j++;
		if (j - i > 3 && v[i] == 't' && v[i + 1] == 'h' && v[i + 2] == ':') {
			size_t digits = j - i - 3;
			if (digits > 14)
				return 0;
			uint64_t x = 0;
			for (size_t k = i + 3; k < j; k++) {
				int h = kn_hex_digit_lower((unsigned char)v[k]); /* the spec: lower case only */
				if (h < 0)
					return 0;
				x = (x << 4) | (uint64_t)h;
			}
			*th = x << (4 * (14 - digits));
			return 1;
		}
		i = j + 1;
	}
	return 0;
}

double kn_sli_weight(const char *ts, size_t len)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (ts[i] == ' ' || ts[i] == '\t' || ts[i] == ','))
			i++;
		size_t j = i;
		while (j < len && ts[j] != ',')
			j++;
		/* one list member ts[i..j): key=value */
		if (j - i > 3 && ts[i] == 'o' && ts[i + 1] == 't' && ts[i + 2] == '=') {
			size_t e = j;
			while (e > i + 3 && (ts[e - 1] == ' ' || ts[e - 1] == '\t'))
				e--;
			uint64_t th;
			if (!parse_th(ts + i + 3, e - i - 3, &th))
				return 1;
			double p = (double)((1ull << 56) - th) / (double)(1ull << 56);
			return p > 0 ? 1 / p : 1;
		}
		i = j + 1;
	}
	return 1;
}
