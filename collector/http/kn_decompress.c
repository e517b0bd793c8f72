/* SPDX-License-Identifier: Apache-2.0
 * kn_decompress: bounded gzip / zstd inflation (see kn_decompress.h).
 * One loop for both codecs: `step` runs the codec into the free part of the
 * output buffer; when the buffer is full at max_out, the codec is run once
 * more into a one-byte probe, and any byte produced there means "too large".
 *
 * gzip goes first through libdeflate in one shot (gzip_oneshot), which is
 * 2-3x faster than zlib's inflate but needs its output buffer sized up front:
 * the size is the gzip trailer's ISIZE, which the sender controls, so it is
 * only trusted as far as the limit allows and libdeflate itself checks it
 * (ISIZE and CRC32 must match what was decoded). Every case a one-shot
 * decode cannot settle safely goes to the zlib loop below, which gives the
 * exact answer with bounded memory: ISIZE above max_out (a real large body,
 * a bomb, or a lie), concatenated members or trailing bytes, output longer
 * than ISIZE, and any error (so failures are judged by one decoder only). */
#include "kn_decompress.h"

#define ZSTD_STATIC_LINKING_ONLY
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

/* Counting allocator: a size header in front of each block. */
struct acct {
	size_t cur, peak;
};

static void *acct_alloc(struct acct *a, size_t n)
{
	size_t *p = malloc(n + sizeof(max_align_t));
	if (!p)
		return NULL;
	*p = n;
	a->cur += n;
	if (a->cur > a->peak)
		a->peak = a->cur;
	return (char *)p + sizeof(max_align_t);
}

static void acct_free(struct acct *a, void *q)
{
	if (!q)
		return;
	size_t *p = (size_t *)(void *)((char *)q - sizeof(max_align_t));
	a->cur -= *p;
	free(p);
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
	if (size && items > SIZE_MAX / size)
		return NULL;
	return acct_alloc(opaque, (size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p)
{
	acct_free(opaque, p);
}

static void *zs_alloc(void *opaque, size_t n)
{
	return acct_alloc(opaque, n);
}

static void zs_free(void *opaque, void *p)
{
	acct_free(opaque, p);
}

static int token_eq(const char *v, size_t len, const char *tok)
{
	size_t n = strlen(tok);
	return len == n && strncasecmp(v, tok, n) == 0;
}

enum kn_encoding kn_encoding_parse(const char *v, size_t len)
{
	if (!v)
		return KN_ENC_IDENTITY;
	while (len && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len == 0 || token_eq(v, len, "identity"))
		return KN_ENC_IDENTITY;
	if (token_eq(v, len, "gzip") || token_eq(v, len, "x-gzip"))
		return KN_ENC_GZIP;
	if (token_eq(v, len, "zstd"))
		return KN_ENC_ZSTD;
	return KN_ENC_UNKNOWN;
}

const char *kn_encoding_name(enum kn_encoding enc)
{
	switch (enc) {
	case KN_ENC_IDENTITY: return "identity";
	case KN_ENC_GZIP: return "gzip";
	case KN_ENC_ZSTD: return "zstd";
	default: return "unknown";
	}
}

const char *kn_decomp_rc_str(enum kn_decomp_rc rc)
{
	switch (rc) {
	case KN_DECOMP_OK: return "ok";
	case KN_DECOMP_TOO_LARGE: return "decompressed body too large";
	case KN_DECOMP_CORRUPT: return "corrupt or truncated compressed body";
	default: return "out of memory";
	}
}

/* The codec state for one call. */
struct dec {
	enum kn_encoding enc;
	z_stream z;
	ZSTD_DStream *zs;
	const uint8_t *in;
	size_t in_len, in_pos;
	int ended;      /* the last frame/member ended exactly at in_pos */
};

/* Runs the codec into dst[0..cap); returns bytes written, or -1 corrupt,
 * -2 no memory. Sets d->ended when the stream is complete. */
static long step(struct dec *d, uint8_t *dst, size_t cap)
{
	if (d->enc == KN_ENC_GZIP) {
		size_t written = 0;
		for (;;) {
			if (d->ended && d->in_pos < d->in_len) {
				/* concatenated gzip members */
				if (inflateReset(&d->z) != Z_OK)
					return -1;
				d->ended = 0;
			}
			if (d->ended || written == cap)
				return (long)written;
			size_t in_left = d->in_len - d->in_pos;
			if (in_left == 0)
				return (long)written;
			uInt ai = in_left > UINT32_MAX ? UINT32_MAX : (uInt)in_left;
			size_t out_left = cap - written;
			uInt ao = out_left > UINT32_MAX ? UINT32_MAX : (uInt)out_left;
			d->z.next_in = (Bytef *)(uintptr_t)(d->in + d->in_pos);
			d->z.avail_in = ai;
			d->z.next_out = dst + written;
			d->z.avail_out = ao;
			int r = inflate(&d->z, Z_NO_FLUSH);
			d->in_pos += ai - d->z.avail_in;
			written += ao - d->z.avail_out;
			if (r == Z_STREAM_END) {
				d->ended = 1;
				continue;
			}
			if (r == Z_MEM_ERROR)
				return -2;
			if (r != Z_OK && r != Z_BUF_ERROR)
				return -1;
			if (r == Z_BUF_ERROR && d->z.avail_out != 0)
				return -1; /* no progress possible: truncated */
		}
	}
	/* zstd */
	ZSTD_outBuffer ob = {dst, cap, 0};
	for (;;) {
		if (ob.pos == cap)
			return (long)ob.pos;
		ZSTD_inBuffer ib = {d->in, d->in_len, d->in_pos};
		size_t before_in = ib.pos, before_out = ob.pos;
		size_t r = ZSTD_decompressStream(d->zs, &ob, &ib);
		d->in_pos = ib.pos;
		if (ZSTD_isError(r))
			return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? -2 : -1;
		if (ib.pos == before_in && ob.pos == before_out)
			return (long)ob.pos; /* no progress: input exhausted or frame done */
		d->ended = (r == 0); /* 0: a frame just ended and is fully flushed */
		if (ib.pos == ib.size && ob.pos < cap && r == 0)
			return (long)ob.pos;
	}
}

/* The smallest gzip member: 10-byte header, an empty final block, 8-byte trailer. */
#define GZIP_MIN 18

/* One-shot gzip decode into a buffer of exactly ISIZE bytes. Returns 1 with
 * *out / *out_len set when it settled the body (success only), 0 when the
 * zlib loop must decide, -1 out of memory. *out_peak gets the buffer size. */
static int gzip_oneshot(const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
			size_t *out_len, size_t *out_peak)
{
	if (in_len < GZIP_MIN)
		return 0;
	const uint8_t *t = in + in_len - 4;
	size_t isize = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
	if (isize > max_out)
		return 0; /* too large, a bomb, or a lie: the streaming loop stops at max_out */
	struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
	uint8_t *buf = malloc(isize ? isize : 1);
	if (!d || !buf) {
		libdeflate_free_decompressor(d);
		free(buf);
		return -1;
	}
	if (isize > *out_peak)
		*out_peak = isize;
	size_t used_in = 0, got = 0;
	enum libdeflate_result r = libdeflate_gzip_decompress_ex(d, in, in_len, buf, isize, &used_in, &got);
	libdeflate_free_decompressor(d);
	/* used_in < in_len: another member or trailing bytes, ISIZE was the
	 * last member's; got != isize cannot pass libdeflate's ISIZE check but
	 * costs nothing to state. */
	if (r != LIBDEFLATE_SUCCESS || used_in != in_len || got != isize) {
		free(buf);
		return 0;
	}
	*out = buf;
	*out_len = got;
	return 1;
}

enum kn_decomp_rc kn_decompress(enum kn_encoding enc, const uint8_t *in, size_t in_len,
				size_t max_out, uint8_t **out, size_t *out_len,
				struct kn_decomp_stats *stats)
{
	struct acct lib = {0, 0};
	struct dec d = {.enc = enc, .in = in, .in_len = in_len};
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0, out_peak = 0;
	enum kn_decomp_rc rc = KN_DECOMP_NOMEM;
	int z_inited = 0;

	*out = NULL;
	*out_len = 0;
	if (enc == KN_ENC_UNKNOWN) {
		rc = KN_DECOMP_CORRUPT;
		goto done;
	}
	if (enc == KN_ENC_IDENTITY) {
		if (in_len > max_out) {
			rc = KN_DECOMP_TOO_LARGE;
			goto done;
		}
		if (in_len) {
			buf = malloc(in_len);
			if (!buf)
				goto done;
			memcpy(buf, in, in_len);
			out_peak = in_len;
		}
		len = in_len;
		rc = KN_DECOMP_OK;
		goto done;
	}
	if (in_len == 0) {
		rc = KN_DECOMP_CORRUPT;
		goto done;
	}
	if (enc == KN_ENC_GZIP) {
		int one = gzip_oneshot(in, in_len, max_out, &buf, &len, &out_peak);
		if (one != 0) {
			rc = one > 0 ? KN_DECOMP_OK : KN_DECOMP_NOMEM;
			goto done;
		}
		d.z.zalloc = z_alloc;
		d.z.zfree = z_free;
		d.z.opaque = &lib;
		if (inflateInit2(&d.z, 15 + 16) != Z_OK)
			goto done;
		z_inited = 1;
	} else {
		ZSTD_customMem mem = {zs_alloc, zs_free, &lib};
		d.zs = ZSTD_createDStream_advanced(mem);
		if (!d.zs)
			goto done;
		if (ZSTD_isError(ZSTD_DCtx_setParameter(d.zs, ZSTD_d_windowLogMax,
							KN_DECOMP_ZSTD_WINDOW_LOG)))
			goto done;
	}

	for (;;) {
		if (len == cap) {
			if (cap == max_out) {
				/* full at the limit: does the stream have one byte more? */
				uint8_t probe[1];
				long n = step(&d, probe, sizeof probe);
				if (n < 0) {
					rc = n == -2 ? KN_DECOMP_NOMEM : KN_DECOMP_CORRUPT;
					goto done;
				}
				if (n > 0) {
					rc = KN_DECOMP_TOO_LARGE;
					goto done;
				}
				break;
			}
			size_t ncap = cap ? cap * 2 : (in_len < SIZE_MAX / 4 ? in_len * 4 : in_len);
			if (ncap < 16384)
				ncap = 16384;
			if (ncap > max_out || ncap < cap)
				ncap = max_out;
			uint8_t *nb = realloc(buf, ncap ? ncap : 1);
			if (!nb)
				goto done;
			buf = nb;
			cap = ncap;
			if (cap > out_peak)
				out_peak = cap;
			continue;
		}
		long n = step(&d, buf + len, cap - len);
		if (n < 0) {
			rc = n == -2 ? KN_DECOMP_NOMEM : KN_DECOMP_CORRUPT;
			goto done;
		}
		len += (size_t)n;
		if (len < cap)
			break; /* the codec stopped short of a full buffer: input used up */
	}
	if (!d.ended || d.in_pos != d.in_len) {
		rc = KN_DECOMP_CORRUPT; /* truncated, or trailing bytes after the end */
		goto done;
	}
	rc = KN_DECOMP_OK;

done:
	if (z_inited)
		inflateEnd(&d.z);
	ZSTD_freeDStream(d.zs);
	if (rc == KN_DECOMP_OK) {
		*out = buf;
		*out_len = len;
	} else {
		free(buf);
	}
	if (stats) {
		stats->out_peak = out_peak;
		stats->lib_peak = lib.peak;
	}
	return rc;
}
