/* SPDX-License-Identifier: Apache-2.0
 * kn_fileout: the output file (see kn_fileout.h). Writes loop over short
 * writes and EINTR and split iovec arrays longer than IOV_MAX; a failed write
 * is reported with the path and errno text and leaves the file open (the next
 * record is tried again; a zstd stream restarts with a new frame). */
#include "kn_fileout.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* Writes every byte of iov[0..n), advancing the entries as it goes. */
static int write_all(int fd, struct iovec *iov, size_t n)
{
	while (n > 0) {
		if (iov->iov_len == 0) {
			iov++;
			n--;
			continue;
		}
		int cnt = n > IOV_MAX ? IOV_MAX : (int)n;
		ssize_t w = writev(fd, iov, cnt);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		size_t left = (size_t)w;
		while (n > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			n--;
		}
		if (left) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

static int write_buf(struct kn_fileout *o, const void *p, size_t len, struct kn_err *err)
{
	struct iovec v = { .iov_base = (void *)p, .iov_len = len };
	if (write_all(o->fd, &v, 1) < 0)
		return kn_errf(err, "%s: write: %s", o->path, strerror(errno));
	return KN_OK;
}

/* Writes the staged compressed bytes. */
static int drain(struct kn_fileout *o, struct kn_err *err)
{
	if (o->zlen == 0)
		return KN_OK;
	int rc = write_buf(o, o->zbuf, o->zlen, err);
	o->zlen = 0;
	return rc;
}

/* After a failed write the compressor may be mid-frame: start afresh so the
 * next frame is whole (the broken tail stays as the only damage). */
static void zstd_restart(struct kn_fileout *o)
{
	if (!o->cctx)
		return;
	ZSTD_CCtx_reset(o->cctx, ZSTD_reset_session_only);
	o->zlen = 0;
	o->dirty = 0;
}

int kn_fileout_init(struct kn_fileout *o, const char *path, int zstd, uint64_t max_bytes,
		    uint64_t max_backups, struct kn_err *err)
{
	memset(o, 0, sizeof *o);
	o->fd = -1;
	o->max_bytes = max_bytes;
	o->max_backups = max_backups;
	o->path = strdup(path);
	if (!o->path)
		goto oom;
	if (zstd) {
		o->cctx = ZSTD_createCCtx();
		o->zcap = ZSTD_CStreamOutSize();
		o->zbuf = malloc(o->zcap);
		if (!o->cctx || !o->zbuf)
			goto oom;
	}
	return KN_OK;
oom:
	kn_fileout_fini(o);
	return kn_errf(err, "%s: out of memory", path);
}

int kn_fileout_open(struct kn_fileout *o, struct kn_err *err)
{
	if (o->fd >= 0)
		return KN_OK;
	int fd = open(o->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return kn_errf(err, "cannot open \"%s\": %s", o->path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return kn_errf(err, "cannot stat \"%s\": %s", o->path, strerror(e));
	}
	o->fd = fd;
	o->size = (uint64_t)st.st_size;
	o->zlen = 0;
	o->dirty = 0;
	return KN_OK;
}

static int compress_iov(struct kn_fileout *o, const struct iovec *iov, size_t n,
			struct kn_err *err)
{
	for (size_t i = 0; i < n; i++) {
		ZSTD_inBuffer in = { iov[i].iov_base, iov[i].iov_len, 0 };
		while (in.pos < in.size) {
			ZSTD_outBuffer out = { o->zbuf + o->zlen, o->zcap - o->zlen, 0 };
			size_t r = ZSTD_compressStream2(o->cctx, &out, &in, ZSTD_e_continue);
			if (ZSTD_isError(r))
				return kn_errf(err, "%s: zstd: %s", o->path, ZSTD_getErrorName(r));
			o->zlen += out.pos;
			o->size += out.pos;
			o->dirty = 1;
			if (o->zlen == o->zcap && drain(o, err) != KN_OK)
				return KN_ERR;
		}
	}
	return KN_OK;
}

static int rotate(struct kn_fileout *o, struct kn_err *err)
{
	if (kn_fileout_close(o, err) != KN_OK)
		return KN_ERR;
	if (kn_fileout_rotate_names(o->path, o->max_backups, err) != KN_OK)
		return KN_ERR;
	return kn_fileout_open(o, err);
}

int kn_fileout_write(struct kn_fileout *o, struct iovec *iov, size_t n, struct kn_err *err)
{
	if (o->fd < 0 && kn_fileout_open(o, err) != KN_OK)
		return KN_ERR;
	uint64_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (o->max_bytes && o->size > 0) {
		uint64_t next = o->cctx ? o->size : o->size + len;
		int full = o->cctx ? next >= o->max_bytes : next > o->max_bytes;
		if (full && rotate(o, err) != KN_OK)
			return KN_ERR;
	}
	if (o->cctx) {
		if (compress_iov(o, iov, n, err) != KN_OK) {
			zstd_restart(o);
			return KN_ERR;
		}
		return KN_OK;
	}
	if (write_all(o->fd, iov, n) < 0)
		return kn_errf(err, "%s: write: %s", o->path, strerror(errno));
	o->size += len;
	return KN_OK;
}

int kn_fileout_flush(struct kn_fileout *o, struct kn_err *err)
{
	if (o->fd < 0 || !o->cctx)
		return KN_OK;
	if (o->dirty) {
		ZSTD_inBuffer in = { NULL, 0, 0 };
		size_t r;
		do {
			ZSTD_outBuffer out = { o->zbuf + o->zlen, o->zcap - o->zlen, 0 };
			r = ZSTD_compressStream2(o->cctx, &out, &in, ZSTD_e_end);
			if (ZSTD_isError(r)) {
				kn_errf(err, "%s: zstd: %s", o->path, ZSTD_getErrorName(r));
				zstd_restart(o);
				return KN_ERR;
			}
			o->zlen += out.pos;
			o->size += out.pos;
			if ((r != 0 || o->zlen == o->zcap) && drain(o, err) != KN_OK) {
				zstd_restart(o);
				return KN_ERR;
			}
		} while (r != 0);
		o->dirty = 0;
	}
	if (drain(o, err) != KN_OK) {
		zstd_restart(o);
		return KN_ERR;
	}
	return KN_OK;
}

int kn_fileout_close(struct kn_fileout *o, struct kn_err *err)
{
	if (o->fd < 0)
		return KN_OK;
	int rc = kn_fileout_flush(o, err);
	if (fsync(o->fd) < 0 && rc == KN_OK)
		rc = kn_errf(err, "%s: fsync: %s", o->path, strerror(errno));
	if (close(o->fd) < 0 && rc == KN_OK)
		rc = kn_errf(err, "%s: close: %s", o->path, strerror(errno));
	o->fd = -1;
	o->size = 0;
	return rc;
}

void kn_fileout_fini(struct kn_fileout *o)
{
	if (!o->path)
		return;         /* never initialised: fd may be a stray 0 */
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	ZSTD_freeCCtx(o->cctx);
	o->cctx = NULL;
	free(o->zbuf);
	o->zbuf = NULL;
	free(o->path);
	o->path = NULL;
}
