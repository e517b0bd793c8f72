/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_intern: one shard's table of the (Resource, InstrumentationScope)
 * groups its buffered spans belong to, each held once.
 *
 * A request carries its Resource and scope bytes once for many spans; the
 * trace store cuts a request into traces, so copying those bytes into every
 * trace's buffer costs ~50 bytes per span on W1 (a ~250-byte header for a
 * 5-span trace). Instead a trace's buffer names a group by a 32-bit id and
 * the group's bytes live here once, with a count of the parts that name it;
 * the last kn_tail_intern_put frees it. A group is the four optional byte
 * strings verbatim: the Resource message, the ResourceSpans schema_url, the
 * InstrumentationScope message and the ScopeSpans schema_url ("absent" and
 * "present but empty" are kept apart, so the output frames exactly what came
 * in). Lookup: open addressing on a 64-bit hash of the four strings
 * (kn_tail_group_hash, computed once per chunk and scope by kn_tail_frame),
 * confirmed by comparing the bytes.
 *
 * Memory: every entry's allocation size and the table are counted in
 * kn_tail_intern_bytes (the store adds them to its bound). A sender that
 * varies its Resource per request makes one entry per group; they are freed
 * with the traces that name them.
 *
 * Ownership: the table owns the entries. Threads: one shard worker. */
#ifndef KN_TAIL_INTERN_H
#define KN_TAIL_INTERN_H

#include <stddef.h>
#include <stdint.h>

/* One group as found in a chunk (pointers into the chunk's data). */
struct kn_tail_group {
	const uint8_t *res, *res_url, *scope, *scope_url; /* NULL = field absent */
	uint32_t res_len, res_url_len, scope_len, scope_url_len;
};

/* A held group: the strings, and the bytes each framing level adds. */
struct kn_tail_entry {
	uint64_t hash;
	uint32_t refs;
	uint32_t res_len, res_url_len, scope_len, scope_url_len;
	uint32_t res_fields;      /* encoded Resource + schema_url fields of a ResourceSpans */
	uint32_t scope_fields;    /* encoded scope + schema_url fields of a ScopeSpans */
	uint8_t has;              /* bit 0 res, 1 res_url, 2 scope, 3 scope_url */
	uint8_t bytes[];          /* res | res_url | scope | scope_url */
};

struct kn_tail_intern;

uint64_t kn_tail_group_hash(const struct kn_tail_group *g);

struct kn_tail_intern *kn_tail_intern_create(void);
void kn_tail_intern_destroy(struct kn_tail_intern *in);   /* NULL-safe */

/* The id of g (hash h) with one more reference, added when new;
 * UINT32_MAX when out of memory. */
uint32_t kn_tail_intern_get(struct kn_tail_intern *in, const struct kn_tail_group *g, uint64_t h);
/* Drops one reference of id; the last frees the entry. */
void kn_tail_intern_put(struct kn_tail_intern *in, uint32_t id);
/* The entry of a live id. */
const struct kn_tail_entry *kn_tail_intern_at(const struct kn_tail_intern *in, uint32_t id);

/* True when both entries hold the same Resource and ResourceSpans
 * schema_url (their parts can share one ResourceSpans). */
int kn_tail_entry_same_resource(const struct kn_tail_entry *a, const struct kn_tail_entry *b);

size_t kn_tail_intern_bytes(const struct kn_tail_intern *in);  /* entries + table */
uint32_t kn_tail_intern_count(const struct kn_tail_intern *in); /* live entries */

#endif
