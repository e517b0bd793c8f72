/* SPDX-License-Identifier: Apache-2.0
 * fuzz_wire_attrs: the splicing editor (kn_wire_edit) and the attribute view
 * (kn_wire_attrs) on arbitrary bytes. Every input goes through an edit run
 * that deletes, updates, renames and adds attributes of every Resource and
 * Span (the input bytes steer which); nothing may crash or read out of
 * bounds whatever the bytes. When the wire reader accepts the input, the run
 * must succeed and its output must be accepted by the reader and by
 * protobuf-c with the same number of spans; with no edit it must be the
 * input itself (no chunk). Any disagreement abort()s. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/wire/kn_wire.h"
#include "collector/wire/kn_wire_attrs.h"
#include "collector/wire/kn_wire_edit.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

struct fctx {
	struct kn_wire_attrs at;
	uint32_t k;
	int edits;
};

static int edit(struct fctx *f, struct kn_wire_edit *ed, const uint8_t *m, uint32_t len, uint32_t field)
{
	if (kn_wire_attrs_load(&f->at, m, len, field) < 0)
		return 0;
	uint32_t k = f->k++;
	struct kn_av v = {.type = (enum kn_av_type)(k % 6), .s = (const uint8_t *)"v", .len = 1, .i = -1, .d = 0.5, .b = 1};
	if (v.type == KN_AV_RAW)
		v = (struct kn_av){.type = KN_AV_RAW, .s = (const uint8_t *)"\x0a\x01x", .len = 3};
	for (uint32_t i = 0; i < f->at.n; i++) {
		switch ((k + i) % 5) {
		case 0: kn_wire_attrs_del(&f->at, i); break;
		case 1: if (f->at.a[i].state != KN_WA_DELETED) kn_wire_attrs_set(&f->at, i, &v); break;
		case 2: if (f->at.a[i].state != KN_WA_DELETED) kn_wire_attrs_rename(&f->at, i, "r", 1); break;
		default: break;
		}
	}
	if (k % 3 == 0 && kn_wire_attrs_put(&f->at, "new", 3, &v) < 0)
		return -1;
	int rc = kn_wire_attrs_emit(&f->at, ed);
	f->edits += rc > 0;
	return rc < 0 ? -1 : 0;
}

static int on_res(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_res *r)
{
	return edit(ctx, ed, r->msg, r->len, 1);
}

static int on_span(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_span *s)
{
	return edit(ctx, ed, s->span, s->span_len, 9);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct kn_wire_index ix;
	struct kn_wire_edit ed;
	struct fctx f = {.k = size ? data[0] : 0};
	struct kn_err err;
	kn_wire_index_init(&ix);
	kn_wire_edit_init(&ed);
	kn_wire_attrs_init(&f.at);
	const struct kn_wire_edit_ops ops = {.resource = on_res, .span = on_span};
	int valid = kn_wire_index_request(&ix, buf, size, &err) == KN_OK && ix.rejected == 0;
	uint32_t nspans = valid ? ix.nspans : 0;
	struct kn_chunk *c = NULL;
	int rc = kn_wire_edit_run(&ed, &ops, &f, buf, size, nspans, NULL, &c, &err);
	if (valid) {
		if (rc != KN_OK)
			abort();
		if (!f.edits != !c)
			abort();
		if (c) {
			if (kn_wire_index_request(&ix, c->data, c->len, &err) != KN_OK || ix.nspans != nspans)
				abort();
			Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
				opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, c->len, c->data);
			if (!r)
				abort();
			opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
		}
	}
	kn_chunk_unref(c);
	kn_wire_attrs_free(&f.at);
	kn_wire_edit_free(&ed);
	kn_wire_index_free(&ix);
	free(buf);
	return 0;
}
