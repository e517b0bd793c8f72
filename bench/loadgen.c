/* SPDX-License-Identifier: Apache-2.0
 * loadgen: an OTLP load generator that behaves like an SDK exporter, for
 * measuring kansatsu or any other OTLP collector (see bench/README.md).
 *
 * Transports: OTLP/gRPC on libgrpc's core client API (one channel per
 * connection, forced onto its own TCP connection with a local subchannel
 * pool; -m workers share a channel as concurrent HTTP/2 streams), or
 * OTLP/HTTP protobuf on libcurl (one easy handle = one keep-alive
 * connection per worker; HTTP/1.1, or HTTP/2 with prior knowledge; optional
 * gzip). With --tls-ca both speak TLS, verifying the server against that CA:
 * gRPC with libgrpc's SSL credentials, HTTP as https:// on libcurl's
 * OpenSSL (HTTP/2 then by ALPN); a connection handshakes once and is kept. Bodies come from the kn_w1 generator: W1 by default, or the shape
 * the flags give (spans per trace, depth, attributes, events, errors,
 * durations, services, async journeys).
 *
 * Pacing: request k (a global counter) is due at start + k * spans / rate;
 * a worker sleeps until its request is due, so with --rate the offered load
 * is fixed (open loop, bounded by the workers' concurrency) and without it
 * every worker sends as fast as its requests are answered. The run stops
 * claiming requests at --duration or after --spans spans, whichever first.
 *
 * Retries: as an SDK would (OTLP spec): HTTP 429/502/503/504 and transport
 * errors, gRPC UNAVAILABLE / CANCELLED / DEADLINE_EXCEEDED / ABORTED /
 * OUT_OF_RANGE / DATA_LOSS, and RESOURCE_EXHAUSTED only with RetryInfo, are
 * retried after the server's hint (Retry-After seconds, RetryInfo delay) or
 * else exponential backoff with jitter (100 ms doubling to 5 s), until
 * --retry-max seconds after the first attempt. Every retry is counted by
 * reason; a request that runs out of retries, or is refused for good, counts
 * its spans as refused under the last reason.
 *
 * Threads: one per worker (connections x streams) plus the main thread,
 * which prints a progress line each second on stderr. Shared counters are
 * relaxed atomics; each worker owns its generator, its latency histogram
 * (merged at the end) and its connection. A refusal reason is recorded under
 * a mutex (refusals are rare and not a hot path). Per request the worker
 * builds and packs a fresh body (a malloc), which costs a few hundred
 * microseconds of the load generator's own CPU (reported in the summary);
 * --pool N packs N bodies per worker up front and cycles them instead, for
 * throughput runs on small machines where the generator would compete with
 * the collector for cores. With --stamp as well, each send re-stamps its
 * pooled body in place (kn_w1_patch: new trace ids, times shifted so the
 * roots end now; a few microseconds), so latency runs get fresh traces
 * without paying for a build per request. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <zlib.h>

#include "collector/core/kn_clock.h"
#include "collector/grpc/kn_grpc_absl.h"
#include "exporters/common/kn_export_status.h"
#include "kn_hist.h"
#include "kn_w1.h"
#include "kn_w1_patch.h"

#define EXPORT_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define MAX_WORKERS 256
#define MAX_REASONS 32
#define BACKOFF_MIN_NS (100 * KN_NS_PER_MS)
#define BACKOFF_MAX_NS (5 * KN_NS_PER_SEC)

struct opts {
	int grpc;                  /* 1 gRPC, 0 HTTP */
	char target[256];          /* host:port */
	const char *path;          /* HTTP path */
	int h2, gzip, stamp, quiet;
	unsigned pool;             /* bodies pre-built per worker and cycled; 0 = fresh each */
	unsigned conns, streams;
	double rate;               /* spans/s; 0 = as fast as accepted */
	double duration_s;         /* run bound */
	uint64_t max_spans;        /* 0 = no span bound */
	double timeout_s;          /* per attempt */
	double retry_max_s;        /* retry budget per request */
	uint64_t seed;
	const char *json;
	const char *tls_ca;        /* PEM CA file: TLS on; NULL = cleartext */
	struct kn_w1_shape shape;
};

struct reason {
	char name[40];
	uint64_t refused_spans, retries;
};

struct run {
	struct opts o;
	uint64_t t0, end;          /* monotonic ns */
	_Atomic uint64_t next_req;
	_Atomic uint64_t requests, requests_ok, spans_sent, spans_accepted, spans_rejected,
		spans_refused, retries, bytes_sent, inflight;
	_Atomic int stop;          /* SIGINT / SIGTERM */
	pthread_mutex_t mu;        /* reasons */
	struct reason reasons[MAX_REASONS];
	unsigned nreasons;
	grpc_channel **channels;   /* one per connection */
};

struct worker {
	struct run *run;
	unsigned id, conn;
	pthread_t th;
	int started;
	struct kn_w1 *w;
	struct kn_hist hist;       /* attempt latency, ns */
	grpc_completion_queue *cq;
	CURL *curl;
	struct curl_slist *hdrs;
	uint8_t *resp;             /* HTTP response body */
	size_t resp_len, resp_cap;
	uint64_t retry_after_ns;   /* HTTP Retry-After of the last response, 0 = none */
	z_stream z;
	int z_ready;
	uint8_t *zbuf;
	size_t zcap;
	uint8_t **pool;            /* --pool: pre-built bodies */
	size_t *pool_len;
	struct kn_w1_stats *pool_st;
	struct kn_w1_patch *pool_patch; /* --pool with --stamp: where to re-stamp them */
};

enum outcome { OUT_OK, OUT_RETRY, OUT_FAIL };

static void note_reason(struct run *r, const char *why, uint64_t refused_spans, int retry)
{
	pthread_mutex_lock(&r->mu);
	unsigned i;
	for (i = 0; i < r->nreasons; i++)
		if (strcmp(r->reasons[i].name, why) == 0)
			break;
	if (i == r->nreasons && r->nreasons < MAX_REASONS)
		snprintf(r->reasons[r->nreasons++].name, sizeof r->reasons[0].name, "%s", why);
	if (i == MAX_REASONS)
		i = MAX_REASONS - 1;   /* the last slot collects the overflow */
	r->reasons[i].refused_spans += refused_spans;
	r->reasons[i].retries += retry;
	pthread_mutex_unlock(&r->mu);
}

static const char *grpc_code_name(grpc_status_code c)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
		"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
		"UNAUTHENTICATED",
	};
	return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "?";
}

/* ---- gRPC ---------------------------------------------------------------- */

static enum outcome grpc_send(struct worker *wk, const uint8_t *body, size_t len, uint32_t nspans,
			      uint64_t *rejected, uint64_t *hint_ns, char *why, size_t whycap)
{
	struct run *r = wk->run;
	enum outcome out = OUT_RETRY;
	grpc_slice s = grpc_slice_from_copied_buffer((const char *)body, len);
	grpc_byte_buffer *msg = grpc_raw_byte_buffer_create(&s, 1), *resp = NULL;
	grpc_slice_unref(s);
	grpc_metadata_array init_md, trail_md;
	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trail_md);
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	const char *errstr = NULL;
	gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				       gpr_time_from_nanos((int64_t)(r->o.timeout_s * 1e9), GPR_TIMESPAN));
	grpc_slice method = grpc_slice_from_static_string(EXPORT_METHOD);
	grpc_call *call = grpc_channel_create_call(r->channels[wk->conn], NULL, GRPC_PROPAGATE_DEFAULTS,
						   wk->cq, method, NULL, dl, NULL);
	(void)nspans;
	if (!call || !msg) {
		snprintf(why, whycap, "grpc call setup");
		goto done;
	}
	grpc_op ops[6];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = msg;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &resp;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	ops[5].data.recv_status_on_client.error_string = &errstr;
	if (grpc_call_start_batch(call, ops, 6, ops, NULL) != GRPC_CALL_OK) {
		snprintf(why, whycap, "grpc call setup");
		goto done;
	}
	grpc_event ev = grpc_completion_queue_pluck(wk->cq, ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (ev.type != GRPC_OP_COMPLETE || !ev.success) {
		snprintf(why, whycap, "grpc call failed");
		goto done;
	}
	if (status == GRPC_STATUS_OK) {
		out = OUT_OK;
		if (resp) {
			grpc_byte_buffer_reader rd;
			if (grpc_byte_buffer_reader_init(&rd, resp)) {
				grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
				int64_t rej = 0;
				char m[8];
				if (kn_export_response_parse(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all),
							     &rej, m, sizeof m) == 0 && rej > 0)
					*rejected = (uint64_t)rej;
				grpc_slice_unref(all);
				grpc_byte_buffer_reader_destroy(&rd);
			}
		}
		goto done;
	}
	struct kn_rpc_status st = {0};
	for (size_t i = 0; i < trail_md.count; i++)
		if (grpc_slice_str_cmp(trail_md.metadata[i].key, "grpc-status-details-bin") == 0) {
			grpc_slice v = trail_md.metadata[i].value;
			kn_rpc_status_parse(GRPC_SLICE_START_PTR(v), GRPC_SLICE_LENGTH(v), &st);
			break;
		}
	snprintf(why, whycap, "grpc %s", grpc_code_name(status));
	switch (status) {
	case GRPC_STATUS_UNAVAILABLE:
	case GRPC_STATUS_CANCELLED:
	case GRPC_STATUS_DEADLINE_EXCEEDED:
	case GRPC_STATUS_ABORTED:
	case GRPC_STATUS_OUT_OF_RANGE:
	case GRPC_STATUS_DATA_LOSS:
		out = OUT_RETRY;
		break;
	case GRPC_STATUS_RESOURCE_EXHAUSTED:
		out = st.has_retry_info ? OUT_RETRY : OUT_FAIL;
		break;
	default:
		out = OUT_FAIL;
	}
	if (st.has_retry_info)
		*hint_ns = st.retry_delay_ns;
done:
	if (call)
		grpc_call_unref(call);
	if (msg)
		grpc_byte_buffer_destroy(msg);
	if (resp)
		grpc_byte_buffer_destroy(resp);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trail_md);
	grpc_slice_unref(details);
	gpr_free((void *)errstr);
	return out;
}

/* ---- HTTP ---------------------------------------------------------------- */

static size_t http_body_cb(char *p, size_t sz, size_t n, void *ud)
{
	struct worker *wk = ud;
	size_t add = sz * n;
	if (wk->resp_len + add > wk->resp_cap) {
		size_t cap = (wk->resp_len + add) * 2;
		uint8_t *q = realloc(wk->resp, cap);
		if (!q)
			return 0;
		wk->resp = q;
		wk->resp_cap = cap;
	}
	memcpy(wk->resp + wk->resp_len, p, add);
	wk->resp_len += add;
	return add;
}

static size_t http_header_cb(char *p, size_t sz, size_t n, void *ud)
{
	struct worker *wk = ud;
	size_t len = sz * n;
	if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
		char v[32];
		size_t vl = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
		memcpy(v, p + 12, vl);
		v[vl] = '\0';
		char *end;
		unsigned long s = strtoul(v, &end, 10);
		if (end != v)   /* delay-seconds; an HTTP-date falls back to backoff */
			wk->retry_after_ns = (uint64_t)s * KN_NS_PER_SEC;
	}
	return len;
}

static int gzip_body(struct worker *wk, const uint8_t *in, size_t len, size_t *out_len)
{
	if (!wk->z_ready) {
		if (deflateInit2(&wk->z, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return -1;
		wk->z_ready = 1;
	} else if (deflateReset(&wk->z) != Z_OK) {
		return -1;
	}
	size_t need = deflateBound(&wk->z, len);
	if (need > wk->zcap) {
		uint8_t *q = realloc(wk->zbuf, need);
		if (!q)
			return -1;
		wk->zbuf = q;
		wk->zcap = need;
	}
	wk->z.next_in = (Bytef *)in;
	wk->z.avail_in = (uInt)len;
	wk->z.next_out = wk->zbuf;
	wk->z.avail_out = (uInt)wk->zcap;
	if (deflate(&wk->z, Z_FINISH) != Z_STREAM_END)
		return -1;
	*out_len = wk->zcap - wk->z.avail_out;
	return 0;
}

static enum outcome http_send(struct worker *wk, const uint8_t *body, size_t len,
			      uint64_t *rejected, uint64_t *hint_ns, char *why, size_t whycap)
{
	wk->resp_len = 0;
	wk->retry_after_ns = 0;
	curl_easy_setopt(wk->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(wk->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	CURLcode cc = curl_easy_perform(wk->curl);
	if (cc != CURLE_OK) {
		snprintf(why, whycap, "http transport: %s", cc == CURLE_OPERATION_TIMEDOUT ? "timeout"
				      : cc == CURLE_COULDNT_CONNECT ? "connect" : "error");
		return OUT_RETRY;
	}
	long code = 0;
	curl_easy_getinfo(wk->curl, CURLINFO_RESPONSE_CODE, &code);
	if (code >= 200 && code < 300) {
		int64_t rej = 0;
		char m[8];
		const char *ct = NULL;
		curl_easy_getinfo(wk->curl, CURLINFO_CONTENT_TYPE, &ct);
		if (wk->resp_len && ct && strstr(ct, "protobuf") &&
		    kn_export_response_parse(wk->resp, wk->resp_len, &rej, m, sizeof m) == 0 && rej > 0)
			*rejected = (uint64_t)rej;
		return OUT_OK;
	}
	snprintf(why, whycap, "http %ld", code);
	*hint_ns = wk->retry_after_ns;
	return code == 429 || code == 502 || code == 503 || code == 504 ? OUT_RETRY : OUT_FAIL;
}

/* ---- worker -------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Sleeps until monotonic time `until`, in slices so a stop is noticed. */
static void sleep_until(struct run *r, uint64_t until)
{
	for (;;) {
		uint64_t now = kn_now_ns();
		if (now >= until || atomic_load(&r->stop))
			return;
		uint64_t d = until - now;
		if (d > 100 * KN_NS_PER_MS)
			d = 100 * KN_NS_PER_MS;
		struct timespec ts = {.tv_sec = (time_t)(d / KN_NS_PER_SEC), .tv_nsec = (long)(d % KN_NS_PER_SEC)};
		nanosleep(&ts, NULL);
	}
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct run *r = wk->run;
	const uint32_t S = r->o.shape.spans;
	uint64_t jitter = r->o.seed ^ (0x1234567ull * (wk->id + 1));
	uint64_t stamp_rng = r->o.seed * 0x9e3779b97f4a7c15ull ^ (0x7654321ull * (wk->id + 1));
	for (;;) {
		if (atomic_load(&r->stop))
			break;
		uint64_t k = atomic_fetch_add(&r->next_req, 1);
		if (r->o.max_spans && k * S >= r->o.max_spans)
			break;
		uint64_t due = r->t0;
		if (r->o.rate > 0)
			due += (uint64_t)((double)k * S / r->o.rate * 1e9);
		if (due >= r->end || kn_now_ns() >= r->end)
			break;
		sleep_until(r, due);
		if (atomic_load(&r->stop))
			break;

		if (r->o.stamp && !r->o.pool)
			kn_w1_set_end(wk->w, kn_unix_ns());
		size_t len = 0;
		struct kn_w1_stats st;
		uint8_t *body = NULL, *owned = NULL;
		if (r->o.pool) {
			unsigned j = (unsigned)(k % r->o.pool);
			body = wk->pool[j];
			len = wk->pool_len[j];
			st = wk->pool_st[j];
			if (wk->pool_patch) { /* fresh trace ids, roots ending now */
				uint64_t key[2] = {rng_next(&stamp_rng), rng_next(&stamp_rng)};
				kn_w1_patch_apply(&wk->pool_patch[j], body, (const uint8_t *)key,
						  kn_unix_ns());
			}
		} else {
			body = owned = kn_w1_pack(wk->w, k, &len, &st);
		}
		if (!body) {
			fprintf(stderr, "loadgen: out of memory building request %" PRIu64 "\n", k);
			atomic_store(&r->stop, 1);
			break;
		}
		const uint8_t *send = body;
		size_t send_len = len;
		if (r->o.gzip && !r->o.grpc) {
			if (gzip_body(wk, body, len, &send_len) != 0) {
				fprintf(stderr, "loadgen: gzip failed\n");
				free(owned);
				atomic_store(&r->stop, 1);
				break;
			}
			send = wk->zbuf;
		}
		atomic_fetch_add(&r->requests, 1);
		atomic_fetch_add(&r->spans_sent, st.spans);
		atomic_fetch_add(&r->inflight, 1);
		uint64_t first = kn_now_ns(), backoff = BACKOFF_MIN_NS;
		for (;;) {
			uint64_t rejected = 0, hint = 0, a0 = kn_now_ns();
			char why[40] = "";
			atomic_fetch_add(&r->bytes_sent, send_len);
			enum outcome out = r->o.grpc
				? grpc_send(wk, send, send_len, st.spans, &rejected, &hint, why, sizeof why)
				: http_send(wk, send, send_len, &rejected, &hint, why, sizeof why);
			kn_hist_add(&wk->hist, kn_now_ns() - a0);
			if (out == OUT_OK) {
				if (rejected > st.spans)
					rejected = st.spans;
				atomic_fetch_add(&r->requests_ok, 1);
				atomic_fetch_add(&r->spans_accepted, st.spans - rejected);
				atomic_fetch_add(&r->spans_rejected, rejected);
				break;
			}
			uint64_t delay = hint;
			if (!delay) {   /* backoff with +-50% jitter */
				delay = backoff / 2 + rng_next(&jitter) % (backoff + 1);
				backoff = backoff * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : backoff * 2;
			}
			uint64_t budget_end = first + (uint64_t)(r->o.retry_max_s * 1e9);
			if (out == OUT_FAIL || atomic_load(&r->stop) || kn_now_ns() + delay > budget_end) {
				note_reason(r, why, st.spans, 0);
				atomic_fetch_add(&r->spans_refused, st.spans);
				break;
			}
			note_reason(r, why, 0, 1);
			atomic_fetch_add(&r->retries, 1);
			sleep_until(r, kn_now_ns() + delay);
		}
		atomic_fetch_sub(&r->inflight, 1);
		free(owned);
	}
	return NULL;
}

static int worker_init(struct worker *wk, struct run *r, unsigned id)
{
	wk->run = r;
	wk->id = id;
	wk->conn = r->o.grpc ? id % r->o.conns : id;
	kn_hist_init(&wk->hist);
	if (!(wk->w = kn_w1_new_shape(r->o.seed * 1000003ull + id, &r->o.shape)))
		return -1;
	if (r->o.pool) {
		wk->pool = calloc(r->o.pool, sizeof *wk->pool);
		wk->pool_len = calloc(r->o.pool, sizeof *wk->pool_len);
		wk->pool_st = calloc(r->o.pool, sizeof *wk->pool_st);
		if (!wk->pool || !wk->pool_len || !wk->pool_st)
			return -1;
		if (r->o.stamp && !(wk->pool_patch = calloc(r->o.pool, sizeof *wk->pool_patch)))
			return -1;
		if (r->o.stamp)
			kn_w1_set_end(wk->w, kn_unix_ns());
		for (unsigned j = 0; j < r->o.pool; j++) {
			if (!(wk->pool[j] = kn_w1_pack(wk->w, (uint64_t)id * r->o.pool + j + (1ull << 40),
						      &wk->pool_len[j], &wk->pool_st[j])))
				return -1;
			if (wk->pool_patch &&
			    kn_w1_patch_init(&wk->pool_patch[j], wk->pool[j], wk->pool_len[j]) != 0)
				return -1;
		}
	}
	if (r->o.grpc) {
		wk->cq = grpc_completion_queue_create_for_pluck(NULL);
		return wk->cq ? 0 : -1;
	}
	char url[512];
	snprintf(url, sizeof url, "%s://%s%s", r->o.tls_ca ? "https" : "http", r->o.target, r->o.path);
	if (!(wk->curl = curl_easy_init()))
		return -1;
	wk->hdrs = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
	if (wk->hdrs && r->o.gzip)
		wk->hdrs = curl_slist_append(wk->hdrs, "Content-Encoding: gzip");
	if (wk->hdrs)
		wk->hdrs = curl_slist_append(wk->hdrs, "Expect:");
	if (!wk->hdrs)
		return -1;
	CURL *c = wk->curl;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, wk->hdrs);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "kansatsu-loadgen/" KN_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION,
			 !r->o.h2 ? (long)CURL_HTTP_VERSION_1_1
			 : r->o.tls_ca ? (long)CURL_HTTP_VERSION_2TLS /* h2 by ALPN */
				       : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	if (r->o.tls_ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, r->o.tls_ca);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(r->o.timeout_s * 1000));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_body_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, wk);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, wk);
	return 0;
}

static void worker_fini(struct worker *wk)
{
	if (wk->cq) {
		grpc_completion_queue_shutdown(wk->cq);
		while (grpc_completion_queue_pluck(wk->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type
		       != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(wk->cq);
	}
	if (wk->curl)
		curl_easy_cleanup(wk->curl);
	curl_slist_free_all(wk->hdrs);
	if (wk->z_ready)
		deflateEnd(&wk->z);
	free(wk->zbuf);
	free(wk->resp);
	for (unsigned j = 0; wk->pool && j < wk->run->o.pool; j++) {
		free(wk->pool[j]);
		if (wk->pool_patch)
			kn_w1_patch_free(&wk->pool_patch[j]);
	}
	free(wk->pool_patch);
	free(wk->pool);
	free(wk->pool_len);
	free(wk->pool_st);
	kn_w1_free(wk->w);
}

/* ---- options ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: loadgen [options]\n"
		"transport:\n"
		"  --grpc | --http           OTLP/gRPC (default) or OTLP/HTTP protobuf\n"
		"  --target HOST:PORT        default 127.0.0.1:4317 (gRPC) / 127.0.0.1:4318 (HTTP)\n"
		"  --path PATH               HTTP path (default /v1/traces)\n"
		"  --h2                      HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1\n"
		"  --gzip                    compress requests (gRPC: grpc-encoding gzip)\n"
		"  --tls-ca FILE             TLS (gRPC and HTTP), the server verified against this\n"
		"                            PEM CA; with --h2, HTTP/2 is chosen by ALPN\n"
		"  -c, --connections N       connections (default 2)\n"
		"  -m, --streams N           gRPC: concurrent calls per connection (default 1)\n"
		"load:\n"
		"  --rate SPANS_PER_S        offered load (default 0 = as fast as accepted)\n"
		"  --duration S              run bound in seconds (default 10, at most 3600)\n"
		"  --spans N                 stop after N spans were sent (default: no bound)\n"
		"  --timeout S               per attempt (default 10)\n"
		"  --retry-max S             retry budget per request (default 30)\n"
		"  --seed N                  generator seed (default 1)\n"
		"  --stamp                   every root span ends when its request is built\n"
		"                            (the sink then measures end-to-end latency)\n"
		"  --pool N                  pre-build N bodies per worker and cycle them (saves\n"
		"                            loadgen CPU; trace ids then repeat; with --stamp each\n"
		"                            send re-stamps the body in place: new trace ids, times\n"
		"                            shifted so roots end now; links across requests break)\n"
		"shape (defaults = W1):\n"
		"  --request-spans N (512) --trace-spans N (5) --depth N (1)\n"
		"  --attrs N (10) --attr-bytes N (16, for attributes beyond the 10th)\n"
		"  --events-pct P (10) --errors-pct P (1) --async-pct P (0: journeys)\n"
		"  --services N (16) --resources N (4)\n"
		"  --span-ms MIN:MAX (1:51 uniform root duration) | --span-lognormal MEDIAN_MS:SIGMA\n"
		"output:\n"
		"  --json FILE               write the summary as JSON\n"
		"  --quiet                   no progress line\n");
}

static int parse_u64(const char *flag, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi) {
		fprintf(stderr, "loadgen: %s: expected an integer in %" PRIu64 "..%" PRIu64 ", got \"%s\"\n",
			flag, lo, hi, v);
		return -1;
	}
	*out = x;
	return 0;
}

static int parse_f(const char *flag, const char *v, double lo, double hi, double *out)
{
	char *end;
	double x = strtod(v, &end);
	if (end == v || *end || !(x >= lo && x <= hi)) {
		fprintf(stderr, "loadgen: %s: expected a number in %g..%g, got \"%s\"\n", flag, lo, hi, v);
		return -1;
	}
	*out = x;
	return 0;
}

static int parse_pair(const char *flag, const char *v, double *a, double *b)
{
	char *end;
	*a = strtod(v, &end);
	if (end == v || *end != ':') {
		fprintf(stderr, "loadgen: %s: expected A:B, got \"%s\"\n", flag, v);
		return -1;
	}
	const char *q = end + 1;
	*b = strtod(q, &end);
	if (end == q || *end) {
		fprintf(stderr, "loadgen: %s: expected A:B, got \"%s\"\n", flag, v);
		return -1;
	}
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof *o);
	o->grpc = 1;
	o->path = "/v1/traces";
	o->conns = 2;
	o->streams = 1;
	o->duration_s = 10;
	o->timeout_s = 10;
	o->retry_max_s = 30;
	o->seed = 1;
	kn_w1_shape_default(&o->shape);
	const char *target = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		uint64_t u;
		double d, d2;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(a, "--grpc") == 0) { o->grpc = 1; continue; }
		if (strcmp(a, "--http") == 0) { o->grpc = 0; continue; }
		if (strcmp(a, "--h2") == 0) { o->h2 = 1; continue; }
		if (strcmp(a, "--gzip") == 0) { o->gzip = 1; continue; }
		if (strcmp(a, "--stamp") == 0) { o->stamp = 1; continue; }
		if (strcmp(a, "--quiet") == 0) { o->quiet = 1; continue; }
		if (i + 1 >= argc) {
			fprintf(stderr, "loadgen: %s: unknown option or missing value\n", a);
			return -1;
		}
		const char *v = argv[++i];
#define U(flag, lo, hi, dst) else if (strcmp(a, flag) == 0) { if (parse_u64(a, v, lo, hi, &u)) return -1; dst = u; }
		if (strcmp(a, "--target") == 0) target = v;
		else if (strcmp(a, "--path") == 0) o->path = v;
		else if (strcmp(a, "--json") == 0) o->json = v;
		else if (strcmp(a, "--tls-ca") == 0) o->tls_ca = v;
		U("-c", 1, MAX_WORKERS, o->conns)
		U("--connections", 1, MAX_WORKERS, o->conns)
		U("-m", 1, MAX_WORKERS, o->streams)
		U("--streams", 1, MAX_WORKERS, o->streams)
		U("--spans", 1, UINT64_MAX / 2, o->max_spans)
		U("--seed", 0, UINT64_MAX, o->seed)
		U("--pool", 1, 4096, o->pool)
		U("--request-spans", 1, 1000000, o->shape.spans)
		U("--trace-spans", 1, 10000, o->shape.trace_spans)
		U("--depth", 1, 10000, o->shape.depth)
		U("--attrs", 0, 1000, o->shape.span_attrs)
		U("--attr-bytes", 1, 65536, o->shape.attr_bytes)
		U("--events-pct", 0, 100, o->shape.event_pct)
		U("--errors-pct", 0, 100, o->shape.error_pct)
		U("--async-pct", 0, 100, o->shape.async_pct)
		U("--services", 1, 10000, o->shape.services)
		U("--resources", 1, 10000, o->shape.resources)
		else if (strcmp(a, "--rate") == 0) { if (parse_f(a, v, 0, 1e9, &o->rate)) return -1; }
		else if (strcmp(a, "--duration") == 0) { if (parse_f(a, v, 0.01, 3600, &o->duration_s)) return -1; }
		else if (strcmp(a, "--timeout") == 0) { if (parse_f(a, v, 0.01, 600, &o->timeout_s)) return -1; }
		else if (strcmp(a, "--retry-max") == 0) { if (parse_f(a, v, 0, 600, &o->retry_max_s)) return -1; }
		else if (strcmp(a, "--span-ms") == 0) {
			if (parse_pair(a, v, &d, &d2) || !(d >= 0.001 && d2 > d && d2 <= 3.6e6)) {
				fprintf(stderr, "loadgen: --span-ms: need 0.001 <= MIN < MAX <= 3600000\n");
				return -1;
			}
			o->shape.dur_min_ns = (uint64_t)(d * 1e6);
			o->shape.dur_max_ns = (uint64_t)(d2 * 1e6);
			o->shape.dur_median_ns = 0;
		} else if (strcmp(a, "--span-lognormal") == 0) {
			if (parse_pair(a, v, &d, &d2) || !(d > 0 && d <= 3.6e6 && d2 >= 0 && d2 <= 10)) {
				fprintf(stderr, "loadgen: --span-lognormal: need MEDIAN_MS > 0 and SIGMA in 0..10\n");
				return -1;
			}
			o->shape.dur_median_ns = d * 1e6;
			o->shape.dur_sigma = d2;
		} else {
			fprintf(stderr, "loadgen: unknown option %s (see --help)\n", a);
			return -1;
		}
#undef U
	}
	if (o->shape.attr_bytes && o->shape.span_attrs <= KN_W1_SPAN_ATTRS)
		fprintf(stderr, "loadgen: note: --attr-bytes applies to attributes beyond the 10th (--attrs > 10)\n");
	char msg[128];
	if (kn_w1_shape_check(&o->shape, msg, sizeof msg) != 0) {
		fprintf(stderr, "loadgen: shape: %s\n", msg);
		return -1;
	}
	snprintf(o->target, sizeof o->target, "%s", target ? target : o->grpc ? "127.0.0.1:4317" : "127.0.0.1:4318");
	if (!strchr(o->target, ':') || strstr(o->target, "://")) {
		fprintf(stderr, "loadgen: --target: expected HOST:PORT, got \"%s\"\n", o->target);
		return -1;
	}
	if (o->conns * (o->grpc ? o->streams : 1) > MAX_WORKERS) {
		fprintf(stderr, "loadgen: --connections x --streams: at most %d\n", MAX_WORKERS);
		return -1;
	}
	return 0;
}

/* A whole file, NUL-terminated (PEM for libgrpc); NULL with errno set. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	do {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, 4096, f);
		len += n;
	} while (n == 4096);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		errno = EIO;
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

/* ---- summary ------------------------------------------------------------- */

static double cpu_self_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

static int report(struct run *r, const struct kn_hist *h, double elapsed, double cpu)
{
	const struct opts *o = &r->o;
	uint64_t req = atomic_load(&r->requests), ok = atomic_load(&r->requests_ok);
	uint64_t sent = atomic_load(&r->spans_sent), acc = atomic_load(&r->spans_accepted);
	uint64_t rej = atomic_load(&r->spans_rejected), ref = atomic_load(&r->spans_refused);
	uint64_t retries = atomic_load(&r->retries), bytes = atomic_load(&r->bytes_sent);
	double p50 = kn_hist_quantile(h, 0.5) / 1e6, p99 = kn_hist_quantile(h, 0.99) / 1e6;
	double p999 = kn_hist_quantile(h, 0.999) / 1e6;
	double mx = (double)atomic_load(&h->max) / 1e6;
	printf("loadgen: %s%s %s, %u connections x %u streams, rate %s, %.1f s, shape %u spans/request\n",
	       o->grpc ? "otlp/grpc" : o->h2 ? (o->tls_ca ? "otlp/http h2" : "otlp/http h2c") : "otlp/http 1.1",
	       o->tls_ca ? " over TLS" : "", o->target, o->conns,
	       o->grpc ? o->streams : 1, o->rate > 0 ? "fixed" : "max", elapsed, o->shape.spans);
	printf("| requests | ok | spans sent | accepted | rejected (partial) | refused | retries | accepted spans/s | p50 ms | p99 ms | p99.9 ms | max ms |\n");
	printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	printf("| %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64
	       " | %.0f | %.2f | %.2f | %.2f | %.2f |\n",
	       req, ok, sent, acc, rej, ref, retries, elapsed > 0 ? acc / elapsed : 0, p50, p99, p999, mx);
	for (unsigned i = 0; i < r->nreasons; i++)
		printf("  %-28s refused spans %" PRIu64 ", retries %" PRIu64 "\n", r->reasons[i].name,
		       r->reasons[i].refused_spans, r->reasons[i].retries);
	printf("  loadgen CPU %.2f s; %.1f bytes/span on the wire (attempts included)\n", cpu,
	       sent ? (double)bytes / (double)(sent + 0.0) : 0.0);
	fflush(stdout);
	if (!o->json)
		return 0;
	FILE *f = fopen(o->json, "w");
	if (!f) {
		fprintf(stderr, "loadgen: --json: cannot write \"%s\": %s\n", o->json, strerror(errno));
		return -1;
	}
	fprintf(f, "{\"transport\": \"%s\", \"tls\": %s, \"target\": ",
		o->grpc ? "grpc" : o->h2 ? (o->tls_ca ? "http/h2" : "http/h2c") : "http/1.1",
		o->tls_ca ? "true" : "false");
	json_str(f, o->target);
	fprintf(f, ", \"connections\": %u, \"streams\": %u, \"gzip\": %s, \"rate\": %.0f"
		", \"duration_s\": %.3f, \"elapsed_s\": %.3f, \"spans_per_request\": %u"
		", \"requests\": %" PRIu64 ", \"requests_ok\": %" PRIu64 ", \"spans_sent\": %" PRIu64
		", \"spans_accepted\": %" PRIu64 ", \"spans_rejected\": %" PRIu64 ", \"spans_refused\": %" PRIu64
		", \"retries\": %" PRIu64 ", \"bytes_sent\": %" PRIu64 ", \"spans_per_s\": %.1f"
		", \"loadgen_cpu_s\": %.3f, \"latency_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f}"
		", \"reasons\": {",
		o->conns, o->grpc ? o->streams : 1, o->gzip ? "true" : "false", o->rate, o->duration_s, elapsed,
		o->shape.spans, req, ok, sent, acc, rej, ref, retries, bytes, elapsed > 0 ? acc / elapsed : 0, cpu,
		p50, p99, p999, mx);
	for (unsigned i = 0; i < r->nreasons; i++) {
		fprintf(f, "%s", i ? ", " : "");
		json_str(f, r->reasons[i].name);
		fprintf(f, ": {\"refused_spans\": %" PRIu64 ", \"retries\": %" PRIu64 "}",
			r->reasons[i].refused_spans, r->reasons[i].retries);
	}
	fprintf(f, "}}\n");
	return fclose(f) == 0 ? 0 : -1;
}

static struct run *g_run;

static void on_signal(int sig)
{
	(void)sig;
	if (g_run)
		atomic_store(&g_run->stop, 1);
}

int main(int argc, char **argv)
{
	struct run *r = calloc(1, sizeof *r);
	struct worker *wks = NULL;
	struct kn_hist *all = malloc(sizeof *all);
	unsigned nw = 0;
	int rc = 1, grpc_up = 0, curl_up = 0;
	if (!r || !all) {
		fprintf(stderr, "loadgen: out of memory\n");
		goto fail;
	}
	pthread_mutex_init(&r->mu, NULL);
	if (parse_opts(argc, argv, &r->o) != 0) {
		rc = 2;
		goto fail;
	}
	struct opts *o = &r->o;
	nw = o->grpc ? o->conns * o->streams : o->conns;
	wks = calloc(nw, sizeof *wks);
	if (!wks) {
		fprintf(stderr, "loadgen: out of memory\n");
		goto fail;
	}
	signal(SIGPIPE, SIG_IGN);
	g_run = r;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	if (o->grpc) {
		kn_grpc_absl_init(); /* as the collector: see kn_grpc_absl.h */
		grpc_init();
		grpc_up = 1;
		r->channels = calloc(o->conns, sizeof *r->channels);
		grpc_channel_credentials *creds = NULL;
		if (o->tls_ca) {
			char *pem = read_file(o->tls_ca);
			if (!pem) {
				fprintf(stderr, "loadgen: --tls-ca: cannot read \"%s\": %s\n", o->tls_ca,
					strerror(errno));
				goto fail;
			}
			creds = grpc_ssl_credentials_create(pem, NULL, NULL, NULL);
			free(pem);
		} else {
			creds = grpc_insecure_credentials_create();
		}
		if (!r->channels || !creds) {
			if (creds)
				grpc_channel_credentials_release(creds);
			fprintf(stderr, "loadgen: cannot set up gRPC\n");
			goto fail;
		}
		for (unsigned i = 0; i < o->conns; i++) {
			grpc_arg args[6];
			size_t n = 0;
			args[n].type = GRPC_ARG_INTEGER;
			args[n].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;   /* own TCP connection */
			args[n++].value.integer = 1;
			args[n].type = GRPC_ARG_INTEGER;
			args[n].key = (char *)GRPC_ARG_ENABLE_RETRIES;              /* we retry, and count */
			args[n++].value.integer = 0;
			args[n].type = GRPC_ARG_INTEGER;
			args[n].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
			args[n++].value.integer = -1;
			args[n].type = GRPC_ARG_STRING;
			args[n].key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
			args[n++].value.string = (char *)"kansatsu-loadgen/" KN_VERSION;
			args[n].type = GRPC_ARG_INTEGER;
			args[n].key = (char *)"kansatsu.loadgen.conn";             /* distinct args per channel */
			args[n++].value.integer = (int)i;
			if (o->gzip) {
				args[n].type = GRPC_ARG_INTEGER;
				args[n].key = (char *)GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM;
				args[n++].value.integer = GRPC_COMPRESS_GZIP;
			}
			grpc_channel_args ca = {.num_args = n, .args = args};
			r->channels[i] = grpc_channel_create(o->target, creds, &ca);
		}
		grpc_channel_credentials_release(creds);
	} else {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			fprintf(stderr, "loadgen: cannot initialise libcurl\n");
			goto fail;
		}
		curl_up = 1;
	}
	for (unsigned i = 0; i < nw; i++)
		if (worker_init(&wks[i], r, i) != 0) {
			fprintf(stderr, "loadgen: cannot set up worker %u\n", i);
			goto fail;
		}

	double cpu0 = cpu_self_s();
	r->t0 = kn_now_ns();
	r->end = r->t0 + (uint64_t)(o->duration_s * 1e9);
	for (unsigned i = 0; i < nw; i++) {
		if (pthread_create(&wks[i].th, NULL, worker_main, &wks[i]) != 0) {
			fprintf(stderr, "loadgen: cannot start worker %u\n", i);
			atomic_store(&r->stop, 1);
			break;
		}
		wks[i].started = 1;
	}
	/* progress each second until every worker is done: a worker is done
	 * when the run's bound is reached and its last request got an answer
	 * (or ran out of retries) */
	uint64_t last_acc = 0, tick = r->t0;
	for (;;) {
		int busy = 0;
		struct timespec ts = {.tv_nsec = 50 * 1000000L};
		nanosleep(&ts, NULL);
		uint64_t now = kn_now_ns();
		uint64_t claimed = atomic_load(&r->next_req);
		int bound = now >= r->end || atomic_load(&r->stop) ||
			    (o->max_spans && claimed * o->shape.spans >= o->max_spans);
		busy = !bound || atomic_load(&r->inflight) > 0;
		if (!busy) {
			/* every claim after the bound ends at once; join to be sure */
			break;
		}
		if (now - tick >= KN_NS_PER_SEC) {
			uint64_t acc = atomic_load(&r->spans_accepted);
			if (!o->quiet)
				fprintf(stderr, "loadgen: %5.1f s  sent %" PRIu64 "  accepted %" PRIu64
					"  refused %" PRIu64 "  retries %" PRIu64 "  in flight %" PRIu64
					"  %.0f spans/s\n",
					(now - r->t0) / 1e9, atomic_load(&r->spans_sent), acc,
					atomic_load(&r->spans_refused), atomic_load(&r->retries),
					atomic_load(&r->inflight), (double)(acc - last_acc) * 1e9 / (double)(now - tick));
			last_acc = acc;
			tick = now;
		}
	}
	for (unsigned i = 0; i < nw; i++)
		if (wks[i].started) {
			pthread_join(wks[i].th, NULL);
			wks[i].started = 0;
		}
	double elapsed = (kn_now_ns() - r->t0) / 1e9;
	kn_hist_init(all);
	for (unsigned i = 0; i < nw; i++)
		kn_hist_merge(all, &wks[i].hist);
	rc = report(r, all, elapsed, cpu_self_s() - cpu0) == 0 ? 0 : 1;
fail:
	if (r)
		atomic_store(&r->stop, 1);
	for (unsigned i = 0; wks && i < nw; i++)
		if (wks[i].started)
			pthread_join(wks[i].th, NULL);
	for (unsigned i = 0; wks && i < nw; i++)
		worker_fini(&wks[i]);
	free(wks);
	if (r && r->channels) {
		for (unsigned i = 0; i < r->o.conns; i++)
			if (r->channels[i])
				grpc_channel_destroy(r->channels[i]);
		free(r->channels);
	}
	if (grpc_up)
		grpc_shutdown();
	if (curl_up)
		curl_global_cleanup();
	if (r)
		pthread_mutex_destroy(&r->mu);
	free(r);
	free(all);
	return rc;
}
