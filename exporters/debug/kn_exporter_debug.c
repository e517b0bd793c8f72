/* SPDX-License-Identifier: Apache-2.0
 * kn_exporter_debug: the `debug` exporter component (see kn_exporter_debug.h).
 * export() enqueues into a kn_sender; its single consumer thread renders the
 * batch into a reused buffer and writes it to stderr with one write(2)
 * (looping only on a short write). The sampling window state is touched by
 * that thread alone. */
#include "kn_exporter_debug.h"
#include "kn_debug_render.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../collector/core/kn_clock.h"
#include "../common/kn_sender.h"

static const char *const verbosity_choices[] = { "basic", "normal", "detailed", NULL };

const struct kn_cfg_field kn_exporter_debug_fields[] = {
	{ .key = "verbosity", .type = KN_F_STR,
	  .off = offsetof(struct kn_exporter_debug_cfg, verbosity), .def = "basic",
	  .help = "basic (a line per batch), normal (a line per span) or detailed (OTLP/JSON)",
	  .choices = verbosity_choices },
	{ .key = "sampling_initial", .type = KN_F_UINT,
	  .off = offsetof(struct kn_exporter_debug_cfg, sampling_initial), .def = "2",
	  .help = "batches printed each second before sampling starts" },
	{ .key = "sampling_thereafter", .type = KN_F_UINT,
	  .off = offsetof(struct kn_exporter_debug_cfg, sampling_thereafter), .def = "1",
	  .help = "after sampling_initial in a second, print every Nth batch (0: none)" },
	KN_CFG_END,
};

struct debugexp {
	char *id;
	enum kn_debug_verbosity verbosity;
	uint64_t initial, thereafter;
	struct kn_sender *sender;
	int fd;                     /* stderr */
	/* consumer thread only */
	struct kn_dbuf buf;
	uint64_t window_start_ns, window_count;
	int shut;
};

static int parse_verbosity(const char *s, enum kn_debug_verbosity *v)
{
	if (!s || strcmp(s, "basic") == 0)
		*v = KN_DEBUG_BASIC;
	else if (strcmp(s, "normal") == 0)
		*v = KN_DEBUG_NORMAL;
	else if (strcmp(s, "detailed") == 0)
		*v = KN_DEBUG_DETAILED;
	else
		return -1;
	return 0;
}

static int debug_validate(const void *cfgp, const char *path, struct kn_err *err)
{
	const struct kn_exporter_debug_cfg *cfg = cfgp;
	enum kn_debug_verbosity v;
	if (parse_verbosity(cfg->verbosity, &v) < 0)
		return kn_errf(err, "%s.verbosity: expected basic, normal or detailed, got \"%s\"",
			       path, cfg->verbosity);
	return KN_OK;
}

/* zap-style sampling per one-second window: the first `initial` batches,
 * then every `thereafter`th. */
static int sampled(struct debugexp *de)
{
	uint64_t now = kn_now_ns();
	if (now - de->window_start_ns >= KN_NS_PER_SEC || de->window_start_ns == 0) {
		de->window_start_ns = now;
		de->window_count = 0;
	}
	uint64_t n = ++de->window_count;
	if (n <= de->initial)
		return 1;
	return de->thereafter && (n - de->initial) % de->thereafter == 0;
}

static int debug_send(void *ctx, const struct kn_batch *b, uint64_t deadline_ns,
		      uint64_t *retry_after_ns, struct kn_err *err)
{
	struct debugexp *de = ctx;
	(void)deadline_ns;
	(void)retry_after_ns;
	if (!sampled(de))
		return KN_OK;
	if (kn_debug_render(&de->buf, de->id, de->verbosity, b, err) != KN_OK)
		return KN_ERR;
	const char *p = de->buf.p;
	size_t left = de->buf.len;
	while (left > 0) {
		ssize_t w = write(de->fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return kn_errf(err, "exporters.%s: write to stderr: %s", de->id,
				       strerror(errno));
		}
		p += w;
		left -= (size_t)w;
	}
	return KN_OK;
}

static void debug_destroy(void *inst)
{
	struct debugexp *de = inst;
	if (!de)
		return;
	if (de->sender) {
		kn_sender_shutdown(de->sender, kn_now_ns());
		kn_sender_destroy(de->sender);
	}
	kn_dbuf_free(&de->buf);
	free(de->id);
	free(de);
}

static int debug_create(const struct kn_component_ctx *ctx, const void *cfgp, void **inst,
			struct kn_err *err)
{
	const struct kn_exporter_debug_cfg *cfg = cfgp;
	const char *id = ctx && ctx->id ? ctx->id : "debug";
	char path[256];
	snprintf(path, sizeof path, "exporters.%s", id);
	*inst = NULL;
	if (debug_validate(cfg, path, err) != KN_OK)
		return KN_ERR;
	struct debugexp *de = calloc(1, sizeof *de);
	if (!de)
		return kn_errf(err, "%s: out of memory", path);
	de->fd = STDERR_FILENO;
	parse_verbosity(cfg->verbosity, &de->verbosity);
	de->initial = cfg->sampling_initial;
	de->thereafter = cfg->sampling_thereafter;
	de->id = strdup(id);
	if (!de->id) {
		kn_errf(err, "%s: out of memory", path);
		goto fail;
	}
	/* Fixed sender settings: the debug exporter has no queue options of its
	 * own; one consumer keeps the output in order. */
	struct kn_sender_cfg scfg = {
		.timeout_ns = 5 * KN_NS_PER_SEC,
		.queue = { .enabled = 1, .num_consumers = 1, .queue_size = 1000 },
		.retry = { .enabled = 0 },
	};
	de->sender = kn_sender_create(id, &scfg, debug_send, de, ctx ? ctx->metrics : NULL, err);
	if (!de->sender) {
		kn_err_prefix(err, "%s: ", path);
		goto fail;
	}
	*inst = de;
	return KN_OK;
fail:
	debug_destroy(de);
	return KN_ERR;
}

static int debug_start(void *inst, struct kn_err *err)
{
	struct debugexp *de = inst;
	if (kn_sender_start(de->sender, err) != KN_OK)
		return kn_err_prefix(err, "exporters.%s: ", de->id);
	return KN_OK;
}

static void debug_shutdown(void *inst, uint64_t deadline_ns)
{
	struct debugexp *de = inst;
	if (!de || de->shut)
		return;
	de->shut = 1;
	kn_sender_shutdown(de->sender, deadline_ns);
}

static int debug_export(void *inst, struct kn_batch *b)
{
	struct debugexp *de = inst;
	return kn_sender_enqueue(de->sender, b);
}

const struct kn_component kn_exporter_debug = {
	.type = "debug",
	.kind = KN_EXPORTER,
	.summary = "prints batches on stderr (counts, a line per span, or OTLP/JSON)",
	.config_size = sizeof(struct kn_exporter_debug_cfg),
	.config_fields = kn_exporter_debug_fields,
	.validate = debug_validate,
	.create = debug_create,
	.start = debug_start,
	.shutdown = debug_shutdown,
	.destroy = debug_destroy,
	.export = debug_export,
};
