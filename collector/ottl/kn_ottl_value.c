/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_value: OTTL's value rules.
 *
 * Comparison (OTel's LANGUAGE.md table): ints compare as ints, an int with
 * a float as floats; strings and bytes byte by byte; false < true; times
 * and durations by value; maps and slices only for equality, by content;
 * nil equals only nil (an absent attribute is nil). Values of different
 * kinds are "not equal": != is true and every other operator false.
 *
 * Math: int op int -> int (Go's wrapping and truncating division), float op
 * float -> float; mixing an int and a float is an error, as is dividing by
 * zero; time - time -> duration, time +/- duration -> time, duration +/-
 * duration -> duration (times and durations take only + and -).
 *
 * Strings of values (pdata's AsString, for IsMatch, String, Concat):
 * bools, ints and floats as Go's strconv writes them, bytes as base64 or
 * hex (the caller says which), maps and slices as JSON with sorted keys
 * (Go's encoding/json), times as RFC 3339 with nanoseconds, durations as
 * Go writes them ("1.5s"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kn_ottl_int.h"
#include "../core/kn_hex.h"
#include "../wire/kn_wire_field.h"

const char *kn_ottl_vt_an(int t)
{
	switch (t) {
	case KN_V_NIL: return "nil";
	case KN_V_BOOL: return "a bool";
	case KN_V_INT: return "an int";
	case KN_V_DBL: return "a float";
	case KN_V_STR: return "a string";
	case KN_V_BYTES: return "bytes";
	case KN_V_MAP: return "a map";
	case KN_V_SLICE: return "a slice";
	case KN_V_TIME: return "a time";
	case KN_V_DUR: return "a duration";
	default: return "?";
	}
}

const char *kn_ottl_vt_name(int t)
{
	switch (t) {
	case KN_V_NIL: return "nil";
	case KN_V_BOOL: return "bool";
	case KN_V_INT: return "int";
	case KN_V_DBL: return "float";
	case KN_V_STR: return "string";
	case KN_V_BYTES: return "bytes";
	case KN_V_MAP: return "map";
	case KN_V_SLICE: return "slice";
	case KN_V_TIME: return "time";
	case KN_V_DUR: return "duration";
	default: return "?";
	}
}

int kn_ottl_val_from_av(const struct kn_av *a, struct kn_ottl_val *v)
{
	memset(v, 0, sizeof *v);
	switch (a->type) {
	case KN_AV_EMPTY:
		return 0;
	case KN_AV_STR:
		v->t = KN_V_STR;
		v->p = a->s ? a->s : (const uint8_t *)"";
		v->len = a->len;
		return 0;
	case KN_AV_BOOL:
		v->t = KN_V_BOOL;
		v->i = a->b != 0;
		return 0;
	case KN_AV_INT:
		v->t = KN_V_INT;
		v->i = a->i;
		return 0;
	case KN_AV_DOUBLE:
		v->t = KN_V_DBL;
		v->d = a->d;
		return 0;
	case KN_AV_RAW: {
		const uint8_t *q = a->s, *end = a->s + a->len;
		struct kn_wire_field f;
		int r = 0;
		while ((r = kn_wire_field_next(&q, end, &f)) > 0) {
			if (f.wt != KN_WIRE_FIELD_LEN && f.num >= 5 && f.num <= 7)
				return -1;
			switch (f.num) {
			case 5:
				v->t = KN_V_SLICE;
				break;
			case 6:
				v->t = KN_V_MAP;
				v->field = 1;
				break;
			case 7:
				v->t = KN_V_BYTES;
				break;
			case 8:
				v->t = KN_V_NIL;   /* a profiles dictionary index: nothing OTTL reads */
				continue;
			default:
				continue;
			}
			v->p = f.payload;
			v->len = (uint32_t)f.len;
		}
		if (r < 0)
			return -1;
		if (v->t == KN_V_BYTES && !v->p)
			v->p = (const uint8_t *)"";
		return 0;
	}
	default:
		return -1;
	}
}

int kn_ottl_val_from_any(const uint8_t *p, uint32_t len, struct kn_ottl_val *v)
{
	struct kn_av a;
	if (kn_av_decode(p, len, &a) < 0)
		return -1;
	return kn_ottl_val_from_av(&a, v);
}

static int wrap_raw(struct kn_ottl_tx *tx, uint32_t num, const uint8_t *p, uint32_t len, struct kn_av *a)
{
	uint8_t *b = kn_ottl_tx_alloc(tx, (size_t)len + 11), *w = b;
	if (!b)
		return kn_ottl_rt_err(tx, "out of memory");
	*w++ = (uint8_t)(num << 3 | 2);
	w += kn_wire_put_varint(w, len);
	if (len)
		memcpy(w, p, len);
	w += len;
	a->type = KN_AV_RAW;
	a->s = b;
	a->len = (uint32_t)(w - b);
	return 0;
}

int kn_ottl_val_to_av(struct kn_ottl_tx *tx, const struct kn_ottl_val *v, struct kn_av *a)
{
	memset(a, 0, sizeof *a);
	switch (v->t) {
	case KN_V_NIL:
		return 1;
	case KN_V_BOOL:
		a->type = KN_AV_BOOL;
		a->b = v->i != 0;
		return 0;
	case KN_V_INT:
		a->type = KN_AV_INT;
		a->i = v->i;
		return 0;
	case KN_V_DBL:
		a->type = KN_AV_DOUBLE;
		a->d = v->d;
		return 0;
	case KN_V_STR:
		a->type = KN_AV_STR;
		a->s = v->p;
		a->len = v->len;
		return 0;
	case KN_V_BYTES:
		return wrap_raw(tx, 7, v->p, v->len, a);
	case KN_V_SLICE:
		return wrap_raw(tx, 5, v->p, v->len, a);
	case KN_V_MAP: {
		const uint8_t *p = NULL;
		uint32_t len = 0;
		if (kn_ottl_map_encode(tx, v, &p, &len) < 0)
			return -1;
		return wrap_raw(tx, 6, p, len, a);
	}
	default:
		return kn_ottl_rt_err(tx, "%s cannot be stored in an attribute", kn_ottl_vt_an(v->t));
	}
}

/* ---- comparison ---- */

static int cmp_num(int op, int c)
{
	switch (op) {
	case KN_CMP_EQ: return c == 0;
	case KN_CMP_NE: return c != 0;
	case KN_CMP_LT: return c < 0;
	case KN_CMP_LE: return c <= 0;
	case KN_CMP_GT: return c > 0;
	case KN_CMP_GE: return c >= 0;
	default: return 0;
	}
}

static int cmp_bytes(const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl)
{
	uint32_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c < 0 ? -1 : 1;
	return al < bl ? -1 : al > bl ? 1 : 0;
}

static int val_equal(const struct kn_ottl_val *a, const struct kn_ottl_val *b, int depth);

struct eqctx {
	const struct kn_ottl_val *other;
	int depth;
	int equal;
};

static int eq_cb(void *ctx, const uint8_t *k, uint32_t klen, const struct kn_av *v)
{
	struct eqctx *e = ctx;
	struct kn_ottl_val x, y;
	if (kn_ottl_val_from_av(v, &x) < 0 || kn_ottl_map_get(e->other, k, klen, &y) < 0 ||
	    !val_equal(&x, &y, e->depth + 1)) {
		e->equal = 0;
		return 1;
	}
	/* a key the other map lacks reads as nil there: only equal to nil,
	 * and x is nil only for an empty value (pdata would still see a key) */
	return 0;
}

static int val_equal(const struct kn_ottl_val *a, const struct kn_ottl_val *b, int depth)
{
	if (depth > 32)
		return 0;
	if (a->t != b->t) {
		if ((a->t == KN_V_INT && b->t == KN_V_DBL) || (a->t == KN_V_DBL && b->t == KN_V_INT))
			return (a->t == KN_V_INT ? (double)a->i : a->d) == (b->t == KN_V_INT ? (double)b->i : b->d);
		return 0;
	}
	switch (a->t) {
	case KN_V_NIL:
		return 1;
	case KN_V_BOOL:
	case KN_V_INT:
	case KN_V_TIME:
	case KN_V_DUR:
		return a->i == b->i;
	case KN_V_DBL:
		return a->d == b->d;
	case KN_V_STR:
	case KN_V_BYTES:
		return cmp_bytes(a->p, a->len, b->p, b->len) == 0;
	case KN_V_MAP: {
		if (kn_ottl_map_len(a) != kn_ottl_map_len(b))
			return 0;
		struct eqctx e = {.other = b, .depth = depth, .equal = 1};
		if (kn_ottl_map_each(a, eq_cb, &e) < 0)
			return 0;
		return e.equal;
	}
	case KN_V_SLICE: {
		int64_t n = kn_ottl_slice_len(a);
		if (n < 0 || n != kn_ottl_slice_len(b))
			return 0;
		for (int64_t i = 0; i < n; i++) {
			struct kn_ottl_val x, y;
			if (kn_ottl_slice_get(a, i, &x) || kn_ottl_slice_get(b, i, &y) || !val_equal(&x, &y, depth + 1))
				return 0;
		}
		return 1;
	}
	default:
		return 0;
	}
}

int kn_ottl_compare(struct kn_ottl_tx *tx, const struct kn_ottl_val *a, const struct kn_ottl_val *b, int op)
{
	(void)tx;
	int an = a->t == KN_V_INT || a->t == KN_V_DBL, bn = b->t == KN_V_INT || b->t == KN_V_DBL;
	if (an && bn) {
		if (a->t == KN_V_INT && b->t == KN_V_INT)
			return cmp_num(op, a->i < b->i ? -1 : a->i > b->i ? 1 : 0);
		double x = a->t == KN_V_INT ? (double)a->i : a->d, y = b->t == KN_V_INT ? (double)b->i : b->d;
		if (isnan(x) || isnan(y))
			return op == KN_CMP_NE;
		return cmp_num(op, x < y ? -1 : x > y ? 1 : 0);
	}
	if (a->t != b->t)
		return op == KN_CMP_NE;
	switch (a->t) {
	case KN_V_NIL:
		return op == KN_CMP_EQ;
	case KN_V_BOOL:
	case KN_V_TIME:
	case KN_V_DUR:
		return cmp_num(op, a->i < b->i ? -1 : a->i > b->i ? 1 : 0);
	case KN_V_STR:
	case KN_V_BYTES:
		return cmp_num(op, cmp_bytes(a->p, a->len, b->p, b->len));
	case KN_V_MAP:
	case KN_V_SLICE:
		if (op == KN_CMP_EQ)
			return val_equal(a, b, 0);
		if (op == KN_CMP_NE)
			return !val_equal(a, b, 0);
		return 0;
	default:
		return op == KN_CMP_NE;
	}
}

/* ---- math ---- */

int kn_ottl_math(struct kn_ottl_tx *tx, int op, const struct kn_ottl_val *a, const struct kn_ottl_val *b,
		 struct kn_ottl_val *out)
{
	memset(out, 0, sizeof *out);
	if (a->t == KN_V_INT && b->t == KN_V_INT) {
		uint64_t x = (uint64_t)a->i, y = (uint64_t)b->i;
		out->t = KN_V_INT;
		switch (op) {
		case '+': out->i = (int64_t)(x + y); return 0;
		case '-': out->i = (int64_t)(x - y); return 0;
		case '*': out->i = (int64_t)(x * y); return 0;
		default:
			if (b->i == 0)
				return kn_ottl_rt_err(tx, "attempted to divide by 0");
			out->i = (a->i == INT64_MIN && b->i == -1) ? INT64_MIN : a->i / b->i;
			return 0;
		}
	}
	if (a->t == KN_V_DBL && b->t == KN_V_DBL) {
		out->t = KN_V_DBL;
		switch (op) {
		case '+': out->d = a->d + b->d; return 0;
		case '-': out->d = a->d - b->d; return 0;
		case '*': out->d = a->d * b->d; return 0;
		default:
			if (b->d == 0)
				return kn_ottl_rt_err(tx, "attempted to divide by 0");
			out->d = a->d / b->d;
			return 0;
		}
	}
	if ((a->t == KN_V_INT && b->t == KN_V_DBL) || (a->t == KN_V_DBL && b->t == KN_V_INT))
		return kn_ottl_rt_err(tx, "math mixes an int and a float (convert one with Int or Double)");
	int at = a->t == KN_V_TIME || a->t == KN_V_DUR, bt = b->t == KN_V_TIME || b->t == KN_V_DUR;
	if (at && bt && (op == '+' || op == '-')) {
		uint64_t x = (uint64_t)a->i, y = (uint64_t)b->i;
		if (a->t == KN_V_TIME && b->t == KN_V_TIME) {
			if (op == '+')
				return kn_ottl_rt_err(tx, "a time cannot be added to a time");
			out->t = KN_V_DUR;
			out->i = (int64_t)(x - y);
			return 0;
		}
		if (a->t == KN_V_DUR && b->t == KN_V_TIME && op == '-')
			return kn_ottl_rt_err(tx, "a time cannot be subtracted from a duration");
		out->t = (a->t == KN_V_TIME || b->t == KN_V_TIME) ? KN_V_TIME : KN_V_DUR;
		out->i = (int64_t)(op == '+' ? x + y : x - y);
		return 0;
	}
	return kn_ottl_rt_err(tx, "math (%c) on %s and %s", op, kn_ottl_vt_an(a->t), kn_ottl_vt_an(b->t));
}

/* ---- strings of values ---- */

static const char b64digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t w = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t x = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[w++] = b64digits[x >> 18];
		out[w++] = b64digits[(x >> 12) & 63];
		out[w++] = b64digits[(x >> 6) & 63];
		out[w++] = b64digits[x & 63];
	}
	if (i < n) {
		uint32_t x = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[w++] = b64digits[x >> 18];
		out[w++] = b64digits[(x >> 12) & 63];
		out[w++] = i + 1 < n ? b64digits[(x >> 6) & 63] : '=';
		out[w++] = '=';
	}
	return w;
}

/* Go's time.Duration.String(). */
static int fmt_dur(int64_t d, char *buf, size_t cap)
{
	if (d == 0)
		return snprintf(buf, cap, "0s");
	uint64_t u = d < 0 ? (uint64_t)0 - (uint64_t)d : (uint64_t)d;
	const char *sign = d < 0 ? "-" : "";
	if (u < 1000000000ull) {
		/* below a second: ns, us or ms with a fraction */
		const char *unit;
		uint64_t div;
		if (u < 1000) {
			return snprintf(buf, cap, "%s%lluns", sign, (unsigned long long)u);
		} else if (u < 1000000) {
			unit = "\xc2\xb5s";
			div = 1000;
		} else {
			unit = "ms";
			div = 1000000;
		}
		char frac[16];
		int fl = snprintf(frac, sizeof frac, "%0*llu", div == 1000 ? 3 : 6, (unsigned long long)(u % div));
		while (fl > 0 && frac[fl - 1] == '0')
			frac[--fl] = '\0';
		return snprintf(buf, cap, "%s%llu%s%s%s", sign, (unsigned long long)(u / div), fl ? "." : "", frac, unit);
	}
	uint64_t s = u / 1000000000ull, ns = u % 1000000000ull;
	char frac[16];
	int fl = snprintf(frac, sizeof frac, "%09llu", (unsigned long long)ns);
	while (fl > 0 && frac[fl - 1] == '0')
		frac[--fl] = '\0';
	uint64_t h = s / 3600, m = (s / 60) % 60, sec = s % 60;
	if (h)
		return snprintf(buf, cap, "%s%lluh%llum%llu%s%ss", sign, (unsigned long long)h, (unsigned long long)m,
				(unsigned long long)sec, fl ? "." : "", frac);
	if (m)
		return snprintf(buf, cap, "%s%llum%llu%s%ss", sign, (unsigned long long)m, (unsigned long long)sec,
				fl ? "." : "", frac);
	return snprintf(buf, cap, "%s%llu%s%ss", sign, (unsigned long long)sec, fl ? "." : "", frac);
}

static int fmt_time(int64_t ns, char *buf, size_t cap)
{
	time_t s = (time_t)(ns / 1000000000);
	int64_t frac = ns % 1000000000;
	if (frac < 0) {
		frac += 1000000000;
		s--;
	}
	struct tm tm;
	if (!gmtime_r(&s, &tm))
		return snprintf(buf, cap, "%lld", (long long)ns);
	int n = (int)strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac) {
		char f[16];
		int fl = snprintf(f, sizeof f, "%09lld", (long long)frac);
		while (fl > 0 && f[fl - 1] == '0')
			f[--fl] = '\0';
		n += snprintf(buf + n, cap - (size_t)n, ".%s", f);
	}
	n += snprintf(buf + n, cap - (size_t)n, "Z");
	return n;
}

/* JSON of maps and slices, into a buffer sized from the encoded bytes. */
struct jw {
	char *b;
	size_t n, cap;
	struct kn_ottl_tx *tx;
	int bad;
};

static void jput(struct jw *j, const char *s, size_t n)
{
	if (j->n + n > j->cap) {
		j->bad = 1;
		return;
	}
	memcpy(j->b + j->n, s, n);
	j->n += n;
}

static void jstr(struct jw *j, const uint8_t *s, uint32_t n)
{
	jput(j, "\"", 1);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		char e[8];
		if (c == '"' || c == '\\') {
			e[0] = '\\';
			e[1] = (char)c;
			jput(j, e, 2);
		} else if (c < 0x20) {
			int l = snprintf(e, sizeof e, "\\u%04x", c);
			if (c == '\n')
				l = snprintf(e, sizeof e, "\\n");
			else if (c == '\t')
				l = snprintf(e, sizeof e, "\\t");
			else if (c == '\r')
				l = snprintf(e, sizeof e, "\\r");
			jput(j, e, (size_t)l);
		} else {
			jput(j, (const char *)&c, 1);
		}
	}
	jput(j, "\"", 1);
}

static void jvalue(struct jw *j, const struct kn_ottl_val *v, int depth);

struct jent {
	const uint8_t *k;
	uint32_t klen;
	struct kn_av v;
};

struct jcollect {
	struct jent *e;
	uint32_t n, cap;
};

static int jcollect_cb(void *ctx, const uint8_t *k, uint32_t klen, const struct kn_av *v)
{
	struct jcollect *c = ctx;
	if (c->n < c->cap)
		c->e[c->n++] = (struct jent){.k = k, .klen = klen, .v = *v};
	return 0;
}

static int jent_cmp(const void *a, const void *b)
{
	const struct jent *x = a, *y = b;
	return cmp_bytes(x->k, x->klen, y->k, y->klen);
}

static void jvalue(struct jw *j, const struct kn_ottl_val *v, int depth)
{
	char buf[64];
	if (depth > 32) {
		j->bad = 1;
		return;
	}
	switch (v->t) {
	case KN_V_NIL:
		jput(j, "null", 4);
		return;
	case KN_V_BOOL:
		jput(j, v->i ? "true" : "false", v->i ? 4 : 5);
		return;
	case KN_V_INT:
		jput(j, buf, (size_t)snprintf(buf, sizeof buf, "%lld", (long long)v->i));
		return;
	case KN_V_DBL: {
		struct kn_av a = {.type = KN_AV_DOUBLE, .d = v->d};
		const char *s;
		int l = kn_av_string(&a, buf, &s);
		jput(j, s, (size_t)l);
		return;
	}
	case KN_V_STR:
		jstr(j, v->p, v->len);
		return;
	case KN_V_BYTES: {
		size_t need = (v->len + 2) / 3 * 4;
		char *t = (char *)kn_ottl_tx_alloc(j->tx, need + 1);
		if (!t) {
			j->bad = 1;
			return;
		}
		jput(j, "\"", 1);
		jput(j, t, b64_encode(v->p, v->len, t));
		jput(j, "\"", 1);
		return;
	}
	case KN_V_SLICE: {
		int64_t n = kn_ottl_slice_len(v);
		jput(j, "[", 1);
		for (int64_t i = 0; i < n; i++) {
			struct kn_ottl_val x;
			if (kn_ottl_slice_get(v, i, &x)) {
				j->bad = 1;
				return;
			}
			if (i)
				jput(j, ",", 1);
			jvalue(j, &x, depth + 1);
		}
		jput(j, "]", 1);
		return;
	}
	case KN_V_MAP: {
		int64_t n = kn_ottl_map_len(v);
		if (n < 0) {
			j->bad = 1;
			return;
		}
		struct jcollect c = {.cap = (uint32_t)n};
		c.e = (struct jent *)kn_ottl_tx_alloc(j->tx, (size_t)(n ? n : 1) * sizeof *c.e);
		if (!c.e) {
			j->bad = 1;
			return;
		}
		kn_ottl_map_each(v, jcollect_cb, &c);
		qsort(c.e, c.n, sizeof *c.e, jent_cmp);
		jput(j, "{", 1);
		for (uint32_t i = 0; i < c.n; i++) {
			struct kn_ottl_val x;
			if (i)
				jput(j, ",", 1);
			jstr(j, c.e[i].k, c.e[i].klen);
			jput(j, ":", 1);
			if (kn_ottl_val_from_av(&c.e[i].v, &x) < 0) {
				j->bad = 1;
				return;
			}
			jvalue(j, &x, depth + 1);
		}
		jput(j, "}", 1);
		return;
	}
	default:
		jput(j, "null", 4);
		return;
	}
}

int kn_ottl_val_str(struct kn_ottl_tx *tx, const struct kn_ottl_val *v, int b64, const uint8_t **s,
		    uint32_t *len)
{
	char buf[96];
	int l = 0;
	const char *txt;
	switch (v->t) {
	case KN_V_NIL:
		*s = (const uint8_t *)"";
		*len = 0;
		return 0;
	case KN_V_STR:
		*s = v->p;
		*len = v->len;
		return 0;
	case KN_V_BOOL:
	case KN_V_INT:
	case KN_V_DBL: {
		struct kn_av a = {.type = v->t == KN_V_BOOL ? KN_AV_BOOL : v->t == KN_V_INT ? KN_AV_INT : KN_AV_DOUBLE,
				  .b = (int)v->i, .i = v->i, .d = v->d};
		l = kn_av_string(&a, buf, &txt);
		break;
	}
	case KN_V_TIME:
		l = fmt_time(v->i, buf, sizeof buf);
		txt = buf;
		break;
	case KN_V_DUR:
		l = fmt_dur(v->i, buf, sizeof buf);
		txt = buf;
		break;
	case KN_V_BYTES: {
		size_t need = b64 ? (v->len + 2) / 3 * 4 : 2u * (size_t)v->len;
		char *t = (char *)kn_ottl_tx_alloc(tx, need + 1);
		if (!t)
			return kn_ottl_rt_err(tx, "out of memory");
		if (b64)
			b64_encode(v->p, v->len, t);
		else
			kn_hex_encode(v->p, v->len, t);
		*s = (const uint8_t *)t;
		*len = (uint32_t)need;
		return 0;
	}
	case KN_V_MAP:
	case KN_V_SLICE: {
		size_t enc = v->len;
		if (v->view) {
			const uint8_t *p = NULL;
			uint32_t pl = 0;
			if (kn_ottl_view_encode(tx, v->view, &p, &pl) < 0)
				return -1;
			enc = pl;
		}
		struct jw j = {.cap = 8 * enc + 64, .tx = tx};
		if (!(j.b = (char *)kn_ottl_tx_alloc(tx, j.cap)))
			return kn_ottl_rt_err(tx, "out of memory");
		jvalue(&j, v, 0);
		if (j.bad)
			return kn_ottl_rt_err(tx, "cannot render %s as JSON", kn_ottl_vt_an(v->t));
		*s = (const uint8_t *)j.b;
		*len = (uint32_t)j.n;
		return 0;
	}
	default:
		return kn_ottl_rt_err(tx, "no string form for %s", kn_ottl_vt_an(v->t));
	}
	if (l < 0)
		l = 0;
	uint8_t *t = kn_ottl_tx_alloc(tx, (size_t)l + 1);
	if (!t)
		return kn_ottl_rt_err(tx, "out of memory");
	memcpy(t, txt, (size_t)l);
	*s = t;
	*len = (uint32_t)l;
	return 0;
}
