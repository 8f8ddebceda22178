// SPDX-License-Identifier: GPL-2.0
/*
 * t_sensors: archangel_sensors.ko's control interface and verdict loop on
 * execs, this program playing the engine on a channel of its own:
 *   - ioctl errors (-ENOTCONN, -ENOENT, -EBUSY, -EINVAL), GET_CONFIG, /proc;
 *   - allow-and-ask: the EXEC request arrives, a deny with a TTL is cached,
 *     the next exec of the same path dies by SIGKILL with no round trip;
 *   - hold: the task is stopped until the verdict, then runs (allow) or
 *     dies (kill); a deadline applies the default (timeout counted);
 *   - deny-and-ask: killed at once, an allow cached lets the next one run;
 *   - closing the engine's file resolves a held exec at once;
 *   - drops on a tiny ring: counted, observed = sent + dropped, every drop
 *     announced by LOST records once there is room again.
 * The children exec busybox applets by their /bin names.
 */
#include "sensors_user.h"
#include <sys/syscall.h>

static char *const argv_true[] = { "/bin/true", NULL };
static char *const argv_sh7[] = { "/bin/sh", "-c", "exit 7", NULL };
static char *const argv_false[] = { "/bin/false", NULL };

static void exec_config(int sfd, __u8 policy, __u8 def, __u32 deadline_ms)
{
	EXPECT_OK(su_config(sfd, ARCHANGEL_SENSORS_ID_EXEC,
			    ARCHANGEL_SENSORS_F_ENABLED | ARCHANGEL_SENSORS_F_EXEC_NO_EXIT,
			    policy, def, deadline_ms, NULL));
}

/* The AI_REQUEST about child @pid's exec of @path. */
static void wait_request(struct au_channel *ch, struct su_rec *r, pid_t pid, const char *path)
{
	const struct archangel_sensor_exec *ex;

	for (;;) {
		CHECK(su_wait(ch, r, ARCHANGEL_SENSOR_EXEC, pid, 5000), "no EXEC record of pid %d", pid);
		if (r->type == ARCHANGEL_MSG_AI_REQUEST)
			break;
		T_LOG("EXEC of %d as an event, not a request (verdict %u)", pid,
		      ((const struct archangel_sensor_exec *)r->ev)->verdict);
	}
	ex = (const void *)r->ev;
	CHECK(r->ev_len == sizeof(*ex), "exec record of %u bytes", r->ev_len);
	CHECK(!strcmp(ex->filename, path) && ex->filename_len == strlen(path),
	      "filename '%s' (%u), want '%s'", ex->filename, ex->filename_len, path);
	CHECK(ex->ppid == (__u32)getpid(), "ppid %u, want %d", ex->ppid, getpid());
	CHECK(ex->ev.uid == getuid(), "uid %u", ex->ev.uid);
	CHECK(r->req->default_verdict <= ARCHANGEL_VERDICT_KILL, "default %u", r->req->default_verdict);
}

static void test_errors(int sfd, __u32 id)
{
	struct archangel_sensors_config c;
	int sfd2;
	char *text;

	EXPECT_ERR(su_config(sfd, ARCHANGEL_SENSORS_ID_EXEC, ARCHANGEL_SENSORS_F_ENABLED,
			     ARCHANGEL_POLICY_OBSERVE, 0, 0, NULL), -ENOTCONN);
	EXPECT_ERR(su_attach(sfd, 100000), -ENOENT);
	EXPECT_ERR(su_detach(sfd), -ENOTCONN);
	EXPECT_OK(su_attach(sfd, id));
	sfd2 = su_open();
	CHECK(sfd2 >= 0, "second open");
	EXPECT_ERR(su_attach(sfd2, id), -EBUSY);
	close(sfd2);
	EXPECT_ERR(su_config(sfd, ARCHANGEL_SENSORS_COUNT, 0, 0, 0, 0, NULL), -EINVAL);
	EXPECT_ERR(su_config(sfd, ARCHANGEL_SENSORS_ID_EXEC, 1U << 31, 0, 0, 0, NULL), -EINVAL);
	EXPECT_ERR(su_config(sfd, ARCHANGEL_SENSORS_ID_EXEC, 0, ARCHANGEL_POLICY_MAX + 1, 0, 0, NULL), -EINVAL);
	EXPECT_ERR(su_config(sfd, ARCHANGEL_SENSORS_ID_SYSCALL, 0, ARCHANGEL_POLICY_HOLD, 0, 0, NULL), -EINVAL);
	EXPECT_ERR(su_config(sfd, ARCHANGEL_SENSORS_ID_EXEC, 0, 0, 3, 0, NULL), -EINVAL);
	EXPECT_ERR(su_config(sfd, ARCHANGEL_SENSORS_ID_EXEC, 0, 0, 0, 60001, NULL), -EINVAL);
	EXPECT_ERR(su_config(sfd, ARCHANGEL_SENSORS_ID_NET, ARCHANGEL_SENSORS_F_SYSCALL_EXIT, 0, 0, 0, NULL),
		   -EINVAL);
	memset(&c, 0, sizeof(c));
	c.sensor = ARCHANGEL_SENSORS_ID_MEM;
	c.reserved[2] = 1;
	EXPECT_ERR(su_ioctl(sfd, ARCHANGEL_SENSORS_IOC_CONFIGURE, &c), -EINVAL);

	EXPECT_OK(su_config(sfd, ARCHANGEL_SENSORS_ID_NET, 0, ARCHANGEL_POLICY_DENY_ASK,
			    ARCHANGEL_VERDICT_DENY, 250, NULL));
	memset(&c, 0, sizeof(c));
	c.sensor = ARCHANGEL_SENSORS_ID_NET;
	EXPECT_OK(su_ioctl(sfd, ARCHANGEL_SENSORS_IOC_GET_CONFIG, &c));
	CHECK(c.policy == ARCHANGEL_POLICY_DENY_ASK && c.default_verdict == ARCHANGEL_VERDICT_DENY &&
	      c.deadline_ms == 250 && c.interval_ms == ARCHANGEL_SENSORS_INTERVAL_DEFAULT_MS && !c.flags,
	      "GET_CONFIG: policy %u default %u deadline %u interval %u flags %#x", c.policy,
	      c.default_verdict, c.deadline_ms, c.interval_ms, c.flags);
	EXPECT_OK(su_off(sfd, ARCHANGEL_SENSORS_ID_NET));

	text = au_read_file(SU_PROC);
	CHECK(text, "cannot read %s", SU_PROC);
	CHECK(!strncmp(text, "archangel-sensors 1\nchannel ", 28), "proc starts: %.60s", text);
	CHECK(strstr(text, "sensor exec state=off") && strstr(text, "sensor net state=off policy=observe"),
	      "proc sensor lines:\n%s", text);
	CHECK(strstr(text, "\nverdict requests=") && strstr(text, "\ncache entries="), "proc:\n%s", text);
	free(text);
}

static void test_allow_ask_and_cache(int sfd, struct au_channel *ch)
{
	struct archangel_sensors_stats s0, s1;
	const struct archangel_sensor_exec *ex;
	struct su_rec r;
	pid_t pid;
	int status;

	exec_config(sfd, ARCHANGEL_POLICY_ALLOW_ASK, ARCHANGEL_VERDICT_ALLOW, 5000);
	pid = su_spawn(argv_true);
	wait_request(ch, &r, pid, "/bin/true");
	su_respond(ch, r.req->id, ARCHANGEL_VERDICT_DENY, 60000);
	status = su_reap(pid, 5000);
	CHECK(status != -1, "first /bin/true still running");
	T_LOG("allow-and-ask: the first /bin/true %s", WIFEXITED(status) ? "ran to its end" :
	      "was killed by the late verdict");
	/* The verdict is applied by the kernel's receiver: wait for it. */
	for (int i = 0; i < 200; i++) {
		su_stats(sfd, &s0);
		if (s0.responses >= 1 && !s0.pending)
			break;
		usleep(10000);
	}
	CHECK(s0.responses >= 1 && s0.cache_inserts >= 1, "responses %llu cache_inserts %llu",
	      (unsigned long long)s0.responses, (unsigned long long)s0.cache_inserts);

	pid = su_spawn(argv_true);
	status = su_reap(pid, 5000);
	CHECK(status != -1, "second /bin/true still running");
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "cached deny: the second /bin/true ended with status %#x, not SIGKILL", status);
	CHECK(su_wait(ch, &r, ARCHANGEL_SENSOR_EXEC, pid, 3000), "no EXEC record of the denied exec");
	ex = (const void *)r.ev;
	CHECK(r.type == ARCHANGEL_MSG_SYSCALL_EVENT, "a cached case sent message type %u", r.type);
	CHECK(ex->verdict == ARCHANGEL_VERDICT_DENY && (ex->ev.flags & ARCHANGEL_EXEC_F_CACHED),
	      "verdict %u flags %#x", ex->verdict, ex->ev.flags);
	su_stats(sfd, &s1);
	CHECK(s1.requests == s0.requests, "a cached verdict made a request");
	CHECK(s1.cache_hits > s0.cache_hits && s1.exec_killed > s0.exec_killed,
	      "cache_hits %llu -> %llu, exec_killed %llu -> %llu",
	      (unsigned long long)s0.cache_hits, (unsigned long long)s1.cache_hits,
	      (unsigned long long)s0.exec_killed, (unsigned long long)s1.exec_killed);
	T_LOG("cached deny: SIGKILL before the image ran, no round trip");
}

static void test_hold(int sfd, struct au_channel *ch)
{
	struct archangel_sensors_stats s0, s1;
	struct su_rec r;
	pid_t pid;
	int status;

	exec_config(sfd, ARCHANGEL_POLICY_HOLD, ARCHANGEL_VERDICT_DENY, 10000);
	su_stats(sfd, &s0);
	pid = su_spawn(argv_sh7);
	wait_request(ch, &r, pid, "/bin/sh");
	CHECK(((const struct archangel_sensor_exec *)r.ev)->ev.flags & ARCHANGEL_EXEC_F_HELD, "not HELD");
	CHECK(su_wait_state(pid, 'T', 2000), "held task is in state %c, not stopped", su_task_state(pid));
	CHECK(su_reap(pid, 200) == -1, "held task ended before its verdict");
	su_respond(ch, r.req->id, ARCHANGEL_VERDICT_ALLOW, 0);
	status = su_reap(pid, 5000);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7, "allowed held sh: status %#x", status);

	pid = su_spawn(argv_sh7);
	wait_request(ch, &r, pid, "/bin/sh");
	CHECK(su_wait_state(pid, 'T', 2000), "held task is in state %c", su_task_state(pid));
	su_respond(ch, r.req->id, ARCHANGEL_VERDICT_KILL, 0);
	status = su_reap(pid, 5000);
	CHECK(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "killed held sh: status %#x", status);
	su_stats(sfd, &s1);
	CHECK(s1.exec_stopped >= s0.exec_stopped + 2 && s1.exec_continued >= s0.exec_continued + 1,
	      "stopped %llu continued %llu", (unsigned long long)s1.exec_stopped,
	      (unsigned long long)s1.exec_continued);
	CHECK(s1.rtt_count >= s0.rtt_count + 2 && s1.rtt_ns_max, "rtt_count %llu",
	      (unsigned long long)s1.rtt_count);
	T_LOG("hold: stopped until the verdict; round trips so far %llu, mean %llu ns, max %llu ns",
	      (unsigned long long)s1.rtt_count,
	      (unsigned long long)(s1.rtt_ns_total / (s1.rtt_count ? s1.rtt_count : 1)),
	      (unsigned long long)s1.rtt_ns_max);
}

static void test_deadline(int sfd, struct au_channel *ch)
{
	struct archangel_sensors_stats s0, s1;
	struct su_rec r;
	__u64 t0, ms;
	pid_t pid;
	int status;

	/* Nobody answers: the default applies at the deadline. */
	exec_config(sfd, ARCHANGEL_POLICY_HOLD, ARCHANGEL_VERDICT_DENY, 300);
	su_stats(sfd, &s0);
	t0 = au_now_ns();
	pid = su_spawn(argv_sh7);
	wait_request(ch, &r, pid, "/bin/sh");
	status = su_reap(pid, 5000);
	ms = (au_now_ns() - t0) / 1000000;
	CHECK(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "unanswered, default deny: status %#x", status);
	CHECK(ms >= 250, "killed after %llu ms, before the 300 ms deadline", (unsigned long long)ms);
	T_LOG("unanswered hold, default deny: killed after %llu ms (deadline 300)", (unsigned long long)ms);

	exec_config(sfd, ARCHANGEL_POLICY_HOLD, ARCHANGEL_VERDICT_ALLOW, 300);
	pid = su_spawn(argv_sh7);
	wait_request(ch, &r, pid, "/bin/sh");
	status = su_reap(pid, 5000);
	CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 7,
	      "unanswered, default allow: status %#x", status);
	/* A response after the deadline finds nothing. */
	su_respond(ch, r.req->id, ARCHANGEL_VERDICT_KILL, 0);
	for (int i = 0; i < 200; i++) {
		su_stats(sfd, &s1);
		if (s1.responses_late > s0.responses_late)
			break;
		usleep(10000);
	}
	CHECK(s1.timeouts >= s0.timeouts + 2, "timeouts %llu -> %llu", (unsigned long long)s0.timeouts,
	      (unsigned long long)s1.timeouts);
	CHECK(s1.responses_late > s0.responses_late, "a late response was not counted");
}

static void test_deny_ask(int sfd, struct au_channel *ch)
{
	struct su_rec r;
	pid_t pid;
	int status;

	exec_config(sfd, ARCHANGEL_POLICY_DENY_ASK, ARCHANGEL_VERDICT_DENY, 5000);
	pid = su_spawn(argv_sh7);
	wait_request(ch, &r, pid, "/bin/sh");
	status = su_reap(pid, 5000);
	CHECK(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "deny-and-ask: status %#x", status);
	su_respond(ch, r.req->id, ARCHANGEL_VERDICT_ALLOW, 60000);
	usleep(300000);
	pid = su_spawn(argv_sh7);
	status = su_reap(pid, 5000);
	CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 7,
	      "deny-and-ask, then a cached allow: status %#x", status);
}

/* Closing the engine's file releases what it held, at once. */
static int test_detach(int sfd, struct au_channel *ch)
{
	struct archangel_sensors_stats st;
	struct su_rec r;
	__u64 t0, ms;
	pid_t pid;
	int status;

	exec_config(sfd, ARCHANGEL_POLICY_HOLD, ARCHANGEL_VERDICT_ALLOW, 30000);
	pid = su_spawn(argv_false);
	wait_request(ch, &r, pid, "/bin/false");
	CHECK(su_wait_state(pid, 'T', 2000), "held task is in state %c", su_task_state(pid));
	t0 = au_now_ns();
	close(sfd);
	status = su_reap(pid, 5000);
	ms = (au_now_ns() - t0) / 1000000;
	CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1,
	      "held /bin/false after the engine's close: status %#x", status);
	CHECK(ms < 2000, "released %llu ms after the close", (unsigned long long)ms);
	sfd = su_open();
	CHECK(sfd >= 0, "reopen");
	su_stats(sfd, &st);
	CHECK(st.channel_id == ARCHANGEL_SENSORS_NO_CHANNEL && !st.pending && !st.enabled && !st.engine_pid,
	      "after close: channel %u pending %u enabled %#x engine %u", st.channel_id, st.pending,
	      st.enabled, st.engine_pid);
	CHECK(st.detach_resolved >= 1, "detach_resolved %llu", (unsigned long long)st.detach_resolved);
	T_LOG("engine gone: the held exec released after %llu ms", (unsigned long long)ms);
	return sfd;
}

/* Drops on a tiny ring: counted, and announced by LOST records. */
static void test_drops(int sfd)
{
	struct archangel_create_req req = {
		.channel_id = ARCHANGEL_CHANNEL_ANY,
		.normal_ring_bytes = 4096,
		.express_ring_bytes = 4096,
		.pool_threshold = 512,	/* at most a quarter of the smaller ring */
	};
	struct archangel_sensors_stats st, st0;
	const struct archangel_sensors_kind_stats *k = &st.kinds[ARCHANGEL_SENSOR_SYSCALL];
	const struct archangel_sensors_kind_stats *k0 = &st0.kinds[ARCHANGEL_SENSOR_SYSCALL];
	__u64 observed, sent, dropped;
	__u64 bits[ARCHANGEL_SENSORS_SYSCALL_BITS / 64] = { 0 };
	__u64 got = 0, lost = 0, lost_records = 0;
	struct au_channel small;
	struct su_rec r;
	__u64 deadline;
	pid_t pid;
	int i, status;

	EXPECT_OK(au_channel_new(&small, &req));
	EXPECT_OK(su_attach(sfd, small.id));
	su_bit(bits, SYS_getppid);
	EXPECT_OK(su_config(sfd, ARCHANGEL_SENSORS_ID_SYSCALL, ARCHANGEL_SENSORS_F_ENABLED,
			    ARCHANGEL_POLICY_OBSERVE, 0, 0, bits));
	su_stats(sfd, &st0);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid) {
		for (i = 0; i < 2000; i++)
			syscall(SYS_getppid);
		_exit(0);
	}
	status = su_reap(pid, 20000);
	CHECK(status == 0, "getppid child: status %#x", status);
	su_stats(sfd, &st);
	observed = k->observed - k0->observed;
	sent = k->sent - k0->sent;
	dropped = k->dropped - k0->dropped;
	CHECK(observed == 2000 && observed == sent + dropped && dropped > 0,
	      "syscall records: observed %llu sent %llu dropped %llu", (unsigned long long)observed,
	      (unsigned long long)sent, (unsigned long long)dropped);
	T_LOG("tiny ring: %llu observed, %llu sent, %llu dropped", (unsigned long long)observed,
	      (unsigned long long)sent, (unsigned long long)dropped);
	/* Drain: every sent record, then LOST records for every drop. */
	for (deadline = au_now_ns() + 10000000000ULL; au_now_ns() < deadline;) {
		if (su_next(&small, &r, 200)) {
			if (r.ev->kind == ARCHANGEL_SENSOR_SYSCALL) {
				got++;
			} else if (r.ev->kind == ARCHANGEL_SENSOR_LOST) {
				const struct archangel_sensor_lost *l = (const void *)r.ev;

				CHECK(r.type == ARCHANGEL_MSG_STATS && r.ev_len == sizeof(*l), "LOST record");
				if (l->sensor == ARCHANGEL_SENSOR_SYSCALL)
					lost += l->count;
				lost_records++;
			}
			continue;
		}
		if (got == sent && lost == dropped)
			break;
	}
	su_stats(sfd, &st);
	CHECK(got == sent, "received %llu syscall records, %llu sent", (unsigned long long)got,
	      (unsigned long long)sent);
	CHECK(lost == dropped && k->lost_reported - k0->lost_reported == dropped,
	      "LOST records announced %llu, dropped %llu, lost_reported %llu", (unsigned long long)lost,
	      (unsigned long long)dropped, (unsigned long long)(k->lost_reported - k0->lost_reported));
	T_LOG("every drop announced: %llu LOST records for %llu events", (unsigned long long)lost_records,
	      (unsigned long long)lost);
	EXPECT_OK(su_off(sfd, ARCHANGEL_SENSORS_ID_SYSCALL));
	EXPECT_OK(su_detach(sfd));
	EXPECT_OK(au_destroy(small.fd, small.id));
	au_detach(&small, 1);
}

int main(void)
{
	struct au_channel ch;
	int sfd;

	t_init("t_sensors");
	if (access(SU_DEVICE, F_OK))
		T_SKIPF("%s missing: archangel_sensors.ko not loaded", SU_DEVICE);
	EXPECT_OK(au_channel_new(&ch, NULL));
	sfd = su_open();
	CHECK(sfd >= 0, "open %s: %s", SU_DEVICE, strerror(-sfd));

	test_errors(sfd, ch.id);
	test_allow_ask_and_cache(sfd, &ch);
	test_hold(sfd, &ch);
	test_deadline(sfd, &ch);
	test_deny_ask(sfd, &ch);
	sfd = test_detach(sfd, &ch);
	test_drops(sfd);

	close(sfd);
	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	T_LOG("ok");
	return T_PASS;
}
