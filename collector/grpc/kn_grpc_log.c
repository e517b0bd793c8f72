/* SPDX-License-Identifier: Apache-2.0
 * kn_grpc_log: routes libgrpc's own log lines into kn_log at debug level.
 * libgrpc prints its internal errors (e.g. a failed bind, with a long status
 * tree) to stderr by default; kansatsu reports the same failures itself with
 * the config key at fault, so the library's lines are only useful when
 * debugging (service.telemetry.logs.level: debug). */
#include "kn_grpc_log.h"

#include <grpc/support/log.h>

#include "../core/kn_log.h"

static void to_kn_log(gpr_log_func_args *a)
{
	kn_debug("grpc: %s (%s:%d)", a->message, a->file, a->line);
}

void kn_grpc_log_init(void)
{
	gpr_set_log_function(to_kn_log);
}
