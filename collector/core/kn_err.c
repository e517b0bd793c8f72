/* SPDX-License-Identifier: Apache-2.0
 * kn_err: formatting of error messages (see kn_err.h). */
#include "kn_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int kn_errf(struct kn_err *err, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
	}
	return KN_ERR;
}

int kn_err_prefix(struct kn_err *err, const char *fmt, ...)
{
	if (!err)
		return KN_ERR;
	char pre[256], old[sizeof err->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	snprintf(err->msg, sizeof err->msg, "%s%s", pre, old);
	return KN_ERR;
}
