/* SPDX-License-Identifier: Apache-2.0
 * kn_clock: one monotonic nanosecond clock for every timer and deadline, and
 * the wall clock for timestamps that leave the process. */
#ifndef KN_CLOCK_H
#define KN_CLOCK_H

#include <stdint.h>
#include <time.h>

#define KN_NS_PER_MS 1000000ull
#define KN_NS_PER_SEC 1000000000ull

static inline uint64_t kn_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * KN_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static inline uint64_t kn_unix_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * KN_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

#endif
