/* SPDX-License-Identifier: Apache-2.0
 * A standalone driver for the fuzz targets when the compiler has no libFuzzer
 * (gcc): it runs every file of the corpus directories given as arguments, then
 * a deterministic mutation loop (seeded, bounded iterations) over them, so the
 * targets run in the ordinary test suite under ASan/UBSan. With clang and
 * -Dfuzzing=true the same targets link against libFuzzer instead. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	uint8_t *data;
	size_t len;
};

static struct input *inputs;
static size_t ninputs, capinputs;

static void add_input(uint8_t *data, size_t len)
{
	if (ninputs == capinputs) {
		capinputs = capinputs ? capinputs * 2 : 64;
		inputs = realloc(inputs, capinputs * sizeof *inputs);
		if (!inputs)
			abort();
	}
	inputs[ninputs].data = data;
	inputs[ninputs].len = len;
	ninputs++;
}

static void load_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
	if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
		fclose(f);
		free(buf);
		return;
	}
	fclose(f);
	add_input(buf, (size_t)n);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int main(int argc, char **argv)
{
	long iterations = 20000;
	const char *it = getenv("KN_FUZZ_ITERATIONS");
	if (it)
		iterations = strtol(it, NULL, 10);
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		if (!d) {
			load_file(argv[i]);
			continue;
		}
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
			load_file(path);
		}
		closedir(d);
	}
	if (ninputs == 0)
		add_input(calloc(1, 1), 0);
	for (size_t i = 0; i < ninputs; i++)
		LLVMFuzzerTestOneInput(inputs[i].data, inputs[i].len);
	uint8_t *buf = malloc(1 << 20);
	for (long n = 0; n < iterations; n++) {
		const struct input *in = &inputs[next_rand() % ninputs];
		size_t len = in->len;
		if (len > (1 << 20) - 64)
			len = (1 << 20) - 64;
		memcpy(buf, in->data, len);
		int muts = 1 + (int)(next_rand() % 8);
		for (int m = 0; m < muts; m++) {
			uint64_t r = next_rand();
			switch (r % 5) {
			case 0: /* flip a byte */
				if (len)
					buf[(r >> 8) % len] ^= (uint8_t)(1u << ((r >> 3) % 8));
				break;
			case 1: /* random byte */
				if (len)
					buf[(r >> 8) % len] = (uint8_t)(r >> 32);
				break;
			case 2: /* truncate */
				if (len)
					len = (r >> 8) % len;
				break;
			case 3: /* insert a byte */
				if (len < (1 << 20) - 64) {
					size_t at = len ? (r >> 8) % len : 0;
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = (uint8_t)(r >> 40);
					len++;
				}
				break;
			case 4: /* interesting varint / length bytes */
				if (len)
					buf[(r >> 8) % len] = (uint8_t[]){0x00, 0x7f, 0x80, 0xff, 0x0a, 0x12}[(r >> 24) % 6];
				break;
			}
		}
		LLVMFuzzerTestOneInput(buf, len);
	}
	printf("fuzz driver: %zu corpus inputs, %ld mutations, no crash\n", ninputs, iterations);
	free(buf);
	for (size_t i = 0; i < ninputs; i++)
		free(inputs[i].data);
	free(inputs);
	return 0;
}
