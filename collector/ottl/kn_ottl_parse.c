/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_parse: OTTL's grammar, by recursive descent with one token of
 * lookahead (two to tell a named argument `name = value` from a value):
 *
 *   statement  := editor-call ( "where" or )?
 *   condition  := or
 *   or         := and ( "or" and )*
 *   and        := not ( "and" not )*           not > and > or, as OTel
 *   not        := "not" not | compare
 *   compare    := math ( ( == | != | < | <= | > | >= ) math )?
 *   math       := term ( ( + | - ) term )*     left to right
 *   term       := primary ( ( * | / ) primary )*
 *   primary    := "(" or ")" | [+-]? number | string | bytes | true | false
 *               | nil | list | map | Upper ( "(" args ")" keys )? | lower "(" args ")"
 *               | path keys
 *   path       := ident ( "." ident )*
 *   keys       := ( "[" or "]" )*
 *   args       := ( arg ( "," arg )* )?        arg := ( ident "=" )? or
 *   list       := "[" ( or ( "," or )* )? "]"
 *   map        := "{" ( string ":" or ( "," string ":" or )* )? "}"
 *
 * The tree is checked and resolved afterwards (kn_ottl_compile.c): which
 * operands may be booleans, which identifiers are enums, functions, paths.
 * Nesting is bounded (64 levels) so hostile input cannot exhaust the stack.
 * Runs at config time; every node lives in the program's pool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kn_ottl_int.h"
#include "kn_ottl_lex.h"

#define KN_OTTL_MAX_DEPTH 64

struct parser {
	struct kn_ottl_lexer lx;
	struct kn_ottl_token tok;
	struct kn_ottl_prog *prog;
	struct kn_err *err;
	int depth;
	int failed;
};

static int perr(struct parser *ps, const char *fmt, const char *a)
{
	if (ps->failed)
		return KN_ERR;
	ps->failed = 1;
	if (ps->tok.type == KN_T_ERR)
		return kn_ottl_err_at(ps->prog, ps->tok.pos, ps->tok.pos + 1, ps->err, "%s", ps->tok.msg);
	char msg[200];
	snprintf(msg, sizeof msg, fmt, a ? a : "");
	return kn_ottl_err_at(ps->prog, ps->tok.pos, ps->tok.end, ps->err, "%s", msg);
}

static void next(struct parser *ps)
{
	kn_ottl_lex_next(&ps->lx, &ps->tok);
}

static int is_kw(const struct parser *ps, const char *kw)
{
	return ps->tok.type == KN_T_IDENT && strcmp(ps->tok.s, kw) == 0;
}

static struct kn_ottl_node *node(struct parser *ps, int kind, uint32_t pos)
{
	struct kn_ottl_node *n = kn_ottl_pool_alloc(ps->prog->pool, sizeof *n);
	if (!n) {
		perr(ps, "out of memory", NULL);
		return NULL;
	}
	n->kind = (uint8_t)kind;
	n->pos = pos;
	n->end = pos;
	return n;
}

/* A growable array of node pointers in the pool (copied when it grows). */
struct nvec {
	struct kn_ottl_node **v;
	char **names;
	uint32_t n, cap;
};

static int nvec_push(struct parser *ps, struct nvec *a, struct kn_ottl_node *x, char *name)
{
	if (a->n == a->cap) {
		uint32_t cap = a->cap ? a->cap * 2 : 4;
		struct kn_ottl_node **v = kn_ottl_pool_alloc(ps->prog->pool, cap * sizeof *v);
		char **nm = kn_ottl_pool_alloc(ps->prog->pool, cap * sizeof *nm);
		if (!v || !nm) {
			perr(ps, "out of memory", NULL);
			return -1;
		}
		if (a->n) {
			memcpy(v, a->v, a->n * sizeof *v);
			memcpy(nm, a->names, a->n * sizeof *nm);
		}
		a->v = v;
		a->names = nm;
		a->cap = cap;
	}
	a->v[a->n] = x;
	a->names[a->n] = name;
	a->n++;
	return 0;
}

static struct kn_ottl_node *p_or(struct parser *ps);

static int expect(struct parser *ps, int type, const char *what)
{
	if (ps->tok.type != type) {
		perr(ps, what, NULL);
		return -1;
	}
	next(ps);
	return 0;
}

static const char *got(const struct parser *ps)
{
	return ps->tok.type == KN_T_IDENT ? ps->tok.s : kn_ottl_tok_name(ps->tok.type);
}

static int p_keys(struct parser *ps, struct kn_ottl_node *n)
{
	struct nvec keys = {0};
	while (ps->tok.type == KN_T_LBRACK) {
		next(ps);
		struct kn_ottl_node *k = p_or(ps);
		if (!k)
			return -1;
		if (ps->tok.type != KN_T_RBRACK) {
			perr(ps, "expected ] to close the key, got %s", got(ps));
			return -1;
		}
		n->end = ps->tok.end;
		next(ps);
		if (nvec_push(ps, &keys, k, NULL) < 0)
			return -1;
	}
	n->keys = keys.v;
	n->nkeys = keys.n;
	return 0;
}

static int p_args(struct parser *ps, struct kn_ottl_node *call)
{
	struct nvec args = {0};
	next(ps); /* ( */
	if (ps->tok.type != KN_T_RPAREN) {
		for (;;) {
			char *name = NULL;
			if (ps->tok.type == KN_T_IDENT) {
				/* name = value ? */
				struct kn_ottl_lexer save = ps->lx;
				struct kn_ottl_token t2;
				kn_ottl_lex_next(&save, &t2);
				if (t2.type == KN_T_ASSIGN) {
					name = ps->tok.s;
					ps->lx = save;
					next(ps);
				}
			}
			if (!name && args.n && args.names[args.n - 1]) {
				perr(ps, "a positional argument after a named one", NULL);
				return -1;
			}
			struct kn_ottl_node *a = p_or(ps);
			if (!a || nvec_push(ps, &args, a, name) < 0)
				return -1;
			if (ps->tok.type == KN_T_COMMA) {
				next(ps);
				continue;
			}
			break;
		}
	}
	if (ps->tok.type != KN_T_RPAREN) {
		perr(ps, "expected , or ) in the argument list, got %s", got(ps));
		return -1;
	}
	call->end = ps->tok.end;
	next(ps);
	call->kids = args.v;
	call->argnames = args.names;
	call->nkids = args.n;
	return 0;
}

static struct kn_ottl_node *p_list(struct parser *ps)
{
	struct kn_ottl_node *n = node(ps, KN_N_LIST, ps->tok.pos);
	struct nvec items = {0};
	if (!n)
		return NULL;
	next(ps);
	if (ps->tok.type != KN_T_RBRACK) {
		for (;;) {
			struct kn_ottl_node *x = p_or(ps);
			if (!x || nvec_push(ps, &items, x, NULL) < 0)
				return NULL;
			if (ps->tok.type == KN_T_COMMA) {
				next(ps);
				continue;
			}
			break;
		}
	}
	if (ps->tok.type != KN_T_RBRACK) {
		perr(ps, "expected , or ] in the list, got %s", got(ps));
		return NULL;
	}
	n->end = ps->tok.end;
	next(ps);
	n->kids = items.v;
	n->nkids = items.n;
	return n;
}

static struct kn_ottl_node *p_map(struct parser *ps)
{
	struct kn_ottl_node *n = node(ps, KN_N_MAP, ps->tok.pos);
	struct nvec items = {0};
	if (!n)
		return NULL;
	next(ps);
	if (ps->tok.type != KN_T_RBRACE) {
		for (;;) {
			if (ps->tok.type != KN_T_STR) {
				perr(ps, "expected a string key in the map, got %s", got(ps));
				return NULL;
			}
			char *key = ps->tok.s;
			next(ps);
			if (expect(ps, KN_T_COLON, "expected : after the map key") < 0)
				return NULL;
			struct kn_ottl_node *x = p_or(ps);
			if (!x || nvec_push(ps, &items, x, key) < 0)
				return NULL;
			if (ps->tok.type == KN_T_COMMA) {
				next(ps);
				continue;
			}
			break;
		}
	}
	if (ps->tok.type != KN_T_RBRACE) {
		perr(ps, "expected , or } in the map, got %s", got(ps));
		return NULL;
	}
	n->end = ps->tok.end;
	next(ps);
	n->kids = items.v;
	n->argnames = items.names;
	n->nkids = items.n;
	return n;
}

static struct kn_ottl_node *p_number(struct parser *ps, int neg, uint32_t pos)
{
	struct kn_ottl_node *n = node(ps, KN_N_LIT, pos);
	if (!n)
		return NULL;
	if (ps->tok.type == KN_T_INT) {
		if (!neg && ps->tok.u > (uint64_t)INT64_MAX) {
			perr(ps, "integer out of the int64 range", NULL);
			return NULL;
		}
		n->v.t = KN_V_INT;
		n->v.i = neg ? (int64_t)(0 - ps->tok.u) : (int64_t)ps->tok.u;
	} else {
		n->v.t = KN_V_DBL;
		n->v.d = neg ? -ps->tok.d : ps->tok.d;
	}
	n->end = ps->tok.end;
	next(ps);
	return n;
}

static struct kn_ottl_node *p_primary(struct parser *ps)
{
	struct kn_ottl_node *n;
	uint32_t pos = ps->tok.pos;
	switch (ps->tok.type) {
	case KN_T_LPAREN: {
		next(ps);
		n = p_or(ps);
		if (!n)
			return NULL;
		if (ps->tok.type != KN_T_RPAREN) {
			perr(ps, "expected ) to close the group, got %s", got(ps));
			return NULL;
		}
		next(ps);
		return n;
	}
	case KN_T_MINUS:
	case KN_T_PLUS: {
		int neg = ps->tok.type == KN_T_MINUS;
		next(ps);
		if (ps->tok.type != KN_T_INT && ps->tok.type != KN_T_FLOAT) {
			perr(ps, "a sign must be followed by a number (OTTL has no unary minus), got %s", got(ps));
			return NULL;
		}
		return p_number(ps, neg, pos);
	}
	case KN_T_INT:
	case KN_T_FLOAT:
		return p_number(ps, 0, pos);
	case KN_T_STR:
	case KN_T_BYTES:
		if (!(n = node(ps, KN_N_LIT, pos)))
			return NULL;
		n->v.t = ps->tok.type == KN_T_STR ? KN_V_STR : KN_V_BYTES;
		n->v.p = (const uint8_t *)ps->tok.s;
		n->v.len = ps->tok.slen;
		n->end = ps->tok.end;
		next(ps);
		return n;
	case KN_T_LBRACK:
		return p_list(ps);
	case KN_T_LBRACE:
		return p_map(ps);
	case KN_T_IDENT:
		break;
	default:
		perr(ps, "expected a value, got %s", got(ps));
		return NULL;
	}
	const char *id = ps->tok.s;
	if (!strcmp(id, "true") || !strcmp(id, "false") || !strcmp(id, "nil")) {
		if (!(n = node(ps, KN_N_LIT, pos)))
			return NULL;
		if (id[0] == 'n') {
			n->v.t = KN_V_NIL;
		} else {
			n->v.t = KN_V_BOOL;
			n->v.i = id[0] == 't';
			n->boolish = 1;
		}
		n->end = ps->tok.end;
		next(ps);
		return n;
	}
	if (!strcmp(id, "where") || !strcmp(id, "and") || !strcmp(id, "or") || !strcmp(id, "not")) {
		perr(ps, "expected a value, got the keyword %s", id);
		return NULL;
	}
	uint32_t end = ps->tok.end;
	next(ps);
	if (ps->tok.type == KN_T_LPAREN) {
		if (!(n = node(ps, KN_N_CALL, pos)))
			return NULL;
		n->name = (char *)id;
		if (p_args(ps, n) < 0 || p_keys(ps, n) < 0)
			return NULL;
		return n;
	}
	if (id[0] >= 'A' && id[0] <= 'Z') {
		if (!(n = node(ps, KN_N_IDENT, pos)))
			return NULL;
		n->name = (char *)id;
		n->end = end;
		if (ps->tok.type == KN_T_DOT || ps->tok.type == KN_T_LBRACK) {
			perr(ps, "an upper-case name is an enum or a converter (paths are lower case); unexpected %s",
			     kn_ottl_tok_name(ps->tok.type));
			return NULL;
		}
		return n;
	}
	/* a path */
	struct nvec segs = {0};
	if (!(n = node(ps, KN_N_PATH, pos)))
		return NULL;
	if (nvec_push(ps, &segs, NULL, (char *)id) < 0)
		return NULL;
	n->end = end;
	while (ps->tok.type == KN_T_DOT) {
		next(ps);
		if (ps->tok.type != KN_T_IDENT) {
			perr(ps, "expected a path segment after ., got %s", got(ps));
			return NULL;
		}
		if (nvec_push(ps, &segs, NULL, ps->tok.s) < 0)
			return NULL;
		n->end = ps->tok.end;
		next(ps);
	}
	n->segs = segs.names;
	n->nsegs = segs.n;
	if (p_keys(ps, n) < 0)
		return NULL;
	return n;
}

static struct kn_ottl_node *binary(struct parser *ps, int kind, int op, struct kn_ottl_node *a,
				   struct kn_ottl_node *b)
{
	struct kn_ottl_node *n = node(ps, kind, a->pos);
	struct kn_ottl_node **k = kn_ottl_pool_alloc(ps->prog->pool, 2 * sizeof *k);
	if (!n || !k) {
		perr(ps, "out of memory", NULL);
		return NULL;
	}
	k[0] = a;
	k[1] = b;
	n->kids = k;
	n->nkids = 2;
	n->op = (uint8_t)op;
	n->end = b->end > a->end ? b->end : a->end;
	return n;
}

static struct kn_ottl_node *p_term(struct parser *ps)
{
	struct kn_ottl_node *a = p_primary(ps);
	while (a && (ps->tok.type == KN_T_STAR || ps->tok.type == KN_T_SLASH)) {
		int op = ps->tok.type == KN_T_STAR ? '*' : '/';
		next(ps);
		struct kn_ottl_node *b = p_primary(ps);
		a = b ? binary(ps, KN_N_MATH, op, a, b) : NULL;
	}
	return a;
}

static struct kn_ottl_node *p_math(struct parser *ps)
{
	struct kn_ottl_node *a = p_term(ps);
	while (a && (ps->tok.type == KN_T_PLUS || ps->tok.type == KN_T_MINUS)) {
		int op = ps->tok.type == KN_T_PLUS ? '+' : '-';
		next(ps);
		struct kn_ottl_node *b = p_term(ps);
		a = b ? binary(ps, KN_N_MATH, op, a, b) : NULL;
	}
	return a;
}

static struct kn_ottl_node *p_compare(struct parser *ps)
{
	struct kn_ottl_node *a = p_math(ps);
	int op;
	if (!a)
		return NULL;
	switch (ps->tok.type) {
	case KN_T_EQ: op = KN_CMP_EQ; break;
	case KN_T_NE: op = KN_CMP_NE; break;
	case KN_T_LT: op = KN_CMP_LT; break;
	case KN_T_LE: op = KN_CMP_LE; break;
	case KN_T_GT: op = KN_CMP_GT; break;
	case KN_T_GE: op = KN_CMP_GE; break;
	default: return a;
	}
	next(ps);
	struct kn_ottl_node *b = p_math(ps);
	if (!b)
		return NULL;
	struct kn_ottl_node *n = binary(ps, KN_N_CMP, op, a, b);
	if (n)
		n->boolish = 1;
	return n;
}

static struct kn_ottl_node *p_not(struct parser *ps)
{
	if (++ps->depth > KN_OTTL_MAX_DEPTH) {
		perr(ps, "expression nested too deeply", NULL);
		return NULL;
	}
	struct kn_ottl_node *r;
	if (is_kw(ps, "not")) {
		uint32_t pos = ps->tok.pos;
		next(ps);
		struct kn_ottl_node *a = p_not(ps);
		r = a ? node(ps, KN_N_NOT, pos) : NULL;
		if (r) {
			struct kn_ottl_node **k = kn_ottl_pool_alloc(ps->prog->pool, sizeof *k);
			if (!k) {
				perr(ps, "out of memory", NULL);
				return NULL;
			}
			k[0] = a;
			r->kids = k;
			r->nkids = 1;
			r->end = a->end;
			r->boolish = 1;
		}
	} else {
		r = p_compare(ps);
	}
	ps->depth--;
	return r;
}

static struct kn_ottl_node *p_and(struct parser *ps)
{
	struct kn_ottl_node *a = p_not(ps);
	while (a && is_kw(ps, "and")) {
		next(ps);
		struct kn_ottl_node *b = p_not(ps);
		a = b ? binary(ps, KN_N_AND, 0, a, b) : NULL;
		if (a)
			a->boolish = 1;
	}
	return a;
}

static struct kn_ottl_node *p_or(struct parser *ps)
{
	if (++ps->depth > KN_OTTL_MAX_DEPTH) {
		perr(ps, "expression nested too deeply", NULL);
		return NULL;
	}
	struct kn_ottl_node *a = p_and(ps);
	while (a && is_kw(ps, "or")) {
		next(ps);
		struct kn_ottl_node *b = p_and(ps);
		a = b ? binary(ps, KN_N_OR, 0, a, b) : NULL;
		if (a)
			a->boolish = 1;
	}
	ps->depth--;
	return a;
}

int kn_ottl_parse(struct kn_ottl_prog *p, struct kn_err *err)
{
	struct parser ps = {
		.lx = {.src = p->src, .len = (uint32_t)strlen(p->src), .pool = p->pool},
		.prog = p,
		.err = err,
	};
	next(&ps);
	if (p->kind == KN_OTTL_STATEMENT) {
		if (ps.tok.type == KN_T_EOF)
			return perr(&ps, "empty statement (expected an editor such as set(...))", NULL);
		if (ps.tok.type != KN_T_IDENT) {
			perr(&ps, "a statement starts with an editor such as set(...), got %s", got(&ps));
			return KN_ERR;
		}
		struct kn_ottl_lexer save = ps.lx;
		struct kn_ottl_token t2;
		kn_ottl_lex_next(&save, &t2);
		if (t2.type != KN_T_LPAREN)
			return perr(&ps, "a statement starts with an editor call such as set(...), got %s", ps.tok.s);
		if (ps.tok.s[0] < 'a' || ps.tok.s[0] > 'z')
			return perr(&ps, "%s is a converter: a statement starts with an editor (a lower-case function such as set)",
				    ps.tok.s);
		p->root = p_primary(&ps);
		if (!p->root)
			return KN_ERR;
		if (p->root->nkeys)
			return kn_ottl_err_at(p, p->root->pos, p->root->end, err, "an editor's result cannot be indexed");
		if (is_kw(&ps, "where")) {
			next(&ps);
			p->cond = p_or(&ps);
			if (!p->cond)
				return KN_ERR;
		}
		if (ps.tok.type != KN_T_EOF)
			return perr(&ps, "unexpected %s after the statement (expected `where` or the end)", got(&ps));
		return KN_OK;
	}
	if (ps.tok.type == KN_T_EOF)
		return perr(&ps, "empty condition", NULL);
	p->root = p_or(&ps);
	if (!p->root)
		return KN_ERR;
	if (ps.tok.type != KN_T_EOF)
		return perr(&ps, "unexpected %s after the condition", got(&ps));
	return KN_OK;
}
