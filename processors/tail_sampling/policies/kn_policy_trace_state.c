/* SPDX-License-Identifier: Apache-2.0
 * trace_state: samples a trace with at least one span whose W3C tracestate
 * holds list-member `key` with a value in `values` (exact match). A span
 * whose tracestate is not valid W3C syntax is skipped, as OTel's
 * ParseTraceState error does. Stateless; one walk. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kn_tail_policy_int.h"

struct kn_ts_conf {
	char *key;
	struct kn_strlist values;
};

static const struct kn_cfg_field kn_ts_table[] = {
	{.key = "key", .type = KN_F_STR, .off = offsetof(struct kn_ts_conf, key), .required = 1,
	 .help = "tracestate list-member key"},
	{.key = "values", .type = KN_F_STRLIST, .off = offsetof(struct kn_ts_conf, values),
	 .required = 1, .help = "values that match"},
	KN_CFG_END,
};

static int kn_ts_check(void *conf, const char *path, struct kn_err *err)
{
	struct kn_ts_conf *c = conf;
	if (!c->key || !c->key[0])
		return kn_errf(err, "%s.key: must not be empty", path);
	if (strlen(c->key) > 256)
		return kn_errf(err, "%s.key: longer than 256 characters", path);
	if (c->values.n == 0)
		return kn_errf(err, "%s.values: expected at least one value", path);
	for (size_t i = 0; i < c->values.n; i++)
		if (strlen(c->values.v[i]) > 256)
			return kn_errf(err, "%s.values[%zu]: longer than 256 characters", path, i);
	return KN_OK;
}

static int kn_ts_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			struct kn_err *err)
{
	(void)nshards;
	(void)err;
	*state = pc->conf;
	return KN_OK;
}

struct kn_ts_run {
	const struct kn_ts_conf *c;
	size_t klen;
};

static int kn_ts_span(void *ctx, const struct kn_tail_span *sp)
{
	const struct kn_ts_run *r = ctx;
	const char *val;
	size_t vlen;
	if (kn_tracestate_get(sp->trace_state, sp->trace_state_len, r->c->key, r->klen, &val,
			      &vlen) != 1)
		return 0;
	for (size_t i = 0; i < r->c->values.n; i++)
		if (strlen(r->c->values.v[i]) == vlen && memcmp(r->c->values.v[i], val, vlen) == 0)
			return 1;
	return 0;
}

static enum kn_tail_decision kn_ts_eval(void *state, struct kn_tail_eval *ev)
{
	const struct kn_ts_conf *c = state;
	struct kn_ts_run r = {.c = c, .klen = strlen(c->key)};
	return kn_tail_each_span(ev, kn_ts_span, &r) ? KN_TAIL_SAMPLED : KN_TAIL_NOT_SAMPLED;
}

const struct kn_tail_policy_ops kn_policy_trace_state_ops = {
	.type = "trace_state",
	.table = kn_ts_table,
	.conf_size = sizeof(struct kn_ts_conf),
	.block_required = 1,
	.check = kn_ts_check,
	.create = kn_ts_create,
	.eval = kn_ts_eval,
};
