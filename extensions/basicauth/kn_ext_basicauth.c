/* SPDX-License-Identifier: Apache-2.0
 * kn_ext_basicauth: HTTP Basic server and client authenticator (see the
 * header). Threads: authenticate() runs on receiver threads concurrently,
 * inside a kn_swap read section (a bcrypt check holds it for its tens of
 * milliseconds; a reload then waits that long); the watcher thread rebuilds
 * the table. header() only copies the value built at create. */
#include "kn_ext_basicauth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "../../collector/core/kn_extension.h"
#include "../../collector/core/kn_log.h"
#include "../common/kn_auth_util.h"
#include "../common/kn_file_watch.h"
#include "../common/kn_swap.h"
#include "kn_htpasswd.h"

#define FILE_MAX (4 * 1024 * 1024)
#define CLIENT_MAX 6000 /* user:password bytes; base64 of it fits KN_AUTH_VALUE_MAX */

#define B(f) offsetof(struct kn_basicauth_cfg, f)
static const struct kn_cfg_field htpasswd_fields[] = {
	{.key = "file", .type = KN_F_STR, .off = B(htpasswd.file) - B(htpasswd),
	 .help = "htpasswd file, re-read when it changes"},
	{.key = "inline", .type = KN_F_STR, .off = B(htpasswd.inline_text) - B(htpasswd),
	 .help = "htpasswd lines; they win over the file's for the same user"},
	KN_CFG_END,
};

static const struct kn_cfg_field client_fields[] = {
	{.key = "username", .type = KN_F_STR, .off = B(client_auth.username) - B(client_auth), .required = 1},
	{.key = "password", .type = KN_F_STR, .off = B(client_auth.password) - B(client_auth), .def = ""},
	KN_CFG_END,
};

static const struct kn_cfg_field basicauth_fields[] = {
	{.key = "htpasswd", .type = KN_F_SUB, .off = B(htpasswd), .sub = htpasswd_fields,
	 .present_off = B(has_htpasswd), .help = "server: the users receivers accept"},
	{.key = "client_auth", .type = KN_F_SUB, .off = B(client_auth), .sub = client_fields,
	 .present_off = B(has_client), .help = "client: the credentials exporters send"},
	KN_CFG_END,
};

struct basicauth {
	char *id;
	char *file, *inline_text;
	size_t inline_len;
	char file_where[400], inline_where[300];
	struct kn_swap cur;        /* struct kn_htpasswd * (servers) */
	pthread_mutex_t reload_mu;
	struct kn_file_watch *watch;
	struct kn_auth_reloads reloads;
	atomic_uint_fast64_t last_warn;
	char *client;              /* "Basic <base64>" (clients) */
	size_t client_len;
	int server;
};

static int basicauth_validate(const void *cfgp, const char *path, struct kn_err *err)
{
	const struct kn_basicauth_cfg *c = cfgp;
	if (c->has_htpasswd && c->has_client)
		return kn_errf(err, "%s.client_auth: htpasswd and client_auth are both set; one instance is "
				    "either a server (htpasswd) or a client (client_auth) authenticator",
			       path);
	if (!c->has_htpasswd && !c->has_client)
		return kn_errf(err, "%s: set htpasswd (to check receivers' clients) or client_auth (for "
				    "exporters)", path);
	if (c->has_htpasswd && !c->htpasswd.file && !c->htpasswd.inline_text)
		return kn_errf(err, "%s.htpasswd: set file and/or inline", path);
	if (c->has_htpasswd && c->htpasswd.file && !*c->htpasswd.file)
		return kn_errf(err, "%s.htpasswd.file: empty", path);
	if (c->has_client) {
		const char *u = c->client_auth.username, *p = c->client_auth.password;
		if (!u || !*u)
			return kn_errf(err, "%s.client_auth.username: missing", path);
		if (strchr(u, ':'))
			return kn_errf(err, "%s.client_auth.username: must not contain ':'", path);
		if (strlen(u) + 1 + strlen(p) > CLIENT_MAX)
			return kn_errf(err, "%s.client_auth: username and password longer than %d bytes", path,
				       CLIENT_MAX);
	}
	return KN_OK;
}

/* The table from the file (if any) and the inline text, inline last. */
static struct kn_htpasswd *table_load(const struct basicauth *a, struct kn_err *err)
{
	struct kn_htpasswd_src src[2];
	size_t n = 0;
	char *text = NULL;
	size_t len = 0;
	if (a->file) {
		char key[300];
		snprintf(key, sizeof key, "extensions.%s.htpasswd.file", a->id);
		if (kn_auth_read_file(a->file, FILE_MAX, key, &text, &len, err) != KN_OK)
			return NULL;
		src[n++] = (struct kn_htpasswd_src){.text = text, .len = len, .where = a->file_where};
	}
	if (a->inline_text)
		src[n++] = (struct kn_htpasswd_src){.text = a->inline_text, .len = a->inline_len,
						    .where = a->inline_where};
	struct kn_htpasswd *t = kn_htpasswd_build(src, n, err);
	kn_auth_free_secret(text, FILE_MAX + 1);
	return t;
}

static void count(struct kn_metric *m)
{
	if (m)
		kn_counter_add(m, 1);
}

static int reload(struct basicauth *a, struct kn_err *err)
{
	pthread_mutex_lock(&a->reload_mu);
	struct kn_htpasswd *t = table_load(a, err);
	if (t) {
		kn_htpasswd_free(kn_swap_replace(&a->cur, t));
		kn_info("extensions.%s: htpasswd \"%s\" read (%zu user%s)", a->id, a->file,
			kn_htpasswd_users(t), kn_htpasswd_users(t) == 1 ? "" : "s");
	}
	pthread_mutex_unlock(&a->reload_mu);
	return t ? KN_OK : KN_ERR;
}

static void on_file_changed(void *ctx)
{
	struct basicauth *a = ctx;
	struct kn_err err = {{0}};
	if (reload(a, &err) == KN_OK) {
		count(a->reloads.ok);
	} else {
		count(a->reloads.failed);
		kn_auth_warn_limited(&a->last_warn, "%s; the previous htpasswd table stays in use", err.msg);
	}
}

static void basicauth_destroy(void *inst);

static int basicauth_create(const struct kn_component_ctx *ctx, const void *cfgp, void **inst,
			    struct kn_err *err)
{
	const struct kn_basicauth_cfg *c = cfgp;
	char path[256];
	snprintf(path, sizeof path, "extensions.%s", ctx->id);
	*inst = NULL;
	if (basicauth_validate(c, path, err) != KN_OK)
		return KN_ERR;
	struct basicauth *a = calloc(1, sizeof *a);
	if (!a)
		return kn_errf(err, "%s: out of memory", path);
	kn_swap_init(&a->cur, NULL);
	pthread_mutex_init(&a->reload_mu, NULL);
	atomic_init(&a->last_warn, 0);
	a->id = strdup(ctx->id);
	if (!a->id)
		goto oom;
	a->server = c->has_htpasswd;
	if (a->server) {
		if (c->htpasswd.file && !(a->file = strdup(c->htpasswd.file)))
			goto oom;
		if (c->htpasswd.inline_text) {
			a->inline_len = strlen(c->htpasswd.inline_text);
			if (!(a->inline_text = strdup(c->htpasswd.inline_text)))
				goto oom;
		}
		snprintf(a->file_where, sizeof a->file_where, "%s.htpasswd.file: \"%s\"", path,
			 a->file ? a->file : "");
		snprintf(a->inline_where, sizeof a->inline_where, "%s.htpasswd.inline", path);
		struct kn_htpasswd *t = table_load(a, err);
		if (!t) {
			basicauth_destroy(a);
			return KN_ERR;
		}
		kn_htpasswd_free(kn_swap_replace(&a->cur, t));
		if (a->file)
			kn_auth_reloads_register(&a->reloads, ctx->metrics, ctx->id);
	} else {
		const char *u = c->client_auth.username, *p = c->client_auth.password;
		size_t ul = strlen(u), pl = strlen(p);
		char plain[CLIENT_MAX + 1];
		snprintf(plain, sizeof plain, "%s:%s", u, p);
		a->client = malloc(KN_AUTH_VALUE_MAX);
		if (!a->client)
			goto oom;
		memcpy(a->client, "Basic ", 6);
		a->client_len = 6 + kn_auth_b64_encode(plain, ul + 1 + pl, a->client + 6, KN_AUTH_VALUE_MAX - 6);
		OPENSSL_cleanse(plain, sizeof plain);
	}
	*inst = a;
	return KN_OK;
oom:
	basicauth_destroy(a);
	return kn_errf(err, "%s: out of memory", path);
}

static int basicauth_start(void *inst, struct kn_err *err)
{
	struct basicauth *a = inst;
	if (!a->server || !a->file || a->watch)
		return KN_OK;
	a->watch = kn_file_watch_start(a->file, 0, on_file_changed, a, err);
	if (!a->watch)
		return kn_err_prefix(err, "extensions.%s.htpasswd.file: ", a->id);
	return reload(a, err);
}

static void basicauth_shutdown(void *inst, uint64_t deadline_ns)
{
	(void)deadline_ns;
	struct basicauth *a = inst;
	if (!a)
		return;
	kn_file_watch_stop(a->watch);
	a->watch = NULL;
}

static void basicauth_destroy(void *inst)
{
	struct basicauth *a = inst;
	if (!a)
		return;
	basicauth_shutdown(a, 0);
	kn_htpasswd_free(kn_swap_fini(&a->cur));
	pthread_mutex_destroy(&a->reload_mu);
	kn_auth_free_secret(a->client, KN_AUTH_VALUE_MAX);
	kn_auth_free_secret(a->inline_text, a->inline_len + 1);
	free(a->file);
	free(a->id);
	free(a);
}

/* ---- the interfaces ---- */

static enum kn_auth_verdict basicauth_authenticate(void *inst, const struct kn_auth_headers *h)
{
	struct basicauth *a = inst;
	size_t len = 0;
	const char *v = h->get(h->ctx, "authorization", &len);
	while (v && len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (!v || len == 0)
		return KN_AUTH_MISSING;
	const char *b64;
	size_t bl;
	if (!kn_auth_split(v, len, "Basic", &b64, &bl) || bl > 4 * ((2 * KN_HTPASSWD_MAX_PASSWORD + 3) / 3))
		return KN_AUTH_MALFORMED;
	unsigned char plain[2 * KN_HTPASSWD_MAX_PASSWORD + 8];
	long pl = kn_auth_b64_decode(b64, bl, plain, sizeof plain);
	const unsigned char *colon = pl > 0 ? memchr(plain, ':', (size_t)pl) : NULL;
	if (!colon) {
		OPENSSL_cleanse(plain, sizeof plain);
		return KN_AUTH_MALFORMED;
	}
	size_t ul = (size_t)(colon - plain);
	int ok = 0;
	unsigned ticket = kn_swap_enter(&a->cur);
	struct kn_htpasswd *t = kn_swap_get(&a->cur);
	if (t)
		ok = kn_htpasswd_verify(t, (const char *)plain, ul, (const char *)colon + 1,
					(size_t)pl - ul - 1);
	kn_swap_exit(&a->cur, ticket);
	OPENSSL_cleanse(plain, sizeof plain);
	return ok ? KN_AUTH_OK : KN_AUTH_DENIED;
}

static const char *basicauth_challenge(void *inst)
{
	(void)inst;
	return "Basic realm=\"kansatsu\", charset=\"UTF-8\"";
}

static const char *basicauth_server_unusable(void *inst)
{
	return ((struct basicauth *)inst)->server ? NULL : "it has client_auth only (no htpasswd)";
}

static int basicauth_header(void *inst, char *name, size_t namecap, char *value, size_t valcap)
{
	struct basicauth *a = inst;
	if (!a->client || namecap < sizeof "authorization" || a->client_len >= valcap)
		return KN_ERR;
	memcpy(name, "authorization", sizeof "authorization");
	memcpy(value, a->client, a->client_len + 1);
	return KN_OK;
}

static const char *basicauth_client_unusable(void *inst)
{
	return ((struct basicauth *)inst)->server ? "it has htpasswd only (no client_auth)" : NULL;
}

static const struct kn_server_auth_ops basicauth_server = {
	.authenticate = basicauth_authenticate,
	.challenge = basicauth_challenge,
	.unusable = basicauth_server_unusable,
};

static const struct kn_client_auth_ops basicauth_client = {
	.header = basicauth_header,
	.unusable = basicauth_client_unusable,
};

const struct kn_component kn_extension_basicauth = {
	.type = "basicauth",
	.kind = KN_EXTENSION,
	.summary = "HTTP Basic authenticator: htpasswd for receivers, client_auth for exporters",
	.config_size = sizeof(struct kn_basicauth_cfg),
	.config_fields = basicauth_fields,
	.validate = basicauth_validate,
	.create = basicauth_create,
	.start = basicauth_start,
	.shutdown = basicauth_shutdown,
	.destroy = basicauth_destroy,
	.server_auth = &basicauth_server,
	.client_auth = &basicauth_client,
};
