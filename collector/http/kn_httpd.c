/* SPDX-License-Identifier: Apache-2.0
 * kn_httpd: the socket side of the embedded HTTP server (see kn_httpd.h).
 *
 * Each loop thread owns an epoll set, its own SO_REUSEPORT listener (the
 * kernel spreads new connections over them), an eventfd for shutdown, and
 * the connections it accepted, kept in an intrusive list that the periodic
 * tick scans for the read and idle timeouts (O(connections) per tick, a tick
 * being a quarter of the shortest timeout, at most 1 s). Sockets are
 * level-triggered: EPOLLIN while the output backlog is small, EPOLLOUT while
 * output is pending.
 * The only state shared between threads is the counters (atomics), the
 * stop flag / deadline and, with TLS, the current SSL_CTX (kn_http_tls).
 *
 * TLS: a connection starts in the handshake (SSL_do_handshake; WANT_READ /
 * WANT_WRITE pick the epoll interest), then SSL_read / SSL_write stand in for
 * recv / send. A read that needs a write (or a write that needs a read) adds
 * the other interest until it is retried; a write that would block is
 * retried with the same bytes (tls_wpend). Reads use a buffer larger than a
 * TLS record and no read-ahead, so after SSL_read OpenSSL holds no decrypted
 * bytes that the socket's level trigger would not announce. The lingering
 * close sends close_notify, half-closes and discards what still arrives
 * without decrypting it. */
#include "kn_httpd.h"
#include "kn_http_conn.h"
#include "kn_http_tls.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "../core/kn_clock.h"
#include "../core/kn_log.h"
#include "../core/kn_metrics.h"

#define KN_HTTPD_READ_BUF 65536
#define KN_HTTPD_OUT_HIGH (1u << 20)  /* stop reading beyond this unsent backlog */

struct sconn {
	struct sconn *prev, *next;
	int fd;
	uint32_t events;
	uint64_t last_ns;
	struct kn_http_conn *c;
	/* Lingering close: our answer is sent and the write side shut; the
	 * client may still be sending a body we refused. Reading and
	 * discarding it until the client closes (bounded in time and bytes)
	 * keeps the kernel from answering unread data with a reset that would
	 * destroy the answer before the client reads it. */
	int lingering;
	uint64_t linger_until;
	uint64_t linger_bytes;
	int reading;        /* input is wanted (small output backlog, not closing) */
	/* TLS (ssl != NULL) */
	SSL *ssl;
	int handshaking;
	int tls_broken;     /* a fatal TLS error: no close_notify */
	int tls_shut;       /* close_notify sent */
	int rd_want_w;      /* the last SSL_read needs the socket writable */
	int wr_want_r;      /* the last SSL_write needs the socket readable */
	size_t tls_wpend;   /* length of an SSL_write to retry (0 = none) */
};

#define KN_HTTPD_LINGER_NS (2 * KN_NS_PER_SEC)
#define KN_HTTPD_LINGER_MAX_BYTES (64u << 20)

struct loop {
	struct kn_httpd *s;
	int idx;
	int epfd, lfd, evfd;
	pthread_t tid;
	int started;
	struct sconn *conns;
	uint8_t *rbuf;
};

struct kn_httpd {
	char *endpoint, *name;
	char host[256];
	char port_str[16];
	uint16_t port;
	uint32_t nthreads, max_connections;
	uint64_t idle_ns, header_ns, read_ns; /* KN_HTTPD_NO_TIMEOUT = none */
	struct kn_http_closed_counters closed;
	struct kn_http_conn_cfg cfg;
	struct kn_http_counters counters;
	const struct kn_tls_server_cfg *tls_cfg;
	struct kn_http_tls *tls;
	uint64_t tls_log_sec;  /* atomic: second of the last handshake-failure log line */
	struct loop *loops;
	int started, stopped;
	int stop;              /* atomic */
	uint64_t deadline_ns;  /* atomic */
};

static int parse_endpoint(struct kn_httpd *s, const char *ep, struct kn_err *err)
{
	const char *colon = strrchr(ep, ':');
	if (!colon)
		return kn_errf(err, "%s: endpoint \"%s\": expected host:port", s->name, ep);
	const char *h = ep;
	size_t hl = (size_t)(colon - ep);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= sizeof s->host)
		return kn_errf(err, "%s: endpoint \"%s\": host too long", s->name, ep);
	memcpy(s->host, h, hl);
	s->host[hl] = '\0';
	char *end;
	errno = 0;
	long p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535 || errno)
		return kn_errf(err, "%s: endpoint \"%s\": bad port", s->name, ep);
	s->port = (uint16_t)p;
	return KN_OK;
}

struct kn_httpd *kn_httpd_create(const struct kn_httpd_opts *opts, kn_http_handler h,
				 kn_http_precheck pre, void *ctx, struct kn_err *err)
{
	struct kn_httpd *s = NULL;
	if (!opts || !h) {
		kn_errf(err, "httpd: options and handler are required");
		goto fail;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		kn_errf(err, "httpd: out of memory");
		goto fail;
	}
	s->name = strdup(opts->name ? opts->name : "http");
	s->endpoint = strdup(opts->endpoint ? opts->endpoint : "0.0.0.0:4318");
	if (!s->name || !s->endpoint) {
		kn_errf(err, "httpd: out of memory");
		goto fail;
	}
	if (parse_endpoint(s, s->endpoint, err) != KN_OK)
		goto fail;
	if (opts->threads < 1 || opts->threads > 256) {
		kn_errf(err, "%s: threads: must be 1..256 (got %u)", s->name, opts->threads);
		goto fail;
	}
	s->nthreads = opts->threads;
	s->max_connections = opts->max_connections ? opts->max_connections : 4096;
	s->idle_ns = opts->idle_timeout_ns ? opts->idle_timeout_ns : 60 * KN_NS_PER_SEC;
	s->header_ns = opts->read_header_timeout_ns ? opts->read_header_timeout_ns : 60 * KN_NS_PER_SEC;
	s->read_ns = opts->read_timeout_ns ? opts->read_timeout_ns : 60 * KN_NS_PER_SEC;
	s->closed = opts->closed;
	s->cfg.max_body = opts->max_body ? opts->max_body : (4u << 20);
	s->cfg.decompress = opts->decompress;
	s->cfg.enable_h2c = opts->enable_h2c;
	s->cfg.handler = h;
	s->cfg.precheck = pre;
	s->cfg.refused = opts->refused;
	s->cfg.ctx = ctx;
	s->cfg.counters = &s->counters;
	s->tls_cfg = opts->tls;
	return s;
fail:
	kn_httpd_destroy(s);
	return NULL;
}

static int open_listener(struct kn_httpd *s, uint16_t port, struct kn_err *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char ps[8];
	snprintf(ps, sizeof ps, "%u", port);
	int rc = getaddrinfo(s->host[0] ? s->host : NULL, ps, &hints, &res);
	if (rc != 0) {
		kn_errf(err, "%s: endpoint \"%s\": %s", s->name, s->endpoint, gai_strerror(rc));
		return -1;
	}
	int fd = -1, one = 1;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
			break;
		kn_errf(err, "%s: endpoint \"%s\": %s", s->name, s->endpoint, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void conn_close(struct loop *l, struct sconn *sc)
{
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		l->conns = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, sc->fd, NULL);
	if (sc->ssl) {
		if (!sc->handshaking && !sc->tls_broken && !sc->tls_shut) {
			ERR_clear_error();
			SSL_shutdown(sc->ssl); /* best effort close_notify */
		}
		ERR_clear_error();
		SSL_free(sc->ssl);
	}
	close(sc->fd);
	kn_http_conn_destroy(sc->c);
	free(sc);
	__atomic_fetch_sub(&l->s->counters.connections_open, 1, __ATOMIC_RELAXED);
}

static void set_events(struct loop *l, struct sconn *sc, uint32_t ev)
{
	if (ev != sc->events) {
		struct epoll_event e = {.events = ev, .data.ptr = sc};
		epoll_ctl(l->epfd, EPOLL_CTL_MOD, sc->fd, &e);
		sc->events = ev;
	}
}

/* Sends from p: bytes sent, 0 when the socket is full, -1 on error. */
static ssize_t conn_send(struct sconn *sc, const uint8_t *p, size_t len)
{
	if (!sc->ssl) {
		for (;;) {
			ssize_t n = send(sc->fd, p, len, MSG_NOSIGNAL);
			if (n >= 0)
				return n;
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
	}
	/* a retry after WANT_* repeats the same bytes: the output buffer only
	 * grows at its end until kn_http_conn_sent */
	size_t chunk = sc->tls_wpend && sc->tls_wpend <= len ? sc->tls_wpend : len;
	if (chunk > INT32_MAX)
		chunk = INT32_MAX;
	sc->wr_want_r = 0;
	ERR_clear_error();
	int n = SSL_write(sc->ssl, p, (int)chunk);
	if (n > 0) {
		sc->tls_wpend = 0;
		return n;
	}
	int e = SSL_get_error(sc->ssl, n);
	if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
		sc->tls_wpend = chunk;
		sc->wr_want_r = e == SSL_ERROR_WANT_READ;
		return 0;
	}
	sc->tls_broken = 1;
	ERR_clear_error();
	return -1;
}

/* Receives into buf: bytes, 0 when nothing is there now, -1 on EOF or error. */
static ssize_t conn_recv(struct sconn *sc, uint8_t *buf, size_t cap)
{
	if (!sc->ssl) {
		for (;;) {
			ssize_t n = recv(sc->fd, buf, cap, 0);
			if (n > 0)
				return n;
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return 0;
			return -1;
		}
	}
	sc->rd_want_w = 0;
	ERR_clear_error();
	int n = SSL_read(sc->ssl, buf, (int)cap);
	if (n > 0)
		return n;
	switch (SSL_get_error(sc->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_WANT_WRITE:
		sc->rd_want_w = 1;
		return 0;
	case SSL_ERROR_ZERO_RETURN: /* the peer's close_notify: EOF */
		return -1;
	default:
		sc->tls_broken = 1;
		ERR_clear_error();
		return -1;
	}
}

/* Writes what it can; updates the epoll interest. Returns -1 if closed. */
static int conn_flush(struct loop *l, struct sconn *sc)
{
	if (sc->lingering)
		return -1;
	if (sc->handshaking)
		return 0;
	size_t len;
	const uint8_t *p;
	while ((p = kn_http_conn_out(sc->c, &len)), len > 0) {
		ssize_t n = conn_send(sc, p, len);
		if (n < 0) {
			conn_close(l, sc);
			return -1;
		}
		if (n == 0)
			break;
		kn_http_conn_sent(sc->c, (size_t)n);
	}
	if (len == 0 && kn_http_conn_closing(sc->c)) {
		/* a refusal may arrive while the client is still sending its body:
		 * half-close, then linger (see struct sconn) */
		if (sc->ssl && !sc->tls_broken && !sc->tls_shut) {
			ERR_clear_error();
			SSL_shutdown(sc->ssl); /* best effort close_notify */
			ERR_clear_error();
			sc->tls_shut = 1;
		}
		sc->reading = 0;
		shutdown(sc->fd, SHUT_WR);
		sc->lingering = 1;
		sc->linger_until = kn_now_ns() + KN_HTTPD_LINGER_NS;
		if (sc->events != EPOLLIN) {
			struct epoll_event e = {.events = EPOLLIN, .data.ptr = sc};
			epoll_ctl(l->epfd, EPOLL_CTL_MOD, sc->fd, &e);
			sc->events = EPOLLIN;
		}
		return -1;
	}
	uint32_t ev = 0;
	sc->reading = len < KN_HTTPD_OUT_HIGH && !kn_http_conn_closing(sc->c);
	if (sc->reading || sc->wr_want_r)
		ev |= EPOLLIN;
	if (len > 0 || sc->rd_want_w)
		ev |= EPOLLOUT;
	set_events(l, sc, ev);
	return 0;
}

/* A lingering connection: discard what arrives until the client closes,
 * the linger time passes, or too much arrived. */
static void conn_linger(struct loop *l, struct sconn *sc)
{
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(sc->fd, l->rbuf, KN_HTTPD_READ_BUF, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		sc->linger_bytes += n > 0 ? (uint64_t)n : 0;
		if (n <= 0 || sc->linger_bytes > KN_HTTPD_LINGER_MAX_BYTES) {
			conn_close(l, sc);
			return;
		}
	}
}

/* Returns -1 when the connection was closed or is lingering. */
static int conn_read(struct loop *l, struct sconn *sc)
{
	if (sc->lingering) {
		conn_linger(l, sc);
		return -1;
	}
	for (int i = 0; i < 16; i++) {
		ssize_t n = conn_recv(sc, l->rbuf, KN_HTTPD_READ_BUF);
		if (n == 0)
			break;
		if (n < 0) {
			conn_close(l, sc);
			return -1;
		}
		sc->last_ns = kn_now_ns();
		kn_http_conn_feed(sc->c, l->rbuf, (size_t)n);
		if (conn_flush(l, sc) != 0)
			return -1;
		if (!sc->reading)
			break;
		/* cleartext: a short read emptied the socket. TLS reads one
		 * record at a time: go on until WANT_READ (or the fairness cap;
		 * the level trigger brings the socket's rest) */
		if (!sc->ssl && (size_t)n < KN_HTTPD_READ_BUF)
			break;
	}
	return 0;
}

static void handshake_failed(struct loop *l, struct sconn *sc, int e)
{
	struct kn_httpd *s = l->s;
	__atomic_fetch_add(&s->counters.tls_handshake_failures, 1, __ATOMIC_RELAXED);
	char es[256];
	if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0)
		snprintf(es, sizeof es, "connection closed by the client");
	else
		kn_http_tls_errstr(es, sizeof es);
	ERR_clear_error();
	/* one line per second at most: a scanner must not flood the log */
	uint64_t sec = kn_now_ns() / KN_NS_PER_SEC;
	uint64_t prev = __atomic_load_n(&s->tls_log_sec, __ATOMIC_RELAXED);
	if (sec != prev && __atomic_compare_exchange_n(&s->tls_log_sec, &prev, sec, 0,
						       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		kn_warn("%s: TLS handshake failed: %s", s->name, es);
	sc->tls_broken = 1;
	conn_close(l, sc);
}

/* Drives the handshake; then serves what already arrived. -1 if closed. */
static int conn_handshake(struct loop *l, struct sconn *sc)
{
	ERR_clear_error();
	int r = SSL_do_handshake(sc->ssl);
	if (r == 1) {
		sc->handshaking = 0;
		sc->reading = 1;
		if (conn_read(l, sc) != 0)
			return -1;
		return conn_flush(l, sc);
	}
	int e = SSL_get_error(sc->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		set_events(l, sc, EPOLLIN);
		return 0;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		set_events(l, sc, EPOLLOUT);
		return 0;
	}
	handshake_failed(l, sc, e);
	return -1;
}

/* An event on a TLS connection. SSL_read / SSL_write are tried whenever
 * they may make progress (a spurious try just says WANT_*). */
static void tls_event(struct loop *l, struct sconn *sc, uint32_t ev)
{
	if (sc->lingering) {
		conn_linger(l, sc);
		return;
	}
	if (sc->handshaking) {
		conn_handshake(l, sc);
		return;
	}
	if (sc->reading || sc->rd_want_w) {
		if (conn_read(l, sc) != 0)
			return;
	} else if ((ev & (EPOLLERR | EPOLLHUP)) && !(ev & EPOLLOUT)) {
		conn_close(l, sc);
		return;
	}
	if (conn_flush(l, sc) != 0)
		return;
	/* reading resumed with decrypted bytes already buffered (not expected,
	 * see the top of the file, but cheap to honour) */
	if (sc->reading && SSL_pending(sc->ssl) > 0 && conn_read(l, sc) == 0)
		conn_flush(l, sc);
}

static void do_accept(struct loop *l)
{
	struct kn_httpd *s = l->s;
	for (;;) {
		int fd = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or a transient error: try on the next event */
		uint64_t open = __atomic_add_fetch(&s->counters.connections_open, 1, __ATOMIC_RELAXED);
		if (open > s->max_connections || __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
			__atomic_fetch_sub(&s->counters.connections_open, 1, __ATOMIC_RELAXED);
			__atomic_fetch_add(&s->counters.connections_refused, 1, __ATOMIC_RELAXED);
			close(fd);
			continue;
		}
		__atomic_fetch_add(&s->counters.connections_accepted, 1, __ATOMIC_RELAXED);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct sconn *sc = calloc(1, sizeof *sc);
		if (sc)
			sc->c = kn_http_conn_create(&s->cfg, l->idx);
		if (!sc || !sc->c) {
			if (sc)
				free(sc);
			close(fd);
			__atomic_fetch_sub(&s->counters.connections_open, 1, __ATOMIC_RELAXED);
			continue;
		}
		sc->fd = fd;
		sc->events = EPOLLIN;
		sc->reading = 1;
		sc->last_ns = kn_now_ns(); /* the handshake counts as the headers' time (see conn_timed_out) */
		if (s->tls) {
			sc->ssl = kn_http_tls_new_conn(s->tls, fd);
			sc->handshaking = 1;
		}
		struct epoll_event e = {.events = EPOLLIN, .data.ptr = sc};
		if ((s->tls && !sc->ssl) || epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
			SSL_free(sc->ssl);
			kn_http_conn_destroy(sc->c);
			free(sc);
			close(fd);
			__atomic_fetch_sub(&s->counters.connections_open, 1, __ATOMIC_RELAXED);
			continue;
		}
		sc->next = l->conns;
		if (l->conns)
			l->conns->prev = sc;
		l->conns = sc;
	}
}

/* The read timeouts (see kn_httpd.h): 1 when it closed the connection. A
 * timed-out client gets no answer, as from Go's server: it is either gone or
 * feeding us a byte at a time on purpose. */
static int conn_timed_out(struct loop *l, struct sconn *sc, uint64_t now)
{
	struct kn_httpd *s = l->s;
	uint64_t since = now;
	enum kn_http_phase ph = kn_http_conn_phase(sc->c, &since);
	uint64_t age = now > since ? now - since : 0;
	uint64_t *ctr = NULL;
	struct kn_metric *m = NULL;
	if (ph == KN_HTTP_PHASE_HEADERS && age >= s->header_ns) {
		ctr = &s->counters.read_header_timeouts;
		m = s->closed.read_header_timeout;
	} else if (ph != KN_HTTP_PHASE_IDLE && age >= s->read_ns) {
		ctr = &s->counters.read_timeouts;
		m = s->closed.read_timeout;
	} else if (now - sc->last_ns >= s->idle_ns ||
		   (ph == KN_HTTP_PHASE_IDLE && age >= s->idle_ns)) {
		ctr = &s->counters.idle_closed;
		m = s->closed.idle_timeout;
	}
	if (!ctr)
		return 0;
	__atomic_fetch_add(ctr, 1, __ATOMIC_RELAXED);
	if (m)
		kn_counter_add(m, 1);
	conn_close(l, sc);
	return 1;
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	struct kn_httpd *s = l->s;
	uint64_t tick_ns = s->idle_ns;
	if (s->header_ns < tick_ns)
		tick_ns = s->header_ns;
	if (s->read_ns < tick_ns)
		tick_ns = s->read_ns;
	tick_ns /= 4;
	if (tick_ns < 5 * KN_NS_PER_MS)
		tick_ns = 5 * KN_NS_PER_MS;
	if (tick_ns > KN_NS_PER_SEC)
		tick_ns = KN_NS_PER_SEC;
	int draining = 0;
	uint64_t next_scan = 0;
	struct epoll_event evs[64];
	for (;;) {
		int timeout_ms = draining ? 5 : (int)(tick_ns / KN_NS_PER_MS);
		int n = epoll_wait(l->epfd, evs, 64, timeout_ms);
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &l->lfd) {
				do_accept(l);
			} else if (p == &l->evfd) {
				uint64_t v;
				ssize_t r = read(l->evfd, &v, sizeof v);
				(void)r;
			} else {
				struct sconn *sc = p;
				if (sc->ssl) {
					tls_event(l, sc, evs[i].events);
					continue;
				}
				if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
					/* reading also notices errors and hangups */
					int before = (sc->events & EPOLLIN) != 0;
					if (before) {
						conn_read(l, sc);
						continue;
					}
					if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
						conn_close(l, sc);
						continue;
					}
				}
				if (evs[i].events & EPOLLOUT)
					conn_flush(l, sc);
			}
		}
		uint64_t now = kn_now_ns();
		if (!draining)
			kn_http_tls_tick(s->tls, now);
		if (!draining && __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
			draining = 1;
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->lfd, NULL);
			close(l->lfd);
			l->lfd = -1;
			for (struct sconn *sc = l->conns, *nx; sc; sc = nx) {
				nx = sc->next;
				kn_http_conn_drain(sc->c);
				conn_flush(l, sc);
			}
		}
		uint64_t deadline = __atomic_load_n(&s->deadline_ns, __ATOMIC_ACQUIRE);
		/* once per tick, not per wakeup: thousands of trickling clients
		 * wake the loop thousands of times a second */
		if (!draining && now < next_scan)
			continue;
		next_scan = now + tick_ns;
		for (struct sconn *sc = l->conns, *nx; sc; sc = nx) {
			nx = sc->next;
			if (sc->lingering) {
				if (draining || now >= sc->linger_until)
					conn_close(l, sc);
			} else if (draining && (now >= deadline || !kn_http_conn_busy(sc->c))) {
				conn_close(l, sc);
			} else {
				conn_timed_out(l, sc, now);
			}
		}
		if (draining && !l->conns)
			break;
	}
	kn_http_msg_cache_release();
	return NULL;
}

int kn_httpd_start(struct kn_httpd *s, struct kn_err *err)
{
	if (s->started)
		return kn_errf(err, "%s: already started", s->name);
	if (s->tls_cfg && !s->tls) {
		s->tls = kn_http_tls_create(s->tls_cfg, s->name, s->cfg.enable_h2c, err);
		if (!s->tls)
			return KN_ERR;
	}
	s->loops = calloc(s->nthreads, sizeof *s->loops);
	if (!s->loops)
		return kn_errf(err, "%s: out of memory", s->name);
	s->started = 1;
	for (uint32_t i = 0; i < s->nthreads; i++) {
		struct loop *l = &s->loops[i];
		l->s = s;
		l->idx = (int)i;
		l->lfd = l->evfd = l->epfd = -1;
	}
	uint16_t port = s->port;
	for (uint32_t i = 0; i < s->nthreads; i++) {
		struct loop *l = &s->loops[i];
		l->lfd = open_listener(s, port, err);
		if (l->lfd < 0)
			goto fail;
		if (port == 0) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof ss;
			if (getsockname(l->lfd, (struct sockaddr *)&ss, &sl) != 0) {
				kn_errf(err, "%s: getsockname: %s", s->name, strerror(errno));
				goto fail;
			}
			port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							       : ((struct sockaddr_in *)&ss)->sin_port);
		}
		l->epfd = epoll_create1(EPOLL_CLOEXEC);
		l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		l->rbuf = malloc(KN_HTTPD_READ_BUF);
		if (l->epfd < 0 || l->evfd < 0 || !l->rbuf) {
			kn_errf(err, "%s: event loop setup: %s", s->name, strerror(errno));
			goto fail;
		}
		struct epoll_event e1 = {.events = EPOLLIN, .data.ptr = &l->lfd};
		struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = &l->evfd};
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->lfd, &e1) != 0 ||
		    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &e2) != 0) {
			kn_errf(err, "%s: epoll: %s", s->name, strerror(errno));
			goto fail;
		}
	}
	s->port = port;
	for (uint32_t i = 0; i < s->nthreads; i++) {
		if (pthread_create(&s->loops[i].tid, NULL, loop_main, &s->loops[i]) != 0) {
			kn_errf(err, "%s: cannot start thread %u", s->name, i);
			goto fail;
		}
		s->loops[i].started = 1;
	}
	kn_log_event("listening %s %s:%u", s->name, s->host[0] ? s->host : "0.0.0.0", s->port);
	return KN_OK;
fail:
	kn_httpd_shutdown(s, 0);
	return KN_ERR;
}

uint16_t kn_httpd_port(const struct kn_httpd *s)
{
	return s && s->started ? s->port : 0;
}

void kn_httpd_shutdown(struct kn_httpd *s, uint64_t deadline_ns)
{
	if (!s || !s->started || s->stopped)
		return;
	s->stopped = 1;
	__atomic_store_n(&s->deadline_ns, deadline_ns, __ATOMIC_RELEASE);
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	for (uint32_t i = 0; i < s->nthreads; i++) {
		struct loop *l = &s->loops[i];
		if (l->started) {
			uint64_t one = 1;
			ssize_t r = write(l->evfd, &one, sizeof one);
			(void)r;
		}
	}
	for (uint32_t i = 0; i < s->nthreads; i++) {
		struct loop *l = &s->loops[i];
		if (l->started)
			pthread_join(l->tid, NULL);
		l->started = 0;
		while (l->conns)
			conn_close(l, l->conns);
		if (l->lfd >= 0)
			close(l->lfd);
		if (l->evfd >= 0)
			close(l->evfd);
		if (l->epfd >= 0)
			close(l->epfd);
		l->lfd = l->evfd = l->epfd = -1;
		free(l->rbuf);
		l->rbuf = NULL;
	}
}

void kn_httpd_destroy(struct kn_httpd *s)
{
	if (!s)
		return;
	kn_httpd_shutdown(s, 0);
	kn_http_tls_destroy(s->tls);
	free(s->loops);
	free(s->name);
	free(s->endpoint);
	free(s);
}

void kn_httpd_stats(const struct kn_httpd *s, struct kn_httpd_stats *out)
{
	memset(out, 0, sizeof *out);
	if (!s)
		return;
	const struct kn_http_counters *c = &s->counters;
	out->connections_accepted = __atomic_load_n(&c->connections_accepted, __ATOMIC_RELAXED);
	out->connections_open = __atomic_load_n(&c->connections_open, __ATOMIC_RELAXED);
	out->requests = __atomic_load_n(&c->requests, __ATOMIC_RELAXED);
	out->bad_requests = __atomic_load_n(&c->bad_requests, __ATOMIC_RELAXED);
	out->too_large = __atomic_load_n(&c->too_large, __ATOMIC_RELAXED);
	out->decompress_errors = __atomic_load_n(&c->decompress_errors, __ATOMIC_RELAXED);
	out->connections_refused = __atomic_load_n(&c->connections_refused, __ATOMIC_RELAXED);
	out->idle_closed = __atomic_load_n(&c->idle_closed, __ATOMIC_RELAXED);
	out->read_header_timeouts = __atomic_load_n(&c->read_header_timeouts, __ATOMIC_RELAXED);
	out->read_timeouts = __atomic_load_n(&c->read_timeouts, __ATOMIC_RELAXED);
	out->tls_handshake_failures = __atomic_load_n(&c->tls_handshake_failures, __ATOMIC_RELAXED);
	out->tls_reloads = kn_http_tls_reloads(s->tls, &out->tls_reload_failures);
}
