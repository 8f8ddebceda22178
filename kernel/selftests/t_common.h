/* SPDX-License-Identifier: GPL-2.0 */
/*
 * t_common.h - what every selftest shares: exit codes (0 pass, 1 fail,
 * 77 skip, as liburing's tests), checks that say what failed and where, and
 * a thread that runs a LOADGEN ioctl while the test plays the user side.
 */
#ifndef T_COMMON_H
#define T_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archangel_user.h"

#define T_PASS	0
#define T_FAIL	1
#define T_SKIP	77

static const char *t_name = "test";

#define T_LOG(fmt, ...)	fprintf(stderr, "%s: " fmt "\n", t_name, ##__VA_ARGS__)

#define T_FAILF(fmt, ...) do { \
	fprintf(stderr, "%s: FAIL %s:%d: " fmt "\n", t_name, __FILE__, __LINE__, ##__VA_ARGS__); \
	exit(T_FAIL); \
} while (0)

#define T_SKIPF(fmt, ...) do { \
	fprintf(stderr, "%s: SKIP: " fmt "\n", t_name, ##__VA_ARGS__); \
	exit(T_SKIP); \
} while (0)

/* CHECK(cond, "what"): fails the test with the condition's text. */
#define CHECK(cond, fmt, ...) do { \
	if (!(cond)) \
		T_FAILF("%s: " fmt, #cond, ##__VA_ARGS__); \
} while (0)

/* EXPECT_ERR(call, -EINVAL): a call returning 0 or -errno must give that error. */
#define EXPECT_ERR(call, want) do { \
	int _r = (call); \
	if (_r != (want)) \
		T_FAILF("%s = %d (%s), want %d (%s)", #call, _r, strerror(-_r), (want), strerror(-(want))); \
} while (0)

#define EXPECT_OK(call) EXPECT_ERR(call, 0)

/* Skip unless the device exists (the module is not loaded). */
static inline void t_init(const char *name)
{
	t_name = name;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (access(AU_DEVICE, F_OK))
		T_SKIPF("%s missing: module not loaded", AU_DEVICE);
}

/* A LOADGEN ioctl run in its own thread (it blocks until done). */
struct t_loadgen {
	pthread_t thread;
	int fd;
	struct archangel_loadgen_req req;
	int err;
};

static void *t_loadgen_main(void *arg)
{
	struct t_loadgen *lg = arg;

	lg->err = au_loadgen(lg->fd, &lg->req);
	return NULL;
}

static inline void t_loadgen_start(struct t_loadgen *lg, int fd, __u32 id, __u32 mode, __u32 size,
				   __u64 count, __u32 flags)
{
	memset(lg, 0, sizeof(*lg));
	lg->fd = fd;
	lg->req.channel_id = id;
	lg->req.mode = mode;
	lg->req.size = size;
	lg->req.count = count;
	lg->req.flags = flags;
	if (pthread_create(&lg->thread, NULL, t_loadgen_main, lg))
		T_FAILF("pthread_create");
}

static inline int t_loadgen_join(struct t_loadgen *lg)
{
	pthread_join(lg->thread, NULL);
	return lg->err;
}

/* Receive one message within timeout_ms: 1 got it, 0 timed out; fails on error. */
static inline int t_recv(struct au_channel *ch, struct au_msg *m, int timeout_ms)
{
	__u64 deadline = au_now_ns() + (__u64)timeout_ms * 1000000ULL;
	int r;

	for (;;) {
		r = au_recv(ch, m);
		if (r < 0)
			T_FAILF("au_recv: %s", strerror(-r));
		if (r)
			return 1;
		if (au_now_ns() > deadline)
			return 0;
		r = au_wait_data(ch, 50);
		if (r < 0)
			T_FAILF("au_wait_data: %s", strerror(-r));
	}
}

/* The keys of a direction line, in order (docs/statistics.md). */
static const char *const t_proc_keys[] = {
	"messages_sent", "bytes_sent", "messages_received", "bytes_received", "rejected", "errors",
	"queue_full", "ring_used", "ring_size", "ring_hwm", "pool_transfers", "copy_fallbacks",
	"pool_in_use", "pool_size", "notify_sent", "notify_suppressed", "waits",
	"notify_coalesced", "timed_waits",
};

/* One "  <direction> k=v ..." line: the keys in order, unsigned decimal values. */
static inline const char *t_proc_check_dir(const char *s, const char *dir, char *why, size_t n)
{
	size_t i, dl = strlen(dir);

	if (strncmp(s, "  ", 2) || strncmp(s + 2, dir, dl) || s[2 + dl] != ' ') {
		snprintf(why, n, "expected '  %s ' line at: %.60s", dir, s);
		return NULL;
	}
	s += 2 + dl;
	for (i = 0; i < sizeof(t_proc_keys) / sizeof(t_proc_keys[0]); i++) {
		size_t kl = strlen(t_proc_keys[i]);

		if (s[0] != ' ' || strncmp(s + 1, t_proc_keys[i], kl) || s[1 + kl] != '=' ||
		    s[2 + kl] < '0' || s[2 + kl] > '9') {
			snprintf(why, n, "%s: key %s missing or out of order at: %.40s", dir, t_proc_keys[i], s);
			return NULL;
		}
		s += 2 + kl;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	while (*s && *s != '\n')	/* appended keys are allowed */
		s++;
	return *s == '\n' ? s + 1 : NULL;
}

/* Checks the whole /proc/archangel/comm text; NULL if fine, else why. */
static inline const char *t_proc_check_format(const char *text)
{
	static char why[256];
	unsigned int used, limit, id, last = 0, any = 0;
	const char *s = text;
	char state[16];
	int n;

	if (strncmp(s, "archangel-comm 1\n", 17))
		return "first line is not 'archangel-comm 1'";
	s += 17;
	if (sscanf(s, "channels %u/%u%n", &used, &limit, &n) != 2 || s[n] != '\n' || used > limit)
		return "second line is not 'channels <in use>/<limit>'";
	s += n + 1;
	while (*s) {
		if (sscanf(s, "channel %u %15s%n", &id, state, &n) != 2 || s[n] != '\n' ||
		    (strcmp(state, "active") && strcmp(state, "failed"))) {
			snprintf(why, sizeof(why), "bad channel line: %.60s", s);
			return why;
		}
		if (any && id <= last) {
			snprintf(why, sizeof(why), "channel ids not ascending at %u", id);
			return why;
		}
		any++;
		last = id;
		s = t_proc_check_dir(s + n + 1, "to_user", why, sizeof(why));
		if (s)
			s = t_proc_check_dir(s, "to_kernel", why, sizeof(why));
		if (!s)
			return why;
	}
	if (any != used) {
		snprintf(why, sizeof(why), "channels line says %u in use, %u listed", used, any);
		return why;
	}
	return NULL;
}

static inline long long t_proc(__u32 id, const char *dir, const char *key)
{
	char *text = au_read_file(AU_PROC_COMM);
	long long v;

	if (!text)
		T_FAILF("cannot read %s", AU_PROC_COMM);
	v = au_proc_value(text, id, dir, key);
	free(text);
	return v;
}

#endif /* T_COMMON_H */
