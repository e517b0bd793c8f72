/* SPDX-License-Identifier: Apache-2.0
 * The `probabilistic_sampler` processor (see kn_probabilistic_sampler.h).
 * Per span: one walk of its fields (trace_state, and the attributes when it
 * has any, for sampling.priority), the decision, and when kept with a new
 * tracestate an encoded `trace_state` field in the shard's arena. Per chunk:
 * pass it on by reference, drop it, or one kn_wire_filter copy. */
#include "kn_probabilistic_sampler.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_budget.h"
#include "../../collector/core/kn_log.h"
#include "../../collector/core/kn_metrics.h"
#include "../../collector/core/kn_tracestate.h"
#include "../../collector/wire/kn_wire_field.h"
#include "../../collector/wire/kn_wire_filter.h"

#define NEVER KN_TRACESTATE_MAX_TH          /* the never-sample threshold */
#define ALL_RANDOM (KN_TRACESTATE_MAX_TH - 1) /* OTel's AllProbabilitiesRandomness */
#define TS_CAP 2048                         /* longest tracestate written */

static const char *const modes[] = {"hash_seed", "proportional", "equalizing", NULL};
static const char *const sources[] = {"traceID", "record", NULL};

static const struct kn_cfg_field ps_fields[] = {
	{.key = "sampling_percentage", .type = KN_F_DOUBLE,
	 .off = offsetof(struct kn_psampler_cfg, sampling_percentage), .def = "0",
	 .help = "percent of spans kept (by trace id); above 100 means 100"},
	{.key = "hash_seed", .type = KN_F_UINT, .off = offsetof(struct kn_psampler_cfg, hash_seed),
	 .def = "0", .help = "seed of the trace-id hash (hash_seed mode)", .min = 0,
	 .max = 4294967295.0},
	{.key = "mode", .type = KN_F_STR, .off = offsetof(struct kn_psampler_cfg, mode),
	 .help = "hash_seed (default), proportional or equalizing", .choices = modes},
	{.key = "fail_closed", .type = KN_F_BOOL, .off = offsetof(struct kn_psampler_cfg, fail_closed),
	 .def = "true", .help = "drop spans whose randomness or tracestate is unusable"},
	{.key = "sampling_precision", .type = KN_F_INT,
	 .off = offsetof(struct kn_psampler_cfg, sampling_precision), .def = "4",
	 .help = "hex digits of the threshold written to ot=th", .min = 1, .max = 14},
	{.key = "attribute_source", .type = KN_F_STR,
	 .off = offsetof(struct kn_psampler_cfg, attribute_source), .def = "traceID",
	 .help = "traceID (record is for logs)", .choices = sources},
	{.key = "from_attribute", .type = KN_F_STR,
	 .off = offsetof(struct kn_psampler_cfg, from_attribute), .help = "logs only: rejected"},
	{.key = "sampling_priority", .type = KN_F_STR,
	 .off = offsetof(struct kn_psampler_cfg, sampling_priority),
	 .help = "logs only: rejected (spans use the attribute sampling.priority)"},
	KN_CFG_END,
};

static int ps_validate(const void *cfg, const char *path, struct kn_err *err)
{
	const struct kn_psampler_cfg *c = cfg;
	float pct = (float)c->sampling_percentage;
	if (isnan(c->sampling_percentage) || isinf(pct))
		return kn_errf(err, "%s.sampling_percentage: sampling rate is invalid: %g", path,
			       c->sampling_percentage);
	if (pct < 0)
		return kn_errf(err, "%s.sampling_percentage: sampling rate is negative: %g", path,
			       c->sampling_percentage);
	if (pct > 0 && (double)pct / 100.0 < 0x1p-56)
		return kn_errf(err, "%s.sampling_percentage: sampling rate is too small: %g%%", path,
			       c->sampling_percentage);
	if (c->attribute_source && strcmp(c->attribute_source, "record") == 0)
		return kn_errf(err, "%s.attribute_source: \"record\" applies to logs only; spans are "
				    "sampled by trace id", path);
	if (c->from_attribute && c->from_attribute[0])
		return kn_errf(err, "%s.from_attribute: applies to logs only; spans are sampled by "
				    "trace id", path);
	if (c->sampling_priority && c->sampling_priority[0])
		return kn_errf(err, "%s.sampling_priority: applies to logs only; spans use their "
				    "attribute sampling.priority", path);
	return KN_OK;
}

/* ---- the decision ---- */

uint32_t kn_psampler_hash(const uint8_t *b, size_t n, uint32_t seed)
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 4; i++) {
		h ^= (seed >> (8 * i)) & 0xff;
		h *= 16777619u;
	}
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 16777619u;
	}
	return h;
}

int kn_psampler_prob_threshold(double p, int precision, uint64_t *th)
{
	if (precision == 0)
		precision = 14;
	if (!(p >= 0x1p-56 && p <= 1))
		return -1;
	if (p == 1) {
		*th = 0;
		return 0;
	}
	/* more digits near 0 and near 1 keep the relative error (OTel's rule) */
	int ef, er;
	frexp(p, &ef);
	frexp(1 - p, &er);
	int a = precision + ef / -4, b = precision + er / -4;
	precision = a > b ? a : b;
	if (precision > 14)
		precision = 14;
	uint64_t t = NEVER - (uint64_t)round(p * 0x1p56);
	int shift = 4 * (14 - precision);
	if (shift) {
		t += 1ull << (shift - 1);
		t >>= shift;
		t <<= shift;
	}
	*th = t;
	return 0;
}

void kn_psampler_init(struct kn_psampler *s, const struct kn_psampler_cfg *c)
{
	memset(s, 0, sizeof *s);
	float pct = (float)c->sampling_percentage; /* OTel's field is a float32 */
	if (pct > 100)
		pct = 100;
	s->seed = (uint32_t)c->hash_seed;
	s->fail_closed = c->fail_closed;
	s->precision = (int)c->sampling_precision;
	const char *m = c->mode ? c->mode : "hash_seed";
	if (pct == 0) {
		s->mode = KN_PS_NEVER;
		return;
	}
	double ratio = (double)pct / 100;
	if (ratio < 0x1p-56)
		ratio = 0x1p-56;
	s->ratio = ratio;
	if (strcmp(m, "equalizing") == 0) {
		s->mode = KN_PS_EQUALIZING;
		kn_psampler_prob_threshold(ratio, s->precision, &s->threshold);
	} else if (strcmp(m, "proportional") == 0) {
		s->mode = KN_PS_PROPORTIONAL;
	} else {
		/* float32 arithmetic and truncation, as the original processor */
		uint32_t scaled = (uint32_t)(float)(pct * 163.84f);
		if (scaled == 0) {
			s->mode = KN_PS_NEVER;
			return;
		}
		s->mode = KN_PS_HASH_SEED;
		s->threshold = (uint64_t)(16384 - scaled) << 42;
	}
}

/* OTel's randomnessFromBytes: R' = 16383 - bucket in the top 14 bits, so
 * that "R >= threshold" is the old "bucket < scaled". */
static uint64_t hash_randomness(const uint8_t tid[16], uint32_t seed)
{
	uint32_t h32 = kn_psampler_hash(tid, 16, seed);
	uint64_t hashed = h32 & 0x3fff;
	uint64_t unused18 = h32 >> 14;
	uint64_t mixed28 = unused18 ^ (unused18 << 10);
	return ((16383 - hashed) << 42) | (mixed28 << 14) | hashed;
}

static int tid_empty(const uint8_t tid[16])
{
	for (int i = 0; i < 16; i++)
		if (tid[i])
			return 0;
	return 1;
}

void kn_psampler_decide(const struct kn_psampler *s, const uint8_t tid[16], const char *ts,
			size_t tslen, enum kn_psampler_priority prio, char *out, size_t cap,
			struct kn_psampler_result *r)
{
	struct kn_ot_value ot = {0};
	struct kn_ot_edit ed = {0};
	const char *otv, *why = NULL;
	size_t otlen;
	int carrier = 1, err = 0, missing = 0;
	uint64_t rnd = 0, threshold;

	memset(r, 0, sizeof *r);
	int g = tslen ? kn_tracestate_get(ts, tslen, "ot", 2, &otv, &otlen) : 0;
	if (g < 0 || (g == 1 && kn_tracestate_ot_check(otv, otlen, &ot, &why) < 0)) {
		carrier = 0; /* unparsable: decided by fail_closed, never rewritten */
		err = 1;
	}
	switch (s->mode) {
	case KN_PS_NEVER:
		rnd = ALL_RANDOM;
		break;
	case KN_PS_HASH_SEED:
		if (tid_empty(tid))
			missing = 1;
		else
			rnd = hash_randomness(tid, s->seed);
		if (!carrier)
			break;
		/* tracestate sampling data belongs to the consistent modes */
		if (ot.has_rv || ot.has_th) {
			carrier = 0;
			err = 1;
		} else {
			ed.set_rv = 1;
			ed.rv = missing ? ALL_RANDOM : rnd;
		}
		break;
	default:
		if (carrier && ot.has_rv)
			rnd = ot.rv;
		else if (tid_empty(tid))
			missing = 1;
		else
			for (int i = 9; i < 16; i++)
				rnd = (rnd << 8) | tid[i];
		break;
	}
	if (!err && missing)
		err = 1;
	if (missing)
		rnd = ALL_RANDOM;
	/* consistency: an arriving th the randomness does not pass is a lie */
	if (!err && carrier && ot.has_th && ot.th > rnd) {
		ot.has_th = 0;
		ed.th = -1;
		err = 1;
	}
	if (err) {
		threshold = s->fail_closed ? NEVER : 0;
	} else {
		switch (s->mode) {
		case KN_PS_NEVER:
			threshold = NEVER;
			break;
		case KN_PS_HASH_SEED:
			threshold = s->threshold;
			break;
		case KN_PS_EQUALIZING:
			threshold = ot.has_th && ot.th > s->threshold ? ot.th : s->threshold;
			break;
		default: {
			double in = ot.has_th ? (double)(NEVER - ot.th) / 0x1p56 : 1.0;
			if (kn_psampler_prob_threshold(in * s->ratio, s->precision, &threshold) < 0)
				threshold = NEVER;
			break;
		}
		}
	}
	if (prio == KN_PS_MUST_NOT)
		threshold = NEVER;
	else if (prio == KN_PS_MUST)
		threshold = 0;
	r->error = err;
	r->sampled = threshold <= rnd;
	if (!r->sampled || !carrier)
		return;
	/* the threshold may only rise (OTel's UpdateTValueWithSampling) */
	if (!(ot.has_th && ot.th > threshold)) {
		ed.th = 1;
		ed.threshold = threshold;
	}
	size_t n = kn_tracestate_set_ot(tslen ? ts : NULL, tslen, &ed, out, cap);
	if (n && !(n == tslen && memcmp(out, ts, n) == 0))
		r->ts_len = n;
}

/* ---- the span reader ---- */

/* Go's strconv.ParseFloat on the whole string, near enough: no spaces. */
static enum kn_psampler_priority prio_of_double(double v)
{
	if (v == 0)
		return KN_PS_MUST_NOT;
	return v > 0 ? KN_PS_MUST : KN_PS_DEFER;
}

static enum kn_psampler_priority prio_of_value(const uint8_t *p, const uint8_t *end)
{
	struct kn_wire_field f;
	enum kn_psampler_priority pr = KN_PS_DEFER;
	while (kn_wire_field_next(&p, end, &f) > 0) {
		if (f.num == 3 && f.wt == KN_WIRE_FIELD_VARINT) {
			int64_t v = (int64_t)f.value;
			pr = v == 0 ? KN_PS_MUST_NOT : v > 0 ? KN_PS_MUST : KN_PS_DEFER;
		} else if (f.num == 4 && f.wt == KN_WIRE_FIELD_I64) {
			double d;
			memcpy(&d, &f.value, sizeof d);
			pr = prio_of_double(d);
		} else if (f.num == 1 && f.wt == KN_WIRE_FIELD_LEN) {
			char buf[64];
			pr = KN_PS_DEFER;
			if (f.len == 0 || f.len >= sizeof buf)
				continue;
			memcpy(buf, f.payload, f.len);
			buf[f.len] = '\0';
			if (buf[0] == ' ' || buf[0] == '\t' || buf[0] == '\n')
				continue;
			char *e;
			double d = strtod(buf, &e);
			if (*e == '\0' && !isnan(d))
				pr = prio_of_double(d);
		} else {
			pr = KN_PS_DEFER; /* another type: the decision is deferred */
		}
	}
	return pr;
}

/* The span's last trace_state and its sampling.priority (first entry). */
static enum kn_psampler_priority read_span(const uint8_t *p, uint32_t len, int attrs,
					   const char **ts, size_t *tslen)
{
	const uint8_t *end = p + len;
	struct kn_wire_field f;
	enum kn_psampler_priority pr = KN_PS_DEFER;
	int seen = 0;
	*ts = NULL;
	*tslen = 0;
	while (kn_wire_field_next(&p, end, &f) > 0) {
		if (f.wt != KN_WIRE_FIELD_LEN)
			continue;
		if (f.num == 3) {
			*ts = (const char *)f.payload;
			*tslen = f.len;
		} else if (f.num == 9 && attrs && !seen) {
			/* fields compared by whole tag (one 64-bit value): comparing
			 * num and wt, GCC merges the two 32-bit members into one load
			 * right after storing them apart, a store-forwarding stall per
			 * attribute (most of this processor's time in a profile) */
			const uint8_t *q = f.payload, *qe = q + f.len, *vp = NULL;
			size_t vlen = 0;
			struct kn_wire_field k;
			int key = 0;
			while (kn_wire_field_next(&q, qe, &k) > 0) {
				if (k.tag == (1 << 3 | KN_WIRE_FIELD_LEN)) {
					key = k.len == 17 && memcmp(k.payload, "sampling.priority", 17) == 0;
				} else if (k.tag == (2 << 3 | KN_WIRE_FIELD_LEN)) {
					vp = k.payload;
					vlen = k.len;
				}
			}
			if (key) {
				seen = 1;
				if (vp)
					pr = prio_of_value(vp, vp + vlen);
			}
		}
	}
	return pr;
}

/* ---- the component ---- */

struct ps {
	struct kn_psampler s;
	struct kn_metric *sampled, *dropped, *errors, *failed;
};

struct ps_shard {
	struct ps *ps;
	struct kn_wire_filter f;
	struct kn_wire_keep *keep;
	uint32_t cap_keep;
	uint8_t *arena;
	uint32_t narena, cap_arena;
};

static int ps_create(const struct kn_component_ctx *ctx, const void *cfg, void **inst,
		     struct kn_err *err)
{
	struct ps *ps = calloc(1, sizeof *ps);
	if (!ps)
		return kn_errf(err, "out of memory");
	kn_psampler_init(&ps->s, cfg);
	char esc[96];
	kn_metrics_label_escape(ctx->id, esc, sizeof esc);
	const char *name = "kansatsu_processor_probabilistic_sampler_spans_total";
	const char *help = "Spans decided by the probabilistic_sampler processor, by decision.";
	ps->sampled = kn_metrics_processor_counter(ctx->metrics, name, help, esc,
						   "decision=\"sampled\"");
	ps->dropped = kn_metrics_processor_counter(ctx->metrics, name, help, esc,
						   "decision=\"not_sampled\"");
	ps->errors = kn_metrics_processor_counter(
		ctx->metrics, "kansatsu_processor_probabilistic_sampler_errors_total",
		"Spans whose randomness or tracestate was unusable (decided by fail_closed).", esc,
		NULL);
	ps->failed = kn_metrics_processor_counter(
		ctx->metrics, "kansatsu_processor_probabilistic_sampler_rewrite_failures_total",
		"Chunks passed on unsampled because their rewrite failed (out of memory).", esc,
		NULL);
	*inst = ps;
	return KN_OK;
}

static void ps_destroy(void *inst)
{
	free(inst);
}

static int ps_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err)
{
	(void)shard;
	struct ps_shard *s = calloc(1, sizeof *s);
	if (!s)
		return kn_errf(err, "out of memory");
	s->ps = inst;
	kn_wire_filter_init(&s->f);
	*state = s;
	return KN_OK;
}

static void ps_shard_destroy(void *state)
{
	struct ps_shard *s = state;
	if (!s)
		return;
	kn_wire_filter_free(&s->f);
	free(s->keep);
	free(s->arena);
	free(s);
}

/* Room for n more arena bytes. */
static int arena_room(struct ps_shard *s, uint32_t n)
{
	if (s->narena + n <= s->cap_arena)
		return 0;
	uint64_t nc = s->cap_arena ? s->cap_arena : 4096;
	while (nc < (uint64_t)s->narena + n)
		nc *= 2;
	if (nc > UINT32_MAX)
		return -1;
	uint8_t *p = realloc(s->arena, (size_t)nc);
	if (!p)
		return -1;
	s->arena = p;
	s->cap_arena = (uint32_t)nc;
	return 0;
}

/* One chunk: NULL (nothing kept), c itself, or a filtered copy. */
static struct kn_chunk *ps_chunk(struct ps_shard *s, struct kn_chunk *c)
{
	struct ps *ps = s->ps;
	char ts[TS_CAP];
	uint32_t kept = 0, changed = 0, errors = 0;
	if (s->cap_keep < c->nspans) {
		uint32_t nc = c->nspans > 2 * s->cap_keep ? c->nspans : 2 * s->cap_keep;
		struct kn_wire_keep *k = realloc(s->keep, (size_t)nc * sizeof *k);
		if (!k) {
			kn_counter_add(ps->failed, 1);
			return c;
		}
		s->keep = k;
		s->cap_keep = nc;
	}
	s->narena = 0;
	for (uint32_t i = 0; i < c->nspans; i++) {
		const struct kn_span_hdr *h = &c->spans[i];
		const char *old;
		size_t oldlen;
		enum kn_psampler_priority pr =
			read_span(c->data + h->off, h->len, h->nattrs > 0, &old, &oldlen);
		struct kn_psampler_result r;
		kn_psampler_decide(&ps->s, h->trace_id, old, oldlen, pr, ts, sizeof ts, &r);
		struct kn_wire_keep *k = &s->keep[i];
		k->keep = (uint32_t)r.sampled;
		k->add_off = k->add_len = 0;
		errors += (uint32_t)r.error;
		if (!r.sampled)
			continue;
		kept++;
		if (!r.ts_len)
			continue;
		uint32_t need = 1 + (uint32_t)kn_wire_varint_len(r.ts_len) + (uint32_t)r.ts_len;
		if (arena_room(s, need)) {
			kn_counter_add(ps->failed, 1);
			return c;
		}
		uint8_t *w = s->arena + s->narena;
		*w++ = 0x1a; /* Span.trace_state = 3, LEN */
		w += kn_wire_put_varint(w, r.ts_len);
		memcpy(w, ts, r.ts_len);
		k->add_off = s->narena;
		k->add_len = need;
		s->narena += need;
		changed++;
	}
	kn_counter_add(ps->sampled, kept);
	kn_counter_add(ps->dropped, c->nspans - kept);
	kn_counter_add(ps->errors, errors);
	if (kept == c->nspans && !changed)
		return c; /* byte-identical: by reference */
	if (!kept) {
		kn_chunk_unref(c);
		return NULL;
	}
	struct kn_chunk *n = NULL;
	struct kn_err err;
	if (kn_wire_filter_run(&s->f, c, s->keep, s->arena, &n, &err) != KN_OK || !n) {
		kn_warn("probabilistic_sampler: %s; the chunk passes unsampled", err.msg);
		kn_counter_add(ps->failed, 1);
		return c;
	}
	/* the copy replaces the original: it takes over the budget charge when
	 * nobody else holds the original */
	if (atomic_load_explicit(&c->refs, memory_order_acquire) == 1) {
		n->charged = c->charged;
		c->charged = 0;
	}
	kn_chunk_unref(c);
	return n;
}

static int ps_process(void *state, struct kn_batch *b, const struct kn_emit *next)
{
	struct ps_shard *s = state;
	uint32_t j = 0, nspans = 0;
	size_t bytes = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		struct kn_chunk *c = ps_chunk(s, b->chunks[i]);
		if (!c)
			continue;
		b->chunks[j++] = c;
		nspans += c->nspans;
		bytes += c->len;
	}
	b->n = j;
	b->nspans = nspans;
	b->bytes = bytes;
	if (!j) {
		kn_batch_free(b);
		return KN_DROP;
	}
	kn_emit(next, b);
	return KN_OK;
}

const struct kn_component kn_processor_probabilistic_sampler = {
	.type = "probabilistic_sampler",
	.kind = KN_PROCESSOR,
	.summary = "keeps a percentage of traces by trace id (OTel's hash, or consistent ot=th)",
	.any_shard = 1,
	.config_size = sizeof(struct kn_psampler_cfg),
	.config_fields = ps_fields,
	.validate = ps_validate,
	.create = ps_create,
	.destroy = ps_destroy,
	.shard_create = ps_shard_create,
	.process = ps_process,
	.shard_destroy = ps_shard_destroy,
};
