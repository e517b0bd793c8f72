/* SPDX-License-Identifier: Apache-2.0
 * kn_lb_key: the routing keys of the load-balancing exporter: the trace id
 * (routing_key traceID) or the resource's service.name (routing_key
 * service), hashed as kn_lb_ring.h specifies.
 *
 * kn_lb_service_name scans an encoded Resource (no allocation, no copy) for
 * the first attribute whose key is "service.name" and whose value is a
 * string_value, using kn_wire's varint reader. It reads only what it needs
 * and stops at the first malformed field (then: not found).
 *
 * kn_lb_journey_id reads a span's journey id attribute (routing_key
 * journey): the FIRST span attribute with the configured key (pdata's
 * Map.Get, via kn_tail_attr_get of processors/tail_sampling/kn_tail_view.h),
 * valid when it is a string of exactly 32 hex digits (either case: what the
 * journey processor writes, lowercase) or a bytes_value of exactly 16 bytes,
 * and not all zero (an invalid trace id in OTLP). No allocation.
 * Threads: pure. */
#ifndef KN_LB_KEY_H
#define KN_LB_KEY_H

#include <stddef.h>
#include <stdint.h>

/* 1 and *name, *name_len set (pointing into res) when found, else 0. res may be NULL. */
int kn_lb_service_name(const uint8_t *res, size_t len, const uint8_t **name, size_t *name_len);

/* Key hashes: traceID = kn_lb_hash(16 id bytes); service = kn_lb_hash(name)
 * ("" when the resource has no string service.name). */
uint64_t kn_lb_key_trace(const uint8_t trace_id[16]);
uint64_t kn_lb_key_service(const uint8_t *res, size_t len);

/* The journey id of a Span message (span[0..len)) under attribute `key`:
 * KN_LB_JID_OK and id[16] set; KN_LB_JID_ABSENT when the span has no such
 * attribute; KN_LB_JID_INVALID when it has one that is not a valid id (wrong
 * type, wrong length, a non-hex digit, all zero). */
enum { KN_LB_JID_ABSENT = 0, KN_LB_JID_OK = 1, KN_LB_JID_INVALID = -1 };
int kn_lb_journey_id(const uint8_t *span, size_t len, const char *key, size_t keylen, uint8_t id[16]);

#endif
