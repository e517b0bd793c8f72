/* SPDX-License-Identifier: Apache-2.0
 * The phased shutdown of the shard workers (kn_shard.c, flush_rounds in
 * kn_component.h).
 *
 * 1. The shard machinery alone, 4 shards, with two fake processor stages
 *    (the first flushes in 3 rounds, the second in one) and a fake exporter.
 *    The stages record, with atomics, what every shard has done; a round
 *    that starts before every shard drained its rings, before every shard
 *    ended the previous round, or a later stage that flushes before the
 *    earlier stage's rounds ended everywhere, is a violation. Every span fed
 *    must reach the exporter. Repeated, stopping a different shard first.
 * 2. A real runtime from YAML (otlp -> journey -> file exporter, 2 shards):
 *    producer traces on one shard, consumer traces linking to them on the
 *    other, wait_window and root_grace long so nothing is released before
 *    shutdown. After shutdown every consumer span in the file (OTLP/JSON)
 *    carries its own producer's head attribute and journey id, and
 *    kansatsu_journey_closed_without_head_total is 0. Repeated with either
 *    shard holding the producers and either shard stopped first.
 * Worker threads never call cmocka asserts; they record into atomics that
 * the test thread checks after joining them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_budget.h"
#include "collector/core/kn_ingest.h"
#include "collector/core/kn_metrics.h"
#include "collector/core/kn_runtime_impl.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Link Link;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;

/* ---- building requests ---- */

struct tspan {
	uint8_t trace[16];
	uint8_t span[8], parent[8];   /* parent all zero = root */
	int kind;
	const char *attr_key, *attr_val; /* one string attribute, or NULL */
	int has_link;
	uint8_t link_trace[16], link_span[8];
};

/* An ExportTraceServiceRequest with the spans in one ResourceSpans. */
static uint8_t *pack(const struct tspan *sp, size_t n, size_t *len)
{
	Req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	RS rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	SS ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
	Span *spans = calloc(n, sizeof *spans);
	Span **spp = calloc(n, sizeof *spp);
	KV *kv = calloc(n, sizeof *kv), **kvp = calloc(n, sizeof *kvp);
	AV *av = calloc(n, sizeof *av);
	Link *links = calloc(n, sizeof *links), **linkp = calloc(n, sizeof *linkp);
	assert_true(spans && spp && kv && kvp && av && links && linkp);
	static const uint8_t zero[8];
	for (size_t i = 0; i < n; i++) {
		const struct tspan *t = &sp[i];
		Span *s = &spans[i];
		opentelemetry__proto__trace__v1__span__init(s);
		s->trace_id = (ProtobufCBinaryData){16, (uint8_t *)t->trace};
		s->span_id = (ProtobufCBinaryData){8, (uint8_t *)t->span};
		if (memcmp(t->parent, zero, 8) != 0)
			s->parent_span_id = (ProtobufCBinaryData){8, (uint8_t *)t->parent};
		s->name = "op";
		s->kind = t->kind;
		s->start_time_unix_nano = 1700000000000000000ull + i;
		s->end_time_unix_nano = s->start_time_unix_nano + 1000;
		if (t->attr_key) {
			opentelemetry__proto__common__v1__key_value__init(&kv[i]);
			opentelemetry__proto__common__v1__any_value__init(&av[i]);
			av[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
			av[i].string_value = (char *)t->attr_val;
			kv[i].key = (char *)t->attr_key;
			kv[i].value = &av[i];
			kvp[i] = &kv[i];
			s->attributes = &kvp[i];
			s->n_attributes = 1;
		}
		if (t->has_link) {
			opentelemetry__proto__trace__v1__span__link__init(&links[i]);
			links[i].trace_id = (ProtobufCBinaryData){16, (uint8_t *)t->link_trace};
			links[i].span_id = (ProtobufCBinaryData){8, (uint8_t *)t->link_span};
			linkp[i] = &links[i];
			s->links = &linkp[i];
			s->n_links = 1;
		}
		spp[i] = s;
	}
	ss.spans = spp;
	ss.n_spans = n;
	SS *ssp = &ss;
	rs.scope_spans = &ssp;
	rs.n_scope_spans = 1;
	RS *rsp = &rs;
	req.resource_spans = &rsp;
	req.n_resource_spans = 1;
	*len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	uint8_t *buf = malloc(*len ? *len : 1);
	assert_non_null(buf);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
	free(spans);
	free(spp);
	free(kv);
	free(kvp);
	free(av);
	free(links);
	free(linkp);
	return buf;
}

/* A trace id that kn_shard_of puts on `shard` (of nshards), from *seq on. */
static void tid_on(uint8_t id[16], uint32_t shard, uint32_t nshards, uint32_t *seq)
{
	for (;; (*seq)++) {
		for (int i = 0; i < 16; i++)
			id[i] = (uint8_t)((((*seq) + 1) * 2654435761u) >> (8 * (i % 4))) ^ (uint8_t)(i * 37 + 5);
		if (kn_shard_of(id, nshards) == shard) {
			(*seq)++;
			return;
		}
	}
}

static void sid(uint8_t id[8], uint32_t n)
{
	memset(id, 0, 8);
	memcpy(id, &n, 4);
	id[7] = 0x55;
}

static void hex(const uint8_t *id, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

/* ======== 1. the shard machinery with fake stages ======== */

#define NSH 4
#define ROUNDS_A 3

struct probe {
	atomic_uint_fast64_t fed;          /* spans ingested (test thread) */
	atomic_uint_fast64_t seen_a;       /* spans stage A processed */
	atomic_uint_fast64_t exported;     /* spans the fake exporter got */
	atomic_uint done_a[ROUNDS_A];      /* shards that ended A's round r */
	atomic_uint started_a[ROUNDS_A];   /* shards that began A's round r */
	atomic_uint done_b;                /* shards that ran B's flush */
	atomic_uint flush_calls_a;         /* A's one-shot flush (must stay 0) */
	atomic_uint violations;
	atomic_uint b_after_a_rounds;      /* B flushes that saw all of A done */
};

/* Stage state: the batches it retains on its shard. */
struct fstate {
	struct probe *pr;
	struct kn_batch *held[64];
	uint32_t nheld;
	uint64_t emitted, got_from_a;      /* spans; stage B counts what A emitted into it */
	int is_b;
};

static void bad(struct probe *pr)
{
	atomic_fetch_add(&pr->violations, 1);
}

static int f_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err)
{
	(void)shard;
	(void)err;
	struct fstate *s = calloc(1, sizeof *s);
	if (!s)
		return KN_ERR;
	const struct fstate *proto = inst;
	s->pr = proto->pr;
	s->is_b = proto->is_b;
	*state = s;
	return KN_OK;
}

static void f_shard_destroy(void *state)
{
	struct fstate *s = state;
	for (uint32_t i = 0; i < s->nheld; i++)
		kn_batch_free(s->held[i]);
	free(s);
}

static int f_process(void *state, struct kn_batch *b, const struct kn_emit *next)
{
	struct fstate *s = state;
	(void)next;
	uint64_t n = b->nspans;
	if (s->is_b) {
		s->got_from_a += n;
		/* nothing reaches B through process before A's flush: A retains all */
		if (atomic_load(&s->pr->started_a[0]) == 0)
			bad(s->pr);
	} else {
		atomic_fetch_add(&s->pr->seen_a, n);
		/* nothing may be ingested into a stage that already flushes */
		if (atomic_load(&s->pr->started_a[0]) != 0)
			bad(s->pr);
	}
	if (s->nheld == 64) { /* full: pass it on (only B would; A's input is small) */
		bad(s->pr);
		kn_batch_free(b);
		return KN_DROP;
	}
	s->held[s->nheld++] = b;
	return KN_RETAINED;
}

static void emit_held(struct fstate *s, uint32_t upto, const struct kn_emit *next)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < s->nheld; i++) {
		if (i < upto) {
			s->emitted += s->held[i]->nspans;
			kn_emit(next, s->held[i]);
		} else {
			s->held[k++] = s->held[i];
		}
	}
	s->nheld = k;
}

static void a_flush_round(void *state, unsigned round, const struct kn_emit *next)
{
	struct fstate *s = state;
	struct probe *pr = s->pr;
	if (round >= ROUNDS_A) {
		bad(pr);
		return;
	}
	atomic_fetch_add(&pr->started_a[round], 1);
	/* phase 1 ended everywhere: every fed span was processed */
	if (atomic_load(&pr->seen_a) != atomic_load(&pr->fed))
		bad(pr);
	/* every shard ended the previous round; none is in a later one */
	if (round > 0 && atomic_load(&pr->done_a[round - 1]) != NSH)
		bad(pr);
	if (round + 1 < ROUNDS_A && atomic_load(&pr->started_a[round + 1]) != 0)
		bad(pr);
	sched_yield(); /* let the other workers interleave */
	/* round r emits a share, the last round the rest */
	uint32_t upto = round + 1 == ROUNDS_A ? s->nheld : (s->nheld + 1) / 2;
	emit_held(s, upto, next);
	atomic_fetch_add(&pr->done_a[round], 1);
}

static void a_flush(void *state, const struct kn_emit *next)
{
	struct fstate *s = state;
	atomic_fetch_add(&s->pr->flush_calls_a, 1);
	emit_held(s, s->nheld, next);
}

static void b_flush(void *state, const struct kn_emit *next)
{
	struct fstate *s = state;
	struct probe *pr = s->pr;
	if (atomic_load(&pr->done_a[ROUNDS_A - 1]) == NSH)
		atomic_fetch_add(&pr->b_after_a_rounds, 1);
	else
		bad(pr);
	sched_yield();
	emit_held(s, s->nheld, next);
	atomic_fetch_add(&pr->done_b, 1);
}

static int f_export(void *inst, struct kn_batch *b)
{
	struct probe *pr = inst;
	atomic_fetch_add(&pr->exported, b->nspans);
	kn_batch_free(b);
	return KN_OK;
}

static const struct kn_component stage_a = {
	.type = "fake_a", .kind = KN_PROCESSOR,
	.shard_create = f_shard_create, .process = f_process,
	.flush = a_flush, .flush_rounds = ROUNDS_A, .flush_round = a_flush_round,
	.shard_destroy = f_shard_destroy,
};

static const struct kn_component stage_b = {
	.type = "fake_b", .kind = KN_PROCESSOR,
	.shard_create = f_shard_create, .process = f_process,
	.flush = b_flush, .flush_rounds = 0, /* one round, through flush */
	.shard_destroy = f_shard_destroy,
};

static const struct kn_component fake_exporter = {
	.type = "fake_exp", .kind = KN_EXPORTER, .export = f_export,
};

/* A request of `ntraces` traces of 3 spans each, spread over the shards. */
static uint8_t *spread_req(uint32_t ntraces, uint32_t *seq, size_t *len)
{
	struct tspan *sp = calloc(ntraces * 3, sizeof *sp);
	assert_non_null(sp);
	for (uint32_t t = 0; t < ntraces; t++) {
		uint8_t id[16];
		tid_on(id, t % NSH, NSH, seq);
		for (uint32_t k = 0; k < 3; k++) {
			struct tspan *x = &sp[t * 3 + k];
			memcpy(x->trace, id, 16);
			sid(x->span, 1 + k);
			if (k)
				sid(x->parent, 1);
			x->kind = 1;
		}
	}
	uint8_t *buf = pack(sp, ntraces * 3, len);
	free(sp);
	return buf;
}

static void run_machinery(uint32_t first_stop, uint32_t iter)
{
	struct probe pr;
	memset(&pr, 0, sizeof pr);
	struct fstate proto_a = {.pr = &pr, .is_b = 0}, proto_b = {.pr = &pr, .is_b = 1};
	struct kn_instance procs[2] = {
		{.comp = &stage_a, .id = "fake_a", .path = "processors.fake_a", .inst = &proto_a},
		{.comp = &stage_b, .id = "fake_b", .path = "processors.fake_b", .inst = &proto_b},
	};
	struct kn_instance exp = {.comp = &fake_exporter, .id = "fake_exp", .inst = &pr};
	struct kn_instance *exp_inst[1] = {&exp};
	uint32_t recv[1] = {0}, expi[1] = {0};
	uint32_t pipes0[1] = {0}, *source_pipes[1] = {pipes0}, nsource_pipes[1] = {1};

	struct kn_runtime *rt = calloc(1, sizeof *rt);
	assert_non_null(rt);
	pthread_mutex_init(&rt->producers_mu, NULL);
	rt->nshards = NSH;
	rt->ring_size = 64;
	rt->metrics = kn_metrics_create();
	struct kn_pipeline pl = {.name = "traces", .nrecv = 1, .nproc = 2, .nexp = 1, .recv = recv,
				 .procs = procs, .exp = expi, .exp_inst = exp_inst};
	pl.exported_spans = kn_metrics_counter(rt->metrics, "x_exported", "", "");
	pl.dropped_spans = kn_metrics_counter(rt->metrics, "x_dropped", "", "");
	rt->pipelines = &pl;
	rt->npipelines = 1;
	rt->source_pipes = source_pipes;
	rt->nsource_pipes = nsource_pipes;
	rt->shards = calloc(NSH, sizeof *rt->shards);
	assert_non_null(rt->shards);
	struct kn_err err = {{0}};
	for (uint32_t s = 0; s < NSH; s++) {
		rt->shards[s] = kn_shard_create(rt, s, &err);
		if (!rt->shards[s])
			fail_msg("shard %u: %s", s, err.msg);
	}
	for (uint32_t s = 0; s < NSH; s++)
		assert_int_equal(kn_shard_start(rt->shards[s], &err), KN_OK);
	atomic_store(&rt->accepting, 1);
	struct kn_producer *p = kn_producer_create(rt, 0, "otlp", "test", &err);
	assert_non_null(p);

	uint32_t seq = iter * 1000;
	for (uint32_t r = 0; r < 6; r++) {
		size_t len;
		uint8_t *buf = spread_req(2 + (r + iter) % 5, &seq, &len);
		struct kn_ingest_result res;
		int rc;
		/* a full ring is retryable: the workers are running, so it empties */
		for (uint32_t tries = 0; (rc = kn_ingest(p, buf, len, NULL, &res)) == KN_AGAIN; tries++) {
			assert_true(tries < 1000000);
			sched_yield();
		}
		assert_int_equal(rc, KN_OK);
		atomic_fetch_add(&pr.fed, res.accepted);
		free(buf);
	}
	/* whatever was ingested may still sit in the rings: phase 1 drains it */
	kn_shard_stop(rt->shards[first_stop]);
	for (uint32_t s = 0; s < NSH; s++)
		kn_shard_stop(rt->shards[s]);

	assert_int_equal(atomic_load(&pr.violations), 0);
	assert_int_equal(atomic_load(&pr.flush_calls_a), 0);
	for (uint32_t r = 0; r < ROUNDS_A; r++) {
		assert_int_equal(atomic_load(&pr.started_a[r]), NSH);
		assert_int_equal(atomic_load(&pr.done_a[r]), NSH);
	}
	assert_int_equal(atomic_load(&pr.done_b), NSH);
	assert_int_equal(atomic_load(&pr.b_after_a_rounds), NSH);
	assert_true(atomic_load(&pr.fed) > 0);
	assert_int_equal(atomic_load(&pr.seen_a), atomic_load(&pr.fed));
	assert_int_equal(atomic_load(&pr.exported), atomic_load(&pr.fed));

	for (uint32_t s = 0; s < NSH; s++)
		kn_shard_destroy(rt->shards[s]);
	free(rt->shards);
	for (unsigned i = 0; i < atomic_load(&rt->nproducers); i++)
		kn_producer_free(rt->producers[i]);
	kn_metrics_destroy(rt->metrics);
	pthread_mutex_destroy(&rt->producers_mu);
	free(rt);
}

static void test_rounds_and_barriers(void **st)
{
	(void)st;
	kn_budget_init(0);
	for (uint32_t iter = 0; iter < 60; iter++)
		run_machinery(iter % NSH, iter);
	assert_int_equal(kn_budget_used(), 0);
}

/* Stopping a shard that never started, twice, or NULL is harmless. */
static void test_stop_not_started(void **st)
{
	(void)st;
	kn_shard_stop(NULL);
	struct kn_runtime rt;
	memset(&rt, 0, sizeof rt);
	rt.nshards = 1;
	rt.metrics = kn_metrics_create();
	struct kn_err err = {{0}};
	struct kn_shard *s = kn_shard_create(&rt, 0, &err);
	assert_non_null(s);
	kn_shard_stop(s);
	kn_shard_stop(s);
	kn_shard_destroy(s);
	kn_metrics_destroy(rt.metrics);
}

/* ======== 2. a real runtime: journey -> file exporter ======== */

#define PAIRS 6

static char tmpdir[256];

static int setup_dir(void **st)
{
	(void)st;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kn_test_shutdown_XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **st)
{
	(void)st;
	char path[512];
	for (uint32_t i = 0; i < 64; i++) { /* what a failed case left behind */
		snprintf(path, sizeof path, "%s/out-%u.json", tmpdir, i);
		unlink(path);
	}
	return rmdir(tmpdir);
}

static struct kn_runtime *runtime_from(const char *yaml)
{
	struct kn_cnode *root = NULL;
	struct kn_err err = {{0}};
	if (kn_config_parse(yaml, strlen(yaml), "test", &root, &err) != KN_OK)
		fail_msg("config: %s", err.msg);
	struct kn_runtime *rt = kn_runtime_create(root, &err);
	kn_cnode_free(root);
	if (!rt)
		fail_msg("create: %s", err.msg);
	return rt;
}

static uint64_t metric_value(struct kn_runtime *rt, const char *series)
{
	char *text;
	size_t len;
	assert_int_equal(kn_metrics_render(kn_runtime_metrics(rt), &text, &len), 0);
	char pat[256];
	snprintf(pat, sizeof pat, "\n%s ", series);
	char *p = strstr(text, pat);
	uint64_t v = p ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
	free(text);
	if (v == UINT64_MAX)
		fail_msg("metric %s not found", series);
	return v;
}

struct pair_ids {
	uint8_t prod[16], cons[16];
	char plan[32];
};

/* The string value of attribute `key` in an OTLP/JSON span, or NULL. */
static const char *json_attr(json_t *span, const char *key)
{
	json_t *attrs = json_object_get(span, "attributes");
	size_t i;
	json_t *kv;
	json_array_foreach(attrs, i, kv) {
		const char *k = json_string_value(json_object_get(kv, "key"));
		if (k && strcmp(k, key) == 0)
			return json_string_value(json_object_get(json_object_get(kv, "value"), "stringValue"));
	}
	return NULL;
}

/* Reads the file exporter's JSON lines; checks every span of the pairs. */
static void check_output(const char *path, const struct pair_ids *pairs, uint32_t npairs)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *line = NULL;
	size_t cap = 0;
	uint32_t cons_spans = 0, prod_spans = 0, total = 0;
	while (getline(&line, &cap, f) > 0) {
		json_error_t jerr;
		json_t *doc = json_loads(line, 0, &jerr);
		if (!doc)
			fail_msg("%s: bad JSON line: %s", path, jerr.text);
		size_t a, b, c;
		json_t *rs, *ss, *span;
		json_array_foreach(json_object_get(doc, "resourceSpans"), a, rs)
		json_array_foreach(json_object_get(rs, "scopeSpans"), b, ss)
		json_array_foreach(json_object_get(ss, "spans"), c, span) {
			total++;
			const char *tid = json_string_value(json_object_get(span, "traceId"));
			assert_non_null(tid);
			for (uint32_t i = 0; i < npairs; i++) {
				char ph[33], ch[33];
				hex(pairs[i].prod, 16, ph);
				hex(pairs[i].cons, 16, ch);
				int is_cons = strcmp(tid, ch) == 0;
				if (!is_cons && strcmp(tid, ph) != 0)
					continue;
				const char *plan = json_attr(span, "tenant.plan");
				const char *jid = json_attr(span, "journey.id");
				if (!plan || strcmp(plan, pairs[i].plan) != 0)
					fail_msg("%s span of pair %u: tenant.plan %s, want %s",
						 is_cons ? "consumer" : "producer", i, plan ? plan : "(none)",
						 pairs[i].plan);
				assert_non_null(jid);
				assert_string_equal(jid, ph);
				if (is_cons)
					cons_spans++;
				else
					prod_spans++;
			}
		}
		json_decref(doc);
	}
	free(line);
	fclose(f);
	assert_int_equal(prod_spans, 2 * npairs);
	assert_int_equal(cons_spans, 2 * npairs);
	assert_int_equal(total, 4 * npairs);
}

/* Producers on shard `pshard`, consumers on the other; `first_stop` is the
 * shard whose stop is asked for first. */
static void run_journey(uint32_t pshard, uint32_t first_stop, int consumers_first, uint32_t iter)
{
	char path[512], yaml[2048];
	snprintf(path, sizeof path, "%s/out-%u.json", tmpdir, iter);
	snprintf(yaml, sizeof yaml,
		 "receivers:\n"
		 "  otlp: {protocols: {http: {endpoint: \"127.0.0.1:0\"}}}\n"
		 "processors:\n"
		 "  journey:\n"
		 "    propagate: [{from: span, keys: [tenant.plan]}]\n"
		 "    wait_window: 60s\n"
		 "    root_grace: 60s\n"
		 "    max_heads: 1024\n"
		 "exporters:\n"
		 "  file: {path: %s}\n"
		 "service:\n"
		 "  telemetry: {metrics: {level: none}}\n"
		 "  pipelines:\n"
		 "    traces: {receivers: [otlp], processors: [journey], exporters: [file]}\n"
		 "kansatsu: {shards: 2, memory_limit_mib: 256, shutdown_timeout: 20s}\n",
		 path);
	struct kn_runtime *rt = runtime_from(yaml);
	struct kn_err err = {{0}};
	if (kn_runtime_start(rt, &err) != KN_OK)
		fail_msg("start: %s", err.msg);
	struct kn_producer *p = kn_producer_create(rt, 0, "otlp", "test", &err);
	assert_non_null(p);

	struct pair_ids pairs[PAIRS];
	uint32_t seq = 7000 + iter * 100;
	struct tspan prod[2 * PAIRS], cons[2 * PAIRS];
	memset(prod, 0, sizeof prod);
	memset(cons, 0, sizeof cons);
	for (uint32_t i = 0; i < PAIRS; i++) {
		struct pair_ids *pi = &pairs[i];
		tid_on(pi->prod, pshard, 2, &seq);
		tid_on(pi->cons, 1 - pshard, 2, &seq);
		snprintf(pi->plan, sizeof pi->plan, "plan-%u-%u", iter, i);
		/* producer: server root with the head attribute, a PRODUCER child */
		struct tspan *r = &prod[2 * i], *pc = &prod[2 * i + 1];
		memcpy(r->trace, pi->prod, 16);
		sid(r->span, 10);
		r->kind = 2;
		r->attr_key = "tenant.plan";
		r->attr_val = pi->plan;
		memcpy(pc->trace, pi->prod, 16);
		sid(pc->span, 11);
		sid(pc->parent, 10);
		pc->kind = 4;
		/* consumer: a CONSUMER root linking to the PRODUCER span, a child */
		struct tspan *cr = &cons[2 * i], *cc = &cons[2 * i + 1];
		memcpy(cr->trace, pi->cons, 16);
		sid(cr->span, 20);
		cr->kind = 5;
		cr->has_link = 1;
		memcpy(cr->link_trace, pi->prod, 16);
		sid(cr->link_span, 11);
		memcpy(cc->trace, pi->cons, 16);
		sid(cc->span, 21);
		sid(cc->parent, 20);
		cc->kind = 1;
	}
	for (int k = 0; k < 2; k++) {
		const struct tspan *sp = (k == 0) == (consumers_first != 0) ? cons : prod;
		size_t len;
		uint8_t *buf = pack(sp, 2 * PAIRS, &len);
		struct kn_ingest_result res;
		assert_int_equal(kn_ingest(p, buf, len, NULL, &res), KN_OK);
		assert_int_equal(res.accepted, 2 * PAIRS);
		free(buf);
	}
	/* The ingested chunks may or may not have reached the journey stores
	 * yet: either way phase 1 drains them, and with 60s windows nothing is
	 * released before shutdown. */
	kn_shard_stop(rt->shards[first_stop]);
	kn_runtime_shutdown(rt);
	assert_int_equal(metric_value(rt, "kansatsu_journey_closed_without_head_total{processor=\"journey\",reason=\"head_not_seen\"}"), 0);
	assert_int_equal(metric_value(rt, "kansatsu_journey_traces_joined_total{processor=\"journey\"}"), PAIRS);
	assert_int_equal(metric_value(rt, "kansatsu_journey_started_total{processor=\"journey\"}"), PAIRS);
	kn_runtime_destroy(rt);
	check_output(path, pairs, PAIRS);
	unlink(path);
}

static void test_journey_heads_across_shards(void **st)
{
	(void)st;
	for (uint32_t iter = 0; iter < 24; iter++) {
		uint32_t pshard = iter & 1, first_stop = (iter >> 1) & 1;
		int consumers_first = (iter >> 2) & 1;
		run_journey(pshard, first_stop, consumers_first, iter);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stop_not_started),
		cmocka_unit_test(test_rounds_and_barriers),
		cmocka_unit_test(test_journey_heads_across_shards),
	};
	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
