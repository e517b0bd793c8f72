/* SPDX-License-Identifier: Apache-2.0
 * kn_conns: resolution of `connections` and num_consumers (see kn_conns.h). */
#include "kn_conns.h"

#include <inttypes.h>

#include "kn_sender.h"

int kn_conns_check(uint64_t connections, uint64_t num_consumers, const char *path, struct kn_err *err)
{
	if (connections > KN_CONNS_MAX)
		return kn_errf(err, "%s.connections: must be between 0 and %d, got %" PRIu64, path, KN_CONNS_MAX,
			       connections);
	if (connections && num_consumers && num_consumers < connections)
		return kn_errf(err, "%s.connections: %" PRIu64 " connections need at least as many "
			       "sending_queue.num_consumers (each consumer sends on one connection), got %" PRIu64,
			       path, connections, num_consumers);
	return KN_OK;
}

void kn_conns_resolve(uint64_t connections, uint64_t *num_consumers, unsigned *nconns)
{
	uint64_t consumers = *num_consumers;
	if (!consumers) {
		consumers = kn_sender_auto_consumers();
		if (connections > consumers)
			consumers = connections;
	}
	uint64_t n = connections ? connections : consumers;
	*num_consumers = consumers;
	*nconns = (unsigned)n;
}
