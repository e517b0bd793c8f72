/* SPDX-License-Identifier: Apache-2.0
 * kn_exporter_debug: the `debug` exporter, shaped like the OpenTelemetry
 * Collector's: it prints what reaches it on stderr.
 *
 *   exporters:
 *     debug:
 *       verbosity: basic        # basic (default) | normal | detailed
 *       sampling_initial: 2     # batches printed per second before sampling
 *       sampling_thereafter: 1  # then every Nth batch (1 = all, 0 = none)
 *
 * Output, one write(2) per batch so it never interleaves with other lines:
 *   basic:    "kansatsu: debug: <id>: <N> spans, <M> resource spans"
 *   normal:   the basic line, then per span
 *             "kansatsu: debug: <id>: trace_id=<32 hex> span_id=<16 hex>
 *              name=\"<escaped>\" kind=<server|...> status=<unset|ok|error>
 *              duration=<ms with ns precision>ms"   (on one line)
 *   detailed: the basic line, then "kansatsu: debug: <id>: " + the batch as
 *             OTLP/JSON TracesData on one line.
 * Normal reads the chunks' parsed span headers (no decoding); detailed
 * converts the batch with kn_pbjson.
 *
 * Threading: export() enqueues into a kn_sender (one consumer thread, which
 * formats and writes; the sender counts kansatsu_exporter_sent_spans_total). */
#ifndef KN_EXPORTER_DEBUG_H
#define KN_EXPORTER_DEBUG_H

#include <stdint.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_component.h"

enum kn_debug_verbosity { KN_DEBUG_BASIC, KN_DEBUG_NORMAL, KN_DEBUG_DETAILED };

struct kn_exporter_debug_cfg {
	char *verbosity;               /* "basic" | "normal" | "detailed" */
	uint64_t sampling_initial;     /* batches per second printed unconditionally */
	uint64_t sampling_thereafter;  /* then every Nth in that second; 0 = none */
};

extern const struct kn_cfg_field kn_exporter_debug_fields[];
extern const struct kn_component kn_exporter_debug;

#endif
