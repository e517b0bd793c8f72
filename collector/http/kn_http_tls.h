/* SPDX-License-Identifier: Apache-2.0
 * kn_http_tls: the OpenSSL side of kn_httpd's TLS (the receiver's `tls`
 * block, kn_tls_server_cfg): a server SSL_CTX built from the files, mutual
 * TLS when client_ca_file is set, ALPN ("h2" preferred when the server
 * speaks HTTP/2, then "http/1.1"; a client offering neither still gets
 * HTTP/1.1), and the certificate reload.
 *
 * Reload: the current SSL_CTX is a refcounted pointer behind a mutex. A new
 * connection's SSL is made from the current one (SSL_new takes its own
 * reference), so swapping in a new context leaves established connections on
 * theirs. kn_http_tls_tick, called from every loop thread's periodic tick,
 * lets one thread per reload_interval look at the files (inode, size, mtime)
 * and, when one changed, build a new context; a context that fails to build
 * is logged (naming the key, with OpenSSL's reason, never the key material)
 * and the previous one stays in use.
 *
 * Sockets: connections use a socket BIO of this module that sends with
 * MSG_NOSIGNAL, so a peer that went away gives an error, not SIGPIPE. */
#ifndef KN_HTTP_TLS_H
#define KN_HTTP_TLS_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "../core/kn_err.h"
#include "../core/kn_tls_server.h"

struct kn_http_tls;

/* Copies the config, reads the files and builds the first context. `name`
 * prefixes errors and log lines ("otlp/http: tls.key_file: ..."); h2 says
 * whether ALPN may choose "h2". NULL with err set on failure. */
struct kn_http_tls *kn_http_tls_create(const struct kn_tls_server_cfg *cfg, const char *name,
				       int h2, struct kn_err *err);
void kn_http_tls_destroy(struct kn_http_tls *t);

/* Builds a context from cfg alone (used by create and reload). */
SSL_CTX *kn_http_tls_build_ctx(const struct kn_tls_server_cfg *cfg, const char *name, int h2,
			       struct kn_err *err);

/* An SSL for an accepted non-blocking socket, from the current context, in
 * server mode; NULL when out of memory. */
SSL *kn_http_tls_new_conn(struct kn_http_tls *t, int fd);

/* Periodic: when reload_interval has passed since the last look, checks the
 * files and reloads them if they changed. Cheap when nothing is due. */
void kn_http_tls_tick(struct kn_http_tls *t, uint64_t now_ns);

/* Contexts swapped in by reloads so far; *failures (optional): changes of
 * the files that did not load (the previous context stayed). */
uint64_t kn_http_tls_reloads(const struct kn_http_tls *t, uint64_t *failures);

/* OpenSSL's description of the last queued error of this thread (and
 * clears the queue); "unknown error" when none. Returns buf. */
const char *kn_http_tls_errstr(char *buf, size_t len);

#endif
