/* SPDX-License-Identifier: Apache-2.0
 * fuzz_tail_view: arbitrary bytes as a buffered trace's data, through the
 * tail-sampling view walker (every span, header, resource and span attribute
 * lookups, tracestate parsing) and an engine holding the policies that walk
 * the bytes (string regex / exact, numeric, boolean, latency, status_code,
 * trace_state, probabilistic, and/not/drop). It must neither crash nor read
 * outside the buffer (the input is copied to an exact-size allocation so
 * sanitizers see overreads). The tracestate rewriter also gets the bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/config/kn_config.h"
#include "processors/tail_sampling/kn_tail_policy.h"
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

static struct kn_tail_engine_shard *kn_fuzz_shard(void)
{
	static struct kn_tail_engine_shard *s;
	static struct kn_tail_policies_cfg *cfg;
	struct kn_cnode *root = NULL;
	struct kn_err err;
	if (s)
		return s;
	if (kn_config_parse(kn_fuzz_policies, sizeof kn_fuzz_policies - 1, "<fuzz>", &root, &err) != KN_OK ||
	    kn_tail_policies_parse(kn_cnode_get(root, "policies"), &cfg, &err) != KN_OK)
		abort();
	kn_cnode_free(root);
	struct kn_tail_engine *e = kn_tail_engine_create(cfg, 0, 1, NULL, "fuzz", &err);
	if (!e || !(s = kn_tail_engine_shard_create(e, 0, &err)))
		abort();
	return s; /* kept for the process's life */
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
			kn_tail_tracestate_set_th(sp.trace_state, sp.trace_state_len, 0x80000000000000ull,
						  out, sizeof out);
		}
	}
	t.nspans = n;
	kn_tail_decide(kn_fuzz_shard(), &t, (uint64_t)size * 1000000ull, &vd);
	if (vd.sampled && vd.has_threshold && vd.threshold >= (1ull << 56))
		abort();
	free(buf);
	return 0;
}
