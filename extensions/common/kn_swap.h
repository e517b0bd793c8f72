/* SPDX-License-Identifier: Apache-2.0
 * kn_swap: one pointer to an immutable object (a token set, an htpasswd
 * table) that many threads read and one occasionally replaces, in the manner
 * of RCU: readers take no lock and never wait; a replacement waits until no
 * reader can still hold the old object, and then the caller frees it.
 *
 * How: readers announce themselves in one of two counters, chosen by the
 * parity of an epoch. A writer publishes the new pointer, advances the epoch
 * (new readers now count in the other counter) and waits for the old
 * counter to drain. A reader that saw the epoch change while announcing
 * itself withdraws and retries, so a drained counter means that every
 * reader which may have loaded the old pointer has left. All operations are
 * sequentially consistent atomics; writers are serialised by a mutex.
 *
 * Costs: a read section is two atomic read-modify-writes on a shared line
 * (fine at request rates; not meant for per-span use). A replacement waits
 * as long as the longest read section in flight (a bcrypt verification:
 * tens of milliseconds), polling every 50 microseconds. */
#ifndef KN_SWAP_H
#define KN_SWAP_H

#include <pthread.h>
#include <stdatomic.h>

struct kn_swap {
	_Atomic(void *) cur;
	atomic_uint epoch;
	atomic_uint readers[2];
	pthread_mutex_t wmu;
};

void kn_swap_init(struct kn_swap *s, void *initial);
/* Destroys the mutex and returns the current object (for the caller to
 * free). No reader may be inside. */
void *kn_swap_fini(struct kn_swap *s);

/* A read section: ticket = kn_swap_enter(s); p = kn_swap_get(s); ...use p...;
 * kn_swap_exit(s, ticket). p stays valid until kn_swap_exit. */
unsigned kn_swap_enter(struct kn_swap *s);
static inline void *kn_swap_get(struct kn_swap *s)
{
	return atomic_load(&s->cur);
}
void kn_swap_exit(struct kn_swap *s, unsigned ticket);

/* Publishes next and returns the previous object once no reader can hold
 * it any more (the caller frees it). Must not be called inside a read
 * section. */
void *kn_swap_replace(struct kn_swap *s, void *next);

#endif
