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
/* A processor's counter: labels processor="esc" (the component id, already
 * escaped) followed by `extra` (more k="v" pairs) when not NULL. */
struct kn_metric *kn_metrics_processor_counter(struct kn_metrics *m, const char *name,
					       const char *help, const char *esc,
					       const char *extra);
/* The sum of the _Atomic int64_t at byte offset `off` of each of n blocks of
 * `stride` bytes from `first`: per-shard gauges that shard workers publish
 * and a gauge_fn adds up at render time. */
int64_t kn_metrics_sum_blocks(const void *first, size_t stride, uint32_t n, size_t off);
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

/* ---- Formats and collectors ----
 *
 * Two text formats are rendered: Prometheus 0.0.4 (kn_metrics_render) and
 * OpenMetrics 1.0 (content type "application/openmetrics-text;
 * version=1.0.0"), which differ in family naming and exemplars:
 *  - a counter family is named WITHOUT "_total" in OpenMetrics' HELP/TYPE
 *    lines and its samples carry "_total"; in 0.0.4 HELP/TYPE name the
 *    sample name itself. A registered counter whose name does not end in
 *    "_total" is typed "unknown" in OpenMetrics (the rule forbids it as a
 *    counter there).
 *  - exemplars ("... # {trace_id=\"..\"} 0.25 1700000000.000") appear only in
 *    OpenMetrics, on _bucket and _total samples;
 *  - OpenMetrics ends with "# EOF".
 *
 * A collector is a callback run at render time, under the registry mutex,
 * that appends whole families (histograms, gauges computed from windows)
 * through a struct kn_metrics_out. It runs on the scraping thread: it must
 * only read state the hot path publishes (relaxed atomics), never block on a
 * hot path. Collector families are written after the registered metrics, in
 * registration order. A collector must not use a family name that is also
 * registered with kn_metrics_counter/gauge. */
enum kn_metrics_format { KN_METRICS_PROMETHEUS = 0, KN_METRICS_OPENMETRICS = 1 };
enum kn_metrics_family { KN_MFAM_COUNTER, KN_MFAM_GAUGE, KN_MFAM_HISTOGRAM };

struct kn_metrics_out;   /* the render buffer, handed to collectors */

/* An exemplar: pre-rendered, escaped labels ("trace_id=\"4bf9...\""), the
 * observed value and its unix time in seconds (ts <= 0: none). */
struct kn_metrics_exemplar {
	const char *labels;
	double value;
	double ts;
};

typedef void (*kn_metrics_collect_fn)(void *ctx, struct kn_metrics_out *out);

/* Adds a collector; KN_OK (0) or -1 on OOM. The same fn+ctx twice is one. */
int kn_metrics_collector(struct kn_metrics *m, kn_metrics_collect_fn fn, void *ctx);
/* Removes it; after return no render calls fn(ctx) any more (waits for a
 * render in progress). Unknown fn+ctx: no-op. */
void kn_metrics_collector_remove(struct kn_metrics *m, kn_metrics_collect_fn fn, void *ctx);

/* Inside a collector: the format being rendered. */
enum kn_metrics_format kn_metrics_out_format(const struct kn_metrics_out *o);
/* Starts a family. `name` is the base name: no "_total" for counters, no
 * "_bucket"/"_sum"/"_count" for histograms. help: one line, no newline. */
void kn_metrics_out_family(struct kn_metrics_out *o, enum kn_metrics_family type,
			   const char *name, const char *help);
/* One sample of the current family: base name + suffix ("" gauge, "_total"
 * counter, "_bucket" / "_count" / "_sum" histogram) with pre-rendered,
 * escaped labels ("" for none; a bucket's labels include le="..."). ex may
 * be NULL; it is written only in OpenMetrics on _bucket / _total samples.
 * Values are printed exactly (shortest exact form; +Inf, -Inf, NaN by name). */
void kn_metrics_out_sample(struct kn_metrics_out *o, const char *suffix, const char *labels,
			   double v, const struct kn_metrics_exemplar *ex);

/* Renders every registered metric and every collector in `fmt` into a new
 * malloc'd buffer. Returns 0, or -1 on OOM. */
int kn_metrics_render_fmt(struct kn_metrics *m, enum kn_metrics_format fmt, char **out,
			  size_t *len);

/* Picks the format for an HTTP Accept header value (may be NULL / not
 * NUL-terminated, len bytes): OpenMetrics when a media range
 * application/openmetrics-text has q > 0 and a q at least that of every
 * text/plain and * / * range, else Prometheus 0.0.4. */
enum kn_metrics_format kn_metrics_negotiate(const char *accept, size_t len);
/* The Content-Type that goes with a format. */
const char *kn_metrics_content_type(enum kn_metrics_format fmt);

#endif
