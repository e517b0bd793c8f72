/* SPDX-License-Identifier: Apache-2.0
 * test_bearertokenauth: the bearertokenauth extension on its own (verdicts
 * for right, wrong, missing and malformed credentials; scheme and header
 * settings; the client header), its config errors (each naming its key and
 * never a token), the token file (read at create, rotated on disk both in
 * place and by rename, a broken file keeping the previous tokens, counted in
 * kansatsu_auth_reloads_total), kn_swap under concurrent readers and a
 * writer (use-after-free would show under ASan), and the runtime's
 * kn_extension_find errors for receivers and exporters naming an
 * authenticator. File changes are synchronised by polling the verdict with
 * a deadline, never by sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_clock.h"
#include "collector/core/kn_runtime.h"
#include "extensions/bearertokenauth/kn_ext_bearertokenauth.h"
#include "extensions/common/kn_auth_util.h"
#include "extensions/common/kn_swap.h"
#include "kn_test_auth.h"

#define WAIT_MS 20000

static char tmpdir[64];

static void make(struct kn_test_ext *e, const char *yaml)
{
	struct kn_err err = {{0}};
	if (kn_test_ext_make(&kn_extension_bearertokenauth, "bearertokenauth", yaml, e, &err) != 0)
		fail_msg("bearertokenauth %s: %s", yaml, err.msg);
}

static void client_header(const struct kn_test_ext *e, char *name, char *value)
{
	assert_int_equal(e->comp->client_auth->header(e->inst, name, KN_AUTH_NAME_MAX, value, KN_AUTH_VALUE_MAX),
			 KN_OK);
}

static void test_verdicts(void **st)
{
	(void)st;
	struct kn_test_ext e;
	make(&e, "{token: s3cr3t-T0ken}");
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer s3cr3t-T0ken"), KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "authorization", "bearer   s3cr3t-T0ken  "), KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer s3cr3t-T0keN"), KN_AUTH_DENIED);
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer s3cr3t-T0ken2"), KN_AUTH_DENIED);
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer s"), KN_AUTH_DENIED);
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer x3cr3t-T0ken"), KN_AUTH_DENIED);
	assert_int_equal(kn_test_auth(&e, "authorization", "Basic s3cr3t-T0ken"), KN_AUTH_MALFORMED);
	assert_int_equal(kn_test_auth(&e, "authorization", "s3cr3t-T0ken"), KN_AUTH_MALFORMED);
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer"), KN_AUTH_MALFORMED);
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer   "), KN_AUTH_MALFORMED);
	assert_int_equal(kn_test_auth(&e, "authorization", ""), KN_AUTH_MISSING);
	assert_int_equal(kn_test_auth(&e, "x-other", "Bearer s3cr3t-T0ken"), KN_AUTH_MISSING);
	assert_int_equal(kn_test_auth(&e, NULL, NULL), KN_AUTH_MISSING);
	assert_string_equal(e.comp->server_auth->challenge(e.inst), "Bearer realm=\"kansatsu\"");
	char name[KN_AUTH_NAME_MAX], value[KN_AUTH_VALUE_MAX];
	client_header(&e, name, value);
	assert_string_equal(name, "authorization");
	assert_string_equal(value, "Bearer s3cr3t-T0ken");
	/* a buffer too small gets nothing rather than a cut token */
	assert_int_equal(e.comp->client_auth->header(e.inst, name, sizeof name, value, 10), KN_ERR);
	kn_test_ext_free(&e);
}

static void test_scheme_header_tokens(void **st)
{
	(void)st;
	struct kn_test_ext e;
	char name[KN_AUTH_NAME_MAX], value[KN_AUTH_VALUE_MAX];
	make(&e, "{scheme: \"\", header: X-Api-Key, tokens: [first-one, second-one]}");
	assert_int_equal(kn_test_auth(&e, "x-api-key", "first-one"), KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "x-api-key", "second-one"), KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "x-api-key", "Bearer first-one"), KN_AUTH_DENIED);
	assert_int_equal(kn_test_auth(&e, "authorization", "first-one"), KN_AUTH_MISSING);
	client_header(&e, name, value);
	assert_string_equal(name, "x-api-key");
	assert_string_equal(value, "first-one");
	kn_test_ext_free(&e);

	make(&e, "{scheme: Token, token: abc}");
	assert_int_equal(kn_test_auth(&e, "authorization", "Token abc"), KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer abc"), KN_AUTH_MALFORMED);
	assert_string_equal(e.comp->server_auth->challenge(e.inst), "Token realm=\"kansatsu\"");
	client_header(&e, name, value);
	assert_string_equal(value, "Token abc");
	kn_test_ext_free(&e);
}

struct bad {
	const char *yaml, *message;
};

static const struct bad bad_configs[] = {
	{"{}", "extensions.bearertokenauth: set token, tokens or filename"},
	{"{token: hunter2-secret, filename: /tmp/x}",
	 "extensions.bearertokenauth.filename: token and filename are both set; use one"},
	{"{tokens: [hunter2-secret], filename: /tmp/x}",
	 "extensions.bearertokenauth.filename: tokens and filename are both set; use one"},
	{"{token: hunter2-secret, tokens: [b]}",
	 "extensions.bearertokenauth.tokens: token and tokens are both set; use one"},
	{"{token: \"hunter2 secret\"}",
	 "extensions.bearertokenauth.token: the token holds a space, a control character or a non-ASCII byte"},
	{"{token: \"\"}", "extensions.bearertokenauth.token: the token is empty"},
	{"{tokens: [ok, \"hunter2\\tsecret\"]}",
	 "extensions.bearertokenauth.tokens[1]: the token holds a space, a control character or a non-ASCII byte"},
	{"{token: hunter2-secret, header: \"bad header\"}",
	 "extensions.bearertokenauth.header: \"bad header\" is not a header name"},
	{"{token: hunter2-secret, scheme: \"Be arer\"}",
	 "extensions.bearertokenauth.scheme: \"Be arer\" is not a scheme name (printable, no spaces, < 64 bytes)"},
	{"{token: hunter2-secret, file_retry: {enabled: true}}", "extensions.bearertokenauth.file_retry: unknown key"},
	{"{filename: /nonexistent/kansatsu-token}",
	 "extensions.bearertokenauth.filename: cannot open \"/nonexistent/kansatsu-token\": No such file or directory"},
};

static void test_bad_configs(void **st)
{
	(void)st;
	for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
		struct kn_test_ext e;
		struct kn_err err = {{0}};
		if (kn_test_ext_make(&kn_extension_bearertokenauth, "bearertokenauth", bad_configs[i].yaml, &e,
				     &err) == 0) {
			kn_test_ext_free(&e);
			fail_msg("config %zu accepted: %s", i, bad_configs[i].yaml);
		}
		if (strncmp(err.msg, bad_configs[i].message, strlen(bad_configs[i].message)) != 0)
			fail_msg("config %zu:\n got: %s\nwant: %s", i, err.msg, bad_configs[i].message);
		assert_null(strstr(err.msg, "hunter2"));
	}
}

/* ---- the token file ---- */

struct want {
	struct kn_test_ext *e;
	const char *value;
	enum kn_auth_verdict v;
};

static int verdict_is(void *ctx)
{
	struct want *w = ctx;
	return kn_test_auth(w->e, "authorization", w->value) == w->v;
}

static void wait_verdict(struct kn_test_ext *e, const char *value, enum kn_auth_verdict v)
{
	struct want w = {e, value, v};
	if (!kn_test_wait(verdict_is, &w, WAIT_MS))
		fail_msg("\"%s\" did not become %s within %d ms", value, kn_auth_verdict_name(v), WAIT_MS);
}

static void test_token_file_rotation(void **st)
{
	(void)st;
	char path[128], yaml[256], name[KN_AUTH_NAME_MAX], value[KN_AUTH_VALUE_MAX];
	snprintf(path, sizeof path, "%s/token", tmpdir);
	kn_test_write_file(path, "\n  first-token  \r\n\nspare-token\n", 0);
	snprintf(yaml, sizeof yaml, "{filename: %s}", path);
	struct kn_test_ext e;
	make(&e, yaml);
	struct kn_err err = {{0}};
	/* read at create: usable before start */
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer first-token"), KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer spare-token"), KN_AUTH_OK);
	client_header(&e, name, value);
	assert_string_equal(value, "Bearer first-token");
	assert_int_equal(e.comp->start(e.inst, &err), KN_OK);

	/* in place (truncate + write) */
	kn_test_write_file(path, "second-token\n", 0);
	wait_verdict(&e, "Bearer second-token", KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer first-token"), KN_AUTH_DENIED);
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer spare-token"), KN_AUTH_DENIED);
	client_header(&e, name, value);
	assert_string_equal(value, "Bearer second-token");

	/* by rename (how Kubernetes and most tools replace a file) */
	kn_test_write_file(path, "third-token", 1);
	wait_verdict(&e, "Bearer third-token", KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer second-token"), KN_AUTH_DENIED);
#define RELOADS(r) "kansatsu_auth_reloads_total{extension=\"bearertokenauth\",result=\"" r "\"}"
	assert_true(kn_test_wait_metric(e.m, RELOADS("ok"), 2, WAIT_MS));

	/* a file with no token (half written, or emptied) keeps the previous ones */
	kn_test_write_file(path, "   \n", 1);
	if (!kn_test_wait_metric(e.m, RELOADS("failed"), 1, WAIT_MS))
		fail_msg("the empty file was not counted as a failed reload");
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer third-token"), KN_AUTH_OK);
	/* removed: still the previous ones; back: picked up */
	assert_int_equal(unlink(path), 0);
	assert_true(kn_test_wait_metric(e.m, RELOADS("failed"), 2, WAIT_MS));
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer third-token"), KN_AUTH_OK);
	kn_test_write_file(path, "fourth-token\n", 1);
	wait_verdict(&e, "Bearer fourth-token", KN_AUTH_OK);
	assert_int_equal(kn_test_auth(&e, "authorization", "Bearer third-token"), KN_AUTH_DENIED);

	/* shutdown stops the watching: a later change is not picked up, and a
	 * second shutdown is harmless */
	e.comp->shutdown(e.inst, 0);
	e.comp->shutdown(e.inst, 0);
	kn_test_ext_free(&e);
}

static void test_token_file_errors(void **st)
{
	(void)st;
	char path[128], yaml[256];
	snprintf(path, sizeof path, "%s/bad-token", tmpdir);
	kn_test_write_file(path, "good\nhunter2 with space\n", 0);
	snprintf(yaml, sizeof yaml, "{filename: %s}", path);
	struct kn_test_ext e;
	struct kn_err err = {{0}};
	assert_int_equal(kn_test_ext_make(&kn_extension_bearertokenauth, "bearertokenauth", yaml, &e, &err), -1);
	char want[300];
	snprintf(want, sizeof want,
		 "extensions.bearertokenauth.filename: \"%s\" line 2: the token holds a space, a control character "
		 "or a non-ASCII byte",
		 path);
	assert_string_equal(err.msg, want);
	kn_test_write_file(path, "\n\n", 0);
	assert_int_equal(kn_test_ext_make(&kn_extension_bearertokenauth, "bearertokenauth", yaml, &e, &err), -1);
	snprintf(want, sizeof want, "extensions.bearertokenauth.filename: \"%s\" holds no token", path);
	assert_string_equal(err.msg, want);
	/* removed between create and start: start fails naming the key */
	kn_test_write_file(path, "tok\n", 0);
	make(&e, yaml);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(e.comp->start(e.inst, &err), KN_ERR);
	assert_non_null(strstr(err.msg, "extensions.bearertokenauth.filename: cannot open"));
	kn_test_ext_free(&e);
}

/* ---- kn_swap: readers never see a freed object ---- */

struct box {
	atomic_int alive;
	uint64_t gen;
};

struct swap_run {
	struct kn_swap s;
	atomic_int stop;
	atomic_uint_fast64_t reads, bad;
};

static void *reader(void *arg)
{
	struct swap_run *r = arg;
	while (!atomic_load(&r->stop)) {
		unsigned t = kn_swap_enter(&r->s);
		struct box *b = kn_swap_get(&r->s);
		if (!atomic_load(&b->alive))
			atomic_fetch_add(&r->bad, 1);
		volatile uint64_t g = b->gen; /* a freed box would be a use-after-free (ASan) */
		(void)g;
		kn_swap_exit(&r->s, t);
		atomic_fetch_add(&r->reads, 1);
		sched_yield(); /* two cores: leave the writer some */
	}
	return NULL;
}

static void test_swap_concurrent(void **st)
{
	(void)st;
	struct swap_run r;
	struct box *first = calloc(1, sizeof *first);
	atomic_init(&first->alive, 1);
	kn_swap_init(&r.s, first);
	atomic_init(&r.stop, 0);
	atomic_init(&r.reads, 0);
	atomic_init(&r.bad, 0);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &r), 0);
	for (uint64_t gen = 1; gen <= 500; gen++) {
		/* interleave: let the readers in between two replacements */
		uint_fast64_t seen = atomic_load(&r.reads);
		uint64_t end = kn_now_ns() + 10 * KN_NS_PER_SEC;
		while (atomic_load(&r.reads) < seen + 4 && kn_now_ns() < end)
			sched_yield();
		struct box *b = calloc(1, sizeof *b);
		atomic_init(&b->alive, 1);
		b->gen = gen;
		struct box *old = kn_swap_replace(&r.s, b);
		atomic_store(&old->alive, 0);
		free(old);
	}
	atomic_store(&r.stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&r.bad), 0);
	assert_true(atomic_load(&r.reads) > 0);
	struct box *last = kn_swap_fini(&r.s);
	assert_int_equal(last->gen, 500);
	free(last);
}

/* ---- helpers ---- */

static void test_util(void **st)
{
	(void)st;
	unsigned char out[64];
	char enc[64];
	assert_int_equal(kn_auth_b64_decode("dXNlcjpwYXNz", 12, out, sizeof out), 9);
	assert_memory_equal(out, "user:pass", 9);
	assert_int_equal(kn_auth_b64_decode("YQ==", 4, out, sizeof out), 1);
	assert_int_equal(kn_auth_b64_decode("YWI=", 4, out, sizeof out), 2);
	assert_int_equal(kn_auth_b64_decode("YQ=a", 4, out, sizeof out), -1);
	assert_int_equal(kn_auth_b64_decode("Y===", 4, out, sizeof out), -1);
	assert_int_equal(kn_auth_b64_decode("dXNlcj", 6, out, sizeof out), -1);
	assert_int_equal(kn_auth_b64_decode("dXN*cjpw", 8, out, sizeof out), -1);
	assert_int_equal(kn_auth_b64_encode("user:pass", 9, enc, sizeof enc), 12);
	assert_string_equal(enc, "dXNlcjpwYXNz");
	const char *cred;
	size_t cl;
	assert_true(kn_auth_split("BASIC\t abc ", 11, "Basic", &cred, &cl));
	assert_int_equal(cl, 3);
	assert_memory_equal(cred, "abc", 3);
	assert_false(kn_auth_split("Basicabc", 8, "Basic", &cred, &cl));
	/* equal digests of different inputs never; the comparison sees only digests */
	unsigned char a[KN_AUTH_DIGEST], b[KN_AUTH_DIGEST];
	kn_auth_digest("a", 1, a);
	kn_auth_digest("a", 1, b);
	assert_true(kn_auth_digest_eq(a, b));
	kn_auth_digest("b", 1, b);
	assert_false(kn_auth_digest_eq(a, b));
}

/* ---- the runtime: finding authenticators ---- */

static struct kn_runtime *runtime_from(const char *yaml, struct kn_err *err)
{
	struct kn_cnode *root = NULL;
	if (kn_config_parse(yaml, strlen(yaml), "test", &root, err) != KN_OK)
		return NULL;
	struct kn_runtime *rt = kn_runtime_create(root, err);
	kn_cnode_free(root);
	return rt;
}

#define EXT "extensions: {bearertokenauth: {token: hunter2}, bearertokenauth/unused: {token: x}, " \
	    "basicauth/client: {client_auth: {username: u, password: hunter2}}, "                      \
	    "basicauth/server: {htpasswd: {inline: \"u:hunter2\"}}}\n"
#define SVC(recv_exp) "service: {extensions: [bearertokenauth, basicauth/client, basicauth/server], " \
		      "pipelines: {traces: " recv_exp "}}\n"
#define PIPE SVC("{receivers: [otlp], exporters: [debug]}")

static const struct bad runtime_bad[] = {
	{"receivers: {otlp: {protocols: {grpc: {endpoint: \"127.0.0.1:0\", auth: {authenticator: nope}}}}}\n"
	 "exporters: {debug: {}}\n" EXT PIPE,
	 "receivers.otlp.protocols.grpc.auth.authenticator: extension \"nope\" is not configured under extensions"},
	{"receivers: {otlp: {protocols: {http: {endpoint: \"127.0.0.1:0\", auth: {authenticator: "
	 "bearertokenauth/unused}}}}}\nexporters: {debug: {}}\n" EXT PIPE,
	 "receivers.otlp.protocols.http.auth.authenticator: extension \"bearertokenauth/unused\" is configured "
	 "but not listed in service.extensions"},
	{"receivers: {otlp: {protocols: {http: {endpoint: \"127.0.0.1:0\", auth: {authenticator: "
	 "basicauth/client}}}}}\nexporters: {debug: {}}\n" EXT PIPE,
	 "receivers.otlp.protocols.http.auth.authenticator: extension \"basicauth/client\" is not a server "
	 "authenticator: it has client_auth only (no htpasswd)"},
	{"receivers: {otlp: {protocols: {http: {endpoint: \"127.0.0.1:0\", auth: {}}}}}\n"
	 "exporters: {debug: {}}\n" EXT PIPE,
	 "receivers.otlp.protocols.http.auth.authenticator: missing"},
	{"receivers: {otlp: {protocols: {http: {endpoint: \"127.0.0.1:0\", auth: {authenticator: x, "
	 "request_params: [a]}}}}}\nexporters: {debug: {}}\n" EXT PIPE,
	 "receivers.otlp.protocols.http.auth.request_params: unknown key"},
	{"receivers: {otlp: {protocols: {http: {endpoint: \"127.0.0.1:0\"}}}}\n"
	 "exporters: {otlp: {endpoint: \"127.0.0.1:4317\", tls: {insecure: true}, auth: {authenticator: "
	 "basicauth/server}}}\n" EXT SVC("{receivers: [otlp], exporters: [otlp]}"),
	 "exporters.otlp.auth.authenticator: extension \"basicauth/server\" is not a client authenticator: it has "
	 "htpasswd only (no client_auth)"},
	{"receivers: {otlp: {protocols: {http: {endpoint: \"127.0.0.1:0\"}}}}\n"
	 "exporters: {otlphttp: {endpoint: \"http://127.0.0.1:4318\", auth: {authenticator: missing}}}\n" EXT
		 SVC("{receivers: [otlp], exporters: [otlphttp]}"),
	 "exporters.otlphttp.auth.authenticator: extension \"missing\" is not configured under extensions"},
	{"receivers: {otlp: {protocols: {http: {endpoint: \"127.0.0.1:0\"}}}}\n"
	 "exporters: {loadbalancing: {protocol: {otlp: {tls: {insecure: true}, auth: {authenticator: "
	 "bearertokenauth/unused}}}, resolver: {static: {hostnames: [\"127.0.0.1:9\"]}}}}\n" EXT
		 SVC("{receivers: [otlp], exporters: [loadbalancing]}"),
	 "exporters.loadbalancing.protocol.otlp.auth.authenticator: extension \"bearertokenauth/unused\" is "
	 "configured but not listed in service.extensions"},
};

static void test_runtime_find(void **st)
{
	(void)st;
	for (size_t i = 0; i < sizeof runtime_bad / sizeof runtime_bad[0]; i++) {
		struct kn_err err = {{0}};
		struct kn_runtime *rt = runtime_from(runtime_bad[i].yaml, &err);
		if (rt) {
			kn_runtime_destroy(rt);
			fail_msg("config %zu accepted; wanted: %s", i, runtime_bad[i].message);
		}
		if (strcmp(err.msg, runtime_bad[i].message) != 0)
			fail_msg("config %zu:\n got: %s\nwant: %s", i, err.msg, runtime_bad[i].message);
		assert_null(strstr(err.msg, "hunter2"));
	}
	/* and the good one: every place an authenticator can be named */
	struct kn_err err = {{0}};
	struct kn_runtime *rt = runtime_from(
		"receivers: {otlp: {protocols: {grpc: {endpoint: \"127.0.0.1:0\", auth: {authenticator: "
		"bearertokenauth}}, http: {endpoint: \"127.0.0.1:0\", auth: {authenticator: basicauth/server}}}}}\n"
		"exporters: {otlp: {endpoint: \"127.0.0.1:4317\", tls: {insecure: true}, auth: {authenticator: "
		"bearertokenauth}}, otlphttp: {endpoint: \"http://127.0.0.1:4318\", auth: {authenticator: "
		"basicauth/client}}, loadbalancing: {protocol: {otlp: {tls: {insecure: true}, auth: "
		"{authenticator: bearertokenauth}}}, resolver: {static: {hostnames: [\"127.0.0.1:9\"]}}}}\n" EXT
			SVC("{receivers: [otlp], exporters: [otlp, otlphttp, loadbalancing]}"),
		&err);
	if (!rt)
		fail_msg("good config: %s", err.msg);
	kn_runtime_destroy(rt);
}

static int setup(void **st)
{
	(void)st;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kn-bearer-XXXXXX");
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
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_scheme_header_tokens),
		cmocka_unit_test(test_bad_configs),
		cmocka_unit_test(test_token_file_rotation),
		cmocka_unit_test(test_token_file_errors),
		cmocka_unit_test(test_swap_concurrent),
		cmocka_unit_test(test_util),
		cmocka_unit_test(test_runtime_find),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
