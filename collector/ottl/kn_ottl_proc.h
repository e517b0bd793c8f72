/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_proc: the state and steps every OTTL-driven processor (`filter`,
 * `transform`) has around its own callbacks, in one place:
 *   - per instance: error_mode, the escaped id and "processors.<id>" for the
 *     log, the counter kansatsu_processor_ottl_errors_total{processor} and
 *     the rate-limited error log;
 *   - per shard: one OTTL transform context and one splicing editor, the
 *     run-time errors counted since the last flush, and whether a condition
 *     or statement failed under error_mode propagate;
 *   - guards: conditions ORed (kn_ottl_any) with the failures logged.
 *
 * Threads: an instance is shared by the shards (the error log is atomic);
 * a shard struct belongs to its shard's thread. */
#ifndef KN_OTTL_PROC_H
#define KN_OTTL_PROC_H

#include <stdint.h>

#include "../core/kn_component.h"
#include "../wire/kn_wire_edit.h"
#include "kn_ottl.h"

struct kn_ottl_proc {
	int errmode;                 /* KN_OTTL_PROPAGATE / IGNORE / SILENT */
	struct kn_metric *errors;
	struct kn_ottl_errlog log;
	char id[96];                 /* the component id, escaped for a label */
	char who[128];               /* "processors.<id>" */
};

/* error_mode: the config's value, or NULL for `dflt` (the processor's
 * default: OTel's filter propagates, its transform ignores). */
void kn_ottl_proc_init(struct kn_ottl_proc *p, const struct kn_component_ctx *ctx, const char *error_mode,
		       const char *dflt);

struct kn_ottl_proc_shard {
	struct kn_ottl_tx *tx;
	struct kn_wire_edit ed;
	uint64_t errors;             /* failures since the last kn_ottl_proc_flush */
	int failed;                  /* a failure under propagate in the current run */
};

/* KN_OK, or KN_ERR ("out of memory") with nothing to free. */
int kn_ottl_proc_shard_init(struct kn_ottl_proc_shard *s, struct kn_err *err);
void kn_ottl_proc_shard_free(struct kn_ottl_proc_shard *s);

/* The conditions p[0..n) ORed under error mode `em` on the shard's current
 * element: 1 one holds, 0 none does, -1 one failed under propagate (then
 * s->failed is set). Every failure is counted and logged (rate-limited). */
int kn_ottl_proc_guards(struct kn_ottl_proc *p, struct kn_ottl_proc_shard *s, struct kn_ottl_prog *const *progs,
			uint32_t n, int em);

/* Adds the shard's counted failures to the instance's counter. */
void kn_ottl_proc_flush(struct kn_ottl_proc *p, struct kn_ottl_proc_shard *s);

#endif
