/* SPDX-License-Identifier: Apache-2.0
 * kn_arena: a block arena for bytes made while one message is edited
 * (strings, encoded values), shared by the attribute view (kn_wire_attrs)
 * and the OTTL transform context.
 *
 * What is allocated never moves until kn_arena_reset: a new block is added
 * when none has room, so pointers handed out stay valid while later
 * allocations are made. Reset keeps every block for the next message, so a
 * warm arena allocates nothing. Blocks are at least min_block bytes (or the
 * request, when larger) and their data is 16-byte aligned; the caller rounds
 * sizes when it needs aligned allocations. One owner, no locks. */
#ifndef KN_ARENA_H
#define KN_ARENA_H

#include <stddef.h>
#include <stdint.h>

struct kn_arena_blk;

struct kn_arena {
	struct kn_arena_blk *blk;
	size_t min_block;   /* 0 = 4096 */
};

/* n bytes (n may be 0), or NULL when out of memory. */
uint8_t *kn_arena_alloc(struct kn_arena *a, size_t n);
/* Everything allocated is released for reuse; the blocks stay. */
void kn_arena_reset(struct kn_arena *a);
/* Frees the blocks; the arena is empty (min_block kept) and usable again. */
void kn_arena_free(struct kn_arena *a);

#endif
