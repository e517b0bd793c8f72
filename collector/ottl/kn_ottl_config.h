/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_config: OTTL in the OpenTelemetry Collector's config shapes, one
 * parser for the filter and transform processors and the tail sampler.
 *
 * A group is what OTel runs together: one context, one error mode, its
 * programs (statements, or conditions), and for transform its own guard
 * conditions (ORed: the statements run for an element when any holds, or
 * when there are none).
 *
 *   kn_ottl_cfg_list   a YAML list of strings in one fixed context
 *                      (filter's traces.span, the ottl_condition policy's
 *                      span / spanevent)
 *   kn_ottl_cfg_groups a list whose items are strings (each compiled alone,
 *                      its context inferred from its path prefixes, span
 *                      when none; consecutive strings of one context share a
 *                      group) or maps {context, statements | conditions,
 *                      conditions (transform's guards), error_mode}
 *                      (filter's trace_conditions, transform's
 *                      trace_statements)
 * Every error names the YAML path of the offending item
 * ("processors.transform.trace_statements[1].statements[0]: ..."). */
#ifndef KN_OTTL_CONFIG_H
#define KN_OTTL_CONFIG_H

#include <stdint.h>

#include "kn_ottl.h"
#include "../config/kn_config.h"

struct kn_ottl_progs {
	struct kn_ottl_prog **v;
	uint32_t n;
};

struct kn_ottl_group {
	int ctx;
	int errmode;
	struct kn_ottl_progs progs;   /* statements, or the conditions */
	struct kn_ottl_progs guards;  /* transform: group conditions */
};

struct kn_ottl_groups {
	struct kn_ottl_group *v;
	uint32_t n;
};

/* A scalar node holding propagate / ignore / silent. */
int kn_ottl_cfg_errmode(const struct kn_cnode *n, int *mode, struct kn_err *err);

int kn_ottl_cfg_list(const struct kn_cnode *list, enum kn_ottl_kind kind, int ctx, struct kn_ottl_progs *out,
		     struct kn_err *err);
void kn_ottl_progs_free(struct kn_ottl_progs *p);

/* errmode: the mode of groups that set none. */
int kn_ottl_cfg_groups(const struct kn_cnode *list, enum kn_ottl_kind kind, int errmode,
		       struct kn_ottl_groups *out, struct kn_err *err);
void kn_ottl_groups_free(struct kn_ottl_groups *g);

#endif
