/* SPDX-License-Identifier: Apache-2.0
 * kn_test_auth: see kn_test_auth.h. */
#include "kn_test_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_clock.h"
#include "collector/core/kn_metrics.h"

int kn_test_ext_make(const struct kn_component *c, const char *id, const char *yaml, struct kn_test_ext *e,
		     struct kn_err *err)
{
	memset(e, 0, sizeof *e);
	struct kn_cnode *root = NULL;
	char path[128];
	size_t dlen = strlen(yaml) + strlen(id) + 32;
	char *doc = malloc(dlen);
	if (!doc)
		return -1;
	snprintf(path, sizeof path, "extensions.%s", id);
	/* inside a whole document, so that nodes carry their full paths */
	snprintf(doc, dlen, "{extensions: {\"%s\": %s}}", id, yaml);
	int prc = kn_config_parse(doc, strlen(doc), "test", &root, err);
	free(doc);
	if (prc != KN_OK)
		return -1;
	e->comp = c;
	e->cfg = calloc(1, c->config_size);
	const struct kn_cnode *node = kn_cnode_get(kn_cnode_get(root, "extensions"), id);
	int rc = kn_cfg_apply_at(c->config_fields, node, path, e->cfg, err);
	kn_cnode_free(root);
	if (rc == KN_OK && c->validate)
		rc = c->validate(e->cfg, path, err);
	e->m = kn_metrics_create();
	struct kn_component_ctx ctx = {.id = id, .metrics = e->m};
	if (rc == KN_OK)
		rc = c->create(&ctx, e->cfg, &e->inst, err);
	if (rc != KN_OK) {
		kn_test_ext_free(e);
		return -1;
	}
	return 0;
}

void kn_test_ext_free(struct kn_test_ext *e)
{
	if (e->comp) {
		if (e->inst) {
			e->comp->shutdown(e->inst, kn_now_ns() + KN_NS_PER_SEC);
			e->comp->destroy(e->inst);
		}
		if (e->cfg)
			kn_cfg_free(e->comp->config_fields, e->cfg);
	}
	free(e->cfg);
	kn_metrics_destroy(e->m);
	memset(e, 0, sizeof *e);
}

static const char *get(void *ctx, const char *name, size_t *len)
{
	const struct kn_test_headers *h = ctx;
	for (size_t i = 0; h->pairs && h->pairs[i]; i += 2)
		if (strcmp(h->pairs[i], name) == 0) {
			*len = strlen(h->pairs[i + 1]);
			return h->pairs[i + 1];
		}
	return NULL;
}

struct kn_auth_headers kn_test_headers(const struct kn_test_headers *h)
{
	return (struct kn_auth_headers){.get = get, .ctx = (void *)h};
}

enum kn_auth_verdict kn_test_auth(const struct kn_test_ext *e, const char *name, const char *value)
{
	const char *pairs[3] = {name, value, NULL};
	struct kn_test_headers th = {.pairs = name ? pairs : NULL};
	struct kn_auth_headers h = kn_test_headers(&th);
	return e->comp->server_auth->authenticate(e->inst, &h);
}

int kn_test_wait(int (*fn)(void *ctx), void *ctx, int ms)
{
	uint64_t end = kn_now_ns() + (uint64_t)ms * KN_NS_PER_MS;
	for (;;) {
		int r = fn(ctx);
		if (r || kn_now_ns() >= end)
			return r;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

void kn_test_write_file(const char *path, const char *text, int atomic_rename)
{
	char tmp[512];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(atomic_rename ? tmp : path, "w");
	if (!f)
		abort();
	fputs(text, f);
	if (fclose(f) != 0)
		abort();
	if (atomic_rename && rename(tmp, path) != 0)
		abort();
}

long long kn_test_metric(struct kn_metrics *m, const char *sample)
{
	char *text = NULL;
	size_t len = 0;
	if (kn_metrics_render(m, &text, &len) != KN_OK)
		return -1;
	long long v = -1;
	size_t sl = strlen(sample);
	for (char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, sample, sl) == 0 && p[sl] == ' ') {
			v = atoll(p + sl + 1);
			break;
		}
	}
	free(text);
	return v;
}

struct metric_wait {
	struct kn_metrics *m;
	const char *sample;
	long long atleast;
};

static int metric_reached(void *ctx)
{
	struct metric_wait *w = ctx;
	return kn_test_metric(w->m, w->sample) >= w->atleast;
}

int kn_test_wait_metric(struct kn_metrics *m, const char *sample, long long atleast, int ms)
{
	struct metric_wait w = {m, sample, atleast};
	return kn_test_wait(metric_reached, &w, ms);
}
