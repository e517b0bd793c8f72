/* SPDX-License-Identifier: Apache-2.0
 * kn_compress: whole-batch compression of export requests (gzip with ISA-L's
 * igzip at the fast levels and libdeflate above them, zstd with libzstd),
 * shared by the otlp and otlphttp exporters.
 *
 * Why one-shot codecs: an export batch is in memory whole before it is sent,
 * so nothing needs a streaming compressor, and zlib is not used here. Both
 * gzip codecs take one contiguous input: a batch of one chunk (the usual case
 * without a per-trace processor: one request, one chunk, one batch) is
 * compressed straight from the chunk's bytes; a batch of several chunks is
 * first copied into the compressor's scratch buffer (a memcpy costs about 1%
 * of level-1 deflate). zstd streams straight from the chunks.
 *
 * Why igzip for levels 1-2: on W1 (bench/bench_compress, 2-core Xeon VM)
 * igzip's stateless deflate compresses at ~1.25 GB/s per core, ~2.7x
 * libdeflate level 1 and ~5x zlib level 1, and igzip level 2 is as fast as
 * its level 1 with smaller output (58.7 bytes per span against 60.0). Levels
 * 3..12 are libdeflate's (1..9 mean what zlib's do, roughly): for users who
 * pay CPU for bytes. zstd 1..19. Defaults KN_GZIP_LEVEL_DEFAULT /
 * KN_ZSTD_LEVEL_DEFAULT, chosen by measuring W1 (see below).
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
 * connections"; 2-core Xeon VM): gzip 2 (igzip 2) is 58.7 bytes per span at
 * 299 ns per span, against libdeflate 1's 57.4 at 832 (the default before),
 * libdeflate 3's 56.0 at 1141, 6's 51.3 at 1697 and zlib 6's 50.8 at 3080;
 * zstd 1 is 49.1 at 474 (zstd 3: 48.7 at 494). */
#define KN_GZIP_LEVEL_DEFAULT 2
#define KN_GZIP_LEVEL_ISAL_MAX 2
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
