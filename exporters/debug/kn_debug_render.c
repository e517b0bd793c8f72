/* SPDX-License-Identifier: Apache-2.0
 * kn_debug_render: the debug exporter's text (see kn_debug_render.h). Costs:
 * basic walks each chunk's top-level fields (a few varints per resource);
 * normal formats from the span headers; detailed flattens and converts to
 * JSON (allocates; it is a debugging aid). */
#include "kn_debug_render.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../collector/core/kn_hex.h"
#include "../../collector/json/kn_pbjson.h"
#include "../../collector/wire/kn_wire_field.h"

void kn_dbuf_free(struct kn_dbuf *d)
{
	free(d->p);
	d->p = NULL;
	d->len = d->cap = 0;
}

static int reserve(struct kn_dbuf *d, size_t more)
{
	if (d->len + more + 1 <= d->cap)
		return 0;
	size_t cap = d->cap ? d->cap : 4096;
	while (cap < d->len + more + 1)
		cap *= 2;
	char *p = realloc(d->p, cap);
	if (!p)
		return -1;
	d->p = p;
	d->cap = cap;
	return 0;
}

static int put(struct kn_dbuf *d, const char *s, size_t n)
{
	if (reserve(d, n) < 0)
		return -1;
	memcpy(d->p + d->len, s, n);
	d->len += n;
	d->p[d->len] = '\0';
	return 0;
}

static int putf(struct kn_dbuf *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int putf(struct kn_dbuf *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve(d, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(d->p + d->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	d->len += (size_t)n;
	return 0;
}

/* Counts the ResourceSpans (field 1, LEN) of a request, stopping at the
 * first malformed field. The shared reader in LAX mode: any field number is
 * stepped over (only the whole tag's number 1 counts), as it always was. */
uint32_t kn_debug_count_resource_spans(const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;
	uint32_t n = 0;
	struct kn_wire_field f;
	while (kn_wire_field_read(&p, end, &f, KN_WIRE_FIELD_LAX) > 0)
		if (f.wt == KN_WIRE_FIELD_LEN && (f.tag >> 3) == 1)
			n++;
	return n;
}

static const char *kind_name(int32_t k)
{
	static const char *const names[] = { "unspecified", "internal", "server",
					     "client", "producer", "consumer" };
	return k >= 0 && k < 6 ? names[k] : NULL;
}

static const char *status_name(int32_t s)
{
	static const char *const names[] = { "unset", "ok", "error" };
	return s >= 0 && s < 3 ? names[s] : NULL;
}

static int put_hex(struct kn_dbuf *d, const uint8_t *b, size_t n)
{
	if (reserve(d, 2 * n) < 0)
		return -1;
	kn_hex_encode(b, n, d->p + d->len);
	d->len += 2 * n;
	d->p[d->len] = '\0';
	return 0;
}

/* Quotes a span name so a line stays one line whatever the name holds. */
static int put_name(struct kn_dbuf *d, const uint8_t *s, size_t n)
{
	if (reserve(d, 4 * n + 2) < 0)
		return -1;
	d->p[d->len++] = '"';
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (c == '"' || c == '\\') {
			d->p[d->len++] = '\\';
			d->p[d->len++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			d->len += (size_t)snprintf(d->p + d->len, 5, "\\x%02x", c);
		} else {
			d->p[d->len++] = (char)c;
		}
	}
	d->p[d->len++] = '"';
	d->p[d->len] = '\0';
	return 0;
}

static int put_span(struct kn_dbuf *d, const char *id, const struct kn_chunk *c,
		    const struct kn_span_hdr *h)
{
	if (putf(d, "kansatsu: debug: %s: trace_id=", id) < 0 ||
	    put_hex(d, h->trace_id, 16) < 0 || put(d, " span_id=", 9) < 0 ||
	    put_hex(d, h->span_id, 8) < 0 || put(d, " name=", 6) < 0)
		return -1;
	int name_ok = (uint64_t)h->name_off + h->name_len <= c->len;
	if (put_name(d, name_ok ? c->data + h->name_off : NULL, name_ok ? h->name_len : 0) < 0)
		return -1;
	const char *k = kind_name(h->kind), *s = status_name(h->status_code);
	if ((k ? putf(d, " kind=%s", k) : putf(d, " kind=%d", (int)h->kind)) < 0 ||
	    (s ? putf(d, " status=%s", s) : putf(d, " status=%d", (int)h->status_code)) < 0)
		return -1;
	uint64_t dur = h->end_ns > h->start_ns ? h->end_ns - h->start_ns : 0;
	return putf(d, " duration=%llu.%06llums\n", (unsigned long long)(dur / 1000000),
		    (unsigned long long)(dur % 1000000));
}

int kn_debug_render(struct kn_dbuf *d, const char *id, enum kn_debug_verbosity v,
		    const struct kn_batch *b, struct kn_err *err)
{
	d->len = 0;
	uint32_t nres = 0;
	for (uint32_t i = 0; i < b->n; i++)
		nres += kn_debug_count_resource_spans(b->chunks[i]->data, b->chunks[i]->len);
	if (putf(d, "kansatsu: debug: %s: %u spans, %u resource spans\n", id, b->nspans, nres) < 0)
		goto oom;
	if (v == KN_DEBUG_NORMAL) {
		for (uint32_t i = 0; i < b->n; i++) {
			const struct kn_chunk *c = b->chunks[i];
			for (uint32_t j = 0; j < c->nspans; j++)
				if (put_span(d, id, c, &c->spans[j]) < 0)
					goto oom;
		}
	} else if (v == KN_DEBUG_DETAILED && b->bytes > 0) {
		uint8_t *flat = kn_batch_flatten(b);
		if (!flat)
			goto oom;
		char *js = NULL;
		size_t jslen = 0;
		int rc = kn_pbjson_traces_from_proto(flat, b->bytes, &js, &jslen, err);
		free(flat);
		if (rc != KN_OK)
			return KN_ERR;
		rc = putf(d, "kansatsu: debug: %s: ", id) < 0 || put(d, js, jslen) < 0 ||
		     put(d, "\n", 1) < 0;
		free(js);
		if (rc)
			goto oom;
	}
	return KN_OK;
oom:
	return kn_errf(err, "exporters.%s: out of memory", id);
}
