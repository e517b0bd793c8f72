/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_frame: cuts one trace's spans out of an incoming chunk into the
 * trace buffer format of kn_tail_trace.h (ResourceSpans messages framing
 * verbatim copies of the Resource, InstrumentationScope and Span bytes),
 * the same shape kn_wire_split gives a shard's chunk.
 *
 * kn_tail_frame_index walks only the two framing levels of a chunk's data
 * (ResourceSpans, ScopeSpans; span bodies are skipped by length) and numbers
 * every ResourceSpans and ScopeSpans in order, which is the numbering of the
 * span headers' resource_idx / scope_idx (kn_wire_index numbers them the
 * same way). Cheaper than re-indexing the chunk: one tag and one length per
 * span (and hashes each scope's (Resource, scope) group once for the
 * store's kn_tail_intern). Then, for a list of span numbers of one trace (in chunk order):
 * kn_tail_frame_size computes the bytes the part takes (group sizes into
 * the scratch g[2n]) and kn_tail_frame_write writes it.
 *
 * Threads: a kn_tail_frame is per shard and reused (arrays only grow). */
#ifndef KN_TAIL_FRAME_H
#define KN_TAIL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "../../collector/core/kn_chunk.h"
#include "../../collector/wire/kn_wire.h"
#include "kn_tail_intern.h"

/* Writers of the framing (frame, store): every tag written is 1 byte. */
static inline uint64_t kn_tail_fsize(uint64_t len)
{
	return 1 + kn_wire_varint_len(len) + len;
}

static inline uint8_t *kn_tail_put_field(uint8_t *w, uint8_t tag, uint64_t len)
{
	*w++ = tag;
	return w + kn_wire_put_varint(w, len);
}

static inline uint8_t *kn_tail_put_bytes(uint8_t *w, uint8_t tag, const uint8_t *b, uint32_t len)
{
	w = kn_tail_put_field(w, tag, len);
	if (len)
		memcpy(w, b, len);
	return w + len;
}

struct kn_tail_frame_msg {
	const uint8_t *msg;       /* Resource / InstrumentationScope bytes; NULL when absent */
	const uint8_t *url;       /* schema_url bytes; NULL when absent */
	uint32_t len, url_len;
	uint32_t resource_idx;    /* scopes: the enclosing ResourceSpans */
	uint64_t ghash;           /* scopes: kn_tail_group_hash of the scope's group */
};

struct kn_tail_frame {
	struct kn_tail_frame_msg *res, *scopes;
	uint32_t nres, nscopes, cap_res, cap_scopes;
};

void kn_tail_frame_free(struct kn_tail_frame *f);

/* Walks data[0..len). 0, or -1 when the framing is broken or memory ran out. */
int kn_tail_frame_index(struct kn_tail_frame *f, const uint8_t *data, size_t len);

/* The (Resource, scope) group of scope number scope_idx. */
void kn_tail_frame_group(const struct kn_tail_frame *f, uint32_t scope_idx, struct kn_tail_group *g);

/* 0 when every span's resource_idx / scope_idx is within the index. */
int kn_tail_frame_check(const struct kn_tail_frame *f, const struct kn_chunk *c);

/* Bytes that spans idx[0..n) of c take framed; g[2n] receives group sizes
 * for kn_tail_frame_write. UINT64_MAX when a group passes 2^31-1. */
uint64_t kn_tail_frame_size(const struct kn_tail_frame *f, const struct kn_chunk *c,
			    const uint32_t *idx, uint32_t n, uint32_t *g);

/* Writes them at w (room for kn_tail_frame_size bytes); returns the end. */
uint8_t *kn_tail_frame_write(const struct kn_tail_frame *f, const struct kn_chunk *c,
			     const uint32_t *idx, uint32_t n, const uint32_t *g, uint8_t *w);

#endif
