// SPDX-License-Identifier: GPL-2.0
/*
 * t_send_sink: user -> kernel streams received by LOADGEN SINK in another
 * thread. Small records wrap both lanes many times (padding records written
 * by the user side), 64 KiB payloads recycle the to_kernel pool through the
 * return ring, and a sender that runs out of room or buffers sleeps on the
 * space eventfd until the kernel frees some. The kernel counts every message
 * and byte and finds no error.
 */
#include "t_common.h"

static unsigned char buf[1 << 17];

static void stream(struct au_channel *ch, __u32 size, __u64 count, int mixed)
{
	long long msgs0 = t_proc(ch->id, "to_kernel", "messages_received");
	long long bytes0 = t_proc(ch->id, "to_kernel", "bytes_received");
	__u64 i, bytes = 0;
	struct t_loadgen lg;
	int err;

	t_loadgen_start(&lg, ch->fd, ch->id, ARCHANGEL_LOADGEN_SINK, 0, count, ARCHANGEL_LOADGEN_BLOCK);
	for (i = 0; i < count; i++) {
		__u32 n = mixed ? (__u32)(i * 2654435761U) % (size + 1) : size;

		au_pattern_fill(buf, n, i);
		err = au_send_wait(ch, 1 + i % 7, i % 4, buf, n, NULL, 10000);
		CHECK(!err, "send %llu of %u bytes: %s", (unsigned long long)i, n, strerror(-err));
		bytes += n;
	}
	err = t_loadgen_join(&lg);
	CHECK(!err, "sink: %s (done %llu)", strerror(-err), (unsigned long long)lg.req.done);
	CHECK(lg.req.done == count, "sink done %llu", (unsigned long long)lg.req.done);
	CHECK(t_proc(ch->id, "to_kernel", "messages_received") - msgs0 == (long long)count, "messages_received");
	CHECK(t_proc(ch->id, "to_kernel", "bytes_received") - bytes0 == (long long)bytes, "bytes_received");
}

int main(void)
{
	struct au_channel ch;
	int err;

	t_init("t_send_sink");
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));
	stream(&ch, 64, 50000, 0);
	stream(&ch, 65536, 500, 0);
	stream(&ch, 131072, 100, 0);
	stream(&ch, 5000, 5000, 1);
	T_LOG("user side: %llu sent, %llu queue full, %llu waits, %llu space signals",
	      (unsigned long long)ch.st.sent, (unsigned long long)ch.st.queue_full, (unsigned long long)ch.st.waits,
	      (unsigned long long)ch.st.space_signals);
	CHECK(t_proc(ch.id, "to_kernel", "errors") == 0, "to_kernel errors");
	CHECK(au_proc_active(au_read_file(AU_PROC_COMM), ch.id) == 1, "channel failed");
	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	return T_PASS;
}
