/* SPDX-License-Identifier: Apache-2.0
 * ottl_condition: samples a trace when one of its spans satisfies one of
 * the `span` OTTL conditions, or one of its span events one of the
 * `spanevent` conditions (OTel's policy; the engine is collector/ottl, the
 * same as the filter and transform processors'):
 *
 *   ottl_condition:
 *     error_mode: propagate     propagate (the default) | ignore | silent
 *     span:      ['attributes["http.route"] == "/checkout"', ...]
 *     spanevent: ['name == "exception"', ...]
 *
 * Spans are visited in the trace's order, each span's events right after
 * it, and the walk stops at the first match. A condition that fails at
 * run time: under propagate the policy's decision is Error (not sampled;
 * an `and` / `composite` around it gets the error as its other policies'
 * errors do), under ignore (logged, at most one line a second) or silent
 * it counts as false. Conditions are compiled once at config time and
 * shared; each shard's instance has its own transform context, so eval
 * takes no lock and allocates nothing once warm. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../collector/ottl/kn_ottl_config.h"
#include "kn_tail_policy_int.h"

struct kn_oc_conf {
	char *error_mode;
	struct kn_ottl_progs span;
	struct kn_ottl_progs spanevent;
};

static int kn_oc_parse_span(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	return kn_ottl_cfg_list(node, KN_OTTL_CONDITION, KN_OTTL_CTX_SPAN, dst, err);
}

static int kn_oc_parse_spanevent(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	return kn_ottl_cfg_list(node, KN_OTTL_CONDITION, KN_OTTL_CTX_SPANEVENT, dst, err);
}

static void kn_oc_free_progs(void *dst)
{
	kn_ottl_progs_free(dst);
}

static const char *const kn_oc_modes[] = {"propagate", "ignore", "silent", NULL};

static const struct kn_cfg_field kn_oc_table[] = {
	{.key = "error_mode", .type = KN_F_STR, .off = offsetof(struct kn_oc_conf, error_mode),
	 .def = "propagate", .choices = kn_oc_modes,
	 .help = "a condition failing at run time: propagate (decision Error), ignore (log), silent"},
	{.key = "span", .type = KN_F_CUSTOM, .off = offsetof(struct kn_oc_conf, span),
	 .help = "OTTL conditions on spans; one true samples the trace",
	 .parse = kn_oc_parse_span, .free = kn_oc_free_progs},
	{.key = "spanevent", .type = KN_F_CUSTOM, .off = offsetof(struct kn_oc_conf, spanevent),
	 .help = "OTTL conditions on span events; one true samples the trace",
	 .parse = kn_oc_parse_spanevent, .free = kn_oc_free_progs},
	KN_CFG_END,
};

static int kn_oc_check(void *conf, const char *path, struct kn_err *err)
{
	const struct kn_oc_conf *c = conf;
	if (c->span.n == 0 && c->spanevent.n == 0)
		return kn_errf(err, "%s: at least one condition is required in span or spanevent", path);
	return KN_OK;
}

struct kn_oc {
	const struct kn_oc_conf *c;
	int errmode;
	struct kn_ottl_tx *tx;
	struct kn_ottl_errlog log;
	char who[600];
};

static void kn_oc_destroy(void *state)
{
	struct kn_oc *o = state;
	if (!o)
		return;
	kn_ottl_tx_free(o->tx);
	free(o);
}

static int kn_oc_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state, struct kn_err *err)
{
	(void)nshards;
	struct kn_oc *o = calloc(1, sizeof *o);
	if (!o || !(o->tx = kn_ottl_tx_new())) {
		free(o);
		return kn_errf(err, "out of memory");
	}
	o->c = pc->conf;
	o->errmode = kn_ottl_errmode_parse(o->c->error_mode ? o->c->error_mode : "propagate");
	snprintf(o->who, sizeof o->who, "%s.ottl_condition", pc->path);
	*state = o;
	return KN_OK;
}

/* 1 match, 0 none, -1 error under propagate. */
static int kn_oc_any(struct kn_oc *o, const struct kn_ottl_progs *p)
{
	uint64_t errors = 0;
	int r = kn_ottl_any(p->v, p->n, o->errmode, o->tx, &errors);
	if (errors)
		kn_ottl_errlog(&o->log, o->who, o->errmode, kn_ottl_tx_error(o->tx),
			       o->errmode == KN_OTTL_PROPAGATE ? "error_mode propagate: the policy decided Error, not sampled" : NULL);
	return r;
}

static enum kn_tail_decision kn_oc_eval(void *state, struct kn_tail_eval *ev)
{
	struct kn_oc *o = state;
	struct kn_tail_walk w;
	struct kn_tail_rs rs;
	struct kn_tail_span sp;
	kn_tail_walk_init(&w, ev->t);
	while (kn_tail_walk_next(&w, &rs)) {
		kn_ottl_tx_resource(o->tx, rs.resource, rs.resource_len);
		const uint8_t *scope = NULL;
		int first = 1;
		while (kn_tail_rs_next_span(&rs, &sp)) {
			if (first || sp.scope != scope) {
				kn_ottl_tx_scope(o->tx, sp.scope, sp.scope_len);
				scope = sp.scope;
				first = 0;
			}
			kn_ottl_tx_span(o->tx, sp.msg, sp.len);
			int r = o->c->span.n ? kn_oc_any(o, &o->c->span) : 0;
			if (r)
				return r > 0 ? KN_TAIL_SAMPLED : KN_TAIL_ERROR;
			if (!o->c->spanevent.n)
				continue;
			int n = kn_ottl_tx_nevents(o->tx);
			for (int i = 0; i < n; i++) {
				kn_ottl_tx_event(o->tx, (uint32_t)i);
				r = kn_oc_any(o, &o->c->spanevent);
				if (r)
					return r > 0 ? KN_TAIL_SAMPLED : KN_TAIL_ERROR;
			}
		}
	}
	return KN_TAIL_NOT_SAMPLED;
}

const struct kn_tail_policy_ops kn_policy_ottl_condition_ops = {
	.type = "ottl_condition",
	.table = kn_oc_table,
	.conf_size = sizeof(struct kn_oc_conf),
	.block_required = 1,
	.check = kn_oc_check,
	.create = kn_oc_create,
	.eval = kn_oc_eval,
	.destroy = kn_oc_destroy,
};
