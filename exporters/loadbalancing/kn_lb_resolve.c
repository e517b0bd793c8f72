/* SPDX-License-Identifier: Apache-2.0
 * kn_lb_resolve: static entries and DNS lookups with a bounded wait (see
 * kn_lb_resolve.h). The helper thread and the waiter share one struct under
 * `mu`; the helper only writes its result and signals, the waiter owns
 * everything else and joins the helper once it is done. */
#include "kn_lb_resolve.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../collector/core/kn_clock.h"

int kn_lb_normalize(const char *in, const char *path, char *out, size_t cap, struct kn_err *err)
{
	char host[300];
	const char *port = NULL;
	if (!in || !*in)
		return kn_errf(err, "%s: empty endpoint", path);
	if (strstr(in, "://") || strchr(in, '/'))
		return kn_errf(err, "%s: expected host[:port] without scheme or path, got \"%s\"", path, in);
	if (in[0] == '[') {
		const char *rb = strchr(in, ']');
		if (!rb || rb == in + 1 || (rb[1] != '\0' && rb[1] != ':') || (size_t)(rb - in) >= sizeof host)
			return kn_errf(err, "%s: expected [v6-address]:port, got \"%s\"", path, in);
		memcpy(host, in, (size_t)(rb - in) + 1);
		host[rb - in + 1] = '\0';
		if (rb[1] == ':')
			port = rb + 2;
	} else {
		const char *c = strchr(in, ':');
		if (c && strchr(c + 1, ':'))
			return kn_errf(err, "%s: an IPv6 address needs brackets: \"[%s]:4317\"", path, in);
		size_t hl = c ? (size_t)(c - in) : strlen(in);
		if (hl == 0 || hl >= sizeof host)
			return kn_errf(err, "%s: expected host[:port], got \"%s\"", path, in);
		memcpy(host, in, hl);
		host[hl] = '\0';
		if (c)
			port = c + 1;
	}
	long pn = KN_LB_DEFAULT_PORT;
	if (port) {
		if (!*port || strlen(port) > 5)
			return kn_errf(err, "%s: bad port in \"%s\"", path, in);
		for (const char *p = port; *p; p++)
			if (!isdigit((unsigned char)*p))
				return kn_errf(err, "%s: bad port in \"%s\"", path, in);
		pn = strtol(port, NULL, 10);
		if (pn < 1 || pn > 65535)
			return kn_errf(err, "%s: port must be in [1, 65535], got \"%s\"", path, in);
	}
	if ((size_t)snprintf(out, cap, "%s:%ld", host, pn) >= cap)
		return kn_errf(err, "%s: endpoint too long", path);
	return KN_OK;
}

void kn_lb_strlist_free(struct kn_strlist *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

struct kn_lb_lookup {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	int running;            /* th exists and is not joined yet */
	int done;               /* the helper finished (under mu) */
	char *host;             /* the helper's input, freed after join */
	int gai_rc;
	struct addrinfo *res;
};

struct kn_lb_lookup *kn_lb_lookup_new(void)
{
	struct kn_lb_lookup *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	return l;
}

static void *helper_main(void *arg)
{
	struct kn_lb_lookup *l = arg;
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(l->host, NULL, &hints, &res);
	pthread_mutex_lock(&l->mu);
	l->gai_rc = rc;
	l->res = rc == 0 ? res : NULL;
	l->done = 1;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Joins a finished (or, when wait is set, any) helper and frees its result. */
static void collect(struct kn_lb_lookup *l)
{
	pthread_join(l->th, NULL);
	l->running = 0;
	if (l->res)
		freeaddrinfo(l->res);
	l->res = NULL;
	free(l->host);
	l->host = NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int format_all(const struct addrinfo *res, uint16_t port, const char *host, struct kn_strlist *out,
		      struct kn_err *err)
{
	size_t n = 0;
	for (const struct addrinfo *a = res; a; a = a->ai_next)
		n++;
	out->v = calloc(n ? n : 1, sizeof *out->v);
	out->n = 0;
	if (!out->v)
		return kn_errf(err, "resolving \"%s\": out of memory", host);
	for (const struct addrinfo *a = res; a; a = a->ai_next) {
		char ip[INET6_ADDRSTRLEN], ep[INET6_ADDRSTRLEN + 16];
		if (a->ai_family == AF_INET) {
			inet_ntop(AF_INET, &((const struct sockaddr_in *)a->ai_addr)->sin_addr, ip, sizeof ip);
			snprintf(ep, sizeof ep, "%s:%u", ip, port);
		} else if (a->ai_family == AF_INET6) {
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a->ai_addr)->sin6_addr, ip, sizeof ip);
			snprintf(ep, sizeof ep, "[%s]:%u", ip, port);
		} else {
			continue;
		}
		if (!(out->v[out->n] = strdup(ep))) {
			kn_lb_strlist_free(out);
			return kn_errf(err, "resolving \"%s\": out of memory", host);
		}
		out->n++;
	}
	qsort(out->v, out->n, sizeof *out->v, cmp_str);
	size_t w = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (w > 0 && strcmp(out->v[w - 1], out->v[i]) == 0) {
			free(out->v[i]);
			continue;
		}
		out->v[w++] = out->v[i];
	}
	out->n = w;
	return KN_OK;
}

int kn_lb_lookup_run(struct kn_lb_lookup *l, const char *host, uint16_t port, uint64_t timeout_ns,
		     struct kn_strlist *out, struct kn_err *err)
{
	out->v = NULL;
	out->n = 0;
	if (l->running) {
		pthread_mutex_lock(&l->mu);
		int done = l->done;
		pthread_mutex_unlock(&l->mu);
		if (!done) {
			kn_errf(err, "resolving \"%s\": previous lookup still running", host);
			return KN_AGAIN;
		}
		collect(l); /* a late answer to a timed-out lookup: stale, discarded */
	}
	l->host = strdup(host);
	if (!l->host)
		return kn_errf(err, "resolving \"%s\": out of memory", host);
	l->done = 0;
	l->gai_rc = 0;
	int e = pthread_create(&l->th, NULL, helper_main, l);
	if (e != 0) {
		free(l->host);
		l->host = NULL;
		return kn_errf(err, "resolving \"%s\": cannot start a thread: %s", host, strerror(e));
	}
	l->running = 1;
	uint64_t until = kn_now_ns() + timeout_ns;
	struct timespec ts = {.tv_sec = (time_t)(until / KN_NS_PER_SEC), .tv_nsec = (long)(until % KN_NS_PER_SEC)};
	pthread_mutex_lock(&l->mu);
	while (!l->done) {
		if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT && !l->done)
			break;
	}
	int done = l->done;
	pthread_mutex_unlock(&l->mu);
	if (!done) {
		char b[32];
		kn_errf(err, "resolving \"%s\": no answer within %s", host, kn_format_duration(timeout_ns, b, sizeof b));
		return KN_AGAIN;
	}
	int rc = KN_OK;
	if (l->gai_rc != 0)
		rc = kn_errf(err, "resolving \"%s\": %s", host, gai_strerror(l->gai_rc));
	else
		rc = format_all(l->res, port, host, out, err);
	collect(l);
	return rc;
}

void kn_lb_lookup_free(struct kn_lb_lookup *l)
{
	if (!l)
		return;
	if (l->running)
		collect(l);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}
