/* SPDX-License-Identifier: Apache-2.0
 * kn_storage: what an exporter's persistent sending queue needs from a
 * storage extension (file_storage): a durable FIFO of batches per named
 * queue. It is not a key-value store: a queue appends batches, reads back the
 * ones it did not keep in memory, and marks each one done once the server
 * took it (or it was dropped and counted), which an append-only log does
 * with one write per operation.
 *
 * A queue's records:
 *  - append(b, held) writes the batch's bytes (the concatenated chunk data: an
 *    ExportTraceServiceRequest), its span count and its trace context, and
 *    returns the record's id once the record is on disk (written; with the
 *    extension's fsync also flushed). `held` says the caller keeps the batch
 *    in memory and will send it from there: the record is then never handed
 *    out by next(). Otherwise it is "unread" and next() returns it later.
 *  - next() hands out the oldest unread record, decoded back into a batch of
 *    one chunk (span headers indexed, so any exporter can route it); records
 *    found on disk at open are all unread, so they are sent first.
 *  - done(id) marks a record finished: it is not replayed at the next start
 *    and its space is reclaimed. A record handed out but never marked done
 *    (the process stopped or crashed while it was in flight) is replayed at
 *    the next open: delivery is at least once.
 *
 * Threads: every operation may be called from any thread, concurrently
 * (shard workers append, consumer threads read and mark done). append blocks
 * for a write (and an fsync when configured); the others for a read at most.
 * Ownership: append does not take the batch; next() gives the caller a new
 * batch (kn_batch_free it). A queue name is open at most once at a time. */
#ifndef KN_STORAGE_H
#define KN_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "kn_batch.h"
#include "kn_err.h"

struct kn_metrics;

/* What open() found on disk: records not done, replayed before new ones. */
struct kn_squeue_info {
	uint64_t batches;
	uint64_t spans;
	uint64_t bytes;   /* encoded request bytes */
};

struct kn_storage_ops {
	/* Opens (creating when new) the queue `name` (any string: an exporter
	 * id; the extension turns it into a file name) and scans what is on
	 * disk. Its metrics go to m with the label exporter="<name>". Only
	 * after the extension started. KN_OK or KN_ERR. */
	int (*open)(void *inst, const char *name, struct kn_metrics *m, void **q,
		    struct kn_squeue_info *info, struct kn_err *err);
	/* KN_OK: stored, *id set (never 0). KN_AGAIN: no room (disk full,
	 * quota, file size limit): nothing was stored, try again later. KN_ERR:
	 * another I/O error, nothing stored. err says why in both cases. */
	int (*append)(void *q, const struct kn_batch *b, int held, uint64_t *id,
		      struct kn_err *err);
	/* Records waiting to be handed out by next() (a relaxed atomic read). */
	uint64_t (*unread)(void *q);
	/* KN_OK with *b and *id, or KN_AGAIN when nothing is unread. Records
	 * that fail their checksum on the way are skipped (counted by reason,
	 * marked done): *skipped (zeroed first) says how many and what they held
	 * (bytes and spans as their headers say). */
	int (*next)(void *q, struct kn_batch **b, uint64_t *id, struct kn_squeue_info *skipped);
	void (*done)(void *q, uint64_t id);
	/* Bytes of the queue's files on disk now. */
	uint64_t (*disk_bytes)(void *q);
	/* Closes; a queue with nothing left to send leaves no file behind.
	 * NULL-safe. Records handed out and not done stay for the next open. */
	void (*close)(void *q);
	/* Names of queues on disk that start with `prefix` and are not open now
	 * (the load-balancing exporter's queues of endpoints no longer in its
	 * ring). *names is a malloc'd array of malloc'd strings. */
	int (*list)(void *inst, const char *prefix, char ***names, size_t *n, struct kn_err *err);
};

#endif
