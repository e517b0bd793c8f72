/* SPDX-License-Identifier: Apache-2.0
 * The `filter` processor for traces, with the OpenTelemetry Collector
 * (contrib) filter processor's OTTL config:
 *
 *   error_mode: propagate          propagate | ignore | silent (OTel's default)
 *   traces:
 *     span:      [conditions]      a span for which any holds is dropped
 *     spanevent: [conditions]      a span event for which any holds is dropped
 *   trace_conditions:              the newer shape: strings (context inferred
 *     - 'span.name == "x"'         from the path prefixes: resource, scope,
 *     - context: resource          span, spanevent; span when none) or groups
 *       conditions: [...]          {context, conditions, error_mode}
 *       error_mode: ignore
 *
 * A resource condition drops every span of that ResourceSpans, a scope
 * condition every span of that ScopeSpans, a span condition the span, a
 * spanevent condition the event (a span whose events all go stays). Higher
 * levels are decided first: a dropped span's events are not evaluated.
 * Emptied ScopeSpans / ResourceSpans are left out, as OTel removes them.
 *
 * error_mode: a condition that fails at run time (a converter given the
 * wrong type, math on nil, ...) counts as false under ignore (logged, at
 * most one line a second) and silent; under propagate the chunk holding the
 * span is dropped, counted with reason "error" (OTel drops the payload).
 *
 * Counted in kansatsu_processor_filter_spans_dropped_total{processor,reason}
 * (reason span | resource | scope | error | out_of_memory),
 * kansatsu_processor_filter_span_events_dropped_total{processor} and
 * kansatsu_processor_ottl_errors_total{processor}.
 *
 * Spans and chunks nothing drops keep their bytes (a chunk is passed on by
 * reference); otherwise the chunk is copied once without the dropped spans
 * (kn_wire_filter) after events were cut out by splicing (kn_wire_edit).
 * Per batch, no per-trace state (any_shard). Refused with a message naming
 * the key: metrics, logs, profiles (and their *_conditions), and the
 * legacy `spans` include/exclude shape. */
#ifndef KN_FILTER_PROCESSOR_H
#define KN_FILTER_PROCESSOR_H

#include "../../collector/core/kn_component.h"
#include "../../collector/ottl/kn_ottl_config.h"

struct kn_filter_cfg {
	char *error_mode;
	struct kn_ottl_groups traces;       /* traces.span / traces.spanevent (error_mode inherited) */
	struct kn_ottl_groups conditions;   /* trace_conditions */
	int refused;                        /* unused: the refusing parsers fail */
};

extern const struct kn_component kn_processor_filter;

#endif
