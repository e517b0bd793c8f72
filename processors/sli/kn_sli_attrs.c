/* SPDX-License-Identifier: Apache-2.0
 * kn_sli_attrs: writes sli.<name>.latency_ms (int) and sli.<name>.good (bool)
 * onto end spans (write_attributes: true), for dashboards and for the
 * tail-sampling `sli` policy.
 *
 * A span's bytes sit inside ScopeSpans inside ResourceSpans, each with a
 * length prefix, so appending an `attributes` field (protobuf merges repeated
 * fields) changes three lengths: the chunk is rebuilt into a new chunk,
 * copying every other byte verbatim, and re-indexed with the wire reader so
 * its span headers are exact. The new chunk is charged to the memory budget;
 * when it does not fit (or memory runs out) the original chunk goes on
 * unchanged and the spans are counted in
 * kansatsu_sli_attribute_writes_failed_total. Cost: one copy of the chunks
 * that hold end spans; nothing for the others. */
#include <stdlib.h>

#include "../../collector/core/kn_budget.h"
#include "../../collector/wire/kn_wire_field.h"
#include "kn_sli_proc_int.h"

/* The extra bytes for span `off` of chunk `ci` (out NULL: size only). */
static size_t span_extra(const struct kn_sli_shard *s, uint32_t ci, uint32_t off, uint8_t *out)
{
	size_t n = 0;
	for (uint32_t w = 0; w < s->nwrites; w++) {
		const struct kn_sli_write *wr = &s->writes[w];
		if (wr->chunk != ci || wr->span_off != off)
			continue;
		const struct kn_sli_rt *rt = &s->p->slis[wr->sli];
		for (int a = 0; a < 2; a++) {
			const char *k = a ? rt->attr_good : rt->attr_latency;
			size_t kl = strlen(k);
			uint64_t v = a ? (uint64_t)(wr->good != 0) : (uint64_t)wr->latency_ms;
			size_t avl = 1 + kn_wire_varint_len(v);        /* AnyValue{2 bool | 3 int} */
			size_t kvl = 1 + kn_wire_varint_len(kl) + kl + 1 + kn_wire_varint_len(avl) + avl;
			if (out) {
				uint8_t *p = out + n;
				*p++ = 0x4a; /* Span.attributes (9), LEN */
				p += kn_wire_put_varint(p, kvl);
				*p++ = 0x0a; /* KeyValue.key */
				p += kn_wire_put_varint(p, kl);
				memcpy(p, k, kl);
				p += kl;
				*p++ = 0x12; /* KeyValue.value */
				p += kn_wire_put_varint(p, avl);
				*p++ = a ? 0x10 : 0x18;
				kn_wire_put_varint(p, v);
			}
			n += 1 + kn_wire_varint_len(kvl) + kvl;
		}
	}
	return n;
}

/* Copies the fields of [p, end) at `level` (0 request, 1 ResourceSpans,
 * 2 ScopeSpans), descending into field 1 / 2 / 2 and growing spans.
 * out NULL: returns the size only. -1 when malformed. */
static long rebuild(const struct kn_sli_shard *s, uint32_t ci, const uint8_t *base, int level,
		    const uint8_t *p, const uint8_t *end, uint8_t *out)
{
	size_t o = 0;
	while (p < end) {
		const uint8_t *fstart = p;
		struct kn_wire_field f;
		/* LAX: any field number (as its low 32 bits) and any in-bounds
		 * length have always been accepted here; kept exactly */
		if (kn_wire_field_read(&p, end, &f, KN_WIRE_FIELD_LAX) <= 0)
			return -1;
		uint32_t num = f.num;
		if (f.wt != KN_WIRE_FIELD_LEN) {
			/* only the LEN fields matter; copy others whole */
			if (out)
				memcpy(out + o, fstart, (size_t)(p - fstart));
			o += (size_t)(p - fstart);
			continue;
		}
		uint64_t len = f.len;
		const uint8_t *body = f.payload;
		int descend = (level == 0 && num == 1) || (level == 1 && num == 2);
		int span = level == 2 && num == 2;
		size_t blen = (size_t)len;
		if (descend) {
			long r = rebuild(s, ci, base, level + 1, body, body + len, NULL);
			if (r < 0)
				return -1;
			blen = (size_t)r;
		} else if (span) {
			blen += span_extra(s, ci, (uint32_t)(body - base), NULL);
		}
		size_t tl = (size_t)(body - fstart) - kn_wire_varint_len(len); /* tag bytes */
		if (out) {
			memcpy(out + o, fstart, tl);
			size_t q = o + tl;
			q += kn_wire_put_varint(out + q, blen);
			if (descend) {
				rebuild(s, ci, base, level + 1, body, body + len, out + q);
			} else {
				memcpy(out + q, body, (size_t)len);
				if (span)
					span_extra(s, ci, (uint32_t)(body - base), out + q + len);
			}
		}
		o += tl + kn_wire_varint_len(blen) + blen;
	}
	return (long)o;
}

static struct kn_chunk *rewrite_chunk(struct kn_sli_shard *s, uint32_t ci, const struct kn_chunk *c)
{
	long n = rebuild(s, ci, c->data, 0, c->data, c->data + c->len, NULL);
	if (n < 0 || (uint64_t)n > UINT32_MAX)
		return NULL;
	size_t charge = (size_t)n + (size_t)c->nspans * sizeof(struct kn_span_hdr);
	if (!kn_budget_try_charge(charge))
		return NULL;
	struct kn_chunk *nc = kn_chunk_alloc(c->nspans, (uint32_t)n);
	if (!nc) {
		kn_budget_release(charge);
		return NULL;
	}
	nc->charged = charge;
	rebuild(s, ci, c->data, 0, c->data, c->data + c->len, nc->data);
	nc->len = (uint32_t)n;
	nc->shard = c->shard;
	nc->source = c->source;
	nc->accepted_ns = c->accepted_ns;
	nc->ctx = c->ctx;
	struct kn_err err;
	if (kn_wire_index_trusted(&s->ix, nc->data, nc->len, &err) != KN_OK ||
	    s->ix.nspans != c->nspans) {
		kn_chunk_unref(nc);
		return NULL;
	}
	memcpy(nc->spans, s->ix.spans, (size_t)c->nspans * sizeof *nc->spans);
	return nc;
}

void kn_sli_apply_writes(struct kn_sli_shard *s, struct kn_batch *b)
{
	for (uint32_t ci = 0; ci < b->n; ci++) {
		uint32_t spans = 0;
		for (uint32_t w = 0; w < s->nwrites; w++)
			spans += s->writes[w].chunk == ci;
		if (!spans)
			continue;
		struct kn_chunk *old = b->chunks[ci];
		struct kn_chunk *nc = rewrite_chunk(s, ci, old);
		if (!nc) {
			kn_counter_add(s->p->attrs_failed, spans);
			continue;
		}
		b->bytes = b->bytes - old->len + nc->len;
		b->chunks[ci] = nc;
		kn_chunk_unref(old);
	}
	s->nwrites = 0;
}
