/* SPDX-License-Identifier: Apache-2.0
 * The sli processor driven through its component functions with a fake
 * clock: a generated workload with known latencies whose good/total counts,
 * error budget and burn rates (read back from /metrics text) match values
 * computed here; adjusted-count weighting from tracestate; the cardinality
 * bound and its overflow series; OpenMetrics output with exemplars (format
 * lines checked; promtool check metrics when installed); local joins
 * (start and end in one trace, across batches) and journey-head joins
 * (a registry with a published head); write_attributes; config errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_budget.h"
#include "collector/core/kn_clock.h"
#include "collector/core/kn_metrics.h"
#include "collector/wire/kn_wire.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "processors/journey/kn_journey_registry.h"
#include "processors/sli/kn_sli.h"
#include "processors/tail_sampling/kn_tail_view.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define MIN (60 * SEC)
#define T0 (1700000000ull * SEC)

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;

/* ---- building one-span chunks ---- */
struct tspan {
	uint32_t trace;
	const char *service, *name;
	int kind;
	uint64_t start, end;
	int error;
	const char *attrs[8];   /* key, value pairs (strings), NULL-terminated */
	const char *tracestate;
};

static void trace_id(uint8_t id[16], uint32_t t)
{
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(0x31 * (i + 1) ^ (t >> (8 * (i % 4))));
}

static KV *kv_str(const char *k, const char *v)
{
	KV *kv = malloc(sizeof *kv);
	AV *av = malloc(sizeof *av);
	opentelemetry__proto__common__v1__key_value__init(kv);
	opentelemetry__proto__common__v1__any_value__init(av);
	av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	av->string_value = (char *)v;
	kv->key = (char *)k;
	kv->value = av;
	return kv;
}

static void kv_free(KV *kv)
{
	free(kv->value);
	free(kv);
}

/* A chunk (nshards = 1) holding the spans, one ResourceSpans each. */
static struct kn_chunk *make_chunk(const struct tspan *ts, size_t n)
{
	Req req;
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
	RS **rs = calloc(n, sizeof *rs);
	req.resource_spans = rs;
	req.n_resource_spans = n;
	uint8_t (*tids)[16] = calloc(n, 16);
	uint8_t (*sids)[8] = calloc(n, 8);
	for (size_t i = 0; i < n; i++) {
		rs[i] = calloc(1, sizeof(RS));
		opentelemetry__proto__trace__v1__resource_spans__init(rs[i]);
		Resource *r = calloc(1, sizeof *r);
		opentelemetry__proto__resource__v1__resource__init(r);
		r->attributes = calloc(2, sizeof(KV *));
		r->attributes[0] = kv_str("service.name", ts[i].service);
		r->attributes[1] = kv_str("service.version", "v1");
		r->n_attributes = 2;
		rs[i]->resource = r;
		SS *ss = calloc(1, sizeof *ss);
		opentelemetry__proto__trace__v1__scope_spans__init(ss);
		rs[i]->scope_spans = calloc(1, sizeof(SS *));
		rs[i]->scope_spans[0] = ss;
		rs[i]->n_scope_spans = 1;
		Span *sp = calloc(1, sizeof *sp);
		opentelemetry__proto__trace__v1__span__init(sp);
		trace_id(tids[i], ts[i].trace);
		sids[i][0] = (uint8_t)(i + 1);
		sids[i][7] = 0x77;
		sp->trace_id = (ProtobufCBinaryData){16, tids[i]};
		sp->span_id = (ProtobufCBinaryData){8, sids[i]};
		sp->name = (char *)ts[i].name;
		sp->kind = ts[i].kind;
		sp->start_time_unix_nano = ts[i].start;
		sp->end_time_unix_nano = ts[i].end;
		if (ts[i].tracestate)
			sp->trace_state = (char *)ts[i].tracestate;
		size_t na = 0;
		while (ts[i].attrs[2 * na])
			na++;
		sp->attributes = calloc(na + 1, sizeof(KV *));
		for (size_t a = 0; a < na; a++)
			sp->attributes[a] = kv_str(ts[i].attrs[2 * a], ts[i].attrs[2 * a + 1]);
		sp->n_attributes = na;
		Status *st = calloc(1, sizeof *st);
		opentelemetry__proto__trace__v1__status__init(st);
		st->code = ts[i].error ? 2 : 0;
		sp->status = st;
		ss->spans = calloc(1, sizeof(Span *));
		ss->spans[0] = sp;
		ss->n_spans = 1;
	}
	size_t len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	uint8_t *buf = malloc(len + 1);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
	for (size_t i = 0; i < n; i++) {
		Span *sp = rs[i]->scope_spans[0]->spans[0];
		for (size_t a = 0; a < sp->n_attributes; a++)
			kv_free(sp->attributes[a]);
		free(sp->attributes);
		free(sp->status);
		free(sp);
		free(rs[i]->scope_spans[0]->spans);
		free(rs[i]->scope_spans[0]);
		free(rs[i]->scope_spans);
		kv_free(rs[i]->resource->attributes[0]);
		kv_free(rs[i]->resource->attributes[1]);
		free(rs[i]->resource->attributes);
		free(rs[i]->resource);
		free(rs[i]);
	}
	free(rs);
	free(tids);
	free(sids);
	struct kn_wire_index ix;
	kn_wire_index_init(&ix);
	struct kn_err err;
	struct kn_chunk *out[1] = {NULL};
	assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
	assert_int_equal(kn_wire_split(&ix, buf, 1, out, &err), KN_OK);
	kn_wire_index_free(&ix);
	free(buf);
	assert_non_null(out[0]);
	return out[0];
}

/* ---- the processor under test ---- */
struct fx {
	struct kn_metrics *m;
	struct kn_sli_cfg cfg;
	void *inst, *shard;
	uint64_t now;
	struct kn_batch *last;      /* last emitted batch (kept) */
	uint32_t emitted;
};

static uint64_t fake_clock(void *ctx)
{
	return ((struct fx *)ctx)->now;
}

static int catch_emit(void *ctx, struct kn_batch *b)
{
	struct fx *f = ctx;
	kn_batch_free(f->last);
	f->last = b;
	f->emitted++;
	return KN_OK;
}

static int setup_cfg(struct fx *f, const char *yaml, struct kn_err *err)
{
	struct kn_cnode *root = NULL;
	int rc = kn_config_parse(yaml, strlen(yaml), "<test>", &root, err);
	if (rc == KN_OK)
		rc = kn_cfg_apply_at(kn_processor_sli.config_fields, kn_cnode_get(root, "sli"), "sli",
				     &f->cfg, err);
	if (rc == KN_OK)
		rc = kn_processor_sli.validate(&f->cfg, "sli", err);
	kn_cnode_free(root);
	return rc;
}

static struct fx *fx_new(const char *yaml)
{
	struct fx *f = calloc(1, sizeof *f);
	struct kn_err err;
	kn_budget_init(0);
	f->m = kn_metrics_create();
	f->now = T0;
	if (setup_cfg(f, yaml, &err) != KN_OK)
		fail_msg("config: %s", err.msg);
	struct kn_component_ctx ctx = {.id = "sli", .metrics = f->m, .nshards = 1};
	assert_int_equal(kn_processor_sli.create(&ctx, &f->cfg, &f->inst, &err), KN_OK);
	kn_sli_set_clock(f->inst, fake_clock, f);
	assert_int_equal(kn_processor_sli.shard_create(f->inst, 0, &f->shard, &err), KN_OK);
	return f;
}

static void fx_free(struct fx *f)
{
	kn_processor_sli.shard_destroy(f->shard);
	kn_processor_sli.destroy(f->inst);
	kn_cfg_free(kn_processor_sli.config_fields, &f->cfg);
	kn_metrics_destroy(f->m);
	kn_batch_free(f->last);
	free(f);
}

static void feed(struct fx *f, const struct tspan *ts, size_t n)
{
	struct kn_batch *b = kn_batch_new(1);
	kn_batch_add(&b, make_chunk(ts, n));
	struct kn_emit next = {.fn = catch_emit, .ctx = f};
	assert_int_equal(kn_processor_sli.process(f->shard, b, &next), KN_OK);
}

static char *render(struct fx *f, enum kn_metrics_format fmt)
{
	char *out;
	size_t len;
	assert_int_equal(kn_metrics_render_fmt(f->m, fmt, &out, &len), 0);
	assert_int_equal(strlen(out), len);
	return out;
}

/* The value of the sample line that starts with `prefix` + ' ' (-1 absent). */
static double value_of(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static int near(double a, double b)
{
	return fabs(a - b) <= 1e-9 * (fabs(a) + fabs(b) + 1);
}

/* ---- tests ---- */

static const char *kWorkload =
	"sli:\n"
	"  latency_buckets: [50ms, 100ms, 200ms]\n"
	"  slis:\n"
	"    - name: checkout\n"
	"      span: { service: api, name: checkout, kind: server }\n"
	"      threshold: 100ms\n"
	"      objective: 99\n"
	"      window: 1d\n"
	"      dimensions: [{ name: version, from: resource, key: service.version }]\n";

static void test_workload_counts_and_burn_rates(void **st)
{
	(void)st;
	struct fx *f = fx_new(kWorkload);
	/* Per step (minute k of 0..399): 10 spans, latencies 10ms*(1..10) + jitter;
	 * those > 100ms are bad; every 7th step one span is an ERROR; plus one
	 * span that does not match (other name). Record what we expect. */
	enum { STEPS = 400 };
	static double good_at[STEPS], total_at[STEPS];
	double good = 0, total = 0, bucket_le50 = 0, bucket_le100 = 0, bucket_le200 = 0;
	uint64_t start_now = f->now;
	for (int k = 0; k < STEPS; k++) {
		struct tspan ts[11];
		memset(ts, 0, sizeof ts);
		good_at[k] = total_at[k] = 0;
		for (int i = 0; i < 10; i++) {
			uint64_t lat = (uint64_t)(i + 1) * 10 * MS + (uint64_t)(k % 3) * MS; /* 10..103 ms */
			if (k % 5 == 0 && i == 9)
				lat = 150 * MS;
			ts[i] = (struct tspan){.trace = (uint32_t)(k * 100 + i), .service = "api",
					       .name = "checkout", .kind = 2, .start = T0, .end = T0 + lat,
					       .error = (k % 7 == 0 && i == 0)};
			int g = lat <= 100 * MS && !ts[i].error;
			good_at[k] += g;
			total_at[k] += 1;
			bucket_le50 += lat <= 50 * MS;
			bucket_le100 += lat <= 100 * MS;
			bucket_le200 += lat <= 200 * MS;
		}
		ts[10] = (struct tspan){.trace = 1, .service = "api", .name = "other", .kind = 2,
					.start = T0, .end = T0 + 1};
		feed(f, ts, 11);
		good += good_at[k];
		total += total_at[k];
		if (k + 1 < STEPS)
			f->now += MIN;
	}
	assert_int_equal(f->emitted, STEPS);
	assert_int_equal(f->last->nspans, 11);
	char *txt = render(f, KN_METRICS_PROMETHEUS);
	const char *lb = "{sli=\"checkout\",version=\"v1\"}";
	char key[256];
	snprintf(key, sizeof key, "kansatsu_sli_events_total%s", lb);
	assert_true(near(value_of(txt, key), total));
	snprintf(key, sizeof key, "kansatsu_sli_good_events_total%s", lb);
	assert_true(near(value_of(txt, key), good));
	assert_true(near(value_of(txt, "kansatsu_sli_latency_seconds_bucket{sli=\"checkout\",version=\"v1\",le=\"0.05\"}"), bucket_le50));
	assert_true(near(value_of(txt, "kansatsu_sli_latency_seconds_bucket{sli=\"checkout\",version=\"v1\",le=\"0.1\"}"), bucket_le100));
	assert_true(near(value_of(txt, "kansatsu_sli_latency_seconds_bucket{sli=\"checkout\",version=\"v1\",le=\"0.2\"}"), bucket_le200));
	assert_true(near(value_of(txt, "kansatsu_sli_latency_seconds_count{sli=\"checkout\",version=\"v1\"}"), total));
	/* burn rates: minute windows = the last w steps (one step per minute) */
	static const struct { const char *name; int minutes; } win[] = {
		{"5m", 5}, {"30m", 30}, {"1h", 60}, {"6h", 360}};
	for (size_t w = 0; w < 4; w++) {
		double g = 0, t = 0;
		for (int k = STEPS - win[w].minutes; k < STEPS; k++) {
			g += good_at[k];
			t += total_at[k];
		}
		double want = ((t - g) / t) / 0.01;
		snprintf(key, sizeof key, "kansatsu_sli_burn_rate{sli=\"checkout\",version=\"v1\",window=\"%s\"}",
			 win[w].name);
		assert_true(near(value_of(txt, key), want));
	}
	/* 3d and the 1d SLO window (hour buckets) hold everything: 400 minutes < 1d,
	 * but the hour window is the current hour and those before it: check
	 * against the hour arithmetic. */
	double g3 = 0, t3 = 0;
	for (int k = 0; k < STEPS; k++) {
		uint64_t t = start_now + (uint64_t)k * MIN;
		if ((f->now / (3600 * SEC)) - (t / (3600 * SEC)) < 24) {
			g3 += good_at[k];
			t3 += total_at[k];
		}
	}
	assert_true(near(value_of(txt, "kansatsu_sli_burn_rate{sli=\"checkout\",version=\"v1\",window=\"3d\"}"),
			 ((t3 - g3) / t3) / 0.01));
	assert_true(near(value_of(txt, "kansatsu_sli_error_budget_remaining_ratio{sli=\"checkout\",version=\"v1\"}"),
			 1 - ((t3 - g3) / t3) / 0.01));
	assert_true(near(value_of(txt, "kansatsu_sli_objective_ratio{sli=\"checkout\"}"), 0.99));
	free(txt);
	/* an hour later, the 5m..1h windows are empty: burn 0 */
	f->now += 61 * MIN;
	txt = render(f, KN_METRICS_PROMETHEUS);
	assert_true(value_of(txt, "kansatsu_sli_burn_rate{sli=\"checkout\",version=\"v1\",window=\"1h\"}") == 0);
	free(txt);
	fx_free(f);
}

static void test_adjusted_count(void **st)
{
	(void)st;
	struct fx *f = fx_new(kWorkload);
	struct tspan ts[3] = {
		{.trace = 1, .service = "api", .name = "checkout", .kind = 2, .start = T0, .end = T0 + MS,
		 .tracestate = "ot=th:8"},                        /* p 1/2: weight 2, good */
		{.trace = 2, .service = "api", .name = "checkout", .kind = 2, .start = T0,
		 .end = T0 + 500 * MS, .tracestate = "x=1,ot=th:c"},  /* p 1/4: weight 4, bad */
		{.trace = 3, .service = "api", .name = "checkout", .kind = 2, .start = T0, .end = T0 + MS},
	};
	feed(f, ts, 3);
	char *txt = render(f, KN_METRICS_PROMETHEUS);
	assert_true(near(value_of(txt, "kansatsu_sli_events_total{sli=\"checkout\",version=\"v1\"}"), 7));
	assert_true(near(value_of(txt, "kansatsu_sli_good_events_total{sli=\"checkout\",version=\"v1\"}"), 3));
	assert_true(near(value_of(txt, "kansatsu_sli_burn_rate{sli=\"checkout\",version=\"v1\",window=\"5m\"}"),
			 (4.0 / 7) / 0.01));
	free(txt);
	fx_free(f);
}

static void test_cardinality_overflow(void **st)
{
	(void)st;
	struct fx *f = fx_new("sli:\n"
			      "  max_series: 2\n"
			      "  slis:\n"
			      "    - name: s\n"
			      "      span: { name: op }\n"
			      "      objective: 99.9\n"
			      "      dimensions: [{ name: tenant, key: tenant }]\n");
	const char *tenants[] = {"a", "b", "c", "a", "d", "e", "b"};
	for (int i = 0; i < 7; i++) {
		struct tspan ts = {.trace = (uint32_t)i, .service = "x", .name = "op", .start = T0,
				   .end = T0 + MS, .attrs = {"tenant", tenants[i], NULL}};
		feed(f, &ts, 1);
	}
	char *txt = render(f, KN_METRICS_PROMETHEUS);
	assert_true(value_of(txt, "kansatsu_sli_events_total{sli=\"s\",tenant=\"a\"}") == 2);
	assert_true(value_of(txt, "kansatsu_sli_events_total{sli=\"s\",tenant=\"b\"}") == 2);
	assert_true(value_of(txt, "kansatsu_sli_events_total{sli=\"s\",tenant=\"c\"}") == -1);
	assert_true(value_of(txt, "kansatsu_sli_events_total{sli=\"s\",sli_overflow=\"true\"}") == 3);
	assert_true(value_of(txt, "kansatsu_sli_overflow_events_total{sli=\"s\"}") == 3);
	free(txt);
	fx_free(f);
}

static int promtool_ok(const char *text)
{
	if (access("/usr/bin/promtool", X_OK) != 0)
		return -1;
	char path[] = "/tmp/test_sli_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *fp = fdopen(fd, "w");
	fputs(text, fp);
	fclose(fp);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics < %s >/dev/null 2>&1", path);
	int rc = system(cmd);
	unlink(path);
	return rc == 0;
}

static void test_openmetrics_exemplars(void **st)
{
	(void)st;
	struct fx *f = fx_new(kWorkload);
	struct tspan ts[2] = {
		{.trace = 7, .service = "api", .name = "checkout", .kind = 2, .start = T0, .end = T0 + 30 * MS},
		{.trace = 8, .service = "api", .name = "checkout", .kind = 2, .start = T0, .end = T0 + 5 * SEC},
	};
	feed(f, ts, 2);
	char *om = render(f, KN_METRICS_OPENMETRICS);
	/* counter families without _total, samples with it; ends with # EOF */
	assert_non_null(strstr(om, "# TYPE kansatsu_sli_events counter\n"));
	assert_non_null(strstr(om, "\nkansatsu_sli_events_total{sli=\"checkout\",version=\"v1\"} 2\n"));
	assert_non_null(strstr(om, "# TYPE kansatsu_sli_latency_seconds histogram\n"));
	assert_non_null(strstr(om, "# TYPE kansatsu_sli_overflow_events counter\n"));
	size_t n = strlen(om);
	assert_true(n > 6 && strcmp(om + n - 6, "# EOF\n") == 0);
	/* exemplars: the 30ms trace on le=0.05, the 5s trace on +Inf */
	uint8_t id[16];
	char hex[33], want[256];
	trace_id(id, 7);
	for (int i = 0; i < 16; i++)
		sprintf(hex + 2 * i, "%02x", id[i]);
	snprintf(want, sizeof want,
		 "kansatsu_sli_latency_seconds_bucket{sli=\"checkout\",version=\"v1\",le=\"0.05\"} 1 # {trace_id=\"%s\"} 0.03 1700000000.000\n",
		 hex);
	assert_non_null(strstr(om, want));
	trace_id(id, 8);
	for (int i = 0; i < 16; i++)
		sprintf(hex + 2 * i, "%02x", id[i]);
	snprintf(want, sizeof want, "le=\"+Inf\"} 2 # {trace_id=\"%s\"} 5 1700000000.000\n", hex);
	assert_non_null(strstr(om, want));
	/* every line is a comment, a sample or # EOF, and each family's TYPE comes once */
	for (const char *p = om; *p;) {
		const char *e = strchr(p, '\n');
		assert_non_null(e);
		assert_true(p[0] == '#' ? (strncmp(p, "# HELP ", 7) == 0 || strncmp(p, "# TYPE ", 7) == 0 ||
					   strncmp(p, "# EOF", 5) == 0)
					: (p[0] >= 'a' && p[0] <= 'z'));
		p = e + 1;
	}
	char *prom = render(f, KN_METRICS_PROMETHEUS);
	assert_null(strstr(prom, "# {"));
	assert_null(strstr(prom, "# EOF"));
	assert_non_null(strstr(prom, "# TYPE kansatsu_sli_events_total counter\n"));
	int ok = promtool_ok(prom);
	if (ok >= 0)
		assert_int_equal(ok, 1);
	free(prom);
	free(om);
	fx_free(f);
}

static const char *kJoin =
	"sli:\n"
	"  write_attributes: true\n"
	"  slis:\n"
	"    - name: push\n"
	"      start: { service: api, name: post, from: any }\n"
	"      end: { service: notifier, name: deliver }\n"
	"      threshold: 3s\n"
	"      objective: 99\n"
	"      dimensions: [{ name: plan, from: head, key: app.plan }]\n";

static int span_good_attr(const struct kn_batch *b, int *good, int64_t *lat)
{
	const struct kn_chunk *c = b->chunks[0];
	for (uint32_t i = 0; i < c->nspans; i++) {
		struct kn_tail_value v;
		const uint8_t *msg = c->data + c->spans[i].off;
		if (kn_tail_attr_get(msg, c->spans[i].len, 9, "sli.push.good", 13, &v)) {
			*good = v.type == KN_TV_BOOL && v.b;
			assert_true(kn_tail_attr_get(msg, c->spans[i].len, 9, "sli.push.latency_ms", 19, &v));
			assert_int_equal(v.type, KN_TV_INT);
			*lat = v.i;
			return 1;
		}
	}
	return 0;
}

static void test_local_join(void **st)
{
	(void)st;
	struct fx *f = fx_new(kJoin);
	/* trace 1: start in one batch, end (4s later: bad) in a later batch */
	struct tspan s1 = {.trace = 1, .service = "api", .name = "post", .start = T0, .end = T0 + 10 * MS};
	feed(f, &s1, 1);
	struct tspan e1 = {.trace = 1, .service = "notifier", .name = "deliver", .start = T0 + 3 * SEC,
			   .end = T0 + 4 * SEC};
	f->now += SEC;
	feed(f, &e1, 1);
	int good = -1;
	int64_t lat = -1;
	assert_true(span_good_attr(f->last, &good, &lat));
	assert_int_equal(good, 0);
	assert_int_equal(lat, 4000);
	/* trace 2: end before start in one batch (joined: starts go first), 1s: good */
	struct tspan two[2] = {
		{.trace = 2, .service = "notifier", .name = "deliver", .start = T0 + 900 * MS, .end = T0 + SEC},
		{.trace = 2, .service = "api", .name = "post", .start = T0, .end = T0 + 5 * MS},
	};
	feed(f, two, 2);
	assert_true(span_good_attr(f->last, &good, &lat));
	assert_int_equal(good, 1);
	assert_int_equal(lat, 1000);
	assert_int_equal(f->last->chunks[0]->nspans, 2);
	/* trace 3: an end without any start: not joined, counted */
	struct tspan e3 = {.trace = 3, .service = "notifier", .name = "deliver", .start = T0, .end = T0 + SEC};
	feed(f, &e3, 1);
	assert_false(span_good_attr(f->last, &good, &lat));
	/* after join_ttl (10m) the start of trace 1 is forgotten */
	f->now += 11 * MIN;
	feed(f, &e1, 1);
	char *txt = render(f, KN_METRICS_PROMETHEUS);
	assert_true(value_of(txt, "kansatsu_sli_events_total{sli=\"push\",plan=\"\"}") == 2);
	assert_true(value_of(txt, "kansatsu_sli_good_events_total{sli=\"push\",plan=\"\"}") == 1);
	assert_true(value_of(txt, "kansatsu_sli_unjoined_events_total{sli=\"push\"}") == 2);
	free(txt);
	fx_free(f);
}

static void test_journey_head_join(void **st)
{
	(void)st;
	struct fx *f = fx_new(kJoin);
	struct kn_err err;
	struct kn_journey_registry *r = kn_journey_registry_create(1, 64, 600 * SEC, &err);
	assert_non_null(r);
	kn_sli_set_journey_registry(f->inst, r);
	/* the head: trace 50's root "post" in api, with a propagated app.plan */
	struct kn_journey_head h;
	memset(&h, 0, sizeof h);
	trace_id(h.journey_id, 50);
	h.start_ns = T0;
	h.end_ns = T0 + 20 * MS;
	h.kind = 2;
	h.name_len = 4;
	memcpy(h.name, "post", 4);
	h.service_len = 3;
	memcpy(h.service, "api", 3);
	/* attrs: one encoded Span.attributes field: app.plan = "gold" */
	const uint8_t kv[] = {0x4a, 0x12, 0x0a, 0x08, 'a', 'p', 'p', '.', 'p', 'l', 'a', 'n',
			      0x12, 0x06, 0x0a, 0x04, 'g', 'o', 'l', 'd'};
	memcpy(h.attrs, kv, sizeof kv);
	h.attrs_len = sizeof kv;
	assert_int_equal(kn_journey_registry_put(r, 0, h.journey_id, &h, kn_now_ns()), 0);
	/* the consumer trace 51 (another trace) carries journey.id = trace 50 */
	char hex[33];
	for (int i = 0; i < 16; i++)
		sprintf(hex + 2 * i, "%02x", h.journey_id[i]);
	struct tspan e = {.trace = 51, .service = "notifier", .name = "deliver", .start = T0 + SEC,
			  .end = T0 + 2500 * MS, .attrs = {"journey.id", hex, NULL}};
	feed(f, &e, 1);
	int good = -1;
	int64_t lat = -1;
	assert_true(span_good_attr(f->last, &good, &lat));
	assert_int_equal(good, 1);
	assert_int_equal(lat, 2500);
	char *txt = render(f, KN_METRICS_PROMETHEUS);
	assert_true(value_of(txt, "kansatsu_sli_events_total{sli=\"push\",plan=\"gold\"}") == 1);
	assert_true(value_of(txt, "kansatsu_sli_good_events_total{sli=\"push\",plan=\"gold\"}") == 1);
	free(txt);
	/* a head that does not match `start` (other service) is not joined */
	h.service_len = 5;
	memcpy(h.service, "other", 5);
	trace_id(h.journey_id, 60);
	kn_journey_registry_put(r, 0, h.journey_id, &h, kn_now_ns());
	for (int i = 0; i < 16; i++)
		sprintf(hex + 2 * i, "%02x", h.journey_id[i]);
	struct tspan e2 = {.trace = 61, .service = "notifier", .name = "deliver", .start = T0,
			   .end = T0 + SEC, .attrs = {"journey.id", hex, NULL}};
	feed(f, &e2, 1);
	txt = render(f, KN_METRICS_PROMETHEUS);
	assert_true(value_of(txt, "kansatsu_sli_unjoined_events_total{sli=\"push\"}") == 1);
	free(txt);
	fx_free(f);
	kn_journey_registry_destroy(r);
}

static void test_config_errors(void **st)
{
	(void)st;
	static const struct { const char *yaml, *msg; } cases[] = {
		{"sli:\n  slis:\n    - name: a\n      span: {name: x}\n      start: {name: y}\n      end: {name: z}\n      objective: 99\n",
		 "sli.slis[0]: give either span, or start and end, not both"},
		{"sli:\n  slis:\n    - name: a\n      start: {name: y}\n      objective: 99\n",
		 "sli.slis[0]: needs span, or start and end"},
		{"sli:\n  slis:\n    - name: a\n      span: {name: x}\n      objective: 100\n",
		 "sli.slis[0].objective: a percentage strictly between 0 and 100, got 100"},
		{"sli:\n  slis:\n    - name: a\n      span: {name: x, kind: sideways}\n      objective: 99\n",
		 "kind"},
		{"sli:\n  slis:\n    - name: a\n      span: {name: x}\n      objective: 99\n      window: 3x\n",
		 "sli.slis[0].window"},
		{"sli:\n  slis:\n    - name: a\n      span: {name: x}\n      objective: 99\n      dimensions: [{name: le, key: k}]\n",
		 "sli.slis[0].dimensions[0].name: \"le\" is not a usable label name"},
		{"sli:\n  slis:\n    - name: a\n      span: {name: x}\n      objective: 99\n      colour: red\n",
		 "colour: unknown key"},
		{"sli:\n  latency_buckets: [1s, 500ms]\n  slis:\n    - name: a\n      span: {name: x}\n      objective: 99\n",
		 "sli.latency_buckets[1]: bounds must ascend"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fx f;
		memset(&f, 0, sizeof f);
		struct kn_err err;
		memset(&err, 0, sizeof err);
		int rc = setup_cfg(&f, cases[i].yaml, &err);
		kn_cfg_free(kn_processor_sli.config_fields, &f.cfg);
		if (rc == KN_OK || !strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: got rc %d \"%s\", want \"%s\"", i, rc, err.msg, cases[i].msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_workload_counts_and_burn_rates),
		cmocka_unit_test(test_adjusted_count),
		cmocka_unit_test(test_cardinality_overflow),
		cmocka_unit_test(test_openmetrics_exemplars),
		cmocka_unit_test(test_local_join),
		cmocka_unit_test(test_journey_head_join),
		cmocka_unit_test(test_config_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
