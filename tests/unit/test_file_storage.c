/* SPDX-License-Identifier: Apache-2.0
 * test_file_storage: the persistent queue's log (kn_flog) and the
 * file_storage extension: append / replay / done, segment deletion and
 * compaction, torn and corrupt records skipped and counted, the directory
 * lock, a refused write (the per-file size limit RLIMIT_FSIZE stands in for a
 * full disk: it makes write(2) fail part-way exactly like ENOSPC does, without
 * needing root to mount a small tmpfs; the integration test uses a real
 * tmpfs), and a kn_sender over it: replay after a restart, backpressure
 * past queue_size, a refused append keeping the batch in memory.
 * Every test works in its own temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_backpressure.h"
#include "collector/core/kn_clock.h"
#include "collector/core/kn_metrics.h"
#include "exporters/common/kn_sender.h"
#include "extensions/file_storage/kn_file_storage.h"
#include "extensions/file_storage/kn_flog.h"
#include "kn_test_chunks.h"

static char tmpl[] = "/tmp/kn-test-fs-XXXXXX";
static char root[64];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof root, "%s", tmpl);
	assert_non_null(mkdtemp(root));
	kn_bp_reset();
	return 0;
}

static int rm_rf(const char *p)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
	return system(cmd);
}

static int teardown(void **state)
{
	(void)state;
	rm_rf(root);
	kn_bp_reset();
	return 0;
}

static const struct kn_flog_cfg small = {.fsync = 0, .compact_on_start = 0, .segment_size = 4096};

static struct kn_flog *qopen(const char *sub, const struct kn_flog_cfg *cfg, struct kn_squeue_info *info)
{
	char dir[128];
	struct kn_err err;
	snprintf(dir, sizeof dir, "%s/%s", root, sub);
	struct kn_flog *q = kn_flog_open(dir, "t", cfg, NULL, info, &err);
	if (!q)
		fail_msg("open: %s", err.msg);
	return q;
}

static uint64_t put(struct kn_flog *q, struct kn_batch *b, int held)
{
	uint64_t id = 0;
	struct kn_err err;
	int rc = kn_flog_append(q, b, held, &id, &err);
	if (rc != KN_OK)
		fail_msg("append: %s", err.msg);
	assert_true(id > 0);
	return id;
}

/* The concatenated bytes of a batch. */
static int same_bytes(const struct kn_batch *a, const struct kn_batch *b)
{
	uint8_t *x = kn_batch_flatten(a), *y = kn_batch_flatten(b);
	int same = a->bytes == b->bytes && x && y && memcmp(x, y, a->bytes) == 0;
	free(x);
	free(y);
	return same;
}

static int count_files(const char *sub, const char *suffix)
{
	char dir[128];
	snprintf(dir, sizeof dir, "%s/%s", root, sub);
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	size_t sl = strlen(suffix);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		n += l > sl && strcmp(de->d_name + l - sl, suffix) == 0;
	}
	closedir(d);
	return n;
}

/* Path of the n-th segment (by name) of a queue directory. */
static void seg_file(const char *sub, int nth, char *out, size_t cap)
{
	char dir[128];
	snprintf(dir, sizeof dir, "%s/%s", root, sub);
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort), k = 0;
	assert_true(n > 0);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		size_t l = strlen(list[i]->d_name);
		if (l > 4 && strcmp(list[i]->d_name + l - 4, ".log") == 0 && k++ == nth)
			snprintf(out, cap, "%s/%s", dir, list[i]->d_name);
		free(list[i]);
	}
	free(list);
	assert_true(out[0] != '\0');
}

static void test_append_replay_done(void **state)
{
	(void)state;
	struct kn_squeue_info info;
	struct kn_flog *q = qopen("a", &small, &info);
	assert_int_equal(info.batches, 0);
	struct kn_batch *in[3];
	uint64_t ids[3];
	for (int i = 0; i < 3; i++) {
		in[i] = kn_test_batch(10 * (uint32_t)i + 1, 1, 1, 3, 20);
		ids[i] = put(q, in[i], 0);
	}
	/* trace context travels with the record */
	struct kn_batch *tc = kn_test_service_batch(1, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	uint64_t tcid = put(q, tc, 0);
	assert_int_equal(kn_flog_unread(q), 4);
	assert_int_equal(kn_flog_pending(q), 4);
	for (int i = 0; i < 3; i++) {
		struct kn_batch *b;
		uint64_t id;
		struct kn_squeue_info sk;
		assert_int_equal(kn_flog_next(q, &b, &id, &sk), KN_OK);
		assert_int_equal(id, ids[i]);
		assert_int_equal(b->nspans, in[i]->nspans);
		assert_true(same_bytes(b, in[i]));
		/* span headers are indexed again */
		assert_memory_equal(b->chunks[0]->spans[1].trace_id, in[i]->chunks[0]->spans[1].trace_id, 16);
		kn_batch_free(b);
		if (i != 1)
			kn_flog_done(q, id);
	}
	struct kn_batch *b;
	uint64_t id;
	struct kn_squeue_info sk;
	assert_int_equal(kn_flog_next(q, &b, &id, &sk), KN_OK);
	assert_int_equal(id, tcid);
	const struct kn_tracectx *ctx = kn_batch_ctx(b);
	assert_non_null(ctx);
	assert_string_equal(ctx->traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	assert_string_equal(ctx->tracestate, "k=v");
	kn_batch_free(b);
	assert_int_equal(kn_flog_next(q, &b, &id, &sk), KN_AGAIN);
	assert_int_equal(kn_flog_unread(q), 0);
	assert_int_equal(kn_flog_pending(q), 2);
	kn_flog_close(q);

	/* reopen: the two records not done come back, in order */
	q = qopen("a", &small, &info);
	assert_int_equal(info.batches, 2);
	assert_int_equal(info.spans, in[1]->nspans + tc->nspans);
	assert_int_equal(info.bytes, in[1]->bytes + tc->bytes);
	assert_int_equal(kn_flog_next(q, &b, &id, &sk), KN_OK);
	assert_int_equal(id, ids[1]);
	assert_true(same_bytes(b, in[1]));
	kn_flog_done(q, id);
	kn_batch_free(b);
	assert_int_equal(kn_flog_next(q, &b, &id, &sk), KN_OK);
	assert_int_equal(id, tcid);
	kn_flog_done(q, id);
	kn_batch_free(b);
	/* new ids continue after the old ones */
	struct kn_batch *more = kn_test_batch(99, 1, 1, 2, 0);
	uint64_t nid = put(q, more, 1);
	assert_true(nid > tcid);
	kn_flog_done(q, nid);
	kn_flog_close(q);
	/* nothing pending: no files, no directory */
	char dir[128];
	snprintf(dir, sizeof dir, "%s/a", root);
	assert_int_not_equal(access(dir, F_OK), 0);
	for (int i = 0; i < 3; i++)
		kn_batch_free(in[i]);
	kn_batch_free(tc);
	kn_batch_free(more);
}

static void test_held_not_handed_out(void **state)
{
	(void)state;
	struct kn_squeue_info info;
	struct kn_flog *q = qopen("h", &small, &info);
	struct kn_batch *b1 = kn_test_batch(1, 1, 1, 2, 0), *b2 = kn_test_batch(2, 1, 1, 2, 0);
	uint64_t id1 = put(q, b1, 1);
	uint64_t id2 = put(q, b2, 0);
	struct kn_batch *b;
	uint64_t id;
	struct kn_squeue_info sk;
	assert_int_equal(kn_flog_next(q, &b, &id, &sk), KN_OK);
	assert_int_equal(id, id2); /* the held one is the caller's to send */
	kn_batch_free(b);
	assert_int_equal(kn_flog_next(q, &b, &id, &sk), KN_AGAIN);
	kn_flog_close(q); /* neither done: both replayed */
	q = qopen("h", &small, &info);
	assert_int_equal(info.batches, 2);
	assert_int_equal(kn_flog_next(q, &b, &id, &sk), KN_OK);
	assert_int_equal(id, id1);
	kn_batch_free(b);
	kn_flog_close(q);
	kn_batch_free(b1);
	kn_batch_free(b2);
}

static void test_segments_deleted_and_compacted(void **state)
{
	(void)state;
	struct kn_squeue_info info;
	struct kn_flog *q = qopen("s", &small, &info);
	uint64_t ids[12];
	struct kn_batch *b0 = kn_test_batch(5, 1, 1, 4, 300); /* ~1.5 KiB: 2-3 records per segment */
	for (int i = 0; i < 12; i++)
		ids[i] = put(q, b0, 1);
	int segs = count_files("s", ".log");
	assert_true(segs >= 4);
	uint64_t disk = kn_flog_disk_bytes(q);
	/* the first half done: their segments go */
	for (int i = 0; i < 6; i++)
		kn_flog_done(q, ids[i]);
	assert_true(count_files("s", ".log") < segs);
	assert_true(kn_flog_disk_bytes(q) < disk);
	/* one more done in a segment that keeps a pending record: a done file */
	kn_flog_done(q, ids[7]);
	kn_flog_close(q);
	assert_true(count_files("s", ".done") >= 1);
	char seg[256];
	struct stat before, after;
	seg_file("s", 0, seg, sizeof seg);
	assert_int_equal(stat(seg, &before), 0);

	/* without compaction the records not done come back */
	q = qopen("s", &small, &info);
	assert_int_equal(info.batches, 5);
	kn_flog_close(q);
	/* compaction on start rewrites segments that hold done records */
	struct kn_flog_cfg comp = small;
	comp.compact_on_start = 1;
	q = qopen("s", &comp, &info);
	assert_int_equal(info.batches, 5);
	assert_int_equal(count_files("s", ".done"), 0);
	assert_int_equal(count_files("s", ".tmp"), 0);
	struct kn_batch *b;
	uint64_t id;
	struct kn_squeue_info sk;
	uint64_t want[] = {ids[6], ids[8], ids[9], ids[10], ids[11]};
	for (int i = 0; i < 5; i++) {
		assert_int_equal(kn_flog_next(q, &b, &id, &sk), KN_OK);
		assert_int_equal(id, want[i]);
		assert_true(same_bytes(b, b0));
		kn_batch_free(b);
		kn_flog_done(q, id);
	}
	kn_flog_close(q);
	(void)after;
	kn_batch_free(b0);
}

static void truncate_by(const char *path, off_t n)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size - n), 0);
}

static void flip(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t c;
	assert_int_equal(pread(fd, &c, 1, at), 1);
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, at), 1);
	close(fd);
}

static void test_torn_tail_skipped(void **state)
{
	(void)state;
	struct kn_squeue_info info;
	struct kn_flog_cfg big = small;
	big.segment_size = 1 << 20;
	struct kn_flog *q = qopen("t", &big, &info);
	struct kn_batch *b0 = kn_test_batch(7, 1, 1, 3, 50);
	for (int i = 0; i < 3; i++)
		put(q, b0, 1);
	kn_flog_close(q);
	char seg[256];
	seg_file("t", 0, seg, sizeof seg);
	truncate_by(seg, 10); /* the last payload cut short, as by a crash */
	q = qopen("t", &big, &info);
	assert_int_equal(info.batches, 2);
	assert_int_equal(kn_flog_skipped(q, KN_FLOG_TORN), 1);
	kn_flog_close(q);
	/* counted once: the torn bytes were cut off */
	struct stat st;
	assert_int_equal(stat(seg, &st), 0);
	assert_int_equal(st.st_size, 16 + 2 * (32 + (off_t)b0->bytes));
	q = qopen("t", &big, &info);
	assert_int_equal(kn_flog_skipped(q, KN_FLOG_TORN), 0);
	/* a header cut short too */
	put(q, b0, 1);
	kn_flog_close(q);
	seg_file("t", 1, seg, sizeof seg);
	assert_int_equal(stat(seg, &st), 0);
	assert_int_equal(truncate(seg, 16 + 20), 0); /* file header + 20 bytes of a record header */
	q = qopen("t", &big, &info);
	assert_int_equal(info.batches, 2);
	assert_int_equal(kn_flog_skipped(q, KN_FLOG_TORN), 1);
	kn_flog_close(q);
	kn_batch_free(b0);
}

static void test_corrupt_records_skipped(void **state)
{
	(void)state;
	struct kn_squeue_info info;
	struct kn_flog_cfg big = small;
	big.segment_size = 1 << 20;
	struct kn_flog *q = qopen("c", &big, &info);
	struct kn_batch *b0 = kn_test_batch(9, 1, 1, 3, 50);
	uint64_t ids[4];
	for (int i = 0; i < 4; i++)
		ids[i] = put(q, b0, 1);
	kn_flog_close(q);
	char seg[256];
	seg_file("c", 0, seg, sizeof seg);
	size_t rec = 32 + b0->bytes;
	flip(seg, (off_t)(16 + rec + 32 + 7));     /* record 2's payload */
	flip(seg, (off_t)(16 + 2 * rec + 9));      /* record 3's header (its seq) */
	q = qopen("c", &big, &info);
	assert_int_equal(kn_flog_skipped(q, KN_FLOG_BAD_HEADER), 1);
	assert_int_equal(info.batches, 3); /* record 3 lost its header; record 4 found again */
	struct kn_batch *b;
	uint64_t id;
	struct kn_squeue_info sk;
	assert_int_equal(kn_flog_next(q, &b, &id, &sk), KN_OK);
	assert_int_equal(id, ids[0]);
	assert_int_equal(sk.batches, 0);
	kn_batch_free(b);
	kn_flog_done(q, id);
	assert_int_equal(kn_flog_next(q, &b, &id, &sk), KN_OK);
	assert_int_equal(id, ids[3]); /* record 2 failed its checksum on the way */
	assert_int_equal(sk.batches, 1);
	assert_int_equal(sk.spans, b0->nspans);
	assert_int_equal(kn_flog_skipped(q, KN_FLOG_BAD_CHECKSUM), 1);
	assert_true(same_bytes(b, b0));
	kn_batch_free(b);
	kn_flog_done(q, id);
	assert_int_equal(kn_flog_pending(q), 0);
	kn_flog_close(q);

	/* a segment whose file header is wrong goes whole */
	q = qopen("c", &big, &info);
	put(q, b0, 1);
	kn_flog_close(q);
	seg_file("c", 0, seg, sizeof seg);
	flip(seg, 2);
	q = qopen("c", &big, &info);
	assert_int_equal(info.batches, 0);
	assert_int_equal(kn_flog_skipped(q, KN_FLOG_BAD_SEGMENT), 1);
	kn_flog_close(q);
	kn_batch_free(b0);
}

/* fsync: concurrent appends share fdatasyncs (group commit) and all land. */
struct appender {
	struct kn_flog *q;
	struct kn_batch *b;
	int n, ok;
};

static void *append_many(void *arg)
{
	struct appender *a = arg;
	for (int i = 0; i < a->n; i++) {
		uint64_t id;
		struct kn_err err;
		a->ok += kn_flog_append(a->q, a->b, i % 2, &id, &err) == KN_OK;
	}
	return NULL;
}

static void test_fsync_group_commit(void **state)
{
	(void)state;
	struct kn_squeue_info info;
	struct kn_flog_cfg cfg = {.fsync = 1, .compact_on_start = 0, .segment_size = 8192};
	struct kn_flog *q = qopen("g", &cfg, &info);
	struct kn_batch *b0 = kn_test_batch(13, 1, 1, 3, 100);
	struct appender a[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct appender){.q = q, .b = b0, .n = 25};
		assert_int_equal(pthread_create(&th[i], NULL, append_many, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].ok, 25);
	}
	assert_int_equal(kn_flog_pending(q), 100);
	assert_int_equal(kn_flog_unread(q), 4 * 13); /* i % 2 == 0 of 0..24 are not held */
	kn_flog_close(q);
	q = qopen("g", &cfg, &info);
	assert_int_equal(info.batches, 100);
	assert_int_equal(info.spans, 100 * b0->nspans);
	kn_flog_close(q);
	kn_batch_free(b0);
}

/* ---- the extension ---- */

static void *fs_make(const char *dir, uint64_t timeout_ms, struct kn_err *err, int start)
{
	char yaml[512];
	snprintf(yaml, sizeof yaml, "directory: %s\ntimeout: %llums\n", dir, (unsigned long long)timeout_ms);
	struct kn_cnode *root_node = NULL;
	assert_int_equal(kn_config_parse(yaml, strlen(yaml), "<test>", &root_node, err), KN_OK);
	struct kn_file_storage_cfg cfg;
	memset(&cfg, 0, sizeof cfg);
	int rc = kn_cfg_apply(kn_extension_file_storage.config_fields, root_node, &cfg, err);
	kn_cnode_free(root_node);
	void *inst = NULL;
	struct kn_component_ctx ctx = {.id = "file_storage"};
	if (rc == KN_OK)
		rc = kn_extension_file_storage.create(&ctx, &cfg, &inst, err);
	kn_cfg_free(kn_extension_file_storage.config_fields, &cfg);
	if (rc == KN_OK && start && kn_extension_file_storage.start(inst, err) != KN_OK) {
		kn_extension_file_storage.destroy(inst);
		return NULL;
	}
	return rc == KN_OK ? inst : NULL;
}

static void test_lock_and_directory_checks(void **state)
{
	(void)state;
	struct kn_err err;
	void *a = fs_make(root, 50, &err, 1);
	assert_non_null(a);
	void *b = fs_make(root, 50, &err, 1);
	assert_null(b);
	assert_non_null(strstr(err.msg, "extensions.file_storage.directory"));
	assert_non_null(strstr(err.msg, "in use by another process"));
	kn_extension_file_storage.destroy(a);
	b = fs_make(root, 50, &err, 1); /* released */
	assert_non_null(b);
	kn_extension_file_storage.destroy(b);

	char missing[128];
	snprintf(missing, sizeof missing, "%s/nope", root);
	assert_null(fs_make(missing, 50, &err, 0));
	assert_non_null(strstr(err.msg, "extensions.file_storage.directory"));

	/* keys that do not apply are errors naming them */
	const char *bad[] = {"compaction: {rebound_needed_threshold_mib: 10}",
			     "compaction: {max_transaction_size: 65536}", "compaction: {directory: /elsewhere}",
			     "recreate: true"};
	const char *key[] = {"compaction.rebound_needed_threshold_mib", "compaction.max_transaction_size",
			     "compaction.directory", "recreate"};
	for (int i = 0; i < 4; i++) {
		char yaml[256];
		snprintf(yaml, sizeof yaml, "directory: %s\n%s\n", root, bad[i]);
		struct kn_cnode *n = NULL;
		assert_int_equal(kn_config_parse(yaml, strlen(yaml), "<t>", &n, &err), KN_OK);
		struct kn_file_storage_cfg cfg;
		memset(&cfg, 0, sizeof cfg);
		assert_int_equal(kn_cfg_apply(kn_extension_file_storage.config_fields, n, &cfg, &err), KN_OK);
		assert_int_equal(kn_extension_file_storage.validate(&cfg, "extensions.file_storage", &err), KN_ERR);
		assert_non_null(strstr(err.msg, key[i]));
		kn_cfg_free(kn_extension_file_storage.config_fields, &cfg);
		kn_cnode_free(n);
	}
}

static void test_list_queues(void **state)
{
	(void)state;
	struct kn_err err;
	void *fs = fs_make(root, 50, &err, 1);
	assert_non_null(fs);
	const struct kn_storage_ops *ops = kn_extension_file_storage.storage;
	void *q1, *q2;
	struct kn_squeue_info info;
	assert_int_equal(ops->open(fs, "lb/10.0.0.1:4317", NULL, &q1, &info, &err), KN_OK);
	assert_int_equal(ops->open(fs, "lb/10.0.0.2:4317", NULL, &q2, &info, &err), KN_OK);
	void *q3;
	assert_int_equal(ops->open(fs, "lb/10.0.0.2:4317", NULL, &q3, &info, &err), KN_ERR);
	assert_null(q3);
	assert_non_null(strstr(err.msg, "already open"));
	struct kn_batch *b = kn_test_batch(3, 1, 1, 2, 0);
	uint64_t id;
	assert_int_equal(ops->append(q2, b, 1, &id, &err), KN_OK);
	ops->close(q1); /* empty: gone */
	ops->close(q2); /* one record: stays */
	char **names;
	size_t n;
	assert_int_equal(ops->list(fs, "lb/", &names, &n, &err), KN_OK);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "lb/10.0.0.2:4317");
	free(names[0]);
	free(names);
	char dir[64];
	kn_file_storage_queue_dir("otlp/a_b", dir, sizeof dir);
	assert_string_equal(dir, "q-otlp_2Fa_5Fb");
	kn_batch_free(b);
	kn_extension_file_storage.destroy(fs);
}

/* RLIMIT_FSIZE makes a write past the limit fail with EFBIG after writing
 * what fits, as a full disk does with ENOSPC. */
static void test_refused_write_rolled_back(void **state)
{
	(void)state;
	struct kn_squeue_info info;
	struct kn_flog_cfg big = small;
	big.segment_size = 1 << 20;
	struct kn_flog *q = qopen("f", &big, &info);
	struct kn_batch *b0 = kn_test_batch(11, 1, 1, 4, 400);
	uint64_t id;
	struct kn_err err;
	put(q, b0, 1);
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 16 + 32 + b0->bytes + 100; /* the second record only partly fits */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int rc = kn_flog_append(q, b0, 1, &id, &err);
	setrlimit(RLIMIT_FSIZE, &old);
	assert_int_equal(rc, KN_AGAIN);
	assert_non_null(strstr(err.msg, "write"));
	/* nothing half-written stays: the next append and a reopen see clean records */
	put(q, b0, 1);
	kn_flog_close(q);
	q = qopen("f", &big, &info);
	assert_int_equal(info.batches, 2);
	assert_int_equal(kn_flog_skipped(q, KN_FLOG_TORN), 0);
	assert_int_equal(kn_flog_skipped(q, KN_FLOG_BAD_HEADER), 0);
	kn_flog_close(q);
	kn_batch_free(b0);
}

/* ---- a sender over the storage ---- */

struct sink {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fail;           /* KN_AGAIN while set */
	int sent;
	uint64_t spans;
};

static int sink_send(void *ctx, const struct kn_batch *b, uint64_t deadline_ns, uint64_t *retry_after_ns,
		     struct kn_err *err)
{
	struct sink *k = ctx;
	(void)deadline_ns;
	(void)retry_after_ns;
	pthread_mutex_lock(&k->mu);
	int rc = k->fail ? kn_errf(err, "down") : KN_OK;
	if (k->fail)
		rc = KN_AGAIN;
	else {
		k->sent++;
		k->spans += b->nspans;
	}
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	return rc;
}

static void wait_sent(struct sink *k, int n)
{
	pthread_mutex_lock(&k->mu);
	uint64_t until = kn_now_ns() + 20 * KN_NS_PER_SEC;
	while (k->sent < n && kn_now_ns() < until) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&k->cv, &k->mu, &ts);
	}
	int got = k->sent;
	pthread_mutex_unlock(&k->mu);
	assert_int_equal(got, n);
}

static struct kn_sender *mk_sender(void *fs, struct sink *k, uint64_t queue_size, struct kn_metrics *m)
{
	struct kn_sender_cfg cfg = {
		.timeout_ns = 5 * KN_NS_PER_SEC,
		.queue = {.enabled = 1, .num_consumers = 2, .queue_size = queue_size, .storage = "file_storage"},
		.retry = {.enabled = 1, .initial_interval_ns = KN_NS_PER_MS, .max_interval_ns = 2 * KN_NS_PER_MS,
			  .max_elapsed_time_ns = 0, .multiplier = 2.0, .randomization_factor = 0.0},
	};
	struct kn_err err;
	struct kn_sender *s = kn_sender_create_with("otlp/pq", &cfg, sink_send, k, m,
						    kn_extension_file_storage.storage, fs, &err);
	if (!s)
		fail_msg("sender: %s", err.msg);
	if (kn_sender_start(s, &err) != KN_OK)
		fail_msg("start: %s", err.msg);
	return s;
}

static void test_sender_replays_after_restart(void **state)
{
	(void)state;
	struct kn_err err;
	void *fs = fs_make(root, 50, &err, 1);
	assert_non_null(fs);
	struct sink k = {.fail = 1};
	pthread_mutex_init(&k.mu, NULL);
	pthread_cond_init(&k.cv, NULL);
	struct kn_metrics *m = kn_metrics_create();
	struct kn_sender *s = mk_sender(fs, &k, 1000, m);
	uint64_t spans = 0;
	for (uint32_t i = 0; i < 40; i++) { /* past the in-memory window: most only on disk */
		struct kn_batch *b = kn_test_batch(i, 1, 1, 3, 100);
		spans += b->nspans;
		assert_int_equal(kn_sender_enqueue(s, b), KN_OK);
	}
	assert_true(kn_metric_value(kn_metrics_counter(m, "kansatsu_exporter_queue_spilled_batches_total", "",
							"exporter=\"otlp/pq\"")) > 0);
	kn_sender_shutdown(s, kn_now_ns() + 5 * KN_NS_PER_SEC); /* backend down: all stays on disk */
	kn_sender_destroy(s);
	kn_metrics_destroy(m);

	/* the next start sends them, before anything new */
	k.fail = 0;
	m = kn_metrics_create();
	s = mk_sender(fs, &k, 1000, m);
	assert_int_equal(kn_metric_value(kn_metrics_counter(m, "kansatsu_exporter_queue_replayed_batches_total", "",
							     "exporter=\"otlp/pq\"")), 40);
	wait_sent(&k, 40);
	assert_int_equal(k.spans, spans);
	kn_sender_shutdown(s, kn_now_ns() + 5 * KN_NS_PER_SEC);
	kn_sender_destroy(s);
	kn_metrics_destroy(m);
	/* everything was sent: the queue left nothing behind */
	char dir[PATH_MAX], sub[64];
	kn_file_storage_queue_dir("otlp/pq", sub, sizeof sub);
	snprintf(dir, sizeof dir, "%s/%s", root, sub);
	assert_int_not_equal(access(dir, F_OK), 0);
	kn_extension_file_storage.destroy(fs);
	pthread_mutex_destroy(&k.mu);
	pthread_cond_destroy(&k.cv);
}

static void test_sender_backpressure(void **state)
{
	(void)state;
	struct kn_err err;
	void *fs = fs_make(root, 50, &err, 1);
	assert_non_null(fs);
	struct sink k = {.fail = 1};
	pthread_mutex_init(&k.mu, NULL);
	pthread_cond_init(&k.cv, NULL);
	struct kn_metrics *m = kn_metrics_create();
	struct kn_sender *s = mk_sender(fs, &k, 5, m);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(kn_sender_enqueue(s, kn_test_batch(i, 1, 1, 2, 0)), KN_OK);
	assert_false(kn_bp_active());
	assert_int_equal(kn_sender_enqueue(s, kn_test_batch(9, 1, 1, 2, 0)), KN_OK);
	assert_true(kn_bp_active()); /* queue_size reached: receivers refuse */
	/* past the bound nothing is dropped */
	assert_int_equal(kn_sender_enqueue(s, kn_test_batch(10, 1, 1, 2, 0)), KN_OK);
	pthread_mutex_lock(&k.mu);
	k.fail = 0;
	pthread_mutex_unlock(&k.mu);
	wait_sent(&k, 6);
	uint64_t until = kn_now_ns() + 5 * KN_NS_PER_SEC;
	while (kn_bp_active() && kn_now_ns() < until)
		usleep(1000);
	assert_false(kn_bp_active());

	/* a refused append: the batch stays in memory and is sent; receivers
	 * refuse for a while */
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 64;
	pthread_mutex_lock(&k.mu);
	k.fail = 1;
	pthread_mutex_unlock(&k.mu);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	/* a segment larger than 64 bytes is refused */
	int rc = kn_sender_enqueue(s, kn_test_batch(20, 1, 1, 3, 200));
	setrlimit(RLIMIT_FSIZE, &old);
	assert_int_equal(rc, KN_OK);
	assert_true(kn_bp_active());
	assert_int_equal(kn_metric_value(kn_metrics_counter(m, "kansatsu_exporter_queue_append_failures_total", "",
							     "exporter=\"otlp/pq\",reason=\"file_too_large\"")), 1);
	pthread_mutex_lock(&k.mu);
	k.fail = 0;
	pthread_mutex_unlock(&k.mu);
	wait_sent(&k, 7);
	assert_int_equal(kn_metric_value(kn_metrics_counter(m, "kansatsu_exporter_dropped_spans_total", "",
							     "exporter=\"otlp/pq\",reason=\"queue_full\"")), 0);
	kn_sender_shutdown(s, kn_now_ns() + 5 * KN_NS_PER_SEC);
	kn_sender_destroy(s);
	kn_metrics_destroy(m);
	kn_extension_file_storage.destroy(fs);
	pthread_mutex_destroy(&k.mu);
	pthread_cond_destroy(&k.cv);
}

static void test_sender_storage_config_errors(void **state)
{
	(void)state;
	struct kn_err err;
	struct kn_sender_cfg cfg = {
		.queue = {.enabled = 1, .num_consumers = 1, .queue_size = 10, .max_bytes = 100},
		.retry = {.enabled = 0},
	};
	assert_null(kn_sender_create("x", &cfg, sink_send, NULL, NULL, &err));
	assert_non_null(strstr(err.msg, "exporters.x.sending_queue.max_bytes"));
	cfg.queue.max_bytes = 0;
	cfg.queue.storage = "file_storage";
	assert_null(kn_sender_create("x", &cfg, sink_send, NULL, NULL, &err));
	assert_non_null(strstr(err.msg, "exporters.x.sending_queue.storage"));
	cfg.queue.enabled = 0;
	assert_null(kn_sender_create_with("x", &cfg, sink_send, NULL, NULL, kn_extension_file_storage.storage,
					  (void *)1, &err));
	assert_non_null(strstr(err.msg, "needs enabled: true"));
	struct kn_component_ctx ctx = {.id = "otlp"};
	cfg.queue.enabled = 1;
	assert_null(kn_sender_create_ctx(&ctx, &cfg, sink_send, NULL, &err));
	assert_non_null(strstr(err.msg, "exporters.otlp.sending_queue.storage"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_replay_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_not_handed_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segments_deleted_and_compacted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_records_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsync_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_and_directory_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_queues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_write_rolled_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sender_replays_after_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sender_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sender_storage_config_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
