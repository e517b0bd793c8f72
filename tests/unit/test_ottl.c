/* SPDX-License-Identifier: Apache-2.0
 * collector/ottl: the grammar (precedence, escapes, errors with the config
 * path, the statement, the token and its column), the evaluator over a
 * fixed encoded request (every span / spanevent / resource / scope path,
 * enums, literals, comparison and math rules, converters, run-time errors)
 * and every editor, run through kn_wire_edit the way the transform
 * processor runs them; results decoded with protobuf-c; spans no statement
 * touches keep their exact bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/ottl/kn_ottl.h"
#include "collector/wire/kn_wire_edit.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event Event;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Resource__V1__Resource Res;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;
typedef Opentelemetry__Proto__Common__V1__ArrayValue Arr;
typedef Opentelemetry__Proto__Common__V1__KeyValueList KVL;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;

/* ---- the fixture: one resource, one scope, two spans ---- */

static AV *av_str(const char *s)
{
	AV *a = calloc(1, sizeof *a);
	opentelemetry__proto__common__v1__any_value__init(a);
	a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	a->string_value = strdup(s);
	return a;
}

static AV *av_int(int64_t i)
{
	AV *a = calloc(1, sizeof *a);
	opentelemetry__proto__common__v1__any_value__init(a);
	a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
	a->int_value = i;
	return a;
}

static KV *kv(const char *k, AV *v)
{
	KV *x = calloc(1, sizeof *x);
	opentelemetry__proto__common__v1__key_value__init(x);
	x->key = strdup(k);
	x->value = v;
	return x;
}

static uint8_t *fixture(size_t *len)
{
	static uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	static uint8_t sid0[8] = {0xa1, 0, 0, 0, 0, 0, 0, 1}, sid1[8] = {0xa1, 0, 0, 0, 0, 0, 0, 2};
	Req *req = calloc(1, sizeof *req);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
	RS *rs = calloc(1, sizeof *rs);
	opentelemetry__proto__trace__v1__resource_spans__init(rs);
	Res *res = calloc(1, sizeof *res);
	opentelemetry__proto__resource__v1__resource__init(res);
	res->n_attributes = 2;
	res->attributes = calloc(2, sizeof *res->attributes);
	res->attributes[0] = kv("service.name", av_str("api"));
	res->attributes[1] = kv("host.name", av_str("h1"));
	rs->resource = res;
	SS *ss = calloc(1, sizeof *ss);
	opentelemetry__proto__trace__v1__scope_spans__init(ss);
	Scope *sc = calloc(1, sizeof *sc);
	opentelemetry__proto__common__v1__instrumentation_scope__init(sc);
	sc->name = strdup("lib");
	sc->version = strdup("1.0");
	ss->scope = sc;
	ss->n_spans = 2;
	ss->spans = calloc(2, sizeof *ss->spans);
	for (int k = 0; k < 2; k++) {
		Span *sp = calloc(1, sizeof *sp);
		opentelemetry__proto__trace__v1__span__init(sp);
		sp->trace_id.data = tid;
		sp->trace_id.len = 16;
		sp->span_id.data = k ? sid1 : sid0;
		sp->span_id.len = 8;
		if (k) {
			sp->parent_span_id.data = sid0;
			sp->parent_span_id.len = 8;
		}
		sp->name = strdup(k ? "/healthz" : "GET /users/42");
		sp->kind = k ? 1 : 2;
		sp->start_time_unix_nano = 1000000000;
		sp->end_time_unix_nano = k ? 1000500000 : 1002500000;
		ss->spans[k] = sp;
	}
	Span *s0 = ss->spans[0];
	Status *st = calloc(1, sizeof *st);
	opentelemetry__proto__trace__v1__status__init(st);
	st->code = 2;
	st->message = strdup("boom");
	s0->status = st;
	AV *tags = calloc(1, sizeof *tags);
	opentelemetry__proto__common__v1__any_value__init(tags);
	Arr *arr = calloc(1, sizeof *arr);
	opentelemetry__proto__common__v1__array_value__init(arr);
	arr->n_values = 2;
	arr->values = calloc(2, sizeof *arr->values);
	arr->values[0] = av_str("a");
	arr->values[1] = av_str("b");
	tags->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
	tags->array_value = arr;
	AV *http = calloc(1, sizeof *http);
	opentelemetry__proto__common__v1__any_value__init(http);
	KVL *kl = calloc(1, sizeof *kl);
	opentelemetry__proto__common__v1__key_value_list__init(kl);
	kl->n_values = 2;
	kl->values = calloc(2, sizeof *kl->values);
	kl->values[0] = kv("host", av_str("x"));
	kl->values[1] = kv("port", av_int(80));
	http->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
	http->kvlist_value = kl;
	AV *ratio = calloc(1, sizeof *ratio);
	opentelemetry__proto__common__v1__any_value__init(ratio);
	ratio->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
	ratio->double_value = 0.5;
	AV *ok = calloc(1, sizeof *ok);
	opentelemetry__proto__common__v1__any_value__init(ok);
	ok->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
	ok->bool_value = 1;
	AV *raw = calloc(1, sizeof *raw);
	opentelemetry__proto__common__v1__any_value__init(raw);
	raw->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
	static uint8_t rawb[2] = {1, 2};
	raw->bytes_value.data = rawb;
	raw->bytes_value.len = 2;
	s0->n_attributes = 9;
	s0->attributes = calloc(9, sizeof *s0->attributes);
	s0->attributes[0] = kv("http.route", av_str("/users/:id"));
	s0->attributes[1] = kv("http.method", av_str("GET"));
	s0->attributes[2] = kv("http.status_code", av_int(200));
	s0->attributes[3] = kv("ratio", ratio);
	s0->attributes[4] = kv("ok", ok);
	s0->attributes[5] = kv("tags", tags);
	s0->attributes[6] = kv("http", http);
	s0->attributes[7] = kv("raw", raw);
	s0->attributes[8] = kv("note", av_str("h\xc3\xa9llo world"));
	s0->n_events = 2;
	s0->events = calloc(2, sizeof *s0->events);
	for (int e = 0; e < 2; e++) {
		Event *ev = calloc(1, sizeof *ev);
		opentelemetry__proto__trace__v1__span__event__init(ev);
		ev->name = strdup(e ? "log" : "exception");
		ev->time_unix_nano = 1001000000 + (uint64_t)e;
		ev->n_attributes = 1;
		ev->attributes = calloc(1, sizeof *ev->attributes);
		ev->attributes[0] = e ? kv("level", av_str("info")) : kv("exception.type", av_str("E"));
		s0->events[e] = ev;
	}
	Span *s1 = ss->spans[1];
	s1->n_attributes = 1;
	s1->attributes = calloc(1, sizeof *s1->attributes);
	s1->attributes[0] = kv("http.route", av_str("/healthz"));
	rs->n_scope_spans = 1;
	rs->scope_spans = calloc(1, sizeof *rs->scope_spans);
	rs->scope_spans[0] = ss;
	req->n_resource_spans = 1;
	req->resource_spans = calloc(1, sizeof *req->resource_spans);
	req->resource_spans[0] = rs;
	*len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(req);
	uint8_t *buf = malloc(*len);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(req, buf);
	/* the fixture's ids and byte arrays are static: detach them before freeing */
	for (int k = 0; k < 2; k++) {
		ss->spans[k]->trace_id.data = NULL;
		ss->spans[k]->span_id.data = NULL;
		ss->spans[k]->parent_span_id.data = NULL;
		ss->spans[k]->trace_id.len = ss->spans[k]->span_id.len = ss->spans[k]->parent_span_id.len = 0;
	}
	raw->bytes_value.data = NULL;
	raw->bytes_value.len = 0;
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
	return buf;
}

/* ---- a runner: statements per context, as the transform processor runs them ---- */

struct runner {
	struct kn_ottl_tx *tx;
	struct kn_ottl_prog *p[KN_OTTL_NCTX][32];
	int n[KN_OTTL_NCTX];
	const struct kn_ottl_prog *cond;  /* condition mode: evaluate per element */
	int cond_ctx;
	int results[16];
	int nres;
	int errors;
};

static void exec_all(struct runner *r, int ctx)
{
	for (int i = 0; i < r->n[ctx]; i++)
		if (kn_ottl_exec(r->p[ctx][i], r->tx) < 0) {
			r->errors++;
			print_message("run-time error: %s\n", kn_ottl_tx_error(r->tx));
		}
}

static void record(struct runner *r, int ctx)
{
	if (r->cond && r->cond_ctx == ctx && r->nres < 16)
		r->results[r->nres++] = kn_ottl_cond(r->cond, r->tx);
}

static int on_res(void *c, struct kn_wire_edit *ed, const struct kn_wire_edit_res *rr)
{
	struct runner *r = c;
	kn_ottl_tx_resource(r->tx, rr->msg, rr->len);
	record(r, KN_OTTL_CTX_RESOURCE);
	exec_all(r, KN_OTTL_CTX_RESOURCE);
	return kn_ottl_tx_emit(r->tx, KN_OTTL_CTX_RESOURCE, ed) < 0 ? -1 : 0;
}

static int on_scope(void *c, struct kn_wire_edit *ed, const struct kn_wire_edit_scope *sc)
{
	struct runner *r = c;
	kn_ottl_tx_scope(r->tx, sc->msg, sc->len);
	record(r, KN_OTTL_CTX_SCOPE);
	exec_all(r, KN_OTTL_CTX_SCOPE);
	return kn_ottl_tx_emit(r->tx, KN_OTTL_CTX_SCOPE, ed) < 0 ? -1 : 0;
}

static int on_span(void *c, struct kn_wire_edit *ed, const struct kn_wire_edit_span *sp)
{
	struct runner *r = c;
	kn_ottl_tx_span(r->tx, sp->span, sp->span_len);
	record(r, KN_OTTL_CTX_SPAN);
	exec_all(r, KN_OTTL_CTX_SPAN);
	if (r->n[KN_OTTL_CTX_SPANEVENT] || (r->cond && r->cond_ctx == KN_OTTL_CTX_SPANEVENT)) {
		int n = kn_ottl_tx_nevents(r->tx);
		for (int i = 0; i < n; i++) {
			kn_ottl_tx_event(r->tx, (uint32_t)i);
			record(r, KN_OTTL_CTX_SPANEVENT);
			exec_all(r, KN_OTTL_CTX_SPANEVENT);
			kn_ottl_tx_event_done(r->tx);
		}
	}
	return kn_ottl_tx_emit(r->tx, KN_OTTL_CTX_SPAN, ed) < 0 ? -1 : 0;
}

static const struct kn_wire_edit_ops run_ops = {.resource = on_res, .scope = on_scope, .span = on_span};

static struct kn_ottl_prog *compile_ok(enum kn_ottl_kind kind, int ctx, const char *src)
{
	struct kn_ottl_prog *p = NULL;
	struct kn_err err = {{0}};
	if (kn_ottl_compile(src, kind, ctx, KN_OTTL_CTX_SPAN, "test", &p, &err) != KN_OK)
		fail_msg("compiling \"%s\": %s", src, err.msg);
	return p;
}

static void compile_err(enum kn_ottl_kind kind, int ctx, const char *src, const char *want)
{
	struct kn_ottl_prog *p = NULL;
	struct kn_err err = {{0}};
	if (kn_ottl_compile(src, kind, ctx, KN_OTTL_CTX_SPAN, "processors.x.y[0]", &p, &err) == KN_OK) {
		kn_ottl_prog_free(p);
		fail_msg("\"%s\" compiled; expected an error with \"%s\"", src, want);
	}
	if (!strstr(err.msg, want))
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", src, err.msg, want);
	assert_non_null(strstr(err.msg, "processors.x.y[0]: "));
}

/* The condition's result on each element of its context in the fixture. */
static int cond_on(int ctx, const char *src, int *res)
{
	size_t len;
	uint8_t *buf = fixture(&len);
	struct runner r = {.tx = kn_ottl_tx_new(), .cond_ctx = ctx};
	r.cond = compile_ok(KN_OTTL_CONDITION, ctx, src);
	struct kn_wire_edit ed;
	kn_wire_edit_init(&ed);
	struct kn_chunk *out = NULL;
	struct kn_err err = {{0}};
	assert_int_equal(kn_wire_edit_run(&ed, &run_ops, &r, buf, len, 2, NULL, &out, &err), KN_OK);
	assert_null(out);
	memcpy(res, r.results, sizeof r.results);
	kn_ottl_prog_free((struct kn_ottl_prog *)r.cond);
	kn_ottl_tx_free(r.tx);
	kn_wire_edit_free(&ed);
	free(buf);
	return r.nres;
}

static void expect_span(const char *src, int want0, int want1)
{
	int res[16];
	assert_int_equal(cond_on(KN_OTTL_CTX_SPAN, src, res), 2);
	if (res[0] != want0 || res[1] != want1)
		fail_msg("\"%s\": got %d %d, want %d %d", src, res[0], res[1], want0, want1);
}

/* ---- grammar ---- */

static void test_precedence(void **state)
{
	(void)state;
	expect_span("true or false and false", 1, 1);
	expect_span("(true or false) and false", 0, 0);
	expect_span("not true or true", 1, 1);
	expect_span("not (true or true)", 0, 0);
	expect_span("not not true", 1, 1);
	expect_span("1 + 2 * 3 == 7", 1, 1);
	expect_span("(1 + 2) * 3 == 9", 1, 1);
	expect_span("10 - 4 - 3 == 3", 1, 1);
	expect_span("7 / 2 == 3 and -7 / 2 == -3", 1, 1);
	expect_span("1.5 * 2.0 == 3.0 and .5 == 0.5 and -.5 < 0", 1, 1);
	expect_span("2 * -3 == -6 and 1-1 == 0", 1, 1);
	expect_span("kind == SPAN_KIND_SERVER or kind == SPAN_KIND_INTERNAL and name == \"x\"", 1, 0);
}

static void test_literals_and_escapes(void **state)
{
	(void)state;
	expect_span("\"a\\\"b\" == Concat([\"a\", \"\\\"\", \"b\"], \"\")", 1, 1);
	expect_span("Len(\"a\\\\b\") == 3 and Len(\"\\n\\t\") == 2", 1, 1);
	expect_span("\"\\x41\\101\" == \"AA\" and \"\\u00e9\" == \"\xc3\xa9\" and \"\\U0001F600\" == \"\xf0\x9f\x98\x80\"", 1, 1);
	expect_span("nil == nil and true != false and 0x01 == 0x01 and 0x0102 != 0x0103", 1, 1);
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "name == \"a\\qb\"", "unknown escape sequence");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "name == \"a\\qb\"", "at column 11");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "name == \"abc", "unterminated string at column 9");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "name == 0x123", "even number of hex digits");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "kind == 99999999999999999999", "int64 range");
}

static void test_errors_name_the_token(void **state)
{
	(void)state;
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "nme == \"x\"",
		    "condition \"nme == \\\"x\\\"\": unknown path \"nme\" in the span context at column 1 (\"nme\")");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "name == Foo(1)",
		    "unknown converter \"Foo\" (not supported by kansatsu) at column 9 (\"Foo(1)\")");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "frobnicate(name)", "unknown editor \"frobnicate\"");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "name ==", "expected a value, got end of input at the end");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "name == \"a\" name", "unexpected name after the condition at column 13");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "name and true", "a path is not a boolean");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "kind == SPAN_KIND_WHATEVER", "unknown enum \"SPAN_KIND_WHATEVER\"");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "events == nil", "path \"events\" is not supported by kansatsu");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "cache[\"a\"] == nil", "path \"cache\" is not supported");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "spanevent.name == \"x\"", "spanevent paths cannot be used in the span context");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPANEVENT, "IsRootSpan()", "IsRootSpan cannot be used in the spanevent context");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "ParseJSON(name) == nil", "unknown converter \"ParseJSON\"");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "set(name, 1) where", "expected a value, got end of input");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "set(name)", "set is missing its argument value");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "set(\"x\", 1)", "argument target of set must be a path");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "set(resource.attributes[\"a\"], 1)",
		    "a span statement cannot write resource paths");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "set(kind.string, \"x\")", "cannot be set");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "delete_key(name, \"a\")", "must be a map");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "IsMatch(name, \"a\")", "IsMatch is a converter");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "replace_pattern(name, \"(\", \"x\")", "invalid regular expression");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "replace_match(name, \"[a\", \"x\")", "invalid glob pattern");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "limit(attributes, 1, [\"a\", \"b\"])", "2 priority keys are more than the limit 1");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "truncate_all(attributes, -1)", "limit must be at least 0");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "merge_maps(attributes, attributes, \"merge\")", "strategy must be");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "set(name, ConvertCase(name, \"kebab\"))", "unknown case");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "set(name, \"a\", \"b\")", "too many arguments for set");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "truncate_all(attributes, 4, utf8_safe = true, nope = 1)",
		    "truncate_all has no parameter named \"nope\"");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "replace_pattern(name, \"a\", \"b\", Foo)", "argument function of replace_pattern");
	compile_err(KN_OTTL_STATEMENT, KN_OTTL_CTX_SPAN, "replace_pattern(name, \"a\", \"b\", SHA256, \"%d\")", "may only contain %s");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, "name == Duration(\"3 parsecs\")", "not a duration");
	/* deep nesting is refused, not a stack overflow */
	char deep[400];
	memset(deep, '(', 200);
	strcpy(deep + 200, "true");
	compile_err(KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, deep, "nested too deeply");
}

static void test_context_inference(void **state)
{
	(void)state;
	struct kn_ottl_prog *p;
	p = compile_ok(KN_OTTL_STATEMENT, KN_OTTL_CTX_INFER, "set(resource.attributes[\"a\"], \"b\")");
	assert_int_equal(kn_ottl_prog_ctx(p), KN_OTTL_CTX_RESOURCE);
	kn_ottl_prog_free(p);
	p = compile_ok(KN_OTTL_STATEMENT, KN_OTTL_CTX_INFER, "set(span.attributes[\"a\"], resource.attributes[\"b\"])");
	assert_int_equal(kn_ottl_prog_ctx(p), KN_OTTL_CTX_SPAN);
	kn_ottl_prog_free(p);
	p = compile_ok(KN_OTTL_STATEMENT, KN_OTTL_CTX_INFER, "set(spanevent.attributes[\"a\"], span.name)");
	assert_int_equal(kn_ottl_prog_ctx(p), KN_OTTL_CTX_SPANEVENT);
	kn_ottl_prog_free(p);
	p = compile_ok(KN_OTTL_STATEMENT, KN_OTTL_CTX_INFER, "keep_keys(scope.attributes, [\"a\"])");
	assert_int_equal(kn_ottl_prog_ctx(p), KN_OTTL_CTX_SCOPE);
	kn_ottl_prog_free(p);
	/* no prefix: the default (span); a prefixed higher context with an unprefixed path: still the default */
	p = compile_ok(KN_OTTL_STATEMENT, KN_OTTL_CTX_INFER, "set(attributes[\"a\"], resource.attributes[\"b\"])");
	assert_int_equal(kn_ottl_prog_ctx(p), KN_OTTL_CTX_SPAN);
	kn_ottl_prog_free(p);
	p = compile_ok(KN_OTTL_CONDITION, KN_OTTL_CTX_INFER, "IsRootSpan()");
	assert_int_equal(kn_ottl_prog_ctx(p), KN_OTTL_CTX_SPAN);
	kn_ottl_prog_free(p);
}

/* ---- evaluation ---- */

static void test_span_paths(void **state)
{
	(void)state;
	expect_span("name == \"GET /users/42\"", 1, 0);
	expect_span("span.name == \"/healthz\"", 0, 1);
	expect_span("kind == SPAN_KIND_SERVER and kind == 2", 1, 0);
	expect_span("kind.string == \"Server\" and kind.deprecated_string == \"SPAN_KIND_SERVER\"", 1, 0);
	expect_span("status.code == STATUS_CODE_ERROR and status.message == \"boom\"", 1, 0);
	expect_span("status.code == STATUS_CODE_UNSET and status.message == \"\"", 0, 1);
	expect_span("trace_id == TraceID(0x0102030405060708090a0b0c0d0e0f10)", 1, 1);
	expect_span("trace_id.string == \"0102030405060708090a0b0c0d0e0f10\"", 1, 1);
	expect_span("span_id == SpanID(0xa100000000000001) and span_id.string == \"a100000000000001\"", 1, 0);
	expect_span("parent_span_id == SpanID(0x0000000000000000) and parent_span_id.string == \"\"", 1, 0);
	expect_span("parent_span_id == SpanID(\"a100000000000001\")", 0, 1);
	expect_span("IsRootSpan()", 1, 0);
	expect_span("start_time_unix_nano == 1000000000", 1, 1);
	expect_span("end_time_unix_nano - start_time_unix_nano < 1000000", 0, 1);
	expect_span("end_time - start_time == Duration(\"2.5ms\")", 1, 0);
	expect_span("Milliseconds(end_time - start_time) == 2 and Microseconds(end_time - start_time) == 2500", 1, 0);
	expect_span("Nanoseconds(end_time - start_time) == 500000", 0, 1);
	expect_span("Seconds(end_time - start_time) == 0.0025", 1, 0);
	expect_span("end_time > start_time and UnixNano(start_time) == 1000000000 and UnixSeconds(start_time) == 1", 1, 1);
	expect_span("dropped_attributes_count == 0 and dropped_events_count == 0 and flags == 0", 1, 1);
	expect_span("trace_state == \"\"", 1, 1);
}

static void test_attribute_paths(void **state)
{
	(void)state;
	expect_span("attributes[\"http.route\"] == \"/healthz\"", 0, 1);
	expect_span("attributes[\"http.status_code\"] == 200 and attributes[\"http.status_code\"] == 200.0", 1, 0);
	expect_span("attributes[\"ratio\"] == 0.5 and attributes[\"ok\"] == true", 1, 0);
	expect_span("attributes[\"tags\"][1] == \"b\" and attributes[\"tags\"][0] == \"a\"", 1, 0);
	expect_span("attributes[\"http\"][\"port\"] == 80 and attributes[\"http\"][\"host\"] == \"x\"", 1, 0);
	expect_span("attributes[\"http\"][\"nope\"] == nil and attributes[\"missing\"] == nil", 1, 1);
	expect_span("attributes[\"missing\"][\"deeper\"] == nil", 1, 1);
	expect_span("attributes[\"raw\"] == 0x0102", 1, 0);
	expect_span("attributes[attributes[\"http.method\"]] == nil", 1, -1);   /* a nil key is an error */
	expect_span("resource.attributes[\"service.name\"] == \"api\"", 1, 1);
	expect_span("instrumentation_scope.name == \"lib\" and scope.version == \"1.0\"", 1, 1);
	expect_span("IsMap(attributes[\"http\"]) and IsList(attributes[\"tags\"]) and IsMap(attributes)", 1, 0);
	expect_span("IsString(name) and IsInt(kind) and IsDouble(attributes[\"ratio\"]) and IsBool(attributes[\"ok\"])", 1, 0);
	expect_span("Len(attributes[\"tags\"]) == 2 and Len(attributes[\"http\"]) == 2 and Len(attributes) == 9", 1, -1);   /* Len(nil) is an error */
	/* comparison rules */
	expect_span("\"1\" == 1", 0, 0);
	expect_span("\"1\" != 1 and not (\"1\" < 1) and not (nil < 1)", 1, 1);
	expect_span("attributes[\"missing\"] != \"x\"", 1, 1);
	expect_span("\"a\" < \"b\" and \"ab\" > \"a\" and false < true", 1, 1);
	expect_span("attributes[\"http\"] == {\"port\": 80, \"host\": \"x\"}", 1, 0);
	expect_span("attributes[\"tags\"] == [\"a\", \"b\"] and attributes[\"tags\"] != [\"b\", \"a\"]", 1, 0);
	/* an int key on a map is an error; nothing matches */
	int res[16];
	assert_int_equal(cond_on(KN_OTTL_CTX_SPAN, "attributes[\"http\"][0] == nil", res), 2);
	assert_int_equal(res[0], -1);
	assert_int_equal(res[1], 1);
}

static void test_converters(void **state)
{
	(void)state;
	expect_span("IsMatch(name, \"^GET /users/\\\\d+$\")", 1, 0);
	expect_span("IsMatch(attributes[\"http.status_code\"], \"^2\\\\d\\\\d$\")", 1, 0);
	expect_span("IsMatch(attributes[\"missing\"], \".*\") == false", 1, 1);
	expect_span("Concat([name, \"x\", 1, attributes[\"missing\"]], \"|\") == \"/healthz|x|1|<nil>\"", 0, 1);
	expect_span("Concat([trace_id, attributes[\"tags\"]], \"-\") == \"0102030405060708090a0b0c0d0e0f10\"", 1, 0);   /* nil -> \"<nil>\" */
	expect_span("Int(\"42\") == 42 and Int(2.9) == 2 and Int(true) == 1 and Int(\"x\") == nil", 1, 1);
	expect_span("Double(\"1.5\") == 1.5 and Double(2) == 2.0 and Double(\"z\") == nil", 1, 1);
	expect_span("String(1) == \"1\" and String(0.5) == \"0.5\" and String(true) == \"true\"", 1, 1);
	expect_span("String(attributes[\"http\"]) == \"{\\\"host\\\":\\\"x\\\",\\\"port\\\":80}\"", 1, 0);
	expect_span("String(0x0a0b) == \"0a0b\" and Bool(\"T\") == true and Bool(0) == false", 1, 1);
	expect_span("SHA256(\"a\") == \"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb\"", 1, 1);
	expect_span("SHA1(\"a\") == \"86f7e437faa5a7fce15d1ddcb9eaeaea377667b8\" and MD5(\"a\") == \"0cc175b9c0f1b6a831c399e269772661\"", 1, 1);
	expect_span("FNV(\"a\") == -5808556873153909620", 1, 1);
	expect_span("ConvertCase(\"myMetricHTTPServer\", \"snake\") == \"my_metric_http_server\"", 1, 1);
	expect_span("ConvertCase(\"my_metric.name\", \"camel\") == \"MyMetricName\"", 1, 1);
	expect_span("ConvertCase(name, \"upper\") == \"GET /USERS/42\" and ToLowerCase(\"AbC\") == \"abc\"", 1, 0);
	expect_span("Substring(\"123456789\", 0, 3) == \"123\" and Substring(name, 4, 6) == \"/users\"", 1, -1);   /* past the end of \"/healthz\" */
	expect_span("Split(\"a,b,,c\", \",\")[2] == \"\" and Len(Split(\"a,b,,c\", \",\")) == 4", 1, 1);
	expect_span("Split(name, \"/\")[1] == \"users\"", 1, 0);
	expect_span("HasPrefix(name, \"GET\") and HasSuffix(name, \"42\") and TrimPrefix(name, \"GET \") == \"/users/42\"", 1, 0);
	expect_span("Coalesce([attributes[\"missing\"], attributes[\"http.route\"], \"z\"]) == \"/healthz\"", 0, 1);
	expect_span("IsEmpty(\"\") and IsEmpty(attributes[\"missing\"]) and not IsEmpty(name)", 1, 1);
	expect_span("Hours(Duration(\"90m\")) == 1.5 and Minutes(Duration(\"1h\")) == 60.0", 1, 1);
	/* converter errors (a converter given the wrong type) */
	int res[16];
	assert_int_equal(cond_on(KN_OTTL_CTX_SPAN, "Substring(name, 0, 100) == \"x\"", res), 2);
	assert_int_equal(res[0], -1);
	assert_int_equal(cond_on(KN_OTTL_CTX_SPAN, "SHA256(kind) == \"x\"", res), 2);
	assert_int_equal(res[0], -1);
}

static void test_runtime_errors(void **state)
{
	(void)state;
	int res[16];
	assert_int_equal(cond_on(KN_OTTL_CTX_SPAN, "attributes[\"missing\"] + 1 == 2", res), 2);
	assert_int_equal(res[0], -1);
	assert_int_equal(cond_on(KN_OTTL_CTX_SPAN, "1 + 1.0 == 2", res), 2);
	assert_int_equal(res[0], -1);
	assert_int_equal(cond_on(KN_OTTL_CTX_SPAN, "1 / 0 == 1", res), 2);
	assert_int_equal(res[0], -1);
	assert_int_equal(cond_on(KN_OTTL_CTX_SPAN, "start_time + start_time == start_time", res), 2);
	assert_int_equal(res[0], -1);
	/* short circuit: the right side's error is never reached */
	expect_span("true or 1 / 0 == 1", 1, 1);
	expect_span("false and 1 / 0 == 1", 0, 0);
	/* a converter in a boolean position must return a bool */
	assert_int_equal(cond_on(KN_OTTL_CTX_SPAN, "Int(\"1\")", res), 2);
	assert_int_equal(res[0], -1);
	/* the error names the config path and the condition */
	struct kn_ottl_tx *tx = kn_ottl_tx_new();
	struct kn_ottl_prog *p = NULL;
	struct kn_err err = {{0}};
	assert_int_equal(kn_ottl_compile("1 / 0 == 1", KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, 0,
					 "processors.filter.traces.span[3]", &p, &err), KN_OK);
	kn_ottl_tx_span(tx, (const uint8_t *)"", 0);
	assert_int_equal(kn_ottl_cond(p, tx), -1);
	assert_string_equal(kn_ottl_tx_error(tx),
			    "processors.filter.traces.span[3]: condition \"1 / 0 == 1\": attempted to divide by 0");
	kn_ottl_prog_free(p);
	kn_ottl_tx_free(tx);
}

static void test_other_contexts(void **state)
{
	(void)state;
	int res[16];
	assert_int_equal(cond_on(KN_OTTL_CTX_SPANEVENT, "name == \"exception\" and span.name == \"GET /users/42\"", res), 2);
	assert_int_equal(res[0], 1);
	assert_int_equal(res[1], 0);
	assert_int_equal(cond_on(KN_OTTL_CTX_SPANEVENT, "attributes[\"level\"] == \"info\" and time_unix_nano == 1001000001", res), 2);
	assert_int_equal(res[0], 0);
	assert_int_equal(res[1], 1);
	assert_int_equal(cond_on(KN_OTTL_CTX_SPANEVENT, "UnixNano(time) - UnixNano(span.start_time) == 1000000 and resource.attributes[\"host.name\"] == \"h1\"", res), 2);
	assert_int_equal(res[0], 1);
	assert_int_equal(cond_on(KN_OTTL_CTX_RESOURCE, "attributes[\"service.name\"] == \"api\" and resource.attributes[\"host.name\"] == \"h1\"", res), 1);
	assert_int_equal(res[0], 1);
	assert_int_equal(cond_on(KN_OTTL_CTX_SCOPE, "name == \"lib\" and version == \"1.0\" and resource.attributes[\"service.name\"] == \"api\"", res), 1);
	assert_int_equal(res[0], 1);
}

/* ---- editors ---- */

struct edited {
	Req *req;
	uint8_t *in, *out;
	size_t inlen, outlen;
	int errors;
};

static void run_statements(struct edited *e, const char *const *stmts, size_t n)
{
	e->in = fixture(&e->inlen);
	struct runner r = {.tx = kn_ottl_tx_new()};
	for (size_t i = 0; i < n; i++) {
		struct kn_ottl_prog *p = compile_ok(KN_OTTL_STATEMENT, KN_OTTL_CTX_INFER, stmts[i]);
		int c = kn_ottl_prog_ctx(p);
		assert_true(r.n[c] < 32);
		r.p[c][r.n[c]++] = p;
	}
	struct kn_wire_edit ed;
	kn_wire_edit_init(&ed);
	struct kn_chunk *out = NULL;
	struct kn_err err = {{0}};
	if (kn_wire_edit_run(&ed, &run_ops, &r, e->in, e->inlen, 2, NULL, &out, &err) != KN_OK)
		fail_msg("edit run: %s", err.msg);
	if (out) {
		e->outlen = out->len;
		e->out = malloc(out->len);
		memcpy(e->out, out->data, out->len);
		kn_chunk_unref(out);
	}
	e->errors = r.errors;
	const uint8_t *bytes = e->out ? e->out : e->in;
	size_t blen = e->out ? e->outlen : e->inlen;
	e->req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, blen, bytes);
	assert_non_null(e->req);
	for (int c = 0; c < KN_OTTL_NCTX; c++)
		for (int i = 0; i < r.n[c]; i++)
			kn_ottl_prog_free(r.p[c][i]);
	kn_ottl_tx_free(r.tx);
	kn_wire_edit_free(&ed);
}

static void edited_free(struct edited *e)
{
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(e->req, NULL);
	free(e->in);
	free(e->out);
}

static Span *span_of(struct edited *e, int k)
{
	return e->req->resource_spans[0]->scope_spans[0]->spans[k];
}

static AV *attr(KV **a, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(a[i]->key, key))
			return a[i]->value;
	return NULL;
}

static AV *sattr(struct edited *e, int k, const char *key)
{
	Span *s = span_of(e, k);
	return attr(s->attributes, s->n_attributes, key);
}

static const char *sval(AV *a)
{
	assert_non_null(a);
	assert_int_equal(a->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
	return a->string_value;
}

#define RUN(e, ...)                                                            \
	do {                                                                   \
		static const char *const s_[] = {__VA_ARGS__};                 \
		run_statements((e), s_, sizeof s_ / sizeof s_[0]);             \
	} while (0)

/* The bytes of span k in a request (for identity checks). */
static const uint8_t *span_bytes(const uint8_t *buf, size_t len, int k, size_t *slen)
{
	struct kn_wire_index ix;
	struct kn_err err = {{0}};
	kn_wire_index_init(&ix);
	assert_int_equal(kn_wire_index_request(&ix, buf, len, &err), KN_OK);
	const uint8_t *p = buf + ix.spans[k].off;
	*slen = ix.spans[k].len;
	kn_wire_index_free(&ix);
	return p;
}

static void test_set_and_identity(void **state)
{
	(void)state;
	struct edited e = {0};
	RUN(&e, "set(name, \"renamed\") where kind == SPAN_KIND_SERVER",
	    "set(attributes[\"new\"], 1) where name == \"renamed\"",
	    "set(span.attributes[\"route2\"], span.attributes[\"http.route\"]) where IsRootSpan()",
	    "set(status.code, STATUS_CODE_OK) where status.code == STATUS_CODE_ERROR",
	    "set(status.message, \"fine\") where status.code == STATUS_CODE_OK",
	    "set(attributes[\"nothing\"], attributes[\"missing\"])");
	assert_int_equal(e.errors, 0);
	Span *s0 = span_of(&e, 0);
	assert_string_equal(s0->name, "renamed");
	assert_int_equal(sattr(&e, 0, "new")->int_value, 1);
	assert_string_equal(sval(sattr(&e, 0, "route2")), "/users/:id");
	assert_int_equal(s0->status->code, 1);
	assert_string_equal(s0->status->message, "fine");
	assert_null(sattr(&e, 0, "nothing"));
	assert_int_equal(s0->n_attributes, 11);
	assert_int_equal(s0->n_events, 2);
	/* the /healthz span: no statement touched it, its bytes are the input's */
	size_t a, b;
	const uint8_t *x = span_bytes(e.in, e.inlen, 1, &a), *y = span_bytes(e.out, e.outlen, 1, &b);
	assert_int_equal(a, b);
	assert_memory_equal(x, y, a);
	edited_free(&e);

	/* nothing matches: no output chunk at all */
	struct edited n = {0};
	RUN(&n, "set(name, \"x\") where name == \"nope\"", "delete_key(attributes, \"nope\")");
	assert_null(n.out);
	edited_free(&n);
}

static void test_set_nested_and_typed(void **state)
{
	(void)state;
	struct edited e = {0};
	RUN(&e, "set(attributes[\"http\"][\"port\"], 443) where IsRootSpan()",
	    "set(attributes[\"http\"][\"scheme\"], \"https\") where IsRootSpan()",
	    "set(attributes[\"tags\"][0], \"z\") where IsRootSpan()",
	    "set(attributes[\"deep\"][\"a\"][\"b\"], true) where IsRootSpan()",
	    "set(attributes[\"list\"], [\"x\", 2, nil]) where IsRootSpan()",
	    "set(attributes[\"map\"], {\"k\": \"v\", \"n\": {\"m\": 1.5}}) where IsRootSpan()",
	    "set(attributes[\"copy\"], attributes[\"http\"]) where IsRootSpan()",
	    "set(attributes[\"bytes\"], 0xcafe) where IsRootSpan()",
	    "set(kind, SPAN_KIND_CLIENT) where IsRootSpan()",
	    "set(name, 5) where IsRootSpan()",
	    "set(end_time_unix_nano, end_time_unix_nano + 1000) where IsRootSpan()",
	    "set(start_time, end_time - Duration(\"1ms\")) where IsRootSpan()",
	    "set(trace_state, \"k=v\") where IsRootSpan()",
	    "set(span_id.string, \"00000000000000ff\") where IsRootSpan()");
	assert_int_equal(e.errors, 0);
	Span *s0 = span_of(&e, 0);
	AV *http = sattr(&e, 0, "http");
	assert_int_equal(http->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE);
	KVL *kl = http->kvlist_value;
	assert_int_equal(kl->n_values, 3);
	assert_int_equal(attr(kl->values, kl->n_values, "port")->int_value, 443);
	assert_string_equal(sval(attr(kl->values, kl->n_values, "host")), "x");
	assert_string_equal(sval(attr(kl->values, kl->n_values, "scheme")), "https");
	Arr *tags = sattr(&e, 0, "tags")->array_value;
	assert_int_equal(tags->n_values, 2);
	assert_string_equal(tags->values[0]->string_value, "z");
	assert_string_equal(tags->values[1]->string_value, "b");
	KVL *deep = sattr(&e, 0, "deep")->kvlist_value;
	assert_true(attr(deep->values[0]->value->kvlist_value->values, 1, "b")->bool_value);
	Arr *list = sattr(&e, 0, "list")->array_value;
	assert_int_equal(list->n_values, 3);
	assert_string_equal(list->values[0]->string_value, "x");
	assert_int_equal(list->values[1]->int_value, 2);
	assert_int_equal(list->values[2]->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
	KVL *map = sattr(&e, 0, "map")->kvlist_value;
	assert_string_equal(sval(attr(map->values, map->n_values, "k")), "v");
	assert_true(attr(attr(map->values, map->n_values, "n")->kvlist_value->values, 1, "m")->double_value == 1.5);
	assert_int_equal(sattr(&e, 0, "copy")->kvlist_value->n_values, 3);   /* after "scheme" was added */
	AV *bytes = sattr(&e, 0, "bytes");
	assert_int_equal(bytes->bytes_value.len, 2);
	assert_int_equal(bytes->bytes_value.data[0], 0xca);
	assert_int_equal(s0->kind, 3);
	assert_string_equal(s0->name, "GET /users/42");   /* a non-string is not set, as in OTel */
	assert_int_equal(s0->end_time_unix_nano, 1002501000ull);
	assert_int_equal(s0->start_time_unix_nano, 1001501000ull);
	assert_string_equal(s0->trace_state, "k=v");
	assert_int_equal(s0->span_id.data[7], 0xff);
	/* an index past a slice's end is an error, the span is otherwise edited */
	struct edited x = {0};
	RUN(&x, "set(attributes[\"tags\"][5], \"z\") where IsRootSpan()", "set(attributes[\"after\"], 1) where IsRootSpan()");
	assert_int_equal(x.errors, 1);
	assert_non_null(sattr(&x, 0, "after"));
	edited_free(&x);
	edited_free(&e);
}

/* The checked wire reader (what every receiver runs) accepts the edited
 * request whole: both spans, none rejected. */
static void assert_reader_takes(const struct edited *e)
{
	struct kn_wire_index ix;
	struct kn_err err = {{0}};
	assert_non_null(e->out);
	kn_wire_index_init(&ix);
	if (kn_wire_index_request(&ix, e->out, e->outlen, &err) != KN_OK)
		fail_msg("the reader refuses the edited request: %s", err.msg);
	assert_int_equal(ix.rejected, 0);
	assert_int_equal(ix.nspans, 2);
	kn_wire_index_free(&ix);
}

/* The wire reader refuses AnyValues nested deeper than KN_WIRE_MAX_DEPTH,
 * so a statement never writes one: a set at 32 keys works, at 33 keys (or a
 * copy of the whole attribute map holding that 32-deep value under a key)
 * is a run-time error that leaves the span as the other statements made it,
 * and the result passes the checked reader. (Found by fuzz_ottl.) */
static void test_set_depth_limit(void **state)
{
	(void)state;
	char s32[1024], s33[1024];
	int n32 = snprintf(s32, sizeof s32, "set(attributes[\"d32\"]");
	int n33 = snprintf(s33, sizeof s33, "set(attributes[\"d33\"]");
	for (int i = 1; i < KN_WIRE_MAX_DEPTH; i++)
		n32 += snprintf(s32 + n32, sizeof s32 - (size_t)n32, "[\"k\"]");
	for (int i = 1; i < KN_WIRE_MAX_DEPTH + 1; i++)
		n33 += snprintf(s33 + n33, sizeof s33 - (size_t)n33, "[\"k\"]");
	snprintf(s32 + n32, sizeof s32 - (size_t)n32, ", 1) where IsRootSpan()");
	snprintf(s33 + n33, sizeof s33 - (size_t)n33, ", 1) where IsRootSpan()");
	const char *const stmts[] = {s32, s33, "set(attributes[\"whole\"], attributes) where IsRootSpan()",
				     "set(attributes[\"after\"], 1) where IsRootSpan()"};
	struct edited e = {0};
	run_statements(&e, stmts, 4);
	assert_int_equal(e.errors, 2);
	AV *v = sattr(&e, 0, "d32");
	int depth = 1;
	while (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE) {
		assert_int_equal(v->kvlist_value->n_values, 1);
		v = v->kvlist_value->values[0]->value;
		depth++;
	}
	assert_int_equal(depth, KN_WIRE_MAX_DEPTH);
	assert_int_equal(v->int_value, 1);
	assert_null(sattr(&e, 0, "d33"));
	assert_null(sattr(&e, 0, "whole"));
	assert_non_null(sattr(&e, 0, "after"));
	assert_reader_takes(&e);
	edited_free(&e);
}

/* A span's trace_id and span_id cannot be set to all zero (the reader
 * rejects such a span: it would be lost downstream); a root's
 * parent_span_id of zeros is fine. (Found by fuzz_ottl.) */
static void test_set_zero_ids(void **state)
{
	(void)state;
	struct edited e = {0};
	RUN(&e, "set(span_id.string, \"0000000000000000\") where IsRootSpan()",
	    "set(trace_id, 0x00000000000000000000000000000000) where IsRootSpan()",
	    "set(parent_span_id.string, \"0000000000000000\") where IsRootSpan()",
	    "set(attributes[\"after\"], 1) where IsRootSpan()");
	assert_int_equal(e.errors, 2);
	Span *s0 = span_of(&e, 0);
	static const uint8_t zero[16];
	assert_int_equal(s0->span_id.len, 8);
	assert_memory_not_equal(s0->span_id.data, zero, 8);
	assert_int_equal(s0->trace_id.len, 16);
	assert_memory_not_equal(s0->trace_id.data, zero, 16);
	assert_non_null(sattr(&e, 0, "after"));
	assert_reader_takes(&e);
	edited_free(&e);
}

static void test_map_editors(void **state)
{
	(void)state;
	struct edited e = {0};
	RUN(&e, "delete_key(attributes, \"http.method\") where IsRootSpan()",
	    "delete_matching_keys(attributes, \"^ra\") where IsRootSpan()",
	    "keep_keys(attributes, [\"http.route\"]) where not IsRootSpan()",
	    "delete_key(attributes[\"http\"], \"host\") where IsRootSpan()");
	assert_int_equal(e.errors, 0);
	assert_null(sattr(&e, 0, "http.method"));
	assert_null(sattr(&e, 0, "ratio"));
	assert_null(sattr(&e, 0, "raw"));
	assert_non_null(sattr(&e, 0, "http.route"));
	assert_int_equal(span_of(&e, 0)->n_attributes, 6);
	assert_int_equal(sattr(&e, 0, "http")->kvlist_value->n_values, 1);
	assert_int_equal(span_of(&e, 1)->n_attributes, 1);
	edited_free(&e);

	struct edited k = {0};
	RUN(&k, "keep_matching_keys(attributes, \"^http\") where IsRootSpan()",
	    "keep_keys(attributes[\"http\"], [\"port\"]) where IsRootSpan()");
	assert_int_equal(span_of(&k, 0)->n_attributes, 4);
	assert_non_null(sattr(&k, 0, "http.status_code"));
	assert_int_equal(sattr(&k, 0, "http")->kvlist_value->n_values, 1);
	edited_free(&k);

	struct edited t = {0};
	RUN(&t, "truncate_all(attributes, 4) where IsRootSpan()");
	assert_string_equal(sval(sattr(&t, 0, "http.route")), "/use");
	assert_string_equal(sval(sattr(&t, 0, "http.method")), "GET");
	assert_string_equal(sval(sattr(&t, 0, "note")), "h\xc3\xa9l");
	edited_free(&t);

	struct edited u = {0};
	RUN(&u, "truncate_all(attributes, 2, true) where IsRootSpan()");
	assert_string_equal(sval(sattr(&u, 0, "note")), "h");      /* é is not cut in half */
	edited_free(&u);
	struct edited v = {0};
	RUN(&v, "truncate_all(attributes, 2, utf8_safe = false) where IsRootSpan()");
	assert_string_equal(sval(sattr(&v, 0, "note")), "h\xc3");
	edited_free(&v);
	struct edited m = {0};
	RUN(&m, "truncate_all(attributes, 8, truncation_marker = \"...\") where IsRootSpan()");
	assert_string_equal(sval(sattr(&m, 0, "http.route")), "/user...");
	assert_string_equal(sval(sattr(&m, 0, "http.method")), "GET");
	edited_free(&m);

	struct edited l = {0};
	RUN(&l, "limit(attributes, 3, [\"note\", \"ok\"]) where IsRootSpan()");
	Span *s0 = span_of(&l, 0);
	assert_int_equal(s0->n_attributes, 3);
	assert_non_null(sattr(&l, 0, "note"));
	assert_non_null(sattr(&l, 0, "ok"));
	assert_non_null(sattr(&l, 0, "http.route"));  /* the first non-priority entry */
	edited_free(&l);

	struct edited g = {0};
	RUN(&g, "merge_maps(attributes, resource.attributes, \"insert\") where IsRootSpan()",
	    "merge_maps(attributes, {\"http.method\": \"PUT\", \"added\": 1}, \"update\") where IsRootSpan()",
	    "merge_maps(attributes[\"http\"], {\"host\": \"y\", \"tls\": true}, \"upsert\") where IsRootSpan()");
	assert_string_equal(sval(sattr(&g, 0, "service.name")), "api");
	assert_string_equal(sval(sattr(&g, 0, "host.name")), "h1");
	assert_string_equal(sval(sattr(&g, 0, "http.method")), "PUT");
	assert_null(sattr(&g, 0, "added"));
	KVL *h = sattr(&g, 0, "http")->kvlist_value;
	assert_int_equal(h->n_values, 3);
	assert_string_equal(sval(attr(h->values, h->n_values, "host")), "y");
	edited_free(&g);
}

static void test_replace_editors(void **state)
{
	(void)state;
	struct edited e = {0};
	RUN(&e, "replace_pattern(attributes[\"http.route\"], \"/users/([a-z:]+)\", \"/u/$1\")",
	    "replace_pattern(name, \"(?P<verb>[A-Z]+) /users/\\\\d+\", \"${verb} /users/{id}$$\")",
	    "replace_pattern(attributes[\"note\"], \"o\", \"0\")",
	    "replace_pattern(attributes[\"http.method\"], \"x*\", \"-\")",
	    "replace_pattern(attributes[\"http.status_code\"], \"2\", \"3\")");
	assert_int_equal(e.errors, 0);
	assert_string_equal(sval(sattr(&e, 0, "http.route")), "/u/:id");
	assert_string_equal(span_of(&e, 0)->name, "GET /users/{id}$");
	assert_string_equal(sval(sattr(&e, 0, "note")), "h\xc3\xa9ll0 w0rld");
	assert_string_equal(sval(sattr(&e, 0, "http.method")), "-G-E-T-");   /* Go's empty-match rule */
	assert_int_equal(sattr(&e, 0, "http.status_code")->int_value, 200);   /* not a string: left alone */
	assert_string_equal(sval(sattr(&e, 1, "http.route")), "/healthz");
	edited_free(&e);

	struct edited f = {0};
	RUN(&f, "replace_pattern(attributes[\"http.route\"], \"^/users/(.*)$\", \"$1\", SHA256, \"/users/%s\") where IsRootSpan()",
	    "replace_all_patterns(attributes, \"value\", \"^/\", \"~\") where not IsRootSpan()",
	    "replace_all_patterns(attributes, \"key\", \"^http\\\\.\", \"h.\") where IsRootSpan()");
	assert_int_equal(f.errors, 0);
	assert_null(sattr(&f, 0, "http.route"));
	assert_string_equal(sval(sattr(&f, 0, "h.route")),
			    "/users/d0164bab65d1f84ffb074203c7cb554c08be4d026cab6b902b9c8691dc611bc0");
	assert_string_equal(sval(sattr(&f, 0, "h.method")), "GET");
	assert_string_equal(sval(sattr(&f, 1, "http.route")), "~healthz");
	edited_free(&f);

	struct edited g = {0};
	RUN(&g, "replace_match(attributes[\"http.route\"], \"/users/*\", \"/users/{id}\")",
	    "replace_match(name, \"/*/*\", \"never\")",
	    "replace_all_matches(attributes, \"G?T\", \"verb\") where IsRootSpan()",
	    "replace_match(attributes[\"note\"], \"h[a-z\xc3\xa9]llo*\", \"greeting\", SHA1)");
	assert_int_equal(g.errors, 0);
	assert_string_equal(sval(sattr(&g, 0, "http.route")), "/users/{id}");
	assert_string_equal(sval(sattr(&g, 1, "http.route")), "/healthz");
	assert_string_equal(span_of(&g, 1)->name, "/healthz");
	assert_string_equal(sval(sattr(&g, 0, "http.method")), "verb");
	assert_string_equal(sval(sattr(&g, 0, "note")), "a0f7e779f9247566c84036f07f7bdf4a40a869bd");
	edited_free(&g);
}

static void test_other_context_editors(void **state)
{
	(void)state;
	struct edited e = {0};
	RUN(&e, "set(resource.attributes[\"env\"], \"prod\")",
	    "delete_key(resource.attributes, \"host.name\")",
	    "set(scope.name, \"newlib\") where scope.version == \"1.0\"",
	    "set(scope.attributes[\"s\"], 1)",
	    "set(spanevent.attributes[\"seen\"], true) where spanevent.name == \"exception\"",
	    "set(spanevent.name, \"renamed\") where spanevent.name == \"log\"",
	    "set(span.attributes[\"env\"], resource.attributes[\"env\"]) where IsRootSpan()");
	assert_int_equal(e.errors, 0);
	RS *rs = e.req->resource_spans[0];
	assert_string_equal(sval(attr(rs->resource->attributes, rs->resource->n_attributes, "env")), "prod");
	assert_null(attr(rs->resource->attributes, rs->resource->n_attributes, "host.name"));
	Scope *sc = rs->scope_spans[0]->scope;
	assert_string_equal(sc->name, "newlib");
	assert_string_equal(sc->version, "1.0");
	assert_int_equal(attr(sc->attributes, sc->n_attributes, "s")->int_value, 1);
	Span *s0 = span_of(&e, 0);
	assert_true(attr(s0->events[0]->attributes, s0->events[0]->n_attributes, "seen")->bool_value);
	assert_string_equal(s0->events[1]->name, "renamed");
	assert_int_equal(s0->events[1]->time_unix_nano, 1001000001ull);
	/* the span statement saw the resource as its resource statements left it */
	assert_string_equal(sval(sattr(&e, 0, "env")), "prod");
	edited_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_literals_and_escapes),
		cmocka_unit_test(test_errors_name_the_token),
		cmocka_unit_test(test_context_inference),
		cmocka_unit_test(test_span_paths),
		cmocka_unit_test(test_attribute_paths),
		cmocka_unit_test(test_converters),
		cmocka_unit_test(test_runtime_errors),
		cmocka_unit_test(test_other_contexts),
		cmocka_unit_test(test_set_and_identity),
		cmocka_unit_test(test_set_nested_and_typed),
		cmocka_unit_test(test_set_depth_limit),
		cmocka_unit_test(test_set_zero_ids),
		cmocka_unit_test(test_map_editors),
		cmocka_unit_test(test_replace_editors),
		cmocka_unit_test(test_other_context_editors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
