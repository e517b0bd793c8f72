/* SPDX-License-Identifier: Apache-2.0
 * The `sli` processor: latency and success SLIs measured across spans, with
 * SLOs, error budgets and burn rates on /metrics.
 *
 *   processors:
 *     sli:
 *       max_series: 200              # dimension sets per SLI (then one overflow series)
 *       join_ttl: 10m                # how long a start span waits for its end span
 *       join_slots: 65536            # local-join map slots per shard
 *       journey_id_attribute: journey.id
 *       write_attributes: false      # sli.<name>.latency_ms / sli.<name>.good on end spans
 *       latency_buckets: [5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 500ms, 1s, 2.5s, 5s, 10s, 30s]
 *       slis:
 *         - name: chat_push
 *           start: { service: api, name: "POST /messages", kind: server, from: any }
 *           end:   { service: notifier, name: push.deliver, attributes: { push.channel: apns } }
 *           threshold: 3s              # good needs latency <= threshold (0 = no latency rule)
 *           success: { status: true, http: true, grpc: true }
 *           objective: 99.9            # percent
 *           window: 30d
 *           dimensions:
 *             - { name: plan, from: head, key: app.plan }
 *             - { name: version, from: resource, key: service.version }
 *
 * An SLI is either one span (`span:` matcher; latency = its duration) or a
 * `start` and an `end` matcher. Each span matching `end` is one event: its
 * latency is end.end - start.start, where start is (from: trace) the
 * earliest span matching `start` seen earlier in the same trace by this
 * shard (a per-shard trace id -> start time map with a TTL: processors see
 * chunks, not whole traces), or (from: journey) the journey head published
 * by the journey processor (kn_journey_registry), looked up by the end span's
 * `journey_id_attribute` (bytes or 32 hex digits; absent: its own trace id);
 * `any` tries the trace first, then the head. Limits, honestly: a start span
 * that is neither the journey head nor in the end span's trace is not joined;
 * an end span that arrives before its start span (in an earlier batch) is
 * not joined; both are counted in kansatsu_sli_unjoined_events_total and not
 * in good/total.
 *
 * Success (on the end span): status is not ERROR; http.response.status_code
 * (or the older http.status_code) < 500; rpc.grpc.status_code as the
 * semantic conventions map it to errors (server spans: UNKNOWN,
 * DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS; other
 * kinds: any non-OK code). good = success and latency <= threshold.
 *
 * Weighting: the SLIs are meant to run before tail sampling, so dropped
 * traces still count. When the input was already sampled, each event counts
 * 1/p where p = (2^56 - th) / 2^56 from the end span's tracestate ot=th:<hex>.
 *
 * Metrics (see kn_sli_render.c): kansatsu_sli_good_events_total,
 * kansatsu_sli_events_total, kansatsu_sli_latency_seconds (histogram with
 * trace_id exemplars in OpenMetrics), kansatsu_sli_objective_ratio,
 * kansatsu_sli_error_budget_remaining_ratio, kansatsu_sli_burn_rate{window=
 * 5m|30m|1h|6h|3d}. Windows count events at the time the collector sees them
 * (the clock), not at span time.
 *
 * Threads: all state is per shard (no locks on the hot path); the scrape
 * thread sums the shards through relaxed atomics. A new dimension set takes a
 * mutex once per shard and set. */
#ifndef KN_SLI_H
#define KN_SLI_H

#include <stdint.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_component.h"

enum kn_sli_from { KN_SLI_FROM_SPAN = 0, KN_SLI_FROM_RESOURCE, KN_SLI_FROM_HEAD };
enum kn_sli_start { KN_SLI_START_ANY = 0, KN_SLI_START_TRACE, KN_SLI_START_JOURNEY };

/* A span matcher; NULL / -1 / empty means "any". */
struct kn_sli_match {
	int present;                 /* the block was given */
	char *service;               /* resource service.name (head: its service) */
	char *name;                  /* span name, exact */
	char *kind;                  /* internal|server|client|producer|consumer */
	struct kn_strmap attributes; /* span (else resource) attribute == value, as text */
	char *from;                  /* start only: any|trace|journey */
	/* derived at create */
	int kind_v;                  /* SpanKind, -1 = any */
	int from_v;                  /* enum kn_sli_start */
};

struct kn_sli_dim {
	char *name;                  /* Prometheus label name */
	char *from;                  /* span | resource | head */
	char *key;                   /* attribute key; for head also "service" / "name" */
	int from_v;
};

struct kn_sli_dims {
	struct kn_sli_dim *v;
	size_t n;
};

struct kn_sli_success {
	int status, http, grpc;
};

struct kn_sli_def {
	char *name;
	struct kn_sli_match span, start, end;
	uint64_t threshold_ns;       /* 0: no latency condition */
	struct kn_sli_success success;
	double objective;            /* percent, (0, 100) */
	uint64_t window_ns;          /* the SLO window (e.g. 30d) */
	struct kn_sli_dims dims;
};

struct kn_sli_list {
	struct kn_sli_def *v;
	size_t n;
};

struct kn_sli_cfg {
	struct kn_sli_list slis;
	uint64_t max_series;
	uint64_t join_ttl_ns;
	uint64_t join_slots;
	char *journey_id_attribute;
	int write_attributes;
	struct kn_strlist latency_buckets;
};

extern const struct kn_component kn_processor_sli;

/* Tests: a unix-nanosecond clock for the windows (default kn_unix_ns), and
 * the journey registry to join heads against (default: the journey
 * processor's shared registry, when linked). Call before traffic. */
struct kn_journey_registry;
void kn_sli_set_clock(void *inst, uint64_t (*now_unix_ns)(void *ctx), void *ctx);
void kn_sli_set_journey_registry(void *inst, const struct kn_journey_registry *r);

#endif
