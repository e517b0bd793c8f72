/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_intern: the shard's group table (see kn_tail_intern.h). Ids index
 * an array of entry pointers (freed ids go on a stack and are reused); a
 * power-of-two table of u32 slots (id + 1, 0 = empty) at load <= 1/2 maps
 * hashes to ids with linear probing and backward-shift deletion, like the
 * trace store's id table. */
#include "kn_tail_intern.h"

#include <stdlib.h>
#include <string.h>

#include "../../collector/wire/kn_wire.h"
#include "kn_tail_hash.h"

#define NONE UINT32_MAX

struct kn_tail_intern {
	struct kn_tail_entry **ent;
	uint32_t nent, cap_ent;   /* ids handed out so far, array size */
	uint32_t *freeid;         /* stack of ids to reuse (cap_ent long) */
	uint32_t nfree;
	uint32_t *slot;
	uint32_t mask;
	uint32_t live;
	size_t entry_bytes;
};

static uint64_t mix_bytes(uint64_t h, const uint8_t *p, uint32_t len)
{
	h = kn_tail_mix64(h ^ len);
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
		p += 8;
		len -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, p, len);
	return kn_tail_mix64(h ^ w);
}

uint64_t kn_tail_group_hash(const struct kn_tail_group *g)
{
	uint64_t h = 0x6a09e667f3bcc909ull;
	h = g->res ? mix_bytes(h, g->res, g->res_len) : kn_tail_mix64(h + 1);
	h = g->res_url ? mix_bytes(h, g->res_url, g->res_url_len) : kn_tail_mix64(h + 2);
	h = g->scope ? mix_bytes(h, g->scope, g->scope_len) : kn_tail_mix64(h + 3);
	h = g->scope_url ? mix_bytes(h, g->scope_url, g->scope_url_len) : kn_tail_mix64(h + 4);
	return h;
}

static size_t entry_size(const struct kn_tail_entry *e)
{
	return sizeof *e + (size_t)e->res_len + e->res_url_len + e->scope_len + e->scope_url_len;
}

static inline uint32_t fsize(uint32_t len)
{
	return 1 + (uint32_t)kn_wire_varint_len(len) + len;
}

struct kn_tail_intern *kn_tail_intern_create(void)
{
	struct kn_tail_intern *in = calloc(1, sizeof *in);
	if (!in)
		return NULL;
	in->slot = calloc(16, sizeof *in->slot);
	if (!in->slot) {
		free(in);
		return NULL;
	}
	in->mask = 15;
	return in;
}

void kn_tail_intern_destroy(struct kn_tail_intern *in)
{
	if (!in)
		return;
	for (uint32_t i = 0; i < in->nent; i++)
		free(in->ent[i]);
	free(in->ent);
	free(in->freeid);
	free(in->slot);
	free(in);
}

static int same(const struct kn_tail_entry *e, const struct kn_tail_group *g)
{
	const uint8_t *b = e->bytes;
	const uint8_t *ps[4] = {g->res, g->res_url, g->scope, g->scope_url};
	const uint32_t ls[4] = {g->res_len, g->res_url_len, g->scope_len, g->scope_url_len};
	const uint32_t es[4] = {e->res_len, e->res_url_len, e->scope_len, e->scope_url_len};
	for (int i = 0; i < 4; i++) {
		if (((e->has >> i) & 1) != (ps[i] != NULL) || es[i] != ls[i])
			return 0;
		if (ls[i] && memcmp(b, ps[i], ls[i]) != 0)
			return 0;
		b += ls[i];
	}
	return 1;
}

static int table_grow(struct kn_tail_intern *in)
{
	uint32_t nsize = (in->mask + 1) * 2;
	uint32_t *ns = calloc(nsize, sizeof *ns);
	if (!ns)
		return -1;
	for (uint32_t i = 0; i <= in->mask; i++) {
		if (!in->slot[i])
			continue;
		uint32_t j = (uint32_t)in->ent[in->slot[i] - 1]->hash & (nsize - 1);
		while (ns[j])
			j = (j + 1) & (nsize - 1);
		ns[j] = in->slot[i];
	}
	free(in->slot);
	in->slot = ns;
	in->mask = nsize - 1;
	return 0;
}

static uint32_t new_id(struct kn_tail_intern *in)
{
	if (in->nfree)
		return in->freeid[--in->nfree];
	if (in->nent == in->cap_ent) {
		if (in->cap_ent >= (1u << 30))
			return NONE;
		uint32_t nc = in->cap_ent ? in->cap_ent * 2 : 16;
		struct kn_tail_entry **ne = realloc(in->ent, (size_t)nc * sizeof *ne);
		if (!ne)
			return NONE;
		in->ent = ne;
		uint32_t *nf = realloc(in->freeid, (size_t)nc * sizeof *nf);
		if (!nf)
			return NONE;
		in->freeid = nf;
		in->cap_ent = nc;
	}
	in->ent[in->nent] = NULL;
	return in->nent++;
}

uint32_t kn_tail_intern_get(struct kn_tail_intern *in, const struct kn_tail_group *g, uint64_t h)
{
	uint32_t i = (uint32_t)h & in->mask;
	for (; in->slot[i]; i = (i + 1) & in->mask) {
		struct kn_tail_entry *e = in->ent[in->slot[i] - 1];
		if (e->hash == h && same(e, g)) {
			e->refs++;
			return in->slot[i] - 1;
		}
	}
	if (2 * ((uint64_t)in->live + 1) > (uint64_t)in->mask + 1) {
		if (table_grow(in))
			return NONE;
		i = (uint32_t)h & in->mask;
		while (in->slot[i])
			i = (i + 1) & in->mask;
	}
	size_t data = (size_t)g->res_len + g->res_url_len + g->scope_len + g->scope_url_len;
	struct kn_tail_entry *e = malloc(sizeof *e + data);
	if (!e)
		return NONE;
	uint32_t id = new_id(in);
	if (id == NONE) {
		free(e);
		return NONE;
	}
	e->hash = h;
	e->refs = 1;
	e->res_len = g->res_len;
	e->res_url_len = g->res_url_len;
	e->scope_len = g->scope_len;
	e->scope_url_len = g->scope_url_len;
	e->has = (uint8_t)((g->res ? 1 : 0) | (g->res_url ? 2 : 0) | (g->scope ? 4 : 0) |
			   (g->scope_url ? 8 : 0));
	e->res_fields = (g->res ? fsize(g->res_len) : 0) + (g->res_url ? fsize(g->res_url_len) : 0);
	e->scope_fields = (g->scope ? fsize(g->scope_len) : 0) +
			  (g->scope_url ? fsize(g->scope_url_len) : 0);
	uint8_t *b = e->bytes;
	const uint8_t *ps[4] = {g->res, g->res_url, g->scope, g->scope_url};
	const uint32_t ls[4] = {g->res_len, g->res_url_len, g->scope_len, g->scope_url_len};
	for (int k = 0; k < 4; k++) {
		if (ls[k])
			memcpy(b, ps[k], ls[k]);
		b += ls[k];
	}
	in->ent[id] = e;
	in->slot[i] = id + 1;
	in->live++;
	in->entry_bytes += entry_size(e);
	return id;
}

void kn_tail_intern_put(struct kn_tail_intern *in, uint32_t id)
{
	struct kn_tail_entry *e = in->ent[id];
	if (--e->refs)
		return;
	uint32_t i = (uint32_t)e->hash & in->mask;
	while (in->slot[i] != id + 1)
		i = (i + 1) & in->mask;
	for (uint32_t j = i;;) {
		j = (j + 1) & in->mask;
		if (!in->slot[j])
			break;
		uint32_t home = (uint32_t)in->ent[in->slot[j] - 1]->hash & in->mask;
		if (((j - home) & in->mask) >= ((j - i) & in->mask)) {
			in->slot[i] = in->slot[j];
			i = j;
		}
	}
	in->slot[i] = 0;
	in->entry_bytes -= entry_size(e);
	free(e);
	in->ent[id] = NULL;
	in->freeid[in->nfree++] = id;
	in->live--;
}

const struct kn_tail_entry *kn_tail_intern_at(const struct kn_tail_intern *in, uint32_t id)
{
	return in->ent[id];
}

int kn_tail_entry_same_resource(const struct kn_tail_entry *a, const struct kn_tail_entry *b)
{
	if (a == b)
		return 1;
	return (a->has & 3) == (b->has & 3) && a->res_len == b->res_len &&
	       a->res_url_len == b->res_url_len &&
	       memcmp(a->bytes, b->bytes, (size_t)a->res_len + a->res_url_len) == 0;
}

size_t kn_tail_intern_bytes(const struct kn_tail_intern *in)
{
	return sizeof *in + in->entry_bytes + ((size_t)in->mask + 1) * sizeof *in->slot +
	       (size_t)in->cap_ent * (sizeof *in->ent + sizeof *in->freeid);
}

uint32_t kn_tail_intern_count(const struct kn_tail_intern *in)
{
	return in->live;
}
