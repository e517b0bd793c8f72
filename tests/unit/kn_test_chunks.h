/* SPDX-License-Identifier: Apache-2.0
 * kn_test_chunks: test helpers shared by the unit tests of the exporters.
 * kn_test_chunk: a chunk holding one packed ExportTraceServiceRequest with
 * nres resources x nspans spans, span headers filled the way the wire reader
 * would. Span k (k counts over the chunk) of chunk `seed` has name
 * "op-<seed>-<k>", trace_id bytes {seed, k, 1..}, kind 1 + k % 5, status k % 3,
 * duration 1.5 ms + k ns. pad > 0 adds a string attribute of pad bytes.
 * kn_test_batch: nchunks such chunks with seeds seed, seed + 1, ...
 * kn_test_service_chunk: one ResourceSpans (service.name svc) of nspans
 * (<= 8) spans named "op", ids bytes seed + i + 1, times 1000 + i / 2000 + i;
 * the bytes only (the OTLP exporters send bytes, span headers unset).
 * kn_test_service_batch: "api" (3 spans, seed 0x10) then "notifier" (2
 * spans, seed 0x40); chunk with_ctx (0 or 1) carries traceparent and
 * tracestate "k=v".
 * kn_test_assert_hdr_equal: every field of two span headers equal (cmocka
 * asserts), for tests that compare carried headers with a fresh index. */
#ifndef KN_TEST_CHUNKS_H
#define KN_TEST_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

#include "collector/core/kn_batch.h"

struct kn_chunk *kn_test_chunk(uint32_t seed, uint32_t nres, uint32_t nspans, size_t pad);
struct kn_batch *kn_test_batch(uint32_t seed, uint32_t nchunks, uint32_t nres, uint32_t nspans,
			       size_t pad);
struct kn_chunk *kn_test_service_chunk(const char *svc, uint32_t nspans, uint8_t seed);
struct kn_batch *kn_test_service_batch(int with_ctx, const char *traceparent);
void kn_test_assert_hdr_equal(const struct kn_span_hdr *a, const struct kn_span_hdr *b);

#endif
