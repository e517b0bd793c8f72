/* SPDX-License-Identifier: Apache-2.0
 * Fuzz target for collector/config: arbitrary bytes as configuration text
 * (env substitution, YAML tree, aliases), then a sample table with every
 * field type applied to the root and to each map under it, and every scalar
 * run through the value parsers. Must never crash, hang or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/config/kn_config.h"

struct fz_inner {
	char *endpoint;
	int insecure;
	struct kn_strmap headers;
};

struct fz_cfg {
	char *name;
	char *mode;
	int enabled;
	int64_t level;
	uint64_t size;
	double ratio;
	uint64_t timeout_ns;
	struct kn_strlist list;
	struct kn_strmap map;
	struct fz_inner inner;
	int inner_present;
	char *custom;
};

static int fz_custom_parse(const struct kn_cnode *n, void *dst, struct kn_err *err)
{
	char host[64];
	uint16_t port;
	if (n->type != KN_CNODE_SCALAR)
		return kn_errf(err, "%s: expected host:port", n->path);
	if (kn_parse_endpoint(n->value, n->path, host, sizeof host, &port, err) != KN_OK)
		return KN_ERR;
	*(char **)dst = strdup(host);
	return *(char **)dst ? KN_OK : kn_errf(err, "%s: out of memory", n->path);
}

static void fz_custom_free(void *dst)
{
	free(*(char **)dst);
	*(char **)dst = NULL;
}

static const char *const fz_modes[] = { "gzip", "zstd", "none", NULL };

static const struct kn_cfg_field fz_inner_fields[] = {
	{ .key = "endpoint", .type = KN_F_STR, .off = offsetof(struct fz_inner, endpoint), .required = 1 },
	{ .key = "insecure", .type = KN_F_BOOL, .off = offsetof(struct fz_inner, insecure), .def = "false" },
	{ .key = "headers", .type = KN_F_STRMAP, .off = offsetof(struct fz_inner, headers), .def = "{a: b}" },
	KN_CFG_END,
};

static const struct kn_cfg_field fz_fields[] = {
	{ .key = "name", .type = KN_F_STR, .off = offsetof(struct fz_cfg, name) },
	{ .key = "mode", .type = KN_F_STR, .off = offsetof(struct fz_cfg, mode), .def = "gzip", .choices = fz_modes },
	{ .key = "enabled", .type = KN_F_BOOL, .off = offsetof(struct fz_cfg, enabled), .def = "true" },
	{ .key = "level", .type = KN_F_INT, .off = offsetof(struct fz_cfg, level), .min = -5, .max = 5 },
	{ .key = "size", .type = KN_F_UINT, .off = offsetof(struct fz_cfg, size), .def = "10" },
	{ .key = "ratio", .type = KN_F_DOUBLE, .off = offsetof(struct fz_cfg, ratio), .min = 0, .max = 1 },
	{ .key = "timeout", .type = KN_F_DURATION, .off = offsetof(struct fz_cfg, timeout_ns), .def = "5s" },
	{ .key = "list", .type = KN_F_STRLIST, .off = offsetof(struct fz_cfg, list), .def = "[x]" },
	{ .key = "map", .type = KN_F_STRMAP, .off = offsetof(struct fz_cfg, map) },
	{ .key = "inner", .type = KN_F_SUB, .off = offsetof(struct fz_cfg, inner), .sub = fz_inner_fields,
	  .present_off = offsetof(struct fz_cfg, inner_present) },
	{ .key = "custom", .type = KN_F_CUSTOM, .off = offsetof(struct fz_cfg, custom), .def = "a:1",
	  .parse = fz_custom_parse, .free = fz_custom_free },
	KN_CFG_END,
};

static void apply(const struct kn_cnode *map)
{
	struct fz_cfg c;
	struct kn_err err;
	memset(&c, 0, sizeof c);
	kn_cfg_apply(fz_fields, map, &c, &err);
	kn_cfg_free(fz_fields, &c);
}

static void scalars(const struct kn_cnode *n)
{
	struct kn_err err;
	if (n->type == KN_CNODE_SCALAR) {
		uint64_t u;
		int64_t i;
		double d;
		int b;
		char host[32];
		uint16_t port;
		kn_parse_duration(n->value, n->path, &u, &err);
		kn_parse_uint(n->value, n->path, &u, &err);
		kn_parse_int(n->value, n->path, &i, &err);
		kn_parse_double(n->value, n->path, &d, &err);
		kn_parse_bool(n->value, n->path, &b, &err);
		kn_parse_endpoint(n->value, n->path, host, sizeof host, &port, &err);
	}
	for (size_t k = 0; k < n->n; k++)
		scalars(&n->children[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kn_cnode *root = NULL;
	struct kn_err err;
	static int once;
	if (!once) {
		setenv("KN_FUZZ_VAR", "inner: {endpoint: e}", 1);
		once = 1;
	}
	if (kn_config_parse((const char *)data, size, "fuzz.yaml", &root, &err) != KN_OK)
		return 0;
	if (root->type == KN_CNODE_MAP) {
		apply(root);
		for (size_t k = 0; k < root->n; k++)
			if (root->children[k].type == KN_CNODE_MAP)
				apply(&root->children[k]);
	}
	scalars(root);
	kn_cnode_free(root);
	return 0;
}
