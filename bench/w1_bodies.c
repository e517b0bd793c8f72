/* SPDX-License-Identifier: Apache-2.0
 * w1_bodies: writes N distinct W1 request bodies for load tools (h2load,
 * wrk, curl). For request i of the seed:
 *   DIR/w1-<i>.pb     the raw ExportTraceServiceRequest (OTLP/HTTP body,
 *                     content-type application/x-protobuf)
 *   DIR/w1-<i>.grpc   the same bytes behind the 5-byte gRPC message prefix
 *                     (0 = uncompressed, then the big-endian length), the
 *                     body of one OTLP/gRPC Export call
 * and prints one line with the W1 figures (spans, bytes per span).
 *
 * Usage: w1_bodies [-n count] [-s seed] -o DIR      (DIR must exist)
 * Single-threaded; holds one request at a time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kn_w1.h"

static int write_file(const char *path, const uint8_t *prefix, size_t plen,
		      const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f) {
		fprintf(stderr, "w1_bodies: -o: %s: %s\n", path, strerror(errno));
		return -1;
	}
	int ok = (plen == 0 || fwrite(prefix, 1, plen, f) == plen) && fwrite(buf, 1, len, f) == len;
	if (fclose(f) != 0 || !ok) {
		fprintf(stderr, "w1_bodies: -o: writing %s failed\n", path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long n = 16;
	uint64_t seed = 1;
	const char *dir = NULL;
	int opt, rc = 1;
	while ((opt = getopt(argc, argv, "n:s:o:")) != -1) {
		switch (opt) {
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'o': dir = optarg; break;
		default: dir = NULL; n = 0; break;
		}
	}
	if (!dir || n == 0) {
		fprintf(stderr, "usage: w1_bodies [-n count>0] [-s seed] -o DIR\n");
		return 2;
	}

	struct kn_w1 *w = kn_w1_new(seed);
	uint8_t *buf = NULL;
	uint64_t bytes = 0, spans = 0;
	if (!w)
		goto fail;
	for (unsigned long i = 0; i < n; i++) {
		struct kn_w1_stats st;
		size_t len;
		char path[4096];
		if (!(buf = kn_w1_pack(w, i, &len, &st))) {
			fprintf(stderr, "w1_bodies: out of memory\n");
			goto fail;
		}
		uint8_t prefix[5] = { 0, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
				      (uint8_t)(len >> 8), (uint8_t)len };
		snprintf(path, sizeof path, "%s/w1-%04lu.pb", dir, i);
		if (write_file(path, NULL, 0, buf, len) < 0)
			goto fail;
		snprintf(path, sizeof path, "%s/w1-%04lu.grpc", dir, i);
		if (write_file(path, prefix, sizeof prefix, buf, len) < 0)
			goto fail;
		bytes += len;
		spans += st.spans;
		free(buf);
		buf = NULL;
	}
	printf("w1_bodies: %lu requests x %u spans, %.1f bytes/span, %.1f KiB/request, in %s\n",
	       n, KN_W1_SPANS, (double)bytes / (double)spans, (double)bytes / (double)n / 1024.0, dir);
	rc = 0;
fail:
	free(buf);
	kn_w1_free(w);
	return rc;
}
