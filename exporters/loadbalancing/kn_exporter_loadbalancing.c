/* SPDX-License-Identifier: Apache-2.0
 * kn_exporter_loadbalancing: the component, its backends (one otlp
 * sub-exporter per endpoint), the ring swap with its grace period, and the
 * dns resolver thread. The contract, the ring-swap scheme and the journey
 * limit are described in kn_exporter_loadbalancing.h; routing itself is in
 * kn_lb_route.c.
 *
 * Threads: export() on any shard worker (lock-free: a read section around
 * the ring); writers (start, the dns thread, kn_lb_set_endpoints, shutdown)
 * are serialised by update_mu and never run inside a read section.
 * Ownership: the current ring owns nothing but its strings; the backends in
 * its user slots are owned by the instance and freed when they leave the
 * ring (after the grace period) or at destroy. */
#include "kn_exporter_loadbalancing.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_extension.h"
#include "../../collector/core/kn_log.h"
#include "../../collector/core/kn_metrics.h"
#include "../../collector/core/kn_storage.h"
#include "kn_lb_config.h"
#include "kn_lb_int.h"
#include "kn_lb_resolve.h"

/* ---- read sections and grace periods ---- */

unsigned kn_lb_read_enter(struct kn_lb *x)
{
	for (;;) {
		uint64_t e = atomic_load(&x->epoch);
		atomic_fetch_add(&x->active[e & 1], 1);
		if (atomic_load(&x->epoch) == e)
			return (unsigned)(e & 1);
		atomic_fetch_sub(&x->active[e & 1], 1); /* a swap raced us: announce again */
	}
}

void kn_lb_read_exit(struct kn_lb *x, unsigned parity)
{
	atomic_fetch_sub(&x->active[parity], 1);
}

/* Waits until every reader that could have loaded the ring published before
 * this call has left. Writers only (under update_mu). */
static void grace(struct kn_lb *x)
{
	uint64_t e = atomic_fetch_add(&x->epoch, 1);
	unsigned spins = 0;
	while (atomic_load(&x->active[e & 1]) != 0) {
		if (++spins < 64) {
			sched_yield();
		} else {
			struct timespec ts = {0, 100000}; /* readers hold a section for one batch */
			nanosleep(&ts, NULL);
		}
	}
}

/* ---- backends ---- */

static void backend_free(struct lb_backend *be)
{
	if (!be)
		return;
	kn_exporter_otlp.destroy(be->otlp);
	free(be->endpoint);
	free(be);
}

static struct lb_backend *backend_new(struct kn_lb *x, const char *ep, struct kn_err *err)
{
	struct lb_backend *be = calloc(1, sizeof *be);
	char id[600], esc_id[300], esc_ep[300], labels[700];
	if (!be || !(be->endpoint = strdup(ep))) {
		free(be);
		kn_errf(err, "%s: out of memory", x->path);
		return NULL;
	}
	snprintf(id, sizeof id, "%s/%s", x->id, ep);
	struct kn_otlpexp_cfg c = x->otlp;
	c.endpoint = (char *)ep;
	struct kn_component_ctx ctx = {.id = id, .metrics = x->metrics, .rt = x->rt};
	if (kn_exporter_otlp.create(&ctx, &c, &be->otlp, err) != KN_OK)
		goto fail;
	if (x->started && kn_exporter_otlp.start(be->otlp, err) != KN_OK)
		goto fail;
	kn_metrics_label_escape(x->id, esc_id, sizeof esc_id);
	kn_metrics_label_escape(ep, esc_ep, sizeof esc_ep);
	snprintf(labels, sizeof labels, "exporter=\"%s\",endpoint=\"%s\"", esc_id, esc_ep);
	be->routed = kn_metrics_counter(x->metrics, "kansatsu_loadbalancer_routed_spans_total",
					"Spans routed to each endpoint of the ring.", labels);
	if (!be->routed) {
		kn_errf(err, "%s: out of memory", x->path);
		goto fail;
	}
	return be;
fail:
	backend_free(be);
	return NULL;
}

/* Handed-back batches of a retiring backend: routed again on the current
 * ring (from the writer thread and from the backend's consumer threads). */
static void reroute(void *ctx, struct kn_batch *b)
{
	struct kn_lb *x = ctx;
	kn_counter_add(x->m_rerouted, b->nspans);
	unsigned p = kn_lb_read_enter(x);
	struct kn_lb_ring *r = atomic_load(&x->ring);
	if (r) {
		kn_lb_route_batch(x, r, b);
	} else {
		kn_counter_add(x->m_drop_noep, b->nspans);
		kn_batch_free(b);
	}
	kn_lb_read_exit(x, p);
}

static void backend_retire(struct kn_lb *x, struct lb_backend *be)
{
	unsigned n = kn_exporter_otlp_reclaim(be->otlp, reroute, x);
	kn_info("exporter %s: endpoint %s left the ring; %u batches it held were routed again", x->id,
		be->endpoint, n);
	backend_free(be);
}

/* ---- persistent queues of endpoints not in the ring ---- */

/* Reads every queue of this exporter on disk whose endpoint is not in ring
 * r (left by an earlier run whose endpoints differed, or by an endpoint that
 * was just retired with batches only on disk) and routes its batches again
 * on r; each record is marked done once its batch was handed to (and so
 * appended by) an endpoint's queue, so a crash in between sends it twice,
 * never loses it. Under update_mu, outside read sections. */
static void drain_orphans(struct kn_lb *x, const struct kn_lb_ring *r)
{
	if (!x->st || !r || r->n == 0)
		return;
	char prefix[320], **names = NULL;
	size_t n = 0;
	struct kn_err err;
	snprintf(prefix, sizeof prefix, "%s/", x->id);
	if (x->st->list(x->st_inst, prefix, &names, &n, &err) != KN_OK) {
		kn_warn("exporter %s: %s", x->id, err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *ep = names[i] + strlen(prefix);
		void *q = NULL;
		struct kn_squeue_info info;
		if (strchr(ep, '/') || kn_lb_ring_find(r, ep) >= 0 ||
		    x->st->open(x->st_inst, names[i], x->metrics, &q, &info, &err) != KN_OK) {
			if (!q && !strchr(ep, '/') && kn_lb_ring_find(r, ep) < 0)
				kn_warn("exporter %s: %s", x->id, err.msg);
			free(names[i]);
			continue;
		}
		uint64_t batches = 0, spans = 0;
		struct kn_batch *b;
		uint64_t id;
		struct kn_squeue_info sk;
		while (x->st->next(q, &b, &id, &sk) == KN_OK) {
			batches++;
			spans += b->nspans;
			reroute(x, b);
			x->st->done(q, id);
		}
		x->st->close(q);
		if (batches)
			kn_info("exporter %s: %" PRIu64 " batches (%" PRIu64 " spans) left on disk for endpoint %s, "
				"no longer in the ring, were routed again", x->id, batches, spans, ep);
		free(names[i]);
	}
	free(names);
}

/* ---- ring updates (writers, under update_mu) ---- */

static int update_locked(struct kn_lb *x, const char *const *eps, size_t n, struct kn_err *err)
{
	struct kn_lb_ring *old = atomic_load(&x->ring), *nr = NULL;
	if (x->shut)
		return kn_errf(err, "%s: shut down", x->path);
	if (!(nr = kn_lb_ring_build(eps, n, err)))
		return kn_err_prefix(err, "%s: ", x->path);
	if (kn_lb_ring_same(old, nr)) {
		kn_lb_ring_free(nr);
		return KN_OK;
	}
	for (uint32_t i = 0; i < nr->n; i++) {
		int j = kn_lb_ring_find(old, nr->endpoints[i]);
		nr->user[i] = j >= 0 ? old->user[j] : backend_new(x, nr->endpoints[i], err);
		if (!nr->user[i])
			goto fail;
	}
	atomic_store(&x->ring, nr);
	grace(x);
	for (uint32_t j = 0; old && j < old->n; j++)
		if (kn_lb_ring_find(nr, old->endpoints[j]) < 0)
			backend_retire(x, old->user[j]);
	kn_lb_ring_free(old);
	drain_orphans(x, nr);
	kn_gauge_set(x->m_backends, nr->n);
	kn_counter_add(x->m_updates, 1);
	char list[1024];
	size_t o = 0;
	for (uint32_t i = 0; i < nr->n && o < sizeof list; i++)
		o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", nr->endpoints[i]);
	kn_info("exporter %s: ring rebuilt, %u endpoint(s): %s", x->id, nr->n, list);
	return KN_OK;
fail:
	for (uint32_t i = 0; i < nr->n; i++)
		if (nr->user[i] && kn_lb_ring_find(old, nr->endpoints[i]) < 0)
			backend_free(nr->user[i]);
	kn_lb_ring_free(nr);
	return KN_ERR;
}

int kn_lb_set_endpoints(void *inst, const char *const *endpoints, size_t n, struct kn_err *err)
{
	struct kn_lb *x = inst;
	if (!x->started)
		return kn_errf(err, "%s: not started", x->path);
	pthread_mutex_lock(&x->update_mu);
	int rc = update_locked(x, endpoints, n, err);
	pthread_mutex_unlock(&x->update_mu);
	return rc;
}

int kn_lb_endpoints(void *inst, struct kn_strlist *out)
{
	struct kn_lb *x = inst;
	out->v = NULL;
	out->n = 0;
	pthread_mutex_lock(&x->update_mu);
	struct kn_lb_ring *r = atomic_load(&x->ring);
	int rc = KN_OK;
	if (r && r->n) {
		out->v = calloc(r->n, sizeof *out->v);
		for (uint32_t i = 0; out->v && i < r->n; i++, out->n++)
			if (!(out->v[i] = strdup(r->endpoints[i])))
				break;
		if (!out->v || out->n < r->n) {
			kn_lb_strlist_free(out);
			rc = KN_ERR;
		}
	}
	pthread_mutex_unlock(&x->update_mu);
	return rc;
}

/* ---- dns resolver ---- */

static void resolve_once(struct kn_lb *x)
{
	struct kn_strlist l;
	struct kn_err err;
	err.msg[0] = '\0';
	int rc = kn_lb_lookup_run(x->lookup, x->dns_host, x->dns_port, x->dns_timeout_ns, &l, &err);
	if (rc == KN_OK && l.n == 0)
		rc = kn_errf(&err, "resolving \"%s\": no addresses", x->dns_host);
	if (rc == KN_OK)
		rc = kn_lb_set_endpoints(x, (const char *const *)l.v, l.n, &err);
	kn_lb_strlist_free(&l);
	kn_counter_add(rc == KN_OK ? x->m_res_ok : x->m_res_fail, 1);
	if (rc != KN_OK) {
		uint64_t now = kn_now_ns();
		if (x->last_warn_ns == 0 || now - x->last_warn_ns >= 10 * KN_NS_PER_SEC) {
			x->last_warn_ns = now;
			kn_warn("exporter %s: resolver.dns: %s (keeping the current %s)", x->id, err.msg,
				atomic_load(&x->ring) ? "ring" : "empty ring: spans are dropped");
		}
	}
}

static void *dns_main(void *arg)
{
	struct kn_lb *x = arg;
	for (;;) {
		uint64_t until = kn_now_ns() + x->dns_interval_ns;
		struct timespec ts = {.tv_sec = (time_t)(until / KN_NS_PER_SEC), .tv_nsec = (long)(until % KN_NS_PER_SEC)};
		pthread_mutex_lock(&x->th_mu);
		while (!x->th_stop && kn_now_ns() < until)
			pthread_cond_timedwait(&x->th_cv, &x->th_mu, &ts);
		int stop = x->th_stop;
		pthread_mutex_unlock(&x->th_mu);
		if (stop)
			break;
		resolve_once(x);
	}
	return NULL;
}

/* ---- component ---- */

static void lb_shutdown(void *inst, uint64_t deadline_ns)
{
	struct kn_lb *x = inst;
	if (!x || !x->sync_ok || x->shut)
		return;
	if (x->th_running) {
		pthread_mutex_lock(&x->th_mu);
		x->th_stop = 1;
		pthread_cond_signal(&x->th_cv);
		pthread_mutex_unlock(&x->th_mu);
		pthread_join(x->th, NULL);
		x->th_running = 0;
	}
	pthread_mutex_lock(&x->update_mu);
	x->shut = 1;
	atomic_store(&x->stopping, 1);
	grace(x);
	/* Every sub-exporter keeps sending while the ones before it drain. */
	struct kn_lb_ring *r = atomic_load(&x->ring);
	for (uint32_t i = 0; r && i < r->n; i++) {
		struct lb_backend *be = r->user[i];
		kn_exporter_otlp.shutdown(be->otlp, deadline_ns);
	}
	pthread_mutex_unlock(&x->update_mu);
}

static void lb_destroy(void *inst)
{
	struct kn_lb *x = inst;
	if (!x)
		return;
	lb_shutdown(x, kn_now_ns());
	struct kn_lb_ring *r = atomic_load(&x->ring);
	for (uint32_t i = 0; r && i < r->n; i++)
		backend_free(r->user[i]);
	kn_lb_ring_free(r);
	kn_lb_lookup_free(x->lookup);
	kn_lb_slots_free(x);
	kn_cfg_free(kn_lb_otlp_fields(), &x->otlp);
	kn_lb_strlist_free(&x->statics);
	free(x->dns_host);
	free(x->jid_key);
	if (x->sync_ok) {
		pthread_mutex_destroy(&x->update_mu);
		pthread_mutex_destroy(&x->th_mu);
		pthread_cond_destroy(&x->th_cv);
	}
	kn_metrics_destroy(x->own_metrics);
	free(x->id);
	free(x);
}

static char *dup_str(const char *s, int *oom)
{
	char *d = s ? strdup(s) : NULL;
	if (s && !d)
		*oom = 1;
	return d;
}

/* A deep copy of protocol.otlp without the endpoint (the config given to
 * create need not outlive it). */
static int otlp_copy(struct kn_otlpexp_cfg *d, const struct kn_otlpexp_cfg *s)
{
	int oom = 0;
	memset(d, 0, sizeof *d);
	d->tls.insecure = s->tls.insecure;
	d->tls.insecure_skip_verify = s->tls.insecure_skip_verify;
	d->tls.ca_file = dup_str(s->tls.ca_file, &oom);
	d->tls.cert_file = dup_str(s->tls.cert_file, &oom);
	d->tls.key_file = dup_str(s->tls.key_file, &oom);
	d->compression = dup_str(s->compression, &oom);
	d->compression_params = s->compression_params;
	d->connections = s->connections;
	d->auth.authenticator = dup_str(s->auth.authenticator, &oom);
	d->sender = s->sender;
	d->sender.queue.storage = dup_str(s->sender.queue.storage, &oom);
	d->sender.queue.consumer_scheduling = dup_str(s->sender.queue.consumer_scheduling, &oom);
	if (s->headers.n) {
		d->headers.keys = calloc(s->headers.n, sizeof *d->headers.keys);
		d->headers.values = calloc(s->headers.n, sizeof *d->headers.values);
		if (!d->headers.keys || !d->headers.values)
			return -1; /* freed by kn_cfg_free of the template (n counts what is set) */
		for (size_t i = 0; i < s->headers.n; i++, d->headers.n++) {
			d->headers.keys[i] = dup_str(s->headers.keys[i], &oom);
			d->headers.values[i] = dup_str(s->headers.values[i], &oom);
		}
	}
	return oom ? -1 : 0;
}

static void register_metrics(struct kn_lb *x)
{
	char esc[300], lb[400], l2[500];
	kn_metrics_label_escape(x->id, esc, sizeof esc);
	snprintf(lb, sizeof lb, "exporter=\"%s\"", esc);
	x->m_backends = kn_metrics_gauge(x->metrics, "kansatsu_loadbalancer_backends",
					 "Endpoints in the load-balancing ring.", lb);
	x->m_updates = kn_metrics_counter(x->metrics, "kansatsu_loadbalancer_backend_updates_total",
					  "Times the ring was rebuilt with a different endpoint set.", lb);
	x->m_rerouted = kn_metrics_counter(x->metrics, "kansatsu_loadbalancer_rerouted_spans_total",
					   "Spans taken back from endpoints that left the ring and routed again.", lb);
	const char *resolver = x->use_dns ? "dns" : "static";
	snprintf(l2, sizeof l2, "%s,resolver=\"%s\",success=\"true\"", lb, resolver);
	x->m_res_ok = kn_metrics_counter(x->metrics, "kansatsu_loadbalancer_resolutions_total",
					 "Resolutions of the endpoint set, by outcome.", l2);
	snprintf(l2, sizeof l2, "%s,resolver=\"%s\",success=\"false\"", lb, resolver);
	x->m_res_fail = kn_metrics_counter(x->metrics, "kansatsu_loadbalancer_resolutions_total",
					   "Resolutions of the endpoint set, by outcome.", l2);
	static const char *const reasons[] = {"no_endpoints", "routing_error", "shutdown"};
	struct kn_metric **dst[] = {&x->m_drop_noep, &x->m_drop_route, &x->m_drop_shutdown};
	for (int i = 0; i < 3; i++) {
		snprintf(l2, sizeof l2, "%s,reason=\"%s\"", lb, reasons[i]);
		*dst[i] = kn_metrics_counter(x->metrics, "kansatsu_exporter_dropped_spans_total",
					     "Spans the exporter gave up on, by reason.", l2);
	}
	if (!x->by_journey)
		return;
	static const char *const by[] = {"journey_id", "trace_id"};
	struct kn_metric **jdst[] = {&x->m_jid_routed, &x->m_jid_trace};
	for (int i = 0; i < 2; i++) {
		snprintf(l2, sizeof l2, "%s,key=\"%s\"", lb, by[i]);
		*jdst[i] = kn_metrics_counter(x->metrics, "kansatsu_loadbalancer_journey_keyed_spans_total",
					      "routing_key journey: spans routed by their journey id or by their "
					      "own trace id (no or an invalid journey id), ring of 2+ endpoints.", l2);
	}
	x->m_jid_invalid = kn_metrics_counter(x->metrics, "kansatsu_loadbalancer_invalid_journey_id_spans_total",
					      "routing_key journey: spans whose journey id attribute was not 32 hex "
					      "digits or 16 bytes (routed by their trace id instead).", lb);
}

static int lb_create(const struct kn_component_ctx *ctx, const void *cfgp, void **inst, struct kn_err *err)
{
	const struct kn_lb_cfg *cfg = cfgp;
	char path[300];
	snprintf(path, sizeof path, "exporters.%s", ctx->id);
	*inst = NULL;
	if (kn_lb_validate(cfg, path, err) != KN_OK)
		return KN_ERR;
	struct kn_lb *x = calloc(1, sizeof *x);
	if (!x)
		return kn_errf(err, "%s: out of memory", path);
	snprintf(x->path, sizeof x->path, "%s", path);
	int oom = 0;
	x->id = dup_str(ctx->id, &oom);
	x->by_service = cfg->routing_key && strcmp(cfg->routing_key, "service") == 0;
	x->by_journey = cfg->routing_key && strcmp(cfg->routing_key, "journey") == 0;
	if (x->by_journey) {
		x->jid_key = dup_str(cfg->journey_id_attribute, &oom);
		x->jid_keylen = x->jid_key ? strlen(x->jid_key) : 0;
	} else if (cfg->journey_id_attribute && strcmp(cfg->journey_id_attribute, "journey.id") != 0) {
		kn_warn("%s.journey_id_attribute: ignored; used only with routing_key journey", path);
	}
	x->use_dns = cfg->resolver.has_dns;
	x->rt = ctx->rt;
	char ref[400];
	snprintf(ref, sizeof ref, "%s.protocol.otlp.sending_queue", path);
	if (kn_sender_queue_check(&cfg->protocol.otlp.sender.queue, ref, err) != KN_OK)
		goto fail;
	if (cfg->protocol.otlp.sender.queue.storage) {
		struct kn_ext_ref ext;
		snprintf(ref, sizeof ref, "%s.protocol.otlp.sending_queue.storage", path);
		if (kn_extension_find(ctx->rt, cfg->protocol.otlp.sender.queue.storage, KN_EXT_STORAGE, ref,
				      &ext, err) != KN_OK)
			goto fail;
		x->st = ext.comp->storage;
		x->st_inst = ext.inst;
	}
	if (cfg->protocol.otlp.auth.authenticator) {
		/* here, so a wrong id fails startup rather than each backend later */
		char aref[400];
		struct kn_ext_ref aext;
		snprintf(aref, sizeof aref, "%s.protocol.otlp.auth.authenticator", path);
		if (kn_extension_find(ctx->rt, cfg->protocol.otlp.auth.authenticator, KN_EXT_CLIENT_AUTH, aref,
				      &aext, err) != KN_OK)
			goto fail;
	}
	if (otlp_copy(&x->otlp, &cfg->protocol.otlp) != 0 || oom) {
		kn_errf(err, "%s: out of memory", path);
		goto fail;
	}
	if (x->use_dns) {
		x->dns_host = dup_str(cfg->resolver.dns.hostname, &oom);
		x->dns_port = (uint16_t)cfg->resolver.dns.port;
		x->dns_interval_ns = cfg->resolver.dns.interval_ns;
		x->dns_timeout_ns = cfg->resolver.dns.timeout_ns;
		if (oom || !(x->lookup = kn_lb_lookup_new())) {
			kn_errf(err, "%s: out of memory", path);
			goto fail;
		}
	} else {
		const struct kn_strlist *h = &cfg->resolver.stat.hostnames;
		if (!(x->statics.v = calloc(h->n, sizeof *x->statics.v))) {
			kn_errf(err, "%s: out of memory", path);
			goto fail;
		}
		for (size_t i = 0; i < h->n; i++) {
			char ep[512], sub[400];
			snprintf(sub, sizeof sub, "%s.resolver.static.hostnames[%zu]", path, i);
			if (kn_lb_normalize(h->v[i], sub, ep, sizeof ep, err) != KN_OK)
				goto fail;
			if (!(x->statics.v[i] = strdup(ep))) {
				kn_errf(err, "%s: out of memory", path);
				goto fail;
			}
			x->statics.n++;
		}
	}
	if (cfg->protocol.otlp.endpoint)
		kn_warn("%s.protocol.otlp.endpoint: ignored; endpoints come from the resolver", path);
	if (kn_lb_slots_init(x, ctx->nshards) != KN_OK) {
		kn_errf(err, "%s: out of memory", path);
		goto fail;
	}
	x->metrics = ctx->metrics;
	if (!x->metrics && !(x->metrics = x->own_metrics = kn_metrics_create())) {
		kn_errf(err, "%s: out of memory", path);
		goto fail;
	}
	register_metrics(x);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&x->update_mu, NULL);
	pthread_mutex_init(&x->th_mu, NULL);
	pthread_cond_init(&x->th_cv, &ca);
	pthread_condattr_destroy(&ca);
	x->sync_ok = 1;
	*inst = x;
	return KN_OK;
fail:
	lb_destroy(x);
	return KN_ERR;
}

static int lb_start(void *inst, struct kn_err *err)
{
	struct kn_lb *x = inst;
	if (x->started || x->shut)
		return kn_errf(err, "%s: started twice or after shutdown", x->path);
	x->started = 1;
	if (!x->use_dns) {
		int rc = kn_lb_set_endpoints(x, (const char *const *)x->statics.v, x->statics.n, err);
		kn_counter_add(rc == KN_OK ? x->m_res_ok : x->m_res_fail, 1);
		return rc;
	}
	resolve_once(x); /* a failure is not fatal: the tier may come up later */
	int e = pthread_create(&x->th, NULL, dns_main, x);
	if (e != 0)
		return kn_errf(err, "%s.resolver.dns: cannot start the resolver thread: %s", x->path, strerror(e));
	x->th_running = 1;
	return KN_OK;
}

static int lb_export(void *inst, struct kn_batch *b)
{
	struct kn_lb *x = inst;
	unsigned p = kn_lb_read_enter(x);
	struct kn_lb_ring *r = atomic_load(&x->ring);
	int rc;
	if (atomic_load(&x->stopping) || !r) {
		kn_counter_add(atomic_load(&x->stopping) ? x->m_drop_shutdown : x->m_drop_noep, b->nspans);
		kn_batch_free(b);
		rc = KN_DROP;
	} else {
		rc = kn_lb_route_batch(x, r, b);
	}
	kn_lb_read_exit(x, p);
	return rc;
}

const struct kn_component kn_exporter_loadbalancing = {
	.type = "loadbalancing",
	.kind = KN_EXPORTER,
	.summary = "routes spans by trace id (or service) over a consistent-hash ring to a tier of OTLP/gRPC collectors",
	.config_size = sizeof(struct kn_lb_cfg),
	.config_fields = kn_lb_fields,
	.validate = kn_lb_validate,
	.create = lb_create,
	.start = lb_start,
	.shutdown = lb_shutdown,
	.destroy = lb_destroy,
	.export = lb_export,
};
