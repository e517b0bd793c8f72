/* SPDX-License-Identifier: Apache-2.0
 * kn_file_watch: calls a function when a file changes, from a thread of its
 * own, so an extension can re-read a token or htpasswd file without a
 * restart.
 *
 * Why this way: a change is noticed by comparing the file's identity and
 * times (device, inode, size, mtime and ctime in nanoseconds, following
 * symlinks) with the last ones seen. inotify on the file's DIRECTORY wakes
 * the thread at once when something in it is written, renamed, created or
 * deleted; that also catches the way Kubernetes rotates mounted secrets (a
 * symlink to a new directory renamed into place), which a watch on the file
 * itself would lose. A poll every `poll_ns` (1 s by default) stays as the
 * backstop for filesystems without inotify events (NFS, some overlays) and
 * for writers that never close the file. Half-written files are the
 * callback's business: it re-reads on every change, so the last write wins.
 *
 * Threads: one per watch; the callback runs on it. stop() wakes it through
 * an eventfd and joins it. */
#ifndef KN_FILE_WATCH_H
#define KN_FILE_WATCH_H

#include <stdint.h>

#include "../../collector/core/kn_err.h"

struct kn_file_watch;

typedef void (*kn_file_changed_fn)(void *ctx);

/* Takes the file's current state as "seen" (so a change from now on calls
 * fn, even one before the thread runs), then starts the thread. poll_ns 0 =
 * 1 s. The file may be missing: its appearance is a change. */
struct kn_file_watch *kn_file_watch_start(const char *path, uint64_t poll_ns, kn_file_changed_fn fn,
					  void *ctx, struct kn_err *err);
/* Stops and joins the thread; NULL-safe. fn is not called after it returns. */
void kn_file_watch_stop(struct kn_file_watch *w);

#endif
