// SPDX-License-Identifier: GPL-2.0
/*
 * t_sensors_flood [N]: every sensor on (exec, every system call with its
 * exit, every packet, page faults and W^X), a child makes N getppid calls
 * (1,000,000 by default) while this engine does not read, so the ring fills
 * and records are dropped. Then it drains: per record kind, the records
 * received equal those sent, the LOST records announce exactly those
 * dropped, observed = sent + dropped, and nothing hangs (the VM run checks
 * the console for warnings).
 */
#include "sensors_user.h"
#include <sys/syscall.h>

static void all_on(int sfd)
{
	__u64 bits[ARCHANGEL_SENSORS_SYSCALL_BITS / 64];
	struct archangel_sensors_config c;

	memset(bits, 0xff, sizeof(bits));
	EXPECT_OK(su_config(sfd, ARCHANGEL_SENSORS_ID_EXEC, ARCHANGEL_SENSORS_F_ENABLED,
			    ARCHANGEL_POLICY_OBSERVE, ARCHANGEL_VERDICT_ALLOW, 0, NULL));
	EXPECT_OK(su_config(sfd, ARCHANGEL_SENSORS_ID_SYSCALL,
			    ARCHANGEL_SENSORS_F_ENABLED | ARCHANGEL_SENSORS_F_SYSCALL_EXIT,
			    ARCHANGEL_POLICY_OBSERVE, 0, 0, bits));
	EXPECT_OK(su_config(sfd, ARCHANGEL_SENSORS_ID_NET,
			    ARCHANGEL_SENSORS_F_ENABLED | ARCHANGEL_SENSORS_F_NET_ALL,
			    ARCHANGEL_POLICY_OBSERVE, 0, 0, NULL));
	memset(&c, 0, sizeof(c));
	c.sensor = ARCHANGEL_SENSORS_ID_MEM;
	c.flags = ARCHANGEL_SENSORS_F_ENABLED;
	c.interval_ms = 100;
	EXPECT_OK(su_ioctl(sfd, ARCHANGEL_SENSORS_IOC_CONFIGURE, &c));
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	__u64 got[8] = { 0 }, lost[8] = { 0 }, deadline, t0;
	struct archangel_sensors_stats s0, st;
	struct au_channel ch;
	struct su_rec r;
	int sfd, k, done, status;
	pid_t pid;

	t_init("t_sensors_flood");
	if (access(SU_DEVICE, F_OK))
		T_SKIPF("%s missing", SU_DEVICE);
	EXPECT_OK(au_channel_new(&ch, NULL));
	sfd = su_open();
	CHECK(sfd >= 0, "open");
	EXPECT_OK(su_attach(sfd, ch.id));
	su_stats(sfd, &s0);
	all_on(sfd);

	t0 = au_now_ns();
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid) {
		long i;

		for (i = 0; i < n; i++)
			syscall(SYS_getppid);
		_exit(0);
	}
	status = su_reap(pid, 100000);
	CHECK(status == 0, "flood child: status %#x", status);
	T_LOG("%ld getppid with every sensor on: %.1f s", n, (au_now_ns() - t0) / 1e9);

	/* Switch the sources off, so that the counts stop moving; then drain. */
	EXPECT_OK(su_off(sfd, ARCHANGEL_SENSORS_ID_SYSCALL));
	EXPECT_OK(su_off(sfd, ARCHANGEL_SENSORS_ID_NET));
	EXPECT_OK(su_off(sfd, ARCHANGEL_SENSORS_ID_EXEC));
	EXPECT_OK(su_off(sfd, ARCHANGEL_SENSORS_ID_MEM));
	for (deadline = au_now_ns() + 30000000000ULL, done = 0; !done && au_now_ns() < deadline;) {
		if (su_next(&ch, &r, 200)) {
			if (r.ev->kind == ARCHANGEL_SENSOR_LOST) {
				const struct archangel_sensor_lost *l = (const void *)r.ev;

				CHECK(l->sensor > 0 && l->sensor < 8, "LOST for kind %u", l->sensor);
				lost[l->sensor] += l->count;
			} else if (r.ev->kind > 0 && r.ev->kind < 8) {
				got[r.ev->kind] += su_records(&r);
			}
			continue;
		}
		su_stats(sfd, &st);
		done = 1;
		for (k = 1; k < ARCHANGEL_SENSOR_LOST; k++)
			if (got[k] != st.kinds[k].sent - s0.kinds[k].sent ||
			    lost[k] != st.kinds[k].dropped - s0.kinds[k].dropped)
				done = 0;
	}
	su_stats(sfd, &st);
	for (k = 1; k < ARCHANGEL_SENSOR_LOST; k++) {
		const struct archangel_sensors_kind_stats *a = &s0.kinds[k], *b = &st.kinds[k];
		__u64 obs = b->observed - a->observed, sent = b->sent - a->sent;
		__u64 dropped = b->dropped - a->dropped;

		T_LOG("kind %d: observed %llu sent %llu received %llu dropped %llu announced %llu", k,
		      (unsigned long long)obs, (unsigned long long)sent, (unsigned long long)got[k],
		      (unsigned long long)dropped, (unsigned long long)lost[k]);
		CHECK(obs == sent + dropped, "kind %d: observed != sent + dropped", k);
		CHECK(got[k] == sent, "kind %d: received %llu of %llu sent", k,
		      (unsigned long long)got[k], (unsigned long long)sent);
		CHECK(lost[k] == dropped && b->lost_reported - a->lost_reported == dropped,
		      "kind %d: LOST announced %llu of %llu dropped", k, (unsigned long long)lost[k],
		      (unsigned long long)dropped);
	}
	CHECK(st.kinds[ARCHANGEL_SENSOR_SYSCALL].observed - s0.kinds[ARCHANGEL_SENSOR_SYSCALL].observed >=
	      2 * (__u64)n, "fewer syscall records than 2 per getppid");
	CHECK(st.kinds[ARCHANGEL_SENSOR_SYSCALL].dropped > s0.kinds[ARCHANGEL_SENSOR_SYSCALL].dropped,
	      "a flood with nobody reading dropped nothing");
	close(sfd);
	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	return T_PASS;
}
