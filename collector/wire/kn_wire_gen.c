/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_gen: random OTLP trace requests from a seed (see kn_wire_gen.h).
 * Allocation failures are reported by a sticky flag in the generator state, so
 * the builders stay straight-line; the tree is freed with protobuf-c's own
 * free_unpacked (every pointer in it comes from malloc). */
#include "kn_wire_gen.h"
#include "kn_wire.h"

#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__AnyValue kn_av;
typedef Opentelemetry__Proto__Common__V1__KeyValue kn_kv;
typedef Opentelemetry__Proto__Common__V1__ArrayValue kn_arr;
typedef Opentelemetry__Proto__Common__V1__KeyValueList kn_kvl;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope kn_scope;
typedef Opentelemetry__Proto__Common__V1__EntityRef kn_eref;
typedef Opentelemetry__Proto__Resource__V1__Resource kn_res;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans kn_rs;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans kn_ss;
typedef Opentelemetry__Proto__Trace__V1__Span kn_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event kn_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link kn_link;
typedef Opentelemetry__Proto__Trace__V1__Status kn_status;

struct gen {
	uint64_t s;
	const struct kn_wire_gen_opts *o;
	int oom;
	uint8_t (*pool)[16];
};

static uint64_t gen_next(struct gen *g)
{
	/* xorshift64* */
	g->s ^= g->s >> 12;
	g->s ^= g->s << 25;
	g->s ^= g->s >> 27;
	return g->s * 0x2545f4914f6cdd1dull;
}

static uint32_t gen_below(struct gen *g, uint32_t n)
{
	return n ? (uint32_t)((gen_next(g) >> 32) % n) : 0;
}

static void *gen_alloc(struct gen *g, size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		g->oom = 1;
	return p;
}

static char *gen_str(struct gen *g, uint32_t maxlen)
{
	uint32_t n = gen_below(g, maxlen + 1);
	char *s = gen_alloc(g, n + 1);
	if (!s)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		s[i] = (char)('a' + gen_below(g, 26));
	return s;
}

static void gen_bytes(struct gen *g, ProtobufCBinaryData *b, uint32_t n)
{
	b->len = 0;
	b->data = NULL;
	if (!n)
		return;
	b->data = gen_alloc(g, n);
	if (!b->data)
		return;
	b->len = n;
	for (uint32_t i = 0; i < n; i++)
		b->data[i] = (uint8_t)gen_next(g);
}

static kn_kv **gen_attrs(struct gen *g, size_t *n, uint32_t depth);

static kn_av *gen_value(struct gen *g, uint32_t depth)
{
	kn_av *v = gen_alloc(g, sizeof *v);
	if (!v)
		return NULL;
	opentelemetry__proto__common__v1__any_value__init(v);
	uint32_t t = gen_below(g, depth < g->o->max_depth ? 9 : 6);
	switch (t) {
	case 0: /* empty AnyValue */
		break;
	case 1:
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		v->string_value = gen_str(g, 12);
		break;
	case 2:
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
		v->bool_value = (protobuf_c_boolean)gen_below(g, 2);
		break;
	case 3:
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
		v->int_value = (int64_t)gen_next(g);
		break;
	case 4:
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
		v->double_value = (double)gen_next(g) / 3.0;
		break;
	case 5:
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
		gen_bytes(g, &v->bytes_value, gen_below(g, 9));
		break;
	case 6: case 7: {
		kn_arr *a = gen_alloc(g, sizeof *a);
		if (!a)
			break;
		opentelemetry__proto__common__v1__array_value__init(a);
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
		v->array_value = a;
		uint32_t n = gen_below(g, 4);
		a->values = gen_alloc(g, n * sizeof *a->values);
		if (!a->values)
			break;
		for (uint32_t i = 0; i < n; i++)
			if ((a->values[a->n_values] = gen_value(g, depth + 1)))
				a->n_values++;
		break;
	}
	default: {
		kn_kvl *l = gen_alloc(g, sizeof *l);
		if (!l)
			break;
		opentelemetry__proto__common__v1__key_value_list__init(l);
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
		v->kvlist_value = l;
		l->values = gen_attrs(g, &l->n_values, depth + 1);
		break;
	}
	}
	return v;
}

static kn_kv **gen_attrs(struct gen *g, size_t *n, uint32_t depth)
{
	uint32_t want = gen_below(g, g->o->max_attrs + 1);
	*n = 0;
	if (!want)
		return NULL;
	kn_kv **a = gen_alloc(g, want * sizeof *a);
	if (!a)
		return NULL;
	for (uint32_t i = 0; i < want; i++) {
		kn_kv *kv = gen_alloc(g, sizeof *kv);
		if (!kv)
			break;
		opentelemetry__proto__common__v1__key_value__init(kv);
		a[(*n)++] = kv;
		kv->key = gen_str(g, 10);
		if (gen_below(g, 8))
			kv->value = gen_value(g, depth);
	}
	return a;
}

static void gen_trace_id(struct gen *g, ProtobufCBinaryData *b)
{
	if (g->pool && gen_below(g, 2)) {
		b->data = gen_alloc(g, 16);
		if (b->data) {
			memcpy(b->data, g->pool[gen_below(g, g->o->trace_pool)], 16);
			b->len = 16;
		}
		return;
	}
	gen_bytes(g, b, 16);
}

static kn_span *gen_span(struct gen *g)
{
	kn_span *s = gen_alloc(g, sizeof *s);
	if (!s)
		return NULL;
	opentelemetry__proto__trace__v1__span__init(s);
	gen_trace_id(g, &s->trace_id);
	gen_bytes(g, &s->span_id, 8);
	if (gen_below(g, 100) < g->o->invalid_pct) {
		switch (gen_below(g, 5)) {
		case 0: /* short trace id */
			if (s->trace_id.len)
				s->trace_id.len = 8;
			break;
		case 1: /* all-zero trace id */
			if (s->trace_id.data)
				memset(s->trace_id.data, 0, s->trace_id.len);
			break;
		case 2: /* long span id */
			free(s->span_id.data);
			gen_bytes(g, &s->span_id, 9);
			break;
		case 3: /* all-zero span id */
			if (s->span_id.data)
				memset(s->span_id.data, 0, s->span_id.len);
			break;
		default: /* odd parent */
			gen_bytes(g, &s->parent_span_id, 3);
			break;
		}
	}
	if (!s->parent_span_id.len && gen_below(g, 2))
		gen_bytes(g, &s->parent_span_id, 8);
	if (gen_below(g, 4) == 0)
		s->trace_state = gen_str(g, 20);
	if (gen_below(g, 2))
		s->flags = (uint32_t)gen_next(g) & 0x3ff;
	if (gen_below(g, 16))
		s->name = gen_str(g, 24);
	s->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)gen_below(g, 6);
	s->start_time_unix_nano = gen_next(g);
	s->end_time_unix_nano = gen_below(g, 8) ? gen_next(g) : 0;
	s->attributes = gen_attrs(g, &s->n_attributes, 0);
	s->dropped_attributes_count = gen_below(g, 3) ? 0 : (uint32_t)gen_next(g);
	uint32_t ne = gen_below(g, 4), nl = gen_below(g, 4);
	if (ne && (s->events = gen_alloc(g, ne * sizeof *s->events))) {
		for (uint32_t i = 0; i < ne; i++) {
			kn_event *e = gen_alloc(g, sizeof *e);
			if (!e)
				break;
			opentelemetry__proto__trace__v1__span__event__init(e);
			s->events[s->n_events++] = e;
			e->time_unix_nano = gen_next(g);
			e->name = gen_str(g, 8);
			e->attributes = gen_attrs(g, &e->n_attributes, 0);
			e->dropped_attributes_count = gen_below(g, 3);
		}
	}
	s->dropped_events_count = gen_below(g, 3);
	if (nl && (s->links = gen_alloc(g, nl * sizeof *s->links))) {
		for (uint32_t i = 0; i < nl; i++) {
			kn_link *l = gen_alloc(g, sizeof *l);
			if (!l)
				break;
			opentelemetry__proto__trace__v1__span__link__init(l);
			s->links[s->n_links++] = l;
			gen_bytes(g, &l->trace_id, 16);
			gen_bytes(g, &l->span_id, 8);
			if (gen_below(g, 2))
				l->trace_state = gen_str(g, 10);
			l->attributes = gen_attrs(g, &l->n_attributes, 0);
			l->dropped_attributes_count = gen_below(g, 3);
			l->flags = gen_below(g, 0x400);
		}
	}
	s->dropped_links_count = gen_below(g, 3);
	if (gen_below(g, 2)) {
		kn_status *st = gen_alloc(g, sizeof *st);
		if (st) {
			opentelemetry__proto__trace__v1__status__init(st);
			st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)gen_below(g, 3);
			if (gen_below(g, 2))
				st->message = gen_str(g, 16);
			s->status = st;
		}
	}
	return s;
}

static kn_ss *gen_scope_spans(struct gen *g)
{
	kn_ss *ss = gen_alloc(g, sizeof *ss);
	if (!ss)
		return NULL;
	opentelemetry__proto__trace__v1__scope_spans__init(ss);
	if (gen_below(g, 5)) {
		kn_scope *sc = gen_alloc(g, sizeof *sc);
		if (sc) {
			opentelemetry__proto__common__v1__instrumentation_scope__init(sc);
			sc->name = gen_str(g, 12);
			if (gen_below(g, 2))
				sc->version = gen_str(g, 6);
			sc->attributes = gen_attrs(g, &sc->n_attributes, 0);
			sc->dropped_attributes_count = gen_below(g, 2);
			ss->scope = sc;
		}
	}
	uint32_t n = gen_below(g, g->o->max_spans + 1);
	if (n && (ss->spans = gen_alloc(g, n * sizeof *ss->spans)))
		for (uint32_t i = 0; i < n; i++)
			if ((ss->spans[ss->n_spans] = gen_span(g)))
				ss->n_spans++;
	if (gen_below(g, 3) == 0)
		ss->schema_url = gen_str(g, 30);
	return ss;
}

static kn_rs *gen_resource_spans(struct gen *g)
{
	kn_rs *rs = gen_alloc(g, sizeof *rs);
	if (!rs)
		return NULL;
	opentelemetry__proto__trace__v1__resource_spans__init(rs);
	if (gen_below(g, 5)) {
		kn_res *r = gen_alloc(g, sizeof *r);
		if (r) {
			opentelemetry__proto__resource__v1__resource__init(r);
			r->attributes = gen_attrs(g, &r->n_attributes, 0);
			r->dropped_attributes_count = gen_below(g, 2);
			if (gen_below(g, 4) == 0 && (r->entity_refs = gen_alloc(g, sizeof *r->entity_refs))) {
				kn_eref *e = gen_alloc(g, sizeof *e);
				if (e) {
					opentelemetry__proto__common__v1__entity_ref__init(e);
					e->type = gen_str(g, 8);
					e->schema_url = gen_str(g, 8);
					e->n_id_keys = 1;
					e->id_keys = gen_alloc(g, sizeof *e->id_keys);
					if (e->id_keys)
						e->id_keys[0] = gen_str(g, 8);
					else
						e->n_id_keys = 0;
					r->entity_refs[0] = e;
					r->n_entity_refs = 1;
				}
			}
			rs->resource = r;
		}
	}
	uint32_t n = gen_below(g, g->o->max_scopes + 1);
	if (n && (rs->scope_spans = gen_alloc(g, n * sizeof *rs->scope_spans)))
		for (uint32_t i = 0; i < n; i++)
			if ((rs->scope_spans[rs->n_scope_spans] = gen_scope_spans(g)))
				rs->n_scope_spans++;
	if (gen_below(g, 3) == 0)
		rs->schema_url = gen_str(g, 30);
	return rs;
}

kn_wire_gen_req *kn_wire_gen_request(uint64_t seed, const struct kn_wire_gen_opts *o)
{
	struct gen g = { .s = seed * 0x9e3779b97f4a7c15ull + 1, .o = o };
	kn_wire_gen_req *req = NULL;

	if (o->trace_pool) {
		g.pool = calloc(o->trace_pool, sizeof *g.pool);
		if (!g.pool)
			return NULL;
		for (uint32_t i = 0; i < o->trace_pool; i++)
			for (int b = 0; b < 16; b++)
				g.pool[i][b] = (uint8_t)gen_next(&g);
	}
	req = gen_alloc(&g, sizeof *req);
	if (!req)
		goto fail;
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
	uint32_t n = gen_below(&g, o->max_resources + 1);
	if (n && (req->resource_spans = gen_alloc(&g, n * sizeof *req->resource_spans)))
		for (uint32_t i = 0; i < n; i++)
			if ((req->resource_spans[req->n_resource_spans] = gen_resource_spans(&g)))
				req->n_resource_spans++;
	if (g.oom)
		goto fail;
	free(g.pool);
	return req;
fail:
	kn_wire_gen_free(req);
	free(g.pool);
	return NULL;
}

void kn_wire_gen_free(kn_wire_gen_req *req)
{
	if (req)
		protobuf_c_message_free_unpacked(&req->base, NULL);
}

uint8_t *kn_wire_gen_pack(const kn_wire_gen_req *req, size_t *len)
{
	size_t n = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(req);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return NULL;
	*len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(req, buf);
	return buf;
}

int kn_wire_index_same(const struct kn_wire_index *a, const struct kn_wire_index *b)
{
	if (a->nres != b->nres || a->nscopes != b->nscopes || a->nspans != b->nspans ||
	    a->rejected != b->rejected)
		return 0;
	for (uint32_t i = 0; i < a->nres; i++) {
		const struct kn_wire_resource *x = &a->res[i], *y = &b->res[i];
		if (x->msg != y->msg || x->len != y->len || x->schema_url != y->schema_url ||
		    x->schema_url_len != y->schema_url_len)
			return 0;
	}
	for (uint32_t i = 0; i < a->nscopes; i++) {
		const struct kn_wire_scope *x = &a->scopes[i], *y = &b->scopes[i];
		if (x->resource_idx != y->resource_idx || x->msg != y->msg || x->len != y->len ||
		    x->schema_url != y->schema_url || x->schema_url_len != y->schema_url_len)
			return 0;
	}
	for (uint32_t i = 0; i < a->nspans; i++) {
		const struct kn_span_hdr *x = &a->spans[i], *y = &b->spans[i];
		if (memcmp(x->trace_id, y->trace_id, 16) || memcmp(x->span_id, y->span_id, 8) ||
		    memcmp(x->parent_span_id, y->parent_span_id, 8) || x->start_ns != y->start_ns ||
		    x->end_ns != y->end_ns || x->off != y->off || x->len != y->len ||
		    x->name_off != y->name_off || x->name_len != y->name_len || x->flags != y->flags ||
		    x->kind != y->kind || x->status_code != y->status_code ||
		    x->nattrs != y->nattrs || x->nlinks != y->nlinks ||
		    x->resource_idx != y->resource_idx || x->scope_idx != y->scope_idx)
			return 0;
	}
	return 1;
}
