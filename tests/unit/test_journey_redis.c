/* SPDX-License-Identifier: Apache-2.0
 * The shared journey registry's Redis client (processors/journey/
 * kn_journey_redis.h) against a real redis-server (the Debian package, run
 * here as a child on 127.0.0.1, stopped by pid):
 *  - entries written are found by a lookup, byte for byte, and an id never
 *    written is a miss; the keys are what the header says (checked with GET
 *    through a second, plain hiredis connection);
 *  - a Redis that stops answering (SIGSTOP) makes lookups come back
 *    UNAVAILABLE once `timeout` passed, the client reports down; after
 *    SIGCONT it reconnects by itself and lookups work again;
 *  - past max_pending, submit refuses and counts (reason max_pending);
 *    writes while down are refused and counted (reason unavailable);
 *  - a wrong password: the server refuses AUTH, the client never reports up;
 *    the right one works.
 * Waiting is always for a real condition (an answer in the ring, the up
 * flag), polled with a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "collector/core/kn_clock.h"
#include "collector/core/kn_metrics.h"
#include "processors/journey/kn_journey_redis.h"

extern char **environ;

#define WAIT_NS (20ull * 1000000000ull)

struct srv {
	pid_t pid;
	uint16_t port;
	char dir[64];
};

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof a;
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* A plain connection to the server: 1 when it answers PING (with AUTH). */
static redisContext *plain(const struct srv *s, const char *password)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
	if (!c || c->err) {
		if (c)
			redisFree(c);
		return NULL;
	}
	if (password) {
		redisReply *r = redisCommand(c, "AUTH %s", password);
		if (r)
			freeReplyObject(r);
	}
	return c;
}

static void srv_start(struct srv *s, const char *password)
{
	snprintf(s->dir, sizeof s->dir, "/tmp/kn-redis-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	s->port = free_port();
	char port[16];
	snprintf(port, sizeof port, "%u", s->port);
	char *argv[20] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
			  "--appendonly", "no", "--dir", s->dir, "--loglevel", "warning", NULL};
	int n = 13;
	if (password) {
		argv[n++] = "--requirepass";
		argv[n++] = (char *)password;
		argv[n] = NULL;
	}
	assert_int_equal(posix_spawnp(&s->pid, "redis-server", NULL, NULL, argv, environ), 0);
	/* ready = it answers PING */
	uint64_t end = kn_now_ns() + WAIT_NS;
	for (;;) {
		redisContext *c = plain(s, password);
		if (c) {
			redisReply *r = redisCommand(c, "PING");
			int ok = r && r->type == REDIS_REPLY_STATUS;
			if (r)
				freeReplyObject(r);
			redisFree(c);
			if (ok)
				return;
		}
		assert_true(kn_now_ns() < end);
		pause_ms(10);
	}
}

static void srv_stop(struct srv *s)
{
	kill(s->pid, SIGCONT);
	kill(s->pid, SIGTERM);
	int st;
	waitpid(s->pid, &st, 0);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", s->dir);
	assert_int_equal(system(cmd), 0);
}

static struct kn_journey_redis_cfg cfg_for(const struct srv *s, char *endpoint, size_t cap)
{
	snprintf(endpoint, cap, "127.0.0.1:%u", s->port);
	struct kn_journey_redis_cfg c = {
		.endpoint = endpoint, .enabled = 1, .username = "", .password = "", .db = 0,
		.key_prefix = "t:j:", .ttl_ns = 60ull * 1000000000ull, .timeout_ns = 300ull * 1000000ull,
		.max_pending = 1000, .write = "producers",
	};
	return c;
}

static void head_for(struct kn_journey_head *h, uint32_t n)
{
	memset(h, 0, sizeof *h);
	for (int i = 0; i < 16; i++)
		h->journey_id[i] = (uint8_t)(n * 7 + (uint32_t)i);
	h->start_ns = 1000000000ull * n;
	h->end_ns = h->start_ns + 5;
	h->kind = 2;
	h->name_len = (uint16_t)snprintf(h->name, sizeof h->name, "head-%u", n);
	h->service_len = 3;
	memcpy(h->service, "api", 3);
}

static void id_for(uint8_t id[16], uint32_t n)
{
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(0x40 + n + (uint32_t)i);
}

static void wait_up(struct kn_jr *c, int want)
{
	uint64_t end = kn_now_ns() + WAIT_NS;
	while (kn_jr_up(c) != want) {
		assert_true(kn_now_ns() < end);
		pause_ms(5);
	}
}

static struct kn_jr_msg *wait_answer(struct kn_jr *c)
{
	uint64_t end = kn_now_ns() + WAIT_NS;
	struct kn_jr_msg *m;
	while (!(m = kn_jr_answer(c, 0))) {
		assert_true(kn_now_ns() < end);
		pause_ms(2);
	}
	return m;
}

static struct kn_jr_msg *lookup(struct kn_jr *c, const uint32_t *ns, uint32_t k)
{
	struct kn_jr_msg *m = kn_jr_msg_new(KN_JR_LOOKUP, k);
	for (uint32_t i = 0; i < k; i++)
		id_for(m->items[m->n++].id, ns[i]);
	m->seq = 77;
	assert_int_equal(kn_jr_submit(c, 0, m), 0);
	kn_jr_kick(c);
	struct kn_jr_msg *a = wait_answer(c);
	assert_int_equal(a->seq, 77);
	return a;
}

static uint64_t metric(struct kn_metrics *m, const char *pat)
{
	char *text;
	size_t len;
	assert_int_equal(kn_metrics_render(m, &text, &len), 0);
	char *p = strstr(text, pat);
	uint64_t v = p ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
	free(text);
	assert_true(v != UINT64_MAX);
	return v;
}

static void write_then_lookup(void **state)
{
	(void)state;
	struct srv s;
	srv_start(&s, NULL);
	char ep[64];
	struct kn_journey_redis_cfg cfg = cfg_for(&s, ep, sizeof ep);
	struct kn_metrics *m = kn_metrics_create();
	struct kn_err err;
	struct kn_jr *c = kn_jr_create(&cfg, 1, m, "journey", &err);
	assert_non_null(c);
	assert_int_equal(kn_jr_start(c, &err), KN_OK);
	wait_up(c, 1);
	/* three entries, in a message that had to grow from 1 item */
	struct kn_jr_msg *w = kn_jr_msg_new(KN_JR_WRITE, 1);
	for (uint32_t i = 1; i <= 3; i++) {
		assert_int_equal(kn_jr_msg_room(&w), 0);
		id_for(w->items[w->n].id, i);
		head_for(&w->items[w->n].head, i);
		w->n++;
	}
	assert_int_equal(kn_jr_submit(c, 0, w), 0);
	kn_jr_kick(c);
	/* written = GET finds the key (plain connection) */
	redisContext *pc = plain(&s, NULL);
	assert_non_null(pc);
	uint8_t id3[16];
	char key[64];
	id_for(id3, 3);
	kn_jr_key("t:j:", id3, key);
	uint64_t end = kn_now_ns() + WAIT_NS;
	for (;;) {
		redisReply *r = redisCommand(pc, "GET %s", key);
		int found = r && r->type == REDIS_REPLY_STRING;
		if (found) {
			redisReply *t = redisCommand(pc, "PTTL %s", key);
			assert_true(t->integer > 50000 && t->integer <= 60000);
			freeReplyObject(t);
		}
		freeReplyObject(r);
		if (found)
			break;
		assert_true(kn_now_ns() < end);
		pause_ms(2);
	}
	redisFree(pc);
	uint32_t ns[4] = {1, 9, 3, 2};
	struct kn_jr_msg *a = lookup(c, ns, 4);
	assert_int_equal(a->status, KN_JR_ANSWERED);
	for (uint32_t i = 0; i < 4; i++) {
		struct kn_journey_head want;
		head_for(&want, ns[i]);
		assert_int_equal(a->items[i].found, ns[i] != 9);
		if (ns[i] != 9)
			assert_memory_equal(&a->items[i].head, &want, sizeof want);
	}
	kn_jr_msg_free(a);
	assert_int_equal(metric(m, "kansatsu_journey_registry_lookups_total{processor=\"journey\",result=\"hit\"} "), 3);
	assert_int_equal(metric(m, "kansatsu_journey_registry_lookups_total{processor=\"journey\",result=\"miss\"} "), 1);
	assert_int_equal(metric(m, "kansatsu_journey_registry_writes_total{processor=\"journey\",result=\"ok\"} "), 3);
	assert_int_equal(metric(m, "kansatsu_journey_registry_up{processor=\"journey\"} "), 1);
	kn_jr_destroy(c);
	kn_metrics_destroy(m);
	srv_stop(&s);
}

static void stalled_server(void **state)
{
	(void)state;
	struct srv s;
	srv_start(&s, NULL);
	char ep[64];
	struct kn_journey_redis_cfg cfg = cfg_for(&s, ep, sizeof ep);
	cfg.max_pending = 4;
	struct kn_metrics *m = kn_metrics_create();
	struct kn_err err;
	struct kn_jr *c = kn_jr_create(&cfg, 1, m, "journey", &err);
	assert_non_null(c);
	assert_int_equal(kn_jr_start(c, &err), KN_OK);
	wait_up(c, 1);
	kill(s.pid, SIGSTOP);
	uint64_t t0 = kn_now_ns();
	uint32_t ns[3] = {1, 2, 3};
	struct kn_jr_msg *a = lookup(c, ns, 3);
	/* answered only once the round trip passed `timeout` */
	assert_true(kn_now_ns() - t0 >= cfg.timeout_ns);
	assert_int_equal(a->status, KN_JR_UNAVAILABLE);
	kn_jr_msg_free(a);
	assert_int_equal(metric(m, "kansatsu_journey_registry_lookups_total{processor=\"journey\",result=\"error\"} "), 3);
	/* down: a write is refused and counted */
	struct kn_jr_msg *w = kn_jr_msg_new(KN_JR_WRITE, 2);
	w->n = 2;
	id_for(w->items[0].id, 5);
	head_for(&w->items[0].head, 5);
	id_for(w->items[1].id, 6);
	head_for(&w->items[1].head, 6);
	wait_up(c, 0);
	assert_int_equal(kn_jr_submit(c, 0, w), -1);
	kn_jr_msg_free(w); /* refused: still the caller's */
	assert_int_equal(metric(m, "kansatsu_journey_registry_dropped_total{processor=\"journey\",op=\"write\",reason=\"unavailable\"} "), 2);
	/* past max_pending (4 ids): 3 + 2 > 4 */
	struct kn_jr_msg *l1 = kn_jr_msg_new(KN_JR_LOOKUP, 3), *l2 = kn_jr_msg_new(KN_JR_LOOKUP, 2);
	l1->n = 3;
	l2->n = 2;
	memset(l1->items, 0, 3 * sizeof l1->items[0]);
	memset(l2->items, 0, 2 * sizeof l2->items[0]);
	assert_int_equal(kn_jr_submit(c, 0, l1), 0);
	assert_int_equal(kn_jr_submit(c, 0, l2), -1);
	assert_int_equal(metric(m, "kansatsu_journey_registry_dropped_total{processor=\"journey\",op=\"lookup\",reason=\"max_pending\"} "), 2);
	kn_jr_msg_free(l2);
	kn_jr_kick(c);
	a = wait_answer(c); /* l1, answered UNAVAILABLE while down */
	assert_int_equal(a->status, KN_JR_UNAVAILABLE);
	kn_jr_msg_free(a);
	/* back: reconnects by itself */
	kill(s.pid, SIGCONT);
	wait_up(c, 1);
	a = lookup(c, ns, 3);
	assert_int_equal(a->status, KN_JR_ANSWERED);
	kn_jr_msg_free(a);
	assert_true(metric(m, "kansatsu_journey_registry_connects_total{processor=\"journey\"} ") >= 2);
	kn_jr_destroy(c);
	kn_metrics_destroy(m);
	srv_stop(&s);
}

static void password(void **state)
{
	(void)state;
	struct srv s;
	srv_start(&s, "s3cret");
	char ep[64];
	struct kn_journey_redis_cfg cfg = cfg_for(&s, ep, sizeof ep);
	cfg.password = "wrong";
	struct kn_err err;
	struct kn_metrics *m = kn_metrics_create();
	struct kn_jr *c = kn_jr_create(&cfg, 1, m, "journey", &err);
	assert_non_null(c);
	assert_int_equal(kn_jr_start(c, &err), KN_OK);
	/* the refusal comes back; then it never stays up */
	uint32_t ns[1] = {1};
	struct kn_jr_msg *a = lookup(c, ns, 1);
	assert_int_equal(a->status, KN_JR_UNAVAILABLE);
	kn_jr_msg_free(a);
	assert_int_equal(kn_jr_up(c), 0);
	assert_int_equal(metric(m, "kansatsu_journey_registry_up{processor=\"journey\"} "), 0);
	kn_jr_destroy(c);
	kn_metrics_destroy(m);
	m = kn_metrics_create();
	cfg.password = "s3cret";
	c = kn_jr_create(&cfg, 1, m, "journey", &err);
	assert_int_equal(kn_jr_start(c, &err), KN_OK);
	wait_up(c, 1);
	a = lookup(c, ns, 1);
	assert_int_equal(a->status, KN_JR_ANSWERED);
	assert_int_equal(a->items[0].found, 0);
	kn_jr_msg_free(a);
	kn_jr_destroy(c);
	kn_metrics_destroy(m);
	srv_stop(&s);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(write_then_lookup),
		cmocka_unit_test(stalled_server),
		cmocka_unit_test(password),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
