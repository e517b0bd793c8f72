/* SPDX-License-Identifier: Apache-2.0
 * test_sender: the exporters' shared queue and retry loop, driven by send
 * functions scripted in the test. Synchronisation is real: kn_sender_shutdown
 * with a generous deadline drains (joins the consumers), and the tests that
 * need a send in progress wait on a condition variable. Delays are checked
 * through the retry hook, never by measuring time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/core/kn_clock.h"
#include "collector/core/kn_metrics.h"
#include "exporters/common/kn_sender.h"

#define MAX_DELAYS 64

struct script {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fail_again;          /* this many KN_AGAIN before success; -1 = forever */
	int permanent;           /* return KN_ERR */
	uint64_t retry_after_ns; /* given with each KN_AGAIN */
	int calls, oks;
	int bad_index;
	uint64_t delays[MAX_DELAYS];
	unsigned attempts[MAX_DELAYS];
	int ndelays;
	unsigned nconsumers;
	int policy;              /* the sending thread's scheduling policy, last call */
};

static void script_init(struct script *sc)
{
	memset(sc, 0, sizeof *sc);
	pthread_mutex_init(&sc->mu, NULL);
	pthread_cond_init(&sc->cv, NULL);
}

static void script_fini(struct script *sc)
{
	pthread_mutex_destroy(&sc->mu);
	pthread_cond_destroy(&sc->cv);
}

static int scripted_send(void *ctx, const struct kn_batch *b, uint64_t deadline_ns,
			 uint64_t *retry_after_ns, struct kn_err *err)
{
	struct script *sc = ctx;
	(void)b;
	(void)deadline_ns;
	pthread_mutex_lock(&sc->mu);
	int idx = kn_sender_consumer_index();
	if (idx < 0 || (unsigned)idx >= sc->nconsumers)
		sc->bad_index++;
	sc->calls++;
	struct sched_param sp;
	if (pthread_getschedparam(pthread_self(), &sc->policy, &sp) != 0)
		sc->policy = -1;
	int rc;
	if (sc->permanent) {
		rc = kn_errf(err, "scripted permanent failure");
	} else if (sc->fail_again < 0 || sc->calls <= sc->fail_again) {
		*retry_after_ns = sc->retry_after_ns;
		kn_errf(err, "scripted retryable failure %d", sc->calls);
		rc = KN_AGAIN;
	} else {
		sc->oks++;
		rc = KN_OK;
	}
	pthread_cond_broadcast(&sc->cv);
	pthread_mutex_unlock(&sc->mu);
	return rc;
}

static void record_delay(void *ctx, unsigned attempt, uint64_t delay_ns)
{
	struct script *sc = ctx;
	pthread_mutex_lock(&sc->mu);
	if (sc->ndelays < MAX_DELAYS) {
		sc->attempts[sc->ndelays] = attempt;
		sc->delays[sc->ndelays++] = delay_ns;
	}
	pthread_mutex_unlock(&sc->mu);
}

static struct kn_batch *make_batch(uint32_t nspans, uint32_t bytes)
{
	struct kn_batch *b = kn_batch_new(1);
	assert_non_null(b);
	struct kn_chunk *c = kn_chunk_alloc(nspans, bytes);
	assert_non_null(c);
	memset(c->data, 0xab, bytes);
	c->len = bytes;
	assert_int_equal(kn_batch_add(&b, c), KN_OK);
	return b;
}

static struct kn_sender_cfg tiny_cfg(unsigned consumers, uint64_t queue)
{
	struct kn_sender_cfg c = {
		.timeout_ns = 5 * KN_NS_PER_SEC,
		.queue = {.enabled = 1, .num_consumers = consumers, .queue_size = queue},
		.retry = {.enabled = 1, .initial_interval_ns = KN_NS_PER_MS, .max_interval_ns = 4 * KN_NS_PER_MS,
			  .max_elapsed_time_ns = 60 * KN_NS_PER_SEC, .multiplier = 2.0,
			  .randomization_factor = 0.0},
	};
	return c;
}

static uint64_t metric(struct kn_metrics *m, const char *name, const char *labels)
{
	/* Registering again returns the sender's own series. */
	if (strstr(name, "queue_"))
		return kn_metric_value(kn_metrics_gauge(m, name, "", labels));
	return kn_metric_value(kn_metrics_counter(m, name, "", labels));
}

#define LB "exporter=\"t\""
#define DROPPED(r) metric(m, "kansatsu_exporter_dropped_spans_total", LB ",reason=\"" r "\"")

static struct kn_sender *mk(struct script *sc, struct kn_sender_cfg *cfg, struct kn_metrics *m)
{
	struct kn_err err;
	sc->nconsumers = (unsigned)cfg->queue.num_consumers;
	struct kn_sender *s = kn_sender_create("t", cfg, scripted_send, sc, m, &err);
	assert_non_null(s);
	kn_sender_set_retry_hook(s, record_delay, sc);
	return s;
}

static uint64_t far_deadline(void)
{
	return kn_now_ns() + 30 * KN_NS_PER_SEC;
}

static void test_retry_then_success(void **state)
{
	(void)state;
	struct script sc;
	script_init(&sc);
	sc.fail_again = 4;
	struct kn_metrics *m = kn_metrics_create();
	struct kn_sender_cfg cfg = tiny_cfg(1, 10);
	struct kn_sender *s = mk(&sc, &cfg, m);
	struct kn_err err;
	assert_int_equal(kn_sender_start(s, &err), KN_OK);
	assert_int_equal(kn_sender_enqueue(s, make_batch(7, 100)), KN_OK);
	kn_sender_shutdown(s, far_deadline());
	assert_int_equal(sc.calls, 5);
	assert_int_equal(sc.oks, 1);
	assert_int_equal(sc.bad_index, 0);
	/* 1ms, 2ms, 4ms, then capped at max_interval 4ms; no jitter. */
	assert_int_equal(sc.ndelays, 4);
	uint64_t want[] = {1, 2, 4, 4};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(sc.attempts[i], (unsigned)i + 1);
		assert_int_equal(sc.delays[i], want[i] * KN_NS_PER_MS);
	}
	assert_int_equal(metric(m, "kansatsu_exporter_sent_requests_total", LB), 1);
	assert_int_equal(metric(m, "kansatsu_exporter_sent_spans_total", LB), 7);
	assert_int_equal(metric(m, "kansatsu_exporter_retries_total", LB), 4);
	assert_int_equal(metric(m, "kansatsu_exporter_failed_requests_total", LB), 4);
	assert_int_equal(metric(m, "kansatsu_exporter_queue_batches", LB), 0);
	assert_int_equal(metric(m, "kansatsu_exporter_queue_bytes", LB), 0);
	assert_int_equal(DROPPED("shutdown"), 0);
	kn_sender_destroy(s);
	kn_metrics_destroy(m);
	script_fini(&sc);
}

static void test_jitter_within_bounds(void **state)
{
	(void)state;
	struct script sc;
	script_init(&sc);
	sc.fail_again = 6;
	struct kn_metrics *m = kn_metrics_create();
	struct kn_sender_cfg cfg = tiny_cfg(1, 10);
	cfg.retry.randomization_factor = 0.5;
	cfg.retry.max_interval_ns = 8 * KN_NS_PER_MS;
	struct kn_sender *s = mk(&sc, &cfg, m);
	struct kn_err err;
	assert_int_equal(kn_sender_start(s, &err), KN_OK);
	assert_int_equal(kn_sender_enqueue(s, make_batch(1, 10)), KN_OK);
	kn_sender_shutdown(s, far_deadline());
	assert_int_equal(sc.ndelays, 6);
	uint64_t base[] = {1, 2, 4, 8, 8, 8};
	for (int i = 0; i < 6; i++) {
		uint64_t b = base[i] * KN_NS_PER_MS;
		assert_true(sc.delays[i] >= b / 2);
		assert_true(sc.delays[i] <= b + b / 2);
	}
	assert_int_equal(sc.oks, 1);
	kn_sender_destroy(s);
	kn_metrics_destroy(m);
	script_fini(&sc);
}

static void test_permanent_error(void **state)
{
	(void)state;
	struct script sc;
	script_init(&sc);
	sc.permanent = 1;
	struct kn_metrics *m = kn_metrics_create();
	struct kn_sender_cfg cfg = tiny_cfg(2, 10);
	struct kn_sender *s = mk(&sc, &cfg, m);
	struct kn_err err;
	assert_int_equal(kn_sender_start(s, &err), KN_OK);
	assert_int_equal(kn_sender_enqueue(s, make_batch(3, 10)), KN_OK);
	assert_int_equal(kn_sender_enqueue(s, make_batch(4, 10)), KN_OK);
	kn_sender_shutdown(s, far_deadline());
	assert_int_equal(sc.calls, 2);
	assert_int_equal(sc.ndelays, 0);
	assert_int_equal(DROPPED("permanent_error"), 7);
	assert_int_equal(metric(m, "kansatsu_exporter_failed_requests_total", LB), 2);
	assert_int_equal(metric(m, "kansatsu_exporter_sent_requests_total", LB), 0);
	kn_sender_destroy(s);
	kn_metrics_destroy(m);
	script_fini(&sc);
}

static void test_queue_full(void **state)
{
	(void)state;
	struct script sc;
	script_init(&sc);
	struct kn_metrics *m = kn_metrics_create();
	struct kn_sender_cfg cfg = tiny_cfg(1, 2);
	struct kn_sender *s = mk(&sc, &cfg, m);
	/* Not started: nothing consumes, so the bound is exact. */
	assert_int_equal(kn_sender_enqueue(s, make_batch(1, 10)), KN_OK);
	assert_int_equal(kn_sender_enqueue(s, make_batch(2, 20)), KN_OK);
	assert_int_equal(kn_sender_enqueue(s, make_batch(5, 30)), KN_DROP);
	assert_int_equal(kn_sender_enqueue(s, make_batch(6, 30)), KN_DROP);
	assert_int_equal(DROPPED("queue_full"), 11);
	assert_int_equal(metric(m, "kansatsu_exporter_queue_batches", LB), 2);
	assert_int_equal(metric(m, "kansatsu_exporter_queue_bytes", LB), 30);

	char *txt;
	size_t len;
	assert_int_equal(kn_metrics_render(m, &txt, &len), 0);
	assert_non_null(strstr(txt, "kansatsu_exporter_dropped_spans_total{exporter=\"t\",reason=\"queue_full\"} 11\n"));
	assert_non_null(strstr(txt, "kansatsu_exporter_queue_batches{exporter=\"t\"} 2\n"));
	free(txt);

	/* Shutdown before start drops what is queued, and later enqueues too. */
	kn_sender_shutdown(s, kn_now_ns());
	kn_sender_shutdown(s, kn_now_ns());
	assert_int_equal(DROPPED("shutdown"), 3);
	assert_int_equal(kn_sender_enqueue(s, make_batch(4, 10)), KN_DROP);
	assert_int_equal(DROPPED("shutdown"), 7);
	assert_int_equal(metric(m, "kansatsu_exporter_queue_batches", LB), 0);
	assert_int_equal(sc.calls, 0);
	struct kn_err err;
	assert_int_equal(kn_sender_start(s, &err), KN_ERR);
	kn_sender_destroy(s);
	kn_metrics_destroy(m);
	script_fini(&sc);
}

static void test_max_elapsed_gives_up(void **state)
{
	(void)state;
	struct script sc;
	script_init(&sc);
	sc.fail_again = -1;
	struct kn_metrics *m = kn_metrics_create();
	struct kn_sender_cfg cfg = tiny_cfg(1, 10);
	cfg.retry.max_elapsed_time_ns = 20 * KN_NS_PER_MS;
	struct kn_sender *s = mk(&sc, &cfg, m);
	struct kn_err err;
	assert_int_equal(kn_sender_start(s, &err), KN_OK);
	assert_int_equal(kn_sender_enqueue(s, make_batch(9, 10)), KN_OK);
	kn_sender_shutdown(s, far_deadline());
	assert_true(sc.calls >= 2);
	assert_int_equal(sc.oks, 0);
	assert_int_equal(DROPPED("retries_exhausted"), 9);
	assert_int_equal(DROPPED("shutdown"), 0);
	uint64_t total = 0;
	for (int i = 0; i < sc.ndelays; i++)
		total += sc.delays[i];
	assert_true(total <= cfg.retry.max_elapsed_time_ns);
	assert_int_equal(metric(m, "kansatsu_exporter_failed_requests_total", LB), (uint64_t)sc.calls);
	kn_sender_destroy(s);
	kn_metrics_destroy(m);
	script_fini(&sc);
}

static void test_retry_disabled(void **state)
{
	(void)state;
	struct script sc;
	script_init(&sc);
	sc.fail_again = -1;
	struct kn_metrics *m = kn_metrics_create();
	struct kn_sender_cfg cfg = tiny_cfg(1, 10);
	cfg.retry.enabled = 0;
	struct kn_sender *s = mk(&sc, &cfg, m);
	struct kn_err err;
	assert_int_equal(kn_sender_start(s, &err), KN_OK);
	assert_int_equal(kn_sender_enqueue(s, make_batch(2, 10)), KN_OK);
	kn_sender_shutdown(s, far_deadline());
	assert_int_equal(sc.calls, 1);
	assert_int_equal(DROPPED("retries_exhausted"), 2);
	kn_sender_destroy(s);
	kn_metrics_destroy(m);
	script_fini(&sc);
}

static void test_retry_after_honoured(void **state)
{
	(void)state;
	struct script sc;
	script_init(&sc);
	sc.fail_again = 1;
	sc.retry_after_ns = 30 * KN_NS_PER_MS;
	struct kn_metrics *m = kn_metrics_create();
	struct kn_sender_cfg cfg = tiny_cfg(1, 10);
	struct kn_sender *s = mk(&sc, &cfg, m);
	struct kn_err err;
	assert_int_equal(kn_sender_start(s, &err), KN_OK);
	assert_int_equal(kn_sender_enqueue(s, make_batch(1, 10)), KN_OK);
	kn_sender_shutdown(s, far_deadline());
	assert_int_equal(sc.ndelays, 1);
	/* The server's 30ms beats the 1ms backoff (and is not capped by max_interval). */
	assert_int_equal(sc.delays[0], 30 * KN_NS_PER_MS);
	assert_int_equal(sc.oks, 1);
	kn_sender_destroy(s);
	kn_metrics_destroy(m);
	script_fini(&sc);
}

static void test_shutdown_drains(void **state)
{
	(void)state;
	struct script sc;
	script_init(&sc);
	struct kn_metrics *m = kn_metrics_create();
	struct kn_sender_cfg cfg = tiny_cfg(2, 100);
	struct kn_sender *s = mk(&sc, &cfg, m);
	for (int i = 0; i < 20; i++)
		assert_int_equal(kn_sender_enqueue(s, make_batch(1, 10)), KN_OK);
	struct kn_err err;
	assert_int_equal(kn_sender_start(s, &err), KN_OK);
	kn_sender_shutdown(s, far_deadline());
	assert_int_equal(sc.oks, 20);
	assert_int_equal(metric(m, "kansatsu_exporter_sent_spans_total", LB), 20);
	assert_int_equal(DROPPED("shutdown"), 0);
	kn_sender_destroy(s);
	kn_metrics_destroy(m);
	script_fini(&sc);
}

static void test_shutdown_drops_rest(void **state)
{
	(void)state;
	struct script sc;
	script_init(&sc);
	sc.fail_again = -1;
	sc.retry_after_ns = 3600 * KN_NS_PER_SEC; /* the server asks for an hour */
	struct kn_metrics *m = kn_metrics_create();
	struct kn_sender_cfg cfg = tiny_cfg(1, 100);
	cfg.retry.max_elapsed_time_ns = 0; /* retry until shutdown */
	struct kn_sender *s = mk(&sc, &cfg, m);
	struct kn_err err;
	for (int i = 0; i < 3; i++)
		assert_int_equal(kn_sender_enqueue(s, make_batch(2, 10)), KN_OK);
	assert_int_equal(kn_sender_start(s, &err), KN_OK);
	/* Wait (bounded) until the first batch is in its hour-long backoff. */
	pthread_mutex_lock(&sc.mu);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	while (sc.calls < 1)
		if (pthread_cond_timedwait(&sc.cv, &sc.mu, &ts) != 0)
			break;
	pthread_mutex_unlock(&sc.mu);
	assert_int_equal(sc.calls, 1);
	/* The backoff would outlast the deadline: everything is dropped as shutdown. */
	kn_sender_shutdown(s, far_deadline());
	assert_int_equal(DROPPED("shutdown"), 6);
	assert_int_equal(sc.oks, 0);
	assert_int_equal(metric(m, "kansatsu_exporter_queue_batches", LB), 0);
	kn_sender_destroy(s);
	kn_metrics_destroy(m);
	script_fini(&sc);
}

struct producer_arg {
	struct kn_sender *s;
	int n, ok;
};

static void *producer(void *arg)
{
	struct producer_arg *p = arg;
	for (int i = 0; i < p->n; i++)
		if (kn_sender_enqueue(p->s, make_batch(1, 8)) == KN_OK)
			p->ok++;
	return NULL;
}

static void test_concurrent_producers(void **state)
{
	(void)state;
	struct script sc;
	script_init(&sc);
	struct kn_metrics *m = kn_metrics_create();
	struct kn_sender_cfg cfg = tiny_cfg(3, 64);
	struct kn_sender *s = mk(&sc, &cfg, m);
	struct kn_err err;
	assert_int_equal(kn_sender_start(s, &err), KN_OK);
	pthread_t th[4];
	struct producer_arg pa[4];
	for (int i = 0; i < 4; i++) {
		pa[i] = (struct producer_arg){.s = s, .n = 2000};
		assert_int_equal(pthread_create(&th[i], NULL, producer, &pa[i]), 0);
	}
	int ok = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ok += pa[i].ok;
	}
	kn_sender_shutdown(s, far_deadline());
	/* Every batch was either sent or counted as dropped because the queue was full. */
	assert_int_equal(sc.oks, ok);
	assert_int_equal(DROPPED("queue_full"), (uint64_t)(8000 - ok));
	assert_int_equal(metric(m, "kansatsu_exporter_sent_spans_total", LB), (uint64_t)ok);
	assert_int_equal(sc.bad_index, 0);
	kn_sender_destroy(s);
	kn_metrics_destroy(m);
	script_fini(&sc);
}

static void test_bad_config(void **state)
{
	(void)state;
	struct kn_err err;
	struct kn_sender_cfg cfg = tiny_cfg(257, 10);
	assert_null(kn_sender_create("x", &cfg, scripted_send, NULL, NULL, &err));
	assert_non_null(strstr(err.msg, "exporters.x.sending_queue.num_consumers"));
	/* 0 = auto: max(4, CPUs), at most 64 */
	cfg = tiny_cfg(0, 10);
	struct kn_sender *a = kn_sender_create("x", &cfg, scripted_send, NULL, NULL, &err);
	assert_non_null(a);
	assert_int_equal(kn_sender_consumers(a), kn_sender_auto_consumers());
	assert_true(kn_sender_consumers(a) >= 4 && kn_sender_consumers(a) <= 64);
	kn_sender_destroy(a);
	cfg = tiny_cfg(1, 0);
	assert_null(kn_sender_create("x", &cfg, scripted_send, NULL, NULL, &err));
	assert_non_null(strstr(err.msg, "queue_size"));
	kn_sender_destroy(NULL);
	/* Without a registry the sender keeps its own; destroy without start/shutdown. */
	cfg = tiny_cfg(1, 10);
	struct kn_sender *s = kn_sender_create("x", &cfg, scripted_send, NULL, NULL, &err);
	assert_non_null(s);
	assert_int_equal(kn_sender_consumers(s), 1);
	assert_int_equal(kn_sender_consumer_index(), -1);
	assert_int_equal(kn_sender_enqueue(s, make_batch(1, 1)), KN_OK);
	kn_sender_destroy(s);
}

static void test_config_defaults(void **state)
{
	(void)state;
	struct kn_sender_cfg cfg;
	memset(&cfg, 0, sizeof cfg);
	struct kn_err err;
	assert_int_equal(kn_cfg_defaults(kn_sender_queue_fields, &cfg.queue, &err), KN_OK);
	assert_int_equal(kn_cfg_defaults(kn_sender_retry_fields, &cfg.retry, &err), KN_OK);
	assert_int_equal(cfg.queue.enabled, 1);
	assert_int_equal(cfg.queue.num_consumers, 0); /* auto, see kn_sender_auto_consumers */
	assert_int_equal(cfg.queue.queue_size, 65536);
	assert_string_equal(cfg.queue.consumer_scheduling, "batch");
	assert_int_equal(cfg.retry.enabled, 1);
	assert_int_equal(cfg.retry.initial_interval_ns, 5 * KN_NS_PER_SEC);
	assert_int_equal(cfg.retry.max_interval_ns, 30 * KN_NS_PER_SEC);
	assert_int_equal(cfg.retry.max_elapsed_time_ns, 300 * KN_NS_PER_SEC);
	assert_true(cfg.retry.multiplier == 1.5);
	assert_true(cfg.retry.randomization_factor == 0.5);
	kn_cfg_free(kn_sender_queue_fields, &cfg.queue);
	kn_cfg_free(kn_sender_retry_fields, &cfg.retry);
}

/* sending_queue.consumer_scheduling: batch (the default, also when the
 * key is unset) puts each consumer thread under SCHED_BATCH; normal leaves
 * it as created, with the policy of the thread that started the sender
 * (SCHED_OTHER, unless the tests themselves run under another). The policy
 * is read by the consumer itself, inside the send. */
static void test_consumer_scheduling(void **state)
{
	(void)state;
	int created;
	struct sched_param sp;
	assert_int_equal(pthread_getschedparam(pthread_self(), &created, &sp), 0);
	const char *modes[] = {NULL, "batch", "normal"};
	const int want[] = {SCHED_BATCH, SCHED_BATCH, created};
	for (int i = 0; i < 3; i++) {
		struct script sc;
		script_init(&sc);
		sc.policy = -2;
		struct kn_sender_cfg cfg = tiny_cfg(2, 10);
		cfg.queue.consumer_scheduling = (char *)modes[i];
		struct kn_sender *s = mk(&sc, &cfg, NULL);
		struct kn_err err;
		assert_int_equal(kn_sender_start(s, &err), KN_OK);
		assert_int_equal(kn_sender_enqueue(s, make_batch(3, 10)), KN_OK);
		kn_sender_shutdown(s, far_deadline());
		assert_int_equal(sc.oks, 1);
		assert_int_equal(sc.policy, want[i]);
		kn_sender_destroy(s);
		script_fini(&sc);
	}
	/* The thread that started the senders is not touched. */
	int policy;
	assert_int_equal(pthread_getschedparam(pthread_self(), &policy, &sp), 0);
	assert_int_equal(policy, created);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_then_success),
		cmocka_unit_test(test_jitter_within_bounds),
		cmocka_unit_test(test_permanent_error),
		cmocka_unit_test(test_queue_full),
		cmocka_unit_test(test_max_elapsed_gives_up),
		cmocka_unit_test(test_retry_disabled),
		cmocka_unit_test(test_retry_after_honoured),
		cmocka_unit_test(test_shutdown_drains),
		cmocka_unit_test(test_shutdown_drops_rest),
		cmocka_unit_test(test_concurrent_producers),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_consumer_scheduling),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
