/* SPDX-License-Identifier: Apache-2.0
 * kn_file_storage: the file_storage extension component (see
 * kn_file_storage.h): config, the directory and its lock, and the
 * kn_storage_ops that hand out kn_flog queues by name. */
#include "kn_file_storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_log.h"
#include "../../collector/core/kn_storage.h"
#include "kn_flog.h"

#define F(f) offsetof(struct kn_file_storage_cfg, f)
#define C(f) offsetof(struct kn_fs_compaction_cfg, f)

static const struct kn_cfg_field compaction_fields[] = {
	{.key = "on_start", .type = KN_F_BOOL, .off = C(on_start), .def = "false",
	 .help = "at start, rewrite segments that hold sent or damaged records with only the pending ones"},
	{.key = "on_rebound", .type = KN_F_BOOL, .off = C(on_rebound), .def = "false",
	 .help = "accepted: a segment whose records are all sent is always deleted at once"},
	{.key = "cleanup_on_start", .type = KN_F_BOOL, .off = C(cleanup_on_start), .def = "false",
	 .help = "accepted: temporary files of an interrupted compaction are always removed at start"},
	{.key = "directory", .type = KN_F_STR, .off = C(directory),
	 .help = "must be the storage directory itself (segments are rewritten in place)"},
	{.key = "max_transaction_size", .type = KN_F_STR, .off = C(max_transaction_size),
	 .help = "not applicable (bbolt tuning): an error"},
	{.key = "rebound_needed_threshold_mib", .type = KN_F_STR, .off = C(rebound_needed_threshold_mib),
	 .help = "not applicable (bbolt tuning): an error"},
	{.key = "rebound_trigger_threshold_mib", .type = KN_F_STR, .off = C(rebound_trigger_threshold_mib),
	 .help = "not applicable (bbolt tuning): an error"},
	{.key = "check_interval", .type = KN_F_STR, .off = C(check_interval),
	 .help = "not applicable (bbolt tuning): an error"},
	KN_CFG_END,
};

static const struct kn_cfg_field fs_fields[] = {
	{.key = "directory", .type = KN_F_STR, .off = F(directory), .def = "/var/lib/kansatsu/file_storage",
	 .help = "where the queues live; must exist and be writable (or create_directory)"},
	{.key = "timeout", .type = KN_F_DURATION, .off = F(timeout_ns), .def = "1s",
	 .help = "how long start waits for the directory's lock (held by another process)"},
	{.key = "fsync", .type = KN_F_BOOL, .off = F(fsync), .def = "false",
	 .help = "flush every append to stable storage before the spans count as accepted"},
	{.key = "create_directory", .type = KN_F_BOOL, .off = F(create_directory), .def = "false",
	 .help = "create the directory (and its parents) at start"},
	{.key = "directory_permissions", .type = KN_F_STR, .off = F(directory_permissions), .def = "0750",
	 .help = "mode of a directory create_directory makes (octal)"},
	{.key = "segment_size", .type = KN_F_UINT, .off = F(segment_size), .def = "16777216",
	 .help = "kansatsu's own: bytes per segment file; space comes back a segment at a time",
	 .min = 4096, .max = 1u << 30},
	{.key = "recreate", .type = KN_F_STR, .off = F(recreate), .help = "not supported: an error"},
	{.key = "compaction", .type = KN_F_SUB, .off = F(compaction), .sub = compaction_fields,
	 .help = "OTel's compaction settings (see the README for how they map)"},
	KN_CFG_END,
};

struct fsq {
	struct kn_flog *log;
	struct fs *owner;
	char *name;
};

struct fs {
	char *id;
	char path[300];             /* "extensions.<id>" */
	char *dir;
	uint64_t timeout_ns;
	unsigned mode;
	int create_dir;
	struct kn_flog_cfg lcfg;
	int lock_fd;
	int started;
	pthread_mutex_t mu;
	struct fsq **open;          /* queues open now */
	size_t nopen, capopen;
};

static int parse_mode(const char *s, unsigned *mode)
{
	if (!s || !*s)
		return -1;
	unsigned v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '7' || v > 07777)
			return -1;
		v = v * 8 + (unsigned)(*p - '0');
	}
	if (v > 07777)
		return -1;
	*mode = v;
	return 0;
}

static int fs_validate(const void *cfgp, const char *path, struct kn_err *err)
{
	const struct kn_file_storage_cfg *c = cfgp;
	unsigned mode;
	if (!c->directory || !*c->directory)
		return kn_errf(err, "%s.directory: missing", path);
	if (c->directory[0] != '/')
		return kn_errf(err, "%s.directory: must be an absolute path, got \"%s\"", path, c->directory);
	if (parse_mode(c->directory_permissions, &mode) != 0)
		return kn_errf(err, "%s.directory_permissions: expected an octal mode such as \"0750\", got \"%s\"",
			       path, c->directory_permissions ? c->directory_permissions : "");
	if (c->recreate)
		return kn_errf(err, "%s.recreate: not supported (move the directory's q-* folders away "
			       "to start from an empty queue)", path);
	const char *const tuning[] = {c->compaction.max_transaction_size,
				      c->compaction.rebound_needed_threshold_mib,
				      c->compaction.rebound_trigger_threshold_mib, c->compaction.check_interval};
	const char *const names[] = {"max_transaction_size", "rebound_needed_threshold_mib",
				     "rebound_trigger_threshold_mib", "check_interval"};
	for (int i = 0; i < 4; i++)
		if (tuning[i])
			return kn_errf(err, "%s.compaction.%s: not applicable: kansatsu's queue is an "
				       "append-only log that deletes a segment as soon as all its records "
				       "are sent; there is no compaction copy to tune", path, names[i]);
	if (c->compaction.directory) {
		char a[PATH_MAX], b[PATH_MAX];
		snprintf(a, sizeof a, "%s", c->directory);
		snprintf(b, sizeof b, "%s", c->compaction.directory);
		for (char *p = a + strlen(a); p > a + 1 && p[-1] == '/';)
			*--p = '\0';
		for (char *p = b + strlen(b); p > b + 1 && p[-1] == '/';)
			*--p = '\0';
		if (strcmp(a, b) != 0)
			return kn_errf(err, "%s.compaction.directory: must be the storage directory (%s): "
				       "compaction rewrites a segment beside the old one and renames it over it",
				       path, c->directory);
	}
	return KN_OK;
}

/* The directory exists, is a directory, and we may create files in it. */
static int check_dir(const char *dir, const char *path, struct kn_err *err)
{
	struct stat st;
	if (stat(dir, &st) != 0)
		return kn_errf(err, "%s.directory: \"%s\": %s (create it, or set create_directory: true)", path,
			       dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return kn_errf(err, "%s.directory: \"%s\" is not a directory", path, dir);
	if (access(dir, W_OK | X_OK) != 0)
		return kn_errf(err, "%s.directory: \"%s\" is not writable: %s", path, dir, strerror(errno));
	return KN_OK;
}

static void fs_destroy(void *inst)
{
	struct fs *x = inst;
	if (!x)
		return;
	if (x->lock_fd >= 0)
		close(x->lock_fd); /* releases the flock */
	for (size_t i = 0; i < x->nopen; i++) /* exporters close their queues first; not reached normally */
		x->open[i]->owner = NULL;
	free(x->open);
	pthread_mutex_destroy(&x->mu);
	free(x->dir);
	free(x->id);
	free(x);
}

static int fs_create(const struct kn_component_ctx *ctx, const void *cfgp, void **inst, struct kn_err *err)
{
	const struct kn_file_storage_cfg *c = cfgp;
	char path[300];
	snprintf(path, sizeof path, "extensions.%s", ctx->id);
	*inst = NULL;
	if (fs_validate(c, path, err) != KN_OK)
		return KN_ERR;
	if (!c->create_directory && check_dir(c->directory, path, err) != KN_OK)
		return KN_ERR;
	struct fs *x = calloc(1, sizeof *x);
	if (!x)
		return kn_errf(err, "%s: out of memory", path);
	x->lock_fd = -1;
	pthread_mutex_init(&x->mu, NULL);
	snprintf(x->path, sizeof x->path, "%s", path);
	x->id = strdup(ctx->id);
	x->dir = strdup(c->directory);
	if (!x->id || !x->dir) {
		fs_destroy(x);
		return kn_errf(err, "%s: out of memory", path);
	}
	for (char *p = x->dir + strlen(x->dir); p > x->dir + 1 && p[-1] == '/';)
		*--p = '\0';
	x->timeout_ns = c->timeout_ns;
	parse_mode(c->directory_permissions, &x->mode);
	x->create_dir = c->create_directory;
	x->lcfg.fsync = c->fsync;
	x->lcfg.compact_on_start = c->compaction.on_start;
	x->lcfg.segment_size = c->segment_size;
	*inst = x;
	return KN_OK;
}

static int mkdir_p(const char *dir, unsigned mode)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s", dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) != 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(p, mode) != 0 && errno != EEXIST ? -1 : 0;
}

static int fs_start(void *inst, struct kn_err *err)
{
	struct fs *x = inst;
	if (x->started)
		return kn_errf(err, "%s: started twice", x->path);
	if (x->create_dir && mkdir_p(x->dir, x->mode) != 0)
		return kn_errf(err, "%s.directory: cannot create \"%s\": %s", x->path, x->dir, strerror(errno));
	if (check_dir(x->dir, x->path, err) != KN_OK)
		return KN_ERR;
	char lp[PATH_MAX];
	snprintf(lp, sizeof lp, "%s/kansatsu.lock", x->dir);
	x->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (x->lock_fd < 0)
		return kn_errf(err, "%s.directory: cannot open the lock file \"%s\": %s", x->path, lp,
			       strerror(errno));
	uint64_t until = kn_now_ns() + x->timeout_ns;
	while (flock(x->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return kn_errf(err, "%s.directory: cannot lock \"%s\": %s", x->path, lp, strerror(errno));
		if (kn_now_ns() >= until) {
			char pid[32] = "";
			ssize_t n = pread(x->lock_fd, pid, sizeof pid - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			close(x->lock_fd);
			x->lock_fd = -1;
			return kn_errf(err, "%s.directory: \"%s\" is in use by another process (pid %s holds %s; "
				       "waited %llu ms, the extension's timeout): one collector per directory",
				       x->path, x->dir, pid[0] ? pid : "?", lp,
				       (unsigned long long)(x->timeout_ns / KN_NS_PER_MS));
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(x->lock_fd, 0) != 0 || pwrite(x->lock_fd, pid, (size_t)n, 0) != n)
		kn_warn("%s: cannot write the pid into %s", x->path, lp); /* only the message needs it */
	x->started = 1;
	return KN_OK;
}

static void fs_shutdown(void *inst, uint64_t deadline_ns)
{
	/* Nothing to flush: appends are written (and synced) before they
	 * return; the lock is held until destroy, after the exporters closed
	 * their queues. */
	(void)inst;
	(void)deadline_ns;
}

/* ---- names ---- */

void kn_file_storage_queue_dir(const char *name, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	if (cap < 3)
		return;
	out[o++] = 'q';
	out[o++] = '-';
	for (const unsigned char *p = (const unsigned char *)name; *p && o + 4 < cap; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '.' || *p == '-') {
			out[o++] = (char)*p;
		} else {
			out[o++] = '_';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
}

/* The queue name of a directory entry; 0 when it is not one of ours. */
static int decode_name(const char *ent, char *out, size_t cap)
{
	if (strncmp(ent, "q-", 2) != 0)
		return 0;
	size_t o = 0;
	for (const char *p = ent + 2; *p; p++) {
		if (o + 1 >= cap)
			return 0;
		if (*p != '_') {
			out[o++] = *p;
			continue;
		}
		int v = 0;
		for (int i = 1; i <= 2; i++) {
			char c = p[i];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
			if (d < 0)
				return 0;
			v = v * 16 + d;
		}
		out[o++] = (char)v;
		p += 2;
	}
	out[o] = '\0';
	return o > 0;
}

/* ---- storage ops ---- */

static int fs_open(void *inst, const char *name, struct kn_metrics *m, void **qp,
		   struct kn_squeue_info *info, struct kn_err *err)
{
	struct fs *x = inst;
	*qp = NULL;
	if (!x->started)
		return kn_errf(err, "%s: queue \"%s\" opened before the extension started", x->path, name);
	char sub[NAME_MAX + 1], dir[PATH_MAX];
	kn_file_storage_queue_dir(name, sub, sizeof sub);
	if (strlen(sub) + 4 >= sizeof sub)
		return kn_errf(err, "%s: queue name \"%s\" is too long for a file name", x->path, name);
	snprintf(dir, sizeof dir, "%s/%s", x->dir, sub);
	pthread_mutex_lock(&x->mu);
	int rc = KN_OK;
	for (size_t i = 0; i < x->nopen; i++)
		if (strcmp(x->open[i]->name, name) == 0)
			rc = kn_errf(err, "%s: queue \"%s\" is already open", x->path, name);
	struct fsq *q = NULL;
	if (rc == KN_OK && x->nopen == x->capopen) {
		size_t cap = x->capopen ? x->capopen * 2 : 8;
		struct fsq **v = realloc(x->open, cap * sizeof *v);
		if (!v)
			rc = kn_errf(err, "%s: out of memory", x->path);
		else {
			x->open = v;
			x->capopen = cap;
		}
	}
	if (rc == KN_OK && (!(q = calloc(1, sizeof *q)) || !(q->name = strdup(name))))
		rc = kn_errf(err, "%s: out of memory", x->path);
	if (rc == KN_OK && !(q->log = kn_flog_open(dir, name, &x->lcfg, m, info, err)))
		rc = kn_err_prefix(err, "%s: ", x->path);
	if (rc == KN_OK) {
		q->owner = x;
		x->open[x->nopen++] = q;
		*qp = q;
	} else if (q) {
		free(q->name);
		free(q);
	}
	pthread_mutex_unlock(&x->mu);
	return rc;
}

static void fs_close(void *qp)
{
	struct fsq *q = qp;
	if (!q)
		return;
	struct fs *x = q->owner;
	kn_flog_close(q->log);
	if (x) {
		pthread_mutex_lock(&x->mu);
		for (size_t i = 0; i < x->nopen; i++)
			if (x->open[i] == q) {
				x->open[i] = x->open[--x->nopen];
				break;
			}
		pthread_mutex_unlock(&x->mu);
	}
	free(q->name);
	free(q);
}

static int fs_append(void *q, const struct kn_batch *b, int held, uint64_t *id, struct kn_err *err)
{
	return kn_flog_append(((struct fsq *)q)->log, b, held, id, err);
}

static uint64_t fs_unread(void *q)
{
	return kn_flog_unread(((struct fsq *)q)->log);
}

static int fs_next(void *q, struct kn_batch **b, uint64_t *id, struct kn_squeue_info *skipped)
{
	return kn_flog_next(((struct fsq *)q)->log, b, id, skipped);
}

static void fs_done(void *q, uint64_t id)
{
	kn_flog_done(((struct fsq *)q)->log, id);
}

static uint64_t fs_disk_bytes(void *q)
{
	return kn_flog_disk_bytes(((struct fsq *)q)->log);
}

static int fs_list(void *inst, const char *prefix, char ***names, size_t *n, struct kn_err *err)
{
	struct fs *x = inst;
	*names = NULL;
	*n = 0;
	DIR *d = opendir(x->dir);
	if (!d)
		return kn_errf(err, "%s.directory: \"%s\": %s", x->path, x->dir, strerror(errno));
	size_t cap = 0, pl = strlen(prefix);
	int rc = KN_OK;
	struct dirent *de;
	pthread_mutex_lock(&x->mu);
	while (rc == KN_OK && (de = readdir(d)) != NULL) {
		char name[NAME_MAX + 1];
		if (!decode_name(de->d_name, name, sizeof name) || strncmp(name, prefix, pl) != 0)
			continue;
		int open = 0;
		for (size_t i = 0; i < x->nopen && !open; i++)
			open = strcmp(x->open[i]->name, name) == 0;
		if (open)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			char **v = realloc(*names, cap * sizeof *v);
			if (!v) {
				rc = kn_errf(err, "%s: out of memory", x->path);
				break;
			}
			*names = v;
		}
		if (!((*names)[*n] = strdup(name)))
			rc = kn_errf(err, "%s: out of memory", x->path);
		else
			(*n)++;
	}
	pthread_mutex_unlock(&x->mu);
	closedir(d);
	if (rc != KN_OK) {
		for (size_t i = 0; i < *n; i++)
			free((*names)[i]);
		free(*names);
		*names = NULL;
		*n = 0;
	}
	return rc;
}

static const struct kn_storage_ops fs_ops = {
	.open = fs_open,
	.append = fs_append,
	.unread = fs_unread,
	.next = fs_next,
	.done = fs_done,
	.disk_bytes = fs_disk_bytes,
	.close = fs_close,
	.list = fs_list,
};

const struct kn_component kn_extension_file_storage = {
	.type = "file_storage",
	.kind = KN_EXTENSION,
	.summary = "persistent sending queues for exporters, as append-only logs in a directory",
	.config_size = sizeof(struct kn_file_storage_cfg),
	.config_fields = fs_fields,
	.validate = fs_validate,
	.create = fs_create,
	.start = fs_start,
	.shutdown = fs_shutdown,
	.destroy = fs_destroy,
	.storage = &fs_ops,
};
