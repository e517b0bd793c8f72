/* SPDX-License-Identifier: Apache-2.0
 * kn_conns: the `connections` key of the otlp and otlphttp exporters (and of
 * the loadbalancing exporter's endpoints, through protocol.otlp), kansatsu's
 * own: how many transport connections an exporter opens to its endpoint, and
 * how the sending consumers are spread over them.
 *
 * Spreading: consumer i always sends on connection i mod N (kn_conns_of).
 * Batches are taken from the queue by whichever consumer is free, so the
 * batches of one trace could already go out concurrently from several
 * consumers on one multiplexed connection; spreading the consumers over
 * connections adds no reordering that a backend could see (OTLP receivers
 * do not depend on the order of export requests).
 *
 * Defaults (0 = auto), from the process's CPU count (kn_cpus):
 *  - sending_queue.num_consumers: max(4, cpus), at most 64 (kn_sender);
 *  - connections: one per consumer, on both exporters. otlphttp: HTTP/1.1
 *    carries one request at a time per connection (as before). otlp: one
 *    libgrpc connection topped out at 3.4-4.4 M W1 spans/s on 16 cores
 *    (issue 14), and even on the 2-core VM 4 connections gave 1.2-1.7x
 *    the spans per collector core of 1 (none and gzip, passthrough into a
 *    sink on the same machine: a connection's HTTP/2 flow-control window
 *    and write path hold the exporter back, its queue grows, and the
 *    backlog costs page faults; bench/results/2core-vm-issue14.md).
 *    Fewer connections than consumers make consumers share (gRPC
 *    multiplexes; otlphttp takes turns).
 * Connections beyond the consumers would stay idle: an explicit
 * num_consumers below an explicit connections is an error naming the key,
 * and auto consumers are raised to the connections. */
#ifndef KN_CONNS_H
#define KN_CONNS_H

#include <stdint.h>

#include "../../collector/core/kn_err.h"

#define KN_CONNS_MAX 64

/* Help text of the key, shared by both exporters' tables. */
#define KN_CONNS_HELP "kansatsu's own: connections to the endpoint, consumers spread over them; 0 = one per consumer"

/* Checks `connections` against an explicit num_consumers (0 = auto) at
 * `path` ("exporters.x"). */
int kn_conns_check(uint64_t connections, uint64_t num_consumers, const char *path, struct kn_err *err);

/* Resolves both: *num_consumers (0 = auto) is replaced by the count to use,
 * *nconns gets the connections (0 = one per consumer). Call after
 * kn_conns_check. */
void kn_conns_resolve(uint64_t connections, uint64_t *num_consumers, unsigned *nconns);

static inline unsigned kn_conns_of(unsigned consumer, unsigned nconns)
{
	return nconns ? consumer % nconns : 0;
}

#endif
