/* SPDX-License-Identifier: Apache-2.0
 * kn_http_tls: server SSL_CTX, ALPN, socket BIO and certificate reload for
 * kn_httpd (see kn_http_tls.h). */
#include "kn_http_tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "../core/kn_clock.h"
#include "../core/kn_log.h"

#define NFILES 3 /* cert_file, key_file, client_ca_file */

/* What says a file changed: identity, size and modification time. */
struct stamp {
	uint64_t dev, ino, size, mtime_s, mtime_ns, ok;
};

struct kn_http_tls {
	struct kn_tls_server_cfg cfg; /* strings owned */
	char *name;
	int h2;
	pthread_mutex_t ctx_mu;       /* guards cur */
	SSL_CTX *cur;
	pthread_mutex_t reload_mu;    /* one reloader at a time; guards the fields below */
	struct stamp stamps[NFILES];
	int failed;                   /* the last build failed: retry while due */
	uint64_t next_check;          /* atomic */
	uint64_t reloads;             /* atomic */
	uint64_t reload_failures;     /* atomic */
};

const char *kn_http_tls_errstr(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown error");
	ERR_clear_error();
	return buf;
}

/* ---- socket BIO: send with MSG_NOSIGNAL ---- */

static BIO_METHOD *sock_method;
static pthread_once_t sock_once = PTHREAD_ONCE_INIT;

static int sock_fd(BIO *b)
{
	return (int)(intptr_t)BIO_get_data(b);
}

static int sock_write(BIO *b, const char *data, size_t len, size_t *written)
{
	BIO_clear_retry_flags(b);
	for (;;) {
		ssize_t n = send(sock_fd(b), data, len, MSG_NOSIGNAL);
		if (n >= 0) {
			*written = (size_t)n;
			return 1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_write(b);
		return 0;
	}
}

static int sock_read(BIO *b, char *data, size_t len, size_t *readbytes)
{
	BIO_clear_retry_flags(b);
	for (;;) {
		ssize_t n = recv(sock_fd(b), data, len, 0);
		if (n > 0) {
			*readbytes = (size_t)n;
			return 1;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			BIO_set_retry_read(b);
		return 0; /* EOF or error: the SSL call fails and the connection closes */
	}
}

static long sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int sock_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void sock_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "kansatsu socket");
	if (!m)
		return;
	if (!BIO_meth_set_write_ex(m, sock_write) || !BIO_meth_set_read_ex(m, sock_read) ||
	    !BIO_meth_set_ctrl(m, sock_ctrl) || !BIO_meth_set_create(m, sock_create)) {
		BIO_meth_free(m);
		return;
	}
	sock_method = m;
}

/* ---- context ---- */

static int proto_of(int v)
{
	switch (v) {
	case 10: return TLS1_VERSION;
	case 11: return TLS1_1_VERSION;
	case 12: return TLS1_2_VERSION;
	case 13: return TLS1_3_VERSION;
	default: return 0;
	}
}

/* ALPN: "h2" when allowed and offered, else "http/1.1" when offered, else
 * no ALPN at all (the connection then speaks HTTP/1.1 or whatever preface
 * the client sends). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	const unsigned char *h2 = NULL, *h1 = NULL;
	for (unsigned int i = 0; i < inlen;) {
		unsigned int l = in[i];
		if (l == 0 || i + 1 + l > inlen)
			break; /* malformed list: use what was found so far */
		const unsigned char *p = in + i + 1;
		if (l == 2 && memcmp(p, "h2", 2) == 0)
			h2 = p;
		else if (l == 8 && memcmp(p, "http/1.1", 8) == 0)
			h1 = p;
		i += 1 + l;
	}
	if (arg && h2) {
		*out = h2;
		*outlen = 2;
		return SSL_TLSEXT_ERR_OK;
	}
	if (h1) {
		*out = h1;
		*outlen = 8;
		return SSL_TLSEXT_ERR_OK;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

/* An encrypted key is refused rather than prompted for on the terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

SSL_CTX *kn_http_tls_build_ctx(const struct kn_tls_server_cfg *cfg, const char *name, int h2,
			       struct kn_err *err)
{
	char es[256];
	ERR_clear_error();
	int lo = kn_tls_version(cfg->min_version), hi = kn_tls_version(cfg->max_version);
	if (lo < 0) {
		kn_errf(err, "%s: tls.min_version: \"%s\" is not a TLS version", name, cfg->min_version);
		return NULL;
	}
	if (hi < 0) {
		kn_errf(err, "%s: tls.max_version: \"%s\" is not a TLS version", name, cfg->max_version);
		return NULL;
	}
	if (lo == 0)
		lo = 12;
	/* TLS 1.0 / 1.1 are allowed here, but OpenSSL 3's default security
	 * level still refuses their handshakes unless the system's OpenSSL
	 * configuration lowers it; nothing here weakens that. */
	if (!cfg->cert_file || !*cfg->cert_file || !cfg->key_file || !*cfg->key_file) {
		kn_errf(err, "%s: tls.%s: missing", name,
			!cfg->cert_file || !*cfg->cert_file ? "cert_file" : "key_file");
		return NULL;
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		kn_errf(err, "%s: tls: cannot create a TLS context: %s", name,
			kn_http_tls_errstr(es, sizeof es));
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, proto_of(lo))) {
		kn_errf(err, "%s: tls.min_version: \"%s\" is not supported: %s", name,
			cfg->min_version, kn_http_tls_errstr(es, sizeof es));
		goto fail;
	}
	if (hi > 0 && !SSL_CTX_set_max_proto_version(ctx, proto_of(hi))) {
		kn_errf(err, "%s: tls.max_version: \"%s\" is not supported: %s", name,
			cfg->max_version, kn_http_tls_errstr(es, sizeof es));
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* the output buffer may move between a WANT_WRITE and the retry (it is
	 * the same bytes); a partial write reports progress per record */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_default_passwd_cb(ctx, no_password);
	static const unsigned char sid[] = "kansatsu-http";
	SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
		kn_errf(err, "%s: tls.cert_file: \"%s\": cannot load the certificate chain: %s", name,
			cfg->cert_file, kn_http_tls_errstr(es, sizeof es));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
		int mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
		if (mismatch)
			kn_errf(err, "%s: tls.key_file: \"%s\" does not match cert_file \"%s\": %s", name,
				cfg->key_file, cfg->cert_file, kn_http_tls_errstr(es, sizeof es));
		else
			kn_errf(err, "%s: tls.key_file: \"%s\": cannot load the private key: %s", name,
				cfg->key_file, kn_http_tls_errstr(es, sizeof es));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		kn_errf(err, "%s: tls.key_file: \"%s\" does not match cert_file \"%s\": %s", name,
			cfg->key_file, cfg->cert_file, kn_http_tls_errstr(es, sizeof es));
		goto fail;
	}
	if (cfg->client_ca_file && *cfg->client_ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->client_ca_file, NULL) != 1) {
			kn_errf(err, "%s: tls.client_ca_file: \"%s\": cannot load the CA certificates: %s",
				name, cfg->client_ca_file, kn_http_tls_errstr(es, sizeof es));
			goto fail;
		}
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_ca_file);
		if (!names) {
			kn_errf(err, "%s: tls.client_ca_file: \"%s\": no CA names: %s", name,
				cfg->client_ca_file, kn_http_tls_errstr(es, sizeof es));
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, h2 ? (void *)1 : NULL);
	ERR_clear_error();
	return ctx;
fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

/* ---- files ---- */

static void take_stamps(const struct kn_tls_server_cfg *cfg, struct stamp st[NFILES])
{
	const char *files[NFILES] = {cfg->cert_file, cfg->key_file, cfg->client_ca_file};
	memset(st, 0, NFILES * sizeof *st);
	for (int i = 0; i < NFILES; i++) {
		struct stat sb;
		if (!files[i] || !*files[i] || stat(files[i], &sb) != 0)
			continue;
		st[i].dev = (uint64_t)sb.st_dev;
		st[i].ino = (uint64_t)sb.st_ino;
		st[i].size = (uint64_t)sb.st_size;
		st[i].mtime_s = (uint64_t)sb.st_mtim.tv_sec;
		st[i].mtime_ns = (uint64_t)sb.st_mtim.tv_nsec;
		st[i].ok = 1;
	}
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

void kn_http_tls_destroy(struct kn_http_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->cur);
	free(t->cfg.cert_file);
	free(t->cfg.key_file);
	free(t->cfg.client_ca_file);
	free(t->cfg.min_version);
	free(t->cfg.max_version);
	free(t->name);
	pthread_mutex_destroy(&t->ctx_mu);
	pthread_mutex_destroy(&t->reload_mu);
	free(t);
}

struct kn_http_tls *kn_http_tls_create(const struct kn_tls_server_cfg *cfg, const char *name,
				       int h2, struct kn_err *err)
{
	pthread_once(&sock_once, sock_method_init);
	if (!sock_method) {
		kn_errf(err, "%s: tls: cannot set up the socket BIO", name);
		return NULL;
	}
	struct kn_http_tls *t = calloc(1, sizeof *t);
	if (!t) {
		kn_errf(err, "%s: tls: out of memory", name);
		return NULL;
	}
	pthread_mutex_init(&t->ctx_mu, NULL);
	pthread_mutex_init(&t->reload_mu, NULL);
	t->h2 = h2;
	t->name = strdup(name);
	t->cfg.cert_file = dup_or_empty(cfg->cert_file);
	t->cfg.key_file = dup_or_empty(cfg->key_file);
	t->cfg.client_ca_file = dup_or_empty(cfg->client_ca_file);
	t->cfg.min_version = dup_or_empty(cfg->min_version);
	t->cfg.max_version = dup_or_empty(cfg->max_version);
	t->cfg.reload_interval_ns = cfg->reload_interval_ns;
	t->cfg.enabled = 1;
	if (!t->name || !t->cfg.cert_file || !t->cfg.key_file || !t->cfg.client_ca_file ||
	    !t->cfg.min_version || !t->cfg.max_version) {
		kn_errf(err, "%s: tls: out of memory", name);
		goto fail;
	}
	/* stamps before reading: a change during the read is seen next time */
	take_stamps(&t->cfg, t->stamps);
	t->cur = kn_http_tls_build_ctx(&t->cfg, t->name, h2, err);
	if (!t->cur)
		goto fail;
	t->next_check = kn_now_ns() + t->cfg.reload_interval_ns;
	return t;
fail:
	kn_http_tls_destroy(t);
	return NULL;
}

SSL *kn_http_tls_new_conn(struct kn_http_tls *t, int fd)
{
	pthread_mutex_lock(&t->ctx_mu);
	SSL_CTX *ctx = t->cur;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&t->ctx_mu);
	SSL *ssl = SSL_new(ctx); /* holds its own reference to ctx */
	SSL_CTX_free(ctx);
	if (!ssl)
		goto fail;
	BIO *b = BIO_new(sock_method);
	if (!b) {
		SSL_free(ssl);
		goto fail;
	}
	BIO_set_data(b, (void *)(intptr_t)fd);
	SSL_set_bio(ssl, b, b);
	SSL_set_accept_state(ssl);
	return ssl;
fail:
	ERR_clear_error();
	return NULL;
}

static void reload_check(struct kn_http_tls *t)
{
	struct stamp st[NFILES];
	take_stamps(&t->cfg, st);
	int changed = memcmp(st, t->stamps, sizeof st) != 0;
	if (!changed && !t->failed)
		return;
	memcpy(t->stamps, st, sizeof st);
	struct kn_err err = {{0}};
	SSL_CTX *ctx = kn_http_tls_build_ctx(&t->cfg, t->name, t->h2, &err);
	if (!ctx) {
		/* logged once per change of the files; retried while due, since
		 * a half-written set of files may complete without another change
		 * visible in the stamps */
		if (changed) {
			__atomic_fetch_add(&t->reload_failures, 1, __ATOMIC_RELAXED);
			kn_warn("%s; the previous certificate stays in use", err.msg);
		}
		t->failed = 1;
		return;
	}
	t->failed = 0;
	pthread_mutex_lock(&t->ctx_mu);
	SSL_CTX *old = t->cur;
	t->cur = ctx;
	pthread_mutex_unlock(&t->ctx_mu);
	SSL_CTX_free(old); /* connections made from it keep their own references */
	__atomic_fetch_add(&t->reloads, 1, __ATOMIC_RELAXED);
	kn_info("%s: tls: certificate files reloaded", t->name);
}

void kn_http_tls_tick(struct kn_http_tls *t, uint64_t now_ns)
{
	if (!t || t->cfg.reload_interval_ns == 0)
		return;
	if (now_ns < __atomic_load_n(&t->next_check, __ATOMIC_ACQUIRE))
		return;
	if (pthread_mutex_trylock(&t->reload_mu) != 0)
		return; /* another loop thread is at it */
	if (now_ns >= __atomic_load_n(&t->next_check, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&t->next_check, now_ns + t->cfg.reload_interval_ns, __ATOMIC_RELEASE);
		reload_check(t);
	}
	pthread_mutex_unlock(&t->reload_mu);
}

uint64_t kn_http_tls_reloads(const struct kn_http_tls *t, uint64_t *failures)
{
	if (failures)
		*failures = t ? __atomic_load_n(&t->reload_failures, __ATOMIC_RELAXED) : 0;
	return t ? __atomic_load_n(&t->reloads, __ATOMIC_RELAXED) : 0;
}
