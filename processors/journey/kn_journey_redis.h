/* SPDX-License-Identifier: Apache-2.0
 * kn_journey_redis: the journey registry's second level, shared by a fleet
 * of collectors through Redis (journey.registry.redis).
 *
 * One client thread owns a hiredis async connection and a poll loop; shard
 * workers never touch the socket. They hand it messages through one pair of
 * SPSC rings per shard (requests in, lookup answers out) and read answers
 * back on their next tick, so Redis being slow or down never stalls a shard:
 *  - LOOKUP: up to KN_JR_MAX_ITEMS trace ids -> one MGET; the answer comes
 *    back in the same message (found + head per id, or status UNAVAILABLE
 *    when the registry could not answer: not connected, an error reply, the
 *    connection reset).
 *  - WRITE: entries (trace id + head) -> one SET key value PX ttl each,
 *    pipelined (one round trip per message); the client frees the message.
 * Key: key_prefix + the trace id in 32 lowercase hex digits; value:
 * kn_journey_entry (versioned, checked when read).
 *
 * Bounds: at most max_pending ids in messages submitted and not finished
 * (a lookup until its answer is taken, a write until Redis answered it);
 * past it kn_jr_submit refuses (counted, reason max_pending). While the
 * connection is down, writes are dropped (counted, reason unavailable) and
 * lookups answered UNAVAILABLE at once. A round trip longer than `timeout`
 * resets the connection (hiredis 0.14 has no timeouts of its own): every
 * command in flight fails, lookups are answered UNAVAILABLE. Reconnects back
 * off from 50ms to 2s, with jitter.
 *
 * Metrics (processor="<id>"): kansatsu_journey_registry_up,
 * kansatsu_journey_registry_lookups_total{result=hit|miss|error} (per id),
 * kansatsu_journey_registry_writes_total{result=ok|error},
 * kansatsu_journey_registry_dropped_total{op,reason},
 * kansatsu_journey_registry_commands_total{command=MGET|SET},
 * kansatsu_journey_registry_connects_total (attempts),
 * kansatsu_journey_registry_round_trip_seconds (histogram, every command).
 *
 * Threads: kn_jr_submit / kn_jr_answer for shard s only from shard s's
 * worker; kn_jr_kick and kn_jr_up from anywhere; the rest from the owner
 * (the journey processor's start / shutdown / destroy). */
#ifndef KN_JOURNEY_REDIS_H
#define KN_JOURNEY_REDIS_H

#include <stdint.h>

#include "../../collector/core/kn_err.h"
#include "kn_journey.h"
#include "kn_journey_registry.h"

#define KN_JR_MAX_ITEMS 256

enum kn_jr_op { KN_JR_LOOKUP = 1, KN_JR_WRITE = 2 };
enum kn_jr_status { KN_JR_ANSWERED = 0, KN_JR_UNAVAILABLE = 1 };

struct kn_jr_item {
	uint8_t id[16];
	uint8_t found;                  /* LOOKUP answer: head is valid */
	struct kn_journey_head head;    /* WRITE: the entry; LOOKUP: the answer */
};

struct kn_jr_msg {
	uint8_t op;                     /* enum kn_jr_op */
	uint8_t status;                 /* enum kn_jr_status (LOOKUP answers) */
	uint32_t n, cap;
	uint32_t left;                  /* client thread: replies still due */
	uint64_t seq;                   /* the submitter's tag */
	struct kn_jr_item items[];      /* [cap] */
};

struct kn_metrics;
struct kn_jr;

struct kn_jr_msg *kn_jr_msg_new(enum kn_jr_op op, uint32_t cap);
/* Room for one more item: *m as it is, or grown (doubling, at most
 * KN_JR_MAX_ITEMS). 0, or -1 when full at the maximum or out of memory
 * (*m unchanged). A round's message starts small: most rounds carry few ids. */
int kn_jr_msg_room(struct kn_jr_msg **m);
void kn_jr_msg_free(struct kn_jr_msg *m);

/* cfg must outlive the client. Opens nothing. */
struct kn_jr *kn_jr_create(const struct kn_journey_redis_cfg *cfg, uint32_t nshards,
			   struct kn_metrics *metrics, const char *escaped_id, struct kn_err *err);
/* Starts the thread and waits up to `timeout` for the first connection;
 * a registry that cannot be reached is not an error (logged, retried). */
int kn_jr_start(struct kn_jr *c, struct kn_err *err);
/* Sends what was submitted, waits for its replies until deadline_ns, then
 * stops the thread. Safe twice and before start. */
void kn_jr_stop(struct kn_jr *c, uint64_t deadline_ns);
void kn_jr_destroy(struct kn_jr *c);

int kn_jr_up(const struct kn_jr *c);
/* 0: the client owns m now. -1: refused and counted (max_pending, or a
 * write while down); the caller still owns m. */
int kn_jr_submit(struct kn_jr *c, uint32_t shard, struct kn_jr_msg *m);
/* The next answered LOOKUP of this shard (the caller frees it), or NULL. */
struct kn_jr_msg *kn_jr_answer(struct kn_jr *c, uint32_t shard);
/* Wakes the client thread (once per shard round, after submitting). */
void kn_jr_kick(struct kn_jr *c);

/* The Redis key of a trace id: prefix + 32 hex digits; returns its length
 * (out holds at least strlen(prefix) + 33 bytes). */
size_t kn_jr_key(const char *prefix, const uint8_t id[16], char *out);

#endif
