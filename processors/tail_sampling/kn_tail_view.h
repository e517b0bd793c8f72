/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_view: an allocation-free walk over a buffered trace's bytes (the
 * concatenated ResourceSpans of struct kn_tail_trace) for the policies:
 * ResourceSpans -> their Resource, ScopeSpans -> their scope, Span -> a
 * small header (times, status, flags, trace_state), plus attribute lookup by
 * key with typed values.
 *
 * Lookup rules follow the OpenTelemetry Collector (pdata): an attribute is
 * the FIRST KeyValue in the message with that key (pdata's Map.Get), and the
 * attribute policies test the Resource's attributes of a ResourceSpans before
 * the attributes of its spans (OTel's hasResourceOrSpanWithCondition); scope
 * attributes, event and link attributes are not consulted. Values keep their
 * OTLP type; accessors reproduce pdata's typed getters: the string of a
 * non-string value is "", the int of a non-int is 0, the bool of a non-bool
 * is false (so, as in OTel, arrays, maps and bytes never hold a string, int
 * or bool). For repeated occurrences of a field inside one message the last
 * one wins (protobuf semantics).
 *
 * Robustness: the store's bytes were validated by the wire reader, but the
 * walk trusts nothing: a malformed field ends the walk of the message that
 * holds it (what was read stays valid); nothing reads outside [data, data+len).
 *
 * Costs: one pass over the top-level fields of each message visited; no
 * allocation; nothing is cached between calls. Threads: pure functions over
 * caller-owned bytes. */
#ifndef KN_TAIL_VIEW_H
#define KN_TAIL_VIEW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kn_tail_trace.h"

enum kn_tail_vtype {
	KN_TV_EMPTY = 0,  /* AnyValue with no value set (or KeyValue without value) */
	KN_TV_STR,
	KN_TV_BOOL,
	KN_TV_INT,
	KN_TV_DOUBLE,
	KN_TV_ARRAY,
	KN_TV_KVLIST,
	KN_TV_BYTES,
};

struct kn_tail_value {
	enum kn_tail_vtype type;
	const char *s;      /* KN_TV_STR / KN_TV_BYTES: bytes (not NUL-terminated) */
	uint32_t slen;
	int64_t i;          /* KN_TV_INT */
	double d;           /* KN_TV_DOUBLE */
	int b;              /* KN_TV_BOOL */
};

/* pdata-style typed getters. */
static inline int64_t kn_tail_value_int(const struct kn_tail_value *v)
{
	return v->type == KN_TV_INT ? v->i : 0;
}
static inline int kn_tail_value_bool(const struct kn_tail_value *v)
{
	return v->type == KN_TV_BOOL ? v->b : 0;
}
/* The string of a value: its bytes when a string, else "" (len 0). */
static inline uint32_t kn_tail_value_str(const struct kn_tail_value *v, const char **s)
{
	if (v->type == KN_TV_STR) {
		*s = v->s;
		return v->slen;
	}
	*s = "";
	return 0;
}

/* Cursor over the ResourceSpans of a trace. */
struct kn_tail_walk {
	const uint8_t *p, *end;
};

/* One ResourceSpans. resource is NULL when it has none. */
struct kn_tail_rs {
	const uint8_t *resource;
	uint32_t resource_len;
	/* private cursors */
	const uint8_t *p, *end;         /* over the ResourceSpans fields */
	const uint8_t *ss_p, *ss_end;   /* over the current ScopeSpans fields */
	const uint8_t *scope;
	uint32_t scope_len;
};

/* One span: its message bytes, its scope's bytes and a parsed header. */
struct kn_tail_span {
	const uint8_t *msg;
	uint32_t len;
	const uint8_t *scope;           /* InstrumentationScope bytes; NULL when absent */
	uint32_t scope_len;
	const uint8_t *trace_id;        /* NULL unless 16 bytes */
	const char *trace_state;        /* "" when absent */
	uint32_t trace_state_len;
	uint64_t start_ns, end_ns;
	uint32_t flags;                 /* Span.flags: W3C trace flags in the low byte */
	int32_t status_code;            /* 0 unset, 1 ok, 2 error */
};

void kn_tail_walk_init(struct kn_tail_walk *w, const struct kn_tail_trace *t);
void kn_tail_walk_init_bytes(struct kn_tail_walk *w, const uint8_t *data, size_t len);
/* Next ResourceSpans: 1, or 0 at the end. */
int kn_tail_walk_next(struct kn_tail_walk *w, struct kn_tail_rs *rs);
/* Next span of rs: 1, or 0 at its end. */
int kn_tail_rs_next_span(struct kn_tail_rs *rs, struct kn_tail_span *sp);

/* Attribute lookup in a message whose `attributes` (repeated KeyValue) are
 * field `field` (Span: 9, Resource: 1, InstrumentationScope: 3): 1 and *v
 * when found, 0 otherwise. */
int kn_tail_attr_get(const uint8_t *msg, uint32_t len, uint32_t field, const char *key,
		     size_t keylen, struct kn_tail_value *v);

/* The KeyValues of a message's attributes field `field`, in order: fn gets
 * each one's key and AnyValue bytes (the last occurrence of each inside the
 * KeyValue; NULL and 0 when absent); a nonzero return stops the walk.
 * Returns 1 when fn stopped it, else 0. kn_tail_attr_get is the first
 * KeyValue whose key equals (kn_tail_key_eq) the one looked up. */
typedef int (*kn_tail_kv_fn)(void *ctx, const uint8_t *k, uint32_t klen, const uint8_t *val,
			     uint32_t vlen);
int kn_tail_attrs_each(const uint8_t *msg, uint32_t len, uint32_t field, kn_tail_kv_fn fn,
		       void *ctx);
/* kn_tail_rs_next_span that also hands fn the span's attribute KeyValues
 * (as kn_tail_attrs_each on the span would) in the same pass: 1, 0 at the
 * end, -1 when fn stopped. */
int kn_tail_rs_next_span_kv(struct kn_tail_rs *rs, struct kn_tail_span *sp, kn_tail_kv_fn fn,
			    void *ctx);
/* A KeyValue's value bytes as a typed value (val NULL: KN_TV_EMPTY). */
void kn_tail_value_decode(const uint8_t *val, uint32_t vlen, struct kn_tail_value *v);

/* A KeyValue's key (k may be NULL when it had none, then klen is 0) equals key. */
static inline int kn_tail_key_eq(const uint8_t *k, uint32_t klen, const char *key, size_t keylen)
{
	/* the last byte first: keys of one length often share a prefix (http.*) */
	return klen == keylen &&
	       (!keylen || (k && k[keylen - 1] == (uint8_t)key[keylen - 1] && memcmp(k, key, keylen) == 0));
}

#define KN_TAIL_SPAN_ATTRS 9
#define KN_TAIL_RESOURCE_ATTRS 1
#define KN_TAIL_SCOPE_ATTRS 3

static inline int kn_tail_span_attr(const struct kn_tail_span *sp, const char *key,
				    size_t keylen, struct kn_tail_value *v)
{
	return kn_tail_attr_get(sp->msg, sp->len, KN_TAIL_SPAN_ATTRS, key, keylen, v);
}

static inline int kn_tail_resource_attr(const struct kn_tail_rs *rs, const char *key,
					size_t keylen, struct kn_tail_value *v)
{
	if (!rs->resource)
		return 0;
	return kn_tail_attr_get(rs->resource, rs->resource_len, KN_TAIL_RESOURCE_ATTRS, key,
				keylen, v);
}

#endif
