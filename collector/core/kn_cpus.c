/* SPDX-License-Identifier: Apache-2.0
 * kn_cpus: the process's usable CPU count (see kn_cpus.h). */
#include "kn_cpus.h"

#include <sched.h>
#include <unistd.h>

unsigned kn_cpus(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof set, &set) == 0) {
		int n = CPU_COUNT(&set);
		if (n > 0)
			return (unsigned)n;
	}
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}
