/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_check: framing validation of the messages nested inside spans,
 * scopes and resources (KeyValue, AnyValue, ArrayValue, KeyValueList,
 * InstrumentationScope, Resource, EntityRef, Span.Event, Span.Link, Status),
 * driven by one small table per message type that mirrors the .proto files.
 * Nothing is extracted: it only proves the bytes are protobuf that protobuf-c
 * would unpack (every known field has its declared wire type, every length is
 * in bounds, unknown fields are well-formed). Recursion only happens through
 * AnyValue, bounded by KN_WIRE_MAX_DEPTH. One rule is protobuf-c's own
 * rather than protobuf's: it merges repeated occurrences of KeyValue.value and
 * that merge can fail (kn_wire_anyvalue_kind), so such KeyValues are refused
 * here too. Also holds the error-path helpers.
 * Pure functions over caller-owned bytes; no allocation. */
#include "kn_wire_internal.h"

#include <stdarg.h>
#include <stdio.h>

enum kn_wire_kind { K_NONE = 0, K_VARINT, K_I64, K_I32, K_BYTES, K_MSG };

struct kn_wire_fdesc {
	uint8_t kind;
	uint8_t msg;        /* enum kn_wire_msg for K_MSG */
	uint8_t repeated;
	const char *name;
};

#define MAXF 8
struct kn_wire_mdesc {
	uint32_t nfields;
	struct kn_wire_fdesc f[MAXF + 1];   /* by field number; f[0] unused */
};

#define V(n) { K_VARINT, 0, 0, n }
#define I64(n) { K_I64, 0, 0, n }
#define I32(n) { K_I32, 0, 0, n }
#define S(n) { K_BYTES, 0, 0, n }
#define RS(n) { K_BYTES, 0, 1, n }
#define M(t, n) { K_MSG, t, 0, n }
#define RM(t, n) { K_MSG, t, 1, n }

static const struct kn_wire_mdesc kn_wire_mdescs[KN_WM_COUNT] = {
	[KN_WM_KEYVALUE] = { 3, { [1] = S("key"), [2] = M(KN_WM_ANYVALUE, "value"),
				  [3] = V("key_strindex") } },
	[KN_WM_ANYVALUE] = { 8, { [1] = S("string_value"), [2] = V("bool_value"),
				  [3] = V("int_value"), [4] = I64("double_value"),
				  [5] = M(KN_WM_ARRAYVALUE, "array_value"),
				  [6] = M(KN_WM_KVLIST, "kvlist_value"),
				  [7] = S("bytes_value"), [8] = V("string_value_strindex") } },
	[KN_WM_ARRAYVALUE] = { 1, { [1] = RM(KN_WM_ANYVALUE, "values") } },
	[KN_WM_KVLIST] = { 1, { [1] = RM(KN_WM_KEYVALUE, "values") } },
	[KN_WM_SCOPE] = { 4, { [1] = S("name"), [2] = S("version"),
			       [3] = RM(KN_WM_KEYVALUE, "attributes"),
			       [4] = V("dropped_attributes_count") } },
	[KN_WM_RESOURCE] = { 3, { [1] = RM(KN_WM_KEYVALUE, "attributes"),
				  [2] = V("dropped_attributes_count"),
				  [3] = RM(KN_WM_ENTITYREF, "entity_refs") } },
	[KN_WM_ENTITYREF] = { 4, { [1] = S("schema_url"), [2] = S("type"),
				   [3] = RS("id_keys"), [4] = RS("description_keys") } },
	[KN_WM_EVENT] = { 4, { [1] = I64("time_unix_nano"), [2] = S("name"),
			       [3] = RM(KN_WM_KEYVALUE, "attributes"),
			       [4] = V("dropped_attributes_count") } },
	[KN_WM_LINK] = { 6, { [1] = S("trace_id"), [2] = S("span_id"), [3] = S("trace_state"),
			      [4] = RM(KN_WM_KEYVALUE, "attributes"),
			      [5] = V("dropped_attributes_count"), [6] = I32("flags") } },
	/* field 1 is reserved: skipped like any unknown field */
	[KN_WM_STATUS] = { 3, { [2] = S("message"), [3] = V("code") } },
};

static const uint8_t kn_wire_kind_wt[] = {
	[K_VARINT] = KN_WT_VARINT, [K_I64] = KN_WT_I64, [K_I32] = KN_WT_I32,
	[K_BYTES] = KN_WT_LEN, [K_MSG] = KN_WT_LEN,
};

int kn_wire_fail(struct kn_wire_ctx *c, const char *why)
{
	c->why = why;
	return -1;
}

int kn_wire_failf(struct kn_wire_ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->whybuf, sizeof c->whybuf, fmt, ap);
	va_end(ap);
	c->why = c->whybuf;
	return -1;
}

int kn_wire_frame(struct kn_wire_ctx *c, const char *name, uint32_t field, int32_t idx)
{
	if (c->nframes < KN_WIRE_MAX_FRAMES)
		c->frames[c->nframes++] = (struct kn_wire_frame){ name, field, idx };
	return -1;
}

static int kn_wire_frame_fmt(const struct kn_wire_frame *f, char *out, size_t n)
{
	if (!f->name)
		return snprintf(out, n, "field_%u", f->field);
	if (f->idx >= 0)
		return snprintf(out, n, "%s[%d]", f->name, f->idx);
	return snprintf(out, n, "%s", f->name);
}

/* Outermost frame first. A path too long for out (deep AnyValue nesting)
 * keeps its outer and inner ends around a "..." so the reason always shows. */
void kn_wire_ctx_format(const struct kn_wire_ctx *c, char *out, size_t outlen)
{
	const char *why = c->why ? c->why : "invalid";
	size_t budget, total = 0, n = 0;
	char f[96];
	uint32_t i, head, tail;

	out[0] = '\0';
	if (outlen < 32)
		return;
	budget = outlen - 1 - 2 - strlen(why) - 4; /* ": " + why, room for "..." */
	if (strlen(why) + 8 > outlen)
		budget = 0;
	for (i = 0; i < c->nframes; i++)
		total += (size_t)kn_wire_frame_fmt(&c->frames[i], f, sizeof f) + 1;
	head = c->nframes; /* frames printed from the outer end */
	tail = 0;          /* frames printed from the inner end */
	if (total > budget) {
		size_t used = 0;
		for (head = 0; head < c->nframes; head++) {
			size_t w = (size_t)kn_wire_frame_fmt(&c->frames[c->nframes - 1 - head], f, sizeof f) + 1;
			if (used + w > budget / 2)
				break;
			used += w;
		}
		for (tail = 0; tail + head < c->nframes; tail++) {
			size_t w = (size_t)kn_wire_frame_fmt(&c->frames[tail], f, sizeof f) + 1;
			if (used + w > budget)
				break;
			used += w;
		}
	}
	for (i = 0; i < head; i++) {
		kn_wire_frame_fmt(&c->frames[c->nframes - 1 - i], f, sizeof f);
		n += (size_t)snprintf(out + n, outlen - n, "%s%s", i ? "." : "", f);
	}
	if (head + tail < c->nframes)
		n += (size_t)snprintf(out + n, outlen - n, "%s[...]", head ? "." : "");
	for (i = tail; i-- > 0;) {
		kn_wire_frame_fmt(&c->frames[i], f, sizeof f);
		n += (size_t)snprintf(out + n, outlen - n, "%s%s", n ? "." : "", f);
	}
	snprintf(out + n, outlen - n, "%s%s", c->nframes ? ": " : "", why);
}

int kn_wire_skip_any(struct kn_wire_ctx *c, uint32_t wt, const uint8_t **p, const uint8_t *end)
{
	uint64_t v = 0;
	uint32_t len = 0;
	switch (wt) {
	case KN_WT_VARINT:
		return kn_wire_varint(c, p, end, &v);
	case KN_WT_I64:
		if (end - *p < 8)
			return kn_wire_fail(c, "truncated fixed64");
		*p += 8;
		return 0;
	case KN_WT_I32:
		if (end - *p < 4)
			return kn_wire_fail(c, "truncated fixed32");
		*p += 4;
		return 0;
	case KN_WT_LEN:
		if (kn_wire_len(c, p, end, &len) < 0)
			return -1;
		*p += len;
		return 0;
	case 3:
	case 4:
		return kn_wire_fail(c, "groups are not supported");
	default:
		return kn_wire_failf(c, "invalid wire type %u", wt);
	}
}

/* What protobuf-c 1.4 makes of an AnyValue when a later occurrence of the
 * same KeyValue.value without a value is merged into it (merge_messages):
 * no oneof member -> the merge fails; a string, or bytes of length 0 (whose
 * data pointer is NULL), is not carried over -> the result has no value;
 * any other member is carried over. The last member present is the one that
 * counts (a later oneof member replaces an earlier one). */
enum kn_wire_av_kind { KN_AV_UNSET = 0, KN_AV_LOST, KN_AV_KEPT };

static enum kn_wire_av_kind kn_wire_anyvalue_kind(const uint8_t *p, const uint8_t *end)
{
	struct kn_wire_ctx scratch;   /* the bytes are already validated */
	enum kn_wire_av_kind kind = KN_AV_UNSET;
	while (p < end) {
		uint32_t field = 0, wt = 0, len = 0;
		if (kn_wire_tag(&scratch, &p, end, &field, &wt) < 0)
			break;
		if (field == 1 || field == 7) {
			if (kn_wire_len(&scratch, &p, end, &len) < 0)
				break;
			kind = field == 7 && len > 0 ? KN_AV_KEPT : KN_AV_LOST;
			p += len;
			continue;
		}
		if (field >= 2 && field <= 8)
			kind = KN_AV_KEPT;
		if (kn_wire_skip(&scratch, wt, &p, end) < 0)
			break;
	}
	return kind;
}

int kn_wire_check_msg(struct kn_wire_ctx *c, enum kn_wire_msg m, const uint8_t *p,
		      const uint8_t *end, uint32_t depth)
{
	const struct kn_wire_mdesc *d = &kn_wire_mdescs[m];
	int32_t counts[MAXF + 1] = { 0 };
	uint32_t nvalues = 0;   /* KeyValue.value occurrences so far */
	enum kn_wire_av_kind merged = KN_AV_UNSET;   /* what protobuf-c holds after them */

	if (m == KN_WM_ANYVALUE && ++depth > KN_WIRE_MAX_DEPTH)
		return kn_wire_failf(c, "AnyValue nested deeper than %d", KN_WIRE_MAX_DEPTH);
	while (p < end) {
		uint32_t field = 0, wt = 0, len = 0;
		if (kn_wire_tag(c, &p, end, &field, &wt) < 0)
			return -1;
		const struct kn_wire_fdesc *f = field <= d->nfields ? &d->f[field] : NULL;
		if (!f || f->kind == K_NONE) {
			if (kn_wire_skip(c, wt, &p, end) < 0)
				return kn_wire_frame(c, NULL, field, -1);
			continue;
		}
		int32_t idx = f->repeated ? counts[field]++ : -1;
		if (kn_wire_want(c, wt, kn_wire_kind_wt[f->kind]) < 0)
			return kn_wire_frame(c, f->name, field, idx);
		if (f->kind != K_MSG) {
			if (kn_wire_skip(c, wt, &p, end) < 0)
				return kn_wire_frame(c, f->name, field, idx);
			continue;
		}
		if (kn_wire_len(c, &p, end, &len) < 0 ||
		    (f->msg == KN_WM_KEYVALUE ? kn_wire_check_kv(c, p, p + len, depth)
		     : kn_wire_check_msg(c, (enum kn_wire_msg)f->msg, p, p + len, depth)) < 0)
			return kn_wire_frame(c, f->name, field, idx);
		/* protobuf-c 1.4 merges the occurrences of a singular message
		 * field, and merging a KeyValue.value without a value into one
		 * without a value fails: refuse exactly that too, so whatever we
		 * accept, it unpacks (see kn_wire_anyvalue_kind) */
		if (m == KN_WM_KEYVALUE && field == 2) {
			enum kn_wire_av_kind k = kn_wire_anyvalue_kind(p, p + len);
			if (nvalues++ == 0 || k != KN_AV_UNSET) {
				merged = k;
			} else if (merged == KN_AV_UNSET) {
				kn_wire_fail(c, "repeated without a value where the one before "
					     "has none either (protobuf-c cannot merge them)");
				return kn_wire_frame(c, f->name, field, idx);
			} else if (merged == KN_AV_LOST) {
				merged = KN_AV_UNSET;
			}
		}
		p += len;
	}
	return 0;
}
