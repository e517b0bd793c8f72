/* SPDX-License-Identifier: Apache-2.0
 * kn_tracestate: see kn_tracestate.h. Moved here from the tail sampler so
 * that every sampler reads and writes `ot=th` the same way. */
#include "kn_tracestate.h"

#include <string.h>

#include "kn_hex.h"

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

int kn_tracestate_get(const char *ts, size_t len, const char *key, size_t keylen,
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
static int kn_hex56(const char *s, size_t n, int exact, int anycase, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 14 || (exact && n != 14))
		return -1;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		int d = anycase ? kn_hex_digit(c) : kn_hex_digit_lower(c);
		if (d < 0)
			return -1;
		v = (v << 4) | (uint64_t)d;
	}
	*out = v << (4 * (14 - n));
	return 0;
}

void kn_tracestate_ot_parse(const char *v, size_t len, int *has_th, uint64_t *th, int *has_rv,
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
				*has_th = kn_hex56(colon + 1, vl, 0, 0, th) == 0;
			else if (kl == 2 && memcmp(p, "rv", 2) == 0 && !*has_rv)
				*has_rv = kn_hex56(colon + 1, vl, 1, 0, rv) == 0;
		}
		p = e < end ? e + 1 : end;
	}
}

size_t kn_tracestate_th_format(uint64_t th, char out[15])
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 14;
	th &= KN_TRACESTATE_MAX_TH - 1;
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

size_t kn_tracestate_set_th(const char *in, size_t inlen, uint64_t threshold, char *out,
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
	nth = kn_tracestate_th_format(threshold, th);
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

int kn_tracestate_ot_check(const char *v, size_t len, struct kn_ot_value *out, const char **why)
{
	const char *p = v, *end = v + len;
	memset(out, 0, sizeof *out);
	while (p < end) {
		const char *e = memchr(p, ';', (size_t)(end - p));
		if (!e)
			e = end;
		const char *colon = memchr(p, ':', (size_t)(e - p));
		if (!colon || colon == p) {
			*why = "invalid ot sub-key syntax";
			return -1;
		}
		for (const char *q = p; q < colon; q++)
			if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9'))) {
				*why = "invalid ot sub-key syntax";
				return -1;
			}
		size_t kl = (size_t)(colon - p), vl = (size_t)(e - colon - 1);
		const char *val = colon + 1;
		if (kl == 2 && memcmp(p, "th", 2) == 0) {
			if (vl == 0) {
				*why = "t-value is empty";
				return -1;
			}
			if (vl > 14) {
				*why = "t-value exceeds 14 hex digits";
				return -1;
			}
			if (kn_hex56(val, vl, 0, 1, &out->th)) {
				*why = "invalid t-value syntax";
				return -1;
			}
			out->has_th = 1;
		} else if (kl == 2 && memcmp(p, "rv", 2) == 0) {
			if (vl != 14) {
				*why = "r-value must have 14 hex digits";
				return -1;
			}
			if (kn_hex56(val, vl, 1, 1, &out->rv)) {
				*why = "invalid r-value syntax";
				return -1;
			}
			out->has_rv = 1;
			out->rv_text = val;
		}
		p = e < end ? e + 1 : end;
	}
	return 0;
}

size_t kn_tracestate_set_ot(const char *in, size_t inlen, const struct kn_ot_edit *ed, char *out,
			    size_t cap)
{
	const char *p, *end, *ms, *me;
	const char *ot = NULL, *oend = NULL;
	size_t len = 0;
	int members = 0, nsub = 0;
	char th[15], rvbuf[15];

	if (!in)
		inlen = 0;
	p = in ? in : "";
	end = p + inlen;
	while (kn_ts_next(&p, end, &ms, &me))
		if (me - ms >= 3 && memcmp(ms, "ot=", 3) == 0) {
			ot = ms + 3;
			oend = me;
			break;
		}
	/* the rv: new, or the old one as written */
	const char *rv = NULL;
	size_t rvlen = 0;
	if (ed->set_rv) {
		static const char hex[] = "0123456789abcdef";
		uint64_t x = ed->rv;
		for (int i = 13; i >= 0; i--) {
			rvbuf[i] = hex[x & 15];
			x >>= 4;
		}
		rv = rvbuf;
		rvlen = 14;
	}
	const char *oldth = NULL;
	size_t oldthlen = 0;
	for (const char *q = ot; q && q < oend;) {
		const char *e = memchr(q, ';', (size_t)(oend - q));
		if (!e)
			e = oend;
		if (e - q >= 3 && memcmp(q, "rv:", 3) == 0 && !ed->set_rv && !rv) {
			rv = q + 3;
			rvlen = (size_t)(e - q - 3);
		} else if (e - q >= 3 && memcmp(q, "th:", 3) == 0 && !oldth) {
			oldth = q + 3;
			oldthlen = (size_t)(e - q - 3);
		}
		q = e < oend ? e + 1 : oend;
	}
	if (kn_put(out, cap, &len, "ot=", 3) < 0)
		return 0;
	if (rv) {
		if (kn_put(out, cap, &len, "rv:", 3) < 0 || kn_put(out, cap, &len, rv, rvlen) < 0)
			return 0;
		nsub++;
	}
	if (ed->th > 0 || (ed->th == 0 && oldth)) {
		const char *t = oldth;
		size_t tl = oldthlen;
		if (ed->th > 0) {
			tl = kn_tracestate_th_format(ed->threshold, th);
			t = th;
		}
		if ((nsub && kn_put(out, cap, &len, ";", 1) < 0) ||
		    kn_put(out, cap, &len, "th:", 3) < 0 || kn_put(out, cap, &len, t, tl) < 0)
			return 0;
		nsub++;
	}
	for (const char *q = ot; q && q < oend;) {
		const char *e = memchr(q, ';', (size_t)(oend - q));
		if (!e)
			e = oend;
		if (e > q && !(e - q >= 3 && (memcmp(q, "th:", 3) == 0 || memcmp(q, "rv:", 3) == 0))) {
			if ((nsub && kn_put(out, cap, &len, ";", 1) < 0) ||
			    kn_put(out, cap, &len, q, (size_t)(e - q)) < 0)
				return 0;
			nsub++;
		}
		q = e < oend ? e + 1 : oend;
	}
	if (nsub)
		members = 1;
	else
		len = 0; /* nothing left in ot: leave the member out */
	p = in ? in : "";
	while (kn_ts_next(&p, end, &ms, &me)) {
		if (me - ms >= 3 && memcmp(ms, "ot=", 3) == 0)
			continue;
		if (members >= KN_TS_MAX_MEMBERS)
			break;
		if ((members && kn_put(out, cap, &len, ",", 1) < 0) ||
		    kn_put(out, cap, &len, ms, (size_t)(me - ms)) < 0)
			return 0;
		members++;
	}
	if (len < cap)
		out[len] = '\0';
	return len;
}
