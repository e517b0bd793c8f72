/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_replace: OTTL's replace_* editors (ottlfuncs):
 *
 *   replace_pattern(target, regex, replacement, function?, replacement_format?)
 *       every match in the string at target replaced (Go's ReplaceAllString,
 *       $1 / ${name} expansion); a non-string target is left alone
 *   replace_all_patterns(map, "key"|"value", regex, replacement, function?, format?)
 *       the same on every string value, or on every key
 *   replace_match(target, glob, replacement, function?, format?)
 *       the whole string replaced when it matches the glob (filepath.Match)
 *   replace_all_matches(map, glob, replacement, function?, format?)
 *       every string value that matches
 * `function` names a hash converter (SHA256, SHA1, SHA512, MD5) applied to
 * each expanded replacement, `replacement_format` a format with one %s
 * around it. Regexes and globs are checked and compiled at startup; the
 * replacement itself may be any expression that yields a string. */
#include <string.h>

#include "kn_ottl_int.h"

static int check_format(struct kn_ottl_node *fmt, struct kn_ottl_cc *cc)
{
	if (!fmt)
		return KN_OK;
	int n = 0;
	for (uint32_t i = 0; i < fmt->v.len; i++) {
		if (fmt->v.p[i] != '%')
			continue;
		if (i + 1 < fmt->v.len && fmt->v.p[i + 1] == '%') {
			i++;
			continue;
		}
		if (i + 1 < fmt->v.len && fmt->v.p[i + 1] == 's') {
			n++;
			i++;
			continue;
		}
		return kn_ottl_cc_err(cc, fmt, "replacement_format may only contain %%s (and %%%%)");
	}
	if (n != 1)
		return kn_ottl_cc_err(cc, fmt, "replacement_format must contain exactly one %%s");
	return KN_OK;
}

static int check_glob(struct kn_ottl_node *g, struct kn_ottl_cc *cc)
{
	if (kn_ottl_glob_check(g->v.p, g->v.len) < 0)
		return kn_ottl_cc_err(cc, g, "invalid glob pattern (path/filepath.Match syntax)");
	return KN_OK;
}

/* target, regex, replacement, function, format */
static int check_replace_pattern(struct kn_ottl_node *c, struct kn_ottl_cc *cc)
{
	c->re = kn_ottl_cc_regex(cc, c->kids[1]);
	if (!c->re)
		return KN_ERR;
	return check_format(c->kids[4], cc);
}

/* map, mode, regex, replacement, function, format */
static int check_replace_all_patterns(struct kn_ottl_node *c, struct kn_ottl_cc *cc)
{
	const struct kn_ottl_val *m = &c->kids[1]->v;
	if (m->len == 3 && !memcmp(m->p, "key", 3))
		c->aux = 1;
	else if (m->len == 5 && !memcmp(m->p, "value", 5))
		c->aux = 0;
	else
		return kn_ottl_cc_err(cc, c->kids[1], "replace_all_patterns: mode must be \"key\" or \"value\"");
	c->re = kn_ottl_cc_regex(cc, c->kids[2]);
	if (!c->re)
		return KN_ERR;
	return check_format(c->kids[5], cc);
}

/* target, glob, replacement, function, format */
static int check_replace_match(struct kn_ottl_node *c, struct kn_ottl_cc *cc)
{
	if (check_glob(c->kids[1], cc) != KN_OK)
		return KN_ERR;
	return check_format(c->kids[4], cc);
}

static int repl_str(const struct kn_ottl_node *c, uint32_t i, struct kn_ottl_tx *tx, const uint8_t **s,
		    uint32_t *len)
{
	struct kn_ottl_val v;
	if (kn_ottl_eval(c->kids[i], tx, &v) < 0)
		return -1;
	if (v.t != KN_V_STR)
		return kn_ottl_rt_err(tx, "%s: the replacement is %s, not a string", c->name, kn_ottl_vt_an(v.t));
	*s = v.p;
	*len = v.len;
	return 0;
}

static const struct kn_ottl_fn *fn_arg(const struct kn_ottl_node *c, uint32_t i)
{
	return c->kids[i] ? c->kids[i]->fn : NULL;
}

static void fmt_arg(const struct kn_ottl_node *c, uint32_t i, const uint8_t **f, uint32_t *fl)
{
	*f = c->kids[i] ? c->kids[i]->v.p : NULL;
	*fl = c->kids[i] ? c->kids[i]->v.len : 0;
}

static int run_replace_pattern(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)out;
	struct kn_ottl_val v;
	if (kn_ottl_path_get(c->kids[0], tx, &v) < 0)
		return -1;
	if (v.t != KN_V_STR)
		return 0;
	const uint8_t *r = NULL, *f = NULL, *res = NULL;
	uint32_t rl = 0, fl = 0, resl = 0;
	int changed = 0;
	if (repl_str(c, 2, tx, &r, &rl) < 0)
		return -1;
	fmt_arg(c, 4, &f, &fl);
	if (kn_ottl_re_replace(tx, c->re, v.p, v.len, r, rl, fn_arg(c, 3), f, fl, &res, &resl, &changed) < 0)
		return -1;
	if (!changed)
		return 0;
	v.p = res;
	v.len = resl;
	return kn_ottl_path_set(c->kids[0], tx, &v);
}

static int run_replace_all_patterns(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)out;
	const uint8_t *r = NULL, *f = NULL;
	uint32_t rl = 0, fl = 0;
	if (repl_str(c, 3, tx, &r, &rl) < 0)
		return -1;
	fmt_arg(c, 5, &f, &fl);
	const struct kn_ottl_fn *hash = fn_arg(c, 4);
	/* the map: a top-level attribute list, edited in place */
	struct kn_wire_attrs *at;
	struct kn_ottl_val mv;
	int nested = c->kids[0]->nkeys > 0;
	if (!nested) {
		if (!(at = kn_ottl_path_view(c->kids[0], tx)))
			return -1;
	} else {
		if (kn_ottl_path_get(c->kids[0], tx, &mv) < 0)
			return -1;
		if (mv.t == KN_V_NIL)
			return 0;
		if (mv.t != KN_V_MAP)
			return kn_ottl_rt_err(tx, "%s: the target is %s, not a map", c->name, kn_ottl_vt_an(mv.t));
		const uint8_t *p = NULL;
		uint32_t len = 0;
		if (kn_ottl_map_encode(tx, &mv, &p, &len) < 0)
			return -1;
		if (kn_wire_attrs_load(&tx->tmp, p, len, 1) < 0)
			return kn_ottl_rt_err(tx, "%s: malformed map", c->name);
		at = &tx->tmp;
	}
	for (uint32_t i = 0; i < at->n; i++) {
		struct kn_wire_attr *e = &at->a[i];
		if (e->state == KN_WA_DELETED)
			continue;
		const uint8_t *res = NULL;
		uint32_t resl = 0;
		int changed = 0;
		if (c->aux) {
			if (kn_ottl_re_replace(tx, c->re, e->key, e->key_len, r, rl, hash, f, fl, &res, &resl, &changed) < 0)
				return -1;
			if (changed)
				kn_wire_attrs_rename(at, i, (const char *)res, resl);
			continue;
		}
		if (e->v.type != KN_AV_STR)
			continue;
		if (kn_ottl_re_replace(tx, c->re, e->v.s, e->v.len, r, rl, hash, f, fl, &res, &resl, &changed) < 0)
			return -1;
		if (changed) {
			struct kn_av nv = {.type = KN_AV_STR, .s = res, .len = resl};
			kn_wire_attrs_set(at, i, &nv);
		}
	}
	if (nested && at->edited) {
		memset(&mv, 0, sizeof mv);
		mv.t = KN_V_MAP;
		mv.field = 1;
		if (kn_ottl_view_encode(tx, at, &mv.p, &mv.len) < 0)
			return -1;
		return kn_ottl_path_set(c->kids[0], tx, &mv);
	}
	return 0;
}

/* The final replacement for a glob match: hash and format applied. */
static int glob_repl(const struct kn_ottl_node *c, uint32_t ri, struct kn_ottl_tx *tx, const uint8_t **s,
		     uint32_t *len)
{
	if (repl_str(c, ri, tx, s, len) < 0)
		return -1;
	const struct kn_ottl_fn *hash = fn_arg(c, ri + 1);
	if (hash) {
		struct kn_ottl_val hv;
		if (kn_ottl_hash_apply(hash, tx, *s, *len, &hv) < 0)
			return -1;
		*s = hv.p;
		*len = hv.len;
	}
	const uint8_t *f = NULL;
	uint32_t fl = 0;
	fmt_arg(c, ri + 2, &f, &fl);
	if (f && kn_ottl_format1(tx, f, fl, *s, *len, s, len) < 0)
		return -1;
	return 0;
}

static int run_replace_match(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)out;
	struct kn_ottl_val v;
	if (kn_ottl_path_get(c->kids[0], tx, &v) < 0)
		return -1;
	if (v.t != KN_V_STR)
		return 0;
	int m = kn_ottl_glob(c->kids[1]->v.p, c->kids[1]->v.len, v.p, v.len);
	if (m <= 0)
		return m < 0 ? kn_ottl_rt_err(tx, "%s: invalid glob pattern", c->name) : 0;
	if (glob_repl(c, 2, tx, &v.p, &v.len) < 0)
		return -1;
	return kn_ottl_path_set(c->kids[0], tx, &v);
}

static int run_replace_all_matches(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)out;
	struct kn_wire_attrs *at = NULL;
	struct kn_ottl_val mv;
	int nested = c->kids[0]->nkeys > 0;
	if (!nested) {
		if (!(at = kn_ottl_path_view(c->kids[0], tx)))
			return -1;
	} else {
		if (kn_ottl_path_get(c->kids[0], tx, &mv) < 0)
			return -1;
		if (mv.t == KN_V_NIL)
			return 0;
		if (mv.t != KN_V_MAP)
			return kn_ottl_rt_err(tx, "%s: the target is %s, not a map", c->name, kn_ottl_vt_an(mv.t));
		const uint8_t *p = NULL;
		uint32_t len = 0;
		if (kn_ottl_map_encode(tx, &mv, &p, &len) < 0)
			return -1;
		if (kn_wire_attrs_load(&tx->tmp, p, len, 1) < 0)
			return kn_ottl_rt_err(tx, "%s: malformed map", c->name);
		at = &tx->tmp;
	}
	const uint8_t *r = NULL;
	uint32_t rl = 0;
	int have = 0;
	for (uint32_t i = 0; i < at->n; i++) {
		struct kn_wire_attr *e = &at->a[i];
		if (e->state == KN_WA_DELETED || e->v.type != KN_AV_STR)
			continue;
		int m = kn_ottl_glob(c->kids[1]->v.p, c->kids[1]->v.len, e->v.s ? e->v.s : (const uint8_t *)"", e->v.len);
		if (m < 0)
			return kn_ottl_rt_err(tx, "%s: invalid glob pattern", c->name);
		if (!m)
			continue;
		if (!have) {
			if (glob_repl(c, 2, tx, &r, &rl) < 0)
				return -1;
			have = 1;
		}
		struct kn_av nv = {.type = KN_AV_STR, .s = r, .len = rl};
		kn_wire_attrs_set(at, i, &nv);
	}
	if (nested && at->edited) {
		memset(&mv, 0, sizeof mv);
		mv.t = KN_V_MAP;
		mv.field = 1;
		if (kn_ottl_view_encode(tx, at, &mv.p, &mv.len) < 0)
			return -1;
		return kn_ottl_path_set(c->kids[0], tx, &mv);
	}
	return 0;
}

#define P(n, k) {.name = n, .kind = k}
#define OPT(n, k) {.name = n, .kind = k, .optional = 1}

const struct kn_ottl_fn kn_ottl_fns_replace[] = {
	{.name = "replace_pattern", .editor = 1, .nparams = 5,
	 .params = {P("target", KN_PK_TARGET), P("regex", KN_PK_STR), P("replacement", KN_PK_ANY),
		    OPT("function", KN_PK_FUNC), OPT("replacement_format", KN_PK_STR)},
	 .check = check_replace_pattern, .run = run_replace_pattern},
	{.name = "replace_all_patterns", .editor = 1, .nparams = 6,
	 .params = {P("target", KN_PK_MAPTARGET), P("mode", KN_PK_STR), P("regex", KN_PK_STR),
		    P("replacement", KN_PK_ANY), OPT("function", KN_PK_FUNC), OPT("replacement_format", KN_PK_STR)},
	 .check = check_replace_all_patterns, .run = run_replace_all_patterns},
	{.name = "replace_match", .editor = 1, .nparams = 5,
	 .params = {P("target", KN_PK_TARGET), P("pattern", KN_PK_STR), P("replacement", KN_PK_ANY),
		    OPT("function", KN_PK_FUNC), OPT("replacement_format", KN_PK_STR)},
	 .check = check_replace_match, .run = run_replace_match},
	{.name = "replace_all_matches", .editor = 1, .nparams = 5,
	 .params = {P("target", KN_PK_MAPTARGET), P("pattern", KN_PK_STR), P("replacement", KN_PK_ANY),
		    OPT("function", KN_PK_FUNC), OPT("replacement_format", KN_PK_STR)},
	 .check = check_replace_match, .run = run_replace_all_matches},
	{.name = NULL},
};
