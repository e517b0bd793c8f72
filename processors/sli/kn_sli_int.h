/* SPDX-License-Identifier: Apache-2.0
 * kn_sli_int: what the sli processor's files share (not a public header).
 *
 * Per SLI the instance keeps a dimension table (kn_sli_dimtab: the label sets
 * seen, bounded by max_series, shared by the shards, appended under a mutex
 * and read without one), and each shard keeps, per SLI, an array of series
 * indexed by the dimension set's id, allocated on the first event of that
 * (shard, set). A series holds cumulative counters, histogram buckets,
 * exemplars and the good/total windows; one shard writes it, the scrape thread
 * reads it: every field is an atomic, written with relaxed stores (single
 * writer, so load + add + store is enough) and doubles are kept as their bits. */
#ifndef KN_SLI_INT_H
#define KN_SLI_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kn_sli.h"

#define KN_SLI_MINUTES 360          /* per-minute buckets: windows up to 6h */
#define KN_SLI_MIN_HOURS 72         /* per-hour buckets: at least 3d */
#define KN_SLI_MAX_BUCKETS 32       /* latency histogram bounds */
#define KN_SLI_VALUE_MAX 128        /* bytes kept of one dimension value */
#define KN_SLI_KEY_MAX 1024         /* bytes of one encoded dimension set */
#define KN_NS_PER_MIN (60ull * 1000000000ull)
#define KN_NS_PER_HOUR (3600ull * 1000000000ull)

/* ---- doubles in atomics (single writer) ---- */
static inline double kn_sli_ld(const _Atomic uint64_t *a)
{
	uint64_t u = atomic_load_explicit(a, memory_order_relaxed);
	double d;
	memcpy(&d, &u, sizeof d);
	return d;
}
static inline void kn_sli_st(_Atomic uint64_t *a, double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof u);
	atomic_store_explicit(a, u, memory_order_relaxed);
}
static inline void kn_sli_addd(_Atomic uint64_t *a, double d)
{
	kn_sli_st(a, kn_sli_ld(a) + d);
}

/* ---- windows (kn_sli_window.c) ---- */
struct kn_sli_wbucket {
	_Atomic uint64_t stamp;       /* unit index + 1 it holds (0: empty) */
	_Atomic uint64_t good, total; /* double bits */
};

struct kn_sli_win {
	uint32_t nhours;
	struct kn_sli_wbucket min[KN_SLI_MINUTES];
	struct kn_sli_wbucket hour[];  /* nhours */
};

/* Hours kept for an SLO window: max(72, ceil(window / 1h)). */
uint32_t kn_sli_win_hours(uint64_t window_ns);
size_t kn_sli_win_size(uint32_t nhours);
void kn_sli_win_init(struct kn_sli_win *w, uint32_t nhours);
/* Counts good/total at unix time now_ns (writer: one thread). */
void kn_sli_win_add(struct kn_sli_win *w, uint64_t now_ns, double good, double total);
/* Adds to *good / *total what falls in the last window_ns before now_ns:
 * windows up to 6h that are whole minutes use minute buckets (the current
 * minute and the window/1m - 1 before it), others hour buckets (the current
 * hour and ceil(window/1h) - 1 before it, at most nhours). Any thread. */
void kn_sli_win_sum(const struct kn_sli_win *w, uint64_t now_ns, uint64_t window_ns, double *good,
		    double *total);

/* burn rate = (bad / total) / (1 - objective/100); 0 without events. */
double kn_sli_burn_rate(double good, double total, double objective_pct);
/* 1 - (bad / total) / (1 - objective/100); 1 without events. */
double kn_sli_budget_remaining(double good, double total, double objective_pct);

/* ---- adjusted count (kn_sli_weight.c) ---- */
/* 1/p for the tracestate's ot=th:<hex> (1 when absent or invalid). */
double kn_sli_weight(const char *tracestate, size_t len);

/* ---- dimension sets (kn_sli_series.c) ---- */
struct kn_sli_dimtab {
	pthread_mutex_t mu;
	const struct kn_sli_def *def;
	uint32_t cap;                 /* max_series (>= 1) */
	_Atomic uint32_t n;           /* published sets (release) */
	char **keys;                  /* [cap] encoded set (immutable once published) */
	uint32_t *keylens;
	char **labels;                /* [cap] rendered labels: sli="x",dim="v" */
	uint32_t *index;              /* open addressing: id + 1, 0 empty; [icap] */
	uint32_t icap;
	char *overflow_labels;        /* sli="x",sli_overflow="true" */
};

struct kn_sli_exemplar {
	_Atomic uint32_t seq;         /* odd while written */
	_Atomic uint64_t tid[2];      /* trace id bytes */
	_Atomic uint64_t value, ts;   /* double bits: seconds, unix seconds */
};

struct kn_sli_series {
	_Atomic uint64_t good, total, sum;            /* double bits */
	_Atomic uint64_t bucket[KN_SLI_MAX_BUCKETS + 1]; /* non-cumulative, double bits */
	struct kn_sli_exemplar ex[KN_SLI_MAX_BUCKETS + 1];
	struct kn_sli_win win;                         /* last: flexible */
};

int kn_sli_dimtab_init(struct kn_sli_dimtab *t, const struct kn_sli_def *d, uint32_t cap);
void kn_sli_dimtab_free(struct kn_sli_dimtab *t);

/* One shard's series of one SLI. */
struct kn_sli_shard_sli {
	_Atomic(struct kn_sli_series *) *series;    /* [cap + 1]; [cap] = overflow */
	uint64_t *lhash;              /* local cache of dimtab lookups: hash */
	uint32_t *lid;                /* id + 1, 0 empty */
	uint32_t lcap;                /* power of two */
	uint32_t nhours;
};

int kn_sli_shard_sli_init(struct kn_sli_shard_sli *s, uint32_t cap, uint32_t nhours);
void kn_sli_shard_sli_free(struct kn_sli_shard_sli *s, uint32_t cap);
/* The series id of an encoded dimension set (cap = the overflow series),
 * *overflow set when it went to the overflow series. */
uint32_t kn_sli_series_id(struct kn_sli_dimtab *t, struct kn_sli_shard_sli *s, const char *key,
			  uint32_t keylen, int *overflow);
/* The series for id, allocated on first use (NULL on OOM). */
struct kn_sli_series *kn_sli_series_get(struct kn_sli_shard_sli *s, uint32_t id);

/* Records one event into a series. */
void kn_sli_series_record(struct kn_sli_series *se, const double *bounds, uint32_t nb,
			  uint64_t now_ns, double weight, int good, double latency_s,
			  const uint8_t trace_id[16]);

/* ---- local join (kn_sli_join.c) ---- */
struct kn_sli_join_slot {
	uint8_t trace_id[16];
	uint32_t sli;                 /* SLI index + 1 (0: empty) */
	uint64_t start_ns;            /* span start (unix ns) */
	uint64_t expires_ns;          /* clock time it expires */
};

struct kn_sli_join {
	struct kn_sli_join_slot *slots;
	uint32_t mask;
	uint64_t ttl_ns;
	uint64_t evicted;             /* unexpired entries pushed out */
};

int kn_sli_join_init(struct kn_sli_join *j, uint64_t slots, uint64_t ttl_ns);
void kn_sli_join_free(struct kn_sli_join *j);
/* Remembers the earliest start for (trace, sli). Returns 1 if an unexpired
 * entry was evicted to make room. */
int kn_sli_join_put(struct kn_sli_join *j, const uint8_t trace_id[16], uint32_t sli,
		    uint64_t start_ns, uint64_t now_ns);
/* 1 and *start_ns when (trace, sli) is known and unexpired. */
int kn_sli_join_get(const struct kn_sli_join *j, const uint8_t trace_id[16], uint32_t sli,
		    uint64_t now_ns, uint64_t *start_ns);

/* ---- config (kn_sli_config.c) ---- */
extern const struct kn_cfg_field kn_sli_fields[];
int kn_sli_validate(const void *cfg, const char *path, struct kn_err *err);
/* kn_sli_rules.c: Prometheus rules over a fleet (kn_component.prom_rules). */
int kn_sli_prom_rules(const void *cfg, const char *id, FILE *out, struct kn_err *err);
int kn_sli_kind_value(const char *kind);   /* -1 for NULL */
int kn_sli_start_value(const char *from);
int kn_sli_dim_from_value(const char *from);
/* Parses latency_buckets into seconds, ascending; count or -1 (err set). */
int kn_sli_buckets(const struct kn_strlist *l, const char *path, double *out, struct kn_err *err);

#endif
