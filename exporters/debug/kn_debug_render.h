/* SPDX-License-Identifier: Apache-2.0
 * kn_debug_render: formats a batch as the debug exporter's text (formats in
 * kn_exporter_debug.h) into a growable buffer that the caller reuses batch
 * after batch (only the consumer thread touches it: no locks). */
#ifndef KN_DEBUG_RENDER_H
#define KN_DEBUG_RENDER_H

#include <stddef.h>

#include "../../collector/core/kn_batch.h"
#include "../../collector/core/kn_err.h"
#include "kn_exporter_debug.h"

struct kn_dbuf {
	char *p;
	size_t len, cap;
};

void kn_dbuf_free(struct kn_dbuf *d);

/* Replaces d's content with the text for b. KN_OK, or KN_ERR (OOM, or the
 * JSON conversion failed: err says why). */
int kn_debug_render(struct kn_dbuf *d, const char *id, enum kn_debug_verbosity v,
		    const struct kn_batch *b, struct kn_err *err);

/* Counts the top-level ResourceSpans (field 1) in an encoded request;
 * stops at the first malformed byte. */
uint32_t kn_debug_count_resource_spans(const uint8_t *p, size_t len);

#endif
