/* SPDX-License-Identifier: Apache-2.0
 * kn_config: the configuration file, in the OpenTelemetry Collector's YAML
 * shape, as a tree of nodes that know their dotted path, plus typed tables
 * (struct kn_cfg_field) that turn a map node into a C struct.
 *
 * Loading: libyaml parses the text after ${env:VAR} substitution (also ${VAR}
 * and ${env:VAR:-default}; "$$" is a literal '$'; an unset variable is an
 * error naming it and its line). Substitution works on the raw text, so it
 * also happens inside comments, and a value holding YAML syntax (": ",
 * newlines) changes the document's shape; its output is not substituted again.
 * A bare $VAR is left as it is. Anchors and aliases are resolved (an alias is
 * a copy of the anchored node, with the alias's path); merge keys ("<<") are
 * rejected. Duplicate keys, non-scalar keys, more than one document, nesting
 * deeper than 64 levels and more than 100000 nodes are errors. Scalars are
 * null when plain and empty, "~" or "null"/"Null"/"NULL".
 *
 * Applying a table: every field gets its default first (defaults are strings
 * parsed by the same code as values, so they are checked too; STRLIST, STRMAP
 * and CUSTOM defaults are YAML text such as "[a, b]"); then every key of the
 * map must name a field, otherwise "<path>: unknown key" is the error (with
 * "(did you mean \"x\"?)" for a near miss).
 * Values: a null value (`key:`) keeps the default of a scalar field (and
 * counts as missing for `required`), is an empty STRLIST/STRMAP, and is
 * "present with defaults" for SUB. Quoted scalars are accepted by numeric and
 * bool fields ("8" works like 8), as in the OpenTelemetry Collector. Bools are
 * YAML 1.2: true/false (also True/TRUE/False/FALSE); yes/no/on/off are errors.
 * Integers are decimal only. A SUB that is absent gets its defaults but its
 * required fields are not checked (an absent section is a disabled one).
 * Every error names the path at fault: "exporters.otlp.endpoint: missing",
 * "receivers.otlp.protocols.grpc.max_recv_msg_size_mib: expected an integer,
 * got \"four\"".
 *
 * Ownership: the tree is owned by the caller (kn_cnode_free). Strings written
 * into a config struct are malloc'd copies owned by the struct and freed by
 * kn_cfg_free with the same table. */
#ifndef KN_CONFIG_H
#define KN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "../core/kn_err.h"

enum kn_cnode_type { KN_CNODE_NULL, KN_CNODE_SCALAR, KN_CNODE_MAP, KN_CNODE_SEQ };

struct kn_cnode {
	enum kn_cnode_type type;
	char *key;       /* key within the parent map; NULL in sequences and at the root */
	char *value;     /* KN_CNODE_SCALAR only */
	int quoted;      /* scalar was quoted in YAML (so "123" stays a string) */
	char *path;      /* dotted path from the root, "service.pipelines.traces.receivers[1]" */
	int line;        /* 1-based line in the source */
	struct kn_cnode *children; /* MAP: entries (each has key); SEQ: items */
	size_t n;
};

/* Parses YAML text. `name` is used in messages (file name or "<default>"). */
int kn_config_parse(const char *text, size_t len, const char *name,
		    struct kn_cnode **root, struct kn_err *err);
/* Reads and parses a file; errors name the file. */
int kn_config_load_file(const char *file, struct kn_cnode **root, struct kn_err *err);
void kn_cnode_free(struct kn_cnode *root);

/* Map lookup; NULL when absent or node is not a map. */
const struct kn_cnode *kn_cnode_get(const struct kn_cnode *map, const char *key);

enum kn_ftype {
	KN_F_STR,      /* char *; NULL default allowed (def == NULL) */
	KN_F_BOOL,     /* int 0/1; true/false */
	KN_F_INT,      /* int64_t */
	KN_F_UINT,     /* uint64_t; negative is an error */
	KN_F_DOUBLE,   /* double */
	KN_F_DURATION, /* uint64_t nanoseconds; "5s", "100ms", "1m30s", "2h", "250us", "0"; bare integers are rejected */
	KN_F_STRLIST,  /* struct kn_strlist; a YAML sequence of scalars */
	KN_F_STRMAP,   /* struct kn_strmap; a YAML map of scalar values (e.g. headers) */
	KN_F_SUB,      /* a nested struct at `off`, described by `sub`; a null value (`grpc:`) means "present with defaults" */
	KN_F_CUSTOM,   /* `parse` does the work */
};

struct kn_strlist {
	char **v;
	size_t n;
};

struct kn_strmap {
	char **keys;
	char **values;
	size_t n;
};

struct kn_cfg_field {
	const char *key;
	enum kn_ftype type;
	size_t off;                   /* offsetof the value in the struct */
	const char *def;              /* default as text (NULL: zero / NULL / empty) */
	const char *help;             /* one line, for `kansatsu --help-config` and docs */
	const struct kn_cfg_field *sub; /* KN_F_SUB: nested table */
	int required;                 /* absent -> "<path>: missing" */
	double min, max;              /* numeric bounds, checked when min < max */
	const char *const *choices;   /* KN_F_STR: allowed values, NULL-terminated */
	size_t present_off;           /* if nonzero: an int set to 1 when the key is present (KN_F_SUB enable flags) */
	/* KN_F_CUSTOM: parse node into dst (the field's address); free it in kn_cfg_free. */
	int (*parse)(const struct kn_cnode *node, void *dst, struct kn_err *err);
	void (*free)(void *dst);
};
/* A table ends with an entry whose key is NULL. Write rows with designated
 * initializers ({ .key = "timeout", .type = KN_F_DURATION, .off = ..., .def =
 * "5s" }): a purely positional row that leaves fields out trips
 * -Wmissing-field-initializers (-Wextra) and so -Werror. */
#define KN_CFG_END { .key = NULL }

/* Applies defaults, then `map` (may be NULL or a null node: defaults only).
 * dst must be zeroed (or released by kn_cfg_free) before the call.
 * On error, what was set so far is still freed by kn_cfg_free.
 * KN_F_CUSTOM: `free` must accept a zeroed field and leave it zeroed; it is
 * called before each `parse` (the default, then the value). */
int kn_cfg_apply(const struct kn_cfg_field *table, const struct kn_cnode *map,
		 void *dst, struct kn_err *err);
/* Same, with `path` naming the table in messages when map is NULL (absent):
 * kn_cfg_apply_at(t, kn_cnode_get(root, "x"), "x", ...) reports "x.key: missing". */
int kn_cfg_apply_at(const struct kn_cfg_field *table, const struct kn_cnode *map,
		    const char *path, void *dst, struct kn_err *err);
/* Applies defaults only (for tests and embedded defaults). */
int kn_cfg_defaults(const struct kn_cfg_field *table, void *dst, struct kn_err *err);
/* Frees every string, list and map the table wrote into dst. */
void kn_cfg_free(const struct kn_cfg_field *table, void *dst);

/* Value parsers, shared with custom fields. `path` names the value in errors. */
int kn_parse_duration(const char *s, const char *path, uint64_t *ns, struct kn_err *err);
int kn_parse_bool(const char *s, const char *path, int *out, struct kn_err *err);
int kn_parse_int(const char *s, const char *path, int64_t *out, struct kn_err *err);
int kn_parse_uint(const char *s, const char *path, uint64_t *out, struct kn_err *err);
int kn_parse_double(const char *s, const char *path, double *out, struct kn_err *err);

/* Formats ns compactly, as a duration parser accepts it: "0s", "250ms",
 * "1.5s", "1h30m". Returns buf. */
const char *kn_format_duration(uint64_t ns, char *buf, size_t cap);

/* ${env:VAR} substitution (see the top of this file) of text[0..len) into a
 * malloc'd, NUL-terminated *out (caller frees) of *outlen bytes. `name`
 * prefixes messages: "config.yaml: line 3: environment variable \"X\" is not set". */
int kn_config_expand(const char *text, size_t len, const char *name, char **out,
		     size_t *outlen, struct kn_err *err);

/* Splits "host:port", "[v6]:port" or ":port" (host empty = all addresses;
 * brackets are removed from a v6 host; port 0 = ephemeral). A bare v6 address
 * without brackets is an error. Errors name `path`. host is written NUL-terminated into host[hostcap]. */
int kn_parse_endpoint(const char *s, const char *path, char *host, size_t hostcap,
		      uint16_t *port, struct kn_err *err);

#endif
