/* SPDX-License-Identifier: Apache-2.0
 * kn_ext_basicauth: the `basicauth` extension (HTTP Basic, RFC 7617), in
 * the OpenTelemetry Collector's config shape; one instance is either a
 * server authenticator (htpasswd) or a client authenticator (client_auth):
 *   extensions:
 *     basicauth/server:
 *       htpasswd:
 *         file: /etc/kansatsu/htpasswd     # re-read when it changes
 *         inline: |                        # entries here win over the file's
 *           ${env:BASIC_USER}:${env:BASIC_PASSWORD}
 *     basicauth/client:
 *       client_auth: {username: kansatsu, password: "${env:PW}"}
 *
 * Server: "Authorization: Basic base64(user:password)" is checked against
 * the htpasswd table (kn_htpasswd.h: bcrypt, SHA-crypt, yescrypt, MD5 /
 * apr1, {SHA}, {SSHA}, plain text); refusals are "missing", "malformed"
 * (another scheme, bad base64, no ':') or "denied". The table is immutable
 * and swapped whole through a kn_swap when the file changes (kn_file_watch);
 * a file that no longer parses keeps the previous table and is counted in
 * kansatsu_auth_reloads_total{result="failed"}.
 * Client: "authorization: Basic ..." built once at create.
 *
 * Passwords and hashes never reach a log line or an error message. */
#ifndef KN_EXT_BASICAUTH_H
#define KN_EXT_BASICAUTH_H

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_component.h"

struct kn_basicauth_cfg {
	struct {
		char *file;
		char *inline_text;
	} htpasswd;
	struct {
		char *username;
		char *password;
	} client_auth;
	int has_htpasswd, has_client; /* the keys were present */
};

extern const struct kn_component kn_extension_basicauth;

#endif
