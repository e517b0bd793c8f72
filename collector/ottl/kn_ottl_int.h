/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_int: what the files of collector/ottl share (not a public header):
 * values, the syntax tree (which compilation annotates in place and
 * evaluation walks), the function table, the transform context's insides.
 *
 * Values are small structs passed by value. Strings, bytes, maps and slices
 * point at bytes someone else owns: the span's encoding, a program's
 * literals, or the tx's arena of the context being evaluated (reset when
 * that context moves on). A map is a KeyValue list: either a message's
 * field (`p`, `len`, `field`: a Span's field 9, a Resource's 1, a scope's
 * or event's 3, a KeyValueList's 1) or a live kn_wire_attrs view being
 * edited. A slice is an ArrayValue's bytes (repeated AnyValue, field 1). */
#ifndef KN_OTTL_INT_H
#define KN_OTTL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/kn_arena.h"
#include "kn_ottl.h"
#include "../wire/kn_wire_attrs.h"

/* ---- values ---- */

enum kn_ottl_vt {
	KN_V_NIL = 0,
	KN_V_BOOL,
	KN_V_INT,
	KN_V_DBL,
	KN_V_STR,
	KN_V_BYTES,
	KN_V_MAP,
	KN_V_SLICE,
	KN_V_TIME,     /* i: unix nanoseconds */
	KN_V_DUR,      /* i: nanoseconds */
};

struct kn_ottl_val {
	uint8_t t;
	uint8_t field;                 /* MAP: KeyValue field number in p */
	uint32_t len;
	int64_t i;                     /* BOOL, INT, TIME, DUR */
	double d;                      /* DBL */
	const uint8_t *p;              /* STR, BYTES, MAP, SLICE */
	struct kn_wire_attrs *view;    /* MAP: a live view (p unused) */
};

/* ---- syntax tree ---- */

enum kn_ottl_nk {
	KN_N_LIT,
	KN_N_PATH,
	KN_N_CALL,     /* converter or editor */
	KN_N_IDENT,    /* an upper-case identifier not called: enum or function name */
	KN_N_LIST,
	KN_N_MAP,
	KN_N_MATH,     /* op: + - * / */
	KN_N_CMP,      /* op: KN_CMP_* */
	KN_N_AND,
	KN_N_OR,
	KN_N_NOT,
};

enum { KN_CMP_EQ, KN_CMP_NE, KN_CMP_LT, KN_CMP_LE, KN_CMP_GT, KN_CMP_GE };

struct kn_ottl_fn;

struct kn_ottl_node {
	uint8_t kind;
	uint8_t op;
	uint8_t pctx;                  /* PATH: the context it reads */
	uint8_t boolish;               /* yields a boolean (conditions) */
	uint16_t pid;                  /* PATH: field id (kn_ottl_path.c) */
	uint32_t pos;                  /* byte offset in the source */
	uint32_t end;                  /* one past its last byte */
	struct kn_ottl_val v;          /* LIT */
	char *name;                    /* CALL / IDENT */
	char **segs;                   /* PATH: dotted segments */
	uint32_t nsegs;
	uint32_t nkids;
	struct kn_ottl_node **kids;    /* CALL args (by parameter after compile), LIST items, MAP values, operands */
	char **argnames;               /* CALL: named arguments (NULL entries: positional); MAP: keys */
	struct kn_ottl_node **keys;    /* PATH / CALL: [index] keys */
	uint32_t nkeys;
	const struct kn_ottl_fn *fn;   /* CALL, and IDENT naming a function */
	void *re;                      /* CALL: compiled regex of a literal pattern argument */
	int64_t aux;                   /* CALL: a compiled literal (a case, a strategy, a mode) */
};

/* ---- functions ---- */

enum kn_ottl_pk {
	KN_PK_ANY,        /* any value (a getter) */
	KN_PK_TARGET,     /* a path that can be set */
	KN_PK_MAPTARGET,  /* a path holding a map that can be edited */
	KN_PK_STR,        /* a string literal */
	KN_PK_INT,        /* an int literal */
	KN_PK_BOOL,       /* a bool literal */
	KN_PK_STRLIST,    /* a list literal of string literals */
	KN_PK_LIST,       /* a list literal of values */
	KN_PK_FUNC,       /* a converter name taking one string (SHA256) */
};

struct kn_ottl_param {
	const char *name;
	uint8_t kind;
	uint8_t optional;
};

struct kn_ottl_tx;
struct kn_ottl_cc;

struct kn_ottl_fn {
	const char *name;
	uint8_t editor;
	uint8_t nparams;
	uint8_t ctx_mask;              /* contexts it may be used in (bit per kn_ottl_ctx); 0 = any */
	struct kn_ottl_param params[6];
	/* compile-time checks of the literal arguments (optional) */
	int (*check)(struct kn_ottl_node *call, struct kn_ottl_cc *cc);
	/* converters: *out; editors: out unused. 0, or -1 with the tx's error set */
	int (*run)(const struct kn_ottl_node *call, struct kn_ottl_tx *tx, struct kn_ottl_val *out);
};

const struct kn_ottl_fn *kn_ottl_fn_find(const char *name);
/* A converter usable as a function argument (SHA256, ...): s[0..len) -> *out. */
int kn_ottl_hash_apply(const struct kn_ottl_fn *fn, struct kn_ottl_tx *tx, const uint8_t *s,
		       uint32_t len, struct kn_ottl_val *out);

/* ---- compilation ---- */

struct kn_ottl_pool;

struct kn_ottl_cc {
	const char *src;
	const char *where;
	int ctx;
	struct kn_err *err;
	struct kn_ottl_prog *prog;
};

/* "<where>: statement \"<src>\": <msg> at column N (\"token\")" for the
source bytes [pos, end). KN_ERR. */
int kn_ottl_err_at(const struct kn_ottl_prog *p, uint32_t pos, uint32_t end, struct kn_err *err,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same for a node. */
int kn_ottl_cc_err(struct kn_ottl_cc *cc, const struct kn_ottl_node *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Compiles a PCRE2 pattern given as node n's string literal (NULL on error). */
void *kn_ottl_cc_regex(struct kn_ottl_cc *cc, const struct kn_ottl_node *n);

struct kn_ottl_prog {
	char *src;
	char *where;
	int kind;
	int ctx;
	struct kn_ottl_node *root;     /* condition: the expression; statement: the editor call */
	struct kn_ottl_node *cond;     /* statement: its where clause, or NULL */
	struct kn_ottl_pool *pool;     /* every node and string */
	void **res;                    /* compiled regexes, freed with the program */
	uint32_t nres, cap_res;
};

void *kn_ottl_pool_alloc(struct kn_ottl_pool *pool, size_t n);
char *kn_ottl_pool_strndup(struct kn_ottl_pool *pool, const char *s, size_t n);

/* Parser: src -> tree in p->pool. 0, or KN_ERR with err naming the token. */
int kn_ottl_parse(struct kn_ottl_prog *p, struct kn_err *err);
/* Paths: resolve a PATH node for context cc->ctx (sets pctx, pid). */
int kn_ottl_path_resolve(struct kn_ottl_cc *cc, struct kn_ottl_node *n, int settable);
/* The context a path's first segment names (KN_OTTL_CTX_INFER when none). */
int kn_ottl_path_prefix_ctx(const struct kn_ottl_node *n);
/* Is the resolved path a whole attribute map (attributes without keys)? */
int kn_ottl_path_is_map(const struct kn_ottl_node *n);

/* ---- the transform context ---- */


/* One message the tx looks at: its bytes, its scalar fields as read (last
 * occurrence wins) and changed, its attribute list view. */
struct kn_ottl_fv {
	const uint8_t *s;
	uint32_t len;
	uint64_t u;
};

#define KN_OTTL_MAXF 17

struct kn_ottl_ev {                /* one span event */
	uint32_t off, flen;            /* its whole field in the span */
	const uint8_t *msg;
	uint32_t len;
	uint8_t dropped;
	const uint8_t *out;            /* rewritten event message, or NULL */
	uint32_t out_len;
};

struct kn_ottl_m {
	const uint8_t *msg;
	uint32_t len;
	uint8_t kind;                  /* a kn_ottl_ctx */
	uint8_t parsed;                /* scalar fields read */
	uint8_t at_loaded;
	uint8_t bad;                   /* malformed bytes */
	uint32_t chg;                  /* bit n: field n changed */
	struct kn_ottl_fv f[KN_OTTL_MAXF];
	struct kn_wire_attrs at;
};

struct kn_ottl_splice {
	uint32_t off, del;
	const uint8_t *ins;
	uint32_t ins_len;
};

struct kn_ottl_tx {
	struct kn_ottl_m m[KN_OTTL_NCTX];
	struct kn_arena ar[KN_OTTL_NCTX];       /* strings made while a context is current */
	int cur;                       /* context of the statement being run */
	/* the current span's events */
	struct kn_ottl_ev *ev;
	uint32_t nev, cap_ev;
	int ev_state;                  /* 0 not read, 1 read, -1 malformed */
	int ev_cur;                    /* current event, -1 none */
	int ev_dirty;
	/* scratch */
	struct kn_wire_attrs tmp;      /* nested map being edited */
	struct kn_ottl_splice *sp;
	uint32_t nsp, cap_sp;
	void *md;                      /* pcre2_match_data */
	uint32_t md_pairs;
	uint8_t *rbuf, *tbuf;          /* replacement output / one expanded replacement */
	uint32_t rlen, rcap, tlen, tcap;
	const struct kn_ottl_prog *prog;  /* being run (error messages) */
	char errbuf[400];
};

/* The tx's error: "<where>: statement \"src\": <msg>". Returns -1. */
int kn_ottl_rt_err(struct kn_ottl_tx *tx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Room for n bytes valid while the current statement's context is current. */
uint8_t *kn_ottl_tx_alloc(struct kn_ottl_tx *tx, size_t n);
/* The message state of ctx (NULL with the error set when there is none
 * or its bytes are malformed); kn_ottl_tx_fields also reads its scalar
 * fields, once (attribute paths do not need them). */
struct kn_ottl_m *kn_ottl_tx_msg(struct kn_ottl_tx *tx, int ctx);
struct kn_ottl_m *kn_ottl_tx_fields(struct kn_ottl_tx *tx, int ctx);
/* Its attribute view, loaded (NULL when malformed). */
struct kn_wire_attrs *kn_ottl_tx_attrs(struct kn_ottl_tx *tx, int ctx);
/* The wire type of scalar field num of a context's message (-1: not a scalar). */
int kn_ottl_scalar_wt(int ctx, uint32_t num);
/* The edited copy of message m (a span event) in the span's arena: 1 and
 * *out, 0 when nothing changed, -1. */
int kn_ottl_msg_rebuild(struct kn_ottl_tx *tx, struct kn_ottl_m *m, int ctx, const uint8_t **out,
			uint32_t *out_len);
/* Match data with room for `pairs` ovector pairs. */
void *kn_ottl_tx_md(struct kn_ottl_tx *tx, uint32_t pairs);

/* ---- evaluation ---- */

int kn_ottl_eval(const struct kn_ottl_node *n, struct kn_ottl_tx *tx, struct kn_ottl_val *out);
int kn_ottl_path_get(const struct kn_ottl_node *n, struct kn_ottl_tx *tx, struct kn_ottl_val *out);
int kn_ottl_path_set(const struct kn_ottl_node *n, struct kn_ottl_tx *tx, const struct kn_ottl_val *v);
/* Applies node n's keys[from..] to *v (maps by string, slices by int). */
int kn_ottl_index(const struct kn_ottl_node *n, uint32_t from, struct kn_ottl_tx *tx, struct kn_ottl_val *v);
/* Evaluates n and requires a boolean. 0, -1. */
int kn_ottl_eval_bool(const struct kn_ottl_node *n, struct kn_ottl_tx *tx, int *b);
/* The attribute view behind a map path (attributes without keys): loaded,
 * to be edited. NULL with the error set when it cannot be. */
struct kn_wire_attrs *kn_ottl_path_view(const struct kn_ottl_node *n, struct kn_ottl_tx *tx);

/* ---- values (kn_ottl_value.c, kn_ottl_anyvalue.c) ---- */

/* An encoded AnyValue -> value (strings point into it). */
int kn_ottl_val_from_any(const uint8_t *p, uint32_t len, struct kn_ottl_val *v);
/* A kn_wire_attrs value -> value. */
int kn_ottl_val_from_av(const struct kn_av *a, struct kn_ottl_val *v);
/* A value -> a kn_wire_attrs value (map / slice / bytes encoded into the
 * tx's arena). 0; 1 for nil (nothing to set); -1 error set. */
int kn_ottl_val_to_av(struct kn_ottl_tx *tx, const struct kn_ottl_val *v, struct kn_av *a);
/* OTTL comparison. */
int kn_ottl_compare(struct kn_ottl_tx *tx, const struct kn_ottl_val *a, const struct kn_ottl_val *b, int op);
/* OTTL math. 0, or -1 with the error set. */
int kn_ottl_math(struct kn_ottl_tx *tx, int op, const struct kn_ottl_val *a, const struct kn_ottl_val *b,
		 struct kn_ottl_val *out);
/* pdata's AsString for a value (maps and slices as JSON, bytes as base64
 * when `b64`, else hex) into the arena. 0, -1 (error set). Nil -> "". */
int kn_ottl_val_str(struct kn_ottl_tx *tx, const struct kn_ottl_val *v, int b64, const uint8_t **s,
		    uint32_t *len);
const char *kn_ottl_vt_name(int t);
/* With its article: "an int", "a string", "nil". */
const char *kn_ottl_vt_an(int t);

/* Maps: each entry in order (first wins on duplicate keys for lookups). */
typedef int (*kn_ottl_kv_fn)(void *ctx, const uint8_t *k, uint32_t klen, const struct kn_av *v);
int kn_ottl_map_each(const struct kn_ottl_val *m, kn_ottl_kv_fn fn, void *ctx);
int kn_ottl_map_get(const struct kn_ottl_val *m, const uint8_t *k, uint32_t klen, struct kn_ottl_val *out);
int64_t kn_ottl_map_len(const struct kn_ottl_val *m);
/* Slices: element i (0 ok, 1 out of range, -1 malformed); length. */
int kn_ottl_slice_get(const struct kn_ottl_val *s, int64_t i, struct kn_ottl_val *out);
int64_t kn_ottl_slice_len(const struct kn_ottl_val *s);
/* Encodes a map value as KeyValueList bytes (repeated KeyValue field 1) in the arena. */
int kn_ottl_map_encode(struct kn_ottl_tx *tx, const struct kn_ottl_val *m, const uint8_t **p, uint32_t *len);
/* A view's live entries as KeyValueList bytes. */
int kn_ottl_view_encode(struct kn_ottl_tx *tx, const struct kn_wire_attrs *at, const uint8_t **p,
			uint32_t *len);
/* kv_encode helpers */
size_t kn_ottl_kv_size(uint32_t klen, const struct kn_av *v);
uint8_t *kn_ottl_kv_write(uint8_t *w, uint32_t field, const uint8_t *k, uint32_t klen, const struct kn_av *v);
/* An AnyValue whose nested value at keys[from..nkeys) is replaced by nv
 * (maps get missing keys added) -> new AnyValue bytes in the arena. */
int kn_ottl_any_set(struct kn_ottl_tx *tx, const struct kn_av *cur, const struct kn_ottl_node *path,
		    uint32_t from, const struct kn_av *nv, struct kn_av *out);
/* Evaluates key node k to a string or an int key. 0 str, 1 int, -1 error. */
int kn_ottl_key(const struct kn_ottl_node *k, struct kn_ottl_tx *tx, const uint8_t **s, uint32_t *len,
		int64_t *idx);

/* ---- regular expressions and globs (kn_ottl_regex.c) ---- */

/* 1 match, 0 none. ov (optional) gets the match data's ovector. */
int kn_ottl_re_match(struct kn_ottl_tx *tx, const void *re, const uint8_t *s, uint32_t len,
		     uint32_t start, size_t **ov, uint32_t *npairs);
void kn_ottl_re_free(void *re);
/* Go's regexp ReplaceAllString (template expansion with $1, ${name}, $$):
 * the result in the arena. 0 (changed or not: *changed), -1 error. */
int kn_ottl_re_replace(struct kn_ottl_tx *tx, const void *re, const uint8_t *s, uint32_t len,
		       const uint8_t *tmpl, uint32_t tlen, const struct kn_ottl_fn *hash,
		       const uint8_t *fmt, uint32_t fmtlen, const uint8_t **out, uint32_t *outlen,
		       int *changed);
/* Go's path/filepath.Match: 1 match, 0 none, -1 bad pattern. */
int kn_ottl_glob(const uint8_t *pat, uint32_t plen, const uint8_t *s, uint32_t len);
/* 0 when pat is a valid glob, -1 otherwise. */
int kn_ottl_glob_check(const uint8_t *pat, uint32_t plen);
/* Formats fmt (one %s) with s into the arena. */
int kn_ottl_format1(struct kn_ottl_tx *tx, const uint8_t *fmt, uint32_t flen, const uint8_t *s,
		    uint32_t len, const uint8_t **out, uint32_t *outlen);

#endif
