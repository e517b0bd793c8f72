/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_attrs: one message's attribute list (`repeated KeyValue` field
 * `field` of a Span (9), Resource (1), scope (3), ...) as a small editable
 * view over the encoded bytes, written back as kn_wire_edit splices.
 *
 * kn_wire_attrs_load reads the list (keys and decoded scalar values point
 * into the message; nothing is copied). Edits (set, add, del) change the view
 * only; kn_wire_attrs_emit then turns them into splices on the message: a
 * deleted entry's field is cut, a changed one is re-encoded in place (so
 * order is kept), new entries are appended at the message's end (protobuf
 * merges repeated fields). An untouched entry, and a message with no edit,
 * keeps its exact bytes.
 *
 * Lookups take the first entry with the key (pdata's Map.Get on a list with
 * duplicate keys); delete removes every entry with it.
 *
 * Memory: entries and created strings live in the kn_wire_attrs, reused
 * message after message (kn_wire_attrs_load resets them): no allocation per
 * message once warm. Strings made by kn_wire_attrs_strdup stay valid until
 * the next load. Threads: one per thread. */
#ifndef KN_WIRE_ATTRS_H
#define KN_WIRE_ATTRS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/kn_arena.h"

#include "kn_wire_edit.h"

enum kn_av_type {
	KN_AV_EMPTY = 0,   /* an AnyValue with no value set (or no value field) */
	KN_AV_STR,
	KN_AV_BOOL,
	KN_AV_INT,
	KN_AV_DOUBLE,
	KN_AV_RAW,         /* array / kvlist / bytes: kept as its encoded AnyValue */
};

/* A value: scalars decoded; KN_AV_STR: s/len the UTF-8 bytes; KN_AV_RAW:
 * s/len the whole encoded AnyValue message. */
struct kn_av {
	enum kn_av_type type;
	const uint8_t *s;
	uint32_t len;
	int b;
	int64_t i;
	double d;
};

enum { KN_WA_KEEP = 0, KN_WA_CHANGED, KN_WA_DELETED, KN_WA_NEW };

struct kn_wire_attr {
	const uint8_t *key;
	uint32_t key_len;
	struct kn_av v;
	uint32_t off, flen;   /* the entry's whole field in the message; flen 0 when new */
	uint8_t state;
};

struct kn_wire_attrs {
	struct kn_wire_attr *a;
	uint32_t n, cap;
	uint32_t field;       /* the attributes field number of the loaded message */
	const uint8_t *msg;
	uint32_t len;
	uint32_t nlive;       /* entries not deleted */
	int edited;
	struct kn_arena ar;   /* strings made while editing (stable addresses) */
};

void kn_wire_attrs_init(struct kn_wire_attrs *at);
void kn_wire_attrs_free(struct kn_wire_attrs *at);

/* Loads msg[0..len)'s attributes (field number `field`); msg may be NULL
 * with len 0 (an absent message). 0, or -1 when the message or one of its
 * KeyValues is malformed or out of memory (the view is then empty and emit
 * makes no splice). */
int kn_wire_attrs_load(struct kn_wire_attrs *at, const uint8_t *msg, uint32_t len, uint32_t field);

/* Index of the first live entry with key, or -1. */
int kn_wire_attrs_find(const struct kn_wire_attrs *at, const char *key, size_t key_len);

/* Sets entry i's value (kept in place when written out). */
void kn_wire_attrs_set(struct kn_wire_attrs *at, uint32_t i, const struct kn_av *v);
/* Appends a new entry (key must stay valid until emit). -1 on OOM. */
int kn_wire_attrs_add(struct kn_wire_attrs *at, const char *key, size_t key_len,
		      const struct kn_av *v);
/* Upsert: set the first entry with key, or add it. -1 on OOM. */
int kn_wire_attrs_put(struct kn_wire_attrs *at, const char *key, size_t key_len,
		      const struct kn_av *v);
/* Renames entry i in place (key must stay valid until emit). */
void kn_wire_attrs_rename(struct kn_wire_attrs *at, uint32_t i, const char *key, size_t key_len);
/* Deletes entry i. */
void kn_wire_attrs_del(struct kn_wire_attrs *at, uint32_t i);

/* Room for n bytes valid until the next load (NULL on OOM). */
uint8_t *kn_wire_attrs_alloc(struct kn_wire_attrs *at, size_t n);

/* The splices for the edits so far on the loaded message, which must be the
 * message the editor's current callback was given. 1 when it spliced, 0 when
 * nothing changed, -1 on failure. */
int kn_wire_attrs_emit(const struct kn_wire_attrs *at, struct kn_wire_edit *ed);

/* Decodes an encoded AnyValue (the `value` field of a KeyValue). 0 / -1. */
int kn_av_decode(const uint8_t *p, size_t len, struct kn_av *v);
/* Whether the wire reader would accept v as an attribute's value: the
 * reader's own check (kn_wire_check_msg), so an edit never writes a value
 * that a receiver refuses, such as AnyValues nested deeper than
 * KN_WIRE_MAX_DEPTH. Scalars always pass. 0, or -1 with the reader's reason
 * in why[0..cap). */
int kn_av_check(const struct kn_av *v, char *why, size_t cap);
/* Its encoded size, and the encoding (at least kn_av_encoded_size bytes). */
size_t kn_av_encoded_size(const struct kn_av *v);
uint8_t *kn_av_encode(const struct kn_av *v, uint8_t *w);
/* Equality as OTel's strict attribute matching compares (same type and
 * value; RAW by bytes). */
int kn_av_equal(const struct kn_av *a, const struct kn_av *b);
/* The string form OTel's AsString gives a scalar (str, "true"/"false",
 * decimal int, shortest round-trip double) into buf (64 bytes are enough
 * for non-strings); for a string, returns its bytes without copying.
 * Returns the length, or -1 for EMPTY / RAW. *out points to the text. */
int kn_av_string(const struct kn_av *v, char buf[64], const char **out);

#endif
