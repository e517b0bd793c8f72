/* SPDX-License-Identifier: Apache-2.0
 * kn_ingest: producers and the all-or-nothing hand-off of a request to the
 * shard rings (see kn_ingest.h).
 *
 * Costs per request: one pass of the wire reader over the bytes, one chunk
 * allocation per shard that receives spans, one memcpy of the span bytes,
 * one budget CAS, one ring enqueue per shard. Nothing per span is allocated.
 * A refusal that is known before the spans are read (shutting down, a full
 * persistent queue, no room in the budget for the request's size) costs a
 * walk of the request's three message levels instead, to count its spans:
 * refusing stays much cheaper than accepting, which matters when refused
 * clients come back every few milliseconds (kn_drain.h).
 *
 * Routing: by trace id (kn_shard_of) when some processor keeps state per
 * trace (rt->whole_traces: tail_sampling, journey, sli); otherwise the whole
 * request goes to one shard (round robin per receiver thread over the rings
 * with room), so a request
 * stays one chunk and leaves as one export call instead of one per shard.
 *
 * Why all-or-nothing works without locks: a producer is the only writer of
 * its rings, so free space seen before splitting can only grow until the
 * enqueue; the budget is charged with one CAS before anything is enqueued. */
#include "kn_ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kn_backpressure.h"
#include "kn_budget.h"
#include "kn_clock.h"
#include "kn_metrics.h"
#include "kn_runtime_impl.h"
#include "../wire/kn_wire_field.h"

/* The delay of refusals that do not depend on the drain (shutting down, a
 * persistent queue full, out of memory, the memory_limiter's RSS check):
 * their state changes on its own clock, not with the budget. */
#define RETRY_FIXED_MS 1000

static struct kn_metric *refused_spans(struct kn_producer *p, const char *reason)
{
	char labels[256];
	snprintf(labels, sizeof labels, "receiver=\"%s\",transport=\"%s\",reason=\"%s\"",
		 p->receiver, p->transport, reason);
	return kn_metrics_counter(p->rt->metrics, "kansatsu_receiver_refused_spans_total",
				  "Spans refused by receivers, by reason; refusals other than "
				  "invalid_span are retryable for the client.",
				  labels);
}

struct kn_producer *kn_producer_create(struct kn_runtime *rt, uint16_t source,
				       const char *receiver, const char *transport,
				       struct kn_err *err)
{
	pthread_mutex_lock(&rt->producers_mu);
	unsigned idx = atomic_load(&rt->nproducers);
	if (idx >= KN_MAX_PRODUCERS) {
		pthread_mutex_unlock(&rt->producers_mu);
		kn_errf(err, "receivers.%s: too many receiver threads (at most %d in all)",
			receiver, KN_MAX_PRODUCERS);
		return NULL;
	}
	struct kn_producer *p = calloc(1, sizeof *p);
	if (!p)
		goto fail;
	p->rt = rt;
	p->source = source;
	p->index = idx;
	kn_wire_index_init(&p->ix);
	p->out = calloc(rt->nshards, sizeof *p->out);
	p->rings = calloc(rt->nshards, sizeof *p->rings);
	if (!p->out || !p->rings)
		goto fail;
	for (uint64_t s = 0; s < rt->nshards; s++) {
		p->rings[s].buf = calloc(rt->ring_size, sizeof(struct ck_ring_buffer));
		if (!p->rings[s].buf)
			goto fail;
		ck_ring_init(&p->rings[s].ring, (unsigned)rt->ring_size);
	}
	char esc[64];
	kn_metrics_label_escape(receiver, esc, sizeof esc);
	snprintf(p->receiver, sizeof p->receiver, "%s", esc);
	snprintf(p->transport, sizeof p->transport, "%s", transport);
	char labels[160];
	snprintf(labels, sizeof labels, "receiver=\"%s\",transport=\"%s\"", p->receiver, p->transport);
	p->accepted = kn_metrics_counter(rt->metrics, "kansatsu_receiver_accepted_spans_total",
					 "Spans accepted into the pipeline (acknowledged to the client).",
					 labels);
	p->rejected_invalid = refused_spans(p, "invalid_span");
	p->refused_memory = refused_spans(p, "memory_limit");
	p->refused_full = refused_spans(p, "pipeline_full");
	p->refused_shutdown = refused_spans(p, "shutting_down");
	p->refused_queue = refused_spans(p, "exporter_queue_full");
	char rlabels[224];
	snprintf(rlabels, sizeof rlabels, "%s,reason=\"decode_error\"", labels);
	p->refused_decode = kn_metrics_counter(rt->metrics, "kansatsu_receiver_refused_requests_total",
					       "Requests refused before their spans could be read, by reason.",
					       rlabels);
	rt->producers[idx] = p;
	/* Publish: shard workers load nproducers with acquire and then see the rings. */
	atomic_store_explicit(&rt->nproducers, idx + 1, memory_order_release);
	pthread_mutex_unlock(&rt->producers_mu);
	return p;
fail:
	pthread_mutex_unlock(&rt->producers_mu);
	kn_producer_free(p);
	kn_errf(err, "receivers.%s: out of memory creating a producer", receiver);
	return NULL;
}

void kn_producer_free(struct kn_producer *p)
{
	if (!p)
		return;
	if (p->rings) {
		for (uint64_t s = 0; s < p->rt->nshards; s++) {
			/* Rings are drained by the shards before producers are freed;
			 * anything left (a shard that never started) is released here. */
			void *c;
			if (p->rings[s].buf) {
				while (ck_ring_dequeue_spsc(&p->rings[s].ring, p->rings[s].buf, &c))
					kn_chunk_unref(c);
			}
			free(p->rings[s].buf);
		}
	}
	free(p->rings);
	free(p->out);
	kn_wire_index_free(&p->ix);
	free(p);
}

void kn_ingest_count_refused_request(struct kn_producer *p, const char *reason)
{
	char labels[256];
	snprintf(labels, sizeof labels, "receiver=\"%s\",transport=\"%s\",reason=\"%s\"",
		 p->receiver, p->transport, reason);
	kn_counter_add(kn_metrics_counter(p->rt->metrics, "kansatsu_receiver_refused_requests_total",
					  "Requests refused before their spans could be read, by reason.",
					  labels),
		       1);
}

static int refuse(struct kn_ingest_result *res, struct kn_metric *m, uint32_t nspans,
		  uint32_t retry_after_ms, const char *why)
{
	kn_counter_add(m, nspans);
	res->accepted = 0;
	res->retry_after_ms = retry_after_ms;
	snprintf(res->message, sizeof res->message, "%s", why);
	return KN_AGAIN;
}

/* The spans of an ExportTraceServiceRequest (resource_spans = 1 ->
 * scope_spans = 2 -> spans = 2), without looking into them: -1 when the
 * framing of those three levels is broken (the full reader then decides). */
static int count_spans(const uint8_t *req, size_t len, uint32_t *n)
{
	const uint8_t *p = req, *end = req + len;
	struct kn_wire_field f, g, h;
	uint32_t count = 0;
	int rc;
	while ((rc = kn_wire_field_read(&p, end, &f, KN_WIRE_FIELD_STRICT)) == 1) {
		if (f.num != 1 || f.wt != KN_WIRE_FIELD_LEN)
			continue;
		const uint8_t *q = f.payload, *qend = f.payload + f.len;
		int rq;
		while ((rq = kn_wire_field_read(&q, qend, &g, KN_WIRE_FIELD_STRICT)) == 1) {
			if (g.num != 2 || g.wt != KN_WIRE_FIELD_LEN)
				continue;
			const uint8_t *r = g.payload, *rend = g.payload + g.len;
			int rr;
			while ((rr = kn_wire_field_read(&r, rend, &h, KN_WIRE_FIELD_STRICT)) == 1)
				count += h.num == 2 && h.wt == KN_WIRE_FIELD_LEN;
			if (rr < 0)
				return -1;
		}
		if (rq < 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	*n = count;
	return 0;
}

/* Refusals decided by the pipeline's state and the request's size alone;
 * KN_OK when none applies (or the request is empty or malformed: the wire
 * reader answers those). */
static int refuse_early(struct kn_producer *p, const uint8_t *req, size_t len,
			struct kn_ingest_result *res)
{
	struct kn_runtime *rt = p->rt;
	int closed = !atomic_load_explicit(&rt->accepting, memory_order_acquire);
	int queue = !closed && kn_bp_active();
	int memory = !closed && !queue && !kn_budget_would_fit(len);
	uint32_t n;
	if (!(closed || queue || memory) || count_spans(req, len, &n) != 0 || n == 0)
		return KN_OK;
	if (closed)
		return refuse(res, p->refused_shutdown, n, RETRY_FIXED_MS,
			      "the collector is shutting down");
	if (queue)
		return refuse(res, p->refused_queue, n, RETRY_FIXED_MS,
			      "an exporter's persistent queue is full; retry later");
	return refuse(res, p->refused_memory, n,
		      kn_budget_over() ? RETRY_FIXED_MS : kn_budget_retry_ms(len),
		      "the collector's memory limit is reached; retry later");
}

static uint32_t route_whole(const struct kn_span_hdr *h, void *ctx)
{
	(void)h;
	return *(const uint32_t *)ctx;
}

int kn_ingest(struct kn_producer *p, const uint8_t *req, size_t len,
	      const struct kn_tracectx *ctx, struct kn_ingest_result *res)
{
	struct kn_runtime *rt = p->rt;
	uint32_t nshards = (uint32_t)rt->nshards;
	struct kn_err err;

	res->accepted = 0;
	res->rejected = 0;
	res->retry_after_ms = 0;
	res->message[0] = '\0';

	if (refuse_early(p, req, len, res) == KN_AGAIN)
		return KN_AGAIN;
	int rc = kn_wire_index_request(&p->ix, req, len, &err);
	if (rc == KN_INVALID) {
		kn_counter_add(p->refused_decode, 1);
		snprintf(res->message, sizeof res->message, "%s", err.msg);
		return KN_INVALID;
	}
	if (rc != KN_OK)
		return refuse(res, p->refused_memory, 0, RETRY_FIXED_MS, "out of memory");

	uint32_t nspans = p->ix.nspans;
	res->rejected = p->ix.rejected;
	if (p->ix.rejected) {
		kn_counter_add(p->rejected_invalid, p->ix.rejected);
		snprintf(res->message, sizeof res->message, "%u spans rejected; first: %s",
			 p->ix.rejected, p->ix.reject_reason);
	}
	if (nspans == 0)
		return KN_OK;

	if (!atomic_load_explicit(&rt->accepting, memory_order_acquire))
		return refuse(res, p->refused_shutdown, nspans, RETRY_FIXED_MS,
			      "the collector is shutting down");
	/* A persistent sending queue that is full (or whose disk is) must not
	 * drop what we acknowledge: it asks for refusals instead. */
	if (kn_bp_active())
		return refuse(res, p->refused_queue, nspans, RETRY_FIXED_MS,
			      "an exporter's persistent queue is full; retry later");

	/* Room in every ring that will receive a chunk? Only this thread enqueues. */
	uint32_t whole = UINT32_MAX;
	for (uint32_t k = 0; !rt->whole_traces && k < nshards; k++) {
		uint32_t s = (p->next_shard + k) % nshards; /* the next ring with room */
		struct kn_pring *r = &p->rings[s];
		if (ck_ring_size(&r->ring) + 1 < ck_ring_capacity(&r->ring)) {
			whole = s;
			p->next_shard = s + 1 < nshards ? s + 1 : 0;
			break;
		}
	}
	if (!rt->whole_traces && whole == UINT32_MAX)
		return refuse(res, p->refused_full, nspans, kn_budget_retry_ms(len),
			      "the pipeline is full; retry later");
	for (uint32_t i = 0; rt->whole_traces && i < nspans; i++) {
		uint32_t s = kn_shard_of(p->ix.spans[i].trace_id, nshards);
		struct kn_pring *r = &p->rings[s];
		if (ck_ring_size(&r->ring) + 1 >= ck_ring_capacity(&r->ring))
			return refuse(res, p->refused_full, nspans, kn_budget_retry_ms(len),
				      "the pipeline is full; retry later");
	}

	if ((rt->whole_traces ? kn_wire_split(&p->ix, req, nshards, p->out, &err)
			      : kn_wire_split_by(&p->ix, req, nshards, route_whole, &whole, p->out,
						 &err)) != KN_OK)
		return refuse(res, p->refused_memory, nspans, RETRY_FIXED_MS, "out of memory");

	size_t total = 0;
	for (uint32_t s = 0; s < nshards; s++)
		if (p->out[s])
			total += sizeof(struct kn_chunk) + p->out[s]->nspans * sizeof(struct kn_span_hdr) +
				 p->out[s]->cap;
	if (!kn_budget_try_charge(total)) {
		for (uint32_t s = 0; s < nshards; s++) {
			kn_chunk_unref(p->out[s]);
			p->out[s] = NULL;
		}
		return refuse(res, p->refused_memory, nspans,
			      kn_budget_over() ? RETRY_FIXED_MS : kn_budget_retry_ms(total),
			      "the collector's memory limit is reached; retry later");
	}

	uint64_t now = kn_now_ns();
	uint16_t woken[KN_MAX_SHARDS];
	uint32_t nwoken = 0;
	for (uint32_t s = 0; s < nshards; s++) {
		struct kn_chunk *c = p->out[s];
		if (!c)
			continue;
		woken[nwoken++] = (uint16_t)s;
		c->charged = sizeof(struct kn_chunk) + c->nspans * sizeof(struct kn_span_hdr) + c->cap;
		c->source = p->source;
		c->accepted_ns = now;
		if (ctx && kn_tracectx_present(ctx))
			c->ctx = *ctx;
		/* Cannot fail: space was checked above and nobody else enqueues here. */
		ck_ring_enqueue_spsc(&p->rings[s].ring, p->rings[s].buf, c);
		p->out[s] = NULL;
	}
	atomic_thread_fence(memory_order_seq_cst);
	for (uint32_t i = 0; i < nwoken; i++)
		kn_shard_wake(rt->shards[woken[i]]);
	kn_counter_add(p->accepted, nspans);
	res->accepted = nspans;
	return KN_OK;
}
