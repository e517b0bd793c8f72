/* SPDX-License-Identifier: Apache-2.0
 * kn_exporter_file: the `file` exporter component (see kn_exporter_file.h).
 *
 * export() (any shard worker) only enqueues into the kn_sender. The sender's
 * single consumer thread calls file_send, which formats one record per batch
 * and appends it under `mu`; the zstd flusher thread takes the same mutex to
 * end a frame every flush_interval. That mutex is only ever contended by
 * those two threads. Costs per batch: proto = one writev over the chunks (an
 * iovec array on the stack up to 32 chunks); json = one flatten copy plus the
 * JSON text. */
#include "kn_exporter_file.h"
#include "kn_fileout.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_log.h"
#include "../../collector/json/kn_pbjson.h"

static const char *const format_choices[] = { "json", "proto", NULL };
static const char *const compression_choices[] = { "", "zstd", NULL };

const struct kn_cfg_field kn_exporter_file_rotation_fields[] = {
	{ .key = "max_megabytes", .type = KN_F_UINT,
	  .off = offsetof(struct kn_exporter_file_rotation_cfg, max_megabytes), .def = "100",
	  .help = "rotate the file when it reaches this many MiB", .min = 1, .max = 1048576 },
	{ .key = "max_backups", .type = KN_F_UINT,
	  .off = offsetof(struct kn_exporter_file_rotation_cfg, max_backups), .def = "100",
	  .help = "rotated files to keep (<path>.1 newest); 0 keeps all" },
	KN_CFG_END,
};

const struct kn_cfg_field kn_exporter_file_fields[] = {
	{ .key = "path", .type = KN_F_STR, .off = offsetof(struct kn_exporter_file_cfg, path),
	  .help = "file to append to", .required = 1 },
	{ .key = "format", .type = KN_F_STR, .off = offsetof(struct kn_exporter_file_cfg, format),
	  .def = "json", .help = "json (one OTLP/JSON TracesData per line) or proto (length-prefixed)",
	  .choices = format_choices },
	{ .key = "compression", .type = KN_F_STR,
	  .off = offsetof(struct kn_exporter_file_cfg, compression), .def = "",
	  .help = "\"\" (none) or zstd", .choices = compression_choices },
	{ .key = "rotation", .type = KN_F_SUB, .off = offsetof(struct kn_exporter_file_cfg, rotation),
	  .help = "size-based rotation; off unless present",
	  .sub = kn_exporter_file_rotation_fields,
	  .present_off = offsetof(struct kn_exporter_file_cfg, rotation_enabled) },
	{ .key = "flush_interval", .type = KN_F_DURATION,
	  .off = offsetof(struct kn_exporter_file_cfg, flush_interval_ns), .def = "1s",
	  .help = "zstd: end a frame this often" },
	{ .key = "sending_queue", .type = KN_F_SUB,
	  .off = offsetof(struct kn_exporter_file_cfg, sender.queue),
	  .help = "queue between the pipeline and the writer (num_consumers is always 1)",
	  .sub = kn_sender_queue_fields },
	KN_CFG_END,
};

struct fileexp {
	char *id;
	int json;
	uint64_t flush_interval_ns;
	struct kn_sender *sender;

	pthread_mutex_t mu;       /* guards out between the consumer and the flusher */
	int mu_ok;
	struct kn_fileout out;

	pthread_cond_t cv;        /* CLOCK_MONOTONIC; wakes the flusher to stop */
	int cv_ok;
	pthread_t flusher;
	int flusher_running;
	int stop;                 /* under mu */

	int started, shut;
};

static int file_validate(const void *cfgp, const char *path, struct kn_err *err)
{
	const struct kn_exporter_file_cfg *cfg = cfgp;
	if (!cfg->path || !cfg->path[0])
		return kn_errf(err, "%s.path: missing", path);
	if (cfg->format && strcmp(cfg->format, "json") != 0 && strcmp(cfg->format, "proto") != 0)
		return kn_errf(err, "%s.format: expected json or proto, got \"%s\"", path,
			       cfg->format);
	if (cfg->compression && cfg->compression[0] && strcmp(cfg->compression, "zstd") != 0)
		return kn_errf(err, "%s.compression: expected \"\" or zstd, got \"%s\"", path,
			       cfg->compression);
	if (cfg->rotation_enabled && cfg->rotation.max_megabytes == 0)
		return kn_errf(err, "%s.rotation.max_megabytes: must be at least 1", path);
	if (cfg->compression && strcmp(cfg->compression, "zstd") == 0 &&
	    cfg->flush_interval_ns == 0)
		return kn_errf(err, "%s.flush_interval: must be more than 0 with zstd", path);
	return KN_OK;
}

/* One record per batch; called by the sender's single consumer thread. */
static int file_send(void *ctx, const struct kn_batch *b, uint64_t deadline_ns,
		     uint64_t *retry_after_ns, struct kn_err *err)
{
	struct fileexp *fe = ctx;
	(void)deadline_ns;
	(void)retry_after_ns;
	if (b->n == 0 || b->bytes == 0)
		return KN_OK;
	int rc = KN_ERR;
	uint8_t *flat = NULL;
	char *js = NULL;
	size_t jslen = 0;
	struct iovec stack_iov[33];
	struct iovec *iov = stack_iov;
	size_t niov;
	uint8_t prefix[4];

	if (fe->json) {
		flat = kn_batch_flatten(b);
		if (!flat) {
			kn_errf(err, "exporters.%s: out of memory", fe->id);
			goto out;
		}
		if (kn_pbjson_traces_from_proto(flat, b->bytes, &js, &jslen, err) != KN_OK) {
			kn_err_prefix(err, "exporters.%s: ", fe->id);
			goto out;
		}
		iov[0] = (struct iovec){ .iov_base = js, .iov_len = jslen };
		iov[1] = (struct iovec){ .iov_base = "\n", .iov_len = 1 };
		niov = 2;
	} else {
		if (b->bytes > UINT32_MAX) {
			kn_errf(err, "exporters.%s: batch of %zu bytes exceeds the 4 GiB record limit",
				fe->id, b->bytes);
			goto out;
		}
		if (b->n + 1 > sizeof stack_iov / sizeof stack_iov[0]) {
			iov = malloc(((size_t)b->n + 1) * sizeof *iov);
			if (!iov) {
				kn_errf(err, "exporters.%s: out of memory", fe->id);
				goto out;
			}
		}
		uint32_t len = (uint32_t)b->bytes;
		prefix[0] = (uint8_t)(len >> 24);
		prefix[1] = (uint8_t)(len >> 16);
		prefix[2] = (uint8_t)(len >> 8);
		prefix[3] = (uint8_t)len;
		iov[0] = (struct iovec){ .iov_base = prefix, .iov_len = 4 };
		kn_batch_iov(b, iov + 1);
		niov = (size_t)b->n + 1;
	}
	pthread_mutex_lock(&fe->mu);
	rc = kn_fileout_write(&fe->out, iov, niov, err);
	pthread_mutex_unlock(&fe->mu);
out:
	if (iov != stack_iov)
		free(iov);
	free(js);
	free(flat);
	return rc;
}

static void *flusher_main(void *arg)
{
	struct fileexp *fe = arg;
	pthread_mutex_lock(&fe->mu);
	uint64_t next = kn_now_ns() + fe->flush_interval_ns;
	while (!fe->stop) {
		struct timespec ts = { .tv_sec = (time_t)(next / KN_NS_PER_SEC),
				       .tv_nsec = (long)(next % KN_NS_PER_SEC) };
		int r = pthread_cond_timedwait(&fe->cv, &fe->mu, &ts);
		if (fe->stop)
			break;
		if (r != ETIMEDOUT && kn_now_ns() < next)
			continue;
		struct kn_err err;
		if (kn_fileout_flush(&fe->out, &err) != KN_OK)
			kn_error("exporters.%s: flush: %s", fe->id, err.msg);
		next = kn_now_ns() + fe->flush_interval_ns;
	}
	pthread_mutex_unlock(&fe->mu);
	return NULL;
}

static void flusher_stop(struct fileexp *fe)
{
	if (!fe->flusher_running)
		return;
	pthread_mutex_lock(&fe->mu);
	fe->stop = 1;
	pthread_cond_signal(&fe->cv);
	pthread_mutex_unlock(&fe->mu);
	pthread_join(fe->flusher, NULL);
	fe->flusher_running = 0;
}

static void file_destroy(void *inst)
{
	struct fileexp *fe = inst;
	if (!fe)
		return;
	if (fe->sender) {
		kn_sender_shutdown(fe->sender, kn_now_ns());
		kn_sender_destroy(fe->sender);
	}
	flusher_stop(fe);
	kn_fileout_fini(&fe->out);
	if (fe->cv_ok)
		pthread_cond_destroy(&fe->cv);
	if (fe->mu_ok)
		pthread_mutex_destroy(&fe->mu);
	free(fe->id);
	free(fe);
}

static int file_create(const struct kn_component_ctx *ctx, const void *cfgp, void **inst,
		       struct kn_err *err)
{
	const struct kn_exporter_file_cfg *cfg = cfgp;
	const char *id = ctx && ctx->id ? ctx->id : "file";
	char path[256];
	snprintf(path, sizeof path, "exporters.%s", id);
	*inst = NULL;
	if (file_validate(cfg, path, err) != KN_OK)
		return KN_ERR;

	struct fileexp *fe = calloc(1, sizeof *fe);
	if (!fe)
		return kn_errf(err, "%s: out of memory", path);
	fe->id = strdup(id);
	if (!fe->id) {
		kn_errf(err, "%s: out of memory", path);
		goto fail;
	}
	fe->json = !cfg->format || strcmp(cfg->format, "json") == 0;
	fe->flush_interval_ns = cfg->flush_interval_ns;
	int zstd = cfg->compression && strcmp(cfg->compression, "zstd") == 0;
	uint64_t max_bytes = cfg->rotation_enabled ? cfg->rotation.max_megabytes << 20 : 0;
	if (kn_fileout_init(&fe->out, cfg->path, zstd, max_bytes, cfg->rotation.max_backups,
			    err) != KN_OK) {
		kn_err_prefix(err, "%s.path: ", path);
		goto fail;
	}
	if (pthread_mutex_init(&fe->mu, NULL) != 0) {
		kn_errf(err, "%s: cannot create a mutex", path);
		goto fail;
	}
	fe->mu_ok = 1;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int r = pthread_cond_init(&fe->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (r != 0) {
		kn_errf(err, "%s: cannot create a condition variable", path);
		goto fail;
	}
	fe->cv_ok = 1;

	/* One writer per file; a file is not retried into (a failed write is
	 * counted as a failed request by the sender). */
	struct kn_sender_cfg scfg = cfg->sender;
	scfg.queue.num_consumers = 1;
	if (scfg.queue.queue_size == 0)
		scfg.queue.queue_size = 1000;
	scfg.retry.enabled = 0;
	if (scfg.timeout_ns == 0)
		scfg.timeout_ns = 5 * KN_NS_PER_SEC;
	fe->sender = kn_sender_create(id, &scfg, file_send, fe, ctx ? ctx->metrics : NULL, err);
	if (!fe->sender) {
		kn_err_prefix(err, "%s: ", path);
		goto fail;
	}
	*inst = fe;
	return KN_OK;
fail:
	file_destroy(fe);
	return KN_ERR;
}

static int file_start(void *inst, struct kn_err *err)
{
	struct fileexp *fe = inst;
	if (fe->started)
		return KN_OK;
	if (kn_fileout_open(&fe->out, err) != KN_OK)
		return kn_err_prefix(err, "exporters.%s.path: ", fe->id);
	if (fe->out.cctx) {
		if (pthread_create(&fe->flusher, NULL, flusher_main, fe) != 0)
			return kn_errf(err, "exporters.%s: cannot start the flusher thread", fe->id);
		fe->flusher_running = 1;
	}
	if (kn_sender_start(fe->sender, err) != KN_OK)
		return kn_err_prefix(err, "exporters.%s: ", fe->id);
	fe->started = 1;
	return KN_OK;
}

static void file_shutdown(void *inst, uint64_t deadline_ns)
{
	struct fileexp *fe = inst;
	if (!fe || fe->shut)
		return;
	fe->shut = 1;
	/* Drains what was queued through file_send, then joins the consumer. */
	kn_sender_shutdown(fe->sender, deadline_ns);
	flusher_stop(fe);
	struct kn_err err;
	pthread_mutex_lock(&fe->mu);
	int rc = kn_fileout_close(&fe->out, &err);   /* flush + fsync + close */
	pthread_mutex_unlock(&fe->mu);
	if (rc != KN_OK)
		kn_error("exporters.%s: %s", fe->id, err.msg);
}

static int file_export(void *inst, struct kn_batch *b)
{
	struct fileexp *fe = inst;
	return kn_sender_enqueue(fe->sender, b);
}

const struct kn_component kn_exporter_file = {
	.type = "file",
	.kind = KN_EXPORTER,
	.summary = "appends traces to a local file (OTLP/JSON lines or length-prefixed protobuf, optional zstd, rotation)",
	.config_size = sizeof(struct kn_exporter_file_cfg),
	.config_fields = kn_exporter_file_fields,
	.validate = file_validate,
	.create = file_create,
	.start = file_start,
	.shutdown = file_shutdown,
	.destroy = file_destroy,
	.export = file_export,
};
