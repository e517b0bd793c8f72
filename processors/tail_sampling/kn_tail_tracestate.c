/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_tracestate: the W3C tracestate pieces consistent probability
 * sampling needs: find a list-member, parse the OpenTelemetry `ot` member's
 * `th` (56-bit rejection threshold) and `rv` (56-bit randomness) sub-keys,
 * and rewrite a tracestate with a new `th`.
 *
 * Syntax (W3C Trace Context): list-members separated by "," with optional
 * spaces/tabs around them, at most 32, empty members ignored; key is
 * [a-z0-9][a-z0-9_*\-/@]{0,255}; value is 1..256 printable ASCII characters
 * without "," and "=" and not ending in a space. The `ot` value is
 * "<subkey>:<value>" pairs separated by ";" (OpenTelemetry tracestate
 * handling). th is 1..14 lowercase hex digits, the threshold's 14-digit hex
 * form with trailing zeros removed (so "8" is 2^55, i.e. 50%); rv is
 * exactly 14 hex digits. Duplicate keys are not detected (the first wins).
 *
 * Pure functions over caller buffers; no allocation. */
#include <string.h>

#include "../../collector/core/kn_hex.h"
#include "kn_tail_policy.h"
#include "policies/kn_tail_policy_int.h"

#define KN_TS_MAX_MEMBERS 32

static int kn_ts_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int kn_ts_keychar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       c == '*' || c == '/' || c == '@';
}

/* Splits one member [s, e) (already trimmed) at '='; 0 when valid. */
static int kn_ts_member(const char *s, const char *e, const char **k, size_t *klen,
			const char **v, size_t *vlen)
{
	const char *eq = memchr(s, '=', (size_t)(e - s));
	if (!eq || eq == s || eq + 1 == e)
		return -1;
	if ((size_t)(eq - s) > 256 || (size_t)(e - eq - 1) > 256)
		return -1;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return -1;
	for (const char *q = s; q < eq; q++)
		if (!kn_ts_keychar(*q))
			return -1;
	for (const char *q = eq + 1; q < e; q++)
		if (*q < 0x20 || *q > 0x7e || *q == ',' || *q == '=')
			return -1;
	if (e[-1] == ' ')
		return -1;
	*k = s;
	*klen = (size_t)(eq - s);
	*v = eq + 1;
	*vlen = (size_t)(e - eq - 1);
	return 0;
}

/* Next member of [*p, end): trimmed bounds in [*ms, *me); 1, or 0 at the end. */
static int kn_ts_next(const char **p, const char *end, const char **ms, const char **me)
{
	while (*p < end) {
		const char *s = *p, *e = memchr(s, ',', (size_t)(end - s));
		if (!e)
			e = end;
		*p = e < end ? e + 1 : end;
		while (s < e && kn_ts_ows(*s))
			s++;
		while (e > s && kn_ts_ows(e[-1]))
			e--;
		if (s == e)
			continue; /* empty list-member */
		*ms = s;
		*me = e;
		return 1;
	}
	return 0;
}

int kn_tail_tracestate_get(const char *ts, size_t len, const char *key, size_t keylen,
			   const char **val, size_t *vlen)
{
	const char *p = ts, *end = ts + len, *ms, *me, *k, *v;
	size_t kl, vl;
	int n = 0, found = 0;
	while (kn_ts_next(&p, end, &ms, &me)) {
		if (++n > KN_TS_MAX_MEMBERS || kn_ts_member(ms, me, &k, &kl, &v, &vl) < 0)
			return -1;
		if (!found && kl == keylen && memcmp(k, key, keylen) == 0) {
			*val = v;
			*vlen = vl;
			found = 1;
		}
	}
	return found;
}

/* 1..14 hex digits, right-padded with zeros to 14; 0 on success. */
static int kn_hex56(const char *s, size_t n, int exact, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 14 || (exact && n != 14))
		return -1;
	for (size_t i = 0; i < n; i++) {
		int d = kn_hex_digit_lower((unsigned char)s[i]);
		if (d < 0)
			return -1;
		v = (v << 4) | (uint64_t)d;
	}
	*out = v << (4 * (14 - n));
	return 0;
}

void kn_tail_ot_parse(const char *v, size_t len, int *has_th, uint64_t *th, int *has_rv,
		      uint64_t *rv)
{
	const char *p = v, *end = v + len;
	*has_th = *has_rv = 0;
	while (p < end) {
		const char *e = memchr(p, ';', (size_t)(end - p));
		if (!e)
			e = end;
		const char *colon = memchr(p, ':', (size_t)(e - p));
		if (colon) {
			size_t kl = (size_t)(colon - p), vl = (size_t)(e - colon - 1);
			if (kl == 2 && memcmp(p, "th", 2) == 0 && !*has_th)
				*has_th = kn_hex56(colon + 1, vl, 0, th) == 0;
			else if (kl == 2 && memcmp(p, "rv", 2) == 0 && !*has_rv)
				*has_rv = kn_hex56(colon + 1, vl, 1, rv) == 0;
		}
		p = e < end ? e + 1 : end;
	}
}

size_t kn_tail_th_format(uint64_t th, char out[15])
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 14;
	th &= KN_TAIL_MAX_TH - 1;
	for (int i = 13; i >= 0; i--) {
		out[i] = hex[th & 15];
		th >>= 4;
	}
	while (n > 1 && out[n - 1] == '0')
		n--;
	out[n] = '\0';
	return n;
}

/* Appends [s, s+n) at out[*len]; 0, or -1 when it does not fit. */
static int kn_put(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
	if (n > cap || *len > cap - n)
		return -1;
	memcpy(out + *len, s, n);
	*len += n;
	return 0;
}

size_t kn_tail_tracestate_set_th(const char *in, size_t inlen, uint64_t threshold, char *out,
				 size_t cap)
{
	const char *p = in, *end = in + inlen, *ms, *me;
	const char *ot = NULL;
	size_t otlen = 0, len = 0, nth;
	char th[15];
	int members = 1;

	if (!in)
		end = p = "";
	/* the old `ot` value, if any */
	while (kn_ts_next(&p, end, &ms, &me)) {
		if (me - ms >= 3 && memcmp(ms, "ot=", 3) == 0) {
			ot = ms + 3;
			otlen = (size_t)(me - ms - 3);
			break;
		}
	}
	nth = kn_tail_th_format(threshold, th);
	if (kn_put(out, cap, &len, "ot=th:", 6) < 0 || kn_put(out, cap, &len, th, nth) < 0)
		return 0;
	/* the other ot sub-keys, in their order */
	/* ot is NULL when there was no `ot` member: no arithmetic on it then */
	for (const char *q = ot, *oend = ot ? ot + otlen : NULL; q && q < oend;) {
		const char *e = memchr(q, ';', (size_t)(oend - q));
		if (!e)
			e = oend;
		if (e > q && !(e - q >= 3 && memcmp(q, "th:", 3) == 0)) {
			if (kn_put(out, cap, &len, ";", 1) < 0 ||
			    kn_put(out, cap, &len, q, (size_t)(e - q)) < 0)
				return 0;
		}
		q = e < oend ? e + 1 : oend;
	}
	/* the other members, in their order; the list keeps at most 32 (W3C: drop from the end) */
	p = in ? in : "";
	end = in ? in + inlen : p;
	while (kn_ts_next(&p, end, &ms, &me)) {
		if (me - ms >= 3 && memcmp(ms, "ot=", 3) == 0)
			continue;
		if (members >= KN_TS_MAX_MEMBERS)
			break;
		if (kn_put(out, cap, &len, ",", 1) < 0 ||
		    kn_put(out, cap, &len, ms, (size_t)(me - ms)) < 0)
			return 0;
		members++;
	}
	if (len < cap)
		out[len] = '\0';
	return len;
}
