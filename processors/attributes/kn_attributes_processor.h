/* SPDX-License-Identifier: Apache-2.0
 * The `attributes` processor: the OpenTelemetry Collector's attribute
 * actions (collector/attraction) on span attributes, for the spans that
 * `include` selects and `exclude` does not (kn_attributes_filter.h; both
 * optional, exclude wins):
 *   actions: [{key, action, value | from_attribute | default_value,
 *              pattern, converted_type}, ...]   (required, not empty)
 *   include: {match_type, services, span_names, span_kinds, attributes,
 *             resources, libraries, regexp}
 *   exclude: {... the same ...}
 * A span no action changes keeps its exact bytes; a chunk with no change
 * passes on by reference. Per batch, no per-trace state (any_shard). */
#ifndef KN_ATTRIBUTES_PROCESSOR_H
#define KN_ATTRIBUTES_PROCESSOR_H

#include "kn_attributes_filter.h"
#include "../../collector/core/kn_component.h"

struct kn_attributes_processor_cfg {
	struct kn_attractions actions;
	struct kn_af include;
	struct kn_af exclude;
};

extern const struct kn_component kn_processor_attributes;

#endif
