/* SPDX-License-Identifier: Apache-2.0
 * kn_log: see kn_log.h. Each record is formatted into one buffer and written
 * with a single write(2), so lines from different threads never interleave. */
#include "kn_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static enum kn_log_level level = KN_LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

void kn_log_set_level(enum kn_log_level lvl)
{
	level = lvl;
}

static void emit(const char *prefix, const char *fmt, va_list ap)
{
	char buf[2048];
	int n = snprintf(buf, sizeof buf, "kansatsu: %s", prefix);
	if (n < 0)
		return;
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof buf - 2)
		len = sizeof buf - 2;
	buf[len++] = '\n';
	ssize_t w = write(2, buf, len);
	(void)w;
}

void kn_log(enum kn_log_level lvl, const char *fmt, ...)
{
	if (lvl > level)
		return;
	char prefix[16];
	snprintf(prefix, sizeof prefix, "%s: ", names[lvl]);
	va_list ap;
	va_start(ap, fmt);
	emit(prefix, fmt, ap);
	va_end(ap);
}

void kn_log_event(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit("", fmt, ap);
	va_end(ap);
}
