/* SPDX-License-Identifier: Apache-2.0
 * kn_auth_util: helpers shared by bearertokenauth and basicauth (see the
 * header). Digests and base64 are OpenSSL's; nothing here allocates on a
 * request path. */
#include "kn_auth_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_log.h"

void kn_auth_free_secret(char *p, size_t len)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

int kn_auth_read_file(const char *path, size_t max, const char *key, char **out, size_t *len,
		      struct kn_err *err)
{
	*out = NULL;
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return kn_errf(err, "%s: cannot open \"%s\": %s", key, path, strerror(errno));
	char *buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return kn_errf(err, "%s: out of memory", key);
	}
	size_t n = fread(buf, 1, max + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		kn_auth_free_secret(buf, max + 1);
		return kn_errf(err, "%s: cannot read \"%s\"", key, path);
	}
	if (n > max) {
		kn_auth_free_secret(buf, max + 1);
		return kn_errf(err, "%s: \"%s\" is larger than %zu bytes", key, path, max);
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return KN_OK;
}

void kn_auth_digest(const void *p, size_t n, unsigned char out[KN_AUTH_DIGEST])
{
	SHA256(p, n, out);
}

int kn_auth_digest_eq(const unsigned char a[KN_AUTH_DIGEST], const unsigned char b[KN_AUTH_DIGEST])
{
	return CRYPTO_memcmp(a, b, KN_AUTH_DIGEST) == 0;
}

size_t kn_auth_b64_encode(const void *in, size_t n, char *out, size_t cap)
{
	if (cap < 4 * ((n + 2) / 3) + 1 || n > 0x3fffffff) {
		if (cap)
			out[0] = '\0';
		return 0;
	}
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

long kn_auth_b64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	/* EVP_DecodeBlock skips surrounding blanks and decodes padding as zero
	 * bytes; require the canonical form and count the padding ourselves. */
	if (n == 0)
		return 0;
	if (n % 4 != 0 || n / 4 * 3 > cap || n > 0x3fffffff)
		return -1;
	int eq = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		int ok = !eq && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
				 c == '+' || c == '/');
		if (c == '=' && i >= n - 2)
			ok = eq = 1; /* padding: only at the end */
		if (!ok)
			return -1;
	}
	size_t pad = in[n - 1] == '=' ? (in[n - 2] == '=' ? 2 : 1) : 0;
	if (pad == 1 && in[n - 2] == '=')
		return -1;
	int r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (r < 0 || (size_t)r < pad)
		return -1;
	return (long)((size_t)r - pad);
}

int kn_auth_split(const char *value, size_t len, const char *scheme, const char **cred,
		  size_t *cred_len)
{
	size_t sl = strlen(scheme);
	if (len <= sl || strncasecmp(value, scheme, sl) != 0 || (value[sl] != ' ' && value[sl] != '\t'))
		return 0;
	size_t i = sl;
	while (i < len && (value[i] == ' ' || value[i] == '\t'))
		i++;
	size_t end = len;
	while (end > i && (value[end - 1] == ' ' || value[end - 1] == '\t'))
		end--;
	if (end == i)
		return 0;
	*cred = value + i;
	*cred_len = end - i;
	return 1;
}

void kn_auth_reloads_register(struct kn_auth_reloads *r, struct kn_metrics *m, const char *id)
{
	char esc[256], lb[320];
	r->ok = r->failed = NULL;
	if (!m)
		return;
	kn_metrics_label_escape(id, esc, sizeof esc);
	static const char help[] = "Re-reads of an authenticator's credentials file after it changed.";
	snprintf(lb, sizeof lb, "extension=\"%s\",result=\"ok\"", esc);
	r->ok = kn_metrics_counter(m, "kansatsu_auth_reloads_total", help, lb);
	snprintf(lb, sizeof lb, "extension=\"%s\",result=\"failed\"", esc);
	r->failed = kn_metrics_counter(m, "kansatsu_auth_reloads_total", help, lb);
}

void kn_auth_warn_limited(atomic_uint_fast64_t *last, const char *fmt, ...)
{
	uint64_t now = kn_now_ns(), prev = atomic_load(last);
	if (prev != 0 && now - prev < KN_NS_PER_SEC)
		return;
	if (!atomic_compare_exchange_strong(last, &prev, now))
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	kn_warn("%s", msg);
}
