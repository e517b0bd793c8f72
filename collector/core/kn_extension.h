/* SPDX-License-Identifier: Apache-2.0
 * kn_extension: the interfaces extensions offer to receivers and exporters,
 * and how a component finds one by its id.
 *
 * An extension is a component of kind KN_EXTENSION configured under
 * `extensions:` and switched on by naming it in `service.extensions`, as in
 * the OpenTelemetry Collector. The runtime creates the listed ones before any
 * other component, starts them first and shuts them down and destroys them
 * last, so a pointer found at create stays valid for the user's whole life.
 *
 *  - server authenticators (bearertokenauth, basicauth) check the headers
 *    (HTTP) or metadata (gRPC) of every request a receiver gets, on the
 *    receiver's threads, concurrently;
 *  - client authenticators give the header an exporter adds to every request;
 *  - storage (file_storage) gives exporters a durable queue (kn_storage.h). */
#ifndef KN_EXTENSION_H
#define KN_EXTENSION_H

#include <stddef.h>

#include "kn_component.h"
#include "kn_err.h"

struct kn_runtime;

/* ---- server authenticators ---- */

enum kn_auth_verdict {
	KN_AUTH_OK = 0,
	KN_AUTH_MISSING,   /* no credentials in the request */
	KN_AUTH_MALFORMED, /* wrong scheme or undecodable credentials */
	KN_AUTH_DENIED,    /* credentials present and wrong */
	KN_AUTH_NVERDICTS
};

/* "ok", "missing", "malformed", "denied": the `reason` label of refusals. */
const char *kn_auth_verdict_name(enum kn_auth_verdict v);

/* How an authenticator reads a request's headers. */
struct kn_auth_headers {
	/* The value of header `name` (lowercase; matched case-insensitively on
	 * HTTP, as the gRPC metadata key on gRPC), or NULL when absent. The value
	 * is not NUL-terminated: *len says how long it is. */
	const char *(*get)(void *ctx, const char *name, size_t *len);
	void *ctx;
};

struct kn_server_auth_ops {
	/* Thread-safe; compares secrets in constant time; never logs them. */
	enum kn_auth_verdict (*authenticate)(void *inst, const struct kn_auth_headers *h);
	/* The WWW-Authenticate value a refusal carries, e.g. "Bearer realm=\"kansatsu\"". */
	const char *(*challenge)(void *inst);
	/* Optional: NULL when this instance can authenticate requests, else why
	 * not (a basicauth with client_auth only); kn_extension_find refuses it. */
	const char *(*unusable)(void *inst);
};

/* ---- client authenticators ---- */

struct kn_client_auth_ops {
	/* The header to add to an outgoing request: its name (lowercase) into
	 * name[namecap] and its value into value[valcap], NUL-terminated. Called
	 * from exporter threads, concurrently, once per request; cheap (the
	 * extension keeps the value ready). KN_ERR when it has no credentials to
	 * give (e.g. the token file is unreadable): the request is not sent. */
	int (*header)(void *inst, char *name, size_t namecap, char *value, size_t valcap);
	/* Optional, as for servers: why this instance has nothing to give. */
	const char *(*unusable)(void *inst);
};

/* Buffers of these sizes always hold what header() gives. */
#define KN_AUTH_NAME_MAX 64
#define KN_AUTH_VALUE_MAX 8192

/* ---- finding one ---- */

enum kn_ext_iface { KN_EXT_SERVER_AUTH, KN_EXT_CLIENT_AUTH, KN_EXT_STORAGE };

struct kn_ext_ref {
	const struct kn_component *comp;
	void *inst;
};

/* The extension `id` offering `want`, for a component being created. `ref`
 * is the config path that named it ("receivers.otlp.protocols.grpc.auth.
 * authenticator"); errors name it: not configured under extensions, not
 * listed in service.extensions, or of a type that does not offer `want`.
 * rt NULL (a component created on its own, in tests) is an error too. */
int kn_extension_find(struct kn_runtime *rt, const char *id, enum kn_ext_iface want,
		      const char *ref, struct kn_ext_ref *out, struct kn_err *err);

#endif
