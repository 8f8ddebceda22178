// SPDX-License-Identifier: GPL-2.0
/*
 * t_urgent: a user receiver in timed polling arms the express lane's word
 * only ("I look again by myself; wake me only for an urgent message",
 * docs/efficiency.md). The kernel then does not wake it for LOW, NORMAL or
 * HIGH messages (counted as notify_suppressed), and does wake it for a
 * CRITICAL one (CRITICAL implies ARCHANGEL_SEND_URGENT). With both words
 * armed (blocking) a NORMAL message wakes it. The same holds for a sender
 * that is not preemptible (LOADGEN ATOMIC: its wake-ups are deferred to an
 * irq_work).
 */
#include "t_common.h"

struct waiter {
	struct au_channel *ch;
	int lanes;
	volatile int done;
	int r;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->r = au_wait_data_lanes(w->ch, 8000, w->lanes);
	__atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void start_waiter(struct au_channel *ch, struct waiter *w, pthread_t *t, int lanes)
{
	__u32 *word = lanes & AU_ARM_NORMAL ? ch->rx.normal.r.kneed_wakeup :
		      ch->rx.express.r.kneed_wakeup;
	int i;

	*w = (struct waiter){ .ch = ch, .lanes = lanes };
	pthread_create(t, NULL, waiter_main, w);
	for (i = 0; i < 5000; i++) {
		if (__atomic_load_n(word, __ATOMIC_SEQ_CST) & ARCHANGEL_RING_NEED_WAKEUP)
			break;
		usleep(1000);
	}
	CHECK(i < 5000, "the waiter did not arm its word");
	usleep(20000);	/* and is inside poll() */
}

/* LOADGEN PRODUCE of count: message i has priority i % 4. */
static void produce_flags(struct au_channel *ch, __u64 count, __u32 flags)
{
	struct archangel_loadgen_req req = {
		.channel_id = ch->id, .mode = ARCHANGEL_LOADGEN_PRODUCE, .size = 16, .count = count,
		.flags = flags,
	};

	EXPECT_OK(au_loadgen(ch->fd, &req));
}

static void produce(struct au_channel *ch, __u64 count) { produce_flags(ch, count, 0); }

static void drain(struct au_channel *ch, int n)
{
	struct au_msg m;

	while (n--) {
		CHECK(au_recv(ch, &m) == 1, "a message is missing");
		EXPECT_OK(au_recv_done(ch, &m));
	}
	CHECK(au_recv(ch, &m) == 0, "more messages than sent");
}

int main(void)
{
	long long supp0, sent0;
	struct au_channel ch;
	struct waiter w;
	pthread_t t;
	int err;

	t_init("t_urgent");
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));
	au_set_spin(&ch, 0);

	/* Express word only: LOW, NORMAL, HIGH do not wake. */
	start_waiter(&ch, &w, &t, AU_ARM_EXPRESS);
	supp0 = t_proc(ch.id, "to_user", "notify_suppressed");
	sent0 = t_proc(ch.id, "to_user", "notify_sent");
	produce(&ch, 3);
	usleep(300000);
	CHECK(!__atomic_load_n(&w.done, __ATOMIC_SEQ_CST),
	      "a polling receiver was woken by non-urgent messages (r %d)", w.r);
	CHECK(t_proc(ch.id, "to_user", "notify_sent") == sent0, "notify_sent moved");
	CHECK(t_proc(ch.id, "to_user", "notify_suppressed") - supp0 == 3, "suppressed +%lld, want 3",
	      t_proc(ch.id, "to_user", "notify_suppressed") - supp0);
	/* A CRITICAL message (the fourth of a run) wakes it at once. */
	produce(&ch, 4);
	pthread_join(t, NULL);
	CHECK(w.r == 1, "CRITICAL did not wake the polling receiver (r %d: 0 is its timeout)", w.r);
	CHECK(t_proc(ch.id, "to_user", "notify_sent") == sent0 + 1, "notify_sent +%lld, want 1",
	      t_proc(ch.id, "to_user", "notify_sent") - sent0);
	drain(&ch, 7);

	/*
	 * The same from a sender that is not preemptible (bottom halves off,
	 * as a netfilter hook): the wake-up goes through the irq_work.
	 */
	start_waiter(&ch, &w, &t, AU_ARM_EXPRESS);
	produce_flags(&ch, 3, ARCHANGEL_LOADGEN_ATOMIC);
	usleep(300000);
	CHECK(!__atomic_load_n(&w.done, __ATOMIC_SEQ_CST),
	      "atomic sender: a polling receiver was woken by non-urgent messages (r %d)", w.r);
	produce_flags(&ch, 4, ARCHANGEL_LOADGEN_ATOMIC);
	pthread_join(t, NULL);
	CHECK(w.r == 1, "atomic sender: CRITICAL did not wake the polling receiver (r %d)", w.r);
	drain(&ch, 7);

	/* Both words (blocking): a NORMAL message wakes it. */
	start_waiter(&ch, &w, &t, AU_ARM_NORMAL | AU_ARM_EXPRESS);
	produce(&ch, 2);
	pthread_join(t, NULL);
	CHECK(w.r == 1, "a blocking receiver was not woken (r %d)", w.r);
	drain(&ch, 2);

	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	T_LOG("PASS");
	return T_PASS;
}
