/* SPDX-License-Identifier: Apache-2.0
 * test_tail_policies: the tail-sampling policies and the final decision,
 * table-driven. Traces are built here with protobuf-c (an
 * ExportTraceServiceRequest packed = the store's ResourceSpans
 * concatenation), policies come from YAML through kn_tail_policies_parse,
 * and every case runs through kn_tail_decide. Also: the view walker against
 * the built trace, rate limiting / composite over simulated seconds (now_ns),
 * OTel-exact probabilistic hashing, consistent probability sampling and the
 * tracestate rewrite table, and the per-policy metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_metrics.h"
#include "collector/core/kn_tracestate.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "processors/tail_sampling/kn_tail_policy.h"
#include "processors/tail_sampling/kn_tail_view.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue av_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

enum { A_NONE = 0, A_STR, A_INT, A_DBL, A_BOOL, A_ARR };

struct attr {
	const char *k;
	int type;
	const char *s;
	int64_t i;
	double d;
	int b;
};

struct tspan {
	int res;               /* resource group */
	int status;            /* 0 unset, 1 ok, 2 error */
	uint64_t start_ms, end_ms;
	const char *ts;        /* tracestate */
	uint32_t flags;
	struct attr a[3];
};

struct ttrace {
	struct attr res[2][2];
	int nres;              /* resource groups (>= 1) */
	struct tspan s[6];
	int nspans;
	uint8_t tid[16];
};

struct built {
	uint8_t *buf;
	struct kn_tail_trace t;
};

static void fill_kv(kv_t *kv, av_t *av, av_t *inner, Opentelemetry__Proto__Common__V1__ArrayValue *arr,
		    av_t **arrv, const struct attr *a)
{
	opentelemetry__proto__common__v1__key_value__init(kv);
	opentelemetry__proto__common__v1__any_value__init(av);
	kv->key = (char *)a->k;
	kv->value = av;
	switch (a->type) {
	case A_STR:
		av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		av->string_value = (char *)a->s;
		break;
	case A_INT:
		av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
		av->int_value = a->i;
		break;
	case A_DBL:
		av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
		av->double_value = a->d;
		break;
	case A_BOOL:
		av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
		av->bool_value = a->b;
		break;
	case A_ARR:
		opentelemetry__proto__common__v1__any_value__init(inner);
		opentelemetry__proto__common__v1__array_value__init(arr);
		inner->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		inner->string_value = (char *)a->s;
		arrv[0] = inner;
		arr->n_values = 1;
		arr->values = arrv;
		av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
		av->array_value = arr;
		break;
	default:
		break;
	}
}

/* Packs tr into b (one ResourceSpans per resource group, one scope each). */
static void build(const struct ttrace *tr, struct built *b)
{
	enum { MAXA = 3 };
	static kv_t kvs[2 + 6][MAXA];
	static av_t avs[2 + 6][MAXA], inner[2 + 6][MAXA];
	static Opentelemetry__Proto__Common__V1__ArrayValue arrs[2 + 6][MAXA];
	static av_t *arrv[2 + 6][MAXA][1];
	static kv_t *kvp[2 + 6][MAXA];
	static span_t spans[6];
	static span_t *spanp[2][6];
	static Opentelemetry__Proto__Trace__V1__Status st[6];
	static Opentelemetry__Proto__Resource__V1__Resource res[2];
	static Opentelemetry__Proto__Trace__V1__ScopeSpans ss[2], *ssp[2];
	static Opentelemetry__Proto__Trace__V1__ResourceSpans rs[2], *rsp[2];
	static uint8_t sid[6][8];
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	int nres = tr->nres ? tr->nres : 1;
	size_t nsp[2] = { 0, 0 };

	for (int r = 0; r < nres; r++) {
		opentelemetry__proto__resource__v1__resource__init(&res[r]);
		int na = 0;
		for (int j = 0; j < 2 && tr->res[r][j].k; j++, na++) {
			fill_kv(&kvs[r][j], &avs[r][j], &inner[r][j], &arrs[r][j], arrv[r][j], &tr->res[r][j]);
			kvp[r][j] = &kvs[r][j];
		}
		res[r].n_attributes = (size_t)na;
		res[r].attributes = kvp[r];
		opentelemetry__proto__trace__v1__scope_spans__init(&ss[r]);
		ss[r].spans = spanp[r];
		ssp[r] = &ss[r];
		opentelemetry__proto__trace__v1__resource_spans__init(&rs[r]);
		rs[r].resource = &res[r];
		rs[r].n_scope_spans = 1;
		rs[r].scope_spans = &ssp[r];
		rsp[r] = &rs[r];
	}
	for (int i = 0; i < tr->nspans; i++) {
		const struct tspan *s = &tr->s[i];
		span_t *sp = &spans[i];
		opentelemetry__proto__trace__v1__span__init(sp);
		sp->trace_id.data = (uint8_t *)tr->tid;
		sp->trace_id.len = 16;
		memset(sid[i], 0, 8);
		sid[i][7] = (uint8_t)(i + 1);
		sp->span_id.data = sid[i];
		sp->span_id.len = 8;
		sp->name = (char *)"op";
		sp->start_time_unix_nano = s->start_ms * 1000000ull;
		sp->end_time_unix_nano = s->end_ms * 1000000ull;
		sp->flags = s->flags;
		if (s->ts)
			sp->trace_state = (char *)s->ts;
		if (s->status) {
			opentelemetry__proto__trace__v1__status__init(&st[i]);
			st[i].code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)s->status;
			sp->status = &st[i];
		}
		int na = 0;
		for (int j = 0; j < MAXA && s->a[j].k; j++, na++) {
			fill_kv(&kvs[2 + i][j], &avs[2 + i][j], &inner[2 + i][j], &arrs[2 + i][j],
				arrv[2 + i][j], &s->a[j]);
			kvp[2 + i][j] = &kvs[2 + i][j];
		}
		sp->n_attributes = (size_t)na;
		sp->attributes = kvp[2 + i];
		spanp[s->res][nsp[s->res]++] = sp;
	}
	for (int r = 0; r < nres; r++)
		ss[r].n_spans = nsp[r];
	req.n_resource_spans = (size_t)nres;
	req.resource_spans = rsp;
	size_t len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	b->buf = malloc(len ? len : 1);
	assert_non_null(b->buf);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, b->buf);
	memset(&b->t, 0, sizeof b->t);
	memcpy(b->t.trace_id, tr->tid, 16);
	b->t.nspans = (uint32_t)tr->nspans;
	b->t.data = b->buf;
	b->t.len = b->t.bytes = len;
}

struct eng {
	struct kn_cnode *root;
	struct kn_tail_policies_cfg *cfg;
	struct kn_tail_engine *e;
	struct kn_tail_engine_shard *s;
};

static void eng_open(struct eng *g, const char *yaml, int sofm, uint32_t nshards, struct kn_metrics *m)
{
	struct kn_err err = { { 0 } };
	memset(g, 0, sizeof *g);
	if (kn_config_parse(yaml, strlen(yaml), "<test>", &g->root, &err) != KN_OK)
		fail_msg("yaml: %s", err.msg);
	const struct kn_cnode *p = kn_cnode_get(g->root, "policies");
	assert_non_null(p);
	if (kn_tail_policies_parse(p, &g->cfg, &err) != KN_OK)
		fail_msg("parse: %s", err.msg);
	g->e = kn_tail_engine_create(g->cfg, sofm, nshards, m, "tail_sampling/test", &err);
	if (!g->e)
		fail_msg("engine: %s", err.msg);
	g->s = kn_tail_engine_shard_create(g->e, 0, &err);
	if (!g->s)
		fail_msg("shard: %s", err.msg);
}

static void eng_close(struct eng *g)
{
	kn_tail_engine_shard_destroy(g->s);
	kn_tail_engine_destroy(g->e);
	kn_tail_policies_free(&g->cfg);
	kn_cnode_free(g->root);
}

#define S(k, v) { k, A_STR, v, 0, 0, 0 }
#define I(k, v) { k, A_INT, NULL, v, 0, 0 }
#define D(k, v) { k, A_DBL, NULL, 0, v, 0 }
#define B(k, v) { k, A_BOOL, NULL, 0, 0, v }
#define ARR(k, v) { k, A_ARR, v, 0, 0, 0 }

/* A plain trace: two spans, 0..100 ms, OK. */
#define PLAIN { .nspans = 2, .s = { { .end_ms = 100 }, { .start_ms = 10, .end_ms = 50 } } }

struct pcase {
	const char *name;
	const char *yaml;
	int sofm;
	struct ttrace tr;
	int sampled;
	const char *policy;     /* expected verdict.policy (NULL: none) */
};

static const struct pcase pcases[] = {
	{ "always_sample", "policies: [{name: a, type: always_sample}]", 0, PLAIN, 1, "a" },
	{ "latency at threshold", "policies: [{name: l, type: latency, latency: {threshold_ms: 100}}]", 0,
	  PLAIN, 1, "l" },
	{ "latency below", "policies: [{name: l, type: latency, latency: {threshold_ms: 101}}]", 0,
	  PLAIN, 0, NULL },
	{ "latency span-wise running window (upper bound)",
	  "policies: [{name: l, type: latency, latency: {threshold_ms: 30, upper_threshold_ms: 60}}]", 0,
	  /* first span alone: 40 ms in (30,60] -> sampled, although the whole trace is 0..100 */
	  { .nspans = 2, .s = { { .start_ms = 10, .end_ms = 50 }, { .start_ms = 0, .end_ms = 100 } } }, 1, "l" },
	{ "latency upper bound exceeded",
	  "policies: [{name: l, type: latency, latency: {threshold_ms: 30, upper_threshold_ms: 60}}]", 0,
	  { .nspans = 2, .s = { { .start_ms = 0, .end_ms = 100 }, { .start_ms = 10, .end_ms = 50 } } }, 0, NULL },
	{ "status_code ERROR", "policies: [{name: e, type: status_code, status_code: {status_codes: [ERROR]}}]", 0,
	  { .nspans = 2, .s = { { .status = 1 }, { .status = 2 } } }, 1, "e" },
	{ "status_code none", "policies: [{name: e, type: status_code, status_code: {status_codes: [ERROR, UNSET]}}]", 0,
	  { .nspans = 1, .s = { { .status = 1 } } }, 0, NULL },
	{ "string exact span attr", "policies: [{name: s, type: string_attribute, string_attribute: {key: k, values: [x, y]}}]", 0,
	  { .nspans = 2, .s = { { .a = { S("k", "z") } }, { .a = { S("k", "y") } } } }, 1, "s" },
	{ "string exact resource attr", "policies: [{name: s, type: string_attribute, string_attribute: {key: svc, values: [api]}}]", 0,
	  { .res = { { S("svc", "api") } }, .nspans = 1 }, 1, "s" },
	{ "string int value reads as empty", "policies: [{name: s, type: string_attribute, string_attribute: {key: k, values: [\"5\"]}}]", 0,
	  { .nspans = 1, .s = { { .a = { I("k", 5) } } } }, 0, NULL },
	{ "string array never matches", "policies: [{name: s, type: string_attribute, string_attribute: {key: k, values: [x]}}]", 0,
	  { .nspans = 1, .s = { { .a = { ARR("k", "x") } } } }, 0, NULL },
	{ "string first key wins", "policies: [{name: s, type: string_attribute, string_attribute: {key: k, values: [b]}}]", 0,
	  { .nspans = 1, .s = { { .a = { S("k", "a"), S("k", "b") } } } }, 0, NULL },
	{ "string regex unanchored", "policies: [{name: r, type: string_attribute, string_attribute: {key: url, values: ['/api/v[0-9]+/'], enabled_regex_matching: true}}]", 0,
	  { .nspans = 1, .s = { { .a = { S("url", "https://x/api/v12/users") } } } }, 1, "r" },
	{ "string regex \\d translated", "policies: [{name: r, type: string_attribute, string_attribute: {key: c, values: ['^5\\d\\d$'], enabled_regex_matching: true}}]", 0,
	  { .nspans = 1, .s = { { .a = { S("c", "503") } } } }, 1, "r" },
	{ "string regex (?i)", "policies: [{name: r, type: string_attribute, string_attribute: {key: c, values: ['(?i)^health'], enabled_regex_matching: true}}]", 0,
	  { .nspans = 1, .s = { { .a = { S("c", "HealthCheck") } } } }, 1, "r" },
	{ "string regex resource int reads as \"\"", "policies: [{name: r, type: string_attribute, string_attribute: {key: n, values: ['^$'], enabled_regex_matching: true}}]", 0,
	  { .res = { { I("n", 3) } }, .nspans = 1 }, 1, "r" },
	{ "string regex span empty not tested", "policies: [{name: r, type: string_attribute, string_attribute: {key: n, values: ['^$'], enabled_regex_matching: true}}]", 0,
	  { .nspans = 1, .s = { { .a = { S("n", "") } } } }, 0, NULL },
	{ "string invert: no key -> sampled", "policies: [{name: i, type: string_attribute, string_attribute: {key: k, values: [x], invert_match: true}}]", 0,
	  PLAIN, 1, "i" },
	{ "string invert: match -> not sampled, beats always_sample",
	  "policies: [{name: a, type: always_sample}, {name: i, type: string_attribute, string_attribute: {key: k, values: [x], invert_match: true}}]", 0,
	  { .nspans = 2, .s = { { .a = { S("k", "y") } }, { .a = { S("k", "x") } } } }, 0, "i" },
	{ "invert sampled loses to sampled (policy name)",
	  "policies: [{name: i, type: string_attribute, string_attribute: {key: k, values: [x], invert_match: true}}, {name: a, type: always_sample}]", 0,
	  PLAIN, 1, "a" },
	{ "numeric in range", "policies: [{name: n, type: numeric_attribute, numeric_attribute: {key: code, min_value: 500, max_value: 599}}]", 0,
	  { .nspans = 1, .s = { { .a = { I("code", 503) } } } }, 1, "n" },
	{ "numeric min only", "policies: [{name: n, type: numeric_attribute, numeric_attribute: {key: code, min_value: 500}}]", 0,
	  { .nspans = 1, .s = { { .a = { I("code", 9000) } } } }, 1, "n" },
	{ "numeric double reads as 0", "policies: [{name: n, type: numeric_attribute, numeric_attribute: {key: v, min_value: 0, max_value: 0}}]", 0,
	  { .nspans = 1, .s = { { .a = { D("v", 7.5) } } } }, 1, "n" },
	{ "numeric out of range", "policies: [{name: n, type: numeric_attribute, numeric_attribute: {key: code, min_value: 500, max_value: 599}}]", 0,
	  { .nspans = 1, .s = { { .a = { I("code", 200) } } } }, 0, NULL },
	{ "numeric invert match", "policies: [{name: n, type: numeric_attribute, numeric_attribute: {key: code, max_value: 399, invert_match: true}}]", 0,
	  { .nspans = 1, .s = { { .a = { I("code", 200) } } } }, 0, "n" },
	{ "boolean", "policies: [{name: b, type: boolean_attribute, boolean_attribute: {key: retry, value: true}}]", 0,
	  { .nspans = 1, .s = { { .a = { B("retry", 1) } } } }, 1, "b" },
	{ "boolean non-bool reads as false", "policies: [{name: b, type: boolean_attribute, boolean_attribute: {key: retry, value: false}}]", 0,
	  { .nspans = 1, .s = { { .a = { S("retry", "true") } } } }, 1, "b" },
	{ "boolean invert", "policies: [{name: b, type: boolean_attribute, boolean_attribute: {key: retry, value: true, invert_match: true}}]", 0,
	  { .nspans = 1, .s = { { .a = { B("retry", 1) } } } }, 0, "b" },
	{ "span_count in", "policies: [{name: c, type: span_count, span_count: {min_spans: 2, max_spans: 3}}]", 0,
	  PLAIN, 1, "c" },
	{ "span_count above max", "policies: [{name: c, type: span_count, span_count: {min_spans: 1, max_spans: 1}}]", 0,
	  PLAIN, 0, NULL },
	{ "trace_state", "policies: [{name: t, type: trace_state, trace_state: {key: vendor, values: [gold]}}]", 0,
	  { .nspans = 2, .s = { { .ts = "a=1" }, { .ts = "a=1, vendor=gold" } } }, 1, "t" },
	{ "trace_state invalid skipped", "policies: [{name: t, type: trace_state, trace_state: {key: vendor, values: [gold]}}]", 0,
	  { .nspans = 1, .s = { { .ts = "Bad Key=1,vendor=gold" } } }, 0, NULL },
	{ "and all", "policies: [{name: a, type: and, and: {and_sub_policy: [{name: x, type: status_code, status_code: {status_codes: [ERROR]}}, {name: y, type: string_attribute, string_attribute: {key: k, values: [v]}}]}}]", 0,
	  { .nspans = 1, .s = { { .status = 2, .a = { S("k", "v") } } } }, 1, "a" },
	{ "and one fails", "policies: [{name: a, type: and, and: {and_sub_policy: [{name: x, type: status_code, status_code: {status_codes: [ERROR]}}, {name: y, type: string_attribute, string_attribute: {key: k, values: [v]}}]}}]", 0,
	  { .nspans = 1, .s = { { .status = 2 } } }, 0, NULL },
	{ "and with invert sub (invert sampled counts)", "policies: [{name: a, type: and, and: {and_sub_policy: [{name: x, type: always_sample}, {name: y, type: string_attribute, string_attribute: {key: k, values: [v], invert_match: true}}]}}]", 0,
	  PLAIN, 1, "a" },
	{ "not", "policies: [{name: n, type: not, not: {not_sub_policy: {name: x, type: status_code, status_code: {status_codes: [ERROR]}}}}]", 0,
	  PLAIN, 1, "n" },
	{ "not of match", "policies: [{name: n, type: not, not: {not_sub_policy: {name: x, type: status_code, status_code: {status_codes: [UNSET]}}}}]", 0,
	  PLAIN, 0, NULL },
	{ "drop beats sampled", "policies: [{name: a, type: always_sample}, {name: d, type: drop, drop: {drop_sub_policy: [{name: x, type: string_attribute, string_attribute: {key: url, values: [/health]}}]}}]", 0,
	  { .nspans = 1, .s = { { .a = { S("url", "/health") } } } }, 0, "d" },
	{ "drop not matching", "policies: [{name: a, type: always_sample}, {name: d, type: drop, drop: {drop_sub_policy: [{name: x, type: string_attribute, string_attribute: {key: url, values: [/health]}}]}}]", 0,
	  PLAIN, 1, "a" },
	{ "sample_on_first_match stops before drop", "policies: [{name: a, type: always_sample}, {name: d, type: drop, drop: {drop_sub_policy: [{name: x, type: always_sample}]}}]", 1,
	  PLAIN, 1, "a" },
	{ "without sample_on_first_match drop wins", "policies: [{name: a, type: always_sample}, {name: d, type: drop, drop: {drop_sub_policy: [{name: x, type: always_sample}]}}]", 0,
	  PLAIN, 0, "d" },
	{ "first sampled policy named", "policies: [{name: l, type: latency, latency: {threshold_ms: 1000}}, {name: e, type: status_code, status_code: {status_codes: [ERROR]}}, {name: a, type: always_sample}]", 0,
	  { .nspans = 1, .s = { { .status = 2 } } }, 1, "e" },
	{ "probabilistic 100", "policies: [{name: p, type: probabilistic, probabilistic: {sampling_percentage: 100}}]", 0,
	  PLAIN, 1, "p" },
	{ "probabilistic 0", "policies: [{name: p, type: probabilistic, probabilistic: {sampling_percentage: 0}}]", 0,
	  PLAIN, 0, NULL },
	/* sli: the bool sli.<name>.good the sli processor writes on end spans */
	{ "sli bad: a span with good=false", "policies: [{name: v, type: sli, sli: {name: chat_push, outcome: bad}}]", 0,
	  { .nspans = 3, .s = { { .a = { B("sli.chat_push.good", 1) } }, { .a = { S("k", "x"), B("sli.chat_push.good", 0) } }, { .end_ms = 5 } } },
	  1, "v" },
	{ "sli bad: good=true is not sampled", "policies: [{name: v, type: sli, sli: {name: chat_push, outcome: bad}}]", 0,
	  { .nspans = 2, .s = { { .a = { B("sli.chat_push.good", 1) } }, { .end_ms = 5 } } }, 0, NULL },
	{ "sli bad: no sli attribute", "policies: [{name: v, type: sli, sli: {name: chat_push, outcome: bad}}]", 0,
	  PLAIN, 0, NULL },
	{ "sli bad: another sli's bad event", "policies: [{name: v, type: sli, sli: {name: chat_push, outcome: bad}}]", 0,
	  { .nspans = 1, .s = { { .a = { B("sli.chat_post.good", 0), B("sli.chat_push.goodness", 0) } } } }, 0, NULL },
	{ "sli bad: string \"false\" is not a bool", "policies: [{name: v, type: sli, sli: {name: chat_push, outcome: bad}}]", 0,
	  { .nspans = 1, .s = { { .a = { S("sli.chat_push.good", "false"), I("sli.chat_push.good", 0) } } } }, 0, NULL },
	{ "sli bad: a resource attribute does not count", "policies: [{name: v, type: sli, sli: {name: chat_push, outcome: bad}}]", 0,
	  { .res = { { B("sli.chat_push.good", 0) } }, .nspans = 1 }, 0, NULL },
	{ "sli bad is the default outcome", "policies: [{name: v, type: sli, sli: {name: chat_push}}]", 0,
	  { .nspans = 1, .s = { { .a = { B("sli.chat_push.good", 0) } } } }, 1, "v" },
	{ "sli good: a span with good=true", "policies: [{name: v, type: sli, sli: {name: chat_push, outcome: good}}]", 0,
	  { .nspans = 2, .s = { { .end_ms = 5 }, { .a = { B("sli.chat_push.good", 1) } } } }, 1, "v" },
	{ "sli good: good=false is not sampled", "policies: [{name: v, type: sli, sli: {name: chat_push, outcome: good}}]", 0,
	  { .nspans = 1, .s = { { .a = { B("sli.chat_push.good", 0) } } } }, 0, NULL },
	{ "sli good: no sli attribute", "policies: [{name: v, type: sli, sli: {name: chat_push, outcome: good}}]", 0,
	  PLAIN, 0, NULL },
	{ "sli bad after a policy that does not sample", "policies: [{name: l, type: latency, latency: {threshold_ms: 1000}}, {name: v, type: sli, sli: {name: chat_push}}]", 0,
	  { .nspans = 2, .s = { { .end_ms = 100 }, { .a = { B("sli.chat_push.good", 0) } } } }, 1, "v" },
};

static void test_policy_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof pcases / sizeof pcases[0]; i++) {
		const struct pcase *c = &pcases[i];
		struct eng g;
		struct built b;
		struct kn_tail_verdict v;
		eng_open(&g, c->yaml, c->sofm, 1, NULL);
		build(&c->tr, &b);
		kn_tail_decide(g.s, &b.t, 1000000000ull, &v);
		if (v.sampled != c->sampled)
			fail_msg("%s: sampled %d, want %d", c->name, v.sampled, c->sampled);
		if ((v.policy == NULL) != (c->policy == NULL) ||
		    (v.policy && strcmp(v.policy, c->policy) != 0))
			fail_msg("%s: policy %s, want %s", c->name, v.policy ? v.policy : "(null)",
				 c->policy ? c->policy : "(null)");
		assert_int_equal(v.has_threshold, 0);
		free(b.buf);
		eng_close(&g);
	}
}

/* The view: resource and span attributes, header fields, walk order. */
static void test_view_walk(void **state)
{
	(void)state;
	struct ttrace tr = { .nres = 2, .res = { { S("service.name", "api") }, { I("n", 4) } }, .nspans = 3,
			     .s = { { .res = 0, .status = 2, .start_ms = 5, .end_ms = 9, .ts = "ot=th:8", .flags = 0x103,
				      .a = { S("a", "x"), D("d", 2.5), B("b", 1) } },
				    { .res = 1, .a = { I("i", -7) } },
				    { .res = 1, .a = { ARR("arr", "q") } } } };
	struct built b;
	struct kn_tail_walk w;
	struct kn_tail_rs rs;
	struct kn_tail_span sp;
	struct kn_tail_value v;
	const char *s;
	int nrs = 0, nsp = 0;
	build(&tr, &b);
	kn_tail_walk_init(&w, &b.t);
	while (kn_tail_walk_next(&w, &rs)) {
		if (nrs == 0) {
			assert_true(kn_tail_resource_attr(&rs, "service.name", 12, &v));
			assert_int_equal(kn_tail_value_str(&v, &s), 3);
			assert_memory_equal(s, "api", 3);
		} else {
			assert_true(kn_tail_resource_attr(&rs, "n", 1, &v));
			assert_int_equal(kn_tail_value_int(&v), 4);
			assert_int_equal(kn_tail_value_str(&v, &s), 0);
		}
		while (kn_tail_rs_next_span(&rs, &sp)) {
			if (nsp == 0) {
				assert_int_equal(sp.status_code, 2);
				assert_int_equal(sp.start_ns, 5000000);
				assert_int_equal(sp.end_ns, 9000000);
				assert_int_equal(sp.flags, 0x103);
				assert_int_equal(sp.trace_state_len, 7);
				assert_memory_equal(sp.trace_state, "ot=th:8", 7);
				assert_non_null(sp.trace_id);
				assert_memory_equal(sp.trace_id, tr.tid, 16);
				assert_true(kn_tail_span_attr(&sp, "d", 1, &v));
				assert_int_equal(v.type, KN_TV_DOUBLE);
				assert_true(v.d == 2.5);
				assert_true(kn_tail_span_attr(&sp, "b", 1, &v));
				assert_int_equal(kn_tail_value_bool(&v), 1);
				assert_false(kn_tail_span_attr(&sp, "missing", 7, &v));
			} else if (nsp == 1) {
				assert_true(kn_tail_span_attr(&sp, "i", 1, &v));
				assert_int_equal(kn_tail_value_int(&v), -7);
				assert_int_equal(sp.status_code, 0);
				assert_int_equal(sp.trace_state_len, 0);
			} else {
				assert_true(kn_tail_span_attr(&sp, "arr", 3, &v));
				assert_int_equal(v.type, KN_TV_ARRAY);
			}
			nsp++;
		}
		nrs++;
	}
	assert_int_equal(nrs, 2);
	assert_int_equal(nsp, 3);
	free(b.buf);
}

/* rate_limiting: token bucket over simulated seconds. */
static void test_rate_limiting(void **state)
{
	(void)state;
	struct eng g;
	struct built b;
	struct kn_tail_verdict v;
	struct ttrace tr = PLAIN; /* 2 spans */
	const uint64_t S1 = 1000000000ull;
	eng_open(&g, "policies: [{name: r, type: rate_limiting, rate_limiting: {spans_per_second: 4}}]", 0, 1, NULL);
	build(&tr, &b);
	/* burst = 8 spans: four 2-span traces pass at once, the fifth does not */
	for (int i = 0; i < 4; i++) {
		kn_tail_decide(g.s, &b.t, 10 * S1, &v);
		assert_int_equal(v.sampled, 1);
	}
	kn_tail_decide(g.s, &b.t, 10 * S1, &v);
	assert_int_equal(v.sampled, 0);
	/* half a second refills 2 spans: one more trace */
	kn_tail_decide(g.s, &b.t, 10 * S1 + S1 / 2, &v);
	assert_int_equal(v.sampled, 1);
	kn_tail_decide(g.s, &b.t, 10 * S1 + S1 / 2, &v);
	assert_int_equal(v.sampled, 0);
	/* a long pause refills only up to the burst */
	for (int i = 0; i < 4; i++) {
		kn_tail_decide(g.s, &b.t, 100 * S1, &v);
		assert_int_equal(v.sampled, 1);
	}
	kn_tail_decide(g.s, &b.t, 100 * S1, &v);
	assert_int_equal(v.sampled, 0);
	eng_close(&g);

	/* two shards: each gets half of rate and burst (burst 4 spans = 2 traces) */
	eng_open(&g, "policies: [{name: r, type: rate_limiting, rate_limiting: {spans_per_second: 4}}]", 0, 2, NULL);
	kn_tail_decide(g.s, &b.t, S1, &v);
	assert_int_equal(v.sampled, 1);
	kn_tail_decide(g.s, &b.t, S1, &v);
	assert_int_equal(v.sampled, 1);
	kn_tail_decide(g.s, &b.t, S1, &v);
	assert_int_equal(v.sampled, 0);
	eng_close(&g);

	/* bytes_limiting: the trace's encoded size against a bucket of 2.5 traces */
	char y[200];
	snprintf(y, sizeof y, "policies: [{name: b, type: bytes_limiting, bytes_limiting: {bytes_per_second: %zu, burst_capacity: %zu}}]",
		 b.t.bytes, b.t.bytes * 5 / 2);
	eng_open(&g, y, 0, 1, NULL);
	kn_tail_decide(g.s, &b.t, S1, &v);
	assert_int_equal(v.sampled, 1);
	kn_tail_decide(g.s, &b.t, S1, &v);
	assert_int_equal(v.sampled, 1);
	kn_tail_decide(g.s, &b.t, S1, &v);
	assert_int_equal(v.sampled, 0);
	kn_tail_decide(g.s, &b.t, 2 * S1, &v);
	assert_int_equal(v.sampled, 1);
	eng_close(&g);
	free(b.buf);
}

/* composite: allocations per sub-policy per second. */
static void test_composite(void **state)
{
	(void)state;
	struct eng g;
	struct built berr, bok;
	struct kn_tail_verdict v;
	const uint64_t S1 = 1000000000ull;
	struct ttrace terr = { .nspans = 2, .s = { { .status = 2 }, { .status = 2 } } };
	struct ttrace tok = PLAIN;
	eng_open(&g,
		 "policies:\n"
		 "  - name: c\n"
		 "    type: composite\n"
		 "    composite:\n"
		 "      max_total_spans_per_second: 10\n"
		 "      policy_order: [errors, rest, unlisted]\n"
		 "      composite_sub_policy:\n"
		 "        - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n"
		 "        - {name: rest, type: always_sample}\n"
		 "        - {name: unlisted, type: always_sample}\n"
		 "      rate_allocation:\n"
		 "        - {policy: errors, percent: 40}\n"
		 "        - {policy: rest, percent: 20}\n",
		 0, 1, NULL);
	build(&terr, &berr);
	build(&tok, &bok);
	/* errors: 4 spans/s -> two 2-span traces; the third is refused by `errors`
	 * without trying `rest` (OTel stops at the first sub-policy that samples) */
	kn_tail_decide(g.s, &berr.t, 5 * S1, &v);
	assert_int_equal(v.sampled, 1);
	kn_tail_decide(g.s, &berr.t, 5 * S1 + 1, &v);
	assert_int_equal(v.sampled, 1);
	kn_tail_decide(g.s, &berr.t, 5 * S1 + 2, &v);
	assert_int_equal(v.sampled, 0);
	/* rest: 2 spans/s -> one OK trace */
	kn_tail_decide(g.s, &bok.t, 5 * S1 + 3, &v);
	assert_int_equal(v.sampled, 1);
	kn_tail_decide(g.s, &bok.t, 5 * S1 + 4, &v);
	assert_int_equal(v.sampled, 0);
	/* next second: counters restart */
	kn_tail_decide(g.s, &berr.t, 6 * S1, &v);
	assert_int_equal(v.sampled, 1);
	kn_tail_decide(g.s, &bok.t, 6 * S1, &v);
	assert_int_equal(v.sampled, 1);
	eng_close(&g);
	free(berr.buf);
	free(bok.buf);
}

static uint64_t fnv(const char *salt, const uint8_t tid[16])
{
	uint64_t h = 14695981039346656037ull;
	for (const char *p = salt; *p; p++) {
		h ^= (uint8_t)*p;
		h *= 1099511628211ull;
	}
	for (int i = 0; i < 16; i++) {
		h ^= tid[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* OTel mode: FNV-1a(salt || trace id) <= floor((2^64-1) * p). */
static void test_probabilistic_otel(void **state)
{
	(void)state;
	struct eng g;
	struct built b;
	struct kn_tail_verdict v;
	struct ttrace tr = PLAIN;
	int kept = 0;
	uint64_t thr = (uint64_t)(18446744073709551615.0L * 0.25L);
	eng_open(&g, "policies: [{name: p, type: probabilistic, probabilistic: {sampling_percentage: 25, hash_salt: s1}}]", 0, 1, NULL);
	for (int i = 0; i < 400; i++) {
		for (int j = 0; j < 16; j++)
			tr.tid[j] = (uint8_t)(i * 31 + j * 7 + (i >> 3));
		build(&tr, &b);
		kn_tail_decide(g.s, &b.t, 1, &v);
		assert_int_equal(v.sampled, fnv("s1", tr.tid) <= thr);
		assert_int_equal(v.has_threshold, 0);
		kept += v.sampled;
		free(b.buf);
	}
	assert_in_range(kept, 50, 150);
	eng_close(&g);

	/* default salt */
	eng_open(&g, "policies: [{name: p, type: probabilistic, probabilistic: {sampling_percentage: 50}}]", 0, 1, NULL);
	for (int i = 0; i < 50; i++) {
		for (int j = 0; j < 16; j++)
			tr.tid[j] = (uint8_t)(i + j * 13);
		build(&tr, &b);
		kn_tail_decide(g.s, &b.t, 1, &v);
		assert_int_equal(v.sampled, fnv("default-hash-seed", tr.tid) <= (uint64_t)(18446744073709551615.0L * 0.5L));
		free(b.buf);
	}
	eng_close(&g);
}

/* Consistent mode: R = low 56 bits of the trace id (or rv), keep iff R >= max(T, Tin). */
static void test_probabilistic_consistent(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		uint64_t r;          /* low 56 bits of the trace id */
		uint32_t flags;
		const char *ts;
		int sampled;
		uint64_t th;
	} cases[] = {
		/* 25%: T = 0.75 * 2^56 = 0xc0000000000000 */
		{ "random flag, R above T", 0xc0000000000000ull, 0x03, NULL, 1, 0xc0000000000000ull },
		{ "random flag, R just below T", 0xbfffffffffffffull, 0x02, NULL, 0, 0 },
		{ "th present only", 0xd0000000000000ull, 0x01, "ot=th:4", 1, 0xc0000000000000ull },
		{ "incoming threshold higher wins", 0xd0000000000000ull, 0x02, "ot=th:e", 0, 0 },
		{ "incoming threshold higher, R above", 0xe8000000000000ull, 0x02, "ot=th:e", 1, 0xe0000000000000ull },
		{ "rv overrides trace id", 0x00000000000001ull, 0, "ot=rv:f0000000000000;th:0", 1, 0xc0000000000000ull },
		{ "rv low", 0xffffffffffffffull, 0, "x=1,ot=rv:10000000000000", 0, 0 },
	};
	struct eng g;
	eng_open(&g, "policies: [{name: p, type: probabilistic, probabilistic: {sampling_percentage: 25}}]", 0, 1, NULL);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct ttrace tr = { .nspans = 1, .s = { { .flags = cases[i].flags, .ts = cases[i].ts } } };
		struct built b;
		struct kn_tail_verdict v;
		for (int j = 0; j < 9; j++)
			tr.tid[j] = 0x5a;
		for (int j = 0; j < 7; j++)
			tr.tid[9 + j] = (uint8_t)(cases[i].r >> (8 * (6 - j)));
		build(&tr, &b);
		kn_tail_decide(g.s, &b.t, 1, &v);
		if (v.sampled != cases[i].sampled)
			fail_msg("%s: sampled %d", cases[i].name, v.sampled);
		assert_int_equal(v.has_threshold, cases[i].sampled);
		if (cases[i].sampled)
			assert_int_equal(v.threshold, cases[i].th);
		free(b.buf);
	}
	eng_close(&g);

	/* a trace kept by another policy first carries no threshold */
	struct ttrace tr = { .nspans = 1, .s = { { .flags = 0x02, .status = 2 } } };
	memset(tr.tid, 0xff, 16);
	struct built b;
	struct kn_tail_verdict v;
	eng_open(&g, "policies: [{name: e, type: status_code, status_code: {status_codes: [ERROR]}}, {name: p, type: probabilistic, probabilistic: {sampling_percentage: 25}}]", 0, 1, NULL);
	build(&tr, &b);
	kn_tail_decide(g.s, &b.t, 1, &v);
	assert_int_equal(v.sampled, 1);
	assert_string_equal(v.policy, "e");
	assert_int_equal(v.has_threshold, 0);
	eng_close(&g);
	/* ... and inside `and` the threshold is passed up */
	eng_open(&g, "policies: [{name: a, type: and, and: {and_sub_policy: [{name: e, type: status_code, status_code: {status_codes: [ERROR]}}, {name: p, type: probabilistic, probabilistic: {sampling_percentage: 25}}]}}]", 0, 1, NULL);
	kn_tail_decide(g.s, &b.t, 1, &v);
	assert_int_equal(v.sampled, 1);
	assert_int_equal(v.has_threshold, 1);
	assert_int_equal(v.threshold, 0xc0000000000000ull);
	eng_close(&g);
	free(b.buf);
}

static void test_tracestate_set_th(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		uint64_t th;
		const char *out;
	} cases[] = {
		{ "", 0xc0000000000000ull, "ot=th:c" },
		{ "", 0, "ot=th:0" },
		{ "", 0x00000000000001ull, "ot=th:00000000000001" },
		{ "", 0xe6666666666666ull, "ot=th:e6666666666666" },
		{ "a=1,b=2", 0x80000000000000ull, "ot=th:8,a=1,b=2" },
		{ "a=1, ot=th:4;rv:abcdefabcdef12 ,b=2", 0xc0000000000000ull, "ot=th:c;rv:abcdefabcdef12,a=1,b=2" },
		{ "ot=p:8;th:1;x:y", 0x10000000000000ull, "ot=th:1;p:8;x:y" },
		{ " , a=1 ,, ", 0x12300000000000ull, "ot=th:123,a=1" },
	};
	char out[600];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = kn_tracestate_set_th(cases[i].in, strlen(cases[i].in), cases[i].th, out, sizeof out);
		assert_int_equal(n, strlen(cases[i].out));
		out[n] = '\0';
		assert_string_equal(out, cases[i].out);
	}
	/* does not fit */
	assert_int_equal(kn_tracestate_set_th("a=1", 3, 0, out, 8), 0);
	/* 32 members at most: the last one is dropped to make room for ot */
	char big[400];
	size_t bl = 0;
	for (int i = 0; i < 32; i++)
		bl += (size_t)snprintf(big + bl, sizeof big - bl, "%sk%d=v", i ? "," : "", i);
	size_t n = kn_tracestate_set_th(big, bl, 0, out, sizeof out);
	out[n] = '\0';
	assert_non_null(strstr(out, "k30=v"));
	assert_null(strstr(out, "k31=v"));
}

static void test_metrics(void **state)
{
	(void)state;
	struct kn_metrics *m = kn_metrics_create();
	struct eng g;
	struct built b;
	struct kn_tail_verdict v;
	struct ttrace tr = PLAIN;
	char *text = NULL;
	size_t len = 0;
	assert_non_null(m);
	eng_open(&g, "policies: [{name: a, type: always_sample}, {name: \"n\\\"q\", type: span_count, span_count: {min_spans: 5}}]", 0, 1, m);
	build(&tr, &b);
	kn_tail_decide(g.s, &b.t, 1, &v);
	kn_tail_decide(g.s, &b.t, 1, &v);
	assert_int_equal(kn_metrics_render(m, &text, &len), 0);
	assert_non_null(strstr(text, "kansatsu_tail_policy_decisions_total{processor=\"tail_sampling/test\",policy=\"a\",decision=\"sampled\"} 2"));
	assert_non_null(strstr(text, "kansatsu_tail_policy_spans_total{processor=\"tail_sampling/test\",policy=\"a\",decision=\"sampled\"} 4"));
	assert_non_null(strstr(text, "policy=\"n\\\"q\",decision=\"not_sampled\"} 2"));
	free(text);
	/* a second engine on the same registry shares the counters (same labels) */
	eng_close(&g);
	free(b.buf);
	kn_metrics_destroy(m);
}

/* Malformed bytes never crash the walker and never read outside the buffer. */
static void test_view_malformed(void **state)
{
	(void)state;
	struct ttrace tr = { .nspans = 2, .s = { { .status = 2, .a = { S("k", "v") } }, { .ts = "ot=th:8" } } };
	struct built b;
	struct eng g;
	struct kn_tail_verdict v;
	build(&tr, &b);
	eng_open(&g, "policies: [{name: s, type: string_attribute, string_attribute: {key: k, values: [v]}}, {name: p, type: probabilistic, probabilistic: {sampling_percentage: 50}}, {name: l, type: latency, latency: {threshold_ms: 1}}]", 0, 1, NULL);
	for (size_t cut = 0; cut <= b.t.len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		memcpy(copy, b.buf, cut);
		struct kn_tail_trace t = b.t;
		t.data = copy;
		t.len = t.bytes = cut;
		kn_tail_decide(g.s, &t, 1, &v);
		free(copy);
	}
	eng_close(&g);
	free(b.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_table),
		cmocka_unit_test(test_view_walk),
		cmocka_unit_test(test_rate_limiting),
		cmocka_unit_test(test_composite),
		cmocka_unit_test(test_probabilistic_otel),
		cmocka_unit_test(test_probabilistic_consistent),
		cmocka_unit_test(test_tracestate_set_th),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_view_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
