/* SPDX-License-Identifier: Apache-2.0
 * status_code: samples a trace with at least one span whose Status.code is
 * in status_codes ("OK", "ERROR", "UNSET", exactly as OTel spells them).
 * State: a 3-bit mask; one walk, stopping at the first match. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kn_tail_policy_int.h"

struct kn_status_conf {
	struct kn_strlist status_codes;
};

static const struct kn_cfg_field kn_status_table[] = {
	{.key = "status_codes", .type = KN_F_STRLIST, .off = offsetof(struct kn_status_conf, status_codes),
	 .required = 1, .help = "status codes that match: OK, ERROR, UNSET"},
	KN_CFG_END,
};

static int kn_status_code_of(const char *s)
{
	if (strcmp(s, "UNSET") == 0)
		return 0;
	if (strcmp(s, "OK") == 0)
		return 1;
	if (strcmp(s, "ERROR") == 0)
		return 2;
	return -1;
}

static int kn_status_check(void *conf, const char *path, struct kn_err *err)
{
	struct kn_status_conf *c = conf;
	if (c->status_codes.n == 0)
		return kn_errf(err, "%s.status_codes: expected at least one status code", path);
	for (size_t i = 0; i < c->status_codes.n; i++)
		if (kn_status_code_of(c->status_codes.v[i]) < 0)
			return kn_errf(err, "%s.status_codes[%zu]: unknown status code \"%s\", supported: OK, ERROR, UNSET",
				       path, i, c->status_codes.v[i]);
	return KN_OK;
}

static int kn_status_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			    struct kn_err *err)
{
	const struct kn_status_conf *c = pc->conf;
	uint32_t *mask = calloc(1, sizeof *mask);
	(void)nshards;
	if (!mask)
		return kn_errf(err, "out of memory");
	for (size_t i = 0; i < c->status_codes.n; i++)
		*mask |= 1u << kn_status_code_of(c->status_codes.v[i]);
	*state = mask;
	return KN_OK;
}

static int kn_status_span(void *ctx, const struct kn_tail_span *sp)
{
	uint32_t mask = *(const uint32_t *)ctx;
	return sp->status_code >= 0 && sp->status_code < 3 && (mask >> sp->status_code) & 1;
}

static enum kn_tail_decision kn_status_eval(void *state, struct kn_tail_eval *ev)
{
	return kn_tail_each_span(ev, kn_status_span, state) ? KN_TAIL_SAMPLED : KN_TAIL_NOT_SAMPLED;
}

const struct kn_tail_policy_ops kn_policy_status_code_ops = {
	.type = "status_code",
	.table = kn_status_table,
	.conf_size = sizeof(struct kn_status_conf),
	.block_required = 1,
	.check = kn_status_check,
	.create = kn_status_create,
	.eval = kn_status_eval,
	.destroy = free,
};
