// SPDX-License-Identifier: GPL-2.0
/*
 * t_proc_stats: /proc/archangel/comm counters follow the traffic. A new
 * channel shows zero counters and the default geometry; PRODUCE moves the
 * to_user sender counters (messages, payload bytes, pool transfers); SINK
 * moves the to_kernel receiver counters; a payload too large is rejected;
 * channels <in use> counts creates and destroys; the format stays valid.
 */
#include "t_common.h"

static unsigned char buf[1 << 16];

#define EXPECT_PROC(id, dir, key, want) do { \
	long long _v = t_proc(id, dir, key); \
	if (_v != (long long)(want)) \
		T_FAILF("%s %s = %lld, want %lld", dir, key, _v, (long long)(want)); \
} while (0)

static unsigned int in_use(void)
{
	char *text = au_read_file(AU_PROC_COMM);
	unsigned int used = 0, limit = 0;
	const char *why;

	CHECK(text, "read");
	why = t_proc_check_format(text);
	CHECK(!why, "%s\n%s", why, text);
	CHECK(sscanf(text, "archangel-comm 1\nchannels %u/%u", &used, &limit) == 2, "channels line");
	free(text);
	return used;
}

int main(void)
{
	struct archangel_loadgen_req req;
	struct au_channel ch;
	struct t_loadgen lg;
	struct au_msg m;
	unsigned int used0;
	__u64 i;
	int err;

	t_init("t_proc_stats");
	used0 = in_use();
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));
	CHECK(in_use() == used0 + 1, "channels in use did not grow");
	CHECK(au_proc_active(au_read_file(AU_PROC_COMM), ch.id) == 1, "channel not active");
	EXPECT_PROC(ch.id, "to_user", "messages_sent", 0);
	EXPECT_PROC(ch.id, "to_user", "ring_size", 81920);
	EXPECT_PROC(ch.id, "to_kernel", "ring_size", 81920);
	EXPECT_PROC(ch.id, "to_user", "pool_size", 64);
	EXPECT_PROC(ch.id, "to_user", "ring_used", 0);

	/* to_user: 100 inline messages of 64 bytes, not read yet. */
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.size = 64;
	req.count = 100;
	EXPECT_OK(au_loadgen(ch.fd, &req));
	EXPECT_PROC(ch.id, "to_user", "messages_sent", 100);
	EXPECT_PROC(ch.id, "to_user", "bytes_sent", 6400);
	EXPECT_PROC(ch.id, "to_user", "pool_transfers", 0);
	EXPECT_PROC(ch.id, "to_user", "ring_used", 100 * 96);
	for (i = 0; i < 100; i++) {
		CHECK(t_recv(&ch, &m, 2000), "message %llu", (unsigned long long)i);
		EXPECT_OK(au_recv_done(&ch, &m));
	}
	CHECK(au_recv(&ch, &m) == 0, "extra message");
	EXPECT_PROC(ch.id, "to_user", "ring_used", 0);	/* we released on finding it empty */

	/* to_user through the pool: 10 x 64 KiB, 16 buffers each. */
	t_loadgen_start(&lg, ch.fd, ch.id, ARCHANGEL_LOADGEN_PRODUCE, 65536, 10, ARCHANGEL_LOADGEN_BLOCK);
	for (i = 0; i < 10; i++) {
		CHECK(t_recv(&ch, &m, 5000), "pool message %llu", (unsigned long long)i);
		EXPECT_OK(au_recv_done(&ch, &m));
	}
	CHECK(!t_loadgen_join(&lg), "produce");
	EXPECT_PROC(ch.id, "to_user", "messages_sent", 110);
	EXPECT_PROC(ch.id, "to_user", "bytes_sent", 6400 + 655360);
	EXPECT_PROC(ch.id, "to_user", "pool_transfers", 10);
	EXPECT_PROC(ch.id, "to_user", "pool_in_use", 0);

	/* to_kernel: 50 messages of 200 bytes and 5 of 8000, received by SINK. */
	for (i = 0; i < 50; i++)
		EXPECT_OK(au_send(&ch, ARCHANGEL_MSG_MEMORY_EVENT, i % 4, buf, 200, NULL, 1));
	for (i = 0; i < 5; i++)
		EXPECT_OK(au_send(&ch, ARCHANGEL_MSG_STATS, ARCHANGEL_PRIORITY_LOW, buf, 8000, NULL, 1));
	CHECK(t_proc(ch.id, "to_kernel", "ring_used") > 0, "to_kernel ring_used 0 with 55 records queued");
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_SINK;
	req.count = 55;
	EXPECT_OK(au_loadgen(ch.fd, &req));
	CHECK(req.done == 55, "sink done %llu", (unsigned long long)req.done);
	EXPECT_PROC(ch.id, "to_kernel", "messages_received", 55);
	EXPECT_PROC(ch.id, "to_kernel", "bytes_received", 50 * 200 + 5 * 8000);
	EXPECT_PROC(ch.id, "to_kernel", "errors", 0);
	EXPECT_PROC(ch.id, "to_user", "errors", 0);

	/* Rejected: a loadgen payload above max_payload never queues. */
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.size = 131072 + 1;
	req.count = 1;
	err = au_loadgen(ch.fd, &req);
	CHECK(err, "oversized produce succeeded");
	EXPECT_PROC(ch.id, "to_user", "messages_sent", 110);

	EXPECT_OK(au_destroy(ch.fd, ch.id));
	CHECK(in_use() == used0, "channels in use did not shrink after destroy");
	au_detach(&ch, 1);
	return T_PASS;
}
