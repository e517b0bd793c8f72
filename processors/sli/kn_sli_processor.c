/* SPDX-License-Identifier: Apache-2.0
 * The `sli` processor's lifecycle and hot path (see kn_sli.h for the
 * semantics). process() makes two passes over a batch: first it remembers
 * every span matching a `start` matcher in the shard's join map (so a start
 * and an end in the same batch join whatever their order), then it turns
 * every span matching `span` / `end` into one weighted event: latency,
 * success, dimension set -> series -> counters, histogram, exemplar and
 * windows. The batch is forwarded unchanged, except that with
 * write_attributes the end spans get sli.<name>.* attributes.
 *
 * Costs per span: one walk of the chunk's framing (kn_tail_view), a few
 * string compares per matcher, attribute lookups only for spans that match
 * an end matcher. No allocation except for a series' first event in a shard
 * and the attribute rewrite. No locks except a mutex the first time a shard
 * sees a dimension set. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_hex.h"
#include "../journey/kn_journey.h"
#include "../journey/kn_journey_registry.h"
#include "../tail_sampling/kn_tail_view.h"
#include "kn_sli_proc_int.h"

static uint64_t default_clock(void *ctx)
{
	(void)ctx;
	return kn_unix_ns();
}

uint64_t kn_sli_now(const struct kn_sli *p)
{
	return p->clock(p->clock_ctx);
}

void kn_sli_set_clock(void *inst, uint64_t (*now_unix_ns)(void *ctx), void *ctx)
{
	struct kn_sli *p = inst;
	p->clock = now_unix_ns ? now_unix_ns : default_clock;
	p->clock_ctx = ctx;
}

void kn_sli_set_journey_registry(void *inst, const struct kn_journey_registry *r)
{
	((struct kn_sli *)inst)->journeys = r;
}

static const struct kn_journey_registry *journeys(const struct kn_sli *p)
{
	/* The journey processor publishes heads in a shared registry; NULL when
	 * no journey processor runs (then there are no heads to join). */
	return p->journeys ? p->journeys : kn_journey_registry_shared();
}

/* ---- what one span offers the matchers ---- */
struct span_ctx {
	const struct kn_chunk *c;
	const struct kn_span_hdr *h;
	const struct kn_tail_rs *rs;
	const struct kn_tail_span *sp;
	int svc_done;
	const char *svc;
	uint32_t svclen;
	int head_state;               /* 0 not looked up, 1 found, -1 absent */
	struct kn_journey_head head;
};

static int bytes_eq(const char *a, size_t alen, const char *b)
{
	return b && strlen(b) == alen && memcmp(a, b, alen) == 0;
}

static void span_service(struct span_ctx *x)
{
	if (x->svc_done)
		return;
	x->svc_done = 1;
	struct kn_tail_value v;
	x->svc = "";
	x->svclen = 0;
	if (kn_tail_resource_attr(x->rs, "service.name", 12, &v))
		x->svclen = kn_tail_value_str(&v, &x->svc);
}

/* A value as text (what matchers and dimensions compare and show). */
static size_t value_text(const struct kn_tail_value *v, char *buf, size_t cap, const char **out)
{
	int n = 0;
	switch (v->type) {
	case KN_TV_STR:
		*out = v->s;
		return v->slen;
	case KN_TV_INT:
		n = snprintf(buf, cap, "%" PRId64, v->i);
		break;
	case KN_TV_BOOL:
		n = snprintf(buf, cap, "%s", v->b ? "true" : "false");
		break;
	case KN_TV_DOUBLE:
		n = snprintf(buf, cap, "%.17g", v->d);
		break;
	default:
		n = 0;
		buf[0] = '\0';
	}
	*out = buf;
	return n > 0 ? (size_t)n : 0;
}

static int attrs_match(const struct kn_strmap *m, const uint8_t *msg, uint32_t len,
		       const struct kn_tail_rs *rs)
{
	for (size_t i = 0; i < m->n; i++) {
		struct kn_tail_value v;
		const char *k = m->keys[i];
		int found = kn_tail_attr_get(msg, len, KN_TAIL_SPAN_ATTRS, k, strlen(k), &v);
		if (!found && rs)
			found = kn_tail_resource_attr(rs, k, strlen(k), &v);
		if (!found)
			return 0;
		char buf[64];
		const char *t;
		size_t tl = value_text(&v, buf, sizeof buf, &t);
		if (!bytes_eq(t, tl, m->values[i]))
			return 0;
	}
	return 1;
}

static int span_matches(const struct kn_sli_match *m, struct span_ctx *x)
{
	if (m->kind_v >= 0 && x->h->kind != m->kind_v)
		return 0;
	if (m->name && !bytes_eq((const char *)x->c->data + x->h->name_off, x->h->name_len, m->name))
		return 0;
	if (m->service) {
		span_service(x);
		if (!bytes_eq(x->svc, x->svclen, m->service))
			return 0;
	}
	return attrs_match(&m->attributes, x->sp->msg, x->sp->len, x->rs);
}

static int head_matches(const struct kn_sli_match *m, const struct kn_journey_head *h)
{
	if (m->kind_v >= 0 && h->kind != m->kind_v)
		return 0;
	if (m->name && !bytes_eq(h->name, h->name_len, m->name))
		return 0;
	if (m->service && !bytes_eq(h->service, h->service_len, m->service))
		return 0;
	return attrs_match(&m->attributes, h->attrs, h->attrs_len, NULL);
}

/* The end span's journey head, looked up once per span. */
static const struct kn_journey_head *span_head(const struct kn_sli *p, struct span_ctx *x)
{
	if (x->head_state)
		return x->head_state > 0 ? &x->head : NULL;
	x->head_state = -1;
	const struct kn_journey_registry *r = journeys(p);
	if (!r)
		return NULL;
	uint8_t jid[16];
	memcpy(jid, x->h->trace_id, 16);
	struct kn_tail_value v;
	const char *k = p->cfg.journey_id_attribute;
	if (kn_tail_span_attr(x->sp, k, strlen(k), &v)) {
		if (v.type == KN_TV_BYTES && v.slen == 16) {
			memcpy(jid, v.s, 16);
		} else if (v.type == KN_TV_STR && v.slen == 32) {
			uint8_t dec[16];
			if (kn_hex_decode((const char *)v.s, 32, dec))
				memcpy(jid, dec, 16);
		}
	}
	uint32_t ns = kn_journey_registry_nshards(r);
	uint64_t now = kn_now_ns();
	if (!kn_journey_registry_get(r, kn_shard_of(jid, ns), jid, now, &x->head)) {
		/* The head was seen by another collector (found through a shared
		 * registry): this process holds it in the entry of the span's own
		 * trace, which names the journey's head. */
		const uint8_t *own = x->h->trace_id;
		if (memcmp(own, jid, 16) == 0 ||
		    !kn_journey_registry_get(r, kn_shard_of(own, ns), own, now, &x->head) ||
		    memcmp(x->head.journey_id, jid, 16) != 0)
			return NULL;
	}
	x->head_state = 1;
	return &x->head;
}

static int attr_int(const struct kn_tail_span *sp, const char *k, int64_t *out)
{
	struct kn_tail_value v;
	if (!kn_tail_span_attr(sp, k, strlen(k), &v))
		return 0;
	if (v.type == KN_TV_INT) {
		*out = v.i;
		return 1;
	}
	if (v.type == KN_TV_STR && v.slen > 0 && v.slen < 12) {
		char b[12];
		memcpy(b, v.s, v.slen);
		b[v.slen] = '\0';
		char *e;
		long long x = strtoll(b, &e, 10);
		if (*e == '\0') {
			*out = x;
			return 1;
		}
	}
	return 0;
}

static int success(const struct kn_sli_success *r, const struct span_ctx *x)
{
	if (r->status && x->sp->status_code == 2)
		return 0;
	int64_t code;
	if (r->http && (attr_int(x->sp, "http.response.status_code", &code) ||
			attr_int(x->sp, "http.status_code", &code)) && code >= 500)
		return 0;
	if (r->grpc && attr_int(x->sp, "rpc.grpc.status_code", &code)) {
		if (x->h->kind == 2) { /* SERVER */
			if (code == 2 || code == 4 || code == 12 || code == 13 || code == 14 ||
			    code == 15)
				return 0;
		} else if (code != 0) {
			return 0;
		}
	}
	return 1;
}

/* Appends one dimension value to the key: a length byte and the bytes,
 * control characters replaced, cut at a UTF-8 boundary. */
static uint32_t key_put(char *key, uint32_t o, const char *s, size_t n)
{
	if (n > KN_SLI_VALUE_MAX)
		for (n = KN_SLI_VALUE_MAX; n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80; n--)
			;
	if (o + 1 + n > KN_SLI_KEY_MAX)
		n = 0;
	if (o + 1 > KN_SLI_KEY_MAX)
		return o;
	key[o++] = (char)n;
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = (uint8_t)s[i];
		key[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	return o;
}

static uint32_t build_key(const struct kn_sli *p, const struct kn_sli_def *d, struct span_ctx *x,
			  char *key)
{
	uint32_t o = 0;
	for (size_t i = 0; i < d->dims.n; i++) {
		const struct kn_sli_dim *dm = &d->dims.v[i];
		struct kn_tail_value v = {.type = KN_TV_EMPTY};
		const char *t = "";
		size_t tl = 0;
		char buf[64];
		size_t kl = strlen(dm->key);
		if (dm->from_v == KN_SLI_FROM_SPAN) {
			if (kn_tail_span_attr(x->sp, dm->key, kl, &v))
				tl = value_text(&v, buf, sizeof buf, &t);
		} else if (dm->from_v == KN_SLI_FROM_RESOURCE) {
			if (kn_tail_resource_attr(x->rs, dm->key, kl, &v))
				tl = value_text(&v, buf, sizeof buf, &t);
		} else {
			const struct kn_journey_head *h = span_head(p, x);
			if (h && strcmp(dm->key, "service") == 0) {
				t = h->service;
				tl = h->service_len;
			} else if (h && strcmp(dm->key, "name") == 0) {
				t = h->name;
				tl = h->name_len;
			} else if (h && kn_tail_attr_get(h->attrs, h->attrs_len, KN_TAIL_SPAN_ATTRS,
						       dm->key, kl, &v)) {
				tl = value_text(&v, buf, sizeof buf, &t);
			}
		}
		o = key_put(key, o, t, tl);
	}
	return o;
}

static void note_write(struct kn_sli_shard *s, uint32_t chunk, uint32_t off, uint32_t sli,
		       uint64_t latency_ns, int good)
{
	if (s->nwrites == s->capwrites) {
		uint32_t cap = s->capwrites ? s->capwrites * 2 : 64;
		struct kn_sli_write *w = realloc(s->writes, cap * sizeof *w);
		if (!w) {
			kn_counter_add(s->p->attrs_failed, 1);
			return;
		}
		s->writes = w;
		s->capwrites = cap;
	}
	s->writes[s->nwrites++] = (struct kn_sli_write){
		.chunk = chunk, .span_off = off, .sli = sli,
		.latency_ms = (int64_t)(latency_ns / 1000000), .good = good};
}

static void event(struct kn_sli_shard *s, uint32_t i, struct span_ctx *x, uint64_t start_ns,
		  uint64_t now, uint32_t chunk)
{
	struct kn_sli *p = s->p;
	struct kn_sli_rt *rt = &p->slis[i];
	const struct kn_sli_def *d = rt->d;
	uint64_t end_ns = x->h->end_ns;
	uint64_t lat = end_ns > start_ns ? end_ns - start_ns : 0;
	int good = success(&d->success, x) && (!d->threshold_ns || lat <= d->threshold_ns);
	double w = kn_sli_weight(x->sp->trace_state, x->sp->trace_state_len);
	uint32_t kl = build_key(p, d, x, s->key);
	int overflow = 0;
	uint32_t id = kn_sli_series_id(&rt->tab, &s->per[i], s->key, kl, &overflow);
	if (overflow)
		kn_counter_add(rt->overflow, 1);
	struct kn_sli_series *se = kn_sli_series_get(&s->per[i], id);
	if (se)
		kn_sli_series_record(se, p->bounds, p->nb, now, w, good, (double)lat / 1e9,
				     x->h->trace_id);
	if (p->cfg.write_attributes)
		note_write(s, chunk, x->h->off, i, lat, good);
}

/* Visits every span of a chunk with its resource; hdr found by offset. */
typedef void (*span_fn)(struct kn_sli_shard *s, struct span_ctx *x, uint64_t now, uint32_t chunk);

static void each_span(struct kn_sli_shard *s, const struct kn_chunk *c, uint32_t chunk,
		      uint64_t now, span_fn fn)
{
	struct kn_tail_walk w;
	struct kn_tail_rs rs;
	struct kn_tail_span sp;
	uint32_t j = 0;
	kn_tail_walk_init_bytes(&w, c->data, c->len);
	while (kn_tail_walk_next(&w, &rs)) {
		while (kn_tail_rs_next_span(&rs, &sp)) {
			uint32_t off = (uint32_t)(sp.msg - c->data);
			if (j >= c->nspans || c->spans[j].off != off)
				for (j = 0; j < c->nspans && c->spans[j].off != off; j++)
					;
			if (j >= c->nspans) {
				j = 0;
				continue; /* not indexed (an invalid span the reader left out) */
			}
			struct span_ctx x = {.c = c, .h = &c->spans[j], .rs = &rs, .sp = &sp};
			fn(s, &x, now, chunk);
			j++;
		}
	}
}

static void pass_starts(struct kn_sli_shard *s, struct span_ctx *x, uint64_t now, uint32_t chunk)
{
	(void)chunk;
	struct kn_sli *p = s->p;
	for (uint32_t i = 0; i < p->nslis; i++) {
		const struct kn_sli_def *d = p->slis[i].d;
		if (!d->start.present || d->start.from_v == KN_SLI_START_JOURNEY)
			continue;
		if (span_matches(&d->start, x) &&
		    kn_sli_join_put(&s->join, x->h->trace_id, i, x->h->start_ns, now))
			kn_counter_add(p->join_evicted, 1);
	}
}

static void pass_ends(struct kn_sli_shard *s, struct span_ctx *x, uint64_t now, uint32_t chunk)
{
	struct kn_sli *p = s->p;
	for (uint32_t i = 0; i < p->nslis; i++) {
		const struct kn_sli_def *d = p->slis[i].d;
		if (d->span.present) {
			if (span_matches(&d->span, x))
				event(s, i, x, x->h->start_ns, now, chunk);
			continue;
		}
		if (!span_matches(&d->end, x))
			continue;
		uint64_t start;
		if (d->start.from_v != KN_SLI_START_JOURNEY &&
		    kn_sli_join_get(&s->join, x->h->trace_id, i, now, &start)) {
			event(s, i, x, start, now, chunk);
			continue;
		}
		if (d->start.from_v != KN_SLI_START_TRACE) {
			const struct kn_journey_head *h = span_head(p, x);
			if (h && head_matches(&d->start, h)) {
				event(s, i, x, h->start_ns, now, chunk);
				continue;
			}
		}
		kn_counter_add(p->slis[i].unjoined, 1);
	}
}

static int sli_process(void *state, struct kn_batch *b, const struct kn_emit *next)
{
	struct kn_sli_shard *s = state;
	uint64_t now = kn_sli_now(s->p);
	s->nwrites = 0;
	for (uint32_t c = 0; c < b->n; c++)
		each_span(s, b->chunks[c], c, now, pass_starts);
	for (uint32_t c = 0; c < b->n; c++)
		each_span(s, b->chunks[c], c, now, pass_ends);
	if (s->nwrites)
		kn_sli_apply_writes(s, b);
	kn_emit(next, b);
	return KN_OK;
}

/* ---- lifecycle ---- */

static void sli_destroy(void *inst)
{
	struct kn_sli *p = inst;
	if (!p)
		return;
	kn_sli_list_remove(p);
	for (size_t i = 0; p->slis && i < p->nslis; i++) {
		kn_sli_dimtab_free(&p->slis[i].tab);
		free(p->slis[i].attr_good);
		free(p->slis[i].attr_latency);
	}
	free(p->slis);
	free(p->shards);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static int sli_create(const struct kn_component_ctx *ctx, const void *cfg, void **inst,
		      struct kn_err *err)
{
	struct kn_sli *p = calloc(1, sizeof *p);
	if (!p)
		return kn_errf(err, "out of memory");
	pthread_mutex_init(&p->mu, NULL);
	p->cfg = *(const struct kn_sli_cfg *)cfg;
	p->nshards = ctx->nshards ? ctx->nshards : 1;
	p->metrics = ctx->metrics;
	p->clock = default_clock;
	int nb = kn_sli_buckets(&p->cfg.latency_buckets, "latency_buckets", p->bounds, err);
	if (nb < 0)
		goto fail;
	p->nb = (uint32_t)nb;
	p->nslis = p->cfg.slis.n;
	p->slis = calloc(p->nslis ? p->nslis : 1, sizeof *p->slis);
	p->shards = calloc(p->nshards, sizeof *p->shards);
	if (!p->slis || !p->shards)
		goto oom;
	char esc[96], lb[256];
	kn_metrics_label_escape(ctx->id ? ctx->id : "sli", esc, sizeof esc);
	snprintf(lb, sizeof lb, "processor=\"%s\"", esc);
	p->join_evicted = kn_metrics_counter(p->metrics, "kansatsu_sli_join_evicted_total",
		"Start spans evicted from the local-join map before their TTL (join_slots too small).", lb);
	p->attrs_failed = kn_metrics_counter(p->metrics, "kansatsu_sli_attribute_writes_failed_total",
		"End spans whose sli.* attributes could not be written (memory).", lb);
	for (size_t i = 0; i < p->nslis; i++) {
		struct kn_sli_rt *rt = &p->slis[i];
		rt->d = &p->cfg.slis.v[i];
		rt->nhours = kn_sli_win_hours(rt->d->window_ns);
		if (kn_sli_dimtab_init(&rt->tab, rt->d, (uint32_t)p->cfg.max_series) != 0)
			goto oom;
		char ename[160];
		kn_metrics_label_escape(rt->d->name, ename, sizeof ename);
		snprintf(lb, sizeof lb, "sli=\"%s\"", ename);
		rt->overflow = kn_metrics_counter(p->metrics, "kansatsu_sli_overflow_events_total",
			"SLI events counted in the overflow series (max_series dimension sets reached).", lb);
		rt->unjoined = kn_metrics_counter(p->metrics, "kansatsu_sli_unjoined_events_total",
			"End spans whose start span was not found (not in the trace seen so far, not the journey head).", lb);
		size_t n = strlen(rt->d->name) + 16;
		rt->attr_good = malloc(n);
		rt->attr_latency = malloc(n);
		if (!rt->attr_good || !rt->attr_latency)
			goto oom;
		snprintf(rt->attr_good, n, "sli.%s.good", rt->d->name);
		snprintf(rt->attr_latency, n, "sli.%s.latency_ms", rt->d->name);
	}
	if (kn_sli_list_add(p) != 0)
		goto oom;
	*inst = p;
	return KN_OK;
oom:
	kn_errf(err, "out of memory");
fail:
	sli_destroy(p);
	return KN_ERR;
}

static void sli_shard_destroy(void *state)
{
	struct kn_sli_shard *s = state;
	if (!s)
		return;
	struct kn_sli *p = s->p;
	pthread_mutex_lock(&p->mu);
	if (s->shard < p->nshards && p->shards[s->shard] == s)
		p->shards[s->shard] = NULL;
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; s->per && i < p->nslis; i++)
		kn_sli_shard_sli_free(&s->per[i], (uint32_t)p->cfg.max_series);
	free(s->per);
	kn_sli_join_free(&s->join);
	free(s->writes);
	kn_wire_index_free(&s->ix);
	free(s);
}

static int sli_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err)
{
	struct kn_sli *p = inst;
	if (shard >= p->nshards)
		return kn_errf(err, "sli: shard %u out of range", shard);
	struct kn_sli_shard *s = calloc(1, sizeof *s);
	if (!s)
		return kn_errf(err, "out of memory");
	s->p = p;
	s->shard = shard;
	kn_wire_index_init(&s->ix);
	s->per = calloc(p->nslis ? p->nslis : 1, sizeof *s->per);
	if (!s->per || kn_sli_join_init(&s->join, p->cfg.join_slots, p->cfg.join_ttl_ns) != 0)
		goto oom;
	for (size_t i = 0; i < p->nslis; i++)
		if (kn_sli_shard_sli_init(&s->per[i], (uint32_t)p->cfg.max_series, p->slis[i].nhours) != 0)
			goto oom;
	pthread_mutex_lock(&p->mu);
	p->shards[shard] = s;
	pthread_mutex_unlock(&p->mu);
	*state = s;
	return KN_OK;
oom:
	sli_shard_destroy(s);
	return kn_errf(err, "out of memory");
}

const struct kn_component kn_processor_sli = {
	.type = "sli",
	.kind = KN_PROCESSOR,
	.summary = "latency/success SLIs across spans: good/total, histograms, error budget, burn rates",
	.config_size = sizeof(struct kn_sli_cfg),
	.config_fields = kn_sli_fields,
	.validate = kn_sli_validate,
	.prom_rules = kn_sli_prom_rules,
	.create = sli_create,
	.destroy = sli_destroy,
	.shard_create = sli_shard_create,
	.process = sli_process,
	.shard_destroy = sli_shard_destroy,
};
