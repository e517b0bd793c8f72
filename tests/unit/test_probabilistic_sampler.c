/* SPDX-License-Identifier: Apache-2.0
 * The probabilistic_sampler processor: OpenTelemetry's published test
 * vectors (opentelemetry-collector-contrib processor/probabilisticsampler
 * tracesprocessor_test.go: TestEmptyHashFunction,
 * Test_tracesamplerprocessor_TraceState, _TraceStateErrors,
 * _HashSeedTraceState, _SpanSamplingPriority, _MissingRandomness), the
 * hash_seed decision against the original "bucket < pct * 163.84" rule,
 * the kept share over 100,000 seeded-random traces, the chunk rewrite
 * (dropped spans gone, kept spans' bytes + trace_state, chunks kept
 * unchanged passed by reference) and config errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_budget.h"
#include "collector/core/kn_metrics.h"
#include "collector/core/kn_tracestate.h"
#include "collector/wire/kn_wire.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "processors/probabilistic_sampler/kn_probabilistic_sampler.h"

#define DEFAULT_SEED 4312 /* OTel's tests' defaultHashSeed */

static void hex16(const char *h, uint8_t out[16])
{
	for (int i = 0; i < 16; i++) {
		unsigned v;
		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static void sampler(struct kn_psampler *s, const char *mode, float pct, int prec, int fail_closed,
		    uint32_t seed)
{
	struct kn_psampler_cfg c = {.sampling_percentage = pct, .hash_seed = seed, .mode = (char *)mode,
				    .fail_closed = fail_closed, .sampling_precision = prec};
	kn_psampler_init(s, &c);
}

/* TestEmptyHashFunction */
static void test_hash_vectors(void **state)
{
	(void)state;
	uint8_t zero[16] = {0};
	assert_int_equal(kn_psampler_hash(NULL, 0, 0) & 0x3fff, 0x3515);
	assert_int_equal(kn_psampler_hash(zero, 16, 0) & 0x3fff, 0x2455);
}

struct ts_case {
	const char *name, *tid;
	float pct;
	int prec, fail_closed, prio;
	const char *ts;
	int eq_sampled;
	const char *eq_ts;
	int prop_sampled;
	const char *prop_ts;
};

#define TID_DEFAULT "fefefefefefefefefe80000000000000"
#define TID_IMPROBABLE "111111111111111111ffffffffffffff"

/* Test_tracesamplerprocessor_TraceState (precision 0 = full, as the
 * vectors' Config leaves it; fail_closed false unless set). */
static const struct ts_case ts_cases[] = {
	{"100 percent", NULL, 100, 0, 0, 0, "", 1, "ot=th:0", 1, "ot=th:0"},
	{"50 percent sampled", NULL, 50, 0, 0, 0, "", 1, "ot=th:8", 1, "ot=th:8"},
	{"25 percent sampled", "ddddddddddddddddddc0000000000000", 25, 0, 0, 0, "", 1, "ot=th:c", 1,
	 "ot=th:c"},
	{"25 percent unsampled", "ddddddddddddddddddb0000000000000", 25, 0, 0, 0, "", 0, NULL, 0, NULL},
	{"1 percent sampled", NULL, 1, 0, 0, 0, "ot=rv:FD70A3D70A3D71", 1,
	 "ot=rv:FD70A3D70A3D71;th:fd70a3d70a3d71", 1, "ot=rv:FD70A3D70A3D71;th:fd70a3d70a3d71"},
	{"1 percent sampled with rvalue and precision 4", NULL, 1, 4, 0, 0, "ot=rv:FD70A3D70A3D71", 1,
	 "ot=rv:FD70A3D70A3D71;th:fd70a", 1, "ot=rv:FD70A3D70A3D71;th:fd70a"},
	{"1 percent sampled with rvalue and precision 3", NULL, 1, 3, 0, 0, "ot=rv:FD70A3D70A3D71", 0,
	 NULL, 0, NULL},
	{"1 percent not sampled with rvalue", NULL, 1, 0, 0, 0, "ot=rv:FD70A3D70A3D70", 0, NULL, 0, NULL},
	{"49 percent not sampled with default tid", NULL, 49, 0, 0, 0, "", 0, NULL, 0, NULL},
	{"1 percent sampled with rvalue", NULL, 1, 0, 0, 0, "ot=rv:fd70B000000000", 1,
	 "ot=rv:fd70B000000000;th:fd70a3d70a3d71", 1, "ot=rv:fd70B000000000;th:fd70a3d70a3d71"},
	{"1 percent sampled with tid", "a0a0a0a0a0a0a0a0a0fe000000000000", 1, 4, 0, 0, "", 1,
	 "ot=th:fd70a", 1, "ot=th:fd70a"},
	{"sampled by priority", NULL, 1, 0, 0, KN_PS_MUST, "", 1, "ot=th:0", 1, "ot=th:0"},
	{"not sampled by priority", NULL, 99, 0, 0, KN_PS_MUST_NOT, "", 0, NULL, 0, NULL},
	{"incoming 50 percent with rvalue", NULL, 50, 0, 0, 0, "ot=rv:90000000000000;th:80000000000000",
	 1, "ot=rv:90000000000000;th:8", 0, NULL},
	{"incoming 50 percent at 25 percent not sampled", NULL, 25, 0, 0, 0, "ot=th:8", 0, NULL, 0, NULL},
	{"incoming 50 percent at 25 percent sampled", "ffffffffffffffffffffffffffffffff", 25, 0, 0, 0,
	 "ot=th:8", 1, "ot=th:c", 1, "ot=th:e"},
	{"equalizing vs proportional", NULL, 50, 0, 0, 0, "ot=rv:c0000000000000;th:8", 1,
	 "ot=rv:c0000000000000;th:8", 1, "ot=rv:c0000000000000;th:c"},
	{"inconsistent arriving threshold", NULL, 100, 0, 0, 0, "ot=rv:40000000000000;th:8", 1,
	 "ot=rv:40000000000000;th:0", 1, "ot=rv:40000000000000;th:0"},
	{"inconsistent arriving threshold not sampled", NULL, 1, 0, 1, 0, "ot=rv:40000000000000;th:8", 0,
	 NULL, 0, NULL},
	{"40 percent precision 3 with rvalue", NULL, 40, 3, 0, 0, "ot=rv:a0000000000000", 1,
	 "ot=rv:a0000000000000;th:99a", 1, "ot=rv:a0000000000000;th:99a"},
	{"arriving 50 percent sampled at 40 percent precision 6 with tid",
	 "a0a0a0a0a0a0a0a0a0d0000000000000", 40, 6, 0, 0, "ot=th:8", 1, "ot=th:99999a", 1,
	 "ot=th:cccccd"},
	{"arriving 50 percent sampled at 40 percent partly sampled", "a0a0a0a0a0a0a0a0a0b0000000000000",
	 40, 3, 0, 0, "ot=th:8", 1, "ot=th:99a", 0, NULL},
	{"arriving 50 percent sampled at 40 percent not sampled", "a0a0a0a0a0a0a0a0a080000000000000", 40,
	 3, 0, 0, "ot=th:8", 0, NULL, 0, NULL},
	{"200 percent equals 100 percent", NULL, 200, 0, 0, 0, "", 1, "ot=th:0", 1, "ot=th:0"},
	{"tiny probability rounding", TID_IMPROBABLE, 100 * 0x1p-14f, 0, 0, 0, "ot=th:fffc", 1,
	 "ot=th:fffc", 1, "ot=th:fffffff"},
	{"almost 100pct sampling", TID_IMPROBABLE, (float)((1 - 8e-7) * 100), 10, 0, 0, "", 1,
	 "ot=th:00000cccccccd", 1, "ot=th:00000cccccccd"},
	{"probability underflow", TID_IMPROBABLE, 0x1p-4f, 0, 0, 0, "ot=th:fffffffffffff8", 1,
	 "ot=th:fffffffffffff8", 0, NULL},
};

static void test_tracestate_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof ts_cases / sizeof ts_cases[0]; i++) {
		const struct ts_case *c = &ts_cases[i];
		for (int m = 0; m < 2; m++) {
			struct kn_psampler s;
			struct kn_psampler_result r;
			uint8_t tid[16];
			char out[512];
			sampler(&s, m ? "proportional" : "equalizing", c->pct, c->prec, c->fail_closed,
				DEFAULT_SEED);
			hex16(c->tid ? c->tid : TID_DEFAULT, tid);
			kn_psampler_decide(&s, tid, c->ts, strlen(c->ts), c->prio, out, sizeof out, &r);
			int want = m ? c->prop_sampled : c->eq_sampled;
			const char *wts = m ? c->prop_ts : c->eq_ts;
			if (r.sampled != want)
				fail_msg("%s (%s): sampled %d, want %d", c->name, m ? "proportional" : "equalizing",
					 r.sampled, want);
			if (!want)
				continue;
			/* ts_len 0 means the span keeps its tracestate */
			const char *got = r.ts_len ? out : c->ts;
			size_t gl = r.ts_len ? r.ts_len : strlen(c->ts);
			if (gl != strlen(wts) || memcmp(got, wts, gl) != 0)
				fail_msg("%s (%s): tracestate %.*s, want %s", c->name,
					 m ? "proportional" : "equalizing", (int)gl, got, wts);
		}
	}
}

/* Test_tracesamplerprocessor_TraceStateErrors: fail_closed drops them. */
static void test_tracestate_errors(void **state)
{
	(void)state;
	static const struct {
		const char *tid, *ts;
	} cases[] = {
		{"00000000000000000000000000000000", ""},             /* missing randomness */
		{TID_DEFAULT, "ot=rv:abababababababab"},                /* r-value: 16 digits */
		{TID_DEFAULT, "ot=th:abababababababab"},                /* t-value: 16 digits */
		{TID_DEFAULT, "ot=th:-1"},                              /* t-value syntax */
		{"ffffffffffffffffff70000000000000", "ot=th:8"},      /* inconsistent (trace id) */
		{TID_DEFAULT, "ot=th:8;rv:70000000000000"},             /* inconsistent (rv) */
		{TID_DEFAULT, "Bad=1"},                                 /* W3C syntax */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		for (int m = 0; m < 2; m++) {
			struct kn_psampler s;
			struct kn_psampler_result r;
			uint8_t tid[16];
			char out[256];
			sampler(&s, m ? "proportional" : "equalizing", 100, 4, 1, 0);
			hex16(cases[i].tid, tid);
			kn_psampler_decide(&s, tid, cases[i].ts, strlen(cases[i].ts), KN_PS_DEFER, out,
					   sizeof out, &r);
			if (r.sampled || !r.error)
				fail_msg("case %zu mode %d: sampled %d error %d", i, m, r.sampled, r.error);
		}
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void random_tid(uint8_t tid[16])
{
	uint64_t a = rng(), b = rng();
	memcpy(tid, &a, 8);
	memcpy(tid + 8, &b, 8);
}

/* Test_tracesamplerprocessor_HashSeedTraceState: kept spans carry th = the
 * 14-bit rejection threshold and an rv that passes it. */
static void test_hash_seed_tracestate(void **state)
{
	(void)state;
	static const struct {
		float pct;
		const char *tv;
	} cases[] = {{100, "0"}, {75, "4"}, {50, "8"}, {25, "c"}, {10, "e668"}, {100.0f / 3, "aaac"}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kn_psampler s;
		sampler(&s, "hash_seed", cases[i].pct, 4, 1, DEFAULT_SEED);
		int found = 0;
		for (int tries = 0; found < 10 && tries < 100000; tries++) {
			uint8_t tid[16];
			char out[256];
			struct kn_psampler_result r;
			random_tid(tid);
			kn_psampler_decide(&s, tid, "", 0, KN_PS_DEFER, out, sizeof out, &r);
			if (!r.sampled)
				continue;
			assert_true(r.ts_len > 0);
			const char *ot;
			size_t otl;
			struct kn_ot_value v;
			const char *why;
			assert_int_equal(kn_tracestate_get(out, r.ts_len, "ot", 2, &ot, &otl), 1);
			assert_int_equal(kn_tracestate_ot_check(ot, otl, &v, &why), 0);
			assert_true(v.has_th && v.has_rv);
			char th[15];
			kn_tracestate_th_format(v.th, th);
			assert_string_equal(th, cases[i].tv);
			assert_true(v.th <= v.rv);
			assert_memory_equal(ot, "rv:", 3); /* OTel's order: rv, then th */
			found++;
		}
		assert_int_equal(found, 10);
	}
}

/* hash_seed mode decides as the original processor did: hash & 0x3fff <
 * uint32(pct * 163.84) in float32, for any seed. */
static void test_hash_seed_original_rule(void **state)
{
	(void)state;
	static const float pcts[] = {0.03f, 1, 15.3f, 33.333f, 50, 99.9f};
	static const uint32_t seeds[] = {0, 22, DEFAULT_SEED, 0xffffffffu};
	for (size_t p = 0; p < sizeof pcts / sizeof pcts[0]; p++)
		for (size_t q = 0; q < sizeof seeds / sizeof seeds[0]; q++) {
			struct kn_psampler s;
			sampler(&s, NULL, pcts[p], 4, 1, seeds[q]); /* unset mode = hash_seed */
			uint32_t scaled = (uint32_t)(float)(pcts[p] * 163.84f);
			for (int i = 0; i < 20000; i++) {
				uint8_t tid[16];
				char out[256];
				struct kn_psampler_result r;
				random_tid(tid);
				kn_psampler_decide(&s, tid, "", 0, KN_PS_DEFER, out, sizeof out, &r);
				int want = (kn_psampler_hash(tid, 16, seeds[q]) & 0x3fff) < scaled;
				if (r.sampled != want)
					fail_msg("pct %g seed %u: sampled %d want %d", pcts[p], seeds[q],
						 r.sampled, want);
			}
		}
}

/* The kept share of 100,000 random traces is within 1 point of the percentage. */
static void test_share_100k(void **state)
{
	(void)state;
	static const char *const modes[] = {"hash_seed", "proportional", "equalizing"};
	static const float pcts[] = {1, 10, 25, 50, 90};
	for (size_t m = 0; m < 3; m++)
		for (size_t p = 0; p < sizeof pcts / sizeof pcts[0]; p++) {
			struct kn_psampler s;
			sampler(&s, modes[m], pcts[p], 4, 1, 7);
			uint32_t kept = 0;
			for (int i = 0; i < 100000; i++) {
				uint8_t tid[16];
				char out[256];
				struct kn_psampler_result r;
				random_tid(tid);
				kn_psampler_decide(&s, tid, "", 0, KN_PS_DEFER, out, sizeof out, &r);
				kept += (uint32_t)r.sampled;
			}
			double share = kept / 1000.0; /* percent */
			if (share < pcts[p] - 1 || share > pcts[p] + 1)
				fail_msg("%s %g%%: kept %.3f%%", modes[m], pcts[p], share);
		}
}

/* Test_tracessamplerprocessor_MissingRandomness (all-zero trace id). */
static void test_missing_randomness(void **state)
{
	(void)state;
	static const struct {
		float pct;
		int fail_closed, sampled;
	} cases[] = {{0, 1, 0}, {62, 1, 0}, {100, 1, 0}, {0, 0, 0}, {62, 0, 1}, {100, 0, 1}};
	uint8_t tid[16] = {0};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kn_psampler s;
		struct kn_psampler_result r;
		char out[256];
		sampler(&s, NULL, cases[i].pct, 4, cases[i].fail_closed, DEFAULT_SEED);
		kn_psampler_decide(&s, tid, "", 0, KN_PS_DEFER, out, sizeof out, &r);
		assert_int_equal(r.sampled, cases[i].sampled);
	}
}

static void test_prob_threshold(void **state)
{
	(void)state;
	uint64_t th;
	assert_int_equal(kn_psampler_prob_threshold(0.5, 4, &th), 0);
	assert_true(th == 0x80000000000000ull);
	assert_int_equal(kn_psampler_prob_threshold(1, 4, &th), 0);
	assert_true(th == 0);
	assert_int_equal(kn_psampler_prob_threshold(0x1p-57, 4, &th), -1);
	assert_int_equal(kn_psampler_prob_threshold(1.5, 4, &th), -1);
}

/* ---- the processor on real chunks ---- */

typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

struct spec {
	const char *tid;
	const char *ts;   /* NULL: none */
	int prio_kind;    /* 0 none, 1 int, 2 double, 3 string */
	int64_t prio_i;
	double prio_d;
	const char *prio_s;
};

/* One ResourceSpans, one ScopeSpans per span (so dropping removes groups). */
static struct kn_chunk *make_chunk(const struct spec *sp, size_t n)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
		OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
	Opentelemetry__Proto__Trace__V1__ScopeSpans ss[16], *ssp[16];
	Span spans[16], *spp[16];
	KeyValue kv[16], *kvp[16];
	AnyValue av[16];
	uint8_t tids[16][16], sid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++) {
		opentelemetry__proto__trace__v1__scope_spans__init(&ss[i]);
		opentelemetry__proto__trace__v1__span__init(&spans[i]);
		hex16(sp[i].tid, tids[i]);
		spans[i].trace_id = (ProtobufCBinaryData){16, tids[i]};
		spans[i].span_id = (ProtobufCBinaryData){8, sid};
		spans[i].name = "op";
		spans[i].start_time_unix_nano = 1000;
		spans[i].end_time_unix_nano = 2000;
		if (sp[i].ts)
			spans[i].trace_state = (char *)sp[i].ts;
		if (sp[i].prio_kind) {
			opentelemetry__proto__common__v1__key_value__init(&kv[i]);
			opentelemetry__proto__common__v1__any_value__init(&av[i]);
			kv[i].key = "sampling.priority";
			kv[i].value = &av[i];
			if (sp[i].prio_kind == 1) {
				av[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
				av[i].int_value = sp[i].prio_i;
			} else if (sp[i].prio_kind == 2) {
				av[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
				av[i].double_value = sp[i].prio_d;
			} else {
				av[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
				av[i].string_value = (char *)sp[i].prio_s;
			}
			kvp[i] = &kv[i];
			spans[i].n_attributes = 1;
			spans[i].attributes = &kvp[i];
		}
		spp[i] = &spans[i];
		ss[i].n_spans = 1;
		ss[i].spans = &spp[i];
		ssp[i] = &ss[i];
	}
	rs.n_scope_spans = n;
	rs.scope_spans = ssp;
	req.n_resource_spans = 1;
	req.resource_spans = &rsp;
	size_t len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	uint8_t *buf = malloc(len);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
	struct kn_wire_index ix;
	struct kn_err err;
	struct kn_chunk *out[1] = {NULL};
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
	assert_int_equal(kn_wire_split(&ix, buf, 1, out, &err), KN_OK);
	kn_wire_index_free(&ix);
	free(buf);
	return out[0];
}

struct sink {
	struct kn_batch *got;
};

static int collect(void *ctx, struct kn_batch *b)
{
	struct sink *s = ctx;
	assert_null(s->got);
	s->got = b;
	return KN_OK;
}

struct proc {
	struct kn_metrics *m;
	void *inst, *state;
	struct sink sink;
	struct kn_emit next;
};

static void proc_open(struct proc *p, const char *yaml)
{
	struct kn_cnode *root = NULL;
	struct kn_err err = {{0}};
	struct kn_psampler_cfg cfg;
	memset(&cfg, 0, sizeof cfg);
	memset(p, 0, sizeof *p);
	assert_int_equal(kn_config_parse(yaml, strlen(yaml), "<test>", &root, &err), KN_OK);
	assert_int_equal(kn_cfg_apply(kn_processor_probabilistic_sampler.config_fields, root, &cfg, &err),
			 KN_OK);
	assert_int_equal(kn_processor_probabilistic_sampler.validate(&cfg, "p", &err), KN_OK);
	p->m = kn_metrics_create();
	struct kn_component_ctx ctx = {.id = "probabilistic_sampler", .metrics = p->m, .nshards = 1};
	assert_int_equal(kn_processor_probabilistic_sampler.create(&ctx, &cfg, &p->inst, &err), KN_OK);
	assert_int_equal(kn_processor_probabilistic_sampler.shard_create(p->inst, 0, &p->state, &err),
			 KN_OK);
	kn_cfg_free(kn_processor_probabilistic_sampler.config_fields, &cfg);
	kn_cnode_free(root);
	p->next = (struct kn_emit){collect, &p->sink};
}

static void proc_close(struct proc *p)
{
	kn_batch_free(p->sink.got);
	kn_processor_probabilistic_sampler.shard_destroy(p->state);
	kn_processor_probabilistic_sampler.destroy(p->inst);
	kn_metrics_destroy(p->m);
}

static Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *
unpack(const struct kn_chunk *c)
{
	return opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
		NULL, c->len, c->data);
}

/* Spans kept unchanged: the same chunk goes on, byte for byte. */
static void test_chunk_by_reference(void **state)
{
	(void)state;
	struct proc p;
	proc_open(&p, "{sampling_percentage: 100, mode: equalizing}");
	const struct spec sp[] = {{TID_DEFAULT, "ot=th:0", 0, 0, 0, NULL},
				  {"0102030405060708090a0b0c0d0e0f10", "x=1,ot=th:0", 0, 0, 0, NULL}};
	/* "x=1,ot=th:0" is rewritten (ot moves first): only the first stays as is */
	struct kn_chunk *c = make_chunk(sp, 1);
	struct kn_batch *b = kn_batch_new(1);
	kn_batch_add(&b, c);
	assert_int_equal(kn_processor_probabilistic_sampler.process(p.state, b, &p.next), KN_OK);
	assert_non_null(p.sink.got);
	assert_ptr_equal(p.sink.got->chunks[0], c);
	kn_batch_free(p.sink.got);
	p.sink.got = NULL;
	c = make_chunk(sp, 2);
	b = kn_batch_new(1);
	kn_batch_add(&b, c);
	assert_int_equal(kn_processor_probabilistic_sampler.process(p.state, b, &p.next), KN_OK);
	assert_true(p.sink.got->chunks[0] != c);
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
		unpack(p.sink.got->chunks[0]);
	assert_non_null(r);
	assert_int_equal(r->resource_spans[0]->n_scope_spans, 2);
	assert_string_equal(r->resource_spans[0]->scope_spans[0]->spans[0]->trace_state, "ot=th:0");
	assert_string_equal(r->resource_spans[0]->scope_spans[1]->spans[0]->trace_state, "ot=th:0,x=1");
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
	proc_close(&p);
}

/* Dropped spans leave with their ScopeSpans; kept ones gain ot=rv/th;
 * sampling.priority (int, double, string) overrides. */
static void test_chunk_filter(void **state)
{
	(void)state;
	struct proc p;
	proc_open(&p, "{sampling_percentage: 50, hash_seed: 4312}");
	struct spec sp[12];
	struct kn_psampler s;
	sampler(&s, "hash_seed", 50, 4, 1, DEFAULT_SEED);
	int want[12], nwant = 0;
	char tids[12][33];
	for (int i = 0; i < 12; i++) {
		uint8_t tid[16];
		random_tid(tid);
		for (int k = 0; k < 16; k++)
			snprintf(tids[i] + 2 * k, 3, "%02x", tid[k]);
		sp[i] = (struct spec){tids[i], NULL, 0, 0, 0, NULL};
		char out[256];
		struct kn_psampler_result r;
		kn_psampler_decide(&s, tid, "", 0, KN_PS_DEFER, out, sizeof out, &r);
		want[i] = r.sampled;
	}
	/* priorities: must (int 2, double 1, "1"), must not (int 0, double 0, "0.0") */
	sp[0].prio_kind = 1, sp[0].prio_i = 2, want[0] = 1;
	sp[1].prio_kind = 2, sp[1].prio_d = 1, want[1] = 1;
	sp[2].prio_kind = 3, sp[2].prio_s = "1", want[2] = 1;
	sp[3].prio_kind = 1, sp[3].prio_i = 0, want[3] = 0;
	sp[4].prio_kind = 2, sp[4].prio_d = 0, want[4] = 0;
	sp[5].prio_kind = 3, sp[5].prio_s = "0.0", want[5] = 0;
	sp[6].prio_kind = 3, sp[6].prio_s = "NaN"; /* deferred */
	for (int i = 0; i < 12; i++)
		nwant += want[i];
	struct kn_chunk *c = make_chunk(sp, 12);
	struct kn_batch *b = kn_batch_new(1);
	kn_batch_add(&b, c);
	assert_int_equal(kn_processor_probabilistic_sampler.process(p.state, b, &p.next), KN_OK);
	assert_non_null(p.sink.got);
	assert_int_equal(p.sink.got->nspans, nwant);
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
		unpack(p.sink.got->chunks[0]);
	assert_non_null(r);
	assert_int_equal(r->n_resource_spans, 1);
	assert_int_equal(r->resource_spans[0]->n_scope_spans, nwant);
	size_t k = 0;
	for (int i = 0; i < 12; i++) {
		if (!want[i])
			continue;
		Span *x = r->resource_spans[0]->scope_spans[k++]->spans[0];
		char h[33];
		for (int j = 0; j < 16; j++)
			snprintf(h + 2 * j, 3, "%02x", x->trace_id.data[j]);
		assert_string_equal(h, tids[i]);
		assert_memory_equal(x->trace_state, "ot=rv:", 6);
		assert_non_null(strstr(x->trace_state, i < 3 ? ";th:0" : ";th:8"));
	}
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
	proc_close(&p);
}

/* Nothing kept: the batch is dropped, nothing emitted. */
static void test_chunk_all_dropped(void **state)
{
	(void)state;
	struct proc p;
	proc_open(&p, "{sampling_percentage: 0}");
	const struct spec sp[] = {{TID_DEFAULT, NULL, 0, 0, 0, NULL}};
	struct kn_batch *b = kn_batch_new(1);
	kn_batch_add(&b, make_chunk(sp, 1));
	assert_int_equal(kn_processor_probabilistic_sampler.process(p.state, b, &p.next), KN_DROP);
	assert_null(p.sink.got);
	proc_close(&p);
}

static void test_config_errors(void **state)
{
	(void)state;
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		{"{sampling_percentage: -1}", "p.sampling_percentage: sampling rate is negative"},
		{"{sampling_percentage: .nan}", "sampling_percentage"},
		{"{sampling_percentage: 1e-20}", "p.sampling_percentage: sampling rate is too small"},
		{"{sampling_percentage: 10, sampling_precision: 0}", "sampling_precision"},
		{"{sampling_percentage: 10, sampling_precision: 15}", "sampling_precision"},
		{"{sampling_percentage: 10, mode: other}", "mode"},
		{"{sampling_percentage: 10, hash_seed: 4294967296}", "hash_seed"},
		{"{sampling_percentage: 10, attribute_source: record}", "p.attribute_source: \"record\" applies to logs only"},
		{"{sampling_percentage: 10, attribute_source: span}", "attribute_source"},
		{"{sampling_percentage: 10, from_attribute: id}", "p.from_attribute: applies to logs only"},
		{"{sampling_percentage: 10, sampling_priority: prio}", "p.sampling_priority: applies to logs only"},
		{"{sampling_percentage: 10, sampler_mode: x}", "sampler_mode"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kn_cnode *root = NULL;
		struct kn_err err = {{0}};
		struct kn_psampler_cfg cfg;
		memset(&cfg, 0, sizeof cfg);
		assert_int_equal(kn_config_parse(cases[i].yaml, strlen(cases[i].yaml), "p", &root, &err),
				 KN_OK);
		int rc = kn_cfg_apply(kn_processor_probabilistic_sampler.config_fields, root, &cfg, &err);
		if (rc == KN_OK)
			rc = kn_processor_probabilistic_sampler.validate(&cfg, "p", &err);
		if (rc == KN_OK || !strstr(err.msg, cases[i].want))
			fail_msg("%s: rc %d, message \"%s\", want \"%s\"", cases[i].yaml, rc, err.msg,
				 cases[i].want);
		kn_cfg_free(kn_processor_probabilistic_sampler.config_fields, &cfg);
		kn_cnode_free(root);
	}
}

/* The shared OTel-order writer keeps other members and sub-keys. */
static void test_set_ot(void **state)
{
	(void)state;
	char out[256];
	struct kn_ot_edit e = {.th = 1, .threshold = 0x80000000000000ull};
	size_t n = kn_tracestate_set_ot("a=1,ot=x:y;th:4;rv:90000000000000,b=2", 37, &e, out, sizeof out);
	assert_int_equal(n, strlen("ot=rv:90000000000000;th:8;x:y,a=1,b=2"));
	assert_string_equal(out, "ot=rv:90000000000000;th:8;x:y,a=1,b=2");
	struct kn_ot_edit clear = {.th = -1};
	n = kn_tracestate_set_ot("ot=th:8,a=1", 11, &clear, out, sizeof out);
	assert_string_equal(out, "a=1");
	assert_int_equal(kn_tracestate_set_ot("a=1", 3, &e, out, 8), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_vectors),
		cmocka_unit_test(test_tracestate_vectors),
		cmocka_unit_test(test_tracestate_errors),
		cmocka_unit_test(test_hash_seed_tracestate),
		cmocka_unit_test(test_hash_seed_original_rule),
		cmocka_unit_test(test_share_100k),
		cmocka_unit_test(test_missing_randomness),
		cmocka_unit_test(test_prob_threshold),
		cmocka_unit_test(test_chunk_by_reference),
		cmocka_unit_test(test_chunk_filter),
		cmocka_unit_test(test_chunk_all_dropped),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_set_ot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
