// SPDX-License-Identifier: GPL-2.0
/*
 * t_rw_device: /dev/archangel_rw, the read()/write() baseline. Loopback
 * round trips of 1 B to 64 KiB, message boundaries kept, -EMSGSIZE for a
 * short read buffer (the message stays queued), O_NONBLOCK -EAGAIN, poll,
 * and the LOADGEN modes (PRODUCE pattern, ECHO, SINK) on its FIFOs.
 */
#include "t_common.h"

static unsigned char out[ARCHANGEL_RW_MAX_MSG + 1], in[ARCHANGEL_RW_MAX_MSG + 1];

static int loopback(int fd, __u32 on)
{
	return ioctl(fd, ARCHANGEL_IOC_RW_LOOPBACK, &on) < 0 ? -errno : 0;
}

int main(void)
{
	static const __u32 sizes[] = { 1, 7, 64, 4096, 4097, 65535, ARCHANGEL_RW_MAX_MSG };
	struct archangel_loadgen_req req;
	struct t_loadgen lg;
	struct pollfd pfd;
	ssize_t n;
	size_t k;
	__u64 i;
	int fd;

	t_init("t_rw_device");
	fd = open(AU_RW_DEVICE, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0, "open %s: %s", AU_RW_DEVICE, strerror(errno));

	/* Loopback: each write comes back whole from one read. */
	EXPECT_OK(loopback(fd, 1));
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		au_pattern_fill(out, sizes[k], k);
		n = write(fd, out, sizes[k]);
		CHECK(n == (ssize_t)sizes[k], "write %u: %zd (%s)", sizes[k], n, strerror(errno));
	}
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		n = read(fd, in, sizeof(in));
		CHECK(n == (ssize_t)sizes[k], "read %zu: %zd, want %u", k, n, sizes[k]);
		CHECK(au_pattern_check(in, sizes[k], k) < 0, "message %zu corrupted", k);
	}
	n = write(fd, out, ARCHANGEL_RW_MAX_MSG + 1);
	CHECK(n < 0 && (errno == EMSGSIZE || errno == EINVAL), "oversized write: %zd (%s)", n, strerror(errno));

	/* A short buffer: -EMSGSIZE, the message stays. */
	CHECK(write(fd, out, 100) == 100, "write 100");
	n = read(fd, in, 50);
	CHECK(n < 0 && errno == EMSGSIZE, "short read: %zd (%s)", n, strerror(errno));
	n = read(fd, in, sizeof(in));
	CHECK(n == 100, "read after a short one: %zd", n);

	/* Empty: poll says so, O_NONBLOCK says -EAGAIN. */
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN | POLLOUT };
	CHECK(poll(&pfd, 1, 0) == 1 && pfd.revents == POLLOUT, "empty rw poll: %#x", pfd.revents);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	n = read(fd, in, sizeof(in));
	CHECK(n < 0 && errno == EAGAIN, "non-blocking read of an empty FIFO: %zd (%s)", n, strerror(errno));
	CHECK(write(fd, out, 10) == 10, "write");
	CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN), "poll with a message: %#x", pfd.revents);
	CHECK(read(fd, in, sizeof(in)) == 10, "read");
	fcntl(fd, F_SETFL, 0);
	EXPECT_OK(loopback(fd, 0));

	/* LOADGEN PRODUCE into the to_user FIFO. */
	memset(&req, 0, sizeof(req));
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.size = 64;
	req.count = 100;
	EXPECT_OK(au_loadgen(fd, &req));
	CHECK(req.done == 100, "produce done %llu", (unsigned long long)req.done);
	for (i = 0; i < 100; i++) {
		n = read(fd, in, sizeof(in));
		CHECK(n == 64 && au_pattern_check(in, 64, i) < 0, "produced message %llu: %zd bytes",
		      (unsigned long long)i, n);
	}

	/* ECHO in a thread: each write comes back. */
	t_loadgen_start(&lg, fd, 0, ARCHANGEL_LOADGEN_ECHO, 0, 200, ARCHANGEL_LOADGEN_BLOCK);
	for (i = 0; i < 200; i++) {
		__u32 size = i % 2 ? 64 : 65536;

		au_pattern_fill(out, size, i);
		CHECK(write(fd, out, size) == (ssize_t)size, "echo write %llu", (unsigned long long)i);
		n = read(fd, in, sizeof(in));
		CHECK(n == (ssize_t)size && au_pattern_check(in, size, i) < 0, "echo %llu: %zd bytes",
		      (unsigned long long)i, n);
	}
	CHECK(!t_loadgen_join(&lg) && lg.req.done == 200, "echo: %s", strerror(-lg.err));

	/* SINK drains writes. */
	for (i = 0; i < 10; i++)
		CHECK(write(fd, out, 64) == 64, "write for sink");
	memset(&req, 0, sizeof(req));
	req.mode = ARCHANGEL_LOADGEN_SINK;
	req.count = 10;
	EXPECT_OK(au_loadgen(fd, &req));
	CHECK(req.done == 10, "sink done %llu", (unsigned long long)req.done);
	req.count = 1;
	EXPECT_ERR(au_loadgen(fd, &req), -EAGAIN);	/* nothing left, not blocking */
	close(fd);
	return T_PASS;
}
