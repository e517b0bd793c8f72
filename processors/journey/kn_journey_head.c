/* SPDX-License-Identifier: Apache-2.0
 * kn_journey_head: what a buffered trace says about its journey (its root
 * span, the traces it links to) and the head summary a new journey
 * publishes (see kn_journey_int.h).
 *
 * The scan walks the trace buffer with the tail sampler's allocation-free
 * view (kn_tail_view.h) and reads the few Span fields that view does not
 * parse: span_id 2, parent_span_id 4, name 5, kind 6, links 13
 * (Link{trace_id 1}), status 15 (Status{code 3}). Links counted are those of
 * the root span and of CONSUMER spans (kind 5), to other traces, distinct,
 * at most KN_JOURNEY_MAX_LINKS (the rest are ignored).
 *
 * Head attributes keep their AnyValue bytes verbatim (any type), under the
 * renamed key: encoded once per journey, appended as they are to spans.
 * Costs: one pass over the trace's spans; no allocation. */
#include <string.h>

#include "../tail_sampling/kn_tail_view.h"
#include "kn_journey_int.h"
#include "../../collector/wire/kn_wire_field.h"

#define KIND_PRODUCER 4
#define KIND_CONSUMER 5

int kn_journey_find_attr(const uint8_t *msg, uint32_t len, uint32_t field, const char *key,
			 size_t keylen, const uint8_t **val, uint32_t *vlen)
{
	if (!msg)
		return 0;
	const uint8_t *p = msg, *end = msg + len;
	struct kn_wire_field f, g;
	while (kn_wire_field_next(&p, end, &f) > 0) {
		if (f.num != field || f.wt != 2)
			continue;
		const uint8_t *q = f.payload, *qend = f.payload + f.len, *k = NULL, *v = NULL;
		uint32_t klen = 0, vl = 0;
		while (kn_wire_field_next(&q, qend, &g) > 0) {
			if (g.wt != 2)
				continue;
			if (g.num == 1) {
				k = g.payload;
				klen = g.len;
			} else if (g.num == 2) {
				v = g.payload;
				vl = g.len;
			}
		}
		if (klen == keylen && (keylen == 0 || (k && memcmp(k, key, keylen) == 0))) {
			*val = v;
			*vlen = vl;
			return 1;
		}
	}
	return 0;
}

static int is_root(const uint8_t *parent, uint32_t len)
{
	static const uint8_t zero[8];
	return !parent || len == 0 || (len == 8 && memcmp(parent, zero, 8) == 0);
}

static void add_link(struct kn_journey_scan *sc, const uint8_t *id, const uint8_t self[16])
{
	static const uint8_t zero[16];
	if (memcmp(id, self, 16) == 0 || memcmp(id, zero, 16) == 0)
		return;
	for (uint32_t i = 0; i < sc->nlinks; i++)
		if (memcmp(sc->links[i], id, 16) == 0)
			return;
	if (sc->nlinks < KN_JOURNEY_MAX_LINKS)
		memcpy(sc->links[sc->nlinks++], id, 16);
}

static void take_links(struct kn_journey_scan *sc, const uint8_t *msg, uint32_t len,
		       const uint8_t self[16])
{
	const uint8_t *p = msg, *end = msg + len;
	struct kn_wire_field f, g;
	while (kn_wire_field_next(&p, end, &f) > 0) {
		if (f.num != 13 || f.wt != 2)
			continue;
		const uint8_t *q = f.payload, *qend = f.payload + f.len, *tid = NULL;
		while (kn_wire_field_next(&q, qend, &g) > 0)
			if (g.num == 1 && g.wt == 2)
				tid = g.len == 16 ? g.payload : NULL;
		if (tid)
			add_link(sc, tid, self);
	}
}

int kn_journey_scan(const uint8_t *data, size_t len, const uint8_t self_id[16],
		    struct kn_journey_scan *out)
{
	struct kn_tail_walk w;
	struct kn_tail_rs rs;
	struct kn_tail_span sp;
	uint64_t best_start = UINT64_MAX;
	memset(out, 0, sizeof *out);
	kn_tail_walk_init_bytes(&w, data, len);
	while (kn_tail_walk_next(&w, &rs)) {
		while (kn_tail_rs_next_span(&rs, &sp)) {
			const uint8_t *p = sp.msg, *end = sp.msg + sp.len, *parent = NULL;
			uint32_t plen = 0;
			int32_t kind = 0;
			struct kn_wire_field f;
			while (kn_wire_field_next(&p, end, &f) > 0) {
				if (f.num == 4 && f.wt == 2) {
					parent = f.payload;
					plen = f.len;
				} else if (f.num == 6 && f.wt == 0) {
					kind = (int32_t)(uint32_t)f.value;
				}
			}
			int root = is_root(parent, plen);
			out->has_producer |= kind == KIND_PRODUCER;
			if (root || kind == KIND_CONSUMER)
				take_links(out, sp.msg, sp.len, self_id);
			/* the head candidate: the first root, else the earliest start */
			if (out->has_root)
				continue;
			if (root || sp.start_ns < best_start || !out->span) {
				out->span = sp.msg;
				out->span_len = sp.len;
				out->resource = rs.resource;
				out->resource_len = rs.resource_len;
				best_start = sp.start_ns;
				out->has_root = root;
			}
		}
	}
	return out->span ? 0 : -1;
}

static size_t fsize(size_t len)
{
	return 1 + kn_wire_varint_len(len) + len;
}

static uint8_t *put_field(uint8_t *w, uint8_t tag, uint64_t len)
{
	*w++ = tag;
	return w + kn_wire_put_varint(w, len);
}

/* Appends KeyValue{key, value} as a Span.attributes field to h->attrs. */
static int put_attr(struct kn_journey_head *h, const char *key, size_t klen, const uint8_t *val,
		    uint32_t vlen)
{
	size_t kv = fsize(klen) + (val ? fsize(vlen) : 0);
	size_t total = fsize(kv);
	if (h->attrs_len + total > KN_JOURNEY_ATTRS_MAX)
		return -1;
	uint8_t *w = put_field(h->attrs + h->attrs_len, 0x4a, kv);
	w = put_field(w, 0x0a, klen);
	memcpy(w, key, klen);
	w += klen;
	if (val) {
		w = put_field(w, 0x12, vlen);
		memcpy(w, val, vlen);
		w += vlen;
	}
	h->attrs_len = (uint16_t)(w - h->attrs);
	return 0;
}

uint32_t kn_journey_head_build(const struct kn_journey_proc *p, const struct kn_journey_scan *sc,
			       const uint8_t trace_id[16], struct kn_journey_head *h)
{
	uint32_t truncated = 0;
	memset(h, 0, sizeof *h);
	memcpy(h->journey_id, trace_id, 16);
	const uint8_t *q = sc->span, *end = sc->span + sc->span_len;
	struct kn_wire_field f, g;
	while (kn_wire_field_next(&q, end, &f) > 0) {
		switch (f.num) {
		case 2:
			if (f.wt == 2 && f.len == 8)
				memcpy(h->head_span_id, f.payload, 8);
			break;
		case 5:
			if (f.wt == 2) {
				uint32_t n = f.len < KN_JOURNEY_NAME_MAX ? f.len : KN_JOURNEY_NAME_MAX;
				memcpy(h->name, f.payload, n);
				h->name_len = (uint16_t)n;
			}
			break;
		case 6:
			if (f.wt == 0)
				h->kind = (int32_t)(uint32_t)f.value;
			break;
		case 7:
			if (f.wt == 1)
				h->start_ns = f.value;
			break;
		case 8:
			if (f.wt == 1)
				h->end_ns = f.value;
			break;
		case 15:
			if (f.wt == 2) {
				const uint8_t *s = f.payload;
				int32_t code = 0;
				while (kn_wire_field_next(&s, f.payload + f.len, &g) > 0)
					if (g.num == 3 && g.wt == 0)
						code = (int32_t)(uint32_t)g.value;
				h->status_code = code;
			}
			break;
		default:
			break;
		}
	}
	const uint8_t *val;
	uint32_t vlen;
	if (kn_journey_find_attr(sc->resource, sc->resource_len, 1, "service.name", 12, &val, &vlen) &&
	    val) {
		const uint8_t *s = val;
		while (kn_wire_field_next(&s, val + vlen, &g) > 0)
			if (g.num == 1 && g.wt == 2) {
				uint32_t n = g.len < KN_JOURNEY_SERVICE_MAX ? g.len : KN_JOURNEY_SERVICE_MAX;
				memcpy(h->service, g.payload, n);
				h->service_len = (uint16_t)n;
			}
	}
	for (uint32_t i = 0; i < p->nkeys; i++) {
		const struct kn_journey_key *k = &p->keys[i];
		int found = k->from_resource
				    ? kn_journey_find_attr(sc->resource, sc->resource_len, 1, k->key,
							   k->keylen, &val, &vlen)
				    : kn_journey_find_attr(sc->span, sc->span_len, 9, k->key, k->keylen,
							   &val, &vlen);
		if (found && put_attr(h, k->out_key, k->out_len, val, vlen))
			truncated++;
	}
	return truncated;
}
