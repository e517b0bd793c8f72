/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_conv: OTTL's converters for types and strings, with OTel's
 * semantics (ottlfuncs):
 *
 *   IsMatch(target, pattern)      regex search; non-strings as their string
 *                                 form (bytes base64, maps/slices JSON); nil -> false
 *   Concat(values[], delimiter)   string forms joined; bytes as hex, nil as
 *                                 "<nil>", maps and slices left out
 *   Int(v) Double(v) Bool(v)      conversions; what does not convert -> nil
 *   String(v)                     strings as they are, bytes hex, maps/slices JSON
 *   Len(v)                        bytes of a string, entries of a map or slice
 *   ConvertCase(t, lower|upper|snake|camel), ToLowerCase, ToUpperCase
 *   Substring(t, start, length)   byte offsets; out of range -> error
 *   Split(t, delimiter)           -> slice of strings (Go's strings.Split)
 *   HasPrefix, HasSuffix, TrimPrefix, TrimSuffix, Coalesce(values[])
 *   IsString IsInt IsDouble IsBool IsMap IsList IsEmpty, IsRootSpan()
 * A converter given a value of a type it does not take returns an error,
 * as OTel's do; error_mode decides what follows. Case conversion is ASCII
 * (non-ASCII bytes are kept); snake/camel follow strcase's word boundaries
 * (lower->Upper, acronym end, digits, and '_', '-', '.', ' ' separators). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kn_ottl_int.h"
#include "../core/kn_strconv.h"
#include "../wire/kn_wire_field.h"

#define KN_CTX_SPAN_ONLY (1u << KN_OTTL_CTX_SPAN)

static int set_bool(struct kn_ottl_val *out, int b)
{
	memset(out, 0, sizeof *out);
	out->t = KN_V_BOOL;
	out->i = b != 0;
	return 0;
}

static int set_int(struct kn_ottl_val *out, int64_t i)
{
	memset(out, 0, sizeof *out);
	out->t = KN_V_INT;
	out->i = i;
	return 0;
}

static int set_str(struct kn_ottl_val *out, const uint8_t *s, uint32_t len)
{
	memset(out, 0, sizeof *out);
	out->t = KN_V_STR;
	out->p = s ? s : (const uint8_t *)"";
	out->len = len;
	return 0;
}

/* Evaluates argument i and requires a string. */
static int arg_str(const struct kn_ottl_node *c, uint32_t i, struct kn_ottl_tx *tx, const uint8_t **s,
		   uint32_t *len)
{
	struct kn_ottl_val v;
	if (kn_ottl_eval(c->kids[i], tx, &v) < 0)
		return -1;
	if (v.t != KN_V_STR)
		return kn_ottl_rt_err(tx, "%s: %s is %s, not a string", c->name, c->fn->params[i].name,
				      kn_ottl_vt_an(v.t));
	*s = v.p;
	*len = v.len;
	return 0;
}

static int arg_int(const struct kn_ottl_node *c, uint32_t i, struct kn_ottl_tx *tx, int64_t *out)
{
	struct kn_ottl_val v;
	if (kn_ottl_eval(c->kids[i], tx, &v) < 0)
		return -1;
	if (v.t != KN_V_INT)
		return kn_ottl_rt_err(tx, "%s: %s is %s, not an int", c->name, c->fn->params[i].name,
				      kn_ottl_vt_an(v.t));
	*out = v.i;
	return 0;
}

/* ---- IsMatch ---- */

static int check_ismatch(struct kn_ottl_node *c, struct kn_ottl_cc *cc)
{
	c->re = kn_ottl_cc_regex(cc, c->kids[1]);
	return c->re ? KN_OK : KN_ERR;
}

static int run_ismatch(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	struct kn_ottl_val v;
	const uint8_t *s = NULL;
	uint32_t len = 0;
	if (kn_ottl_eval(c->kids[0], tx, &v) < 0)
		return -1;
	if (v.t == KN_V_NIL)
		return set_bool(out, 0);
	if (kn_ottl_val_str(tx, &v, 1, &s, &len) < 0)
		return -1;
	int m = kn_ottl_re_match(tx, c->re, s, len, 0, NULL, NULL);
	if (m < 0)
		return -1;
	return set_bool(out, m);
}

/* ---- Concat, Coalesce ---- */

static int run_concat(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	const struct kn_ottl_node *list = c->kids[0];
	const struct kn_ottl_val *d = &c->kids[1]->v;
	uint32_t n = list->nkids;
	struct piece {
		const uint8_t *s;
		uint32_t len;
	} *pc = NULL;
	if (n && !(pc = (struct piece *)kn_ottl_tx_alloc(tx, n * sizeof *pc)))
		return kn_ottl_rt_err(tx, "out of memory");
	uint64_t total = 0;
	uint32_t np = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct kn_ottl_val v;
		if (kn_ottl_eval(list->kids[i], tx, &v) < 0)
			return -1;
		if (v.t == KN_V_MAP || v.t == KN_V_SLICE)
			continue;
		if (v.t == KN_V_NIL) {
			pc[np].s = (const uint8_t *)"<nil>";
			pc[np].len = 5;
		} else if (kn_ottl_val_str(tx, &v, 0, &pc[np].s, &pc[np].len) < 0) {
			return -1;
		}
		total += pc[np].len + (np ? d->len : 0);
		np++;
	}
	if (total > 0x7fffffffu)
		return kn_ottl_rt_err(tx, "Concat: result too large");
	uint8_t *b = kn_ottl_tx_alloc(tx, (size_t)total + 1), *w = b;
	if (!b)
		return kn_ottl_rt_err(tx, "out of memory");
	for (uint32_t i = 0; i < np; i++) {
		if (i && d->len) {
			memcpy(w, d->p, d->len);
			w += d->len;
		}
		if (pc[i].len)
			memcpy(w, pc[i].s, pc[i].len);
		w += pc[i].len;
	}
	return set_str(out, b, (uint32_t)(w - b));
}

static int run_coalesce(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	const struct kn_ottl_node *list = c->kids[0];
	memset(out, 0, sizeof *out);
	for (uint32_t i = 0; i < list->nkids; i++) {
		if (kn_ottl_eval(list->kids[i], tx, out) < 0)
			return -1;
		if (out->t != KN_V_NIL)
			return 0;
	}
	return 0;
}

static int check_coalesce(struct kn_ottl_node *c, struct kn_ottl_cc *cc)
{
	if (c->kids[0]->nkids == 0)
		return kn_ottl_cc_err(cc, c, "Coalesce needs at least one value");
	return KN_OK;
}

/* ---- conversions ---- */

/* Go's strconv.ParseFloat (64 bit): decimal, exponents, inf / nan words, underscores only between digits of a 0x.. */
static int parse_f64(const uint8_t *s, uint32_t len, double *out)
{
	char buf[128];
	if (len == 0 || len >= sizeof buf)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (buf[0] == ' ' || buf[0] == '\t' || buf[0] == '\n' || strchr(buf, '_'))
		return -1;
	char *end;
	errno = 0;
	double x = strtod(buf, &end);
	if (*end != '\0' || (errno == ERANGE && isinf(x)))
		return -1;
	*out = x;
	return 0;
}

static int run_int(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	struct kn_ottl_val v;
	if (kn_ottl_eval(c->kids[0], tx, &v) < 0)
		return -1;
	memset(out, 0, sizeof *out);
	switch (v.t) {
	case KN_V_INT:
		return set_int(out, v.i);
	case KN_V_BOOL:
		return set_int(out, v.i ? 1 : 0);
	case KN_V_DBL:
		if (isnan(v.d) || v.d >= 9223372036854775808.0 || v.d < -9223372036854775808.0)
			return 0;
		return set_int(out, (int64_t)v.d);
	case KN_V_STR: {
		int64_t x = 0;
		if (kn_strconv_int(v.p, v.len, &x) == 0)
			return set_int(out, x);
		return 0;
	}
	default:
		return 0;
	}
}

static int run_double(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	struct kn_ottl_val v;
	if (kn_ottl_eval(c->kids[0], tx, &v) < 0)
		return -1;
	memset(out, 0, sizeof *out);
	double d = 0;
	switch (v.t) {
	case KN_V_DBL:
		d = v.d;
		break;
	case KN_V_INT:
		d = (double)v.i;
		break;
	case KN_V_BOOL:
		d = v.i ? 1 : 0;
		break;
	case KN_V_STR:
		if (parse_f64(v.p, v.len, &d) < 0)
			return 0;
		break;
	default:
		return 0;
	}
	out->t = KN_V_DBL;
	out->d = d;
	return 0;
}

static int run_bool(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	struct kn_ottl_val v;
	if (kn_ottl_eval(c->kids[0], tx, &v) < 0)
		return -1;
	memset(out, 0, sizeof *out);
	switch (v.t) {
	case KN_V_BOOL:
		return set_bool(out, (int)v.i);
	case KN_V_INT:
		return set_bool(out, v.i != 0);
	case KN_V_DBL:
		return set_bool(out, v.d != 0);
	case KN_V_STR: {
		static const char *const t[] = {"1", "t", "T", "true", "TRUE", "True"};
		static const char *const f[] = {"0", "f", "F", "false", "FALSE", "False"};
		for (int i = 0; i < 6; i++) {
			if (strlen(t[i]) == v.len && !memcmp(t[i], v.p, v.len))
				return set_bool(out, 1);
			if (strlen(f[i]) == v.len && !memcmp(f[i], v.p, v.len))
				return set_bool(out, 0);
		}
		return 0;
	}
	default:
		return 0;
	}
}

static int run_string(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	struct kn_ottl_val v;
	const uint8_t *s = NULL;
	uint32_t len = 0;
	if (kn_ottl_eval(c->kids[0], tx, &v) < 0)
		return -1;
	memset(out, 0, sizeof *out);
	if (v.t == KN_V_NIL)
		return 0;
	if (kn_ottl_val_str(tx, &v, 0, &s, &len) < 0)
		return -1;
	return set_str(out, s, len);
}

static int run_len(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	struct kn_ottl_val v;
	if (kn_ottl_eval(c->kids[0], tx, &v) < 0)
		return -1;
	int64_t n = 0;
	switch (v.t) {
	case KN_V_STR:
		n = v.len;
		break;
	case KN_V_MAP:
		n = kn_ottl_map_len(&v);
		break;
	case KN_V_SLICE:
		n = kn_ottl_slice_len(&v);
		break;
	default:
		return kn_ottl_rt_err(tx, "Len: %s has no length", kn_ottl_vt_an(v.t));
	}
	if (n < 0)
		return kn_ottl_rt_err(tx, "Len: malformed value");
	return set_int(out, n);
}

/* ---- case ---- */

enum { CASE_LOWER, CASE_UPPER, CASE_SNAKE, CASE_CAMEL };

static int check_case(struct kn_ottl_node *c, struct kn_ottl_cc *cc)
{
	static const char *const names[] = {"lower", "upper", "snake", "camel"};
	const struct kn_ottl_val *v = &c->kids[1]->v;
	for (int i = 0; i < 4; i++)
		if (strlen(names[i]) == v->len && !memcmp(names[i], v->p, v->len)) {
			c->aux = i;
			return KN_OK;
		}
	return kn_ottl_cc_err(cc, c->kids[1], "ConvertCase: unknown case (lower, upper, snake or camel)");
}

static int is_up(uint8_t c)
{
	return c >= 'A' && c <= 'Z';
}

static int is_lo(uint8_t c)
{
	return c >= 'a' && c <= 'z';
}

static int is_dig(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static int is_sep(uint8_t c)
{
	return c == '_' || c == '-' || c == '.' || c == ' ';
}

static uint8_t lower(uint8_t c)
{
	return is_up(c) ? (uint8_t)(c + 32) : c;
}

static uint8_t upper(uint8_t c)
{
	return is_lo(c) ? (uint8_t)(c - 32) : c;
}

static int convert_case(struct kn_ottl_tx *tx, int how, const uint8_t *s, uint32_t len, struct kn_ottl_val *out)
{
	uint8_t *b = kn_ottl_tx_alloc(tx, 2u * (size_t)len + 1), *w = b;
	if (!b)
		return kn_ottl_rt_err(tx, "out of memory");
	switch (how) {
	case CASE_LOWER:
		for (uint32_t i = 0; i < len; i++)
			*w++ = lower(s[i]);
		break;
	case CASE_UPPER:
		for (uint32_t i = 0; i < len; i++)
			*w++ = upper(s[i]);
		break;
	case CASE_SNAKE: {
		uint32_t a = 0, z = len;
		while (a < z && s[a] == ' ')
			a++;
		while (z > a && s[z - 1] == ' ')
			z--;
		for (uint32_t i = a; i < z; i++) {
			uint8_t c = s[i], p = i > a ? s[i - 1] : 0, n = i + 1 < z ? s[i + 1] : 0;
			if (is_sep(c)) {
				if (w > b && w[-1] != '_')
					*w++ = '_';
				continue;
			}
			int boundary = 0;
			if (i > a && !is_sep(p)) {
				if (is_up(c) && (is_lo(p) || is_dig(p)))
					boundary = 1;
				else if (is_up(c) && is_up(p) && is_lo(n))
					boundary = 1;
				else if (is_dig(c) && (is_lo(p) || is_up(p)))
					boundary = 1;
			}
			if (boundary && w > b && w[-1] != '_')
				*w++ = '_';
			*w++ = lower(c);
		}
		break;
	}
	case CASE_CAMEL: {
		int cap = 1;
		for (uint32_t i = 0; i < len; i++) {
			uint8_t c = s[i];
			if (is_sep(c)) {
				cap = 1;
				continue;
			}
			if (is_dig(c)) {
				*w++ = c;
				cap = 1;
				continue;
			}
			*w++ = cap ? upper(c) : c;
			cap = 0;
		}
		break;
	}
	}
	return set_str(out, b, (uint32_t)(w - b));
}

static int run_convert_case(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	const uint8_t *s = NULL;
	uint32_t len = 0;
	if (arg_str(c, 0, tx, &s, &len) < 0)
		return -1;
	return convert_case(tx, (int)c->aux, s, len, out);
}

static int run_lower(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	const uint8_t *s = NULL;
	uint32_t len = 0;
	if (arg_str(c, 0, tx, &s, &len) < 0)
		return -1;
	return convert_case(tx, CASE_LOWER, s, len, out);
}

static int run_upper(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	const uint8_t *s = NULL;
	uint32_t len = 0;
	if (arg_str(c, 0, tx, &s, &len) < 0)
		return -1;
	return convert_case(tx, CASE_UPPER, s, len, out);
}

/* ---- substrings, prefixes, split ---- */

static int run_substring(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	const uint8_t *s = NULL;
	uint32_t len = 0;
	int64_t start = 0, n = 0;
	if (arg_str(c, 0, tx, &s, &len) < 0 || arg_int(c, 1, tx, &start) < 0 || arg_int(c, 2, tx, &n) < 0)
		return -1;
	if (start < 0 || n < 0 || start > (int64_t)len || n > (int64_t)len - start)
		return kn_ottl_rt_err(tx, "Substring: start %lld and length %lld are out of range for a string of %u bytes",
				      (long long)start, (long long)n, len);
	return set_str(out, s + start, (uint32_t)n);
}

static int prefix_args(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, const uint8_t **s, uint32_t *len,
		       const uint8_t **p, uint32_t *plen)
{
	if (arg_str(c, 0, tx, s, len) < 0 || arg_str(c, 1, tx, p, plen) < 0)
		return -1;
	return 0;
}

static int run_has_prefix(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	const uint8_t *s = NULL, *p = NULL;
	uint32_t len = 0, pl = 0;
	if (prefix_args(c, tx, &s, &len, &p, &pl) < 0)
		return -1;
	return set_bool(out, pl <= len && (!pl || memcmp(s, p, pl) == 0));
}

static int run_has_suffix(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	const uint8_t *s = NULL, *p = NULL;
	uint32_t len = 0, pl = 0;
	if (prefix_args(c, tx, &s, &len, &p, &pl) < 0)
		return -1;
	return set_bool(out, pl <= len && (!pl || memcmp(s + len - pl, p, pl) == 0));
}

static int run_trim_prefix(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	const uint8_t *s = NULL, *p = NULL;
	uint32_t len = 0, pl = 0;
	if (prefix_args(c, tx, &s, &len, &p, &pl) < 0)
		return -1;
	if (pl <= len && (!pl || memcmp(s, p, pl) == 0))
		return set_str(out, s + pl, len - pl);
	return set_str(out, s, len);
}

static int run_trim_suffix(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	const uint8_t *s = NULL, *p = NULL;
	uint32_t len = 0, pl = 0;
	if (prefix_args(c, tx, &s, &len, &p, &pl) < 0)
		return -1;
	if (pl <= len && (!pl || memcmp(s + len - pl, p, pl) == 0))
		return set_str(out, s, len - pl);
	return set_str(out, s, len);
}

static size_t str_any_size(uint32_t len)
{
	size_t any = 1 + kn_wire_varint_len(len) + len;
	return 1 + kn_wire_varint_len(any) + any;
}

static uint8_t *str_any_write(uint8_t *w, const uint8_t *s, uint32_t len)
{
	size_t any = 1 + kn_wire_varint_len(len) + len;
	*w++ = 0x0a;
	w += kn_wire_put_varint(w, any);
	*w++ = 0x0a;
	w += kn_wire_put_varint(w, len);
	if (len)
		memcpy(w, s, len);
	return w + len;
}

static int run_split(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	const uint8_t *s = NULL;
	uint32_t len = 0;
	const struct kn_ottl_val *d = &c->kids[1]->v;
	if (arg_str(c, 0, tx, &s, &len) < 0)
		return -1;
	/* sizes first: each piece becomes an AnyValue string */
	size_t total = 0;
	for (int pass = 0; pass < 2; pass++) {
		uint8_t *b = NULL, *w = NULL;
		if (pass) {
			if (!(b = kn_ottl_tx_alloc(tx, total + 1)))
				return kn_ottl_rt_err(tx, "out of memory");
			w = b;
		}
		uint32_t i = 0;
		if (d->len == 0) {
			/* Go splits into UTF-8 sequences */
			while (i < len) {
				uint32_t n = 1;
				uint8_t ch = s[i];
				if (ch >= 0xc0)
					n = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : 2;
				if (i + n > len)
					n = 1;
				if (pass)
					w = str_any_write(w, s + i, n);
				else
					total += str_any_size(n);
				i += n;
			}
		} else {
			for (;;) {
				const uint8_t *hit = NULL;
				for (uint32_t k = i; k + d->len <= len; k++)
					if (!memcmp(s + k, d->p, d->len)) {
						hit = s + k;
						break;
					}
				uint32_t e = hit ? (uint32_t)(hit - s) : len;
				if (pass)
					w = str_any_write(w, s + i, e - i);
				else
					total += str_any_size(e - i);
				if (!hit)
					break;
				i = e + d->len;
			}
		}
		if (pass) {
			memset(out, 0, sizeof *out);
			out->t = KN_V_SLICE;
			out->p = b;
			out->len = (uint32_t)(w - b);
		}
	}
	return 0;
}

/* ---- type checks ---- */

static int type_is(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out, int t)
{
	struct kn_ottl_val v;
	if (kn_ottl_eval(c->kids[0], tx, &v) < 0)
		return -1;
	return set_bool(out, v.t == t);
}

static int run_is_string(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	return type_is(c, tx, out, KN_V_STR);
}

static int run_is_int(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	return type_is(c, tx, out, KN_V_INT);
}

static int run_is_double(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	return type_is(c, tx, out, KN_V_DBL);
}

static int run_is_bool(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	return type_is(c, tx, out, KN_V_BOOL);
}

static int run_is_map(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	return type_is(c, tx, out, KN_V_MAP);
}

static int run_is_list(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	return type_is(c, tx, out, KN_V_SLICE);
}

static int run_is_empty(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	struct kn_ottl_val v;
	if (kn_ottl_eval(c->kids[0], tx, &v) < 0)
		return -1;
	int e = 0;
	switch (v.t) {
	case KN_V_NIL: e = 1; break;
	case KN_V_STR: e = v.len == 0; break;
	case KN_V_BYTES: {
		e = 1;
		for (uint32_t i = 0; i < v.len; i++)
			if (v.p[i])
				e = 0;
		break;
	}
	case KN_V_MAP: e = kn_ottl_map_len(&v) == 0; break;
	case KN_V_SLICE: e = kn_ottl_slice_len(&v) == 0; break;
	case KN_V_DBL: e = v.d == 0; break;
	default: e = v.i == 0; break;
	}
	return set_bool(out, e);
}

static int run_is_root_span(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)c;
	struct kn_ottl_m *m = kn_ottl_tx_fields(tx, KN_OTTL_CTX_SPAN);
	if (!m)
		return -1;
	const struct kn_ottl_fv *f = &m->f[4];
	int root = f->len == 8;
	for (uint32_t i = 0; root && i < 8; i++)
		if (f->s[i])
			root = 0;
	/* OTel: true only for the all-zero id; an absent parent is pdata's zero id too */
	if (f->len == 0)
		root = 1;
	return set_bool(out, root);
}

#define P(n, k) {.name = n, .kind = k}
#define OPT(n, k) {.name = n, .kind = k, .optional = 1}

const struct kn_ottl_fn kn_ottl_fns_conv[] = {
	{.name = "IsMatch", .nparams = 2, .params = {P("target", KN_PK_ANY), P("pattern", KN_PK_STR)},
	 .check = check_ismatch, .run = run_ismatch},
	{.name = "Concat", .nparams = 2, .params = {P("vals", KN_PK_LIST), P("delimiter", KN_PK_STR)},
	 .run = run_concat},
	{.name = "Coalesce", .nparams = 1, .params = {P("values", KN_PK_LIST)}, .check = check_coalesce,
	 .run = run_coalesce},
	{.name = "Int", .nparams = 1, .params = {P("value", KN_PK_ANY)}, .run = run_int},
	{.name = "Double", .nparams = 1, .params = {P("value", KN_PK_ANY)}, .run = run_double},
	{.name = "Bool", .nparams = 1, .params = {P("value", KN_PK_ANY)}, .run = run_bool},
	{.name = "String", .nparams = 1, .params = {P("value", KN_PK_ANY)}, .run = run_string},
	{.name = "Len", .nparams = 1, .params = {P("target", KN_PK_ANY)}, .run = run_len},
	{.name = "ConvertCase", .nparams = 2, .params = {P("target", KN_PK_ANY), P("toCase", KN_PK_STR)},
	 .check = check_case, .run = run_convert_case},
	{.name = "ToLowerCase", .nparams = 1, .params = {P("target", KN_PK_ANY)}, .run = run_lower},
	{.name = "ToUpperCase", .nparams = 1, .params = {P("target", KN_PK_ANY)}, .run = run_upper},
	{.name = "Substring", .nparams = 3,
	 .params = {P("target", KN_PK_ANY), P("start", KN_PK_ANY), P("length", KN_PK_ANY)}, .run = run_substring},
	{.name = "Split", .nparams = 2, .params = {P("target", KN_PK_ANY), P("delimiter", KN_PK_STR)},
	 .run = run_split},
	{.name = "HasPrefix", .nparams = 2, .params = {P("target", KN_PK_ANY), P("prefix", KN_PK_ANY)},
	 .run = run_has_prefix},
	{.name = "HasSuffix", .nparams = 2, .params = {P("target", KN_PK_ANY), P("suffix", KN_PK_ANY)},
	 .run = run_has_suffix},
	{.name = "TrimPrefix", .nparams = 2, .params = {P("value", KN_PK_ANY), P("prefix", KN_PK_ANY)},
	 .run = run_trim_prefix},
	{.name = "TrimSuffix", .nparams = 2, .params = {P("value", KN_PK_ANY), P("suffix", KN_PK_ANY)},
	 .run = run_trim_suffix},
	{.name = "IsString", .nparams = 1, .params = {P("value", KN_PK_ANY)}, .run = run_is_string},
	{.name = "IsInt", .nparams = 1, .params = {P("value", KN_PK_ANY)}, .run = run_is_int},
	{.name = "IsDouble", .nparams = 1, .params = {P("value", KN_PK_ANY)}, .run = run_is_double},
	{.name = "IsBool", .nparams = 1, .params = {P("value", KN_PK_ANY)}, .run = run_is_bool},
	{.name = "IsMap", .nparams = 1, .params = {P("value", KN_PK_ANY)}, .run = run_is_map},
	{.name = "IsList", .nparams = 1, .params = {P("value", KN_PK_ANY)}, .run = run_is_list},
	{.name = "IsEmpty", .nparams = 1, .params = {P("value", KN_PK_ANY)}, .run = run_is_empty},
	{.name = "IsRootSpan", .nparams = 0, .ctx_mask = KN_CTX_SPAN_ONLY, .run = run_is_root_span},
	{.name = NULL},
};
