/* SPDX-License-Identifier: Apache-2.0
 * kn_htpasswd: table building, hash checks and the success cache (see the
 * header). Entries are sorted by user name and found by binary search. */
#include "kn_htpasswd.h"

#include <crypt.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "../../collector/core/kn_log.h"
#include "../common/kn_auth_util.h"
#include "kn_apr1.h"

#define CACHE_SLOTS 256
#define MAX_LINE 4096

enum htype { H_CRYPT, H_APR1, H_SHA, H_SSHA, H_PLAIN };

struct entry {
	char *user, *hash;
	size_t hash_len;
	enum htype type;
	size_t seq; /* order of appearance: the last one of a user wins */
};

struct kn_htpasswd {
	struct entry *e;
	size_t n;
	unsigned char key[32];
	_Atomic uint64_t cache[CACHE_SLOTS][4];
	atomic_uint_fast64_t hits;
};

static void entry_free(struct entry *e)
{
	free(e->user);
	kn_auth_free_secret(e->hash, e->hash_len);
}

void kn_htpasswd_free(struct kn_htpasswd *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		entry_free(&t->e[i]);
	free(t->e);
	OPENSSL_cleanse(t->key, sizeof t->key);
	free(t);
}

size_t kn_htpasswd_users(const struct kn_htpasswd *t)
{
	return t ? t->n : 0;
}

uint64_t kn_htpasswd_cache_hits(const struct kn_htpasswd *t)
{
	return t ? atomic_load(&t->hits) : 0;
}

static int des_like(const char *h, size_t n)
{
	if (n != 13)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr("./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", h[i]))
			return 0;
	return 1;
}

/* The type of a stored value, or -1 with *why set. */
static int classify(const char *h, size_t n, const char **why)
{
	unsigned char buf[128];
	if (strncmp(h, "$apr1$", 6) == 0) {
		const char *d = strchr(h + 6, '$');
		if (!d || d - (h + 6) > 8 || strlen(d + 1) != 22) {
			*why = "a malformed $apr1$ hash";
			return -1;
		}
		return H_APR1;
	}
	if (strncmp(h, "{SHA}", 5) == 0) {
		if (kn_auth_b64_decode(h + 5, n - 5, buf, sizeof buf) != SHA_DIGEST_LENGTH) {
			*why = "a malformed {SHA} hash (base64 of 20 bytes expected)";
			return -1;
		}
		return H_SHA;
	}
	if (strncmp(h, "{SSHA}", 6) == 0) {
		if (kn_auth_b64_decode(h + 6, n - 6, buf, sizeof buf) <= SHA_DIGEST_LENGTH) {
			*why = "a malformed {SSHA} hash (base64 of 20 bytes and a salt expected)";
			return -1;
		}
		return H_SSHA;
	}
	if (h[0] == '$') {
		int c = crypt_checksalt(h);
		if (c == CRYPT_SALT_OK || c == CRYPT_SALT_METHOD_LEGACY
#ifdef CRYPT_SALT_TOO_CHEAP
		    || c == CRYPT_SALT_TOO_CHEAP
#endif
		)
			return H_CRYPT;
		*why = c == CRYPT_SALT_METHOD_DISABLED
			       ? "a hash method this system's libcrypt has disabled"
			       : "not a hash libcrypt can check (supported: $2y$/$2b$/$2a$ bcrypt, $5$/$6$ "
				 "SHA-crypt, $y$ yescrypt, $1$ and $apr1$ MD5, {SHA}, {SSHA}, plain text)";
		return -1;
	}
	if (h[0] == '{') {
		*why = "an unsupported {scheme} (supported: {SHA}, {SSHA})";
		return -1;
	}
	return H_PLAIN;
}

static int eq_str(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

static int check_typed(enum htype type, const char *stored, size_t slen, const char *pw, size_t plen)
{
	unsigned char buf[256], d[SHA_DIGEST_LENGTH];
	char out[KN_APR1_OUT];
	int ok = 0;
	switch (type) {
	case H_PLAIN: {
		unsigned char a[KN_AUTH_DIGEST], b[KN_AUTH_DIGEST];
		kn_auth_digest(stored, slen, a);
		kn_auth_digest(pw, plen, b);
		return kn_auth_digest_eq(a, b);
	}
	case H_SHA: {
		if (kn_auth_b64_decode(stored + 5, slen - 5, buf, sizeof buf) != SHA_DIGEST_LENGTH)
			return 0;
		SHA1((const unsigned char *)pw, plen, d);
		ok = CRYPTO_memcmp(buf, d, SHA_DIGEST_LENGTH) == 0;
		OPENSSL_cleanse(d, sizeof d);
		return ok;
	}
	case H_SSHA: {
		long n = kn_auth_b64_decode(stored + 6, slen - 6, buf, sizeof buf);
		if (n <= SHA_DIGEST_LENGTH)
			return 0;
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		unsigned int dl = 0;
		ok = c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) && EVP_DigestUpdate(c, pw, plen) &&
		     EVP_DigestUpdate(c, buf + SHA_DIGEST_LENGTH, (size_t)n - SHA_DIGEST_LENGTH) &&
		     EVP_DigestFinal_ex(c, d, &dl) && CRYPTO_memcmp(buf, d, SHA_DIGEST_LENGTH) == 0;
		EVP_MD_CTX_free(c);
		OPENSSL_cleanse(d, sizeof d);
		return ok;
	}
	case H_APR1:
	case H_CRYPT: {
		/* crypt wants a C string: a password with a NUL byte cannot match */
		if (memchr(pw, 0, plen) || plen > KN_HTPASSWD_MAX_PASSWORD)
			return 0;
		char pwz[KN_HTPASSWD_MAX_PASSWORD + 1];
		memcpy(pwz, pw, plen);
		pwz[plen] = '\0';
		if (type == H_APR1) {
			ok = kn_apr1_crypt("$apr1$", pwz, plen, stored, out) == 0 && eq_str(out, stored);
			OPENSSL_cleanse(out, sizeof out);
		} else {
			struct crypt_data *cd = calloc(1, sizeof *cd);
			if (cd) {
				const char *r = crypt_rn(pwz, stored, cd, (int)sizeof *cd);
				ok = r && eq_str(r, stored);
				OPENSSL_cleanse(cd, sizeof *cd);
				free(cd);
			}
		}
		OPENSSL_cleanse(pwz, plen);
		return ok;
	}
	}
	return 0;
}

int kn_htpasswd_check(const char *stored, const char *pw, size_t plen)
{
	const char *why;
	int type = classify(stored, strlen(stored), &why);
	if (type < 0)
		return -1;
	return check_typed((enum htype)type, stored, strlen(stored), pw, plen);
}

static int by_user_seq(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->user, y->user);
	return c ? c : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

static int parse_src(const struct kn_htpasswd_src *s, struct entry **arr, size_t *n, size_t *cap,
		     size_t *seq, struct kn_err *err)
{
	int line = 0;
	size_t i = 0;
	while (i < s->len) {
		line++;
		size_t b = i;
		while (i < s->len && s->text[i] != '\n')
			i++;
		size_t e = i++;
		while (e > b && (s->text[e - 1] == '\r' || s->text[e - 1] == ' ' || s->text[e - 1] == '\t'))
			e--;
		while (b < e && (s->text[b] == ' ' || s->text[b] == '\t'))
			b++;
		if (b == e || s->text[b] == '#')
			continue;
		if (e - b > MAX_LINE)
			return kn_errf(err, "%s line %d: longer than %d bytes", s->where, line, MAX_LINE);
		const char *colon = memchr(s->text + b, ':', e - b);
		if (!colon)
			return kn_errf(err, "%s line %d: expected user:hash", s->where, line);
		size_t ul = (size_t)(colon - (s->text + b)), hl = e - b - ul - 1;
		if (ul == 0)
			return kn_errf(err, "%s line %d: empty user name", s->where, line);
		if (hl == 0)
			return kn_errf(err, "%s line %d: empty password hash", s->where, line);
		if (memchr(s->text + b, 0, e - b))
			return kn_errf(err, "%s line %d: holds a NUL byte", s->where, line);
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 16;
			struct entry *na = realloc(*arr, nc * sizeof *na);
			if (!na)
				return kn_errf(err, "%s: out of memory", s->where);
			*arr = na;
			*cap = nc;
		}
		struct entry *en = &(*arr)[*n];
		memset(en, 0, sizeof *en);
		en->user = strndup(s->text + b, ul);
		en->hash = strndup(colon + 1, hl);
		en->hash_len = hl + 1;
		en->seq = (*seq)++;
		(*n)++;
		if (!en->user || !en->hash)
			return kn_errf(err, "%s: out of memory", s->where);
		const char *why = NULL;
		int type = classify(en->hash, hl, &why);
		if (type < 0)
			return kn_errf(err, "%s line %d: user \"%s\": %s", s->where, line, en->user, why);
		en->type = (enum htype)type;
		if (type == H_PLAIN && des_like(en->hash, hl))
			kn_warn("%s line %d: user \"%s\": looks like a DES crypt hash (htpasswd -d), which is "
				"not supported; it is compared as a plain-text password",
				s->where, line, en->user);
	}
	return KN_OK;
}

struct kn_htpasswd *kn_htpasswd_build(const struct kn_htpasswd_src *srcs, size_t nsrc, struct kn_err *err)
{
	struct entry *arr = NULL;
	size_t n = 0, cap = 0, seq = 0;
	struct kn_htpasswd *t = NULL;
	for (size_t s = 0; s < nsrc; s++)
		if (parse_src(&srcs[s], &arr, &n, &cap, &seq, err) != KN_OK)
			goto fail;
	if (n == 0) {
		kn_errf(err, "%s: no user", nsrc ? srcs[nsrc - 1].where : "htpasswd");
		goto fail;
	}
	qsort(arr, n, sizeof *arr, by_user_seq);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n && strcmp(arr[i].user, arr[i + 1].user) == 0) {
			entry_free(&arr[i]); /* a later entry of the same user wins */
			continue;
		}
		arr[k++] = arr[i];
	}
	n = k;
	t = calloc(1, sizeof *t);
	if (!t || RAND_bytes(t->key, sizeof t->key) != 1) {
		kn_errf(err, "htpasswd: out of memory or no randomness");
		goto fail;
	}
	t->e = arr;
	t->n = n;
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		for (int w = 0; w < 4; w++)
			atomic_init(&t->cache[i][w], 0);
	atomic_init(&t->hits, 0);
	return t;
fail:
	for (size_t i = 0; i < n; i++)
		entry_free(&arr[i]);
	free(arr);
	free(t);
	return NULL;
}

static const struct entry *find(const struct kn_htpasswd *t, const char *user, size_t ulen)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *u = t->e[mid].user;
		size_t l = strlen(u);
		int c = memcmp(u, user, l < ulen ? l : ulen);
		if (c == 0)
			c = l < ulen ? -1 : l > ulen;
		if (c == 0)
			return &t->e[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* HMAC of "user:password" into 4 words (0 when HMAC fails: never cached). */
static int cache_key(const struct kn_htpasswd *t, const char *user, size_t ulen, const char *pw, size_t plen,
		     uint64_t w[4])
{
	unsigned char msg[2 * KN_HTPASSWD_MAX_PASSWORD + 2], mac[32];
	unsigned int ml = 0;
	if (ulen > KN_HTPASSWD_MAX_PASSWORD || plen > KN_HTPASSWD_MAX_PASSWORD)
		return 0;
	memcpy(msg, user, ulen);
	msg[ulen] = ':';
	memcpy(msg + ulen + 1, pw, plen);
	int ok = HMAC(EVP_sha256(), t->key, sizeof t->key, msg, ulen + 1 + plen, mac, &ml) != NULL && ml == 32;
	OPENSSL_cleanse(msg, ulen + 1 + plen);
	if (ok)
		memcpy(w, mac, 32);
	OPENSSL_cleanse(mac, sizeof mac);
	return ok;
}

int kn_htpasswd_verify(struct kn_htpasswd *t, const char *user, size_t ulen, const char *pw, size_t plen)
{
	const struct entry *e = t ? find(t, user, ulen) : NULL;
	if (!e)
		return 0;
	uint64_t w[4];
	int keyed = cache_key(t, user, ulen, pw, plen, w);
	if (keyed) {
		_Atomic uint64_t *slot = t->cache[w[0] % CACHE_SLOTS];
		uint64_t have[4];
		for (int i = 0; i < 4; i++)
			have[i] = atomic_load_explicit(&slot[i], memory_order_relaxed);
		if (CRYPTO_memcmp(have, w, sizeof w) == 0) {
			atomic_fetch_add_explicit(&t->hits, 1, memory_order_relaxed);
			return 1;
		}
	}
	int ok = check_typed(e->type, e->hash, e->hash_len - 1, pw, plen);
	if (ok && keyed) {
		_Atomic uint64_t *slot = t->cache[w[0] % CACHE_SLOTS];
		for (int i = 0; i < 4; i++)
			atomic_store_explicit(&slot[i], w[i], memory_order_relaxed);
	}
	return ok;
}
