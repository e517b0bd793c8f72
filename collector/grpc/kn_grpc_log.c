/* SPDX-License-Identifier: Apache-2.0
 * kn_grpc_log: routes libgrpc's own log lines into kn_log at debug level.
 * libgrpc prints its internal errors (e.g. a failed bind, with a long status
 * tree) to stderr by default; kansatsu reports the same failures itself with
 * the config key at fault, so the library's lines are only useful when
 * debugging (service.telemetry.logs.level: debug). The exception is a TLS
 * server certificate that does not load when libgrpc's file watcher re-reads
 * it (tls.reload_interval): libgrpc then refuses new TLS connections until
 * the files load again, so that is a warning naming the key. */
#include "kn_grpc_log.h"

#include <string.h>

#include <grpc/support/log.h>

#include "../core/kn_log.h"

/* libgrpc's messages when the certificate files it watches do not load. */
static void tls_reload_warning(const gpr_log_func_args *a)
{
	if (!a->file || !a->message)
		return;
	if (strstr(a->file, "ssl_transport_security")) {
		if (strstr(a->message, "Invalid cert chain file"))
			kn_warn("grpc: tls.cert_file: the certificate chain does not load");
		else if (strstr(a->message, "Invalid private key"))
			kn_warn("grpc: tls.key_file: the key does not load or does not match cert_file");
	} else if (strstr(a->file, "tls_security_connector") &&
		   strstr(a->message, "Update handshaker factory failed")) {
		kn_warn("grpc: tls: the certificate files did not load; new TLS connections are "
			"refused until cert_file and key_file load again");
	}
}

static void to_kn_log(gpr_log_func_args *a)
{
	tls_reload_warning(a);
	kn_debug("grpc: %s (%s:%d)", a->message, a->file, a->line);
}

void kn_grpc_log_init(void)
{
	gpr_set_log_function(to_kn_log);
}
