/* SPDX-License-Identifier: Apache-2.0
 * kn_lb_resolve: where the load-balancing exporter's endpoints come from.
 *
 * kn_lb_normalize turns a static resolver entry into the endpoint string the
 * ring hashes: "host:port" or "[v6]:port"; a missing port becomes 4317 (as
 * in the OpenTelemetry Collector). Schemes and paths are rejected.
 *
 * kn_lb_lookup resolves a DNS name to A and AAAA records (getaddrinfo,
 * AF_UNSPEC) and formats each as an endpoint with the configured port,
 * sorted and deduplicated. getaddrinfo cannot be cancelled or given a
 * timeout, so it runs on a helper thread and the caller waits on a condition
 * variable for at most `timeout`; a lookup that overruns keeps running, is
 * reported as a timeout, and the next lookup first collects it (while it
 * still runs, the next lookup reports "previous lookup still running"
 * instead of piling up threads). kn_lb_lookup_free joins a helper still
 * running, which waits as long as the system resolver takes (its own
 * resolv.conf timeouts bound it).
 *
 * Threads: one kn_lb_lookup is used by one thread at a time (the exporter's
 * resolver thread). */
#ifndef KN_LB_RESOLVE_H
#define KN_LB_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_err.h"

#define KN_LB_DEFAULT_PORT 4317

/* "host[:port]" -> out ("host:port"); errors name `path`. */
int kn_lb_normalize(const char *in, const char *path, char *out, size_t cap, struct kn_err *err);

struct kn_lb_lookup;

struct kn_lb_lookup *kn_lb_lookup_new(void);
/* KN_OK with *out filled (a new list; the caller frees it with
 * kn_lb_strlist_free; it may be empty), KN_AGAIN when the lookup timed out
 * or an earlier one is still running, KN_ERR when resolution failed (err
 * says why, naming the host). */
int kn_lb_lookup_run(struct kn_lb_lookup *l, const char *host, uint16_t port, uint64_t timeout_ns,
		     struct kn_strlist *out, struct kn_err *err);
void kn_lb_lookup_free(struct kn_lb_lookup *l);

void kn_lb_strlist_free(struct kn_strlist *l);

#endif
