/* SPDX-License-Identifier: Apache-2.0
 * test_basicauth: the htpasswd table (parsing, every hash format against
 * vectors made by `openssl passwd` and Python's crypt, plus bcrypt and
 * yescrypt made here with libcrypt; the $1$/$apr1$ code against libxcrypt;
 * errors naming the line and never the hash or password), the success cache
 * (hits counted, failures not remembered), and the basicauth extension:
 * verdicts, the client header, config errors, and the htpasswd file re-read
 * when it changes (polled with a deadline). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/core/kn_metrics.h"
#include "extensions/basicauth/kn_apr1.h"
#include "extensions/basicauth/kn_ext_basicauth.h"
#include "extensions/basicauth/kn_htpasswd.h"
#include "extensions/common/kn_auth_util.h"
#include "kn_test_auth.h"

#define WAIT_MS 20000

static char tmpdir[64];

/* vectors: password "s3cret" */
#define APR1 "$apr1$Xy7aBc12$YQ7ORMDsEm7EplzEDB1CB0"
#define APR1_SHORTSALT "$apr1$abc$40RF2dTx.VKfQHjGWKyym/" /* "hello" */
#define MD5 "$1$saltsalt$RwMqRjSWhXMKbW72DwzGd1"
#define SHA256C "$5$rounds5salt$BKMvtdTJcqLqGeBbtGrKfyE.Y94Sgna0JHWYiaK1Mp3"
#define SHA512C "$6$sixsalt$C7zzWPYm84x8dJOAu3X5TgpBdqKz0sBvAEofUjRdHyopck2mUILvGPB7bOdwqk5dL6aLvEfwZsygi17rzCRK71"
#define BCRYPT_2Y "$2y$04$abcdefghijklmnopqrstuuLZYjhNQAOdpbzt4WxWlUHjv1wsyH5DG"
#define BCRYPT_2B "$2b$05$0123456789ABCDEFGHIJKuoUliRxa4PmVfHLN8IHOc/sbY9jvmtZS"
#define SHA "{SHA}/vNB+F2HQ559kaLUZbmHHvZrXpg="
#define SSHA "{SSHA}xhwvAVlxQgjdD+6rzZoVg7iQWZROYUNs" /* salt "NaCl" */

static void test_formats(void **st)
{
	(void)st;
	const char *ok[] = {APR1, MD5, SHA256C, SHA512C, BCRYPT_2Y, BCRYPT_2B, SHA, SSHA, "s3cret"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		if (kn_htpasswd_check(ok[i], "s3cret", 6) != 1)
			fail_msg("%s does not match its password", ok[i]);
		if (kn_htpasswd_check(ok[i], "s3creT", 6) != 0)
			fail_msg("%s matches a wrong password", ok[i]);
		if (kn_htpasswd_check(ok[i], "s3cret\0", 7) != 0)
			fail_msg("%s matches the password with a NUL after it", ok[i]);
		if (kn_htpasswd_check(ok[i], "", 0) != 0)
			fail_msg("%s matches an empty password", ok[i]);
	}
	assert_int_equal(kn_htpasswd_check(APR1_SHORTSALT, "hello", 5), 1);
	/* made here by libcrypt: bcrypt (cost 4) and yescrypt round trips */
	const char *prefixes[] = {"$2b$", "$y$"};
	for (size_t i = 0; i < 2; i++) {
		char setting[CRYPT_GENSALT_OUTPUT_SIZE];
		struct crypt_data cd;
		memset(&cd, 0, sizeof cd);
		assert_non_null(crypt_gensalt_rn(prefixes[i], i == 0 ? 4 : 0, NULL, 0, setting, sizeof setting));
		const char *h = crypt_rn("another pass", setting, &cd, (int)sizeof cd);
		assert_non_null(h);
		char hash[CRYPT_OUTPUT_SIZE];
		snprintf(hash, sizeof hash, "%s", h);
		assert_int_equal(kn_htpasswd_check(hash, "another pass", 12), 1);
		assert_int_equal(kn_htpasswd_check(hash, "another pasS", 12), 0);
	}
	assert_int_equal(kn_htpasswd_check("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "x", 1), -1);
	assert_int_equal(kn_htpasswd_check("{MD5}abc", "x", 1), -1);
	assert_int_equal(kn_htpasswd_check("{SHA}not-base64", "x", 1), -1);
}

/* the $apr1$ code is FreeBSD's MD5 crypt with another magic: with "$1$" it
 * must agree with libxcrypt's */
static void test_md5crypt_matches_libcrypt(void **st)
{
	(void)st;
	const char *pws[] = {"", "a", "s3cret", "0123456789abcdef", "a much longer password, over 16 bytes"};
	const char *salts[] = {"$1$", "$1$x$", "$1$saltsalt$", "$1$12345678901$"};
	for (size_t p = 0; p < sizeof pws / sizeof pws[0]; p++)
		for (size_t s = 0; s < sizeof salts / sizeof salts[0]; s++) {
			struct crypt_data cd;
			memset(&cd, 0, sizeof cd);
			const char *want = crypt_rn(pws[p], salts[s], &cd, (int)sizeof cd);
			assert_non_null(want);
			char got[KN_APR1_OUT];
			assert_int_equal(kn_apr1_crypt("$1$", pws[p], strlen(pws[p]), salts[s], got), 0);
			if (strcmp(got, want) != 0)
				fail_msg("\"%s\" with %s: got %s, libcrypt %s", pws[p], salts[s], got, want);
		}
}

static struct kn_htpasswd *build2(const char *a, const char *b, struct kn_err *err)
{
	struct kn_htpasswd_src src[2] = {
		{.text = a, .len = strlen(a), .where = "file"},
		{.text = b ? b : "", .len = b ? strlen(b) : 0, .where = "inline"},
	};
	return kn_htpasswd_build(src, b ? 2 : 1, err);
}

static void test_table(void **st)
{
	(void)st;
	struct kn_err err = {{0}};
	struct kn_htpasswd *t = build2("# users\r\n\n  alice:" APR1 "\r\nbob:" BCRYPT_2Y "\ncarol:plain pw\n"
				       "alice:old\n" /* a later line wins */,
				       "bob:" SHA "\ndave:" SHA512C "\n", &err);
	if (!t)
		fail_msg("%s", err.msg);
	assert_int_equal(kn_htpasswd_users(t), 4);
	assert_true(kn_htpasswd_verify(t, "alice", 5, "old", 3));
	assert_false(kn_htpasswd_verify(t, "alice", 5, "s3cret", 6));
	assert_true(kn_htpasswd_verify(t, "bob", 3, "s3cret", 6)); /* the inline {SHA} entry */
	assert_true(kn_htpasswd_verify(t, "carol", 5, "plain pw", 8));
	assert_true(kn_htpasswd_verify(t, "dave", 4, "s3cret", 6));
	assert_false(kn_htpasswd_verify(t, "eve", 3, "s3cret", 6));
	assert_false(kn_htpasswd_verify(t, "dav", 3, "s3cret", 6));
	assert_false(kn_htpasswd_verify(t, "davey", 5, "s3cret", 6));
	kn_htpasswd_free(t);

	struct {
		const char *text, *want;
	} bad[] = {
		{"alice " APR1 "\n", "file line 1: expected user:hash"},
		{"\n:hunter2\n", "file line 2: empty user name"},
		{"alice:\n", "file line 1: empty password hash"},
		{"a:b\nalice:$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA\n",
		 "file line 2: user \"alice\": not a hash libcrypt can check (supported: $2y$/$2b$/$2a$ bcrypt, "
		 "$5$/$6$ SHA-crypt, $y$ yescrypt, $1$ and $apr1$ MD5, {SHA}, {SSHA}, plain text)"},
		{"alice:{MD5}hunter2\n", "file line 1: user \"alice\": an unsupported {scheme} (supported: {SHA}, {SSHA})"},
		{"alice:{SHA}hunter2\n",
		 "file line 1: user \"alice\": a malformed {SHA} hash (base64 of 20 bytes expected)"},
		{"alice:$apr1$hunter2\n", "file line 1: user \"alice\": a malformed $apr1$ hash"},
		{"# nobody\n", "file: no user"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		t = build2(bad[i].text, NULL, &err);
		if (t) {
			kn_htpasswd_free(t);
			fail_msg("case %zu accepted", i);
		}
		if (strcmp(err.msg, bad[i].want) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, err.msg, bad[i].want);
		assert_null(strstr(err.msg, "hunter2"));
	}
}

static void test_cache(void **st)
{
	(void)st;
	struct kn_err err = {{0}};
	struct kn_htpasswd *t = build2("bob:" BCRYPT_2B "\n", NULL, &err);
	assert_non_null(t);
	assert_int_equal(kn_htpasswd_cache_hits(t), 0);
	assert_true(kn_htpasswd_verify(t, "bob", 3, "s3cret", 6));
	assert_int_equal(kn_htpasswd_cache_hits(t), 0);
	for (int i = 0; i < 5; i++)
		assert_true(kn_htpasswd_verify(t, "bob", 3, "s3cret", 6));
	assert_int_equal(kn_htpasswd_cache_hits(t), 5);
	/* failures are never answered from the cache */
	for (int i = 0; i < 3; i++)
		assert_false(kn_htpasswd_verify(t, "bob", 3, "s3creT", 6));
	assert_int_equal(kn_htpasswd_cache_hits(t), 5);
	kn_htpasswd_free(t);
	/* a new table (a reload) starts empty */
	t = build2("bob:" BCRYPT_2B "\n", NULL, &err);
	assert_true(kn_htpasswd_verify(t, "bob", 3, "s3cret", 6));
	assert_int_equal(kn_htpasswd_cache_hits(t), 0);
	kn_htpasswd_free(t);
}

/* ---- the extension ---- */

static void make(struct kn_test_ext *e, const char *yaml)
{
	struct kn_err err = {{0}};
	if (kn_test_ext_make(&kn_extension_basicauth, "basicauth", yaml, e, &err) != 0)
		fail_msg("basicauth %s: %s", yaml, err.msg);
}

static const char *basic(const char *user_pass, char *buf, size_t cap)
{
	memcpy(buf, "Basic ", 6);
	kn_auth_b64_encode(user_pass, strlen(user_pass), buf + 6, cap - 6);
	return buf;
}

static void test_server_verdicts(void **st)
{
	(void)st;
	struct kn_test_ext e;
	char b[256];
	make(&e, "{htpasswd: {inline: \"alice:" APR1 "\\nbob:" SHA "\\nempty:x\"}}");
	assert_int_equal(kn_test_auth(&e, "authorization", basic("alice:s3cret", b, sizeof b)), KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "authorization", basic("bob:s3cret", b, sizeof b)), KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "authorization", basic("bob:wrong", b, sizeof b)), KN_AUTH_DENIED);
	assert_int_equal(kn_test_auth(&e, "authorization", basic("eve:s3cret", b, sizeof b)), KN_AUTH_DENIED);
	assert_int_equal(kn_test_auth(&e, "authorization", basic("alice:s3cret:x", b, sizeof b)), KN_AUTH_DENIED);
	assert_int_equal(kn_test_auth(&e, "authorization", basic("alices3cret", b, sizeof b)), KN_AUTH_MALFORMED);
	assert_int_equal(kn_test_auth(&e, "authorization", "basic YWxpY2U6czNjcmV0"), KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "authorization", "Basic YWxpY2U6czNjcmV0==="), KN_AUTH_MALFORMED);
	assert_int_equal(kn_test_auth(&e, "authorization", "Basic not*base64"), KN_AUTH_MALFORMED);
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer YWxpY2U6czNjcmV0"), KN_AUTH_MALFORMED);
	assert_int_equal(kn_test_auth(&e, "authorization", "Basic"), KN_AUTH_MALFORMED);
	assert_int_equal(kn_test_auth(&e, "authorization", ""), KN_AUTH_MISSING);
	assert_int_equal(kn_test_auth(&e, NULL, NULL), KN_AUTH_MISSING);
	assert_string_equal(e.comp->server_auth->challenge(e.inst), "Basic realm=\"kansatsu\", charset=\"UTF-8\"");
	assert_non_null(e.comp->server_auth->unusable);
	assert_null(e.comp->server_auth->unusable(e.inst));
	assert_string_equal(e.comp->client_auth->unusable(e.inst), "it has htpasswd only (no client_auth)");
	kn_test_ext_free(&e);
}

static void test_client(void **st)
{
	(void)st;
	struct kn_test_ext e;
	char name[KN_AUTH_NAME_MAX], value[KN_AUTH_VALUE_MAX];
	make(&e, "{client_auth: {username: kansatsu, password: \"p@ss:word\"}}");
	assert_int_equal(e.comp->client_auth->header(e.inst, name, sizeof name, value, sizeof value), KN_OK);
	assert_string_equal(name, "authorization");
	assert_string_equal(value, "Basic a2Fuc2F0c3U6cEBzczp3b3Jk"); /* kansatsu:p@ss:word */
	assert_null(e.comp->client_auth->unusable(e.inst));
	assert_string_equal(e.comp->server_auth->unusable(e.inst), "it has client_auth only (no htpasswd)");
	kn_test_ext_free(&e);
}

static void test_bad_configs(void **st)
{
	(void)st;
	struct {
		const char *yaml, *want;
	} bad[] = {
		{"{}", "extensions.basicauth: set htpasswd (to check receivers' clients) or client_auth (for exporters)"},
		{"{htpasswd: {inline: \"a:b\"}, client_auth: {username: u, password: hunter2}}",
		 "extensions.basicauth.client_auth: htpasswd and client_auth are both set; one instance is either a "
		 "server (htpasswd) or a client (client_auth) authenticator"},
		{"{htpasswd: {}}", "extensions.basicauth.htpasswd: set file and/or inline"},
		{"{client_auth: {password: hunter2}}", "extensions.basicauth.client_auth.username: missing"},
		{"{client_auth: {username: \"a:b\", password: hunter2}}",
		 "extensions.basicauth.client_auth.username: must not contain ':'"},
		{"{client_auth: {username: u, password_file: /x}}",
		 "extensions.basicauth.client_auth.password_file: unknown key"},
		{"{htpasswd: {file: /nonexistent/htpasswd}}",
		 "extensions.basicauth.htpasswd.file: cannot open \"/nonexistent/htpasswd\": No such file or directory"},
		{"{htpasswd: {inline: \"alice:{MD4}hunter2\"}}",
		 "extensions.basicauth.htpasswd.inline line 1: user \"alice\": an unsupported {scheme} (supported: "
		 "{SHA}, {SSHA})"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct kn_test_ext e;
		struct kn_err err = {{0}};
		if (kn_test_ext_make(&kn_extension_basicauth, "basicauth", bad[i].yaml, &e, &err) == 0) {
			kn_test_ext_free(&e);
			fail_msg("config %zu accepted", i);
		}
		if (strcmp(err.msg, bad[i].want) != 0)
			fail_msg("config %zu:\n got: %s\nwant: %s", i, err.msg, bad[i].want);
		assert_null(strstr(err.msg, "hunter2"));
	}
}

struct want {
	struct kn_test_ext *e;
	const char *user_pass;
	enum kn_auth_verdict v;
};

static int verdict_is(void *ctx)
{
	struct want *w = ctx;
	char b[256];
	return kn_test_auth(w->e, "authorization", basic(w->user_pass, b, sizeof b)) == w->v;
}

static void wait_verdict(struct kn_test_ext *e, const char *up, enum kn_auth_verdict v)
{
	struct want w = {e, up, v};
	if (!kn_test_wait(verdict_is, &w, WAIT_MS))
		fail_msg("%s did not become %s within %d ms", up, kn_auth_verdict_name(v), WAIT_MS);
}

static void test_file_reload(void **st)
{
	(void)st;
	char path[128], yaml[256], b[256];
	snprintf(path, sizeof path, "%s/htpasswd", tmpdir);
	kn_test_write_file(path, "alice:" APR1 "\nbob:" SHA "\n", 0);
	snprintf(yaml, sizeof yaml, "{htpasswd: {file: %s, inline: \"bob:inline-pw\"}}", path);
	struct kn_test_ext e;
	make(&e, yaml);
	struct kn_err err = {{0}};
	assert_int_equal(e.comp->start(e.inst, &err), KN_OK);
	assert_int_equal(kn_test_auth(&e, "authorization", basic("alice:s3cret", b, sizeof b)), KN_AUTH_OK);
	/* inline wins over the file for bob */
	assert_int_equal(kn_test_auth(&e, "authorization", basic("bob:inline-pw", b, sizeof b)), KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "authorization", basic("bob:s3cret", b, sizeof b)), KN_AUTH_DENIED);

	kn_test_write_file(path, "carol:" SHA512C "\n", 1);
	wait_verdict(&e, "carol:s3cret", KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "authorization", basic("alice:s3cret", b, sizeof b)), KN_AUTH_DENIED);
	assert_int_equal(kn_test_auth(&e, "authorization", basic("bob:inline-pw", b, sizeof b)), KN_AUTH_OK);

	/* a broken file keeps the previous table */
	kn_test_write_file(path, "carol " SHA512C "\n", 0);
	if (!kn_test_wait_metric(e.m, "kansatsu_auth_reloads_total{extension=\"basicauth\",result=\"failed\"}", 1,
				 WAIT_MS))
		fail_msg("the broken file was not counted as a failed reload");
	assert_int_equal(kn_test_auth(&e, "authorization", basic("carol:s3cret", b, sizeof b)), KN_AUTH_OK);
	kn_test_ext_free(&e);
}

static int setup(void **st)
{
	(void)st;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kn-basic-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_md5crypt_matches_libcrypt),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_server_verdicts),
		cmocka_unit_test(test_client),
		cmocka_unit_test(test_bad_configs),
		cmocka_unit_test(test_file_reload),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
