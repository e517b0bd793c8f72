/* SPDX-License-Identifier: Apache-2.0
 * kn_config_endpoint: "host:port" listen/dial addresses as the OpenTelemetry
 * Collector writes them ("0.0.0.0:4317", "localhost:4318", "[::1]:4317",
 * ":4317"). Checks shape only; no name resolution. Pure function. */
#include "kn_config_int.h"

#include <string.h>

static int host_char(char c, int v6)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
	    c == '-' || c == '_')
		return 1;
	return v6 && (c == ':' || c == '%');
}

int kn_parse_endpoint(const char *s, const char *path, char *host, size_t hostcap,
		      uint16_t *port, struct kn_err *err)
{
	char q[96];
	const char *h = s, *he, *ps;
	int v6 = 0;

	kn_cfg_quote(s, q, sizeof q);
	if (*s == '[') {
		v6 = 1;
		h = s + 1;
		he = strchr(h, ']');
		if (!he || he[1] != ':')
			return kn_errf(err, "%s: expected host:port or [ipv6]:port, got %s", path, q);
		ps = he + 2;
	} else {
		const char *c = strrchr(s, ':');
		if (!c)
			return kn_errf(err, "%s: expected host:port, got %s (missing port)", path, q);
		if (memchr(s, ':', (size_t)(c - s)))
			return kn_errf(err, "%s: an IPv6 address needs brackets, as in \"[::1]:4317\"; got %s",
				       path, q);
		he = c;
		ps = c + 1;
	}
	if (v6 && he == h)
		return kn_errf(err, "%s: empty IPv6 address in %s", path, q);
	for (const char *p = h; p < he; p++)
		if (!host_char(*p, v6))
			return kn_errf(err, "%s: expected host:port, got %s (bad character in host)",
				       path, q);
	if (!*ps)
		return kn_errf(err, "%s: expected host:port, got %s (missing port)", path, q);
	unsigned long v = 0;
	for (const char *p = ps; *p; p++) {
		if (*p < '0' || *p > '9')
			return kn_errf(err, "%s: expected host:port, got %s (port is not a number)",
				       path, q);
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			return kn_errf(err, "%s: port must be between 0 and 65535, got %s", path, q);
	}
	size_t hl = (size_t)(he - h);
	if (hl + 1 > hostcap)
		return kn_errf(err, "%s: host is longer than %zu bytes in %s", path,
			       hostcap ? hostcap - 1 : 0, q);
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (uint16_t)v;
	return KN_OK;
}
