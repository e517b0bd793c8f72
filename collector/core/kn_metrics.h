/* SPDX-License-Identifier: Apache-2.0
 * kn_metrics: the collector's own metrics, rendered as Prometheus text on
 * :8888/metrics. Registration happens at create/start time (a mutex guards the
 * registry); updates on the hot path are single relaxed atomic adds on a
 * counter the caller holds a pointer to. Metric names follow Prometheus
 * conventions: kansatsu_<what>_<unit>[_total]. Labels are given pre-rendered
 * ("receiver=\"otlp\",transport=\"grpc\"") and must be escaped by the caller
 * (kn_metrics_label_escape helps).
 *
 * Ownership: the registry owns every metric; pointers stay valid until
 * kn_metrics_destroy. Registering the same name+labels twice returns the
 * same metric. */
#ifndef KN_METRICS_H
#define KN_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>

enum kn_metric_type { KN_COUNTER, KN_GAUGE };

struct kn_metric {
	_Atomic uint64_t v;      /* counters; gauges store int64 bits */
	/* registry-private fields follow */
	enum kn_metric_type type;
	char *name, *help, *labels;
	int64_t (*fn)(void *ctx); /* gauge read at render time, if set */
	void *fn_ctx;
	struct kn_metric *next;
};

struct kn_metrics;

struct kn_metrics *kn_metrics_create(void);
void kn_metrics_destroy(struct kn_metrics *m);

struct kn_metric *kn_metrics_counter(struct kn_metrics *m, const char *name,
				     const char *help, const char *labels);
struct kn_metric *kn_metrics_gauge(struct kn_metrics *m, const char *name,
				   const char *help, const char *labels);
/* A gauge computed at render time by fn(ctx) (ring occupancy, queue bytes). */
struct kn_metric *kn_metrics_gauge_fn(struct kn_metrics *m, const char *name,
				      const char *help, const char *labels,
				      int64_t (*fn)(void *ctx), void *ctx);

static inline void kn_counter_add(struct kn_metric *c, uint64_t n)
{
	atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

static inline void kn_gauge_set(struct kn_metric *g, int64_t v)
{
	atomic_store_explicit(&g->v, (uint64_t)v, memory_order_relaxed);
}

static inline void kn_gauge_add(struct kn_metric *g, int64_t d)
{
	atomic_fetch_add_explicit(&g->v, (uint64_t)d, memory_order_relaxed);
}

static inline uint64_t kn_metric_value(const struct kn_metric *c)
{
	return atomic_load_explicit(&c->v, memory_order_relaxed);
}

/* Renders all metrics as Prometheus text exposition format 0.0.4 into a new
 * malloc'd buffer. Returns 0, or -1 on OOM. */
int kn_metrics_render(struct kn_metrics *m, char **out, size_t *len);

/* Escapes a label value (backslash, quote, newline) into out[cap]. */
void kn_metrics_label_escape(const char *in, char *out, size_t cap);

#endif
