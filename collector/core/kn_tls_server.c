/* SPDX-License-Identifier: Apache-2.0
 * kn_tls_server: the receivers' `tls` config table and its checks (see
 * kn_tls_server.h). Reading a file here is bounded (1 MiB: certificates and
 * keys are a few KiB) and never echoes its contents. */
#include "kn_tls_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int readable_pem(const char *file, const char *path, const char *key, const char *what,
			struct kn_err *err)
{
	size_t n;
	char *b = kn_tls_read_file(file, path, key, &n, err);
	if (!b)
		return KN_ERR;
	int ok = strstr(b, "-----BEGIN ") != NULL && strstr(b, what) != NULL;
	free(b);
	if (!ok)
		return kn_errf(err, "%s.%s: \"%s\" holds no PEM %s", path, key, file, what);
	return KN_OK;
}

int kn_tls_server_validate(const struct kn_tls_server_cfg *c, const char *path, struct kn_err *err)
{
	if (!c->enabled)
		return KN_OK;
	int lo = kn_tls_version(c->min_version), hi = kn_tls_version(c->max_version);
	if (hi > 0 && hi < lo)
		return kn_errf(err, "%s.max_version: \"%s\" is below min_version \"%s\"", path,
			       c->max_version, c->min_version);
	if (readable_pem(c->cert_file, path, "cert_file", "CERTIFICATE", err) != KN_OK ||
	    readable_pem(c->key_file, path, "key_file", "PRIVATE KEY", err) != KN_OK)
		return KN_ERR;
	if (c->client_ca_file && *c->client_ca_file &&
	    readable_pem(c->client_ca_file, path, "client_ca_file", "CERTIFICATE", err) != KN_OK)
		return KN_ERR;
	return KN_OK;
}
