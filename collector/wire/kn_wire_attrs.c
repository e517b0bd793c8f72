/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_attrs: an editable view of one message's KeyValue list, written
 * back as splices (see kn_wire_attrs.h). */
#include "kn_wire_attrs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kn_wire_field.h"
#include "kn_wire_internal.h"
#include "../core/kn_grow.h"

void kn_wire_attrs_init(struct kn_wire_attrs *at)
{
	memset(at, 0, sizeof *at);
}

void kn_wire_attrs_free(struct kn_wire_attrs *at)
{
	if (!at)
		return;
	free(at->a);
	kn_arena_free(&at->ar);
	memset(at, 0, sizeof *at);
}

uint8_t *kn_wire_attrs_alloc(struct kn_wire_attrs *at, size_t n)
{
	return kn_arena_alloc(&at->ar, n);
}

int kn_av_check(const struct kn_av *v, char *why, size_t cap)
{
	if (v->type != KN_AV_RAW)
		return 0;
	/* an attribute's value is the outermost AnyValue: depth 0 outside it */
	struct kn_wire_ctx c;
	c.trusted = 0;
	c.why = NULL;
	c.nframes = 0;
	if (kn_wire_check_msg(&c, KN_WM_ANYVALUE, v->s, v->s + v->len, 0) == 0)
		return 0;
	snprintf(why, cap, "%s", c.why ? c.why : "invalid");
	return -1;
}

int kn_av_decode(const uint8_t *p, size_t len, struct kn_av *v)
{
	const uint8_t *end = p + len, *q = p;
	struct kn_wire_field f;
	int r;
	memset(v, 0, sizeof *v);
	while ((r = kn_wire_field_next(&q, end, &f)) > 0) {
		switch (f.num) {
		case 1:
			if (f.wt != KN_WIRE_FIELD_LEN)
				return -1;
			v->type = KN_AV_STR;
			v->s = f.payload;
			v->len = (uint32_t)f.len;
			break;
		case 2:
			if (f.wt != KN_WIRE_FIELD_VARINT)
				return -1;
			v->type = KN_AV_BOOL;
			v->b = f.value != 0;
			break;
		case 3:
			if (f.wt != KN_WIRE_FIELD_VARINT)
				return -1;
			v->type = KN_AV_INT;
			v->i = (int64_t)f.value;
			break;
		case 4: {
			if (f.wt != KN_WIRE_FIELD_I64)
				return -1;
			uint64_t u = f.value;
			v->type = KN_AV_DOUBLE;
			memcpy(&v->d, &u, sizeof v->d);
			break;
		}
		case 5: case 6: case 7:
			if (f.wt != KN_WIRE_FIELD_LEN)
				return -1;
			v->type = KN_AV_RAW;
			break;
		case 8:   /* string_value_strindex (profiles' dictionaries): kept as it is */
			v->type = KN_AV_RAW;
			break;
		default:
			break;
		}
	}
	if (r < 0)
		return -1;
	if (v->type == KN_AV_RAW) {   /* the whole message, whatever came last */
		v->s = p;
		v->len = (uint32_t)len;
	}
	return 0;
}

static size_t fsize(uint64_t len)
{
	return 1 + kn_wire_varint_len(len) + (size_t)len;
}

size_t kn_av_encoded_size(const struct kn_av *v)
{
	switch (v->type) {
	case KN_AV_STR:
		return fsize(v->len);
	case KN_AV_BOOL:
		return 2;
	case KN_AV_INT:
		return 1 + kn_wire_varint_len((uint64_t)v->i);
	case KN_AV_DOUBLE:
		return 9;
	case KN_AV_RAW:
		return v->len;
	default:
		return 0;
	}
}

uint8_t *kn_av_encode(const struct kn_av *v, uint8_t *w)
{
	switch (v->type) {
	case KN_AV_STR:
		*w++ = 0x0a;
		w += kn_wire_put_varint(w, v->len);
		if (v->len)
			memcpy(w, v->s, v->len);
		return w + v->len;
	case KN_AV_BOOL:
		*w++ = 0x10;
		*w++ = v->b ? 1 : 0;
		return w;
	case KN_AV_INT:
		*w++ = 0x18;
		return w + kn_wire_put_varint(w, (uint64_t)v->i);
	case KN_AV_DOUBLE: {
		uint64_t u;
		memcpy(&u, &v->d, sizeof u);
		*w++ = 0x21;
		for (int k = 0; k < 8; k++)
			*w++ = (uint8_t)(u >> (8 * k));
		return w;
	}
	case KN_AV_RAW:
		if (v->len)
			memcpy(w, v->s, v->len);
		return w + v->len;
	default:
		return w;
	}
}

int kn_av_equal(const struct kn_av *a, const struct kn_av *b)
{
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case KN_AV_STR:
	case KN_AV_RAW:
		return a->len == b->len && (a->len == 0 || memcmp(a->s, b->s, a->len) == 0);
	case KN_AV_BOOL:
		return a->b == b->b;
	case KN_AV_INT:
		return a->i == b->i;
	case KN_AV_DOUBLE:
		return a->d == b->d;
	default:
		return 1;
	}
}

/* Go's strconv.FormatFloat(f, 'f' or 'e', -1, 64) as pdata's AsString uses
 * it (ES6 number-to-string cut-offs): the shortest digits that read back. */
static int fmt_double(double d, char buf[64])
{
	if (isnan(d))
		return snprintf(buf, 64, "NaN");
	if (isinf(d))
		return snprintf(buf, 64, d > 0 ? "+Inf" : "-Inf");
	int p = 1;
	char tmp[64];
	for (; p < 17; p++) {
		snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
	double a = fabs(d);
	if (a != 0 && (a < 1e-6 || a >= 1e21)) {
		/* d.ddde[+-]XX -> d.ddde[+-]X (Go drops exponent padding) */
		char *e = strchr(tmp, 'e');
		if (!e)
			return snprintf(buf, 64, "%s", tmp);
		char sign = e[1];
		const char *x = e + 2;
		while (*x == '0' && x[1])
			x++;
		*e = '\0';
		return snprintf(buf, 64, "%se%c%s", tmp, sign, x);
	}
	int ex = atoi(strchr(tmp, 'e') + 1);
	int dec = p - 1 - ex;
	if (dec < 0)
		dec = 0;
	return snprintf(buf, 64, "%.*f", dec, d);
}

int kn_av_string(const struct kn_av *v, char buf[64], const char **out)
{
	switch (v->type) {
	case KN_AV_STR:
		*out = (const char *)v->s;
		return (int)v->len;
	case KN_AV_BOOL:
		*out = buf;
		return snprintf(buf, 64, "%s", v->b ? "true" : "false");
	case KN_AV_INT:
		*out = buf;
		return snprintf(buf, 64, "%lld", (long long)v->i);
	case KN_AV_DOUBLE:
		*out = buf;
		return fmt_double(v->d, buf);
	default:
		*out = buf;
		buf[0] = '\0';
		return -1;
	}
}

/* One KeyValue: key and value (last occurrences win, as protobuf merges). */
static int kv_decode(const uint8_t *p, size_t len, struct kn_wire_attr *e)
{
	const uint8_t *q = p, *end = p + len;
	struct kn_wire_field f;
	int r;
	e->key = (const uint8_t *)"";
	e->key_len = 0;
	memset(&e->v, 0, sizeof e->v);
	while ((r = kn_wire_field_next(&q, end, &f)) > 0) {
		if (f.num == 1) {
			if (f.wt != KN_WIRE_FIELD_LEN)
				return -1;
			e->key = f.payload;
			e->key_len = (uint32_t)f.len;
		} else if (f.num == 2) {
			if (f.wt != KN_WIRE_FIELD_LEN || kn_av_decode(f.payload, f.len, &e->v) < 0)
				return -1;
		}
	}
	return r;
}

int kn_wire_attrs_load(struct kn_wire_attrs *at, const uint8_t *msg, uint32_t len, uint32_t field)
{
	at->n = 0;
	at->nlive = 0;
	at->edited = 0;
	at->field = field;
	at->msg = msg;
	at->len = msg ? len : 0;
	kn_arena_reset(&at->ar);
	if (!msg)
		return 0;
	const uint8_t *p = msg, *end = msg + len;
	struct kn_wire_field f;
	int r;
	for (;;) {
		const uint8_t *f0 = p;
		if ((r = kn_wire_field_next(&p, end, &f)) <= 0)
			break;
		if (f.num != field)
			continue;
		if (f.wt != KN_WIRE_FIELD_LEN)
			goto bad;
		if (kn_grow((void **)&at->a, &at->cap, at->n, sizeof *at->a))
			goto bad;
		struct kn_wire_attr *e = &at->a[at->n];
		if (kv_decode(f.payload, f.len, e) < 0)
			goto bad;
		e->off = (uint32_t)(f0 - msg);
		e->flen = (uint32_t)(p - f0);
		e->state = KN_WA_KEEP;
		at->n++;
		at->nlive++;
	}
	if (r < 0)
		goto bad;
	return 0;
bad:
	at->n = at->nlive = 0;
	at->msg = NULL;
	at->len = 0;
	return -1;
}

int kn_wire_attrs_find(const struct kn_wire_attrs *at, const char *key, size_t key_len)
{
	for (uint32_t i = 0; i < at->n; i++) {
		const struct kn_wire_attr *e = &at->a[i];
		if (e->state != KN_WA_DELETED && e->key_len == key_len &&
		    (key_len == 0 || memcmp(e->key, key, key_len) == 0))
			return (int)i;
	}
	return -1;
}

void kn_wire_attrs_set(struct kn_wire_attrs *at, uint32_t i, const struct kn_av *v)
{
	struct kn_wire_attr *e = &at->a[i];
	e->v = *v;
	if (e->state == KN_WA_KEEP)
		e->state = KN_WA_CHANGED;
	at->edited = 1;
}

int kn_wire_attrs_add(struct kn_wire_attrs *at, const char *key, size_t key_len,
		      const struct kn_av *v)
{
	if (key_len > UINT32_MAX || kn_grow((void **)&at->a, &at->cap, at->n, sizeof *at->a))
		return -1;
	struct kn_wire_attr *e = &at->a[at->n++];
	e->key = (const uint8_t *)key;
	e->key_len = (uint32_t)key_len;
	e->v = *v;
	e->off = at->len;
	e->flen = 0;
	e->state = KN_WA_NEW;
	at->nlive++;
	at->edited = 1;
	return 0;
}

int kn_wire_attrs_put(struct kn_wire_attrs *at, const char *key, size_t key_len,
		      const struct kn_av *v)
{
	int i = kn_wire_attrs_find(at, key, key_len);
	if (i >= 0) {
		kn_wire_attrs_set(at, (uint32_t)i, v);
		return 0;
	}
	return kn_wire_attrs_add(at, key, key_len, v);
}

void kn_wire_attrs_rename(struct kn_wire_attrs *at, uint32_t i, const char *key, size_t key_len)
{
	struct kn_wire_attr *e = &at->a[i];
	e->key = (const uint8_t *)key;
	e->key_len = (uint32_t)key_len;
	if (e->state == KN_WA_KEEP)
		e->state = KN_WA_CHANGED;
	at->edited = 1;
}

void kn_wire_attrs_del(struct kn_wire_attrs *at, uint32_t i)
{
	if (at->a[i].state == KN_WA_DELETED)
		return;
	at->a[i].state = KN_WA_DELETED;
	at->nlive--;
	at->edited = 1;
}

static size_t kv_size(const struct kn_wire_attr *e, size_t *kv)
{
	size_t any = kn_av_encoded_size(&e->v);
	*kv = fsize(e->key_len) + fsize(any);
	return 1 + kn_wire_varint_len(*kv) + *kv;   /* tags of fields < 16 are one byte */
}

static uint8_t *kv_write(const struct kn_wire_attr *e, uint32_t field, uint8_t *w)
{
	size_t kv;
	kv_size(e, &kv);
	w += kn_wire_put_varint(w, ((uint64_t)field << 3) | 2);
	w += kn_wire_put_varint(w, kv);
	*w++ = 0x0a;
	w += kn_wire_put_varint(w, e->key_len);
	if (e->key_len)
		memcpy(w, e->key, e->key_len);
	w += e->key_len;
	*w++ = 0x12;
	w += kn_wire_put_varint(w, kn_av_encoded_size(&e->v));
	return kn_av_encode(&e->v, w);
}

static size_t kv_total(const struct kn_wire_attr *e, uint32_t field)
{
	size_t kv;
	size_t n = kv_size(e, &kv);
	return n - 1 + kn_wire_varint_len(((uint64_t)field << 3) | 2);
}

int kn_wire_attrs_emit(const struct kn_wire_attrs *at, struct kn_wire_edit *ed)
{
	if (!at->edited)
		return 0;
	/* a Span's own attributes: the editor may patch its header (nattrs) */
	int span = at->field == 9 && at->msg && at->len == ed->cur_len;
	int any = 0;
	size_t add = 0;
	for (uint32_t i = 0; i < at->n; i++) {
		const struct kn_wire_attr *e = &at->a[i];
		if (e->state == KN_WA_NEW) {
			add += kv_total(e, at->field);
			continue;
		}
		if (e->state == KN_WA_KEEP || (e->state == KN_WA_DELETED && e->flen == 0))
			continue;
		size_t n = e->state == KN_WA_DELETED ? 0 : kv_total(e, at->field);
		if (n > 0x7fffffffu)
			return -1;
		uint8_t *w = span ? kn_wire_edit_splice_span_attrs(ed, e->off, e->flen, (uint32_t)n)
				  : kn_wire_edit_splice(ed, e->off, e->flen, (uint32_t)n);
		if (!w)
			return -1;
		if (n)
			kv_write(e, at->field, w);
		any = 1;
	}
	if (add) {
		if (add > 0x7fffffffu)
			return -1;
		uint8_t *w = span ? kn_wire_edit_splice_span_attrs(ed, at->len, 0, (uint32_t)add)
				  : kn_wire_edit_splice(ed, at->len, 0, (uint32_t)add);
		if (!w)
			return -1;
		for (uint32_t i = 0; i < at->n; i++)
			if (at->a[i].state == KN_WA_NEW)
				w = kv_write(&at->a[i], at->field, w);
		any = 1;
	}
	if (any && span)
		kn_wire_edit_span_nattrs(ed, at->nlive);
	return any;
}
