/* SPDX-License-Identifier: Apache-2.0
 * fuzz_wire: the zero-copy wire reader against protobuf-c. Arbitrary bytes
 * are indexed; whatever the reader accepts, protobuf-c must unpack too, and
 * splitting it into 5 shards must succeed with every chunk unpacking and
 * holding the right number of spans. Any disagreement abort()s. The input is
 * copied into an exact-size buffer so sanitizers see reads past its end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/wire/kn_wire.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req_t;

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
