/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_funcs: the one table of OTTL functions kansatsu implements, by
 * name (editors lower case, converters upper case). Each file of functions
 * exports a NULL-terminated array; a name not found here is a startup error
 * ("unknown converter ... (not supported by kansatsu)"). Looked up at
 * config time only. */
#include <string.h>

#include "kn_ottl_int.h"

extern const struct kn_ottl_fn kn_ottl_fns_edit[];
extern const struct kn_ottl_fn kn_ottl_fns_replace[];
extern const struct kn_ottl_fn kn_ottl_fns_conv[];
extern const struct kn_ottl_fn kn_ottl_fns_misc[];

static const struct kn_ottl_fn *const tables[] = {
	kn_ottl_fns_edit, kn_ottl_fns_replace, kn_ottl_fns_conv, kn_ottl_fns_misc, NULL,
};

const struct kn_ottl_fn *kn_ottl_fn_find(const char *name)
{
	for (size_t t = 0; tables[t]; t++)
		for (const struct kn_ottl_fn *f = tables[t]; f->name; f++)
			if (!strcmp(f->name, name))
				return f;
	return NULL;
}
