/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_edit: OTTL's editors on fields and maps, with OTel's semantics
 * (ottlfuncs):
 *
 *   set(target, value)                       nil -> no-op
 *   delete_key(map, key)                     every entry with the key
 *   delete_matching_keys(map, pattern)       keys the regex finds
 *   keep_keys(map, [keys])                   only those keys stay
 *   keep_matching_keys(map, pattern)
 *   truncate_all(map, limit, utf8_safe = true, truncation_marker = "")
 *                                            string values cut to `limit`
 *                                            bytes, marker included, never
 *                                            inside a UTF-8 sequence when safe
 *   limit(map, limit, [priority_keys])       keeps the priority keys present
 *                                            and then the first entries in
 *                                            order, up to `limit`
 *   merge_maps(map, source, insert|update|upsert)
 *
 * A map target is an attribute list (span, resource, scope, span event),
 * edited in place through the tx's kn_wire_attrs view (so untouched entries
 * keep their bytes), or a map held in an attribute (`attributes["http"]`),
 * loaded into a scratch view, edited, and written back as a new value.
 * Literal arguments are checked at startup (negative limits, more priority
 * keys than the limit, a marker longer than the limit, unknown strategies,
 * regexes). */
#include <string.h>

#include "kn_ottl_int.h"

/* ---- map handles ---- */

struct mh {
	struct kn_wire_attrs *at;
	int nested;
};

/* 1 open, 0 nothing to edit (a nested map that is not there), -1 error. */
static int mh_open(const struct kn_ottl_node *path, struct kn_ottl_tx *tx, struct mh *h, const char *fn)
{
	h->nested = 0;
	if (path->nkeys == 0) {
		h->at = kn_ottl_path_view(path, tx);
		return h->at ? 1 : -1;
	}
	struct kn_ottl_val v;
	if (kn_ottl_path_get(path, tx, &v) < 0)
		return -1;
	if (v.t == KN_V_NIL)
		return 0;
	if (v.t != KN_V_MAP)
		return kn_ottl_rt_err(tx, "%s: the target is %s, not a map", fn, kn_ottl_vt_an(v.t));
	const uint8_t *p = NULL;
	uint32_t len = 0;
	if (kn_ottl_map_encode(tx, &v, &p, &len) < 0)
		return -1;
	if (kn_wire_attrs_load(&tx->tmp, p, len, 1) < 0)
		return kn_ottl_rt_err(tx, "%s: malformed map", fn);
	h->at = &tx->tmp;
	h->nested = 1;
	return 1;
}

static int mh_close(const struct kn_ottl_node *path, struct kn_ottl_tx *tx, struct mh *h)
{
	if (!h->nested || !h->at->edited)
		return 0;
	struct kn_ottl_val v;
	memset(&v, 0, sizeof v);
	v.t = KN_V_MAP;
	v.field = 1;
	if (kn_ottl_view_encode(tx, h->at, &v.p, &v.len) < 0)
		return -1;
	return kn_ottl_path_set(path, tx, &v);
}

static int key_is(const struct kn_wire_attr *e, const uint8_t *k, uint32_t klen)
{
	return e->key_len == klen && (!klen || memcmp(e->key, k, klen) == 0);
}

/* ---- set ---- */

static int run_set(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)out;
	struct kn_ottl_val v;
	if (kn_ottl_eval(c->kids[1], tx, &v) < 0)
		return -1;
	return kn_ottl_path_set(c->kids[0], tx, &v);
}

/* ---- deleting and keeping keys ---- */

static int run_delete_key(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)out;
	struct mh h;
	int r = mh_open(c->kids[0], tx, &h, c->name);
	if (r <= 0)
		return r;
	const struct kn_ottl_val *k = &c->kids[1]->v;
	for (uint32_t i = 0; i < h.at->n; i++)
		if (h.at->a[i].state != KN_WA_DELETED && key_is(&h.at->a[i], k->p, k->len))
			kn_wire_attrs_del(h.at, i);
	return mh_close(c->kids[0], tx, &h);
}

static int check_regex1(struct kn_ottl_node *c, struct kn_ottl_cc *cc)
{
	c->re = kn_ottl_cc_regex(cc, c->kids[1]);
	return c->re ? KN_OK : KN_ERR;
}

static int matching_keys(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, int keep)
{
	struct mh h;
	int r = mh_open(c->kids[0], tx, &h, c->name);
	if (r <= 0)
		return r;
	for (uint32_t i = 0; i < h.at->n; i++) {
		struct kn_wire_attr *e = &h.at->a[i];
		if (e->state == KN_WA_DELETED)
			continue;
		int m = kn_ottl_re_match(tx, c->re, e->key, e->key_len, 0, NULL, NULL);
		if (m < 0)
			return -1;
		if (m != keep)
			kn_wire_attrs_del(h.at, i);
	}
	return mh_close(c->kids[0], tx, &h);
}

static int run_delete_matching_keys(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)out;
	return matching_keys(c, tx, 0);
}

static int run_keep_matching_keys(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)out;
	return matching_keys(c, tx, 1);
}

static int in_list(const struct kn_ottl_node *list, const struct kn_wire_attr *e)
{
	for (uint32_t j = 0; j < list->nkids; j++)
		if (key_is(e, list->kids[j]->v.p, list->kids[j]->v.len))
			return 1;
	return 0;
}

static int run_keep_keys(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)out;
	struct mh h;
	int r = mh_open(c->kids[0], tx, &h, c->name);
	if (r <= 0)
		return r;
	for (uint32_t i = 0; i < h.at->n; i++)
		if (h.at->a[i].state != KN_WA_DELETED && !in_list(c->kids[1], &h.at->a[i]))
			kn_wire_attrs_del(h.at, i);
	return mh_close(c->kids[0], tx, &h);
}

/* ---- truncate_all ---- */

static int check_truncate(struct kn_ottl_node *c, struct kn_ottl_cc *cc)
{
	int64_t limit = c->kids[1]->v.i;
	if (limit < 0)
		return kn_ottl_cc_err(cc, c->kids[1], "truncate_all: limit must be at least 0");
	if (c->kids[3] && (int64_t)c->kids[3]->v.len > limit)
		return kn_ottl_cc_err(cc, c->kids[3], "truncate_all: truncation_marker is longer than the limit");
	return KN_OK;
}

static int run_truncate_all(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)out;
	struct mh h;
	int r = mh_open(c->kids[0], tx, &h, c->name);
	if (r <= 0)
		return r;
	uint64_t limit = (uint64_t)c->kids[1]->v.i;
	int safe = c->kids[2] ? c->kids[2]->v.i != 0 : 1;
	const uint8_t *mk = c->kids[3] ? c->kids[3]->v.p : NULL;
	uint32_t mklen = c->kids[3] ? c->kids[3]->v.len : 0;
	for (uint32_t i = 0; i < h.at->n; i++) {
		struct kn_wire_attr *e = &h.at->a[i];
		if (e->state == KN_WA_DELETED || e->v.type != KN_AV_STR || e->v.len <= limit)
			continue;
		uint32_t cut = (uint32_t)(limit - mklen);
		if (safe)
			while (cut > 0 && (e->v.s[cut] & 0xc0) == 0x80)
				cut--;
		struct kn_av v = {.type = KN_AV_STR, .s = e->v.s, .len = cut};
		if (mklen) {
			uint8_t *b = kn_ottl_tx_alloc(tx, (size_t)cut + mklen);
			if (!b)
				return kn_ottl_rt_err(tx, "out of memory");
			memcpy(b, e->v.s, cut);
			memcpy(b + cut, mk, mklen);
			v.s = b;
			v.len = cut + mklen;
		}
		kn_wire_attrs_set(h.at, i, &v);
	}
	return mh_close(c->kids[0], tx, &h);
}

/* ---- limit ---- */

static int check_limit(struct kn_ottl_node *c, struct kn_ottl_cc *cc)
{
	int64_t limit = c->kids[1]->v.i;
	if (limit < 0)
		return kn_ottl_cc_err(cc, c->kids[1], "limit: the limit must be at least 0");
	if (c->kids[2] && (int64_t)c->kids[2]->nkids > limit)
		return kn_ottl_cc_err(cc, c->kids[2], "limit: %u priority keys are more than the limit %lld",
				      c->kids[2]->nkids, (long long)limit);
	return KN_OK;
}

static int run_limit(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)out;
	struct mh h;
	int r = mh_open(c->kids[0], tx, &h, c->name);
	if (r <= 0)
		return r;
	int64_t limit = c->kids[1]->v.i;
	if ((int64_t)h.at->nlive > limit) {
		const struct kn_ottl_node *pk = c->kids[2];
		int64_t count = 0;
		for (uint32_t j = 0; pk && j < pk->nkids; j++)
			if (kn_wire_attrs_find(h.at, (const char *)pk->kids[j]->v.p, pk->kids[j]->v.len) >= 0)
				count++;
		for (uint32_t i = 0; i < h.at->n; i++) {
			struct kn_wire_attr *e = &h.at->a[i];
			if (e->state == KN_WA_DELETED || (pk && in_list(pk, e)))
				continue;
			if (count < limit)
				count++;
			else
				kn_wire_attrs_del(h.at, i);
		}
	}
	return mh_close(c->kids[0], tx, &h);
}

/* ---- merge_maps ---- */

enum { MERGE_INSERT, MERGE_UPDATE, MERGE_UPSERT };

static int check_merge(struct kn_ottl_node *c, struct kn_ottl_cc *cc)
{
	static const char *const names[] = {"insert", "update", "upsert"};
	const struct kn_ottl_val *v = &c->kids[2]->v;
	for (int i = 0; i < 3; i++)
		if (strlen(names[i]) == v->len && !memcmp(names[i], v->p, v->len)) {
			c->aux = i;
			return KN_OK;
		}
	return kn_ottl_cc_err(cc, c->kids[2], "merge_maps: strategy must be insert, update or upsert");
}

struct merge {
	struct kn_wire_attrs *at;
	int how;
	int failed;
};

static int merge_cb(void *ctx, const uint8_t *k, uint32_t klen, const struct kn_av *v)
{
	struct merge *m = ctx;
	int i = kn_wire_attrs_find(m->at, (const char *)k, klen);
	if (i >= 0) {
		if (m->how != MERGE_INSERT)
			kn_wire_attrs_set(m->at, (uint32_t)i, v);
	} else if (m->how != MERGE_UPDATE && kn_wire_attrs_add(m->at, (const char *)k, klen, v) < 0) {
		m->failed = 1;
		return 1;
	}
	return 0;
}

static int run_merge_maps(const struct kn_ottl_node *c, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	(void)out;
	struct kn_ottl_val src;
	if (kn_ottl_eval(c->kids[1], tx, &src) < 0)
		return -1;
	if (src.t != KN_V_MAP)
		return kn_ottl_rt_err(tx, "merge_maps: the source is %s, not a map", kn_ottl_vt_an(src.t));
	struct mh h;
	int r = mh_open(c->kids[0], tx, &h, c->name);
	if (r <= 0)
		return r;
	if (src.view == h.at)
		return 0;
	struct merge m = {.at = h.at, .how = (int)c->aux};
	if (kn_ottl_map_each(&src, merge_cb, &m) < 0)
		return kn_ottl_rt_err(tx, "merge_maps: malformed source map");
	if (m.failed)
		return kn_ottl_rt_err(tx, "out of memory");
	return mh_close(c->kids[0], tx, &h);
}

#define P(n, k) {.name = n, .kind = k}
#define OPT(n, k) {.name = n, .kind = k, .optional = 1}

const struct kn_ottl_fn kn_ottl_fns_edit[] = {
	{.name = "set", .editor = 1, .nparams = 2, .params = {P("target", KN_PK_TARGET), P("value", KN_PK_ANY)},
	 .run = run_set},
	{.name = "delete_key", .editor = 1, .nparams = 2, .params = {P("target", KN_PK_MAPTARGET), P("key", KN_PK_STR)},
	 .run = run_delete_key},
	{.name = "delete_matching_keys", .editor = 1, .nparams = 2,
	 .params = {P("target", KN_PK_MAPTARGET), P("pattern", KN_PK_STR)}, .check = check_regex1,
	 .run = run_delete_matching_keys},
	{.name = "keep_keys", .editor = 1, .nparams = 2, .params = {P("target", KN_PK_MAPTARGET), P("keys", KN_PK_STRLIST)},
	 .run = run_keep_keys},
	{.name = "keep_matching_keys", .editor = 1, .nparams = 2,
	 .params = {P("target", KN_PK_MAPTARGET), P("pattern", KN_PK_STR)}, .check = check_regex1,
	 .run = run_keep_matching_keys},
	{.name = "truncate_all", .editor = 1, .nparams = 4,
	 .params = {P("target", KN_PK_MAPTARGET), P("limit", KN_PK_INT), OPT("utf8_safe", KN_PK_BOOL),
		    OPT("truncation_marker", KN_PK_STR)},
	 .check = check_truncate, .run = run_truncate_all},
	{.name = "limit", .editor = 1, .nparams = 3,
	 .params = {P("target", KN_PK_MAPTARGET), P("limit", KN_PK_INT), P("priority_keys", KN_PK_STRLIST)},
	 .check = check_limit, .run = run_limit},
	{.name = "merge_maps", .editor = 1, .nparams = 3,
	 .params = {P("target", KN_PK_MAPTARGET), P("source", KN_PK_ANY), P("strategy", KN_PK_STR)},
	 .check = check_merge, .run = run_merge_maps},
	{.name = NULL},
};
