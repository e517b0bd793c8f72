/* SPDX-License-Identifier: Apache-2.0
 * kn_arena: block arena (see kn_arena.h). The first block with room wins;
 * the list is short (a message's edits fit one or two blocks). */
#include "kn_arena.h"

#include <stdlib.h>

struct kn_arena_blk {
	struct kn_arena_blk *next;
	size_t cap, used;
	_Alignas(16) uint8_t data[];
};

uint8_t *kn_arena_alloc(struct kn_arena *a, size_t n)
{
	struct kn_arena_blk **pp = &a->blk;
	for (struct kn_arena_blk *b = a->blk; b; pp = &b->next, b = b->next)
		if (b->cap - b->used >= n) {
			uint8_t *r = b->data + b->used;
			b->used += n;
			return r;
		}
	size_t min = a->min_block ? a->min_block : 4096;
	size_t cap = n > min ? n : min;
	struct kn_arena_blk *b = malloc(sizeof *b + cap);
	if (!b)
		return NULL;
	b->next = NULL;
	b->cap = cap;
	b->used = n;
	*pp = b;
	return b->data;
}

void kn_arena_reset(struct kn_arena *a)
{
	for (struct kn_arena_blk *b = a->blk; b; b = b->next)
		b->used = 0;
}

void kn_arena_free(struct kn_arena *a)
{
	for (struct kn_arena_blk *b = a->blk, *n; b; b = n) {
		n = b->next;
		free(b);
	}
	a->blk = NULL;
}
