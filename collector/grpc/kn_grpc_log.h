/* SPDX-License-Identifier: Apache-2.0
 * kn_grpc_log: libgrpc's log lines go to kn_log at debug level. Call once,
 * before the first grpc_init (idempotent). */
#ifndef KN_GRPC_LOG_H
#define KN_GRPC_LOG_H

void kn_grpc_log_init(void);

#endif
