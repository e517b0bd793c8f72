/* SPDX-License-Identifier: Apache-2.0
 * kn_w1_patch: in-place re-stamping of an encoded request (see
 * kn_w1_patch.h). The walk follows the OTLP framing only: request field 1
 * (ResourceSpans), its field 2 (ScopeSpans), its field 2 (Span); in a Span,
 * fields 1 (trace_id), 4 (parent_span_id), 7 / 8 (start / end, fixed64),
 * 11 (Event: field 1, time) and 13 (Link: field 1, trace_id). */
#include "kn_w1_patch.h"

#include <stdlib.h>
#include <string.h>

#include "collector/wire/kn_wire_field.h"

static int push(uint32_t **a, uint32_t *n, uint32_t *cap, uint32_t v)
{
	if (*n == *cap) {
		uint32_t nc = *cap ? *cap * 2 : 256;
		uint32_t *q = realloc(*a, (size_t)nc * sizeof *q);
		if (!q)
			return -1;
		*a = q;
		*cap = nc;
	}
	(*a)[(*n)++] = v;
	return 0;
}

/* The field 1 of a nested message (Event time / Link trace_id). */
static int walk_sub(struct kn_w1_patch *p, const uint8_t *base, const uint8_t *q,
		    const uint8_t *end, int link)
{
	struct kn_wire_field f;
	int r;
	while ((r = kn_wire_field_next(&q, end, &f)) > 0) {
		if (f.num != 1)
			continue;
		if (link && f.wt == KN_WIRE_FIELD_LEN && f.len == 16 &&
		    push(&p->ids, &p->nids, &p->cap_ids, (uint32_t)(f.payload - base)))
			return -1;
		if (!link && f.wt == KN_WIRE_FIELD_I64 &&
		    push(&p->times, &p->ntimes, &p->cap_times, (uint32_t)(q - 8 - base)))
			return -1;
	}
	return r;
}

static int walk_span(struct kn_w1_patch *p, const uint8_t *base, const uint8_t *q,
		     const uint8_t *end)
{
	struct kn_wire_field f;
	uint64_t span_end = 0;
	int root = 1, r;
	while ((r = kn_wire_field_next(&q, end, &f)) > 0) {
		if (f.num == 1 && f.wt == KN_WIRE_FIELD_LEN && f.len == 16) {
			if (push(&p->ids, &p->nids, &p->cap_ids, (uint32_t)(f.payload - base)))
				return -1;
		} else if (f.num == 4 && f.wt == KN_WIRE_FIELD_LEN) {
			for (size_t i = 0; i < f.len; i++)
				if (f.payload[i])
					root = 0;
		} else if ((f.num == 7 || f.num == 8) && f.wt == KN_WIRE_FIELD_I64) {
			if (push(&p->times, &p->ntimes, &p->cap_times, (uint32_t)(q - 8 - base)))
				return -1;
			if (f.num == 8)
				span_end = f.value;
		} else if ((f.num == 11 || f.num == 13) && f.wt == KN_WIRE_FIELD_LEN) {
			if (walk_sub(p, base, f.payload, f.payload + f.len, f.num == 13) < 0)
				return -1;
		}
	}
	if (root && span_end > p->end_ns)
		p->end_ns = span_end;
	if (span_end > p->any_end_ns)
		p->any_end_ns = span_end;
	return r;
}

/* Walks the LEN fields numbered `num` of [q, end) one level down (depth 0:
 * ResourceSpans, 1: ScopeSpans, 2: Span). */
static int walk(struct kn_w1_patch *p, const uint8_t *base, const uint8_t *q,
		const uint8_t *end, int depth)
{
	struct kn_wire_field f;
	int r;
	while ((r = kn_wire_field_next(&q, end, &f)) > 0) {
		if (f.wt != KN_WIRE_FIELD_LEN || f.num != (depth == 0 ? 1u : 2u))
			continue;
		const uint8_t *e = f.payload + f.len;
		if ((depth < 2 ? walk(p, base, f.payload, e, depth + 1)
			       : walk_span(p, base, f.payload, e)) < 0)
			return -1;
	}
	return r;
}

int kn_w1_patch_init(struct kn_w1_patch *p, const uint8_t *body, size_t len)
{
	memset(p, 0, sizeof *p);
	if (len > UINT32_MAX || walk(p, body, body, body + len, 0) < 0) {
		kn_w1_patch_free(p);
		return -1;
	}
	if (!p->end_ns) /* no root span: the latest end of any span */
		p->end_ns = p->any_end_ns;
	return 0;
}

void kn_w1_patch_apply(struct kn_w1_patch *p, uint8_t *body, const uint8_t key[16],
		       uint64_t end_unix_ns)
{
	uint64_t k[2], kb[2];
	memcpy(kb, key, 16);
	memcpy(k, p->key, 16);
	k[0] ^= kb[0];
	k[1] ^= kb[1];
	for (uint32_t i = 0; i < p->nids; i++) {
		uint64_t v[2];
		memcpy(v, body + p->ids[i], 16);
		v[0] ^= k[0];
		v[1] ^= k[1];
		memcpy(body + p->ids[i], v, 16);
	}
	memcpy(p->key, key, 16);
	uint64_t d = end_unix_ns - p->end_ns; /* modular: a shift back works too */
	for (uint32_t i = 0; i < p->ntimes; i++) {
		uint8_t *b = body + p->times[i];
		uint64_t v = 0;
		for (int j = 7; j >= 0; j--)
			v = v << 8 | b[j];
		if (v) /* an unset time stays unset */
			v += d;
		for (int j = 0; j < 8; j++)
			b[j] = (uint8_t)(v >> (8 * j));
	}
	p->end_ns = end_unix_ns;
}

void kn_w1_patch_free(struct kn_w1_patch *p)
{
	free(p->ids);
	free(p->times);
	memset(p, 0, sizeof *p);
}
