/* SPDX-License-Identifier: Apache-2.0
 * kn_test_certs: certificates for the TLS unit tests, made at test time with
 * the openssl CLI in a fresh temp dir (EC P-256 keys, 2 days):
 *   ca, other-ca          two CAs
 *   server                signed by ca, localhost / 127.0.0.1, serial KN_TEST_CERT_SERIAL_SERVER
 *   server2               the same key, another serial (KN_TEST_CERT_SERIAL_SERVER2): reloads
 *   client                a client certificate signed by ca
 *   stranger              a client certificate signed by other-ca (mutual TLS refuses it)
 * each as <name>.crt and <name>.key. One set per test process (static
 * state); tests/integration/tls_helpers.mjs is the same for node tests. */
#ifndef KN_TEST_CERTS_H
#define KN_TEST_CERTS_H

#define KN_TEST_CERT_SERIAL_SERVER 4097
#define KN_TEST_CERT_SERIAL_SERVER2 4098

/* Makes the set in a new dir /tmp/<prefix>XXXXXX: 0, or -1 (message on stderr). */
int kn_test_certs_make(const char *prefix);
/* Removes the dir: 0 or -1. */
int kn_test_certs_remove(void);
const char *kn_test_certs_dir(void);
/* dir/name, in one of 8 rotating buffers (valid for the next 7 calls). */
const char *kn_test_cert_path(const char *name);
/* Runs a shell command in the dir, output discarded; its exit status. */
int kn_test_certs_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
