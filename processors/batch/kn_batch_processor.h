/* SPDX-License-Identifier: Apache-2.0
 * The `batch` processor: groups what one shard receives into larger export
 * requests, as the OpenTelemetry Collector's batch processor does:
 *   send_batch_size: 8192       spans that trigger a send
 *   send_batch_max_size: 0      upper bound per request (0 = none); applied at
 *                               chunk boundaries, so one chunk larger than it is
 *                               still sent whole
 *   timeout: 200ms              longest time a span waits for its batch
 * State is per shard (no locks); batching is by concatenating chunk
 * references, never by re-encoding spans. */
#ifndef KN_BATCH_PROCESSOR_H
#define KN_BATCH_PROCESSOR_H

#include <stdint.h>

#include "../../collector/core/kn_component.h"

struct kn_batch_processor_cfg {
	uint64_t send_batch_size;
	uint64_t send_batch_max_size;
	uint64_t timeout_ns;
	/* metadata_keys / metadata_cardinality_limit are accepted by the OTel
	 * Collector; kansatsu batches per shard and has no client metadata yet. */
};

extern const struct kn_component kn_processor_batch;

#endif
