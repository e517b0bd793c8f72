/* SPDX-License-Identifier: Apache-2.0
 * kn_otlp_grpc: lifecycle of the OTLP/gRPC receiver (see kn_otlp_grpc.h):
 * options, libgrpc server setup, serving threads and shutdown.
 *
 * Shutdown order (as grpc++ does it): mark stopping (no slot re-requests),
 * grpc_server_shutdown_and_notify on a private queue, wait for its tag until
 * the deadline, then grpc_server_cancel_all_calls and wait again; then shut
 * each worker queue under the worker mutex, let the thread drain it and exit,
 * join, destroy the queues and the server. */
#include "kn_otlp_grpc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "../core/kn_budget.h"
#include "../core/kn_clock.h"
#include "../core/kn_log.h"
#include "kn_grpc_tls.h"
#include "kn_grpc_worker.h"

#define DEFAULT_NAME "otlp/grpc"
#define DEFAULT_MAX_RECV_MIB 4u
#define DEFAULT_THREADS 2u
#define DEFAULT_CALLS_PER_THREAD 16u
#define MAX_THREADS 256u
#define MAX_CALLS_PER_THREAD 1024u
#define MAX_RECV_MIB 2047u /* the channel arg is an int of bytes */
#define QUOTA_SLACK ((size_t)4 << 20)

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

/* "host:port" with a decimal port 0..65535; IPv6 hosts in brackets. */
static int check_endpoint(const char *ep, struct kn_err *err)
{
	const char *colon = strrchr(ep, ':');
	char *end = NULL;
	long port;

	if (!colon || colon == ep)
		return kn_errf(err, "endpoint: \"%s\" is not host:port", ep);
	if (ep[0] == '[' && colon[-1] != ']')
		return kn_errf(err, "endpoint: \"%s\": IPv6 host needs [brackets] before :port", ep);
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno || port < 0 || port > 65535)
		return kn_errf(err, "endpoint: \"%s\": port must be 0..65535", ep);
	return KN_OK;
}

struct kn_otlp_grpc *kn_otlp_grpc_create(const struct kn_otlp_grpc_opts *opts,
					 struct kn_ingest_sink sink, struct kn_err *err)
{
	struct kn_otlp_grpc *s = NULL;
	struct kn_otlp_grpc_opts o;

	if (opts)
		o = *opts;
	else
		memset(&o, 0, sizeof o);
	if (!o.endpoint || !o.endpoint[0])
		o.endpoint = KN_OTLP_GRPC_DEFAULT_ENDPOINT;
	if (!o.name || !o.name[0])
		o.name = DEFAULT_NAME;
	if (!o.max_recv_msg_size_mib)
		o.max_recv_msg_size_mib = DEFAULT_MAX_RECV_MIB;
	if (!o.threads)
		o.threads = DEFAULT_THREADS;
	if (!o.calls_per_thread)
		o.calls_per_thread = DEFAULT_CALLS_PER_THREAD;

	if (!sink.ingest || !sink.refused) {
		kn_errf(err, "%s: sink: ingest and refused callbacks are required", o.name);
		goto fail;
	}
	if (check_endpoint(o.endpoint, err) != KN_OK)
		goto fail;
	if (o.max_recv_msg_size_mib > MAX_RECV_MIB) {
		kn_errf(err, "max_recv_msg_size_mib: %u is over the limit of %u",
			o.max_recv_msg_size_mib, MAX_RECV_MIB);
		goto fail;
	}
	if (o.threads > MAX_THREADS) {
		kn_errf(err, "threads: %u is over the limit of %u", o.threads, MAX_THREADS);
		goto fail;
	}
	if (o.calls_per_thread > MAX_CALLS_PER_THREAD) {
		kn_errf(err, "calls_per_thread: %u is over the limit of %u", o.calls_per_thread,
			MAX_CALLS_PER_THREAD);
		goto fail;
	}
	if (o.max_concurrent_streams > INT32_MAX || o.keepalive_time_ms > INT32_MAX ||
	    o.keepalive_timeout_ms > INT32_MAX || o.max_connection_idle_ms > INT32_MAX ||
	    o.max_connection_age_ms > INT32_MAX || o.max_connection_age_grace_ms > INT32_MAX ||
	    o.keepalive_min_time_ms > INT32_MAX) {
		kn_errf(err, "keepalive / max_concurrent_streams: value over %d", INT32_MAX);
		goto fail;
	}
	/* here and not only at start, so that `kansatsu validate` reports it too
	 * (start checks the files again: they may have changed since) */
	if (o.tls && (kn_grpc_tls_check_cfg(o.tls, err) != KN_OK ||
		      kn_tls_server_check_files(o.tls, "tls", err) != KN_OK))
		goto fail;

	s = calloc(1, sizeof *s);
	if (!s) {
		kn_errf(err, "%s: out of memory", o.name);
		goto fail;
	}
	s->endpoint = dup_str(o.endpoint);
	s->name = dup_str(o.name);
	if (!s->endpoint || !s->name) {
		kn_errf(err, "%s: out of memory", o.name);
		goto fail;
	}
	o.endpoint = s->endpoint;
	o.name = s->name;
	s->opts = o;
	s->max_recv = (size_t)o.max_recv_msg_size_mib * 1024u * 1024u;
	s->sink = sink;
	atomic_init(&s->stopping, 0);
	grpc_init();
	s->grpc_inited = 1;
	return s;
fail:
	kn_otlp_grpc_destroy(s);
	return NULL;
}

static void *worker_main(void *arg)
{
	struct kn_grpc_worker *w = arg;

	for (;;) {
		grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
							   NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_OP_COMPLETE)
			kn_grpc_slot_on_event(ev.tag, ev.success);
	}
	return NULL;
}

static void add_int_arg(grpc_arg *args, size_t *n, const char *key, uint32_t v)
{
	if (!v)
		return;
	args[*n].type = GRPC_ARG_INTEGER;
	args[*n].key = (char *)key;
	args[*n].value.integer = (int)v;
	(*n)++;
}

/* libgrpc's resource quota, in bytes (0 = none). Without one, libgrpc's
 * buffers (transport reads, every message being received: up to
 * max_recv_msg_size_mib per call in flight, and an oversize message whole
 * before it is refused) are outside kansatsu.memory_limit_mib.
 *
 * The share: the limit's headroom (limit/8, at least 16 MiB; kn_budget.h)
 * holds what lives outside the span budget, and half of it bounds request
 * bytes held before ingest (kn_budget_req_limit, which the HTTP receiver
 * charges its bodies to). libgrpc's buffers are the gRPC side of the same
 * thing, so the quota gets the same share: a collector fed over one
 * protocol (the usual case) keeps its request bytes inside the headroom; fed
 * over both at full pressure, request bytes may take the whole headroom.
 * kn_runtime sets that bound before receivers start and it depends only on
 * the limit, so the final split at the end of start (which measures the
 * base) leaves it, and the quota, unchanged: no resize is needed.
 *
 * The floor: libgrpc keeps inside its quota by shrinking flow-control
 * windows first and then cancelling streams ("Buffers full",
 * RESOURCE_EXHAUSTED), so a quota smaller than one legal message received
 * and inflated (2 x max_recv) plus transport slack would refuse legal
 * requests; the floor wins over the share then (max_recv_msg_size_mib is
 * the user's explicit choice). */
static size_t quota_bytes(const struct kn_otlp_grpc *s)
{
	size_t share = kn_budget_req_limit();
	size_t floor = 2 * s->max_recv + QUOTA_SLACK;
	if (!share)
		return 0;
	return share > floor ? share : floor;
}

static int workers_create(struct kn_otlp_grpc *s, struct kn_err *err)
{
	s->workers = calloc(s->opts.threads, sizeof *s->workers);
	if (!s->workers)
		return kn_errf(err, "%s: out of memory", s->name);
	s->nworkers = s->opts.threads;
	for (uint32_t i = 0; i < s->nworkers; i++) {
		struct kn_grpc_worker *w = &s->workers[i];
		w->srv = s;
		w->index = i;
		if (pthread_mutex_init(&w->mu, NULL) != 0)
			return kn_errf(err, "%s: pthread_mutex_init failed", s->name);
		w->mu_inited = 1;
		w->nslots = s->opts.calls_per_thread + 1; /* + one for unknown methods */
		w->slots = calloc(w->nslots, sizeof *w->slots);
		if (!w->slots)
			return kn_errf(err, "%s: out of memory", s->name);
		for (uint32_t k = 0; k < w->nslots; k++) {
			struct kn_grpc_slot *sl = &w->slots[k];
			sl->w = w;
			sl->kind = k + 1 == w->nslots ? KN_GRPC_SLOT_UNKNOWN : KN_GRPC_SLOT_EXPORT;
			sl->state = KN_GRPC_SLOT_IDLE;
			sl->status_msg = grpc_empty_slice();
			grpc_metadata_array_init(&sl->md);
			grpc_call_details_init(&sl->details);
		}
		w->cq = grpc_completion_queue_create_for_next(NULL);
		if (!w->cq)
			return kn_errf(err, "%s: cannot create a completion queue", s->name);
		grpc_server_register_completion_queue(s->server, w->cq, NULL);
	}
	return KN_OK;
}

static void log_listening(const struct kn_otlp_grpc *s)
{
	const char *colon = strrchr(s->endpoint, ':');
	int hlen = (int)(colon - s->endpoint);

	kn_log_event("listening %s %.*s:%u", s->name, hlen, s->endpoint, (unsigned)s->port);
}

int kn_otlp_grpc_start(struct kn_otlp_grpc *s, struct kn_err *err)
{
	grpc_arg args[16];
	size_t nargs = 0;
	grpc_channel_args cargs;
	grpc_server_credentials *creds = NULL;
	int port;

	if (!s)
		return kn_errf(err, "otlp/grpc: start without a server");
	if (s->started)
		return kn_errf(err, "%s: already started", s->name);
	s->started = 1;
	/* before anything is built: a bad file is a start error naming its key */
	if (s->opts.tls && kn_tls_server_check_files(s->opts.tls, "tls", err) != KN_OK)
		return KN_ERR;

	add_int_arg(args, &nargs, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, (uint32_t)s->max_recv);
	add_int_arg(args, &nargs, GRPC_ARG_MAX_CONCURRENT_STREAMS, s->opts.max_concurrent_streams);
	add_int_arg(args, &nargs, GRPC_ARG_KEEPALIVE_TIME_MS, s->opts.keepalive_time_ms);
	add_int_arg(args, &nargs, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, s->opts.keepalive_timeout_ms);
	add_int_arg(args, &nargs, GRPC_ARG_MAX_CONNECTION_IDLE_MS, s->opts.max_connection_idle_ms);
	add_int_arg(args, &nargs, GRPC_ARG_MAX_CONNECTION_AGE_MS, s->opts.max_connection_age_ms);
	add_int_arg(args, &nargs, GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
		    s->opts.max_connection_age_grace_ms);
	add_int_arg(args, &nargs, GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
		    s->opts.keepalive_min_time_ms);
	add_int_arg(args, &nargs, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
		    s->opts.keepalive_permit_without_stream ? 1u : 0u);
	/* libgrpc sets SO_REUSEPORT by default: a second collector on the same
	 * port would then silently take half the connections instead of failing */
	args[nargs].type = GRPC_ARG_INTEGER;
	args[nargs].key = (char *)GRPC_ARG_ALLOW_REUSEPORT;
	args[nargs].value.integer = 0;
	nargs++;
	/* gzip is inflated by kn_grpc_call.c with a bound on the output (libgrpc
	 * 1.51 inflates whole messages first); deflate is not offered at all */
	args[nargs].type = GRPC_ARG_INTEGER;
	args[nargs].key = (char *)GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION;
	args[nargs].value.integer = 0;
	nargs++;
	args[nargs].type = GRPC_ARG_INTEGER;
	args[nargs].key = (char *)GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET;
	args[nargs].value.integer = (1 << GRPC_COMPRESS_NONE) | (1 << GRPC_COMPRESS_GZIP);
	nargs++;
	s->quota_bytes = quota_bytes(s);
	if (s->quota_bytes) {
		/* the server's channel args take their own reference */
		s->quota = grpc_resource_quota_create(s->name);
		grpc_resource_quota_resize(s->quota, s->quota_bytes);
		args[nargs].type = GRPC_ARG_POINTER;
		args[nargs].key = (char *)GRPC_ARG_RESOURCE_QUOTA;
		args[nargs].value.pointer.p = s->quota;
		args[nargs].value.pointer.vtable = grpc_resource_quota_arg_vtable();
		nargs++;
	}
	cargs.num_args = nargs;
	cargs.args = args;

	s->server = grpc_server_create(&cargs, NULL);
	if (!s->server) {
		kn_errf(err, "%s: cannot create the gRPC server", s->name);
		goto fail;
	}
	/* PAYLOAD_NONE: the message is received by a batch of ours, so that an
	 * oversize one can be counted (kn_grpc_call.c) */
	s->export_method = grpc_server_register_method(s->server, KN_OTLP_GRPC_EXPORT_METHOD, NULL,
						       GRPC_SRM_PAYLOAD_NONE, 0);
	if (!s->export_method) {
		kn_errf(err, "%s: cannot register %s", s->name, KN_OTLP_GRPC_EXPORT_METHOD);
		goto fail;
	}
	if (workers_create(s, err) != KN_OK)
		goto fail;
	s->shutdown_cq = grpc_completion_queue_create_for_pluck(NULL);
	if (!s->shutdown_cq) {
		kn_errf(err, "%s: cannot create a completion queue", s->name);
		goto fail;
	}
	if (s->opts.tls) {
		creds = kn_grpc_tls_server_credentials(s->opts.tls, err);
		if (!creds)
			goto fail;
	} else {
		creds = grpc_insecure_server_credentials_create();
	}
	/* the server keeps its own reference to the credentials */
	port = grpc_server_add_http2_port(s->server, s->endpoint, creds);
	grpc_server_credentials_release(creds);
	if (port <= 0) {
		kn_errf(err, "endpoint: cannot listen on \"%s\" (address in use or not local?)",
			s->endpoint);
		goto fail;
	}
	s->port = (uint16_t)port;
	grpc_server_start(s->server);
	s->server_started = 1;

	for (uint32_t i = 0; i < s->nworkers; i++) {
		struct kn_grpc_worker *w = &s->workers[i];
		for (uint32_t k = 0; k < w->nslots; k++) {
			kn_grpc_slot_request(&w->slots[k]);
			if (w->slots[k].state != KN_GRPC_SLOT_REQUESTED) {
				kn_errf(err, "%s: cannot request calls", s->name);
				goto fail;
			}
		}
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			kn_errf(err, "%s: cannot start thread %u", s->name, i);
			goto fail;
		}
		w->thread_started = 1;
	}
	log_listening(s);
	if (s->quota_bytes)
		kn_info("%s: libgrpc memory quota %.1f MiB (request bytes of kansatsu.memory_limit_mib)",
			s->name, (double)s->quota_bytes / (1024.0 * 1024.0));
	if (s->opts.tls) {
		const struct kn_tls_server_cfg *t = s->opts.tls;
		int mutual = t->client_ca_file && t->client_ca_file[0];
		if (t->reload_interval_ns)
			kn_info("%s: TLS%s, certificate files re-read every %us", s->name,
				mutual ? " (mutual)" : "",
				kn_grpc_tls_refresh_seconds(t->reload_interval_ns));
		else
			kn_info("%s: TLS%s", s->name, mutual ? " (mutual)" : "");
	}
	return KN_OK;
fail:
	/* Leave everything for shutdown/destroy, which handle half-built state. */
	kn_otlp_grpc_shutdown(s, 0);
	return KN_ERR;
}

uint16_t kn_otlp_grpc_port(const struct kn_otlp_grpc *s)
{
	return s ? s->port : 0;
}

static gpr_timespec ns_to_deadline(uint64_t deadline_ns)
{
	uint64_t now = kn_now_ns();
	int64_t left_ms = deadline_ns > now ? (int64_t)((deadline_ns - now) / KN_NS_PER_MS) : 0;
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_millis(left_ms, GPR_TIMESPAN));
}

/* Shuts a worker's queue (no slot may post after this) and, when its thread
 * never started, drains the queue here. */
static void worker_stop(struct kn_grpc_worker *w)
{
	if (!w->cq)
		return;
	pthread_mutex_lock(&w->mu);
	w->cq_shut = 1;
	grpc_completion_queue_shutdown(w->cq);
	pthread_mutex_unlock(&w->mu);
	if (w->thread_started) {
		pthread_join(w->thread, NULL);
		w->thread_started = 0;
	} else {
		worker_main(w);
	}
}

void kn_otlp_grpc_shutdown(struct kn_otlp_grpc *s, uint64_t deadline_ns)
{
	if (!s || !s->started || s->shut_down)
		return;
	s->shut_down = 1;
	atomic_store_explicit(&s->stopping, 1, memory_order_release);

	if (s->server && s->server_started) {
		static int shutdown_tag;
		grpc_event ev;

		grpc_server_shutdown_and_notify(s->server, s->shutdown_cq, &shutdown_tag);
		ev = grpc_completion_queue_pluck(s->shutdown_cq, &shutdown_tag,
						 ns_to_deadline(deadline_ns), NULL);
		if (ev.type == GRPC_QUEUE_TIMEOUT) {
			grpc_server_cancel_all_calls(s->server);
			ev = grpc_completion_queue_pluck(s->shutdown_cq, &shutdown_tag,
							 gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		}
	}
	for (uint32_t i = 0; i < s->nworkers; i++)
		worker_stop(&s->workers[i]);
	if (s->server) {
		grpc_server_destroy(s->server);
		s->server = NULL;
	}
	if (s->server_started)
		kn_info("%s: stopped", s->name);
}

static void worker_free(struct kn_grpc_worker *w)
{
	for (uint32_t k = 0; w->slots && k < w->nslots; k++) {
		kn_grpc_slot_release(&w->slots[k]);
		grpc_metadata_array_destroy(&w->slots[k].md);
		grpc_call_details_destroy(&w->slots[k].details);
	}
	free(w->slots);
	if (w->cq)
		grpc_completion_queue_destroy(w->cq);
	if (w->mu_inited)
		pthread_mutex_destroy(&w->mu);
	free(w->scratch);
}

void kn_otlp_grpc_destroy(struct kn_otlp_grpc *s)
{
	if (!s)
		return;
	kn_otlp_grpc_shutdown(s, 0);
	for (uint32_t i = 0; s->workers && i < s->nworkers; i++)
		worker_free(&s->workers[i]);
	free(s->workers);
	if (s->shutdown_cq) {
		grpc_completion_queue_shutdown(s->shutdown_cq);
		while (grpc_completion_queue_pluck(s->shutdown_cq, NULL,
						   gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
			       .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(s->shutdown_cq);
	}
	if (s->quota)
		grpc_resource_quota_unref(s->quota);
	free(s->endpoint);
	free(s->name);
	if (s->grpc_inited)
		grpc_shutdown();
	free(s);
}

void kn_otlp_grpc_stats(const struct kn_otlp_grpc *s, struct kn_otlp_grpc_stats *out)
{
	memset(out, 0, sizeof *out);
	if (!s)
		return;
	out->calls = atomic_load_explicit(&s->st.calls, memory_order_relaxed);
	out->ok = atomic_load_explicit(&s->st.ok, memory_order_relaxed);
	out->invalid = atomic_load_explicit(&s->st.invalid, memory_order_relaxed);
	out->unavailable = atomic_load_explicit(&s->st.unavailable, memory_order_relaxed);
	out->internal = atomic_load_explicit(&s->st.internal, memory_order_relaxed);
	out->unimplemented = atomic_load_explicit(&s->st.unimplemented, memory_order_relaxed);
	out->cancelled = atomic_load_explicit(&s->st.cancelled, memory_order_relaxed);
	out->payload_copies = atomic_load_explicit(&s->st.payload_copies, memory_order_relaxed);
	out->unauthenticated = atomic_load_explicit(&s->st.unauthenticated, memory_order_relaxed);
	out->too_large = atomic_load_explicit(&s->st.too_large, memory_order_relaxed);
	out->decompressed = atomic_load_explicit(&s->st.decompressed, memory_order_relaxed);
	out->quota_bytes = s->quota_bytes;
}
