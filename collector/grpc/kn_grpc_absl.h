/* SPDX-License-Identifier: Apache-2.0
 * kn_grpc_absl: abseil's mutex deadlock detection, which libgrpc's mutexes
 * (gpr_mu, grpc_core::Mutex) run through in Debian's build.
 *
 * Debian builds abseil without NDEBUG, so every absl::Mutex lock (every
 * gpr_mu_lock of libgrpc) records the lock in abseil's deadlock graph under
 * one process-wide spinlock. Threads that lock unrelated mutexes then
 * serialise on that spinlock: on the 2-core VM two threads, each locking
 * its own gpr_mu, did 3.0 M lock/unlock pairs per second together against
 * 24.6 M for one thread alone; with detection off, 128.8 M against 64.2 M
 * (bench/bench_grpc_mutex). Release builds of abseil have it off.
 *
 * kn_grpc_absl_init turns it off (absl::OnDeadlockCycle::kIgnore). The
 * processes that run libgrpc (kansatsu, loadgen, sink) call it once at
 * start, before their first grpc_init; it only stores an atomic, so calling
 * it again or later is harmless. kn_grpc_absl_set_detection(1) turns it
 * back on (abseil's debug default, kAbort: a lock-order inversion aborts),
 * for the benchmark's "on" rows and the test. The only C++ in the project:
 * abseil's setting has no C entry point. */
#ifndef KN_GRPC_ABSL_H
#define KN_GRPC_ABSL_H

#ifdef __cplusplus
extern "C" {
#endif

void kn_grpc_absl_init(void);
void kn_grpc_absl_set_detection(int on);

#ifdef __cplusplus
}
#endif

#endif
