/* SPDX-License-Identifier: Apache-2.0
 * kn_tls_server: the `tls` block of a receiver protocol (OTLP/gRPC and
 * OTLP/HTTP), in the OpenTelemetry Collector's shape:
 *
 *   tls:
 *     cert_file: /etc/kansatsu/tls/server.crt   PEM, the chain the server presents
 *     key_file: /etc/kansatsu/tls/server.key    PEM, its private key
 *     client_ca_file: /etc/kansatsu/tls/ca.crt  PEM; set = mutual TLS: a client
 *                                               without a certificate signed by it
 *                                               is refused during the handshake
 *     min_version: "1.2"                        1.0 | 1.1 | 1.2 | 1.3
 *     max_version: ""                           "" = the highest the library has
 *     reload_interval: 0s                       re-read the files this often (when
 *                                               they changed); 0 = never
 *
 * The files are read at validate (so `kansatsu validate` names a missing or
 * unreadable one) and again at start. Reloads serve new connections with the
 * new certificate; established connections keep theirs. The key material is
 * never logged. This module only holds the config and its checks; each
 * transport builds its own server context from it (OpenSSL for HTTP,
 * libgrpc's TLS credentials for gRPC). */
#ifndef KN_TLS_SERVER_H
#define KN_TLS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "../config/kn_config.h"
#include "kn_err.h"

struct kn_tls_server_cfg {
	char *cert_file;
	char *key_file;
	char *client_ca_file;        /* NULL / "" = no client certificates asked */
	char *min_version;           /* "1.0" .. "1.3" */
	char *max_version;           /* "" = highest */
	uint64_t reload_interval_ns; /* 0 = never */
	int enabled;                 /* the block is present (not first: present_off 0 means none) */
};

extern const struct kn_cfg_field kn_tls_server_fields[];

/* Cross-field checks and the files readable; path is the block's path
 * ("receivers.otlp.protocols.grpc.tls"). A disabled block is valid. */
int kn_tls_server_validate(const struct kn_tls_server_cfg *c, const char *path, struct kn_err *err);

/* The files with OpenSSL: cert_file's certificates load, key_file's key
 * loads (not encrypted) and is the key of the first certificate,
 * client_ca_file (when set) holds a certificate. Errors name path.key and
 * the file, never its contents; the key's bytes are wiped after use. */
int kn_tls_server_check_files(const struct kn_tls_server_cfg *c, const char *path,
			      struct kn_err *err);

/* A version string as a number: 10, 11, 12, 13; 0 for "" (none); -1 when unknown. */
int kn_tls_version(const char *v);

/* A whole file, NUL-terminated, malloc'd (*len without the NUL); NULL with
 * err naming path.key and the file when it cannot be read. */
char *kn_tls_read_file(const char *file, const char *path, const char *key, size_t *len,
		       struct kn_err *err);

#endif
