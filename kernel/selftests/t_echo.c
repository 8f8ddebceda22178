// SPDX-License-Identifier: GPL-2.0
/*
 * t_echo: user -> kernel -> user round trips. A thread runs LOADGEN ECHO;
 * the test sends requests (inline and through the to_kernel pool) and checks
 * each answer: type AI_RESPONSE, the request's priority and payload, and for
 * an AI_REQUEST a correlation word naming the request's sequence. Ping-pong
 * and pipelined windows.
 */
#include "t_common.h"

static unsigned char out[1 << 17], in[1 << 17];

static void run(struct au_channel *ch, __u8 type, __u32 size, __u64 count, __u32 window)
{
	__u64 *seq_of = calloc(count, sizeof(__u64)), sent = 0, got = 0;
	struct t_loadgen lg;
	struct au_msg m;
	int err;

	CHECK(seq_of, "calloc");
	t_loadgen_start(&lg, ch->fd, ch->id, ARCHANGEL_LOADGEN_ECHO, 0, count, ARCHANGEL_LOADGEN_BLOCK);
	while (got < count) {
		while (sent < count && sent - got < window) {
			au_pattern_fill(out, size, sent);
			err = au_send_wait(ch, type, sent % 4, out, size, NULL, 10000);
			CHECK(!err, "send %llu (%u bytes): %s", (unsigned long long)sent, size, strerror(-err));
			seq_of[sent++] = ch->tx.sequence;
		}
		CHECK(t_recv(ch, &m, 10000), "no answer after %llu of %llu (size %u, window %u)",
		      (unsigned long long)got, (unsigned long long)count, size, window);
		{
			__u64 i = got;
			__u32 n = au_msg_copy(&m, in, sizeof(in));
			long bad;

			CHECK(m.hdr.type == ARCHANGEL_MSG_AI_RESPONSE, "answer type %u", m.hdr.type);
			CHECK(m.length == size, "answer of %u bytes, want %u", m.length, size);
			if (size >= 8)
				memcpy(&i, in, 8);
			CHECK(i < sent, "answer to %llu, only %llu sent", (unsigned long long)i, (unsigned long long)sent);
			bad = au_pattern_check(in, n, i);
			CHECK(bad < 0, "answer %llu: byte %ld differs", (unsigned long long)i, bad);
			CHECK(m.hdr.priority == i % 4, "answer %llu: priority %u", (unsigned long long)i, m.hdr.priority);
			if (type == ARCHANGEL_MSG_AI_REQUEST)
				CHECK(m.correlated && m.correlation == seq_of[i],
				      "answer %llu: correlated %d to %llu, want %llu", (unsigned long long)i, m.correlated,
				      (unsigned long long)m.correlation, (unsigned long long)seq_of[i]);
			else
				CHECK(!m.correlated, "answer to a type %u request is correlated", type);
		}
		EXPECT_OK(au_recv_done(ch, &m));
		got++;
	}
	err = t_loadgen_join(&lg);
	CHECK(!err, "echo: %s", strerror(-err));
	CHECK(lg.req.done == count, "echo done %llu", (unsigned long long)lg.req.done);
	free(seq_of);
}

int main(void)
{
	struct au_channel ch;
	int err;

	t_init("t_echo");
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));
	run(&ch, ARCHANGEL_MSG_AI_REQUEST, 64, 2000, 1);
	run(&ch, ARCHANGEL_MSG_SYSCALL_EVENT, 64, 500, 1);
	run(&ch, ARCHANGEL_MSG_AI_REQUEST, 64, 5000, 32);
	run(&ch, ARCHANGEL_MSG_AI_REQUEST, 0, 100, 1);
	run(&ch, ARCHANGEL_MSG_AI_REQUEST, 2000, 500, 8);
	run(&ch, ARCHANGEL_MSG_AI_REQUEST, 65536, 200, 1);
	run(&ch, ARCHANGEL_MSG_NETWORK_EVENT, 65536, 200, 3);
	CHECK(t_proc(ch.id, "to_kernel", "errors") == 0, "to_kernel errors");
	CHECK(t_proc(ch.id, "to_user", "errors") == 0, "to_user errors");
	CHECK(t_proc(ch.id, "to_kernel", "messages_received") >= 8500, "to_kernel messages_received");
	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	return T_PASS;
}
