/* SPDX-License-Identifier: Apache-2.0
 * Unit tests of the config tree (paths, lines, nulls, quoting, anchors,
 * duplicate keys, libyaml errors) and of typed tables (defaults, every field
 * type, nested sections with present flags, custom fields, and the exact
 * error message for each kind of mistake). Run under ASan to check that
 * kn_cfg_free and kn_cnode_free release everything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector/config/kn_config.h"

static const char otel_yaml[] =
	"# an OpenTelemetry Collector configuration\n"            /* 1 */
	"receivers:\n"                                             /* 2 */
	"  otlp:\n"                                                /* 3 */
	"    protocols:\n"                                         /* 4 */
	"      grpc:\n"                                            /* 5 */
	"        endpoint: 0.0.0.0:4317\n"                         /* 6 */
	"      http:\n"                                            /* 7 */
	"processors:\n"                                            /* 8 */
	"  batch: ~\n"                                             /* 9 */
	"  tail_sampling:\n"                                       /* 10 */
	"    decision_wait: 10s\n"                                 /* 11 */
	"    policies:\n"                                          /* 12 */
	"      - name: errors\n"                                   /* 13 */
	"        type: status_code\n"                              /* 14 */
	"        status_code: {status_codes: [ERROR]}\n"           /* 15 */
	"      - {name: slow, type: latency, latency: {threshold_ms: 500}}\n" /* 16 */
	"exporters:\n"                                             /* 17 */
	"  otlp/2:\n"                                              /* 18 */
	"    endpoint: \"backend:4317\"\n"                         /* 19 */
	"    headers:\n"                                           /* 20 */
	"      x.tenant: '123'\n"                                  /* 21 */
	"  debug: null\n"                                          /* 22 */
	"service:\n"                                               /* 23 */
	"  pipelines:\n"                                           /* 24 */
	"    traces:\n"                                            /* 25 */
	"      receivers: [otlp]\n"                                /* 26 */
	"      processors: [tail_sampling, batch]\n"               /* 27 */
	"      exporters:\n"                                       /* 28 */
	"        - otlp/2\n"                                       /* 29 */
	"        - debug\n";                                       /* 30 */

static struct kn_cnode *parse_ok(const char *text)
{
	struct kn_cnode *root = NULL;
	struct kn_err err = { "" };
	if (kn_config_parse(text, strlen(text), "test.yaml", &root, &err) != KN_OK)
		fail_msg("parse failed: %s", err.msg);
	assert_non_null(root);
	return root;
}

static void parse_fails(const char *text, const char *want)
{
	struct kn_cnode *root = (void *)1;
	struct kn_err err = { "" };
	assert_int_equal(kn_config_parse(text, strlen(text), "test.yaml", &root, &err), KN_ERR);
	assert_null(root);
	assert_string_equal(err.msg, want);
}

/* Walks a dotted path with [i] steps, for the tests only. */
static const struct kn_cnode *walk(const struct kn_cnode *n, const char *const *steps)
{
	for (; *steps && n; steps++) {
		if ((*steps)[0] == '[') {
			size_t i = (size_t)atoi(*steps + 1);
			n = (n->type == KN_CNODE_SEQ && i < n->n) ? &n->children[i] : NULL;
		} else {
			n = kn_cnode_get(n, *steps);
		}
	}
	return n;
}

#define WALK(root, ...) walk(root, (const char *const[]){ __VA_ARGS__, NULL })

static void test_tree_paths_and_lines(void **state)
{
	(void)state;
	struct kn_cnode *root = parse_ok(otel_yaml);
	const struct kn_cnode *n;

	assert_int_equal(root->type, KN_CNODE_MAP);
	assert_string_equal(root->path, "");
	assert_int_equal(root->n, 4);
	assert_string_equal(root->children[3].key, "service");

	n = WALK(root, "receivers", "otlp", "protocols", "grpc", "endpoint");
	assert_non_null(n);
	assert_int_equal(n->type, KN_CNODE_SCALAR);
	assert_string_equal(n->value, "0.0.0.0:4317");
	assert_string_equal(n->key, "endpoint");
	assert_string_equal(n->path, "receivers.otlp.protocols.grpc.endpoint");
	assert_int_equal(n->line, 6);
	assert_int_equal(n->quoted, 0);

	n = WALK(root, "receivers", "otlp", "protocols", "http");
	assert_non_null(n);
	assert_int_equal(n->type, KN_CNODE_NULL);
	assert_string_equal(n->path, "receivers.otlp.protocols.http");
	assert_int_equal(n->line, 7);

	n = WALK(root, "processors", "batch");
	assert_int_equal(n->type, KN_CNODE_NULL);
	assert_int_equal(WALK(root, "exporters", "debug")->type, KN_CNODE_NULL);

	n = WALK(root, "processors", "tail_sampling", "policies", "[1]", "latency", "threshold_ms");
	assert_non_null(n);
	assert_string_equal(n->path, "processors.tail_sampling.policies[1].latency.threshold_ms");
	assert_string_equal(n->value, "500");
	assert_int_equal(n->line, 16);
	n = WALK(root, "processors", "tail_sampling", "policies", "[0]", "status_code", "status_codes", "[0]");
	assert_string_equal(n->path, "processors.tail_sampling.policies[0].status_code.status_codes[0]");
	assert_null(n->key);
	assert_int_equal(n->line, 15);

	/* keys with '/' and '.' are kept verbatim */
	n = WALK(root, "exporters", "otlp/2", "endpoint");
	assert_string_equal(n->path, "exporters.otlp/2.endpoint");
	assert_int_equal(n->quoted, 1);
	assert_int_equal(n->line, 19);
	n = WALK(root, "exporters", "otlp/2", "headers", "x.tenant");
	assert_string_equal(n->path, "exporters.otlp/2.headers.x.tenant");
	assert_string_equal(n->value, "123");
	assert_int_equal(n->quoted, 1);

	n = WALK(root, "service", "pipelines", "traces", "exporters");
	assert_int_equal(n->type, KN_CNODE_SEQ);
	assert_int_equal(n->n, 2);
	assert_string_equal(n->children[1].path, "service.pipelines.traces.exporters[1]");
	assert_string_equal(n->children[1].value, "debug");
	assert_int_equal(n->children[1].line, 30);
	n = WALK(root, "service", "pipelines", "traces", "receivers");
	assert_string_equal(n->children[0].path, "service.pipelines.traces.receivers[0]");
	assert_int_equal(n->children[0].line, 26);

	assert_null(kn_cnode_get(root, "extensions"));
	assert_null(kn_cnode_get(n, "x")); /* not a map */
	assert_null(kn_cnode_get(NULL, "x"));
	kn_cnode_free(root);
	kn_cnode_free(NULL);
}

static void test_tree_scalars(void **state)
{
	(void)state;
	struct kn_cnode *root = parse_ok("a: ~\nb: null\nc: NULL\nd: 'null'\ne: \"\"\nf: ''\n"
					 "g: |\n  two\n  lines\n");
	assert_int_equal(kn_cnode_get(root, "a")->type, KN_CNODE_NULL);
	assert_int_equal(kn_cnode_get(root, "b")->type, KN_CNODE_NULL);
	assert_int_equal(kn_cnode_get(root, "c")->type, KN_CNODE_NULL);
	const struct kn_cnode *d = kn_cnode_get(root, "d");
	assert_int_equal(d->type, KN_CNODE_SCALAR);
	assert_string_equal(d->value, "null");
	assert_int_equal(d->quoted, 1);
	assert_int_equal(kn_cnode_get(root, "e")->type, KN_CNODE_SCALAR);
	assert_string_equal(kn_cnode_get(root, "e")->value, "");
	assert_int_equal(kn_cnode_get(root, "f")->type, KN_CNODE_SCALAR);
	assert_string_equal(kn_cnode_get(root, "g")->value, "two\nlines\n");
	assert_int_equal(kn_cnode_get(root, "g")->quoted, 1);
	kn_cnode_free(root);

	/* empty documents are a null root */
	root = parse_ok("");
	assert_int_equal(root->type, KN_CNODE_NULL);
	assert_string_equal(root->path, "");
	kn_cnode_free(root);
	root = parse_ok("# only a comment\n");
	assert_int_equal(root->type, KN_CNODE_NULL);
	kn_cnode_free(root);
	root = parse_ok("[1, 2]");
	assert_int_equal(root->type, KN_CNODE_SEQ);
	assert_string_equal(root->children[1].path, "[1]");
	kn_cnode_free(root);
}

static void test_tree_anchors(void **state)
{
	(void)state;
	struct kn_cnode *root = parse_ok("base: &b\n  endpoint: x:1\n  tls: {insecure: true}\n"
					 "exporters:\n  otlp/a: *b\n  otlp/b: *b\n");
	const struct kn_cnode *n = WALK(root, "exporters", "otlp/b", "tls", "insecure");
	assert_non_null(n);
	assert_string_equal(n->path, "exporters.otlp/b.tls.insecure");
	assert_string_equal(n->value, "true");
	n = WALK(root, "exporters", "otlp/a", "endpoint");
	assert_string_equal(n->path, "exporters.otlp/a.endpoint");
	kn_cnode_free(root);

	parse_fails("a: *nope\n", "test.yaml: line 1: found undefined alias");
	parse_fails("a: &x\n  b: *x\n", "test.yaml: line 1: a.b: alias refers to a node that contains it");
	parse_fails("base: &b {x: 1}\nc:\n  <<: *b\n", "test.yaml: line 3: c: merge keys (<<) are not supported");

	/* an alias bomb stops at the node budget */
	char bomb[2048];
	size_t k = (size_t)snprintf(bomb, sizeof bomb, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 9; i++)
		k += (size_t)snprintf(bomb + k, sizeof bomb - k,
				      "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
				      i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	struct kn_cnode *r = (void *)1;
	struct kn_err err;
	assert_int_equal(kn_config_parse(bomb, k, "bomb.yaml", &r, &err), KN_ERR);
	assert_null(r);
	assert_non_null(strstr(err.msg, "more than 100000 nodes (aliases included); refusing to expand"));
}

static void test_tree_errors(void **state)
{
	(void)state;
	parse_fails("receivers:\n  otlp:\n    protocols: {}\n  otlp: {}\n",
		    "test.yaml: line 4: receivers.otlp: duplicate key (first at line 2)");
	parse_fails("a: 1\nb: 2\nc: 3\nb: 4\na: 5\n", "test.yaml: line 4: b: duplicate key (first at line 2)");
	parse_fails("x:\n  [1, 2]: v\n", "test.yaml: line 2: x: map keys must be scalars");
	parse_fails("a: 1\n---\nb: 2\n", "test.yaml: line 3: only one YAML document is allowed");
	parse_fails("a: b: c\n", "test.yaml: line 1: mapping values are not allowed in this context");
	parse_fails("a:\n  b: 1\n c: 2\n",
		    "test.yaml: line 3: did not find expected key (while parsing a block mapping at line 1)");
	parse_fails("a: \"\\0\"\n", "test.yaml: line 1: a: NUL character in value");

	setenv("KN_T_PORT", "4317", 1);
	unsetenv("KN_T_NOPE");
	parse_fails("a: 1\nb: ${env:KN_T_NOPE}\n", "test.yaml: line 2: environment variable \"KN_T_NOPE\" is not set");
	struct kn_cnode *root = parse_ok("e: \"localhost:${env:KN_T_PORT}\"\nd: $$HOME\n");
	assert_string_equal(kn_cnode_get(root, "e")->value, "localhost:4317");
	assert_string_equal(kn_cnode_get(root, "d")->value, "$HOME");
	kn_cnode_free(root);

	/* valid YAML nested 100 deep stops at the depth limit */
	char deep[400];
	for (int i = 0; i < 100; i++) {
		deep[i] = '[';
		deep[100 + i] = ']';
	}
	deep[200] = '\0';
	struct kn_cnode *r = (void *)1;
	struct kn_err err;
	assert_int_equal(kn_config_parse(deep, 200, "deep.yaml", &r, &err), KN_ERR);
	assert_null(r);
	assert_string_equal(err.msg, "deep.yaml: line 1: nested deeper than 64 levels");
	/* 64 levels are fine */
	memset(deep, 0, sizeof deep);
	for (int i = 0; i < 64; i++) {
		deep[i] = '[';
		deep[64 + i] = ']';
	}
	r = parse_ok(deep);
	kn_cnode_free(r);
	/* aliases can nest deeper than the text does: caught while copying */
	char text[2048];
	size_t k = (size_t)snprintf(text, sizeof text, "a0: &a0 [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n");
	k += (size_t)snprintf(text + k, sizeof text - k, "a1: &a1 [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n");
	k += (size_t)snprintf(text + k, sizeof text - k, "a2: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n");
	r = (void *)1;
	assert_int_equal(kn_config_parse(text, k, "deep.yaml", &r, &err), KN_ERR);
	assert_null(r);
	assert_true(strncmp(err.msg, "deep.yaml: line 1: a2[0][0][0]", 30) == 0);
	assert_non_null(strstr(err.msg, "[0]: nested deeper than 64 levels"));
}

static void test_load_file(void **state)
{
	(void)state;
	char path[] = "/tmp/kn_test_config_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "receivers:\n  otlp:\n    endpoint: x: y\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);

	struct kn_cnode *root = (void *)1;
	struct kn_err err;
	char want[256];
	assert_int_equal(kn_config_load_file(path, &root, &err), KN_ERR);
	assert_null(root);
	snprintf(want, sizeof want, "%s: line 3: mapping values are not allowed in this context", path);
	assert_string_equal(err.msg, want);

	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(otel_yaml, f);
	fclose(f);
	assert_int_equal(kn_config_load_file(path, &root, &err), KN_OK);
	assert_string_equal(WALK(root, "exporters", "otlp/2", "endpoint")->value, "backend:4317");
	kn_cnode_free(root);
	unlink(path);

	assert_int_equal(kn_config_load_file(path, &root, &err), KN_ERR);
	snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
	assert_string_equal(err.msg, want);
}

/* ---- tables ---- */

struct ep {
	char *host;
	uint16_t port;
};

static int ep_parse(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	struct ep **e = dst;
	char host[256];
	uint16_t port;
	if (node->type != KN_CNODE_SCALAR)
		return kn_errf(err, "%s: expected host:port", node->path);
	if (kn_parse_endpoint(node->value, node->path, host, sizeof host, &port, err) != KN_OK)
		return KN_ERR;
	*e = calloc(1, sizeof **e);
	if (!*e || !((*e)->host = strdup(host)))
		return kn_errf(err, "%s: out of memory", node->path);
	(*e)->port = port;
	return KN_OK;
}

static void ep_free(void *dst)
{
	struct ep **e = dst;
	if (*e)
		free((*e)->host);
	free(*e);
	*e = NULL;
}

struct tls_cfg {
	char *cert_file;
	int insecure;
};

struct grpc_cfg {
	struct ep *endpoint;
	uint64_t max_recv_msg_size_mib;
	struct tls_cfg tls;
	int tls_present;
	struct kn_strmap headers;
};

struct sample {
	char *name;
	char *compression;
	int enabled;
	int64_t level;
	uint64_t queue_size;
	double ratio;
	uint64_t timeout_ns;
	struct kn_strlist receivers;
	struct kn_strlist tags;
	struct kn_strmap attributes;
	struct grpc_cfg grpc;
	int grpc_present;
	struct grpc_cfg http;
	int http_present;
};

static const char *const compressions[] = { "gzip", "zstd", "none", NULL };

static const struct kn_cfg_field tls_fields[] = {
	{ .key = "cert_file", .type = KN_F_STR, .off = offsetof(struct tls_cfg, cert_file), .def = NULL, .help = "certificate", .required = 1 },
	{ .key = "insecure", .type = KN_F_BOOL, .off = offsetof(struct tls_cfg, insecure), .def = "false", .help = "no TLS" },
	KN_CFG_END,
};

static const struct kn_cfg_field grpc_fields[] = {
	{ .key = "endpoint", .type = KN_F_CUSTOM, .off = offsetof(struct grpc_cfg, endpoint), .def = "0.0.0.0:4317", .help = "listen address", .parse = ep_parse, .free = ep_free },
	{ .key = "max_recv_msg_size_mib", .type = KN_F_UINT, .off = offsetof(struct grpc_cfg, max_recv_msg_size_mib), .def = "4", .help = "max message", .min = 1, .max = 1024 },
	{ .key = "tls", .type = KN_F_SUB, .off = offsetof(struct grpc_cfg, tls), .def = NULL, .help = "TLS", .sub = tls_fields, .present_off = offsetof(struct grpc_cfg, tls_present) },
	{ .key = "headers", .type = KN_F_STRMAP, .off = offsetof(struct grpc_cfg, headers), .def = "{x-default: on}", .help = "headers" },
	KN_CFG_END,
};

static const struct kn_cfg_field sample_fields[] = {
	{ .key = "name", .type = KN_F_STR, .off = offsetof(struct sample, name), .def = NULL, .help = "name", .required = 1 },
	{ .key = "compression", .type = KN_F_STR, .off = offsetof(struct sample, compression), .def = "gzip", .help = "codec", .choices = compressions },
	{ .key = "enabled", .type = KN_F_BOOL, .off = offsetof(struct sample, enabled), .def = "true", .help = "on" },
	{ .key = "level", .type = KN_F_INT, .off = offsetof(struct sample, level), .def = "-3", .help = "level", .min = -10, .max = 10 },
	{ .key = "queue_size", .type = KN_F_UINT, .off = offsetof(struct sample, queue_size), .def = "1000", .help = "queue" },
	{ .key = "ratio", .type = KN_F_DOUBLE, .off = offsetof(struct sample, ratio), .def = "0.25", .help = "ratio", .min = 0, .max = 1 },
	{ .key = "timeout", .type = KN_F_DURATION, .off = offsetof(struct sample, timeout_ns), .def = "5s", .help = "timeout", .min = 1e6, .max = 3600e9 },
	{ .key = "receivers", .type = KN_F_STRLIST, .off = offsetof(struct sample, receivers), .def = NULL, .help = "receivers" },
	{ .key = "tags", .type = KN_F_STRLIST, .off = offsetof(struct sample, tags), .def = "[a, \"b c\"]", .help = "tags" },
	{ .key = "attributes", .type = KN_F_STRMAP, .off = offsetof(struct sample, attributes), .def = NULL, .help = "attributes" },
	{ .key = "grpc", .type = KN_F_SUB, .off = offsetof(struct sample, grpc), .def = NULL, .help = "gRPC", .sub = grpc_fields, .present_off = offsetof(struct sample, grpc_present) },
	{ .key = "http", .type = KN_F_SUB, .off = offsetof(struct sample, http), .def = NULL, .help = "HTTP", .sub = grpc_fields, .present_off = offsetof(struct sample, http_present) },
	KN_CFG_END,
};

static void test_table_defaults(void **state)
{
	(void)state;
	struct sample s;
	struct kn_err err = { "" };
	memset(&s, 0, sizeof s);
	struct kn_cnode *root = parse_ok("name: n\n");
	if (kn_cfg_apply(sample_fields, root, &s, &err) != KN_OK)
		fail_msg("%s", err.msg);
	assert_string_equal(s.name, "n");
	assert_string_equal(s.compression, "gzip");
	assert_int_equal(s.enabled, 1);
	assert_true(s.level == -3);
	assert_true(s.queue_size == 1000);
	assert_true(s.ratio == 0.25);
	assert_true(s.timeout_ns == 5000000000ull);
	assert_int_equal(s.receivers.n, 0);
	assert_null(s.receivers.v);
	assert_int_equal(s.tags.n, 2);
	assert_string_equal(s.tags.v[0], "a");
	assert_string_equal(s.tags.v[1], "b c");
	assert_int_equal(s.attributes.n, 0);
	/* absent sections get their defaults, are not present, and their
	 * required fields are not checked */
	assert_int_equal(s.grpc_present, 0);
	assert_int_equal(s.grpc.tls_present, 0);
	assert_null(s.grpc.tls.cert_file);
	assert_non_null(s.grpc.endpoint);
	assert_string_equal(s.grpc.endpoint->host, "0.0.0.0");
	assert_int_equal(s.grpc.endpoint->port, 4317);
	assert_true(s.grpc.max_recv_msg_size_mib == 4);
	assert_int_equal(s.grpc.headers.n, 1);
	assert_string_equal(s.grpc.headers.keys[0], "x-default");
	assert_string_equal(s.grpc.headers.values[0], "on");
	kn_cfg_free(sample_fields, &s);
	kn_cnode_free(root);

	/* kn_cfg_defaults: no required checks */
	memset(&s, 0, sizeof s);
	assert_int_equal(kn_cfg_defaults(sample_fields, &s, &err), KN_OK);
	assert_null(s.name);
	assert_string_equal(s.compression, "gzip");
	kn_cfg_free(sample_fields, &s);

	/* a NULL map: defaults, then required fields are missing, named by path */
	memset(&s, 0, sizeof s);
	assert_int_equal(kn_cfg_apply_at(sample_fields, NULL, "exporters.x", &s, &err), KN_ERR);
	assert_string_equal(err.msg, "exporters.x.name: missing");
	kn_cfg_free(sample_fields, &s);
	memset(&s, 0, sizeof s);
	assert_int_equal(kn_cfg_apply(sample_fields, NULL, &s, &err), KN_ERR);
	assert_string_equal(err.msg, "name: missing");
	kn_cfg_free(sample_fields, &s);
}

static const char sample_yaml[] =
	"exporters:\n"
	"  otlp/1:\n"
	"    name: \"123\"\n"
	"    compression: zstd\n"
	"    enabled: false\n"
	"    level: \"7\"\n"
	"    queue_size: 50\n"
	"    ratio: 1\n"
	"    timeout: 1m30s\n"
	"    receivers: [otlp, \"jaeger\"]\n"
	"    tags:\n"
	"    attributes: {service.name: api, tier: '1', empty: }\n"
	"    grpc:\n"
	"      endpoint: '[::1]:9999'\n"
	"      tls:\n"
	"        cert_file: /etc/c.pem\n"
	"    http:\n";

static void test_table_all_types(void **state)
{
	(void)state;
	struct sample s;
	struct kn_err err = { "" };
	struct kn_cnode *root = parse_ok(sample_yaml);
	const struct kn_cnode *m = WALK(root, "exporters", "otlp/1");
	memset(&s, 0, sizeof s);
	if (kn_cfg_apply(sample_fields, m, &s, &err) != KN_OK)
		fail_msg("%s", err.msg);
	assert_string_equal(s.name, "123");
	assert_string_equal(s.compression, "zstd");
	assert_int_equal(s.enabled, 0);
	assert_true(s.level == 7);
	assert_true(s.queue_size == 50);
	assert_true(s.ratio == 1.0);
	assert_true(s.timeout_ns == 90000000000ull);
	assert_int_equal(s.receivers.n, 2);
	assert_string_equal(s.receivers.v[0], "otlp");
	assert_string_equal(s.receivers.v[1], "jaeger");
	assert_int_equal(s.tags.n, 0); /* null: empty, replacing the default */
	assert_null(s.tags.v);
	assert_int_equal(s.attributes.n, 3);
	assert_string_equal(s.attributes.keys[0], "service.name");
	assert_string_equal(s.attributes.values[0], "api");
	assert_string_equal(s.attributes.values[1], "1");
	assert_string_equal(s.attributes.keys[2], "empty");
	assert_string_equal(s.attributes.values[2], "");
	assert_int_equal(s.grpc_present, 1);
	assert_string_equal(s.grpc.endpoint->host, "::1");
	assert_int_equal(s.grpc.endpoint->port, 9999);
	assert_int_equal(s.grpc.tls_present, 1);
	assert_string_equal(s.grpc.tls.cert_file, "/etc/c.pem");
	assert_int_equal(s.grpc.tls.insecure, 0);
	/* `http:` (null) is present with defaults */
	assert_int_equal(s.http_present, 1);
	assert_int_equal(s.http.tls_present, 0);
	assert_string_equal(s.http.endpoint->host, "0.0.0.0");
	assert_true(s.http.max_recv_msg_size_mib == 4);

	kn_cfg_free(sample_fields, &s);
	assert_null(s.name);
	assert_null(s.compression);
	assert_null(s.receivers.v);
	assert_int_equal(s.receivers.n, 0);
	assert_null(s.attributes.keys);
	assert_null(s.grpc.endpoint);
	assert_null(s.grpc.tls.cert_file);
	assert_null(s.grpc.headers.keys);
	kn_cfg_free(sample_fields, &s); /* safe twice */
	kn_cfg_free(sample_fields, NULL);
	kn_cnode_free(root);
}

/* Applies `yaml` (the map under key "x") and checks the exact message. */
static void apply_fails(const char *yaml, const char *want)
{
	struct sample s;
	struct kn_err err = { "" };
	struct kn_cnode *root = parse_ok(yaml);
	memset(&s, 0, sizeof s);
	int rc = kn_cfg_apply(sample_fields, kn_cnode_get(root, "x"), &s, &err);
	kn_cfg_free(sample_fields, &s); /* frees what was set before the error */
	kn_cnode_free(root);
	if (rc != KN_ERR)
		fail_msg("expected an error for:\n%s", yaml);
	assert_string_equal(err.msg, want);
}

static void test_table_errors(void **state)
{
	(void)state;
	static const struct {
		const char *yaml, *msg;
	} cases[] = {
		{ "x: {name: a, endpont: b}", "x.endpont: unknown key" },
		{ "x: {name: a, compresion: gzip}", "x.compresion: unknown key (did you mean \"compression\"?)" },
		{ "x: {name: a, Timeout: 1s}", "x.Timeout: unknown key (did you mean \"timeout\"?)" },
		{ "x: {name: a, grpc: {tls: {cert_file: c, insecur: true}}}",
		  "x.grpc.tls.insecur: unknown key (did you mean \"insecure\"?)" },
		{ "x: {name: a, timeout: five}", "x.timeout: expected a duration like \"5s\", got \"five\"" },
		{ "x: {name: a, timeout: 30}",
		  "x.timeout: expected a duration like \"5s\", got \"30\" (missing unit: ns, us, ms, s, m or h)" },
		{ "x: {name: a, timeout: 2h}", "x.timeout: must be between 1ms and 1h, got 2h" },
		{ "x: {name: a, timeout: [1s]}", "x.timeout: expected a duration like \"5s\", got a list" },
		{ "x: {name: a, level: four}", "x.level: expected an integer, got \"four\"" },
		{ "x: {name: a, level: -11}", "x.level: must be between -10 and 10, got -11" },
		{ "x: {name: a, ratio: 1.5}", "x.ratio: must be between 0 and 1, got 1.5" },
		{ "x: {name: a, queue_size: -1}", "x.queue_size: expected a non-negative integer, got \"-1\"" },
		{ "x: {name: a, grpc: {max_recv_msg_size_mib: 0}}",
		  "x.grpc.max_recv_msg_size_mib: must be between 1 and 1024, got 0" },
		{ "x: {name: a, enabled: yes}", "x.enabled: expected true or false, got \"yes\"" },
		{ "x: {name: a, compression: brotli}", "x.compression: must be one of gzip, zstd, none; got \"brotli\"" },
		{ "x: {compression: gzip}", "x.name: missing" },
		{ "x: {name: }", "x.name: missing" },
		{ "x: {name: {a: b}}", "x.name: expected a string, got a map" },
		{ "x: {name: a, grpc: {tls: {}}}", "x.grpc.tls.cert_file: missing" },
		{ "x: {name: a, grpc: {tls: }}", "x.grpc.tls.cert_file: missing" },
		{ "x: {name: a, grpc: {endpoint: 'localhost'}}",
		  "x.grpc.endpoint: expected host:port, got \"localhost\" (missing port)" },
		{ "x: {name: a, grpc: [1]}", "x.grpc: expected a map, got a list" },
		{ "x: {name: a, grpc: on}", "x.grpc: expected a map, got \"on\"" },
		{ "x: {name: a, receivers: otlp}", "x.receivers: expected a list of strings, got \"otlp\"" },
		{ "x: {name: a, receivers: [otlp, [a]]}", "x.receivers[1]: expected a string, got a list" },
		{ "x: {name: a, receivers: [otlp, ~]}", "x.receivers[1]: expected a string, got null" },
		{ "x: {name: a, attributes: [a]}", "x.attributes: expected a map of strings, got a list" },
		{ "x: {name: a, attributes: {a: {b: c}}}", "x.attributes.a: expected a string, got a map" },
		{ "x: [name]", "x: expected a map, got a list" },
		{ "x: name", "x: expected a map, got \"name\"" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		apply_fails(cases[i].yaml, cases[i].msg);
}

static const char *const bad_choices[] = { "a", "b", NULL };
static const struct kn_cfg_field bad_default_dur[] = {
	{ .key = "timeout", .type = KN_F_DURATION, .off = 0, .def = "5", .help = "t" },
	KN_CFG_END,
};
static const struct kn_cfg_field bad_default_choice[] = {
	{ .key = "mode", .type = KN_F_STR, .off = 0, .def = "c", .help = "m", .choices = bad_choices },
	KN_CFG_END,
};
static const struct kn_cfg_field bad_default_range[] = {
	{ .key = "n", .type = KN_F_INT, .off = 0, .def = "0", .help = "n", .min = 1, .max = 8 },
	KN_CFG_END,
};
static const struct kn_cfg_field bad_default_list[] = {
	{ .key = "l", .type = KN_F_STRLIST, .off = 0, .def = "{a: b}", .help = "l" },
	KN_CFG_END,
};

static void test_bad_defaults(void **state)
{
	(void)state;
	union {
		uint64_t u;
		int64_t i;
		char *s;
		struct kn_strlist l;
	} v;
	struct kn_err err;
	memset(&v, 0, sizeof v);
	assert_int_equal(kn_cfg_defaults(bad_default_dur, &v, &err), KN_ERR);
	assert_string_equal(err.msg,
			    "timeout (default): expected a duration like \"5s\", got \"5\" (missing unit: ns, us, ms, s, m or h)");
	assert_int_equal(kn_cfg_defaults(bad_default_choice, &v, &err), KN_ERR);
	assert_string_equal(err.msg, "mode (default): must be one of a, b; got \"c\"");
	assert_null(v.s);
	assert_int_equal(kn_cfg_defaults(bad_default_range, &v, &err), KN_ERR);
	assert_string_equal(err.msg, "n (default): must be between 1 and 8, got 0");
	memset(&v, 0, sizeof v);
	assert_int_equal(kn_cfg_defaults(bad_default_list, &v, &err), KN_ERR);
	assert_string_equal(err.msg, "l: bad default: l: expected a list of strings, got a map");
	kn_cfg_free(bad_default_list, &v);
}

/* Re-applying after kn_cfg_free works (the struct is reusable), and
 * applying over defaults replaces lists rather than appending. */
static void test_reapply(void **state)
{
	(void)state;
	struct sample s;
	struct kn_err err;
	struct kn_cnode *root = parse_ok("name: a\ntags: [z]\ngrpc: {headers: {k: v}}\n");
	memset(&s, 0, sizeof s);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(kn_cfg_apply(sample_fields, root, &s, &err), KN_OK);
		assert_int_equal(s.tags.n, 1);
		assert_string_equal(s.tags.v[0], "z");
		assert_int_equal(s.grpc.headers.n, 1);
		assert_string_equal(s.grpc.headers.keys[0], "k");
		kn_cfg_free(sample_fields, &s);
	}
	kn_cnode_free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_paths_and_lines),
		cmocka_unit_test(test_tree_scalars),
		cmocka_unit_test(test_tree_anchors),
		cmocka_unit_test(test_tree_errors),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_table_defaults),
		cmocka_unit_test(test_table_all_types),
		cmocka_unit_test(test_table_errors),
		cmocka_unit_test(test_bad_defaults),
		cmocka_unit_test(test_reapply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
