/* SPDX-License-Identifier: Apache-2.0
 * The `probabilistic_sampler` processor, with the OpenTelemetry Collector
 * (contrib) processor's keys and per-span semantics for traces:
 *   sampling_percentage: 0      float32 percent; > 100 means 100; negative,
 *                               NaN/Inf and 0 < p < 2^-56 are errors
 *   mode: (unset)               hash_seed | proportional | equalizing;
 *                               unset means hash_seed (OTel's default)
 *   hash_seed: 0                uint32, hash_seed mode
 *   sampling_precision: 4       hex digits of the written threshold, 1..14
 *   fail_closed: true           a span whose randomness or tracestate is
 *                               unusable is dropped (false: kept)
 *   attribute_source: traceID   `record`, from_attribute and sampling_priority
 *   from_attribute, sampling_priority   are for logs in OTel: errors here
 * Spans whose attribute `sampling.priority` is 0 are dropped, > 0 kept
 * (OpenTracing convention; int, double or numeric string), in every mode.
 *
 * Decisions are per span from its own trace id, tracestate and attributes,
 * so the processor keeps no state across chunks (any_shard) and a trace's
 * spans agree whenever their tracestates do.
 *
 * hash_seed: R = a 56-bit randomness built from FNV-1a-32(seed as 4 bytes
 * little endian || trace id) exactly as OTel builds it (14-bit bucket in
 * the top 14 bits, inverted), threshold = (16384 - floor(pct * 163.84 in
 * float32)) << 42: so the keep/drop decision equals the OTel processor's
 * old `hash & 0x3fff < scaled` test bit for bit. A kept span gets
 * `ot=rv:<R>;th:<T>` (as OTel writes it); a span whose tracestate already
 * has rv or th is an error (fail_closed decides).
 * proportional / equalizing: OpenTelemetry consistent probability sampling
 * (R = ot rv, else the trace id's low 56 bits; T written to ot=th with
 * sampling_precision digits); proportional multiplies an arriving th's
 * probability by the percentage, equalizing raises the threshold to the
 * configured one; an arriving th inconsistent with R is cleared and counted
 * as an error. The tracestate parsing and writing is collector/core's
 * kn_tracestate (shared with the tail sampler).
 *
 * A span kept unchanged keeps its bytes, and a chunk whose spans are all
 * kept unchanged is passed on by reference; otherwise the chunk is copied
 * once without the dropped spans (kn_wire_filter) and each rewritten span
 * gets a `trace_state` field appended (protobuf: the last one wins). */
#ifndef KN_PROBABILISTIC_SAMPLER_H
#define KN_PROBABILISTIC_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "../../collector/core/kn_component.h"

struct kn_psampler_cfg {
	double sampling_percentage;
	uint64_t hash_seed;
	char *mode;
	int fail_closed;
	int64_t sampling_precision;
	char *attribute_source;
	char *from_attribute;
	char *sampling_priority;
};

extern const struct kn_component kn_processor_probabilistic_sampler;

/* ---- the decision, exposed for unit tests ---- */

enum kn_psampler_mode { KN_PS_NEVER, KN_PS_HASH_SEED, KN_PS_PROPORTIONAL, KN_PS_EQUALIZING };
enum kn_psampler_priority { KN_PS_DEFER = 0, KN_PS_MUST, KN_PS_MUST_NOT };

struct kn_psampler {
	enum kn_psampler_mode mode;
	uint32_t seed;
	int fail_closed;
	int precision;
	double ratio;          /* proportional */
	uint64_t threshold;    /* hash_seed / equalizing */
};

/* Compiles a checked config. */
void kn_psampler_init(struct kn_psampler *s, const struct kn_psampler_cfg *c);

/* FNV-1a 32 of the seed's 4 little-endian bytes then b[0..n) (OTel's computeHash). */
uint32_t kn_psampler_hash(const uint8_t *b, size_t n, uint32_t seed);

/* OTel's sampling.ProbabilityToThresholdWithPrecision: 0, or -1 when p is
 * outside [2^-56, 1]. */
int kn_psampler_prob_threshold(double p, int precision, uint64_t *th);

struct kn_psampler_result {
	int sampled;
	int error;           /* randomness / tracestate unusable (fail_closed applied) */
	size_t ts_len;       /* rewrite: the new tracestate's length (0: keep the span's bytes) */
};

/* Decides one span. ts/tslen: its tracestate (may be empty). out[cap]
 * receives the new tracestate when the result says to rewrite. */
void kn_psampler_decide(const struct kn_psampler *s, const uint8_t tid[16], const char *ts,
			size_t tslen, enum kn_psampler_priority prio, char *out, size_t cap,
			struct kn_psampler_result *r);

#endif
