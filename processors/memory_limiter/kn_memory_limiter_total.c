/* SPDX-License-Identifier: Apache-2.0
 * kn_memory_limiter_total: the memory limit_percentage is a percentage of
 * (see kn_memory_limiter.h). Reads a handful of small files once, at
 * create. The cgroup path is this process's, from /proc/self/cgroup
 * ("0::/path" for v2, "N:...memory...:/path" for v1), looked up under the
 * usual mount points; inside a container whose cgroup namespace hides the
 * path, the mount point's own file is read instead. */
#include "kn_memory_limiter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define V1_UNLIMITED 9223372036854771712ull /* what v1 reports without a limit */

static int read_file(const char *root, const char *path, char *buf, size_t cap)
{
	char full[1024];
	snprintf(full, sizeof full, "%s%s", root, path);
	FILE *f = fopen(full, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return 0;
}

/* This process's cgroup path for v2 (want NULL) or the v1 controller `want`. */
static int cgroup_path(const char *root, const char *want, char *out, size_t cap)
{
	char buf[4096];
	if (read_file(root, "/proc/self/cgroup", buf, sizeof buf))
		return -1;
	char *lsave = NULL;
	for (char *line = strtok_r(buf, "\n", &lsave); line; line = strtok_r(NULL, "\n", &lsave)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		const char *ctrl = c1 + 1, *path = c2 + 1;
		int match = 0;
		if (!want) {
			match = strncmp(line, "0:", 2) == 0 && ctrl[0] == '\0';
		} else {
			char list[256], *save = NULL;
			snprintf(list, sizeof list, "%s", ctrl);
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
				if (strcmp(t, want) == 0)
					match = 1;
		}
		if (match) {
			snprintf(out, cap, "%s", strcmp(path, "/") == 0 ? "" : path);
			return 0;
		}
	}
	return -1;
}

/* 1 and *v for a number, 0 for "max"/unlimited, -1 when unreadable. */
static int read_limit(const char *root, const char *path, uint64_t *v)
{
	char buf[64];
	if (read_file(root, path, buf, sizeof buf))
		return -1;
	if (strncmp(buf, "max", 3) == 0)
		return 0;
	char *e;
	unsigned long long x = strtoull(buf, &e, 10);
	if (e == buf || (*e && *e != '\n'))
		return -1;
	if (x == V1_UNLIMITED || x == 0)
		return 0;
	*v = x;
	return 1;
}

static uint64_t meminfo_total(const char *root)
{
	char buf[8192];
	if (read_file(root, "/proc/meminfo", buf, sizeof buf))
		return 0;
	const char *p = strstr(buf, "MemTotal:");
	if (!p)
		return 0;
	unsigned long long kb = 0;
	if (sscanf(p + 9, " %llu kB", &kb) != 1)
		return 0;
	return (uint64_t)kb * 1024;
}

uint64_t kn_memory_limiter_total(const char *root)
{
	char path[512], file[700];
	uint64_t v = 0;
	int rc = -1;
	snprintf(file, sizeof file, "%s/sys/fs/cgroup/cgroup.controllers", root);
	if (access(file, F_OK) == 0) {
		/* cgroup v2 */
		if (cgroup_path(root, NULL, path, sizeof path) == 0) {
			snprintf(file, sizeof file, "/sys/fs/cgroup%s/memory.max", path);
			rc = read_limit(root, file, &v);
		}
		if (rc < 0)
			rc = read_limit(root, "/sys/fs/cgroup/memory.max", &v);
	} else {
		if (cgroup_path(root, "memory", path, sizeof path) == 0) {
			snprintf(file, sizeof file, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", path);
			rc = read_limit(root, file, &v);
		}
		if (rc < 0)
			rc = read_limit(root, "/sys/fs/cgroup/memory/memory.limit_in_bytes", &v);
	}
	if (rc == 1)
		return v;
	return meminfo_total(root);
}
