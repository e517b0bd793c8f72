/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_eval: walks a compiled tree for one transform context.
 *
 * `and` / `or` short-circuit left to right (OTel evaluates the same way);
 * a boolean position that yields anything but a bool is an error. List and
 * map literals are encoded into the tx's arena as an ArrayValue /
 * KeyValueList, so they are ordinary slice and map values afterwards (nil
 * items become empty AnyValues). Nothing is allocated outside the arena. */
#include <string.h>

#include "kn_ottl_int.h"
#include "../wire/kn_wire_field.h"

int kn_ottl_eval_bool(const struct kn_ottl_node *n, struct kn_ottl_tx *tx, int *b)
{
	struct kn_ottl_val v;
	if (kn_ottl_eval(n, tx, &v) < 0)
		return -1;
	if (v.t != KN_V_BOOL) {
		if (n->kind == KN_N_CALL)
			return kn_ottl_rt_err(tx, "%s returned %s, not a boolean", n->name, kn_ottl_vt_an(v.t));
		return kn_ottl_rt_err(tx, "expected a boolean, got %s", kn_ottl_vt_an(v.t));
	}
	*b = v.i != 0;
	return 0;
}

static int eval_list(const struct kn_ottl_node *n, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	struct kn_av *items = NULL;
	size_t total = 0;
	if (n->nkids) {
		items = (struct kn_av *)kn_ottl_tx_alloc(tx, n->nkids * sizeof *items);
		if (!items)
			return kn_ottl_rt_err(tx, "out of memory");
	}
	for (uint32_t i = 0; i < n->nkids; i++) {
		struct kn_ottl_val v;
		if (kn_ottl_eval(n->kids[i], tx, &v) < 0)
			return -1;
		int r = kn_ottl_val_to_av(tx, &v, &items[i]);
		if (r < 0)
			return -1;
		if (r > 0)
			items[i].type = KN_AV_EMPTY;
		size_t a = kn_av_encoded_size(&items[i]);
		total += 1 + kn_wire_varint_len(a) + a;
	}
	uint8_t *b = kn_ottl_tx_alloc(tx, total + 1), *w = b;
	if (!b)
		return kn_ottl_rt_err(tx, "out of memory");
	for (uint32_t i = 0; i < n->nkids; i++) {
		*w++ = 0x0a;
		w += kn_wire_put_varint(w, kn_av_encoded_size(&items[i]));
		w = kn_av_encode(&items[i], w);
	}
	memset(out, 0, sizeof *out);
	out->t = KN_V_SLICE;
	out->p = b;
	out->len = (uint32_t)(w - b);
	return 0;
}

static int eval_map(const struct kn_ottl_node *n, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	struct kn_av *items = NULL;
	size_t total = 0;
	if (n->nkids) {
		items = (struct kn_av *)kn_ottl_tx_alloc(tx, n->nkids * sizeof *items);
		if (!items)
			return kn_ottl_rt_err(tx, "out of memory");
	}
	for (uint32_t i = 0; i < n->nkids; i++) {
		struct kn_ottl_val v;
		if (kn_ottl_eval(n->kids[i], tx, &v) < 0)
			return -1;
		int r = kn_ottl_val_to_av(tx, &v, &items[i]);
		if (r < 0)
			return -1;
		if (r > 0)
			items[i].type = KN_AV_EMPTY;
		total += kn_ottl_kv_size((uint32_t)strlen(n->argnames[i]), &items[i]);
	}
	uint8_t *b = kn_ottl_tx_alloc(tx, total + 1), *w = b;
	if (!b)
		return kn_ottl_rt_err(tx, "out of memory");
	for (uint32_t i = 0; i < n->nkids; i++)
		w = kn_ottl_kv_write(w, 1, (const uint8_t *)n->argnames[i], (uint32_t)strlen(n->argnames[i]), &items[i]);
	memset(out, 0, sizeof *out);
	out->t = KN_V_MAP;
	out->field = 1;
	out->p = b;
	out->len = (uint32_t)(w - b);
	return 0;
}

int kn_ottl_eval(const struct kn_ottl_node *n, struct kn_ottl_tx *tx, struct kn_ottl_val *out)
{
	struct kn_ottl_val a, b;
	int x = 0;
	switch (n->kind) {
	case KN_N_LIT:
		*out = n->v;
		return 0;
	case KN_N_PATH:
		return kn_ottl_path_get(n, tx, out);
	case KN_N_CALL:
		memset(out, 0, sizeof *out);
		if (n->fn->run(n, tx, out) < 0)
			return -1;
		return n->nkeys ? kn_ottl_index(n, 0, tx, out) : 0;
	case KN_N_LIST:
		return eval_list(n, tx, out);
	case KN_N_MAP:
		return eval_map(n, tx, out);
	case KN_N_MATH:
		if (kn_ottl_eval(n->kids[0], tx, &a) < 0 || kn_ottl_eval(n->kids[1], tx, &b) < 0)
			return -1;
		return kn_ottl_math(tx, n->op, &a, &b, out);
	case KN_N_CMP:
		if (kn_ottl_eval(n->kids[0], tx, &a) < 0 || kn_ottl_eval(n->kids[1], tx, &b) < 0)
			return -1;
		memset(out, 0, sizeof *out);
		out->t = KN_V_BOOL;
		out->i = kn_ottl_compare(tx, &a, &b, n->op);
		return 0;
	case KN_N_AND:
	case KN_N_OR:
		if (kn_ottl_eval_bool(n->kids[0], tx, &x) < 0)
			return -1;
		if (x == (n->kind == KN_N_AND) && kn_ottl_eval_bool(n->kids[1], tx, &x) < 0)
			return -1;
		memset(out, 0, sizeof *out);
		out->t = KN_V_BOOL;
		out->i = x;
		return 0;
	case KN_N_NOT:
		if (kn_ottl_eval_bool(n->kids[0], tx, &x) < 0)
			return -1;
		memset(out, 0, sizeof *out);
		out->t = KN_V_BOOL;
		out->i = !x;
		return 0;
	default:
		return kn_ottl_rt_err(tx, "internal: cannot evaluate this node");
	}
}

int kn_ottl_cond(const struct kn_ottl_prog *p, struct kn_ottl_tx *tx)
{
	int b = 0;
	tx->prog = p;
	tx->cur = p->ctx;
	if (kn_ottl_eval_bool(p->root, tx, &b) < 0)
		return -1;
	return b;
}

int kn_ottl_exec(const struct kn_ottl_prog *p, struct kn_ottl_tx *tx)
{
	int b = 0;
	tx->prog = p;
	tx->cur = p->ctx;
	if (p->cond) {
		if (kn_ottl_eval_bool(p->cond, tx, &b) < 0)
			return -1;
		if (!b)
			return 0;
	}
	struct kn_ottl_val dummy;
	memset(&dummy, 0, sizeof dummy);
	if (p->root->fn->run(p->root, tx, &dummy) < 0)
		return -1;
	return 1;
}

int kn_ottl_any(struct kn_ottl_prog *const *p, uint32_t n, int errmode, struct kn_ottl_tx *tx,
		uint64_t *errors)
{
	for (uint32_t i = 0; i < n; i++) {
		int r = kn_ottl_cond(p[i], tx);
		if (r > 0)
			return 1;
		if (r < 0) {
			(*errors)++;
			if (errmode == KN_OTTL_PROPAGATE)
				return -1;
		}
	}
	return 0;
}
