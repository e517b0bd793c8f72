/* SPDX-License-Identifier: Apache-2.0
 * test_exporter_file: the `file` exporter through its component interface
 * (create/start/export/shutdown/destroy) into a mkdtemp directory, then the
 * files are read back: JSON lines decode (kn_pbjson) and re-encode to the
 * exact bytes sent; proto records are the exact bytes and unpack with
 * protobuf-c; zstd files decompress as complete streams; rotation keeps
 * every record, in order, across files. Waiting is on shutdown (which
 * drains the queue) or on a polled file condition with a generous bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <zstd.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "collector/config/kn_config.h"
#include "kn_test_chunks.h"
#include "collector/core/kn_clock.h"
#include "collector/core/kn_metrics.h"
#include "collector/json/kn_pbjson.h"
#include "exporters/file/kn_exporter_file.h"
#include "exporters/file/kn_fileout.h"



/* ---- fixtures ---- */

struct rec {
	uint8_t *data;
	size_t len;
};

struct fx {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	strcpy(f->dir, "/tmp/kn_fileexp_XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/traces.out", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void base_cfg(struct kn_exporter_file_cfg *cfg, const char *path, const char *format,
		     const char *compression)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->path = (char *)path;
	cfg->format = (char *)format;
	cfg->compression = (char *)compression;
	cfg->flush_interval_ns = KN_NS_PER_SEC;
	cfg->rotation.max_megabytes = 100;
	cfg->rotation.max_backups = 100;
	cfg->sender.timeout_ns = 5 * KN_NS_PER_SEC;
	cfg->sender.queue.enabled = 1;
	cfg->sender.queue.num_consumers = 1;
	cfg->sender.queue.queue_size = 1000;
}

/* Exports batches[0..n) (recording each one's encoded bytes in recs). */
static void run_export(const struct kn_exporter_file_cfg *cfg, struct kn_batch **batches,
		       size_t n, struct rec *recs)
{
	struct kn_err err = { { 0 } };
	struct kn_component_ctx ctx = { .id = "file" };
	void *inst = NULL;
	assert_int_equal(kn_exporter_file.create(&ctx, cfg, &inst, &err), KN_OK);
	assert_int_equal(kn_exporter_file.start(inst, &err), KN_OK);
	for (size_t i = 0; i < n; i++) {
		recs[i].len = batches[i]->bytes;
		recs[i].data = kn_batch_flatten(batches[i]);
		assert_non_null(recs[i].data);
		assert_int_equal(kn_exporter_file.export(inst, batches[i]), KN_OK);
	}
	kn_exporter_file.shutdown(inst, kn_now_ns() + 30 * KN_NS_PER_SEC);
	kn_exporter_file.destroy(inst);
}

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	long sz = ftell(fp);
	assert_true(sz >= 0);
	rewind(fp);
	uint8_t *buf = malloc((size_t)sz + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)sz, fp), (size_t)sz);
	buf[sz] = 0;
	fclose(fp);
	*len = (size_t)sz;
	return buf;
}

/* Decompresses a whole zstd stream; returns NULL unless it ends on a frame
 * boundary (complete). */
static uint8_t *unzstd(const uint8_t *in, size_t inlen, size_t *outlen)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	assert_non_null(d);
	size_t cap = 1 << 16, len = 0;
	uint8_t *out = malloc(cap);
	assert_non_null(out);
	ZSTD_inBuffer ib = { in, inlen, 0 };
	size_t r = 0;
	int bad = 0;
	while (ib.pos < ib.size) {
		if (cap - len < ZSTD_DStreamOutSize()) {
			cap *= 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		ZSTD_outBuffer ob = { out + len, cap - len, 0 };
		r = ZSTD_decompressStream(d, &ob, &ib);
		if (ZSTD_isError(r)) {
			bad = 1;
			break;
		}
		len += ob.pos;
	}
	/* Drain anything still buffered in the decoder. */
	while (!bad && r != 0) {
		if (cap - len < ZSTD_DStreamOutSize()) {
			cap *= 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		ZSTD_outBuffer ob = { out + len, cap - len, 0 };
		r = ZSTD_decompressStream(d, &ob, &ib);
		if (ZSTD_isError(r) || ob.pos == 0)
			bad = 1;
		len += ob.pos;
	}
	ZSTD_freeDCtx(d);
	if (bad || inlen == 0) {
		free(out);
		return NULL;
	}
	*outlen = len;
	return out;
}

/* Checks the JSON lines in text against recs[0..n). */
static void check_json(const uint8_t *text, size_t len, const struct rec *recs, size_t n)
{
	const ProtobufCMessageDescriptor *desc =
		&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
	size_t i = 0;
	const uint8_t *p = text, *end = text + len;
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		assert_non_null(nl);  /* every record ends its line */
		assert_true(i < n);
		assert_memory_equal(p, "{\"resourceSpans\":[", 18);
		ProtobufCMessage *msg = NULL;
		struct kn_err err = { { 0 } };
		int rc = kn_pbjson_decode(desc, (const char *)p, (size_t)(nl - p), &msg, &err);
		if (rc != KN_OK)
			fail_msg("line %zu: %s", i, err.msg);
		size_t plen = protobuf_c_message_get_packed_size(msg);
		uint8_t *packed = malloc(plen ? plen : 1);
		assert_non_null(packed);
		protobuf_c_message_pack(msg, packed);
		assert_int_equal(plen, recs[i].len);
		assert_memory_equal(packed, recs[i].data, plen);
		free(packed);
		protobuf_c_message_free_unpacked(msg, NULL);
		p = nl + 1;
		i++;
	}
	assert_int_equal(i, n);
}

/* Checks length-prefixed records in buf against recs[0..n); returns bytes used. */
static size_t check_proto(const uint8_t *buf, size_t len, const struct rec *recs, size_t n)
{
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		assert_true(off + 4 <= len);
		size_t rl = ((size_t)buf[off] << 24) | ((size_t)buf[off + 1] << 16) |
			    ((size_t)buf[off + 2] << 8) | buf[off + 3];
		off += 4;
		assert_int_equal(rl, recs[i].len);
		assert_true(off + rl <= len);
		assert_memory_equal(buf + off, recs[i].data, rl);
		Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
			opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
				NULL, rl, buf + off);
		assert_non_null(req);
		assert_true(req->n_resource_spans > 0);
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
		off += rl;
	}
	return off;
}

static void free_recs(struct rec *recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(recs[i].data);
}

/* ---- tests ---- */

static void test_json_lines(void **state)
{
	struct fx *f = *state;
	struct kn_exporter_file_cfg cfg;
	base_cfg(&cfg, f->path, "json", "");
	struct kn_batch *b[3] = { kn_test_batch(1, 1, 1, 3, 0), kn_test_batch(10, 2, 2, 2, 0),
				  kn_test_batch(20, 3, 1, 1, 16) };
	struct rec recs[3];
	run_export(&cfg, b, 3, recs);
	size_t len;
	uint8_t *text = read_all(f->path, &len);
	check_json(text, len, recs, 3);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	mode_t mask = umask(0);
	umask(mask);
	assert_int_equal(st.st_mode & 0777, 0644 & ~mask);
	free(text);
	free_recs(recs, 3);
}

static void test_proto_records_append(void **state)
{
	struct fx *f = *state;
	/* A record already in the file stays: the exporter appends. */
	struct kn_batch *old = kn_test_batch(200, 1, 1, 2, 0);
	struct rec recs[4];
	recs[0].len = old->bytes;
	recs[0].data = kn_batch_flatten(old);
	FILE *fp = fopen(f->path, "wb");
	assert_non_null(fp);
	uint8_t pre[4] = { (uint8_t)(old->bytes >> 24), (uint8_t)(old->bytes >> 16),
			   (uint8_t)(old->bytes >> 8), (uint8_t)old->bytes };
	assert_int_equal(fwrite(pre, 1, 4, fp), 4);
	assert_int_equal(fwrite(recs[0].data, 1, recs[0].len, fp), recs[0].len);
	fclose(fp);
	kn_batch_free(old);

	struct kn_exporter_file_cfg cfg;
	base_cfg(&cfg, f->path, "proto", "");
	/* 40 chunks: more than the on-stack iovec array holds. */
	struct kn_batch *b[3] = { kn_test_batch(1, 1, 2, 3, 0), kn_test_batch(10, 40, 1, 1, 0),
				  kn_test_batch(60, 2, 1, 5, 100) };
	run_export(&cfg, b, 3, recs + 1);
	size_t len;
	uint8_t *buf = read_all(f->path, &len);
	assert_int_equal(check_proto(buf, len, recs, 4), len);
	free(buf);
	free_recs(recs, 4);
}

static void test_zstd_json_and_proto(void **state)
{
	struct fx *f = *state;
	const char *formats[2] = { "json", "proto" };
	for (int k = 0; k < 2; k++) {
		char path[160];
		snprintf(path, sizeof path, "%s/z.%s.zst", f->dir, formats[k]);
		struct kn_exporter_file_cfg cfg;
		base_cfg(&cfg, path, formats[k], "zstd");
		struct kn_batch *b[3] = { kn_test_batch(1, 1, 1, 3, 0), kn_test_batch(10, 2, 2, 2, 300),
					  kn_test_batch(20, 3, 1, 1, 0) };
		struct rec recs[3];
		run_export(&cfg, b, 3, recs);
		size_t zlen, len;
		uint8_t *z = read_all(path, &zlen);
		uint8_t *plain = unzstd(z, zlen, &len);
		assert_non_null(plain);
		if (k == 0)
			check_json(plain, len, recs, 3);
		else
			assert_int_equal(check_proto(plain, len, recs, 3), len);
		free(plain);
		free(z);
		free_recs(recs, 3);
	}
}

/* With a short flush_interval a frame ends while the exporter runs: the file
 * becomes a complete stream without shutdown. */
static void test_zstd_flush_interval(void **state)
{
	struct fx *f = *state;
	struct kn_exporter_file_cfg cfg;
	base_cfg(&cfg, f->path, "proto", "zstd");
	cfg.flush_interval_ns = 20 * KN_NS_PER_MS;
	struct kn_err err = { { 0 } };
	struct kn_component_ctx ctx = { .id = "file/z" };
	void *inst = NULL;
	assert_int_equal(kn_exporter_file.create(&ctx, &cfg, &inst, &err), KN_OK);
	assert_int_equal(kn_exporter_file.start(inst, &err), KN_OK);
	struct kn_batch *b1 = kn_test_batch(1, 1, 1, 4, 0), *b2 = kn_test_batch(5, 1, 1, 4, 0);
	struct rec recs[2] = { { kn_batch_flatten(b1), b1->bytes }, { kn_batch_flatten(b2), b2->bytes } };
	assert_int_equal(kn_exporter_file.export(inst, b1), KN_OK);

	int complete = 0;
	uint64_t bound = kn_now_ns() + 30 * KN_NS_PER_SEC;
	while (!complete && kn_now_ns() < bound) {
		size_t zlen = 0, len = 0;
		uint8_t *z = read_all(f->path, &zlen);
		uint8_t *plain = zlen ? unzstd(z, zlen, &len) : NULL;
		complete = plain && len == recs[0].len + 4;
		if (complete)
			assert_int_equal(check_proto(plain, len, recs, 1), len);
		free(plain);
		free(z);
		if (!complete)
			nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
	}
	assert_true(complete);

	assert_int_equal(kn_exporter_file.export(inst, b2), KN_OK);
	kn_exporter_file.shutdown(inst, kn_now_ns() + 30 * KN_NS_PER_SEC);
	kn_exporter_file.destroy(inst);
	size_t zlen, len;
	uint8_t *z = read_all(f->path, &zlen);
	uint8_t *plain = unzstd(z, zlen, &len);
	assert_non_null(plain);
	assert_int_equal(check_proto(plain, len, recs, 2), len);
	/* Two frames: the first ended by the flusher, the second at shutdown. */
	size_t first = ZSTD_findFrameCompressedSize(z, zlen);
	assert_false(ZSTD_isError(first));
	assert_true(first < zlen);
	free(plain);
	free(z);
	free_recs(recs, 2);
}

/* Reads the records of path, path.1, ... oldest first, into one buffer. */
static uint8_t *read_rotated(const char *path, int nfiles, size_t *len)
{
	size_t total = 0;
	uint8_t *all = NULL;
	for (int i = nfiles - 1; i >= 0; i--) {
		char name[200];
		if (i == 0)
			snprintf(name, sizeof name, "%s", path);
		else
			snprintf(name, sizeof name, "%s.%d", path, i);
		size_t l;
		uint8_t *buf = read_all(name, &l);
		assert_true(l <= (1u << 20));
		all = realloc(all, total + l + 1);
		assert_non_null(all);
		memcpy(all + total, buf, l);
		total += l;
		free(buf);
	}
	*len = total;
	return all;
}

static int exists(const char *path, int i)
{
	char name[200];
	snprintf(name, sizeof name, "%s.%d", path, i);
	return access(name, F_OK) == 0;
}

static void test_rotation(void **state)
{
	struct fx *f = *state;
	enum { N = 60 };
	/* ~41 KB per record: 60 records = ~2.4 MiB = three files of <= 1 MiB. */
	for (int keep = 0; keep < 2; keep++) {
		char path[160];
		snprintf(path, sizeof path, "%s/rot%d.bin", f->dir, keep);
		struct kn_exporter_file_cfg cfg;
		base_cfg(&cfg, path, "proto", "");
		cfg.rotation_enabled = 1;
		cfg.rotation.max_megabytes = 1;
		cfg.rotation.max_backups = keep ? 1 : 10;
		struct kn_batch *b[N];
		struct rec recs[N];
		for (int i = 0; i < N; i++)
			b[i] = kn_test_batch((uint32_t)i, 1, 1, 10, 4000);
		run_export(&cfg, b, N, recs);
		size_t per = recs[0].len + 4;
		size_t per_file = (1u << 20) / per;
		int nfiles = (int)((N + per_file - 1) / per_file);
		assert_int_equal(nfiles, 3);
		size_t len;
		if (!keep) {
			assert_true(exists(path, 1));
			assert_true(exists(path, 2));
			assert_false(exists(path, 3));
			uint8_t *all = read_rotated(path, 3, &len);
			assert_int_equal(check_proto(all, len, recs, N), len);
			free(all);
		} else {
			/* One backup kept: the oldest file is gone, the rest intact. */
			assert_true(exists(path, 1));
			assert_false(exists(path, 2));
			uint8_t *all = read_rotated(path, 2, &len);
			size_t first = N - len / per;
			assert_int_equal(len % per, 0);
			assert_int_equal(first, per_file);
			assert_int_equal(check_proto(all, len, recs + first, N - first), len);
			free(all);
		}
		free_recs(recs, N);
	}
}

/* kn_fileout directly: zstd rotation with every backup kept, each file a
 * complete zstd stream. */
static void test_fileout_zstd_rotation_keep_all(void **state)
{
	struct fx *f = *state;
	struct kn_fileout o;
	struct kn_err err = { { 0 } };
	assert_int_equal(kn_fileout_init(&o, f->path, 1, 2000, 0, &err), KN_OK);
	assert_int_equal(kn_fileout_open(&o, &err), KN_OK);
	enum { N = 30, L = 700 };
	static uint8_t data[N][L];
	uint32_t x = 12345;
	for (int i = 0; i < N; i++) {
		for (int j = 0; j < L; j++) {
			x = x * 1103515245u + 12345u;
			data[i][j] = (uint8_t)(x >> 16);
		}
		struct iovec iov[2] = { { data[i], 300 }, { data[i] + 300, L - 300 } };
		assert_int_equal(kn_fileout_write(&o, iov, 2, &err), KN_OK);
		if (i % 3 == 2)
			assert_int_equal(kn_fileout_flush(&o, &err), KN_OK);
	}
	assert_int_equal(kn_fileout_close(&o, &err), KN_OK);
	kn_fileout_fini(&o);
	kn_fileout_fini(&o); /* twice is safe */

	int nfiles = 1;
	while (exists(f->path, nfiles))
		nfiles++;
	assert_true(nfiles >= 5);
	size_t got = 0;
	for (int i = nfiles - 1; i >= 0; i--) {
		char name[200];
		if (i == 0)
			snprintf(name, sizeof name, "%s", f->path);
		else
			snprintf(name, sizeof name, "%s.%d", f->path, i);
		size_t zl, l;
		uint8_t *z = read_all(name, &zl);
		uint8_t *plain = unzstd(z, zl, &l);
		assert_non_null(plain);
		assert_int_equal(l % L, 0);
		for (size_t k = 0; k < l / L; k++)
			assert_memory_equal(plain + k * L, data[got + k], L);
		got += l / L;
		free(plain);
		free(z);
	}
	assert_int_equal(got, N);
}

static void test_bad_path_and_missing(void **state)
{
	struct fx *f = *state;
	struct kn_err err = { { 0 } };
	struct kn_component_ctx ctx = { .id = "file" };
	void *inst = NULL;
	struct kn_exporter_file_cfg cfg;
	base_cfg(&cfg, NULL, "json", "");
	assert_int_equal(kn_exporter_file.create(&ctx, &cfg, &inst, &err), KN_ERR);
	assert_null(inst);
	assert_string_equal(err.msg, "exporters.file.path: missing");

	base_cfg(&cfg, f->path, "xml", "");
	assert_int_equal(kn_exporter_file.create(&ctx, &cfg, &inst, &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.file.format"));
	base_cfg(&cfg, f->path, "json", "gzip");
	assert_int_equal(kn_exporter_file.create(&ctx, &cfg, &inst, &err), KN_ERR);
	assert_non_null(strstr(err.msg, "exporters.file.compression"));

	char bad[200];
	snprintf(bad, sizeof bad, "%s/no/such/dir/traces.json", f->dir);
	base_cfg(&cfg, bad, "json", "");
	assert_int_equal(kn_exporter_file.create(&ctx, &cfg, &inst, &err), KN_OK);
	memset(&err, 0, sizeof err);
	assert_int_equal(kn_exporter_file.start(inst, &err), KN_ERR);
	assert_non_null(strstr(err.msg, bad));
	assert_non_null(strstr(err.msg, "No such file or directory"));
	assert_non_null(strstr(err.msg, "exporters.file.path"));
	kn_exporter_file.shutdown(inst, kn_now_ns() + KN_NS_PER_SEC);
	kn_exporter_file.destroy(inst);
}

static void test_lifecycle_edges(void **state)
{
	struct fx *f = *state;
	kn_exporter_file.destroy(NULL);
	kn_exporter_file.shutdown(NULL, 0);
	struct kn_err err = { { 0 } };
	struct kn_component_ctx ctx = { .id = "file" };
	struct kn_exporter_file_cfg cfg;
	base_cfg(&cfg, f->path, "proto", "zstd");
	void *inst = NULL;
	/* Shutdown before start, twice, then destroy. */
	assert_int_equal(kn_exporter_file.create(&ctx, &cfg, &inst, &err), KN_OK);
	kn_exporter_file.shutdown(inst, kn_now_ns() + KN_NS_PER_SEC);
	kn_exporter_file.shutdown(inst, kn_now_ns() + KN_NS_PER_SEC);
	kn_exporter_file.destroy(inst);
	assert_int_not_equal(access(f->path, F_OK), 0); /* create opened nothing */
	/* Destroy without shutdown after start; then shutdown twice after start. */
	assert_int_equal(kn_exporter_file.create(&ctx, &cfg, &inst, &err), KN_OK);
	assert_int_equal(kn_exporter_file.start(inst, &err), KN_OK);
	kn_exporter_file.destroy(inst);
	assert_int_equal(kn_exporter_file.create(&ctx, &cfg, &inst, &err), KN_OK);
	assert_int_equal(kn_exporter_file.start(inst, &err), KN_OK);
	kn_exporter_file.shutdown(inst, kn_now_ns() + KN_NS_PER_SEC);
	kn_exporter_file.shutdown(inst, kn_now_ns() + KN_NS_PER_SEC);
	kn_exporter_file.destroy(inst);
	/* Nothing written: the file exists and is empty (no empty frame). */
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 0);
}

/* The config table: defaults, the YAML shape, and errors naming the key. */
static void test_config_table(void **state)
{
	(void)state;
	struct kn_exporter_file_cfg cfg;
	struct kn_err err = { { 0 } };
	struct kn_cnode *root = NULL;
	const char *yaml =
		"exporters:\n"
		"  file:\n"
		"    path: /tmp/x.jsonl\n"
		"    format: proto\n"
		"    compression: zstd\n"
		"    rotation:\n"
		"      max_megabytes: 5\n"
		"    flush_interval: 250ms\n"
		"    sending_queue:\n"
		"      queue_size: 7\n";
	assert_int_equal(kn_config_parse(yaml, strlen(yaml), "<test>", &root, &err), KN_OK);
	const struct kn_cnode *node = kn_cnode_get(kn_cnode_get(root, "exporters"), "file");
	assert_non_null(node);
	memset(&cfg, 0, sizeof cfg);
	if (kn_cfg_apply(kn_exporter_file_fields, node, &cfg, &err) != KN_OK)
		fail_msg("%s", err.msg);
	assert_string_equal(cfg.path, "/tmp/x.jsonl");
	assert_string_equal(cfg.format, "proto");
	assert_string_equal(cfg.compression, "zstd");
	assert_int_equal(cfg.rotation_enabled, 1);
	assert_int_equal(cfg.rotation.max_megabytes, 5);
	assert_int_equal(cfg.rotation.max_backups, 100);
	assert_int_equal(cfg.flush_interval_ns, 250 * KN_NS_PER_MS);
	assert_int_equal(cfg.sender.queue.queue_size, 7);
	assert_int_equal(kn_exporter_file.validate(&cfg, "exporters.file", &err), KN_OK);
	kn_cfg_free(kn_exporter_file_fields, &cfg);

	/* Defaults only: format json, no compression, rotation off, 1s. */
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(kn_cfg_defaults(kn_exporter_file_fields, &cfg, &err), KN_OK);
	assert_string_equal(cfg.format, "json");
	assert_true(cfg.compression == NULL || cfg.compression[0] == '\0');
	assert_int_equal(cfg.rotation_enabled, 0);
	assert_int_equal(cfg.flush_interval_ns, KN_NS_PER_SEC);
	assert_int_equal(kn_exporter_file.validate(&cfg, "exporters.file", &err), KN_ERR);
	assert_string_equal(err.msg, "exporters.file.path: missing");
	kn_cfg_free(kn_exporter_file_fields, &cfg);
	kn_cnode_free(root);

	const char *bad = "file:\n  path: /tmp/y\n  format: xml\n";
	root = NULL;
	assert_int_equal(kn_config_parse(bad, strlen(bad), "<test>", &root, &err), KN_OK);
	memset(&cfg, 0, sizeof cfg);
	assert_int_not_equal(kn_cfg_apply(kn_exporter_file_fields, kn_cnode_get(root, "file"),
					  &cfg, &err), KN_OK);
	assert_non_null(strstr(err.msg, "file.format"));
	kn_cfg_free(kn_exporter_file_fields, &cfg);
	kn_cnode_free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_json_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proto_records_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zstd_json_and_proto, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zstd_flush_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fileout_zstd_rotation_keep_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_path_and_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lifecycle_edges, setup, teardown),
		cmocka_unit_test(test_config_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
