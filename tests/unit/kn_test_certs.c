/* SPDX-License-Identifier: Apache-2.0
 * kn_test_certs: see kn_test_certs.h. */
#include "kn_test_certs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static char dir[256];

const char *kn_test_certs_dir(void)
{
	return dir;
}

const char *kn_test_cert_path(const char *name)
{
	static char bufs[8][512];
	static int i;
	char *b = bufs[i++ % 8];
	snprintf(b, 512, "%s/%s", dir, name);
	return b;
}

int kn_test_certs_sh(const char *fmt, ...)
{
	char cmd[2048], full[2400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	snprintf(full, sizeof full, "cd '%s' && (%s) >/dev/null 2>&1", dir, cmd);
	return system(full);
}

#define NEWKEY "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
#define SERVER_EXT "subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth"
#define CLIENT_EXT "extendedKeyUsage=clientAuth"

static int make_ca(const char *name)
{
	return kn_test_certs_sh("openssl req -x509 " NEWKEY " -keyout %s.key -out %s.crt -days 2 "
				"-subj /CN=%s -addext basicConstraints=critical,CA:TRUE "
				"-addext keyUsage=critical,keyCertSign,cRLSign",
				name, name, name);
}

/* <out>.crt from the request <csr>.csr, signed by ca with serial and ext. */
static int sign(const char *csr, const char *out, const char *ca, int serial, const char *ext)
{
	return kn_test_certs_sh("printf '%%b\\n' '%s' > %s.ext && openssl x509 -req -in %s.csr -CA %s.crt "
				"-CAkey %s.key -set_serial %d -days 2 -extfile %s.ext -out %s.crt",
				ext, out, csr, ca, ca, serial, out, out);
}

static int make_leaf(const char *name, const char *ca, const char *cn, int serial, const char *ext)
{
	if (kn_test_certs_sh("openssl req -new " NEWKEY " -keyout %s.key -out %s.csr -subj /CN=%s", name,
			     name, cn))
		return -1;
	return sign(name, name, ca, serial, ext);
}

int kn_test_certs_make(const char *prefix)
{
	snprintf(dir, sizeof dir, "/tmp/%sXXXXXX", prefix);
	if (!mkdtemp(dir) || make_ca("ca") || make_ca("other-ca") ||
	    make_leaf("server", "ca", "localhost", KN_TEST_CERT_SERIAL_SERVER, SERVER_EXT) ||
	    make_leaf("client", "ca", "client", 2001, CLIENT_EXT) ||
	    make_leaf("stranger", "other-ca", "stranger", 3001, CLIENT_EXT) ||
	    sign("server", "server2", "ca", KN_TEST_CERT_SERIAL_SERVER2, SERVER_EXT) ||
	    kn_test_certs_sh("cp server.key server2.key")) {
		fprintf(stderr, "cannot make test certificates with the openssl command in %s\n", dir);
		return -1;
	}
	return 0;
}

int kn_test_certs_remove(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}
