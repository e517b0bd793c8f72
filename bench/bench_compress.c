/* SPDX-License-Identifier: Apache-2.0
 * bench_compress: what gzip and zstd cost on W1 export bodies, per span.
 *
 *   bench_compress [-n REQUESTS] [-t SECONDS] [-r ROW]
 *
 * Builds REQUESTS W1 requests (default 64, ~186 KiB each: one request is one
 * export batch in passthrough) and, per row, compresses every one of them
 * again and again for at least SECONDS of CPU (default 1): zlib (what
 * otlphttp used at level 6, and what libgrpc's gzip is), and the exporters'
 * own path (kn_compress: gzip with ISA-L igzip at levels 1-2 and libdeflate
 * above, zstd) at several levels, and libdeflate at level 1 called directly
 * (what gzip 1 was before igzip). Then the
 * receivers' side: inflating the same bodies with zlib (the old
 * kn_decompress) and with kn_decompress (libdeflate one-shot).
 *
 * Columns: bytes per span after compression (and the share of the encoded
 * size), compression CPU ns per span and MB/s of input, both from the
 * benchmarking thread's CPU time (CLOCK_THREAD_CPUTIME_ID, so they are per
 * core even on a busy machine). Every compressed body is checked once with
 * an independent decoder (zlib for gzip, libzstd for zstd) against its
 * input; a mismatch ends the run with exit 1. Prints a Markdown table. */
#include <getopt.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "collector/http/kn_decompress.h"
#include "exporters/common/kn_compress.h"
#include "kn_w1.h"

struct body {
	uint8_t *p;
	size_t len;
	uint32_t spans;
};

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* zlib gzip at `level` into out (cap bytes); returns the size, 0 on error. */
static size_t zlib_gzip(const struct body *b, int level, uint8_t *out, size_t cap)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	z.next_in = b->p;
	z.avail_in = (uInt)b->len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	int r = deflate(&z, Z_FINISH);
	size_t n = cap - z.avail_out;
	deflateEnd(&z);
	return r == Z_STREAM_END ? n : 0;
}

/* libdeflate's one-shot gzip at `level` into out; returns the size, 0 on error. */
static size_t libdeflate_gzip(struct libdeflate_compressor *d, const struct body *b, uint8_t *out, size_t cap)
{
	return libdeflate_gzip_compress(d, b->p, b->len, out, cap);
}

/* The independent check: zlib (gzip) or libzstd decodes c back to b. */
static int check(int zstd, const uint8_t *c, size_t clen, const struct body *b, uint8_t *tmp)
{
	if (zstd) {
		size_t r = ZSTD_decompress(tmp, b->len, c, clen);
		return !ZSTD_isError(r) && r == b->len && memcmp(tmp, b->p, b->len) == 0;
	}
	z_stream z;
	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return 0;
	z.next_in = (Bytef *)(uintptr_t)c;
	z.avail_in = (uInt)clen;
	z.next_out = tmp;
	z.avail_out = (uInt)b->len + 1;
	int r = inflate(&z, Z_FINISH);
	size_t n = b->len + 1 - z.avail_out;
	inflateEnd(&z);
	return r == Z_STREAM_END && n == b->len && memcmp(tmp, b->p, b->len) == 0;
}

struct row {
	const char *name;
	int kind;     /* 0 zlib, 1 kn_compress gzip, 2 kn_compress zstd, 3 libdeflate direct */
	int level;
};

static const struct row rows[] = {
	{"zlib gzip 6 (before: otlphttp, libgrpc's gzip)", 0, 6},
	{"zlib gzip 1", 0, 1},
	{"libdeflate gzip 1 (before: the default)", 3, 1},
	{"kn_compress gzip 1: ISA-L igzip 1", 1, 1},
	{"kn_compress gzip 2: ISA-L igzip 2 (the default)", 1, 2},
	{"kn_compress gzip 3: libdeflate 3", 1, 3},
	{"kn_compress gzip 6: libdeflate 6", 1, 6},
	{"zstd 1", 2, 1},
	{"zstd 3", 2, 3},
};

int main(int argc, char **argv)
{
	unsigned n = 64;
	double secs = 1.0;
	const char *only = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "n:t:r:h")) != -1) {
		switch (opt) {
		case 'n': n = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': secs = strtod(optarg, NULL); break;
		case 'r': only = optarg; break;
		default:
			fprintf(stderr, "usage: bench_compress [-n REQUESTS] [-t SECONDS] [-r ROW-PREFIX]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (n < 1)
		n = 1;
	struct kn_w1 *w = kn_w1_new(1);
	struct body *bodies = calloc(n, sizeof *bodies);
	size_t maxlen = 0, total = 0;
	uint64_t spans = 0;
	for (unsigned i = 0; i < n; i++) {
		struct kn_w1_stats st;
		bodies[i].p = kn_w1_pack(w, i, &bodies[i].len, &st);
		bodies[i].spans = st.spans;
		if (bodies[i].len > maxlen)
			maxlen = bodies[i].len;
		total += bodies[i].len;
		spans += st.spans;
	}
	kn_w1_free(w);
	size_t cap = ZSTD_compressBound(maxlen) + compressBound((uLong)maxlen) + 1024;
	uint8_t *out = malloc(cap), *tmp = malloc(maxlen + 1);
	int bad = 0;

	printf("W1: %u requests, %.1f bytes per span encoded, %.1f KiB per request\n\n", n,
	       (double)total / (double)spans, (double)total / n / 1024);
	printf("| codec, level | bytes per span | of encoded | compress CPU ns per span | MB/s (input, per core) |\n");
	printf("| --- | ---: | ---: | ---: | ---: |\n");
	for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
		const struct row *rw = &rows[r];
		if (only && strncmp(rw->name, only, strlen(only)) != 0)
			continue;
		struct kn_compressor *c = rw->kind == 1 || rw->kind == 2
						  ? kn_compressor_new(rw->kind == 1 ? KN_Z_GZIP : KN_Z_ZSTD, rw->level)
						  : NULL;
		struct libdeflate_compressor *ld = rw->kind == 3 ? libdeflate_alloc_compressor(rw->level) : NULL;
		uint64_t csum = 0, ssum = 0, in_bytes = 0;
		double t0 = cpu_now(), t;
		int first = 1;
		do {
			for (unsigned i = 0; i < n; i++) {
				const struct body *b = &bodies[i];
				size_t clen;
				const uint8_t *cp;
				struct kn_zbuf *z = NULL;
				if (rw->kind == 0) {
					clen = zlib_gzip(b, rw->level, out, cap);
					cp = out;
				} else if (rw->kind == 3) {
					clen = libdeflate_gzip(ld, b, out, cap);
					cp = out;
				} else {
					const uint8_t *bp = b->p;
					z = kn_compress_iov(c, &bp, &b->len, 1);
					clen = z ? z->len : 0;
					cp = z ? z->data : NULL;
				}
				if (first && (!clen || !check(rw->kind == 2, cp, clen, b, tmp))) {
					fprintf(stderr, "bench_compress: %s: request %u does not decode back\n", rw->name, i);
					bad = 1;
				}
				kn_zbuf_unref(z);
				csum += clen;
				ssum += b->spans;
				in_bytes += b->len;
			}
			first = 0;
			t = cpu_now() - t0;
		} while (t < secs);
		kn_compressor_free(c);
		libdeflate_free_compressor(ld);
		printf("| %s | %.1f | %.1f%% | %.0f | %.0f |\n", rw->name, (double)csum / (double)ssum,
		       100.0 * (double)csum / (double)in_bytes, t * 1e9 / (double)ssum, (double)in_bytes / t / 1e6);
	}

	/* The receivers' side: the same bodies gzip'd (kn_compress gzip 1), inflated. */
	printf("\n| receiver gzip decode | CPU ns per span | MB/s (output, per core) |\n| --- | ---: | ---: |\n");
	struct kn_compressor *c = kn_compressor_new(KN_Z_GZIP, 1);
	struct kn_zbuf **gz = calloc(n, sizeof *gz);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *bp = bodies[i].p;
		gz[i] = kn_compress_iov(c, &bp, &bodies[i].len, 1);
		kn_compressor_free(c); /* each body keeps its own buffer */
		c = kn_compressor_new(KN_Z_GZIP, 1);
	}
	kn_compressor_free(c);
	for (int way = 0; way < 2; way++) {
		uint64_t ssum = 0, obytes = 0;
		double t0 = cpu_now(), t;
		do {
			for (unsigned i = 0; i < n; i++) {
				if (way == 0) {
					if (!check(0, gz[i]->data, gz[i]->len, &bodies[i], tmp))
						bad = 1;
				} else {
					uint8_t *o = NULL;
					size_t olen = 0;
					if (kn_decompress(KN_ENC_GZIP, gz[i]->data, gz[i]->len, 20u << 20, &o, &olen, NULL) !=
						    KN_DECOMP_OK ||
					    olen != bodies[i].len || memcmp(o, bodies[i].p, olen) != 0)
						bad = 1;
					free(o);
				}
				ssum += bodies[i].spans;
				obytes += bodies[i].len;
			}
			t = cpu_now() - t0;
		} while (t < secs);
		printf("| %s | %.0f | %.0f |\n",
		       way == 0 ? "zlib inflate (before; includes a memcmp check)" :
				  "kn_decompress: libdeflate one-shot (includes a memcmp check)",
		       t * 1e9 / (double)ssum, (double)obytes / t / 1e6);
	}
	for (unsigned i = 0; i < n; i++) {
		kn_zbuf_unref(gz[i]);
		free(bodies[i].p);
	}
	free(gz);
	free(bodies);
	free(out);
	free(tmp);
	if (bad)
		fprintf(stderr, "bench_compress: FAILED: a body did not decode back to its input\n");
	return bad;
}
