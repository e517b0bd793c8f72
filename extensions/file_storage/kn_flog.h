/* SPDX-License-Identifier: Apache-2.0
 * kn_flog: one persistent sending queue on disk: an append-only log of
 * batches in one directory, split into segment files, with per-segment
 * "done" files. It implements the queue side of kn_storage.h; the
 * file_storage extension (kn_file_storage.c) names directories, holds the
 * lock and hands queues out.
 *
 * Files in the queue's directory (all integers little-endian):
 *   <first>.log   a segment: `first` (16 hex digits) is a lower bound of the
 *                 sequence numbers of its records. A 16-byte header
 *                 "KNPQSEG\0", u32 version (1), u32 0; then records:
 *                   u32 magic 0x5251504b ("KPQR")
 *                   u32 len       payload bytes
 *                   u64 seq       record id, increasing through the queue
 *                   u32 nspans
 *                   u16 ctxlen    trace context bytes at the payload's start
 *                   u16 flags     0
 *                   u32 pcrc      crc32 (zlib) of the payload
 *                   u32 hcrc      crc32 of the 28 header bytes before it
 *                   payload: ctxlen bytes "traceparent[\ntracestate]", then
 *                   the ExportTraceServiceRequest (concatenated chunk data).
 *   <first>.done  12-byte entries u64 seq + u32 crc32(seq): records of that
 *                 segment that were sent (or dropped and counted). A torn or
 *                 damaged entry is ignored (its record is sent again).
 *   *.tmp         a segment being rewritten by compaction; removed at open.
 *
 * Open scans every segment's record headers (a read per record, not the
 * payloads): a record whose header fails its checksum is skipped and the
 * scan resynchronises on the next valid header (reason "bad_header"); a
 * record that runs past the end of its file (a write cut short by a crash or
 * a full disk) ends that segment (reason "torn"); a segment whose file
 * header is wrong is removed whole ("bad_segment"). A payload is checked
 * when it is read back (before it would be sent): a mismatch skips the
 * record ("bad_checksum"). Records found neither done nor damaged are
 * replayed: handed out by next() before anything appended later.
 *
 * Space: appends go to the newest segment; past segment_size a new one is
 * started. A segment whose records are all done is deleted (unless it is the
 * one appended to), so space comes back as the queue drains. With
 * compact_on_start, open also rewrites each old segment that holds done or
 * damaged records with only its pending ones (a .tmp file renamed over it).
 *
 * Durability: append returns after write(2); with fsync it also returns
 * only after fdatasync(2) of the segment (concurrent appends share one
 * fdatasync: group commit) and a new segment's directory entry is synced.
 * Done marks are never synced: losing one sends a batch twice, never loses
 * one. Delivery is therefore at least once.
 *
 * Threads: one mutex per queue guards the index and the write; payload
 * reads (pread) and fdatasync run outside it. A segment stays open while
 * any of its records is handed out and not done, so reads need no lock.
 * Costs: per append one writev (+ one fdatasync shared by the appends that
 * wait for it), one crc32 pass over the bytes; per done mark one 12-byte
 * write; per read one preadv, one crc32 pass and one wire index pass (span
 * headers for the chunk); memory: 32 bytes per record not yet deleted. */
#ifndef KN_FLOG_H
#define KN_FLOG_H

#include <stdint.h>

#include "../../collector/core/kn_batch.h"
#include "../../collector/core/kn_err.h"
#include "../../collector/core/kn_storage.h"

struct kn_metrics;

struct kn_flog_cfg {
	int fsync;
	int compact_on_start;
	uint64_t segment_size;   /* bytes; a segment is closed once it reaches this */
};

struct kn_flog;

/* Opens the queue in directory `dir` (created if missing; its parent must
 * exist), scanning what is there. Metrics are registered in m (may be NULL:
 * private) with the labels exporter="<label>". */
struct kn_flog *kn_flog_open(const char *dir, const char *label, const struct kn_flog_cfg *cfg,
			     struct kn_metrics *m, struct kn_squeue_info *info, struct kn_err *err);
int kn_flog_append(struct kn_flog *q, const struct kn_batch *b, int held, uint64_t *id,
		   struct kn_err *err);
uint64_t kn_flog_unread(struct kn_flog *q);
int kn_flog_next(struct kn_flog *q, struct kn_batch **b, uint64_t *id,
		 struct kn_squeue_info *skipped);
void kn_flog_done(struct kn_flog *q, uint64_t id);
uint64_t kn_flog_disk_bytes(struct kn_flog *q);
/* Records not done (unread, handed out or held). */
uint64_t kn_flog_pending(struct kn_flog *q);
void kn_flog_close(struct kn_flog *q);

/* Skip reasons, as the `reason` label of
 * kansatsu_exporter_queue_skipped_records_total. */
enum { KN_FLOG_TORN, KN_FLOG_BAD_HEADER, KN_FLOG_BAD_CHECKSUM, KN_FLOG_BAD_SEGMENT, KN_FLOG_NSKIP };
extern const char *const kn_flog_skip_reasons[KN_FLOG_NSKIP];
/* Counts so far (tests). */
uint64_t kn_flog_skipped(struct kn_flog *q, int reason);

#endif
