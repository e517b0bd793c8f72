/* SPDX-License-Identifier: Apache-2.0
 * kn_http_msg: request assembly shared by HTTP/1.1 and HTTP/2 (see header).
 * Costs: header bytes are copied once into the text buffer; the body is
 * copied once from the socket buffer and, when compressed, inflated once.
 * Memory: body buffers (by capacity) and inflated bodies (while the handler
 * runs) are charged to the request-body counter of kn_budget (a part of the
 * headroom kansatsu.memory_limit_mib keeps beside the span budget), so many
 * large uploads at once are refused with a retryable 503 instead of growing
 * the process past its limit. */
#include "kn_http_msg.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/kn_budget.h"

/* Body buffers of finished requests, per loop thread, for the next body.
 * A body above glibc's mmap threshold (128 KiB, see collector/main.c) is a
 * fresh mapping per request: every page of it faults on the first write,
 * growing it by realloc moves the mapping (TLB shootdowns) and freeing it
 * unmaps it again; on a 2-core VM that was a third of the CPU of OTLP/HTTP
 * passthrough. Two buffers of at most 1 MiB per thread: at most 2 MiB per
 * loop thread outside the span budget (inside the memory limit's headroom),
 * uncharged while cached, charged again when a request takes one. A msg
 * lives on its loop thread (or the thread of a unit test), so no locks;
 * kn_http_msg_cache_release frees a thread's buffers when its loop ends. */
#define BODY_CACHE_SLOTS 2
#define BODY_CACHE_MIN (64 * 1024)    /* smaller ones stay with their connection */
#define BODY_CACHE_MAX (1024 * 1024)

static __thread struct {
	uint8_t *p[BODY_CACHE_SLOTS];
	size_t cap[BODY_CACHE_SLOTS];
} body_cache;

/* The smallest cached buffer of at least want bytes (removed), or NULL. */
static uint8_t *cache_take(size_t want, size_t *cap)
{
	int best = -1;
	for (int i = 0; i < BODY_CACHE_SLOTS; i++)
		if (body_cache.p[i] && body_cache.cap[i] >= want &&
		    (best < 0 || body_cache.cap[i] < body_cache.cap[best]))
			best = i;
	if (best < 0)
		return NULL;
	uint8_t *b = body_cache.p[best];
	*cap = body_cache.cap[best];
	body_cache.p[best] = NULL;
	body_cache.cap[best] = 0;
	return b;
}

/* Keeps b for a later body when it is worth keeping (an empty slot, or
 * bigger than the smallest kept one, which is freed); else frees it. */
static void cache_put(uint8_t *b, size_t cap)
{
	if (!b)
		return;
	if (cap < BODY_CACHE_MIN || cap > BODY_CACHE_MAX) {
		free(b);
		return;
	}
	int slot = 0;
	for (int i = 0; i < BODY_CACHE_SLOTS; i++) {
		if (!body_cache.p[i]) {
			slot = i;
			break;
		}
		if (body_cache.cap[i] < body_cache.cap[slot])
			slot = i;
	}
	if (body_cache.p[slot]) {
		if (body_cache.cap[slot] >= cap) {
			free(b);
			return;
		}
		free(body_cache.p[slot]);
	}
	body_cache.p[slot] = b;
	body_cache.cap[slot] = cap;
}

void kn_http_msg_cache_release(void)
{
	for (int i = 0; i < BODY_CACHE_SLOTS; i++) {
		free(body_cache.p[i]);
		body_cache.p[i] = NULL;
		body_cache.cap[i] = 0;
	}
}

/* Gives the body buffer's charge back. */
static void body_uncharge(struct kn_http_msg *m)
{
	kn_budget_req_release(m->charged);
	m->charged = 0;
}

/* Gives the body buffer to the thread's cache (or frees it) and its charge
 * back. */
static void body_drop(struct kn_http_msg *m)
{
	body_uncharge(m);
	cache_put(m->body, m->body_cap);
	m->body = NULL;
	m->body_cap = 0;
}

void kn_http_msg_init(struct kn_http_msg *m, int http2, int thread)
{
	memset(m, 0, sizeof *m);
	m->req.http2 = http2;
	m->req.thread = thread;
	kn_http_msg_reset(m);
}

void kn_http_msg_reset(struct kn_http_msg *m)
{
	int http2 = m->req.http2, thread = m->req.thread;
	m->text_len = 0;
	m->url_off = m->url_len = 0;
	m->method[0] = '\0';
	m->nhdr = 0;
	m->body_len = 0;
	m->content_length = 0;
	m->has_content_length = 0;
	if (m->body_cap > BODY_CACHE_MIN) /* do not pin large buffers on idle connections */
		body_drop(m);
	else /* a small one stays for the next request, uncharged while idle */
		body_uncharge(m);
	m->enc = KN_ENC_IDENTITY;
	m->resolved = 0;
	memset(&m->req, 0, sizeof m->req);
	m->req.method = "";
	m->req.path = "";
	m->req.query = "";
	m->req.headers = m->headers;
	m->req.http2 = http2;
	m->req.thread = thread;
}

void kn_http_msg_free(struct kn_http_msg *m)
{
	if (!m)
		return;
	free(m->text);
	body_drop(m);
	m->text = NULL;
	m->text_cap = 0;
}

int kn_http_msg_text(struct kn_http_msg *m, const char *data, size_t len)
{
	if (len > KN_HTTP_MAX_HEADER_BYTES - m->text_len)
		return -1;
	if (m->text_len + len + 1 > m->text_cap) {
		size_t ncap = m->text_cap ? m->text_cap : 1024;
		while (ncap < m->text_len + len + 1)
			ncap *= 2;
		char *n = realloc(m->text, ncap);
		if (!n)
			return -1;
		m->text = n;
		m->text_cap = ncap;
	}
	memcpy(m->text + m->text_len, data, len);
	m->text_len += len;
	return 0;
}

int kn_http_msg_begin_header(struct kn_http_msg *m)
{
	if (m->nhdr == KN_HTTP_MAX_HEADERS)
		return -1;
	struct kn_http_hoff *h = &m->hoff[m->nhdr++];
	h->name_off = h->value_off = (uint32_t)m->text_len;
	h->name_len = h->value_len = 0;
	return 0;
}

/* Appends a NUL-terminated copy of text[off..off+len) and returns its offset. */
static int add_cstr(struct kn_http_msg *m, const char *s, size_t len, size_t *off)
{
	*off = m->text_len;
	if (kn_http_msg_text(m, s, len) != 0 || kn_http_msg_text(m, "", 1) != 0)
		return -1;
	return 0;
}

static int resolve(struct kn_http_msg *m)
{
	size_t path_off, query_off, q = m->url_len;
	/* copy the url pieces first: their source offsets stay valid in text */
	for (size_t i = 0; i < m->url_len; i++) {
		if (m->text[m->url_off + i] == '?') {
			q = i;
			break;
		}
	}
	/* self-referencing copies: the source may move on realloc, so copy out */
	char url[2048];
	size_t ul = m->url_len < sizeof url ? m->url_len : sizeof url - 1;
	if (q > ul)
		q = ul;
	memcpy(url, m->text + m->url_off, ul);
	if (add_cstr(m, url, q, &path_off) != 0)
		return -1;
	size_t qs = q < ul ? q + 1 : ul;
	if (add_cstr(m, url + qs, ul - qs, &query_off) != 0)
		return -1;
	for (size_t i = 0; i < m->nhdr; i++) {
		struct kn_http_hoff *o = &m->hoff[i];
		for (uint32_t k = 0; k < o->name_len; k++)
			m->text[o->name_off + k] = (char)tolower((unsigned char)m->text[o->name_off + k]);
	}
	for (size_t i = 0; i < m->nhdr; i++) {
		struct kn_http_hoff *o = &m->hoff[i];
		m->headers[i].name = m->text + o->name_off;
		m->headers[i].name_len = o->name_len;
		m->headers[i].value = m->text + o->value_off;
		m->headers[i].value_len = o->value_len;
	}
	m->req.method = m->method;
	m->req.path = m->text + path_off;
	m->req.query = m->text + query_off;
	m->req.headers = m->headers;
	m->req.nheaders = m->nhdr;
	m->resolved = 1;
	return 0;
}

const char *kn_http_req_header(const struct kn_http_req *req, const char *name, size_t *len)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct kn_http_header *h = &req->headers[i];
		if (h->name_len == n && memcmp(h->name, name, n) == 0) {
			const char *v = h->value;
			size_t vl = h->value_len;
			while (vl && (*v == ' ' || *v == '\t')) {
				v++;
				vl--;
			}
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (len)
				*len = vl;
			return v;
		}
	}
	return NULL;
}

void kn_http_resp_header(struct kn_http_resp *resp, const char *name, const char *value)
{
	if (resp->nheaders >= KN_HTTP_MAX_RESP_HEADERS)
		return;
	resp->headers[resp->nheaders].name = name;
	snprintf(resp->headers[resp->nheaders].value, KN_HTTP_RESP_HEADER_MAX, "%s", value);
	resp->nheaders++;
}

const char *kn_http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

void kn_http_resp_release(struct kn_http_resp *resp)
{
	if (resp->body_free)
		free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
	resp->body_free = 0;
}

void kn_http_refuse(const struct kn_http_conn_cfg *cfg, const struct kn_http_req *req,
		    int status, const char *reason, struct kn_http_resp *resp)
{
	kn_http_resp_release(resp);
	memset(resp, 0, sizeof *resp);
	resp->status = status;
	resp->content_type = "text/plain";
	char text[160];
	int n = snprintf(text, sizeof text, "%s: %s\n", kn_http_status_text(status), reason);
	resp->body = malloc((size_t)n);
	if (resp->body) {
		memcpy(resp->body, text, (size_t)n);
		resp->body_len = (size_t)n;
		resp->body_free = 1;
	}
	if (status == 413)
		KN_HTTP_COUNT(cfg, too_large);
	if (cfg->refused) {
		cfg->refused(cfg->ctx, req, reason, resp);
		resp->status = status;
	}
}

static const char *precheck_reason(int status)
{
	switch (status) {
	case 401: return "unauthenticated";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 413: return "too_large";
	case 415: return "bad_content_type";
	default: return "refused";
	}
}

int kn_http_msg_headers_done(const struct kn_http_conn_cfg *cfg, struct kn_http_msg *m,
			     const char **reason)
{
	if (resolve(m) != 0) {
		*reason = "bad_request";
		return 431;
	}
	KN_HTTP_COUNT(cfg, requests);
	size_t len;
	const char *v = kn_http_req_header(&m->req, "content-encoding", &len);
	m->enc = kn_encoding_parse(v, len);
	if (m->enc == KN_ENC_UNKNOWN || (m->enc != KN_ENC_IDENTITY && !cfg->decompress)) {
		*reason = "unsupported_encoding";
		return 415;
	}
	v = kn_http_req_header(&m->req, "content-length", &len);
	if (v) {
		uint64_t cl = 0;
		for (size_t i = 0; i < len; i++) {
			if (v[i] < '0' || v[i] > '9' || cl > UINT64_MAX / 16) {
				*reason = "bad_request";
				return 400;
			}
			cl = cl * 10 + (uint64_t)(v[i] - '0');
		}
		if (cl > cfg->max_body) {
			*reason = "too_large";
			return 413;
		}
		m->content_length = (size_t)cl;
		m->has_content_length = 1;
	}
	if (cfg->precheck) {
		int st = cfg->precheck(cfg->ctx, &m->req);
		if (st) {
			*reason = precheck_reason(st);
			return st;
		}
	}
	return 0;
}

int kn_http_msg_body(const struct kn_http_conn_cfg *cfg, struct kn_http_msg *m,
		     const uint8_t *data, size_t len, const char **reason)
{
	if (len > cfg->max_body - m->body_len) {
		*reason = "too_large";
		return 413;
	}
	size_t need = m->body_len + len, ncap = m->body_cap;
	uint8_t *cached = NULL;
	if (need > ncap) {
		/* room grows as bytes arrive (a client claiming max_body and
		 * sending nothing must not hold max_body), never beyond the
		 * declared length; past BODY_CACHE_MIN a cached buffer is taken
		 * whole when there is one (small uploads keep small buffers) */
		size_t cl = m->has_content_length && m->content_length >= need ? m->content_length : 0;
		ncap = ncap ? ncap : 4096;
		while (ncap < need)
			ncap *= 2;
		if (cl && ncap > cl)
			ncap = cl;
		if (ncap > cfg->max_body)
			ncap = cfg->max_body;
		size_t ccap;
		if (ncap >= BODY_CACHE_MIN && (cached = cache_take(ncap, &ccap)) != NULL)
			ncap = ccap;
	}
	if (ncap > m->charged) {
		if (!kn_budget_req_try_charge(ncap - m->charged, m->charged)) {
			cache_put(cached, ncap);
			*reason = "memory_limit";
			return 503;
		}
		m->charged = ncap;
	}
	if (cached) {
		if (m->body_len) /* body may still be NULL: memcpy's source must not be */
			memcpy(cached, m->body, m->body_len);
		free(m->body);
		m->body = cached;
		m->body_cap = ncap;
	} else if (ncap > m->body_cap) {
		uint8_t *n = realloc(m->body, ncap);
		if (!n) {
			*reason = "no_memory";
			return 503; /* the charge goes with the message */
		}
		m->body = n;
		m->body_cap = ncap;
	}
	memcpy(m->body + m->body_len, data, len);
	m->body_len += len;
	return 0;
}

void kn_http_msg_dispatch(const struct kn_http_conn_cfg *cfg, struct kn_http_msg *m,
			  struct kn_http_resp *resp)
{
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	m->req.wire_body_len = m->body_len;
	if (m->enc == KN_ENC_IDENTITY) {
		m->req.body = m->body;
		m->req.body_len = m->body_len;
	} else {
		enum kn_decomp_rc rc = kn_decompress(m->enc, m->body, m->body_len, cfg->max_body,
						     &plain, &plain_len, NULL);
		if (rc == KN_DECOMP_TOO_LARGE) {
			kn_http_refuse(cfg, &m->req, 413, "too_large", resp);
			return;
		}
		if (rc == KN_DECOMP_CORRUPT) {
			KN_HTTP_COUNT(cfg, decompress_errors);
			kn_http_refuse(cfg, &m->req, 400, "bad_encoding", resp);
			return;
		}
		if (rc != KN_DECOMP_OK) {
			kn_http_refuse(cfg, &m->req, 503, "no_memory", resp);
			return;
		}
		if (!kn_budget_req_try_charge(plain_len, m->charged)) {
			free(plain);
			kn_http_refuse(cfg, &m->req, 503, "memory_limit", resp);
			return;
		}
		m->req.body = plain;
		m->req.body_len = plain_len;
	}
	if (!m->req.body)
		m->req.body = (const uint8_t *)"";
	resp->status = 200;
	cfg->handler(cfg->ctx, &m->req, resp);
	if (resp->status < 100 || resp->status > 999)
		resp->status = 500;
	if (plain)
		kn_budget_req_release(plain_len);
	free(plain);
	m->req.body = NULL;
	m->req.body_len = 0;
}
