/* SPDX-License-Identifier: Apache-2.0
 * fuzz_tail_view: arbitrary bytes as a buffered trace's data, through the
 * tail-sampling view walker (every span, header, resource and span attribute
 * lookups, tracestate parsing) and an engine holding the policies that walk
 * the bytes (string regex / exact, numeric, boolean, latency, status_code,
 * trace_state, probabilistic, and/not/drop). It must neither crash nor read
 * outside the buffer (the input is copied to an exact-size allocation so
 * sanitizers see overreads). The tracestate rewriter also gets the bytes.
 * The once-per-decision index (kn_tail_scan) must find exactly what the walk
 * finds: the same ResourceSpans, spans and headers, and per message the
 * KeyValues kn_tail_attrs_each reports, each of which must equal a plain
 * reference decoding here (last key and last value of the KeyValue). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_tracestate.h"
#include "processors/tail_sampling/kn_tail_policy.h"
#include "processors/tail_sampling/kn_tail_scan.h"
#include "processors/tail_sampling/kn_tail_view.h"

static const char kn_fuzz_policies[] =
	"policies:\n"
	"  - {name: s, type: string_attribute, string_attribute: {key: k, values: ['^a.*z$', x], enabled_regex_matching: true, cache_max_size: 4}}\n"
	"  - {name: e, type: string_attribute, string_attribute: {key: k, values: [v], invert_match: true}}\n"
	"  - {name: n, type: numeric_attribute, numeric_attribute: {key: i, min_value: 1}}\n"
	"  - {name: b, type: boolean_attribute, boolean_attribute: {key: b, value: true}}\n"
	"  - {name: l, type: latency, latency: {threshold_ms: 1, upper_threshold_ms: 5}}\n"
	"  - {name: c, type: status_code, status_code: {status_codes: [ERROR]}}\n"
	"  - {name: t, type: trace_state, trace_state: {key: ot, values: ['th:8']}}\n"
	"  - {name: p, type: probabilistic, probabilistic: {sampling_percentage: 30}}\n"
	"  - {name: a, type: and, and: {and_sub_policy: [{name: x, type: span_count, span_count: {min_spans: 0}}]}}\n"
	"  - {name: o, type: not, not: {not_sub_policy: {name: y, type: always_sample}}}\n"
	"  - {name: d, type: drop, drop: {drop_sub_policy: [{name: z, type: status_code, status_code: {status_codes: [OK]}}]}}\n";

/* The engine (parsed policies) is kept for the process's life; every input
 * gets a fresh shard (policy instances, caches, scan arrays), so what an
 * input does never depends on the inputs run before it in the process. */
static struct kn_tail_engine *kn_fuzz_engine(void)
{
	static struct kn_tail_engine *e;
	static struct kn_tail_policies_cfg *cfg;
	struct kn_cnode *root = NULL;
	struct kn_err err;
	if (e)
		return e;
	if (kn_config_parse(kn_fuzz_policies, sizeof kn_fuzz_policies - 1, "<fuzz>", &root, &err) != KN_OK ||
	    kn_tail_policies_parse(kn_cnode_get(root, "policies"), &cfg, &err) != KN_OK)
		abort();
	kn_cnode_free(root);
	if (!(e = kn_tail_engine_create(cfg, 0, 1, NULL, "fuzz", &err)))
		abort();
	return e;
}

/* Reference: a varint, or -1. */
static int ref_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int i = 0; i < 10 && *p < end; i++) {
		uint8_t c = *(*p)++;
		*v |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80))
			return 0;
	}
	return -1;
}

/* Reference decoding of one KeyValue's bytes: the last key and value of
 * wire type LEN, up to the first malformed field. */
static void ref_kv(const uint8_t *p, const uint8_t *end, const uint8_t **k, uint32_t *klen,
		   const uint8_t **val, uint32_t *vlen)
{
	*k = *val = NULL;
	*klen = *vlen = 0;
	while (p < end) {
		uint64_t tag, x;
		if (ref_varint(&p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
			return;
		switch (tag & 7) {
		case 0:
			if (ref_varint(&p, end, &x))
				return;
			break;
		case 1:
		case 5:
			if ((size_t)(end - p) < ((tag & 7) == 1 ? 8u : 4u))
				return;
			p += (tag & 7) == 1 ? 8 : 4;
			break;
		case 2:
			if (ref_varint(&p, end, &x) || x > (uint64_t)(end - p) || x > 0x7fffffff)
				return;
			if ((tag >> 3) == 1) {
				*k = p;
				*klen = (uint32_t)x;
			} else if ((tag >> 3) == 2) {
				*val = p;
				*vlen = (uint32_t)x;
			}
			p += x;
			break;
		default:
			return;
		}
	}
}

/* kn_tail_attrs_each's KeyValues, checked against the reference and
 * against the scan's list kv[0 .. n) as they come. */
struct kv_check {
	const struct kn_tail_scan_kv *kv;
	uint32_t n, i;
};

static int kv_check_fn(void *ctx, const uint8_t *k, uint32_t klen, const uint8_t *val, uint32_t vlen)
{
	struct kv_check *c = ctx;
	if (c->i >= c->n)
		abort();
	const struct kn_tail_scan_kv *e = &c->kv[c->i++];
	if (e->key != k || e->klen != klen || e->val != val || e->vlen != vlen)
		abort();
	return 0;
}

/* Every KeyValue field `field` of msg decoded by the reference, in order,
 * against the scan's list. */
static void check_kvs(const uint8_t *msg, uint32_t len, uint32_t field,
		      const struct kn_tail_scan_kv *kv, uint32_t n)
{
	struct kv_check c = {.kv = kv, .n = n};
	const uint8_t *p = msg, *end = msg + len;
	uint32_t i = 0;
	kn_tail_attrs_each(msg, len, field, kv_check_fn, &c);
	if (c.i != n)
		abort();
	while (p < end) {
		uint64_t tag, x;
		if (ref_varint(&p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
			break;
		uint32_t wt = tag & 7;
		if (wt == 0) {
			if (ref_varint(&p, end, &x))
				break;
		} else if (wt == 1 || wt == 5) {
			if ((size_t)(end - p) < (wt == 1 ? 8u : 4u))
				break;
			p += wt == 1 ? 8 : 4;
		} else if (wt == 2) {
			if (ref_varint(&p, end, &x) || x > (uint64_t)(end - p) || x > 0x7fffffff)
				break;
			if ((tag >> 3) == field) {
				const uint8_t *k, *val;
				uint32_t klen, vlen;
				ref_kv(p, p + x, &k, &klen, &val, &vlen);
				if (i >= n || kv[i].key != k || kv[i].klen != klen || kv[i].val != val ||
				    kv[i].vlen != vlen)
					abort();
				i++;
			}
			p += x;
		} else {
			break;
		}
	}
	if (i != n)
		abort();
}

/* The scan's KeyValues from kv0 on; NULL while the grow-only array is
 * unallocated (no KeyValue seen yet: NULL + 0 is undefined in C). */
static const struct kn_tail_scan_kv *kvs_at(const struct kn_tail_scan *sc, uint32_t kv0)
{
	return sc->kv ? sc->kv + kv0 : NULL;
}

static void check_scan(const struct kn_tail_trace *t)
{
	struct kn_tail_scan sc = {0}; /* fresh per input, like a new shard's */
	struct kn_tail_walk w;
	struct kn_tail_rs rs;
	struct kn_tail_span sp;
	uint32_t r = 0, k = 0;
	if (kn_tail_scan_build(&sc, t) != 0) {
		kn_tail_scan_free(&sc);
		return; /* out of memory */
	}
	kn_tail_walk_init(&w, t);
	while (kn_tail_walk_next(&w, &rs)) {
		if (r >= sc.nrs)
			abort();
		const struct kn_tail_scan_rs *x = &sc.rs[r++];
		if (x->resource != rs.resource || x->resource_len != rs.resource_len || x->s0 != k)
			abort();
		if (rs.resource)
			check_kvs(rs.resource, rs.resource_len, KN_TAIL_RESOURCE_ATTRS, kvs_at(&sc, x->kv0), x->nkv);
		else if (x->nkv)
			abort();
		while (kn_tail_rs_next_span(&rs, &sp)) {
			if (k >= x->s1)
				abort();
			const struct kn_tail_scan_span *y = &sc.span[k++];
			const struct kn_tail_span *z = &y->sp;
			if (z->msg != sp.msg || z->len != sp.len || z->scope != sp.scope ||
			    z->scope_len != sp.scope_len || z->trace_id != sp.trace_id ||
			    z->trace_state != sp.trace_state || z->trace_state_len != sp.trace_state_len ||
			    z->start_ns != sp.start_ns || z->end_ns != sp.end_ns || z->flags != sp.flags ||
			    z->status_code != sp.status_code)
				abort();
			check_kvs(sp.msg, sp.len, KN_TAIL_SPAN_ATTRS, kvs_at(&sc, y->kv0), y->nkv);
		}
		if (k != x->s1)
			abort();
	}
	if (r != sc.nrs || k != sc.nspan)
		abort();
	kn_tail_scan_free(&sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	struct kn_tail_trace t;
	struct kn_tail_walk w;
	struct kn_tail_rs rs;
	struct kn_tail_span sp;
	struct kn_tail_value v;
	struct kn_tail_verdict vd;
	char out[512];
	uint32_t n = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	memset(&t, 0, sizeof t);
	for (size_t i = 0; i < 16 && i < size; i++)
		t.trace_id[i] = buf[i];
	t.data = buf;
	t.len = t.bytes = size;
	kn_tail_walk_init(&w, &t);
	while (kn_tail_walk_next(&w, &rs)) {
		kn_tail_resource_attr(&rs, "k", 1, &v);
		while (kn_tail_rs_next_span(&rs, &sp)) {
			n++;
			if (kn_tail_span_attr(&sp, "k", 1, &v)) {
				const char *s;
				uint32_t l = kn_tail_value_str(&v, &s);
				if (l && (s < (const char *)buf || s + l > (const char *)buf + size))
					abort();
			}
			kn_tracestate_set_th(sp.trace_state, sp.trace_state_len, 0x80000000000000ull,
						  out, sizeof out);
		}
	}
	t.nspans = n;
	check_scan(&t);
	/* twice on one fresh shard: first with empty scan arrays and caches,
	 * then with what the first decision left in them */
	struct kn_err err;
	struct kn_tail_engine_shard *s = kn_tail_engine_shard_create(kn_fuzz_engine(), 0, &err);
	if (!s)
		abort();
	for (int pass = 0; pass < 2; pass++) {
		kn_tail_decide(s, &t, (uint64_t)size * 1000000ull, &vd);
		if (vd.sampled && vd.has_threshold && vd.threshold >= (1ull << 56))
			abort();
	}
	kn_tail_engine_shard_destroy(s);
	free(buf);
	return 0;
}
