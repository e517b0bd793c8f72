/* SPDX-License-Identifier: Apache-2.0
 * kn_metrics: registry and Prometheus text rendering (see kn_metrics.h).
 * Metrics are kept in registration order in one list; rendering groups all
 * series of a name under one HELP/TYPE header, as the exposition format
 * requires. Registration and rendering take the mutex; updates never do.
 * Collectors (kn_metrics_collector) run under the same mutex after the
 * registered metrics, writing through struct kn_metrics_out, which knows the
 * format's naming rules (counter families, exemplars, "# EOF"). */
#include "kn_metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct kn_collector {
	kn_metrics_collect_fn fn;
	void *ctx;
	struct kn_collector *next;
};

struct kn_metrics {
	pthread_mutex_t mu;
	struct kn_metric *head, *tail;
	struct kn_collector *collectors;   /* registration order */
};

struct kn_metrics *kn_metrics_create(void)
{
	struct kn_metrics *m = calloc(1, sizeof *m);
	if (m)
		pthread_mutex_init(&m->mu, NULL);
	return m;
}

void kn_metrics_destroy(struct kn_metrics *m)
{
	if (!m)
		return;
	struct kn_metric *c = m->head;
	while (c) {
		struct kn_metric *n = c->next;
		free(c->name);
		free(c->help);
		free(c->labels);
		free(c);
		c = n;
	}
	while (m->collectors) {
		struct kn_collector *n = m->collectors->next;
		free(m->collectors);
		m->collectors = n;
	}
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static struct kn_metric *reg(struct kn_metrics *m, enum kn_metric_type type, const char *name,
			     const char *help, const char *labels, int64_t (*fn)(void *), void *ctx)
{
	if (!labels)
		labels = "";
	pthread_mutex_lock(&m->mu);
	for (struct kn_metric *c = m->head; c; c = c->next) {
		if (c->type == type && strcmp(c->name, name) == 0 && strcmp(c->labels, labels) == 0) {
			pthread_mutex_unlock(&m->mu);
			return c;
		}
	}
	struct kn_metric *c = calloc(1, sizeof *c);
	if (c) {
		atomic_init(&c->v, 0);
		c->type = type;
		c->name = strdup(name);
		c->help = strdup(help ? help : "");
		c->labels = strdup(labels);
		c->fn = fn;
		c->fn_ctx = ctx;
		if (!c->name || !c->help || !c->labels) {
			free(c->name);
			free(c->help);
			free(c->labels);
			free(c);
			c = NULL;
		} else {
			if (m->tail)
				m->tail->next = c;
			else
				m->head = c;
			m->tail = c;
		}
	}
	pthread_mutex_unlock(&m->mu);
	if (!c) {
		/* Out of memory at registration: hand out a private sink so callers
		 * never need a NULL check on the hot path. It leaks by design. */
		static struct kn_metric sink;
		return &sink;
	}
	return c;
}

struct kn_metric *kn_metrics_counter(struct kn_metrics *m, const char *name, const char *help,
				     const char *labels)
{
	return reg(m, KN_COUNTER, name, help, labels, NULL, NULL);
}

struct kn_metric *kn_metrics_processor_counter(struct kn_metrics *m, const char *name,
					       const char *help, const char *esc,
					       const char *extra)
{
	char labels[256];
	snprintf(labels, sizeof labels, "processor=\"%s\"%s%s", esc, extra ? "," : "",
		 extra ? extra : "");
	return kn_metrics_counter(m, name, help, labels);
}

int64_t kn_metrics_sum_blocks(const void *first, size_t stride, uint32_t n, size_t off)
{
	int64_t v = 0;
	for (uint32_t i = 0; i < n; i++)
		v += atomic_load_explicit((_Atomic int64_t *)((char *)first + i * stride + off),
					  memory_order_relaxed);
	return v;
}

struct kn_metric *kn_metrics_gauge(struct kn_metrics *m, const char *name, const char *help,
				   const char *labels)
{
	return reg(m, KN_GAUGE, name, help, labels, NULL, NULL);
}

struct kn_metric *kn_metrics_gauge_fn(struct kn_metrics *m, const char *name, const char *help,
				      const char *labels, int64_t (*fn)(void *ctx), void *ctx)
{
	return reg(m, KN_GAUGE, name, help, labels, fn, ctx);
}

struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

struct kn_metrics_out {
	struct buf b;
	enum kn_metrics_format fmt;
	enum kn_metrics_family type;
	char name[160];
};

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

/* HELP text: 0.0.4 escapes backslash and newline, OpenMetrics also quotes. */
static void put_help(struct buf *b, const char *help, int om)
{
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			put(b, "\\\\");
		else if (*p == '\n')
			put(b, "\\n");
		else if (*p == '"' && om)
			put(b, "\\\"");
		else
			put(b, "%c", *p);
	}
}

static void put_double(struct buf *b, double v)
{
	if (isnan(v))
		put(b, "NaN");
	else if (isinf(v))
		put(b, v > 0 ? "+Inf" : "-Inf");
	else {
		/* the shortest of %.15g / %.17g that reads back exactly */
		char t[40];
		snprintf(t, sizeof t, "%.15g", v);
		if (strtod(t, NULL) != v)
			snprintf(t, sizeof t, "%.17g", v);
		put(b, "%s", t);
	}
}

static void render_registered(struct kn_metrics *m, struct buf *b, int om)
{
	for (struct kn_metric *c = m->head; c; c = c->next) {
		/* Render each name once, at its first registration, with every series. */
		int first = 1;
		for (struct kn_metric *p = m->head; p != c; p = p->next)
			if (strcmp(p->name, c->name) == 0) {
				first = 0;
				break;
			}
		if (!first)
			continue;
		const char *type = c->type == KN_COUNTER ? "counter" : "gauge";
		int namelen = (int)strlen(c->name);
		if (om && c->type == KN_COUNTER) {
			if (ends_with(c->name, "_total"))
				namelen -= 6;
			else
				type = "unknown";
		}
		put(b, "# HELP %.*s ", namelen, c->name);
		put_help(b, c->help, om);
		put(b, "\n# TYPE %.*s %s\n", namelen, c->name, type);
		for (struct kn_metric *s = c; s; s = s->next) {
			if (strcmp(s->name, c->name) != 0)
				continue;
			const char *lb = s->labels[0] ? "{" : "", *le = s->labels[0] ? "}" : "";
			if (s->type == KN_COUNTER)
				put(b, "%s%s%s%s %" PRIu64 "\n", s->name, lb, s->labels, le,
				    kn_metric_value(s));
			else {
				int64_t v = s->fn ? s->fn(s->fn_ctx) : (int64_t)kn_metric_value(s);
				put(b, "%s%s%s%s %" PRId64 "\n", s->name, lb, s->labels, le, v);
			}
		}
	}
}

enum kn_metrics_format kn_metrics_out_format(const struct kn_metrics_out *o)
{
	return o->fmt;
}

void kn_metrics_out_family(struct kn_metrics_out *o, enum kn_metrics_family type,
			   const char *name, const char *help)
{
	int om = o->fmt == KN_METRICS_OPENMETRICS;
	static const char *const types[] = {"counter", "gauge", "histogram"};
	o->type = type;
	snprintf(o->name, sizeof o->name, "%s", name);
	/* 0.0.4 names a counter family by its sample name. */
	const char *suf = (!om && type == KN_MFAM_COUNTER) ? "_total" : "";
	put(&o->b, "# HELP %s%s ", o->name, suf);
	put_help(&o->b, help ? help : "", om);
	put(&o->b, "\n# TYPE %s%s %s\n", o->name, suf, types[type]);
}

void kn_metrics_out_sample(struct kn_metrics_out *o, const char *suffix, const char *labels,
			   double v, const struct kn_metrics_exemplar *ex)
{
	if (!labels)
		labels = "";
	const char *lb = labels[0] ? "{" : "", *le = labels[0] ? "}" : "";
	put(&o->b, "%s%s%s%s%s ", o->name, suffix ? suffix : "", lb, labels, le);
	put_double(&o->b, v);
	if (ex && o->fmt == KN_METRICS_OPENMETRICS && suffix &&
	    (strcmp(suffix, "_bucket") == 0 || strcmp(suffix, "_total") == 0)) {
		put(&o->b, " # {%s} ", ex->labels ? ex->labels : "");
		put_double(&o->b, ex->value);
		if (ex->ts > 0)
			put(&o->b, " %.3f", ex->ts);
	}
	put(&o->b, "\n");
}

int kn_metrics_render_fmt(struct kn_metrics *m, enum kn_metrics_format fmt, char **out,
			  size_t *len)
{
	struct kn_metrics_out o = {.b = {.p = malloc(4096), .cap = 4096}, .fmt = fmt};
	if (!o.b.p)
		return -1;
	o.b.p[0] = '\0';
	pthread_mutex_lock(&m->mu);
	render_registered(m, &o.b, fmt == KN_METRICS_OPENMETRICS);
	for (struct kn_collector *c = m->collectors; c; c = c->next)
		c->fn(c->ctx, &o);
	pthread_mutex_unlock(&m->mu);
	if (fmt == KN_METRICS_OPENMETRICS)
		put(&o.b, "# EOF\n");
	if (o.b.oom) {
		free(o.b.p);
		return -1;
	}
	*out = o.b.p;
	*len = o.b.len;
	return 0;
}

int kn_metrics_render(struct kn_metrics *m, char **out, size_t *len)
{
	return kn_metrics_render_fmt(m, KN_METRICS_PROMETHEUS, out, len);
}

int kn_metrics_collector(struct kn_metrics *m, kn_metrics_collect_fn fn, void *ctx)
{
	int rc = 0;
	pthread_mutex_lock(&m->mu);
	struct kn_collector **pp = &m->collectors;
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->fn == fn && (*pp)->ctx == ctx)
			goto out;
	struct kn_collector *c = calloc(1, sizeof *c);
	if (!c) {
		rc = -1;
		goto out;
	}
	c->fn = fn;
	c->ctx = ctx;
	*pp = c;
out:
	pthread_mutex_unlock(&m->mu);
	return rc;
}

void kn_metrics_collector_remove(struct kn_metrics *m, kn_metrics_collect_fn fn, void *ctx)
{
	pthread_mutex_lock(&m->mu);
	for (struct kn_collector **pp = &m->collectors; *pp; pp = &(*pp)->next) {
		if ((*pp)->fn == fn && (*pp)->ctx == ctx) {
			struct kn_collector *c = *pp;
			*pp = c->next;
			free(c);
			break;
		}
	}
	pthread_mutex_unlock(&m->mu);
}

/* One media range of an Accept header: its type and q (default 1). */
static double accept_q(const char *p, const char *end)
{
	double q = 1;
	for (const char *s = p; s < end; s++) {
		if (*s != ';')
			continue;
		s++;
		while (s < end && (*s == ' ' || *s == '\t'))
			s++;
		if (end - s >= 2 && (s[0] == 'q' || s[0] == 'Q') && s[1] == '=') {
			char num[16];
			size_t n = 0;
			for (s += 2; s < end && n + 1 < sizeof num && *s != ';' && *s != ' '; s++)
				num[n++] = *s;
			num[n] = '\0';
			char *e;
			double v = strtod(num, &e);
			q = (e != num && v >= 0 && v <= 1) ? v : 0;
			s--;
		}
	}
	return q;
}

static int range_is(const char *p, const char *end, const char *type)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	size_t n = strlen(type);
	if ((size_t)(end - p) < n || strncasecmp(p, type, n) != 0)
		return 0;
	p += n;
	return p == end || *p == ';' || *p == ' ' || *p == '\t';
}

enum kn_metrics_format kn_metrics_negotiate(const char *accept, size_t len)
{
	double om = 0, plain = 0;
	if (!accept)
		return KN_METRICS_PROMETHEUS;
	const char *p = accept, *end = accept + len;
	while (p < end) {
		const char *e = memchr(p, ',', (size_t)(end - p));
		if (!e)
			e = end;
		double q = accept_q(p, e);
		if (range_is(p, e, "application/openmetrics-text")) {
			if (q > om)
				om = q;
		} else if (range_is(p, e, "text/plain") || range_is(p, e, "*/*") ||
			   range_is(p, e, "text/*")) {
			if (q > plain)
				plain = q;
		}
		p = e + 1;
	}
	return om > 0 && om >= plain ? KN_METRICS_OPENMETRICS : KN_METRICS_PROMETHEUS;
}

const char *kn_metrics_content_type(enum kn_metrics_format fmt)
{
	return fmt == KN_METRICS_OPENMETRICS ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
					     : "text/plain; version=0.0.4; charset=utf-8";
}

void kn_metrics_label_escape(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	for (; *in && o + 2 < cap; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}
