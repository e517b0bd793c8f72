/* SPDX-License-Identifier: Apache-2.0
 * kn_admin: handlers for the health and metrics endpoints (see kn_admin.h).
 * Both run on their own one-thread kn_httpd, away from the receivers' threads,
 * so a scrape never competes with ingest for an event loop. /metrics
 * negotiates its format on Accept: OpenMetrics 1.0 (with exemplars) when the
 * client prefers application/openmetrics-text, Prometheus 0.0.4 otherwise. */
#include "kn_admin.h"

#include <stdlib.h>
#include <string.h>

#include "../core/kn_metrics.h"
#include "../core/kn_runtime.h"
#include "../http/kn_httpd.h"

static void set_text(struct kn_http_resp *resp, int status, const char *ctype, const char *text)
{
	resp->status = status;
	resp->content_type = ctype;
	resp->body = (uint8_t *)strdup(text);
	resp->body_len = resp->body ? strlen(text) : 0;
	resp->body_free = 1;
}

static int only_get(const struct kn_http_req *req, struct kn_http_resp *resp)
{
	if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)
		return 1;
	kn_http_resp_header(resp, "Allow", "GET, HEAD");
	set_text(resp, 405, "text/plain; charset=utf-8", "method not allowed\n");
	return 0;
}

static void health_handler(void *ctx, const struct kn_http_req *req, struct kn_http_resp *resp)
{
	struct kn_runtime *rt = ctx;
	if (!only_get(req, resp))
		return;
	if (strcmp(req->path, "/healthz") == 0) {
		set_text(resp, 200, "application/json", "{\"status\":\"ok\"}\n");
	} else if (strcmp(req->path, "/readyz") == 0 || strcmp(req->path, "/") == 0) {
		if (kn_runtime_ready(rt))
			set_text(resp, 200, "application/json", "{\"status\":\"ready\"}\n");
		else
			set_text(resp, 503, "application/json", "{\"status\":\"not ready\"}\n");
	} else {
		set_text(resp, 404, "text/plain; charset=utf-8",
			 "not found; try /healthz, /readyz\n");
	}
}

static void metrics_handler(void *ctx, const struct kn_http_req *req, struct kn_http_resp *resp)
{
	struct kn_metrics *m = ctx;
	if (!only_get(req, resp))
		return;
	if (strcmp(req->path, "/metrics") != 0) {
		set_text(resp, 404, "text/plain; charset=utf-8", "not found; try /metrics\n");
		return;
	}
	/* Content negotiation: Prometheus asks for OpenMetrics (which carries
	 * exemplars) first; everything else gets the 0.0.4 text format. */
	size_t alen = 0;
	const char *accept = kn_http_req_header(req, "accept", &alen);
	enum kn_metrics_format fmt = kn_metrics_negotiate(accept, accept ? alen : 0);
	char *out;
	size_t len;
	if (kn_metrics_render_fmt(m, fmt, &out, &len) != 0) {
		set_text(resp, 500, "text/plain; charset=utf-8", "out of memory\n");
		return;
	}
	kn_http_resp_header(resp, "Vary", "Accept");
	resp->status = 200;
	resp->content_type = kn_metrics_content_type(fmt);
	resp->body = (uint8_t *)out;
	resp->body_len = len;
	resp->body_free = 1;
}

static struct kn_httpd *admin_create(const char *endpoint, const char *name, kn_http_handler h,
				     void *ctx, struct kn_err *err)
{
	struct kn_httpd_opts o = {
		.endpoint = endpoint,
		.name = name,
		.threads = 1,
		.max_body = 64 * 1024,
		.decompress = 0,
		.enable_h2c = 0,
	};
	return kn_httpd_create(&o, h, NULL, ctx, err);
}

struct kn_httpd *kn_admin_health_create(const char *endpoint, struct kn_runtime *rt,
					struct kn_err *err)
{
	return admin_create(endpoint, "health", health_handler, rt, err);
}

struct kn_httpd *kn_admin_metrics_create(const char *endpoint, struct kn_metrics *m,
					 struct kn_err *err)
{
	return admin_create(endpoint, "metrics", metrics_handler, m, err);
}
