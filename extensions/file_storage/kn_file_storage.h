/* SPDX-License-Identifier: Apache-2.0
 * kn_file_storage: the `file_storage` extension, the storage behind
 * persistent sending queues (kn_storage.h), in the OpenTelemetry
 * Collector's config shape (extension/storage/filestorage):
 *
 *   extensions:
 *     file_storage:
 *       directory: /var/lib/kansatsu/file_storage   # must exist (or create_directory)
 *       timeout: 1s              # how long start waits for the directory's lock
 *       fsync: false             # true: fdatasync every append before it counts
 *       create_directory: false  # create `directory` (directory_permissions) at start
 *       directory_permissions: "0750"
 *       compaction:
 *         on_start: false        # rewrite segments holding sent records at start
 *         on_rebound: false      # accepted; space is always reclaimed (see below)
 *         cleanup_on_start: false  # accepted; leftover temporary files are always removed
 *       segment_size: 16777216   # kansatsu's own: bytes per segment file
 *   exporters:
 *     otlp:
 *       sending_queue: { storage: file_storage }
 *   service:
 *     extensions: [file_storage]
 *
 * What the OTel keys mean here. OTel's file_storage is a bbolt key-value file
 * per component; kansatsu's is an append-only log per queue (kn_flog.h):
 *  - timeout: in OTel the time bbolt waits for its file lock; here the time
 *    start waits for the lock of `directory` (one process per directory: a
 *    second collector on the same directory fails to start, naming it).
 *  - fsync: as OTel (bbolt's NoSync off): every append is on stable storage
 *    before the receiver acknowledges; concurrent appends share one
 *    fdatasync (group commit).
 *  - compaction.on_start: as OTel (reclaim space at start): segments holding
 *    records already sent (or damaged) are rewritten with only the pending
 *    ones. compaction.on_rebound (OTel: shrink the file online once usage
 *    falls) is what the log always does: a segment whose records are all
 *    sent is deleted at once, so both values are accepted and space comes
 *    back in segment_size steps whatever the value. cleanup_on_start (OTel:
 *    remove compaction's temporary files at start): kansatsu always removes
 *    its *.tmp files at start, so both values are accepted.
 *  - compaction.directory must be `directory` itself (compaction renames the
 *    rewritten segment over the old one, which needs one file system);
 *    compaction.max_transaction_size, rebound_needed_threshold_mib,
 *    rebound_trigger_threshold_mib, check_interval tune bbolt's copying and
 *    have nothing to tune here, and `recreate` (start from empty files,
 *    keeping the old ones as backups) is not implemented: each is an error
 *    naming the key rather than a silent no-op.
 *
 * Layout under `directory`: kansatsu.lock (flock; holds the owner's pid) and
 * one directory per queue, "q-" + the queue name with every byte outside
 * [A-Za-z0-9.-] written as _XX (hex), so names map to files one to one:
 * "otlp/backend" -> q-otlp_2Fbackend.
 *
 * Lifecycle: create checks the config and that the directory exists (unless
 * create_directory) and is writable; start creates it if asked and takes the
 * lock (waiting up to timeout); queues are opened by exporters at their
 * start (after extensions start) and closed at their destroy (before the
 * extension's destroy, which releases the lock). Threads: open/close/list
 * take the instance's mutex; queue operations take only their queue's. */
#ifndef KN_FILE_STORAGE_H
#define KN_FILE_STORAGE_H

#include <stdint.h>

#include "../../collector/core/kn_component.h"

struct kn_fs_compaction_cfg {
	int on_start;
	int on_rebound;
	int cleanup_on_start;
	char *directory;
	char *max_transaction_size;          /* rejected when present */
	char *rebound_needed_threshold_mib;  /* rejected when present */
	char *rebound_trigger_threshold_mib; /* rejected when present */
	char *check_interval;                /* rejected when present */
};

struct kn_file_storage_cfg {
	char *directory;
	uint64_t timeout_ns;
	int fsync;
	int create_directory;
	char *directory_permissions;         /* octal, "0750" */
	uint64_t segment_size;               /* bytes */
	char *recreate;                      /* rejected when present */
	struct kn_fs_compaction_cfg compaction;
};

extern const struct kn_component kn_extension_file_storage;

/* The file (directory) name of a queue: "q-" + escaped name. */
void kn_file_storage_queue_dir(const char *name, char *out, size_t cap);

#endif
