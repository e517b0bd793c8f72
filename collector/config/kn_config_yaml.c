/* SPDX-License-Identifier: Apache-2.0
 * kn_config_yaml: YAML text -> tree of struct kn_cnode, with libyaml's
 * document API (which resolves aliases to shared nodes). The tree copies
 * every node it reaches, so an alias becomes a copy with its own path; a
 * stack of the document nodes being copied catches aliases that refer to
 * themselves, and a node budget bounds alias bombs.
 *
 * Ownership: kn_config_parse returns a malloc'd root that kn_cnode_free
 * releases whole (each node owns key, value, path and its children array).
 * Threading: none; a tree is read-only after parsing and may be shared.
 * Cost: startup only; maps are checked for duplicate keys by sorting. */
#include "kn_config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct kn_build {
	yaml_document_t *doc;
	const char *name;
	size_t nodes;
	int stack[KN_CFG_MAX_DEPTH + 1];
	int depth;
	struct kn_err *err;
};

static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static char *join_key(const char *base, const char *key)
{
	size_t bl = strlen(base), kl = strlen(key);
	char *p = malloc(bl + kl + 2);
	if (!p)
		return NULL;
	if (bl) {
		memcpy(p, base, bl);
		p[bl++] = '.';
	}
	memcpy(p + bl, key, kl + 1);
	return p;
}

static char *join_index(const char *base, size_t i)
{
	size_t n = strlen(base) + 24;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s[%zu]", base, i);
	return p;
}

static int node_err(struct kn_build *b, const yaml_node_t *yn, const char *path, const char *msg)
{
	if (path && *path)
		return kn_errf(b->err, "%s: line %zu: %s: %s", b->name, yn->start_mark.line + 1,
			       path, msg);
	return kn_errf(b->err, "%s: line %zu: %s", b->name, yn->start_mark.line + 1, msg);
}

static int is_null_text(const yaml_node_t *yn)
{
	if (yn->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	const char *v = (const char *)yn->data.scalar.value;
	size_t n = yn->data.scalar.length;
	return n == 0 || (n == 1 && v[0] == '~') ||
	       (n == 4 && (!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) || !memcmp(v, "NULL", 4)));
}

struct kn_keyref {
	const char *key;
	size_t idx;
};

static int keyref_cmp(const void *a, const void *b)
{
	const struct kn_keyref *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Index of the first (in document order) entry whose key repeats an
 * earlier one, or n when keys are unique. */
static size_t first_duplicate(const struct kn_cnode *kids, size_t n, size_t *first)
{
	size_t dup = n;
	if (n < 2)
		return n;
	struct kn_keyref *r = malloc(n * sizeof *r);
	if (!r)
		return n + 1;
	for (size_t i = 0; i < n; i++) {
		r[i].key = kids[i].key;
		r[i].idx = i;
	}
	qsort(r, n, sizeof *r, keyref_cmp);
	for (size_t i = 1; i < n; i++) {
		if (!strcmp(r[i].key, r[i - 1].key) && r[i].idx < dup) {
			size_t k = i - 1; /* earliest entry with the same key */
			while (k > 0 && !strcmp(r[k - 1].key, r[i].key))
				k--;
			dup = r[i].idx;
			*first = r[k].idx;
		}
	}
	free(r);
	return dup;
}

/* Fills `out` (zeroed, path already set) from document node `idx`. */
static int build(struct kn_build *b, int idx, struct kn_cnode *out)
{
	yaml_node_t *yn = yaml_document_get_node(b->doc, idx);
	int rc = KN_ERR;

	if (!yn)
		return kn_errf(b->err, "%s: %s: broken document", b->name, out->path);
	out->line = (int)yn->start_mark.line + 1;
	if (++b->nodes > KN_CFG_MAX_NODES)
		return node_err(b, yn, out->path,
				"more than 100000 nodes (aliases included); refusing to expand");
	for (int i = 0; i < b->depth; i++)
		if (b->stack[i] == idx)
			return node_err(b, yn, out->path, "alias refers to a node that contains it");
	if (b->depth > KN_CFG_MAX_DEPTH) /* 64 collections and a scalar fit */
		return node_err(b, yn, out->path, "nested deeper than 64 levels");
	b->stack[b->depth++] = idx;

	switch (yn->type) {
	case YAML_SCALAR_NODE:
		if (memchr(yn->data.scalar.value, '\0', yn->data.scalar.length)) {
			node_err(b, yn, out->path, "NUL character in value");
			goto out;
		}
		if (is_null_text(yn)) {
			out->type = KN_CNODE_NULL;
			break;
		}
		out->type = KN_CNODE_SCALAR;
		out->quoted = yn->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		out->value = dup_n((const char *)yn->data.scalar.value, yn->data.scalar.length);
		if (!out->value)
			goto oom;
		break;
	case YAML_SEQUENCE_NODE: {
		size_t n = (size_t)(yn->data.sequence.items.top - yn->data.sequence.items.start);
		out->type = KN_CNODE_SEQ;
		if (!n)
			break;
		out->children = calloc(n, sizeof *out->children);
		if (!out->children)
			goto oom;
		out->n = n;
		for (size_t i = 0; i < n; i++) {
			struct kn_cnode *c = &out->children[i];
			c->path = join_index(out->path, i);
			if (!c->path)
				goto oom;
			if (build(b, yn->data.sequence.items.start[i], c) != KN_OK)
				goto out;
		}
		break;
	}
	case YAML_MAPPING_NODE: {
		size_t n = (size_t)(yn->data.mapping.pairs.top - yn->data.mapping.pairs.start);
		out->type = KN_CNODE_MAP;
		if (!n)
			break;
		out->children = calloc(n, sizeof *out->children);
		if (!out->children)
			goto oom;
		out->n = n;
		for (size_t i = 0; i < n; i++) {
			yaml_node_pair_t *pr = &yn->data.mapping.pairs.start[i];
			yaml_node_t *kn = yaml_document_get_node(b->doc, pr->key);
			struct kn_cnode *c = &out->children[i];
			if (!kn || kn->type != YAML_SCALAR_NODE) {
				node_err(b, kn ? kn : yn, out->path, "map keys must be scalars");
				goto out;
			}
			if (memchr(kn->data.scalar.value, '\0', kn->data.scalar.length)) {
				node_err(b, kn, out->path, "NUL character in key");
				goto out;
			}
			if (kn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			    kn->data.scalar.length == 2 && !memcmp(kn->data.scalar.value, "<<", 2)) {
				node_err(b, kn, out->path, "merge keys (<<) are not supported");
				goto out;
			}
			c->key = dup_n((const char *)kn->data.scalar.value, kn->data.scalar.length);
			if (!c->key)
				goto oom;
			c->path = join_key(out->path, c->key);
			if (!c->path)
				goto oom;
			if (build(b, pr->value, c) != KN_OK)
				goto out;
			c->line = (int)kn->start_mark.line + 1; /* an entry is where its key is */
		}
		size_t first = 0, d = first_duplicate(out->children, n, &first);
		if (d == n + 1)
			goto oom;
		if (d < n) {
			kn_errf(b->err, "%s: line %d: %s: duplicate key (first at line %d)", b->name,
				out->children[d].line, out->children[d].path,
				out->children[first].line);
			goto out;
		}
		break;
	}
	default:
		node_err(b, yn, out->path, "empty node");
		goto out;
	}
	rc = KN_OK;
	goto out;
oom:
	rc = kn_errf(b->err, "%s: out of memory", b->name);
out:
	b->depth--;
	return rc;
}

static void cnode_release(struct kn_cnode *n)
{
	for (size_t i = 0; i < n->n; i++)
		cnode_release(&n->children[i]);
	free(n->children);
	free(n->key);
	free(n->value);
	free(n->path);
}

void kn_cnode_free(struct kn_cnode *root)
{
	if (!root)
		return;
	cnode_release(root);
	free(root);
}

/* Line of a byte offset, for reader errors (which carry no mark). */
static size_t line_of(const char *text, size_t len, size_t off)
{
	size_t line = 1;
	for (size_t i = 0; i < off && i < len; i++)
		line += text[i] == '\n';
	return line;
}

static int parser_err(const yaml_parser_t *p, const char *text, size_t len, const char *name,
		      struct kn_err *err)
{
	if (p->error == YAML_MEMORY_ERROR)
		return kn_errf(err, "%s: out of memory", name);
	const char *problem = p->problem ? p->problem : "invalid YAML";
	if (p->error == YAML_READER_ERROR)
		return kn_errf(err, "%s: line %zu: %s", name, line_of(text, len, p->problem_offset),
			       problem);
	if (p->context && p->context_mark.line != p->problem_mark.line)
		return kn_errf(err, "%s: line %zu: %s (%s at line %zu)", name,
			       p->problem_mark.line + 1, problem, p->context,
			       p->context_mark.line + 1);
	if (p->context)
		return kn_errf(err, "%s: line %zu: %s (%s)", name, p->problem_mark.line + 1, problem,
			       p->context);
	return kn_errf(err, "%s: line %zu: %s", name, p->problem_mark.line + 1, problem);
}

/* A first pass over the events that stops at the depth limit, before
 * libyaml's loader sees the text: libyaml's scanner slows down
 * quadratically with flow nesting ("[[[[..."), and its loader has no depth
 * bound of its own. Also reports syntax errors. */
static int preflight(const char *text, size_t len, const char *name, struct kn_err *err)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int depth = 0, rc = KN_ERR;

	if (!yaml_parser_initialize(&parser))
		return kn_errf(err, "%s: out of memory", name);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		if (!yaml_parser_parse(&parser, &ev)) {
			parser_err(&parser, text, len, name, err);
			break;
		}
		yaml_event_type_t t = ev.type;
		size_t line = ev.start_mark.line + 1;
		yaml_event_delete(&ev);
		if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
			if (++depth > KN_CFG_MAX_DEPTH) {
				kn_errf(err, "%s: line %zu: nested deeper than %d levels", name, line,
					KN_CFG_MAX_DEPTH);
				break;
			}
		} else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
			depth--;
		} else if (t == YAML_STREAM_END_EVENT) {
			rc = KN_OK;
			break;
		}
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* Parses already-substituted text. */
static int parse_yaml(const char *text, size_t len, const char *name, const char *base,
		      struct kn_cnode **rootp, struct kn_err *err)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	int have_doc = 0, rc = KN_ERR;
	struct kn_cnode *root = NULL;

	if (preflight(text, len, name, err) != KN_OK)
		return KN_ERR;
	if (!yaml_parser_initialize(&parser))
		return kn_errf(err, "%s: out of memory", name);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		parser_err(&parser, text, len, name, err);
		goto fail;
	}
	have_doc = 1;
	root = calloc(1, sizeof *root);
	if (!root || !(root->path = strdup(base))) {
		kn_errf(err, "%s: out of memory", name);
		goto fail;
	}
	root->line = 1;
	yaml_node_t *top = yaml_document_get_root_node(&doc);
	if (top) {
		/* A second document is an error; an empty stream end is fine. */
		if (!yaml_parser_load(&parser, &extra)) {
			parser_err(&parser, text, len, name, err);
			goto fail;
		}
		yaml_node_t *x = yaml_document_get_root_node(&extra);
		size_t xl = x ? x->start_mark.line + 1 : 0;
		yaml_document_delete(&extra);
		if (x) {
			kn_errf(err, "%s: line %zu: only one YAML document is allowed", name, xl);
			goto fail;
		}
		struct kn_build b = { .doc = &doc, .name = name, .err = err };
		if (build(&b, 1, root) != KN_OK)
			goto fail;
	} else {
		root->type = KN_CNODE_NULL;
	}
	*rootp = root;
	root = NULL;
	rc = KN_OK;
fail:
	kn_cnode_free(root);
	if (have_doc)
		yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

int kn_config_parse_at(const char *text, size_t len, const char *name, const char *base,
		       struct kn_cnode **root, struct kn_err *err)
{
	char *exp = NULL;
	size_t elen = 0;

	*root = NULL;
	if (!name)
		name = "<config>";
	if (kn_config_expand(text, len, name, &exp, &elen, err) != KN_OK)
		return KN_ERR;
	int rc = parse_yaml(exp, elen, name, base ? base : "", root, err);
	free(exp);
	return rc;
}

int kn_config_parse(const char *text, size_t len, const char *name, struct kn_cnode **root,
		    struct kn_err *err)
{
	return kn_config_parse_at(text, len, name, "", root, err);
}

int kn_config_load_file(const char *file, struct kn_cnode **root, struct kn_err *err)
{
	char *text = NULL;
	size_t len = 0, cap = 0;
	int rc = KN_ERR;
	FILE *f = fopen(file, "rb");

	*root = NULL;
	if (!f)
		return kn_errf(err, "%s: cannot open: %s", file, strerror(errno));
	for (;;) {
		if (len == cap) {
			if (cap >= KN_CFG_MAX_FILE) {
				kn_errf(err, "%s: larger than %u MiB", file, KN_CFG_MAX_FILE >> 20);
				goto fail;
			}
			cap = cap ? cap * 2 : 8192;
			char *p = realloc(text, cap);
			if (!p) {
				kn_errf(err, "%s: out of memory", file);
				goto fail;
			}
			text = p;
		}
		size_t got = fread(text + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		kn_errf(err, "%s: cannot read: %s", file, strerror(errno));
		goto fail;
	}
	rc = kn_config_parse(text, len, file, root, err);
fail:
	free(text);
	fclose(f);
	return rc;
}

const struct kn_cnode *kn_cnode_get(const struct kn_cnode *map, const char *key)
{
	if (!map || map->type != KN_CNODE_MAP || !key)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (!strcmp(map->children[i].key, key))
			return &map->children[i];
	return NULL;
}

const char *kn_cfg_quote(const char *s, char *buf, size_t cap)
{
	size_t k = 0, n = strlen(s);
	if (cap < 8) {
		if (cap)
			buf[0] = '\0';
		return buf;
	}
	buf[k++] = '"';
	for (size_t i = 0; i < n && k + 5 < cap && i < 64; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if ((n > 64 || k + 5 >= cap) && k + 4 < cap) {
		memcpy(buf + k, "...", 3);
		k += 3;
	}
	buf[k++] = '"';
	buf[k] = '\0';
	return buf;
}

const char *kn_cnode_describe(const struct kn_cnode *n, char *buf, size_t cap)
{
	const char *s;
	switch (n ? n->type : KN_CNODE_NULL) {
	case KN_CNODE_SCALAR:
		return kn_cfg_quote(n->value, buf, cap);
	case KN_CNODE_MAP:
		s = "a map";
		break;
	case KN_CNODE_SEQ:
		s = "a list";
		break;
	default:
		s = "null";
		break;
	}
	snprintf(buf, cap, "%s", s);
	return buf;
}
