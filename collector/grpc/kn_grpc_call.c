/* SPDX-License-Identifier: Apache-2.0
 * kn_grpc_call: one call slot of the OTLP/gRPC receiver, from the request
 * posted to the completion queue to the answer batch (see kn_grpc_worker.h).
 *
 * Costs per Export call: the payload is handed to the sink without a copy
 * when the library delivers it as one slice (the usual case); otherwise it
 * is gathered into the worker's scratch buffer, which only grows. The
 * answer bodies are packed on the stack; libgrpc allocates its own call
 * state, metadata and a slice or two per call, which we cannot avoid.
 *
 * The request message is received by a batch of our own (the method is
 * registered with GRPC_SRM_PAYLOAD_NONE) rather than with the call
 * (READ_INITIAL_BYTE_BUFFER): when libgrpc refuses a message over
 * max_recv_msg_size_mib, a call whose first message it reads itself is
 * dropped inside the library and never reaches our queue, so nothing could
 * count it. With our own receive, libgrpc 1.51 reports the refusal as a
 * failed GRPC_OP_RECV_MESSAGE (success 0, no message), cancels the call
 * with RESOURCE_EXHAUSTED ("Received message larger than max (N vs. M)")
 * and GRPC_OP_RECV_CLOSE_ON_SERVER says cancelled; the status is not
 * readable on the server side. Measured with a libgrpc client against
 * libgrpc 1.51.1 (test_too_large checks the oversize case): a client that
 * cancels while its message is arriving, and a message flagged gzip that
 * does not inflate, look exactly the same; so, by libgrpc's code, do a
 * broken connection and a stream libgrpc cancels to stay inside its
 * resource quota ("Buffers full"). Such a failure is counted as "too_large"
 * unless the server is stopping (then it is one of the calls shutdown
 * cancels) or the call's deadline has passed ("deadline_exceeded"). The cost: one more batch and completion per call
 * (tests/unit/test_otlp_grpc.c test_cost_per_call prints it). */
#include "kn_grpc_worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "../core/kn_log.h"
#include "../http/kn_decompress.h"

#define DETAILS_BIN_KEY "grpc-status-details-bin"

void kn_grpc_slot_request(struct kn_grpc_slot *sl)
{
	struct kn_grpc_worker *w = sl->w;
	struct kn_otlp_grpc *s = w->srv;
	grpc_call_error e = GRPC_CALL_OK;
	int posted = 0;

	pthread_mutex_lock(&w->mu);
	if (!atomic_load_explicit(&s->stopping, memory_order_acquire) && !w->cq_shut) {
		sl->call = NULL;
		sl->payload = NULL;
		grpc_metadata_array_init(&sl->md);
		if (sl->kind == KN_GRPC_SLOT_EXPORT) {
			e = grpc_server_request_registered_call(s->server, s->export_method,
								&sl->call, &sl->deadline, &sl->md,
								NULL, w->cq, w->cq, sl);
		} else {
			grpc_call_details_init(&sl->details);
			e = grpc_server_request_call(s->server, &sl->call, &sl->details, &sl->md,
						     w->cq, w->cq, sl);
		}
		posted = e == GRPC_CALL_OK;
		sl->state = posted ? KN_GRPC_SLOT_REQUESTED : KN_GRPC_SLOT_IDLE;
	}
	pthread_mutex_unlock(&w->mu);
	if (e != GRPC_CALL_OK) {
		kn_error("%s: requesting a call on thread %u: %s", s->name, w->index,
			 grpc_call_error_to_string(e));
		kn_grpc_slot_release(sl);
	}
}

/* Frees what the request and the answer left in the slot. Idempotent. */
void kn_grpc_slot_release(struct kn_grpc_slot *sl)
{
	if (sl->payload) {
		grpc_byte_buffer_destroy(sl->payload);
		sl->payload = NULL;
	}
	if (sl->resp) {
		grpc_byte_buffer_destroy(sl->resp);
		sl->resp = NULL;
	}
	grpc_slice_unref(sl->status_msg);
	sl->status_msg = grpc_empty_slice();
	if (sl->has_trailer) {
		grpc_slice_unref(sl->trailer.value);
		sl->has_trailer = 0;
	}
	/* init'ed arrays are zeroed after destroy, so a second destroy is a no-op */
	grpc_metadata_array_destroy(&sl->md);
	grpc_metadata_array_init(&sl->md);
	if (sl->kind == KN_GRPC_SLOT_UNKNOWN) {
		grpc_call_details_destroy(&sl->details);
		grpc_call_details_init(&sl->details);
	}
	if (sl->call) {
		grpc_call_unref(sl->call);
		sl->call = NULL;
	}
	sl->cancelled = 0;
	sl->state = KN_GRPC_SLOT_IDLE;
}

static void tracectx_from_md(const grpc_metadata_array *md, struct kn_tracectx *tc)
{
	const char *tp = NULL, *ts = NULL;
	size_t tp_len = 0, ts_len = 0;

	for (size_t i = 0; i < md->count; i++) {
		const grpc_metadata *m = &md->metadata[i];
		if (grpc_slice_str_cmp(m->key, "traceparent") == 0) {
			tp = (const char *)GRPC_SLICE_START_PTR(m->value);
			tp_len = GRPC_SLICE_LENGTH(m->value);
		} else if (grpc_slice_str_cmp(m->key, "tracestate") == 0) {
			ts = (const char *)GRPC_SLICE_START_PTR(m->value);
			ts_len = GRPC_SLICE_LENGTH(m->value);
		}
	}
	kn_tracectx_set(tc, tp, tp_len, ts, ts_len);
}

static int ensure_scratch(struct kn_grpc_worker *w, size_t need)
{
	if (need <= w->scratch_cap)
		return 0;
	size_t cap = w->scratch_cap ? w->scratch_cap : 64 * 1024;
	while (cap < need)
		cap *= 2;
	uint8_t *p = realloc(w->scratch, cap);
	if (!p)
		return -1;
	w->scratch = p;
	w->scratch_cap = cap;
	return 0;
}

/* A message flagged compressed (grpc-encoding gzip): libgrpc's own
 * decompression is off (kn_otlp_grpc.c), because libgrpc 1.51 inflates a
 * message whole before it compares its size with max_recv_msg_size_mib (a
 * 1 MiB gzip bomb cost 1.1 GB of RSS), and so would
 * grpc_byte_buffer_reader_init. The compressed slices are gathered (in place
 * when there is one) and inflated by kn_decompress, which stops at
 * max_recv_msg_size_mib. Returns the sink's code; KN_TOO_LARGE_MSG when the
 * output would pass the limit; KN_INVALID for a body that does not inflate. */
#define KN_TOO_LARGE_MSG 100
static int ingest_compressed(struct kn_grpc_slot *sl, const struct kn_tracectx *tc,
			     struct kn_ingest_result *res)
{
	struct kn_grpc_worker *w = sl->w;
	struct kn_otlp_grpc *s = w->srv;
	const grpc_slice_buffer *sb = &sl->payload->data.raw.slice_buffer;
	const uint8_t *in = (const uint8_t *)"";
	size_t in_len = 0, out_len = 0;
	uint8_t *out = NULL;
	enum kn_encoding enc = KN_ENC_UNKNOWN;
	enum kn_decomp_rc drc;
	int rc;

	if (sl->payload->data.raw.compression == GRPC_COMPRESS_GZIP)
		enc = KN_ENC_GZIP;
	if (enc == KN_ENC_UNKNOWN) { /* the channel enables gzip alone; kept as a guard */
		snprintf(res->message, sizeof res->message,
			 "request message: grpc-encoding not supported (gzip or identity)");
		return KN_INVALID;
	}
	if (sb->count == 1) {
		in = GRPC_SLICE_START_PTR(sb->slices[0]);
		in_len = GRPC_SLICE_LENGTH(sb->slices[0]);
	} else if (sb->count > 1) {
		if (ensure_scratch(w, sb->length) != 0) {
			snprintf(res->message, sizeof res->message,
				 "request message: out of memory (%zu bytes)", sb->length);
			return KN_ERR;
		}
		for (size_t i = 0; i < sb->count; i++) {
			size_t n = GRPC_SLICE_LENGTH(sb->slices[i]);
			if (in_len + n > sb->length) /* cannot happen; guards the copy */
				break;
			memcpy(w->scratch + in_len, GRPC_SLICE_START_PTR(sb->slices[i]), n);
			in_len += n;
		}
		in = w->scratch;
		atomic_fetch_add_explicit(&s->st.payload_copies, 1, memory_order_relaxed);
	}
	drc = kn_decompress(enc, in, in_len, s->max_recv, &out, &out_len, NULL);
	switch (drc) {
	case KN_DECOMP_OK:
		break;
	case KN_DECOMP_TOO_LARGE:
		snprintf(res->message, sizeof res->message,
			 "request message larger than max_recv_msg_size_mib (%zu bytes) after gzip decompression",
			 s->max_recv);
		return KN_TOO_LARGE_MSG;
	case KN_DECOMP_CORRUPT:
		snprintf(res->message, sizeof res->message,
			 "request message: gzip data is corrupt or truncated");
		return KN_INVALID;
	default:
		snprintf(res->message, sizeof res->message,
			 "request message: out of memory decompressing");
		return KN_ERR;
	}
	atomic_fetch_add_explicit(&s->st.decompressed, 1, memory_order_relaxed);
	rc = s->sink.ingest(s->sink.ctx, w->index, out ? out : (const uint8_t *)"", out_len, tc, res);
	free(out);
	return rc;
}

/* Runs the sink on the payload: in place when it is one slice, else copied
 * into scratch. Returns the sink's code, or KN_ERR with res->message set. */
static int ingest_payload(struct kn_grpc_slot *sl, const struct kn_tracectx *tc,
			  struct kn_ingest_result *res)
{
	struct kn_grpc_worker *w = sl->w;
	struct kn_otlp_grpc *s = w->srv;
	grpc_byte_buffer_reader r;
	grpc_slice *first = NULL, *next = NULL;
	const uint8_t *body = (const uint8_t *)"";
	size_t len = 0;
	int rc;

	if (sl->payload->type == GRPC_BB_RAW && sl->payload->data.raw.compression != GRPC_COMPRESS_NONE)
		return ingest_compressed(sl, tc, res);
	if (!grpc_byte_buffer_reader_init(&r, sl->payload)) {
		snprintf(res->message, sizeof res->message, "request message: cannot be read");
		return KN_ERR;
	}
	if (grpc_byte_buffer_reader_peek(&r, &first)) {
		if (!grpc_byte_buffer_reader_peek(&r, &next)) {
			body = GRPC_SLICE_START_PTR(*first);
			len = GRPC_SLICE_LENGTH(*first);
		} else {
			size_t total = grpc_byte_buffer_length(sl->payload);
			if (ensure_scratch(w, total) != 0) {
				grpc_byte_buffer_reader_destroy(&r);
				snprintf(res->message, sizeof res->message,
					 "request message: out of memory (%zu bytes)", total);
				return KN_ERR;
			}
			memcpy(w->scratch, GRPC_SLICE_START_PTR(*first), GRPC_SLICE_LENGTH(*first));
			len = GRPC_SLICE_LENGTH(*first);
			do {
				size_t n = GRPC_SLICE_LENGTH(*next);
				if (len + n > total) /* cannot happen; guards the copy */
					break;
				memcpy(w->scratch + len, GRPC_SLICE_START_PTR(*next), n);
				len += n;
			} while (grpc_byte_buffer_reader_peek(&r, &next));
			body = w->scratch;
			atomic_fetch_add_explicit(&s->st.payload_copies, 1, memory_order_relaxed);
		}
	}
	rc = s->sink.ingest(s->sink.ctx, w->index, body, len, tc, res);
	grpc_byte_buffer_reader_destroy(&r);
	return rc;
}

static int deadline_passed(gpr_timespec deadline)
{
	if (deadline.clock_type == GPR_TIMESPAN)
		return 0;
	return gpr_time_cmp(deadline, gpr_now(deadline.clock_type)) < 0;
}

/* Fills the ops of an Export answer; returns their count. */
static size_t answer_export(struct kn_grpc_slot *sl, grpc_op *ops, grpc_status_code *code)
{
	struct kn_grpc_worker *w = sl->w;
	struct kn_otlp_grpc *s = w->srv;
	struct kn_ingest_result res;
	struct kn_tracectx tc;
	uint8_t buf[KN_GRPC_REPLY_BUF];
	const char *msg = "";
	size_t n = 0, blen;
	int rc;

	memset(&res, 0, sizeof res);
	if (!sl->payload) {
		/* the client half-closed without a message */
		s->sink.refused(s->sink.ctx, w->index, "decode_error");
		*code = GRPC_STATUS_INVALID_ARGUMENT;
		msg = "ExportTraceServiceRequest: missing request message";
	} else if (deadline_passed(sl->deadline)) {
		/* the client has given up; accepting now would only duplicate its retry */
		s->sink.refused(s->sink.ctx, w->index, "deadline_exceeded");
		*code = GRPC_STATUS_DEADLINE_EXCEEDED;
		msg = "deadline exceeded before the request was processed";
	} else {
		tracectx_from_md(&sl->md, &tc);
		rc = ingest_payload(sl, &tc, &res);
		res.message[sizeof res.message - 1] = '\0';
		msg = res.message;
		switch (rc) {
		case KN_OK:
			*code = GRPC_STATUS_OK;
			break;
		case KN_TOO_LARGE_MSG:
			*code = GRPC_STATUS_RESOURCE_EXHAUSTED;
			atomic_fetch_add_explicit(&s->st.too_large, 1, memory_order_relaxed);
			s->sink.refused(s->sink.ctx, w->index, "too_large");
			break;
		case KN_INVALID:
			*code = GRPC_STATUS_INVALID_ARGUMENT;
			if (!msg[0])
				msg = "ExportTraceServiceRequest: invalid";
			break;
		case KN_AGAIN:
			*code = GRPC_STATUS_UNAVAILABLE;
			if (!msg[0])
				msg = "pipeline is full, retry later";
			break;
		default:
			*code = GRPC_STATUS_INTERNAL;
			if (!msg[0])
				msg = "internal error";
			break;
		}
	}

	ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
	n++;
	if (*code == GRPC_STATUS_OK) {
		blen = kn_grpc_reply_export_response(buf, res.rejected,
						     res.rejected ? res.message : "");
		grpc_slice sl_body = grpc_slice_from_copied_buffer((const char *)buf, blen);
		sl->resp = grpc_raw_byte_buffer_create(&sl_body, 1);
		grpc_slice_unref(sl_body);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = sl->resp;
		n++;
		msg = "";
	} else if (*code == GRPC_STATUS_UNAVAILABLE) {
		int64_t delay = res.retry_after_ms ? (int64_t)res.retry_after_ms : 1000;
		blen = kn_grpc_reply_retry_status(buf, GRPC_STATUS_UNAVAILABLE, msg, delay);
		sl->trailer.key = grpc_slice_from_static_string(DETAILS_BIN_KEY);
		sl->trailer.value = grpc_slice_from_copied_buffer((const char *)buf, blen);
		sl->has_trailer = 1;
	}
	sl->status_msg = grpc_slice_from_copied_string(msg);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = *code;
	ops[n].data.send_status_from_server.status_details = &sl->status_msg;
	ops[n].data.send_status_from_server.trailing_metadata_count = sl->has_trailer ? 1 : 0;
	ops[n].data.send_status_from_server.trailing_metadata = sl->has_trailer ? &sl->trailer : NULL;
	n++;
	return n;
}

static size_t answer_unknown(struct kn_grpc_slot *sl, grpc_op *ops)
{
	struct kn_grpc_worker *w = sl->w;
	struct kn_otlp_grpc *s = w->srv;
	char msg[300];
	size_t n = 0;
	int mlen = (int)GRPC_SLICE_LENGTH(sl->details.method);

	s->sink.refused(s->sink.ctx, w->index, "unimplemented");
	snprintf(msg, sizeof msg, "unknown method %.*s", mlen > 200 ? 200 : mlen,
		 (const char *)GRPC_SLICE_START_PTR(sl->details.method));
	sl->status_msg = grpc_slice_from_copied_string(msg);
	ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
	n++;
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
	ops[n].data.send_status_from_server.status_details = &sl->status_msg;
	n++;
	return n;
}

static void count_answer(struct kn_otlp_grpc *s, enum kn_grpc_slot_kind kind, grpc_status_code code)
{
	if (kind == KN_GRPC_SLOT_UNKNOWN) {
		atomic_fetch_add_explicit(&s->st.unimplemented, 1, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&s->st.calls, 1, memory_order_relaxed);
	switch (code) {
	case GRPC_STATUS_OK:
		atomic_fetch_add_explicit(&s->st.ok, 1, memory_order_relaxed);
		break;
	case GRPC_STATUS_INVALID_ARGUMENT:
		atomic_fetch_add_explicit(&s->st.invalid, 1, memory_order_relaxed);
		break;
	case GRPC_STATUS_UNAVAILABLE:
		atomic_fetch_add_explicit(&s->st.unavailable, 1, memory_order_relaxed);
		break;
	case GRPC_STATUS_RESOURCE_EXHAUSTED: /* counted as too_large where it was found */
		break;
	default:
		atomic_fetch_add_explicit(&s->st.internal, 1, memory_order_relaxed);
		break;
	}
}

static void on_arrival(struct kn_grpc_slot *sl)
{
	grpc_op ops[5];
	grpc_status_code code = GRPC_STATUS_UNIMPLEMENTED;
	size_t n;
	grpc_call_error e;

	memset(ops, 0, sizeof ops);
	if (sl->kind == KN_GRPC_SLOT_EXPORT)
		n = answer_export(sl, ops, &code);
	else
		n = answer_unknown(sl, ops);
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n].data.recv_close_on_server.cancelled = &sl->cancelled;
	n++;
	count_answer(sl->w->srv, sl->kind, code);
	/* After cancel_all_calls the server's shutdown can complete (and our
	 * queue be shut) while the sink still held this call: then the answer
	 * has nowhere to go and the call is only released. */
	pthread_mutex_lock(&sl->w->mu);
	if (sl->w->cq_shut) {
		pthread_mutex_unlock(&sl->w->mu);
		atomic_fetch_add_explicit(&sl->w->srv->st.cancelled, 1, memory_order_relaxed);
		kn_grpc_slot_release(sl);
		return;
	}
	e = grpc_call_start_batch(sl->call, ops, n, sl, NULL);
	pthread_mutex_unlock(&sl->w->mu);
	if (e == GRPC_CALL_OK) {
		sl->state = KN_GRPC_SLOT_ANSWERING;
		return;
	}
	kn_error("%s: answering a call: %s", sl->w->srv->name, grpc_call_error_to_string(e));
	kn_grpc_slot_release(sl);
	kn_grpc_slot_request(sl);
}

/* Starts a batch on the slot's call unless its queue is shut (after
 * cancel_all_calls, see on_arrival): GRPC_CALL_OK, or -1 when shut and the
 * slot was released. */
static int start_batch(struct kn_grpc_slot *sl, const grpc_op *ops, size_t n)
{
	grpc_call_error e;
	pthread_mutex_lock(&sl->w->mu);
	if (sl->w->cq_shut) {
		pthread_mutex_unlock(&sl->w->mu);
		atomic_fetch_add_explicit(&sl->w->srv->st.cancelled, 1, memory_order_relaxed);
		kn_grpc_slot_release(sl);
		return -1;
	}
	e = grpc_call_start_batch(sl->call, ops, n, sl, NULL);
	pthread_mutex_unlock(&sl->w->mu);
	return (int)e;
}

/* An Export call arrived (its metadata): receive its message. */
static void start_receive(struct kn_grpc_slot *sl)
{
	grpc_op op;
	int e;

	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &sl->payload;
	e = start_batch(sl, &op, 1);
	if (e < 0)
		return;
	if (e == GRPC_CALL_OK) {
		sl->state = KN_GRPC_SLOT_RECEIVING;
		return;
	}
	kn_error("%s: receiving a message: %s", sl->w->srv->name,
		 grpc_call_error_to_string((grpc_call_error)e));
	kn_grpc_slot_release(sl);
	kn_grpc_slot_request(sl);
}

/* The message did not arrive: libgrpc refused it (over max_recv_msg_size_mib,
 * the call is already cancelled with RESOURCE_EXHAUSTED) or the call broke
 * while it was arriving (see the top of the file). The call is closed; the
 * status we send only matters if libgrpc has not answered already. */
static void on_receive_failed(struct kn_grpc_slot *sl)
{
	struct kn_grpc_worker *w = sl->w;
	struct kn_otlp_grpc *s = w->srv;
	grpc_status_code code = GRPC_STATUS_RESOURCE_EXHAUSTED;
	const char *msg = "request message larger than max_recv_msg_size_mib";
	grpc_op ops[3];
	int e;

	if (atomic_load_explicit(&s->stopping, memory_order_acquire)) {
		code = GRPC_STATUS_UNAVAILABLE;
		msg = "the collector is shutting down"; /* counted as cancelled when it completes */
	} else if (deadline_passed(sl->deadline)) {
		s->sink.refused(s->sink.ctx, w->index, "deadline_exceeded");
		code = GRPC_STATUS_DEADLINE_EXCEEDED;
		msg = "deadline exceeded while the request was arriving";
		atomic_fetch_add_explicit(&s->st.calls, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->st.internal, 1, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&s->st.calls, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->st.too_large, 1, memory_order_relaxed);
		s->sink.refused(s->sink.ctx, w->index, "too_large");
	}
	memset(ops, 0, sizeof ops);
	sl->status_msg = grpc_slice_from_copied_string(msg);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[1].data.send_status_from_server.status = code;
	ops[1].data.send_status_from_server.status_details = &sl->status_msg;
	ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[2].data.recv_close_on_server.cancelled = &sl->cancelled;
	e = start_batch(sl, ops, 3);
	if (e < 0)
		return;
	if (e == GRPC_CALL_OK) {
		sl->state = KN_GRPC_SLOT_ANSWERING;
		return;
	}
	kn_error("%s: closing a call: %s", s->name, grpc_call_error_to_string((grpc_call_error)e));
	kn_grpc_slot_release(sl);
	kn_grpc_slot_request(sl);
}

/* Metadata lookup for an authenticator (libgrpc gives keys in lowercase). */
static const char *md_get(void *ctx, const char *name, size_t *len)
{
	const grpc_metadata_array *md = ctx;
	for (size_t i = 0; i < md->count; i++)
		if (grpc_slice_str_cmp(md->metadata[i].key, name) == 0) {
			*len = GRPC_SLICE_LENGTH(md->metadata[i].value);
			return (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value);
		}
	return NULL;
}

/* opts.auth, on an Export call's metadata before its message is received:
 * returns 0 when the call may go on, else 1 after answering UNAUTHENTICATED
 * (the message says why, never what the credentials were). */
static int refused_unauthenticated(struct kn_grpc_slot *sl)
{
	struct kn_grpc_worker *w = sl->w;
	struct kn_otlp_grpc *s = w->srv;
	if (!s->opts.auth)
		return 0;
	struct kn_auth_headers h = {.get = md_get, .ctx = &sl->md};
	enum kn_auth_verdict v = s->opts.auth->authenticate(s->opts.auth_inst, &h);
	if (v == KN_AUTH_OK)
		return 0;
	s->sink.refused(s->sink.ctx, w->index, "unauthenticated");
	atomic_fetch_add_explicit(&s->st.calls, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->st.unauthenticated, 1, memory_order_relaxed);
	const char *msg = v == KN_AUTH_MISSING	 ? "authentication required: the call carries no credentials"
			  : v == KN_AUTH_MALFORMED ? "authentication failed: malformed credentials (scheme or encoding)"
						   : "authentication failed: the credentials are not valid";
	grpc_op ops[3];
	memset(ops, 0, sizeof ops);
	sl->status_msg = grpc_slice_from_static_string(msg);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[1].data.send_status_from_server.status = GRPC_STATUS_UNAUTHENTICATED;
	ops[1].data.send_status_from_server.status_details = &sl->status_msg;
	ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[2].data.recv_close_on_server.cancelled = &sl->cancelled;
	int e = start_batch(sl, ops, 3);
	if (e < 0)
		return 1;
	if (e == GRPC_CALL_OK) {
		sl->state = KN_GRPC_SLOT_ANSWERING;
		return 1;
	}
	kn_error("%s: refusing a call: %s", s->name, grpc_call_error_to_string((grpc_call_error)e));
	kn_grpc_slot_release(sl);
	kn_grpc_slot_request(sl);
	return 1;
}

void kn_grpc_slot_on_event(struct kn_grpc_slot *sl, int success)
{
	switch (sl->state) {
	case KN_GRPC_SLOT_REQUESTED:
		if (!success) {
			/* the server is shutting down: the request is withdrawn */
			kn_grpc_slot_release(sl);
			return;
		}
		if (sl->kind == KN_GRPC_SLOT_EXPORT) {
			if (!refused_unauthenticated(sl))
				start_receive(sl);
		} else {
			on_arrival(sl);
		}
		return;
	case KN_GRPC_SLOT_RECEIVING:
		/* success with no message: the client half-closed without one
		 * (answer_export says INVALID_ARGUMENT) */
		if (success)
			on_arrival(sl);
		else
			on_receive_failed(sl);
		return;
	case KN_GRPC_SLOT_ANSWERING:
		if (sl->cancelled || !success)
			atomic_fetch_add_explicit(&sl->w->srv->st.cancelled, 1,
						  memory_order_relaxed);
		kn_grpc_slot_release(sl);
		kn_grpc_slot_request(sl);
		return;
	case KN_GRPC_SLOT_IDLE:
		break;
	}
	kn_error("%s: completion for an idle call slot", sl->w->srv->name);
}
