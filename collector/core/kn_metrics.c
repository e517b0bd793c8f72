/* SPDX-License-Identifier: Apache-2.0
 * kn_metrics: registry and Prometheus text rendering (see kn_metrics.h).
 * Metrics are kept in registration order in one list; rendering groups all
 * series of a name under one HELP/TYPE header, as the exposition format
 * requires. Registration and rendering take the mutex; updates never do. */
#include "kn_metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kn_metrics {
	pthread_mutex_t mu;
	struct kn_metric *head, *tail;
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

int kn_metrics_render(struct kn_metrics *m, char **out, size_t *len)
{
	struct buf b = {.p = malloc(4096), .cap = 4096};
	if (!b.p)
		return -1;
	b.p[0] = '\0';
	pthread_mutex_lock(&m->mu);
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
		put(&b, "# HELP %s %s\n# TYPE %s %s\n", c->name, c->help, c->name,
		    c->type == KN_COUNTER ? "counter" : "gauge");
		for (struct kn_metric *s = c; s; s = s->next) {
			if (strcmp(s->name, c->name) != 0)
				continue;
			const char *lb = s->labels[0] ? "{" : "", *le = s->labels[0] ? "}" : "";
			if (s->type == KN_COUNTER)
				put(&b, "%s%s%s%s %" PRIu64 "\n", s->name, lb, s->labels, le,
				    kn_metric_value(s));
			else {
				int64_t v = s->fn ? s->fn(s->fn_ctx) : (int64_t)kn_metric_value(s);
				put(&b, "%s%s%s%s %" PRId64 "\n", s->name, lb, s->labels, le, v);
			}
		}
	}
	pthread_mutex_unlock(&m->mu);
	if (b.oom) {
		free(b.p);
		return -1;
	}
	*out = b.p;
	*len = b.len;
	return 0;
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
