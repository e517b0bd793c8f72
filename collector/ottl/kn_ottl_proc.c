/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_proc: the shared instance / shard / guard steps of the OTTL
 * processors (see kn_ottl_proc.h). */
#include "kn_ottl_proc.h"

#include <stdio.h>

#include "../core/kn_metrics.h"

void kn_ottl_proc_init(struct kn_ottl_proc *p, const struct kn_component_ctx *ctx, const char *error_mode,
		       const char *dflt)
{
	p->errmode = kn_ottl_errmode_parse(error_mode ? error_mode : dflt);
	kn_metrics_label_escape(ctx->id, p->id, sizeof p->id);
	snprintf(p->who, sizeof p->who, "processors.%s", ctx->id);
	p->errors = kn_metrics_processor_counter(ctx->metrics, "kansatsu_processor_ottl_errors_total",
		"OTTL statements and conditions that failed at run time (error_mode decides what followed).", p->id, NULL);
}

int kn_ottl_proc_shard_init(struct kn_ottl_proc_shard *s, struct kn_err *err)
{
	if (!(s->tx = kn_ottl_tx_new()))
		return kn_errf(err, "out of memory");
	kn_wire_edit_init(&s->ed);
	s->errors = 0;
	s->failed = 0;
	return KN_OK;
}

void kn_ottl_proc_shard_free(struct kn_ottl_proc_shard *s)
{
	kn_ottl_tx_free(s->tx);
	s->tx = NULL;
	kn_wire_edit_free(&s->ed);
}

int kn_ottl_proc_guards(struct kn_ottl_proc *p, struct kn_ottl_proc_shard *s, struct kn_ottl_prog *const *progs,
			uint32_t n, int em)
{
	uint64_t before = s->errors;
	int r = kn_ottl_any(progs, n, em, s->tx, &s->errors);
	if (s->errors != before)
		kn_ottl_errlog(&p->log, p->who, em, kn_ottl_tx_error(s->tx), NULL);
	if (r < 0)
		s->failed = 1;
	return r;
}

void kn_ottl_proc_flush(struct kn_ottl_proc *p, struct kn_ottl_proc_shard *s)
{
	if (s->errors) {
		kn_counter_add(p->errors, s->errors);
		s->errors = 0;
	}
}
