/* SPDX-License-Identifier: Apache-2.0
 * kn_journey_redis: the Redis client thread of the shared journey registry
 * (see kn_journey_redis.h for what it does and promises).
 *
 * The loop: poll() on an eventfd (kicks from shards) and the hiredis socket
 * (read/write interest as hiredis asks through its adapter hooks), at most
 * 50ms at a time; then it drains every shard's request ring into commands,
 * checks the round-trip deadline of the oldest command in flight, and
 * (re)connects when due. hiredis answers in command order, so a FIFO of
 * send times gives every reply's round trip and the oldest command's age.
 *
 * hiredis 0.14 rules this file keeps: a context whose connect failed, or
 * that disconnected, is freed by hiredis itself after the callback (the
 * callbacks clear c->ac); redisAsyncFree from the loop (not a callback)
 * calls every pending reply callback with a NULL reply. */
#include "kn_journey_redis.h"

#include <ck_ring.h>
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_hex.h"
#include "../../collector/core/kn_log.h"
#include "../../collector/core/kn_metrics.h"
#include "kn_journey_entry.h"

#define RING_SIZE 1024                 /* messages per shard and direction */
#define NBUCKETS 12
#define BACKOFF_MIN_NS (50 * KN_NS_PER_MS)
#define BACKOFF_MAX_NS (2000 * KN_NS_PER_MS)

static const double rtt_bounds[NBUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
					    0.01,   0.025,   0.05,   0.1,   0.25,   1.0};

struct jr_shard {
	ck_ring_t req, ans;
	ck_ring_buffer_t *req_buf, *ans_buf;
	_Atomic uint32_t lookups_out;      /* lookup messages not yet taken back */
};

struct jr_metrics {
	struct kn_metric *up, *hit, *miss, *lerr, *wok, *werr;
	struct kn_metric *drop_lk_pending, *drop_wr_pending, *drop_wr_down;
	struct kn_metric *cmd_mget, *cmd_set, *reconnects;
};

struct kn_jr {
	const struct kn_journey_redis_cfg *cfg;
	char host[256];
	uint16_t port;
	int unix_sock;
	uint32_t nshards;
	struct jr_shard *sh;
	_Atomic uint64_t pending;          /* ids submitted and not finished */
	_Atomic int up;
	_Atomic int stop;
	uint64_t stop_deadline;
	int efd;
	pthread_t thr;
	int started;
	struct kn_metrics *metrics;
	struct jr_metrics m;
	char labels[160];
	/* histogram (written by the client thread, read by the scrape) */
	_Atomic uint64_t rtt_bucket[NBUCKETS + 1];
	_Atomic uint64_t rtt_sum_ns, rtt_count;
	/* first-connect handshake with kn_jr_start */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int first_done;
	/* ---- client thread only ---- */
	redisAsyncContext *ac;
	int want_read, want_write;
	int connected;                     /* TCP (or unix) connection established */
	int freeing;                       /* inside our own redisAsyncFree */
	int logged_auth;                   /* a setup refusal was logged since the last up */
	uint64_t connect_started;
	uint64_t next_connect;
	uint64_t backoff;
	int logged_down;                   /* the "unreachable" line was logged */
	uint64_t *fly;                     /* send times of commands in flight (FIFO) */
	uint32_t fly_head, fly_n, fly_cap;
	char *keys;                        /* MGET key scratch */
	uint64_t rng;
};

/* ---- messages ---- */

struct kn_jr_msg *kn_jr_msg_new(enum kn_jr_op op, uint32_t cap)
{
	struct kn_jr_msg *m = malloc(sizeof *m + (size_t)cap * sizeof(struct kn_jr_item));
	if (!m)
		return NULL;
	m->op = (uint8_t)op;
	m->status = KN_JR_ANSWERED;
	m->n = 0;
	m->cap = cap;
	m->left = 0;
	m->seq = 0;
	return m;
}

int kn_jr_msg_room(struct kn_jr_msg **mp)
{
	struct kn_jr_msg *m = *mp;
	if (m->n < m->cap)
		return 0;
	if (m->cap >= KN_JR_MAX_ITEMS)
		return -1;
	uint32_t nc = m->cap * 2 < KN_JR_MAX_ITEMS ? m->cap * 2 : KN_JR_MAX_ITEMS;
	struct kn_jr_msg *q = realloc(m, sizeof *m + (size_t)nc * sizeof(struct kn_jr_item));
	if (!q)
		return -1;
	q->cap = nc;
	*mp = q;
	return 0;
}

void kn_jr_msg_free(struct kn_jr_msg *m)
{
	free(m);
}

size_t kn_jr_key(const char *prefix, const uint8_t id[16], char *out)
{
	size_t pl = strlen(prefix);
	memcpy(out, prefix, pl);
	kn_hex_encode(id, 16, out + pl);
	out[pl + 32] = '\0';
	return pl + 32;
}

/* ---- in-flight FIFO ---- */

static int fly_push(struct kn_jr *c, uint64_t t)
{
	if (c->fly_n == c->fly_cap) {
		uint32_t nc = c->fly_cap ? c->fly_cap * 2 : 256;
		uint64_t *q = malloc((size_t)nc * sizeof *q);
		if (!q)
			return -1;
		for (uint32_t i = 0; i < c->fly_n; i++)
			q[i] = c->fly[(c->fly_head + i) % c->fly_cap];
		free(c->fly);
		c->fly = q;
		c->fly_cap = nc;
		c->fly_head = 0;
	}
	c->fly[(c->fly_head + c->fly_n++) % c->fly_cap] = t;
	return 0;
}

/* A reply arrived (reply != NULL): its round trip into the histogram. */
static void fly_pop(struct kn_jr *c, int observed)
{
	if (!c->fly_n)
		return;
	uint64_t t = c->fly[c->fly_head];
	c->fly_head = (c->fly_head + 1) % c->fly_cap;
	c->fly_n--;
	if (!observed)
		return;
	uint64_t d = kn_now_ns() - t;
	double s = (double)d / 1e9;
	uint32_t b = 0;
	while (b < NBUCKETS && s > rtt_bounds[b])
		b++;
	atomic_fetch_add_explicit(&c->rtt_bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->rtt_sum_ns, d, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->rtt_count, 1, memory_order_relaxed);
}

/* ---- answers ---- */

static void answer(struct kn_jr *c, struct kn_jr_msg *m, uint32_t shard)
{
	/* never full: a shard has at most RING_SIZE - 1 lookups out (kn_jr_submit) */
	if (!ck_ring_enqueue_spsc(&c->sh[shard].ans, c->sh[shard].ans_buf, m)) {
		kn_warn("journey registry: answer ring of shard %u full; lookup dropped", shard);
		atomic_fetch_sub_explicit(&c->pending, m->n, memory_order_relaxed);
		atomic_fetch_sub_explicit(&c->sh[shard].lookups_out, 1, memory_order_relaxed);
		kn_jr_msg_free(m);
	}
}

/* privdata of a lookup: the message; its shard is kept in `left`. */
static void on_mget(redisAsyncContext *ac, void *r, void *priv)
{
	struct kn_jr *c = ac->data;
	struct kn_jr_msg *m = priv;
	redisReply *rep = r;
	fly_pop(c, rep != NULL);
	uint32_t shard = m->left;
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != m->n) {
		if (rep && rep->type == REDIS_REPLY_ERROR)
			kn_warn("journey registry: MGET: %.*s", (int)rep->len, rep->str);
		m->status = KN_JR_UNAVAILABLE;
		kn_counter_add(c->m.lerr, m->n);
		answer(c, m, shard);
		return;
	}
	uint64_t hits = 0;
	for (uint32_t i = 0; i < m->n; i++) {
		redisReply *e = rep->element[i];
		struct kn_jr_item *it = &m->items[i];
		it->found = 0;
		if (e && e->type == REDIS_REPLY_STRING &&
		    kn_journey_entry_decode((const uint8_t *)e->str, e->len, &it->head) == 0) {
			it->found = 1;
			hits++;
		}
	}
	kn_counter_add(c->m.hit, hits);
	kn_counter_add(c->m.miss, m->n - hits);
	m->status = KN_JR_ANSWERED;
	answer(c, m, shard);
}

static void on_set(redisAsyncContext *ac, void *r, void *priv)
{
	struct kn_jr *c = ac->data;
	struct kn_jr_msg *m = priv;
	redisReply *rep = r;
	fly_pop(c, rep != NULL);
	if (rep && rep->type == REDIS_REPLY_STATUS)
		kn_counter_add(c->m.wok, 1);
	else
		kn_counter_add(c->m.werr, 1);
	if (--m->left == 0) {
		atomic_fetch_sub_explicit(&c->pending, m->n, memory_order_relaxed);
		kn_jr_msg_free(m);
	}
}

static void first_done(struct kn_jr *c);

/* AUTH / SELECT / PING after a connect: an error reply means this connection
 * is of no use; the PING's answer (queued last) makes the registry up. A
 * server that accepts connections but does not answer (stopped, overloaded)
 * never gets there: the round-trip deadline resets the connection. */
static void on_setup(redisAsyncContext *ac, void *r, void *priv)
{
	struct kn_jr *c = ac->data;
	redisReply *rep = r;
	fly_pop(c, rep != NULL);
	if (!rep)
		return;
	if (rep->type == REDIS_REPLY_ERROR) {
		if (!c->logged_auth)
			kn_error("journey registry: %s refused: %.*s (check registry.redis.%s)",
				 (const char *)priv, (int)rep->len, rep->str,
				 strcmp(priv, "SELECT") == 0 ? "db" : "username / password");
		c->logged_auth = 1;
		redisAsyncDisconnect(ac);
		return;
	}
	if (strcmp(priv, "PING") != 0)
		return;
	c->backoff = BACKOFF_MIN_NS;
	atomic_store(&c->up, 1);
	kn_gauge_set(c->m.up, 1);
	if (c->logged_down)
		kn_info("journey registry: connected to redis %s", c->cfg->endpoint);
	c->logged_down = 0;
	c->logged_auth = 0;
	first_done(c);
}

/* ---- hiredis adapter: interest flags for our poll loop ---- */

static void ev_add_read(void *p) { ((struct kn_jr *)p)->want_read = 1; }
static void ev_del_read(void *p) { ((struct kn_jr *)p)->want_read = 0; }
static void ev_add_write(void *p) { ((struct kn_jr *)p)->want_write = 1; }
static void ev_del_write(void *p) { ((struct kn_jr *)p)->want_write = 0; }
static void ev_cleanup(void *p)
{
	struct kn_jr *c = p;
	c->want_read = c->want_write = 0;
}

static uint64_t jitter(struct kn_jr *c, uint64_t d)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return d / 2 + c->rng % (d / 2 + 1);
}

static void first_done(struct kn_jr *c)
{
	pthread_mutex_lock(&c->mu);
	c->first_done = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void went_down(struct kn_jr *c, const char *why)
{
	int was = atomic_exchange(&c->up, 0);
	kn_gauge_set(c->m.up, 0);
	c->connected = 0;
	c->fly_n = 0;
	c->fly_head = 0;
	c->next_connect = kn_now_ns() + jitter(c, c->backoff);
	c->backoff = c->backoff * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : c->backoff * 2;
	if (was || !c->logged_down)
		kn_warn("journey registry: redis %s: %s; retrying", c->cfg->endpoint, why);
	c->logged_down = 1;
	first_done(c);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct kn_jr *c = ac->data;
	if (status != REDIS_OK) {
		c->ac = NULL; /* hiredis frees it */
		went_down(c, ac->errstr[0] ? ac->errstr : "connect failed");
		return;
	}
	c->connected = 1; /* up once the PING queued after AUTH / SELECT answers */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct kn_jr *c = ac->data;
	c->ac = NULL; /* hiredis frees it */
	if (!c->freeing) /* check_deadline reports its own reason */
		went_down(c, status == REDIS_OK ? "disconnected" : (ac->errstr[0] ? ac->errstr : "connection lost"));
}

static void try_connect(struct kn_jr *c, uint64_t now)
{
	redisAsyncContext *ac = c->unix_sock ? redisAsyncConnectUnix(c->cfg->endpoint)
					     : redisAsyncConnect(c->host, c->port);
	kn_counter_add(c->m.reconnects, 1);
	if (!ac || ac->err) {
		char why[160];
		snprintf(why, sizeof why, "%s", ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		went_down(c, why);
		return;
	}
	ac->data = c;
	ac->ev.data = c;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	c->ac = ac;
	c->connect_started = now;
	c->want_write = 1; /* the connect completes when the socket is writable */
	const struct kn_journey_redis_cfg *g = c->cfg;
	if (g->password && *g->password) {
		fly_push(c, now);
		if (g->username && *g->username)
			redisAsyncCommand(ac, on_setup, (void *)"AUTH", "AUTH %s %s", g->username, g->password);
		else
			redisAsyncCommand(ac, on_setup, (void *)"AUTH", "AUTH %s", g->password);
	}
	if (g->db) {
		fly_push(c, now);
		redisAsyncCommand(ac, on_setup, (void *)"SELECT", "SELECT %" PRIu64, g->db);
	}
	fly_push(c, now);
	redisAsyncCommand(ac, on_setup, (void *)"PING", "PING");
}

/* ---- commands ---- */

static void issue_lookup(struct kn_jr *c, struct kn_jr_msg *m, uint32_t shard, uint64_t now)
{
	size_t pl = strlen(c->cfg->key_prefix), kl = pl + 33;
	const char *argv[KN_JR_MAX_ITEMS + 1];
	size_t lens[KN_JR_MAX_ITEMS + 1];
	argv[0] = "MGET";
	lens[0] = 4;
	for (uint32_t i = 0; i < m->n; i++) {
		char *k = c->keys + i * kl;
		lens[i + 1] = kn_jr_key(c->cfg->key_prefix, m->items[i].id, k);
		argv[i + 1] = k;
	}
	m->left = shard;
	if (fly_push(c, now) != 0 ||
	    redisAsyncCommandArgv(c->ac, on_mget, m, (int)m->n + 1, argv, lens) != REDIS_OK) {
		if (c->fly_n)
			c->fly_n--;
		m->status = KN_JR_UNAVAILABLE;
		kn_counter_add(c->m.lerr, m->n);
		answer(c, m, shard);
		return;
	}
	kn_counter_add(c->m.cmd_mget, 1);
}

static void issue_writes(struct kn_jr *c, struct kn_jr_msg *m, uint64_t now)
{
	char key[256], ttl[32];
	uint8_t val[KN_JOURNEY_ENTRY_MAX];
	snprintf(ttl, sizeof ttl, "%" PRIu64, (uint64_t)(c->cfg->ttl_ns / KN_NS_PER_MS));
	uint32_t n = m->n;
	m->left = n;
	for (uint32_t i = 0; i < n; i++) {
		const char *argv[5] = {"SET", key, (const char *)val, "PX", ttl};
		size_t lens[5] = {3, 0, 0, 2, strlen(ttl)};
		lens[1] = kn_jr_key(c->cfg->key_prefix, m->items[i].id, key);
		lens[2] = kn_journey_entry_encode(&m->items[i].head, val);
		if (fly_push(c, now) != 0 ||
		    redisAsyncCommandArgv(c->ac, on_set, m, 5, argv, lens) != REDIS_OK) {
			if (c->fly_n)
				c->fly_n--;
			/* the commands not issued will never call back */
			kn_counter_add(c->m.werr, n - i);
			m->left -= n - i;
			if (m->left == 0) {
				atomic_fetch_sub_explicit(&c->pending, m->n, memory_order_relaxed);
				kn_jr_msg_free(m);
			}
			return;
		}
		kn_counter_add(c->m.cmd_set, 1);
	}
}

static void take_requests(struct kn_jr *c, uint64_t now)
{
	for (uint32_t s = 0; s < c->nshards; s++) {
		struct kn_jr_msg *m;
		while (ck_ring_dequeue_spsc(&c->sh[s].req, c->sh[s].req_buf, &m)) {
			int up = c->ac && atomic_load(&c->up);
			if (m->op == KN_JR_LOOKUP) {
				if (up) {
					issue_lookup(c, m, s, now);
				} else {
					m->status = KN_JR_UNAVAILABLE;
					kn_counter_add(c->m.lerr, m->n);
					answer(c, m, s);
				}
			} else if (up) {
				issue_writes(c, m, now);
			} else {
				kn_counter_add(c->m.drop_wr_down, m->n);
				atomic_fetch_sub_explicit(&c->pending, m->n, memory_order_relaxed);
				kn_jr_msg_free(m);
			}
		}
	}
}

/* The oldest command waited longer than timeout (or the connect did): the
 * connection is reset and every command in flight fails. */
static void check_deadline(struct kn_jr *c, uint64_t now)
{
	if (!c->ac)
		return;
	uint64_t t = c->cfg->timeout_ns;
	int late = (!c->connected && now - c->connect_started > t) ||
		   (c->fly_n && now - c->fly[c->fly_head] > t);
	if (!late)
		return;
	c->freeing = 1;
	redisAsyncFree(c->ac); /* pending callbacks get NULL replies */
	c->freeing = 0;
	c->ac = NULL;
	went_down(c, "no answer within registry.redis.timeout");
}

/* ---- the thread ---- */

static void *client_main(void *arg)
{
	struct kn_jr *c = arg;
	pthread_setname_np(pthread_self(), "kn-jregistry");
	for (;;) {
		uint64_t now = kn_now_ns();
		int stopping = atomic_load(&c->stop);
		if (!c->ac && !stopping && now >= c->next_connect)
			try_connect(c, now);
		struct pollfd pf[2] = {{.fd = c->efd, .events = POLLIN}, {.fd = -1}};
		int npf = 1;
		if (c->ac && (c->want_read || c->want_write)) {
			pf[1].fd = c->ac->c.fd;
			pf[1].events = (short)((c->want_read ? POLLIN : 0) | (c->want_write ? POLLOUT : 0));
			npf = 2;
		}
		int wait_ms = 50;
		if (stopping)
			wait_ms = 5;
		else if (!c->ac && c->next_connect > now)
			wait_ms = (int)((c->next_connect - now) / KN_NS_PER_MS) + 1;
		if (wait_ms > 50)
			wait_ms = 50;
		if (poll(pf, (nfds_t)npf, wait_ms) > 0) {
			if (pf[0].revents & POLLIN) {
				uint64_t v;
				ssize_t r = read(c->efd, &v, sizeof v);
				(void)r;
			}
			if (npf == 2 && c->ac && (pf[1].revents & (POLLIN | POLLERR | POLLHUP)))
				redisAsyncHandleRead(c->ac);
			if (npf == 2 && c->ac && (pf[1].revents & POLLOUT))
				redisAsyncHandleWrite(c->ac);
		}
		now = kn_now_ns();
		take_requests(c, now);
		check_deadline(c, now);
		if (stopping && (c->fly_n == 0 || !c->ac || now >= c->stop_deadline))
			break;
	}
	if (c->ac) {
		c->freeing = 1;
		redisAsyncFree(c->ac);
		c->freeing = 0;
		c->ac = NULL;
	}
	take_requests(c, kn_now_ns()); /* nothing connected: writes dropped, counted */
	return NULL;
}

/* ---- metrics ---- */

static void collect(void *ctx, struct kn_metrics_out *o)
{
	struct kn_jr *c = ctx;
	char lb[240];
	kn_metrics_out_family(o, KN_MFAM_HISTOGRAM, "kansatsu_journey_registry_round_trip_seconds",
			      "Round trips of the commands sent to the shared journey registry.");
	uint64_t cum = 0;
	for (uint32_t b = 0; b <= NBUCKETS; b++) {
		cum += atomic_load_explicit(&c->rtt_bucket[b], memory_order_relaxed);
		if (b < NBUCKETS)
			snprintf(lb, sizeof lb, "%s,le=\"%g\"", c->labels, rtt_bounds[b]);
		else
			snprintf(lb, sizeof lb, "%s,le=\"+Inf\"", c->labels);
		kn_metrics_out_sample(o, "_bucket", lb, (double)cum, NULL);
	}
	kn_metrics_out_sample(o, "_sum", c->labels,
			      (double)atomic_load_explicit(&c->rtt_sum_ns, memory_order_relaxed) / 1e9, NULL);
	kn_metrics_out_sample(o, "_count", c->labels,
			      (double)atomic_load_explicit(&c->rtt_count, memory_order_relaxed), NULL);
}

static void register_metrics(struct kn_jr *c, struct kn_metrics *m, const char *esc)
{
	struct jr_metrics *x = &c->m;
	snprintf(c->labels, sizeof c->labels, "processor=\"%s\"", esc);
	x->up = kn_metrics_gauge(m, "kansatsu_journey_registry_up",
				 "1 while the shared journey registry (Redis) is connected.", c->labels);
	const char *n = "kansatsu_journey_registry_lookups_total";
	const char *h = "Trace ids looked up in the shared journey registry, by result.";
	x->hit = kn_metrics_processor_counter(m, n, h, esc, "result=\"hit\"");
	x->miss = kn_metrics_processor_counter(m, n, h, esc, "result=\"miss\"");
	x->lerr = kn_metrics_processor_counter(m, n, h, esc, "result=\"error\"");
	n = "kansatsu_journey_registry_writes_total";
	h = "Entries written to the shared journey registry, by result.";
	x->wok = kn_metrics_processor_counter(m, n, h, esc, "result=\"ok\"");
	x->werr = kn_metrics_processor_counter(m, n, h, esc, "result=\"error\"");
	n = "kansatsu_journey_registry_dropped_total";
	h = "Lookups and writes not sent to the shared journey registry, by reason.";
	x->drop_lk_pending = kn_metrics_processor_counter(m, n, h, esc, "op=\"lookup\",reason=\"max_pending\"");
	x->drop_wr_pending = kn_metrics_processor_counter(m, n, h, esc, "op=\"write\",reason=\"max_pending\"");
	x->drop_wr_down = kn_metrics_processor_counter(m, n, h, esc, "op=\"write\",reason=\"unavailable\"");
	n = "kansatsu_journey_registry_commands_total";
	h = "Commands sent to the shared journey registry.";
	x->cmd_mget = kn_metrics_processor_counter(m, n, h, esc, "command=\"MGET\"");
	x->cmd_set = kn_metrics_processor_counter(m, n, h, esc, "command=\"SET\"");
	x->reconnects = kn_metrics_processor_counter(m, "kansatsu_journey_registry_connects_total",
				"Connection attempts to the shared journey registry.", esc, NULL);
	kn_metrics_collector(m, collect, c);
}

/* ---- lifecycle ---- */

struct kn_jr *kn_jr_create(const struct kn_journey_redis_cfg *cfg, uint32_t nshards,
			   struct kn_metrics *metrics, const char *escaped_id, struct kn_err *err)
{
	struct kn_jr *c = calloc(1, sizeof *c);
	if (!c) {
		kn_errf(err, "registry.redis: out of memory");
		return NULL;
	}
	c->cfg = cfg;
	c->nshards = nshards ? nshards : 1;
	c->efd = -1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->backoff = BACKOFF_MIN_NS;
	c->rng = (uint64_t)kn_now_ns() | 1;
	if (cfg->endpoint[0] == '/') {
		c->unix_sock = 1;
	} else if (kn_parse_endpoint(cfg->endpoint, "registry.redis.endpoint", c->host, sizeof c->host,
				     &c->port, err) != KN_OK) {
		goto fail;
	}
	c->sh = calloc(c->nshards, sizeof *c->sh);
	c->keys = malloc((size_t)KN_JR_MAX_ITEMS * (strlen(cfg->key_prefix) + 33));
	if (!c->sh || !c->keys)
		goto oom;
	for (uint32_t s = 0; s < c->nshards; s++) {
		c->sh[s].req_buf = calloc(RING_SIZE, sizeof(ck_ring_buffer_t));
		c->sh[s].ans_buf = calloc(RING_SIZE, sizeof(ck_ring_buffer_t));
		if (!c->sh[s].req_buf || !c->sh[s].ans_buf)
			goto oom;
		ck_ring_init(&c->sh[s].req, RING_SIZE);
		ck_ring_init(&c->sh[s].ans, RING_SIZE);
	}
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0) {
		kn_errf(err, "registry.redis: eventfd: %s", strerror(errno));
		goto fail;
	}
	c->metrics = metrics;
	if (metrics)
		register_metrics(c, metrics, escaped_id);
	return c;
oom:
	kn_errf(err, "registry.redis: out of memory");
fail:
	kn_jr_destroy(c);
	return NULL;
}

int kn_jr_start(struct kn_jr *c, struct kn_err *err)
{
	if (c->started)
		return KN_OK;
	if (pthread_create(&c->thr, NULL, client_main, c) != 0)
		return kn_errf(err, "registry.redis: cannot start the client thread");
	c->started = 1;
	/* wait (bounded) for the first connect, so traffic right after start
	 * does not find the registry down */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + c->cfg->timeout_ns;
	ts.tv_sec = (time_t)(t / 1000000000ull);
	ts.tv_nsec = (long)(t % 1000000000ull);
	pthread_mutex_lock(&c->mu);
	while (!c->first_done)
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) != 0)
			break;
	pthread_mutex_unlock(&c->mu);
	if (!atomic_load(&c->up))
		kn_warn("journey registry: redis %s not reachable yet; journeys from other collectors "
			"are not joined until it is", c->cfg->endpoint);
	return KN_OK;
}

void kn_jr_stop(struct kn_jr *c, uint64_t deadline_ns)
{
	if (!c || !c->started)
		return;
	c->stop_deadline = deadline_ns;
	atomic_store(&c->stop, 1);
	kn_jr_kick(c);
	pthread_join(c->thr, NULL);
	c->started = 0;
}

void kn_jr_destroy(struct kn_jr *c)
{
	if (!c)
		return;
	kn_jr_stop(c, kn_now_ns() + c->cfg->timeout_ns);
	if (c->metrics)
		kn_metrics_collector_remove(c->metrics, collect, c);
	if (c->sh) {
		for (uint32_t s = 0; s < c->nshards; s++) {
			struct kn_jr_msg *m;
			if (c->sh[s].req_buf)
				while (ck_ring_dequeue_spsc(&c->sh[s].req, c->sh[s].req_buf, &m))
					kn_jr_msg_free(m);
			if (c->sh[s].ans_buf)
				while (ck_ring_dequeue_spsc(&c->sh[s].ans, c->sh[s].ans_buf, &m))
					kn_jr_msg_free(m);
			free(c->sh[s].req_buf);
			free(c->sh[s].ans_buf);
		}
	}
	free(c->sh);
	free(c->keys);
	free(c->fly);
	if (c->efd >= 0)
		close(c->efd);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

/* ---- shard side ---- */

int kn_jr_up(const struct kn_jr *c)
{
	return c && atomic_load_explicit(&c->up, memory_order_relaxed);
}

int kn_jr_submit(struct kn_jr *c, uint32_t shard, struct kn_jr_msg *m)
{
	struct jr_shard *sh = &c->sh[shard % c->nshards];
	int lookup = m->op == KN_JR_LOOKUP;
	if (!lookup && !kn_jr_up(c)) {
		kn_counter_add(c->m.drop_wr_down, m->n);
		return -1;
	}
	uint64_t p = atomic_load_explicit(&c->pending, memory_order_relaxed);
	int full = p + m->n > c->cfg->max_pending ||
		   (lookup && atomic_load_explicit(&sh->lookups_out, memory_order_relaxed) >= RING_SIZE - 2);
	if (full) {
		kn_counter_add(lookup ? c->m.drop_lk_pending : c->m.drop_wr_pending, m->n);
		return -1;
	}
	/* counted before the client thread can see (and finish) it */
	atomic_fetch_add_explicit(&c->pending, m->n, memory_order_relaxed);
	if (lookup)
		atomic_fetch_add_explicit(&sh->lookups_out, 1, memory_order_relaxed);
	if (!ck_ring_enqueue_spsc(&sh->req, sh->req_buf, m)) {
		atomic_fetch_sub_explicit(&c->pending, m->n, memory_order_relaxed);
		if (lookup)
			atomic_fetch_sub_explicit(&sh->lookups_out, 1, memory_order_relaxed);
		kn_counter_add(lookup ? c->m.drop_lk_pending : c->m.drop_wr_pending, m->n);
		return -1;
	}
	return 0;
}

struct kn_jr_msg *kn_jr_answer(struct kn_jr *c, uint32_t shard)
{
	struct jr_shard *sh = &c->sh[shard % c->nshards];
	struct kn_jr_msg *m;
	if (!ck_ring_dequeue_spsc(&sh->ans, sh->ans_buf, &m))
		return NULL;
	atomic_fetch_sub_explicit(&c->pending, m->n, memory_order_relaxed);
	atomic_fetch_sub_explicit(&sh->lookups_out, 1, memory_order_relaxed);
	return m;
}

void kn_jr_kick(struct kn_jr *c)
{
	uint64_t one = 1;
	ssize_t r = write(c->efd, &one, sizeof one);
	(void)r;
}
