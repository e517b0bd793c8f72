/* SPDX-License-Identifier: Apache-2.0
 * kn_w1_patch: re-stamps an encoded ExportTraceServiceRequest in place, so
 * a load generator can cycle a few pre-built bodies and still send fresh
 * traces with current times (loadgen --pool N --stamp).
 *
 * kn_w1_patch_init walks the body once and records where every fixed-size
 * field to change lies: each Span.trace_id and Span.Link.trace_id (16
 * bytes) and each Span start / end time and Span.Event time (fixed64).
 * kn_w1_patch_apply then gives the body's traces new ids (every trace id
 * XORed with one 16-byte key per call, so spans of one trace, and links to
 * a trace of the same body, stay together while distinct traces stay
 * distinct) and shifts every time by the same amount, so the latest root
 * end the body was built with becomes `end_unix_ns` and every duration is
 * kept. Cost per call: one XOR per id and one add per time (a W1 body:
 * ~560 ids and ~1,100 times), against a fresh protobuf-c build and pack per
 * request without it. The body's length and every other byte stay as they
 * are, so its span count and size are those of the build.
 *
 * Ownership: the patch holds offsets only; the caller owns the body and
 * passes the same one to every apply. Threads: one per patch. */
#ifndef KN_W1_PATCH_H
#define KN_W1_PATCH_H

#include <stddef.h>
#include <stdint.h>

struct kn_w1_patch {
	uint32_t *ids, nids;      /* offsets of 16-byte trace ids */
	uint32_t *times, ntimes;  /* offsets of fixed64 times */
	uint32_t cap_ids, cap_times;
	uint8_t key[16];          /* XOR key the body's ids carry now */
	uint64_t end_ns;          /* what the body's latest root end is now */
	uint64_t any_end_ns;      /* the latest end of any span, as built */
};

/* Walks body[0..len) (a valid request); 0, or -1 when the framing is broken
 * or memory ran out. The latest end time of a span without parent is the
 * body's reference end (without a root: the latest end of any span). */
int kn_w1_patch_init(struct kn_w1_patch *p, const uint8_t *body, size_t len);
/* Re-stamps body: ids XOR key (relative to the original ids), times
 * shifted so the reference end becomes end_unix_ns. */
void kn_w1_patch_apply(struct kn_w1_patch *p, uint8_t *body, const uint8_t key[16],
		       uint64_t end_unix_ns);
void kn_w1_patch_free(struct kn_w1_patch *p);

#endif
