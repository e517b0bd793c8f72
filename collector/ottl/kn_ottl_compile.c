/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_compile: from a statement's text to an immutable program.
 *
 * parse (kn_ottl_parse.c) -> infer the context when asked (the lowest
 * context a path prefix names; an unprefixed path stands for the default
 * context; a function bound to one context, IsRootSpan, names it too) ->
 * resolve the tree in place: paths to (context, field) for that context,
 * upper-case identifiers to enum values (SPAN_KIND_*, STATUS_CODE_*) or to
 * function names where a parameter takes a function, calls to the function
 * table with their arguments ordered by parameter (named arguments placed,
 * optional ones left NULL), literal parameters checked for type, regular
 * expressions compiled once. It also checks where booleans are required:
 * `and` / `or` / `not` and a where clause take comparisons, true/false or
 * converters (a bare path is not a boolean, as in OTel), and comparisons
 * and math take values, not booleans.
 *
 * Every error names the config path, the statement and the token with its
 * column: `processors.transform.trace_statements[1]: statement "set(nme,
 * 1)": unknown path "nme" in the span context at column 5 ("nme")`.
 * Config time only: allocation is fine here. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kn_ottl_int.h"

/* ---- pool ---- */

struct kn_ottl_pool_blk {
	struct kn_ottl_pool_blk *next;
	size_t cap, used;
	_Alignas(16) uint8_t data[];
};

struct kn_ottl_pool {
	struct kn_ottl_pool_blk *blk;
};

void *kn_ottl_pool_alloc(struct kn_ottl_pool *pool, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct kn_ottl_pool_blk *b = pool->blk;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > 8192 ? n : 8192;
		b = malloc(sizeof *b + cap);
		if (!b)
			return NULL;
		b->cap = cap;
		b->used = 0;
		b->next = pool->blk;
		pool->blk = b;
	}
	void *r = b->data + b->used;
	b->used += n;
	memset(r, 0, n);
	return r;
}

char *kn_ottl_pool_strndup(struct kn_ottl_pool *pool, const char *s, size_t n)
{
	char *r = kn_ottl_pool_alloc(pool, n + 1);
	if (r) {
		memcpy(r, s, n);
		r[n] = '\0';
	}
	return r;
}

static void pool_free(struct kn_ottl_pool *pool)
{
	if (!pool)
		return;
	for (struct kn_ottl_pool_blk *b = pool->blk, *n; b; b = n) {
		n = b->next;
		free(b);
	}
	free(pool);
}

/* ---- names ---- */

static const char *const ctx_names[KN_OTTL_NCTX] = {"resource", "scope", "span", "spanevent"};

int kn_ottl_ctx_parse(const char *name)
{
	for (int i = 0; i < KN_OTTL_NCTX; i++)
		if (!strcmp(name, ctx_names[i]))
			return i;
	return -1;
}

const char *kn_ottl_ctx_name(int ctx)
{
	return ctx >= 0 && ctx < KN_OTTL_NCTX ? ctx_names[ctx] : "?";
}

int kn_ottl_errmode_parse(const char *name)
{
	if (!strcmp(name, "propagate"))
		return KN_OTTL_PROPAGATE;
	if (!strcmp(name, "ignore"))
		return KN_OTTL_IGNORE;
	if (!strcmp(name, "silent"))
		return KN_OTTL_SILENT;
	return -1;
}

const char *kn_ottl_errmode_name(int mode)
{
	return mode == KN_OTTL_IGNORE ? "ignore" : mode == KN_OTTL_SILENT ? "silent" : "propagate";
}

/* ---- errors ---- */

/* Appends s[0..n) quoted, escaping quotes and control bytes, cut at max. */
static size_t quote(char *out, size_t cap, const char *s, size_t n, size_t max)
{
	size_t w = 0;
	for (size_t i = 0; i < n && w + 8 < cap; i++) {
		if (i == max) {
			w += (size_t)snprintf(out + w, cap - w, "...");
			break;
		}
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			w += (size_t)snprintf(out + w, cap - w, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			w += (size_t)snprintf(out + w, cap - w, "\\x%02x", c);
		else
			out[w++] = (char)c;
	}
	out[w < cap ? w : cap - 1] = '\0';
	return w;
}

int kn_ottl_err_at(const struct kn_ottl_prog *p, uint32_t pos, uint32_t end, struct kn_err *err,
		   const char *fmt, ...)
{
	char msg[256], src[200], tok[80];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	size_t slen = strlen(p->src);
	quote(src, sizeof src, p->src, slen, 150);
	if (pos > slen)
		pos = (uint32_t)slen;
	if (end > slen)
		end = (uint32_t)slen;
	if (end <= pos)
		end = pos < slen ? pos + 1 : pos;
	quote(tok, sizeof tok, p->src + pos, end - pos, 40);
	if (pos >= slen)
		return kn_errf(err, "%s: %s \"%s\": %s at the end", p->where,
			       p->kind == KN_OTTL_STATEMENT ? "statement" : "condition", src, msg);
	return kn_errf(err, "%s: %s \"%s\": %s at column %u (\"%s\")", p->where,
		       p->kind == KN_OTTL_STATEMENT ? "statement" : "condition", src, msg, pos + 1, tok);
}

int kn_ottl_cc_err(struct kn_ottl_cc *cc, const struct kn_ottl_node *at, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return kn_ottl_err_at(cc->prog, at->pos, at->end, cc->err, "%s", msg);
}

/* ---- enums ---- */

static const struct {
	const char *name;
	int64_t v;
} enums[] = {
	{"SPAN_KIND_UNSPECIFIED", 0}, {"SPAN_KIND_INTERNAL", 1}, {"SPAN_KIND_SERVER", 2},
	{"SPAN_KIND_CLIENT", 3}, {"SPAN_KIND_PRODUCER", 4}, {"SPAN_KIND_CONSUMER", 5},
	{"STATUS_CODE_UNSET", 0}, {"STATUS_CODE_OK", 1}, {"STATUS_CODE_ERROR", 2},
};

/* ---- resolution ---- */

static int resolve(struct kn_ottl_cc *cc, struct kn_ottl_node *n);

static int is_boolop(const struct kn_ottl_node *n)
{
	return n->kind == KN_N_CMP || n->kind == KN_N_AND || n->kind == KN_N_OR || n->kind == KN_N_NOT;
}

/* A value position: no comparison or boolean operator. */
static int resolve_value(struct kn_ottl_cc *cc, struct kn_ottl_node *n)
{
	if (is_boolop(n))
		return kn_ottl_cc_err(cc, n, "a comparison or boolean expression is not a value here");
	return resolve(cc, n);
}

/* A boolean position: comparisons, true/false, not/and/or, converters. */
static int resolve_bool(struct kn_ottl_cc *cc, struct kn_ottl_node *n)
{
	switch (n->kind) {
	case KN_N_LIT:
		if (n->v.t != KN_V_BOOL)
			return kn_ottl_cc_err(cc, n, "expected a boolean (a comparison, true/false or a converter), got %s literal",
					      kn_ottl_vt_an(n->v.t));
		return KN_OK;
	case KN_N_PATH:
		return kn_ottl_cc_err(cc, n, "a path is not a boolean: compare it (for example == true)");
	case KN_N_MATH:
		return kn_ottl_cc_err(cc, n, "a math expression is not a boolean: compare it");
	case KN_N_LIST:
	case KN_N_MAP:
	case KN_N_IDENT:
		return kn_ottl_cc_err(cc, n, "expected a boolean (a comparison, true/false or a converter)");
	case KN_N_CALL:
		if (resolve(cc, n) != KN_OK)
			return KN_ERR;
		n->boolish = 1;
		return KN_OK;
	default:
		return resolve(cc, n);
	}
}

static int resolve_keys(struct kn_ottl_cc *cc, struct kn_ottl_node *n)
{
	for (uint32_t i = 0; i < n->nkeys; i++) {
		struct kn_ottl_node *k = n->keys[i];
		if (resolve_value(cc, k) != KN_OK)
			return KN_ERR;
		if (k->kind == KN_N_LIT && k->v.t != KN_V_STR && k->v.t != KN_V_INT)
			return kn_ottl_cc_err(cc, k, "a key must be a string or an int, not %s", kn_ottl_vt_an(k->v.t));
	}
	return KN_OK;
}

static const char *pk_name(int k)
{
	switch (k) {
	case KN_PK_STR: return "a string literal";
	case KN_PK_INT: return "an int literal";
	case KN_PK_BOOL: return "a bool literal";
	case KN_PK_STRLIST: return "a list of string literals";
	case KN_PK_LIST: return "a list";
	case KN_PK_FUNC: return "a converter name (SHA256, SHA1, SHA512, MD5)";
	case KN_PK_TARGET: return "a path";
	case KN_PK_MAPTARGET: return "a path to a map (attributes)";
	default: return "a value";
	}
}

static int resolve_arg(struct kn_ottl_cc *cc, struct kn_ottl_node *call, const struct kn_ottl_param *pm,
		       struct kn_ottl_node *a)
{
	switch (pm->kind) {
	case KN_PK_ANY:
		return resolve_value(cc, a);
	case KN_PK_TARGET:
	case KN_PK_MAPTARGET:
		if (a->kind != KN_N_PATH)
			return kn_ottl_cc_err(cc, a, "argument %s of %s must be %s", pm->name, call->name, pk_name(pm->kind));
		if (kn_ottl_path_resolve(cc, a, 1) != KN_OK || resolve_keys(cc, a) != KN_OK)
			return KN_ERR;
		if (pm->kind == KN_PK_MAPTARGET && !kn_ottl_path_is_map(a))
			return kn_ottl_cc_err(cc, a, "argument %s of %s must be a map (attributes or an attribute holding a map)",
					      pm->name, call->name);
		return KN_OK;
	case KN_PK_STR:
		if (a->kind != KN_N_LIT || a->v.t != KN_V_STR)
			return kn_ottl_cc_err(cc, a, "argument %s of %s must be %s", pm->name, call->name, pk_name(pm->kind));
		return KN_OK;
	case KN_PK_INT:
		if (a->kind != KN_N_LIT || a->v.t != KN_V_INT)
			return kn_ottl_cc_err(cc, a, "argument %s of %s must be %s", pm->name, call->name, pk_name(pm->kind));
		return KN_OK;
	case KN_PK_BOOL:
		if (a->kind != KN_N_LIT || a->v.t != KN_V_BOOL)
			return kn_ottl_cc_err(cc, a, "argument %s of %s must be %s", pm->name, call->name, pk_name(pm->kind));
		return KN_OK;
	case KN_PK_STRLIST:
		if (a->kind != KN_N_LIST)
			return kn_ottl_cc_err(cc, a, "argument %s of %s must be %s", pm->name, call->name, pk_name(pm->kind));
		for (uint32_t i = 0; i < a->nkids; i++)
			if (a->kids[i]->kind != KN_N_LIT || a->kids[i]->v.t != KN_V_STR)
				return kn_ottl_cc_err(cc, a->kids[i], "argument %s of %s must be %s", pm->name, call->name,
						      pk_name(pm->kind));
		return KN_OK;
	case KN_PK_LIST:
		if (a->kind != KN_N_LIST)
			return kn_ottl_cc_err(cc, a, "argument %s of %s must be %s", pm->name, call->name, pk_name(pm->kind));
		return resolve(cc, a);
	case KN_PK_FUNC: {
		/* converters usable as an argument are marked editor == 2 in the table */
		const struct kn_ottl_fn *f = a->kind == KN_N_IDENT ? kn_ottl_fn_find(a->name) : NULL;
		if (!f || f->editor != 2)
			return kn_ottl_cc_err(cc, a, "argument %s of %s must be %s", pm->name, call->name, pk_name(pm->kind));
		a->fn = f;
		return KN_OK;
	}
	default:
		return kn_ottl_cc_err(cc, a, "internal: unknown parameter kind");
	}
}

static int resolve_call(struct kn_ottl_cc *cc, struct kn_ottl_node *n, int as_editor)
{
	const struct kn_ottl_fn *f = kn_ottl_fn_find(n->name);
	int upper = n->name[0] >= 'A' && n->name[0] <= 'Z';
	if (!f)
		return kn_ottl_cc_err(cc, n, "unknown %s \"%s\" (not supported by kansatsu)",
				      upper ? "converter" : "editor", n->name);
	if (f->editor == 1 && !as_editor)
		return kn_ottl_cc_err(cc, n, "%s is an editor: it cannot be used as a value", n->name);
	if (f->editor != 1 && as_editor)
		return kn_ottl_cc_err(cc, n, "%s is a converter: a statement starts with an editor", n->name);
	if (f->ctx_mask && !(f->ctx_mask & (1u << cc->ctx)))
		return kn_ottl_cc_err(cc, n, "%s cannot be used in the %s context", n->name, kn_ottl_ctx_name(cc->ctx));
	struct kn_ottl_node **args = kn_ottl_pool_alloc(cc->prog->pool, (f->nparams ? f->nparams : 1) * sizeof *args);
	if (!args)
		return kn_errf(cc->err, "%s: out of memory", cc->where);
	uint32_t npos = 0;
	for (uint32_t i = 0; i < n->nkids; i++) {
		const char *an = n->argnames ? n->argnames[i] : NULL;
		uint32_t slot;
		if (!an) {
			slot = npos++;
			if (slot >= f->nparams)
				return kn_ottl_cc_err(cc, n->kids[i], "too many arguments for %s (it takes %u)", n->name,
						      f->nparams);
		} else {
			for (slot = 0; slot < f->nparams; slot++)
				if (!strcmp(f->params[slot].name, an))
					break;
			if (slot == f->nparams)
				return kn_ottl_cc_err(cc, n->kids[i], "%s has no parameter named \"%s\"", n->name, an);
		}
		if (args[slot])
			return kn_ottl_cc_err(cc, n->kids[i], "argument %s of %s given twice", f->params[slot].name, n->name);
		args[slot] = n->kids[i];
	}
	for (uint32_t s = 0; s < f->nparams; s++) {
		if (!args[s]) {
			if (!f->params[s].optional)
				return kn_ottl_cc_err(cc, n, "%s is missing its argument %s", n->name, f->params[s].name);
			continue;
		}
		if (resolve_arg(cc, n, &f->params[s], args[s]) != KN_OK)
			return KN_ERR;
	}
	n->kids = args;
	n->nkids = f->nparams;
	n->argnames = NULL;
	n->fn = f;
	if (f->check && f->check(n, cc) != KN_OK)
		return KN_ERR;
	return resolve_keys(cc, n);
}

static int resolve(struct kn_ottl_cc *cc, struct kn_ottl_node *n)
{
	switch (n->kind) {
	case KN_N_LIT:
		return KN_OK;
	case KN_N_IDENT:
		for (size_t i = 0; i < sizeof enums / sizeof enums[0]; i++)
			if (!strcmp(enums[i].name, n->name)) {
				n->kind = KN_N_LIT;
				n->v.t = KN_V_INT;
				n->v.i = enums[i].v;
				return KN_OK;
			}
		if (kn_ottl_fn_find(n->name))
			return kn_ottl_cc_err(cc, n, "%s is a function: call it as %s(...)", n->name, n->name);
		return kn_ottl_cc_err(cc, n, "unknown enum \"%s\" (known: SPAN_KIND_*, STATUS_CODE_*)", n->name);
	case KN_N_PATH:
		if (kn_ottl_path_resolve(cc, n, 0) != KN_OK)
			return KN_ERR;
		return resolve_keys(cc, n);
	case KN_N_CALL:
		return resolve_call(cc, n, 0);
	case KN_N_LIST:
		for (uint32_t i = 0; i < n->nkids; i++)
			if (resolve_value(cc, n->kids[i]) != KN_OK)
				return KN_ERR;
		return KN_OK;
	case KN_N_MAP:
		for (uint32_t i = 0; i < n->nkids; i++)
			if (resolve_value(cc, n->kids[i]) != KN_OK)
				return KN_ERR;
		return KN_OK;
	case KN_N_MATH:
	case KN_N_CMP:
		if (resolve_value(cc, n->kids[0]) != KN_OK || resolve_value(cc, n->kids[1]) != KN_OK)
			return KN_ERR;
		return KN_OK;
	case KN_N_AND:
	case KN_N_OR:
		if (resolve_bool(cc, n->kids[0]) != KN_OK || resolve_bool(cc, n->kids[1]) != KN_OK)
			return KN_ERR;
		return KN_OK;
	case KN_N_NOT:
		return resolve_bool(cc, n->kids[0]);
	default:
		return kn_ottl_cc_err(cc, n, "internal: unknown node");
	}
}

/* ---- inference ---- */

struct infer {
	int lowest;         /* the lowest context a prefix named, or -1 */
	int unprefixed;     /* a path without prefix */
};

static void infer_walk(const struct kn_ottl_node *n, struct infer *in, int depth)
{
	if (!n || depth > 200)
		return;
	if (n->kind == KN_N_PATH) {
		int c = kn_ottl_path_prefix_ctx(n);
		if (c == KN_OTTL_CTX_INFER)
			in->unprefixed = 1;
		else if (c > in->lowest)
			in->lowest = c;
	}
	if (n->kind == KN_N_CALL) {
		const struct kn_ottl_fn *f = kn_ottl_fn_find(n->name);
		if (f && f->ctx_mask && !(f->ctx_mask & (f->ctx_mask - 1))) {
			int c = __builtin_ctz(f->ctx_mask);
			if (c > in->lowest)
				in->lowest = c;
		}
	}
	for (uint32_t i = 0; i < n->nkids; i++)
		infer_walk(n->kids[i], in, depth + 1);
	for (uint32_t i = 0; i < n->nkeys; i++)
		infer_walk(n->keys[i], in, depth + 1);
}

/* ---- programs ---- */

void kn_ottl_prog_free(struct kn_ottl_prog *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->nres; i++)
		kn_ottl_re_free(p->res[i]);
	free(p->res);
	free(p->src);
	free(p->where);
	pool_free(p->pool);
	free(p);
}

int kn_ottl_prog_ctx(const struct kn_ottl_prog *p)
{
	return p->ctx;
}

const char *kn_ottl_prog_src(const struct kn_ottl_prog *p)
{
	return p->src;
}

int kn_ottl_compile(const char *src, enum kn_ottl_kind kind, int ctx, int dflt,
		    const char *where, struct kn_ottl_prog **out, struct kn_err *err)
{
	*out = NULL;
	struct kn_ottl_prog *p = calloc(1, sizeof *p);
	if (!p || !(p->pool = calloc(1, sizeof *p->pool)) || !(p->src = strdup(src ? src : "")) ||
	    !(p->where = strdup(where ? where : "ottl"))) {
		kn_ottl_prog_free(p);
		return kn_errf(err, "%s: out of memory", where ? where : "ottl");
	}
	p->kind = kind;
	if (kn_ottl_parse(p, err) != KN_OK)
		goto fail;
	if (ctx == KN_OTTL_CTX_INFER) {
		struct infer in = {.lowest = -1};
		infer_walk(p->root, &in, 0);
		infer_walk(p->cond, &in, 0);
		ctx = in.lowest;
		if (in.unprefixed && dflt > ctx)
			ctx = dflt;
		if (ctx < 0)
			ctx = dflt;
	}
	if (ctx < 0 || ctx >= KN_OTTL_NCTX) {
		kn_errf(err, "%s: no context", p->where);
		goto fail;
	}
	p->ctx = ctx;
	struct kn_ottl_cc cc = {.src = p->src, .where = p->where, .ctx = ctx, .err = err, .prog = p};
	if (kind == KN_OTTL_STATEMENT) {
		if (resolve_call(&cc, p->root, 1) != KN_OK)
			goto fail;
		if (p->cond && resolve_bool(&cc, p->cond) != KN_OK)
			goto fail;
	} else if (resolve_bool(&cc, p->root) != KN_OK) {
		goto fail;
	}
	*out = p;
	return KN_OK;
fail:
	kn_ottl_prog_free(p);
	return KN_ERR;
}
