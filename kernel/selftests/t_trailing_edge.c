// SPDX-License-Identifier: GPL-2.0
/*
 * t_trailing_edge: the kernel's coalesced wake-ups of a blocked user
 * receiver (docs/efficiency.md "The producer"), checked by counting.
 *  1. The first message finds the receiver blocked and no budget spent: the
 *     leading edge signals it at once.
 *  2. A burst right after (within the window) finds it blocked again: the
 *     wake-up is deferred to a trailing edge (notify_coalesced + 1, one
 *     notify_sent for it) and the rest of the burst is suppressed. Nothing
 *     more is sent, yet every message is delivered: the trailing edge fired.
 *     So is one more message sent after the burst (by a sender with bottom
 *     halves off), deferred to the next trailing edge.
 *  3. Without ARCHANGEL_WAIT_ADAPTIVE (lowLatency) a new sleep is signalled
 *     at once, with no coalescing.
 *  4. A lane past the wake batch brings a pending trailing edge forward.
 */
#include "t_common.h"

#define WINDOW_NS	500000000ULL	/* 500 ms: a burst under TCG fits well within */

struct receiver {
	struct au_channel *ch;
	__u64 want;
	volatile __u64 got;
	int err;
};

static void *receiver_main(void *arg)
{
	struct receiver *rv = arg;
	struct au_msg m;
	int r;

	while (rv->got < rv->want) {
		r = au_recv(rv->ch, &m);
		if (r < 0) {
			rv->err = r;
			return NULL;
		}
		if (r) {
			au_recv_done(rv->ch, &m);
			__atomic_add_fetch(&rv->got, 1, __ATOMIC_SEQ_CST);
			continue;
		}
		/* Blocking: both words armed, no timeout short of the test's. */
		r = au_wait_data(rv->ch, 20000);
		if (r < 0) {
			rv->err = r;
			return NULL;
		}
	}
	return NULL;
}

/* Waits until the receiver has n messages and sleeps armed on the normal word. */
static void await_blocked(struct au_channel *ch, struct receiver *rv, __u64 n)
{
	__u64 t0 = au_now_ns();

	while (au_now_ns() - t0 < 10000000000ULL) {
		if (__atomic_load_n(&rv->got, __ATOMIC_SEQ_CST) == n &&
		    (__atomic_load_n(ch->rx.normal.r.kneed_wakeup, __ATOMIC_SEQ_CST) &
		     ARCHANGEL_RING_NEED_WAKEUP))
			return;
		usleep(1000);
	}
	T_FAILF("receiver not blocked with %llu messages (got %llu)", (unsigned long long)n,
		(unsigned long long)rv->got);
}

static void produce_flags(struct au_channel *ch, __u64 count, __u32 flags)
{
	struct archangel_loadgen_req req = {
		.channel_id = ch->id, .mode = ARCHANGEL_LOADGEN_PRODUCE, .size = 16, .count = count,
		/* PACED: every message NORMAL (no CRITICAL urgency); 1 us apart. */
		.flags = ARCHANGEL_LOADGEN_PACED | ARCHANGEL_LOADGEN_BLOCK | flags,
		.interval_ns = 1000,
	};

	EXPECT_OK(au_loadgen(ch->fd, &req));
	CHECK(req.done == count, "produced %llu of %llu", (unsigned long long)req.done,
	      (unsigned long long)count);
}

static void produce(struct au_channel *ch, __u64 count) { produce_flags(ch, count, 0); }

static void await_got(struct receiver *rv, __u64 n, const char *what)
{
	__u64 t0 = au_now_ns();

	while (__atomic_load_n(&rv->got, __ATOMIC_SEQ_CST) < n && !rv->err &&
	       au_now_ns() - t0 < 10000000000ULL)
		usleep(1000);
	CHECK(!rv->err, "receiver: %s", strerror(-rv->err));
	CHECK(rv->got >= n, "%s: %llu of %llu delivered with no further send", what,
	      (unsigned long long)rv->got, (unsigned long long)n);
}

int main(void)
{
	struct archangel_wait_config cfg = {
		.flags = ARCHANGEL_WAIT_ADAPTIVE, .max_delay_ns = WINDOW_NS,
	};
	long long sent0, coal0, sent1, coal1, supp0, supp1;
	struct receiver rv = { 0 };
	__u64 t0;
	struct au_channel ch;
	pthread_t thread;
	int err;

	t_init("t_trailing_edge");
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));
	au_set_spin(&ch, 0);
	EXPECT_OK(au_set_wait(ch.fd, &cfg));
	rv.ch = &ch;
	rv.want = 1 + 8 + 1 + 1 + 1 + 20;
	pthread_create(&thread, NULL, receiver_main, &rv);

	/* 1: the leading edge. */
	await_blocked(&ch, &rv, 0);
	sent0 = t_proc(ch.id, "to_user", "notify_sent");
	coal0 = t_proc(ch.id, "to_user", "notify_coalesced");
	produce(&ch, 1);
	await_got(&rv, 1, "leading edge");
	sent1 = t_proc(ch.id, "to_user", "notify_sent");
	coal1 = t_proc(ch.id, "to_user", "notify_coalesced");
	CHECK(sent1 - sent0 == 1 && coal1 == coal0, "leading edge: notify_sent +%lld, coalesced +%lld",
	      sent1 - sent0, coal1 - coal0);

	/* 2: a burst within the window, then nothing. */
	await_blocked(&ch, &rv, 1);
	supp0 = t_proc(ch.id, "to_user", "notify_suppressed");
	produce(&ch, 8);
	sent0 = t_proc(ch.id, "to_user", "notify_sent");
	coal0 = t_proc(ch.id, "to_user", "notify_coalesced");
	supp1 = t_proc(ch.id, "to_user", "notify_suppressed");
	CHECK(sent0 - sent1 == 1 && coal0 - coal1 == 1 && supp1 - supp0 == 7,
	      "burst: notify_sent +%lld (want 1), notify_coalesced +%lld (want 1), suppressed +%lld (want 7)",
	      sent0 - sent1, coal0 - coal1, supp1 - supp0);
	await_got(&rv, 9, "trailing edge after a burst");
	T_LOG("burst of 8 delivered by the trailing edge; notify_coalesced %lld", coal0);

	/*
	 * One more message after the burst, from a sender that is not
	 * preemptible (bottom halves off, as a netfilter hook): deferred to
	 * the next trailing edge, and delivered with no further send.
	 */
	await_blocked(&ch, &rv, 9);
	coal1 = t_proc(ch.id, "to_user", "notify_coalesced");
	produce_flags(&ch, 1, ARCHANGEL_LOADGEN_ATOMIC);
	await_got(&rv, 10, "one more message after the burst");
	CHECK(t_proc(ch.id, "to_user", "notify_coalesced") == coal1 + 1,
	      "one more message: not deferred");

	/* 3: without ADAPTIVE each new sleep is signalled at once. */
	await_blocked(&ch, &rv, 10);
	cfg.flags = 0;
	cfg.max_delay_ns = 0;
	EXPECT_OK(au_set_wait(ch.fd, &cfg));
	coal0 = t_proc(ch.id, "to_user", "notify_coalesced");
	produce(&ch, 1);
	await_got(&rv, 11, "lowLatency");
	CHECK(t_proc(ch.id, "to_user", "notify_coalesced") == coal0, "lowLatency coalesced");

	/*
	 * 4: the wake batch. A 1 s window, a 256-byte batch: a burst of 20
	 * records of 48 bytes, deferred at its first message, brings the
	 * trailing edge forward once a lane holds more than 256 bytes. The
	 * edge would be due 800 ms after the leading edge; everything arrives
	 * well before (the one check here that needs a clock, with a margin of
	 * hundreds of milliseconds).
	 */
	cfg.flags = ARCHANGEL_WAIT_ADAPTIVE;
	cfg.max_delay_ns = 1000000000ULL;
	cfg.wake_batch = 256;
	EXPECT_OK(au_set_wait(ch.fd, &cfg));
	await_blocked(&ch, &rv, 11);
	t0 = au_now_ns();
	produce(&ch, 1);
	await_got(&rv, 12, "wake batch: leading edge");
	await_blocked(&ch, &rv, 12);
	produce(&ch, 20);
	while (__atomic_load_n(&rv.got, __ATOMIC_SEQ_CST) < 32 && au_now_ns() - t0 < 600000000ULL)
		usleep(1000);
	CHECK(rv.got == 32, "wake batch: %llu of 32 delivered %llu ms after the leading edge",
	      (unsigned long long)rv.got, (unsigned long long)(au_now_ns() - t0) / 1000000);

	pthread_join(thread, NULL);
	CHECK(!rv.err, "receiver: %s", strerror(-rv.err));
	CHECK(t_proc(ch.id, "to_user", "notify_coalesced") > 0, "notify_coalesced is 0");
	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	T_LOG("PASS");
	return T_PASS;
}
