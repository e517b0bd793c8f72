/* SPDX-License-Identifier: Apache-2.0
 * kn_registry: the one ordered table of components linked into kansatsu. */
#include "kn_component.h"

#include <string.h>

const struct kn_component *const kn_components[] = {
	NULL,
};

const struct kn_component *kn_component_find(enum kn_kind kind, const char *type)
{
	for (size_t i = 0; kn_components[i]; i++)
		if (kn_components[i]->kind == kind && strcmp(kn_components[i]->type, type) == 0)
			return kn_components[i];
	return NULL;
}
