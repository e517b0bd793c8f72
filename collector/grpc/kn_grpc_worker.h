/* SPDX-License-Identifier: Apache-2.0
 * kn_grpc_worker: internals of the OTLP/gRPC receiver shared by its files.
 *
 * A worker is one serving thread with one completion queue and a fixed
 * array of call slots. A slot is one outstanding grpc_server_request_* plus,
 * once a call arrives, its receive and answer batches; the slot pointer is
 * the completion-queue tag. States: IDLE -> REQUESTED -> RECEIVING (Export
 * calls: the request message) -> ANSWERING -> (re-request) REQUESTED ...
 * A slot is touched only by its worker thread (the thread that polls its
 * queue), so slots need no locks. The worker mutex only orders
 * "re-request unless stopping" against the completion queue's shutdown. */
#ifndef KN_GRPC_WORKER_H
#define KN_GRPC_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "../core/kn_ingest.h"
#include "../core/kn_tracectx.h"
#include "kn_grpc_reply.h"
#include "kn_otlp_grpc.h"

enum kn_grpc_slot_kind { KN_GRPC_SLOT_EXPORT, KN_GRPC_SLOT_UNKNOWN };
enum kn_grpc_slot_state {
	KN_GRPC_SLOT_IDLE,
	KN_GRPC_SLOT_REQUESTED,
	KN_GRPC_SLOT_RECEIVING,
	KN_GRPC_SLOT_ANSWERING,
};

struct kn_grpc_worker;

struct kn_grpc_slot {
	struct kn_grpc_worker *w;
	enum kn_grpc_slot_kind kind;
	enum kn_grpc_slot_state state;
	/* filled by the request */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_call_details details;     /* KN_GRPC_SLOT_UNKNOWN only */
	grpc_byte_buffer *payload;
	/* the answer; owned until its batch completes */
	grpc_byte_buffer *resp;
	grpc_slice status_msg;
	grpc_metadata trailer;          /* grpc-status-details-bin */
	int has_trailer;
	int cancelled;
};

struct kn_grpc_worker {
	struct kn_otlp_grpc *srv;
	uint32_t index;                 /* = the sink's thread index */
	grpc_completion_queue *cq;
	pthread_t thread;
	int thread_started;
	pthread_mutex_t mu;             /* see the top comment */
	int mu_inited;
	int cq_shut;                    /* under mu */
	struct kn_grpc_slot *slots;
	uint32_t nslots;
	uint8_t *scratch;               /* reassembly of multi-slice payloads */
	size_t scratch_cap;
};

struct kn_otlp_grpc {
	struct kn_otlp_grpc_opts opts;  /* defaults applied; strings point below */
	char *endpoint, *name;
	size_t max_recv;                /* bytes */
	struct kn_ingest_sink sink;
	int grpc_inited, started, server_started, shut_down;
	atomic_int stopping;
	grpc_server *server;
	void *export_method;
	grpc_completion_queue *shutdown_cq;
	grpc_resource_quota *quota;     /* libgrpc's buffers (NULL = unbounded); see start */
	size_t quota_bytes;
	struct kn_grpc_worker *workers;
	uint32_t nworkers;
	uint16_t port;
	struct {
		atomic_uint_fast64_t calls, ok, invalid, unavailable, internal, unimplemented,
			cancelled, payload_copies, too_large, decompressed;
		atomic_uint_fast64_t unauthenticated;
	} st;
};

/* Posts the slot's request (registered Export or any unknown method) unless
 * the server is stopping; on failure the slot stays IDLE. Worker thread or
 * start() before the thread runs. */
void kn_grpc_slot_request(struct kn_grpc_slot *sl);
/* Handles one completion of the slot's tag on its worker thread. */
void kn_grpc_slot_on_event(struct kn_grpc_slot *sl, int success);
/* Releases what a slot still holds (after its queue is drained). */
void kn_grpc_slot_release(struct kn_grpc_slot *sl);

#endif
