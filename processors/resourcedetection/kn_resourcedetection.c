/* SPDX-License-Identifier: Apache-2.0
 * The `resourcedetection` processor (see kn_resourcedetection.h). start()
 * runs the detectors once (the dns hostname lookup in a helper thread,
 * bounded by `timeout`) into an ordered list of string attributes; every
 * shard then merges that list into each Resource through the shared
 * attribute view and splicing editor. */
#include "kn_resourcedetection.h"

#include <ctype.h>
#include <netdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "../../collector/core/kn_clock.h"
#include "../../collector/core/kn_log.h"
#include "../../collector/core/kn_metrics.h"
#include "../../collector/wire/kn_wire_attrs.h"

/* ---- config ---- */

static const char *const otel_system_attrs[] = {
	"host.cpu.cache.l2.size", "host.cpu.family", "host.cpu.model.id", "host.cpu.model.name",
	"host.cpu.stepping", "host.cpu.vendor.id", "host.id", "host.interface", "host.ip",
	"host.mac", "os.build.id", "os.description", "os.name", "os.version", NULL,
};

static const char *const otel_detectors[] = {
	"gcp", "ec2", "ecs", "eks", "elasticbeanstalk", "lambda", "azure", "aks", "consul",
	"docker", "heroku", "k8snode", "openshift", "dynatrace", "akamai", "upcloud",
	"hetzner", "scaleway", "vultr", "oraclecloud", "digitalocean", "kubeadm", "nova", NULL,
};

static int in_list(const char *s, const char *const *l)
{
	for (size_t i = 0; l[i]; i++)
		if (!strcmp(s, l[i]))
			return 1;
	return 0;
}

static const struct kn_cfg_field enabled_fields[] = {
	{.key = "enabled", .type = KN_F_BOOL, .off = offsetof(struct kn_rd_system_attr, enabled),
	 .help = "emit this attribute"},
	KN_CFG_END,
};

static int sysattrs_parse(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	struct kn_rd_system_attrs *a = dst;
	a->host_name.enabled = 1;
	a->os_type.enabled = 1;
	a->host_arch.enabled = 0;
	if (node->type == KN_CNODE_NULL)
		return KN_OK;
	if (node->type != KN_CNODE_MAP)
		return kn_errf(err, "%s: expected a map of attribute: {enabled: bool}", node->path);
	for (size_t i = 0; i < node->n; i++) {
		const struct kn_cnode *c = &node->children[i];
		struct kn_rd_system_attr *t = NULL, tmp = {0};
		if (!strcmp(c->key, "host.name"))
			t = &a->host_name;
		else if (!strcmp(c->key, "os.type"))
			t = &a->os_type;
		else if (!strcmp(c->key, "host.arch"))
			t = &a->host_arch;
		else if (!in_list(c->key, otel_system_attrs))
			return kn_errf(err, "%s: unknown attribute (supported: host.name, os.type, host.arch)", c->path);
		struct kn_rd_system_attr *into = t ? t : &tmp;
		int def = into->enabled;
		if (kn_cfg_apply(enabled_fields, c, into, err) != KN_OK)
			return KN_ERR;
		if (!kn_cnode_get(c, "enabled"))
			into->enabled = def;
		if (!t && tmp.enabled)
			return kn_errf(err, "%s.enabled: kansatsu's system detector does not detect %s "
				       "(supported: host.name, os.type, host.arch)", c->path, c->key);
	}
	return KN_OK;
}

static void sysattrs_free(void *dst)
{
	(void)dst;
}

static const struct kn_cfg_field system_fields[] = {
	{.key = "hostname_sources", .type = KN_F_STRLIST,
	 .off = offsetof(struct kn_rd_system_cfg, hostname_sources), .def = "[dns, os]",
	 .help = "where host.name comes from, first that works: dns (FQDN), os (gethostname)"},
	{.key = "resource_attributes", .type = KN_F_CUSTOM,
	 .off = offsetof(struct kn_rd_system_cfg, resource_attributes), .def = "{}",
	 .help = "{host.name|os.type|host.arch: {enabled: bool}}",
	 .parse = sysattrs_parse, .free = sysattrs_free},
	KN_CFG_END,
};

static const struct kn_cfg_field rd_fields[] = {
	{.key = "detectors", .type = KN_F_STRLIST,
	 .off = offsetof(struct kn_resourcedetection_cfg, detectors), .def = "[env]",
	 .help = "detectors in order: env, system (the first to give a key wins)"},
	{.key = "override", .type = KN_F_BOOL,
	 .off = offsetof(struct kn_resourcedetection_cfg, override), .def = "true",
	 .help = "detected values replace a Resource's own"},
	{.key = "timeout", .type = KN_F_DURATION,
	 .off = offsetof(struct kn_resourcedetection_cfg, timeout_ns), .def = "5s",
	 .help = "bound on detection at start"},
	{.key = "refresh_interval", .type = KN_F_DURATION,
	 .off = offsetof(struct kn_resourcedetection_cfg, refresh_interval_ns), .def = "0s",
	 .help = "must be 0: kansatsu detects once, at start"},
	{.key = "system", .type = KN_F_SUB, .off = offsetof(struct kn_resourcedetection_cfg, system),
	 .sub = system_fields, .help = "the system detector"},
	{.key = "attributes", .type = KN_F_STRLIST,
	 .off = offsetof(struct kn_resourcedetection_cfg, attributes),
	 .help = "deprecated in OTel: refused"},
	KN_CFG_END,
};

static int rd_validate(const void *cfg, const char *path, struct kn_err *err)
{
	const struct kn_resourcedetection_cfg *c = cfg;
	for (size_t i = 0; i < c->detectors.n; i++) {
		const char *d = c->detectors.v[i];
		if (!strcmp(d, "env") || !strcmp(d, "system")) {
			for (size_t j = 0; j < i; j++)
				if (!strcmp(c->detectors.v[j], d))
					return kn_errf(err, "%s.detectors[%zu]: \"%s\" listed twice", path, i, d);
			continue;
		}
		if (in_list(d, otel_detectors))
			return kn_errf(err, "%s.detectors[%zu]: detector \"%s\" is not supported by kansatsu "
				       "(supported: env, system)", path, i, d);
		return kn_errf(err, "%s.detectors[%zu]: unknown detector \"%s\" (supported: env, system)", path, i, d);
	}
	for (size_t i = 0; i < c->system.hostname_sources.n; i++) {
		const char *s = c->system.hostname_sources.v[i];
		if (strcmp(s, "dns") && strcmp(s, "os"))
			return kn_errf(err, "%s.system.hostname_sources[%zu]: %s \"%s\" (supported: dns, os)", path, i,
				       !strcmp(s, "cname") || !strcmp(s, "lookup") ? "unsupported source" : "unknown source", s);
	}
	if (c->refresh_interval_ns)
		return kn_errf(err, "%s.refresh_interval: not supported (kansatsu detects once, at start): use 0", path);
	if (c->attributes.n)
		return kn_errf(err, "%s.attributes: not supported (deprecated in OTel): use a resource processor "
			       "to delete what you do not want", path);
	if (c->timeout_ns == 0)
		return kn_errf(err, "%s.timeout: must be more than 0", path);
	return KN_OK;
}

/* ---- detection ---- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *trimmed(const char *s, size_t n, int decode)
{
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	char *r = malloc(n + 1), *w = r;
	if (!r)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (decode && s[i] == '%' && i + 2 < n &&
		    hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			*w++ = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else {
			*w++ = s[i];
		}
	}
	*w = '\0';
	return r;
}

int kn_rd_parse_env(const char *text, char ***keys, char ***vals, struct kn_err *err)
{
	*keys = *vals = NULL;
	if (!text)
		return 0;
	size_t cap = 2;   /* entries + a NULL end */
	for (const char *p = text; *p; p++)
		cap += *p == ',';
	*keys = calloc(cap, sizeof **keys);
	*vals = calloc(cap, sizeof **vals);
	if (!*keys || !*vals)
		return kn_errf(err, "out of memory");
	int n = 0;
	const char *p = text;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		int blank = 1;
		for (size_t i = 0; i < len; i++)
			blank &= isspace((unsigned char)p[i]) != 0;
		if (!blank) {
			if (!eq)
				return kn_errf(err, "OTEL_RESOURCE_ATTRIBUTES: entry \"%.*s\" is not key=value", (int)len, p);
			char *k = trimmed(p, (size_t)(eq - p), 0);
			char *v = trimmed(eq + 1, len - (size_t)(eq - p) - 1, 1);
			if (!k || !v) {
				free(k);
				free(v);
				return kn_errf(err, "out of memory");
			}
			if (!*k) {
				free(k);
				free(v);
				return kn_errf(err, "OTEL_RESOURCE_ATTRIBUTES: entry \"%.*s\" has an empty key", (int)len, p);
			}
			(*keys)[n] = k;
			(*vals)[n] = v;
			n++;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return n;
}

const char *kn_rd_host_arch(const char *m)
{
	static const struct { const char *in, *out; } map[] = {
		{"x86_64", "amd64"}, {"amd64", "amd64"}, {"aarch64", "arm64"}, {"arm64", "arm64"},
		{"i386", "x86"}, {"i486", "x86"}, {"i586", "x86"}, {"i686", "x86"},
		{"ppc64", "ppc64"}, {"ppc64le", "ppc64"}, {"ppc", "ppc32"}, {"s390x", "s390x"},
		{"ia64", "ia64"},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (!strcmp(m, map[i].in))
			return map[i].out;
	if (!strncmp(m, "arm", 3))
		return "arm32";
	return m;
}

/* The FQDN lookup runs in a detached thread so a slow resolver cannot hold
 * start past `timeout`; the shared state is freed by whoever finishes last. */
struct fqdn_job {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, abandoned;
	char host[256];
	char fqdn[256];
};

static void fqdn_job_release(struct fqdn_job *j)
{
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j);
}

static void *fqdn_thread(void *arg)
{
	struct fqdn_job *j = arg;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_flags = AI_CANONNAME}, *res = NULL;
	char out[256] = "";
	if (getaddrinfo(j->host, NULL, &hints, &res) == 0 && res && res->ai_canonname)
		snprintf(out, sizeof out, "%s", res->ai_canonname);
	if (res)
		freeaddrinfo(res);
	pthread_mutex_lock(&j->mu);
	snprintf(j->fqdn, sizeof j->fqdn, "%s", out);
	j->done = 1;
	int abandoned = j->abandoned;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	if (abandoned)
		fqdn_job_release(j);
	return NULL;
}

static int fqdn(const char *host, uint64_t timeout_ns, char *out, size_t cap)
{
	struct fqdn_job *j = calloc(1, sizeof *j);
	if (!j)
		return -1;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	snprintf(j->host, sizeof j->host, "%s", host);
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, fqdn_thread, j) != 0) {
		pthread_attr_destroy(&at);
		fqdn_job_release(j);
		return -1;
	}
	pthread_attr_destroy(&at);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	uint64_t ns = (uint64_t)dl.tv_nsec + timeout_ns;
	dl.tv_sec += (time_t)(ns / 1000000000ull);
	dl.tv_nsec = (long)(ns % 1000000000ull);
	pthread_mutex_lock(&j->mu);
	while (!j->done)
		if (pthread_cond_timedwait(&j->cv, &j->mu, &dl) != 0)
			break;
	int ok = j->done && j->fqdn[0];
	if (ok)
		snprintf(out, cap, "%s", j->fqdn);
	int done = j->done;
	if (!done)
		j->abandoned = 1;
	pthread_mutex_unlock(&j->mu);
	if (done)
		fqdn_job_release(j);
	return ok ? 0 : -1;
}

/* ---- the processor ---- */

struct rd {
	const struct kn_resourcedetection_cfg *cfg;
	char id[96];
	char **keys, **vals;    /* detected, in precedence order */
	size_t n;
	int started;
};

struct rd_shard {
	struct rd *rd;
	struct kn_wire_edit ed;
	struct kn_wire_attrs at;
};

static int add_attr(struct rd *p, const char *k, const char *v)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->keys[i], k))
			return 0;   /* an earlier detector gave it: it wins */
	char **nk = realloc(p->keys, (p->n + 1) * sizeof *nk);
	if (!nk)
		return -1;
	p->keys = nk;
	char **nv = realloc(p->vals, (p->n + 1) * sizeof *nv);
	if (!nv)
		return -1;
	p->vals = nv;
	p->keys[p->n] = strdup(k);
	p->vals[p->n] = strdup(v);
	if (!p->keys[p->n] || !p->vals[p->n]) {
		free(p->keys[p->n]);
		free(p->vals[p->n]);
		return -1;
	}
	p->n++;
	return 0;
}

static int detect_env(struct rd *p, struct kn_err *err)
{
	char **k = NULL, **v = NULL;
	int n = kn_rd_parse_env(getenv("OTEL_RESOURCE_ATTRIBUTES"), &k, &v, err);
	int rc = KN_OK;
	for (int i = 0; i < n && rc == KN_OK; i++)
		if (add_attr(p, k[i], v[i]) < 0)
			rc = kn_errf(err, "out of memory");
	for (size_t i = 0; k && k[i]; i++) {
		free(k[i]);
		free(v[i]);
	}
	free(k);
	free(v);
	return n < 0 ? KN_ERR : rc;
}

static int detect_system(struct rd *p, struct kn_err *err)
{
	const struct kn_rd_system_cfg *s = &p->cfg->system;
	struct utsname u;
	if (uname(&u) != 0)
		return kn_errf(err, "system detector: uname failed");
	char host[256] = "", os[sizeof u.sysname];
	if (gethostname(host, sizeof host - 1) != 0)
		host[0] = '\0';
	char name[256] = "";
	for (size_t i = 0; i < s->hostname_sources.n && !name[0]; i++) {
		if (!strcmp(s->hostname_sources.v[i], "os"))
			snprintf(name, sizeof name, "%s", host);
		else if (host[0] && fqdn(host, p->cfg->timeout_ns, name, sizeof name) < 0)
			name[0] = '\0';
	}
	if (s->resource_attributes.host_name.enabled) {
		if (!name[0])
			return kn_errf(err, "system detector: every hostname source failed (%s)",
				       s->hostname_sources.n ? "dns / os" : "none listed");
		if (add_attr(p, "host.name", name) < 0)
			return kn_errf(err, "out of memory");
	}
	size_t i = 0;
	for (; u.sysname[i] && i + 1 < sizeof os; i++)
		os[i] = (char)tolower((unsigned char)u.sysname[i]);
	os[i] = '\0';
	if (s->resource_attributes.os_type.enabled && add_attr(p, "os.type", os) < 0)
		return kn_errf(err, "out of memory");
	if (s->resource_attributes.host_arch.enabled &&
	    add_attr(p, "host.arch", kn_rd_host_arch(u.machine)) < 0)
		return kn_errf(err, "out of memory");
	return KN_OK;
}

static int rd_create(const struct kn_component_ctx *ctx, const void *cfg, void **inst,
		     struct kn_err *err)
{
	struct rd *p = calloc(1, sizeof *p);
	if (!p)
		return kn_errf(err, "out of memory");
	p->cfg = cfg;
	kn_metrics_label_escape(ctx->id, p->id, sizeof p->id);
	*inst = p;
	return KN_OK;
}

static int rd_start(void *inst, struct kn_err *err)
{
	struct rd *p = inst;
	if (p->started)
		return KN_OK;
	for (size_t i = 0; i < p->cfg->detectors.n; i++) {
		const char *d = p->cfg->detectors.v[i];
		int rc = !strcmp(d, "env") ? detect_env(p, err) : detect_system(p, err);
		if (rc != KN_OK)
			return kn_err_prefix(err, "processors.%s: detector %s: ", p->id, d);
	}
	p->started = 1;
	char line[1024];
	size_t w = 0;
	line[0] = '\0';
	for (size_t i = 0; i < p->n && w < sizeof line; i++)
		w += (size_t)snprintf(line + w, sizeof line - w, "%s%s=%s", i ? ", " : "", p->keys[i], p->vals[i]);
	kn_info("processors.%s: detected %zu resource attributes: %s", p->id, p->n, line);
	return KN_OK;
}

static void rd_destroy(void *inst)
{
	struct rd *p = inst;
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->keys[i]);
		free(p->vals[i]);
	}
	free(p->keys);
	free(p->vals);
	free(p);
}

static int rd_shard_create(void *inst, uint32_t shard, void **state, struct kn_err *err)
{
	(void)shard;
	struct rd_shard *s = calloc(1, sizeof *s);
	if (!s)
		return kn_errf(err, "out of memory");
	s->rd = inst;
	kn_wire_edit_init(&s->ed);
	kn_wire_attrs_init(&s->at);
	*state = s;
	return KN_OK;
}

static void rd_shard_destroy(void *state)
{
	struct rd_shard *s = state;
	if (!s)
		return;
	kn_wire_edit_free(&s->ed);
	kn_wire_attrs_free(&s->at);
	free(s);
}

static int on_resource(void *ctx, struct kn_wire_edit *ed, const struct kn_wire_edit_res *r)
{
	struct rd_shard *s = ctx;
	const struct rd *p = s->rd;
	if (kn_wire_attrs_load(&s->at, r->msg, r->len, 1) < 0)
		return 0;
	for (size_t i = 0; i < p->n; i++) {
		size_t kl = strlen(p->keys[i]);
		struct kn_av v = {.type = KN_AV_STR, .s = (const uint8_t *)p->vals[i],
				  .len = (uint32_t)strlen(p->vals[i])};
		int k = kn_wire_attrs_find(&s->at, p->keys[i], kl);
		if (k < 0) {
			if (kn_wire_attrs_add(&s->at, p->keys[i], kl, &v) < 0)
				return -1;
		} else if (p->cfg->override && !kn_av_equal(&s->at.a[k].v, &v)) {
			kn_wire_attrs_set(&s->at, (uint32_t)k, &v);
		}
	}
	return kn_wire_attrs_emit(&s->at, ed) < 0 ? -1 : 0;
}

static const struct kn_wire_edit_ops rd_ops = {.resource = on_resource};

static int rd_process(void *state, struct kn_batch *b, const struct kn_emit *next)
{
	struct rd_shard *s = state;
	uint64_t dropped = 0;
	struct kn_err err = {{0}};
	if (s->rd->n && kn_wire_edit_batch(&s->ed, &rd_ops, s, b, &dropped, &err) != KN_OK)
		kn_warn("processors.%s: dropped %llu spans: %s", s->rd->id, (unsigned long long)dropped, err.msg);
	if (b->n == 0) {
		kn_batch_free(b);
		return KN_DROP;
	}
	kn_emit(next, b);
	return KN_OK;
}

const struct kn_component kn_processor_resourcedetection = {
	.type = "resourcedetection",
	.kind = KN_PROCESSOR,
	.summary = "adds resource attributes detected at start (env: OTEL_RESOURCE_ATTRIBUTES, system: host)",
	.any_shard = 1,
	.config_size = sizeof(struct kn_resourcedetection_cfg),
	.config_fields = rd_fields,
	.validate = rd_validate,
	.create = rd_create,
	.start = rd_start,
	.destroy = rd_destroy,
	.shard_create = rd_shard_create,
	.process = rd_process,
	.shard_destroy = rd_shard_destroy,
};
