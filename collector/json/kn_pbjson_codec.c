/* SPDX-License-Identifier: Apache-2.0
 * kn_pbjson_codec: field naming and the hex / base64 codecs of OTLP/JSON
 * (see kn_pbjson_internal.h). Table-free, allocation-free, thread-safe. */
#include "kn_pbjson_internal.h"

#include <string.h>

static char upper(char c) { return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c; }

bool kn_pbjson_key_matches(const char *key, const char *name)
{
	if (strcmp(key, name) == 0)
		return true;
	/* lowerCamelCase: drop each '_' and upper-case the letter after it. */
	bool up = false;
	for (; *name; name++) {
		if (*name == '_') {
			up = true;
			continue;
		}
		char want = up ? upper(*name) : *name;
		up = false;
		if (*key++ != want)
			return false;
	}
	return *key == '\0';
}

size_t kn_pbjson_camel(const char *name, char *out, size_t cap)
{
	size_t n = 0;
	bool up = false;
	for (; *name; name++) {
		if (*name == '_') {
			up = true;
			continue;
		}
		if (n + 1 < cap)
			out[n] = up ? upper(*name) : *name;
		n++;
		up = false;
	}
	if (cap)
		out[n < cap ? n : cap - 1] = '\0';
	return n;
}

size_t kn_pbjson_elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sizeof(uint64_t);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return sizeof(uint32_t); /* the 32-bit integers and enums */
	}
}

size_t kn_pbjson_hex_id_len(const ProtobufCFieldDescriptor *f)
{
	if (f->type != PROTOBUF_C_TYPE_BYTES)
		return 0;
	if (strcmp(f->name, "trace_id") == 0)
		return 16;
	if (strcmp(f->name, "span_id") == 0 || strcmp(f->name, "parent_span_id") == 0)
		return 8;
	return 0;
}


static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

bool kn_pbjson_b64_decode(const char *s, size_t n, uint8_t *out, size_t *out_len)
{
	/* Padding, when present, must complete the last quantum. */
	size_t pad = 0;
	while (n > 0 && s[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	if (pad && (n + pad) % 4)
		return false;
	if (n % 4 == 1)
		return false;
	size_t o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64val(s[i]);
		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*out_len = o;
	return true;
}

void kn_pbjson_b64_encode(const uint8_t *in, size_t n, char *out)
{
	static const char alpha[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		out[o++] = alpha[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		out[o++] = '=';
	}
}
