/* SPDX-License-Identifier: Apache-2.0
 * kn_exporter_file: the `file` exporter. Writes every batch it is given to a
 * local file, in the OpenTelemetry Collector fileexporter's config shape:
 *
 *   exporters:
 *     file:
 *       path: /var/lib/kansatsu/traces.jsonl   # required
 *       format: json                           # json (default) | proto
 *       compression: ""                        # "" (none, default) | zstd
 *       rotation:                              # only when present (as upstream)
 *         max_megabytes: 100
 *         max_backups: 100                     # 0 = keep every backup
 *       flush_interval: 1s
 *       sending_queue: { enabled: true, queue_size: 1000 }
 *
 * Formats: json = one OTLP/JSON TracesData object per line; proto = per batch
 * a 4-byte big-endian length, then the encoded TracesData (the batch's chunk
 * bytes, written as they are). With zstd the whole file is a zstd stream; a
 * frame ends at every flush, so a crash loses at most the unflushed tail.
 *
 * Threading: shard workers only enqueue into the kn_sender (no file I/O on
 * their threads); one sender consumer thread writes (num_consumers is forced
 * to 1: a file has one writer), and with zstd one flusher thread ends a frame
 * every flush_interval. See kn_fileout.h for the file itself. */
#ifndef KN_EXPORTER_FILE_H
#define KN_EXPORTER_FILE_H

#include <stdint.h>

#include "../../collector/core/kn_component.h"
#include "../common/kn_sender.h"

struct kn_exporter_file_rotation_cfg {
	uint64_t max_megabytes;   /* rotate when the file reaches this size (MiB) */
	uint64_t max_backups;     /* rotated files kept; 0 = all */
};

struct kn_exporter_file_cfg {
	char *path;
	char *format;             /* "json" | "proto" */
	char *compression;        /* "" | "zstd" */
	int rotation_enabled;     /* set when the `rotation` key is present */
	struct kn_exporter_file_rotation_cfg rotation;
	uint64_t flush_interval_ns;
	struct kn_sender_cfg sender;
};

extern const struct kn_cfg_field kn_exporter_file_fields[];
extern const struct kn_cfg_field kn_exporter_file_rotation_fields[];
extern const struct kn_component kn_exporter_file;

#endif
