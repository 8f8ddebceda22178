// SPDX-License-Identifier: GPL-2.0
/*
 * t_eventfd_wakeup: need-wakeup suppression on the data eventfd.
 *  1. A user that is awake (need_wakeup clear) gets no signal, however many
 *     messages the kernel publishes.
 *  2. A user asleep on the eventfd is woken by the first message.
 *  3. A busy user draining a long stream draws far fewer signals than
 *     messages, at most one per announced sleep and lane.
 *  4. The to_kernel side: a sender waiting for room on a full ring is woken
 *     through the space eventfd when the kernel consumes.
 *  5. A user that re-attaches continues the sleep counter from the shared
 *     word, and the kernel (which remembers the last word it signalled)
 *     still wakes each new sleep.
 */
#include "t_common.h"

static __u64 efd_value(int efd)
{
	__u64 v = 0;

	if (read(efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* Receives count messages; a busy user spends busy_ns on each. */
static void drain(struct au_channel *ch, __u64 count, __u64 busy_ns)
{
	struct au_msg m;
	__u64 got, t;

	for (got = 0; got < count; got++) {
		CHECK(t_recv(ch, &m, 10000), "timed out after %llu of %llu", (unsigned long long)got,
		      (unsigned long long)count);
		for (t = au_now_ns(); busy_ns && au_now_ns() - t < busy_ns;)
			;
		EXPECT_OK(au_recv_done(ch, &m));
	}
}

struct delayed {
	struct au_channel *ch;
	int delay_ms;
	struct archangel_loadgen_req req;
	int err;
};

static void *delayed_produce(void *arg)
{
	struct delayed *d = arg;

	usleep(d->delay_ms * 1000);
	d->err = au_loadgen(d->ch->fd, &d->req);
	return NULL;
}

int main(void)
{
	struct archangel_loadgen_req req;
	struct au_channel ch;
	struct t_loadgen lg;
	struct delayed d;
	pthread_t thread;
	__u64 t0, count, waits0, sig0, n, sent, sunk;
	unsigned char payload[64] = { 0 };
	int err, r, k;

	t_init("t_eventfd_wakeup");
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));

	/* 1. Awake user: no signal at all. */
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.size = 64;
	req.count = 50;
	EXPECT_OK(au_loadgen(ch.fd, &req));
	n = efd_value(ch.data_efd);
	CHECK(n == 0, "%llu signals to a user that never asked for a wake-up", (unsigned long long)n);
	CHECK(t_proc(ch.id, "to_user", "notify_suppressed") >= 50, "notify_suppressed < 50 after 50 quiet sends");
	drain(&ch, 50, 0);

	/* 2. Asleep user: the first message wakes it. */
	memset(&d, 0, sizeof(d));
	d.ch = &ch;
	d.delay_ms = 200;
	d.req = req;
	d.req.count = 1;
	pthread_create(&thread, NULL, delayed_produce, &d);
	t0 = au_now_ns();
	waits0 = ch.st.waits;
	sig0 = ch.st.data_signals;
	r = au_wait_data(&ch, 5000);
	pthread_join(thread, NULL);
	CHECK(!d.err, "delayed produce: %s", strerror(-d.err));
	CHECK(r == 1, "au_wait_data returned %d after %llu ms", r, (unsigned long long)(au_now_ns() - t0) / 1000000);
	CHECK(ch.st.waits == waits0 + 1 && ch.st.data_signals > sig0, "woken without a signal (waits %llu, signals %llu)",
	      (unsigned long long)(ch.st.waits - waits0), (unsigned long long)(ch.st.data_signals - sig0));
	drain(&ch, 1, 0);

	/* 3. A long stream: signals <= 2 per sleep, and far fewer than messages. */
	count = 30000;
	waits0 = ch.st.waits;
	sig0 = ch.st.data_signals;
	t_loadgen_start(&lg, ch.fd, ch.id, ARCHANGEL_LOADGEN_PRODUCE, 64, count, ARCHANGEL_LOADGEN_BLOCK);
	drain(&ch, count, 10000);
	CHECK(!t_loadgen_join(&lg), "produce: %s", strerror(-lg.err));
	n = ch.st.data_signals - sig0 + efd_value(ch.data_efd);
	T_LOG("%llu messages, %llu user sleeps, %llu data signals", (unsigned long long)count,
	      (unsigned long long)(ch.st.waits - waits0), (unsigned long long)n);
	CHECK(n <= 2 * (ch.st.waits - waits0) + 2, "more than one signal per sleep and lane");
	CHECK(n * 10 <= count, "signals are not suppressed: %llu for %llu messages", (unsigned long long)n,
	      (unsigned long long)count);

	/* 4. to_kernel: fill the normal lane, then let a delayed SINK make room. */
	for (sent = 0; (err = au_send(&ch, ARCHANGEL_MSG_CONTROL, ARCHANGEL_PRIORITY_NORMAL, payload, 64, NULL, 1)) == 0;)
		sent++;
	CHECK(err == -EAGAIN && sent > 100, "filling to_kernel: %d after %llu", err, (unsigned long long)sent);
	memset(&d, 0, sizeof(d));
	d.ch = &ch;
	d.delay_ms = 200;
	d.req.channel_id = ch.id;
	d.req.mode = ARCHANGEL_LOADGEN_SINK;
	d.req.count = sent;
	pthread_create(&thread, NULL, delayed_produce, &d);
	sig0 = ch.st.space_signals;
	r = au_wait_space(&ch, 5000);
	CHECK(r == 1, "au_wait_space returned %d", r);
	CHECK(ch.st.space_signals > sig0, "woken for space without a signal");
	EXPECT_OK(au_send_wait(&ch, ARCHANGEL_MSG_CONTROL, ARCHANGEL_PRIORITY_NORMAL, payload, 64, NULL, 5000));
	pthread_join(thread, NULL);
	CHECK(!d.err, "sink: %s (done %llu)", strerror(-d.err), (unsigned long long)d.req.done);
	sunk = d.req.done;
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_SINK;
	req.count = sent + 1 - sunk;
	EXPECT_OK(au_loadgen(ch.fd, &req));

	/* 5. Sleep, re-attach, sleep again: every sleep is signalled. */
	for (k = 0; k < 4; k++) {
		__u32 id = ch.id;
		int fd;

		au_detach(&ch, 1);
		fd = au_open();
		CHECK(fd >= 0, "open");
		err = au_attach(&ch, fd, id, 1);
		CHECK(!err, "re-attach %d: %s", k, strerror(-err));
		memset(&d, 0, sizeof(d));
		d.ch = &ch;
		d.delay_ms = 100;
		d.req.channel_id = ch.id;
		d.req.mode = ARCHANGEL_LOADGEN_PRODUCE;
		d.req.size = 8;
		d.req.count = 1;
		pthread_create(&thread, NULL, delayed_produce, &d);
		r = au_wait_data(&ch, 5000);
		pthread_join(thread, NULL);
		CHECK(r == 1 && ch.st.data_signals == 1, "sleep %d after re-attach: %d, %llu signals", k, r,
		      (unsigned long long)ch.st.data_signals);
		drain(&ch, 1, 0);
	}

	CHECK(t_proc(ch.id, "to_user", "errors") == 0 && t_proc(ch.id, "to_kernel", "errors") == 0, "errors");
	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	return T_PASS;
}
