// SPDX-License-Identifier: GPL-2.0
/*
 * t_reattach: the user side goes away and a new one carries on.
 *  A. to_user: the user holds a pool message at each step of the return
 *     protocol (peeked; entries staged; intent stored; consumer published)
 *     and closes. The next attacher sees every message exactly once: the
 *     held one again unless it was consumed, and when it was, the kernel
 *     completed the intent so its buffer is not lost (pool_in_use 0, no
 *     error, and the pool keeps cycling).
 *  B. to_kernel: pool messages sent and not yet read survive a close; the
 *     next attacher resumes the producer index and rebuilds its free list
 *     from what is in flight, so ECHO returns all of them in order, intact.
 *  C. Close mid-stream while the kernel produces, three times over, with a
 *     message held at a random step: nothing lost, nothing twice.
 * LOADGEN runs on a separate, unbound control file, which outlives the
 * user files.
 */
#include "t_common.h"

static unsigned char buf[1 << 17];

/* Receives one message, returns its loadgen index (payload >= 8 bytes). */
static __u64 recv_index(struct au_channel *ch, struct au_msg *m)
{
	__u64 i;
	long bad;
	__u32 n;

	CHECK(t_recv(ch, m, 10000), "timed out");
	n = au_msg_copy(m, buf, sizeof(buf));
	CHECK(n >= 8, "short message");
	memcpy(&i, buf, 8);
	bad = au_pattern_check(buf, n, i);
	CHECK(bad < 0, "message %llu: byte %ld", (unsigned long long)i, bad);
	return i;
}

static void mark(unsigned char *seen, __u64 count, __u64 i)
{
	CHECK(i < count, "index %llu out of range", (unsigned long long)i);
	CHECK(!seen[i], "message %llu delivered twice", (unsigned long long)i);
	seen[i] = 1;
}

static void reattach(struct au_channel *ch, __u32 id)
{
	int fd, err;

	au_detach(ch, 1);
	fd = au_open();
	CHECK(fd >= 0, "open");
	err = au_attach(ch, fd, id, 1);
	CHECK(!err, "re-attach to %u: %s", id, strerror(-err));
}

static void check_clean(__u32 id)
{
	CHECK(t_proc(id, "to_user", "errors") == 0, "to_user errors %lld", t_proc(id, "to_user", "errors"));
	CHECK(t_proc(id, "to_kernel", "errors") == 0, "to_kernel errors %lld", t_proc(id, "to_kernel", "errors"));
	CHECK(t_proc(id, "to_user", "pool_in_use") == 0, "to_user pool_in_use %lld after everything was read",
	      t_proc(id, "to_user", "pool_in_use"));
}

static void part_a(int ctl, int steps)
{
	unsigned char seen[60] = { 0 };
	struct archangel_loadgen_req req = { .mode = ARCHANGEL_LOADGEN_PRODUCE, .size = 4096, .count = 60 };
	struct au_channel ch;
	struct au_msg m;
	__u64 i, held, got;
	__u32 id;
	int err;

	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));
	id = ch.id;
	req.channel_id = id;
	EXPECT_OK(au_loadgen(ctl, &req));
	for (got = 0; got < 10; got++) {
		mark(seen, 60, recv_index(&ch, &m));
		CHECK(m.pool, "4096 bytes not by pool");
		EXPECT_OK(au_recv_done(&ch, &m));
	}
	held = recv_index(&ch, &m);
	CHECK(m.pool, "4096 bytes not by pool");
	if (steps)
		EXPECT_OK(au_recv_done_partial(&ch, &m, steps));
	if (steps >= 3) {
		mark(seen, 60, held);
		got++;
	}
	reattach(&ch, id);
	for (; got < 60; got++) {
		i = recv_index(&ch, &m);
		if (got == 10)
			CHECK(i == held, "steps %d: first message after re-attach is %llu, the held one was %llu", steps,
			      (unsigned long long)i, (unsigned long long)held);
		mark(seen, 60, i);
		EXPECT_OK(au_recv_done(&ch, &m));
	}
	CHECK(au_recv(&ch, &m) == 0, "steps %d: more than 60 messages", steps);
	check_clean(id);
	/* The pool still cycles: 200 one-buffer messages through 64 buffers. */
	{
		struct t_loadgen lg;

		t_loadgen_start(&lg, ctl, id, ARCHANGEL_LOADGEN_PRODUCE, 4096, 200, ARCHANGEL_LOADGEN_BLOCK);
		for (got = 0; got < 200; got++) {
			recv_index(&ch, &m);
			EXPECT_OK(au_recv_done(&ch, &m));
		}
		CHECK(!t_loadgen_join(&lg), "produce after re-attach: %s", strerror(-lg.err));
	}
	check_clean(id);
	EXPECT_OK(au_destroy(ctl, id));
	au_detach(&ch, 1);
}

static void part_b(void)
{
	struct au_channel ch;
	struct t_loadgen lg;
	struct au_msg m;
	__u64 i, got;
	__u32 id;
	int err;

	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));
	id = ch.id;
	for (i = 0; i < 20; i++) {
		au_pattern_fill(buf, 2048, i);
		EXPECT_OK(au_send(&ch, ARCHANGEL_MSG_SYSCALL_EVENT, ARCHANGEL_PRIORITY_NORMAL, buf, 2048, NULL, 1));
	}
	CHECK(ch.tx.free_count == 44, "20 pool messages should hold 20 buffers (free %u)", ch.tx.free_count);
	reattach(&ch, id);
	CHECK(ch.tx.free_count == 44, "after re-attach: %u free buffers, want 44", ch.tx.free_count);
	CHECK(ch.tx.sequence == 20, "after re-attach: last sequence %llu, want 20", (unsigned long long)ch.tx.sequence);
	t_loadgen_start(&lg, ch.fd, id, ARCHANGEL_LOADGEN_ECHO, 0, 220, ARCHANGEL_LOADGEN_BLOCK);
	for (got = 0; got < 220; got++) {
		if (got + 20 < 220) {
			__u64 k = got + 20;

			au_pattern_fill(buf, 2048, k);
			err = au_send_wait(&ch, ARCHANGEL_MSG_SYSCALL_EVENT, ARCHANGEL_PRIORITY_NORMAL, buf, 2048, NULL,
					   10000);
			CHECK(!err, "send %llu: %s", (unsigned long long)k, strerror(-err));
		}
		i = recv_index(&ch, &m);
		CHECK(i == got, "echo %llu came back as %llu", (unsigned long long)got, (unsigned long long)i);
		EXPECT_OK(au_recv_done(&ch, &m));
	}
	CHECK(!t_loadgen_join(&lg), "echo: %s", strerror(-lg.err));
	check_clean(id);
	EXPECT_OK(au_destroy(ch.fd, id));
	au_detach(&ch, 1);
}

static void part_c(int ctl)
{
	const __u64 count = 3000;
	unsigned char *seen = calloc(count, 1);
	struct au_channel ch;
	struct t_loadgen lg;
	struct au_msg m;
	__u64 got = 0, i;
	int round, err, steps;
	__u32 id;

	CHECK(seen, "calloc");
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));
	id = ch.id;
	srand(1234);
	t_loadgen_start(&lg, ctl, id, ARCHANGEL_LOADGEN_PRODUCE, 2048, count, ARCHANGEL_LOADGEN_BLOCK);
	for (round = 0; round < 4; round++) {
		__u64 stop = (round + 1) * count / 5 + rand() % 100;

		while (got < stop) {
			mark(seen, count, recv_index(&ch, &m));
			EXPECT_OK(au_recv_done(&ch, &m));
			got++;
		}
		i = recv_index(&ch, &m);
		steps = rand() % 4;
		if (steps)
			EXPECT_OK(au_recv_done_partial(&ch, &m, steps));
		if (steps >= 3) {
			mark(seen, count, i);
			got++;
		}
		reattach(&ch, id);
	}
	while (got < count) {
		mark(seen, count, recv_index(&ch, &m));
		EXPECT_OK(au_recv_done(&ch, &m));
		got++;
	}
	CHECK(!t_loadgen_join(&lg), "produce: %s", strerror(-lg.err));
	CHECK(au_recv(&ch, &m) == 0, "more than %llu messages", (unsigned long long)count);
	check_clean(id);
	EXPECT_OK(au_destroy(ctl, id));
	au_detach(&ch, 1);
	free(seen);
}

int main(void)
{
	int ctl, steps;

	t_init("t_reattach");
	ctl = au_open();
	CHECK(ctl >= 0, "open");
	for (steps = 0; steps <= 3; steps++)
		part_a(ctl, steps);
	part_b();
	part_c(ctl);
	close(ctl);
	return T_PASS;
}
