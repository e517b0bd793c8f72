/* SPDX-License-Identifier: Apache-2.0
 * kn_wire_index: the zero-copy walk of an ExportTraceServiceRequest
 * (see kn_wire.h). One pass over the bytes: request -> ResourceSpans ->
 * ScopeSpans -> Span, recording positions and parsing each span's header;
 * nested messages are validated by kn_wire_check.c. Repeated occurrences of a
 * scalar field: the last one wins (protobuf semantics). Repeated occurrences
 * of the singular Resource / scope message field: the index keeps the last
 * one (protobuf would merge them; no real sender writes two). For
 * Span.status the code of the last occurrence wins, as in protobuf-c 1.4's
 * merge (a proto3 scalar of the later message always replaces the earlier).
 *
 * Speed: most of a span's bytes are its attributes, and nearly all of them
 * are a string key with one scalar value. Those are proved well-formed by
 * kn_wire_kv_fast inline, with no error bookkeeping; anything else, and every
 * fault, goes through the general path, which alone builds error paths, so
 * the two cannot disagree on messages (see test_kv_fast_agrees and
 * fuzz_wire). W1: ~1500 instructions per span, down from ~4300.
 * kn_wire_index_trusted is the same walk minus the checks of nested
 * messages (Resource, scope, attributes, events, links), for bytes the
 * collector wrote itself from checked input.
 *
 * Costs: no allocation per span; the index arrays grow geometrically and are
 * kept for the next request. Threads: an index belongs to one thread. */
#include "kn_wire_internal.h"

#include "../core/kn_grow.h"

#include <stdio.h>
#include <stdlib.h>

#define KN_WIRE_OOM (-2)

struct kn_wire_ids {
	const uint8_t *tid, *sid, *pid;
	uint32_t tid_len, sid_len, pid_len;
};

void kn_wire_index_init(struct kn_wire_index *ix)
{
	memset(ix, 0, sizeof *ix);
}

void kn_wire_index_free(struct kn_wire_index *ix)
{
	if (!ix)
		return;
	free(ix->res);
	free(ix->scopes);
	free(ix->spans);
	free(ix->scratch);
	kn_wire_index_init(ix);
}


static const char *const kn_wire_span_fields[17] = {
	[1] = "trace_id", [2] = "span_id", [3] = "trace_state", [4] = "parent_span_id",
	[5] = "name", [6] = "kind", [7] = "start_time_unix_nano", [8] = "end_time_unix_nano",
	[9] = "attributes", [10] = "dropped_attributes_count", [11] = "events",
	[12] = "dropped_events_count", [13] = "links", [14] = "dropped_links_count",
	[15] = "status", [16] = "flags",
};

/* One Status occurrence: its code (last wins inside it). */
static int kn_wire_status(struct kn_wire_ctx *c, const uint8_t *p, const uint8_t *end,
			  int32_t *code)
{
	*code = 0;
	while (p < end) {
		uint32_t field = 0, wt = 0, len = 0;
		uint64_t v = 0;
		if (kn_wire_tag(c, &p, end, &field, &wt) < 0)
			return -1;
		if (field == 2) {
			if (kn_wire_want(c, wt, KN_WT_LEN) < 0 || kn_wire_len(c, &p, end, &len) < 0)
				return kn_wire_frame(c, "message", field, -1);
			p += len;
		} else if (field == 3) {
			if (kn_wire_want(c, wt, KN_WT_VARINT) < 0 || kn_wire_varint(c, &p, end, &v) < 0)
				return kn_wire_frame(c, "code", field, -1);
			*code = (int32_t)(uint32_t)v;
		} else if (kn_wire_skip(c, wt, &p, end) < 0) {
			return kn_wire_frame(c, NULL, field, -1);
		}
	}
	return 0;
}

/* Parses one Span occupying [p, end) into h (ids go to *ids, unchecked). */
static int kn_wire_span(struct kn_wire_ctx *c, const uint8_t *base, const uint8_t *p,
			const uint8_t *end, struct kn_span_hdr *h, struct kn_wire_ids *ids)
{
	int32_t nevents = 0;

	memset(ids, 0, sizeof *ids);
	h->start_ns = h->end_ns = 0;
	h->off = (uint32_t)(p - base);
	h->len = (uint32_t)(end - p);
	h->name_off = h->off;
	h->name_len = 0;
	h->flags = 0;
	h->kind = 0;
	h->status_code = 0;
	h->nattrs = h->nlinks = 0;
	while (p < end) {
		uint32_t field = 0, wt = 0, len = 0;
		uint64_t v = 0;
		int32_t idx, code;
		const uint8_t *q;
		/* attributes in their common shape: most of a span's bytes */
		if (*p == 0x4a && (q = kn_wire_fast_len(p + 1, end, &len)) &&
		    (c->trusted || kn_wire_kv_fast(q, q + len))) {
			h->nattrs++;
			p = q + len;
			continue;
		}
		if (kn_wire_tag(c, &p, end, &field, &wt) < 0)
			return -1;
		switch (field) {
		case 1: case 2: case 3: case 4: case 5:
			if (kn_wire_want(c, wt, KN_WT_LEN) < 0 || kn_wire_len(c, &p, end, &len) < 0)
				goto fail;
			if (field == 1) {
				ids->tid = p;
				ids->tid_len = len;
			} else if (field == 2) {
				ids->sid = p;
				ids->sid_len = len;
			} else if (field == 4) {
				ids->pid = p;
				ids->pid_len = len;
			} else if (field == 5) {
				h->name_off = (uint32_t)(p - base);
				h->name_len = len;
			}
			p += len;
			break;
		case 6: case 10: case 12: case 14:
			if (kn_wire_want(c, wt, KN_WT_VARINT) < 0 || kn_wire_varint(c, &p, end, &v) < 0)
				goto fail;
			if (field == 6)
				h->kind = (int32_t)(uint32_t)v;
			break;
		case 7: case 8:
			if (kn_wire_want(c, wt, KN_WT_I64) < 0)
				goto fail;
			if (end - p < 8) {
				kn_wire_fail(c, "truncated fixed64");
				goto fail;
			}
			if (field == 7)
				h->start_ns = kn_wire_le64(p);
			else
				h->end_ns = kn_wire_le64(p);
			p += 8;
			break;
		case 16:
			if (kn_wire_want(c, wt, KN_WT_I32) < 0)
				goto fail;
			if (end - p < 4) {
				kn_wire_fail(c, "truncated fixed32");
				goto fail;
			}
			h->flags = kn_wire_le32(p);
			p += 4;
			break;
		case 9: case 11: case 13: case 15: {
			enum kn_wire_msg m = field == 9 ? KN_WM_KEYVALUE : field == 11 ? KN_WM_EVENT
					   : field == 13 ? KN_WM_LINK : KN_WM_STATUS;
			if (kn_wire_want(c, wt, KN_WT_LEN) < 0 || kn_wire_len(c, &p, end, &len) < 0)
				goto fail;
			if (field == 15) {
				if (kn_wire_status(c, p, p + len, &code) < 0)
					goto fail;
				h->status_code = code;
			} else if (!c->trusted &&
				   (m == KN_WM_KEYVALUE ? kn_wire_check_kv(c, p, p + len, 0)
				    : kn_wire_check_msg(c, m, p, p + len, 0)) < 0) {
				goto fail;
			}
			if (field == 9)
				h->nattrs++;
			else if (field == 11)
				nevents++;
			else if (field == 13)
				h->nlinks++;
			p += len;
			break;
		}
		default:
			if (kn_wire_skip(c, wt, &p, end) < 0)
				return kn_wire_frame(c, NULL, field, -1);
			break;
		}
		continue;
fail:
		idx = field == 9 ? (int32_t)h->nattrs : field == 11 ? nevents
		    : field == 13 ? (int32_t)h->nlinks : -1;
		return kn_wire_frame(c, kn_wire_span_fields[field], field, idx);
	}
	return 0;
}

/* OTLP validity of the ids; NULL when valid, else the reason (field:why). */
static const char *kn_wire_ids_invalid(const struct kn_wire_ids *ids, char *buf, size_t n)
{
	if (ids->tid_len != 16)
		snprintf(buf, n, "trace_id: must be 16 bytes, got %u", ids->tid_len);
	else if (kn_wire_all_zero(ids->tid, 16))
		snprintf(buf, n, "trace_id: must not be all zero");
	else if (ids->sid_len != 8)
		snprintf(buf, n, "span_id: must be 8 bytes, got %u", ids->sid_len);
	else if (kn_wire_all_zero(ids->sid, 8))
		snprintf(buf, n, "span_id: must not be all zero");
	else if (ids->pid_len != 0 && ids->pid_len != 8)
		snprintf(buf, n, "parent_span_id: must be empty or 8 bytes, got %u", ids->pid_len);
	else
		return NULL;
	return buf;
}

/* The ids and the position of a span the reader found valid, into its header. */
static void hdr_set_ids(struct kn_span_hdr *h, const struct kn_wire_ids *ids, uint32_t res_idx,
			uint32_t scope_idx)
{
	memcpy(h->trace_id, ids->tid, 16);
	memcpy(h->span_id, ids->sid, 8);
	if (ids->pid_len == 8)
		memcpy(h->parent_span_id, ids->pid, 8);
	else
		memset(h->parent_span_id, 0, 8);
	h->resource_idx = res_idx;
	h->scope_idx = scope_idx;
}

static int kn_wire_scope_spans(struct kn_wire_ctx *c, struct kn_wire_index *ix,
			       const uint8_t *base, const uint8_t *p, const uint8_t *end,
			       uint32_t res_idx, int32_t ri, int32_t si)
{
	int32_t spi = 0;
	if (kn_grow((void **)&ix->scopes, &ix->cap_scopes, ix->nscopes, sizeof *ix->scopes))
		return KN_WIRE_OOM;
	uint32_t scope_idx = ix->nscopes++;
	ix->scopes[scope_idx] = (struct kn_wire_scope){ .resource_idx = res_idx };

	while (p < end) {
		uint32_t field = 0, wt = 0, len = 0;
		if (kn_wire_tag(c, &p, end, &field, &wt) < 0)
			return -1;
		if (field == 2) {
			struct kn_wire_ids ids;
			char why[120];
			if (kn_wire_want(c, wt, KN_WT_LEN) < 0 || kn_wire_len(c, &p, end, &len) < 0)
				return kn_wire_frame(c, "spans", field, spi);
			if (kn_grow((void **)&ix->spans, &ix->cap_spans, ix->nspans, sizeof *ix->spans))
				return KN_WIRE_OOM;
			struct kn_span_hdr *h = &ix->spans[ix->nspans];
			if (kn_wire_span(c, base, p, p + len, h, &ids) < 0)
				return kn_wire_frame(c, "spans", field, spi);
			const char *bad = kn_wire_ids_invalid(&ids, why, sizeof why);
			if (bad) {
				if (ix->rejected++ == 0)
					snprintf(ix->reject_reason, sizeof ix->reject_reason,
						 "resource_spans[%d].scope_spans[%d].spans[%d].%s",
						 ri, si, spi, bad);
			} else {
				hdr_set_ids(h, &ids, res_idx, scope_idx);
				ix->nspans++;
			}
			spi++;
			p += len;
		} else if (field == 1 || field == 3) {
			const char *name = field == 1 ? "scope" : "schema_url";
			if (kn_wire_want(c, wt, KN_WT_LEN) < 0 || kn_wire_len(c, &p, end, &len) < 0 ||
			    (field == 1 && !c->trusted &&
			     kn_wire_check_msg(c, KN_WM_SCOPE, p, p + len, 0) < 0))
				return kn_wire_frame(c, name, field, -1);
			struct kn_wire_scope *s = &ix->scopes[scope_idx];
			if (field == 1) {
				s->msg = p;
				s->len = len;
			} else {
				s->schema_url = p;
				s->schema_url_len = len;
			}
			p += len;
		} else if (kn_wire_skip(c, wt, &p, end) < 0) {
			return kn_wire_frame(c, NULL, field, -1);
		}
	}
	return 0;
}

static int kn_wire_resource_spans(struct kn_wire_ctx *c, struct kn_wire_index *ix,
				  const uint8_t *base, const uint8_t *p, const uint8_t *end,
				  int32_t ri)
{
	int32_t si = 0;
	int rc;
	if (kn_grow((void **)&ix->res, &ix->cap_res, ix->nres, sizeof *ix->res))
		return KN_WIRE_OOM;
	uint32_t res_idx = ix->nres++;
	ix->res[res_idx] = (struct kn_wire_resource){ 0 };

	while (p < end) {
		uint32_t field = 0, wt = 0, len = 0;
		if (kn_wire_tag(c, &p, end, &field, &wt) < 0)
			return -1;
		if (field == 2) {
			if (kn_wire_want(c, wt, KN_WT_LEN) < 0 || kn_wire_len(c, &p, end, &len) < 0)
				return kn_wire_frame(c, "scope_spans", field, si);
			rc = kn_wire_scope_spans(c, ix, base, p, p + len, res_idx, ri, si);
			if (rc == KN_WIRE_OOM)
				return rc;
			if (rc < 0)
				return kn_wire_frame(c, "scope_spans", field, si);
			si++;
			p += len;
		} else if (field == 1 || field == 3) {
			const char *name = field == 1 ? "resource" : "schema_url";
			if (kn_wire_want(c, wt, KN_WT_LEN) < 0 || kn_wire_len(c, &p, end, &len) < 0 ||
			    (field == 1 && !c->trusted &&
			     kn_wire_check_msg(c, KN_WM_RESOURCE, p, p + len, 0) < 0))
				return kn_wire_frame(c, name, field, -1);
			struct kn_wire_resource *r = &ix->res[res_idx];
			if (field == 1) {
				r->msg = p;
				r->len = len;
			} else {
				r->schema_url = p;
				r->schema_url_len = len;
			}
			p += len;
		} else if (kn_wire_skip(c, wt, &p, end) < 0) {
			return kn_wire_frame(c, NULL, field, -1);
		}
	}
	return 0;
}

static int index_request(struct kn_wire_index *ix, const uint8_t *buf, size_t len,
			 struct kn_err *err, int trusted)
{
	struct kn_wire_ctx c;
	const uint8_t *p = buf, *end = buf + len;
	int32_t ri = 0;
	int rc = 0;

	ix->nres = ix->nscopes = ix->nspans = 0;
	ix->rejected = 0;
	ix->reject_reason[0] = '\0';
	c.trusted = trusted;
	c.why = NULL;
	c.nframes = 0;
	if (len > UINT32_MAX) {
		kn_errf(err, "request: %zu bytes, above the 4 GiB the wire reader handles", len);
		return KN_INVALID;
	}
	while (p < end) {
		uint32_t field = 0, wt = 0, flen = 0;
		if (kn_wire_tag(&c, &p, end, &field, &wt) < 0) {
			rc = -1;
			break;
		}
		if (field != 1) {
			if (kn_wire_skip(&c, wt, &p, end) < 0) {
				rc = kn_wire_frame(&c, NULL, field, -1);
				break;
			}
			continue;
		}
		if (kn_wire_want(&c, wt, KN_WT_LEN) < 0 || kn_wire_len(&c, &p, end, &flen) < 0) {
			rc = kn_wire_frame(&c, "resource_spans", field, ri);
			break;
		}
		rc = kn_wire_resource_spans(&c, ix, buf, p, p + flen, ri);
		if (rc < 0) {
			if (rc != KN_WIRE_OOM)
				kn_wire_frame(&c, "resource_spans", field, ri);
			break;
		}
		ri++;
		p += flen;
	}
	if (rc == KN_WIRE_OOM) {
		ix->nres = ix->nscopes = ix->nspans = 0;
		kn_errf(err, "request: out of memory indexing spans");
		return KN_ERR;
	}
	if (rc < 0) {
		ix->nres = ix->nscopes = ix->nspans = 0;
		if (err) {
			kn_wire_ctx_format(&c, err->msg, sizeof err->msg);
			if (c.nframes == 0) /* a fault in the request's own framing */
				kn_err_prefix(err, "request: ");
		}
		return KN_INVALID;
	}
	return KN_OK;
}

int kn_wire_index_request(struct kn_wire_index *ix, const uint8_t *buf, size_t len,
			  struct kn_err *err)
{
	return index_request(ix, buf, len, err, 0);
}

int kn_wire_index_trusted(struct kn_wire_index *ix, const uint8_t *buf, size_t len,
			  struct kn_err *err)
{
	return index_request(ix, buf, len, err, 1);
}

int kn_wire_span_reread(const uint8_t *base, const uint8_t *span, uint32_t len,
			struct kn_span_hdr *h)
{
	struct kn_wire_ctx c;
	struct kn_wire_ids ids;
	char why[120];
	uint32_t ri = h->resource_idx, si = h->scope_idx;

	c.trusted = 1;
	c.why = NULL;
	c.nframes = 0;
	if (kn_wire_span(&c, base, span, span + len, h, &ids) < 0 ||
	    kn_wire_ids_invalid(&ids, why, sizeof why))
		return KN_INVALID;
	hdr_set_ids(h, &ids, ri, si);
	return KN_OK;
}
