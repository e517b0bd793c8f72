/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_scan: builds the once-per-decision index of a trace (see
 * kn_tail_scan.h) with the view's own walk, so the order, the "last
 * occurrence wins" rules and the stop at a malformed field are the view's. */
#include "kn_tail_scan.h"

#include <stdlib.h>
#include <string.h>

#include "../../collector/core/kn_grow.h"

static int kv_add(void *ctx, const uint8_t *k, uint32_t klen, const uint8_t *val, uint32_t vlen)
{
	struct kn_tail_scan *s = ctx;
	if (kn_grow((void **)&s->kv, &s->cap_kv, s->nkv, sizeof *s->kv))
		return 1;
	s->kv[s->nkv++] = (struct kn_tail_scan_kv){.key = k, .val = val, .klen = klen, .vlen = vlen};
	return 0;
}

int kn_tail_scan_build(struct kn_tail_scan *s, const struct kn_tail_trace *t)
{
	struct kn_tail_walk w;
	struct kn_tail_rs rs;
	s->nrs = s->nspan = s->nkv = 0;
	kn_tail_walk_init(&w, t);
	while (kn_tail_walk_next(&w, &rs)) {
		if (kn_grow((void **)&s->rs, &s->cap_rs, s->nrs, sizeof *s->rs))
			goto fail;
		struct kn_tail_scan_rs *r = &s->rs[s->nrs++];
		r->resource = rs.resource;
		r->resource_len = rs.resource_len;
		r->kv0 = s->nkv;
		if (rs.resource && kn_tail_attrs_each(rs.resource, rs.resource_len,
						      KN_TAIL_RESOURCE_ATTRS, kv_add, s))
			goto fail;
		r->nkv = s->nkv - r->kv0;
		r->s0 = s->nspan;
		for (;;) {
			if (kn_grow((void **)&s->span, &s->cap_span, s->nspan, sizeof *s->span))
				goto fail;
			struct kn_tail_scan_span *x = &s->span[s->nspan];
			x->kv0 = s->nkv;
			int rc = kn_tail_rs_next_span_kv(&rs, &x->sp, kv_add, s);
			if (rc < 0)
				goto fail;
			if (rc == 0)
				break;
			x->nkv = s->nkv - x->kv0;
			s->nspan++;
		}
		r->s1 = s->nspan;
	}
	return 0;
fail:
	s->nrs = s->nspan = s->nkv = 0;
	return -1;
}

void kn_tail_scan_free(struct kn_tail_scan *s)
{
	if (!s)
		return;
	free(s->rs);
	free(s->span);
	free(s->kv);
	memset(s, 0, sizeof *s);
}
