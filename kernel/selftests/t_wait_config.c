// SPDX-License-Identifier: GPL-2.0
/*
 * t_wait_config: ARCHANGEL_IOC_SET_WAIT / GET_WAIT (docs/efficiency.md).
 *  1. A new channel reports the balanced preset.
 *  2. Every preset set is read back as set.
 *  3. Refused with -EINVAL, leaving the policy as it was: an unknown flag,
 *     a non-zero reserved field, an adaptive window outside
 *     [ARCHANGEL_WAIT_DELAY_MIN_NS, ARCHANGEL_WAIT_DELAY_MAX_NS], a spin
 *     budget above ARCHANGEL_WAIT_SPIN_MAX_NS. Without ADAPTIVE the window
 *     is not checked; PACED_POLLS without ADAPTIVE is refused.
 *  4. An unbound file gets -ENOTCONN.
 *  5. LOADGEN PACED: interval_ns checked (0 with PACED, non-zero without,
 *     above the maximum, PACED with another mode: -EINVAL); a paced run
 *     takes about count * interval.
 *  6. /proc/archangel/comm has notify_coalesced and timed_waits after waits.
 */
#include "t_common.h"

static void expect_wait(int fd, __u32 flags, __u64 delay, __u64 spin, __u32 batch)
{
	struct archangel_wait_config c;

	memset(&c, 0xa5, sizeof(c));
	EXPECT_OK(au_get_wait(fd, &c));
	CHECK(c.flags == flags && c.max_delay_ns == delay && c.spin_ns == spin &&
	      c.wake_batch == batch && !c.reserved[0] && !c.reserved[1],
	      "got flags %#x delay %llu spin %llu batch %u, want %#x %llu %llu %u", c.flags,
	      (unsigned long long)c.max_delay_ns, (unsigned long long)c.spin_ns, c.wake_batch, flags,
	      (unsigned long long)delay, (unsigned long long)spin, batch);
}

static void set_ok(int fd, __u32 flags, __u64 delay, __u64 spin, __u32 batch)
{
	struct archangel_wait_config c = {
		.flags = flags, .max_delay_ns = delay, .spin_ns = spin, .wake_batch = batch,
	};

	EXPECT_OK(au_set_wait(fd, &c));
	expect_wait(fd, flags, delay, spin, batch);
}

static void set_bad(int fd, struct archangel_wait_config c)
{
	EXPECT_ERR(au_set_wait(fd, &c), -EINVAL);
}

static int loadgen_paced(int fd, __u32 id, __u32 mode, __u32 flags, __u64 interval, __u64 count,
			 struct archangel_loadgen_req *req)
{
	memset(req, 0, sizeof(*req));
	req->channel_id = id;
	req->mode = mode;
	req->size = 16;
	req->count = count;
	req->flags = flags;
	req->interval_ns = interval;
	return au_loadgen(fd, req);
}

int main(void)
{
	const __u32 A = ARCHANGEL_WAIT_ADAPTIVE;
	const __u32 P = ARCHANGEL_WAIT_PACED_POLLS;
	struct archangel_loadgen_req req;
	struct archangel_wait_config c;
	struct au_channel ch;
	struct au_msg m;
	char *text;
	int fd, err;
	__u64 i;

	t_init("t_wait_config");
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));

	/* 1, 2 */
	expect_wait(ch.fd, A | P, ARCHANGEL_WAIT_BALANCED_DELAY_NS, ARCHANGEL_WAIT_BALANCED_SPIN_NS, 0);
	set_ok(ch.fd, A, ARCHANGEL_WAIT_RESPONSIVE_DELAY_NS, ARCHANGEL_WAIT_RESPONSIVE_SPIN_NS, 0);
	set_ok(ch.fd, A, ARCHANGEL_WAIT_EFFICIENT_DELAY_NS, ARCHANGEL_WAIT_EFFICIENT_SPIN_NS, 0);
	set_ok(ch.fd, 0, 0, ARCHANGEL_WAIT_LOW_LATENCY_SPIN_NS, 0);
	set_ok(ch.fd, A, ARCHANGEL_WAIT_DELAY_MIN_NS, 0, 4096);
	set_ok(ch.fd, A, ARCHANGEL_WAIT_DELAY_MAX_NS, ARCHANGEL_WAIT_SPIN_MAX_NS, 0xffffffffU);
	set_ok(ch.fd, A | P, ARCHANGEL_WAIT_BALANCED_DELAY_NS, ARCHANGEL_WAIT_BALANCED_SPIN_NS, 0);

	/* 3 */
	set_bad(ch.fd, (struct archangel_wait_config){ .flags = A | 4, .max_delay_ns = 1000000 });
	set_bad(ch.fd, (struct archangel_wait_config){ .flags = P, .max_delay_ns = 1000000 });
	set_bad(ch.fd, (struct archangel_wait_config){ .flags = 1U << 31 });
	set_bad(ch.fd, (struct archangel_wait_config){ .flags = A, .max_delay_ns = 1000000,
						      .reserved = { 1, 0 } });
	set_bad(ch.fd, (struct archangel_wait_config){ .flags = A, .max_delay_ns = 1000000,
						      .reserved = { 0, 1 } });
	set_bad(ch.fd, (struct archangel_wait_config){ .flags = A, .max_delay_ns = 0 });
	set_bad(ch.fd, (struct archangel_wait_config){ .flags = A,
						      .max_delay_ns = ARCHANGEL_WAIT_DELAY_MIN_NS - 1 });
	set_bad(ch.fd, (struct archangel_wait_config){ .flags = A,
						      .max_delay_ns = ARCHANGEL_WAIT_DELAY_MAX_NS + 1 });
	set_bad(ch.fd, (struct archangel_wait_config){ .flags = A, .max_delay_ns = 1000000,
						      .spin_ns = ARCHANGEL_WAIT_SPIN_MAX_NS + 1 });
	set_bad(ch.fd, (struct archangel_wait_config){ .spin_ns = ARCHANGEL_WAIT_SPIN_MAX_NS + 1 });
	expect_wait(ch.fd, A | P, ARCHANGEL_WAIT_BALANCED_DELAY_NS, ARCHANGEL_WAIT_BALANCED_SPIN_NS, 0);
	/* Without ADAPTIVE the window is ignored, not checked. */
	set_ok(ch.fd, 0, 5, 0, 0);
	set_ok(ch.fd, A, ARCHANGEL_WAIT_BALANCED_DELAY_NS, ARCHANGEL_WAIT_BALANCED_SPIN_NS, 0);

	/* 4 */
	fd = au_open();
	CHECK(fd >= 0, "open: %s", strerror(-fd));
	memset(&c, 0, sizeof(c));
	c.flags = A;
	c.max_delay_ns = 1000000;
	EXPECT_ERR(au_set_wait(fd, &c), -ENOTCONN);
	EXPECT_ERR(au_get_wait(fd, &c), -ENOTCONN);
	close(fd);

	/* 5 */
	EXPECT_ERR(loadgen_paced(ch.fd, ch.id, ARCHANGEL_LOADGEN_PRODUCE, ARCHANGEL_LOADGEN_PACED, 0, 1,
				 &req), -EINVAL);
	EXPECT_ERR(loadgen_paced(ch.fd, ch.id, ARCHANGEL_LOADGEN_PRODUCE, 0, 1000, 1, &req), -EINVAL);
	EXPECT_ERR(loadgen_paced(ch.fd, ch.id, ARCHANGEL_LOADGEN_PRODUCE, ARCHANGEL_LOADGEN_PACED,
				 ARCHANGEL_LOADGEN_INTERVAL_MAX_NS + 1, 1, &req), -EINVAL);
	EXPECT_ERR(loadgen_paced(ch.fd, ch.id, ARCHANGEL_LOADGEN_SINK, ARCHANGEL_LOADGEN_PACED, 1000, 1,
				 &req), -EINVAL);
	EXPECT_ERR(loadgen_paced(ch.fd, ch.id, ARCHANGEL_LOADGEN_SINK, ARCHANGEL_LOADGEN_ATOMIC, 0, 1,
				 &req), -EINVAL);
	fd = open(AU_RW_DEVICE, O_RDWR);
	if (fd >= 0) {
		EXPECT_ERR(loadgen_paced(fd, 0, ARCHANGEL_LOADGEN_PRODUCE, ARCHANGEL_LOADGEN_PACED, 1000,
					 1, &req), -EINVAL);
		close(fd);
	}
	/* 20 messages 10 ms apart: the last is due 190 ms after the first. */
	EXPECT_OK(loadgen_paced(ch.fd, ch.id, ARCHANGEL_LOADGEN_PRODUCE,
				ARCHANGEL_LOADGEN_PACED | ARCHANGEL_LOADGEN_BLOCK, 10000000, 20, &req));
	CHECK(req.done == 20, "paced run did %llu", (unsigned long long)req.done);
	CHECK(req.elapsed_ns >= 190000000ULL, "paced run of 20 x 10 ms took %llu ns",
	      (unsigned long long)req.elapsed_ns);
	for (i = 0; i < 20; i++) {
		CHECK(t_recv(&ch, &m, 5000), "paced message %llu", (unsigned long long)i);
		CHECK(m.hdr.priority == ARCHANGEL_PRIORITY_NORMAL && m.hdr.type == 1 + i % 7,
		      "paced message %llu: type %u priority %u", (unsigned long long)i, m.hdr.type,
		      m.hdr.priority);
		CHECK(au_pattern_check(m.seg[0].p, m.length, i) < 0, "paced payload %llu",
		      (unsigned long long)i);
		EXPECT_OK(au_recv_done(&ch, &m));
	}

	/* 6 */
	text = au_read_file(AU_PROC_COMM);
	CHECK(text, "read %s", AU_PROC_COMM);
	CHECK(!t_proc_check_format(text), "%s", t_proc_check_format(text));
	CHECK(strstr(text, " waits=") && strstr(text, " notify_coalesced=") &&
	      strstr(text, " timed_waits="), "keys missing:\n%s", text);
	free(text);

	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	T_LOG("PASS");
	return T_PASS;
}
