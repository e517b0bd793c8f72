/* SPDX-License-Identifier: Apache-2.0
 * kn_flog: the on-disk log of one persistent sending queue (format, scan,
 * durability and threads are described in kn_flog.h).
 *
 * Index: segments in an array ordered by name (first sequence number), each
 * with an array of its records (sequence, offset, length, span count, state
 * UNREAD / OUT / DONE). `rd` and each segment's `cursor` skip what next()
 * has already handed out, so next() is O(1) amortised; done() finds a
 * record by two binary searches. Invariants (under mu): a segment with a
 * record OUT or UNREAD stays (pending > 0); only the active segment is
 * written; sequence numbers increase through the segments. */
#include "kn_flog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "../../collector/core/kn_budget.h"
#include "../../collector/core/kn_chunk.h"
#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_log.h"
#include "../../collector/core/kn_metrics.h"
#include "../../collector/wire/kn_wire.h"

#define SEG_MAGIC "KNPQSEG"  /* 8 bytes with its NUL */
#define SEG_VERSION 1u
#define SEG_HDR 16u
#define REC_MAGIC 0x5251504bu /* "KPQR" */
#define REC_HDR 32u
#define DONE_ENT 12u
#define CTX_MAX (KN_TRACEPARENT_LEN + 1 + KN_TRACESTATE_MAX)
#define REC_MAX ((uint64_t)UINT32_MAX - REC_HDR)

const char *const kn_flog_skip_reasons[KN_FLOG_NSKIP] = {"torn", "bad_header", "bad_checksum",
							"bad_segment"};

enum { FAIL_NOSPACE, FAIL_QUOTA, FAIL_FBIG, FAIL_IO, FAIL_N };
static const char *const fail_reasons[FAIL_N] = {"no_space", "quota", "file_too_large", "io_error"};

enum { R_UNREAD, R_OUT, R_DONE };

struct rec {
	uint64_t seq;
	uint64_t off;       /* of the record header in the segment */
	uint32_t len;       /* payload bytes */
	uint32_t nspans;
	uint16_t ctxlen;
	uint8_t state;
};

struct seg {
	uint64_t first;     /* from the file name */
	int fd;             /* read (and, active, write) */
	int done_fd;        /* -1 until the first done mark */
	uint64_t size;      /* file bytes */
	uint64_t done_bytes;
	struct rec *recs;
	uint32_t n, cap;
	uint32_t pending;   /* records not DONE */
	uint32_t cursor;    /* records before it are not UNREAD */
};

struct kn_flog {
	char *dir;
	struct kn_flog_cfg cfg;
	pthread_mutex_t mu;
	struct seg **segs;
	uint32_t nsegs, cap;
	struct seg *active;           /* the last segment while it takes appends */
	uint64_t next_seq;
	uint32_t rd;                  /* segments before it hold nothing unread */
	_Atomic uint64_t unread, pending, disk;
	_Atomic uint64_t skipped[KN_FLOG_NSKIP];

	/* group commit (fsync): tickets under mu, synced under smu */
	pthread_mutex_t smu;
	pthread_cond_t scv;
	uint64_t tickets, synced;
	int syncing;

	struct kn_metrics *own_metrics;
	struct kn_metric *m_skip[KN_FLOG_NSKIP], *m_fail[FAIL_N], *m_disk_bytes, *m_disk_batches;
	int64_t pub_bytes, pub_batches; /* what this queue added to the gauges (under mu) */
	uint64_t last_warn_ns;
};

/* ---- small helpers ---- */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t crc(uint32_t c, const void *p, size_t n)
{
	return (uint32_t)crc32_z(c, p, n);
}

static void seg_path(const struct kn_flog *q, uint64_t first, const char *ext, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%016" PRIx64 ".%s", q->dir, first, ext);
}

/* Publishes gauge values from the index (under mu). */
static void publish(struct kn_flog *q)
{
	int64_t b = (int64_t)atomic_load(&q->disk), n = (int64_t)atomic_load(&q->pending);
	kn_gauge_add(q->m_disk_bytes, b - q->pub_bytes);
	kn_gauge_add(q->m_disk_batches, n - q->pub_batches);
	q->pub_bytes = b;
	q->pub_batches = n;
}

static void skip(struct kn_flog *q, int reason)
{
	atomic_fetch_add(&q->skipped[reason], 1);
	kn_counter_add(q->m_skip[reason], 1);
}

uint64_t kn_flog_skipped(struct kn_flog *q, int reason)
{
	return atomic_load(&q->skipped[reason]);
}

/* A valid record header at h (not checking its place in the file). */
static int hdr_ok(const uint8_t *h)
{
	return get32(h) == REC_MAGIC && get32(h + 28) == crc(0, h, 28) && get32(h + 20) >> 16 == 0 &&
	       (get32(h + 20) & 0xffff) <= get32(h + 4) && (get32(h + 20) & 0xffff) <= CTX_MAX &&
	       get32(h + 16) <= get32(h + 4); /* a span takes more than one byte */
}

static ssize_t pread_full(int fd, void *buf, size_t n, off_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -1 : (ssize_t)got;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* ---- segments ---- */

static void seg_free(struct seg *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	if (s->done_fd >= 0)
		close(s->done_fd);
	free(s->recs);
	free(s);
}

static int seg_reserve(struct seg *s, uint32_t more)
{
	if (s->n + more <= s->cap)
		return 0;
	uint32_t cap = s->cap ? s->cap : 64;
	while (cap < s->n + more)
		cap *= 2;
	struct rec *r = realloc(s->recs, (size_t)cap * sizeof *r);
	if (!r)
		return -1;
	s->recs = r;
	s->cap = cap;
	return 0;
}

/* Removes segment i's files and entry (under mu). */
static void seg_delete(struct kn_flog *q, uint32_t i)
{
	struct seg *s = q->segs[i];
	char p[PATH_MAX];
	seg_path(q, s->first, "log", p, sizeof p);
	unlink(p);
	seg_path(q, s->first, "done", p, sizeof p);
	unlink(p);
	atomic_fetch_sub(&q->disk, s->size + s->done_bytes);
	if (q->active == s)
		q->active = NULL;
	seg_free(s);
	memmove(&q->segs[i], &q->segs[i + 1], (q->nsegs - i - 1) * sizeof q->segs[0]);
	q->nsegs--;
	if (q->rd > i)
		q->rd--;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The done set of a segment, sorted; entries with a bad check are ignored. */
static uint64_t *load_done(struct kn_flog *q, uint64_t first, size_t *n, uint64_t *bytes)
{
	char p[PATH_MAX];
	seg_path(q, first, "done", p, sizeof p);
	*n = 0;
	*bytes = 0;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	uint64_t *v = NULL;
	if (fstat(fd, &st) == 0 && st.st_size >= (off_t)DONE_ENT) {
		size_t cnt = (size_t)st.st_size / DONE_ENT;
		uint8_t *buf = malloc(cnt * DONE_ENT);
		v = malloc(cnt * sizeof *v);
		if (buf && v && pread_full(fd, buf, cnt * DONE_ENT, 0) == (ssize_t)(cnt * DONE_ENT)) {
			for (size_t i = 0; i < cnt; i++) {
				const uint8_t *e = buf + i * DONE_ENT;
				if (get32(e + 8) == crc(0, e, 8))
					v[(*n)++] = get64(e);
			}
			qsort(v, *n, sizeof *v, cmp_u64);
		}
		free(buf);
	}
	if (fstat(fd, &st) == 0)
		*bytes = (uint64_t)st.st_size;
	close(fd);
	return v;
}

static int in_sorted(const uint64_t *v, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo] == x;
}

/* The offset of the next valid header after a damaged one, or `size`. */
static uint64_t resync(int fd, uint64_t from, uint64_t size, uint64_t prev_seq)
{
	uint8_t buf[65536 + 3], h[REC_HDR];
	while (from + REC_HDR <= size) {
		size_t want = size - from < sizeof buf ? (size_t)(size - from) : sizeof buf;
		ssize_t got = pread_full(fd, buf, want, (off_t)from);
		if (got < 4)
			break;
		for (size_t i = 0; i + 4 <= (size_t)got; i++) {
			if (buf[i] != 0x4b || buf[i + 1] != 0x50 || buf[i + 2] != 0x51 || buf[i + 3] != 0x52)
				continue;
			uint64_t at = from + i;
			if (at + REC_HDR > size)
				return size;
			if (pread_full(fd, h, REC_HDR, (off_t)at) == REC_HDR && hdr_ok(h) && get64(h + 8) > prev_seq)
				return at;
		}
		if ((size_t)got < 4 || from + (uint64_t)got >= size)
			break;
		from += (uint64_t)got - 3; /* a magic may straddle the window's end */
	}
	return size;
}

/* Reads a segment's index. NULL when its file header is bad (the files are
 * then removed and counted) or on OOM / I/O error (err set, files kept). */
static struct seg *seg_scan(struct kn_flog *q, uint64_t first, int *bad, struct kn_err *err)
{
	char p[PATH_MAX];
	seg_path(q, first, "log", p, sizeof p);
	*bad = 0;
	struct seg *s = calloc(1, sizeof *s);
	if (!s) {
		kn_errf(err, "%s: out of memory", p);
		return NULL;
	}
	s->first = first;
	s->done_fd = -1;
	s->fd = open(p, O_RDWR | O_CLOEXEC); /* read-write: a torn tail is cut off */
	struct stat st;
	if (s->fd < 0 || fstat(s->fd, &st) != 0) {
		kn_errf(err, "%s: %s", p, strerror(errno));
		seg_free(s);
		return NULL;
	}
	s->size = (uint64_t)st.st_size;
	uint8_t h[REC_HDR];
	if (s->size < SEG_HDR || pread_full(s->fd, h, SEG_HDR, 0) != SEG_HDR ||
	    memcmp(h, SEG_MAGIC, 8) != 0 || get32(h + 8) != SEG_VERSION) {
		kn_warn("%s: not a queue segment (bad file header); removed", p);
		skip(q, KN_FLOG_BAD_SEGMENT);
		seg_free(s);
		unlink(p);
		seg_path(q, first, "done", p, sizeof p);
		unlink(p);
		*bad = 1;
		return NULL;
	}
	size_t ndone;
	uint64_t *done = load_done(q, first, &ndone, &s->done_bytes);
	uint64_t off = SEG_HDR, prev = 0;
	int torn = 0;
	while (off < s->size) {
		if (off + REC_HDR > s->size) {
			torn = 1; /* a header cut short */
			break;
		}
		if (pread_full(s->fd, h, REC_HDR, (off_t)off) != REC_HDR) {
			kn_errf(err, "%s: read error at byte %" PRIu64, p, off);
			free(done);
			seg_free(s);
			return NULL;
		}
		if (!hdr_ok(h) || get64(h + 8) <= prev) {
			skip(q, KN_FLOG_BAD_HEADER);
			off = resync(s->fd, off + 1, s->size, prev);
			continue;
		}
		uint32_t len = get32(h + 4);
		if (off + REC_HDR + len > s->size) {
			torn = 1; /* a payload cut short */
			break;
		}
		if (seg_reserve(s, 1) != 0) {
			kn_errf(err, "%s: out of memory", p);
			free(done);
			seg_free(s);
			return NULL;
		}
		struct rec *r = &s->recs[s->n++];
		r->seq = prev = get64(h + 8);
		r->off = off;
		r->len = len;
		r->nspans = get32(h + 16);
		r->ctxlen = (uint16_t)(get32(h + 20) & 0xffff);
		r->state = in_sorted(done, ndone, r->seq) ? R_DONE : R_UNREAD;
		if (r->state != R_DONE)
			s->pending++;
		off += REC_HDR + len;
	}
	free(done);
	if (torn) {
		/* Counted once: the garbage goes (nothing appends to an old segment). */
		skip(q, KN_FLOG_TORN);
		kn_warn("%s: a record cut short at byte %" PRIu64 " (a crash or a full disk during a write); "
			"skipped", p, off);
		if (ftruncate(s->fd, (off_t)off) == 0)
			s->size = off;
	}
	return s;
}

/* Copies the pending records of s into a fresh file that replaces it
 * (compaction.on_start). 0 done (s rescanned into *out), -1 kept as is. */
static int seg_compact(struct kn_flog *q, struct seg *s, struct seg **out)
{
	char tmp[PATH_MAX], p[PATH_MAX];
	seg_path(q, s->first, "log.tmp", tmp, sizeof tmp);
	seg_path(q, s->first, "log", p, sizeof p);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	uint8_t head[SEG_HDR] = {0};
	memcpy(head, SEG_MAGIC, 8);
	put32(head + 8, SEG_VERSION);
	size_t cap = 1 << 20;
	uint8_t *buf = malloc(cap);
	int ok = buf && write(fd, head, SEG_HDR) == SEG_HDR;
	for (uint32_t i = 0; ok && i < s->n; i++) {
		const struct rec *r = &s->recs[i];
		if (r->state == R_DONE)
			continue;
		uint64_t left = REC_HDR + (uint64_t)r->len, at = r->off;
		while (ok && left > 0) {
			size_t n = left < cap ? (size_t)left : cap;
			ok = pread_full(s->fd, buf, n, (off_t)at) == (ssize_t)n && write(fd, buf, n) == (ssize_t)n;
			left -= n;
			at += n;
		}
	}
	free(buf);
	if (ok && q->cfg.fsync)
		ok = fdatasync(fd) == 0;
	if (close(fd) != 0)
		ok = 0;
	if (!ok || rename(tmp, p) != 0) {
		unlink(tmp);
		return -1;
	}
	seg_path(q, s->first, "done", p, sizeof p);
	unlink(p); /* its entries name records the new file no longer has */
	int bad;
	struct kn_err err;
	*out = seg_scan(q, s->first, &bad, &err);
	return *out ? 0 : -1;
}

/* Starts a new active segment (under mu). KN_OK, KN_AGAIN (no room), KN_ERR. */
static int fail_reason(int e)
{
	return e == ENOSPC ? FAIL_NOSPACE : e == EDQUOT ? FAIL_QUOTA : e == EFBIG ? FAIL_FBIG : FAIL_IO;
}

static int rotate(struct kn_flog *q, int *reason, struct kn_err *err)
{
	struct seg *old = q->active;
	if (old && q->cfg.fsync)
		fdatasync(old->fd); /* its waiting appends count on it */
	q->active = NULL;
	if (old && old->pending == 0)
		seg_delete(q, q->nsegs - 1); /* the active one is always last */
	if (q->nsegs == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 8;
		struct seg **ns = realloc(q->segs, cap * sizeof *ns);
		if (!ns) {
			*reason = FAIL_IO;
			return kn_errf(err, "%s: out of memory", q->dir);
		}
		q->segs = ns;
		q->cap = cap;
	}
	char p[PATH_MAX];
	seg_path(q, q->next_seq, "log", p, sizeof p);
	struct seg *s = calloc(1, sizeof *s);
	if (!s) {
		*reason = FAIL_IO;
		return kn_errf(err, "%s: out of memory", q->dir);
	}
	s->first = q->next_seq;
	s->done_fd = -1;
	s->fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	uint8_t head[SEG_HDR] = {0};
	memcpy(head, SEG_MAGIC, 8);
	put32(head + 8, SEG_VERSION);
	ssize_t w = s->fd >= 0 ? write(s->fd, head, SEG_HDR) : -1;
	if (w != SEG_HDR) {
		int e = w < 0 ? errno : ENOSPC;
		*reason = fail_reason(e);
		kn_errf(err, "%s: cannot start a segment: %s", p, strerror(e));
		if (s->fd >= 0)
			unlink(p);
		seg_free(s);
		return *reason == FAIL_IO ? KN_ERR : KN_AGAIN;
	}
	if (q->cfg.fsync) {
		int dfd = open(q->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	s->size = SEG_HDR;
	atomic_fetch_add(&q->disk, SEG_HDR);
	q->segs[q->nsegs++] = s;
	q->active = s;
	return KN_OK;
}

/* ---- open / close ---- */

static void register_metrics(struct kn_flog *q, struct kn_metrics *m, const char *label)
{
	char esc[256], lb[320], l2[400];
	kn_metrics_label_escape(label, esc, sizeof esc);
	snprintf(lb, sizeof lb, "exporter=\"%s\"", esc);
	for (int r = 0; r < KN_FLOG_NSKIP; r++) {
		snprintf(l2, sizeof l2, "%s,reason=\"%s\"", lb, kn_flog_skip_reasons[r]);
		q->m_skip[r] = kn_metrics_counter(m, "kansatsu_exporter_queue_skipped_records_total",
						  "Persistent queue records found damaged (torn by a crash or "
						  "a full disk, bad checksum) and skipped, by reason.", l2);
	}
	for (int r = 0; r < FAIL_N; r++) {
		snprintf(l2, sizeof l2, "%s,reason=\"%s\"", lb, fail_reasons[r]);
		q->m_fail[r] = kn_metrics_counter(m, "kansatsu_exporter_queue_append_failures_total",
						  "Batches the persistent queue could not write to disk, by "
						  "reason (kept in memory; receivers refuse for a while).", l2);
	}
	q->m_disk_bytes = kn_metrics_gauge(m, "kansatsu_exporter_queue_disk_bytes",
					   "Bytes of the persistent queue's files on disk.", lb);
	q->m_disk_batches = kn_metrics_gauge(m, "kansatsu_exporter_queue_disk_batches",
					     "Batches on disk not yet sent (queued, in flight or retrying).", lb);
}

static int cmp_seg(const void *a, const void *b)
{
	const struct seg *x = *(struct seg *const *)a, *y = *(struct seg *const *)b;
	return x->first < y->first ? -1 : x->first > y->first;
}

/* "<16 hex>.<ext>" -> first; 0 when the name is something else. */
static int parse_name(const char *name, const char *ext, uint64_t *first)
{
	size_t el = strlen(ext);
	if (strlen(name) != 17 + el || name[16] != '.' || strcmp(name + 17, ext) != 0)
		return 0;
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char c = name[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return 0;
		v = v << 4 | (uint64_t)d;
	}
	*first = v;
	return 1;
}

static void flog_free(struct kn_flog *q)
{
	if (!q)
		return;
	for (uint32_t i = 0; i < q->nsegs; i++)
		seg_free(q->segs[i]);
	free(q->segs);
	if (q->m_disk_bytes) {
		kn_gauge_add(q->m_disk_bytes, -q->pub_bytes);
		kn_gauge_add(q->m_disk_batches, -q->pub_batches);
	}
	kn_metrics_destroy(q->own_metrics);
	pthread_mutex_destroy(&q->mu);
	pthread_mutex_destroy(&q->smu);
	pthread_cond_destroy(&q->scv);
	free(q->dir);
	free(q);
}

struct kn_flog *kn_flog_open(const char *dir, const char *label, const struct kn_flog_cfg *cfg,
			     struct kn_metrics *m, struct kn_squeue_info *info, struct kn_err *err)
{
	struct kn_flog *q = calloc(1, sizeof *q);
	memset(info, 0, sizeof *info);
	if (!q || !(q->dir = strdup(dir))) {
		free(q);
		kn_errf(err, "%s: out of memory", dir);
		return NULL;
	}
	q->cfg = *cfg;
	if (q->cfg.segment_size < 4096)
		q->cfg.segment_size = 4096;
	q->next_seq = 1;
	pthread_mutex_init(&q->mu, NULL);
	pthread_mutex_init(&q->smu, NULL);
	pthread_cond_init(&q->scv, NULL);
	if (!m)
		m = q->own_metrics = kn_metrics_create();
	if (!m) {
		kn_errf(err, "%s: out of memory", dir);
		goto fail;
	}
	register_metrics(q, m, label);
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		kn_errf(err, "%s: cannot create the queue directory: %s", dir, strerror(errno));
		goto fail;
	}
	DIR *d = opendir(dir);
	if (!d) {
		kn_errf(err, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	uint64_t *firsts = NULL, *dones = NULL;
	size_t nf = 0, nd = 0, capf = 0, capd = 0;
	struct dirent *de;
	int oom = 0;
	while ((de = readdir(d)) != NULL) {
		uint64_t first;
		size_t nl = strlen(de->d_name);
		if (nl > 4 && strcmp(de->d_name + nl - 4, ".tmp") == 0) {
			char p[PATH_MAX];
			snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
			unlink(p); /* an interrupted compaction */
		} else if (parse_name(de->d_name, "log", &first)) {
			if (nf == capf) {
				capf = capf ? capf * 2 : 16;
				uint64_t *v = realloc(firsts, capf * sizeof *v);
				if (!v) {
					oom = 1;
					break;
				}
				firsts = v;
			}
			firsts[nf++] = first;
		} else if (parse_name(de->d_name, "done", &first)) {
			if (nd == capd) {
				capd = capd ? capd * 2 : 16;
				uint64_t *v = realloc(dones, capd * sizeof *v);
				if (!v) {
					oom = 1;
					break;
				}
				dones = v;
			}
			dones[nd++] = first;
		}
	}
	closedir(d);
	if (!oom && nf && !(q->segs = calloc(nf, sizeof *q->segs)))
		oom = 1;
	q->cap = (uint32_t)nf;
	if (oom) {
		free(firsts);
		free(dones);
		kn_errf(err, "%s: out of memory", dir);
		goto fail;
	}
	if (nf)
		qsort(firsts, nf, sizeof *firsts, cmp_u64);
	for (size_t i = 0; i < nd; i++) /* done files of vanished segments */
		if (!in_sorted(firsts, nf, dones[i])) {
			char p[PATH_MAX];
			seg_path(q, dones[i], "done", p, sizeof p);
			unlink(p);
		}
	free(dones);
	for (size_t i = 0; i < nf; i++) {
		int bad;
		struct seg *s = seg_scan(q, firsts[i], &bad, err);
		if (!s && !bad) {
			free(firsts);
			goto fail;
		}
		if (!s)
			continue;
		uint64_t live = SEG_HDR;
		for (uint32_t k = 0; k < s->n; k++)
			if (s->recs[k].state != R_DONE)
				live += REC_HDR + s->recs[k].len;
		struct seg *c;
		if (s->pending && q->cfg.compact_on_start && live < s->size && seg_compact(q, s, &c) == 0) {
			seg_free(s);
			s = c;
		}
		q->segs[q->nsegs++] = s;
		atomic_fetch_add(&q->disk, s->size + s->done_bytes);
		if (s->n && s->recs[s->n - 1].seq >= q->next_seq)
			q->next_seq = s->recs[s->n - 1].seq + 1;
		if (s->first >= q->next_seq)
			q->next_seq = s->first + 1;
	}
	free(firsts);
	if (q->nsegs)
		qsort(q->segs, q->nsegs, sizeof *q->segs, cmp_seg);
	for (uint32_t i = q->nsegs; i-- > 0;)
		if (q->segs[i]->pending == 0)
			seg_delete(q, i);
	for (uint32_t i = 0; i < q->nsegs; i++)
		for (uint32_t k = 0; k < q->segs[i]->n; k++) {
			const struct rec *r = &q->segs[i]->recs[k];
			if (r->state == R_DONE)
				continue;
			info->batches++;
			info->spans += r->nspans;
			info->bytes += r->len - r->ctxlen;
		}
	atomic_store(&q->unread, info->batches);
	atomic_store(&q->pending, info->batches);
	publish(q);
	return q;
fail:
	flog_free(q);
	return NULL;
}

void kn_flog_close(struct kn_flog *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	for (uint32_t i = q->nsegs; i-- > 0;)
		if (q->segs[i]->pending == 0)
			seg_delete(q, i);
	int empty = q->nsegs == 0;
	publish(q);
	pthread_mutex_unlock(&q->mu);
	if (empty)
		rmdir(q->dir); /* fails harmlessly if anything else is in it */
	flog_free(q);
}

/* ---- append ---- */

static size_t ctx_bytes(const struct kn_batch *b, char *out)
{
	const struct kn_tracectx *tc = kn_batch_ctx(b);
	if (!tc)
		return 0;
	size_t n = strlen(tc->traceparent);
	memcpy(out, tc->traceparent, n);
	if (tc->tracestate[0]) {
		size_t m = strlen(tc->tracestate);
		out[n++] = '\n';
		memcpy(out + n, tc->tracestate, m);
		n += m;
	}
	return n;
}

/* Waits until the append with this ticket is on stable storage. */
static void group_commit(struct kn_flog *q, uint64_t ticket)
{
	pthread_mutex_lock(&q->smu);
	while (q->synced < ticket) {
		if (q->syncing) {
			pthread_cond_wait(&q->scv, &q->smu);
			continue;
		}
		q->syncing = 1;
		pthread_mutex_unlock(&q->smu);
		pthread_mutex_lock(&q->mu);
		uint64_t target = q->tickets;
		int fd = q->active ? q->active->fd : -1; /* older segments were synced when rotated */
		pthread_mutex_unlock(&q->mu);
		if (fd >= 0 && fdatasync(fd) != 0) {
			uint64_t now = kn_now_ns();
			if (now - q->last_warn_ns > KN_NS_PER_SEC) {
				q->last_warn_ns = now;
				kn_warn("%s: fdatasync: %s", q->dir, strerror(errno));
			}
		}
		pthread_mutex_lock(&q->smu);
		q->synced = target;
		q->syncing = 0;
		pthread_cond_broadcast(&q->scv);
	}
	pthread_mutex_unlock(&q->smu);
}

static int fail(struct kn_flog *q, int reason, struct kn_err *err)
{
	kn_counter_add(q->m_fail[reason], 1);
	(void)err;
	return reason == FAIL_IO ? KN_ERR : KN_AGAIN;
}

int kn_flog_append(struct kn_flog *q, const struct kn_batch *b, int held, uint64_t *id,
		   struct kn_err *err)
{
	char ctx[CTX_MAX];
	size_t ctxlen = ctx_bytes(b, ctx);
	uint64_t len = ctxlen + (uint64_t)b->bytes;
	if (len > REC_MAX) {
		kn_errf(err, "%s: a batch of %zu bytes is too large for one record", q->dir, b->bytes);
		return fail(q, FAIL_IO, err);
	}
	uint32_t pcrc = crc(0, ctx, ctxlen);
	for (uint32_t i = 0; i < b->n; i++)
		pcrc = crc(pcrc, b->chunks[i]->data, b->chunks[i]->len);
	uint8_t h[REC_HDR];
	struct iovec st[64], *iov = b->n + 2 <= 64 ? st : malloc((b->n + 2) * sizeof *iov);
	if (!iov) {
		kn_errf(err, "%s: out of memory", q->dir);
		return fail(q, FAIL_IO, err);
	}
	int niov = 0;
	iov[niov++] = (struct iovec){h, REC_HDR};
	if (ctxlen)
		iov[niov++] = (struct iovec){ctx, ctxlen};
	for (uint32_t i = 0; i < b->n; i++)
		if (b->chunks[i]->len)
			iov[niov++] = (struct iovec){b->chunks[i]->data, b->chunks[i]->len};

	int rc = KN_OK, reason = FAIL_IO;
	pthread_mutex_lock(&q->mu);
	if ((!q->active || q->active->size >= q->cfg.segment_size) && (rc = rotate(q, &reason, err)) != KN_OK)
		goto out;
	struct seg *s = q->active;
	if (seg_reserve(s, 1) != 0) {
		rc = kn_errf(err, "%s: out of memory", q->dir);
		reason = FAIL_IO;
		goto out;
	}
	uint64_t seq = q->next_seq;
	put32(h, REC_MAGIC);
	put32(h + 4, (uint32_t)len);
	put64(h + 8, seq);
	put32(h + 16, b->nspans);
	put32(h + 20, (uint32_t)ctxlen);
	put32(h + 24, pcrc);
	put32(h + 28, crc(0, h, 28));
	uint64_t total = REC_HDR + len, done = 0;
	int at = 0;
	while (done < total) {
		int cnt = niov - at < IOV_MAX ? niov - at : IOV_MAX;
		ssize_t w = pwritev(s->fd, iov + at, cnt, (off_t)(s->size + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : ENOSPC;
			reason = fail_reason(e);
			rc = reason == FAIL_IO ? KN_ERR : KN_AGAIN;
			kn_errf(err, "%s: write: %s", q->dir, strerror(e));
			/* take the partial record back; if even that fails, leave the
			 * segment: the next open sees a torn record and skips it */
			if (ftruncate(s->fd, (off_t)s->size) != 0) {
				struct stat sb;
				if (fstat(s->fd, &sb) == 0 && (uint64_t)sb.st_size > s->size) {
					atomic_fetch_add(&q->disk, (uint64_t)sb.st_size - s->size);
					s->size = (uint64_t)sb.st_size;
				}
				q->active = NULL;
				if (s->pending == 0)
					seg_delete(q, q->nsegs - 1);
			}
			goto out;
		}
		done += (uint64_t)w;
		size_t adv = (size_t)w;
		while (adv > 0 && at < niov) { /* advance the iovec past what was written */
			if (adv >= iov[at].iov_len) {
				adv -= iov[at].iov_len;
				at++;
			} else {
				iov[at].iov_base = (uint8_t *)iov[at].iov_base + adv;
				iov[at].iov_len -= adv;
				adv = 0;
			}
		}
	}
	struct rec *r = &s->recs[s->n++];
	r->seq = seq;
	r->off = s->size;
	r->len = (uint32_t)len;
	r->nspans = b->nspans;
	r->ctxlen = (uint16_t)ctxlen;
	r->state = held ? R_OUT : R_UNREAD;
	s->pending++;
	s->size += total;
	q->next_seq++;
	atomic_fetch_add(&q->disk, total);
	atomic_fetch_add(&q->pending, 1);
	if (!held)
		atomic_fetch_add(&q->unread, 1);
	publish(q);
	uint64_t ticket = ++q->tickets;
	*id = seq;
	pthread_mutex_unlock(&q->mu);
	if (iov != st)
		free(iov);
	if (q->cfg.fsync)
		group_commit(q, ticket);
	return KN_OK;
out:
	pthread_mutex_unlock(&q->mu);
	if (iov != st)
		free(iov);
	(void)rc;
	return fail(q, reason, err);
}

/* ---- read back ---- */

uint64_t kn_flog_unread(struct kn_flog *q)
{
	return atomic_load(&q->unread);
}

uint64_t kn_flog_pending(struct kn_flog *q)
{
	return atomic_load(&q->pending);
}

uint64_t kn_flog_disk_bytes(struct kn_flog *q)
{
	return atomic_load(&q->disk);
}

/* Builds the chunk of a record read from disk: span headers from the wire
 * index (the bytes are a request kansatsu itself accepted), trace context
 * from the payload's prefix. NULL when the bytes do not check out. */
static struct kn_chunk *decode(const struct rec *r, int fd)
{
	uint32_t dlen = r->len - r->ctxlen;
	struct kn_chunk *c = kn_chunk_alloc(r->nspans, dlen);
	if (!c)
		return NULL;
	uint8_t h[REC_HDR];
	char ctx[CTX_MAX + 1];
	struct iovec iov[3] = {{h, REC_HDR}, {ctx, r->ctxlen}, {c->data, dlen}};
	size_t want = REC_HDR + (size_t)r->len, got = 0;
	int at = 0;
	while (got < want) {
		ssize_t n = preadv(fd, iov + at, 3 - at, (off_t)(r->off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto bad;
		got += (size_t)n;
		size_t adv = (size_t)n;
		while (adv > 0 && at < 3) {
			if (adv >= iov[at].iov_len) {
				adv -= iov[at].iov_len;
				at++;
			} else {
				iov[at].iov_base = (uint8_t *)iov[at].iov_base + adv;
				iov[at].iov_len -= adv;
				adv = 0;
			}
		}
	}
	if (!hdr_ok(h) || get64(h + 8) != r->seq ||
	    get32(h + 24) != crc(crc(0, ctx, r->ctxlen), c->data, dlen))
		goto bad;
	c->len = dlen;
	if (r->ctxlen) {
		ctx[r->ctxlen] = '\0';
		char *nl = memchr(ctx, '\n', r->ctxlen);
		size_t tpl = nl ? (size_t)(nl - ctx) : r->ctxlen;
		kn_tracectx_set(&c->ctx, ctx, tpl, nl ? nl + 1 : NULL, nl ? r->ctxlen - tpl - 1 : 0);
	}
	struct kn_wire_index ix;
	struct kn_err err;
	kn_wire_index_init(&ix);
	int ok = kn_wire_index_trusted(&ix, c->data, c->len, &err) == KN_OK && ix.nspans == r->nspans &&
		 ix.rejected == 0;
	if (ok && r->nspans)
		memcpy(c->spans, ix.spans, (size_t)r->nspans * sizeof *c->spans);
	kn_wire_index_free(&ix);
	if (!ok)
		goto bad;
	c->accepted_ns = kn_now_ns();
	size_t charge = sizeof *c + (size_t)c->nspans * sizeof(struct kn_span_hdr) + c->cap;
	if (kn_budget_try_charge(charge)) /* best effort, as the exporter's own copies */
		c->charged = charge;
	return c;
bad:
	kn_chunk_unref(c);
	return NULL;
}

int kn_flog_next(struct kn_flog *q, struct kn_batch **out, uint64_t *id,
		 struct kn_squeue_info *skipped)
{
	memset(skipped, 0, sizeof *skipped);
	for (;;) {
		pthread_mutex_lock(&q->mu);
		struct seg *s = NULL;
		for (uint32_t i = q->rd; i < q->nsegs; i++) {
			struct seg *t = q->segs[i];
			while (t->cursor < t->n && t->recs[t->cursor].state != R_UNREAD)
				t->cursor++;
			if (t->cursor < t->n) {
				s = t;
				break;
			}
			if (i == q->rd && t != q->active)
				q->rd++;
		}
		if (!s) {
			pthread_mutex_unlock(&q->mu);
			return KN_AGAIN;
		}
		struct rec r = s->recs[s->cursor];
		s->recs[s->cursor++].state = R_OUT;
		atomic_fetch_sub(&q->unread, 1);
		int fd = s->fd; /* stays open: the record is OUT */
		pthread_mutex_unlock(&q->mu);
		struct kn_chunk *c = decode(&r, fd);
		struct kn_batch *b = c ? kn_batch_new(1) : NULL;
		if (c && (!b || kn_batch_add(&b, c) != KN_OK)) {
			if (!b)
				kn_chunk_unref(c);
			kn_batch_free(b); /* OOM: the record stays for the next open */
			return KN_AGAIN;
		}
		if (!c) {
			skip(q, KN_FLOG_BAD_CHECKSUM);
			uint64_t now = kn_now_ns();
			if (now - q->last_warn_ns > KN_NS_PER_SEC) {
				q->last_warn_ns = now;
				kn_warn("%s: record %" PRIu64 " fails its checksum; skipped", q->dir, r.seq);
			}
			kn_flog_done(q, r.seq);
			skipped->batches++;
			skipped->spans += r.nspans;
			skipped->bytes += r.len - r.ctxlen;
			continue;
		}
		*out = b;
		*id = r.seq;
		return KN_OK;
	}
}

/* ---- done ---- */

void kn_flog_done(struct kn_flog *q, uint64_t id)
{
	pthread_mutex_lock(&q->mu);
	uint32_t lo = 0, hi = q->nsegs; /* the last segment with first <= id */
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (q->segs[mid]->first <= id)
			lo = mid + 1;
		else
			hi = mid;
	}
	struct rec *r = NULL;
	struct seg *s = NULL;
	uint32_t si = 0;
	for (uint32_t k = lo; k-- > 0 && !r;) { /* compacted segments may start below their name */
		s = q->segs[k];
		uint32_t a = 0, z = s->n;
		while (a < z) {
			uint32_t mid = (a + z) / 2;
			if (s->recs[mid].seq < id)
				a = mid + 1;
			else
				z = mid;
		}
		if (a < s->n && s->recs[a].seq == id) {
			r = &s->recs[a];
			si = k;
		} else if (s->n && s->recs[0].seq <= id) {
			break; /* in this segment's range and absent */
		}
	}
	if (!r || r->state == R_DONE) {
		pthread_mutex_unlock(&q->mu);
		return;
	}
	if (r->state == R_UNREAD)
		atomic_fetch_sub(&q->unread, 1);
	r->state = R_DONE;
	s->pending--;
	atomic_fetch_sub(&q->pending, 1);
	if (s->pending == 0 && s != q->active) {
		seg_delete(q, si);
	} else {
		uint8_t e[DONE_ENT];
		put64(e, id);
		put32(e + 8, crc(0, e, 8));
		if (s->done_fd < 0) {
			char p[PATH_MAX];
			seg_path(q, s->first, "done", p, sizeof p);
			s->done_fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		}
		/* not synced, and a failure is ignored: a lost mark only sends the
		 * batch again after a restart */
		if (s->done_fd >= 0 && write(s->done_fd, e, DONE_ENT) == DONE_ENT) {
			s->done_bytes += DONE_ENT;
			atomic_fetch_add(&q->disk, DONE_ENT);
		}
	}
	publish(q);
	pthread_mutex_unlock(&q->mu);
}
