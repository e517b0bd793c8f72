/* SPDX-License-Identifier: Apache-2.0
 * Tests for kn_decompress: gzip / zstd round trips, exact limits, bombs that
 * must stop at the limit without allocating past it (checked with the
 * decompressor's own allocation accounting), and corrupt / truncated input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>

#include "collector/http/kn_decompress.h"

static uint8_t *pattern(size_t n, uint32_t seed)
{
	uint8_t *p = malloc(n ? n : 1);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		/* half-compressible: small alphabet */
		p[i] = (uint8_t)('a' + (x % 7));
	}
	return p;
}

static uint8_t *gz(const uint8_t *in, size_t n, size_t *out_len)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	size_t cap = deflateBound(&z, n) + 64;
	uint8_t *out = malloc(cap);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*out_len = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

static uint8_t *zs(const uint8_t *in, size_t n, size_t *out_len)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	size_t cap = ZSTD_compressBound(n);
	uint8_t *out = malloc(cap);
	size_t r = ZSTD_compress2(c, out, cap, in, n);
	assert_false(ZSTD_isError(r));
	*out_len = r;
	ZSTD_freeCCtx(c);
	return out;
}

static void roundtrip(enum kn_encoding enc)
{
	static const size_t sizes[] = {1, 100, 16384, 16385, 100000, 3u << 20};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i], clen = 0, olen = 0;
		uint8_t *plain = pattern(n, (uint32_t)i);
		uint8_t *c = enc == KN_ENC_GZIP ? gz(plain, n, &clen) : zs(plain, n, &clen);
		uint8_t *out = NULL;
		struct kn_decomp_stats st;
		assert_int_equal(kn_decompress(enc, c, clen, 4u << 20, &out, &olen, &st), KN_DECOMP_OK);
		assert_int_equal(olen, n);
		assert_memory_equal(out, plain, n);
		assert_true(st.out_peak <= (4u << 20));
		/* exactly at the limit is fine, one byte under it is not */
		free(out);
		assert_int_equal(kn_decompress(enc, c, clen, n, &out, &olen, &st), KN_DECOMP_OK);
		assert_int_equal(olen, n);
		assert_true(st.out_peak <= n);
		free(out);
		out = NULL;
		assert_int_equal(kn_decompress(enc, c, clen, n - 1, &out, &olen, &st),
				 KN_DECOMP_TOO_LARGE);
		assert_null(out);
		assert_true(st.out_peak <= n - 1);
		free(c);
		free(plain);
	}
}

static void test_gzip_roundtrip(void **state)
{
	(void)state;
	roundtrip(KN_ENC_GZIP);
}

static void test_zstd_roundtrip(void **state)
{
	(void)state;
	roundtrip(KN_ENC_ZSTD);
}

static void test_identity(void **state)
{
	(void)state;
	uint8_t *out;
	size_t olen;
	assert_int_equal(kn_decompress(KN_ENC_IDENTITY, (const uint8_t *)"abc", 3, 3, &out, &olen, NULL),
			 KN_DECOMP_OK);
	assert_int_equal(olen, 3);
	assert_memory_equal(out, "abc", 3);
	free(out);
	assert_int_equal(kn_decompress(KN_ENC_IDENTITY, (const uint8_t *)"abc", 3, 2, &out, &olen, NULL),
			 KN_DECOMP_TOO_LARGE);
}

#define BOMB_SIZE (256ull << 20)  /* 256 MiB of zeros */
#define BOMB_LIMIT (1u << 20)

static void test_gzip_bomb(void **state)
{
	(void)state;
	z_stream z;
	memset(&z, 0, sizeof z);
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
	static uint8_t zeros[1 << 16];
	size_t cap = 1u << 20, len = 0;
	uint8_t *c = malloc(cap);
	for (uint64_t fed = 0; fed < BOMB_SIZE; fed += sizeof zeros) {
		z.next_in = zeros;
		z.avail_in = sizeof zeros;
		int flush = fed + sizeof zeros >= BOMB_SIZE ? Z_FINISH : Z_NO_FLUSH;
		do {
			z.next_out = c + len;
			z.avail_out = (uInt)(cap - len);
			deflate(&z, flush);
			len = cap - z.avail_out;
			assert_true(len < cap); /* the bomb compresses ~1000:1 */
		} while (z.avail_in > 0 || (flush == Z_FINISH && z.avail_out == 0));
	}
	deflateEnd(&z);
	uint8_t *out = NULL;
	size_t olen = 0;
	struct kn_decomp_stats st;
	assert_int_equal(kn_decompress(KN_ENC_GZIP, c, len, BOMB_LIMIT, &out, &olen, &st),
			 KN_DECOMP_TOO_LARGE);
	assert_null(out);
	assert_true(st.out_peak <= BOMB_LIMIT);
	assert_true(st.out_peak > 0);
	assert_true(st.lib_peak > 0 && st.lib_peak < 64 * 1024); /* zlib's inflate state + 32K window */
	free(c);
}

static void test_zstd_bomb(void **state)
{
	(void)state;
	ZSTD_CStream *cs = ZSTD_createCStream();
	ZSTD_initCStream(cs, 19);
	static uint8_t zeros[1 << 16];
	size_t cap = 1u << 20;
	uint8_t *c = malloc(cap);
	ZSTD_outBuffer ob = {c, cap, 0};
	for (uint64_t fed = 0; fed < BOMB_SIZE; fed += sizeof zeros) {
		ZSTD_inBuffer ib = {zeros, sizeof zeros, 0};
		ZSTD_EndDirective d = fed + sizeof zeros >= BOMB_SIZE ? ZSTD_e_end : ZSTD_e_continue;
		size_t r;
		do {
			r = ZSTD_compressStream2(cs, &ob, &ib, d);
			assert_false(ZSTD_isError(r));
			assert_true(ob.pos < cap);
		} while (ib.pos < ib.size || (d == ZSTD_e_end && r != 0));
	}
	ZSTD_freeCStream(cs);
	uint8_t *out = NULL;
	size_t olen = 0;
	struct kn_decomp_stats st;
	assert_int_equal(kn_decompress(KN_ENC_ZSTD, c, ob.pos, BOMB_LIMIT, &out, &olen, &st),
			 KN_DECOMP_TOO_LARGE);
	assert_null(out);
	assert_true(st.out_peak <= BOMB_LIMIT);
	/* the decoder's window is capped, whatever the frame asks for */
	assert_true(st.lib_peak > 0);
	assert_true(st.lib_peak < (1u << KN_DECOMP_ZSTD_WINDOW_LOG) + (1u << 20));
	free(c);
}

static void corrupt_cases(enum kn_encoding enc)
{
	size_t n = 50000, clen, olen;
	uint8_t *plain = pattern(n, 7);
	uint8_t *c = enc == KN_ENC_GZIP ? gz(plain, n, &clen) : zs(plain, n, &clen);
	uint8_t *out = NULL;
	/* truncated at several points */
	for (size_t cut = 1; cut < clen; cut += clen / 7 + 1)
		assert_int_equal(kn_decompress(enc, c, cut, 1u << 20, &out, &olen, NULL),
				 KN_DECOMP_CORRUPT);
	assert_int_equal(kn_decompress(enc, c, clen - 1, 1u << 20, &out, &olen, NULL),
			 KN_DECOMP_CORRUPT);
	/* empty */
	assert_int_equal(kn_decompress(enc, c, 0, 1u << 20, &out, &olen, NULL), KN_DECOMP_CORRUPT);
	/* trailing garbage */
	uint8_t *t = malloc(clen + 4);
	memcpy(t, c, clen);
	memcpy(t + clen, "junk", 4);
	assert_int_equal(kn_decompress(enc, t, clen + 4, 1u << 20, &out, &olen, NULL),
			 KN_DECOMP_CORRUPT);
	/* a flipped byte in the checksum (last 4 bytes for both formats) */
	memcpy(t, c, clen);
	t[clen - 2] ^= 0x55;
	assert_int_equal(kn_decompress(enc, t, clen, 1u << 20, &out, &olen, NULL), KN_DECOMP_CORRUPT);
	/* not compressed at all */
	assert_int_equal(kn_decompress(enc, plain, 1000, 1u << 20, &out, &olen, NULL),
			 KN_DECOMP_CORRUPT);
	assert_null(out);
	free(t);
	free(c);
	free(plain);
}

static void test_gzip_corrupt(void **state)
{
	(void)state;
	corrupt_cases(KN_ENC_GZIP);
}

static void test_zstd_corrupt(void **state)
{
	(void)state;
	corrupt_cases(KN_ENC_ZSTD);
}

static void set_isize(uint8_t *c, size_t clen, uint32_t v)
{
	c[clen - 4] = (uint8_t)v;
	c[clen - 3] = (uint8_t)(v >> 8);
	c[clen - 2] = (uint8_t)(v >> 16);
	c[clen - 1] = (uint8_t)(v >> 24);
}

/* The gzip trailer's ISIZE sizes libdeflate's one-shot buffer; it comes
 * from the sender, so every lie must end as zlib would answer, with no
 * buffer past the limit. */
static void test_gzip_isize_lies(void **state)
{
	(void)state;
	size_t n = 100000, clen, olen;
	uint8_t *plain = pattern(n, 3);
	uint8_t *c = gz(plain, n, &clen), *out = NULL;
	struct kn_decomp_stats st;
	/* truthful: one buffer of exactly ISIZE bytes */
	assert_int_equal(kn_decompress(KN_ENC_GZIP, c, clen, 1u << 20, &out, &olen, &st), KN_DECOMP_OK);
	assert_int_equal(olen, n);
	assert_memory_equal(out, plain, n);
	assert_int_equal(st.out_peak, n);
	free(out);
	out = NULL;
	/* smaller than the output: the one shot runs out of room, zlib decides */
	set_isize(c, clen, 1000);
	assert_int_equal(kn_decompress(KN_ENC_GZIP, c, clen, 1u << 20, &out, &olen, &st), KN_DECOMP_CORRUPT);
	assert_null(out);
	/* (well under the size: at exactly n - 1 zlib meets the bad trailer in
	 * the same call that passes the limit and answers corrupt) */
	assert_int_equal(kn_decompress(KN_ENC_GZIP, c, clen, n - 1000, &out, &olen, &st), KN_DECOMP_TOO_LARGE);
	assert_true(st.out_peak <= n - 1000);
	/* larger than the limit: straight to zlib, which stops at the mismatch */
	set_isize(c, clen, 0xffffffffu);
	assert_int_equal(kn_decompress(KN_ENC_GZIP, c, clen, 1u << 20, &out, &olen, &st), KN_DECOMP_CORRUPT);
	assert_true(st.out_peak <= 1u << 20);
	/* larger than the output but under the limit: libdeflate's ISIZE check */
	set_isize(c, clen, (uint32_t)n + 1);
	assert_int_equal(kn_decompress(KN_ENC_GZIP, c, clen, 1u << 20, &out, &olen, &st), KN_DECOMP_CORRUPT);
	assert_null(out);
	free(c);

	/* a bomb that claims to be small: the one shot stops at 64 bytes, zlib at the limit */
	size_t big = 8u << 20;
	uint8_t *zeros = calloc(1, big);
	c = gz(zeros, big, &clen);
	set_isize(c, clen, 64);
	assert_int_equal(kn_decompress(KN_ENC_GZIP, c, clen, BOMB_LIMIT, &out, &olen, &st), KN_DECOMP_TOO_LARGE);
	assert_null(out);
	assert_true(st.out_peak <= BOMB_LIMIT);
	/* and the honest one over the limit never allocates ISIZE */
	set_isize(c, clen, (uint32_t)big);
	assert_int_equal(kn_decompress(KN_ENC_GZIP, c, clen, BOMB_LIMIT, &out, &olen, &st), KN_DECOMP_TOO_LARGE);
	assert_true(st.out_peak <= BOMB_LIMIT);
	free(c);
	free(zeros);
	free(plain);
}

/* Header fields zlib can write (name, comment, extra, header CRC) and an
 * empty member decode alike through the one-shot path. */
static void test_gzip_header_fields_and_empty(void **state)
{
	(void)state;
	const char *msg = "header fields";
	z_stream z;
	memset(&z, 0, sizeof z);
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	gz_header h;
	memset(&h, 0, sizeof h);
	uint8_t extra[4] = {'k', 'n', 0, 0};
	h.name = (Bytef *)"body.pb";
	h.comment = (Bytef *)"a comment";
	h.extra = extra;
	h.extra_len = sizeof extra;
	h.hcrc = 1;
	assert_int_equal(deflateSetHeader(&z, &h), Z_OK);
	uint8_t c[256];
	z.next_in = (Bytef *)(uintptr_t)msg;
	z.avail_in = (uInt)strlen(msg);
	z.next_out = c;
	z.avail_out = sizeof c;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t clen = sizeof c - z.avail_out, olen;
	deflateEnd(&z);
	uint8_t *out = NULL;
	assert_int_equal(kn_decompress(KN_ENC_GZIP, c, clen, 100, &out, &olen, NULL), KN_DECOMP_OK);
	assert_int_equal(olen, strlen(msg));
	assert_memory_equal(out, msg, olen);
	free(out);
	uint8_t *e = gz((const uint8_t *)"", 0, &clen);
	out = NULL;
	assert_int_equal(kn_decompress(KN_ENC_GZIP, e, clen, 100, &out, &olen, NULL), KN_DECOMP_OK);
	assert_int_equal(olen, 0);
	free(out);
	free(e);
}

static void test_concatenated(void **state)
{
	(void)state;
	size_t l1, l2, olen;
	uint8_t *a = gz((const uint8_t *)"hello ", 6, &l1);
	uint8_t *b = gz((const uint8_t *)"world", 5, &l2);
	uint8_t *both = malloc(l1 + l2), *out = NULL;
	memcpy(both, a, l1);
	memcpy(both + l1, b, l2);
	assert_int_equal(kn_decompress(KN_ENC_GZIP, both, l1 + l2, 100, &out, &olen, NULL),
			 KN_DECOMP_OK);
	assert_int_equal(olen, 11);
	assert_memory_equal(out, "hello world", 11);
	free(out);
	free(a);
	free(b);
	free(both);
	a = zs((const uint8_t *)"hello ", 6, &l1);
	b = zs((const uint8_t *)"world", 5, &l2);
	both = malloc(l1 + l2);
	memcpy(both, a, l1);
	memcpy(both + l1, b, l2);
	assert_int_equal(kn_decompress(KN_ENC_ZSTD, both, l1 + l2, 100, &out, &olen, NULL),
			 KN_DECOMP_OK);
	assert_int_equal(olen, 11);
	assert_memory_equal(out, "hello world", 11);
	free(out);
	free(a);
	free(b);
	free(both);
}

static void test_encoding_parse(void **state)
{
	(void)state;
	assert_int_equal(kn_encoding_parse(NULL, 0), KN_ENC_IDENTITY);
	assert_int_equal(kn_encoding_parse("", 0), KN_ENC_IDENTITY);
	assert_int_equal(kn_encoding_parse(" identity ", 10), KN_ENC_IDENTITY);
	assert_int_equal(kn_encoding_parse("GZIP", 4), KN_ENC_GZIP);
	assert_int_equal(kn_encoding_parse("zstd", 4), KN_ENC_ZSTD);
	assert_int_equal(kn_encoding_parse("br", 2), KN_ENC_UNKNOWN);
	assert_int_equal(kn_encoding_parse("gzip, zstd", 10), KN_ENC_UNKNOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gzip_roundtrip),
		cmocka_unit_test(test_zstd_roundtrip),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_gzip_bomb),
		cmocka_unit_test(test_zstd_bomb),
		cmocka_unit_test(test_gzip_corrupt),
		cmocka_unit_test(test_zstd_corrupt),
		cmocka_unit_test(test_concatenated),
		cmocka_unit_test(test_gzip_isize_lies),
		cmocka_unit_test(test_gzip_header_fields_and_empty),
		cmocka_unit_test(test_encoding_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
