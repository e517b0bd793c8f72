/* SPDX-License-Identifier: Apache-2.0
 * kn_file_watch: inotify on the directory plus a stat poll (see the header). */
#include "kn_file_watch.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../collector/core/kn_clock.h"

struct sig {
	int exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
};

struct kn_file_watch {
	char *path;
	uint64_t poll_ns;
	kn_file_changed_fn fn;
	void *ctx;
	int ifd, efd;
	pthread_t th;
	struct sig seen;
};

static void take(const char *path, struct sig *s)
{
	struct stat st;
	memset(s, 0, sizeof *s);
	if (stat(path, &st) != 0)
		return;
	s->exists = 1;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = st.st_size;
	s->mtim = st.st_mtim;
	s->ctim = st.st_ctim;
}

static int same(const struct sig *a, const struct sig *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
	       a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

static void *watch_main(void *arg)
{
	struct kn_file_watch *w = arg;
	int timeout_ms = (int)(w->poll_ns / KN_NS_PER_MS);
	if (timeout_ms < 1)
		timeout_ms = 1;
	for (;;) {
		struct pollfd p[2] = {{.fd = w->efd, .events = POLLIN}, {.fd = w->ifd, .events = POLLIN}};
		int n = poll(p, w->ifd >= 0 ? 2 : 1, timeout_ms);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && (p[0].revents & POLLIN))
			break;
		if (n > 0 && (p[1].revents & POLLIN)) {
			/* drain: every event only means "look again" */
			char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
			while (read(w->ifd, buf, sizeof buf) > 0)
				;
		}
		struct sig now;
		take(w->path, &now);
		if (!same(&now, &w->seen)) {
			w->seen = now;
			w->fn(w->ctx);
		}
	}
	return NULL;
}

static void watch_free(struct kn_file_watch *w)
{
	if (w->ifd >= 0)
		close(w->ifd);
	if (w->efd >= 0)
		close(w->efd);
	free(w->path);
	free(w);
}

struct kn_file_watch *kn_file_watch_start(const char *path, uint64_t poll_ns, kn_file_changed_fn fn,
					  void *ctx, struct kn_err *err)
{
	struct kn_file_watch *w = calloc(1, sizeof *w);
	if (!w || !(w->path = strdup(path))) {
		free(w);
		kn_errf(err, "out of memory");
		return NULL;
	}
	w->ifd = w->efd = -1;
	w->poll_ns = poll_ns ? poll_ns : KN_NS_PER_SEC;
	w->fn = fn;
	w->ctx = ctx;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		kn_errf(err, "\"%s\": cannot watch: eventfd: %s", path, strerror(errno));
		watch_free(w);
		return NULL;
	}
	/* inotify is an optimisation: without it the poll alone notices changes */
	w->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (w->ifd >= 0) {
		char dir[PATH_MAX];
		const char *slash = strrchr(path, '/');
		if (!slash)
			snprintf(dir, sizeof dir, ".");
		else if (slash == path)
			snprintf(dir, sizeof dir, "/");
		else
			snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
		if (inotify_add_watch(w->ifd, dir,
				      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
					      IN_ATTRIB) < 0) {
			close(w->ifd);
			w->ifd = -1;
		}
	}
	take(path, &w->seen);
	if (pthread_create(&w->th, NULL, watch_main, w) != 0) {
		kn_errf(err, "\"%s\": cannot start the watching thread", path);
		watch_free(w);
		return NULL;
	}
	return w;
}

void kn_file_watch_stop(struct kn_file_watch *w)
{
	if (!w)
		return;
	uint64_t one = 1;
	if (write(w->efd, &one, sizeof one) != sizeof one) {
		/* an eventfd write only fails on overflow, which one write cannot reach */
	}
	pthread_join(w->th, NULL);
	watch_free(w);
}
