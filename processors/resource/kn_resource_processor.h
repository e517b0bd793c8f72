/* SPDX-License-Identifier: Apache-2.0
 * The `resource` processor: the OpenTelemetry Collector's attribute actions
 * (collector/attraction) on every Resource's attributes:
 *   attributes: [{key, action, value | from_attribute | default_value,
 *                 pattern, converted_type}, ...]   (required, not empty)
 * A Resource no action changes keeps its exact bytes, and a chunk with no
 * change passes on by reference. Per batch, no per-trace state (any_shard). */
#ifndef KN_RESOURCE_PROCESSOR_H
#define KN_RESOURCE_PROCESSOR_H

#include "../../collector/attraction/kn_attraction.h"
#include "../../collector/core/kn_component.h"

struct kn_resource_processor_cfg {
	struct kn_attractions attributes;
};

extern const struct kn_component kn_processor_resource;

#endif
