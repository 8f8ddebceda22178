// SPDX-License-Identifier: GPL-2.0
/*
 * t_idle_wakeups: an idle channel costs no wake-up (docs/efficiency.md,
 * "The promise"). After traffic that armed a trailing edge, with a user
 * receiver blocked on its eventfd and a kernel receiver (LOADGEN SINK,
 * BLOCK) blocked on to_kernel, nothing changes for 2 s: the kernel's
 * notify_sent and waits on both direction lines, its timed_waits, and the
 * user's own wake-ups. Then one message each way still wakes each side.
 */
#include "t_common.h"

static const char *const keys[] = { "notify_sent", "waits", "timed_waits", "notify_coalesced" };
#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

static void snapshot(__u32 id, long long v[2][NKEYS])
{
	unsigned int k;

	for (k = 0; k < NKEYS; k++) {
		v[0][k] = t_proc(id, "to_user", keys[k]);
		v[1][k] = t_proc(id, "to_kernel", keys[k]);
	}
}

/* Receives `want` messages sleeping on the eventfd, then sleeps once more (idle). */
struct waiter {
	struct au_channel *ch;
	__u64 want;
	volatile __u64 got;
	int r;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	struct au_msg m;
	int r;

	while (w->got < w->want) {
		r = au_recv(w->ch, &m);
		if (r < 0) {
			w->r = r;
			return NULL;
		}
		if (r) {
			au_recv_done(w->ch, &m);
			__atomic_add_fetch(&w->got, 1, __ATOMIC_SEQ_CST);
			continue;
		}
		r = au_wait_data(w->ch, 20000);
		if (r < 0) {
			w->r = r;
			return NULL;
		}
	}
	w->r = au_wait_data(w->ch, 20000);
	return NULL;
}

int main(void)
{
	struct archangel_wait_config cfg = {
		.flags = ARCHANGEL_WAIT_ADAPTIVE, .max_delay_ns = 200000000ULL,
	};
	long long before[2][NKEYS], after[2][NKEYS];
	struct archangel_loadgen_req req;
	struct t_loadgen sink;
	struct au_channel ch;
	struct waiter w = { 0 };
	pthread_t thread;
	struct au_msg m;
	unsigned int k, d;
	__u64 i, wakeups;
	int err;

	t_init("t_idle_wakeups");
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));
	au_set_spin(&ch, 0);

	/*
	 * Traffic first, to a receiver blocked on its eventfd: one message
	 * takes the leading edge, then a burst 1 us apart, which finds it
	 * asleep again within the window, a trailing edge.
	 */
	w.ch = &ch;
	w.want = 33;
	/* A 200 ms window: the receiver sleeps again well within it, even under TCG. */
	EXPECT_OK(au_set_wait(ch.fd, &cfg));
	pthread_create(&thread, NULL, waiter_main, &w);
	usleep(100000);
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.size = 16;
	req.count = 1;
	EXPECT_OK(au_loadgen(ch.fd, &req));
	for (i = 0; i < 5000 && !(__atomic_load_n(&w.got, __ATOMIC_SEQ_CST) == 1 &&
				  (__atomic_load_n(ch.rx.normal.r.kneed_wakeup, __ATOMIC_SEQ_CST) &
				   ARCHANGEL_RING_NEED_WAKEUP)); i++)
		usleep(1000);
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.size = 16;
	req.count = w.want - 1;
	req.flags = ARCHANGEL_LOADGEN_PACED | ARCHANGEL_LOADGEN_BLOCK;
	req.interval_ns = 1000;
	EXPECT_OK(au_loadgen(ch.fd, &req));
	for (i = 0; i < 5000 && __atomic_load_n(&w.got, __ATOMIC_SEQ_CST) < w.want; i++)
		usleep(1000);
	CHECK(w.got == w.want, "received %llu of %llu", (unsigned long long)w.got,
	      (unsigned long long)w.want);
	/* A kernel receiver blocked on to_kernel too. */
	t_loadgen_start(&sink, ch.fd, ch.id, ARCHANGEL_LOADGEN_SINK, 0, 1, ARCHANGEL_LOADGEN_BLOCK);
	/* Let both settle (the trailing edge fired within the window). */
	usleep(500000);
	CHECK(__atomic_load_n(ch.rx.normal.r.kneed_wakeup, __ATOMIC_SEQ_CST) &
	      ARCHANGEL_RING_NEED_WAKEUP, "the user receiver is not asleep");
	wakeups = ch.st.wakeups;
	snapshot(ch.id, before);
	sleep(2);
	snapshot(ch.id, after);
	for (d = 0; d < 2; d++)
		for (k = 0; k < NKEYS; k++)
			CHECK(before[d][k] == after[d][k], "idle %s %s: %lld -> %lld",
			      d ? "to_kernel" : "to_user", keys[k], before[d][k], after[d][k]);
	CHECK(ch.st.wakeups == wakeups, "the user receiver woke %llu times while idle",
	      (unsigned long long)(ch.st.wakeups - wakeups));
	T_LOG("idle 2 s: to_user notify_sent %lld notify_coalesced %lld, to_kernel waits %lld timed_waits %lld: unchanged",
	      after[0][0], after[0][3], after[1][1], after[1][2]);

	/* One message each way still wakes each side. */
	EXPECT_OK(au_send(&ch, ARCHANGEL_MSG_CONTROL, ARCHANGEL_PRIORITY_NORMAL, "x", 1, NULL, 1));
	EXPECT_OK(t_loadgen_join(&sink));
	CHECK(sink.req.done == 1, "sink received %llu", (unsigned long long)sink.req.done);
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.size = 16;
	req.count = 1;
	EXPECT_OK(au_loadgen(ch.fd, &req));
	pthread_join(thread, NULL);
	CHECK(w.r == 1, "user receiver: %d", w.r);
	CHECK(t_recv(&ch, &m, 5000), "last message");
	CHECK(after[0][3] > 0, "the burst took no trailing edge");
	EXPECT_OK(au_recv_done(&ch, &m));
	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	T_LOG("PASS");
	return T_PASS;
}
