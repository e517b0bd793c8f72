/* SPDX-License-Identifier: Apache-2.0
 * Tests of kn_pbjson (OTLP/JSON <-> protobuf): the spec-style trace example
 * against the same request built with protobuf-c, encode/decode round trips
 * of seeded random requests (every AnyValue type, events, links, status,
 * flags), the number, id, base64 and enum forms, and the errors (each names
 * its JSON path). Deterministic: a fixed-seed PRNG, no clocks, no I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/json/kn_pbjson.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse Resp;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess Partial;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event Event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link Link;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;
typedef Opentelemetry__Proto__Common__V1__ArrayValue ArrV;
typedef Opentelemetry__Proto__Common__V1__KeyValueList KVL;

#define REQ_DESC opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor
#define RESP_DESC opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor
#define PART_DESC opentelemetry__proto__collector__trace__v1__export_trace_partial_success__descriptor
#define RS_DESC opentelemetry__proto__trace__v1__resource_spans__descriptor
#define SS_DESC opentelemetry__proto__trace__v1__scope_spans__descriptor
#define SPAN_DESC opentelemetry__proto__trace__v1__span__descriptor
#define EVENT_DESC opentelemetry__proto__trace__v1__span__event__descriptor
#define LINK_DESC opentelemetry__proto__trace__v1__span__link__descriptor
#define STATUS_DESC opentelemetry__proto__trace__v1__status__descriptor
#define RES_DESC opentelemetry__proto__resource__v1__resource__descriptor
#define SCOPE_DESC opentelemetry__proto__common__v1__instrumentation_scope__descriptor
#define KV_DESC opentelemetry__proto__common__v1__key_value__descriptor
#define AV_DESC opentelemetry__proto__common__v1__any_value__descriptor
#define ARR_DESC opentelemetry__proto__common__v1__array_value__descriptor
#define KVL_DESC opentelemetry__proto__common__v1__key_value_list__descriptor

#define AVC(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x

/* ---- building messages on the heap, freed with free_unpacked(NULL) ---- */

static void *new_msg(const ProtobufCMessageDescriptor *d)
{
	void *m = malloc(d->sizeof_message);
	assert_non_null(m);
	d->message_init(m);
	return m;
}

/* Aborts on OOM (visibly noreturn, unlike cmocka's assertions). */
static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		abort();
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	assert_non_null(p);
	return p;
}

static ProtobufCBinaryData bin(const uint8_t *p, size_t n)
{
	ProtobufCBinaryData b = { 0, NULL };
	if (n) {
		b.data = malloc(n);
		assert_non_null(b.data);
		memcpy(b.data, p, n);
		b.len = n;
	}
	return b;
}

static void *arr(size_t n, size_t esz)
{
	void *p = calloc(n ? n : 1, esz);
	assert_non_null(p);
	return p;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
	*n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(*n ? *n : 1);
	assert_non_null(b);
	protobuf_c_message_pack(m, b);
	return b;
}

static KV *kv_str(const char *k, const char *v)
{
	KV *kv = new_msg(&KV_DESC);
	kv->key = xstrdup(k);
	kv->value = new_msg(&AV_DESC);
	kv->value->value_case = AVC(STRING_VALUE);
	kv->value->string_value = xstrdup(v);
	return kv;
}

static KV *kv_int(const char *k, int64_t v)
{
	KV *kv = new_msg(&KV_DESC);
	kv->key = xstrdup(k);
	kv->value = new_msg(&AV_DESC);
	kv->value->value_case = AVC(INT_VALUE);
	kv->value->int_value = v;
	return kv;
}

/* Asserts that json decodes (as a request) to exactly the bytes of want. */
static void assert_json_packs_to(const char *json, const ProtobufCMessage *want)
{
	struct kn_err err = { { 0 } };
	uint8_t *got = NULL;
	size_t got_n = 0, want_n;
	int rc = kn_pbjson_traces_to_proto(json, strlen(json), &got, &got_n, &err);
	if (rc != KN_OK)
		fail_msg("decode failed: %s", err.msg);
	uint8_t *w = pack(want, &want_n);
	assert_int_equal(got_n, want_n);
	assert_memory_equal(got, w, want_n);
	free(got);
	free(w);
}

/* Asserts that json is refused with KN_INVALID and a message containing part. */
static void assert_json_invalid(const char *json, const char *part)
{
	struct kn_err err = { { 0 } };
	uint8_t *got = NULL;
	size_t got_n = 0;
	int rc = kn_pbjson_traces_to_proto(json, strlen(json), &got, &got_n, &err);
	if (rc != KN_INVALID)
		fail_msg("expected KN_INVALID for %s, got %d", json, rc);
	assert_null(got);
	if (!strstr(err.msg, part))
		fail_msg("error \"%s\" does not contain \"%s\"", err.msg, part);
}

static const uint8_t TID[16] = { 0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
				 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c };
static const uint8_t SID[8] = { 0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74 };
static const uint8_t PID[8] = { 0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73 };

/* The request of the spec-style example below, built with protobuf-c. */
static Req *example_request(void)
{
	Req *req = new_msg(&REQ_DESC);
	req->n_resource_spans = 1;
	req->resource_spans = arr(1, sizeof(RS *));
	RS *rs = req->resource_spans[0] = new_msg(&RS_DESC);
	rs->resource = new_msg(&RES_DESC);
	rs->resource->n_attributes = 1;
	rs->resource->attributes = arr(1, sizeof(KV *));
	rs->resource->attributes[0] = kv_str("service.name", "my.service");
	rs->n_scope_spans = 1;
	rs->scope_spans = arr(1, sizeof(SS *));
	SS *ss = rs->scope_spans[0] = new_msg(&SS_DESC);
	ss->scope = new_msg(&SCOPE_DESC);
	ss->scope->name = xstrdup("my.library");
	ss->scope->version = xstrdup("1.0.0");
	ss->scope->n_attributes = 1;
	ss->scope->attributes = arr(1, sizeof(KV *));
	ss->scope->attributes[0] = kv_str("my.scope.attribute", "some scope attribute");
	ss->n_spans = 1;
	ss->spans = arr(1, sizeof(Span *));
	Span *sp = ss->spans[0] = new_msg(&SPAN_DESC);
	sp->trace_id = bin(TID, 16);
	sp->span_id = bin(SID, 8);
	sp->parent_span_id = bin(PID, 8);
	sp->name = xstrdup("I'm a server span");
	sp->start_time_unix_nano = 1544712660000000000ull;
	sp->end_time_unix_nano = 1544712661000000000ull;
	sp->kind = 2;
	sp->flags = 0x301;
	sp->n_attributes = 2;
	sp->attributes = arr(2, sizeof(KV *));
	sp->attributes[0] = kv_str("my.span.attr", "some value");
	sp->attributes[1] = kv_int("http.status_code", 200);
	sp->status = new_msg(&STATUS_DESC);
	sp->status->code = 2;
	sp->status->message = xstrdup("boom");
	return req;
}

static const char EXAMPLE[] =
	"{\n"
	" \"resourceSpans\": [{\n"
	"  \"resource\": {\"attributes\": [{\"key\": \"service.name\", \"value\": {\"stringValue\": \"my.service\"}}]},\n"
	"  \"scopeSpans\": [{\n"
	"   \"scope\": {\"name\": \"my.library\", \"version\": \"1.0.0\",\n"
	"    \"attributes\": [{\"key\": \"my.scope.attribute\", \"value\": {\"stringValue\": \"some scope attribute\"}}]},\n"
	"   \"spans\": [{\n"
	"     \"traceId\": \"5B8EFFF798038103D269B633813FC60C\",\n"
	"     \"spanId\": \"EEE19B7EC3C1B174\",\n"
	"     \"parentSpanId\": \"EEE19B7EC3C1B173\",\n"
	"     \"name\": \"I'm a server span\",\n"
	"     \"startTimeUnixNano\": \"1544712660000000000\",\n"
	"     \"endTimeUnixNano\": \"1544712661000000000\",\n"
	"     \"kind\": 2,\n"
	"     \"flags\": 769,\n"
	"     \"attributes\": [\n"
	"      {\"key\": \"my.span.attr\", \"value\": {\"stringValue\": \"some value\"}},\n"
	"      {\"key\": \"http.status_code\", \"value\": {\"intValue\": \"200\"}}],\n"
	"     \"status\": {\"code\": 2, \"message\": \"boom\"}\n"
	"   }]\n"
	"  }]\n"
	" }]\n"
	"}\n";

static void test_spec_example(void **state)
{
	(void)state;
	Req *req = example_request();
	assert_json_packs_to(EXAMPLE, &req->base);

	/* And back: the proto -> JSON -> proto trip gives the same bytes, with
	 * lower-case hex ids and 64-bit integers as strings. */
	size_t n;
	uint8_t *pb = pack(&req->base, &n);
	char *json = NULL;
	size_t json_n = 0;
	struct kn_err err = { { 0 } };
	assert_int_equal(kn_pbjson_traces_from_proto(pb, n, &json, &json_n, &err), KN_OK);
	assert_int_equal(strlen(json), json_n);
	assert_non_null(strstr(json, "\"traceId\":\"5b8efff798038103d269b633813fc60c\""));
	assert_non_null(strstr(json, "\"startTimeUnixNano\":\"1544712660000000000\""));
	assert_non_null(strstr(json, "\"kind\":2"));
	assert_non_null(strstr(json, "\"flags\":769"));
	assert_non_null(strstr(json, "\"intValue\":\"200\""));
	assert_null(strstr(json, "droppedAttributesCount")); /* defaults omitted */
	assert_json_packs_to(json, &req->base);
	free(json);
	free(pb);
	protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* ---- random requests ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static char *rnd_str(void)
{
	static const char *pieces[] = { "", "a", "http.method", "ünïcødé", "日本", "q\"uote",
					"back\\slash", "new\nline", "tab\t", "\x01\x1f", "😀",
					"/path?x=1&y=2" };
	char buf[128] = "";
	int k = (int)(rnd() % 4);
	for (int i = 0; i < k; i++)
		strcat(buf, pieces[rnd() % (sizeof pieces / sizeof *pieces)]);
	return xstrdup(buf);
}

static ProtobufCBinaryData rnd_bin(size_t n)
{
	uint8_t b[32];
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
	return bin(b, n);
}

static KV **rnd_attrs(size_t *n, int depth);

static AV *rnd_value(int depth)
{
	AV *v = new_msg(&AV_DESC);
	static const double doubles[] = { 0.0, -0.0, 1.5, -2.25, 0.1, 1e300, -1e-300, 3.0,
					  123456789.123, 5e-324 };
	switch (rnd() % (depth > 3 ? 5 : 7)) {
	case 0:
		v->value_case = AVC(STRING_VALUE);
		v->string_value = rnd_str();
		break;
	case 1:
		v->value_case = AVC(BOOL_VALUE);
		v->bool_value = (protobuf_c_boolean)(rnd() % 2);
		break;
	case 2:
		v->value_case = AVC(INT_VALUE);
		switch (rnd() % 4) {
		case 0: v->int_value = 0; break;
		case 1: v->int_value = INT64_MIN; break;
		case 2: v->int_value = INT64_MAX; break;
		default: v->int_value = (int64_t)rnd(); break;
		}
		break;
	case 3:
		v->value_case = AVC(DOUBLE_VALUE);
		switch (rnd() % 4) {
		case 0: v->double_value = NAN; break;
		case 1: v->double_value = (rnd() % 2) ? INFINITY : -INFINITY; break;
		case 2: v->double_value = doubles[rnd() % (sizeof doubles / sizeof *doubles)]; break;
		default: {
			uint64_t bits = rnd();
			memcpy(&v->double_value, &bits, sizeof bits);
			if (!isfinite(v->double_value))
				v->double_value = 42.0;
		}
		}
		break;
	case 4:
		v->value_case = AVC(BYTES_VALUE);
		v->bytes_value = rnd_bin(rnd() % 7);
		break;
	case 5: {
		v->value_case = AVC(ARRAY_VALUE);
		ArrV *a = v->array_value = new_msg(&ARR_DESC);
		a->n_values = rnd() % 4;
		a->values = a->n_values ? arr(a->n_values, sizeof(AV *)) : NULL;
		for (size_t i = 0; i < a->n_values; i++)
			a->values[i] = rnd_value(depth + 1);
		break;
	}
	default: {
		v->value_case = AVC(KVLIST_VALUE);
		KVL *l = v->kvlist_value = new_msg(&KVL_DESC);
		l->values = rnd_attrs(&l->n_values, depth + 1);
		break;
	}
	}
	return v;
}

static KV **rnd_attrs(size_t *n, int depth)
{
	*n = rnd() % 4;
	if (!*n)
		return NULL;
	KV **a = arr(*n, sizeof(KV *));
	for (size_t i = 0; i < *n; i++) {
		a[i] = new_msg(&KV_DESC);
		a[i]->key = rnd_str();
		if (rnd() % 8)
			a[i]->value = rnd_value(depth);
	}
	return a;
}

static Span *rnd_span(void)
{
	Span *s = new_msg(&SPAN_DESC);
	s->trace_id = rnd_bin(16);
	s->span_id = rnd_bin(8);
	if (rnd() % 2)
		s->parent_span_id = rnd_bin(8);
	s->trace_state = rnd_str();
	s->flags = (uint32_t)rnd() % 2 ? 0x301 : 0;
	s->name = rnd_str();
	s->kind = (int)(rnd() % 6);
	s->start_time_unix_nano = rnd();
	s->end_time_unix_nano = rnd() % 2 ? UINT64_MAX : 0;
	s->attributes = rnd_attrs(&s->n_attributes, 0);
	s->dropped_attributes_count = (uint32_t)(rnd() % 3);
	s->n_events = rnd() % 3;
	s->events = s->n_events ? arr(s->n_events, sizeof(Event *)) : NULL;
	for (size_t i = 0; i < s->n_events; i++) {
		Event *e = s->events[i] = new_msg(&EVENT_DESC);
		e->time_unix_nano = rnd();
		e->name = rnd_str();
		e->attributes = rnd_attrs(&e->n_attributes, 0);
		e->dropped_attributes_count = (uint32_t)(rnd() % 2) * UINT32_MAX;
	}
	s->dropped_events_count = (uint32_t)(rnd() % 2);
	s->n_links = rnd() % 3;
	s->links = s->n_links ? arr(s->n_links, sizeof(Link *)) : NULL;
	for (size_t i = 0; i < s->n_links; i++) {
		Link *l = s->links[i] = new_msg(&LINK_DESC);
		l->trace_id = rnd_bin(16);
		l->span_id = rnd_bin(8);
		l->trace_state = rnd_str();
		l->attributes = rnd_attrs(&l->n_attributes, 0);
		l->flags = (uint32_t)rnd();
	}
	s->dropped_links_count = (uint32_t)(rnd() % 2);
	if (rnd() % 3) {
		s->status = new_msg(&STATUS_DESC);
		s->status->code = (int)(rnd() % 3);
		s->status->message = rnd_str();
	}
	return s;
}

static Req *rnd_request(void)
{
	Req *req = new_msg(&REQ_DESC);
	req->n_resource_spans = 1 + rnd() % 2;
	req->resource_spans = arr(req->n_resource_spans, sizeof(RS *));
	for (size_t r = 0; r < req->n_resource_spans; r++) {
		RS *rs = req->resource_spans[r] = new_msg(&RS_DESC);
		if (rnd() % 4) {
			rs->resource = new_msg(&RES_DESC);
			rs->resource->attributes = rnd_attrs(&rs->resource->n_attributes, 0);
		}
		rs->schema_url = rnd_str();
		rs->n_scope_spans = rnd() % 3;
		rs->scope_spans = rs->n_scope_spans ? arr(rs->n_scope_spans, sizeof(SS *)) : NULL;
		for (size_t s = 0; s < rs->n_scope_spans; s++) {
			SS *ss = rs->scope_spans[s] = new_msg(&SS_DESC);
			if (rnd() % 2) {
				ss->scope = new_msg(&SCOPE_DESC);
				ss->scope->name = rnd_str();
				ss->scope->version = rnd_str();
			}
			ss->n_spans = rnd() % 4;
			ss->spans = ss->n_spans ? arr(ss->n_spans, sizeof(Span *)) : NULL;
			for (size_t k = 0; k < ss->n_spans; k++)
				ss->spans[k] = rnd_span();
		}
	}
	return req;
}

static void test_roundtrip_random(void **state)
{
	(void)state;
	for (int iter = 0; iter < 300; iter++) {
		Req *req = rnd_request();
		size_t n1;
		uint8_t *pb1 = pack(&req->base, &n1);

		/* message -> JSON -> message */
		char *json = NULL;
		size_t jn = 0;
		assert_int_equal(kn_pbjson_encode(&req->base, &json, &jn), KN_OK);
		ProtobufCMessage *back = NULL;
		struct kn_err err = { { 0 } };
		int rc = kn_pbjson_decode(&REQ_DESC, json, jn, &back, &err);
		if (rc != KN_OK)
			fail_msg("iteration %d: %s\n%s", iter, err.msg, json);
		size_t n2;
		uint8_t *pb2 = pack(back, &n2);
		if (n1 != n2 || memcmp(pb1, pb2, n1) != 0)
			fail_msg("iteration %d: round trip differs\n%s", iter, json);

		/* bytes -> JSON -> bytes through the convenience functions */
		char *json2 = NULL;
		size_t jn2 = 0;
		assert_int_equal(kn_pbjson_traces_from_proto(pb1, n1, &json2, &jn2, &err), KN_OK);
		assert_string_equal(json, json2);
		uint8_t *pb3 = NULL;
		size_t n3 = 0;
		assert_int_equal(kn_pbjson_traces_to_proto(json2, jn2, &pb3, &n3, &err), KN_OK);
		assert_int_equal(n3, n1);
		assert_memory_equal(pb3, pb1, n1);

		free(pb3);
		free(json2);
		free(pb2);
		protobuf_c_message_free_unpacked(back, NULL);
		free(json);
		free(pb1);
		protobuf_c_message_free_unpacked(&req->base, NULL);
	}
}

/* A one-span request whose span is given by `span` (a JSON object body). */
static char *span_json(const char *span)
{
	static char buf[4096];
	snprintf(buf, sizeof buf,
		 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{%s}]}]}]}", span);
	return buf;
}

static Req *one_span_request(Span **out)
{
	Req *req = new_msg(&REQ_DESC);
	req->n_resource_spans = 1;
	req->resource_spans = arr(1, sizeof(RS *));
	RS *rs = req->resource_spans[0] = new_msg(&RS_DESC);
	rs->n_scope_spans = 1;
	rs->scope_spans = arr(1, sizeof(SS *));
	SS *ss = rs->scope_spans[0] = new_msg(&SS_DESC);
	ss->n_spans = 1;
	ss->spans = arr(1, sizeof(Span *));
	*out = ss->spans[0] = new_msg(&SPAN_DESC);
	return req;
}

#define SPAN0 "resourceSpans[0].scopeSpans[0].spans[0]."

static void test_ints_as_strings_and_numbers(void **state)
{
	(void)state;
	Span *sp;
	Req *req = one_span_request(&sp);
	sp->start_time_unix_nano = 1700000000123456789ull;
	sp->end_time_unix_nano = 18446744073709551615ull;
	sp->dropped_attributes_count = 3;
	sp->kind = 3;
	sp->n_attributes = 1;
	sp->attributes = arr(1, sizeof(KV *));
	sp->attributes[0] = kv_int("n", -5);

	assert_json_packs_to(span_json("\"startTimeUnixNano\":\"1700000000123456789\","
				       "\"endTimeUnixNano\":\"18446744073709551615\","
				       "\"droppedAttributesCount\":3,\"kind\":3,"
				       "\"attributes\":[{\"key\":\"n\",\"value\":{\"intValue\":\"-5\"}}]"),
			     &req->base);
	assert_json_packs_to(span_json("\"startTimeUnixNano\":1700000000123456789,"
				       "\"endTimeUnixNano\":\"18446744073709551615\","
				       "\"droppedAttributesCount\":\"3\",\"kind\":\"3\","
				       "\"attributes\":[{\"key\":\"n\",\"value\":{\"intValue\":-5}}]"),
			     &req->base);
	/* integral reals and enum names */
	assert_json_packs_to(span_json("\"startTimeUnixNano\":\"1700000000123456789\","
				       "\"endTimeUnixNano\":\"18446744073709551615\","
				       "\"droppedAttributesCount\":3.0,\"kind\":\"SPAN_KIND_CLIENT\","
				       "\"attributes\":[{\"key\":\"n\",\"value\":{\"intValue\":-5e0}}]"),
			     &req->base);
	protobuf_c_message_free_unpacked(&req->base, NULL);

	assert_json_invalid(span_json("\"startTimeUnixNano\":\"abc\""),
			    SPAN0 "startTimeUnixNano: expected an integer, got \"abc\"");
	assert_json_invalid(span_json("\"startTimeUnixNano\":1.5"),
			    SPAN0 "startTimeUnixNano: expected an integer, got 1.5");
	assert_json_invalid(span_json("\"startTimeUnixNano\":\"1.5\""), "expected an integer");
	assert_json_invalid(span_json("\"startTimeUnixNano\":\" 12\""), "expected an integer");
	assert_json_invalid(span_json("\"startTimeUnixNano\":\"\""), "expected an integer");
	assert_json_invalid(span_json("\"startTimeUnixNano\":\"18446744073709551616\""),
			    SPAN0 "startTimeUnixNano: uint64 out of range");
	assert_json_invalid(span_json("\"startTimeUnixNano\":-1"), "uint64 out of range");
	assert_json_invalid(span_json("\"startTimeUnixNano\":true"), "expected an integer, got true");
	assert_json_invalid(span_json("\"droppedAttributesCount\":4294967296"),
			    SPAN0 "droppedAttributesCount: uint32 out of range");
	assert_json_invalid(span_json("\"kind\":\"SPAN_KIND_NOPE\""),
			    SPAN0 "kind: \"SPAN_KIND_NOPE\" is not a value of enum");
	assert_json_invalid(span_json("\"kind\":2147483648"), "enum out of range");
	assert_json_invalid(span_json("\"attributes\":[{\"key\":\"n\",\"value\":{\"intValue\":\"9223372036854775808\"}}]"),
			    SPAN0 "attributes[0].value.intValue: int64 out of range");
	assert_json_invalid(span_json("\"name\":5"), SPAN0 "name: expected a string, got 5");
	assert_json_invalid(span_json("\"attributes\":{}"), SPAN0 "attributes: expected an array");
	assert_json_invalid(span_json("\"status\":[]"), SPAN0 "status: expected an object");
	assert_json_invalid(span_json("\"attributes\":[null]"), SPAN0 "attributes[0]: null");
}

static void test_doubles_and_bools(void **state)
{
	(void)state;
	static const struct {
		const char *json;
		double want;
	} cases[] = {
		{ "1.5", 1.5 }, { "\"1.5\"", 1.5 }, { "7", 7.0 }, { "\"-2e3\"", -2000.0 },
		{ "\"Infinity\"", INFINITY }, { "\"-Infinity\"", -INFINITY },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char body[256];
		snprintf(body, sizeof body,
			 "\"attributes\":[{\"key\":\"d\",\"value\":{\"doubleValue\":%s}}]",
			 cases[i].json);
		ProtobufCMessage *m = NULL;
		struct kn_err err = { { 0 } };
		const char *j = span_json(body);
		assert_int_equal(kn_pbjson_decode(&REQ_DESC, j, strlen(j), &m, &err), KN_OK);
		Req *r = (Req *)m;
		AV *v = r->resource_spans[0]->scope_spans[0]->spans[0]->attributes[0]->value;
		assert_int_equal(v->value_case, AVC(DOUBLE_VALUE));
		assert_true(v->double_value == cases[i].want);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	const char *j = span_json("\"attributes\":[{\"key\":\"d\",\"value\":{\"doubleValue\":\"NaN\"}},"
				  "{\"key\":\"b\",\"value\":{\"boolValue\":true}}]");
	ProtobufCMessage *m = NULL;
	assert_int_equal(kn_pbjson_decode(&REQ_DESC, j, strlen(j), &m, NULL), KN_OK);
	Span *sp = ((Req *)m)->resource_spans[0]->scope_spans[0]->spans[0];
	assert_true(isnan(sp->attributes[0]->value->double_value));
	assert_int_equal(sp->attributes[1]->value->value_case, AVC(BOOL_VALUE));
	assert_true(sp->attributes[1]->value->bool_value);
	protobuf_c_message_free_unpacked(m, NULL);

	assert_json_invalid(span_json("\"attributes\":[{\"key\":\"d\",\"value\":{\"doubleValue\":\"inf\"}}]"),
			    SPAN0 "attributes[0].value.doubleValue: expected a number, got \"inf\"");
	assert_json_invalid(span_json("\"attributes\":[{\"key\":\"d\",\"value\":{\"doubleValue\":\"0x10\"}}]"),
			    "expected a number");
	assert_json_invalid(span_json("\"attributes\":[{\"key\":\"d\",\"value\":{\"doubleValue\":\"1e999\"}}]"),
			    "number out of range");
	assert_json_invalid(span_json("\"attributes\":[{\"key\":\"b\",\"value\":{\"boolValue\":\"true\"}}]"),
			    "boolValue: expected true or false");
}

static void test_hex_ids(void **state)
{
	(void)state;
	Span *sp;
	Req *req = one_span_request(&sp);
	sp->trace_id = bin(TID, 16);
	sp->span_id = bin(SID, 8);
	sp->n_links = 1;
	sp->links = arr(1, sizeof(Link *));
	sp->links[0] = new_msg(&LINK_DESC);
	sp->links[0]->trace_id = bin(TID, 16);
	sp->links[0]->span_id = bin(PID, 8);

	assert_json_packs_to(span_json("\"traceId\":\"5b8efff798038103d269b633813fc60c\","
				       "\"spanId\":\"eee19b7ec3c1b174\",\"parentSpanId\":\"\","
				       "\"links\":[{\"traceId\":\"5b8efff798038103d269b633813fc60c\","
				       "\"spanId\":\"eee19b7ec3c1b173\"}]"),
			     &req->base);
	assert_json_packs_to(span_json("\"traceId\":\"5B8EFFF798038103D269B633813FC60C\","
				       "\"spanId\":\"EEE19b7eC3C1B174\","
				       "\"links\":[{\"trace_id\":\"5B8EFFF798038103D269B633813FC60C\","
				       "\"span_id\":\"EEE19B7EC3C1B173\"}]"),
			     &req->base);
	protobuf_c_message_free_unpacked(&req->base, NULL);

	/* Even-length hex of the wrong size decodes: the wire reader rejects that
	 * span alone (partial success), as for the same bytes in protobuf. */
	{
		const char *j = span_json("\"traceId\":\"5b8efff798038103d269b633813fc6\"");
		struct kn_err err = { { 0 } };
		ProtobufCMessage *m = NULL;
		assert_int_equal(kn_pbjson_decode(&REQ_DESC, j, strlen(j), &m, &err), KN_OK);
		Req *r = (Req *)m;
		assert_int_equal(r->resource_spans[0]->scope_spans[0]->spans[0]->trace_id.len, 15);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	assert_json_invalid(span_json("\"spanId\":\"eee19b7ec3c1b1745\""),
			    SPAN0 "spanId: expected 16 hex characters, got 17");
	assert_json_invalid(span_json("\"parentSpanId\":\"eee19b7ec3c1b17g\""),
			    SPAN0 "parentSpanId: not a hex string: \"eee19b7ec3c1b17g\"");
	assert_json_invalid(span_json("\"links\":[{},{\"spanId\":\"zz\"}]"),
			    SPAN0 "links[1].spanId: not a hex string: \"zz\"");
	/* base64 of the same 16 bytes is not accepted for an id */
	assert_json_invalid(span_json("\"traceId\":\"W47/95gDgQPSabYzgT/GDA==\""), SPAN0 "traceId");
}

static void test_base64_bytes(void **state)
{
	(void)state;
	static const uint8_t raw[] = { 0xfb, 0xff, 0x00, 0x41 };
	Span *sp;
	Req *req = one_span_request(&sp);
	sp->n_attributes = 1;
	sp->attributes = arr(1, sizeof(KV *));
	KV *kv = sp->attributes[0] = new_msg(&KV_DESC);
	kv->key = xstrdup("b");
	kv->value = new_msg(&AV_DESC);
	kv->value->value_case = AVC(BYTES_VALUE);
	kv->value->bytes_value = bin(raw, sizeof raw);

	const char *forms[] = { "+/8AQQ==", "+/8AQQ", "-_8AQQ==", "-_8AQQ" };
	for (size_t i = 0; i < 4; i++) {
		char body[200];
		snprintf(body, sizeof body,
			 "\"attributes\":[{\"key\":\"b\",\"value\":{\"bytesValue\":\"%s\"}}]", forms[i]);
		assert_json_packs_to(span_json(body), &req->base);
	}
	char *json = NULL;
	assert_int_equal(kn_pbjson_encode(&req->base, &json, NULL), KN_OK);
	assert_non_null(strstr(json, "\"bytesValue\":\"+/8AQQ==\""));
	free(json);
	protobuf_c_message_free_unpacked(&req->base, NULL);

	assert_json_invalid(span_json("\"attributes\":[{\"key\":\"b\",\"value\":{\"bytesValue\":\"+/8AQ\"}}]"),
			    SPAN0 "attributes[0].value.bytesValue: not base64");
	assert_json_invalid(span_json("\"attributes\":[{\"key\":\"b\",\"value\":{\"bytesValue\":\"a=bc\"}}]"),
			    "not base64");
	assert_json_invalid(span_json("\"attributes\":[{\"key\":\"b\",\"value\":{\"bytesValue\":\"ab c\"}}]"),
			    "not base64");
}

static void test_unknown_fields_and_nulls(void **state)
{
	(void)state;
	Span *sp;
	Req *req = one_span_request(&sp);
	sp->name = xstrdup("n");
	sp->kind = 1;
	assert_json_packs_to("{\"future\":{\"a\":[1,{\"b\":null}]},\"resourceSpans\":[{\"x\":1,"
			     "\"scopeSpans\":[{\"spans\":[{\"name\":\"n\",\"kind\":1,\"newField\":\"v\","
			     "\"status\":null,\"traceId\":null,\"attributes\":null}],\"y\":[]}]}],\"z\":true}",
			     &req->base);
	/* snake_case keys are accepted */
	assert_json_packs_to("{\"resource_spans\":[{\"scope_spans\":[{\"spans\":[{\"name\":\"n\",\"kind\":1}]}]}]}",
			     &req->base);
	protobuf_c_message_free_unpacked(&req->base, NULL);

	/* both spellings of one field, or a repeated key: refused */
	assert_json_invalid(span_json("\"spanId\":\"\",\"span_id\":\"\""), SPAN0 "span_id: field given twice");
	assert_json_invalid(span_json("\"name\":\"a\",\"name\":\"b\""), "duplicate");
}

static void test_oneof(void **state)
{
	(void)state;
	assert_json_invalid(span_json("\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":\"s\",\"intValue\":1}}]"),
			    SPAN0 "attributes[0].value.intValue: only one member of a oneof may be set, stringValue is set already");
	/* a null member is absent, so this is fine; an empty oneof value is kept */
	Span *sp;
	Req *req = one_span_request(&sp);
	sp->n_attributes = 2;
	sp->attributes = arr(2, sizeof(KV *));
	sp->attributes[0] = kv_int("k", 0);
	sp->attributes[1] = kv_str("e", "");
	assert_json_packs_to(span_json("\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":null,\"intValue\":0}},"
				       "{\"key\":\"e\",\"value\":{\"stringValue\":\"\"}}]"),
			     &req->base);
	char *json = NULL;
	assert_int_equal(kn_pbjson_encode(&req->base, &json, NULL), KN_OK);
	assert_non_null(strstr(json, "{\"key\":\"k\",\"value\":{\"intValue\":\"0\"}}"));
	assert_non_null(strstr(json, "{\"key\":\"e\",\"value\":{\"stringValue\":\"\"}}"));
	free(json);
	protobuf_c_message_free_unpacked(&req->base, NULL);
}

static char *nested_kvlist(int levels)
{
	size_t cap = (size_t)levels * 64 + 256;
	char *s = xmalloc(cap);
	size_t n = (size_t)sprintf(s, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
	for (int i = 0; i < levels; i++)
		n += (size_t)sprintf(s + n, "{\"key\":\"k\",\"value\":{\"kvlistValue\":{\"values\":[");
	for (int i = 0; i < levels; i++)
		n += (size_t)sprintf(s + n, "]}}}");
	sprintf(s + n, "]}}]}");
	return s;
}

static void test_deep_nesting(void **state)
{
	(void)state;
	/* depth: request 1, ResourceSpans 2, Resource 3, then 3 per kvlist level */
	char *ok = nested_kvlist(15);
	ProtobufCMessage *m = NULL;
	struct kn_err err = { { 0 } };
	assert_int_equal(kn_pbjson_decode(&REQ_DESC, ok, strlen(ok), &m, &err), KN_OK);
	char *json = NULL;
	assert_int_equal(kn_pbjson_encode(m, &json, NULL), KN_OK);
	free(json);
	protobuf_c_message_free_unpacked(m, NULL);
	free(ok);

	char *deep = nested_kvlist(25); /* 78 messages deep, 100 JSON levels */
	assert_int_equal(kn_pbjson_decode(&REQ_DESC, deep, strlen(deep), &m, &err), KN_INVALID);
	assert_null(m);
	assert_non_null(strstr(err.msg, "nested deeper than 64"));
	assert_non_null(strstr(err.msg, "resourceSpans[0].resource.attributes[0].value.kvlistValue"));
	free(deep);

	/* deep arrays under an unknown key: jansson's own depth limit */
	size_t n = 100000;
	char *arrs = xmalloc(2 * n + 64);
	size_t o = (size_t)sprintf(arrs, "{\"x\":");
	memset(arrs + o, '[', n);
	memset(arrs + o + n, ']', n);
	strcpy(arrs + o + 2 * n, "}");
	assert_int_equal(kn_pbjson_decode(&REQ_DESC, arrs, strlen(arrs), &m, &err), KN_INVALID);
	assert_non_null(strstr(err.msg, "invalid JSON"));
	free(arrs);

	/* the encoder refuses what it could not decode either */
	AV *top = new_msg(&AV_DESC), *cur = top;
	for (int i = 0; i < 100; i++) {
		cur->value_case = AVC(ARRAY_VALUE);
		cur->array_value = new_msg(&ARR_DESC);
		cur->array_value->n_values = 1;
		cur->array_value->values = arr(1, sizeof(AV *));
		cur = cur->array_value->values[0] = new_msg(&AV_DESC);
	}
	json = NULL;
	assert_int_equal(kn_pbjson_encode(&top->base, &json, NULL), KN_ERR);
	assert_null(json);
	protobuf_c_message_free_unpacked(&top->base, NULL);
}

static void test_invalid_json(void **state)
{
	(void)state;
	assert_json_invalid("{\"resourceSpans\": [", "invalid JSON");
	assert_json_invalid("{\n\"resourceSpans\": [}", "line 2 column");
	assert_json_invalid("", "invalid JSON");
	assert_json_invalid("{} x", "invalid JSON");
	assert_json_invalid("[]", "(top level): expected an object, got an array");
	assert_json_invalid("{\"resourceSpans\":[1]}", "resourceSpans[0]: expected an object, got 1");
	assert_json_invalid("{\"resourceSpans\":\"\\u0000\"}", "invalid JSON");

	struct kn_err err = { { 0 } };
	char *json = NULL;
	size_t n = 0;
	static const uint8_t garbage[] = { 0x0a, 0x05, 0x01 };
	assert_int_equal(kn_pbjson_traces_from_proto(garbage, sizeof garbage, &json, &n, &err),
			 KN_INVALID);
	assert_null(json);
	assert_non_null(strstr(err.msg, "ExportTraceServiceRequest"));

	/* empty request <-> {} */
	assert_int_equal(kn_pbjson_traces_from_proto(garbage, 0, &json, &n, &err), KN_OK);
	assert_string_equal(json, "{}");
	free(json);
}

static void test_response_partial_success(void **state)
{
	(void)state;
	Resp resp = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
	Partial ps = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
	char *json = NULL;
	size_t n = 0;
	assert_int_equal(kn_pbjson_encode(&resp.base, &json, &n), KN_OK);
	assert_string_equal(json, "{}");
	free(json);

	ps.rejected_spans = 2;
	ps.error_message = "2 spans had \"bad\" ids";
	resp.partial_success = &ps;
	assert_int_equal(kn_pbjson_encode(&resp.base, &json, &n), KN_OK);
	assert_string_equal(json, "{\"partialSuccess\":{\"rejectedSpans\":\"2\","
				  "\"errorMessage\":\"2 spans had \\\"bad\\\" ids\"}}");
	assert_int_equal(n, strlen(json));

	ProtobufCMessage *m = NULL;
	struct kn_err err = { { 0 } };
	assert_int_equal(kn_pbjson_decode(&RESP_DESC, json, n, &m, &err), KN_OK);
	Resp *r = (Resp *)m;
	assert_non_null(r->partial_success);
	assert_int_equal(r->partial_success->rejected_spans, 2);
	assert_string_equal(r->partial_success->error_message, ps.error_message);
	protobuf_c_message_free_unpacked(m, NULL);
	free(json);

	/* present but empty partial_success stays present */
	ps.rejected_spans = 0;
	ps.error_message = "";
	assert_int_equal(kn_pbjson_encode(&resp.base, &json, &n), KN_OK);
	assert_string_equal(json, "{\"partialSuccess\":{}}");
	free(json);
}

static void test_string_escaping(void **state)
{
	(void)state;
	Span *sp;
	Req *req = one_span_request(&sp);
	sp->name = xstrdup("a\"b\\c\n\x01/\xc3\xa9\xff\xe2\x82z");
	char *json = NULL;
	assert_int_equal(kn_pbjson_encode(&req->base, &json, NULL), KN_OK);
	assert_non_null(strstr(json, "\"name\":\"a\\\"b\\\\c\\n\\u0001/\xc3\xa9\\ufffd\\ufffd\\ufffdz\""));
	/* the output is valid JSON that decodes again */
	ProtobufCMessage *m = NULL;
	struct kn_err err = { { 0 } };
	assert_int_equal(kn_pbjson_decode(&REQ_DESC, json, strlen(json), &m, &err), KN_OK);
	protobuf_c_message_free_unpacked(m, NULL);
	free(json);
	protobuf_c_message_free_unpacked(&req->base, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_example),
		cmocka_unit_test(test_roundtrip_random),
		cmocka_unit_test(test_ints_as_strings_and_numbers),
		cmocka_unit_test(test_doubles_and_bools),
		cmocka_unit_test(test_hex_ids),
		cmocka_unit_test(test_base64_bytes),
		cmocka_unit_test(test_unknown_fields_and_nulls),
		cmocka_unit_test(test_oneof),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_invalid_json),
		cmocka_unit_test(test_response_partial_success),
		cmocka_unit_test(test_string_escaping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
