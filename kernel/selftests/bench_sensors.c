// SPDX-License-Identifier: GPL-2.0
/*
 * bench_sensors [N] [EXECS]: the hot-path cost of archangel_sensors.ko.
 *
 * A child process times N getppid() calls (CLOCK_MONOTONIC; under qemu
 * -icount shift=0 one guest nanosecond is one instruction, so ns/call reads
 * as instructions/call) with:
 *   off        the syscall sensor off (no probe registered);
 *   filtered   the sensor on with an empty bitmap (sys_enter probe, one bit test);
 *   streamed   getppid in the bitmap, every call sent to this program, which
 *              drains the channel in a thread (the engine);
 *   streamed2  the same from two children at once (producer lock contention);
 *   batched1k, batched4k  streamed, attached with batch_bytes 1024 / 4096
 *              (per-CPU batches; 4096 travels through the channel's pool);
 * then EXECS fork+exec+wait of /bin/true with the exec sensor off, with an
 * allow from the cache, and with an allow by round trip (hold, answered by
 * the draining thread). Prints one "BENCH key=value ..." line per case.
 * Not a pass/fail test: it exits 0 unless something fails outright.
 */
#include "sensors_user.h"
#include <sys/syscall.h>

static struct au_channel ch;
static int sfd;
static volatile int stop;
static volatile int answer;	/* the drain thread answers AI_REQUESTs with allow */
static volatile __u64 received, messages, lost, requests;

static __u64 clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static __u64 now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* The drain thread's CPU time, read by itself after each batch. */
static volatile __u64 drain_cpu_ns;

static void *drain(void *arg)
{
	struct su_rec r;

	(void)arg;
	while (!stop) {
		if (!su_next(&ch, &r, 20))
			continue;
		received += su_records(&r);
		/* Read now and then: the clock costs a system call. */
		if (!(++messages & 255))
			drain_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		if (r.ev->kind == ARCHANGEL_SENSOR_LOST)
			lost += ((const struct archangel_sensor_lost *)r.ev)->count;
		if (r.type == ARCHANGEL_MSG_AI_REQUEST) {
			requests++;
			if (answer)
				su_respond(&ch, r.req->id, ARCHANGEL_VERDICT_ALLOW, answer > 1 ? 600000 : 0);
		}
	}
	return NULL;
}

/*
 * Runs @children processes of n getppid each; the mean wall ns per call,
 * and in *@cpu the mean CPU time per call of the callers themselves
 * (their system calls and the probes they run, not the engine's work).
 */
static double getppid_ns(long n, int children, double *cpu)
{
	int fds[2], i, status;
	double sum = 0, csum = 0, v[2];
	pid_t pids[4];

	CHECK(!pipe(fds), "pipe");
	for (i = 0; i < children; i++) {
		pids[i] = fork();
		CHECK(pids[i] >= 0, "fork");
		if (!pids[i]) {
			__u64 t0 = now_ns(), c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
			long j;

			for (j = 0; j < n; j++)
				syscall(SYS_getppid);
			v[0] = (double)(now_ns() - t0) / n;
			v[1] = (double)(clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / n;
			if (write(fds[1], v, sizeof(v)) != sizeof(v))
				_exit(1);
			_exit(0);
		}
	}
	for (i = 0; i < children; i++) {
		CHECK(read(fds[0], v, sizeof(v)) == sizeof(v), "child result");
		sum += v[0];
		csum += v[1];
	}
	if (cpu)
		*cpu = csum / children;
	for (i = 0; i < children; i++) {
		waitpid(pids[i], &status, 0);
		CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "child status %#x", status);
	}
	close(fds[0]);
	close(fds[1]);
	return sum / children;
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

/* n fork+exec+wait of /bin/true: the mean ns each, the median in *median. */
static double exec_ns(int n, double *median)
{
	static char *const argv_true[] = { "/bin/true", NULL };
	__u64 t0 = now_ns(), *each = calloc(n, sizeof(*each));
	int i, status;

	CHECK(each, "calloc");
	for (i = 0; i < n; i++) {
		__u64 t = now_ns();
		pid_t pid = su_spawn(argv_true);

		CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
		CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "/bin/true: status %#x", status);
		each[i] = now_ns() - t;
	}
	t0 = now_ns() - t0;
	qsort(each, n, sizeof(*each), cmp_u64);
	if (median)
		*median = (double)each[n / 2];
	free(each);
	return (double)t0 / n;
}

static void syscall_sensor(int on, int with_getppid)
{
	__u64 bits[ARCHANGEL_SENSORS_SYSCALL_BITS / 64] = { 0 };

	if (with_getppid)
		su_bit(bits, SYS_getppid);
	EXPECT_OK(su_config(sfd, ARCHANGEL_SENSORS_ID_SYSCALL, on ? ARCHANGEL_SENSORS_F_ENABLED : 0,
			    ARCHANGEL_POLICY_OBSERVE, 0, 0, bits));
}

static void report_stream(const char *name, long n, int children, double base, double cbase)
{
	const struct archangel_sensors_kind_stats *k;
	struct archangel_sensors_stats s0, s1;
	__u64 r0, m0, t0, obs, sent, dropped, d0, dr0;
	double ns, cpu;

	usleep(100000);	/* the drain thread idle, drain_cpu_ns current */
	r0 = received;
	d0 = drain_cpu_ns;
	dr0 = messages & ~255ULL;
	m0 = messages;
	su_stats(sfd, &s0);
	t0 = now_ns();
	ns = getppid_ns(n, children, &cpu);
	t0 = now_ns() - t0;
	usleep(300000);
	su_stats(sfd, &s1);
	k = &s1.kinds[ARCHANGEL_SENSOR_SYSCALL];
	obs = k->observed - s0.kinds[ARCHANGEL_SENSOR_SYSCALL].observed;
	sent = k->sent - s0.kinds[ARCHANGEL_SENSOR_SYSCALL].sent;
	dropped = k->dropped - s0.kinds[ARCHANGEL_SENSOR_SYSCALL].dropped;
	printf("BENCH case=%s calls=%ld children=%d ns_per_call=%.1f extra_ns=%.1f ratio=%.3f cpu_per_call=%.1f extra_cpu=%.1f cpu_ratio=%.3f engine_cpu_per_event=%.1f observed=%llu sent=%llu dropped=%llu delivered=%llu events_per_s=%.0f drop_pct=%.2f\n",
	       name, n, children, ns, ns - base, ns / base, cpu, cpu - cbase, cpu / cbase,
	       (messages & ~255ULL) > dr0 ?
	       (double)(drain_cpu_ns - d0) / (double)((messages & ~255ULL) - dr0) *
	       (double)(messages - m0) / (double)(received - r0 + (received == r0)) : 0.0,
	       (unsigned long long)obs,
	       (unsigned long long)sent, (unsigned long long)dropped,
	       (unsigned long long)(received - r0), (double)sent * 1e9 / (double)t0,
	       obs ? 100.0 * (double)dropped / (double)obs : 0.0);
	CHECK(obs == sent + dropped, "observed %llu != sent %llu + dropped %llu", (unsigned long long)obs,
	      (unsigned long long)sent, (unsigned long long)dropped);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	int execs = argc > 2 ? atoi(argv[2]) : 50;
	int cpus = sysconf(_SC_NPROCESSORS_ONLN);
	double off, filt, coff, cfilt, e_off, e_cache, e_rtt, m_off, m_cache, m_rtt;
	struct archangel_sensors_stats st;
	pthread_t th;

	t_init("bench_sensors");
	if (access(SU_DEVICE, F_OK))
		T_SKIPF("%s missing", SU_DEVICE);
	EXPECT_OK(au_channel_new(&ch, NULL));
	sfd = su_open();
	CHECK(sfd >= 0, "open %s", SU_DEVICE);
	EXPECT_OK(su_attach(sfd, ch.id));
	CHECK(!pthread_create(&th, NULL, drain, NULL), "pthread_create");

	getppid_ns(n / 10, 1, NULL);	/* warm up */
	off = getppid_ns(n, 1, &coff);
	printf("BENCH case=off calls=%ld ns_per_call=%.1f cpu_per_call=%.1f\n", n, off, coff);
	syscall_sensor(1, 0);
	filt = getppid_ns(n, 1, &cfilt);
	printf("BENCH case=filtered calls=%ld ns_per_call=%.1f extra_ns=%.1f ratio=%.3f cpu_per_call=%.1f extra_cpu=%.1f cpu_ratio=%.3f\n",
	       n, filt, filt - off, filt / off, cfilt, cfilt - coff, cfilt / coff);
	syscall_sensor(1, 1);
	report_stream("streamed", n, 1, off, coff);
	if (cpus > 1)
		report_stream("streamed2", n, 2, off, coff);
	/* Per-CPU batches: inline (1 KiB) and through the pool (4 KiB). */
	EXPECT_OK(su_detach(sfd));
	EXPECT_OK(su_attach_batch(sfd, ch.id, 1024, 0));
	syscall_sensor(1, 1);
	report_stream("batched1k", n, 1, off, coff);
	EXPECT_OK(su_detach(sfd));
	EXPECT_OK(su_attach_batch(sfd, ch.id, 4096, 0));
	syscall_sensor(1, 1);
	report_stream("batched4k", n, 1, off, coff);
	if (cpus > 1)
		report_stream("batched4k2", n, 2, off, coff);
	syscall_sensor(0, 0);
	EXPECT_OK(su_detach(sfd));
	EXPECT_OK(su_attach(sfd, ch.id));

	e_off = exec_ns(execs, &m_off);
	printf("BENCH case=exec_off execs=%d ns_per_exec=%.0f median_ns=%.0f\n", execs, e_off, m_off);
	answer = 2;	/* allow, cached for 10 minutes */
	EXPECT_OK(su_config(sfd, ARCHANGEL_SENSORS_ID_EXEC,
			    ARCHANGEL_SENSORS_F_ENABLED | ARCHANGEL_SENSORS_F_EXEC_NO_EXIT,
			    ARCHANGEL_POLICY_HOLD, ARCHANGEL_VERDICT_ALLOW, 5000, NULL));
	exec_ns(2, NULL);	/* the first asks; the rest hit the cache */
	e_cache = exec_ns(execs, &m_cache);
	printf("BENCH case=exec_cached_allow execs=%d ns_per_exec=%.0f extra_ns=%.0f ratio=%.3f median_ns=%.0f median_extra_ns=%.0f\n",
	       execs, e_cache, e_cache - e_off, e_cache / e_off, m_cache, m_cache - m_off);
	/* Round trips: the detach flushes the cache; hold, answered with ttl 0. */
	EXPECT_OK(su_detach(sfd));
	EXPECT_OK(su_attach(sfd, ch.id));
	answer = 1;
	EXPECT_OK(su_config(sfd, ARCHANGEL_SENSORS_ID_EXEC,
			    ARCHANGEL_SENSORS_F_ENABLED | ARCHANGEL_SENSORS_F_EXEC_NO_EXIT,
			    ARCHANGEL_POLICY_HOLD, ARCHANGEL_VERDICT_ALLOW, 5000, NULL));
	su_stats(sfd, &st);
	{
		__u64 c0 = st.rtt_count, t0 = st.rtt_ns_total, to0 = st.timeouts;

		e_rtt = exec_ns(execs, &m_rtt);
		su_stats(sfd, &st);
		printf("BENCH case=exec_round_trip execs=%d ns_per_exec=%.0f extra_ns=%.0f ratio=%.3f median_ns=%.0f median_extra_ns=%.0f verdicts=%llu rtt_mean_ns=%.0f rtt_max_ns=%llu timeouts=%llu\n",
		       execs, e_rtt, e_rtt - e_off, e_rtt / e_off, m_rtt, m_rtt - m_off,
		       (unsigned long long)(st.rtt_count - c0),
		       (double)(st.rtt_ns_total - t0) / (double)(st.rtt_count - c0 + (st.rtt_count == c0)),
		       (unsigned long long)st.rtt_ns_max, (unsigned long long)(st.timeouts - to0));
	}
	su_off(sfd, ARCHANGEL_SENSORS_ID_EXEC);
	stop = 1;
	pthread_join(th, NULL);
	close(sfd);
	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	return 0;
}
