/* SPDX-License-Identifier: Apache-2.0
 * kn_lb_int: the loadbalancing exporter's instance, shared by its files
 * (component and ring swap in kn_exporter_loadbalancing.c, routing in
 * kn_lb_route.c). Not a public interface. */
#ifndef KN_LB_INT_H
#define KN_LB_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../../collector/wire/kn_wire.h"
#include "kn_exporter_loadbalancing.h"
#include "kn_lb_resolve.h"
#include "kn_lb_ring.h"

struct kn_metric;

/* One endpoint: its sub-exporter and its routed counter. */
struct lb_backend {
	char *endpoint;
	void *otlp;                   /* a kn_exporter_otlp instance */
	struct kn_metric *routed;
};

/* A wire index borrowed by one export() at a time (claimed with a CAS). */
struct lb_slot {
	_Atomic int busy;
	struct kn_wire_index ix;
	uint32_t *res_ep;             /* per resource: its endpoint (routing_key service) */
	uint32_t cap_res_ep;
};

struct kn_lb {
	char *id;
	char path[300];               /* "exporters.<id>" */
	struct kn_metrics *metrics, *own_metrics;
	struct kn_runtime *rt;        /* finds the extensions the backends use (auth, storage); may be NULL */
	int by_service;
	int by_journey;               /* routing_key journey */
	char *jid_key;                /* journey_id_attribute (by_journey only) */
	size_t jid_keylen;
	struct kn_otlpexp_cfg otlp;   /* protocol.otlp, deep copy, endpoint NULL */
	int use_dns;
	struct kn_strlist statics;    /* normalised static endpoints */
	char *dns_host;
	uint16_t dns_port;
	uint64_t dns_interval_ns, dns_timeout_ns;

	/* the published ring and its readers */
	struct kn_lb_ring *_Atomic ring;
	_Atomic uint64_t epoch;
	_Atomic uint64_t active[2];   /* readers inside, by epoch parity */
	_Atomic int stopping;

	pthread_mutex_t update_mu;    /* writers */
	int started, shut, sync_ok;

	pthread_mutex_t th_mu;
	pthread_cond_t th_cv;
	int th_stop, th_running;
	pthread_t th;
	struct kn_lb_lookup *lookup;
	uint64_t last_warn_ns;        /* dns thread only */

	struct lb_slot *slots;
	unsigned nslots;
	_Atomic unsigned slot_hint;
	_Atomic uint64_t last_log_ns;

	struct kn_metric *m_backends, *m_updates, *m_rerouted, *m_res_ok, *m_res_fail;
	struct kn_metric *m_drop_noep, *m_drop_route, *m_drop_shutdown;
	struct kn_metric *m_jid_routed, *m_jid_trace, *m_jid_invalid; /* by_journey only */

	/* persistent queues (protocol.otlp.sending_queue.storage): one per
	 * endpoint, named "<id>/<endpoint>"; those of endpoints that left the
	 * ring are read and routed again after each ring update (x->rt, above,
	 * finds the storage extension for the backends) */
	const struct kn_storage_ops *st;  /* NULL: in-memory queues */
	void *st_inst;
};

unsigned kn_lb_read_enter(struct kn_lb *x);
void kn_lb_read_exit(struct kn_lb *x, unsigned parity);

/* kn_lb_route.c. Inside a read section with r the ring it loaded: splits b
 * by endpoint and hands each part to its sub-exporter. Takes ownership of b.
 * KN_OK, or KN_DROP when some spans were dropped (counted). */
int kn_lb_route_batch(struct kn_lb *x, const struct kn_lb_ring *r, struct kn_batch *b);
int kn_lb_slots_init(struct kn_lb *x, uint32_t nshards);
void kn_lb_slots_free(struct kn_lb *x);

#endif
