/* SPDX-License-Identifier: Apache-2.0
 * kn_tls_server: the receivers' `tls` config table and its checks (see
 * kn_tls_server.h). Reading a file here is bounded (1 MiB: certificates and
 * keys are a few KiB) and never echoes its contents. The files are checked
 * with OpenSSL (which both transports' TLS stacks use): the certificates
 * load, the key loads and belongs to the first certificate, the client CA
 * file holds a certificate; transports call it again at start. */
#include "kn_tls_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define TLS(f) offsetof(struct kn_tls_server_cfg, f)
#define MAX_FILE (1u << 20)

static const char *const versions[] = {"1.0", "1.1", "1.2", "1.3", NULL};
static const char *const max_versions[] = {"", "1.0", "1.1", "1.2", "1.3", NULL};

const struct kn_cfg_field kn_tls_server_fields[] = {
	{.key = "cert_file", .type = KN_F_STR, .off = TLS(cert_file), .required = 1,
	 .help = "PEM certificate chain the server presents"},
	{.key = "key_file", .type = KN_F_STR, .off = TLS(key_file), .required = 1,
	 .help = "PEM private key of cert_file"},
	{.key = "client_ca_file", .type = KN_F_STR, .off = TLS(client_ca_file), .def = "",
	 .help = "PEM CA(s) client certificates must be signed by: mutual TLS"},
	{.key = "min_version", .type = KN_F_STR, .off = TLS(min_version), .def = "1.2",
	 .choices = versions, .help = "lowest TLS version accepted"},
	{.key = "max_version", .type = KN_F_STR, .off = TLS(max_version), .def = "",
	 .choices = max_versions, .help = "highest TLS version accepted; \"\" = the library's highest"},
	{.key = "reload_interval", .type = KN_F_DURATION, .off = TLS(reload_interval_ns), .def = "0s",
	 .help = "re-read the certificate files this often; 0 = never"},
	KN_CFG_END,
};

int kn_tls_version(const char *v)
{
	if (!v || !*v)
		return 0;
	for (int i = 0; versions[i]; i++)
		if (strcmp(v, versions[i]) == 0)
			return 10 + i;
	return -1;
}

char *kn_tls_read_file(const char *file, const char *path, const char *key, size_t *len,
		       struct kn_err *err)
{
	FILE *f = fopen(file, "rb");
	if (!f) {
		kn_errf(err, "%s.%s: cannot read \"%s\": %s", path, key, file, strerror(errno));
		return NULL;
	}
	char *buf = malloc(MAX_FILE + 1);
	size_t n = buf ? fread(buf, 1, MAX_FILE + 1, f) : 0;
	int bad = ferror(f);
	fclose(f);
	if (!buf || bad || n > MAX_FILE || n == 0) {
		kn_errf(err, "%s.%s: \"%s\" is %s", path, key, file,
			!buf ? "not readable: out of memory" : bad ? "not readable" : n == 0 ? "empty"
												  : "larger than 1 MiB");
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Encrypted keys are not supported: never prompt for a passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* The certificates of a PEM file: how many load, and the first (caller
 * frees) when first is not NULL. -1 when the file cannot be read. */
static int load_certs(const char *file, const char *path, const char *key, X509 **first,
		      struct kn_err *err)
{
	size_t len;
	char *pem = kn_tls_read_file(file, path, key, &len, err);
	BIO *bio;
	X509 *x;
	int n = 0;

	if (!pem)
		return -1;
	bio = BIO_new_mem_buf(pem, (int)len);
	while (bio && (x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) {
		if (first && n == 0)
			*first = x;
		else
			X509_free(x);
		n++;
	}
	BIO_free(bio);
	free(pem);
	ERR_clear_error(); /* the end of the file reads as an error */
	return n;
}

int kn_tls_server_check_files(const struct kn_tls_server_cfg *tls, const char *path,
			      struct kn_err *err)
{
	X509 *leaf = NULL;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	char *pem = NULL;
	size_t len;
	int n, rc = KN_ERR;

	n = load_certs(tls->cert_file, path, "cert_file", &leaf, err);
	if (n < 0)
		goto out;
	if (n == 0) {
		kn_errf(err, "%s.cert_file: \"%s\" holds no PEM certificate that loads", path,
			tls->cert_file);
		goto out;
	}
	pem = kn_tls_read_file(tls->key_file, path, "key_file", &len, err);
	if (!pem)
		goto out;
	bio = BIO_new_mem_buf(pem, (int)len);
	pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
	if (!pkey) {
		kn_errf(err, "%s.key_file: \"%s\" holds no PEM private key that loads "
			"(encrypted keys are not supported)", path, tls->key_file);
		goto out;
	}
	if (X509_check_private_key(leaf, pkey) != 1) {
		kn_errf(err, "%s.key_file: \"%s\" is not the key of the certificate in cert_file \"%s\"",
			path, tls->key_file, tls->cert_file);
		goto out;
	}
	if (tls->client_ca_file && *tls->client_ca_file) {
		n = load_certs(tls->client_ca_file, path, "client_ca_file", NULL, err);
		if (n < 0)
			goto out;
		if (n == 0) {
			kn_errf(err, "%s.client_ca_file: \"%s\" holds no PEM certificate that loads",
				path, tls->client_ca_file);
			goto out;
		}
	}
	rc = KN_OK;
out:
	EVP_PKEY_free(pkey);
	X509_free(leaf);
	BIO_free(bio);
	if (pem) {
		/* the key's contents are not left lying in freed memory */
		memset(pem, 0, len);
		free(pem);
	}
	ERR_clear_error();
	return rc;
}


int kn_tls_server_validate(const struct kn_tls_server_cfg *c, const char *path, struct kn_err *err)
{
	if (!c->enabled)
		return KN_OK;
	int lo = kn_tls_version(c->min_version), hi = kn_tls_version(c->max_version);
	if (hi > 0 && hi < lo)
		return kn_errf(err, "%s.max_version: \"%s\" is below min_version \"%s\"", path,
			       c->max_version, c->min_version);
	return kn_tls_server_check_files(c, path, err);
}
