/* SPDX-License-Identifier: Apache-2.0
 * sli (a kansatsu extension): samples a trace that spent error budget of SLI
 * `name`, so every bad event on an SLO dashboard has its trace:
 *   - name: keep-slo-violations
 *     type: sli
 *     sli: { name: chat_push, outcome: bad }
 * It reads the bool attribute sli.<name>.good that the `sli` processor
 * writes on end spans with `write_attributes: true`, so that processor must
 * run before tail_sampling in the pipeline with that option on; without it
 * this policy never samples. outcome: bad -> any span with
 * sli.<name>.good == false; good -> any with true. A non-bool value never
 * matches. Stateless; reads the spans' attributes (resources are not consulted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kn_tail_policy_int.h"

struct kn_sli_pconf {
	char *name;
	char *outcome;
	char key[96];     /* "sli.<name>.good", set by check */
	int want;         /* the value that matches */
};

static const char *const kn_sli_outcomes[] = {"bad", "good", NULL};

static const struct kn_cfg_field kn_sli_ptable[] = {
	{.key = "name", .type = KN_F_STR, .off = offsetof(struct kn_sli_pconf, name), .required = 1,
	 .help = "the SLI's name in the sli processor"},
	{.key = "outcome", .type = KN_F_STR, .off = offsetof(struct kn_sli_pconf, outcome),
	 .def = "bad", .choices = kn_sli_outcomes, .help = "sample traces with a bad (or good) event"},
	KN_CFG_END,
};

static int kn_sli_pcheck(void *conf, const char *path, struct kn_err *err)
{
	struct kn_sli_pconf *c = conf;
	if (!c->name || !c->name[0] || strlen(c->name) > 64)
		return kn_errf(err, "%s.name: 1 to 64 characters", path);
	snprintf(c->key, sizeof c->key, "sli.%s.good", c->name);
	c->want = c->outcome && strcmp(c->outcome, "good") == 0;
	return KN_OK;
}

static int kn_sli_pcreate(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			  struct kn_err *err)
{
	(void)nshards;
	(void)err;
	*state = pc->conf;
	return KN_OK;
}

/* Spans only: a Resource's value of the key never matches. */
static int kn_sli_pmatch(void *ctx, const struct kn_tail_value *v, int is_span)
{
	const struct kn_sli_pconf *c = ctx;
	return is_span && v->type == KN_TV_BOOL && (v->b != 0) == c->want;
}

static enum kn_tail_decision kn_sli_peval(void *state, struct kn_tail_eval *ev)
{
	const struct kn_sli_pconf *c = state;
	return kn_tail_match_attr(ev, c->key, strlen(c->key), kn_sli_pmatch, (void *)c, 0);
}

const struct kn_tail_policy_ops kn_policy_sli_ops = {
	.type = "sli",
	.table = kn_sli_ptable,
	.conf_size = sizeof(struct kn_sli_pconf),
	.block_required = 1,
	.check = kn_sli_pcheck,
	.create = kn_sli_pcreate,
	.eval = kn_sli_peval,
};
