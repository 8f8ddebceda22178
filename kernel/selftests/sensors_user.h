/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sensors_user.h - what the tests of archangel_sensors.ko share: the
 * device's ioctls, a receiver that decodes sensor records (plain events
 * and AI_REQUESTs), an AI_RESPONSE sender, and child helpers.
 */
#ifndef SENSORS_USER_H
#define SENSORS_USER_H

#include "t_common.h"
#include <time.h>
#include "archangel_sensors_uapi.h"
#include "archangel_sensors_ioctl.h"

#define SU_DEVICE	"/dev/archangel_sensors"
#define SU_PROC		"/proc/archangel/sensors"

static inline int su_open(void)
{
	int fd = open(SU_DEVICE, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static inline int su_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static inline int su_attach(int fd, __u32 id)
{
	struct archangel_sensors_attach a = { .channel_id = id };

	return su_ioctl(fd, ARCHANGEL_SENSORS_IOC_ATTACH, &a);
}

static inline int su_attach_batch(int fd, __u32 id, __u32 bytes, __u32 us)
{
	struct archangel_sensors_attach a = { .channel_id = id, .batch_bytes = bytes, .batch_us = us };

	return su_ioctl(fd, ARCHANGEL_SENSORS_IOC_ATTACH, &a);
}

static inline int su_detach(int fd)
{
	return ioctl(fd, ARCHANGEL_SENSORS_IOC_DETACH) ? -errno : 0;
}

static inline int su_config(int fd, __u32 sensor, __u32 flags, __u8 policy, __u8 def,
			    __u32 deadline_ms, const __u64 *bits)
{
	struct archangel_sensors_config c;

	memset(&c, 0, sizeof(c));
	c.sensor = sensor;
	c.flags = flags;
	c.policy = policy;
	c.default_verdict = def;
	c.deadline_ms = deadline_ms;
	if (bits)
		memcpy(c.syscalls, bits, sizeof(c.syscalls));
	return su_ioctl(fd, ARCHANGEL_SENSORS_IOC_CONFIGURE, &c);
}

static inline int su_off(int fd, __u32 sensor)
{
	return su_config(fd, sensor, 0, ARCHANGEL_POLICY_OBSERVE, ARCHANGEL_VERDICT_ALLOW, 0, NULL);
}

static inline void su_stats(int fd, struct archangel_sensors_stats *st)
{
	int err = su_ioctl(fd, ARCHANGEL_SENSORS_IOC_GET_STATS, st);

	if (err)
		T_FAILF("GET_STATS: %s", strerror(-err));
}

static inline void su_bit(__u64 *bits, unsigned int nr)
{
	bits[nr / 64] |= 1ULL << (nr % 64);
}

/* One received record: an event, or an AI_REQUEST (req) and its event. */
struct su_rec {
	__u8 type;
	__u32 len;		/* payload bytes */
	const struct archangel_sensor_request *req;	/* AI_REQUEST only */
	const struct archangel_sensor_event *ev;
	__u32 ev_len;
	union {
		unsigned char buf[ARCHANGEL_SENSORS_BATCH_MAX];
		__u64 align;
	};
};

/* Receives and decodes one record within timeout_ms: 1, or 0 on timeout. */
static inline int su_next(struct au_channel *ch, struct su_rec *r, int timeout_ms)
{
	struct au_msg m;

	if (!t_recv(ch, &m, timeout_ms))
		return 0;
	r->type = m.hdr.type;
	r->len = au_msg_copy(&m, r->buf, sizeof(r->buf));
	CHECK(r->len == m.length, "record of %u bytes", m.length);
	EXPECT_OK(au_recv_done(ch, &m));
	r->req = NULL;
	r->ev = (const void *)r->buf;
	r->ev_len = r->len;
	if (r->type == ARCHANGEL_MSG_AI_REQUEST) {
		CHECK(r->len > sizeof(*r->req), "AI_REQUEST of %u bytes", r->len);
		r->req = (const void *)r->buf;
		r->ev = (const void *)(r->buf + sizeof(*r->req));
		r->ev_len = r->len - sizeof(*r->req);
		CHECK(r->req->event_size == r->ev_len, "event_size %u, %u bytes follow",
		      r->req->event_size, r->ev_len);
		CHECK(r->req->id && r->req->deadline, "request id %llu deadline %llu",
		      (unsigned long long)r->req->id, (unsigned long long)r->req->deadline);
	}
	CHECK(r->ev_len >= sizeof(*r->ev), "record of %u bytes", r->ev_len);
	CHECK(r->ev->version == ARCHANGEL_SENSOR_VERSION && !r->ev->reserved,
	      "record version %u reserved %llu", r->ev->version, (unsigned long long)r->ev->reserved);
	return 1;
}

/*
 * The records of a plain event payload (one, or a batch back to back):
 * their number, or fails on a record that does not fit or has no size.
 */
static inline unsigned int su_records(const struct su_rec *r)
{
	const unsigned char *p = (const void *)r->ev, *end = p + r->ev_len;
	unsigned int n = 0;

	if (r->req)
		return 1;
	while (p < end) {
		const struct archangel_sensor_event *ev = (const void *)p;
		__u32 size;

		CHECK(end - p >= (long)sizeof(*ev), "a partial record in a batch");
		size = ARCHANGEL_SENSOR_RECORD_SIZE(ev->kind);
		CHECK(size && end - p >= (long)size && ev->version == ARCHANGEL_SENSOR_VERSION,
		      "record kind %u of %u bytes with %ld left", ev->kind, size, (long)(end - p));
		p += size;
		n++;
	}
	return n;
}

/*
 * Receives until a record of @kind from process @tgid (0: any) arrives,
 * skipping others; 1 found, 0 timed out.
 */
static inline int su_wait(struct au_channel *ch, struct su_rec *r, __u16 kind, __u32 tgid,
			  int timeout_ms)
{
	__u64 deadline = au_now_ns() + (__u64)timeout_ms * 1000000ULL;

	while (au_now_ns() < deadline) {
		if (!su_next(ch, r, 100))
			continue;
		if (r->ev->kind == kind && (!tgid || r->ev->tgid == tgid))
			return 1;
	}
	return 0;
}

static inline void su_respond(struct au_channel *ch, __u64 id, __u8 verdict, __u32 ttl_ms)
{
	struct archangel_sensor_response resp;
	int err;

	memset(&resp, 0, sizeof(resp));
	resp.id = id;
	resp.verdict = verdict;
	resp.ttl_ms = ttl_ms;
	resp.score = 500000;
	err = au_send_wait(ch, ARCHANGEL_MSG_AI_RESPONSE, ARCHANGEL_PRIORITY_HIGH, &resp,
			   sizeof(resp), NULL, 2000);
	if (err)
		T_FAILF("sending AI_RESPONSE: %s", strerror(-err));
}

/* Forks a child that execs argv; returns its pid. */
static inline pid_t su_spawn(char *const argv[])
{
	pid_t pid = fork();

	CHECK(pid >= 0, "fork");
	if (!pid) {
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* waitpid with a timeout (ms): the status, or -1 when the child is still there. */
static inline int su_reap(pid_t pid, int timeout_ms)
{
	__u64 deadline = au_now_ns() + (__u64)timeout_ms * 1000000ULL;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		CHECK(r >= 0, "waitpid %d: %s", pid, strerror(errno));
		if (r == pid)
			return status;
		if (au_now_ns() > deadline)
			return -1;
		usleep(2000);
	}
}

/* The state letter of /proc/<pid>/stat ('T': stopped), or 0. */
static inline char su_task_state(pid_t pid)
{
	char path[64], *text, *p;
	char st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	text = au_read_file(path);
	if (!text)
		return 0;
	p = strrchr(text, ')');
	if (p && p[1] == ' ')
		st = p[2];
	free(text);
	return st;
}

/* Waits up to timeout_ms for the task to show state @want. */
static inline int su_wait_state(pid_t pid, char want, int timeout_ms)
{
	__u64 deadline = au_now_ns() + (__u64)timeout_ms * 1000000ULL;

	while (au_now_ns() < deadline) {
		if (su_task_state(pid) == want)
			return 1;
		usleep(2000);
	}
	return 0;
}

#endif /* SENSORS_USER_H */
