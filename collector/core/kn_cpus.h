/* SPDX-License-Identifier: Apache-2.0
 * kn_cpus: how many CPUs this process may run on, the base of every default
 * that scales with the machine (shards, receiver threads, exporter consumers
 * and connections). It is the process's CPU affinity (sched_getaffinity), not
 * the machine's count, so a collector started under `taskset` or a
 * cpuset-limited container sizes itself to the cores it actually has; a CFS
 * quota (docker --cpus) is not looked at, as Go's GOMAXPROCS does not.
 * Falls back to sysconf(_SC_NPROCESSORS_ONLN), and is at least 1. */
#ifndef KN_CPUS_H
#define KN_CPUS_H

unsigned kn_cpus(void);

#endif
