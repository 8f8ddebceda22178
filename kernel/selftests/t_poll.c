// SPDX-License-Identifier: GPL-2.0
/*
 * t_poll: poll() on the bound file. EPOLLOUT while to_kernel has room and
 * not once both lanes are full; EPOLLIN once to_user holds a record and not
 * after it is consumed; a poll blocked with nothing to report wakes when the
 * kernel produces; EPOLLHUP | EPOLLERR after DESTROY, also for a poller
 * blocked at that moment.
 */
#include "t_common.h"

static short poll_now(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n = poll(&p, 1, timeout_ms);

	CHECK(n >= 0, "poll: %s", strerror(errno));
	return n ? p.revents : 0;
}

struct poller {
	int fd;
	short events, revents;
	int timeout_ms;
	__u64 ns;
};

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	__u64 t0 = au_now_ns();

	p->revents = poll_now(p->fd, p->events, p->timeout_ms);
	p->ns = au_now_ns() - t0;
	return NULL;
}

int main(void)
{
	struct archangel_loadgen_req req;
	unsigned char payload[8] = { 0 };
	struct au_channel ch;
	struct poller pl;
	pthread_t thread;
	struct au_msg m;
	short ev;
	__u64 sent = 0;
	int fd2, err;

	t_init("t_poll");
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));

	ev = poll_now(ch.fd, POLLIN | POLLOUT, 0);
	CHECK(ev == POLLOUT, "idle channel: revents %#x, want POLLOUT only", ev);

	/* EPOLLIN follows to_user. */
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.size = 16;
	req.count = 1;
	EXPECT_OK(au_loadgen(ch.fd, &req));
	ev = poll_now(ch.fd, POLLIN, 0);
	CHECK(ev == POLLIN, "after one message: revents %#x", ev);
	CHECK(t_recv(&ch, &m, 1000), "message");
	EXPECT_OK(au_recv_done(&ch, &m));
	ev = poll_now(ch.fd, POLLIN, 0);
	CHECK(ev == 0, "after consuming: revents %#x", ev);

	/* A blocked poll wakes when the kernel produces. */
	pl = (struct poller){ .fd = ch.fd, .events = POLLIN, .timeout_ms = 5000 };
	pthread_create(&thread, NULL, poller_main, &pl);
	usleep(200000);
	EXPECT_OK(au_loadgen(ch.fd, &req));
	pthread_join(thread, NULL);
	CHECK(pl.revents == POLLIN, "blocked poll: revents %#x after %llu ms", pl.revents,
	      (unsigned long long)pl.ns / 1000000);
	CHECK(pl.ns < 4000000000ULL, "blocked poll took %llu ms", (unsigned long long)pl.ns / 1000000);
	CHECK(t_recv(&ch, &m, 1000), "message");
	EXPECT_OK(au_recv_done(&ch, &m));

	/* EPOLLOUT follows to_kernel: both lanes full of smallest records. */
	while (!au_send(&ch, ARCHANGEL_MSG_CONTROL, ARCHANGEL_PRIORITY_LOW, NULL, 0, NULL, 1))
		sent++;
	while (!au_send(&ch, ARCHANGEL_MSG_CONTROL, ARCHANGEL_PRIORITY_CRITICAL, NULL, 0, NULL, 1))
		sent++;
	ev = poll_now(ch.fd, POLLOUT, 0);
	CHECK(!(ev & POLLOUT), "to_kernel full (%llu records) but POLLOUT", (unsigned long long)sent);
	pl = (struct poller){ .fd = ch.fd, .events = POLLOUT, .timeout_ms = 5000 };
	pthread_create(&thread, NULL, poller_main, &pl);
	usleep(200000);
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_SINK;
	req.count = sent;
	EXPECT_OK(au_loadgen(ch.fd, &req));
	pthread_join(thread, NULL);
	CHECK(pl.revents & POLLOUT, "blocked POLLOUT poll: revents %#x", pl.revents);
	(void)payload;

	/* DESTROY from another file wakes a blocked poller with EPOLLHUP | EPOLLERR. */
	fd2 = au_open();
	CHECK(fd2 >= 0, "open");
	pl = (struct poller){ .fd = ch.fd, .events = POLLIN, .timeout_ms = 5000 };
	pthread_create(&thread, NULL, poller_main, &pl);
	usleep(200000);
	EXPECT_OK(au_destroy(fd2, ch.id));
	pthread_join(thread, NULL);
	CHECK((pl.revents & (POLLHUP | POLLERR)) == (POLLHUP | POLLERR), "poller at destroy: revents %#x",
	      pl.revents);
	CHECK(pl.ns < 4000000000ULL, "destroy did not wake the poller");
	ev = poll_now(ch.fd, POLLIN | POLLOUT, 0);
	CHECK((ev & (POLLHUP | POLLERR)) == (POLLHUP | POLLERR), "after destroy: revents %#x", ev);
	close(fd2);
	au_detach(&ch, 1);
	return T_PASS;
}
