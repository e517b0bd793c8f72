/* SPDX-License-Identifier: Apache-2.0
 * kn_admin: the collector's own endpoints, served by kn_httpd on one thread
 * each: the health_check extension (GET /healthz, /readyz and the configured
 * path, default "/") and the telemetry metrics endpoint (GET /metrics,
 * Prometheus text format 0.0.4). */
#ifndef KN_ADMIN_H
#define KN_ADMIN_H

#include "../core/kn_err.h"

struct kn_httpd;
struct kn_metrics;
struct kn_runtime;

/* /healthz: 200 while the process serves; /readyz and `path`: 200 once the
 * collector is ready (all components started) and until shutdown, else 503. */
struct kn_httpd *kn_admin_health_create(const char *endpoint, struct kn_runtime *rt,
					struct kn_err *err);
struct kn_httpd *kn_admin_metrics_create(const char *endpoint, struct kn_metrics *m,
					 struct kn_err *err);

#endif
