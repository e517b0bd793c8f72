/* SPDX-License-Identifier: Apache-2.0
 * kn_grpc_tls: TLS server credentials of the OTLP/gRPC receiver (see
 * kn_grpc_tls.h).
 *
 * libgrpc 1.51's core API has no setter for the TLS versions: its TLS
 * credentials serve TLS 1.2 and 1.3, so min_version must be "1.2" and
 * max_version "" or "1.3"; anything else is refused at create rather than
 * silently served differently. The files are checked with
 * kn_tls_server_check_files at create and at start: libgrpc would only
 * report a bad certificate or a key that does not match it at each
 * handshake. */
#include "kn_grpc_tls.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>


#define PATH "tls"
#define UNSUPPORTED "is not supported by the gRPC receiver (libgrpc serves TLS 1.2 and 1.3)"
/* reload_interval 0 means never; the file watcher always re-reads on some
 * interval, so "never" becomes once in ten years (it fits the library's
 * unsigned seconds and its deadline arithmetic saturates). */
#define NEVER_S (10u * 365u * 24u * 3600u)

static int has(const char *s)
{
	return s && *s;
}

unsigned kn_grpc_tls_refresh_seconds(uint64_t reload_interval_ns)
{
	uint64_t s;

	if (!reload_interval_ns)
		return NEVER_S;
	s = (reload_interval_ns + 999999999u) / 1000000000u; /* whole seconds, rounded up */
	return s > NEVER_S ? NEVER_S : (unsigned)s;
}

int kn_grpc_tls_check_cfg(const struct kn_tls_server_cfg *tls, struct kn_err *err)
{
	const char *lo = has(tls->min_version) ? tls->min_version : "1.2";
	const char *hi = tls->max_version ? tls->max_version : "";

	if (!has(tls->cert_file))
		return kn_errf(err, PATH ".cert_file: missing");
	if (!has(tls->key_file))
		return kn_errf(err, PATH ".key_file: missing");
	if (kn_tls_version(lo) != 12)
		return kn_errf(err, PATH ".min_version: \"%s\" " UNSUPPORTED, lo);
	if (*hi && kn_tls_version(hi) != 13)
		return kn_errf(err, PATH ".max_version: \"%s\" " UNSUPPORTED, hi);
	return KN_OK;
}

grpc_server_credentials *kn_grpc_tls_server_credentials(const struct kn_tls_server_cfg *tls,
							struct kn_err *err)
{
	int mutual = has(tls->client_ca_file);
	grpc_tls_certificate_provider *prov;
	grpc_tls_credentials_options *o;
	grpc_server_credentials *creds;

	/* The provider first: 1.51 has no call that frees unused options. */
	prov = grpc_tls_certificate_provider_file_watcher_create(
		tls->key_file, tls->cert_file, mutual ? tls->client_ca_file : NULL,
		kn_grpc_tls_refresh_seconds(tls->reload_interval_ns));
	if (!prov) {
		kn_errf(err, PATH ": cannot create the certificate file watcher");
		return NULL;
	}
	o = grpc_tls_credentials_options_create();
	if (!o) {
		grpc_tls_certificate_provider_release(prov);
		kn_errf(err, PATH ": cannot create TLS options");
		return NULL;
	}
	/* the options take their own reference to the provider */
	grpc_tls_credentials_options_set_certificate_provider(o, prov);
	grpc_tls_certificate_provider_release(prov);
	grpc_tls_credentials_options_watch_identity_key_cert_pairs(o);
	if (mutual) {
		grpc_tls_credentials_options_watch_root_certs(o);
		grpc_tls_credentials_options_set_cert_request_type(
			o, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
	} else {
		grpc_tls_credentials_options_set_cert_request_type(
			o, GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
	}
	/* the credentials own the options from here on */
	creds = grpc_tls_server_credentials_create(o);
	if (!creds)
		kn_errf(err, PATH ": cannot create TLS server credentials");
	return creds;
}
