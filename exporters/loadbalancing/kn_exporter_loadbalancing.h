/* SPDX-License-Identifier: Apache-2.0
 * kn_exporter_loadbalancing: the `loadbalancing` exporter: routes every span
 * by trace id (or by service.name, or by journey id) over a consistent-hash ring
 * (kn_lb_ring.h) to a tier of collectors, so that all spans of a trace reach
 * the same tail-sampling collector. Config, in the OpenTelemetry Collector's
 * shape (exporter/loadbalancingexporter):
 *   loadbalancing:
 *     routing_key: traceID          # traceID (default) | service | journey
 *     journey_id_attribute: journey.id   # journey only: the span attribute with the
 *                                   # journey id; accepted with any key, ignored
 *                                   # (warned when not the default) otherwise
 *     protocol:
 *       otlp:                       # the otlp exporter's config (kn_exporter_otlp.h),
 *         tls: { insecure: true }   # without endpoint: that comes from the resolver
 *     resolver:                     # exactly one of:
 *       static: { hostnames: [ "sampler-0:4317", "10.0.0.2" ] }   # port defaults to 4317
 *       dns: { hostname: sampler.ns.svc.cluster.local, port: 4317, interval: 5s, timeout: 1s }
 * As in the OpenTelemetry Collector, protocol.otlp.endpoint is ignored (with
 * a warning), and the k8s / aws_cloud_map resolvers are not supported.
 *
 * Endpoints: one `otlp` exporter instance per endpoint (kn_exporter_otlp,
 * the endpoint filled in), with its own queue, consumers and retries, and its
 * sender metrics under exporter="<id>/<endpoint>". An unreachable endpoint
 * is retried by its sub-exporter per retry_on_failure, exactly like a plain
 * otlp exporter (the OpenTelemetry Collector does the same: the ring does not
 * route around an endpoint that is down but still resolved).
 *
 * Routing: export() re-indexes each chunk (kn_wire_index_request) and splits
 * it by ring position (kn_wire_split_by); a chunk whose spans all go to one
 * endpoint is passed on by reference without copying. Split copies inherit
 * the chunk's source, accepted time and trace context and are charged to the
 * memory budget when it has room (best effort: they are never dropped for
 * it). With traceID, spans of a consumer trace that is only linked (span
 * links) to a producer trace are routed by their own trace id, so producer
 * and consumer traces may land on different collectors.
 *
 * routing_key journey: the propagated routing key. A span whose FIRST
 * attribute named journey_id_attribute is a string of 32 hex digits (either
 * case) or a bytes_value of 16 bytes, not all zero, is routed by that id,
 * hashed exactly as a trace id (kn_lb_key_trace of the 16 bytes); every
 * other span by its own trace id. A present but invalid value also falls
 * back to the trace id and is counted. The exporter stays stateless: the
 * journey processor (processors/journey, same attribute name) placed before
 * it in the agent's pipeline (receivers -> [journey, batch] -> loadbalancing)
 * writes the head's trace id on every span of every trace of a journey, so
 * producer and consumer traces reach one sampling instance. Limits:
 *  - an agent knows only the journeys whose head passed through it (a
 *    DaemonSet agent sees its node's services): a consumer whose producer
 *    went through another agent gets a journey of its own there (counted by
 *    that journey processor as closed without head) and is routed by its
 *    own trace id, so it may land on another instance than its producer;
 *  - the journey processor holds each trace in the agent for up to its
 *    wait_window (export latency and agent memory);
 *  - spans that reach this exporter without the attribute (another pipeline,
 *    an expired registry entry) go by their trace id.
 * Costs: one scan of each span's top-level fields and attribute keys per
 * routing pass (no allocation); a chunk that must be split is scanned twice.
 * With a single endpoint nothing is scanned (and nothing counted).
 *
 * Resolvers: static builds the ring once at start. dns resolves the
 * hostname (A and AAAA) at start and then every `interval` on a background
 * thread, each lookup bounded by `timeout` (kn_lb_resolve.h); when the set
 * changes, the ring is rebuilt. A failed or empty resolution keeps the
 * current ring (logged, counted): the tier does not vanish because DNS
 * hiccuped.
 *
 * Ring swap: the ring (with the endpoints' sub-exporters in its `user`
 * slots) is immutable and published with an atomic pointer store. Readers
 * (export() on shard workers, never blocking) announce themselves in one of
 * two counters selected by the parity of an epoch number (one atomic add
 * and a re-check of the epoch, retried only if a swap raced with it); a
 * writer publishes the new ring, advances the epoch and waits until the
 * counter of the old parity drains to zero (a grace period: every export()
 * that could have seen the old ring has returned). Only then are the old
 * ring freed and removed endpoints retired. Chosen over refcounts on the
 * ring (a reader would race the free between load and increment) and over
 * ck_epoch (per-thread records for threads this exporter does not own).
 *
 * Removing an endpoint: after the grace period its sub-exporter stops intake
 * and hands back every batch it still holds (kn_exporter_otlp_reclaim ->
 * kn_sender_reclaim): queued batches and those waiting to retry; an attempt
 * in flight finishes first (bounded by protocol.otlp.timeout) and goes back
 * only if it failed. Handed-back batches are routed again on the new ring,
 * so nothing accepted is dropped silently (a full queue elsewhere is counted
 * by that endpoint's sender).
 *
 * Persistent queues (protocol.otlp.sending_queue.storage: a file_storage id):
 * one queue per endpoint, named "<id>/<endpoint>", because each endpoint's
 * sub-exporter sends, retries and finishes its own batches (one queue per
 * exporter would need a record to be done only when every endpoint's part
 * of it is). The cost of that choice is the endpoint set changing across a
 * restart (dns) or during a run: after every ring update the exporter lists
 * its queues on disk whose endpoint is not in the ring (kn_storage list),
 * reads them and routes their batches again on the current ring (appended to
 * the current endpoints' queues before the old record is marked done: a
 * crash in between sends a batch twice, never loses it), then closes them (an
 * emptied queue leaves no file). A retired endpoint's batches held in memory
 * go back through kn_sender_reclaim as above, and their records are marked
 * done once routed again. This runs under the writers' lock, on the thread
 * that updated the ring (start, the dns thread), and takes as long as reading
 * what those queues hold.
 *
 * Metrics (exporter="<id>"): kansatsu_loadbalancer_routed_spans_total{endpoint},
 * kansatsu_loadbalancer_backends (gauge), kansatsu_loadbalancer_backend_updates_total,
 * kansatsu_loadbalancer_resolutions_total{resolver,success},
 * kansatsu_loadbalancer_rerouted_spans_total,
 * (routing_key journey only) kansatsu_loadbalancer_journey_keyed_spans_total{key="journey_id"|"trace_id"},
 * kansatsu_loadbalancer_invalid_journey_id_spans_total,
 * kansatsu_exporter_dropped_spans_total{reason="no_endpoints"|"routing_error"|"shutdown"}.
 *
 * Lifecycle: create checks and copies the config (no threads, no sockets);
 * start resolves, creates and starts the sub-exporters (and the dns thread);
 * shutdown stops the resolver, waits out readers, then shuts every
 * sub-exporter down with the deadline; destroy is NULL-safe. */
#ifndef KN_EXPORTER_LOADBALANCING_H
#define KN_EXPORTER_LOADBALANCING_H

#include <stddef.h>
#include <stdint.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_component.h"
#include "../otlp/kn_exporter_otlp.h"

#define KN_LB_JID_KEY_MAX 256     /* bytes of journey_id_attribute */

struct kn_lb_static_cfg {
	struct kn_strlist hostnames;  /* "host[:port]" */
};

struct kn_lb_dns_cfg {
	char *hostname;
	uint64_t port;                /* default 4317 */
	uint64_t interval_ns;         /* re-resolve period, default 5s */
	uint64_t timeout_ns;          /* one lookup's bound, default 1s */
};

struct kn_lb_resolver_cfg {
	struct kn_lb_static_cfg stat;
	struct kn_lb_dns_cfg dns;
	int has_static, has_dns;      /* set when the key is present (not first: present_off 0 means none) */
};

struct kn_lb_protocol_cfg {
	struct kn_otlpexp_cfg otlp;   /* endpoint ignored */
};

struct kn_lb_cfg {
	char *routing_key;            /* "traceID" | "service" | "journey" */
	char *journey_id_attribute;   /* routing_key journey: span attribute with the journey id; default "journey.id" */
	struct kn_lb_protocol_cfg protocol;
	struct kn_lb_resolver_cfg resolver;
};

extern const struct kn_component kn_exporter_loadbalancing;

/* Replaces the endpoint set of a started instance ("host:port" strings,
 * any order, duplicates ignored): the dns resolver's path, also usable by
 * tests and operators. New endpoints get a started sub-exporter; removed
 * ones are retired as described above (this call waits for that, which can
 * take up to protocol.otlp.timeout). Not callable from inside export().
 * KN_OK (also when nothing changed) or KN_ERR (the ring is unchanged). */
int kn_lb_set_endpoints(void *inst, const char *const *endpoints, size_t n, struct kn_err *err);

/* A copy of the current endpoint list, sorted (free with kn_lb_strlist_free
 * from kn_lb_resolve.h). KN_OK or KN_ERR (OOM). */
int kn_lb_endpoints(void *inst, struct kn_strlist *out);

/* The config table of protocol.otlp: the otlp exporter's table with endpoint
 * optional (for tests and docs). */
const struct kn_cfg_field *kn_lb_otlp_fields(void);

#endif
