/* SPDX-License-Identifier: Apache-2.0
 * The `transform` processor for traces, with the OpenTelemetry Collector
 * (contrib) transform processor's config:
 *
 *   error_mode: ignore              ignore (OTel's default) | silent | propagate
 *   trace_statements:
 *     - set(span.attributes["k"], "v") where span.name == "x"    basic: the
 *       context of each statement is inferred from its path prefixes
 *       (resource, scope, span, spanevent; span when none)
 *     - context: span                                            advanced: a
 *       conditions: ['kind == SPAN_KIND_SERVER']                 group with
 *       statements: ['set(attributes["a"], 1)']                  its context,
 *       error_mode: propagate                                    guards (ORed)
 *                                                                 and mode
 *
 * Groups run in config order as OTel runs them (each over all the data of
 * its context before the next group), done in as few walks as that order
 * allows: one walk visits each Resource, then its scopes, then their spans
 * and their events, so consecutive groups whose contexts go down (resource,
 * scope, span, spanevent) share a walk, and a group of a higher context
 * after a lower one starts the next walk.
 *
 * Edits are spliced into the encoded messages (kn_wire_edit); a Resource,
 * scope, span or event no statement changed keeps its exact bytes and a
 * chunk without a change passes by reference. A statement writes its own
 * context (a spanevent statement may also write its span): writing a
 * resource or scope from a span statement is refused at startup.
 *
 * error_mode: a statement failing at run time is skipped (ignore: logged,
 * at most one line a second; silent: not logged) or, under propagate, the
 * chunk holding the element is dropped and counted in
 * kansatsu_processor_transform_spans_dropped_total{processor,reason="error"}
 * (reason="out_of_memory" when an edit could not be allocated). Failures in
 * kansatsu_processor_ottl_errors_total{processor}. Per batch, no per-trace
 * state (any_shard). metric/log/profile_statements are refused by name. */
#ifndef KN_TRANSFORM_PROCESSOR_H
#define KN_TRANSFORM_PROCESSOR_H

#include "../../collector/core/kn_component.h"
#include "../../collector/ottl/kn_ottl_config.h"

struct kn_transform_cfg {
	char *error_mode;
	struct kn_ottl_groups statements;   /* groups with errmode -1 inherit error_mode */
	int refused;
	int flatten_data;                   /* accepted only false: kansatsu does not regroup */
};

extern const struct kn_component kn_processor_transform;

#endif
