/* SPDX-License-Identifier: Apache-2.0
 * kn_config_apply: typed config tables (struct kn_cfg_field, as Fluent Bit's
 * config_map) applied to a map node of the tree. Defaults first, parsed by
 * the same code as values; then each key of the map must name a field; then
 * `required` fields that are still absent are reported. The first error
 * stops the walk; whatever was written so far stays owned by the struct and
 * kn_cfg_free releases it.
 *
 * Ownership: strings, lists and maps written into dst are malloc'd and owned
 * by dst; a field is freed before it is written again, so dst must start
 * zeroed. Threading: none (startup). Cost: a linear scan of the table per
 * key, tables are short. */
#include "kn_config_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KN_PATH_MAX 400

static void *at(void *dst, size_t off)
{
	return (char *)dst + off;
}

static void field_path(char *buf, const char *base, const char *key)
{
	if (base && *base)
		snprintf(buf, KN_PATH_MAX, "%s.%s", base, key);
	else
		snprintf(buf, KN_PATH_MAX, "%s", key);
}

static const char *type_want(enum kn_ftype t)
{
	switch (t) {
	case KN_F_STR:
		return "a string";
	case KN_F_BOOL:
		return "true or false";
	case KN_F_INT:
		return "an integer";
	case KN_F_UINT:
		return "a non-negative integer";
	case KN_F_DOUBLE:
		return "a number";
	case KN_F_DURATION:
		return "a duration like \"5s\"";
	case KN_F_STRLIST:
		return "a list of strings";
	case KN_F_STRMAP:
		return "a map of strings";
	case KN_F_SUB:
		return "a map";
	default:
		return "a value";
	}
}

static int type_err(const char *path, enum kn_ftype t, const struct kn_cnode *n,
		    struct kn_err *err)
{
	char got[96];
	return kn_errf(err, "%s: expected %s, got %s", path, type_want(t),
		       kn_cnode_describe(n, got, sizeof got));
}

/* A bound as people write it: "1024" rather than "1024.000000". */
static void fmt_bound(const struct kn_cfg_field *f, double v, char *buf, size_t cap)
{
	if (f->type == KN_F_DURATION && v >= 0 && v < 9.2e18)
		kn_format_duration((uint64_t)v, buf, cap);
	else if (v == floor(v) && fabs(v) < 9e15)
		snprintf(buf, cap, "%.0f", v);
	else
		snprintf(buf, cap, "%g", v);
}

static int check_bounds(const struct kn_cfg_field *f, double v, const char *text, const char *path,
			struct kn_err *err)
{
	char lo[40], hi[40];
	if (!(f->min < f->max) || (v >= f->min && v <= f->max))
		return KN_OK;
	fmt_bound(f, f->min, lo, sizeof lo);
	fmt_bound(f, f->max, hi, sizeof hi);
	return kn_errf(err, "%s: must be between %s and %s, got %s", path, lo, hi, text);
}

static int check_choice(const struct kn_cfg_field *f, const char *s, const char *path,
			struct kn_err *err)
{
	char list[256], q[96];
	size_t k = 0;
	if (!f->choices)
		return KN_OK;
	for (const char *const *c = f->choices; *c; c++)
		if (!strcmp(*c, s))
			return KN_OK;
	list[0] = '\0';
	for (const char *const *c = f->choices; *c && k < sizeof list; c++) {
		int w = snprintf(list + k, sizeof list - k, "%s%s", k ? ", " : "", *c);
		if (w > 0)
			k += (size_t)w;
	}
	return kn_errf(err, "%s: must be one of %s; got %s", path, list,
		       kn_cfg_quote(s, q, sizeof q));
}

/* Parses scalar text s into the field (STR and the numeric kinds). */
static int set_scalar(const struct kn_cfg_field *f, const char *s, const char *path, void *dst,
		      struct kn_err *err)
{
	void *p = at(dst, f->off);
	switch (f->type) {
	case KN_F_STR: {
		if (check_choice(f, s, path, err) != KN_OK)
			return KN_ERR;
		char *c = strdup(s);
		if (!c)
			return kn_errf(err, "%s: out of memory", path);
		free(*(char **)p);
		*(char **)p = c;
		return KN_OK;
	}
	case KN_F_BOOL:
		return kn_parse_bool(s, path, (int *)p, err);
	case KN_F_INT: {
		int64_t v;
		if (kn_parse_int(s, path, &v, err) != KN_OK ||
		    check_bounds(f, (double)v, s, path, err) != KN_OK)
			return KN_ERR;
		*(int64_t *)p = v;
		return KN_OK;
	}
	case KN_F_UINT: {
		uint64_t v;
		if (kn_parse_uint(s, path, &v, err) != KN_OK ||
		    check_bounds(f, (double)v, s, path, err) != KN_OK)
			return KN_ERR;
		*(uint64_t *)p = v;
		return KN_OK;
	}
	case KN_F_DOUBLE: {
		double v;
		if (kn_parse_double(s, path, &v, err) != KN_OK ||
		    check_bounds(f, v, s, path, err) != KN_OK)
			return KN_ERR;
		*(double *)p = v;
		return KN_OK;
	}
	case KN_F_DURATION: {
		uint64_t v;
		if (kn_parse_duration(s, path, &v, err) != KN_OK ||
		    check_bounds(f, (double)v, s, path, err) != KN_OK)
			return KN_ERR;
		*(uint64_t *)p = v;
		return KN_OK;
	}
	default:
		return kn_errf(err, "%s: internal error: not a scalar field", path);
	}
}

static void free_field(const struct kn_cfg_field *f, void *dst);
static int apply_table(const struct kn_cfg_field *table, const struct kn_cnode *map,
		       const char *base, void *dst, int check_required, struct kn_err *err);

static int set_strlist(const struct kn_cnode *n, const char *path, struct kn_strlist *l,
		       struct kn_err *err)
{
	struct kn_strlist nl = { 0 };
	if (n->type == KN_CNODE_NULL)
		goto done;
	if (n->type != KN_CNODE_SEQ)
		return type_err(path, KN_F_STRLIST, n, err);
	if (n->n) {
		nl.v = calloc(n->n, sizeof *nl.v);
		if (!nl.v)
			return kn_errf(err, "%s: out of memory", path);
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct kn_cnode *c = &n->children[i];
		if (c->type != KN_CNODE_SCALAR) {
			type_err(c->path, KN_F_STR, c, err);
			goto fail;
		}
		if (!(nl.v[i] = strdup(c->value))) {
			kn_errf(err, "%s: out of memory", c->path);
			goto fail;
		}
		nl.n = i + 1;
	}
done:
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = nl;
	return KN_OK;
fail:
	for (size_t i = 0; i < nl.n; i++)
		free(nl.v[i]);
	free(nl.v);
	return KN_ERR;
}

static void strmap_release(struct kn_strmap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->keys[i]);
		free(m->values[i]);
	}
	free(m->keys);
	free(m->values);
	memset(m, 0, sizeof *m);
}

static int set_strmap(const struct kn_cnode *n, const char *path, struct kn_strmap *m,
		      struct kn_err *err)
{
	struct kn_strmap nm = { 0 };
	if (n->type == KN_CNODE_NULL)
		goto done;
	if (n->type != KN_CNODE_MAP)
		return type_err(path, KN_F_STRMAP, n, err);
	if (n->n) {
		nm.keys = calloc(n->n, sizeof *nm.keys);
		nm.values = calloc(n->n, sizeof *nm.values);
		if (!nm.keys || !nm.values) {
			kn_errf(err, "%s: out of memory", path);
			goto fail;
		}
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct kn_cnode *c = &n->children[i];
		if (c->type == KN_CNODE_MAP || c->type == KN_CNODE_SEQ) {
			type_err(c->path, KN_F_STR, c, err);
			goto fail;
		}
		nm.keys[i] = strdup(c->key);
		nm.values[i] = strdup(c->type == KN_CNODE_SCALAR ? c->value : "");
		nm.n = i + 1;
		if (!nm.keys[i] || !nm.values[i]) {
			kn_errf(err, "%s: out of memory", c->path);
			goto fail;
		}
	}
done:
	strmap_release(m);
	*m = nm;
	return KN_OK;
fail:
	strmap_release(&nm);
	return KN_ERR;
}

/* Writes node n (present in the map) into field f. */
static int set_node(const struct kn_cfg_field *f, const struct kn_cnode *n, const char *path,
		    void *dst, struct kn_err *err)
{
	void *p = at(dst, f->off);
	switch (f->type) {
	case KN_F_STR:
	case KN_F_BOOL:
	case KN_F_INT:
	case KN_F_UINT:
	case KN_F_DOUBLE:
	case KN_F_DURATION:
		if (n->type == KN_CNODE_NULL)
			return KN_OK; /* keeps the default */
		if (n->type != KN_CNODE_SCALAR)
			return type_err(path, f->type, n, err);
		return set_scalar(f, n->value, path, dst, err);
	case KN_F_STRLIST:
		return set_strlist(n, path, p, err);
	case KN_F_STRMAP:
		return set_strmap(n, path, p, err);
	case KN_F_SUB:
		if (!f->sub)
			return kn_errf(err, "%s: internal error: KN_F_SUB without a table", path);
		if (n->type != KN_CNODE_NULL && n->type != KN_CNODE_MAP)
			return type_err(path, KN_F_SUB, n, err);
		if (f->present_off)
			*(int *)at(dst, f->present_off) = 1;
		return apply_table(f->sub, n, path, p, 1, err);
	case KN_F_CUSTOM:
		if (!f->parse)
			return kn_errf(err, "%s: internal error: KN_F_CUSTOM without parse", path);
		if (f->free)
			f->free(p);
		return f->parse(n, p, err);
	}
	return kn_errf(err, "%s: internal error: unknown field type", path);
}

/* Default of one field; `path` names it. */
static int set_default(const struct kn_cfg_field *f, const char *path, void *dst,
		       struct kn_err *err)
{
	char dpath[KN_PATH_MAX + 16];
	void *p = at(dst, f->off);
	int rc = KN_OK;

	snprintf(dpath, sizeof dpath, "%s (default)", path);
	switch (f->type) {
	case KN_F_STR:
		if (f->def)
			return set_scalar(f, f->def, dpath, dst, err);
		free(*(char **)p);
		*(char **)p = NULL;
		return KN_OK;
	case KN_F_BOOL:
		if (!f->def)
			*(int *)p = 0;
		break;
	case KN_F_INT:
		if (!f->def)
			*(int64_t *)p = 0;
		break;
	case KN_F_UINT:
	case KN_F_DURATION:
		if (!f->def)
			*(uint64_t *)p = 0;
		break;
	case KN_F_DOUBLE:
		if (!f->def)
			*(double *)p = 0;
		break;
	case KN_F_SUB:
		if (f->present_off)
			*(int *)at(dst, f->present_off) = 0;
		if (!f->sub)
			return kn_errf(err, "%s: internal error: KN_F_SUB without a table", path);
		return apply_table(f->sub, NULL, path, p, 0, err);
	case KN_F_STRLIST:
	case KN_F_STRMAP:
	case KN_F_CUSTOM:
		free_field(f, dst);
		if (f->def) {
			struct kn_cnode *n = NULL;
			rc = kn_config_parse_at(f->def, strlen(f->def), "<default>", path, &n, err);
			if (rc == KN_OK)
				rc = set_node(f, n, path, dst, err);
			kn_cnode_free(n);
			if (rc != KN_OK)
				kn_err_prefix(err, "%s: bad default: ", path);
		}
		return rc;
	}
	if (f->def)
		return set_scalar(f, f->def, dpath, dst, err);
	return KN_OK;
}

static unsigned lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + 32u : c;
}

/* Case-insensitive edit distance, for "did you mean"; large for long keys. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65];
	if (la > 64 || lb > 64)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (lower((unsigned char)a[i - 1]) != lower((unsigned char)b[j - 1]));
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			if (up + 1 < best)
				best = up + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static int unknown_key(const struct kn_cfg_field *table, const struct kn_cnode *c,
		       struct kn_err *err)
{
	const char *best = NULL;
	size_t bd = (size_t)-1, kl = strlen(c->key);
	for (const struct kn_cfg_field *f = table; f->key; f++) {
		size_t d = distance(c->key, f->key);
		if (d < bd) {
			bd = d;
			best = f->key;
		}
	}
	if (best) {
		size_t bl = strlen(best), ml = kl > bl ? kl : bl;
		if (bd <= 2 && bd * 3 <= ml)
			return kn_errf(err, "%s: unknown key (did you mean \"%s\"?)", c->path, best);
	}
	return kn_errf(err, "%s: unknown key", c->path);
}

static int apply_table(const struct kn_cfg_field *table, const struct kn_cnode *map,
		       const char *base, void *dst, int check_required, struct kn_err *err)
{
	char path[KN_PATH_MAX], got[96];

	for (const struct kn_cfg_field *f = table; f->key; f++) {
		field_path(path, base, f->key);
		if (set_default(f, path, dst, err) != KN_OK)
			return KN_ERR;
	}
	if (map && map->type != KN_CNODE_NULL && map->type != KN_CNODE_MAP)
		return kn_errf(err, "%s: expected a map, got %s", *base ? base : "<root>",
			       kn_cnode_describe(map, got, sizeof got));
	if (map && map->type == KN_CNODE_MAP) {
		for (size_t i = 0; i < map->n; i++) {
			const struct kn_cnode *c = &map->children[i];
			const struct kn_cfg_field *f = table;
			while (f->key && strcmp(f->key, c->key))
				f++;
			if (!f->key)
				return unknown_key(table, c, err);
			if (set_node(f, c, c->path, dst, err) != KN_OK)
				return KN_ERR;
		}
	}
	if (!check_required)
		return KN_OK;
	for (const struct kn_cfg_field *f = table; f->key; f++) {
		if (!f->required)
			continue;
		const struct kn_cnode *c = kn_cnode_get(map, f->key);
		int scalar = f->type != KN_F_SUB && f->type != KN_F_STRLIST &&
			     f->type != KN_F_STRMAP && f->type != KN_F_CUSTOM;
		if (!c || (scalar && c->type == KN_CNODE_NULL)) {
			field_path(path, base, f->key);
			return kn_errf(err, "%s: missing", path);
		}
	}
	return KN_OK;
}

int kn_cfg_apply_at(const struct kn_cfg_field *table, const struct kn_cnode *map,
		    const char *path, void *dst, struct kn_err *err)
{
	const char *base = map ? map->path : path;
	return apply_table(table, map, base ? base : "", dst, 1, err);
}

int kn_cfg_apply(const struct kn_cfg_field *table, const struct kn_cnode *map, void *dst,
		 struct kn_err *err)
{
	return kn_cfg_apply_at(table, map, "", dst, err);
}

int kn_cfg_defaults(const struct kn_cfg_field *table, void *dst, struct kn_err *err)
{
	return apply_table(table, NULL, "", dst, 0, err);
}

static void free_field(const struct kn_cfg_field *f, void *dst)
{
	void *p = at(dst, f->off);
	switch (f->type) {
	case KN_F_STR:
		free(*(char **)p);
		*(char **)p = NULL;
		break;
	case KN_F_STRLIST: {
		struct kn_strlist *l = p;
		for (size_t i = 0; i < l->n; i++)
			free(l->v[i]);
		free(l->v);
		l->v = NULL;
		l->n = 0;
		break;
	}
	case KN_F_STRMAP:
		strmap_release(p);
		break;
	case KN_F_SUB:
		if (f->sub)
			kn_cfg_free(f->sub, p);
		break;
	case KN_F_CUSTOM:
		if (f->free)
			f->free(p);
		break;
	default:
		break;
	}
}

void kn_cfg_free(const struct kn_cfg_field *table, void *dst)
{
	if (!table || !dst)
		return;
	for (const struct kn_cfg_field *f = table; f->key; f++)
		free_field(f, dst);
}
