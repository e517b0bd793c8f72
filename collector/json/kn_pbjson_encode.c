/* SPDX-License-Identifier: Apache-2.0
 * kn_pbjson_encode: protobuf-c message -> compact OTLP/JSON text, generic
 * over ProtobufCMessageDescriptor (rules in kn_pbjson.h).
 * Writes straight into one growing buffer (doubling; no DOM, no allocation
 * per field). Presence follows protobuf-c's packer, so decode(encode(m))
 * packs to the same bytes as m: proto3 scalars are skipped at zero (-0.0
 * included), strings when empty, bytes when empty, sub-messages when NULL;
 * a oneof member is written whenever its case is set; repeated fields when
 * non-empty. Keys are lowerCamelCase, written from the field name on the fly.
 * Numbers: 64-bit integers as decimal strings, 32-bit ones and enums as JSON
 * numbers, doubles in the shortest form that reads back to the same bits
 * (always with a '.' or exponent, so -0.0 stays a real), non-finite ones as
 * "NaN" / "Infinity" / "-Infinity". Strings are checked for UTF-8; each bad
 * byte becomes U+FFFD, so the output is always valid JSON.
 * Threading: none shared; recursion depth bounded by KN_PBJSON_MAX_DEPTH. */
#include "kn_pbjson.h"
#include "kn_pbjson_internal.h"
#include "../core/kn_hex.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static bool w_reserve(struct wbuf *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + n + 1) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void w_mem(struct wbuf *b, const char *s, size_t n)
{
	if (!w_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void w_ch(struct wbuf *b, char c) { w_mem(b, &c, 1); }

static void w_str(struct wbuf *b, const char *s) { w_mem(b, s, strlen(s)); }

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void w_json_string(struct wbuf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);
	w_ch(b, '"');
	size_t run = 0; /* start of the pending run of bytes copied verbatim */
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		const char *esc = NULL;
		char ubuf[8];
		size_t seq = 1;
		if (c == '"')
			esc = "\\\"";
		else if (c == '\\')
			esc = "\\\\";
		else if (c == '\n')
			esc = "\\n";
		else if (c == '\r')
			esc = "\\r";
		else if (c == '\t')
			esc = "\\t";
		else if (c == '\b')
			esc = "\\b";
		else if (c == '\f')
			esc = "\\f";
		else if (c < 0x20) {
			snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
			esc = ubuf;
		} else if (c >= 0x80 && (seq = utf8_seq(s + i, n - i)) == 0) {
			esc = "\\ufffd";
			seq = 1;
		}
		if (esc) {
			w_mem(b, str + run, i - run);
			w_str(b, esc);
			run = i + seq;
		}
		i += seq;
	}
	w_mem(b, str + run, n - run);
	w_ch(b, '"');
}

static void w_key(struct wbuf *b, bool *first, const char *name)
{
	if (!*first)
		w_ch(b, ',');
	*first = false;
	w_ch(b, '"');
	bool up = false;
	for (; *name; name++) {
		if (*name == '_') {
			up = true;
			continue;
		}
		char c = *name;
		if (up && c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		up = false;
		w_ch(b, c);
	}
	w_str(b, "\":");
}

/* Shortest "%.*g" that reads back as the same double (float when is_float),
 * with ".0" added when it would otherwise look like an integer. */
static void w_real(struct wbuf *b, double x, bool is_float)
{
	if (isnan(x)) {
		w_str(b, "\"NaN\"");
		return;
	}
	if (isinf(x)) {
		w_str(b, x > 0 ? "\"Infinity\"" : "\"-Infinity\"");
		return;
	}
	char buf[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, x);
		double back = strtod(buf, NULL);
		if (is_float ? (float)back == (float)x : back == x)
			break;
	}
	if (!strpbrk(buf, ".eEn"))
		strcat(buf, ".0");
	w_str(b, buf);
}

static void w_fmt_u64(struct wbuf *b, uint64_t v, bool quoted)
{
	char buf[32];
	snprintf(buf, sizeof buf, quoted ? "\"%" PRIu64 "\"" : "%" PRIu64, v);
	w_str(b, buf);
}

static void w_fmt_i64(struct wbuf *b, int64_t v, bool quoted)
{
	char buf[32];
	snprintf(buf, sizeof buf, quoted ? "\"%" PRId64 "\"" : "%" PRId64, v);
	w_str(b, buf);
}

static void w_bytes(struct wbuf *b, const ProtobufCFieldDescriptor *f, const ProtobufCBinaryData *bd)
{
	bool hex = kn_pbjson_hex_id_len(f) != 0;
	size_t n = hex ? 2 * bd->len : kn_pbjson_b64_encoded_len(bd->len);
	if (!w_reserve(b, n + 2))
		return;
	b->p[b->len++] = '"';
	if (bd->len) {
		if (hex)
			kn_hex_encode(bd->data, bd->len, b->p + b->len);
		else
			kn_pbjson_b64_encode(bd->data, bd->len, b->p + b->len);
	}
	b->len += n;
	b->p[b->len++] = '"';
}

static int encode_message(struct wbuf *b, const ProtobufCMessage *msg, int depth);

static int w_value(struct wbuf *b, const ProtobufCFieldDescriptor *f, const void *slot, int depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		w_fmt_i64(b, *(const int32_t *)slot, false);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		w_fmt_u64(b, *(const uint32_t *)slot, false);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		w_fmt_i64(b, *(const int64_t *)slot, true);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		w_fmt_u64(b, *(const uint64_t *)slot, true);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		w_str(b, *(const protobuf_c_boolean *)slot ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		w_real(b, *(const float *)slot, true);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		w_real(b, *(const double *)slot, false);
		break;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)slot;
		w_json_string(b, s ? s : "");
		break;
	}
	case PROTOBUF_C_TYPE_BYTES:
		w_bytes(b, f, slot);
		break;
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)slot;
		if (!sub) {
			w_str(b, "{}");
			break;
		}
		return encode_message(b, sub, depth + 1);
	}
	}
	return KN_OK;
}

/* Mirrors protobuf-c's test for a proto3 field it would not pack. */
static bool is_zeroish(const ProtobufCFieldDescriptor *f, const void *slot)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *)slot == 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)slot == 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)slot == 0;
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *)slot == 0;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)slot;
		return !s || !*s;
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)slot)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(const ProtobufCMessage *const *)slot == NULL;
	default:
		return *(const uint32_t *)slot == 0;
	}
}

static bool is_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	const uint8_t *base = (const uint8_t *)msg;
	const void *slot = base + f->offset;
	bool ptr_type = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
			return false;
		return !ptr_type || *(const void *const *)slot != NULL;
	}
	switch (f->label) {
	case PROTOBUF_C_LABEL_OPTIONAL:
		if (ptr_type)
			return *(const void *const *)slot != NULL;
		return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
	case PROTOBUF_C_LABEL_REQUIRED:
		return !ptr_type || *(const void *const *)slot != NULL;
	default:
		return !is_zeroish(f, slot);
	}
}

static int encode_message(struct wbuf *b, const ProtobufCMessage *msg, int depth)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	const uint8_t *base = (const uint8_t *)msg;
	bool first = true;
	int rc;
	if (depth > KN_PBJSON_MAX_DEPTH)
		return KN_INVALID;
	w_ch(b, '{');
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const uint8_t *arr = *(const uint8_t *const *)(base + f->offset);
			if (n == 0 || !arr)
				continue;
			size_t esz = kn_pbjson_elem_size(f->type);
			w_key(b, &first, f->name);
			w_ch(b, '[');
			for (size_t j = 0; j < n; j++) {
				if (j)
					w_ch(b, ',');
				if ((rc = w_value(b, f, arr + j * esz, depth)))
					return rc;
			}
			w_ch(b, ']');
		} else if (is_present(msg, f)) {
			w_key(b, &first, f->name);
			if ((rc = w_value(b, f, base + f->offset, depth)))
				return rc;
		}
		if (b->oom)
			return KN_ERR;
	}
	w_ch(b, '}');
	return b->oom ? KN_ERR : KN_OK;
}

int kn_pbjson_encode_checked(const ProtobufCMessage *msg, char **out, size_t *out_len,
			     struct kn_err *err)
{
	struct wbuf b = { 0 };
	*out = NULL;
	if (out_len)
		*out_len = 0;
	int rc = encode_message(&b, msg, 1);
	if (rc == KN_OK && !w_reserve(&b, 0))
		rc = KN_ERR;
	if (rc != KN_OK) {
		free(b.p);
		if (rc == KN_INVALID)
			kn_errf(err, "%s: messages nested deeper than %d levels",
				msg->descriptor->name, KN_PBJSON_MAX_DEPTH);
		else
			kn_errf(err, "encoding %s as JSON: out of memory", msg->descriptor->name);
		return rc;
	}
	b.p[b.len] = '\0';
	*out = b.p;
	if (out_len)
		*out_len = b.len;
	return KN_OK;
}

int kn_pbjson_encode(const ProtobufCMessage *msg, char **out, size_t *out_len)
{
	int rc = kn_pbjson_encode_checked(msg, out, out_len, NULL);
	return rc == KN_OK ? KN_OK : KN_ERR;
}
