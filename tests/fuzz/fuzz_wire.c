/* SPDX-License-Identifier: Apache-2.0
 * fuzz_wire: the zero-copy wire reader against protobuf-c. Arbitrary bytes
 * are indexed; whatever the reader accepts, protobuf-c must unpack too, and
 * splitting it into 5 shards must succeed with every chunk unpacking and
 * holding the right number of spans, and kn_wire_index_trusted must give
 * the same index. The same bytes, read as one KeyValue,
 * check the reader's KeyValue fast path: what it accepts, the general
 * checker and protobuf-c must accept too. Any disagreement abort()s. The
 * input is copied into an exact-size buffer so sanitizers see reads past its
 * end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/wire/kn_wire.h"
#include "collector/wire/kn_wire_gen.h"
#include "collector/wire/kn_wire_internal.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req_t;

/* The fast path only ever declines: acceptance must agree with the rest. */
static void check_kv_view(const uint8_t *buf, size_t size)
{
	if (!kn_wire_kv_fast(buf, buf + size))
		return;
	struct kn_wire_ctx c = { 0 };
	if (kn_wire_check_msg(&c, KN_WM_KEYVALUE, buf, buf + size, 0) != 0)
		abort();
	Opentelemetry__Proto__Common__V1__KeyValue *kv =
		opentelemetry__proto__common__v1__key_value__unpack(NULL, size, buf);
	if (!kv)
		abort();
	opentelemetry__proto__common__v1__key_value__free_unpacked(kv, NULL);
}

/* The input as a KeyValue, and as the AnyValue of KeyValue{key "k"}: the
 * second view gives the mutator consistent framing around the value. */
static void check_kv_fast(const uint8_t *buf, size_t size)
{
	check_kv_view(buf, size);
	if (size > 1u << 20)
		return;
	uint8_t *w = malloc(size + 16);
	if (!w)
		return;
	size_t n = 0;
	w[n++] = 0x0a;
	w[n++] = 0x01;
	w[n++] = 'k';
	w[n++] = 0x12;
	n += kn_wire_put_varint(w + n, size);
	memcpy(w + n, buf, size);
	/* an exact-size copy, so ASan sees reads past the end */
	uint8_t *e = malloc(n + size ? n + size : 1);
	if (e) {
		memcpy(e, w, n + size);
		check_kv_view(e, n + size);
	}
	free(e);
	free(w);
}

static size_t count_spans(const req_t *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_resource_spans; i++)
		for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
			n += r->resource_spans[i]->scope_spans[j]->n_spans;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum { NSHARDS = 5 };
	struct kn_wire_index ix;
	struct kn_chunk *out[NSHARDS];
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	check_kv_fast(buf, size);
	kn_wire_index_init(&ix);
	int rc = kn_wire_index_request(&ix, buf, size, NULL);
	if (rc != KN_OK && rc != KN_INVALID)
		abort();
	if (rc == KN_OK) {
		req_t *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, size, buf);
		if (!r)
			abort(); /* accepted by us, refused by protobuf-c */
		if (count_spans(r) != (size_t)ix.nspans + ix.rejected)
			abort();
		struct kn_wire_index tix; /* the trusted index agrees on accepted bytes */
		kn_wire_index_init(&tix);
		if (kn_wire_index_trusted(&tix, buf, size, NULL) != KN_OK || !kn_wire_index_same(&ix, &tix))
			abort();
		kn_wire_index_free(&tix);
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
		if (kn_wire_split(&ix, buf, NSHARDS, out, NULL) != KN_OK)
			abort();
		uint32_t total = 0;
		for (int s = 0; s < NSHARDS; s++) {
			if (!out[s])
				continue;
			req_t *c = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, out[s]->len, out[s]->data);
			if (!c || count_spans(c) != out[s]->nspans || out[s]->shard != s)
				abort();
			for (uint32_t k = 0; k < out[s]->nspans; k++)
				if (kn_shard_of(out[s]->spans[k].trace_id, NSHARDS) != (uint32_t)s)
					abort();
			total += out[s]->nspans;
			opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(c, NULL);
			kn_chunk_unref(out[s]);
		}
		if (total != ix.nspans)
			abort();
	}
	kn_wire_index_free(&ix);
	free(buf);
	return 0;
}
