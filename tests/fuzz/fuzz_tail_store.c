/* SPDX-License-Identifier: Apache-2.0
 * fuzz_tail_store: arbitrary bytes as an OTLP request, through what a tail
 * sampling shard does with it: the wire index and split into one chunk,
 * kn_tail_frame, and the trace store, which holds each (Resource, scope)
 * group once and writes a trace back out as ResourceSpans on view. The
 * chunk's traces are appended twice (two parts per trace naming the same
 * groups). Every trace's view must index cleanly with the wire reader and
 * hold exactly the trace's spans, twice, in order, each byte for byte with
 * its own Resource, scope and schema_urls; the store's size of the trace
 * equals the view's; after every trace is removed no group is left. A
 * mismatch aborts (the driver and libFuzzer report it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/wire/kn_wire.h"
#include "collector/wire/kn_wire_gen.h"
#include "processors/tail_sampling/kn_tail_frame.h"
#include "processors/tail_sampling/kn_tail_store.h"

#define MAX_SPANS 2048

static int same(const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl)
{
	if ((a == NULL) != (b == NULL) || al != bl)
		return 0;
	return al == 0 || memcmp(a, b, al) == 0;
}

/* Span k of the view (index vix over v) against span h of chunk c. */
static void check_span(const struct kn_wire_index *vix, const uint8_t *v, uint32_t k,
		       const struct kn_chunk *c, const struct kn_tail_frame *f,
		       const struct kn_span_hdr *h)
{
	const struct kn_span_hdr *g = &vix->spans[k];
	if (!same(v + g->off, g->len, c->data + h->off, h->len))
		abort();
	const struct kn_wire_scope *vs = &vix->scopes[g->scope_idx];
	const struct kn_wire_resource *vr = &vix->res[g->resource_idx];
	const struct kn_tail_frame_msg *fs = &f->scopes[h->scope_idx];
	const struct kn_tail_frame_msg *fr = &f->res[h->resource_idx];
	if (!same(vs->msg, vs->len, fs->msg, fs->len) ||
	    !same(vs->schema_url, vs->schema_url_len, fs->url, fs->url_len) ||
	    !same(vr->msg, vr->len, fr->msg, fr->len) ||
	    !same(vr->schema_url, vr->schema_url_len, fr->url, fr->url_len))
		abort();
}

/* The spans of span i's trace not yet done (from i on, chunk order) into
 * idx, marked done; their count. */
static uint32_t trace_of(const struct kn_chunk *c, uint32_t i, uint32_t *idx, uint32_t *done)
{
	uint32_t n = 0;
	for (uint32_t j = i; j < c->nspans; j++)
		if (!done[j] && memcmp(c->spans[j].trace_id, c->spans[i].trace_id, 16) == 0) {
			idx[n++] = j;
			done[j] = 1;
		}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kn_wire_index ix, vix;
	struct kn_err err;
	kn_wire_index_init(&ix);
	kn_wire_index_init(&vix);
	struct kn_chunk *c = NULL;
	struct kn_tail_frame f = {0};
	struct kn_tail_store_cfg cfg = {.decision_wait_ns = 1000, .initial_traces = 4};
	struct kn_tail_store *s = kn_tail_store_create(&cfg);
	static uint32_t idx[MAX_SPANS], done[MAX_SPANS], g[2 * MAX_SPANS];
	if (!s)
		abort();
	if (kn_wire_index_request(&ix, data, size, &err) != KN_OK || ix.nspans == 0 ||
	    ix.nspans > MAX_SPANS)
		goto out;
	if (kn_wire_split(&ix, data, 1, &c, &err) != KN_OK || !c)
		goto out;
	if (kn_tail_frame_index(&f, c->data, c->len) || kn_tail_frame_check(&f, c))
		abort(); /* a chunk of the splitter always frames */
	size_t empty = kn_tail_store_bytes(s);
	for (int round = 0; round < 2; round++) {
		memset(done, 0, sizeof done);
		for (uint32_t i = 0; i < c->nspans; i++) {
			if (done[i])
				continue;
			uint32_t n = trace_of(c, i, idx, done);
			uint32_t t = kn_tail_store_find(s, c->spans[i].trace_id);
			if (t == KN_TAIL_NONE)
				t = kn_tail_store_open(s, c->spans[i].trace_id, 1);
			uint64_t part = kn_tail_store_part_bytes(c, idx, n);
			uint64_t framed = kn_tail_frame_size(&f, c, idx, n, g);
			uint64_t before = t == KN_TAIL_NONE ? 0 : kn_tail_store_trace_bytes(s, t);
			if (t == KN_TAIL_NONE || part == UINT64_MAX || framed == UINT64_MAX ||
			    kn_tail_store_append(s, t, &f, c, idx, n, part, framed, 1) != 0 ||
			    kn_tail_store_trace_bytes(s, t) != before + framed)
				abort();
		}
	}
	/* each trace: its spans twice, in chunk order */
	memset(done, 0, sizeof done);
	for (uint32_t i = 0; i < c->nspans; i++) {
		if (done[i])
			continue;
		uint32_t n = trace_of(c, i, idx, done);
		uint32_t t = kn_tail_store_find(s, c->spans[i].trace_id);
		struct kn_tail_trace v;
		if (t == KN_TAIL_NONE || kn_tail_store_view(s, t, &v) != 0 || v.nspans != 2 * n ||
		    kn_tail_store_trace_bytes(s, t) != v.len)
			abort();
		uint8_t *copy = malloc(v.len ? v.len : 1); /* exact size: overreads show */
		if (!copy)
			abort();
		memcpy(copy, v.data, v.len);
		if (kn_wire_index_request(&vix, copy, v.len, &err) != KN_OK || vix.rejected ||
		    vix.nspans != 2 * n)
			abort();
		struct kn_wire_index tix; /* what emission indexes the view with */
		kn_wire_index_init(&tix);
		if (kn_wire_index_trusted(&tix, copy, v.len, &err) != KN_OK ||
		    !kn_wire_index_same(&vix, &tix))
			abort();
		kn_wire_index_free(&tix);
		for (uint32_t k = 0; k < 2 * n; k++)
			check_span(&vix, copy, k, c, &f, &c->spans[idx[k % n]]);
		free(copy);
		kn_tail_store_remove(s, t);
	}
	if (kn_tail_store_count(s) || kn_tail_store_groups(s) ||
	    kn_tail_store_bytes(s) > empty + 4096)
		abort();
out:
	if (c)
		kn_chunk_unref(c);
	kn_tail_frame_free(&f);
	kn_tail_store_destroy(s);
	kn_wire_index_free(&ix);
	kn_wire_index_free(&vix);
	return 0;
}
