/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_path: the paths of the span, spanevent, resource and scope
 * contexts, OTel's names and types:
 *
 *   resource   attributes, attributes[k]..., dropped_attributes_count
 *   scope      name, version, attributes..., dropped_attributes_count
 *              (prefix `scope.` or the older `instrumentation_scope.`)
 *   span       trace_id, trace_id.string, span_id, span_id.string,
 *              parent_span_id, parent_span_id.string, trace_state, name,
 *              kind, kind.string, kind.deprecated_string, status.code,
 *              status.message, start_time_unix_nano, end_time_unix_nano,
 *              start_time, end_time (times), attributes..., flags,
 *              dropped_attributes_count, dropped_events_count,
 *              dropped_links_count
 *   spanevent  name, time_unix_nano, time, attributes...,
 *              dropped_attributes_count
 *
 * A path may start with its context's name; a lower context reads the
 * higher ones through their prefix (a span's `resource.attributes["k"]`, a
 * span event's `span.name`). attributes[k] takes further keys into nested
 * maps (string keys) and slices (int keys). Ids read as bytes (all zero
 * when absent, as pdata's); `.string` forms are lower-case hex ("" for a
 * zero id).
 *
 * Writes: every path but kind.string / kind.deprecated_string; a statement
 * may write its own context, and a spanevent statement its span. Setting a
 * value of the wrong type is a no-op, as OTel's setters ignore it; nil is a
 * no-op (OTel's `set`). Not supported (startup error naming the path):
 * cache, events, links, resource / scope / status as whole messages,
 * trace_state["key"]. Getters read the message's fields as the tx parsed
 * them (last occurrence of a scalar wins; attribute lookups take the first
 * KeyValue with the key, pdata's rule), or the tx's edit state when the
 * statement's context changed them. */
#include <string.h>

#include "kn_ottl_int.h"
#include "../core/kn_hex.h"
#include "../wire/kn_wire_field.h"

enum ptype {
	T_ATTRS, T_STR, T_BYTES, T_IDSTR, T_INT, T_U64, T_TIME, T_STATUS_CODE, T_STATUS_MSG,
	T_KINDSTR, T_KINDDEP,
};

struct prow {
	uint8_t ctx;
	const char *name;
	uint8_t field;       /* field number in the context's message */
	uint8_t type;
	uint8_t idlen;       /* ids: bytes */
	uint8_t ro;          /* read only */
};

static const struct prow rows[] = {
	{0, NULL, 0, 0, 0, 0},
	{KN_OTTL_CTX_RESOURCE, "attributes", 1, T_ATTRS, 0, 0},
	{KN_OTTL_CTX_RESOURCE, "dropped_attributes_count", 2, T_INT, 0, 0},
	{KN_OTTL_CTX_SCOPE, "name", 1, T_STR, 0, 0},
	{KN_OTTL_CTX_SCOPE, "version", 2, T_STR, 0, 0},
	{KN_OTTL_CTX_SCOPE, "attributes", 3, T_ATTRS, 0, 0},
	{KN_OTTL_CTX_SCOPE, "dropped_attributes_count", 4, T_INT, 0, 0},
	{KN_OTTL_CTX_SPAN, "trace_id", 1, T_BYTES, 16, 0},
	{KN_OTTL_CTX_SPAN, "trace_id.string", 1, T_IDSTR, 16, 0},
	{KN_OTTL_CTX_SPAN, "span_id", 2, T_BYTES, 8, 0},
	{KN_OTTL_CTX_SPAN, "span_id.string", 2, T_IDSTR, 8, 0},
	{KN_OTTL_CTX_SPAN, "trace_state", 3, T_STR, 0, 0},
	{KN_OTTL_CTX_SPAN, "parent_span_id", 4, T_BYTES, 8, 0},
	{KN_OTTL_CTX_SPAN, "parent_span_id.string", 4, T_IDSTR, 8, 0},
	{KN_OTTL_CTX_SPAN, "name", 5, T_STR, 0, 0},
	{KN_OTTL_CTX_SPAN, "kind", 6, T_INT, 0, 0},
	{KN_OTTL_CTX_SPAN, "kind.string", 6, T_KINDSTR, 0, 1},
	{KN_OTTL_CTX_SPAN, "kind.deprecated_string", 6, T_KINDDEP, 0, 1},
	{KN_OTTL_CTX_SPAN, "start_time_unix_nano", 7, T_U64, 0, 0},
	{KN_OTTL_CTX_SPAN, "end_time_unix_nano", 8, T_U64, 0, 0},
	{KN_OTTL_CTX_SPAN, "start_time", 7, T_TIME, 0, 0},
	{KN_OTTL_CTX_SPAN, "end_time", 8, T_TIME, 0, 0},
	{KN_OTTL_CTX_SPAN, "attributes", 9, T_ATTRS, 0, 0},
	{KN_OTTL_CTX_SPAN, "dropped_attributes_count", 10, T_INT, 0, 0},
	{KN_OTTL_CTX_SPAN, "dropped_events_count", 12, T_INT, 0, 0},
	{KN_OTTL_CTX_SPAN, "dropped_links_count", 14, T_INT, 0, 0},
	{KN_OTTL_CTX_SPAN, "status.code", 15, T_STATUS_CODE, 0, 0},
	{KN_OTTL_CTX_SPAN, "status.message", 15, T_STATUS_MSG, 0, 0},
	{KN_OTTL_CTX_SPAN, "flags", 16, T_INT, 0, 0},
	{KN_OTTL_CTX_SPANEVENT, "time_unix_nano", 1, T_U64, 0, 0},
	{KN_OTTL_CTX_SPANEVENT, "time", 1, T_TIME, 0, 0},
	{KN_OTTL_CTX_SPANEVENT, "name", 2, T_STR, 0, 0},
	{KN_OTTL_CTX_SPANEVENT, "attributes", 3, T_ATTRS, 0, 0},
	{KN_OTTL_CTX_SPANEVENT, "dropped_attributes_count", 4, T_INT, 0, 0},
};
#define NROWS (sizeof rows / sizeof rows[0])

static const uint8_t zero_id[16];

int kn_ottl_path_prefix_ctx(const struct kn_ottl_node *n)
{
	if (n->kind != KN_N_PATH || n->nsegs < 1)
		return KN_OTTL_CTX_INFER;
	const char *s = n->segs[0];
	if (!strcmp(s, "resource"))
		return KN_OTTL_CTX_RESOURCE;
	if (!strcmp(s, "scope") || !strcmp(s, "instrumentation_scope"))
		return KN_OTTL_CTX_SCOPE;
	if (!strcmp(s, "span"))
		return KN_OTTL_CTX_SPAN;
	if (!strcmp(s, "spanevent"))
		return KN_OTTL_CTX_SPANEVENT;
	return KN_OTTL_CTX_INFER;
}

int kn_ottl_path_is_map(const struct kn_ottl_node *n)
{
	return n->kind == KN_N_PATH && n->pid > 0 && n->pid < NROWS && rows[n->pid].type == T_ATTRS;
}

static const char *unsupported(const char *name)
{
	static const char *const known[] = {"cache", "events", "links", "status", "resource", "scope",
					    "instrumentation_scope", "trace_state", NULL};
	for (int i = 0; known[i]; i++) {
		size_t l = strlen(known[i]);
		if (!strncmp(name, known[i], l) && (name[l] == '\0' || name[l] == '.'))
			return known[i];
	}
	return NULL;
}

int kn_ottl_path_resolve(struct kn_ottl_cc *cc, struct kn_ottl_node *n, int settable)
{
	int tc = cc->ctx;
	uint32_t first = 0;
	int pc = kn_ottl_path_prefix_ctx(n);
	if (pc != KN_OTTL_CTX_INFER) {
		tc = pc;
		first = 1;
	}
	if (tc > cc->ctx)
		return kn_ottl_cc_err(cc, n, "%s paths cannot be used in the %s context (write the statement in the %s context)",
				      kn_ottl_ctx_name(tc), kn_ottl_ctx_name(cc->ctx), kn_ottl_ctx_name(tc));
	char name[160];
	size_t w = 0;
	name[0] = '\0';
	for (uint32_t i = first; i < n->nsegs; i++) {
		size_t l = strlen(n->segs[i]);
		if (w + l + 2 >= sizeof name)
			return kn_ottl_cc_err(cc, n, "path too long");
		if (w)
			name[w++] = '.';
		memcpy(name + w, n->segs[i], l);
		w += l;
		name[w] = '\0';
	}
	if (!w)
		return kn_ottl_cc_err(cc, n, "the whole %s is not a supported path (name one of its fields)",
				      n->segs[0]);
	size_t r = 0;
	for (r = 1; r < NROWS; r++)
		if (rows[r].ctx == tc && !strcmp(rows[r].name, name))
			break;
	if (r == NROWS) {
		const char *u = unsupported(name);
		if (u)
			return kn_ottl_cc_err(cc, n, "path \"%s\" is not supported by kansatsu in the %s context", name,
					      kn_ottl_ctx_name(tc));
		return kn_ottl_cc_err(cc, n, "unknown path \"%s\" in the %s context", name, kn_ottl_ctx_name(tc));
	}
	if (n->nkeys && rows[r].type != T_ATTRS)
		return kn_ottl_cc_err(cc, n, "path \"%s\" takes no [key]", name);
	if (settable) {
		if (rows[r].ro)
			return kn_ottl_cc_err(cc, n, "path \"%s\" cannot be set", name);
		if (tc != cc->ctx && !(cc->ctx == KN_OTTL_CTX_SPANEVENT && tc == KN_OTTL_CTX_SPAN))
			return kn_ottl_cc_err(cc, n, "a %s statement cannot write %s paths: kansatsu edits each %s once, "
					      "before its spans (write it in a statement of the %s context)",
					      kn_ottl_ctx_name(cc->ctx), kn_ottl_ctx_name(tc), kn_ottl_ctx_name(tc),
					      kn_ottl_ctx_name(tc));
	}
	n->pctx = (uint8_t)tc;
	n->pid = (uint16_t)r;
	return KN_OK;
}

/* ---- reading ---- */

static int attr_field(int ctx)
{
	return ctx == KN_OTTL_CTX_RESOURCE ? 1 : ctx == KN_OTTL_CTX_SPAN ? 9 : 3;
}

/* The first KeyValue with key in msg's field `field` -> its AnyValue. 1 found, 0 not, -1 malformed. */
static int msg_attr(const uint8_t *msg, uint32_t len, uint32_t field, const uint8_t *key, uint32_t klen,
		    struct kn_ottl_val *out)
{
	const uint8_t *p = msg, *end = msg + len;
	struct kn_wire_field f, g;
	int r = 0;
	while ((r = kn_wire_field_next(&p, end, &f)) > 0) {
		if (f.num != field || f.wt != KN_WIRE_FIELD_LEN)
			continue;
		/* The usual KeyValue is exactly [key][value], each with a one-byte
		 * length: a different key is rejected without decoding the rest. */
		const uint8_t *kv = f.payload;
		if (f.len >= 2 && kv[0] == 0x0a && kv[1] < 0x80 && (size_t)kv[1] + 2 <= f.len) {
			uint32_t kl0 = kv[1];
			const uint8_t *rest = kv + 2 + kl0, *kvend = kv + f.len;
			if ((rest == kvend || (rest + 2 <= kvend && rest[0] == 0x12 && rest[1] < 0x80 &&
					       rest + 2 + rest[1] == kvend)) &&
			    (kl0 != klen || (klen && (kv[1 + klen] != key[klen - 1] || memcmp(kv + 2, key, klen)))))
				continue;
		}
		const uint8_t *q = f.payload, *qend = f.payload + f.len, *k = NULL, *v = NULL;
		uint32_t kl = 0, vl = 0;
		int r2 = 0;
		while ((r2 = kn_wire_field_next(&q, qend, &g)) > 0) {
			if (g.num == 1 && g.wt == KN_WIRE_FIELD_LEN) {
				k = g.payload;
				kl = (uint32_t)g.len;
			} else if (g.num == 2 && g.wt == KN_WIRE_FIELD_LEN) {
				v = g.payload;
				vl = (uint32_t)g.len;
			}
		}
		if (r2 < 0)
			return -1;
		if (kl == klen && (!klen || memcmp(k, key, klen) == 0)) {
			if (!v) {
				memset(out, 0, sizeof *out);
				return 1;
			}
			return kn_ottl_val_from_any(v, vl, out) < 0 ? -1 : 1;
		}
	}
	return r < 0 ? -1 : 0;
}

int kn_ottl_key(const struct kn_ottl_node *k, struct kn_ottl_tx *tx, const uint8_t **s, uint32_t *len,
		int64_t *idx)
{
	struct kn_ottl_val v;
	if (k->kind == KN_N_LIT) {
		v = k->v;
	} else if (kn_ottl_eval(k, tx, &v) < 0) {
		return -1;
	}
	if (v.t == KN_V_STR) {
		*s = v.p;
		*len = v.len;
		return 0;
	}
	if (v.t == KN_V_INT) {
		*idx = v.i;
		return 1;
	}
	return kn_ottl_rt_err(tx, "a key evaluated to %s (a string or an int is needed)", kn_ottl_vt_an(v.t));
}

/* Applies keys[from..] to *v. */
int kn_ottl_index(const struct kn_ottl_node *n, uint32_t from, struct kn_ottl_tx *tx, struct kn_ottl_val *v)
{
	for (uint32_t i = from; i < n->nkeys; i++) {
		const uint8_t *s = NULL;
		uint32_t len = 0;
		int64_t idx = 0;
		int kt = kn_ottl_key(n->keys[i], tx, &s, &len, &idx);
		if (kt < 0)
			return -1;
		if (v->t == KN_V_NIL)
			return 0;
		if (v->t == KN_V_MAP && kt == 0) {
			struct kn_ottl_val m = *v;
			if (kn_ottl_map_get(&m, s, len, v) < 0)
				return kn_ottl_rt_err(tx, "malformed map value");
			continue;
		}
		if (v->t == KN_V_SLICE && kt == 1) {
			struct kn_ottl_val sl = *v;
			int r = kn_ottl_slice_get(&sl, idx, v);
			if (r < 0)
				return kn_ottl_rt_err(tx, "malformed slice value");
			if (r > 0)
				return kn_ottl_rt_err(tx, "index %lld out of range for a slice of %lld",
						      (long long)idx, (long long)kn_ottl_slice_len(&sl));
			continue;
		}
		return kn_ottl_rt_err(tx, "cannot index %s with %s key", kn_ottl_vt_an(v->t),
				      kt == 0 ? "a string" : "an int");
	}
	return 0;
}

static int attrs_get(const struct kn_ottl_node *n, struct kn_ottl_tx *tx, struct kn_ottl_m *m,
		     struct kn_ottl_val *out)
{
	uint32_t field = (uint32_t)attr_field(m->kind);
	memset(out, 0, sizeof *out);
	if (n->nkeys == 0) {
		out->t = KN_V_MAP;
		if (m->at_loaded) {
			out->view = &m->at;
		} else {
			out->p = m->msg;
			out->len = m->len;
			out->field = (uint8_t)field;
		}
		return 0;
	}
	const uint8_t *key = NULL;
	uint32_t klen = 0;
	int64_t idx = 0;
	int kt = kn_ottl_key(n->keys[0], tx, &key, &klen, &idx);
	if (kt < 0)
		return -1;
	if (kt != 0)
		return kn_ottl_rt_err(tx, "attributes is a map: index it with a string, not %lld", (long long)idx);
	if (m->at_loaded) {
		int i = kn_wire_attrs_find(&m->at, (const char *)key, klen);
		if (i >= 0 && kn_ottl_val_from_av(&m->at.a[i].v, out) < 0)
			return kn_ottl_rt_err(tx, "malformed attribute value");
	} else if (m->msg && msg_attr(m->msg, m->len, field, key, klen, out) < 0) {
		return kn_ottl_rt_err(tx, "malformed %s attributes", kn_ottl_ctx_name(m->kind));
	}
	return kn_ottl_index(n, 1, tx, out);
}

static const char *const kind_str[] = {"Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"};
static const char *const kind_dep[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
				       "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};

int kn_ottl_path_get(const struct kn_ottl_node *n, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	const struct prow *row = &rows[n->pid];
	struct kn_ottl_m *m = row->type == T_ATTRS ? kn_ottl_tx_msg(tx, n->pctx) : kn_ottl_tx_fields(tx, n->pctx);
	if (!m)
		return -1;
	if (row->type == T_ATTRS)
		return attrs_get(n, tx, m, out);
	const struct kn_ottl_fv *f = &m->f[row->field];
	memset(out, 0, sizeof *out);
	switch (row->type) {
	case T_STR:
		out->t = KN_V_STR;
		out->p = f->s ? f->s : (const uint8_t *)"";
		out->len = f->len;
		return 0;
	case T_BYTES:
		out->t = KN_V_BYTES;
		if (f->len == row->idlen) {
			out->p = f->s;
			out->len = f->len;
		} else {
			out->p = zero_id;
			out->len = row->idlen;
		}
		return 0;
	case T_IDSTR: {
		out->t = KN_V_STR;
		out->p = (const uint8_t *)"";
		if (f->len != row->idlen || memcmp(f->s, zero_id, f->len) == 0)
			return 0;
		char *h = (char *)kn_ottl_tx_alloc(tx, 2u * f->len);
		if (!h)
			return kn_ottl_rt_err(tx, "out of memory");
		kn_hex_encode(f->s, f->len, h);
		out->p = (const uint8_t *)h;
		out->len = 2u * f->len;
		return 0;
	}
	case T_INT:
	case T_STATUS_CODE:
		out->t = KN_V_INT;
		out->i = row->field == 16 ? (int64_t)(uint32_t)f->u : (int64_t)f->u;
		if (row->field == 6 || row->type == T_STATUS_CODE)
			out->i = (int32_t)f->u;   /* enums are int32 on the wire */
		return 0;
	case T_U64:
		out->t = KN_V_INT;
		out->i = (int64_t)f->u;
		return 0;
	case T_TIME:
		out->t = KN_V_TIME;
		out->i = (int64_t)f->u;
		return 0;
	case T_STATUS_MSG:
		out->t = KN_V_STR;
		out->p = f->s ? f->s : (const uint8_t *)"";
		out->len = f->len;
		return 0;
	case T_KINDSTR:
	case T_KINDDEP: {
		int32_t k = (int32_t)f->u;
		const char *s = k >= 0 && k <= 5 ? (row->type == T_KINDSTR ? kind_str[k] : kind_dep[k]) : "";
		out->t = KN_V_STR;
		out->p = (const uint8_t *)s;
		out->len = (uint32_t)strlen(s);
		return 0;
	}
	default:
		return kn_ottl_rt_err(tx, "internal: unknown path type");
	}
}

/* ---- writing ---- */

struct kn_wire_attrs *kn_ottl_path_view(const struct kn_ottl_node *n, struct kn_ottl_tx *tx)
{
	struct kn_wire_attrs *at = kn_ottl_tx_attrs(tx, n->pctx);
	if (!at)
		kn_ottl_rt_err(tx, "malformed %s attributes", kn_ottl_ctx_name(n->pctx));
	return at;
}

struct addctx {
	struct kn_wire_attrs *at;
	int failed;
};

static int add_entry(void *ctx, const uint8_t *k, uint32_t klen, const struct kn_av *v)
{
	struct addctx *a = ctx;
	if (kn_wire_attrs_add(a->at, (const char *)k, klen, v) < 0) {
		a->failed = 1;
		return 1;
	}
	return 0;
}

static int attrs_set(const struct kn_ottl_node *n, struct kn_ottl_tx *tx, const struct kn_ottl_val *v)
{
	struct kn_wire_attrs *at = kn_ottl_path_view(n, tx);
	if (!at)
		return -1;
	if (n->nkeys == 0) {
		if (v->t != KN_V_MAP || v->view == at)
			return 0;
		for (uint32_t i = 0; i < at->n; i++)
			kn_wire_attrs_del(at, i);
		struct addctx a = {.at = at};
		if (kn_ottl_map_each(v, add_entry, &a) < 0)
			return kn_ottl_rt_err(tx, "malformed map value");
		return a.failed ? kn_ottl_rt_err(tx, "out of memory") : 0;
	}
	const uint8_t *key = NULL;
	uint32_t klen = 0;
	int64_t idx = 0;
	int kt = kn_ottl_key(n->keys[0], tx, &key, &klen, &idx);
	if (kt < 0)
		return -1;
	if (kt != 0)
		return kn_ottl_rt_err(tx, "attributes is a map: index it with a string, not %lld", (long long)idx);
	struct kn_av av;
	int r = kn_ottl_val_to_av(tx, v, &av);
	if (r)
		return r < 0 ? -1 : 0;
	if (n->nkeys > 1) {
		struct kn_av cur = {.type = KN_AV_EMPTY}, nv;
		int i = kn_wire_attrs_find(at, (const char *)key, klen);
		if (i >= 0)
			cur = at->a[i].v;
		if (kn_ottl_any_set(tx, &cur, n, 1, &av, &nv) < 0)
			return -1;
		av = nv;
	}
	/* a value the wire reader would refuse never reaches the span: set at
	 * a nested key, or a map holding deep values, can nest deeper */
	char why[96];
	if (kn_av_check(&av, why, sizeof why) < 0)
		return kn_ottl_rt_err(tx, "the value of attributes[\"%.*s\"] would be refused by receivers: %s",
				      (int)(klen > 64 ? 64 : klen), (const char *)key, why);
	if (kn_wire_attrs_put(at, (const char *)key, klen, &av) < 0)
		return kn_ottl_rt_err(tx, "out of memory");
	return 0;
}

/* A span's trace_id or span_id (not parent_span_id: all zero there means a
 * root) set to all zero: the wire reader rejects such a span, so writing one
 * would lose it downstream. */
static int id_zero(const struct prow *row, const uint8_t *id)
{
	return row->ctx == KN_OTTL_CTX_SPAN && (row->field == 1 || row->field == 2) &&
	       kn_wire_all_zero(id, row->idlen);
}

int kn_ottl_path_set(const struct kn_ottl_node *n, struct kn_ottl_tx *tx, const struct kn_ottl_val *v)
{
	const struct prow *row = &rows[n->pid];
	if (v->t == KN_V_NIL)
		return 0;
	struct kn_ottl_m *m = row->type == T_ATTRS ? kn_ottl_tx_msg(tx, n->pctx) : kn_ottl_tx_fields(tx, n->pctx);
	if (!m)
		return -1;
	if (!m->msg && n->pctx != KN_OTTL_CTX_RESOURCE && n->pctx != KN_OTTL_CTX_SCOPE)
		return kn_ottl_rt_err(tx, "no %s to write", kn_ottl_ctx_name(n->pctx));
	if (row->type == T_ATTRS)
		return attrs_set(n, tx, v);
	struct kn_ottl_fv *f = &m->f[row->field];
	switch (row->type) {
	case T_STR:
	case T_STATUS_MSG:
		if (v->t != KN_V_STR)
			return 0;
		f->s = v->p;
		f->len = v->len;
		break;
	case T_BYTES:
		if (v->t != KN_V_BYTES || v->len != row->idlen)
			return 0;
		if (id_zero(row, v->p))
			return kn_ottl_rt_err(tx, "%s: an all-zero id is not valid", row->name);
		f->s = v->p;
		f->len = v->len;
		break;
	case T_IDSTR: {
		if (v->t != KN_V_STR || v->len != 2u * row->idlen)
			return 0;
		uint8_t *b = kn_ottl_tx_alloc(tx, row->idlen);
		if (!b)
			return kn_ottl_rt_err(tx, "out of memory");
		if (!kn_hex_decode((const char *)v->p, v->len, b))
			return 0;
		if (id_zero(row, b))
			return kn_ottl_rt_err(tx, "%s: an all-zero id is not valid", row->name);
		f->s = b;
		f->len = row->idlen;
		break;
	}
	case T_INT:
	case T_STATUS_CODE:
		if (v->t != KN_V_INT)
			return 0;
		f->u = row->field == 16 ? (uint64_t)(uint32_t)v->i : (uint64_t)v->i;
		break;
	case T_U64:
		if (v->t != KN_V_INT)
			return 0;
		f->u = (uint64_t)v->i;
		break;
	case T_TIME:
		if (v->t != KN_V_TIME)
			return 0;
		f->u = (uint64_t)v->i;
		break;
	default:
		return kn_ottl_rt_err(tx, "path cannot be set");
	}
	m->chg |= 1u << row->field;
	return 0;
}
