// SPDX-License-Identifier: Apache-2.0
// kn_grpc_absl: abseil's mutex deadlock detection on or off for the whole
// process (see kn_grpc_absl.h). C++ only because abseil's setting is a C++
// function; nothing here throws or allocates.
#include "kn_grpc_absl.h"

#include <absl/synchronization/mutex.h>

extern "C" void kn_grpc_absl_set_detection(int on)
{
	absl::SetMutexDeadlockDetectionMode(on ? absl::OnDeadlockCycle::kAbort : absl::OnDeadlockCycle::kIgnore);
}

extern "C" void kn_grpc_absl_init(void)
{
	kn_grpc_absl_set_detection(0);
}
