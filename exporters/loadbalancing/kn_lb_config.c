/* SPDX-License-Identifier: Apache-2.0
 * kn_lb_config: config table of the loadbalancing exporter. protocol.otlp is
 * the otlp exporter's own table, reused through a copy (built once, under
 * pthread_once) whose endpoint is not required: the resolver supplies it.
 * The otlp exporter's validate then runs on protocol.otlp with a placeholder
 * endpoint, so its messages name "<path>.protocol.otlp.<key>". */
#include "kn_lb_config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kn_lb_resolve.h"

#define TMPL_MAX 64

static struct kn_cfg_field tmpl[TMPL_MAX + 1];
static pthread_once_t tmpl_once = PTHREAD_ONCE_INIT;

static void tmpl_build(void)
{
	size_t n = 0;
	for (const struct kn_cfg_field *f = kn_exporter_otlp.config_fields; f->key && n < TMPL_MAX; f++) {
		tmpl[n] = *f;
		if (strcmp(f->key, "endpoint") == 0) {
			tmpl[n].required = 0;
			tmpl[n].help = "ignored: each endpoint comes from the resolver";
		}
		n++;
	}
	tmpl[n] = (struct kn_cfg_field)KN_CFG_END;
}

const struct kn_cfg_field *kn_lb_otlp_fields(void)
{
	pthread_once(&tmpl_once, tmpl_build);
	return tmpl;
}

static int otlp_parse(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	return kn_cfg_apply_at(kn_lb_otlp_fields(), node, node->path ? node->path : "", dst, err);
}

static void otlp_free(void *dst)
{
	kn_cfg_free(kn_lb_otlp_fields(), dst);
	memset(dst, 0, sizeof(struct kn_otlpexp_cfg));
}

static const struct kn_cfg_field protocol_fields[] = {
	{.key = "otlp", .type = KN_F_CUSTOM, .off = offsetof(struct kn_lb_protocol_cfg, otlp), .def = "{}",
	 .parse = otlp_parse, .free = otlp_free,
	 .help = "the otlp exporter's settings for every endpoint (tls, compression, timeout, auth, "
		 "sending_queue, retry_on_failure, headers)"},
	KN_CFG_END,
};

static const struct kn_cfg_field static_fields[] = {
	{.key = "hostnames", .type = KN_F_STRLIST, .off = offsetof(struct kn_lb_static_cfg, hostnames),
	 .required = 1, .help = "endpoints as host[:port] (port defaults to 4317)"},
	KN_CFG_END,
};

static const struct kn_cfg_field dns_fields[] = {
	{.key = "hostname", .type = KN_F_STR, .off = offsetof(struct kn_lb_dns_cfg, hostname), .required = 1,
	 .help = "name whose A and AAAA records are the endpoints (e.g. a headless service)"},
	{.key = "port", .type = KN_F_UINT, .off = offsetof(struct kn_lb_dns_cfg, port), .def = "4317",
	 .min = 1, .max = 65535, .help = "port of every resolved address"},
	{.key = "interval", .type = KN_F_DURATION, .off = offsetof(struct kn_lb_dns_cfg, interval_ns),
	 .def = "5s", .help = "re-resolve period"},
	{.key = "timeout", .type = KN_F_DURATION, .off = offsetof(struct kn_lb_dns_cfg, timeout_ns),
	 .def = "1s", .help = "bound of one lookup"},
	KN_CFG_END,
};

static const struct kn_cfg_field resolver_fields[] = {
	{.key = "static", .type = KN_F_SUB, .off = offsetof(struct kn_lb_resolver_cfg, stat), .sub = static_fields,
	 .present_off = offsetof(struct kn_lb_resolver_cfg, has_static), .help = "a fixed list of endpoints"},
	{.key = "dns", .type = KN_F_SUB, .off = offsetof(struct kn_lb_resolver_cfg, dns), .sub = dns_fields,
	 .present_off = offsetof(struct kn_lb_resolver_cfg, has_dns), .help = "endpoints from DNS, refreshed"},
	KN_CFG_END,
};

static const char *const routing_keys[] = {"traceID", "service", "journey", NULL};

const struct kn_cfg_field kn_lb_fields[] = {
	{.key = "routing_key", .type = KN_F_STR, .off = offsetof(struct kn_lb_cfg, routing_key), .def = "traceID",
	 .choices = routing_keys,
	 .help = "what keeps spans together: traceID, service (service.name) or journey (the span's "
		 "journey id attribute, else its trace id)"},
	{.key = "journey_id_attribute", .type = KN_F_STR, .off = offsetof(struct kn_lb_cfg, journey_id_attribute),
	 .def = "journey.id",
	 .help = "routing_key journey: the span attribute holding the journey id (32 hex digits or 16 bytes), "
		 "as the journey processor's journey_id_attribute; accepted with any routing_key, used only by journey"},
	{.key = "protocol", .type = KN_F_SUB, .off = offsetof(struct kn_lb_cfg, protocol), .sub = protocol_fields,
	 .help = "how to talk to each endpoint"},
	{.key = "resolver", .type = KN_F_SUB, .off = offsetof(struct kn_lb_cfg, resolver), .sub = resolver_fields,
	 .help = "where the endpoints come from: static or dns"},
	KN_CFG_END,
};

int kn_lb_validate(const void *cfgp, const char *path, struct kn_err *err)
{
	const struct kn_lb_cfg *cfg = cfgp;
	const struct kn_lb_resolver_cfg *r = &cfg->resolver;
	char sub[512], ep[512];
	if (cfg->routing_key && strcmp(cfg->routing_key, "traceID") != 0 && strcmp(cfg->routing_key, "service") != 0 &&
	    strcmp(cfg->routing_key, "journey") != 0)
		return kn_errf(err, "%s.routing_key: expected traceID, service or journey, got \"%s\"", path,
			       cfg->routing_key);
	if (cfg->routing_key && strcmp(cfg->routing_key, "journey") == 0) {
		size_t kl = cfg->journey_id_attribute ? strlen(cfg->journey_id_attribute) : 0;
		if (kl == 0)
			return kn_errf(err, "%s.journey_id_attribute: must not be empty with routing_key journey", path);
		if (kl > KN_LB_JID_KEY_MAX)
			return kn_errf(err, "%s.journey_id_attribute: longer than %d bytes", path, KN_LB_JID_KEY_MAX);
	}
	if (r->has_static == r->has_dns)
		return kn_errf(err, "%s.resolver: exactly one of static or dns", path);
	if (r->has_static) {
		if (r->stat.hostnames.n == 0)
			return kn_errf(err, "%s.resolver.static.hostnames: at least one host[:port]", path);
		for (size_t i = 0; i < r->stat.hostnames.n; i++) {
			snprintf(sub, sizeof sub, "%s.resolver.static.hostnames[%zu]", path, i);
			if (kn_lb_normalize(r->stat.hostnames.v[i], sub, ep, sizeof ep, err) != KN_OK)
				return KN_ERR;
		}
	} else {
		if (!r->dns.hostname || !*r->dns.hostname)
			return kn_errf(err, "%s.resolver.dns.hostname: missing", path);
		if (r->dns.port < 1 || r->dns.port > 65535)
			return kn_errf(err, "%s.resolver.dns.port: must be in [1, 65535]", path);
		if (r->dns.interval_ns == 0)
			return kn_errf(err, "%s.resolver.dns.interval: must be more than 0", path);
		if (r->dns.timeout_ns == 0)
			return kn_errf(err, "%s.resolver.dns.timeout: must be more than 0", path);
	}
	struct kn_otlpexp_cfg o = cfg->protocol.otlp;
	o.endpoint = (char *)"127.0.0.1:4317"; /* placeholder: checks the rest */
	snprintf(sub, sizeof sub, "%s.protocol.otlp", path);
	return kn_exporter_otlp.validate(&o, sub, err);
}
