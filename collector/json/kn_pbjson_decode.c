/* SPDX-License-Identifier: Apache-2.0
 * kn_pbjson_decode: OTLP/JSON text -> protobuf-c message, generic over
 * ProtobufCMessageDescriptor (rules in kn_pbjson.h).
 * jansson parses the whole document into its DOM; one recursive walk then
 * fills a message built exactly as protobuf-c's unpacker would (malloc'd
 * strings, bytes, arrays and sub-messages), so the caller frees it with
 * protobuf_c_message_free_unpacked(msg, NULL). On any error the half-built
 * message is freed through the same function: every slot is written only
 * once its value is complete, and a repeated field's count only grows by
 * finished elements, so free_unpacked never meets a dangling pointer.
 * The JSON path of the value being decoded lives in one fixed buffer that
 * grows and shrinks with the recursion (no allocation per field).
 * Threading: none shared; recursion depth is bounded by KN_PBJSON_MAX_DEPTH. */
#include "kn_pbjson.h"
#include "kn_pbjson_internal.h"
#include "../core/kn_hex.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dec {
	struct kn_err *err;
	size_t plen;    /* length of path (without NUL) */
	bool oom;
	char path[400]; /* "resourceSpans[0].scopeSpans[0]..." */
};

/* Formats "path: message" into the error and returns KN_INVALID. */
__attribute__((format(printf, 2, 3))) static int fail(struct dec *d, const char *fmt, ...)
{
	if (d->err) {
		char msg[320];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
		kn_errf(d->err, "%s: %s", d->plen ? d->path : "(top level)", msg);
	}
	return KN_INVALID;
}

static int oom(struct dec *d)
{
	d->oom = true;
	kn_errf(d->err, "%s: out of memory", d->plen ? d->path : "(top level)");
	return KN_ERR;
}

static size_t path_key(struct dec *d, const char *key)
{
	size_t mark = d->plen;
	size_t room = sizeof d->path - d->plen;
	int n = snprintf(d->path + d->plen, room, "%s%s", d->plen ? "." : "", key);
	d->plen = (n < 0 || (size_t)n >= room) ? sizeof d->path - 1 : d->plen + (size_t)n;
	return mark;
}

static size_t path_index(struct dec *d, size_t i)
{
	size_t mark = d->plen;
	size_t room = sizeof d->path - d->plen;
	int n = snprintf(d->path + d->plen, room, "[%zu]", i);
	d->plen = (n < 0 || (size_t)n >= room) ? sizeof d->path - 1 : d->plen + (size_t)n;
	return mark;
}

static void path_pop(struct dec *d, size_t mark)
{
	d->plen = mark;
	d->path[mark] = '\0';
}

/* A short, printable rendering of a JSON value for error messages. */
static const char *describe(const json_t *v, char *buf, size_t cap)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	case JSON_NULL:
		return "null";
	case JSON_INTEGER:
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	case JSON_REAL:
		snprintf(buf, cap, "%.17g", json_real_value(v));
		return buf;
	case JSON_STRING: {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v), o = 0, i = 0;
		buf[o++] = '"';
		for (; i < n && o + 5 < cap; i++)
			buf[o++] = ((unsigned char)s[i] < 0x20 || s[i] == '"') ? '?' : s[i];
		if (i < n) {
			memcpy(buf + o, "...", 3);
			o += 3;
		}
		buf[o++] = '"';
		buf[o] = '\0';
		return buf;
	}
	}
	return "a value";
}

/* Decimal digits with an optional leading '-' (when allowed). */
static bool parse_dec(const char *s, bool neg_ok, bool *neg, uint64_t *mag)
{
	*neg = false;
	if (*s == '-') {
		if (!neg_ok)
			return false;
		*neg = true;
		s++;
	}
	if (!*s)
		return false;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned dgt = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - dgt) / 10)
			return false; /* overflow: reported as out of range below */
		v = v * 10 + dgt;
	}
	*mag = v;
	return true;
}

static bool all_digits(const char *s)
{
	if (*s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Any JSON integer form -> int64 within [min, max]. */
static int get_int(struct dec *d, const json_t *v, int64_t min, int64_t max, const char *type,
		   int64_t *out)
{
	char buf[64];
	int64_t x;
	if (json_is_integer(v)) {
		x = json_integer_value(v);
	} else if (json_is_real(v)) {
		double r = json_real_value(v);
		if (r != trunc(r))
			return fail(d, "expected an integer, got %s", describe(v, buf, sizeof buf));
		if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0))
			return fail(d, "%s out of range, got %s", type, describe(v, buf, sizeof buf));
		x = (int64_t)r;
	} else if (json_is_string(v)) {
		bool neg;
		uint64_t mag;
		const char *s = json_string_value(v);
		if (!parse_dec(s, true, &neg, &mag)) {
			if (all_digits(s))
				return fail(d, "%s out of range, got %s", type, describe(v, buf, sizeof buf));
			return fail(d, "expected an integer, got %s", describe(v, buf, sizeof buf));
		}
		if (neg ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX)
			return fail(d, "%s out of range, got %s", type, describe(v, buf, sizeof buf));
		x = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	} else {
		return fail(d, "expected an integer, got %s", describe(v, buf, sizeof buf));
	}
	if (x < min || x > max)
		return fail(d, "%s out of range, got %s", type, describe(v, buf, sizeof buf));
	*out = x;
	return KN_OK;
}

/* Any JSON integer form -> uint64 within [0, max]. */
static int get_uint(struct dec *d, const json_t *v, uint64_t max, const char *type, uint64_t *out)
{
	char buf[64];
	uint64_t x;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0)
			return fail(d, "%s out of range, got %s", type, describe(v, buf, sizeof buf));
		x = (uint64_t)i;
	} else if (json_is_real(v)) {
		double r = json_real_value(v);
		if (r != trunc(r))
			return fail(d, "expected an integer, got %s", describe(v, buf, sizeof buf));
		if (!(r >= 0 && r < 18446744073709551616.0))
			return fail(d, "%s out of range, got %s", type, describe(v, buf, sizeof buf));
		x = (uint64_t)r;
	} else if (json_is_string(v)) {
		bool neg;
		const char *s = json_string_value(v);
		if (!parse_dec(s, true, &neg, &x)) {
			if (all_digits(s))
				return fail(d, "%s out of range, got %s", type, describe(v, buf, sizeof buf));
			return fail(d, "expected an integer, got %s", describe(v, buf, sizeof buf));
		}
		if (neg && x != 0)
			return fail(d, "%s out of range, got %s", type, describe(v, buf, sizeof buf));
	} else {
		return fail(d, "expected an integer, got %s", describe(v, buf, sizeof buf));
	}
	if (x > max)
		return fail(d, "%s out of range, got %s", type, describe(v, buf, sizeof buf));
	*out = x;
	return KN_OK;
}

static int get_double(struct dec *d, const json_t *v, double *out)
{
	char buf[64];
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return KN_OK;
	}
	if (!json_is_string(v))
		return fail(d, "expected a number, got %s", describe(v, buf, sizeof buf));
	const char *s = json_string_value(v);
	if (strcmp(s, "NaN") == 0) {
		*out = NAN;
		return KN_OK;
	}
	if (strcmp(s, "Infinity") == 0) {
		*out = INFINITY;
		return KN_OK;
	}
	if (strcmp(s, "-Infinity") == 0) {
		*out = -INFINITY;
		return KN_OK;
	}
	/* strtod also takes "inf", hex floats and spaces: allow plain decimals only. */
	bool ok = *s != '\0';
	for (const char *p = s; *p && ok; p++)
		ok = (*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == '.' || *p == 'e' ||
		     *p == 'E';
	char *end = NULL;
	errno = 0;
	double x = ok ? strtod(s, &end) : 0;
	if (!ok || end == s || *end != '\0')
		return fail(d, "expected a number, got %s", describe(v, buf, sizeof buf));
	if (errno == ERANGE && isinf(x))
		return fail(d, "number out of range, got %s", describe(v, buf, sizeof buf));
	*out = x;
	return KN_OK;
}

static char *dup_string(const json_t *v)
{
	size_t n = json_string_length(v);
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, json_string_value(v), n);
		s[n] = '\0';
	}
	return s;
}

static int get_bytes(struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *v,
		     ProtobufCBinaryData *out)
{
	char buf[64];
	if (!json_is_string(v))
		return fail(d, "expected a string, got %s", describe(v, buf, sizeof buf));
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	size_t idlen = kn_pbjson_hex_id_len(f);
	out->len = 0;
	out->data = NULL;
	if (n == 0)
		return KN_OK;
	/* An id of the wrong length is still decoded: the wire reader then
	 * rejects that one span (partial success), as it would in protobuf,
	 * instead of the whole request failing here. */
	if (idlen && n % 2)
		return fail(d, "expected %zu hex characters, got %zu", 2 * idlen, n);
	size_t len = idlen ? n / 2 : 0;
	uint8_t *data = malloc(idlen ? len : kn_pbjson_b64_decoded_max(n));
	if (!data)
		return oom(d);
	bool ok = idlen ? kn_hex_decode(s, n, data) : kn_pbjson_b64_decode(s, n, data, &len);
	if (!ok) {
		free(data);
		return fail(d, idlen ? "not a hex string: %s" : "not base64: %s",
			    describe(v, buf, sizeof buf));
	}
	if (len == 0) {
		free(data);
		data = NULL;
	}
	out->len = len;
	out->data = data;
	return KN_OK;
}

static int decode_message(struct dec *d, const ProtobufCMessageDescriptor *desc, const json_t *obj,
			  int depth, ProtobufCMessage **out);

/* One value (a repeated field's element or a singular field) into slot. */
static int decode_value(struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *v,
			void *slot, int depth)
{
	char buf[64];
	int64_t i;
	uint64_t u;
	double x;
	int rc;
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if ((rc = get_int(d, v, INT32_MIN, INT32_MAX, "int32", &i)))
			return rc;
		*(int32_t *)slot = (int32_t)i;
		return KN_OK;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if ((rc = get_uint(d, v, UINT32_MAX, "uint32", &u)))
			return rc;
		*(uint32_t *)slot = (uint32_t)u;
		return KN_OK;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if ((rc = get_int(d, v, INT64_MIN, INT64_MAX, "int64", &i)))
			return rc;
		*(int64_t *)slot = i;
		return KN_OK;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if ((rc = get_uint(d, v, UINT64_MAX, "uint64", &u)))
			return rc;
		*(uint64_t *)slot = u;
		return KN_OK;
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			return fail(d, "expected true or false, got %s", describe(v, buf, sizeof buf));
		*(protobuf_c_boolean *)slot = json_is_true(v);
		return KN_OK;
	case PROTOBUF_C_TYPE_DOUBLE:
		if ((rc = get_double(d, v, &x)))
			return rc;
		*(double *)slot = x;
		return KN_OK;
	case PROTOBUF_C_TYPE_FLOAT:
		if ((rc = get_double(d, v, &x)))
			return rc;
		if (isfinite(x) && fabs(x) > FLT_MAX)
			return fail(d, "float out of range, got %s", describe(v, buf, sizeof buf));
		*(float *)slot = (float)x;
		return KN_OK;
	case PROTOBUF_C_TYPE_ENUM:
		if (json_is_string(v) && !all_digits(json_string_value(v))) {
			const ProtobufCEnumDescriptor *ed = f->descriptor;
			const ProtobufCEnumValue *ev =
				protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
			if (!ev)
				return fail(d, "%s is not a value of enum %s",
					    describe(v, buf, sizeof buf), ed->name);
			*(int32_t *)slot = ev->value;
			return KN_OK;
		}
		if ((rc = get_int(d, v, INT32_MIN, INT32_MAX, "enum", &i)))
			return rc;
		*(int32_t *)slot = (int32_t)i;
		return KN_OK;
	case PROTOBUF_C_TYPE_STRING: {
		if (!json_is_string(v))
			return fail(d, "expected a string, got %s", describe(v, buf, sizeof buf));
		char *s = dup_string(v);
		if (!s)
			return oom(d);
		*(char **)slot = s;
		return KN_OK;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData bd;
		if ((rc = get_bytes(d, f, v, &bd)))
			return rc;
		*(ProtobufCBinaryData *)slot = bd;
		return KN_OK;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *sub = NULL;
		if ((rc = decode_message(d, f->descriptor, v, depth + 1, &sub)))
			return rc;
		*(ProtobufCMessage **)slot = sub;
		return KN_OK;
	}
	}
	return fail(d, "unsupported field type %d", (int)f->type);
}

static int decode_repeated(struct dec *d, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
			   const json_t *v, int depth)
{
	char buf[64];
	if (!json_is_array(v))
		return fail(d, "expected an array, got %s", describe(v, buf, sizeof buf));
	size_t n = json_array_size(v);
	if (n == 0)
		return KN_OK;
	size_t esz = kn_pbjson_elem_size(f->type);
	uint8_t *arr = calloc(n, esz);
	if (!arr)
		return oom(d);
	size_t *count = (size_t *)((uint8_t *)msg + f->quantifier_offset);
	*(void **)((uint8_t *)msg + f->offset) = arr;
	*count = 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *el = json_array_get(v, i);
		size_t mark = path_index(d, i);
		int rc = json_is_null(el) ? fail(d, "null is not allowed in an array")
					  : decode_value(d, f, el, arr + i * esz, depth);
		path_pop(d, mark);
		if (rc)
			return rc;
		(*count)++;
	}
	return KN_OK;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
						  const char *key)
{
	for (unsigned i = 0; i < desc->n_fields; i++)
		if (kn_pbjson_key_matches(key, desc->fields[i].name))
			return &desc->fields[i];
	return NULL;
}

static int decode_field(struct dec *d, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
			const json_t *v, int depth)
{
	uint8_t *base = (uint8_t *)msg;
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return decode_repeated(d, msg, f, v, depth);
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
		if (*which != 0 && *which != f->id) {
			const ProtobufCFieldDescriptor *other =
				protobuf_c_message_descriptor_get_field(msg->descriptor, *which);
			char name[64];
			kn_pbjson_camel(other ? other->name : "?", name, sizeof name);
			return fail(d, "only one member of a oneof may be set, %s is set already",
				    name);
		}
		int rc = decode_value(d, f, v, base + f->offset, depth);
		if (rc == KN_OK)
			*which = f->id;
		return rc;
	}
	int rc = decode_value(d, f, v, base + f->offset, depth);
	if (rc == KN_OK && f->label == PROTOBUF_C_LABEL_OPTIONAL &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
		*(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
	return rc;
}

static int decode_message(struct dec *d, const ProtobufCMessageDescriptor *desc, const json_t *obj,
			  int depth, ProtobufCMessage **out)
{
	char buf[64];
	uint8_t seen_small[32] = { 0 };
	uint8_t *seen = seen_small;
	ProtobufCMessage *msg = NULL;
	int rc;

	if (depth > KN_PBJSON_MAX_DEPTH)
		return fail(d, "messages nested deeper than %d levels", KN_PBJSON_MAX_DEPTH);
	if (!json_is_object(obj))
		return fail(d, "expected an object, got %s", describe(obj, buf, sizeof buf));
	if (desc->n_fields > 8 * sizeof seen_small) {
		seen = calloc((desc->n_fields + 7) / 8, 1);
		if (!seen)
			return oom(d);
	}
	msg = malloc(desc->sizeof_message);
	if (!msg) {
		rc = oom(d);
		goto fail;
	}
	desc->message_init(msg);

	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v)
	{
		const ProtobufCFieldDescriptor *f = find_field(desc, key);
		if (!f || json_is_null(v))
			continue; /* unknown fields are ignored; null is absent */
		size_t idx = (size_t)(f - desc->fields);
		size_t mark = path_key(d, key);
		if (seen[idx / 8] & (1u << (idx % 8))) {
			rc = fail(d, "field given twice (as %s and in another spelling)", f->name);
		} else {
			seen[idx / 8] |= (uint8_t)(1u << (idx % 8));
			rc = decode_field(d, msg, f, v, depth);
		}
		path_pop(d, mark);
		if (rc)
			goto fail;
	}
	if (seen != seen_small)
		free(seen);
	*out = msg;
	return KN_OK;
fail:
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
	if (seen != seen_small)
		free(seen);
	return rc;
}

int kn_pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
		     ProtobufCMessage **out, struct kn_err *err)
{
	struct dec d = { .err = err };
	json_error_t jerr;
	*out = NULL;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return kn_errf(err, "decoding JSON: out of memory");
		if (err)
			kn_errf(err, "invalid JSON: %s at line %d column %d", jerr.text, jerr.line,
				jerr.column);
		return KN_INVALID;
	}
	int rc = decode_message(&d, desc, root, 1, out);
	json_decref(root);
	return rc;
}
