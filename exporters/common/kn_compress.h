/* SPDX-License-Identifier: Apache-2.0
 * kn_compress: whole-batch compression of export requests (gzip with
 * libdeflate, zstd with libzstd), shared by the otlp and otlphttp exporters.
 *
 * Why libdeflate: an export batch is in memory whole before it is sent, so
 * nothing needs a streaming compressor; libdeflate's one-shot gzip is about
 * 2-3x faster than zlib at the same level (bench/bench_compress prints the
 * figures). It needs one contiguous input: a batch of one chunk (the usual
 * case without a per-trace processor: one request, one chunk, one batch) is
 * compressed straight from the chunk's bytes; a batch of several chunks is
 * first copied into the compressor's scratch buffer (a memcpy costs about
 * 1% of level-1 deflate). zlib is not used here: nothing streams. zstd streams straight from the chunks.
 *
 * Levels: gzip 1..12 (libdeflate's scale; 1..9 mean what zlib's do, roughly),
 * zstd 1..19; defaults KN_GZIP_LEVEL_DEFAULT / KN_ZSTD_LEVEL_DEFAULT, chosen
 * by measuring W1 (see below).
 *
 * Output: a refcounted kn_zbuf, so an exporter can hand it to libgrpc as a
 * slice and let libgrpc drop the last reference when it is done. The
 * compressor keeps its current buffer and reuses it when nobody else holds
 * it, so a consumer allocates nothing per batch once warm.
 *
 * Threads: a compressor belongs to one consumer thread; a kn_zbuf's refcount
 * is atomic (libgrpc releases it on its own threads). */
#ifndef KN_COMPRESS_H
#define KN_COMPRESS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../../collector/core/kn_batch.h"

enum kn_zalg {
	KN_Z_NONE = 0,
	KN_Z_GZIP,
	KN_Z_ZSTD,
};

/* Chosen on W1 (bench_compress; README "Exporter compression and
 * connections"): libdeflate gzip 1 is 57.4 bytes per span at 751 ns per
 * span, against zlib 6's 50.8 at 3052 (level 3: 56.0 at 1080; 6: 51.3 at
 * 1544); zstd 1 is 49.2 at 441 (zstd 3: 48.7 at 504). */
#define KN_GZIP_LEVEL_DEFAULT 1
#define KN_ZSTD_LEVEL_DEFAULT 1
#define KN_GZIP_LEVEL_MAX 12
#define KN_ZSTD_LEVEL_MAX 19

/* "gzip" | "zstd" | "none" (also "" and NULL) -> *alg. 0 ok, -1 unknown. */
int kn_zalg_parse(const char *name, enum kn_zalg *alg);
const char *kn_zalg_name(enum kn_zalg alg);
/* The level to use: `level` when not 0, else the algorithm's default. */
int kn_zalg_level(enum kn_zalg alg, int64_t level);
/* 0 when level (0 = default) is valid for alg, -1 otherwise. */
int kn_zalg_level_ok(enum kn_zalg alg, int64_t level);

struct kn_zbuf {
	atomic_uint refs;
	size_t len, cap;
	uint8_t data[];
};

static inline struct kn_zbuf *kn_zbuf_ref(struct kn_zbuf *z)
{
	atomic_fetch_add_explicit(&z->refs, 1, memory_order_relaxed);
	return z;
}
/* NULL-safe; frees on the last reference. */
void kn_zbuf_unref(struct kn_zbuf *z);

struct kn_compressor;

/* alg gzip or zstd, level as kn_zalg_level. NULL on OOM. */
struct kn_compressor *kn_compressor_new(enum kn_zalg alg, int level);
void kn_compressor_free(struct kn_compressor *c);

/* Compresses the concatenation of `n` buffers (one gzip member / one zstd
 * frame). Returns a buffer the caller holds one reference on, or NULL (out
 * of memory, or a codec error). */
struct kn_zbuf *kn_compress_iov(struct kn_compressor *c, const uint8_t *const *bufs, const size_t *lens,
				size_t n);
/* The same over a batch's chunks. */
struct kn_zbuf *kn_compress_batch(struct kn_compressor *c, const struct kn_batch *b);

#endif
