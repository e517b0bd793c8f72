/* SPDX-License-Identifier: Apache-2.0
 * kn_test_chunks: test helpers shared by the unit tests of the exporters.
 * kn_test_chunk: a chunk holding one packed ExportTraceServiceRequest with
 * nres resources x nspans spans, span headers filled the way the wire reader
 * would. Span k (k counts over the chunk) of chunk `seed` has name
 * "op-<seed>-<k>", trace_id bytes {seed, k, 1..}, kind 1 + k % 5, status k % 3,
 * duration 1.5 ms + k ns. pad > 0 adds a string attribute of pad bytes.
 * kn_test_batch: nchunks such chunks with seeds seed, seed + 1, ... */
#ifndef KN_TEST_CHUNKS_H
#define KN_TEST_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

#include "collector/core/kn_batch.h"

struct kn_chunk *kn_test_chunk(uint32_t seed, uint32_t nres, uint32_t nspans, size_t pad);
struct kn_batch *kn_test_batch(uint32_t seed, uint32_t nchunks, uint32_t nres, uint32_t nspans,
			       size_t pad);

#endif
