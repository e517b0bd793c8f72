/* SPDX-License-Identifier: Apache-2.0
 * test_tail_config: the tail_sampling `policies:` parser. An OpenTelemetry
 * Collector config written the way users write it (the README's example
 * shape: flow-style maps, every policy type, and/not/drop/composite) must
 * parse unchanged and build an engine; a table of bad configs must fail
 * with exactly the expected message, naming the path at fault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "collector/config/kn_config.h"
#include "processors/tail_sampling/kn_tail_policy.h"

static const char otel_config[] =
	"receivers:\n"
	"  otlp:\n"
	"    protocols:\n"
	"      grpc:\n"
	"        endpoint: 127.0.0.1:4317\n"
	"processors:\n"
	"  tail_sampling:\n"
	"    decision_wait: 10s\n"
	"    num_traces: 100\n"
	"    expected_new_traces_per_sec: 10\n"
	"    policies:\n"
	"      [\n"
	"          {\n"
	"            name: keep-everything,\n"
	"            type: always_sample\n"
	"          },\n"
	"          {\n"
	"            name: slow-requests,\n"
	"            type: latency,\n"
	"            latency: {threshold_ms: 2500, upper_threshold_ms: 60000}\n"
	"          },\n"
	"          {\n"
	"            name: http-5xx,\n"
	"            type: numeric_attribute,\n"
	"            numeric_attribute: {key: http.response.status_code, min_value: 500, max_value: 599}\n"
	"          },\n"
	"          {\n"
	"            name: one-in-ten,\n"
	"            type: probabilistic,\n"
	"            probabilistic: {sampling_percentage: 10, hash_salt: \"tier-2\"}\n"
	"          },\n"
	"          {\n"
	"            name: failures,\n"
	"            type: status_code,\n"
	"            status_code: {status_codes: [ERROR, UNSET]}\n"
	"          },\n"
	"          {\n"
	"            name: premium-tenants,\n"
	"            type: string_attribute,\n"
	"            string_attribute: {key: tenant.plan, values: [gold, platinum]}\n"
	"          },\n"
	"          {\n"
	"            name: checkout-routes,\n"
	"            type: string_attribute,\n"
	"            string_attribute: {key: http.route, values: ['/checkout/.*', '/cart/[0-9]+'], enabled_regex_matching: true, cache_max_size: 64}\n"
	"          },\n"
	"          {\n"
	"            name: skip-synthetic,\n"
	"            type: string_attribute,\n"
	"            string_attribute: {key: user_agent.original, values: [probe, bot], enabled_regex_matching: true, invert_match: true}\n"
	"          },\n"
	"          {\n"
	"            name: budget,\n"
	"            type: rate_limiting,\n"
	"            rate_limiting: {spans_per_second: 500}\n"
	"          },\n"
	"          {\n"
	"            name: byte-budget,\n"
	"            type: bytes_limiting,\n"
	"            bytes_limiting: {bytes_per_second: 1048576, burst_capacity: 4194304}\n"
	"          },\n"
	"          {\n"
	"            name: big-traces,\n"
	"            type: span_count,\n"
	"            span_count: {min_spans: 50, max_spans: 5000}\n"
	"          },\n"
	"          {\n"
	"            name: vendor-flag,\n"
	"            type: trace_state,\n"
	"            trace_state: { key: acme, values: [keep, debug] }\n"
	"          },\n"
	"          {\n"
	"            name: retried,\n"
	"            type: boolean_attribute,\n"
	"            boolean_attribute: {key: app.retry, value: true}\n"
	"          },\n"
	"          {\n"
	"            name: slow-and-premium,\n"
	"            type: and,\n"
	"            and: {\n"
	"              and_sub_policy: \n"
	"              [\n"
	"                {\n"
	"                  name: sub-latency,\n"
	"                  type: latency,\n"
	"                  latency: {threshold_ms: 800}\n"
	"                },\n"
	"                {\n"
	"                  name: sub-plan,\n"
	"                  type: string_attribute,\n"
	"                  string_attribute: {key: tenant.plan, values: [gold]}\n"
	"                },\n"
	"              ]\n"
	"            }\n"
	"          },\n"
	"          {\n"
	"            name: not-ok,\n"
	"            type: not,\n"
	"            not: {not_sub_policy: {name: ok-status, type: status_code, status_code: {status_codes: [OK]}}}\n"
	"          },\n"
	"          {\n"
	"            name: drop-health,\n"
	"            type: drop,\n"
	"            drop: {drop_sub_policy: [{name: health, type: string_attribute, string_attribute: {key: url.path, values: [/healthz, /readyz]}}]}\n"
	"          },\n"
	"          {\n"
	"            name: shares,\n"
	"            type: composite,\n"
	"            composite:\n"
	"              {\n"
	"                max_total_spans_per_second: 1000,\n"
	"                policy_order: [share-1, share-2, share-3],\n"
	"                composite_sub_policy:\n"
	"                  [\n"
	"                    {\n"
	"                      name: share-1,\n"
	"                      type: numeric_attribute,\n"
	"                      numeric_attribute: {key: cart.items, min_value: 10}\n"
	"                    },\n"
	"                    {\n"
	"                      name: share-2,\n"
	"                      type: and,\n"
	"                      and: {and_sub_policy: [{name: e, type: status_code, status_code: {status_codes: [ERROR]}}]}\n"
	"                    },\n"
	"                    {\n"
	"                      name: share-3,\n"
	"                      type: always_sample\n"
	"                    }\n"
	"                  ],\n"
	"                rate_allocation:\n"
	"                  [\n"
	"                    {\n"
	"                      policy: share-1,\n"
	"                      percent: 50\n"
	"                    },\n"
	"                    {\n"
	"                      policy: share-2,\n"
	"                      percent: 25\n"
	"                    }\n"
	"                  ]\n"
	"              }\n"
	"          },\n"
	"      ]\n"
	"exporters:\n"
	"  debug:\n"
	"service:\n"
	"  pipelines:\n"
	"    traces:\n"
	"      receivers: [otlp]\n"
	"      processors: [tail_sampling]\n"
	"      exporters: [debug]\n";

static int parse_policies(const char *yaml, struct kn_tail_policies_cfg **cfg, struct kn_err *err)
{
	struct kn_cnode *root = NULL;
	int rc = kn_config_parse(yaml, strlen(yaml), "<test>", &root, err);
	if (rc == KN_OK) {
		const struct kn_cnode *ts = kn_cnode_get(kn_cnode_get(root, "processors"), "tail_sampling");
		const struct kn_cnode *p = kn_cnode_get(ts, "policies");
		assert_non_null(p);
		rc = kn_tail_policies_parse(p, cfg, err);
	}
	kn_cnode_free(root);
	return rc;
}

static void test_otel_config_parses(void **state)
{
	(void)state;
	struct kn_tail_policies_cfg *cfg = NULL;
	struct kn_err err = { { 0 } };
	if (parse_policies(otel_config, &cfg, &err) != KN_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(kn_tail_policies_count(cfg), 17);
	struct kn_tail_engine *e = kn_tail_engine_create(cfg, 0, 4, NULL, "tail_sampling", &err);
	assert_non_null(e);
	struct kn_tail_engine_shard *s = kn_tail_engine_shard_create(e, 3, &err);
	assert_non_null(s);
	/* an empty trace goes through every policy */
	struct kn_tail_trace t = { .nspans = 0, .min_start_ns = UINT64_MAX };
	struct kn_tail_verdict v;
	kn_tail_decide(s, &t, 1, &v);
	assert_int_equal(v.sampled, 1);
	assert_string_equal(v.policy, "keep-everything");
	kn_tail_engine_shard_destroy(s);
	kn_tail_engine_destroy(e);
	kn_tail_policies_free(&cfg);
	assert_null(cfg);
	kn_tail_policies_free(&cfg); /* twice is fine */
}

#define P "processors.tail_sampling.policies"

static const struct {
	const char *policies;   /* the value of `policies:` */
	const char *msg;
} bad[] = {
	{ "[]", P ": at least one policy is required" },
	{ "{name: a}", P ": expected a list of policies, got a map" },
	{ "[always_sample]", P "[0]: expected a map (a policy with name and type), got a scalar" },
	{ "[{type: always_sample}]", P "[0].name: missing" },
	{ "[{name: a}]", P "[0].type: missing" },
	{ "[{name: a, type: sometimes}]", P "[0].type: unknown policy type \"sometimes\" (known: always_sample, latency, numeric_attribute, probabilistic, status_code, string_attribute, rate_limiting, bytes_limiting, span_count, trace_state, boolean_attribute, ottl_condition, and, not, drop, composite, sli)" },
	{ "[{name: a, type: trace_flags}]", P "[0].type: policy type \"trace_flags\" is not supported by kansatsu" },
	{ "[{name: a, type: ottl_condition, ottl_condition: {span: [x == 1]}}]", P "[0].ottl_condition.span[0]: condition \"x == 1\": unknown path \"x\" in the span context at column 1 (\"x\")" },
	{ "[{name: a, type: ottl_condition, ottl_condition: {error_mode: ignore}}]", P "[0].ottl_condition: at least one condition is required in span or spanevent" },
	{ "[{name: a, type: ottl_condition, ottl_condition: {error_mode: loud, span: ['name == \"a\"']}}]", P "[0].ottl_condition.error_mode: must be one of propagate, ignore, silent; got \"loud\"" },
	{ "[{name: a, type: ottl_condition, ottl_condition: {spanevent: ['IsRootSpan()']}}]", P "[0].ottl_condition.spanevent[0]: condition \"IsRootSpan()\": IsRootSpan cannot be used in the spanevent context at column 1 (\"IsRootSpan()\")" },
	{ "[{name: a, type: ottl_condition, ottl_condition: {span: ['set(name, \"x\")']}}]", P "[0].ottl_condition.span[0]: condition \"set(name, \\\"x\\\")\": set is an editor: it cannot be used as a value at column 1 (\"set(name, \\\"x\\\")\")" },
	{ "[{name: a, type: always_sample}, {name: a, type: always_sample}]", P "[1].name: duplicate policy name \"a\" (also " P "[0])" },
	{ "[{name: a, type: always_sample, colour: red}]", P "[0].colour: unknown key" },
	{ "[{name: a, type: latency, string_attribute: {key: k}}]", P "[0].string_attribute: does not apply to a policy of type \"latency\"" },
	{ "[{name: a, type: latency}]", P "[0].latency: missing" },
	{ "[{name: a, type: latency, latency: [1]}]", P "[0].latency: expected a map, got a list" },
	{ "[{name: a, type: latency, latency: {treshold_ms: 5}}]", P "[0].latency.treshold_ms: unknown key (did you mean \"threshold_ms\"?)" },
	{ "[{name: a, type: latency, latency: {threshold_ms: fast}}]", P "[0].latency.threshold_ms: expected an integer, got \"fast\"" },
	{ "[{name: a, type: latency, latency: {threshold_ms: 500, upper_threshold_ms: 100}}]", P "[0].latency.upper_threshold_ms: must be greater than threshold_ms (500)" },
	{ "[{name: a, type: status_code, status_code: {status_codes: [ERROR, FAILED]}}]", P "[0].status_code.status_codes[1]: unknown status code \"FAILED\", supported: OK, ERROR, UNSET" },
	{ "[{name: a, type: status_code, status_code: {status_codes: []}}]", P "[0].status_code.status_codes: expected at least one status code" },
	{ "[{name: a, type: string_attribute, string_attribute: {values: [x]}}]", P "[0].string_attribute.key: missing" },
	{ "[{name: a, type: string_attribute, string_attribute: {key: k, values: [ok, \"(open\"], enabled_regex_matching: true}}]", P "[0].string_attribute.values[1]: invalid regular expression \"(open\": Unmatched ( or \\(" },
	{ "[{name: a, type: numeric_attribute, numeric_attribute: {key: k}}]", P "[0].numeric_attribute: min_value or max_value is required" },
	{ "[{name: a, type: numeric_attribute, numeric_attribute: {key: k, min_value: 9, max_value: 1}}]", P "[0].numeric_attribute.min_value: 9 is greater than max_value 1" },
	{ "[{name: a, type: probabilistic, probabilistic: {sampling_percentage: 150}}]", P "[0].probabilistic.sampling_percentage: must be between 0 and 100, got 150" },
	{ "[{name: a, type: span_count, span_count: {min_spans: 10, max_spans: 2}}]", P "[0].span_count.max_spans: 2 is less than min_spans 10" },
	{ "[{name: a, type: trace_state, trace_state: {key: k}}]", P "[0].trace_state.values: missing" },
	{ "[{name: a, type: rate_limiting, rate_limiting: {spans_per_second: -1}}]", P "[0].rate_limiting.spans_per_second: must be between 0 and 1000000000000, got -1" },
	{ "[{name: a, type: and, and: {and_sub_policy: []}}]", P "[0].and.and_sub_policy: at least one policy is required" },
	{ "[{name: a, type: and, and: {and_sub_policy: [{name: b, type: and, and: {and_sub_policy: [{name: c, type: always_sample}]}}]}}]", P "[0].and.and_sub_policy[0].type: \"and\" cannot be used here (allowed: always_sample, latency, numeric_attribute, probabilistic, status_code, string_attribute, rate_limiting, bytes_limiting, span_count, trace_state, boolean_attribute, ottl_condition, sli)" },
	{ "[{name: a, type: and, and: {and_sub_policy: [{name: b, type: latency, latency: {threshold_ms: x}}]}}]", P "[0].and.and_sub_policy[0].latency.threshold_ms: expected an integer, got \"x\"" },
	{ "[{name: a, type: not, not: {not_sub_policy: [{name: b, type: always_sample}]}}]", P "[0].not.not_sub_policy: expected a map (one policy), got a list" },
	{ "[{name: a, type: drop, drop: {drop_sub_policy: [{name: b, type: drop, drop: {drop_sub_policy: []}}]}}]", P "[0].drop.drop_sub_policy[0].type: \"drop\" cannot be used here (allowed: always_sample, latency, numeric_attribute, probabilistic, status_code, string_attribute, rate_limiting, bytes_limiting, span_count, trace_state, boolean_attribute, ottl_condition, sli)" },
	{ "[{name: a, type: composite, composite: {max_total_spans_per_second: 10, composite_sub_policy: [{type: always_sample}]}}]", P "[0].composite.composite_sub_policy[0].name: missing" },
	{ "[{name: a, type: composite, composite: {max_total_spans_per_second: 10, composite_sub_policy: [{name: b, type: always_sample}], rate_allocation: [{policy: c, percent: 10}]}}]", P "[0].composite.rate_allocation[0].policy: no composite_sub_policy named \"c\"" },
	{ "[{name: a, type: composite, composite: {max_total_spans_per_second: 10, policy_order: [b, x], composite_sub_policy: [{name: b, type: always_sample}]}}]", P "[0].composite.policy_order[1]: no composite_sub_policy named \"x\"" },
	{ "[{name: a, type: composite, composite: {max_total_spans_per_second: 10, composite_sub_policy: [{name: b, type: not, not: {not_sub_policy: {type: always_sample}}}]}}]", P "[0].composite.composite_sub_policy[0].type: \"not\" cannot be used here (allowed: always_sample, latency, numeric_attribute, probabilistic, status_code, string_attribute, rate_limiting, bytes_limiting, span_count, trace_state, boolean_attribute, ottl_condition, and, sli)" },
	{ "[{name: a, type: composite, composite: {composite_sub_policy: [{name: b, type: always_sample}]}}]", P "[0].composite.max_total_spans_per_second: missing" },
};

static void test_bad_configs(void **state)
{
	(void)state;
	char yaml[2048];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct kn_tail_policies_cfg *cfg = NULL;
		struct kn_err err = { { 0 } };
		snprintf(yaml, sizeof yaml, "processors:\n  tail_sampling:\n    policies: %s\n", bad[i].policies);
		int rc = parse_policies(yaml, &cfg, &err);
		kn_tail_policies_free(&cfg);
		if (rc == KN_OK)
			fail_msg("case %zu parsed: %s", i, bad[i].policies);
		if (strcmp(err.msg, bad[i].msg) != 0)
			fail_msg("case %zu:\n got  %s\n want %s", i, err.msg, bad[i].msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_otel_config_parses),
		cmocka_unit_test(test_bad_configs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
