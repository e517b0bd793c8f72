/* SPDX-License-Identifier: Apache-2.0
 * kn_test_chunks: chunks and batches built from requests packed with
 * protobuf-c, for the exporter tests (see kn_test_chunks.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "collector/core/kn_err.h"
#include "collector/core/kn_tracectx.h"
#include "kn_test_chunks.h"
struct kn_chunk *kn_test_chunk(uint32_t seed, uint32_t nres, uint32_t nspans, size_t pad)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	uint32_t total = nres * nspans;
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = calloc(nres, sizeof *rs);
	Opentelemetry__Proto__Trace__V1__ResourceSpans **rsp = calloc(nres, sizeof *rsp);
	Opentelemetry__Proto__Resource__V1__Resource *res = calloc(nres, sizeof *res);
	Opentelemetry__Proto__Common__V1__KeyValue *rkv = calloc(nres, sizeof *rkv);
	Opentelemetry__Proto__Common__V1__KeyValue **rkvp = calloc(nres, sizeof *rkvp);
	Opentelemetry__Proto__Common__V1__AnyValue *rav = calloc(nres, sizeof *rav);
	Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = calloc(nres, sizeof *ss);
	Opentelemetry__Proto__Trace__V1__ScopeSpans **ssp = calloc(nres, sizeof *ssp);
	Opentelemetry__Proto__Trace__V1__Span *sp = calloc(total, sizeof *sp);
	Opentelemetry__Proto__Trace__V1__Span **spp = calloc(total, sizeof *spp);
	Opentelemetry__Proto__Trace__V1__Status *st = calloc(total, sizeof *st);
	Opentelemetry__Proto__Common__V1__KeyValue pkv =
		OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	Opentelemetry__Proto__Common__V1__KeyValue *pkvp = &pkv;
	Opentelemetry__Proto__Common__V1__AnyValue pav =
		OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	char *padstr = calloc(1, pad + 1);
	char (*names)[32] = calloc(total, 32);
	char (*svc)[32] = calloc(nres, 32);
	uint8_t (*ids)[24] = calloc(total, 24);
	assert_non_null(rs); assert_non_null(rsp); assert_non_null(res); assert_non_null(rkv);
	assert_non_null(rkvp); assert_non_null(rav); assert_non_null(ss); assert_non_null(ssp);
	assert_non_null(sp); assert_non_null(spp); assert_non_null(st); assert_non_null(padstr);
	assert_non_null(names); assert_non_null(svc); assert_non_null(ids);
	memset(padstr, 'x', pad);
	pkv.key = "pad";
	pkv.value = &pav;
	pav.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	pav.string_value = padstr;

	for (uint32_t r = 0; r < nres; r++) {
		Opentelemetry__Proto__Trace__V1__ResourceSpans rsi =
			OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
		Opentelemetry__Proto__Resource__V1__Resource resi =
			OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
		Opentelemetry__Proto__Common__V1__KeyValue kvi =
			OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
		Opentelemetry__Proto__Common__V1__AnyValue avi =
			OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
		Opentelemetry__Proto__Trace__V1__ScopeSpans ssi =
			OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
		rs[r] = rsi; res[r] = resi; rkv[r] = kvi; rav[r] = avi; ss[r] = ssi;
		snprintf(svc[r], 32, "svc-%04u-%u", seed, r);
		rav[r].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		rav[r].string_value = svc[r];
		rkv[r].key = "service.name";
		rkv[r].value = &rav[r];
		rkvp[r] = &rkv[r];
		res[r].n_attributes = 1;
		res[r].attributes = &rkvp[r];
		rs[r].resource = &res[r];
		ssp[r] = &ss[r];
		rs[r].n_scope_spans = 1;
		rs[r].scope_spans = &ssp[r];
		ss[r].n_spans = nspans;
		ss[r].spans = &spp[r * nspans];
		rsp[r] = &rs[r];
		for (uint32_t i = 0; i < nspans; i++) {
			uint32_t k = r * nspans + i;
			Opentelemetry__Proto__Trace__V1__Span s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
			Opentelemetry__Proto__Trace__V1__Status sti =
				OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
			sp[k] = s;
			st[k] = sti;
			for (int j = 0; j < 24; j++)
				ids[k][j] = (uint8_t)(j + 1);
			ids[k][0] = (uint8_t)seed;
			ids[k][1] = (uint8_t)k;
			ids[k][16] = (uint8_t)seed;
			ids[k][17] = (uint8_t)k;
			sp[k].trace_id = (ProtobufCBinaryData){ 16, ids[k] };
			sp[k].span_id = (ProtobufCBinaryData){ 8, ids[k] + 16 };
			snprintf(names[k], 32, "op-%04u-%04u", seed, k);
			sp[k].name = names[k];
			sp[k].kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)(1 + k % 5);
			sp[k].start_time_unix_nano = 1700000000000000000ull + k * 1000ull;
			sp[k].end_time_unix_nano = sp[k].start_time_unix_nano + 1500000ull + k;
			st[k].code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)(k % 3);
			sp[k].status = &st[k];
			if (pad) {
				sp[k].n_attributes = 1;
				sp[k].attributes = &pkvp;
			}
			spp[k] = &sp[k];
		}
	}
	req.n_resource_spans = nres;
	req.resource_spans = rsp;
	size_t len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	struct kn_chunk *c = kn_chunk_alloc(total, (uint32_t)len);
	assert_non_null(c);
	c->len = (uint32_t)opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, c->data);
	assert_int_equal(c->len, len);
	c->accepted_ns = 1;
	for (uint32_t k = 0; k < total; k++) {
		struct kn_span_hdr *h = &c->spans[k];
		memset(h, 0, sizeof *h);
		memcpy(h->trace_id, ids[k], 16);
		memcpy(h->span_id, ids[k] + 16, 8);
		h->start_ns = sp[k].start_time_unix_nano;
		h->end_ns = sp[k].end_time_unix_nano;
		h->kind = (int32_t)sp[k].kind;
		h->status_code = (int32_t)st[k].code;
		const uint8_t *at = memmem(c->data, c->len, names[k], strlen(names[k]));
		assert_non_null(at);
		h->name_off = (uint32_t)(at - c->data);
		h->name_len = (uint32_t)strlen(names[k]);
		h->resource_idx = k / nspans;
	}
	free(rs); free(rsp); free(res); free(rkv); free(rkvp); free(rav); free(ss); free(ssp);
	free(sp); free(spp); free(st); free(padstr); free(names); free(svc); free(ids);
	return c;
}

struct kn_batch *kn_test_batch(uint32_t seed, uint32_t nchunks, uint32_t nres,
				   uint32_t nspans, size_t pad)
{
	struct kn_batch *b = kn_batch_new(nchunks);
	assert_non_null(b);
	for (uint32_t i = 0; i < nchunks; i++)
		assert_int_equal(kn_batch_add(&b, kn_test_chunk(seed + i, nres, nspans, pad)), KN_OK);
	return b;
}

struct kn_chunk *kn_test_service_chunk(const char *svc, uint32_t nspans, uint8_t seed)
{
	Opentelemetry__Proto__Trace__V1__Span spans[8], *sp[8];
	uint8_t ids[8][24];
	assert_true(nspans <= 8);
	for (uint32_t i = 0; i < nspans; i++) {
		opentelemetry__proto__trace__v1__span__init(&spans[i]);
		memset(ids[i], seed + i + 1, sizeof ids[i]);
		spans[i].trace_id = (ProtobufCBinaryData){16, ids[i]};
		spans[i].span_id = (ProtobufCBinaryData){8, ids[i] + 16};
		spans[i].name = (char *)"op";
		spans[i].start_time_unix_nano = 1000 + i;
		spans[i].end_time_unix_nano = 2000 + i;
		sp[i] = &spans[i];
	}
	Opentelemetry__Proto__Common__V1__AnyValue av;
	opentelemetry__proto__common__v1__any_value__init(&av);
	av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	av.string_value = (char *)svc;
	Opentelemetry__Proto__Common__V1__KeyValue kv;
	opentelemetry__proto__common__v1__key_value__init(&kv);
	kv.key = (char *)"service.name";
	kv.value = &av;
	Opentelemetry__Proto__Common__V1__KeyValue *kvs[1] = {&kv};
	Opentelemetry__Proto__Resource__V1__Resource res;
	opentelemetry__proto__resource__v1__resource__init(&res);
	res.n_attributes = 1;
	res.attributes = kvs;
	Opentelemetry__Proto__Trace__V1__ScopeSpans ss;
	opentelemetry__proto__trace__v1__scope_spans__init(&ss);
	ss.n_spans = nspans;
	ss.spans = sp;
	Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp[1] = {&ss};
	Opentelemetry__Proto__Trace__V1__ResourceSpans rs;
	opentelemetry__proto__trace__v1__resource_spans__init(&rs);
	rs.resource = &res;
	rs.n_scope_spans = 1;
	rs.scope_spans = ssp;
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp[1] = {&rs};
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req;
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
	req.n_resource_spans = 1;
	req.resource_spans = rsp;
	size_t n = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	struct kn_chunk *c = kn_chunk_alloc(nspans, (uint32_t)n);
	assert_non_null(c);
	c->len = (uint32_t)opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, c->data);
	return c;
}

struct kn_batch *kn_test_service_batch(int with_ctx, const char *traceparent)
{
	struct kn_batch *b = kn_batch_new(2);
	struct kn_chunk *c[2] = {kn_test_service_chunk("api", 3, 0x10),
				 kn_test_service_chunk("notifier", 2, 0x40)};
	kn_tracectx_set(&c[with_ctx]->ctx, traceparent, strlen(traceparent), "k=v", 3);
	assert_int_equal(kn_batch_add(&b, c[0]), KN_OK);
	assert_int_equal(kn_batch_add(&b, c[1]), KN_OK);
	return b;
}

void kn_test_assert_hdr_equal(const struct kn_span_hdr *a, const struct kn_span_hdr *b)
{
	assert_memory_equal(a->trace_id, b->trace_id, 16);
	assert_memory_equal(a->span_id, b->span_id, 8);
	assert_memory_equal(a->parent_span_id, b->parent_span_id, 8);
	assert_true(a->start_ns == b->start_ns && a->end_ns == b->end_ns);
	assert_int_equal(a->off, b->off);
	assert_int_equal(a->len, b->len);
	assert_int_equal(a->name_off, b->name_off);
	assert_int_equal(a->name_len, b->name_len);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->status_code, b->status_code);
	assert_int_equal(a->nattrs, b->nattrs);
	assert_int_equal(a->nlinks, b->nlinks);
	assert_int_equal(a->resource_idx, b->resource_idx);
	assert_int_equal(a->scope_idx, b->scope_idx);
}
