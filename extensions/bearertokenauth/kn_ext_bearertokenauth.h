/* SPDX-License-Identifier: Apache-2.0
 * kn_ext_bearertokenauth: the `bearertokenauth` extension, a server and a
 * client authenticator (kn_extension.h), in the OpenTelemetry Collector's
 * config shape:
 *   extensions:
 *     bearertokenauth:
 *       scheme: Bearer          # default; "" sends and expects the bare token
 *       header: authorization   # default; the HTTP header / gRPC metadata key
 *       token: "s3cr3t"         # or tokens: [a, b] (any is accepted; the first is sent)
 *       filename: /run/token    # or: one token per line, re-read when it changes
 * Exactly one of token, tokens and filename (the OTel Collector ignores
 * token when filename is set; kansatsu refuses the ambiguity). A token is
 * printable ASCII without spaces, at most KN_BEARER_TOKEN_MAX bytes.
 *
 * Server: the request's header must be "<scheme> <token>" (scheme matched
 * case-insensitively) with one of the tokens; refusals are "missing" (no
 * header), "malformed" (another scheme, no token) or "denied". Tokens are
 * kept as SHA-256 digests and compared with CRYPTO_memcmp, so the time taken
 * depends neither on the token's length nor on where it differs.
 * Client: "<scheme> <first token>" under `header`.
 *
 * The token set is immutable and swapped whole through a kn_swap when the
 * file changes (kn_file_watch: inotify + 1 s poll), so the request path
 * takes no lock; a file that cannot be read or holds no token keeps the
 * previous set (a half-written file is not an outage) and is counted in
 * kansatsu_auth_reloads_total{result="failed"}. Tokens never reach a log
 * line or an error message. */
#ifndef KN_EXT_BEARERTOKENAUTH_H
#define KN_EXT_BEARERTOKENAUTH_H

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_component.h"

#define KN_BEARER_TOKEN_MAX 4096
#define KN_BEARER_MAX_TOKENS 64

struct kn_bearer_cfg {
	char *scheme;
	char *token;
	struct kn_strlist tokens;
	char *filename;
	char *header;
};

extern const struct kn_component kn_extension_bearertokenauth;

#endif
