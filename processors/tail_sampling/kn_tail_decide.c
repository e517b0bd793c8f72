/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_decide: the policy engine. An engine belongs to one tail_sampling
 * processor instance: it keeps the parsed config (borrowed: the processor's
 * config must outlive it) and the per-policy metrics, registered once.
 * Each shard creates its own instances of every policy (compiled regexes,
 * caches, token buckets, per-second counters), so kn_tail_decide runs on
 * the shard's thread with no lock and no allocation; the only shared writes
 * are relaxed atomic counter adds. The trace is read once per decision
 * (kn_tail_scan, built by the first policy that needs spans or attributes)
 * and every policy reads that index; its arrays grow to the largest trace
 * seen, then no longer allocate.
 *
 * The decision follows the OTel Collector's processor: every top-level
 * policy is evaluated in order (stopping after a Dropped, and with
 * sample_on_first_match after the first Sampled); the first policy that
 * returned each decision is remembered; then Dropped -> not sampled, else
 * InvertNotSampled -> not sampled, else Sampled -> sampled, else
 * InvertSampled -> sampled, else not sampled. verdict.policy names the first
 * policy with the winning decision (NULL when nothing sampled, dropped or
 * inverted, i.e. the default "not sampled"). A threshold for consistent
 * probability sampling is reported only when the winning policy is the one
 * that produced it (a probabilistic policy in consistent mode, possibly
 * inside `and`); a trace kept for another reason keeps its tracestate.
 *
 * Metrics: kansatsu_tail_policy_decisions_total and
 * kansatsu_tail_policy_spans_total {processor, policy, decision}, decision in
 * sampled, not_sampled, invert_sampled, invert_not_sampled, dropped, error.
 * Policies not evaluated (after an early stop) are not counted, as in OTel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../collector/core/kn_metrics.h"
#include "kn_tail_policy.h"
#include "policies/kn_tail_policy_int.h"

#define KN_TAIL_NDEC 7

static const char *const kn_tail_dec_label[KN_TAIL_NDEC] = {
	[KN_TAIL_UNSPECIFIED] = NULL,
	[KN_TAIL_NOT_SAMPLED] = "not_sampled",
	[KN_TAIL_SAMPLED] = "sampled",
	[KN_TAIL_INVERT_SAMPLED] = "invert_sampled",
	[KN_TAIL_INVERT_NOT_SAMPLED] = "invert_not_sampled",
	[KN_TAIL_DROPPED] = "dropped",
	[KN_TAIL_ERROR] = "error",
};

struct kn_tail_pmetrics {
	struct kn_metric *traces[KN_TAIL_NDEC];
	struct kn_metric *spans[KN_TAIL_NDEC];
};

struct kn_tail_engine {
	const struct kn_tail_policies_cfg *cfg;
	int sample_on_first_match;
	uint32_t nshards;
	size_t n;
	struct kn_tail_pmetrics *pm;   /* [n] */
};

struct kn_tail_engine_shard {
	struct kn_tail_engine *e;
	size_t n;
	struct kn_tail_pinst *pi;      /* [n] */
	struct kn_tail_scan scan;      /* the trace being decided, read once for all policies */
};

int kn_tail_pinst_create(const struct kn_tail_pcfg *pc, uint32_t nshards,
			 struct kn_tail_pinst *pi, struct kn_err *err)
{
	pi->ops = pc->ops;
	pi->state = NULL;
	if (pc->ops->create && pc->ops->create(pc, nshards, &pi->state, err) != KN_OK) {
		pi->ops = NULL;
		return kn_err_prefix(err, "%s: ", pc->path);
	}
	return KN_OK;
}

void kn_tail_pinst_destroy(struct kn_tail_pinst *pi)
{
	if (pi && pi->ops && pi->ops->destroy)
		pi->ops->destroy(pi->state);
	if (pi) {
		pi->ops = NULL;
		pi->state = NULL;
	}
}

struct kn_tail_engine *kn_tail_engine_create(const struct kn_tail_policies_cfg *cfg,
					     int sample_on_first_match, uint32_t nshards,
					     struct kn_metrics *m, const char *proc_id,
					     struct kn_err *err)
{
	struct kn_tail_engine *e = NULL;
	char pid[256], pname[256], labels[700];

	if (!cfg || cfg->list.n == 0) {
		kn_errf(err, "tail_sampling: no policies");
		return NULL;
	}
	if (!(e = calloc(1, sizeof *e)))
		goto oom;
	e->cfg = cfg;
	e->sample_on_first_match = sample_on_first_match;
	e->nshards = nshards ? nshards : 1;
	e->n = cfg->list.n;
	if (!(e->pm = calloc(e->n, sizeof *e->pm)))
		goto oom;
	if (!m)
		return e;
	kn_metrics_label_escape(proc_id ? proc_id : "tail_sampling", pid, sizeof pid);
	for (size_t i = 0; i < e->n; i++) {
		kn_metrics_label_escape(cfg->list.v[i].name, pname, sizeof pname);
		for (int d = 0; d < KN_TAIL_NDEC; d++) {
			if (!kn_tail_dec_label[d])
				continue;
			snprintf(labels, sizeof labels, "processor=\"%s\",policy=\"%s\",decision=\"%s\"",
				 pid, pname, kn_tail_dec_label[d]);
			e->pm[i].traces[d] = kn_metrics_counter(m, "kansatsu_tail_policy_decisions_total",
				"Traces evaluated by a tail-sampling policy, by the policy's decision", labels);
			e->pm[i].spans[d] = kn_metrics_counter(m, "kansatsu_tail_policy_spans_total",
				"Spans of the traces evaluated by a tail-sampling policy, by the policy's decision",
				labels);
			if (!e->pm[i].traces[d] || !e->pm[i].spans[d])
				goto oom;
		}
	}
	return e;
oom:
	kn_errf(err, "tail_sampling: out of memory creating the policy engine");
	kn_tail_engine_destroy(e);
	return NULL;
}

void kn_tail_engine_destroy(struct kn_tail_engine *e)
{
	if (!e)
		return;
	free(e->pm);
	free(e);
}

struct kn_tail_engine_shard *kn_tail_engine_shard_create(struct kn_tail_engine *e, uint32_t shard,
							 struct kn_err *err)
{
	struct kn_tail_engine_shard *s = NULL;
	(void)shard; /* every shard gets the same share of the rates */
	if (!(s = calloc(1, sizeof *s)) || !(s->pi = calloc(e->n, sizeof *s->pi))) {
		kn_errf(err, "tail_sampling: out of memory creating a policy shard");
		goto fail;
	}
	s->e = e;
	for (size_t i = 0; i < e->n; i++) {
		s->n = i + 1;
		if (kn_tail_pinst_create(&e->cfg->list.v[i], e->nshards, &s->pi[i], err) != KN_OK)
			goto fail;
	}
	return s;
fail:
	kn_tail_engine_shard_destroy(s);
	return NULL;
}

void kn_tail_engine_shard_destroy(struct kn_tail_engine_shard *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->pi && i < s->n; i++)
		kn_tail_pinst_destroy(&s->pi[i]);
	free(s->pi);
	kn_tail_scan_free(&s->scan);
	free(s);
}

void kn_tail_decide(struct kn_tail_engine_shard *s, const struct kn_tail_trace *t, uint64_t now_ns,
		    struct kn_tail_verdict *v)
{
	struct kn_tail_engine *e = s->e;
	struct kn_tail_eval ev = { .t = t, .now_ns = now_ns, .scan = &s->scan };
	size_t first[KN_TAIL_NDEC];
	int th_set = 0;
	uint64_t th = 0;

	for (int d = 0; d < KN_TAIL_NDEC; d++)
		first[d] = SIZE_MAX;
	for (size_t i = 0; i < s->n; i++) {
		ev.has_th = 0;
		enum kn_tail_decision d = kn_tail_pinst_eval(&s->pi[i], &ev);
		if ((unsigned)d >= KN_TAIL_NDEC)
			d = KN_TAIL_ERROR;
		if (e->pm[i].traces[d]) {
			kn_counter_add(e->pm[i].traces[d], 1);
			kn_counter_add(e->pm[i].spans[d], t->nspans);
		}
		if (first[d] == SIZE_MAX) {
			first[d] = i;
			if (d == KN_TAIL_SAMPLED && ev.has_th) {
				th_set = 1;
				th = ev.th;
			}
		}
		if (d == KN_TAIL_DROPPED)
			break;
		if (e->sample_on_first_match && d == KN_TAIL_SAMPLED)
			break;
	}
	v->sampled = 0;
	v->policy = NULL;
	v->has_threshold = 0;
	v->threshold = 0;
	size_t win = SIZE_MAX;
	if (first[KN_TAIL_DROPPED] != SIZE_MAX) {
		win = first[KN_TAIL_DROPPED];
	} else if (first[KN_TAIL_INVERT_NOT_SAMPLED] != SIZE_MAX) {
		win = first[KN_TAIL_INVERT_NOT_SAMPLED];
	} else if (first[KN_TAIL_SAMPLED] != SIZE_MAX) {
		win = first[KN_TAIL_SAMPLED];
		v->sampled = 1;
		v->has_threshold = th_set;
		v->threshold = th;
	} else if (first[KN_TAIL_INVERT_SAMPLED] != SIZE_MAX) {
		win = first[KN_TAIL_INVERT_SAMPLED];
		v->sampled = 1;
	}
	if (win != SIZE_MAX)
		v->policy = e->cfg->list.v[win].name;
}
