/* SPDX-License-Identifier: Apache-2.0
 * kn_lb_ring: building and searching the consistent-hash ring (the hash and
 * the layout are specified in kn_lb_ring.h; keep the two in step). */
#include "kn_lb_ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t kn_lb_hash(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_point(const void *a, const void *b)
{
	const struct kn_lb_point *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->ep < y->ep ? -1 : x->ep > y->ep;
}

void kn_lb_ring_free(struct kn_lb_ring *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; r->endpoints && i < r->n; i++)
		free(r->endpoints[i]);
	free(r->endpoints);
	free(r->user);
	free(r->points);
	free(r);
}

struct kn_lb_ring *kn_lb_ring_build(const char *const *endpoints, size_t n, struct kn_err *err)
{
	struct kn_lb_ring *r = NULL;
	char **sorted = NULL;
	if (n == 0) {
		kn_errf(err, "load-balancing ring: no endpoints");
		return NULL;
	}
	if (n > UINT32_MAX / KN_LB_POINTS) {
		kn_errf(err, "load-balancing ring: %zu endpoints is too many", n);
		return NULL;
	}
	sorted = calloc(n, sizeof *sorted);
	r = calloc(1, sizeof *r);
	if (!sorted || !r)
		goto oom;
	memcpy(sorted, endpoints, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, cmp_str);
	r->endpoints = calloc(n, sizeof *r->endpoints);
	r->user = calloc(n, sizeof *r->user);
	if (!r->endpoints || !r->user)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		if (r->n > 0 && strcmp(r->endpoints[r->n - 1], sorted[i]) == 0)
			continue;
		if (!(r->endpoints[r->n] = strdup(sorted[i])))
			goto oom;
		r->n++;
	}
	r->npoints = r->n * KN_LB_POINTS;
	r->points = malloc((size_t)r->npoints * sizeof *r->points);
	if (!r->points)
		goto oom;
	for (uint32_t e = 0; e < r->n; e++) {
		size_t len = strlen(r->endpoints[e]);
		char *text = malloc(len + 16);
		if (!text)
			goto oom;
		memcpy(text, r->endpoints[e], len);
		for (uint32_t i = 0; i < KN_LB_POINTS; i++) {
			int k = snprintf(text + len, 16, "#%u", i);
			struct kn_lb_point *pt = &r->points[e * KN_LB_POINTS + i];
			pt->hash = kn_lb_hash(text, len + (size_t)k);
			pt->ep = e;
		}
		free(text);
	}
	qsort(r->points, r->npoints, sizeof *r->points, cmp_point);
	free(sorted);
	return r;
oom:
	kn_errf(err, "load-balancing ring: out of memory");
	free(sorted);
	kn_lb_ring_free(r);
	return NULL;
}

uint32_t kn_lb_ring_lookup(const struct kn_lb_ring *r, uint64_t key_hash)
{
	uint32_t lo = 0, hi = r->npoints; /* first point with hash >= key in [lo, hi] */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (r->points[mid].hash < key_hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return r->points[lo == r->npoints ? 0 : lo].ep;
}

int kn_lb_ring_find(const struct kn_lb_ring *r, const char *endpoint)
{
	uint32_t lo = 0, hi = r ? r->n : 0;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->endpoints[mid], endpoint);
		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int kn_lb_ring_same(const struct kn_lb_ring *a, const struct kn_lb_ring *b)
{
	uint32_t na = a ? a->n : 0, nb = b ? b->n : 0;
	if (na != nb)
		return 0;
	for (uint32_t i = 0; i < na; i++)
		if (strcmp(a->endpoints[i], b->endpoints[i]) != 0)
			return 0;
	return 1;
}
