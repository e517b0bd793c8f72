/* SPDX-License-Identifier: Apache-2.0
 * The `resourcedetection` processor: resource attributes detected once, at
 * start, merged into every Resource (OpenTelemetry Collector's
 * resourcedetectionprocessor, the detectors that make sense for a process
 * on a host):
 *   detectors: [env, system]    in order; on a key two detectors give, the
 *                               first one wins (default [env])
 *     env      OTEL_RESOURCE_ATTRIBUTES: "k1=v1,k2=v2", keys and values
 *              trimmed, values percent-decoded (W3C Baggage octets, as the
 *              SDK spec says); a malformed entry fails start, naming it
 *     system   host.name (per hostname_sources), os.type, and host.arch
 *              when enabled
 *   override: true              detected values replace the Resource's own
 *                               (false: only keys it lacks are added)
 *   timeout: 5s                 bound on detection (the dns hostname lookup)
 *   system:
 *     hostname_sources: [dns, os]   dns: the FQDN (getaddrinfo AI_CANONNAME);
 *                                   os: gethostname(); the first that works
 *     resource_attributes:      {host.name|os.type|host.arch: {enabled: bool}}
 *                               (defaults true, true, false as in OTel)
 * Refused with the path named: every other detector (gcp, ec2, docker, ...),
 * hostname sources cname / lookup, enabling the system attributes kansatsu
 * does not detect (host.id, os.description, host.ip, ...), a non-zero
 * refresh_interval and the deprecated `attributes` list.
 * Per batch, no per-trace state (any_shard); Resources that already carry
 * every detected value unchanged keep their exact bytes. */
#ifndef KN_RESOURCEDETECTION_H
#define KN_RESOURCEDETECTION_H

#include <stdint.h>

#include "../../collector/config/kn_config.h"
#include "../../collector/core/kn_component.h"

struct kn_rd_system_attr {
	int enabled;
};

struct kn_rd_system_attrs {
	struct kn_rd_system_attr host_name, os_type, host_arch;
};

struct kn_rd_system_cfg {
	struct kn_strlist hostname_sources;
	struct kn_rd_system_attrs resource_attributes;
};

struct kn_resourcedetection_cfg {
	struct kn_strlist detectors;
	int override;
	uint64_t timeout_ns;
	uint64_t refresh_interval_ns;
	struct kn_rd_system_cfg system;
	struct kn_strlist attributes;   /* deprecated in OTel: refused when set */
};

/* The detection itself, for tests: OTEL_RESOURCE_ATTRIBUTES text -> pairs.
 * Returns the number of pairs (keys[i] / vals[i] malloc'd, NULL-terminated
 * arrays even on error; the caller frees them),
 * or -1 with err naming the entry. */
int kn_rd_parse_env(const char *text, char ***keys, char ***vals, struct kn_err *err);
/* uname machine -> OTel's host.arch value ("x86_64" -> "amd64"). */
const char *kn_rd_host_arch(const char *machine);

extern const struct kn_component kn_processor_resourcedetection;

#endif
