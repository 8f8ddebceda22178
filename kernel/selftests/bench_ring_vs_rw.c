// SPDX-License-Identifier: GPL-2.0
/*
 * bench_ring_vs_rw [RUNS] [SCALE]: the rings of /dev/archangel against plain
 * read()/write() on /dev/archangel_rw, with the same traffic from the same
 * in-kernel load generator:
 *   k->u throughput   LOADGEN PRODUCE; the user drains (ring) or read()s
 *   u->k throughput   LOADGEN SINK; the user sends (ring) or write()s
 *   round trip        LOADGEN ECHO; the user sends one and waits for the
 *                     answer, asleep (eventfd / blocking read())
 * at 64 B and 64 KiB, RUNS runs each (default 5), medians. SCALE multiplies
 * the message counts (default 1). Under TCG the timings are emulated: only
 * the ratios mean something. The bar is ring >= 10x read()/write()
 * in throughput at 64 B. Always exits 0 when the measurements ran.
 */
#include "t_common.h"

static unsigned char buf[1 << 17];
static double scale = 1;

enum { K2U, U2K, RTT };

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

/* Seconds for one run of kind over the rings. */
static double ring_run(struct au_channel *ch, int kind, __u32 size, __u64 n)
{
	static const __u32 modes[] = { ARCHANGEL_LOADGEN_PRODUCE, ARCHANGEL_LOADGEN_SINK, ARCHANGEL_LOADGEN_ECHO };
	struct t_loadgen lg;
	struct au_msg m;
	__u64 t0 = au_now_ns(), i;
	int err;

	t_loadgen_start(&lg, ch->fd, ch->id, modes[kind], size, n, ARCHANGEL_LOADGEN_BLOCK);
	for (i = 0; i < n; i++) {
		if (kind != K2U) {
			err = au_send_wait(ch, ARCHANGEL_MSG_AI_REQUEST, ARCHANGEL_PRIORITY_NORMAL, buf, size, NULL, 10000);
			if (err)
				T_FAILF("send: %s", strerror(-err));
		}
		if (kind != U2K) {
			recv_one(ch, &m);
			au_recv_done(ch, &m);
		}
	}
	err = t_loadgen_join(&lg);
	if (err || lg.req.done != n)
		T_FAILF("ring loadgen mode %u: %s, done %llu", modes[kind], strerror(-err), (unsigned long long)lg.req.done);
	return (double)(au_now_ns() - t0) / 1e9;
}

static double rw_run(int fd, int kind, __u32 size, __u64 n)
{
	static const __u32 modes[] = { ARCHANGEL_LOADGEN_PRODUCE, ARCHANGEL_LOADGEN_SINK, ARCHANGEL_LOADGEN_ECHO };
	struct t_loadgen lg;
	__u64 t0 = au_now_ns(), i;
	int err;

	t_loadgen_start(&lg, fd, 0, modes[kind], size, n, ARCHANGEL_LOADGEN_BLOCK);
	for (i = 0; i < n; i++) {
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
	struct au_msg m;
	__u64 t0, n, i;
	int r, fl = fcntl(rw, F_GETFL);

	for (r = 0; r < runs; r++) {
		memset(&req, 0, sizeof(req));
		req.channel_id = ch->id;
		req.mode = ARCHANGEL_LOADGEN_PRODUCE;
		req.size = size;
		req.count = 1 << 30;
		au_loadgen(ch->fd, &req);
		n = req.done;
		kp[r] = (double)req.elapsed_ns / n;
		t0 = au_now_ns();
		for (i = 0; i < n; i++) {
			recv_one(ch, &m);
			au_recv_done(ch, &m);
		}
		uc[r] = (double)(au_now_ns() - t0) / n;
		t0 = au_now_ns();
		for (n = 0; !au_send(ch, ARCHANGEL_MSG_STATS, (__u8)(n % 4), buf, size, NULL, 1); n++)
			;
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

static void row(const char *name, __u32 size, int kind, double ring_s, double rw_s, __u64 n, double *ratio)
{
	if (kind == RTT) {
		double a = ring_s / n * 1e6, b = rw_s / n * 1e6;

		*ratio = b / a;
		printf("%-16s %6u  %12.2f us %12.2f us  %7.2fx faster\n", name, size, a, b, *ratio);
	} else {
		double a = n / ring_s, b = n / rw_s;

		*ratio = a / b;
		printf("%-16s %6u  %10.0f msg/s %10.0f msg/s  %7.2fx  (%.1f vs %.1f MB/s)\n", name, size, a, b, *ratio,
		       a * size / 1e6, b * size / 1e6);
	}
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "k->u throughput", "u->k throughput", "round trip" };
	static const __u32 sizes[] = { 64, 65536 };
	int runs = argc > 1 ? atoi(argv[1]) : 5, kind, s, r, rw, err, pass = 1;
	double ring_t[64], rw_t[64], ratio;
	struct au_channel ch;

	if (argc > 2)
		scale = atof(argv[2]);
	if (runs < 1 || runs > 64)
		runs = 5;
	t_init("bench_ring_vs_rw");
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));
	rw = open(AU_RW_DEVICE, O_RDWR | O_CLOEXEC);
	CHECK(rw >= 0, "open %s", AU_RW_DEVICE);
	memset(buf, 0x5a, sizeof(buf));

	printf("bench_ring_vs_rw: medians of %d runs; ring = /dev/archangel, rw = read()/write() on %s\n", runs,
	       AU_RW_DEVICE);
	printf("(under TCG the times are emulated: read the ratios only)\n");
	printf("%-16s %6s  %16s %16s  %s\n", "what", "bytes", "ring", "read/write", "ring vs rw");
	for (s = 0; s < 2; s++) {
		for (kind = 0; kind < 3; kind++) {
			__u64 n = counts(kind, sizes[s]);

			ring_run(&ch, kind, sizes[s], n / 10 + 1);	/* warm-up */
			rw_run(rw, kind, sizes[s], n / 10 + 1);
			for (r = 0; r < runs; r++) {
				ring_t[r] = ring_run(&ch, kind, sizes[s], n);
				rw_t[r] = rw_run(rw, kind, sizes[s], n);
			}
			row(names[kind], sizes[s], kind, median(ring_t, runs), median(rw_t, runs), n, &ratio);
			if (sizes[s] == 64 && kind != RTT && ratio < 10)
				pass = 0;
		}
	}
	printf("\neach side alone, ns per message (sender + receiver), medians:\n");
	printf("%-16s %6s  %17s %17s\n", "what", "bytes", "ring", "read/write");
	for (s = 0; s < 2; s++)
		alone(&ch, rw, sizes[s], runs);
	printf("bar: ring >= 10x read()/write() in throughput at 64 B: %s\n", pass ? "met" : "NOT met");
	printf("user side: %llu data signals, %llu space signals, %llu sleeps, %llu NOTIFY ioctls\n",
	       (unsigned long long)ch.st.data_signals, (unsigned long long)ch.st.space_signals,
	       (unsigned long long)ch.st.waits, (unsigned long long)(ch.st.notify_data + ch.st.notify_space));
	au_destroy(ch.fd, ch.id);
	au_detach(&ch, 1);
	close(rw);
	return T_PASS;
}
