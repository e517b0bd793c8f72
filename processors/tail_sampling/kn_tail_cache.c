/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_cache: the sampled-id LRU and the not-sampled fingerprint ring
 * (see kn_tail_cache.h). Both indexes are power-of-two tables of u32 slots
 * (0 = empty, else entry number + 1) with linear probing; deletion shifts
 * the following run back instead of leaving tombstones, so probe lengths
 * never degrade however long the shard runs. */
#include "kn_tail_cache.h"

#include <stdlib.h>
#include <string.h>

#include "kn_tail_hash.h"

#define NIL UINT32_MAX

static uint32_t table_size(uint32_t cap)
{
	uint32_t n = 16;
	while (n < 2 * (uint64_t)cap && n < (1u << 31))
		n <<= 1;
	return n;
}

/* ---- sampled: LRU ---- */

struct lru_entry {
	uint8_t id[16];
	struct kn_tail_kept kept;
	uint32_t prev, next;     /* recency list: head = most recent */
};

struct kn_tail_lru {
	struct lru_entry *e;
	uint32_t *slot;
	uint32_t cap, n, mask;
	uint32_t head, tail;
};

struct kn_tail_lru *kn_tail_lru_create(uint32_t cap)
{
	struct kn_tail_lru *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->cap = cap ? cap : 1;
	c->mask = table_size(c->cap) - 1;
	c->e = calloc(c->cap, sizeof *c->e);
	c->slot = calloc((size_t)c->mask + 1, sizeof *c->slot);
	c->head = c->tail = NIL;
	if (!c->e || !c->slot) {
		kn_tail_lru_destroy(c);
		return NULL;
	}
	return c;
}

void kn_tail_lru_destroy(struct kn_tail_lru *c)
{
	if (!c)
		return;
	free(c->e);
	free(c->slot);
	free(c);
}

static uint32_t lru_find(const struct kn_tail_lru *c, const uint8_t id[16], uint32_t *slotp)
{
	uint32_t i = (uint32_t)kn_tail_id_hash(id) & c->mask;
	for (; c->slot[i]; i = (i + 1) & c->mask) {
		uint32_t e = c->slot[i] - 1;
		if (memcmp(c->e[e].id, id, 16) == 0) {
			if (slotp)
				*slotp = i;
			return e;
		}
	}
	if (slotp)
		*slotp = i;
	return NIL;
}

static void lru_unlink(struct kn_tail_lru *c, uint32_t e)
{
	struct lru_entry *x = &c->e[e];
	if (x->prev != NIL)
		c->e[x->prev].next = x->next;
	else
		c->head = x->next;
	if (x->next != NIL)
		c->e[x->next].prev = x->prev;
	else
		c->tail = x->prev;
	x->prev = x->next = NIL;
}

static void lru_push_front(struct kn_tail_lru *c, uint32_t e)
{
	struct lru_entry *x = &c->e[e];
	x->prev = NIL;
	x->next = c->head;
	if (c->head != NIL)
		c->e[c->head].prev = e;
	c->head = e;
	if (c->tail == NIL)
		c->tail = e;
}

/* Empties slot i and shifts back the entries of its probe run that may move. */
static void lru_slot_delete(struct kn_tail_lru *c, uint32_t i)
{
	uint32_t j = i;
	for (;;) {
		j = (j + 1) & c->mask;
		if (!c->slot[j])
			break;
		uint32_t home = (uint32_t)kn_tail_id_hash(c->e[c->slot[j] - 1].id) & c->mask;
		if (((j - home) & c->mask) >= ((j - i) & c->mask)) {
			c->slot[i] = c->slot[j];
			i = j;
		}
	}
	c->slot[i] = 0;
}

void kn_tail_lru_put(struct kn_tail_lru *c, const uint8_t id[16], const struct kn_tail_kept *k)
{
	uint32_t s;
	uint32_t e = lru_find(c, id, &s);
	if (e != NIL) {
		c->e[e].kept = *k;
		lru_unlink(c, e);
		lru_push_front(c, e);
		return;
	}
	if (c->n == c->cap) {
		/* reuse the least recently used entry */
		e = c->tail;
		uint32_t old;
		lru_find(c, c->e[e].id, &old);
		lru_slot_delete(c, old);
		lru_unlink(c, e);
		lru_find(c, id, &s); /* the deletion may have moved the free slot */
	} else {
		e = c->n++;
	}
	memcpy(c->e[e].id, id, 16);
	c->e[e].kept = *k;
	c->slot[s] = e + 1;
	lru_push_front(c, e);
}

int kn_tail_lru_get(struct kn_tail_lru *c, const uint8_t id[16], struct kn_tail_kept *k)
{
	uint32_t e = lru_find(c, id, NULL);
	if (e == NIL)
		return 0;
	if (k)
		*k = c->e[e].kept;
	if (c->head != e) {
		lru_unlink(c, e);
		lru_push_front(c, e);
	}
	return 1;
}

uint32_t kn_tail_lru_count(const struct kn_tail_lru *c)
{
	return c->n;
}

size_t kn_tail_lru_bytes(const struct kn_tail_lru *c)
{
	return sizeof *c + (size_t)c->cap * sizeof *c->e + ((size_t)c->mask + 1) * sizeof *c->slot;
}

/* ---- not sampled: fingerprint ring ---- */

struct kn_tail_fpring {
	uint64_t *fp;            /* ring of fingerprints */
	uint32_t *slot;          /* index: ring position + 1 */
	uint32_t cap, n, next, mask;
};

struct kn_tail_fpring *kn_tail_fpring_create(uint32_t cap)
{
	struct kn_tail_fpring *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->cap = cap ? cap : 1;
	r->mask = table_size(r->cap) - 1;
	r->fp = calloc(r->cap, sizeof *r->fp);
	r->slot = calloc((size_t)r->mask + 1, sizeof *r->slot);
	if (!r->fp || !r->slot) {
		kn_tail_fpring_destroy(r);
		return NULL;
	}
	return r;
}

void kn_tail_fpring_destroy(struct kn_tail_fpring *r)
{
	if (!r)
		return;
	free(r->fp);
	free(r->slot);
	free(r);
}

static int fp_has(const struct kn_tail_fpring *r, uint64_t fp)
{
	for (uint32_t i = (uint32_t)fp & r->mask; r->slot[i]; i = (i + 1) & r->mask)
		if (r->fp[r->slot[i] - 1] == fp)
			return 1;
	return 0;
}

static void fp_delete_pos(struct kn_tail_fpring *r, uint32_t pos)
{
	uint32_t i = (uint32_t)r->fp[pos] & r->mask;
	while (r->slot[i] != pos + 1)
		i = (i + 1) & r->mask;
	uint32_t j = i;
	for (;;) {
		j = (j + 1) & r->mask;
		if (!r->slot[j])
			break;
		uint32_t home = (uint32_t)r->fp[r->slot[j] - 1] & r->mask;
		if (((j - home) & r->mask) >= ((j - i) & r->mask)) {
			r->slot[i] = r->slot[j];
			i = j;
		}
	}
	r->slot[i] = 0;
}

void kn_tail_fpring_put(struct kn_tail_fpring *r, const uint8_t id[16])
{
	uint64_t fp = kn_tail_id_hash(id);
	if (fp_has(r, fp))
		return;
	uint32_t pos = r->next;
	if (r->n == r->cap)
		fp_delete_pos(r, pos); /* the oldest sits where the next one goes */
	else
		r->n++;
	r->fp[pos] = fp;
	uint32_t i = (uint32_t)fp & r->mask;
	while (r->slot[i])
		i = (i + 1) & r->mask;
	r->slot[i] = pos + 1;
	r->next = pos + 1 == r->cap ? 0 : pos + 1;
}

int kn_tail_fpring_has(const struct kn_tail_fpring *r, const uint8_t id[16])
{
	return fp_has(r, kn_tail_id_hash(id));
}

uint32_t kn_tail_fpring_count(const struct kn_tail_fpring *r)
{
	return r->n;
}

size_t kn_tail_fpring_bytes(const struct kn_tail_fpring *r)
{
	return sizeof *r + (size_t)r->cap * sizeof *r->fp + ((size_t)r->mask + 1) * sizeof *r->slot;
}
