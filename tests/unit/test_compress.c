/* SPDX-License-Identifier: Apache-2.0
 * Tests for kn_compress (whole-batch gzip with ISA-L igzip at levels 1-2 and
 * libdeflate above, zstd) with zlib and
 * libzstd as the independent decoders, for the receivers' one-shot gzip path
 * on what the exporters produce, and for kn_conns (the `connections` key:
 * checks, resolution against num_consumers, spreading of consumers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>

#include "collector/core/kn_cpus.h"
#include "collector/http/kn_decompress.h"
#include "exporters/common/kn_compress.h"
#include "exporters/common/kn_conns.h"
#include "exporters/common/kn_sender.h"
#include "kn_test_chunks.h"

static size_t zlib_gunzip(const uint8_t *c, size_t clen, uint8_t *out, size_t cap)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)c;
	z.avail_in = (uInt)clen;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	assert_int_equal(z.avail_in, 0); /* one member, nothing after it */
	size_t n = cap - z.avail_out;
	inflateEnd(&z);
	return n;
}

/* A batch of several chunks (the flattening path for gzip) round trips
 * through both codecs at several levels, checked by the other library. */
static void roundtrip(enum kn_zalg alg, int level, uint32_t nchunks)
{
	struct kn_batch *b = kn_test_batch(7, nchunks, 2, 40, 100);
	uint8_t *want = kn_batch_flatten(b);
	struct kn_compressor *c = kn_compressor_new(alg, level);
	assert_non_null(c);
	for (int round = 0; round < 3; round++) {
		struct kn_zbuf *z = kn_compress_batch(c, b);
		assert_non_null(z);
		assert_true(z->len > 0 && z->len < b->bytes);
		uint8_t *out = malloc(b->bytes + 1);
		size_t n;
		if (alg == KN_Z_GZIP) {
			n = zlib_gunzip(z->data, z->len, out, b->bytes + 1);
		} else {
			assert_int_equal(ZSTD_getFrameContentSize(z->data, z->len), b->bytes);
			n = ZSTD_decompress(out, b->bytes + 1, z->data, z->len);
			assert_false(ZSTD_isError(n));
		}
		assert_int_equal(n, b->bytes);
		assert_memory_equal(out, want, n);
		/* and the receivers' decoder takes it back, limit exactly the size */
		uint8_t *dec = NULL;
		size_t dlen = 0;
		assert_int_equal(kn_decompress(alg == KN_Z_GZIP ? KN_ENC_GZIP : KN_ENC_ZSTD, z->data, z->len, b->bytes,
					       &dec, &dlen, NULL),
				 KN_DECOMP_OK);
		assert_int_equal(dlen, b->bytes);
		assert_memory_equal(dec, want, dlen);
		free(dec);
		free(out);
		kn_zbuf_unref(z);
	}
	kn_compressor_free(c);
	free(want);
	kn_batch_free(b);
}

static void test_gzip_roundtrip(void **state)
{
	(void)state;
	for (int level = 1; level <= KN_GZIP_LEVEL_MAX; level += 5)
		for (uint32_t nchunks = 1; nchunks <= 40; nchunks += 13)
			roundtrip(KN_Z_GZIP, level, nchunks);
	for (uint32_t nchunks = 1; nchunks <= 40; nchunks += 13)
		roundtrip(KN_Z_GZIP, 2, nchunks); /* the default: igzip 2 */
}

/* Input that does not compress: igzip (and libdeflate above its levels)
 * writes stored blocks that stay within the output bound, one valid gzip
 * member from 1 byte to past the 64 KiB stored-block size, at every level
 * igzip serves and one above; then compressible input on the same
 * compressor still compresses. */
static void test_gzip_incompressible(void **state)
{
	(void)state;
	size_t sizes[] = {1, 100, 4096, 70000, 1u << 20};
	uint64_t x = 88172645463325252ull;
	uint8_t *in = malloc(1u << 20), *out = malloc((1u << 20) + 1);
	for (size_t i = 0; i < 1u << 20; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		in[i] = (uint8_t)x;
	}
	for (int level = 1; level <= KN_GZIP_LEVEL_ISAL_MAX + 1; level++) {
		struct kn_compressor *c = kn_compressor_new(KN_Z_GZIP, level);
		assert_non_null(c);
		for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
			const uint8_t *bp = in;
			struct kn_zbuf *z = kn_compress_iov(c, &bp, &sizes[k], 1);
			assert_non_null(z);
			assert_int_equal(zlib_gunzip(z->data, z->len, out, (1u << 20) + 1), sizes[k]);
			assert_memory_equal(out, in, sizes[k]);
			kn_zbuf_unref(z);
		}
		memset(in, 'k', 70000);
		size_t n = 70000;
		const uint8_t *bp = in;
		struct kn_zbuf *z = kn_compress_iov(c, &bp, &n, 1);
		assert_non_null(z);
		assert_true(z->len < 1000);
		assert_int_equal(zlib_gunzip(z->data, z->len, out, n + 1), n);
		assert_memory_equal(out, in, n);
		kn_zbuf_unref(z);
		kn_compressor_free(c);
		for (size_t i = 0; i < 70000; i++) { /* random again for the next level */
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			in[i] = (uint8_t)x;
		}
	}
	free(in);
	free(out);
}

static void test_zstd_roundtrip(void **state)
{
	(void)state;
	for (int level = 1; level <= KN_ZSTD_LEVEL_MAX; level += 9)
		for (uint32_t nchunks = 1; nchunks <= 40; nchunks += 13)
			roundtrip(KN_Z_ZSTD, level, nchunks);
}

/* The output buffer is reused only when nobody else holds it: a buffer
 * still referenced (libgrpc sending it) keeps its bytes. */
static void test_buffer_reuse_and_holders(void **state)
{
	(void)state;
	struct kn_batch *b1 = kn_test_batch(1, 2, 1, 10, 0), *b2 = kn_test_batch(2, 2, 1, 10, 0);
	uint8_t *w1 = kn_batch_flatten(b1);
	struct kn_compressor *c = kn_compressor_new(KN_Z_GZIP, 1);
	struct kn_zbuf *z1 = kn_compress_batch(c, b1);
	uint8_t *p1 = z1->data;
	kn_zbuf_unref(z1);
	struct kn_zbuf *z2 = kn_compress_batch(c, b1);
	assert_ptr_equal(z2->data, p1); /* released: reused */
	/* held: the next batch gets another buffer, this one stays intact */
	struct kn_zbuf *z3 = kn_compress_batch(c, b2);
	assert_ptr_not_equal(z3, z2);
	uint8_t out[65536];
	size_t n = zlib_gunzip(z2->data, z2->len, out, sizeof out);
	assert_int_equal(n, b1->bytes);
	assert_memory_equal(out, w1, n);
	kn_compressor_free(c); /* the holders keep their buffers */
	n = zlib_gunzip(z3->data, z3->len, out, sizeof out);
	assert_int_equal(n, b2->bytes);
	kn_zbuf_unref(z2);
	kn_zbuf_unref(z3);
	free(w1);
	kn_batch_free(b1);
	kn_batch_free(b2);
}

static void test_empty_and_iov(void **state)
{
	(void)state;
	struct kn_compressor *c = kn_compressor_new(KN_Z_GZIP, 1);
	struct kn_zbuf *z = kn_compress_iov(c, NULL, NULL, 0);
	assert_non_null(z);
	uint8_t out[16];
	assert_int_equal(zlib_gunzip(z->data, z->len, out, sizeof out), 0);
	kn_zbuf_unref(z);
	kn_compressor_free(c);
	c = kn_compressor_new(KN_Z_ZSTD, 1);
	const uint8_t *bufs[3] = {(const uint8_t *)"ab", (const uint8_t *)"", (const uint8_t *)"cde"};
	size_t lens[3] = {2, 0, 3};
	z = kn_compress_iov(c, bufs, lens, 3);
	assert_non_null(z);
	assert_int_equal(ZSTD_decompress(out, sizeof out, z->data, z->len), 5);
	assert_memory_equal(out, "abcde", 5);
	kn_zbuf_unref(z);
	kn_compressor_free(c);
	assert_null(kn_compressor_new(KN_Z_NONE, 1));
	kn_compressor_free(NULL);
	kn_zbuf_unref(NULL);
}

static void test_alg_names_levels(void **state)
{
	(void)state;
	enum kn_zalg a;
	assert_int_equal(kn_zalg_parse("gzip", &a), 0);
	assert_int_equal(a, KN_Z_GZIP);
	assert_int_equal(kn_zalg_parse("zstd", &a), 0);
	assert_int_equal(a, KN_Z_ZSTD);
	assert_int_equal(kn_zalg_parse(NULL, &a), 0);
	assert_int_equal(a, KN_Z_NONE);
	assert_int_equal(kn_zalg_parse("none", &a), 0);
	assert_int_equal(kn_zalg_parse("snappy", &a), -1);
	assert_string_equal(kn_zalg_name(KN_Z_ZSTD), "zstd");
	assert_int_equal(kn_zalg_level(KN_Z_GZIP, 0), KN_GZIP_LEVEL_DEFAULT);
	assert_true(KN_GZIP_LEVEL_DEFAULT <= KN_GZIP_LEVEL_ISAL_MAX); /* the default is igzip's */
	assert_int_equal(kn_zalg_level(KN_Z_ZSTD, 0), KN_ZSTD_LEVEL_DEFAULT);
	assert_int_equal(kn_zalg_level(KN_Z_GZIP, 6), 6);
	assert_int_equal(kn_zalg_level_ok(KN_Z_GZIP, 0), 0);
	assert_int_equal(kn_zalg_level_ok(KN_Z_GZIP, 12), 0);
	assert_int_equal(kn_zalg_level_ok(KN_Z_GZIP, 13), -1);
	assert_int_equal(kn_zalg_level_ok(KN_Z_GZIP, -1), -1);
	assert_int_equal(kn_zalg_level_ok(KN_Z_ZSTD, 19), 0);
	assert_int_equal(kn_zalg_level_ok(KN_Z_ZSTD, 20), -1);
	assert_int_equal(kn_zalg_level_ok(KN_Z_NONE, 1), -1);
}

/* ---- kn_conns ---- */

static void test_conns_check(void **state)
{
	(void)state;
	struct kn_err err;
	assert_int_equal(kn_conns_check(0, 0, "exporters.otlp", &err), KN_OK);
	assert_int_equal(kn_conns_check(4, 0, "exporters.otlp", &err), KN_OK);
	assert_int_equal(kn_conns_check(4, 4, "exporters.otlp", &err), KN_OK);
	assert_int_equal(kn_conns_check(4, 3, "exporters.otlp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.otlp.connections: 4 connections need at least as many "
				       "sending_queue.num_consumers"));
	assert_non_null(strstr(err.msg, "got 3"));
	assert_int_equal(kn_conns_check(KN_CONNS_MAX + 1, 0, "exporters.lb.protocol.otlp", &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.lb.protocol.otlp.connections: must be between 0 and 64"));
}

static void test_conns_resolve(void **state)
{
	(void)state;
	uint64_t cons;
	unsigned n;
	unsigned autoc = kn_sender_auto_consumers();
	assert_true(autoc >= 4 && autoc <= 64);
	assert_int_equal(autoc, kn_cpus() < 4 ? 4 : kn_cpus() > 64 ? 64 : kn_cpus());
	/* everything auto: a connection per consumer */
	cons = 0;
	kn_conns_resolve(0, &cons, &n);
	assert_int_equal(cons, autoc);
	assert_int_equal(n, autoc);
	/* explicit connections raise auto consumers */
	cons = 0;
	kn_conns_resolve(40, &cons, &n);
	assert_int_equal(n, 40);
	assert_int_equal(cons, 40 > autoc ? 40 : autoc);
	cons = 0;
	kn_conns_resolve(1, &cons, &n);
	assert_int_equal(n, 1);
	assert_int_equal(cons, autoc);
	/* explicit both */
	cons = 8;
	kn_conns_resolve(2, &cons, &n);
	assert_int_equal(cons, 8);
	assert_int_equal(n, 2);
	/* explicit consumers, auto connections: one each */
	cons = 5;
	kn_conns_resolve(0, &cons, &n);
	assert_int_equal(cons, 5);
	assert_int_equal(n, 5);
}

/* Consumers spread evenly: with C consumers over N connections every
 * connection gets C/N or C/N + 1 of them, and a consumer keeps its own. */
static void test_conns_spread(void **state)
{
	(void)state;
	for (unsigned nconns = 1; nconns <= 8; nconns++)
		for (unsigned cons = nconns; cons <= 20; cons++) {
			unsigned per[8] = {0};
			for (unsigned i = 0; i < cons; i++) {
				unsigned k = kn_conns_of(i, nconns);
				assert_true(k < nconns);
				assert_int_equal(k, kn_conns_of(i, nconns));
				per[k]++;
			}
			for (unsigned k = 0; k < nconns; k++)
				assert_true(per[k] == cons / nconns || per[k] == cons / nconns + 1);
		}
	assert_int_equal(kn_conns_of(5, 0), 0);
	assert_true(kn_cpus() >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gzip_roundtrip),
		cmocka_unit_test(test_gzip_incompressible),
		cmocka_unit_test(test_zstd_roundtrip),
		cmocka_unit_test(test_buffer_reuse_and_holders),
		cmocka_unit_test(test_empty_and_iov),
		cmocka_unit_test(test_alg_names_levels),
		cmocka_unit_test(test_conns_check),
		cmocka_unit_test(test_conns_resolve),
		cmocka_unit_test(test_conns_spread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
