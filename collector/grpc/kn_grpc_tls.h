/* SPDX-License-Identifier: Apache-2.0
 * kn_grpc_tls: TLS server credentials of the OTLP/gRPC receiver from the
 * receiver's `tls` block (kn_tls_server_cfg), on libgrpc's core TLS API.
 *
 * libgrpc's file-watcher certificate provider reads cert_file / key_file
 * (and client_ca_file) at start and again every reload_interval: new
 * handshakes use the new files, established connections keep theirs, and a
 * re-read that fails is logged by libgrpc while the previous certificate
 * stays in use. Errors name the key relative to the protocol block
 * ("tls.min_version: ..."); the receiver prefixes the rest of the path. */
#ifndef KN_GRPC_TLS_H
#define KN_GRPC_TLS_H

#include <grpc/grpc_security.h>

#include "../core/kn_err.h"
#include "../core/kn_tls_server.h"

/* What can be checked without touching the files: the keys are set and the
 * TLS versions are ones libgrpc can serve. At create. */
int kn_grpc_tls_check_cfg(const struct kn_tls_server_cfg *tls, struct kn_err *err);

/* Server credentials watching the files; NULL with err set on failure. The
 * caller releases them with grpc_server_credentials_release once the port
 * is added (the server keeps its own reference). */
grpc_server_credentials *kn_grpc_tls_server_credentials(const struct kn_tls_server_cfg *tls,
							struct kn_err *err);

/* Seconds between reads of the files for a reload_interval (see the .c). */
unsigned kn_grpc_tls_refresh_seconds(uint64_t reload_interval_ns);

#endif
