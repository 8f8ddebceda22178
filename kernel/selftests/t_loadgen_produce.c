// SPDX-License-Identifier: GPL-2.0
/*
 * t_loadgen_produce: kernel -> user. LOADGEN PRODUCE sends message i with
 * type 1 + i % 7, priority i % 4 and the pattern payload; the user side
 * checks every message once: type, priority, lane, size, payload, per-lane
 * order, inline vs pool. A burst that fits the rings is drained express lane
 * first. 64 B inline, 64 KiB (16 pool buffers), and the sizes around the
 * pool threshold and the segment limit.
 */
#include "t_common.h"

static unsigned char buf[1 << 17];

/* Receives count messages of `size` bytes; checks each. Returns pool messages seen. */
static __u64 receive_all(struct au_channel *ch, __u64 count, __u32 size, int express_first)
{
	__u64 got = 0, pooled = 0, last_i[2] = { ~0ULL, ~0ULL }, last_seq[2] = { 0, 0 }, per_lane[2] = { 0, 0 };
	unsigned char *seen = calloc(count, 1);
	int normal_seen = 0;
	struct au_msg m;

	CHECK(seen, "calloc");
	while (got < count) {
		__u64 i;
		long bad;
		__u32 n;

		CHECK(t_recv(ch, &m, 10000), "timed out after %llu of %llu messages (size %u)",
		      (unsigned long long)got, (unsigned long long)count, size);
		CHECK(m.length == size, "message %llu: %u payload bytes, want %u", (unsigned long long)got, m.length, size);
		n = au_msg_copy(&m, buf, sizeof(buf));
		if (size >= 8)
			memcpy(&i, buf, 8);
		else	/* too short to carry its index: the k-th of its lane */
			i = 4 * (per_lane[m.express] / 2) + 2 * m.express + per_lane[m.express] % 2;
		per_lane[m.express]++;
		CHECK(i < count, "index %llu out of range", (unsigned long long)i);
		CHECK(!seen[i], "message %llu delivered twice", (unsigned long long)i);
		seen[i] = 1;
		bad = au_pattern_check(buf, n, i);
		CHECK(bad < 0, "message %llu: payload byte %ld wrong (%#x)", (unsigned long long)i, bad, buf[bad]);
		CHECK(m.hdr.type == 1 + i % 7, "message %llu: type %u", (unsigned long long)i, m.hdr.type);
		CHECK(m.hdr.priority == i % 4, "message %llu: priority %u", (unsigned long long)i, m.hdr.priority);
		CHECK(m.express == (m.hdr.priority >= 2), "lane");
		CHECK(!m.correlated, "loadgen messages are not correlated");
		CHECK(last_i[m.express] == ~0ULL || i > last_i[m.express], "lane %d out of order: %llu after %llu",
		      m.express, (unsigned long long)i, (unsigned long long)last_i[m.express]);
		CHECK(m.hdr.sequence > last_seq[m.express], "sequence did not grow on lane %d", m.express);
		CHECK(m.hdr.timestamp, "timestamp 0");
		last_i[m.express] = i;
		last_seq[m.express] = m.hdr.sequence;
		if (express_first) {
			if (!m.express)
				normal_seen = 1;
			CHECK(!(normal_seen && m.express), "express message %llu after a normal one", (unsigned long long)i);
		}
		if (m.pool) {
			pooled++;
			CHECK(!(m.hdr.flags & ARCHANGEL_MSG_F_COPIED), "DMA and COPIED");
		}
		EXPECT_OK(au_recv_done(ch, &m));
		got++;
	}
	free(seen);
	return pooled;
}

static __u64 produce(struct au_channel *ch, __u32 size, __u64 count)
{
	struct t_loadgen lg;
	__u64 pooled;
	int err;

	t_loadgen_start(&lg, ch->fd, ch->id, ARCHANGEL_LOADGEN_PRODUCE, size, count, ARCHANGEL_LOADGEN_BLOCK);
	pooled = receive_all(ch, count, size, 0);
	err = t_loadgen_join(&lg);
	CHECK(!err, "loadgen size %u: %s", size, strerror(-err));
	CHECK(lg.req.done == count, "done %llu of %llu", (unsigned long long)lg.req.done, (unsigned long long)count);
	return pooled;
}

int main(void)
{
	static const __u32 sizes[] = { 0, 1, 7, 8, 64, 1000, 1024, 1025, 4060, 4096, 4097, 16348, 65536, 131072 };
	struct archangel_loadgen_req req;
	struct au_channel ch;
	struct au_msg m;
	__u64 pooled;
	size_t k;
	int err;

	t_init("t_loadgen_produce");
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));

	/* A burst that fits both lanes, produced before we look: express first. */
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.size = 64;
	req.count = 100;
	EXPECT_OK(au_loadgen(ch.fd, &req));
	CHECK(req.done == 100, "done %llu", (unsigned long long)req.done);
	CHECK(req.elapsed_ns > 0, "elapsed_ns 0");
	CHECK(receive_all(&ch, 100, 64, 1) == 0, "64-byte messages went through the pool");

	/* Many small ones: the rings wrap many times (padding records). */
	CHECK(produce(&ch, 64, 20000) == 0, "64 B through the pool");
	/* 64 KiB: 16 buffers each, recycled through the return ring. */
	pooled = produce(&ch, 65536, 300);
	CHECK(pooled == 300, "only %llu of 300 64 KiB messages by pool", (unsigned long long)pooled);
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		pooled = produce(&ch, sizes[k], 50);
		if (sizes[k] <= 1024)
			CHECK(pooled == 0, "%u bytes (at or under the threshold) went by pool", sizes[k]);
		else if (sizes[k] > 16348)
			CHECK(pooled == 50, "%u bytes: only %llu by pool", sizes[k], (unsigned long long)pooled);
	}

	/* Without BLOCK and nobody reading: it stops with -EAGAIN, done counts what went out. */
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.size = 64;
	req.count = 1000000;
	EXPECT_ERR(au_loadgen(ch.fd, &req), -EAGAIN);
	CHECK(req.done > 0 && req.done < 1000000, "done %llu", (unsigned long long)req.done);
	T_LOG("non-blocking burst: %llu messages fit", (unsigned long long)req.done);
	receive_all(&ch, req.done, 64, 1);
	CHECK(au_recv(&ch, &m) == 0, "more messages than produced");

	/* Bad requests. */
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = 99;
	req.count = 1;
	EXPECT_ERR(au_loadgen(ch.fd, &req), -EINVAL);
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.reserved[0] = 1;
	EXPECT_ERR(au_loadgen(ch.fd, &req), -EINVAL);
	req.reserved[0] = 0;
	req.size = 131073;	/* above max_payload */
	err = au_loadgen(ch.fd, &req);
	CHECK(err == -EMSGSIZE || err == -EINVAL, "oversized loadgen payload: %d", err);
	CHECK(au_recv(&ch, &m) == 0, "a message arrived from a rejected request");

	CHECK(t_proc(ch.id, "to_user", "errors") == 0, "errors counted on a clean run");
	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	return T_PASS;
}
