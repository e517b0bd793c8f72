/* SPDX-License-Identifier: Apache-2.0
 * One generic walk of every registered component through its lifecycle:
 * create -> shutdown (before start) -> shutdown again -> destroy, and
 * create -> start -> shutdown -> shutdown -> destroy; destroy(NULL) too.
 * Processors and exporters are walked directly with a minimal config each;
 * receivers need a runtime (they create producers at start), so the whole
 * collector is walked with every component in one config. Also the
 * runtime's own config errors, each naming its path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_clock.h"
#include "collector/core/kn_component.h"
#include "collector/core/kn_metrics.h"
#include "collector/core/kn_runtime.h"

static char tmpdir[64];

/* A minimal valid config for each component type (YAML flow map). */
static const char *minimal_config(const struct kn_component *c)
{
	static char buf[256];
	if (c->kind == KN_EXPORTER && strcmp(c->type, "file") == 0) {
		snprintf(buf, sizeof buf, "{path: %s/out.json}", tmpdir);
		return buf;
	}
	if (c->kind == KN_EXPORTER && strcmp(c->type, "otlp") == 0)
		return "{endpoint: \"127.0.0.1:9\", tls: {insecure: true}}";
	if (c->kind == KN_EXPORTER && strcmp(c->type, "otlphttp") == 0)
		return "{endpoint: \"http://127.0.0.1:9\"}";
	if (c->kind == KN_EXPORTER && strcmp(c->type, "loadbalancing") == 0)
		return "{protocol: {otlp: {tls: {insecure: true}}}, "
		       "resolver: {static: {hostnames: [\"127.0.0.1:9\"]}}}";
	if (c->kind == KN_PROCESSOR && strcmp(c->type, "memory_limiter") == 0)
		return "{check_interval: 1s, limit_mib: 4000}";
	if (c->kind == KN_PROCESSOR && strcmp(c->type, "tail_sampling") == 0)
		return "{decision_wait: 1s, policies: [{name: all, type: always_sample}]}";
	if (c->kind == KN_PROCESSOR && strcmp(c->type, "resource") == 0)
		return "{attributes: [{key: k, value: v, action: upsert}]}";
	if (c->kind == KN_PROCESSOR && strcmp(c->type, "attributes") == 0)
		return "{actions: [{key: k, action: delete}]}";
	if (c->kind == KN_PROCESSOR && strcmp(c->type, "filter") == 0)
		return "{traces: {span: ['name == \"x\"']}}";
	if (c->kind == KN_PROCESSOR && strcmp(c->type, "transform") == 0)
		return "{trace_statements: ['set(span.name, \"x\")']}";
	if (c->kind == KN_EXTENSION && strcmp(c->type, "bearertokenauth") == 0)
		return "{token: t0k3n}";
	if (c->kind == KN_EXTENSION && strcmp(c->type, "basicauth") == 0)
		return "{htpasswd: {inline: \"user:password\"}}";
	if (c->kind == KN_EXTENSION && strcmp(c->type, "file_storage") == 0) {
		snprintf(buf, sizeof buf, "{directory: %s}", tmpdir);
		return buf;
	}
	if (c->kind == KN_RECEIVER && strcmp(c->type, "otlp") == 0)
		return "{protocols: {grpc: {endpoint: \"127.0.0.1:0\"}, http: {endpoint: \"127.0.0.1:0\"}}}";
	return "{}";
}

static void walk(const struct kn_component *c, int start)
{
	const char *text = minimal_config(c);
	struct kn_cnode *root = NULL;
	struct kn_err err = {{0}};
	assert_int_equal(kn_config_parse(text, strlen(text), c->type, &root, &err), KN_OK);
	void *cfg = calloc(1, c->config_size ? c->config_size : 1);
	if (c->config_fields)
		assert_int_equal(kn_cfg_apply(c->config_fields, root, cfg, &err), KN_OK);
	if (c->validate)
		assert_int_equal(c->validate(cfg, c->type, &err), KN_OK);
	struct kn_metrics *m = kn_metrics_create();
	struct kn_component_ctx ctx = {.id = c->type, .metrics = m, .nshards = 2};
	void *inst = NULL;
	if (c->create(&ctx, cfg, &inst, &err) != KN_OK)
		fail_msg("%s: create failed: %s", c->type, err.msg);
	uint64_t deadline = kn_now_ns() + 2 * KN_NS_PER_SEC;
	if (start && c->start)
		assert_int_equal(c->start(inst, &err), KN_OK);
	if (c->shutdown) {
		c->shutdown(inst, deadline);
		c->shutdown(inst, deadline);
	}
	c->destroy(inst);
	c->destroy(NULL);
	if (c->config_fields)
		kn_cfg_free(c->config_fields, cfg);
	free(cfg);
	kn_metrics_destroy(m);
	kn_cnode_free(root);
}

static void test_components(void **st)
{
	(void)st;
	for (size_t i = 0; kn_components[i]; i++) {
		const struct kn_component *c = kn_components[i];
		assert_non_null(c->type);
		assert_non_null(c->create);
		assert_non_null(c->destroy);
		if (c->kind == KN_PROCESSOR)
			assert_non_null(c->process);
		if (c->kind == KN_EXPORTER)
			assert_non_null(c->export);
		if (c->kind == KN_RECEIVER)
			continue;
		walk(c, 0);
		walk(c, 1);
	}
}

static struct kn_runtime *runtime_from(const char *yaml, struct kn_err *err)
{
	struct kn_cnode *root = NULL;
	if (kn_config_parse(yaml, strlen(yaml), "test", &root, err) != KN_OK)
		return NULL;
	struct kn_runtime *rt = kn_runtime_create(root, err);
	kn_cnode_free(root);
	return rt;
}

static void test_whole_collector(void **st)
{
	(void)st;
	char yaml[2048];
	snprintf(yaml, sizeof yaml,
		 "receivers:\n"
		 "  otlp:\n"
		 "    protocols: {grpc: {endpoint: \"127.0.0.1:0\"}, http: {endpoint: \"127.0.0.1:0\"}}\n"
		 "processors:\n"
		 "  batch: {timeout: 10ms}\n"
		 "exporters:\n"
		 "  file: {path: %s/whole.json}\n"
		 "  debug: {}\n"
		 "extensions:\n"
		 "  health_check: {endpoint: \"127.0.0.1:0\"}\n"
		 "service:\n"
		 "  extensions: [health_check]\n"
		 "  telemetry: {metrics: {address: \"127.0.0.1:0\"}}\n"
		 "  pipelines:\n"
		 "    traces: {receivers: [otlp], processors: [batch], exporters: [file, debug]}\n"
		 "    traces/second: {receivers: [otlp], exporters: [debug]}\n"
		 "kansatsu: {shards: 2, memory_limit_mib: 64, shutdown_timeout: 2s}\n",
		 tmpdir);
	struct kn_err err = {{0}};
	/* created but never started */
	struct kn_runtime *rt = runtime_from(yaml, &err);
	if (!rt)
		fail_msg("create: %s", err.msg);
	assert_false(kn_runtime_ready(rt));
	kn_runtime_shutdown(rt);
	kn_runtime_destroy(rt);
	/* started */
	rt = runtime_from(yaml, &err);
	assert_non_null(rt);
	if (kn_runtime_start(rt, &err) != KN_OK)
		fail_msg("start: %s", err.msg);
	assert_true(kn_runtime_ready(rt));
	kn_runtime_shutdown(rt);
	assert_false(kn_runtime_ready(rt));
	kn_runtime_shutdown(rt);
	kn_runtime_destroy(rt);
	kn_runtime_destroy(NULL);
}

struct bad {
	const char *yaml;
	const char *message;
};

#define BASE_RECV "receivers: {otlp: {protocols: {grpc: {endpoint: \"127.0.0.1:0\"}}}}\n"
#define BASE_EXP "exporters: {debug: {}}\n"
#define PIPE "service: {pipelines: {traces: {receivers: [otlp], exporters: [debug]}}}\n"

static const struct bad bad_configs[] = {
	{"receivers: {foo: {}}\n" BASE_EXP PIPE,
	 "receivers.foo: unknown receiver type \"foo\" (supported: otlp)"},
	{BASE_RECV BASE_EXP "service: {pipelines: {traces: {receivers: [otlp], exporters: [otlp/x]}}}\n",
	 "service.pipelines.traces.exporters[0]: exporter \"otlp/x\" is not configured under exporters"},
	{BASE_RECV BASE_EXP "service: {pipelines: {traces: {receivers: [otlp], processors: [batch], exporters: [debug]}}}\n",
	 "service.pipelines.traces.processors[0]: processor \"batch\" is not configured under processors"},
	{BASE_RECV BASE_EXP "service: {pipelines: {metrics: {receivers: [otlp], exporters: [debug]}}}\n",
	 "service.pipelines.metrics: only traces pipelines are supported (\"traces\" or \"traces/<name>\")"},
	{BASE_RECV BASE_EXP "service: {pipelines: {traces: {receivers: [otlp, otlp], exporters: [debug]}}}\n",
	 "service.pipelines.traces.receivers[1]: receiver \"otlp\" is listed twice"},
	{BASE_RECV BASE_EXP PIPE "kansatsu: {ring_size: 1000}\n",
	 "kansatsu.ring_size: must be a power of two, got 1000"},
	{BASE_RECV BASE_EXP "service: {extensions: [health_check], pipelines: {traces: {receivers: [otlp], exporters: [debug]}}}\n",
	 "service.extensions[0]: extension \"health_check\" is not configured under extensions"},
	{BASE_RECV BASE_EXP "extensions: {pprof: {}}\n" PIPE,
	 "extensions.pprof: unknown extension type \"pprof\" (supported: health_check, bearertokenauth, "
	 "basicauth, file_storage)"},
	{"receivers: {otlp: {protocols: {}}}\n" BASE_EXP PIPE,
	 "receivers.otlp.protocols: enable grpc and/or http"},
	{"receivers: {otlp: {protocols: {grpc: {endpoint: \"127.0.0.1:0\"}, http: {traces_url_path: v1}}}}\n" BASE_EXP PIPE,
	 "receivers.otlp.protocols.http.traces_url_path: must start with '/', got \"v1\""},
	{"receivers: {otlp: {protocols: {grpc: {endpoint: \"127.0.0.1:0\"}}}}\n"
	 "processors: {batch: {send_batch_size: 10, send_batch_max_size: 5}}\n" BASE_EXP PIPE,
	 "processors.batch.send_batch_max_size: must be 0 or at least send_batch_size (10)"},
};

static void test_bad_configs(void **st)
{
	(void)st;
	for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
		struct kn_err err = {{0}};
		struct kn_runtime *rt = runtime_from(bad_configs[i].yaml, &err);
		if (rt) {
			kn_runtime_destroy(rt);
			fail_msg("config %zu was accepted; wanted: %s", i, bad_configs[i].message);
		}
		if (strcmp(err.msg, bad_configs[i].message) != 0)
			fail_msg("config %zu:\n got: %s\nwant: %s", i, err.msg, bad_configs[i].message);
	}
}

static void test_default_config_is_valid(void **st)
{
	(void)st;
	struct kn_err err = {{0}};
	struct kn_runtime *rt = runtime_from(kn_default_config, &err);
	if (!rt)
		fail_msg("default config: %s", err.msg);
	kn_runtime_destroy(rt);
}

static int setup(void **st)
{
	(void)st;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kn-lifecycle-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_components),
		cmocka_unit_test(test_whole_collector),
		cmocka_unit_test(test_bad_configs),
		cmocka_unit_test(test_default_config_is_valid),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
