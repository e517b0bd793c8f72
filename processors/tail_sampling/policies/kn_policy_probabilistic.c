/* SPDX-License-Identifier: Apache-2.0
 * probabilistic: samples sampling_percentage % of traces, in one of two modes.
 *
 * OTel mode (the default, bit-for-bit OTel's decision): hash = FNV-1a 64 of
 * hash_salt (default "default-hash-seed") followed by the 16 trace-id bytes;
 * sampled iff hash <= floor((2^64-1) * sampling_percentage/100), the product
 * rounded to a 64-bit mantissa first as Go's big.Float does (exact on x86-64,
 * whose long double has a 64-bit mantissa; within one unit of the 2^64 scale
 * elsewhere), saturating at 2^64-1.
 *
 * Consistent mode (kansatsu's addition; OpenTelemetry consistent probability
 * sampling, tracestate `ot=th:`): used when any span of the trace carries the
 * W3C "random" trace flag (Span.flags & 0x02), or an `ot` tracestate member
 * with a valid `th` or `rv`. Randomness R is the first valid `ot=rv:` found
 * (in walk order), else the low 56 bits of the trace id (bytes 9..15, big
 * endian). Our threshold T = 2^56 - round(p * 2^56) (p = percentage/100;
 * p = 0 samples nothing, p >= 1 gives T = 0). An incoming threshold Tin (the
 * largest valid `th` among the spans) is respected: the effective threshold
 * is max(T, Tin) and the trace is sampled iff R >= it; the policy then
 * reports it (kn_tail_eval.has_th/th) so kept spans get `ot=th:<hex>`. In
 * this mode hash_salt is not used and the outcome does NOT equal OTel's
 * FNV decision for the same trace (the rates are equal); it equals the
 * decision any spec-conformant consistent sampler at the same probability
 * would take, which is what lets several tiers agree.
 *
 * State: read-only thresholds. Cost: OTel mode hashes 16 bytes + the salt
 * and still walks the spans once (flags/tracestate) to choose the mode. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kn_tail_policy_int.h"

struct kn_prob_conf {
	char *hash_salt;
	double sampling_percentage;
};

static const struct kn_cfg_field kn_prob_table[] = {
	{.key = "hash_salt", .type = KN_F_STR, .off = offsetof(struct kn_prob_conf, hash_salt),
	 .help = "salt of the trace-id hash (default \"default-hash-seed\")"},
	{.key = "sampling_percentage", .type = KN_F_DOUBLE,
	 .off = offsetof(struct kn_prob_conf, sampling_percentage), .required = 1, .min = 0, .max = 100,
	 .help = "percentage of traces sampled, 0..100"},
	KN_CFG_END,
};

struct kn_prob {
	uint64_t fnv_seeded;      /* FNV-1a state after the salt */
	uint64_t otel_threshold;  /* OTel mode: sampled iff hash <= this */
	uint64_t th;              /* consistent mode: 56-bit rejection threshold */
	int never;                /* percentage 0: consistent mode samples nothing */
};

static uint64_t kn_prob_otel_threshold(double ratio)
{
	long double x = (long double)UINT64_MAX * (long double)ratio;
	if (!(x > 0))
		return 0;
	if (x >= 18446744073709551616.0L)
		return UINT64_MAX;
	return (uint64_t)x;
}

static int kn_prob_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			  struct kn_err *err)
{
	const struct kn_prob_conf *c = pc->conf;
	const char *salt = c->hash_salt && c->hash_salt[0] ? c->hash_salt : "default-hash-seed";
	struct kn_prob *p = calloc(1, sizeof *p);
	double ratio = c->sampling_percentage / 100;
	(void)nshards;
	if (!p)
		return kn_errf(err, "out of memory");
	p->fnv_seeded = kn_tail_fnv1a(KN_TAIL_FNV_OFFSET, salt, strlen(salt));
	p->otel_threshold = kn_prob_otel_threshold(ratio);
	if (ratio >= 1) {
		p->th = 0;
	} else {
		long double keep = roundl((long double)ratio * (long double)KN_TRACESTATE_MAX_TH);
		p->th = KN_TRACESTATE_MAX_TH - (uint64_t)keep;
		p->never = (uint64_t)keep == 0;
	}
	*state = p;
	return KN_OK;
}

/* What the spans say about consistent sampling (all spans are read). */
struct kn_prob_run {
	int consistent, has_rv, has_tin;
	uint64_t rv, tin;
};

static int kn_prob_span(void *ctx, const struct kn_tail_span *sp)
{
	struct kn_prob_run *r = ctx;
	const char *ot;
	size_t otlen;
	int sth, srv;
	uint64_t th, rv;
	if (sp->flags & 0x02)
		r->consistent = 1;
	if (!sp->trace_state_len ||
	    kn_tracestate_get(sp->trace_state, sp->trace_state_len, "ot", 2, &ot, &otlen) != 1)
		return 0;
	kn_tracestate_ot_parse(ot, otlen, &sth, &th, &srv, &rv);
	if (sth) {
		r->consistent = 1;
		if (!r->has_tin || th > r->tin)
			r->tin = th;
		r->has_tin = 1;
	}
	if (srv) {
		r->consistent = 1;
		if (!r->has_rv)
			r->rv = rv;
		r->has_rv = 1;
	}
	return 0;
}

static enum kn_tail_decision kn_prob_eval(void *state, struct kn_tail_eval *ev)
{
	const struct kn_prob *p = state;
	const uint8_t *tid = ev->t->trace_id;
	struct kn_prob_run r = {0};
	uint64_t rv;

	kn_tail_each_span(ev, kn_prob_span, &r);
	if (!r.consistent) {
		uint64_t h = kn_tail_fnv1a(p->fnv_seeded, tid, 16);
		return h <= p->otel_threshold ? KN_TAIL_SAMPLED : KN_TAIL_NOT_SAMPLED;
	}
	if (p->never)
		return KN_TAIL_NOT_SAMPLED;
	rv = r.rv;
	if (!r.has_rv) {
		rv = 0;
		for (int i = 9; i < 16; i++)
			rv = (rv << 8) | tid[i];
	}
	uint64_t t = p->th;
	if (r.has_tin && r.tin > t)
		t = r.tin;
	if (rv < t)
		return KN_TAIL_NOT_SAMPLED;
	ev->has_th = 1;
	ev->th = t;
	return KN_TAIL_SAMPLED;
}

const struct kn_tail_policy_ops kn_policy_probabilistic_ops = {
	.type = "probabilistic",
	.table = kn_prob_table,
	.conf_size = sizeof(struct kn_prob_conf),
	.block_required = 1,
	.create = kn_prob_create,
	.eval = kn_prob_eval,
	.destroy = free,
};
