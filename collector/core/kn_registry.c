/* SPDX-License-Identifier: Apache-2.0
 * kn_registry: the one ordered table of components linked into kansatsu.
 * Adding a component = one extern line and one table entry here. */
#include "kn_component.h"

#include <string.h>

extern const struct kn_component kn_receiver_otlp;
extern const struct kn_component kn_processor_batch;
extern const struct kn_component kn_processor_probabilistic_sampler;
extern const struct kn_component kn_processor_memory_limiter;
extern const struct kn_component kn_processor_tail_sampling;
extern const struct kn_component kn_processor_sli;
extern const struct kn_component kn_processor_journey;
extern const struct kn_component kn_processor_resource;
extern const struct kn_component kn_processor_attributes;
extern const struct kn_component kn_processor_resourcedetection;
extern const struct kn_component kn_processor_filter;
extern const struct kn_component kn_processor_transform;
extern const struct kn_component kn_exporter_otlp;
extern const struct kn_component kn_exporter_otlphttp;
extern const struct kn_component kn_exporter_file;
extern const struct kn_component kn_exporter_debug;
extern const struct kn_component kn_exporter_loadbalancing;
extern const struct kn_component kn_extension_bearertokenauth;
extern const struct kn_component kn_extension_basicauth;
extern const struct kn_component kn_extension_file_storage;

const struct kn_component *const kn_components[] = {
	&kn_receiver_otlp,
	&kn_processor_batch,
	&kn_processor_probabilistic_sampler,
	&kn_processor_memory_limiter,
	&kn_processor_tail_sampling,
	&kn_processor_sli,
	&kn_processor_journey,
	&kn_processor_resource,
	&kn_processor_attributes,
	&kn_processor_resourcedetection,
	&kn_processor_filter,
	&kn_processor_transform,
	&kn_exporter_otlp,
	&kn_exporter_otlphttp,
	&kn_exporter_file,
	&kn_exporter_debug,
	&kn_exporter_loadbalancing,
	&kn_extension_bearertokenauth,
	&kn_extension_basicauth,
	&kn_extension_file_storage,
	NULL,
};

const struct kn_component *kn_component_find(enum kn_kind kind, const char *type)
{
	for (size_t i = 0; kn_components[i]; i++)
		if (kn_components[i]->kind == kind && strcmp(kn_components[i]->type, type) == 0)
			return kn_components[i];
	return NULL;
}
