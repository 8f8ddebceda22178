// SPDX-License-Identifier: GPL-2.0
/*
 * t_sensors_mem: the mem and syscall sensors.
 *   - mem: a child touches 64 fresh pages (MADV_NOHUGEPAGE: one fault a
 *     page), maps a page writable and executable and mprotects another to
 *     W+X: MEM_FAULTS summaries for it add up to at least 64 within a few
 *     intervals, and each W^X request is reported (nr, prot, address, length);
 *   - syscall: getppid in the bitmap, with sys_exit records: the enter
 *     record carries the arguments, the exit record the return value (the
 *     parent's pid); an excluded process (EXCLUDE_PID) makes no records;
 *   - batches: attached with batch_bytes, 500 getppid records arrive packed
 *     several per message, none lost, the last ones within batch_us of a
 *     quiet CPU (the module's thread sends them).
 */
#include "sensors_user.h"
#include <sys/syscall.h>

#define PAGES	64

static void mem_child(int wait_fd)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *p, *q, c;
	int i;

	if (read(wait_fd, &c, 1) != 1)
		_exit(2);
	p = mmap(NULL, PAGES * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(3);
	madvise(p, PAGES * pg, MADV_NOHUGEPAGE);
	for (i = 0; i < PAGES; i++)
		p[i * pg] = 1;
	q = mmap(NULL, pg, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (q == MAP_FAILED)
		_exit(4);
	if (mprotect(p, pg, PROT_READ | PROT_WRITE | PROT_EXEC))
		_exit(5);
	_exit(0);
}

static void test_mem(int sfd, struct au_channel *ch)
{
	int go[2], status, wx_mmap = 0, wx_mprotect = 0;
	struct archangel_sensors_config c;
	__u64 faults = 0, deadline;
	struct su_rec r;
	pid_t pid;

	memset(&c, 0, sizeof(c));
	c.sensor = ARCHANGEL_SENSORS_ID_MEM;
	c.flags = ARCHANGEL_SENSORS_F_ENABLED;
	c.interval_ms = 50;
	EXPECT_OK(su_ioctl(sfd, ARCHANGEL_SENSORS_IOC_CONFIGURE, &c));
	CHECK(!pipe(go), "pipe");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid)
		mem_child(go[0]);
	CHECK(write(go[1], "g", 1) == 1, "go");
	status = su_reap(pid, 10000);
	CHECK(status == 0, "mem child: status %#x", status);
	for (deadline = au_now_ns() + 5000000000ULL; au_now_ns() < deadline;) {
		if (!su_next(ch, &r, 100))
			continue;
		if (r.ev->tgid != (__u32)pid)
			continue;
		if (r.ev->kind == ARCHANGEL_SENSOR_MEM_FAULTS) {
			const struct archangel_sensor_mem_faults *f = (const void *)r.ev;

			CHECK(r.type == ARCHANGEL_MSG_MEMORY_EVENT && r.ev_len == sizeof(*f), "MEM_FAULTS");
			faults += f->faults;
		} else if (r.ev->kind == ARCHANGEL_SENSOR_MEM_WX) {
			const struct archangel_sensor_mem_wx *w = (const void *)r.ev;

			CHECK(r.ev_len == sizeof(*w) && w->prot == (PROT_READ | PROT_WRITE | PROT_EXEC) &&
			      w->length, "MEM_WX nr %u prot %#x length %llu", w->nr, w->prot,
			      (unsigned long long)w->length);
			if (w->nr == SYS_mmap) {
				CHECK(w->map_flags == (MAP_PRIVATE | MAP_ANONYMOUS), "map_flags %#llx",
				      (unsigned long long)w->map_flags);
				wx_mmap++;
			} else if (w->nr == SYS_mprotect) {
				CHECK(w->address && !w->map_flags, "mprotect record");
				wx_mprotect++;
			}
		}
		if (faults >= PAGES && wx_mmap && wx_mprotect)
			break;
	}
	CHECK(wx_mmap == 1 && wx_mprotect == 1, "W^X records: mmap %d mprotect %d", wx_mmap, wx_mprotect);
	CHECK(faults >= PAGES, "MEM_FAULTS of the child add up to %llu, want >= %d",
	      (unsigned long long)faults, PAGES);
	T_LOG("mem: %llu faults summarized, W^X mmap and mprotect reported", (unsigned long long)faults);
	EXPECT_OK(su_off(sfd, ARCHANGEL_SENSORS_ID_MEM));
	close(go[0]);
	close(go[1]);
}

/* Records of the syscall sensor from child @pid within @ms: enter and exit counts. */
static void getppid_records(struct au_channel *ch, pid_t pid, int ms, int *enter, int *exit_)
{
	__u64 deadline = au_now_ns() + (__u64)ms * 1000000ULL;
	struct su_rec r;

	*enter = *exit_ = 0;
	while (au_now_ns() < deadline) {
		const struct archangel_sensor_syscall *s;

		if (!su_next(ch, &r, 50) || r.ev->kind != ARCHANGEL_SENSOR_SYSCALL || r.ev->tgid != (__u32)pid)
			continue;
		s = (const void *)r.ev;
		CHECK(s->nr == SYS_getppid && r.ev_len == sizeof(*s), "syscall %u", s->nr);
		if (s->ev.flags & ARCHANGEL_SYSCALL_F_EXIT) {
			CHECK(s->ret == getpid(), "getppid returned %lld, want %d", (long long)s->ret, getpid());
			(*exit_)++;
		} else {
			CHECK(!s->ret, "enter record with ret %lld", (long long)s->ret);
			(*enter)++;
		}
	}
}

static pid_t getppid_child(int wait_fd)
{
	pid_t pid = fork();
	char c;

	CHECK(pid >= 0, "fork");
	if (!pid) {
		if (read(wait_fd, &c, 1) != 1)
			_exit(2);
		syscall(SYS_getppid);
		_exit(0);
	}
	return pid;
}

static void test_syscall(int sfd, struct au_channel *ch)
{
	__u64 bits[ARCHANGEL_SENSORS_SYSCALL_BITS / 64] = { 0 };
	struct archangel_sensors_exclude x = { 0 };
	int go[2], enter, exit_;
	pid_t pid;

	su_bit(bits, SYS_getppid);
	EXPECT_OK(su_config(sfd, ARCHANGEL_SENSORS_ID_SYSCALL,
			    ARCHANGEL_SENSORS_F_ENABLED | ARCHANGEL_SENSORS_F_SYSCALL_EXIT,
			    ARCHANGEL_POLICY_OBSERVE, 0, 0, bits));
	CHECK(!pipe(go), "pipe");
	pid = getppid_child(go[0]);
	CHECK(write(go[1], "g", 1) == 1, "go");
	CHECK(su_reap(pid, 5000) == 0, "getppid child");
	getppid_records(ch, pid, 1000, &enter, &exit_);
	CHECK(enter == 1 && exit_ == 1, "getppid: %d enter, %d exit records", enter, exit_);

	/* Excluded: nothing from it. */
	pid = getppid_child(go[0]);
	x.pid = pid;
	EXPECT_OK(su_ioctl(sfd, ARCHANGEL_SENSORS_IOC_EXCLUDE_PID, &x));
	CHECK(write(go[1], "g", 1) == 1, "go");
	CHECK(su_reap(pid, 5000) == 0, "getppid child");
	getppid_records(ch, pid, 500, &enter, &exit_);
	CHECK(!enter && !exit_, "excluded pid %d: %d enter, %d exit records", pid, enter, exit_);
	x.flags = ARCHANGEL_SENSORS_EXCLUDE_REMOVE;
	EXPECT_OK(su_ioctl(sfd, ARCHANGEL_SENSORS_IOC_EXCLUDE_PID, &x));
	EXPECT_ERR(su_ioctl(sfd, ARCHANGEL_SENSORS_IOC_EXCLUDE_PID, &x), -ENOENT);
	EXPECT_OK(su_off(sfd, ARCHANGEL_SENSORS_ID_SYSCALL));
	T_LOG("syscall: enter and exit records, exclusion honoured");
	close(go[0]);
	close(go[1]);
}

static void test_batches(int sfd, struct au_channel *ch)
{
	__u64 bits[ARCHANGEL_SENSORS_SYSCALL_BITS / 64] = { 0 };
	struct archangel_sensors_stats s0, s1;
	const struct archangel_sensors_kind_stats *k0 = &s0.kinds[ARCHANGEL_SENSOR_SYSCALL];
	const struct archangel_sensors_kind_stats *k = &s1.kinds[ARCHANGEL_SENSOR_SYSCALL];
	unsigned int n, records = 0, messages = 0, most = 0;
	__u64 deadline;
	struct su_rec r;
	int go[2];
	pid_t pid;

	EXPECT_OK(su_detach(sfd));
	EXPECT_ERR(su_attach_batch(sfd, ch->id, 100, 0), -EINVAL);
	EXPECT_ERR(su_attach_batch(sfd, ch->id, 0, 500), -EINVAL);
	EXPECT_OK(su_attach_batch(sfd, ch->id, 1024, 20000));
	su_bit(bits, SYS_getppid);
	EXPECT_OK(su_config(sfd, ARCHANGEL_SENSORS_ID_SYSCALL, ARCHANGEL_SENSORS_F_ENABLED,
			    ARCHANGEL_POLICY_OBSERVE, 0, 0, bits));
	su_stats(sfd, &s0);
	CHECK(!pipe(go), "pipe");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid) {
		char c;
		int i;

		if (read(go[0], &c, 1) != 1)
			_exit(2);
		for (i = 0; i < 500; i++)
			syscall(SYS_getppid);
		_exit(0);
	}
	CHECK(write(go[1], "g", 1) == 1, "go");
	CHECK(su_reap(pid, 10000) == 0, "getppid child");
	for (deadline = au_now_ns() + 5000000000ULL; au_now_ns() < deadline && records < 500;) {
		if (!su_next(ch, &r, 100) || r.ev->kind != ARCHANGEL_SENSOR_SYSCALL)
			continue;
		CHECK(r.type == ARCHANGEL_MSG_SYSCALL_EVENT, "type %u", r.type);
		n = su_records(&r);
		CHECK(n <= 1024 / sizeof(struct archangel_sensor_syscall), "%u records in a batch", n);
		records += n;
		messages++;
		most = n > most ? n : most;
	}
	su_stats(sfd, &s1);
	CHECK(records == 500, "%u of 500 records arrived", records);
	CHECK(most > 1 && messages < records, "%u records in %u messages", records, messages);
	CHECK(k->observed - k0->observed == 500 && k->sent - k0->sent == 500 &&
	      k->dropped == k0->dropped, "observed %llu sent %llu dropped %llu",
	      (unsigned long long)(k->observed - k0->observed),
	      (unsigned long long)(k->sent - k0->sent),
	      (unsigned long long)(k->dropped - k0->dropped));
	CHECK(s1.batches > s0.batches, "batches %llu", (unsigned long long)s1.batches);
	T_LOG("batches: %u records in %u messages (at most %u in one)", records, messages, most);
	EXPECT_OK(su_off(sfd, ARCHANGEL_SENSORS_ID_SYSCALL));
	close(go[0]);
	close(go[1]);
}

int main(void)
{
	struct au_channel ch;
	int sfd;

	t_init("t_sensors_mem");
	if (access(SU_DEVICE, F_OK))
		T_SKIPF("%s missing", SU_DEVICE);
	EXPECT_OK(au_channel_new(&ch, NULL));
	sfd = su_open();
	CHECK(sfd >= 0, "open");
	EXPECT_OK(su_attach(sfd, ch.id));
	test_mem(sfd, &ch);
	test_syscall(sfd, &ch);
	test_batches(sfd, &ch);
	close(sfd);
	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	return T_PASS;
}
