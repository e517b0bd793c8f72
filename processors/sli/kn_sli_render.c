/* SPDX-License-Identifier: Apache-2.0
 * kn_sli_render: the SLI families on /metrics, computed at scrape time.
 *
 * One metrics collector per kn_metrics walks every live sli processor
 * instance (a process-wide list, so two instances never write the same
 * family twice), and for each SLI and each dimension set sums the shards'
 * series: counters, histogram buckets (cumulated here), the latest exemplar
 * per bucket (OpenMetrics only) and the good/total windows behind the burn
 * rates and the error budget. Families:
 *   kansatsu_sli_events_total{sli,<dims>}            counter (weighted)
 *   kansatsu_sli_good_events_total{sli,<dims>}       counter (weighted)
 *   kansatsu_sli_latency_seconds{sli,<dims>,le}      histogram, exemplars trace_id
 *   kansatsu_sli_error_budget_remaining_ratio{sli,<dims>}   over the SLO window
 *   kansatsu_sli_burn_rate{sli,<dims>,window}        5m 30m 1h 6h 3d
 *   kansatsu_sli_objective_ratio{sli}                e.g. 0.999
 * The overflow series carries sli_overflow="true" instead of the dimensions.
 *
 * Threads: the scrape thread, under the registry mutex, then the list mutex,
 * then each instance's mutex (which keeps shard_destroy away); the shards
 * keep writing meanwhile, so a scrape sees each value as some recent
 * moment (values of one series may be a few events apart). */
#include <stdio.h>
#include <stdlib.h>

#include "kn_sli_proc_int.h"

static pthread_mutex_t kn_sli_list_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kn_sli *kn_sli_list_head;

int kn_sli_list_add(struct kn_sli *p)
{
	pthread_mutex_lock(&kn_sli_list_mu);
	p->next_inst = kn_sli_list_head;
	kn_sli_list_head = p;
	p->listed = 1;
	pthread_mutex_unlock(&kn_sli_list_mu);
	return kn_metrics_collector(p->metrics, kn_sli_collect, p->metrics);
}

void kn_sli_list_remove(struct kn_sli *p)
{
	if (!p->listed)
		return;
	int others = 0;
	pthread_mutex_lock(&kn_sli_list_mu);
	for (struct kn_sli **pp = &kn_sli_list_head; *pp; pp = &(*pp)->next_inst)
		if (*pp == p) {
			*pp = p->next_inst;
			break;
		}
	for (struct kn_sli *q = kn_sli_list_head; q; q = q->next_inst)
		others += q->metrics == p->metrics;
	pthread_mutex_unlock(&kn_sli_list_mu);
	p->listed = 0;
	if (!others)
		kn_metrics_collector_remove(p->metrics, kn_sli_collect, p->metrics);
}

static const struct {
	const char *name;
	uint64_t ns;
} kn_sli_burn_windows[] = {
	{"5m", 5 * KN_NS_PER_MIN},   {"30m", 30 * KN_NS_PER_MIN}, {"1h", KN_NS_PER_HOUR},
	{"6h", 6 * KN_NS_PER_HOUR},  {"3d", 72 * KN_NS_PER_HOUR},
};
#define KN_SLI_NBURN (sizeof kn_sli_burn_windows / sizeof kn_sli_burn_windows[0])

enum fam { F_EVENTS, F_GOOD, F_LATENCY, F_BUDGET, F_BURN, F_OBJECTIVE, F_N };

struct agg {
	int any;
	double good, total, sum;
	double bucket[KN_SLI_MAX_BUCKETS + 1];
	struct {
		double value, ts;
		uint8_t tid[16];
	} ex[KN_SLI_MAX_BUCKETS + 1];
	double wgood[KN_SLI_NBURN + 1], wtotal[KN_SLI_NBURN + 1]; /* [NBURN] = SLO window */
};

static void read_exemplar(const struct kn_sli_exemplar *e, struct agg *a, int b)
{
	uint32_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
	if (s1 & 1)
		return;
	uint64_t t0 = atomic_load_explicit(&e->tid[0], memory_order_relaxed);
	uint64_t t1 = atomic_load_explicit(&e->tid[1], memory_order_relaxed);
	double v = kn_sli_ld(&e->value), ts = kn_sli_ld(&e->ts);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&e->seq, memory_order_relaxed) != s1 || ts <= 0 ||
	    ts <= a->ex[b].ts)
		return;
	a->ex[b].value = v;
	a->ex[b].ts = ts;
	memcpy(a->ex[b].tid, &t0, 8);
	memcpy(a->ex[b].tid + 8, &t1, 8);
}

/* Sums series id of SLI i over the shards (under p->mu). */
static void aggregate(const struct kn_sli *p, size_t i, uint32_t id, uint64_t now, int windows,
		      struct agg *a)
{
	memset(a, 0, sizeof *a);
	for (uint32_t sh = 0; sh < p->nshards; sh++) {
		const struct kn_sli_shard *s = p->shards[sh];
		if (!s)
			continue;
		const struct kn_sli_series *se =
			atomic_load_explicit(&s->per[i].series[id], memory_order_acquire);
		if (!se)
			continue;
		a->any = 1;
		a->good += kn_sli_ld(&se->good);
		a->total += kn_sli_ld(&se->total);
		a->sum += kn_sli_ld(&se->sum);
		for (uint32_t b = 0; b <= p->nb; b++) {
			a->bucket[b] += kn_sli_ld(&se->bucket[b]);
			read_exemplar(&se->ex[b], a, (int)b);
		}
		if (!windows)
			continue;
		for (size_t w = 0; w < KN_SLI_NBURN; w++)
			kn_sli_win_sum(&se->win, now, kn_sli_burn_windows[w].ns, &a->wgood[w],
				       &a->wtotal[w]);
		kn_sli_win_sum(&se->win, now, p->slis[i].d->window_ns, &a->wgood[KN_SLI_NBURN],
			       &a->wtotal[KN_SLI_NBURN]);
	}
}

static void fmt_le(double le, char *out, size_t cap)
{
	snprintf(out, cap, "%.15g", le);
	if (!strpbrk(out, ".eEnI"))
		strncat(out, ".0", cap - strlen(out) - 1);
}

static void emit_series(const struct kn_sli *p, size_t i, const char *labels, const struct agg *a,
			enum fam f, struct kn_metrics_out *out)
{
	const struct kn_sli_def *d = p->slis[i].d;
	char lb[2048];
	switch (f) {
	case F_EVENTS:
		kn_metrics_out_sample(out, "_total", labels, a->total, NULL);
		break;
	case F_GOOD:
		kn_metrics_out_sample(out, "_total", labels, a->good, NULL);
		break;
	case F_LATENCY: {
		double cum = 0;
		for (uint32_t b = 0; b <= p->nb; b++) {
			char le[40], tid[64];
			if (b < p->nb)
				fmt_le(p->bounds[b], le, sizeof le);
			else
				snprintf(le, sizeof le, "+Inf");
			cum += a->bucket[b];
			snprintf(lb, sizeof lb, "%s,le=\"%s\"", labels, le);
			struct kn_metrics_exemplar ex = {.labels = tid, .value = a->ex[b].value,
							 .ts = a->ex[b].ts};
			int n = snprintf(tid, sizeof tid, "trace_id=\"");
			for (int k = 0; k < 16; k++)
				n += snprintf(tid + n, sizeof tid - (size_t)n, "%02x", a->ex[b].tid[k]);
			snprintf(tid + n, sizeof tid - (size_t)n, "\"");
			kn_metrics_out_sample(out, "_bucket", lb, cum, a->ex[b].ts > 0 ? &ex : NULL);
		}
		kn_metrics_out_sample(out, "_count", labels, cum, NULL);
		kn_metrics_out_sample(out, "_sum", labels, a->sum, NULL);
		break;
	}
	case F_BUDGET:
		kn_metrics_out_sample(out, "", labels,
				      kn_sli_budget_remaining(a->wgood[KN_SLI_NBURN],
							      a->wtotal[KN_SLI_NBURN], d->objective),
				      NULL);
		break;
	case F_BURN:
		for (size_t w = 0; w < KN_SLI_NBURN; w++) {
			snprintf(lb, sizeof lb, "%s,window=\"%s\"", labels, kn_sli_burn_windows[w].name);
			kn_metrics_out_sample(out, "", lb,
					      kn_sli_burn_rate(a->wgood[w], a->wtotal[w], d->objective),
					      NULL);
		}
		break;
	default:
		break;
	}
}

static void emit_instance(const struct kn_sli *p, enum fam f, struct kn_metrics_out *out)
{
	uint64_t now = kn_sli_now(p);
	struct agg *a = malloc(sizeof *a);
	if (!a)
		return;
	for (size_t i = 0; i < p->nslis; i++) {
		const struct kn_sli_rt *rt = &p->slis[i];
		if (f == F_OBJECTIVE) {
			char lb[256];
			kn_metrics_label_escape(rt->d->name, lb + 5, sizeof lb - 6);
			memcpy(lb, "sli=\"", 5);
			strcat(lb, "\"");
			kn_metrics_out_sample(out, "", lb, rt->d->objective / 100, NULL);
			continue;
		}
		uint32_t n = atomic_load_explicit(&rt->tab.n, memory_order_acquire);
		for (uint32_t id = 0; id <= rt->tab.cap; id++) {
			if (id >= n && id != rt->tab.cap)
				continue;
			aggregate(p, i, id, now, f == F_BUDGET || f == F_BURN, a);
			if (!a->any)
				continue;
			emit_series(p, i, id == rt->tab.cap ? rt->tab.overflow_labels : rt->tab.labels[id],
				    a, f, out);
		}
	}
	free(a);
}

void kn_sli_collect(void *ctx, struct kn_metrics_out *out)
{
	static const struct {
		enum kn_metrics_family type;
		const char *name, *help;
	} fams[F_N] = {
		[F_EVENTS] = {KN_MFAM_COUNTER, "kansatsu_sli_events",
			      "SLI events (weighted by adjusted count), by SLI and dimensions."},
		[F_GOOD] = {KN_MFAM_COUNTER, "kansatsu_sli_good_events",
			    "Good SLI events (weighted by adjusted count)."},
		[F_LATENCY] = {KN_MFAM_HISTOGRAM, "kansatsu_sli_latency_seconds",
			       "SLI latency (end span end - start span start), with trace_id exemplars."},
		[F_BUDGET] = {KN_MFAM_GAUGE, "kansatsu_sli_error_budget_remaining_ratio",
			      "1 - (bad/total over the SLO window) / (1 - objective); 1 without events."},
		[F_BURN] = {KN_MFAM_GAUGE, "kansatsu_sli_burn_rate",
			    "(bad/total over the window) / (1 - objective); 0 without events."},
		[F_OBJECTIVE] = {KN_MFAM_GAUGE, "kansatsu_sli_objective_ratio",
				 "The SLO objective as a ratio."},
	};
	struct kn_metrics *m = ctx;
	pthread_mutex_lock(&kn_sli_list_mu);
	int any = 0;
	for (struct kn_sli *p = kn_sli_list_head; p; p = p->next_inst)
		any |= p->metrics == m && p->nslis > 0;
	for (int f = 0; any && f < F_N; f++) {
		kn_metrics_out_family(out, fams[f].type, fams[f].name, fams[f].help);
		for (struct kn_sli *p = kn_sli_list_head; p; p = p->next_inst) {
			if (p->metrics != m)
				continue;
			pthread_mutex_lock(&p->mu);
			emit_instance(p, (enum fam)f, out);
			pthread_mutex_unlock(&p->mu);
		}
	}
	pthread_mutex_unlock(&kn_sli_list_mu);
}
