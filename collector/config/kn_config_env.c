/* SPDX-License-Identifier: Apache-2.0
 * kn_config_env: ${env:VAR} / ${VAR} / ${env:VAR:-default} substitution on
 * the raw configuration text, before YAML parsing, as the OpenTelemetry
 * Collector does. "$$" is a literal '$' (so "$${X}" stays "${X}"); a '$' not
 * followed by '{' or '$' is kept. The output of a substitution is copied, not
 * scanned again. Works on lengths, not NUL termination (fuzzed input may
 * hold NUL bytes).
 *
 * Threading: reads the environment with getenv; call it before other threads
 * can setenv. Cost: one pass, one growing output buffer. */
#include "kn_config.h"

#include <stdlib.h>
#include <string.h>

struct kn_buf {
	char *p;
	size_t len, cap;
};

static int buf_put(struct kn_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int valid_name(const char *s, size_t n)
{
	if (n == 0 || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return 0;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];
		if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

/* Copies at most 64 bytes of s for a message, replacing control bytes. */
static void shown(const char *s, size_t n, char *out, size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k + 4 < cap && i < 64; i++)
		out[k++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (n > 64 && k + 4 < cap) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
}

int kn_config_expand(const char *text, size_t len, const char *name, char **out,
		     size_t *outlen, struct kn_err *err)
{
	struct kn_buf b = { 0 };
	int line = 1;
	size_t i = 0, lit = 0; /* text[lit..i) is pending literal text */
	char what[80], var[80];

	*out = NULL;
	if (outlen)
		*outlen = 0;
	if (buf_put(&b, "", 0) < 0)
		goto oom;
	while (i < len) {
		if (text[i] == '\n') {
			line++;
			i++;
			continue;
		}
		if (text[i] != '$' || i + 1 >= len || (text[i + 1] != '$' && text[i + 1] != '{')) {
			i++;
			continue;
		}
		if (buf_put(&b, text + lit, i - lit) < 0)
			goto oom;
		if (text[i + 1] == '$') {
			if (buf_put(&b, "$", 1) < 0)
				goto oom;
			i += 2;
			lit = i;
			continue;
		}
		/* ${...}: the closing brace must be on the same line. */
		size_t s = i + 2, e = s;
		while (e < len && text[e] != '}' && text[e] != '\n')
			e++;
		if (e >= len || text[e] != '}') {
			shown(text + i, e - i, what, sizeof what);
			kn_errf(err, "%s: line %d: unterminated \"%s\" (expected ${env:NAME})", name,
				line, what);
			goto fail;
		}
		const char *ref = text + s;
		size_t rn = e - s;
		if (rn >= 4 && memcmp(ref, "env:", 4) == 0) {
			ref += 4;
			rn -= 4;
		}
		const char *def = NULL;
		size_t dn = 0, nn = rn;
		for (size_t k = 0; k + 1 < rn; k++) {
			if (ref[k] == ':' && ref[k + 1] == '-') {
				nn = k;
				def = ref + k + 2;
				dn = rn - k - 2;
				break;
			}
		}
		if (!valid_name(ref, nn)) {
			shown(text + i, e + 1 - i, what, sizeof what);
			kn_errf(err,
				"%s: line %d: \"%s\": expected ${env:NAME} or ${NAME} with NAME made of "
				"letters, digits and '_' (write $$ for a literal '$')",
				name, line, what);
			goto fail;
		}
		shown(ref, nn, var, sizeof var); /* valid names hold no control bytes */
		if (nn > 64) {
			kn_errf(err, "%s: line %d: environment variable name \"%s\" is too long", name,
				line, var);
			goto fail;
		}
		const char *val = getenv(var);
		if (val) {
			if (buf_put(&b, val, strlen(val)) < 0)
				goto oom;
		} else if (def) {
			if (buf_put(&b, def, dn) < 0)
				goto oom;
		} else {
			kn_errf(err, "%s: line %d: environment variable \"%s\" is not set", name, line,
				var);
			goto fail;
		}
		i = e + 1;
		lit = i;
	}
	if (buf_put(&b, text + lit, i - lit) < 0)
		goto oom;
	*out = b.p;
	if (outlen)
		*outlen = b.len;
	return KN_OK;
oom:
	kn_errf(err, "%s: out of memory", name);
fail:
	free(b.p);
	return KN_ERR;
}
