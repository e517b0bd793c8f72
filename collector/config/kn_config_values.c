/* SPDX-License-Identifier: Apache-2.0
 * kn_config_values: parsers for scalar config values (durations in Go's
 * time.ParseDuration syntax, decimal integers, YAML 1.2 bools, numbers) and
 * the compact duration formatter used in messages. Every error names `path`
 * and quotes what it got: "exporters.otlp.timeout: expected a duration like
 * \"5s\", got \"five\"".
 *
 * Pure functions: no allocation, no global state, any thread. */
#include "kn_config_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KN_DUR_MAX ((uint64_t)INT64_MAX) /* as Go's time.Duration */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static const struct {
	const char *name;
	uint64_t ns;
} kn_units[] = {
	{ "ns", 1ull },
	{ "us", 1000ull },
	{ "\xc2\xb5s", 1000ull }, /* U+00B5 micro sign */
	{ "\xce\xbcs", 1000ull }, /* U+03BC Greek small letter mu */
	{ "ms", 1000000ull },
	{ "s", 1000000000ull },
	{ "m", 60000000000ull },
	{ "h", 3600000000000ull },
};

static int dur_err(const char *s, const char *path, const char *why, struct kn_err *err)
{
	char q[96];
	return kn_errf(err, "%s: expected a duration like \"5s\", got %s%s", path,
		       kn_cfg_quote(s, q, sizeof q), why);
}

int kn_parse_duration(const char *s, const char *path, uint64_t *ns, struct kn_err *err)
{
	const char *p = s;
	uint64_t total = 0;
	int neg = 0;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (!strcmp(p, "0")) {
		*ns = 0;
		return KN_OK;
	}
	if (!*p)
		return dur_err(s, path, "", err);
	while (*p) {
		uint64_t v = 0, f = 0;
		double scale = 1;
		int pre = 0, post = 0, ovf = 0;
		if (!(*p == '.' || is_digit(*p)))
			return dur_err(s, path, "", err);
		for (; is_digit(*p); p++, pre = 1) {
			if (v > (KN_DUR_MAX - 9) / 10)
				return dur_err(s, path, " (too large)", err);
			v = v * 10 + (uint64_t)(*p - '0');
		}
		if (*p == '.') {
			for (p++; is_digit(*p); p++, post = 1) {
				if (ovf || f > (KN_DUR_MAX - 9) / 10) {
					ovf = 1; /* further digits do not matter */
					continue;
				}
				f = f * 10 + (uint64_t)(*p - '0');
				scale *= 10;
			}
		}
		if (!pre && !post)
			return dur_err(s, path, "", err);
		const char *u = p;
		while (*p && *p != '.' && !is_digit(*p))
			p++;
		size_t ul = (size_t)(p - u);
		if (ul == 0)
			return dur_err(s, path, " (missing unit: ns, us, ms, s, m or h)", err);
		uint64_t unit = 0;
		for (size_t i = 0; i < sizeof kn_units / sizeof kn_units[0]; i++)
			if (strlen(kn_units[i].name) == ul && !memcmp(kn_units[i].name, u, ul))
				unit = kn_units[i].ns;
		if (!unit)
			return dur_err(s, path, " (units: ns, us, ms, s, m, h)", err);
		if (v > KN_DUR_MAX / unit)
			return dur_err(s, path, " (too large)", err);
		v *= unit;
		if (f > 0) {
			double add = (double)f * ((double)unit / scale);
			if (add >= (double)KN_DUR_MAX || v + (uint64_t)add > KN_DUR_MAX)
				return dur_err(s, path, " (too large)", err);
			v += (uint64_t)add;
		}
		if (v > KN_DUR_MAX - total)
			return dur_err(s, path, " (too large)", err);
		total += v;
	}
	if (neg && total)
		return dur_err(s, path, " (must not be negative)", err);
	*ns = total;
	return KN_OK;
}

int kn_parse_bool(const char *s, const char *path, int *out, struct kn_err *err)
{
	char q[96];
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
		*out = 1;
		return KN_OK;
	}
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
		*out = 0;
		return KN_OK;
	}
	return kn_errf(err, "%s: expected true or false, got %s", path, kn_cfg_quote(s, q, sizeof q));
}

/* Decimal digits with an optional sign; *mag gets the magnitude. */
static int scan_decimal(const char *s, int *neg, uint64_t *mag, int *overflow)
{
	const char *p = s;
	uint64_t v = 0;
	*neg = 0;
	*overflow = 0;
	if (*p == '-' || *p == '+')
		*neg = *p++ == '-';
	if (!is_digit(*p))
		return -1;
	for (; is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			*overflow = 1;
		else
			v = v * 10 + d;
	}
	if (*p)
		return -1;
	*mag = v;
	return 0;
}

int kn_parse_int(const char *s, const char *path, int64_t *out, struct kn_err *err)
{
	char q[96];
	int neg, ovf;
	uint64_t mag;
	if (scan_decimal(s, &neg, &mag, &ovf) < 0)
		return kn_errf(err, "%s: expected an integer, got %s", path,
			       kn_cfg_quote(s, q, sizeof q));
	if (ovf || mag > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
		return kn_errf(err, "%s: integer out of range, got %s", path,
			       kn_cfg_quote(s, q, sizeof q));
	*out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return KN_OK;
}

int kn_parse_uint(const char *s, const char *path, uint64_t *out, struct kn_err *err)
{
	char q[96];
	int neg, ovf;
	uint64_t mag;
	if (scan_decimal(s, &neg, &mag, &ovf) < 0 || (neg && mag))
		return kn_errf(err, "%s: expected a non-negative integer, got %s", path,
			       kn_cfg_quote(s, q, sizeof q));
	if (ovf)
		return kn_errf(err, "%s: integer out of range, got %s", path,
			       kn_cfg_quote(s, q, sizeof q));
	*out = mag;
	return KN_OK;
}

int kn_parse_double(const char *s, const char *path, double *out, struct kn_err *err)
{
	char q[96];
	const char *p = s;
	int digits = 0;
	/* [+-]digits[.digits][(e|E)[+-]digits]: no hex, inf or nan */
	if (*p == '-' || *p == '+')
		p++;
	for (; is_digit(*p); p++)
		digits++;
	if (*p == '.')
		for (p++; is_digit(*p); p++)
			digits++;
	if (digits && (*p == 'e' || *p == 'E')) {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!is_digit(*p))
			digits = 0;
		while (is_digit(*p))
			p++;
	}
	if (!digits || *p)
		return kn_errf(err, "%s: expected a number, got %s", path,
			       kn_cfg_quote(s, q, sizeof q));
	double v = strtod(s, NULL);
	if (!isfinite(v))
		return kn_errf(err, "%s: number out of range, got %s", path,
			       kn_cfg_quote(s, q, sizeof q));
	*out = v;
	return KN_OK;
}

/* Appends "<whole>[.<frac>]<unit>" with trailing zeros of frac trimmed. */
static size_t put_unit(char *buf, size_t cap, size_t k, uint64_t whole, uint64_t frac,
		       int fdigits, const char *unit)
{
	char f[24] = "";
	if (frac) {
		snprintf(f, sizeof f, ".%0*llu", fdigits, (unsigned long long)frac);
		size_t n = strlen(f);
		while (n > 1 && f[n - 1] == '0')
			f[--n] = '\0';
	}
	if (k < cap) {
		int w = snprintf(buf + k, cap - k, "%llu%s%s", (unsigned long long)whole, f, unit);
		if (w > 0)
			k += (size_t)w;
	}
	return k < cap ? k : cap - 1;
}

const char *kn_format_duration(uint64_t ns, char *buf, size_t cap)
{
	size_t k = 0;
	if (!cap)
		return buf;
	buf[0] = '\0';
	if (ns == 0) {
		snprintf(buf, cap, "0s");
		return buf;
	}
	if (ns < 1000ull)
		put_unit(buf, cap, 0, ns, 0, 0, "ns");
	else if (ns < 1000000ull)
		put_unit(buf, cap, 0, ns / 1000, ns % 1000, 3, "us");
	else if (ns < 1000000000ull)
		put_unit(buf, cap, 0, ns / 1000000, ns % 1000000, 6, "ms");
	else {
		uint64_t h = ns / 3600000000000ull, m = ns / 60000000000ull % 60;
		uint64_t sub = ns % 60000000000ull;
		if (h)
			k = put_unit(buf, cap, k, h, 0, 0, "h");
		if (m)
			k = put_unit(buf, cap, k, m, 0, 0, "m");
		if (sub)
			put_unit(buf, cap, k, sub / 1000000000ull, sub % 1000000000ull, 9, "s");
	}
	return buf;
}
