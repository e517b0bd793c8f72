/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_conv_misc: OTTL converters for hashes, ids and time.
 *
 *   SHA256 SHA1 SHA512 MD5 (value)   hex digest of a string (OpenSSL); also
 *                                    usable as the `function` argument of the
 *                                    replace_* editors
 *   FNV(value)                       64-bit FNV-1a of a string, as an int
 *   TraceID(bytes|hex) SpanID(...)   16 / 8 bytes from bytes or hex text
 *   Duration("1h2m3.5s")             Go's time.ParseDuration
 *   Nanoseconds Microseconds Milliseconds (duration) -> int (truncated)
 *   Seconds Minutes Hours (duration) -> float
 *   UnixNano UnixMicro UnixMilli UnixSeconds (time) -> int
 *   Now()                            the wall clock (CLOCK_REALTIME)
 * Span times: `end_time - start_time` is a duration, `end_time_unix_nano -
 * start_time_unix_nano` an int of nanoseconds. */
#include <math.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "kn_ottl_int.h"
#include "../core/kn_hex.h"

static int need_str(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *v)
{
	if (kn_ottl_eval(c->kids[0], tx, v) < 0)
		return -1;
	if (v->t != KN_V_STR)
		return kn_ottl_rt_err(tx, "%s: the value is %s, not a string", c->name, kn_ottl_vt_an(v->t));
	return 0;
}

int kn_ottl_hash_apply(const struct kn_ottl_fn *fn, struct kn_ottl_tx *tx, const uint8_t *s, uint32_t len,
		       struct kn_ottl_val *out)
{
	const EVP_MD *md = !strcmp(fn->name, "SHA256") ? EVP_sha256()
			 : !strcmp(fn->name, "SHA1")   ? EVP_sha1()
			 : !strcmp(fn->name, "SHA512") ? EVP_sha512()
							: EVP_md5();
	uint8_t dig[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;
	if (!EVP_Digest(len ? s : (const uint8_t *)"", len, dig, &dl, md, NULL))
		return kn_ottl_rt_err(tx, "%s: hashing failed", fn->name);
	char *h = (char *)kn_ottl_tx_alloc(tx, 2u * dl);
	if (!h)
		return kn_ottl_rt_err(tx, "out of memory");
	kn_hex_encode(dig, dl, h);
	memset(out, 0, sizeof *out);
	out->t = KN_V_STR;
	out->p = (const uint8_t *)h;
	out->len = 2u * dl;
	return 0;
}

static int run_hash(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	struct kn_ottl_val v;
	if (need_str(c, tx, &v) < 0)
		return -1;
	return kn_ottl_hash_apply(c->fn, tx, v.p, v.len, out);
}

static int run_fnv(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	struct kn_ottl_val v;
	if (need_str(c, tx, &v) < 0)
		return -1;
	uint64_t h = 14695981039346656037ull;
	for (uint32_t i = 0; i < v.len; i++) {
		h ^= v.p[i];
		h *= 1099511628211ull;
	}
	memset(out, 0, sizeof *out);
	out->t = KN_V_INT;
	out->i = (int64_t)h;
	return 0;
}

static int id_of(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out, uint32_t n)
{
	struct kn_ottl_val v;
	if (kn_ottl_eval(c->kids[0], tx, &v) < 0)
		return -1;
	memset(out, 0, sizeof *out);
	out->t = KN_V_BYTES;
	if (v.t == KN_V_BYTES && v.len == n) {
		out->p = v.p;
		out->len = n;
		return 0;
	}
	if (v.t == KN_V_STR && v.len == 2 * n) {
		uint8_t *b = kn_ottl_tx_alloc(tx, n);
		if (!b)
			return kn_ottl_rt_err(tx, "out of memory");
		if (kn_hex_decode((const char *)v.p, v.len, b)) {
			out->p = b;
			out->len = n;
			return 0;
		}
	}
	return kn_ottl_rt_err(tx, "%s: expected %u bytes or %u hex digits, got %s of %u", c->name, n, 2 * n,
			      kn_ottl_vt_an(v.t), v.len);
}

static int run_trace_id(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	return id_of(c, tx, out, 16);
}

static int run_span_id(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	return id_of(c, tx, out, 8);
}

/* Go's time.ParseDuration. 0, -1. */
static int parse_duration(const uint8_t *s, uint32_t len, int64_t *out)
{
	uint32_t i = 0;
	int neg = 0;
	double total = 0;
	if (i < len && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	if (len - i == 1 && s[i] == '0') {
		*out = 0;
		return 0;
	}
	if (i == len)
		return -1;
	while (i < len) {
		uint32_t st = i;
		double v = 0, scale = 1;
		int digits = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			v = v * 10 + (s[i++] - '0');
			digits = 1;
		}
		if (i < len && s[i] == '.') {
			i++;
			while (i < len && s[i] >= '0' && s[i] <= '9') {
				scale /= 10;
				v += (s[i++] - '0') * scale;
				digits = 1;
			}
		}
		if (!digits || i == st)
			return -1;
		uint32_t us = i;
		while (i < len && !(s[i] >= '0' && s[i] <= '9') && s[i] != '.')
			i++;
		uint32_t ul = i - us;
		double unit = 0;
		if (ul == 2 && !memcmp(s + us, "ns", 2))
			unit = 1;
		else if ((ul == 2 && !memcmp(s + us, "us", 2)) || (ul == 3 && !memcmp(s + us, "\xc2\xb5s", 3)) ||
			 (ul == 3 && !memcmp(s + us, "\xce\xbcs", 3)))
			unit = 1e3;
		else if (ul == 2 && !memcmp(s + us, "ms", 2))
			unit = 1e6;
		else if (ul == 1 && s[us] == 's')
			unit = 1e9;
		else if (ul == 1 && s[us] == 'm')
			unit = 60e9;
		else if (ul == 1 && s[us] == 'h')
			unit = 3600e9;
		else
			return -1;
		total += v * unit;
		if (total > 9.223372036854775807e18)
			return -1;
	}
	*out = (int64_t)(neg ? -total : total);
	return 0;
}

static int run_duration(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	struct kn_ottl_val v;
	int64_t d = 0;
	if (need_str(c, tx, &v) < 0)
		return -1;
	if (parse_duration(v.p, v.len, &d) < 0)
		return kn_ottl_rt_err(tx, "Duration: \"%.*s\" is not a duration (1h2m3.5s, 250ms, ...)", (int)v.len,
				      (const char *)v.p);
	memset(out, 0, sizeof *out);
	out->t = KN_V_DUR;
	out->i = d;
	return 0;
}

static int check_duration(struct kn_ottl_node *c, struct kn_ottl_cc *cc)
{
	const struct kn_ottl_node *a = c->kids[0];
	int64_t d = 0;
	if (a->kind == KN_N_LIT && a->v.t == KN_V_STR && parse_duration(a->v.p, a->v.len, &d) < 0)
		return kn_ottl_cc_err(cc, a, "Duration: not a duration (1h2m3.5s, 250ms, ...)");
	return KN_OK;
}

static int need(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, int t, int64_t *i)
{
	struct kn_ottl_val v;
	if (kn_ottl_eval(c->kids[0], tx, &v) < 0)
		return -1;
	if (v.t != t)
		return kn_ottl_rt_err(tx, "%s: the value is %s, not %s", c->name, kn_ottl_vt_an(v.t),
				      kn_ottl_vt_an(t));
	*i = v.i;
	return 0;
}

static int ret_int(struct kn_ottl_val *out, int64_t i)
{
	memset(out, 0, sizeof *out);
	out->t = KN_V_INT;
	out->i = i;
	return 0;
}

static int ret_dbl(struct kn_ottl_val *out, double d)
{
	memset(out, 0, sizeof *out);
	out->t = KN_V_DBL;
	out->d = d;
	return 0;
}

#define DUR_INT(fn, div)                                                                           \
	static int fn(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out) \
	{                                                                                          \
		int64_t d = 0;                                                                     \
		if (need(c, tx, KN_V_DUR, &d) < 0)                                                 \
			return -1;                                                                 \
		return ret_int(out, d / (div));                                                    \
	}
#define DUR_DBL(fn, div)                                                                           \
	static int fn(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out) \
	{                                                                                          \
		int64_t d = 0;                                                                     \
		if (need(c, tx, KN_V_DUR, &d) < 0)                                                 \
			return -1;                                                                 \
		return ret_dbl(out, (double)(d / 1000000000) / ((div) / 1e9) +                    \
					    (double)(d % 1000000000) / (div));                     \
	}
#define TIME_INT(fn, div)                                                                          \
	static int fn(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out) \
	{                                                                                          \
		int64_t t = 0;                                                                     \
		if (need(c, tx, KN_V_TIME, &t) < 0)                                                \
			return -1;                                                                 \
		int64_t q = t / (div);                                                             \
		if (t % (div) < 0)                                                                 \
			q--; /* Go's Unix* floor for times before 1970 */                          \
		return ret_int(out, q);                                                            \
	}

DUR_INT(run_nanoseconds, 1)
DUR_INT(run_microseconds, 1000)
DUR_INT(run_milliseconds, 1000000)
DUR_DBL(run_seconds, 1e9)
DUR_DBL(run_minutes, 60e9)
DUR_DBL(run_hours, 3600e9)
TIME_INT(run_unix_nano, 1)
TIME_INT(run_unix_micro, 1000)
TIME_INT(run_unix_milli, 1000000)
TIME_INT(run_unix_seconds, 1000000000)

static int run_now(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)c;
	(void)tx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(out, 0, sizeof *out);
	out->t = KN_V_TIME;
	out->i = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	return 0;
}

#define P(n, k) {.name = n, .kind = k}
#define ONE_ANY {P("value", KN_PK_ANY)}

const struct kn_ottl_fn kn_ottl_fns_misc[] = {
	{.name = "SHA256", .editor = 2, .nparams = 1, .params = ONE_ANY, .run = run_hash},
	{.name = "SHA1", .editor = 2, .nparams = 1, .params = ONE_ANY, .run = run_hash},
	{.name = "SHA512", .editor = 2, .nparams = 1, .params = ONE_ANY, .run = run_hash},
	{.name = "MD5", .editor = 2, .nparams = 1, .params = ONE_ANY, .run = run_hash},
	{.name = "FNV", .nparams = 1, .params = ONE_ANY, .run = run_fnv},
	{.name = "TraceID", .nparams = 1, .params = {P("bytes", KN_PK_ANY)}, .run = run_trace_id},
	{.name = "SpanID", .nparams = 1, .params = {P("bytes", KN_PK_ANY)}, .run = run_span_id},
	{.name = "Duration", .nparams = 1, .params = {P("duration", KN_PK_ANY)}, .check = check_duration,
	 .run = run_duration},
	{.name = "Nanoseconds", .nparams = 1, .params = {P("duration", KN_PK_ANY)}, .run = run_nanoseconds},
	{.name = "Microseconds", .nparams = 1, .params = {P("duration", KN_PK_ANY)}, .run = run_microseconds},
	{.name = "Milliseconds", .nparams = 1, .params = {P("duration", KN_PK_ANY)}, .run = run_milliseconds},
	{.name = "Seconds", .nparams = 1, .params = {P("duration", KN_PK_ANY)}, .run = run_seconds},
	{.name = "Minutes", .nparams = 1, .params = {P("duration", KN_PK_ANY)}, .run = run_minutes},
	{.name = "Hours", .nparams = 1, .params = {P("duration", KN_PK_ANY)}, .run = run_hours},
	{.name = "UnixNano", .nparams = 1, .params = {P("time", KN_PK_ANY)}, .run = run_unix_nano},
	{.name = "UnixMicro", .nparams = 1, .params = {P("time", KN_PK_ANY)}, .run = run_unix_micro},
	{.name = "UnixMilli", .nparams = 1, .params = {P("time", KN_PK_ANY)}, .run = run_unix_milli},
	{.name = "UnixSeconds", .nparams = 1, .params = {P("time", KN_PK_ANY)}, .run = run_unix_seconds},
	{.name = "Now", .nparams = 0, .run = run_now},
	{.name = NULL},
};
