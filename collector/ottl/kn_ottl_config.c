/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_config: OTTL statement and condition lists from the config tree
 * (see kn_ottl_config.h). Config time only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kn_ottl_config.h"

int kn_ottl_cfg_errmode(const struct kn_cnode *n, int *mode, struct kn_err *err)
{
	if (n->type != KN_CNODE_SCALAR)
		return kn_errf(err, "%s: expected one of propagate, ignore, silent", n->path);
	int m = kn_ottl_errmode_parse(n->value);
	if (m < 0)
		return kn_errf(err, "%s: unknown error_mode \"%s\" (one of propagate, ignore, silent)", n->path, n->value);
	*mode = m;
	return KN_OK;
}

void kn_ottl_progs_free(struct kn_ottl_progs *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->n; i++)
		kn_ottl_prog_free(p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

static int progs_push(struct kn_ottl_progs *p, struct kn_ottl_prog *x)
{
	struct kn_ottl_prog **v = realloc(p->v, (p->n + 1) * sizeof *v);
	if (!v)
		return -1;
	p->v = v;
	p->v[p->n++] = x;
	return 0;
}

static int item_text(const struct kn_cnode *n, const char **s, struct kn_err *err)
{
	if (n->type != KN_CNODE_SCALAR || !n->value)
		return kn_errf(err, "%s: expected an OTTL %s as a string", n->path,
			       n->type == KN_CNODE_MAP ? "statement (a map is only allowed at the top of the list)" : "text");
	*s = n->value;
	return KN_OK;
}

static int compile_one(const struct kn_cnode *n, enum kn_ottl_kind kind, int ctx, int dflt,
		       struct kn_ottl_progs *out, struct kn_err *err)
{
	const char *src = NULL;
	struct kn_ottl_prog *p = NULL;
	if (item_text(n, &src, err) != KN_OK)
		return KN_ERR;
	if (kn_ottl_compile(src, kind, ctx, dflt, n->path, &p, err) != KN_OK)
		return KN_ERR;
	if (progs_push(out, p) < 0) {
		kn_ottl_prog_free(p);
		return kn_errf(err, "%s: out of memory", n->path);
	}
	return KN_OK;
}

int kn_ottl_cfg_list(const struct kn_cnode *list, enum kn_ottl_kind kind, int ctx, struct kn_ottl_progs *out,
		     struct kn_err *err)
{
	if (list->type == KN_CNODE_NULL)
		return KN_OK;
	if (list->type != KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a list of OTTL %s", list->path,
			       kind == KN_OTTL_STATEMENT ? "statements" : "conditions");
	for (size_t i = 0; i < list->n; i++)
		if (compile_one(&list->children[i], kind, ctx, ctx, out, err) != KN_OK)
			return KN_ERR;
	return KN_OK;
}

void kn_ottl_groups_free(struct kn_ottl_groups *g)
{
	if (!g)
		return;
	for (uint32_t i = 0; i < g->n; i++) {
		kn_ottl_progs_free(&g->v[i].progs);
		kn_ottl_progs_free(&g->v[i].guards);
	}
	free(g->v);
	g->v = NULL;
	g->n = 0;
}

static struct kn_ottl_group *group_new(struct kn_ottl_groups *g, int ctx, int errmode)
{
	struct kn_ottl_group *v = realloc(g->v, (g->n + 1) * sizeof *v);
	if (!v)
		return NULL;
	g->v = v;
	memset(&v[g->n], 0, sizeof v[g->n]);
	v[g->n].ctx = ctx;
	v[g->n].errmode = errmode;
	return &v[g->n++];
}

/* The context a list of texts infers (the lowest any of them infers). */
static int infer_list(const struct kn_cnode *list, enum kn_ottl_kind kind, int *ctx, struct kn_err *err)
{
	for (size_t i = 0; list && i < list->n; i++) {
		const char *src = NULL;
		struct kn_ottl_prog *p = NULL;
		if (item_text(&list->children[i], &src, err) != KN_OK)
			return KN_ERR;
		if (kn_ottl_compile(src, kind, KN_OTTL_CTX_INFER, KN_OTTL_CTX_SPAN, list->children[i].path, &p, err) != KN_OK)
			return KN_ERR;
		if (kn_ottl_prog_ctx(p) > *ctx)
			*ctx = kn_ottl_prog_ctx(p);
		kn_ottl_prog_free(p);
	}
	return KN_OK;
}

static int group_map(const struct kn_cnode *n, enum kn_ottl_kind kind, int errmode, struct kn_ottl_groups *out,
		     struct kn_err *err)
{
	const struct kn_cnode *ctxn = NULL, *body = NULL, *guards = NULL, *em = NULL;
	const char *body_key = kind == KN_OTTL_STATEMENT ? "statements" : "conditions";
	for (size_t i = 0; i < n->n; i++) {
		const struct kn_cnode *c = &n->children[i];
		if (!strcmp(c->key, "context"))
			ctxn = c;
		else if (!strcmp(c->key, body_key))
			body = c;
		else if (kind == KN_OTTL_STATEMENT && !strcmp(c->key, "conditions"))
			guards = c;
		else if (!strcmp(c->key, "error_mode"))
			em = c;
		else if (!strcmp(c->key, "shared_cache"))
			return kn_errf(err, "%s: not supported by kansatsu (it has no cache path)", c->path);
		else
			return kn_errf(err, "%s: unknown key (supported: context, %s%s, error_mode)", c->path, body_key,
				       kind == KN_OTTL_STATEMENT ? ", conditions" : "");
	}
	if (!body || body->type == KN_CNODE_NULL || (body->type == KN_CNODE_SEQ && body->n == 0))
		return kn_errf(err, "%s.%s: missing (a list of at least one)", n->path, body_key);
	if (body->type != KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a list", body->path);
	if (guards && guards->type != KN_CNODE_NULL && guards->type != KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a list of conditions", guards->path);
	if (em && kn_ottl_cfg_errmode(em, &errmode, err) != KN_OK)
		return KN_ERR;
	int ctx = -1;
	if (ctxn && ctxn->type != KN_CNODE_NULL) {
		if (ctxn->type != KN_CNODE_SCALAR || (ctx = kn_ottl_ctx_parse(ctxn->value)) < 0)
			return kn_errf(err, "%s: unknown context \"%s\" (one of resource, scope, span, spanevent)",
				       ctxn->path, ctxn->type == KN_CNODE_SCALAR ? ctxn->value : "");
	} else {
		if (infer_list(body, kind, &ctx, err) != KN_OK ||
		    (guards && infer_list(guards, KN_OTTL_CONDITION, &ctx, err) != KN_OK))
			return KN_ERR;
		if (ctx < 0)
			ctx = KN_OTTL_CTX_SPAN;
	}
	struct kn_ottl_group *g = group_new(out, ctx, errmode);
	if (!g)
		return kn_errf(err, "%s: out of memory", n->path);
	if (kn_ottl_cfg_list(body, kind, ctx, &g->progs, err) != KN_OK)
		return KN_ERR;
	if (guards && kn_ottl_cfg_list(guards, KN_OTTL_CONDITION, ctx, &g->guards, err) != KN_OK)
		return KN_ERR;
	return KN_OK;
}

int kn_ottl_cfg_groups(const struct kn_cnode *list, enum kn_ottl_kind kind, int errmode,
		       struct kn_ottl_groups *out, struct kn_err *err)
{
	if (list->type == KN_CNODE_NULL)
		return KN_OK;
	if (list->type != KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a list of OTTL %s (strings, or maps with context and %s)", list->path,
			       kind == KN_OTTL_STATEMENT ? "statements" : "conditions",
			       kind == KN_OTTL_STATEMENT ? "statements" : "conditions");
	int64_t flat = -1;   /* index of the group consecutive strings go to */
	for (size_t i = 0; i < list->n; i++) {
		const struct kn_cnode *c = &list->children[i];
		if (c->type == KN_CNODE_MAP) {
			flat = -1;
			if (group_map(c, kind, errmode, out, err) != KN_OK)
				return KN_ERR;
			continue;
		}
		const char *src = NULL;
		struct kn_ottl_prog *p = NULL;
		if (item_text(c, &src, err) != KN_OK)
			return KN_ERR;
		if (kn_ottl_compile(src, kind, KN_OTTL_CTX_INFER, KN_OTTL_CTX_SPAN, c->path, &p, err) != KN_OK)
			return KN_ERR;
		if (flat < 0 || out->v[flat].ctx != kn_ottl_prog_ctx(p)) {
			if (!group_new(out, kn_ottl_prog_ctx(p), errmode)) {
				kn_ottl_prog_free(p);
				return kn_errf(err, "%s: out of memory", c->path);
			}
			flat = out->n - 1;
		}
		if (progs_push(&out->v[flat].progs, p) < 0) {
			kn_ottl_prog_free(p);
			return kn_errf(err, "%s: out of memory", c->path);
		}
	}
	return KN_OK;
}
