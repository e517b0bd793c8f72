/* SPDX-License-Identifier: Apache-2.0
 * kn_lb_key: the routing keys of the load-balancing exporter: the trace id
 * (routing_key traceID) or the resource's service.name (routing_key
 * service), hashed as kn_lb_ring.h specifies.
 *
 * kn_lb_service_name scans an encoded Resource (no allocation, no copy) for
 * the first attribute whose key is "service.name" and whose value is a
 * string_value, using kn_wire's varint reader. It reads only what it needs
 * and stops at the first malformed field (then: not found). Threads: pure. */
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

#endif
