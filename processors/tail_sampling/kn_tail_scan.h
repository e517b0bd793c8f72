/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_scan: one buffered trace read once per decision and shared by
 * every policy evaluated for it.
 *
 * Without it each policy walks the trace's bytes again (kn_tail_view.h):
 * the status, latency, trace_state and probabilistic policies parse every
 * span header, and every attribute policy also parses every KeyValue of
 * every Resource and span. The scan does the walk once, in the view's order
 * and with the view's rules, and keeps what the walks find: the
 * ResourceSpans (Resource bytes, attribute range, span range), the span
 * headers (struct kn_tail_span) and the KeyValues (key and value bytes, in
 * message order, so "the first KeyValue with the key" is the first match in
 * the range). Values are decoded only when a key matched. Results are the
 * walks' exactly; tests/unit/test_tail_policies.c checks the two agree.
 *
 * Ownership: the arrays only grow and belong to one policy engine shard (one
 * thread); a built scan points into the trace's buffer and is valid for one
 * kn_tail_decide call. Costs: one pass over the trace's framing, span fields
 * and KeyValues; no allocation once the arrays fit the largest trace seen. */
#ifndef KN_TAIL_SCAN_H
#define KN_TAIL_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "kn_tail_trace.h"
#include "kn_tail_view.h"

struct kn_tail_scan_kv {
	const uint8_t *key, *val;      /* NULL when the KeyValue had no key / value */
	uint32_t klen, vlen;
};

struct kn_tail_scan_rs {
	const uint8_t *resource;       /* NULL when absent */
	uint32_t resource_len;
	uint32_t kv0, nkv;             /* its Resource's attributes: kv[kv0 .. kv0 + nkv) */
	uint32_t s0, s1;               /* its spans: span[s0 .. s1) */
};

struct kn_tail_scan_span {
	struct kn_tail_span sp;
	uint32_t kv0, nkv;             /* its attributes */
};

struct kn_tail_scan {
	struct kn_tail_scan_rs *rs;
	struct kn_tail_scan_span *span;
	struct kn_tail_scan_kv *kv;
	uint32_t nrs, nspan, nkv;
	uint32_t cap_rs, cap_span, cap_kv;
};

/* Reads t into s (replacing what s held). 0, or -1 when memory ran out
 * (then s holds nothing usable; the caller walks the bytes instead). */
int kn_tail_scan_build(struct kn_tail_scan *s, const struct kn_tail_trace *t);
void kn_tail_scan_free(struct kn_tail_scan *s);

/* The first KeyValue of kv[kv0 .. kv0 + n) with key `key`: 1 and its value,
 * else 0 (kn_tail_attr_get's rule). Indexes kv only when the range is not
 * empty: kv is NULL until the shard's first trace with a KeyValue, and
 * NULL + 0 is undefined behaviour in C. */
static inline int kn_tail_scan_attr(const struct kn_tail_scan *s, uint32_t kv0, uint32_t n,
				    const char *key, size_t keylen, struct kn_tail_value *v)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct kn_tail_scan_kv *a = &s->kv[kv0 + i];
		if (kn_tail_key_eq(a->key, a->klen, key, keylen)) {
			kn_tail_value_decode(a->val, a->vlen, v);
			return 1;
		}
	}
	return 0;
}

#endif
