/* SPDX-License-Identifier: Apache-2.0
 * kn_w1: builds the W1 workload (see kn_w1.h).
 *
 * The protobuf-c tree is laid out in a bump arena of chained 1 MiB blocks
 * that is rewound, not freed, before each request, so building request after
 * request reaches a steady state with no malloc. Strings are copied into the
 * arena (protobuf-c's fields are `char *`). The value pools below follow the
 * OpenTelemetry semantic conventions for HTTP and RPC spans; their lengths
 * are what makes a span about 350 bytes, so change them only with the
 * figure in bench/README.md. */
#include "kn_w1.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W1_BLOCK (1u << 20)

struct w1_block {
	struct w1_block *next;
	size_t used;
	_Alignas(16) unsigned char mem[];
};

struct kn_w1 {
	uint64_t seed;
	uint64_t rng;                 /* splitmix64 state of the request being built */
	struct w1_block *head;        /* first block; never freed before kn_w1_free */
	struct w1_block *cur;         /* block being filled */
	int oom;
};

typedef Opentelemetry__Proto__Trace__V1__ResourceSpans w1_rs;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans w1_ss;
typedef Opentelemetry__Proto__Trace__V1__Span w1_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event w1_event;
typedef Opentelemetry__Proto__Trace__V1__Status w1_status;
typedef Opentelemetry__Proto__Resource__V1__Resource w1_res;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope w1_scope;
typedef Opentelemetry__Proto__Common__V1__KeyValue w1_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue w1_any;

/* ---- PRNG --------------------------------------------------------------- */

static uint64_t w1_next(struct kn_w1 *w)
{
	uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t w1_below(struct kn_w1 *w, uint32_t n)
{
	return (uint32_t)(((w1_next(w) >> 32) * (uint64_t)n) >> 32);
}

#define PICK(w, pool) ((pool)[w1_below((w), (uint32_t)(sizeof(pool) / sizeof((pool)[0])))])

/* ---- arena -------------------------------------------------------------- */

static struct w1_block *w1_block_new(void)
{
	struct w1_block *b = malloc(sizeof *b + W1_BLOCK);
	if (b) {
		b->next = NULL;
		b->used = 0;
	}
	return b;
}

static void w1_rewind(struct kn_w1 *w)
{
	for (struct w1_block *b = w->head; b; b = b->next)
		b->used = 0;
	w->cur = w->head;
	w->oom = 0;
}

/* Zeroed, 16-byte aligned; NULL (and w->oom set) on OOM. */
static void *w1_alloc(struct kn_w1 *w, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (n > W1_BLOCK)
		goto fail;
	while (w->cur->used + n > W1_BLOCK) {
		if (!w->cur->next && !(w->cur->next = w1_block_new()))
			goto fail;
		w->cur = w->cur->next;
	}
	void *p = w->cur->mem + w->cur->used;
	w->cur->used += n;
	memset(p, 0, n);
	return p;
fail:
	w->oom = 1;
	return NULL;
}

static char *w1_str(struct kn_w1 *w, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = w1_alloc(w, n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static char *w1_strf(struct kn_w1 *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static char *w1_strf(struct kn_w1 *w, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return w1_str(w, buf);
}

static uint8_t *w1_id(struct kn_w1 *w, size_t n)
{
	uint8_t *p = w1_alloc(w, n);
	if (!p)
		return NULL;
	do {
		for (size_t i = 0; i < n; i += 8) {
			uint64_t r = w1_next(w);
			memcpy(p + i, &r, n - i < 8 ? n - i : 8);
		}
	} while (p[0] == 0 && p[n - 1] == 0);   /* never the all-zero (invalid) id */
	return p;
}

/* ---- attributes --------------------------------------------------------- */

struct w1_kvs {
	w1_kv **v;
	size_t n, cap;
};

static w1_kv *w1_kv_new(struct kn_w1 *w, struct w1_kvs *a, const char *key)
{
	w1_kv *kv = w1_alloc(w, sizeof *kv);
	w1_any *av = w1_alloc(w, sizeof *av);
	if (!kv || !av || a->n >= a->cap) {
		w->oom = 1;
		return NULL;
	}
	opentelemetry__proto__common__v1__key_value__init(kv);
	opentelemetry__proto__common__v1__any_value__init(av);
	kv->key = w1_str(w, key);
	kv->value = av;
	a->v[a->n++] = kv;
	return kv;
}

static void w1_kv_str(struct kn_w1 *w, struct w1_kvs *a, const char *key, const char *val)
{
	w1_kv *kv = w1_kv_new(w, a, key);
	if (!kv)
		return;
	kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	kv->value->string_value = w1_str(w, val);
}

static void w1_kv_int(struct kn_w1 *w, struct w1_kvs *a, const char *key, int64_t val)
{
	w1_kv *kv = w1_kv_new(w, a, key);
	if (!kv)
		return;
	kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
	kv->value->int_value = val;
}

static int w1_kvs_init(struct kn_w1 *w, struct w1_kvs *a, size_t cap)
{
	a->n = 0;
	a->cap = cap;
	a->v = w1_alloc(w, cap * sizeof *a->v);
	return a->v ? 0 : -1;
}

/* ---- value pools (semantic conventions) --------------------------------- */

static const char *const w1_services[16] = {
	"frontend", "checkout", "cart", "payment", "shipping", "email", "currency", "ad",
	"recommendation", "product-catalog", "quote", "accounting", "fraud-detection",
	"inventory", "auth", "search",
};
static const char *const w1_versions[] = { "1.14.2", "1.14.3", "1.15.0-rc1" };
static const char *const w1_langs[] = { "go", "java", "nodejs", "python", "dotnet", "rust" };
static const char *const w1_methods[] = { "GET", "GET", "GET", "POST", "PUT", "DELETE" };
static const char *const w1_routes[] = {
	"/api/products/{id}", "/api/cart", "/api/checkout", "/api/users/{id}",
	"/api/recommendations", "/api/orders/{id}",
};
static const char *const w1_rpc_services[] = {
	"oteldemo.CartService", "oteldemo.CurrencyService", "oteldemo.PaymentService",
	"oteldemo.ShippingService", "oteldemo.ProductCatalogService",
};
static const char *const w1_rpc_methods[] = { "GetCart", "Convert", "Charge", "GetQuote", "ListProducts" };
static const char *const w1_events[] = { "cache.miss", "retry", "message" };

/* ---- spans -------------------------------------------------------------- */

struct w1_trace {
	const char *service;
	uint8_t *trace_id;
	uint8_t *root_id;
	uint64_t t0;        /* root start, ns */
	uint64_t dur;       /* root duration, ns */
	uint32_t route;     /* index into w1_routes */
	uint32_t item;      /* a number for paths */
};

static void w1_http_server_attrs(struct kn_w1 *w, struct w1_kvs *a, const struct w1_trace *t,
				 const char *method, int err)
{
	const char *route = w1_routes[t->route];
	char path[96];
	const char *brace = strchr(route, '{');
	if (brace)
		snprintf(path, sizeof path, "%.*s%u", (int)(brace - route), route, t->item);
	else
		snprintf(path, sizeof path, "%s", route);
	w1_kv_str(w, a, "http.request.method", method);
	w1_kv_str(w, a, "url.path", path);
	w1_kv_str(w, a, "url.scheme", "https");
	w1_kv_str(w, a, "http.route", route);
	w1_kv_int(w, a, "http.response.status_code", err ? 500 : 200);
	w1_kv_str(w, a, "server.address", "shop.io");
	w1_kv_int(w, a, "server.port", 443);
	char ip[32];
	snprintf(ip, sizeof ip, "10.%u.%u.%u", w1_below(w, 256), w1_below(w, 256), w1_below(w, 256));
	w1_kv_str(w, a, "client.address", ip);
	w1_kv_int(w, a, "client.port", 1024 + w1_below(w, 64512));
	w1_kv_str(w, a, "network.protocol.version", "2");
}

static void w1_http_client_attrs(struct kn_w1 *w, struct w1_kvs *a, const char *peer, int err)
{
	char url[96];
	uint32_t item = w1_below(w, 100000);
	snprintf(url, sizeof url, "http://%s/items/%u", peer, item);
	w1_kv_str(w, a, "http.request.method", "GET");
	w1_kv_str(w, a, "url.full", url);
	w1_kv_str(w, a, "server.address", peer);
	w1_kv_int(w, a, "server.port", 8080);
	w1_kv_int(w, a, "http.response.status_code", err ? 503 : 200);
	w1_kv_str(w, a, "network.protocol.version", "1.1");
	w1_kv_int(w, a, "http.request.resend_count", 0);
	w1_kv_int(w, a, "thread.id", 1 + w1_below(w, 64));
	w1_kv_int(w, a, "network.peer.port", 8080);
	w1_kv_str(w, a, "url.scheme", "http");
}

static void w1_rpc_client_attrs(struct kn_w1 *w, struct w1_kvs *a, const char *peer,
				uint32_t rpc, int err)
{
	w1_kv_str(w, a, "rpc.system", "grpc");
	w1_kv_str(w, a, "rpc.service", w1_rpc_services[rpc]);
	w1_kv_str(w, a, "rpc.method", w1_rpc_methods[rpc]);
	w1_kv_int(w, a, "rpc.grpc.status_code", err ? 14 : 0);
	w1_kv_str(w, a, "server.address", peer);
	w1_kv_int(w, a, "server.port", 50051);
	w1_kv_int(w, a, "thread.id", 1 + w1_below(w, 64));
	w1_kv_int(w, a, "network.peer.port", 50051);
	w1_kv_str(w, a, "network.transport", "tcp");
	w1_kv_str(w, a, "network.type", "ipv4");
}

/* Builds span number k (0 = root) of trace t; NULL on OOM. */
static w1_span *w1_span_build(struct kn_w1 *w, const struct w1_trace *t, uint32_t k,
			      struct kn_w1_stats *st)
{
	w1_span *s = w1_alloc(w, sizeof *s);
	struct w1_kvs a;
	if (!s || w1_kvs_init(w, &a, KN_W1_SPAN_ATTRS) < 0)
		return NULL;
	opentelemetry__proto__trace__v1__span__init(s);
	int err = w1_below(w, 100) < KN_W1_ERROR_PCT;
	int ev = w1_below(w, 100) < KN_W1_EVENT_PCT;

	s->trace_id.data = t->trace_id;
	s->trace_id.len = 16;
	s->flags = 0x101;   /* W3C sampled + "has is_remote" (parent is local) */
	if (k == 0) {
		const char *method = PICK(w, w1_methods);
		s->span_id.data = t->root_id;
		s->span_id.len = 8;
		s->name = w1_strf(w, "%s %s", method, w1_routes[t->route]);
		s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
		s->start_time_unix_nano = t->t0;
		s->end_time_unix_nano = t->t0 + t->dur;
		w1_http_server_attrs(w, &a, t, method, err);
	} else {
		/* children split the root's time into four slots */
		uint64_t slot = t->dur / 4, start = t->t0 + (k - 1) * slot + slot / 8;
		const char *peer = w1_services[w1_below(w, 16)];
		s->span_id.data = w1_id(w, 8);
		s->span_id.len = 8;
		s->parent_span_id.data = t->root_id;
		s->parent_span_id.len = 8;
		s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
		s->start_time_unix_nano = start;
		s->end_time_unix_nano = start + slot / 2 + w1_below(w, (uint32_t)(slot / 4) + 1);
		if (k % 2) {
			s->name = w1_str(w, "GET");
			w1_http_client_attrs(w, &a, peer, err);
		} else {
			uint32_t rpc = w1_below(w, 5);
			s->name = w1_strf(w, "%s/%s", w1_rpc_services[rpc], w1_rpc_methods[rpc]);
			w1_rpc_client_attrs(w, &a, peer, rpc, err);
		}
	}
	s->n_attributes = a.n;
	s->attributes = a.v;

	if (ev) {
		w1_event *e = w1_alloc(w, sizeof *e);
		w1_event **ep = w1_alloc(w, sizeof *ep);
		struct w1_kvs ea;
		if (!e || !ep || w1_kvs_init(w, &ea, 1) < 0)
			return NULL;
		opentelemetry__proto__trace__v1__span__event__init(e);
		e->time_unix_nano = s->start_time_unix_nano +
			(s->end_time_unix_nano - s->start_time_unix_nano) / 2;
		e->name = w1_str(w, PICK(w, w1_events));
		w1_kv_int(w, &ea, "retry.attempt", 1 + w1_below(w, 3));
		e->n_attributes = ea.n;
		e->attributes = ea.v;
		*ep = e;
		s->n_events = 1;
		s->events = ep;
		st->events++;
	}
	if (err) {
		w1_status *status = w1_alloc(w, sizeof *status);
		if (!status)
			return NULL;
		opentelemetry__proto__trace__v1__status__init(status);
		status->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
		status->message = w1_str(w, "upstream unavailable");
		s->status = status;
		st->errors++;
	}
	return w->oom ? NULL : s;
}

/* ---- request ------------------------------------------------------------ */

static w1_res *w1_resource(struct kn_w1 *w, const char *service)
{
	w1_res *r = w1_alloc(w, sizeof *r);
	struct w1_kvs a;
	if (!r || w1_kvs_init(w, &a, KN_W1_RESOURCE_ATTRS) < 0)
		return NULL;
	opentelemetry__proto__resource__v1__resource__init(r);
	char host[64];
	snprintf(host, sizeof host, "%s-%08x-%05x", service, (unsigned)w1_next(w),
		 (unsigned)w1_below(w, 0x100000));
	w1_kv_str(w, &a, "service.name", service);
	w1_kv_str(w, &a, "service.version", PICK(w, w1_versions));
	w1_kv_str(w, &a, "host.name", host);
	w1_kv_str(w, &a, "deployment.environment.name", "production");
	w1_kv_str(w, &a, "telemetry.sdk.language", PICK(w, w1_langs));
	r->n_attributes = a.n;
	r->attributes = a.v;
	return w->oom ? NULL : r;
}

struct kn_w1 *kn_w1_new(uint64_t seed)
{
	struct kn_w1 *w = calloc(1, sizeof *w);
	if (!w)
		goto fail;
	w->seed = seed;
	if (!(w->head = w1_block_new()))
		goto fail;
	w->cur = w->head;
	return w;
fail:
	kn_w1_free(w);
	return NULL;
}

void kn_w1_free(struct kn_w1 *w)
{
	if (!w)
		return;
	struct w1_block *b = w->head;
	while (b) {
		struct w1_block *n = b->next;
		free(b);
		b = n;
	}
	free(w);
}

const kn_w1_req *kn_w1_build(struct kn_w1 *w, uint64_t idx, struct kn_w1_stats *stp)
{
	struct kn_w1_stats st = { 0 };
	w1_rewind(w);
	w->rng = w->seed * 0xd1342543de82ef95ull + idx * 0x9e3779b97f4a7c15ull + 1;

	kn_w1_req *req = w1_alloc(w, sizeof *req);
	w1_rs **rsv = w1_alloc(w, KN_W1_RESOURCES * sizeof *rsv);
	if (!req || !rsv)
		return NULL;
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);

	/* distinct services for this request's resources */
	uint32_t svc[KN_W1_RESOURCES];
	for (uint32_t r = 0; r < KN_W1_RESOURCES; r++) {
		int dup;
		do {
			svc[r] = w1_below(w, 16);
			dup = 0;
			for (uint32_t q = 0; q < r; q++)
				dup |= svc[q] == svc[r];
		} while (dup);
	}

	/* spans per resource: trace t (of ntraces, the last one possibly short)
	 * goes to resource t % KN_W1_RESOURCES */
	uint32_t ntraces = (KN_W1_SPANS + KN_W1_TRACE_SPANS - 1) / KN_W1_TRACE_SPANS;
	uint32_t cnt[KN_W1_RESOURCES] = { 0 };
	for (uint32_t t = 0; t < ntraces; t++) {
		uint32_t left = KN_W1_SPANS - t * KN_W1_TRACE_SPANS;
		cnt[t % KN_W1_RESOURCES] += left < KN_W1_TRACE_SPANS ? left : KN_W1_TRACE_SPANS;
	}

	w1_ss *ssv[KN_W1_RESOURCES];
	for (uint32_t r = 0; r < KN_W1_RESOURCES; r++) {
		w1_rs *rs = w1_alloc(w, sizeof *rs);
		w1_ss *ss = w1_alloc(w, sizeof *ss);
		w1_ss **ssp = w1_alloc(w, sizeof *ssp);
		w1_scope *scope = w1_alloc(w, sizeof *scope);
		w1_span **spans = w1_alloc(w, cnt[r] * sizeof *spans);
		if (!rs || !ss || !ssp || !scope || !spans)
			return NULL;
		opentelemetry__proto__trace__v1__resource_spans__init(rs);
		opentelemetry__proto__trace__v1__scope_spans__init(ss);
		opentelemetry__proto__common__v1__instrumentation_scope__init(scope);
		scope->name = w1_str(w, "io.opentelemetry.http");
		scope->version = w1_str(w, "2.1.0");
		ss->scope = scope;
		ss->spans = spans;
		ss->n_spans = 0;
		ssp[0] = ss;
		rs->resource = w1_resource(w, w1_services[svc[r]]);
		rs->scope_spans = ssp;
		rs->n_scope_spans = 1;
		rs->schema_url = w1_str(w, "https://opentelemetry.io/schemas/1.26.0");
		if (!rs->resource)
			return NULL;
		rsv[r] = rs;
		ssv[r] = ss;
	}
	req->resource_spans = rsv;
	req->n_resource_spans = KN_W1_RESOURCES;

	/* one second of traffic per request index, starting 2024-01-01 */
	uint64_t base = 1704067200ull * 1000000000ull + idx * 1000000000ull;
	for (uint32_t t = 0; t < ntraces; t++) {
		uint32_t r = t % KN_W1_RESOURCES;
		struct w1_trace tr = {
			.service = w1_services[svc[r]],
			.trace_id = w1_id(w, 16),
			.root_id = w1_id(w, 8),
			.t0 = base + w1_below(w, 1000000000u),
			.dur = 1000000u + w1_below(w, 50000000u),
			.route = w1_below(w, (uint32_t)(sizeof w1_routes / sizeof w1_routes[0])),
			.item = w1_below(w, 100000),
		};
		if (w->oom)
			return NULL;
		uint32_t left = KN_W1_SPANS - t * KN_W1_TRACE_SPANS;
		uint32_t n = left < KN_W1_TRACE_SPANS ? left : KN_W1_TRACE_SPANS;
		for (uint32_t k = 0; k < n; k++) {
			w1_span *s = w1_span_build(w, &tr, k, &st);
			if (!s)
				return NULL;
			ssv[r]->spans[ssv[r]->n_spans++] = s;
			st.spans++;
		}
		st.traces++;
	}
	st.resources = KN_W1_RESOURCES;
	if (stp)
		*stp = st;
	return w->oom ? NULL : req;
}

uint8_t *kn_w1_pack(struct kn_w1 *w, uint64_t idx, size_t *len, struct kn_w1_stats *st)
{
	const kn_w1_req *req = kn_w1_build(w, idx, st);
	if (!req)
		return NULL;
	size_t n = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(req);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return NULL;
	*len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(req, buf);
	if (st)
		st->bytes = *len;
	return buf;
}
