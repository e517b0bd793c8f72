/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_regex: regular expressions and globs for the OTTL functions.
 *
 * Regular expressions are PCRE2 (already the dependency of the attribute
 * actions), compiled once at config time with UTF mode, matching invalid
 * UTF-8 subjects without erroring (PCRE2_MATCH_INVALID_UTF) and `$` only at
 * the very end (PCRE2_DOLLAR_ENDONLY): Go's RE2, which OTel uses, means the
 * same by the patterns OTel's docs write ((?P<name>..), (?i), \d, \s, \w,
 * classes); JIT-compiled where the platform has it. Matching is an
 * unanchored search, as Go's MatchString.
 *
 * Replacement follows Go's Regexp.ReplaceAllString exactly: matches left to
 * right, an empty match right after the previous match is not replaced,
 * the template is expanded as Regexp.Expand does ($1, ${1}, $name, ${name},
 * $$; a name is as long as possible, so $1x means ${1x}; an unknown group
 * is empty; a malformed $ stays). An optional hash function and format
 * ("prefix/%s") are applied to each expanded replacement, as OTel's
 * replace_* editors do. The output grows in a tx scratch buffer (kept,
 * reused) and is copied to the arena.
 *
 * Globs are Go's path/filepath.Match: * and ? do not cross '/', [...]
 * classes with ranges and ^ negation, \ escapes. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "kn_ottl_int.h"

void *kn_ottl_cc_regex(struct kn_ottl_cc *cc, const struct kn_ottl_node *n)
{
	int ec = 0;
	PCRE2_SIZE eo;
	pcre2_code *re = pcre2_compile(n->v.p, n->v.len, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY,
				       &ec, &eo, NULL);
	if (!re) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(ec, msg, sizeof msg);
		kn_ottl_cc_err(cc, n, "invalid regular expression: %s at offset %zu of the pattern", (const char *)msg,
			       (size_t)eo);
		return NULL;
	}
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	struct kn_ottl_prog *p = cc->prog;
	if (p->nres == p->cap_res) {
		uint32_t cap = p->cap_res ? p->cap_res * 2 : 4;
		void **v = realloc(p->res, cap * sizeof *v);
		if (!v) {
			pcre2_code_free(re);
			kn_errf(cc->err, "%s: out of memory", cc->where);
			return NULL;
		}
		p->res = v;
		p->cap_res = cap;
	}
	p->res[p->nres++] = re;
	return re;
}

void kn_ottl_re_free(void *re)
{
	pcre2_code_free(re);
}

int kn_ottl_re_match(struct kn_ottl_tx *tx, const void *re, const uint8_t *s, uint32_t len, uint32_t start,
		     size_t **ov, uint32_t *npairs)
{
	uint32_t ncap = 0;
	if (ov)
		pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &ncap);
	pcre2_match_data *md = kn_ottl_tx_md(tx, ncap + 1);
	if (!md)
		return kn_ottl_rt_err(tx, "out of memory");
	int rc = pcre2_match(re, s ? s : (const uint8_t *)"", len, start, 0, md, NULL);
	if (rc < 0)
		return 0;
	if (ov) {
		*ov = pcre2_get_ovector_pointer(md);
		*npairs = ncap + 1;
	}
	return 1;
}

/* ---- growable scratch ---- */

static int buf_put(uint8_t **b, uint32_t *len, uint32_t *cap, const uint8_t *s, size_t n)
{
	if ((uint64_t)*len + n > 0x7fffffffu)
		return -1;
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : 256;
		while (c < *len + n)
			c *= 2;
		uint8_t *nb = realloc(*b, c);
		if (!nb)
			return -1;
		*b = nb;
		*cap = (uint32_t)c;
	}
	if (n)
		memcpy(*b + *len, s, n);
	*len += (uint32_t)n;
	return 0;
}

static int is_name_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

/* Go's Regexp.Expand of tmpl for one match into (b, len, cap). */
static int expand(const void *re, const uint8_t *tmpl, uint32_t tlen, const uint8_t *src, const size_t *ov,
		  uint32_t npairs, uint8_t **b, uint32_t *len, uint32_t *cap)
{
	uint32_t i = 0;
	while (i < tlen) {
		const uint8_t *d = memchr(tmpl + i, '$', tlen - i);
		uint32_t j = d ? (uint32_t)(d - tmpl) : tlen;
		if (buf_put(b, len, cap, tmpl + i, j - i) < 0)
			return -1;
		if (!d)
			return 0;
		i = j + 1;
		if (i < tlen && tmpl[i] == '$') {
			if (buf_put(b, len, cap, (const uint8_t *)"$", 1) < 0)
				return -1;
			i++;
			continue;
		}
		int brace = i < tlen && tmpl[i] == '{';
		uint32_t k = i + (uint32_t)brace, ns = k;
		while (k < tlen && is_name_char(tmpl[k]))
			k++;
		uint32_t nl = k - ns;
		if (nl == 0 || (brace && (k >= tlen || tmpl[k] != '}'))) {
			if (buf_put(b, len, cap, (const uint8_t *)"$", 1) < 0)   /* malformed: $ stays */
				return -1;
			continue;
		}
		i = k + (uint32_t)brace;
		int64_t num = 0;
		for (uint32_t q = ns; q < k && num >= 0; q++) {
			if (tmpl[q] < '0' || tmpl[q] > '9') {
				num = -1;
				break;
			}
			num = num * 10 + (tmpl[q] - '0');
			if (num >= 100000000)
				num = -1;
		}
		if (num < 0) {
			char name[128];
			if (nl >= sizeof name)
				continue;
			memcpy(name, tmpl + ns, nl);
			name[nl] = '\0';
			int g = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
			if (g < 0)
				continue;
			num = g;
		}
		if ((uint64_t)num < npairs && ov[2 * num] != PCRE2_UNSET &&
		    buf_put(b, len, cap, src + ov[2 * num], ov[2 * num + 1] - ov[2 * num]) < 0)
			return -1;
	}
	return 0;
}

static uint32_t utf8_width(const uint8_t *s, uint32_t len, uint32_t pos)
{
	uint8_t c = s[pos];
	uint32_t w = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
	if (pos + w > len)
		return 1;
	for (uint32_t i = 1; i < w; i++)
		if ((s[pos + i] & 0xc0) != 0x80)
			return 1;
	return w;
}

int kn_ottl_format1(struct kn_ottl_tx *tx, const uint8_t *fmt, uint32_t flen, const uint8_t *s, uint32_t len,
		    const uint8_t **out, uint32_t *outlen)
{
	uint8_t *b = kn_ottl_tx_alloc(tx, (size_t)flen + len + 1), *w = b;
	if (!b)
		return kn_ottl_rt_err(tx, "out of memory");
	for (uint32_t i = 0; i < flen; i++) {
		if (fmt[i] == '%' && i + 1 < flen && fmt[i + 1] == 's') {
			memcpy(w, s, len);
			w += len;
			i++;
		} else if (fmt[i] == '%' && i + 1 < flen && fmt[i + 1] == '%') {
			*w++ = '%';
			i++;
		} else {
			*w++ = fmt[i];
		}
	}
	*out = b;
	*outlen = (uint32_t)(w - b);
	return 0;
}

int kn_ottl_re_replace(struct kn_ottl_tx *tx, const void *re, const uint8_t *s, uint32_t len,
		       const uint8_t *tmpl, uint32_t tlen, const struct kn_ottl_fn *hash,
		       const uint8_t *fmt, uint32_t fmtlen, const uint8_t **out, uint32_t *outlen,
		       int *changed)
{
	uint32_t ncap = 0;
	pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &ncap);
	pcre2_match_data *md = kn_ottl_tx_md(tx, ncap + 1);
	if (!md)
		return kn_ottl_rt_err(tx, "out of memory");
	const uint8_t *src = s ? s : (const uint8_t *)"";
	uint32_t search = 0, last = 0;
	int any = 0;
	tx->rlen = 0;
	while (search <= len) {
		int rc = pcre2_match(re, src, len, search, 0, md, NULL);
		if (rc < 0)
			break;
		const size_t *ov = pcre2_get_ovector_pointer(md);
		uint32_t a0 = (uint32_t)ov[0], a1 = (uint32_t)ov[1];
		if (a0 < last)   /* cannot happen with a forward search; be safe */
			break;
		if (buf_put(&tx->rbuf, &tx->rlen, &tx->rcap, src + last, a0 - last) < 0)
			return kn_ottl_rt_err(tx, "out of memory");
		if (a1 > last || a0 == 0) {
			any = 1;
			if (!hash && !fmt) {
				if (expand(re, tmpl, tlen, src, ov, ncap + 1, &tx->rbuf, &tx->rlen, &tx->rcap) < 0)
					return kn_ottl_rt_err(tx, "out of memory");
			} else {
				tx->tlen = 0;
				if (expand(re, tmpl, tlen, src, ov, ncap + 1, &tx->tbuf, &tx->tlen, &tx->tcap) < 0)
					return kn_ottl_rt_err(tx, "out of memory");
				const uint8_t *r = tx->tbuf ? tx->tbuf : (const uint8_t *)"";
				uint32_t rl = tx->tlen;
				struct kn_ottl_val hv;
				if (hash) {
					if (kn_ottl_hash_apply(hash, tx, r, rl, &hv) < 0)
						return -1;
					r = hv.p;
					rl = hv.len;
				}
				if (fmt && kn_ottl_format1(tx, fmt, fmtlen, r, rl, &r, &rl) < 0)
					return -1;
				if (buf_put(&tx->rbuf, &tx->rlen, &tx->rcap, r, rl) < 0)
					return kn_ottl_rt_err(tx, "out of memory");
			}
		}
		last = a1;
		uint32_t w = search < len ? utf8_width(src, len, search) : 1;
		if (search + w > a1)
			search += w;
		else if (search + 1 > a1)
			search++;
		else
			search = a1;
	}
	if (!any) {
		*out = s;
		*outlen = len;
		*changed = 0;
		return 0;
	}
	if (buf_put(&tx->rbuf, &tx->rlen, &tx->rcap, src + last, len - last) < 0)
		return kn_ottl_rt_err(tx, "out of memory");
	uint8_t *b = kn_ottl_tx_alloc(tx, tx->rlen + 1);
	if (!b)
		return kn_ottl_rt_err(tx, "out of memory");
	if (tx->rlen)
		memcpy(b, tx->rbuf, tx->rlen);
	*out = b;
	*outlen = tx->rlen;
	*changed = tx->rlen != len || (len && memcmp(b, s, len) != 0);
	return 0;
}

/* ---- globs (Go's path/filepath.Match) ---- */

static uint32_t rune(const uint8_t *s, uint32_t len, uint32_t pos, uint32_t *cp)
{
	uint32_t w = utf8_width(s, len, pos);
	uint8_t c = s[pos];
	if (w == 1) {
		*cp = c;
		return 1;
	}
	uint32_t v = c & (w == 2 ? 0x1f : w == 3 ? 0x0f : 0x07);
	for (uint32_t i = 1; i < w; i++)
		v = v << 6 | (s[pos + i] & 0x3f);
	*cp = v;
	return w;
}

/* One chunk (no '*') against the start of s: 1 and *rest, 0, -1 bad. */
static int match_chunk(const uint8_t *c, uint32_t cl, const uint8_t *s, uint32_t sl, uint32_t *rest)
{
	uint32_t ci = 0, si = 0;
	int failed = 0;
	while (ci < cl) {
		if (!failed && si >= sl)
			failed = 1;
		uint8_t ch = c[ci];
		if (ch == '[') {
			uint32_t r = 0;
			if (!failed) {
				si += rune(s, sl, si, &r);
			}
			ci++;
			int neg = 0, match = 0, nrange = 0;
			if (ci < cl && c[ci] == '^') {
				neg = 1;
				ci++;
			}
			for (;;) {
				if (ci < cl && c[ci] == ']' && nrange > 0) {
					ci++;
					break;
				}
				uint32_t lo = 0, hi = 0;
				if (ci >= cl)
					return -1;
				if (c[ci] == '\\') {
					ci++;
					if (ci >= cl)
						return -1;
				} else if (c[ci] == '-' || c[ci] == ']') {
					return -1;
				}
				ci += rune(c, cl, ci, &lo);
				hi = lo;
				if (ci < cl && c[ci] == '-') {
					ci++;
					if (ci >= cl)
						return -1;
					if (c[ci] == '\\') {
						ci++;
						if (ci >= cl)
							return -1;
					} else if (c[ci] == '-' || c[ci] == ']') {
						return -1;
					}
					ci += rune(c, cl, ci, &hi);
				}
				if (lo <= r && r <= hi)
					match = 1;
				nrange++;
			}
			if (match == neg)
				failed = 1;
		} else if (ch == '?') {
			if (!failed) {
				if (s[si] == '/')
					failed = 1;
				uint32_t r = 0;
				si += rune(s, sl, si, &r);
			}
			ci++;
		} else {
			if (ch == '\\') {
				ci++;
				if (ci >= cl)
					return -1;
			}
			if (!failed) {
				if (c[ci] != s[si])
					failed = 1;
				si++;
			}
			ci++;
		}
	}
	if (failed)
		return 0;
	*rest = si;
	return 1;
}

/* The next chunk: leading stars skipped (*star), chunk [*cs, *ce). */
static uint32_t scan_chunk(const uint8_t *p, uint32_t pl, uint32_t i, int *star, uint32_t *ce)
{
	*star = 0;
	while (i < pl && p[i] == '*') {
		i++;
		*star = 1;
	}
	int inrange = 0;
	uint32_t k = i;
	for (; k < pl; k++) {
		if (p[k] == '\\') {
			if (k + 1 < pl)
				k++;
		} else if (p[k] == '[') {
			inrange = 1;
		} else if (p[k] == ']') {
			inrange = 0;
		} else if (p[k] == '*' && !inrange) {
			break;
		}
	}
	*ce = k;
	return i;
}

int kn_ottl_glob_check(const uint8_t *pat, uint32_t plen)
{
	uint32_t i = 0;
	while (i < plen) {
		int star = 0;
		uint32_t ce, cs = scan_chunk(pat, plen, i, &star, &ce), rest;
		/* a chunk is valid when matching it against anything reaches its end */
		if (match_chunk(pat + cs, ce - cs, (const uint8_t *)"", 0, &rest) < 0)
			return -1;
		i = ce;
	}
	return 0;
}

int kn_ottl_glob(const uint8_t *pat, uint32_t plen, const uint8_t *s, uint32_t len)
{
	uint32_t pi = 0, si = 0;
	while (pi < plen) {
		int star = 0;
		uint32_t ce, cs = scan_chunk(pat, plen, pi, &star, &ce);
		pi = ce;
		if (star && cs == ce)
			return memchr(s + si, '/', len - si) == NULL;
		uint32_t rest = 0;
		int r = match_chunk(pat + cs, ce - cs, s + si, len - si, &rest);
		if (r < 0)
			return -1;
		if (r > 0 && (rest == len - si || pi < plen)) {
			si += rest;
			continue;
		}
		if (star) {
			int found = 0;
			for (uint32_t i = si; i < len && s[i] != '/'; i++) {
				r = match_chunk(pat + cs, ce - cs, s + i + 1, len - i - 1, &rest);
				if (r < 0)
					return -1;
				if (r > 0) {
					if (pi == plen && rest < len - i - 1)
						continue;
					si = i + 1 + rest;
					found = 1;
					break;
				}
			}
			if (found)
				continue;
		}
		return 0;
	}
	return si == len;
}
