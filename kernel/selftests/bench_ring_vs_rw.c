// SPDX-License-Identifier: GPL-2.0
/*
 * bench_ring_vs_rw [RUNS] [SCALE] [SPIN_US]: the rings of /dev/archangel
 * against plain read()/write() on /dev/archangel_rw, with the same traffic
 * from the same in-kernel load generator:
 *   k->u throughput   LOADGEN PRODUCE; the user drains (ring) or read()s
 *   u->k throughput   LOADGEN SINK; the user sends (ring) or write()s
 *   round trip        LOADGEN ECHO; the user sends one and waits for the
 *                     answer (eventfd after the wait policy's poll /
 *                     blocking read())
 * at 64 B and 64 KiB, RUNS runs each (default 5), medians. SCALE multiplies
 * the message counts (default 1); SPIN_US is the user's wait policy
 * (default AU_SPIN_US_DEFAULT; it polls only with more than one CPU).
 *
 * Each path gets its best honest form. Ring: the kernel publishes every 64
 * messages (ARCHANGEL_LOADGEN_BATCH), the user sender commits 64 and
 * publishes once (au_send(publish 0) + au_publish), the user receiver drains
 * with au_recv_many. read()/write(): one message per call, the device's own
 * unit, with its 1 MiB FIFOs; and, as a second column, readv()/writev() of 64
 * exactly message-sized segments (the VFS calls the device's read/write once
 * per segment: one system call moves 64 messages). The bar is ring >=
 * 10x read()/write() in throughput at 64 B; the readv/writev ratio is printed
 * for honesty. Under TCG the timings are emulated: only the ratios mean
 * something. Always exits 0 when the measurements ran.
 */
#include <sys/uio.h>

#include "t_common.h"

#define BATCH	64

static unsigned char buf[1 << 17];
static double scale = 1;

enum { K2U, U2K, RTT };
enum { RING, RW, RWV, PATHS };

static __u64 counts(int kind, __u32 size)
{
	static const __u64 c[3][2] = { { 40000, 400 }, { 40000, 400 }, { 2000, 200 } };

	return (__u64)(c[kind][size > 64] * scale) + 1;
}

static void recv_one(struct au_channel *ch, struct au_msg *m)
{
	int r;

	while ((r = au_recv(ch, m)) == 0)
		if (au_wait_data(ch, 1000) < 0)
			T_FAILF("wait");
	if (r < 0)
		T_FAILF("receive: %s", strerror(-r));
}

/* Drains up to max messages (au_recv_many), sleeping when both lanes are empty. */
static __u64 drain(struct au_channel *ch, __u64 max)
{
	int r;

	for (;;) {
		r = au_recv_many(ch, NULL, NULL, max > BATCH ? BATCH : (unsigned int)max);
		if (r < 0)
			T_FAILF("receive: %s", strerror(-r));
		if (r > 0)
			return r;
		if (au_wait_data(ch, 1000) < 0)
			T_FAILF("wait");
	}
}

/* Sends n messages, committing BATCH and publishing once. */
static void send_batched(struct au_channel *ch, __u32 size, __u64 n)
{
	__u64 i;
	int err;

	for (i = 0; i < n; i++) {
		while ((err = au_send(ch, ARCHANGEL_MSG_AI_REQUEST, ARCHANGEL_PRIORITY_NORMAL, buf, size, NULL,
				      i % BATCH == BATCH - 1)) == -EAGAIN)
			if (au_wait_space(ch, 1000) < 0)	/* publishes first */
				T_FAILF("wait space");
		if (err)
			T_FAILF("send: %s", strerror(-err));
	}
	au_publish(ch);
}

/* Seconds for one run of kind over the rings. */
static double ring_run(struct au_channel *ch, int kind, __u32 size, __u64 n)
{
	static const __u32 modes[] = { ARCHANGEL_LOADGEN_PRODUCE, ARCHANGEL_LOADGEN_SINK, ARCHANGEL_LOADGEN_ECHO };
	static const __u32 flags[] = { ARCHANGEL_LOADGEN_BLOCK | ARCHANGEL_LOADGEN_BATCH, ARCHANGEL_LOADGEN_BLOCK,
				       ARCHANGEL_LOADGEN_BLOCK };
	struct t_loadgen lg;
	struct au_msg m;
	__u64 t0 = au_now_ns(), i;
	int err;

	t_loadgen_start(&lg, ch->fd, ch->id, modes[kind], size, n, flags[kind]);
	if (kind == K2U)
		for (i = 0; i < n; i += drain(ch, n - i))
			;
	else if (kind == U2K)
		send_batched(ch, size, n);
	for (i = 0; kind == RTT && i < n; i++) {
		err = au_send_wait(ch, ARCHANGEL_MSG_AI_REQUEST, ARCHANGEL_PRIORITY_NORMAL, buf, size, NULL, 10000);
		if (err)
			T_FAILF("send: %s", strerror(-err));
		recv_one(ch, &m);
		au_recv_done(ch, &m);
	}
	err = t_loadgen_join(&lg);
	if (err || lg.req.done != n)
		T_FAILF("ring loadgen mode %u: %s, done %llu", modes[kind], strerror(-err), (unsigned long long)lg.req.done);
	return (double)(au_now_ns() - t0) / 1e9;
}

/* readv()/writev() of up to BATCH message-sized segments: messages moved. */
static __u64 rwv_batch(int fd, int kind, __u32 size, __u64 left)
{
	static struct iovec iov[BATCH];
	int k, cnt = left > BATCH ? BATCH : (int)left;
	ssize_t r;

	for (k = 0; k < cnt; k++) {
		iov[k].iov_base = buf + (size_t)(k % 2) * 65536;
		iov[k].iov_len = size;
	}
	r = kind == K2U ? readv(fd, iov, cnt) : writev(fd, iov, cnt);
	if (r <= 0 || r % size)
		T_FAILF("%s: %zd %s", kind == K2U ? "readv" : "writev", r, strerror(errno));
	return (__u64)r / size;
}

static double rw_run(int fd, int kind, __u32 size, __u64 n, int vec)
{
	static const __u32 modes[] = { ARCHANGEL_LOADGEN_PRODUCE, ARCHANGEL_LOADGEN_SINK, ARCHANGEL_LOADGEN_ECHO };
	struct t_loadgen lg;
	__u64 t0 = au_now_ns(), i;
	int err;

	t_loadgen_start(&lg, fd, 0, modes[kind], size, n, ARCHANGEL_LOADGEN_BLOCK);
	for (i = 0; vec && kind != RTT && i < n;)
		i += rwv_batch(fd, kind, size, n - i);
	for (i = vec && kind != RTT ? n : 0; i < n; i++) {
		if (kind != K2U && write(fd, buf, size) != (ssize_t)size)
			T_FAILF("write: %s", strerror(errno));
		if (kind != U2K && read(fd, buf, sizeof(buf)) != (ssize_t)size)
			T_FAILF("read: %s", strerror(errno));
	}
	err = t_loadgen_join(&lg);
	if (err || lg.req.done != n)
		T_FAILF("rw loadgen mode %u: %s, done %llu", modes[kind], strerror(-err), (unsigned long long)lg.req.done);
	return (double)(au_now_ns() - t0) / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Each side alone, per message: the kernel fills an empty ring (or FIFO)
 * until it is full, then the user drains it; the user fills, then the kernel
 * drains (SINK). Medians over runs, in ns per message.
 */
static void alone(struct au_channel *ch, int rw, __u32 size, int runs)
{
	double kp[64], uc[64], up[64], kc[64], rkp[64], ruc[64], rup[64], rkc[64];
	struct archangel_loadgen_req req;
	__u64 t0, n, i;
	int r, fl = fcntl(rw, F_GETFL);

	for (r = 0; r < runs; r++) {
		memset(&req, 0, sizeof(req));
		req.channel_id = ch->id;
		req.mode = ARCHANGEL_LOADGEN_PRODUCE;
		req.flags = ARCHANGEL_LOADGEN_BATCH;
		req.size = size;
		req.count = 1 << 30;
		au_loadgen(ch->fd, &req);
		n = req.done;
		kp[r] = (double)req.elapsed_ns / n;
		t0 = au_now_ns();
		for (i = 0; i < n; i += drain(ch, n - i))
			;
		uc[r] = (double)(au_now_ns() - t0) / n;
		t0 = au_now_ns();
		for (n = 0; !au_send(ch, ARCHANGEL_MSG_STATS, (__u8)(n % 4), buf, size, NULL, n % BATCH == BATCH - 1); n++)
			;
		au_publish(ch);
		up[r] = (double)(au_now_ns() - t0) / n;
		memset(&req, 0, sizeof(req));
		req.channel_id = ch->id;
		req.mode = ARCHANGEL_LOADGEN_SINK;
		req.count = n;
		au_loadgen(ch->fd, &req);
		kc[r] = (double)req.elapsed_ns / (req.done ? req.done : 1);

		fcntl(rw, F_SETFL, fl | O_NONBLOCK);
		memset(&req, 0, sizeof(req));
		req.mode = ARCHANGEL_LOADGEN_PRODUCE;
		req.size = size;
		req.count = 1 << 30;
		au_loadgen(rw, &req);
		n = req.done;
		rkp[r] = (double)req.elapsed_ns / n;
		t0 = au_now_ns();
		for (i = 0; i < n; i++)
			if (read(rw, buf, sizeof(buf)) != (ssize_t)size)
				T_FAILF("read");
		ruc[r] = (double)(au_now_ns() - t0) / n;
		t0 = au_now_ns();
		for (n = 0; write(rw, buf, size) == (ssize_t)size; n++)
			;
		rup[r] = (double)(au_now_ns() - t0) / n;
		memset(&req, 0, sizeof(req));
		req.mode = ARCHANGEL_LOADGEN_SINK;
		req.count = n;
		au_loadgen(rw, &req);
		rkc[r] = (double)req.elapsed_ns / (req.done ? req.done : 1);
		fcntl(rw, F_SETFL, fl);
	}
	printf("%-16s %6u  %8.0f + %-8.0f %8.0f + %-8.0f\n", "k->u alone", size, median(kp, runs), median(uc, runs),
	       median(rkp, runs), median(ruc, runs));
	printf("%-16s %6u  %8.0f + %-8.0f %8.0f + %-8.0f\n", "u->k alone", size, median(up, runs), median(kc, runs),
	       median(rup, runs), median(rkc, runs));
}

/* One figure: the three paths, and the ring's ratio to each rw path. */
static void row(const char *name, __u32 size, int kind, const double *sec, __u64 n, double *ratio)
{
	double v[PATHS];
	int p;

	for (p = 0; p < PATHS; p++)
		v[p] = kind == RTT ? sec[p] / n * 1e6 : n / sec[p];
	if (kind == RTT) {
		ratio[RW] = v[RW] / v[RING];
		ratio[RWV] = 0;
		printf("%-16s %6u  %10.2f us  %10.2f us  %10s     %7.2fx %9s\n", name, size, v[RING], v[RW], "-",
		       ratio[RW], "-");
	} else {
		ratio[RW] = v[RING] / v[RW];
		ratio[RWV] = v[RING] / v[RWV];
		printf("%-16s %6u  %9.0f/s  %9.0f/s  %9.0f/s     %7.2fx  %7.2fx  (%.1f / %.1f / %.1f MB/s)\n", name, size,
		       v[RING], v[RW], v[RWV], ratio[RW], ratio[RWV], v[RING] * size / 1e6, v[RW] * size / 1e6,
		       v[RWV] * size / 1e6);
	}
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "k->u throughput", "u->k throughput", "round trip" };
	static const __u32 sizes[] = { 64, 65536 };
	int runs = argc > 1 ? atoi(argv[1]) : 5, kind, s, r, p, rw, err;
	double t[PATHS][64], med[PATHS], ratio[PATHS], bar[2] = { 0, 0 };
	struct archangel_create_req creq = { .channel_id = ARCHANGEL_CHANNEL_ANY };
	struct au_channel ch;

	if (argc > 2)
		scale = atof(argv[2]);
	if (runs < 1 || runs > 64)
		runs = 5;
	t_init("bench_ring_vs_rw");
	/* As much queued as read()/write() gets (ARCHANGEL_RW_FIFO_BYTES): ring and pool 1 MiB. */
	creq.normal_ring_bytes = ARCHANGEL_RW_FIFO_BYTES;
	creq.pool_buffer_count = ARCHANGEL_RW_FIFO_BYTES / 4096;
	err = au_channel_new(&ch, &creq);
	CHECK(!err, "channel: %s", strerror(-err));
	if (argc > 3)
		au_set_spin(&ch, (__u32)atoi(argv[3]));
	/*
	 * The kernel side as the wave-1 figures measured it: lowLatency (spin,
	 * then sleep; no timed polling, no coalescing). The efficiency suite
	 * measures the adaptive presets.
	 */
	err = au_set_wait(ch.fd, &(struct archangel_wait_config){
		.spin_ns = ARCHANGEL_WAIT_LOW_LATENCY_SPIN_NS });
	CHECK(!err, "set wait: %s", strerror(-err));
	rw = open(AU_RW_DEVICE, O_RDWR | O_CLOEXEC);
	CHECK(rw >= 0, "open %s", AU_RW_DEVICE);
	memset(buf, 0x5a, sizeof(buf));

	printf("bench_ring_vs_rw: medians of %d runs, %ld CPU(s), user spin %u us%s; ring = /dev/archangel, rw = %s\n",
	       runs, sysconf(_SC_NPROCESSORS_ONLN), ch.spin_us, ch.spin_ok ? "" : " (not used: one CPU)", AU_RW_DEVICE);
	printf("(under TCG the times are emulated: read the ratios only)\n");
	printf("%-16s %6s  %12s  %12s  %12s     %8s  %8s\n", "what", "bytes", "ring", "read/write", "readv/wv x64",
	       "ring/rw", "ring/rwv");
	for (s = 0; s < 2; s++) {
		for (kind = 0; kind < 3; kind++) {
			__u64 n = counts(kind, sizes[s]);

			ring_run(&ch, kind, sizes[s], n / 10 + 1);	/* warm-up */
			rw_run(rw, kind, sizes[s], n / 10 + 1, 0);
			for (r = 0; r < runs; r++) {	/* interleaved: drift hits every path alike */
				t[RING][r] = ring_run(&ch, kind, sizes[s], n);
				t[RW][r] = rw_run(rw, kind, sizes[s], n, 0);
				t[RWV][r] = kind == RTT ? 1 : rw_run(rw, kind, sizes[s], n, 1);
			}
			for (p = 0; p < PATHS; p++)
				med[p] = median(t[p], runs);
			row(names[kind], sizes[s], kind, med, n, ratio);
			if (sizes[s] == 64 && kind != RTT)
				bar[kind] = ratio[RW];
		}
	}
	printf("\neach side alone, ns per message (sender + receiver), medians:\n");
	printf("%-16s %6s  %17s %17s\n", "what", "bytes", "ring", "read/write");
	for (s = 0; s < 2; s++)
		alone(&ch, rw, sizes[s], runs);
	printf("BAR (ring >= 10x read()/write() in throughput at 64 B): k->u %.2fx %s, u->k %.2fx %s: %s\n", bar[K2U],
	       bar[K2U] >= 10 ? "met" : "missed", bar[U2K], bar[U2K] >= 10 ? "met" : "missed",
	       bar[K2U] >= 10 && bar[U2K] >= 10 ? "BAR met" : "BAR missed");
	printf("user side: %llu data signals, %llu space signals, %llu sleeps, %llu NOTIFY ioctls\n",
	       (unsigned long long)ch.st.data_signals, (unsigned long long)ch.st.space_signals,
	       (unsigned long long)ch.st.waits, (unsigned long long)(ch.st.notify_data + ch.st.notify_space));
	au_destroy(ch.fd, ch.id);
	au_detach(&ch, 1);
	close(rw);
	return T_PASS;
}
