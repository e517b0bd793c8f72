/* SPDX-License-Identifier: Apache-2.0
 * kn_fileout: one append-only output file, optionally a zstd stream, with
 * size-based rotation. Used by the file exporter; knows nothing of OTLP.
 *
 * Records are handed in as iovecs and written with writev (uncompressed: no
 * user-space buffering, so nothing waits for a flush) or fed to
 * ZSTD_compressStream2 (zstd: compressed bytes are staged in a buffer of
 * ZSTD_CStreamOutSize() and written when it fills). kn_fileout_flush ends the
 * current zstd frame and writes everything out, so the file is always a
 * sequence of complete frames plus at most one unfinished tail.
 *
 * Rotation (when max_bytes > 0): before a record would push the file past
 * max_bytes (zstd: once the compressed bytes reached it), the file is
 * flushed, closed and renamed "<path>.1"; older backups shift up by one
 * ("<path>.1" -> "<path>.2", ...). "<path>.1" is always the newest backup.
 * With max_backups > 0 the backup "<path>.<max_backups>" is removed before the
 * shift; with max_backups == 0 every backup is kept. A record is never split
 * across files, so a file can exceed max_bytes only by a record bigger than
 * max_bytes itself (zstd: by the compressor's internal buffer, <= 128 KiB).
 *
 * Threading: none inside; the owner serialises calls. Ownership: the struct
 * is the caller's; kn_fileout_fini releases what init and open acquired. */
#ifndef KN_FILEOUT_H
#define KN_FILEOUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../../collector/core/kn_err.h"

struct ZSTD_CCtx_s;

struct kn_fileout {
	char *path;
	int fd;                    /* -1 when closed */
	struct ZSTD_CCtx_s *cctx;  /* NULL: uncompressed */
	uint8_t *zbuf;             /* staged compressed bytes */
	size_t zlen, zcap;
	uint64_t size;             /* bytes of the current file, staged ones included */
	uint64_t max_bytes;        /* 0: no rotation */
	uint64_t max_backups;      /* 0: keep all */
	int dirty;                 /* zstd: input since the last frame end */
};

/* Copies path; allocates the compressor when zstd. Opens nothing. */
int kn_fileout_init(struct kn_fileout *o, const char *path, int zstd, uint64_t max_bytes,
		    uint64_t max_backups, struct kn_err *err);
/* Opens (O_WRONLY|O_APPEND|O_CREAT, 0644). The error names the path and errno. */
int kn_fileout_open(struct kn_fileout *o, struct kn_err *err);
/* Appends one record made of iov[0..n) (n <= IOV_MAX is not required);
 * rotates first when needed. iov is used as scratch (its entries change). */
int kn_fileout_write(struct kn_fileout *o, struct iovec *iov, size_t n, struct kn_err *err);
/* zstd: ends the frame if anything was written since the last one; writes all
 * staged bytes. Uncompressed: nothing to do. */
int kn_fileout_flush(struct kn_fileout *o, struct kn_err *err);
/* Flushes, fsyncs and closes. Safe when not open. */
int kn_fileout_close(struct kn_fileout *o, struct kn_err *err);
/* Closes (without reporting errors) and frees. Safe on a zeroed or
 * half-initialised struct. */
void kn_fileout_fini(struct kn_fileout *o);

/* Shifts the backups of path and renames path to "<path>.1" (see above). */
int kn_fileout_rotate_names(const char *path, uint64_t max_backups, struct kn_err *err);

#endif
