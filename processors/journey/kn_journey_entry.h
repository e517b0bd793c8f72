/* SPDX-License-Identifier: Apache-2.0
 * kn_journey_entry: a journey head as bytes, the value stored in a shared
 * registry (Redis) under a trace id, read back by other collectors.
 *
 * Layout, version 1 (integers little-endian):
 *   0      u8   version (1)
 *   1..16       journey id (the head trace's id)
 *   17..24      head span id
 *   25..32 u64  head start (unix ns)       33..40 u64 head end
 *   41..44 i32  kind                       45..48 i32 status code
 *   49..50 u16  name length  51..52 u16 service length  53..54 u16 attrs length
 *   55..        name, service, attrs (encoded Span.attributes fields)
 * A reader rejects another version, lengths past the head's limits, a total
 * that does not match, and attrs that are not a sequence of field-9 KeyValue
 * messages: the bytes come from the network and may be anything. */
#ifndef KN_JOURNEY_ENTRY_H
#define KN_JOURNEY_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "kn_journey_registry.h"

#define KN_JOURNEY_ENTRY_VERSION 1
#define KN_JOURNEY_ENTRY_FIXED 55
#define KN_JOURNEY_ENTRY_MAX \
	(KN_JOURNEY_ENTRY_FIXED + KN_JOURNEY_NAME_MAX + KN_JOURNEY_SERVICE_MAX + KN_JOURNEY_ATTRS_MAX)

/* Writes h into out (at least KN_JOURNEY_ENTRY_MAX bytes); returns the length. */
size_t kn_journey_entry_encode(const struct kn_journey_head *h, uint8_t *out);

/* Reads an entry: 0 and *h filled, or -1 (h zeroed) when malformed. */
int kn_journey_entry_decode(const uint8_t *in, size_t len, struct kn_journey_head *h);

#endif
