/* SPDX-License-Identifier: Apache-2.0
 * kn_w1: builds the W1 workload (see kn_w1.h).
 *
 * The protobuf-c tree is laid out in a bump arena of chained 1 MiB blocks
 * that is rewound, not freed, before each request, so building request after
 * request reaches a steady state with no malloc. Strings are copied into the
 * arena (protobuf-c's fields are `char *`). The value pools below follow the
 * OpenTelemetry semantic conventions for HTTP and RPC spans; their lengths
 * are what makes a span about 350 bytes, so change them only with the
 * figure in bench/README.md.
 *
 * Shapes other than W1's only add PRNG draws where they differ from W1 (more
 * attributes, journeys, lognormal durations, a service pool other than 16),
 * so the default shape reproduces W1 byte for byte. */
#include "kn_w1.h"

#include <math.h>
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
	struct kn_w1_shape sh;
	uint64_t end_ns;              /* 0: W1 clock; else roots end at this Unix time */
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

static uint64_t w1_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

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
	if (a->n >= a->cap)
		return NULL;   /* the shape asks for fewer attributes: drop the rest */
	w1_kv *kv = w1_alloc(w, sizeof *kv);
	w1_any *av = w1_alloc(w, sizeof *av);
	if (!kv || !av) {
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
	a->v = w1_alloc(w, (cap ? cap : 1) * sizeof *a->v);
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

static const char *const w1_topics[] = { "notifications", "orders", "payments", "emails" };

/* Service number i of the pool: W1's 16 names, then "service-<i>". */
static const char *w1_service(struct kn_w1 *w, uint32_t i)
{
	return i < 16 ? w1_services[i] : w1_strf(w, "service-%u", i);
}

/* A value in (0, 1]. */
static double w1_unit(struct kn_w1 *w)
{
	return (double)((w1_next(w) >> 11) + 1) * (1.0 / 9007199254740992.0);
}

static uint64_t w1_duration(struct kn_w1 *w)
{
	const struct kn_w1_shape *sh = &w->sh;
	if (sh->dur_median_ns > 0) {
		double u1 = w1_unit(w), u2 = w1_unit(w);
		double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
		double d = sh->dur_median_ns * exp(sh->dur_sigma * z);
		if (d < 1000.0)
			d = 1000.0;
		if (d > 3600e9)
			d = 3600e9;
		return (uint64_t)d;
	}
	uint64_t span = sh->dur_max_ns - sh->dur_min_ns;
	if (span <= UINT32_MAX)
		return sh->dur_min_ns + w1_below(w, (uint32_t)span);
	return sh->dur_min_ns + w1_next(w) % span;
}

/* ---- spans -------------------------------------------------------------- */

enum w1_role { W1_PLAIN, W1_PRODUCER, W1_CONSUMER };

struct w1_trace {
	const char *service;
	uint8_t *trace_id;
	uint8_t *root_id;
	uint64_t t0;        /* root start, ns */
	uint64_t dur;       /* root duration, ns */
	uint32_t route;     /* index into w1_routes */
	uint32_t item;      /* a number for paths */
	enum w1_role role;
	uint8_t **last;     /* last span id per level (depth + 1) */
	const uint8_t *link_trace, *link_span;  /* consumer: the producer span */
	uint8_t *producer_span;                 /* producer: its PRODUCER span's id */
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

static void w1_messaging_attrs(struct kn_w1 *w, struct w1_kvs *a, const char *topic,
			       int process, int err)
{
	w1_kv_str(w, a, "messaging.system", "kafka");
	w1_kv_str(w, a, "messaging.destination.name", topic);
	w1_kv_str(w, a, "messaging.operation.type", process ? "process" : "publish");
	w1_kv_str(w, a, "messaging.operation.name", process ? "poll" : "send");
	w1_kv_str(w, a, "messaging.client.id", "kansatsu-bench");
	w1_kv_int(w, a, "messaging.destination.partition.id", w1_below(w, 12));
	w1_kv_str(w, a, "server.address", "kafka.shop.io");
	w1_kv_int(w, a, "server.port", 9092);
	w1_kv_int(w, a, "messaging.message.body.size", 200 + w1_below(w, 4000));
	w1_kv_str(w, a, "error.type", err ? "timeout" : "none");
}

/* The attributes beyond W1's ten: "app.attr.<i>" = attr_bytes letters. */
static void w1_extra_attrs(struct kn_w1 *w, struct w1_kvs *a)
{
	uint32_t len = w->sh.attr_bytes ? w->sh.attr_bytes : 16;
	for (uint32_t i = KN_W1_SPAN_ATTRS; i < w->sh.span_attrs; i++) {
		char key[32];
		snprintf(key, sizeof key, "app.attr.%u", i);
		w1_kv *kv = w1_kv_new(w, a, key);
		char *v = w1_alloc(w, (size_t)len + 1);
		if (!kv || !v)
			return;
		uint64_t r = 0;
		for (uint32_t c = 0; c < len; c++) {
			if (c % 8 == 0)
				r = w1_next(w);
			v[c] = (char)('a' + (r & 0xff) % 26);
			r >>= 8;
		}
		kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		kv->value->string_value = v;
	}
}

/* Builds span number k (0 = root) of trace t; NULL on OOM. */
static w1_span *w1_span_build(struct kn_w1 *w, struct w1_trace *t, uint32_t k,
			      struct kn_w1_stats *st)
{
	const struct kn_w1_shape *sh = &w->sh;
	w1_span *s = w1_alloc(w, sizeof *s);
	struct w1_kvs a;
	if (!s || w1_kvs_init(w, &a, sh->span_attrs) < 0)
		return NULL;
	opentelemetry__proto__trace__v1__span__init(s);
	int err = w1_below(w, 100) < sh->error_pct;
	int ev = w1_below(w, 100) < sh->event_pct;

	s->trace_id.data = t->trace_id;
	s->trace_id.len = 16;
	s->flags = 0x101;   /* W3C sampled + "has is_remote" (parent is local) */
	if (k == 0 && t->role == W1_CONSUMER) {
		const char *topic = PICK(w, w1_topics);
		s->span_id.data = t->root_id;
		s->span_id.len = 8;
		s->name = w1_strf(w, "process %s", topic);
		s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER;
		s->start_time_unix_nano = t->t0;
		s->end_time_unix_nano = t->t0 + t->dur;
		w1_messaging_attrs(w, &a, topic, 1, err);
		Opentelemetry__Proto__Trace__V1__Span__Link *l = w1_alloc(w, sizeof *l);
		Opentelemetry__Proto__Trace__V1__Span__Link **lp = w1_alloc(w, sizeof *lp);
		if (!l || !lp)
			return NULL;
		opentelemetry__proto__trace__v1__span__link__init(l);
		l->trace_id.data = (uint8_t *)t->link_trace;
		l->trace_id.len = 16;
		l->span_id.data = (uint8_t *)t->link_span;
		l->span_id.len = 8;
		l->flags = 0x101;
		*lp = l;
		s->links = lp;
		s->n_links = 1;
	} else if (k == 0) {
		const char *method = PICK(w, w1_methods);
		s->span_id.data = t->root_id;
		s->span_id.len = 8;
		s->name = w1_strf(w, "%s %s", method, w1_routes[t->route]);
		s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
		s->start_time_unix_nano = t->t0;
		s->end_time_unix_nano = t->t0 + t->dur;
		w1_http_server_attrs(w, &a, t, method, err);
	} else {
		/* children split the root's time into trace_spans - 1 slots */
		uint32_t level = 1 + (k - 1) % sh->depth;
		uint64_t slot = t->dur / (sh->trace_spans > 1 ? sh->trace_spans - 1 : 1);
		uint64_t start = t->t0 + (k - 1) * slot + slot / 8;
		const char *peer = w1_service(w, sh->services == 16 ? w1_below(w, 16)
						   : w1_below(w, sh->services));
		s->span_id.data = w1_id(w, 8);
		s->span_id.len = 8;
		s->parent_span_id.data = t->last[level - 1];
		s->parent_span_id.len = 8;
		t->last[level] = s->span_id.data;
		s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
		s->start_time_unix_nano = start;
		s->end_time_unix_nano = start + slot / 2 + w1_below(w, (uint32_t)(slot / 4) + 1);
		if (k == 1 && t->role == W1_PRODUCER) {
			const char *topic = PICK(w, w1_topics);
			s->name = w1_strf(w, "send %s", topic);
			s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_PRODUCER;
			w1_messaging_attrs(w, &a, topic, 0, err);
			t->producer_span = s->span_id.data;
		} else if (k % 2) {
			s->name = w1_str(w, "GET");
			w1_http_client_attrs(w, &a, peer, err);
		} else {
			uint32_t rpc = w1_below(w, 5);
			s->name = w1_strf(w, "%s/%s", w1_rpc_services[rpc], w1_rpc_methods[rpc]);
			w1_rpc_client_attrs(w, &a, peer, rpc, err);
		}
	}
	if (sh->span_attrs > KN_W1_SPAN_ATTRS)
		w1_extra_attrs(w, &a);
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

void kn_w1_shape_default(struct kn_w1_shape *s)
{
	*s = (struct kn_w1_shape){
		.spans = KN_W1_SPANS,
		.trace_spans = KN_W1_TRACE_SPANS,
		.depth = 1,
		.resources = KN_W1_RESOURCES,
		.services = 16,
		.span_attrs = KN_W1_SPAN_ATTRS,
		.event_pct = KN_W1_EVENT_PCT,
		.error_pct = KN_W1_ERROR_PCT,
		.dur_min_ns = 1000000u,
		.dur_max_ns = 51000000u,
	};
}

int kn_w1_shape_check(const struct kn_w1_shape *s, char *msg, size_t cap)
{
#define BAD(...) do { snprintf(msg, cap, __VA_ARGS__); return -1; } while (0)
	if (s->spans < 1 || s->spans > 1000000)
		BAD("spans: %u not in 1..1000000", s->spans);
	if (s->trace_spans < 1 || s->trace_spans > 10000)
		BAD("trace_spans: %u not in 1..10000", s->trace_spans);
	if (s->depth < 1 || s->depth > s->trace_spans)
		BAD("depth: %u not in 1..trace_spans (%u)", s->depth, s->trace_spans);
	if (s->services < 1 || s->services > 10000)
		BAD("services: %u not in 1..10000", s->services);
	if (s->resources < 1 || s->resources > s->services)
		BAD("resources: %u not in 1..services (%u)", s->resources, s->services);
	if (s->span_attrs > 1000)
		BAD("span_attrs: %u over 1000", s->span_attrs);
	if (s->attr_bytes > 65536)
		BAD("attr_bytes: %u over 65536", s->attr_bytes);
	if (s->event_pct > 100 || s->error_pct > 100 || s->async_pct > 100)
		BAD("event_pct / error_pct / async_pct: not a percentage");
	if (s->dur_median_ns > 0 ? !(s->dur_sigma >= 0 && s->dur_sigma <= 10)
				 : !(s->dur_min_ns >= 1000 && s->dur_max_ns > s->dur_min_ns))
		BAD("duration: need min >= 1 us and max > min, or median > 0 and sigma in 0..10");
#undef BAD
	return 0;
}

struct kn_w1 *kn_w1_new_shape(uint64_t seed, const struct kn_w1_shape *sh)
{
	char msg[128];
	if (kn_w1_shape_check(sh, msg, sizeof msg) != 0)
		return NULL;
	struct kn_w1 *w = calloc(1, sizeof *w);
	if (!w)
		goto fail;
	w->seed = seed;
	w->sh = *sh;
	if (!(w->head = w1_block_new()))
		goto fail;
	w->cur = w->head;
	return w;
fail:
	kn_w1_free(w);
	return NULL;
}

struct kn_w1 *kn_w1_new(uint64_t seed)
{
	struct kn_w1_shape sh;
	kn_w1_shape_default(&sh);
	return kn_w1_new_shape(seed, &sh);
}

void kn_w1_set_end(struct kn_w1 *w, uint64_t end_unix_ns)
{
	w->end_ns = end_unix_ns;
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
	const struct kn_w1_shape *sh = &w->sh;
	struct kn_w1_stats st = { 0 };
	const uint32_t nres = sh->resources;
	w1_rewind(w);
	/* the request's stream starts at a hash of (seed, idx): splitmix64
	 * streams advance by a fixed gamma, so a start of seed*a + idx*gamma
	 * (as W1 once had) made request idx+1 replay request idx shifted by one
	 * draw, and trace ids repeated across requests */
	w->rng = w1_mix(w->seed * 0xd1342543de82ef95ull ^ w1_mix(idx + 0x9e3779b97f4a7c15ull));

	kn_w1_req *req = w1_alloc(w, sizeof *req);
	w1_rs **rsv = w1_alloc(w, nres * sizeof *rsv);
	uint32_t *svc = w1_alloc(w, nres * sizeof *svc);
	uint32_t *cnt = w1_alloc(w, nres * sizeof *cnt);
	w1_ss **ssv = w1_alloc(w, nres * sizeof *ssv);
	uint8_t **last = w1_alloc(w, (sh->depth + 1) * sizeof *last);
	if (!req || !rsv || !svc || !cnt || !ssv || !last)
		return NULL;
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);

	/* distinct services for this request's resources */
	for (uint32_t r = 0; r < nres; r++) {
		int dup;
		do {
			svc[r] = w1_below(w, sh->services);
			dup = 0;
			for (uint32_t q = 0; q < r; q++)
				dup |= svc[q] == svc[r];
		} while (dup);
	}

	/* spans per resource: trace t (of ntraces, the last one possibly short)
	 * goes to resource t % resources */
	uint32_t ntraces = (sh->spans + sh->trace_spans - 1) / sh->trace_spans;
	for (uint32_t t = 0; t < ntraces; t++) {
		uint32_t left = sh->spans - t * sh->trace_spans;
		cnt[t % nres] += left < sh->trace_spans ? left : sh->trace_spans;
	}

	for (uint32_t r = 0; r < nres; r++) {
		w1_rs *rs = w1_alloc(w, sizeof *rs);
		w1_ss *ss = w1_alloc(w, sizeof *ss);
		w1_ss **ssp = w1_alloc(w, sizeof *ssp);
		w1_scope *scope = w1_alloc(w, sizeof *scope);
		w1_span **spans = w1_alloc(w, (cnt[r] ? cnt[r] : 1) * sizeof *spans);
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
		rs->resource = w1_resource(w, w1_service(w, svc[r]));
		rs->scope_spans = ssp;
		rs->n_scope_spans = 1;
		rs->schema_url = w1_str(w, "https://opentelemetry.io/schemas/1.26.0");
		if (!rs->resource)
			return NULL;
		rsv[r] = rs;
		ssv[r] = ss;
	}
	req->resource_spans = rsv;
	req->n_resource_spans = nres;

	/* W1: one second of traffic per request index, starting 2024-01-01 */
	uint64_t base = 1704067200ull * 1000000000ull + idx * 1000000000ull;
	const uint8_t *link_trace = NULL, *link_span = NULL;
	for (uint32_t t = 0; t < ntraces; t++) {
		uint32_t r = t % nres;
		uint32_t left = sh->spans - t * sh->trace_spans;
		uint32_t n = left < sh->trace_spans ? left : sh->trace_spans;
		/* statement by statement: the draw order is part of W1 */
		struct w1_trace tr = { .service = w1_service(w, svc[r]), .last = last };
		tr.trace_id = w1_id(w, 16);
		tr.root_id = w1_id(w, 8);
		tr.t0 = base + w1_below(w, 1000000000u);
		tr.dur = w1_duration(w);
		tr.route = w1_below(w, (uint32_t)(sizeof w1_routes / sizeof w1_routes[0]));
		tr.item = w1_below(w, 100000);
		if (w->oom)
			return NULL;
		if (w->end_ns)
			tr.t0 = w->end_ns > tr.dur ? w->end_ns - tr.dur : 0;
		if (link_span) {
			tr.role = W1_CONSUMER;
			tr.link_trace = link_trace;
			tr.link_span = link_span;
			link_span = NULL;
			st.journeys++;
		} else if (sh->async_pct && n >= 2 && t + 1 < ntraces &&
			   w1_below(w, 100) < sh->async_pct) {
			tr.role = W1_PRODUCER;
		}
		last[0] = tr.root_id;
		for (uint32_t k = 0; k < n; k++) {
			w1_span *s = w1_span_build(w, &tr, k, &st);
			if (!s)
				return NULL;
			ssv[r]->spans[ssv[r]->n_spans++] = s;
			st.spans++;
		}
		if (tr.role == W1_PRODUCER) {
			link_trace = tr.trace_id;
			link_span = tr.producer_span;
		}
		st.traces++;
	}
	st.resources = nres;
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
