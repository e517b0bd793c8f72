/* SPDX-License-Identifier: Apache-2.0
 * kn_apr1: MD5 crypt (see the header). 1000 rounds of MD5: about a
 * millisecond, which is why basicauth caches successful verifications. */
#include "kn_apr1.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

static const char itoa64[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static char *to64(char *p, unsigned long v, int n)
{
	while (n-- > 0) {
		*p++ = itoa64[v & 0x3f];
		v >>= 6;
	}
	return p;
}

int kn_apr1_crypt(const char *magic, const char *pw, size_t pwlen, const char *setting,
		  char out[KN_APR1_OUT])
{
	size_t ml = strlen(magic);
	if (strncmp(setting, magic, ml) != 0)
		return -1;
	const char *salt = setting + ml;
	size_t sl = 0;
	while (sl < 8 && salt[sl] && salt[sl] != '$')
		sl++;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new(), *alt = EVP_MD_CTX_new();
	const EVP_MD *md5 = EVP_md5();
	unsigned char fin[16];
	unsigned int fl = 0;
	int ok = ctx && alt && md5;
	/* alternate sum: pw salt pw */
	ok = ok && EVP_DigestInit_ex(alt, md5, NULL) && EVP_DigestUpdate(alt, pw, pwlen) &&
	     EVP_DigestUpdate(alt, salt, sl) && EVP_DigestUpdate(alt, pw, pwlen) &&
	     EVP_DigestFinal_ex(alt, fin, &fl);
	ok = ok && EVP_DigestInit_ex(ctx, md5, NULL) && EVP_DigestUpdate(ctx, pw, pwlen) &&
	     EVP_DigestUpdate(ctx, magic, ml) && EVP_DigestUpdate(ctx, salt, sl);
	for (size_t left = pwlen; ok && left > 0; left -= left > 16 ? 16 : left)
		ok = EVP_DigestUpdate(ctx, fin, left > 16 ? 16 : left);
	/* the historical quirk: a zero byte for each set bit of the length, else
	 * the first byte of the password */
	static const unsigned char zero = 0;
	for (size_t i = pwlen; ok && i; i >>= 1)
		ok = EVP_DigestUpdate(ctx, (i & 1) ? (const void *)&zero : (const void *)pw, 1);
	ok = ok && EVP_DigestFinal_ex(ctx, fin, &fl);
	for (int i = 0; ok && i < 1000; i++) {
		ok = EVP_DigestInit_ex(ctx, md5, NULL);
		ok = ok && ((i & 1) ? EVP_DigestUpdate(ctx, pw, pwlen) : EVP_DigestUpdate(ctx, fin, 16));
		if (ok && i % 3)
			ok = EVP_DigestUpdate(ctx, salt, sl);
		if (ok && i % 7)
			ok = EVP_DigestUpdate(ctx, pw, pwlen);
		ok = ok && ((i & 1) ? EVP_DigestUpdate(ctx, fin, 16) : EVP_DigestUpdate(ctx, pw, pwlen));
		ok = ok && EVP_DigestFinal_ex(ctx, fin, &fl);
	}
	EVP_MD_CTX_free(ctx);
	EVP_MD_CTX_free(alt);
	if (!ok)
		return -1;
	char *p = out;
	memcpy(p, magic, ml);
	p += ml;
	memcpy(p, salt, sl);
	p += sl;
	*p++ = '$';
	p = to64(p, ((unsigned long)fin[0] << 16) | ((unsigned long)fin[6] << 8) | fin[12], 4);
	p = to64(p, ((unsigned long)fin[1] << 16) | ((unsigned long)fin[7] << 8) | fin[13], 4);
	p = to64(p, ((unsigned long)fin[2] << 16) | ((unsigned long)fin[8] << 8) | fin[14], 4);
	p = to64(p, ((unsigned long)fin[3] << 16) | ((unsigned long)fin[9] << 8) | fin[15], 4);
	p = to64(p, ((unsigned long)fin[4] << 16) | ((unsigned long)fin[10] << 8) | fin[5], 4);
	p = to64(p, fin[11], 2);
	*p = '\0';
	OPENSSL_cleanse(fin, sizeof fin);
	return 0;
}
