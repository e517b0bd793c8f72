/* SPDX-License-Identifier: Apache-2.0
 * kn_fileout_rotate: the naming of rotated files. "<path>.1" is the newest
 * backup, "<path>.N" the oldest kept. A rotation costs one rename per kept
 * backup (at most max_backups, or as many as exist when all are kept), which
 * is cheap next to writing max_megabytes of data. */
#include "kn_fileout.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int name_of(char *out, size_t cap, const char *path, uint64_t i)
{
	int n = snprintf(out, cap, "%s.%llu", path, (unsigned long long)i);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int kn_fileout_rotate_names(const char *path, uint64_t max_backups, struct kn_err *err)
{
	char from[4096], to[4096];
	uint64_t top = max_backups;
	if (top == 0) {
		/* Keep all: shift up to the first free number. */
		for (top = 1;; top++) {
			if (name_of(to, sizeof to, path, top) < 0)
				return kn_errf(err, "%s: path too long to rotate", path);
			if (access(to, F_OK) != 0)
				break;
		}
	} else {
		if (name_of(to, sizeof to, path, top) < 0)
			return kn_errf(err, "%s: path too long to rotate", path);
		if (unlink(to) < 0 && errno != ENOENT)
			return kn_errf(err, "cannot remove \"%s\": %s", to, strerror(errno));
	}
	/* Now "<path>.<top>" is free: move every older number up by one. */
	for (uint64_t i = top; i > 1; i--) {
		if (name_of(from, sizeof from, path, i - 1) < 0 ||
		    name_of(to, sizeof to, path, i) < 0)
			return kn_errf(err, "%s: path too long to rotate", path);
		if (rename(from, to) < 0 && errno != ENOENT)
			return kn_errf(err, "cannot rename \"%s\" to \"%s\": %s", from, to,
				       strerror(errno));
	}
	if (name_of(to, sizeof to, path, 1) < 0)
		return kn_errf(err, "%s: path too long to rotate", path);
	if (rename(path, to) < 0)
		return kn_errf(err, "cannot rename \"%s\" to \"%s\": %s", path, to, strerror(errno));
	return KN_OK;
}
