/* SPDX-License-Identifier: Apache-2.0
 * test_exporter_debug: the `debug` exporter through its component interface,
 * with stderr redirected (dup2) to a temp file that is read back after
 * shutdown (which drains the sender's queue: no sleeps). Checks the lines of
 * each verbosity, name escaping, sampling off/on, and the sent-spans counter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "collector/config/kn_config.h"
#include "kn_test_chunks.h"
#include "collector/core/kn_clock.h"
#include "collector/core/kn_metrics.h"
#include "collector/json/kn_pbjson.h"
#include "exporters/debug/kn_debug_render.h"
#include "exporters/debug/kn_exporter_debug.h"



/* Runs the exporter over batches with stderr captured; returns the text
 * (malloc'd) and the value of kansatsu_exporter_sent_spans_total. */
static char *run_capture(const char *verbosity, uint64_t initial, uint64_t thereafter,
			 struct kn_batch **b, size_t n, uint64_t *sent_spans)
{
	struct kn_exporter_debug_cfg cfg = { .verbosity = (char *)verbosity,
					     .sampling_initial = initial,
					     .sampling_thereafter = thereafter };
	struct kn_metrics *m = kn_metrics_create();
	assert_non_null(m);
	struct kn_component_ctx ctx = { .id = "debug/t", .metrics = m };
	struct kn_err err = { { 0 } };
	void *inst = NULL;
	assert_int_equal(kn_exporter_debug.create(&ctx, &cfg, &inst, &err), KN_OK);

	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	fflush(stderr);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), 2) >= 0);
	int rc = kn_exporter_debug.start(inst, &err);
	for (size_t i = 0; rc == KN_OK && i < n; i++)
		rc = kn_exporter_debug.export(inst, b[i]);
	kn_exporter_debug.shutdown(inst, kn_now_ns() + 30 * KN_NS_PER_SEC);
	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	kn_exporter_debug.destroy(inst);
	assert_int_equal(rc, KN_OK);

	struct kn_metric *c = kn_metrics_counter(m, "kansatsu_exporter_sent_spans_total",
						 "Spans in requests the destination accepted.",
						 "exporter=\"debug/t\"");
	assert_non_null(c);
	*sent_spans = kn_metric_value(c);
	kn_metrics_destroy(m);

	long sz = ftell(tmp);
	assert_true(sz >= 0);
	rewind(tmp);
	char *text = malloc((size_t)sz + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)sz, tmp), (size_t)sz);
	text[sz] = '\0';
	fclose(tmp);
	return text;
}

/* The lines of text that start with prefix, in order (NULL-terminated). */
static size_t lines_with(char *text, const char *prefix, char **out, size_t cap)
{
	size_t n = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		if (strncmp(line, prefix, strlen(prefix)) == 0 && n < cap)
			out[n++] = line;
	return n;
}

static void test_basic(void **state)
{
	(void)state;
	struct kn_batch *b[2] = { kn_test_batch(1, 2, 2, 3, 0), kn_test_batch(10, 1, 1, 1, 0) };
	uint64_t sent = 0;
	char *text = run_capture("basic", 2, 1, b, 2, &sent);
	char *l[8];
	assert_int_equal(lines_with(text, "kansatsu: debug: debug/t: ", l, 8), 2);
	assert_string_equal(l[0], "kansatsu: debug: debug/t: 12 spans, 4 resource spans");
	assert_string_equal(l[1], "kansatsu: debug: debug/t: 1 spans, 1 resource spans");
	assert_int_equal(sent, 13);
	free(text);
}

static void test_normal(void **state)
{
	(void)state;
	struct kn_batch *b[1] = { kn_test_batch(7, 1, 1, 4, 0) };
	/* Span 3 gets a name with a quote, a backslash and a newline, written in
	 * place of "op-0007-0003" (same length) so the header stays right. */
	struct kn_chunk *c = b[0]->chunks[0];
	memcpy(c->data + c->spans[3].name_off, "a\"b\\c\nd-0003", 12);
	uint64_t sent = 0;
	char *text = run_capture("normal", 2, 1, b, 1, &sent);
	char *l[16];
	assert_int_equal(lines_with(text, "kansatsu: debug: debug/t: ", l, 16), 5);
	assert_string_equal(l[0], "kansatsu: debug: debug/t: 4 spans, 1 resource spans");
	assert_string_equal(l[1], "kansatsu: debug: debug/t: "
		"trace_id=0700030405060708090a0b0c0d0e0f10 span_id=0700131415161718 "
		"name=\"op-0007-0000\" kind=internal status=unset duration=1.500000ms");
	assert_string_equal(l[2], "kansatsu: debug: debug/t: "
		"trace_id=0701030405060708090a0b0c0d0e0f10 span_id=0701131415161718 "
		"name=\"op-0007-0001\" kind=server status=ok duration=1.500001ms");
	assert_non_null(strstr(l[3], " kind=client status=error duration=1.500002ms"));
	assert_non_null(strstr(l[4], " name=\"a\\\"b\\\\c\\x0ad-0003\" kind=producer "));
	assert_int_equal(sent, 4);
	free(text);
}

static void test_detailed(void **state)
{
	(void)state;
	struct kn_batch *b[1] = { kn_test_batch(3, 2, 2, 2, 8) };
	size_t len = b[0]->bytes;
	uint8_t *want = kn_batch_flatten(b[0]);
	assert_non_null(want);
	uint64_t sent = 0;
	char *text = run_capture("detailed", 2, 1, b, 1, &sent);
	char *l[8];
	const char *pfx = "kansatsu: debug: debug/t: ";
	assert_int_equal(lines_with(text, pfx, l, 8), 2);
	assert_string_equal(l[0], "kansatsu: debug: debug/t: 8 spans, 4 resource spans");
	const char *js = l[1] + strlen(pfx);
	ProtobufCMessage *msg = NULL;
	struct kn_err err = { { 0 } };
	if (kn_pbjson_decode(&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
			     js, strlen(js), &msg, &err) != KN_OK)
		fail_msg("%s", err.msg);
	size_t plen = protobuf_c_message_get_packed_size(msg);
	uint8_t *packed = malloc(plen);
	assert_non_null(packed);
	protobuf_c_message_pack(msg, packed);
	assert_int_equal(plen, len);
	assert_memory_equal(packed, want, len);
	free(packed);
	protobuf_c_message_free_unpacked(msg, NULL);
	free(want);
	free(text);
}

static void test_sampling(void **state)
{
	(void)state;
	/* Sampling everything out still counts the spans as consumed. */
	struct kn_batch *b[3] = { kn_test_batch(1, 1, 1, 1, 0), kn_test_batch(2, 1, 1, 2, 0),
				  kn_test_batch(3, 1, 1, 3, 0) };
	uint64_t sent = 0;
	char *text = run_capture("basic", 0, 0, b, 3, &sent);
	char *l[8];
	assert_int_equal(lines_with(text, "kansatsu: debug: debug/t: ", l, 8), 0);
	assert_int_equal(sent, 6);
	free(text);
	/* initial 0, thereafter 1: every batch. */
	struct kn_batch *b2[3] = { kn_test_batch(1, 1, 1, 1, 0), kn_test_batch(2, 1, 1, 2, 0),
				   kn_test_batch(3, 1, 1, 3, 0) };
	text = run_capture("basic", 0, 1, b2, 3, &sent);
	assert_int_equal(lines_with(text, "kansatsu: debug: debug/t: ", l, 8), 3);
	assert_string_equal(l[2], "kansatsu: debug: debug/t: 3 spans, 1 resource spans");
	free(text);
}

static void test_config_and_edges(void **state)
{
	(void)state;
	struct kn_err err = { { 0 } };
	struct kn_exporter_debug_cfg cfg;
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(kn_cfg_defaults(kn_exporter_debug_fields, &cfg, &err), KN_OK);
	assert_string_equal(cfg.verbosity, "basic");
	assert_int_equal(cfg.sampling_initial, 2);
	assert_int_equal(cfg.sampling_thereafter, 1);
	kn_cfg_free(kn_exporter_debug_fields, &cfg);

	struct kn_exporter_debug_cfg bad = { .verbosity = "loud" };
	struct kn_component_ctx ctx = { .id = "debug" };
	void *inst = NULL;
	assert_int_equal(kn_exporter_debug.create(&ctx, &bad, &inst, &err), KN_ERR);
	assert_null(inst);
	assert_non_null(strstr(err.msg, "exporters.debug.verbosity"));

	kn_exporter_debug.destroy(NULL);
	kn_exporter_debug.shutdown(NULL, 0);
	struct kn_exporter_debug_cfg ok = { .verbosity = "normal", .sampling_initial = 2 };
	assert_int_equal(kn_exporter_debug.create(&ctx, &ok, &inst, &err), KN_OK);
	kn_exporter_debug.shutdown(inst, kn_now_ns() + KN_NS_PER_SEC);
	kn_exporter_debug.shutdown(inst, kn_now_ns() + KN_NS_PER_SEC);
	kn_exporter_debug.destroy(inst);

	/* The resource-span counter stops at malformed input. */
	const uint8_t junk[] = { 0x0a, 0x02, 0x00, 0x00, 0x0a, 0x05, 0x00 };
	assert_int_equal(kn_debug_count_resource_spans(junk, sizeof junk), 1);
	assert_int_equal(kn_debug_count_resource_spans(junk, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_normal),
		cmocka_unit_test(test_detailed),
		cmocka_unit_test(test_sampling),
		cmocka_unit_test(test_config_and_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
