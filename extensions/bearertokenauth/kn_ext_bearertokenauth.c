/* SPDX-License-Identifier: Apache-2.0
 * kn_ext_bearertokenauth: static or file-backed bearer tokens (see the
 * header). Threads: authenticate() and header() run on receiver and
 * exporter threads concurrently, each inside a kn_swap read section; the
 * watcher thread re-reads the file and swaps the set (reload_mu orders it
 * against the read at start). */
#include "kn_ext_bearertokenauth.h"

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

#define FILE_MAX (64 * 1024)
#define SCHEME_MAX 64

static const struct kn_cfg_field bearer_fields[] = {
	{.key = "scheme", .type = KN_F_STR, .off = offsetof(struct kn_bearer_cfg, scheme), .def = "Bearer",
	 .help = "auth scheme before the token; \"\" for the bare token"},
	{.key = "token", .type = KN_F_STR, .off = offsetof(struct kn_bearer_cfg, token),
	 .help = "the token (use ${env:VAR} rather than writing it into the file)"},
	{.key = "tokens", .type = KN_F_STRLIST, .off = offsetof(struct kn_bearer_cfg, tokens),
	 .help = "several tokens: any is accepted, the first is sent"},
	{.key = "filename", .type = KN_F_STR, .off = offsetof(struct kn_bearer_cfg, filename),
	 .help = "file with one token per line, re-read when it changes"},
	{.key = "header", .type = KN_F_STR, .off = offsetof(struct kn_bearer_cfg, header),
	 .def = "authorization", .help = "HTTP header / gRPC metadata key carrying the token"},
	KN_CFG_END,
};

/* An immutable set of tokens, published through the kn_swap. */
struct tokset {
	size_t n;
	char *client;                 /* "<scheme> <first token>" */
	size_t client_len;
	unsigned char dig[][KN_AUTH_DIGEST];
};

struct bearer {
	char *id;
	char *header, *scheme, *challenge, *filename;
	char key[300];                /* "extensions.<id>.filename", for messages */
	struct kn_swap cur;           /* struct tokset * */
	pthread_mutex_t reload_mu;
	struct kn_file_watch *watch;
	struct kn_auth_reloads reloads;
	atomic_uint_fast64_t last_warn;
};

static void tokset_free(struct tokset *t)
{
	if (!t)
		return;
	kn_auth_free_secret(t->client, t->client_len + 1);
	OPENSSL_cleanse(t->dig, t->n * sizeof t->dig[0]);
	free(t);
}

/* A token is printable ASCII without spaces (a header value every HTTP and
 * gRPC stack carries as it is). Returns NULL when fine, else why not. */
static const char *token_problem(const char *t, size_t n)
{
	if (n == 0)
		return "is empty";
	if (n > KN_BEARER_TOKEN_MAX)
		return "is longer than 4096 bytes";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return "holds a space, a control character or a non-ASCII byte";
	return NULL;
}

static int header_ok(const char *h)
{
	if (!*h || strlen(h) >= KN_AUTH_NAME_MAX)
		return 0;
	for (; *h; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
		      *h == '-' || *h == '_' || *h == '.'))
			return 0;
	return 1;
}

static int bearer_validate(const void *cfgp, const char *path, struct kn_err *err)
{
	const struct kn_bearer_cfg *c = cfgp;
	int have_token = c->token != NULL, have_tokens = c->tokens.n > 0, have_file = c->filename != NULL;
	if (have_token + have_tokens + have_file == 0)
		return kn_errf(err, "%s: set token, tokens or filename", path);
	if (have_file && (have_token || have_tokens))
		return kn_errf(err, "%s.filename: %s and filename are both set; use one", path,
			       have_token ? "token" : "tokens");
	if (have_token && have_tokens)
		return kn_errf(err, "%s.tokens: token and tokens are both set; use one", path);
	if (have_file && !*c->filename)
		return kn_errf(err, "%s.filename: empty", path);
	const char *why;
	if (have_token && (why = token_problem(c->token, strlen(c->token))))
		return kn_errf(err, "%s.token: the token %s", path, why);
	if (c->tokens.n > KN_BEARER_MAX_TOKENS)
		return kn_errf(err, "%s.tokens: more than %d tokens", path, KN_BEARER_MAX_TOKENS);
	for (size_t i = 0; i < c->tokens.n; i++)
		if ((why = token_problem(c->tokens.v[i], strlen(c->tokens.v[i]))))
			return kn_errf(err, "%s.tokens[%zu]: the token %s", path, i, why);
	size_t sl = strlen(c->scheme);
	if (sl >= SCHEME_MAX || (sl && token_problem(c->scheme, sl)))
		return kn_errf(err, "%s.scheme: \"%s\" is not a scheme name (printable, no spaces, < %d bytes)",
			       path, c->scheme, SCHEME_MAX);
	if (!header_ok(c->header))
		return kn_errf(err, "%s.header: \"%s\" is not a header name", path, c->header);
	return KN_OK;
}

/* A set from n tokens (pointers and lengths); NULL on out of memory. */
static struct tokset *tokset_build(const char *scheme, const char *const *tok, const size_t *len, size_t n)
{
	struct tokset *t = calloc(1, sizeof *t + n * sizeof t->dig[0]);
	if (!t)
		return NULL;
	t->n = n;
	for (size_t i = 0; i < n; i++)
		kn_auth_digest(tok[i], len[i], t->dig[i]);
	size_t sl = strlen(scheme);
	t->client_len = (sl ? sl + 1 : 0) + len[0];
	t->client = malloc(t->client_len + 1);
	if (!t->client) {
		free(t);
		return NULL;
	}
	snprintf(t->client, t->client_len + 1, "%s%s%.*s", scheme, sl ? " " : "", (int)len[0], tok[0]);
	return t;
}

/* Parses a token file's text: one token per line, blanks around and empty
 * lines ignored. Errors name the key, the file and the line, never a token. */
static struct tokset *tokset_from_text(const struct bearer *b, char *text, size_t len, struct kn_err *err)
{
	const char *tok[KN_BEARER_MAX_TOKENS];
	size_t tl[KN_BEARER_MAX_TOKENS], n = 0;
	int line = 0;
	size_t i = 0;
	while (i < len) {
		line++;
		size_t s = i;
		while (i < len && text[i] != '\n')
			i++;
		size_t e = i++;
		while (s < e && (text[s] == ' ' || text[s] == '\t' || text[s] == '\r'))
			s++;
		while (e > s && (text[e - 1] == ' ' || text[e - 1] == '\t' || text[e - 1] == '\r'))
			e--;
		if (e == s)
			continue;
		const char *why = token_problem(text + s, e - s);
		if (why) {
			kn_errf(err, "%s: \"%s\" line %d: the token %s", b->key, b->filename, line, why);
			return NULL;
		}
		if (n == KN_BEARER_MAX_TOKENS) {
			kn_errf(err, "%s: \"%s\": more than %d tokens", b->key, b->filename, KN_BEARER_MAX_TOKENS);
			return NULL;
		}
		tok[n] = text + s;
		tl[n++] = e - s;
	}
	if (n == 0) {
		kn_errf(err, "%s: \"%s\" holds no token", b->key, b->filename);
		return NULL;
	}
	struct tokset *t = tokset_build(b->scheme, tok, tl, n);
	if (!t)
		kn_errf(err, "%s: out of memory", b->key);
	return t;
}

static struct tokset *tokset_from_file(const struct bearer *b, struct kn_err *err)
{
	char *text;
	size_t len;
	if (kn_auth_read_file(b->filename, FILE_MAX, b->key, &text, &len, err) != KN_OK)
		return NULL;
	struct tokset *t = tokset_from_text(b, text, len, err);
	kn_auth_free_secret(text, FILE_MAX + 1);
	return t;
}

static void count(struct kn_metric *m)
{
	if (m)
		kn_counter_add(m, 1);
}

/* Re-reads the file and swaps the set in; keeps the old one on failure. */
static int reload(struct bearer *b, struct kn_err *err)
{
	pthread_mutex_lock(&b->reload_mu);
	struct tokset *t = tokset_from_file(b, err);
	if (t) {
		tokset_free(kn_swap_replace(&b->cur, t));
		kn_info("extensions.%s: token file \"%s\" read (%zu token%s)", b->id, b->filename, t->n,
			t->n == 1 ? "" : "s");
	}
	pthread_mutex_unlock(&b->reload_mu);
	return t ? KN_OK : KN_ERR;
}

static void on_file_changed(void *ctx)
{
	struct bearer *b = ctx;
	struct kn_err err = {{0}};
	if (reload(b, &err) == KN_OK) {
		count(b->reloads.ok);
	} else {
		count(b->reloads.failed);
		kn_auth_warn_limited(&b->last_warn, "%s; the previous tokens stay in use", err.msg);
	}
}

static void bearer_destroy(void *inst);

static int bearer_create(const struct kn_component_ctx *ctx, const void *cfgp, void **inst,
			 struct kn_err *err)
{
	const struct kn_bearer_cfg *c = cfgp;
	char path[256];
	snprintf(path, sizeof path, "extensions.%s", ctx->id);
	*inst = NULL;
	if (bearer_validate(c, path, err) != KN_OK)
		return KN_ERR;
	struct bearer *b = calloc(1, sizeof *b);
	if (!b)
		return kn_errf(err, "%s: out of memory", path);
	kn_swap_init(&b->cur, NULL);
	pthread_mutex_init(&b->reload_mu, NULL);
	atomic_init(&b->last_warn, 0);
	snprintf(b->key, sizeof b->key, "%s.filename", path);
	size_t sl = strlen(c->scheme);
	b->id = strdup(ctx->id);
	b->scheme = strdup(c->scheme);
	b->header = strdup(c->header);
	b->challenge = malloc(sl + 32);
	b->filename = c->filename ? strdup(c->filename) : NULL;
	if (!b->id || !b->scheme || !b->header || !b->challenge || (c->filename && !b->filename)) {
		bearer_destroy(b);
		return kn_errf(err, "%s: out of memory", path);
	}
	for (char *p = b->header; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	snprintf(b->challenge, sl + 32, "%s realm=\"kansatsu\"", sl ? c->scheme : "Bearer");
	struct tokset *t = NULL;
	if (b->filename) {
		t = tokset_from_file(b, err);
	} else {
		const char *tok[KN_BEARER_MAX_TOKENS];
		size_t tl[KN_BEARER_MAX_TOKENS], n = 0;
		if (c->token) {
			tok[0] = c->token;
			tl[n++] = strlen(c->token);
		}
		for (size_t i = 0; i < c->tokens.n; i++, n++) {
			tok[n] = c->tokens.v[i];
			tl[n] = strlen(c->tokens.v[i]);
		}
		t = tokset_build(b->scheme, tok, tl, n);
		if (!t)
			kn_errf(err, "%s: out of memory", path);
	}
	if (!t) {
		bearer_destroy(b);
		return KN_ERR;
	}
	tokset_free(kn_swap_replace(&b->cur, t));
	if (b->filename)
		kn_auth_reloads_register(&b->reloads, ctx->metrics, ctx->id);
	*inst = b;
	return KN_OK;
}

static int bearer_start(void *inst, struct kn_err *err)
{
	struct bearer *b = inst;
	if (!b->filename || b->watch)
		return KN_OK;
	/* watch first: a change after the watch's first look is not lost */
	b->watch = kn_file_watch_start(b->filename, 0, on_file_changed, b, err);
	if (!b->watch)
		return kn_err_prefix(err, "%s: ", b->key);
	return reload(b, err);
}

static void bearer_shutdown(void *inst, uint64_t deadline_ns)
{
	(void)deadline_ns;
	struct bearer *b = inst;
	if (!b)
		return;
	kn_file_watch_stop(b->watch);
	b->watch = NULL;
}

static void bearer_destroy(void *inst)
{
	struct bearer *b = inst;
	if (!b)
		return;
	bearer_shutdown(b, 0);
	tokset_free(kn_swap_fini(&b->cur));
	pthread_mutex_destroy(&b->reload_mu);
	free(b->id);
	free(b->scheme);
	free(b->header);
	free(b->challenge);
	free(b->filename);
	free(b);
}

/* ---- the interfaces ---- */

static enum kn_auth_verdict bearer_authenticate(void *inst, const struct kn_auth_headers *h)
{
	struct bearer *b = inst;
	size_t len = 0;
	const char *v = h->get(h->ctx, b->header, &len);
	while (v && len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (!v || len == 0)
		return KN_AUTH_MISSING;
	const char *cred = v;
	size_t cl = len;
	if (b->scheme[0] && !kn_auth_split(v, len, b->scheme, &cred, &cl))
		return KN_AUTH_MALFORMED;
	unsigned char d[KN_AUTH_DIGEST];
	kn_auth_digest(cred, cl, d);
	int ok = 0;
	unsigned ticket = kn_swap_enter(&b->cur);
	const struct tokset *t = kn_swap_get(&b->cur);
	for (size_t i = 0; t && i < t->n; i++)
		ok |= kn_auth_digest_eq(t->dig[i], d);
	kn_swap_exit(&b->cur, ticket);
	return ok ? KN_AUTH_OK : KN_AUTH_DENIED;
}

static const char *bearer_challenge(void *inst)
{
	return ((struct bearer *)inst)->challenge;
}

static int bearer_header(void *inst, char *name, size_t namecap, char *value, size_t valcap)
{
	struct bearer *b = inst;
	if (strlen(b->header) >= namecap)
		return KN_ERR;
	memcpy(name, b->header, strlen(b->header) + 1);
	int rc = KN_ERR;
	unsigned ticket = kn_swap_enter(&b->cur);
	const struct tokset *t = kn_swap_get(&b->cur);
	if (t && t->client_len < valcap) {
		memcpy(value, t->client, t->client_len + 1);
		rc = KN_OK;
	}
	kn_swap_exit(&b->cur, ticket);
	return rc;
}

static const struct kn_server_auth_ops bearer_server = {
	.authenticate = bearer_authenticate,
	.challenge = bearer_challenge,
};

static const struct kn_client_auth_ops bearer_client = {
	.header = bearer_header,
};

const struct kn_component kn_extension_bearertokenauth = {
	.type = "bearertokenauth",
	.kind = KN_EXTENSION,
	.summary = "bearer token authenticator for receivers and exporters (static or from a watched file)",
	.config_size = sizeof(struct kn_bearer_cfg),
	.config_fields = bearer_fields,
	.validate = bearer_validate,
	.create = bearer_create,
	.start = bearer_start,
	.shutdown = bearer_shutdown,
	.destroy = bearer_destroy,
	.server_auth = &bearer_server,
	.client_auth = &bearer_client,
};
