/* SPDX-License-Identifier: Apache-2.0
 * kn_decompress: request-body decompression (Content-Encoding gzip / zstd)
 * with a hard output limit.
 *
 * The limit is applied while inflating: the output buffer grows by doubling
 * but never beyond `max_out`, and as soon as the stream would produce one
 * byte more than `max_out` the call stops with KN_DECOMP_TOO_LARGE. So a
 * decompression bomb costs at most `max_out` bytes of output buffer plus the
 * library's bounded working memory (zlib ~45 KiB; zstd's window is capped at
 * 2^KN_DECOMP_ZSTD_WINDOW_LOG). Every allocation, the library's included, goes
 * through a counting allocator so callers (and tests) can see the peak.
 * gzip is decoded by libdeflate in one shot when the body's ISIZE trailer
 * (at most max_out) lets the output be sized up front, else by zlib as above
 * (see kn_decompress.c); libdeflate's fixed-size decoder state (~10 KiB) is
 * not counted in lib_peak.
 *
 * Stateless and thread-safe: each call owns its decoder. Cost: one pass over
 * the input, O(log(out/in)) reallocations of the output. */
#ifndef KN_DECOMPRESS_H
#define KN_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

enum kn_encoding {
	KN_ENC_IDENTITY = 0,
	KN_ENC_GZIP,
	KN_ENC_ZSTD,
	KN_ENC_UNKNOWN,
};

enum kn_decomp_rc {
	KN_DECOMP_OK = 0,
	KN_DECOMP_TOO_LARGE,  /* output would exceed max_out */
	KN_DECOMP_CORRUPT,    /* bad, truncated or trailing data */
	KN_DECOMP_NOMEM,
};

/* zstd frames needing a larger window than 2^this are refused as corrupt. */
#define KN_DECOMP_ZSTD_WINDOW_LOG 23

struct kn_decomp_stats {
	size_t out_peak;   /* largest output buffer capacity allocated */
	size_t lib_peak;   /* peak bytes held by zlib / zstd themselves */
};

/* Content-Encoding value (not NUL-terminated; surrounding spaces and case are
 * ignored) -> encoding. NULL or empty = identity. */
enum kn_encoding kn_encoding_parse(const char *v, size_t len);
const char *kn_encoding_name(enum kn_encoding enc);

/* Decompresses `in` into a new malloc'd buffer (*out, free with free(); set
 * only on KN_DECOMP_OK; may be NULL when *out_len is 0). `stats` may be NULL.
 * KN_ENC_IDENTITY copies. */
enum kn_decomp_rc kn_decompress(enum kn_encoding enc, const uint8_t *in, size_t in_len,
				size_t max_out, uint8_t **out, size_t *out_len,
				struct kn_decomp_stats *stats);

const char *kn_decomp_rc_str(enum kn_decomp_rc rc);

#endif
