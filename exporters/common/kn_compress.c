/* SPDX-License-Identifier: Apache-2.0
 * kn_compress: whole-batch gzip (ISA-L igzip at the fast levels, libdeflate
 * above them) and zstd (see kn_compress.h).
 * Per batch: at most one memcpy of the input (gzip of several chunks), one
 * codec pass, and no allocation once the scratch and output buffers have
 * grown to the largest batch seen. */
#include "kn_compress.h"

#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

struct kn_compressor {
	enum kn_zalg alg;
	int level;
	struct libdeflate_compressor *gz; /* gzip above KN_GZIP_LEVEL_ISAL_MAX */
	uint8_t *isal_buf;      /* gzip at KN_GZIP_LEVEL_ISAL_MAX or below: igzip's level buffer */
	uint32_t isal_buf_size;
	ZSTD_CCtx *zs;
	uint8_t *flat;          /* gzip: the input made contiguous */
	size_t flat_cap;
	struct kn_zbuf *out;    /* the buffer handed out last; reused while we hold the only ref */
};

int kn_zalg_parse(const char *name, enum kn_zalg *alg)
{
	if (!name || !*name || strcmp(name, "none") == 0)
		*alg = KN_Z_NONE;
	else if (strcmp(name, "gzip") == 0)
		*alg = KN_Z_GZIP;
	else if (strcmp(name, "zstd") == 0)
		*alg = KN_Z_ZSTD;
	else
		return -1;
	return 0;
}

const char *kn_zalg_name(enum kn_zalg alg)
{
	switch (alg) {
	case KN_Z_GZIP: return "gzip";
	case KN_Z_ZSTD: return "zstd";
	default: return "none";
	}
}

int kn_zalg_level(enum kn_zalg alg, int64_t level)
{
	if (level)
		return (int)level;
	return alg == KN_Z_ZSTD ? KN_ZSTD_LEVEL_DEFAULT : KN_GZIP_LEVEL_DEFAULT;
}

int kn_zalg_level_ok(enum kn_zalg alg, int64_t level)
{
	if (level == 0)
		return 0;
	if (alg == KN_Z_GZIP)
		return level >= 1 && level <= KN_GZIP_LEVEL_MAX ? 0 : -1;
	if (alg == KN_Z_ZSTD)
		return level >= 1 && level <= KN_ZSTD_LEVEL_MAX ? 0 : -1;
	return -1; /* a level without compression */
}

void kn_zbuf_unref(struct kn_zbuf *z)
{
	if (z && atomic_fetch_sub_explicit(&z->refs, 1, memory_order_acq_rel) == 1)
		free(z);
}

struct kn_compressor *kn_compressor_new(enum kn_zalg alg, int level)
{
	struct kn_compressor *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->alg = alg;
	c->level = level;
	if (alg == KN_Z_GZIP && level <= KN_GZIP_LEVEL_ISAL_MAX) {
		c->isal_buf_size = level == 1 ? ISAL_DEF_LVL1_DEFAULT : ISAL_DEF_LVL2_DEFAULT;
		c->isal_buf = malloc(c->isal_buf_size);
		/* libdeflate at the same level: its output bound sizes the
		 * buffer, and it is the way out should igzip ever answer
		 * STATELESS_OVERFLOW (it writes stored blocks for input that
		 * does not compress, within that bound: test_gzip_incompressible) */
		c->gz = libdeflate_alloc_compressor(level);
		if (!c->isal_buf || !c->gz)
			goto fail;
	} else if (alg == KN_Z_GZIP) {
		c->gz = libdeflate_alloc_compressor(level);
		if (!c->gz)
			goto fail;
	} else if (alg == KN_Z_ZSTD) {
		c->zs = ZSTD_createCCtx();
		if (!c->zs || ZSTD_isError(ZSTD_CCtx_setParameter(c->zs, ZSTD_c_compressionLevel, level)))
			goto fail;
	} else {
		goto fail;
	}
	return c;
fail:
	kn_compressor_free(c);
	return NULL;
}

void kn_compressor_free(struct kn_compressor *c)
{
	if (!c)
		return;
	libdeflate_free_compressor(c->gz);
	ZSTD_freeCCtx(c->zs);
	free(c->flat);
	free(c->isal_buf);
	kn_zbuf_unref(c->out);
	free(c);
}

/* An output buffer of at least cap bytes that only the compressor holds. */
static struct kn_zbuf *out_buf(struct kn_compressor *c, size_t cap)
{
	struct kn_zbuf *z = c->out;
	if (z && (atomic_load_explicit(&z->refs, memory_order_acquire) != 1 || z->cap < cap)) {
		kn_zbuf_unref(z); /* still in flight elsewhere, or too small */
		z = c->out = NULL;
	}
	if (!z) {
		z = malloc(sizeof *z + cap);
		if (!z)
			return NULL;
		atomic_init(&z->refs, 1);
		z->cap = cap;
		c->out = z;
	}
	z->len = 0;
	return z;
}

static struct kn_zbuf *gzip_iov(struct kn_compressor *c, const uint8_t *const *bufs, const size_t *lens,
				size_t n)
{
	const uint8_t *in = n ? bufs[0] : NULL;
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += lens[i];
	if (n > 1) {
		if (total > c->flat_cap) {
			uint8_t *p = realloc(c->flat, total);
			if (!p)
				return NULL;
			c->flat = p;
			c->flat_cap = total;
		}
		size_t off = 0;
		for (size_t i = 0; i < n; i++) {
			memcpy(c->flat + off, bufs[i], lens[i]);
			off += lens[i];
		}
		in = c->flat;
	}
	size_t bound = libdeflate_gzip_compress_bound(c->gz, total);
	struct kn_zbuf *z = out_buf(c, bound);
	if (!z)
		return NULL;
	if (!in)
		in = (const uint8_t *)"";
	if (c->isal_buf && total <= UINT32_MAX && bound <= UINT32_MAX) {
		struct isal_zstream s;
		isal_deflate_stateless_init(&s);
		s.level = (uint32_t)c->level;
		s.level_buf = c->isal_buf;
		s.level_buf_size = c->isal_buf_size;
		s.gzip_flag = IGZIP_GZIP;
		s.end_of_stream = 1;
		s.flush = NO_FLUSH;
		s.next_in = (uint8_t *)(uintptr_t)in; /* igzip only reads it */
		s.avail_in = (uint32_t)total;
		s.next_out = z->data;
		s.avail_out = (uint32_t)z->cap;
		if (isal_deflate_stateless(&s) == COMP_OK) {
			z->len = s.total_out;
			return z;
		}
		/* STATELESS_OVERFLOW: not seen (see kn_compressor_new); libdeflate
		 * fits its own bound */
	}
	z->len = libdeflate_gzip_compress(c->gz, in, total, z->data, z->cap);
	return z->len ? z : NULL; /* 0: did not fit, which the bound rules out */
}

static struct kn_zbuf *zstd_iov(struct kn_compressor *c, const uint8_t *const *bufs, const size_t *lens,
				size_t n)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += lens[i];
	ZSTD_CCtx_reset(c->zs, ZSTD_reset_session_only);
	/* the frame header then carries the content size, and zstd sizes its
	 * window to the input */
	if (ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(c->zs, total)))
		return NULL;
	struct kn_zbuf *z = out_buf(c, ZSTD_compressBound(total));
	if (!z)
		return NULL;
	ZSTD_outBuffer ob = {z->data, z->cap, 0};
	for (size_t i = 0; i <= n; i++) {
		int last = i == n;
		ZSTD_inBuffer ib = {last ? NULL : bufs[i], last ? 0 : lens[i], 0};
		size_t r;
		do {
			r = ZSTD_compressStream2(c->zs, &ob, &ib, last ? ZSTD_e_end : ZSTD_e_continue);
			if (ZSTD_isError(r))
				return NULL;
		} while (last ? r != 0 : ib.pos < ib.size);
	}
	z->len = ob.pos;
	return z;
}

struct kn_zbuf *kn_compress_iov(struct kn_compressor *c, const uint8_t *const *bufs, const size_t *lens,
				size_t n)
{
	struct kn_zbuf *z = c->alg == KN_Z_GZIP ? gzip_iov(c, bufs, lens, n) : zstd_iov(c, bufs, lens, n);
	return z ? kn_zbuf_ref(z) : NULL;
}

struct kn_zbuf *kn_compress_batch(struct kn_compressor *c, const struct kn_batch *b)
{
	enum { STACK = 32 };
	const uint8_t *sb[STACK] = {0};
	size_t sl[STACK] = {0};
	const uint8_t **bufs = sb;
	size_t *lens = sl;
	if (b->n > STACK) {
		bufs = malloc(b->n * sizeof *bufs);
		lens = malloc(b->n * sizeof *lens);
		if (!bufs || !lens) {
			if (bufs != sb)
				free(bufs);
			if (lens != sl)
				free(lens);
			return NULL;
		}
	}
	for (uint32_t i = 0; i < b->n; i++) {
		bufs[i] = b->chunks[i]->data;
		lens[i] = b->chunks[i]->len;
	}
	struct kn_zbuf *z = kn_compress_iov(c, bufs, lens, b->n);
	if (bufs != sb) {
		free(bufs);
		free(lens);
	}
	return z;
}
