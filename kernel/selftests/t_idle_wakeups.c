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

struct waiter {
	struct au_channel *ch;
	int r;
	__u64 wakeups;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->r = au_wait_data(w->ch, 20000);
	return NULL;
}

int main(void)
{
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

	/* Traffic first: a burst that leaves a trailing edge behind it. */
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.size = 16;
	req.count = 32;
	req.flags = ARCHANGEL_LOADGEN_PACED | ARCHANGEL_LOADGEN_BLOCK;
	req.interval_ns = 1000;
	EXPECT_OK(au_loadgen(ch.fd, &req));
	for (i = 0; i < req.count; i++) {
		CHECK(t_recv(&ch, &m, 5000), "message %llu", (unsigned long long)i);
		EXPECT_OK(au_recv_done(&ch, &m));
	}
	/* A kernel receiver blocked on to_kernel, a user receiver on to_user. */
	t_loadgen_start(&sink, ch.fd, ch.id, ARCHANGEL_LOADGEN_SINK, 0, 1, ARCHANGEL_LOADGEN_BLOCK);
	w.ch = &ch;
	pthread_create(&thread, NULL, waiter_main, &w);
	/* Let both settle (a trailing edge from the burst fires within 1 ms). */
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
	T_LOG("idle 2 s: to_user notify_sent %lld, to_kernel waits %lld timed_waits %lld: unchanged",
	      after[0][0], after[1][1], after[1][2]);

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
	EXPECT_OK(au_recv_done(&ch, &m));
	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	T_LOG("PASS");
	return T_PASS;
}
