/* SPDX-License-Identifier: Apache-2.0
 * kn_swap: read-mostly pointer with deferred reclamation (see kn_swap.h). */
#include "kn_swap.h"

#include <time.h>

void kn_swap_init(struct kn_swap *s, void *initial)
{
	atomic_init(&s->cur, initial);
	atomic_init(&s->epoch, 0);
	atomic_init(&s->readers[0], 0);
	atomic_init(&s->readers[1], 0);
	pthread_mutex_init(&s->wmu, NULL);
}

void *kn_swap_fini(struct kn_swap *s)
{
	pthread_mutex_destroy(&s->wmu);
	return atomic_exchange(&s->cur, NULL);
}

unsigned kn_swap_enter(struct kn_swap *s)
{
	for (;;) {
		unsigned e = atomic_load(&s->epoch);
		atomic_fetch_add(&s->readers[e & 1], 1);
		if (atomic_load(&s->epoch) == e)
			return e;
		/* a writer advanced the epoch meanwhile: announce in the new one */
		atomic_fetch_sub(&s->readers[e & 1], 1);
	}
}

void kn_swap_exit(struct kn_swap *s, unsigned ticket)
{
	atomic_fetch_sub(&s->readers[ticket & 1], 1);
}

void *kn_swap_replace(struct kn_swap *s, void *next)
{
	pthread_mutex_lock(&s->wmu);
	void *old = atomic_exchange(&s->cur, next);
	unsigned e = atomic_load(&s->epoch);
	atomic_store(&s->epoch, e + 1);
	/* Readers of epoch e may hold old; readers that start from now on
	 * announce in the other counter and load next. */
	while (atomic_load(&s->readers[e & 1]) != 0) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000};
		nanosleep(&ts, NULL);
	}
	pthread_mutex_unlock(&s->wmu);
	return old;
}
