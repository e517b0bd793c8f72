/* SPDX-License-Identifier: Apache-2.0
 * kn_sli_series: dimension sets and the per-shard series behind them.
 *
 * The dimension table of an SLI gives each distinct encoded dimension set an
 * id below max_series, once, for all shards: the cardinality bound is global.
 * A shard first looks a set up in its own small cache (hash -> id, no lock);
 * on a miss it takes the table's mutex (once per shard and set), and when
 * the table is full the set goes to the overflow series (id == cap) without
 * taking the mutex again. Published entries never change, so the scrape
 * thread reads keys and labels of ids below the published count freely.
 *
 * Series are allocated on a shard's first event for an id (one allocation of
 * a few KiB, never per span) and freed with the shard. */
#include <stdio.h>
#include <stdlib.h>

#include "../../collector/core/kn_metrics.h"
#include "kn_sli_int.h"

static uint64_t key_hash(const char *k, uint32_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (uint32_t i = 0; i < n; i++) {
		h ^= (uint8_t)k[i];
		h *= 1099511628211ull;
	}
	return h | 1; /* never 0 */
}

static uint32_t pow2_at_least(uint64_t n)
{
	uint32_t p = 16;
	while (p < n && p < (1u << 30))
		p <<= 1;
	return p;
}

/* sli="name" then one label per dimension from the encoded set (each value
 * is a length byte and its bytes, see kn_sli_processor.c). */
static char *render_labels(const struct kn_sli_def *d, const char *key, uint32_t keylen)
{
	size_t cap = 64 + strlen(d->name) * 2 + (size_t)keylen * 2;
	for (size_t i = 0; i < d->dims.n; i++)
		cap += strlen(d->dims.v[i].name) + 4;
	char *out = malloc(cap), esc[2 * KN_SLI_VALUE_MAX + 2], val[KN_SLI_VALUE_MAX + 1];
	if (!out)
		return NULL;
	char ename[256];
	kn_metrics_label_escape(d->name, ename, sizeof ename);
	size_t o = (size_t)snprintf(out, cap, "sli=\"%s\"", ename);
	uint32_t p = 0;
	for (size_t i = 0; i < d->dims.n && p < keylen; i++) {
		uint32_t n = (uint8_t)key[p++];
		if (n > keylen - p)
			n = keylen - p;
		memcpy(val, key + p, n);
		val[n] = '\0';
		p += n;
		kn_metrics_label_escape(val, esc, sizeof esc);
		o += (size_t)snprintf(out + o, cap - o, ",%s=\"%s\"", d->dims.v[i].name, esc);
	}
	return out;
}

int kn_sli_dimtab_init(struct kn_sli_dimtab *t, const struct kn_sli_def *d, uint32_t cap)
{
	memset(t, 0, sizeof *t);
	pthread_mutex_init(&t->mu, NULL);
	atomic_init(&t->n, 0);
	t->def = d;
	t->cap = cap;
	t->icap = pow2_at_least((uint64_t)cap * 2);
	t->keys = calloc(cap, sizeof *t->keys);
	t->keylens = calloc(cap, sizeof *t->keylens);
	t->labels = calloc(cap, sizeof *t->labels);
	t->index = calloc(t->icap, sizeof *t->index);
	char ename[256];
	kn_metrics_label_escape(d->name, ename, sizeof ename);
	size_t ol = strlen(ename) + 40;
	t->overflow_labels = malloc(ol);
	if (!t->keys || !t->keylens || !t->labels || !t->index || !t->overflow_labels)
		return -1;
	snprintf(t->overflow_labels, ol, "sli=\"%s\",sli_overflow=\"true\"", ename);
	return 0;
}

void kn_sli_dimtab_free(struct kn_sli_dimtab *t)
{
	if (!t || !t->def)
		return; /* never initialised */
	uint32_t n = atomic_load_explicit(&t->n, memory_order_relaxed);
	for (uint32_t i = 0; i < n && t->keys; i++) {
		free(t->keys[i]);
		free(t->labels[i]);
	}
	free(t->keys);
	free(t->keylens);
	free(t->labels);
	free(t->index);
	free(t->overflow_labels);
	pthread_mutex_destroy(&t->mu);
	memset(t, 0, sizeof *t);
}

/* The id of key, or cap when absent. */
static uint32_t dimtab_lookup(const struct kn_sli_dimtab *t, const char *key, uint32_t keylen,
			      uint64_t h)
{
	for (uint32_t i = (uint32_t)h & (t->icap - 1);; i = (i + 1) & (t->icap - 1)) {
		uint32_t id = t->index[i];
		if (id == 0)
			return t->cap;
		id--;
		if (t->keylens[id] == keylen && memcmp(t->keys[id], key, keylen) == 0)
			return id;
	}
}

/* Under t->mu: the id of key, adding it when there is room; cap when full. */
static uint32_t dimtab_find_add(struct kn_sli_dimtab *t, const char *key, uint32_t keylen,
				uint64_t h)
{
	uint32_t n = atomic_load_explicit(&t->n, memory_order_relaxed);
	uint32_t id = dimtab_lookup(t, key, keylen, h);
	if (id != t->cap || n >= t->cap)
		return id;
	char *k = malloc(keylen ? keylen : 1), *l = render_labels(t->def, key, keylen);
	if (!k || !l) {
		free(k);
		free(l);
		return t->cap;
	}
	memcpy(k, key, keylen);
	t->keys[n] = k;
	t->keylens[n] = keylen;
	t->labels[n] = l;
	uint32_t i = (uint32_t)h & (t->icap - 1);
	while (t->index[i])
		i = (i + 1) & (t->icap - 1);
	t->index[i] = n + 1;
	atomic_store_explicit(&t->n, n + 1, memory_order_release);
	return n;
}

int kn_sli_shard_sli_init(struct kn_sli_shard_sli *s, uint32_t cap, uint32_t nhours)
{
	memset(s, 0, sizeof *s);
	s->nhours = nhours;
	s->lcap = pow2_at_least((uint64_t)cap * 2);
	s->series = calloc((size_t)cap + 1, sizeof *s->series);
	s->lhash = calloc(s->lcap, sizeof *s->lhash);
	s->lid = calloc(s->lcap, sizeof *s->lid);
	if (!s->series || !s->lhash || !s->lid)
		return -1;
	for (uint32_t i = 0; i <= cap; i++)
		atomic_init(&s->series[i], NULL);
	return 0;
}

void kn_sli_shard_sli_free(struct kn_sli_shard_sli *s, uint32_t cap)
{
	if (!s)
		return;
	if (s->series)
		for (uint32_t i = 0; i <= cap; i++)
			free(atomic_load_explicit(&s->series[i], memory_order_relaxed));
	free((void *)s->series);
	free(s->lhash);
	free(s->lid);
	memset(s, 0, sizeof *s);
}

uint32_t kn_sli_series_id(struct kn_sli_dimtab *t, struct kn_sli_shard_sli *s, const char *key,
			  uint32_t keylen, int *overflow)
{
	uint64_t h = key_hash(key, keylen);
	uint32_t mask = s->lcap - 1, i = (uint32_t)h & mask;
	for (;; i = (i + 1) & mask) {
		if (!s->lid[i])
			break;
		if (s->lhash[i] == h) {
			uint32_t id = s->lid[i] - 1;
			if (t->keylens[id] == keylen && memcmp(t->keys[id], key, keylen) == 0) {
				*overflow = 0;
				return id;
			}
		}
	}
	uint32_t id;
	if (atomic_load_explicit(&t->n, memory_order_acquire) >= t->cap) {
		/* Full: the table no longer changes, so it is read without the
		 * mutex; unknown sets go to the overflow series. */
		id = dimtab_lookup(t, key, keylen, h);
	} else {
		pthread_mutex_lock(&t->mu);
		id = dimtab_find_add(t, key, keylen, h);
		pthread_mutex_unlock(&t->mu);
	}
	*overflow = id == t->cap;
	if (!*overflow) {
		/* cache it: at most cap ids, and lcap >= 2 cap, so there is room */
		s->lhash[i] = h;
		s->lid[i] = id + 1;
	}
	return id;
}

struct kn_sli_series *kn_sli_series_get(struct kn_sli_shard_sli *s, uint32_t id)
{
	struct kn_sli_series *se = atomic_load_explicit(&s->series[id], memory_order_relaxed);
	if (se)
		return se;
	size_t sz = offsetof(struct kn_sli_series, win) + kn_sli_win_size(s->nhours);
	se = calloc(1, sz);
	if (!se)
		return NULL;
	atomic_init(&se->good, 0);
	atomic_init(&se->total, 0);
	atomic_init(&se->sum, 0);
	for (int b = 0; b <= KN_SLI_MAX_BUCKETS; b++) {
		atomic_init(&se->bucket[b], 0);
		atomic_init(&se->ex[b].seq, 0);
		atomic_init(&se->ex[b].tid[0], 0);
		atomic_init(&se->ex[b].tid[1], 0);
		atomic_init(&se->ex[b].value, 0);
		atomic_init(&se->ex[b].ts, 0);
	}
	kn_sli_win_init(&se->win, s->nhours);
	atomic_store_explicit(&s->series[id], se, memory_order_release);
	return se;
}

void kn_sli_series_record(struct kn_sli_series *se, const double *bounds, uint32_t nb,
			  uint64_t now_ns, double weight, int good, double latency_s,
			  const uint8_t trace_id[16])
{
	kn_sli_addd(&se->total, weight);
	if (good)
		kn_sli_addd(&se->good, weight);
	kn_sli_addd(&se->sum, latency_s * weight);
	uint32_t b = 0;
	while (b < nb && latency_s > bounds[b])
		b++;
	kn_sli_addd(&se->bucket[b], weight);
	kn_sli_win_add(&se->win, now_ns, good ? weight : 0, weight);
	/* Exemplar: the latest trace in this bucket (seqlock: odd while written). */
	struct kn_sli_exemplar *ex = &se->ex[b];
	uint32_t q = atomic_load_explicit(&ex->seq, memory_order_relaxed);
	atomic_store_explicit(&ex->seq, q + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	uint64_t t0, t1;
	memcpy(&t0, trace_id, 8);
	memcpy(&t1, trace_id + 8, 8);
	atomic_store_explicit(&ex->tid[0], t0, memory_order_relaxed);
	atomic_store_explicit(&ex->tid[1], t1, memory_order_relaxed);
	kn_sli_st(&ex->value, latency_s);
	kn_sli_st(&ex->ts, (double)now_ns / 1e9);
	atomic_store_explicit(&ex->seq, q + 2, memory_order_release);
}
