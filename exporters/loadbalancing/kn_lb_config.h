/* SPDX-License-Identifier: Apache-2.0
 * kn_lb_config: the loadbalancing exporter's config table and cross-field
 * checks (internal to exporters/loadbalancing; the struct is in
 * kn_exporter_loadbalancing.h). */
#ifndef KN_LB_CONFIG_H
#define KN_LB_CONFIG_H

#include "kn_exporter_loadbalancing.h"

extern const struct kn_cfg_field kn_lb_fields[];
int kn_lb_validate(const void *cfg, const char *path, struct kn_err *err);

#endif
