// SPDX-License-Identifier: GPL-2.0
/*
 * t_kernel_timed_poll: the kernel as an adaptive consumer of to_kernel
 * (docs/efficiency.md "The consumer"). A user sender paced well below half
 * the window feeds LOADGEN SINK (BLOCK): after a wake-up the kernel switches
 * to timed polling, arming only the express lane's word, so the user's
 * NORMAL sends find no armed word and make almost no NOTIFY ioctl, while
 * every message still arrives; timed_waits counts the polls. A CRITICAL
 * message, urgent, is signalled even then. Afterwards, idle, the kernel
 * receiver goes back to blocking at its first empty poll.
 */
#include "t_common.h"

#define WINDOW_NS	100000000ULL	/* 100 ms */
#define COUNT		300

int main(void)
{
	struct archangel_wait_config cfg = {
		.flags = ARCHANGEL_WAIT_ADAPTIVE, .max_delay_ns = WINDOW_NS,
	};
	long long timed, waits0, waits1, timed1;
	struct t_loadgen sink;
	struct au_channel ch;
	__u64 i, notifies;
	int err;

	t_init("t_kernel_timed_poll");
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));
	EXPECT_OK(au_set_wait(ch.fd, &cfg));

	t_loadgen_start(&sink, ch.fd, ch.id, ARCHANGEL_LOADGEN_SINK, 0, COUNT + 1,
			ARCHANGEL_LOADGEN_BLOCK);
	usleep(100000);
	for (i = 0; i < COUNT; i++) {
		EXPECT_OK(au_send_wait(&ch, ARCHANGEL_MSG_SYSCALL_EVENT, ARCHANGEL_PRIORITY_NORMAL,
				       &i, sizeof(i), NULL, 5000));
		usleep(1000);
	}
	notifies = ch.st.notify_data;
	/* The kernel polls now (unless the run was too slow to tell): urgent still wakes. */
	EXPECT_OK(au_send_wait(&ch, ARCHANGEL_MSG_CONTROL, ARCHANGEL_PRIORITY_CRITICAL, NULL, 0, NULL,
			       5000));
	EXPECT_OK(t_loadgen_join(&sink));
	CHECK(sink.req.done == COUNT + 1, "sink received %llu of %u",
	      (unsigned long long)sink.req.done, COUNT + 1);
	timed = t_proc(ch.id, "to_kernel", "timed_waits");
	T_LOG("%u paced messages: %llu NOTIFY ioctls, kernel timed_waits %lld, waits %lld", COUNT,
	      (unsigned long long)notifies, timed, t_proc(ch.id, "to_kernel", "waits"));
	CHECK(timed > 0, "the kernel receiver never polled");
	CHECK(notifies < COUNT / 4, "%llu NOTIFY ioctls for %u messages",
	      (unsigned long long)notifies, COUNT);

	/* Idle: one empty poll at most, then a blocking wait, and nothing more. */
	t_loadgen_start(&sink, ch.fd, ch.id, ARCHANGEL_LOADGEN_SINK, 0, 1, ARCHANGEL_LOADGEN_BLOCK);
	usleep(3 * WINDOW_NS / 1000);
	waits0 = t_proc(ch.id, "to_kernel", "waits");
	timed1 = t_proc(ch.id, "to_kernel", "timed_waits");
	sleep(1);
	waits1 = t_proc(ch.id, "to_kernel", "waits");
	CHECK(waits1 == waits0 && t_proc(ch.id, "to_kernel", "timed_waits") == timed1,
	      "idle kernel receiver: waits %lld -> %lld, timed_waits %lld -> %lld", waits0, waits1,
	      timed1, t_proc(ch.id, "to_kernel", "timed_waits"));
	CHECK(timed1 - timed <= 1, "idle kernel receiver polled %lld times", timed1 - timed);
	EXPECT_OK(au_send_wait(&ch, ARCHANGEL_MSG_CONTROL, ARCHANGEL_PRIORITY_NORMAL, NULL, 0, NULL,
			       5000));
	EXPECT_OK(t_loadgen_join(&sink));

	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	T_LOG("PASS");
	return T_PASS;
}
