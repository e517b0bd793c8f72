/* SPDX-License-Identifier: Apache-2.0
 * kn_test_traces: requests built from a table of spans, for the tail-sampling
 * tests (see kn_test_traces.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "kn_test_traces.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;


void kn_test_trace_id(uint8_t id[16], uint32_t t)
{
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(0x11 * (i + 1) ^ (t >> (8 * (i % 4))));
	id[0] = 0xab;
}

void kn_test_span_id(uint8_t id[8], uint32_t s)
{
	memset(id, 0, 8);
	memcpy(id, &s, 4);
	id[7] = 0xcd;
}

static KV *kv_str(const char *k, const char *v)
{
	KV *kv = malloc(sizeof *kv);
	AV *av = malloc(sizeof *av);
	opentelemetry__proto__common__v1__key_value__init(kv);
	opentelemetry__proto__common__v1__any_value__init(av);
	av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	av->string_value = strdup(v);
	kv->key = strdup(k);
	kv->value = av;
	return kv;
}

static void kv_free(KV *kv)
{
	free(kv->key);
	free(kv->value->string_value);
	free(kv->value);
	free(kv);
}

/* Packs the spans into a request (malloc'ed; *len its size). */
uint8_t *kn_test_pack(const struct kn_test_span *sp, size_t n, size_t *len)
{
	static const char *const res_keys[] = {"service.name", "service.version", "host.name",
					       "deployment.environment.name",
					       "telemetry.sdk.language"};
	static const char *const res_vals[] = {"checkout", "1.4.2", "node-12.cluster.local",
					       "production", "go"};
	Req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	req.resource_spans = calloc(n, sizeof *req.resource_spans);
	Opentelemetry__Proto__Resource__V1__Resource *res = calloc(n, sizeof *res);
	RS *rs = calloc(n, sizeof *rs);
	SS *ss = calloc(n, sizeof *ss);
	SS **ssp = calloc(n, sizeof *ssp);
	Opentelemetry__Proto__Common__V1__InstrumentationScope *scope = calloc(n, sizeof *scope);
	Span *spans = calloc(n, sizeof *spans);
	Span **spp = calloc(n, sizeof *spp);
	Opentelemetry__Proto__Trace__V1__Status *status = calloc(n, sizeof *status);
	char names[64][32];
	uint8_t ids[4096][32];
	assert_true(n <= 4096);
	size_t nrs = 0, nss = 0;
	for (size_t i = 0; i < n; i++) {
		const struct kn_test_span *t = &sp[i];
		int new_rs = i == 0 || t->res != sp[i - 1].res;
		if (new_rs) {
			opentelemetry__proto__resource__v1__resource__init(&res[nrs]);
			opentelemetry__proto__trace__v1__resource_spans__init(&rs[nrs]);
			uint32_t na = t->nres_attrs ? t->nres_attrs : 1;
			res[nrs].attributes = calloc(na, sizeof(KV *));
			res[nrs].n_attributes = na;
			for (uint32_t a = 0; a < na; a++) {
				char v[64];
				snprintf(v, sizeof v, "%s-%u", res_vals[a % 5], a == 0 ? t->res : a);
				res[nrs].attributes[a] = kv_str(res_keys[a % 5], v);
			}
			rs[nrs].resource = &res[nrs];
			rs[nrs].scope_spans = &ssp[nss];
			req.resource_spans[nrs] = &rs[nrs];
			nrs++;
		}
		if (new_rs || t->scope != sp[i - 1].scope) {
			opentelemetry__proto__trace__v1__scope_spans__init(&ss[nss]);
			opentelemetry__proto__common__v1__instrumentation_scope__init(&scope[nss]);
			snprintf(names[nss % 64], sizeof names[0], "lib-%u", t->scope);
			scope[nss].name = names[nss % 64];
			ss[nss].scope = &scope[nss];
			ss[nss].spans = &spp[i];
			ssp[nss] = &ss[nss];
			rs[nrs - 1].n_scope_spans++;
			nss++;
		}
		Span *s = &spans[i];
		opentelemetry__proto__trace__v1__span__init(s);
		kn_test_trace_id(ids[i], t->trace);
		kn_test_span_id(ids[i] + 16, t->span);
		s->trace_id = (ProtobufCBinaryData){16, ids[i]};
		s->span_id = (ProtobufCBinaryData){8, ids[i] + 16};
		if (t->parent) {
			kn_test_span_id(ids[i] + 24, t->parent);
			s->parent_span_id = (ProtobufCBinaryData){8, ids[i] + 24};
		}
		s->name = t->parent ? "GET /api/child" : "GET /api/root";
		s->start_time_unix_nano = t->start;
		s->end_time_unix_nano = t->end;
		s->kind = t->parent ? 3 : 2;
		s->flags = t->flags;
		if (t->tracestate)
			s->trace_state = (char *)t->tracestate;
		opentelemetry__proto__trace__v1__status__init(&status[i]);
		status[i].code = t->error ? 2 : 0;
		s->status = &status[i];
		if (t->nattrs) {
			s->attributes = calloc(t->nattrs, sizeof(KV *));
			s->n_attributes = t->nattrs;
			for (uint32_t a = 0; a < t->nattrs; a++) {
				char k[32], v[48];
				snprintf(k, sizeof k, "http.attr.%u", a);
				snprintf(v, sizeof v, "value-%u-%u", t->span, a);
				s->attributes[a] = kv_str(k, v);
			}
		}
		spp[i] = s;
		ss[nss - 1].n_spans++;
	}
	req.n_resource_spans = nrs;
	*len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	uint8_t *buf = malloc(*len ? *len : 1);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
	for (size_t i = 0; i < nrs; i++) {
		for (size_t a = 0; a < res[i].n_attributes; a++)
			kv_free(res[i].attributes[a]);
		free(res[i].attributes);
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t a = 0; a < spans[i].n_attributes; a++)
			kv_free(spans[i].attributes[a]);
		free(spans[i].attributes);
	}
	free(req.resource_spans);
	free(res);
	free(rs);
	free(ss);
	free(ssp);
	free(scope);
	free(spans);
	free(spp);
	free(status);
	return buf;
}
