/* SPDX-License-Identifier: Apache-2.0
 * The `batch` processor (see kn_batch_processor.h). Per shard it holds one
 * pending kn_batch; process() moves the incoming chunk references into it and
 * emits when it reaches send_batch_size spans; tick() emits it when its
 * oldest chunk has waited `timeout`; flush() emits what is left at shutdown. */
#include "kn_batch_processor.h"

#include <stddef.h>
#include <stdlib.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_metrics.h"

struct bp {
	struct kn_batch_processor_cfg cfg;
	struct kn_metric *sent_size, *sent_timeout, *sent_flush;
};

struct bp_shard {
	struct bp *bp;
	struct kn_batch *pending;
	uint64_t deadline; /* when pending must go; 0 when empty */
};

static const struct kn_cfg_field bp_fields[] = {
	{.key = "send_batch_size", .type = KN_F_UINT,
	 .off = offsetof(struct kn_batch_processor_cfg, send_batch_size), .def = "8192",
	 .help = "spans that trigger sending a batch", .min = 1, .max = 10000000},
	{.key = "send_batch_max_size", .type = KN_F_UINT,
	 .off = offsetof(struct kn_batch_processor_cfg, send_batch_max_size), .def = "0",
	 .help = "largest batch in spans (0 = no limit), applied at chunk boundaries"},
	{.key = "timeout", .type = KN_F_DURATION,
	 .off = offsetof(struct kn_batch_processor_cfg, timeout_ns), .def = "200ms",
	 .help = "longest a span waits for its batch"},
	KN_CFG_END,
};

static int bp_validate(const void *cfg, const char *path, struct kn_err *err)
{
	const struct kn_batch_processor_cfg *c = cfg;
	if (c->send_batch_max_size && c->send_batch_max_size < c->send_batch_size)
		return kn_errf(err, "%s.send_batch_max_size: must be 0 or at least send_batch_size (%llu)",
			       path, (unsigned long long)c->send_batch_size);
	return KN_OK;
}

static int bp_create(const struct kn_component_ctx *ctx, const void *cfg, void **inst,
		     struct kn_err *err)
{
	struct bp *bp = calloc(1, sizeof *bp);
	if (!bp)
		return kn_errf(err, "out of memory");
	bp->cfg = *(const struct kn_batch_processor_cfg *)cfg;
	char esc[96];
	kn_metrics_label_escape(ctx->id, esc, sizeof esc);
	const char *name = "kansatsu_processor_batch_sent_total";
	const char *help = "Batches sent by the batch processor, by trigger.";
	struct kn_metrics *m = ctx->metrics;
	bp->sent_size = kn_metrics_processor_counter(m, name, help, esc, "trigger=\"size\"");
	bp->sent_timeout = kn_metrics_processor_counter(m, name, help, esc, "trigger=\"timeout\"");
	bp->sent_flush = kn_metrics_processor_counter(m, name, help, esc, "trigger=\"shutdown\"");
	*inst = bp;
	return KN_OK;
}

static void bp_destroy(void *inst)
{
	free(inst);
}

static int bp_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err)
{
	(void)shard;
	struct bp_shard *s = calloc(1, sizeof *s);
	if (!s)
		return kn_errf(err, "out of memory");
	s->bp = inst;
	*state = s;
	return KN_OK;
}

static void bp_shard_destroy(void *state)
{
	struct bp_shard *s = state;
	if (!s)
		return;
	kn_batch_free(s->pending);
	free(s);
}

static void send_pending(struct bp_shard *s, const struct kn_emit *next, struct kn_metric *why)
{
	if (!s->pending)
		return;
	struct kn_batch *b = s->pending;
	s->pending = NULL;
	s->deadline = 0;
	kn_counter_add(why, 1);
	kn_emit(next, b);
}

static int bp_process(void *state, struct kn_batch *in, const struct kn_emit *next)
{
	struct bp_shard *s = state;
	const struct kn_batch_processor_cfg *cfg = &s->bp->cfg;
	for (uint32_t i = 0; i < in->n; i++) {
		struct kn_chunk *c = in->chunks[i];
		if (s->pending && cfg->send_batch_max_size &&
		    s->pending->nspans + c->nspans > cfg->send_batch_max_size)
			send_pending(s, next, s->bp->sent_size);
		if (!s->pending) {
			s->pending = kn_batch_new(16);
			if (!s->pending) {
				/* Could not hold it: pass the chunk on unbatched. */
				struct kn_batch *one = kn_batch_new(1);
				if (one && kn_batch_add(&one, c) == KN_OK)
					kn_emit(next, one);
				else
					kn_batch_free(one);
				continue;
			}
			s->deadline = c->accepted_ns + cfg->timeout_ns;
		}
		kn_batch_add(&s->pending, c);
		if (s->pending->nspans >= cfg->send_batch_size)
			send_pending(s, next, s->bp->sent_size);
	}
	in->n = 0; /* the chunk references moved into pending */
	kn_batch_free(in);
	return s->pending ? KN_RETAINED : KN_OK;
}

static uint64_t bp_tick(void *state, uint64_t now_ns, const struct kn_emit *next)
{
	struct bp_shard *s = state;
	if (s->pending && now_ns >= s->deadline)
		send_pending(s, next, s->bp->sent_timeout);
	return s->pending ? s->deadline : 0;
}

static void bp_flush(void *state, const struct kn_emit *next)
{
	struct bp_shard *s = state;
	send_pending(s, next, s->bp->sent_flush);
}

const struct kn_component kn_processor_batch = {
	.type = "batch",
	.kind = KN_PROCESSOR,
	.summary = "groups spans into larger export requests by size and time",
	.any_shard = 1,
	.config_size = sizeof(struct kn_batch_processor_cfg),
	.config_fields = bp_fields,
	.validate = bp_validate,
	.create = bp_create,
	.destroy = bp_destroy,
	.shard_create = bp_shard_create,
	.process = bp_process,
	.tick = bp_tick,
	.flush = bp_flush,
	.shard_destroy = bp_shard_destroy,
};
