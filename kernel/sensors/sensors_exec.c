// SPDX-License-Identifier: GPL-2.0
/*
 * The exec sensor: sched_process_exec and sched_process_exit.
 *
 * The exec probe runs in the task that exec'd, after its new image is
 * loaded and before it returns to user mode. A SIGKILL sent here is acted
 * on at that return, so a denied image never runs a user instruction; a
 * SIGSTOP (hold) stops it there until the verdict sends SIGCONT or
 * SIGKILL. The cache key is the path the exec was asked for
 * (bprm->filename, as the kernel's own sched_process_exec event reports
 * it), hashed.
 */
#include <linux/binfmts.h>
#include <linux/pid.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/string.h>
#include "sensors.h"

struct sn_exec_msg {
	struct archangel_sensor_request req;
	struct archangel_sensor_exec ex;
} __packed;

static void sn_exec_fill(struct archangel_sensor_exec *ex,
			 struct task_struct *p, const struct linux_binprm *bprm)
{
	ssize_t n;

	memset(ex, 0, sizeof(*ex));
	sn_fill_task(&ex->ev, ARCHANGEL_SENSOR_EXEC, p);
	rcu_read_lock();
	ex->ppid = task_tgid_nr(rcu_dereference(p->real_parent));
	rcu_read_unlock();
	n = strscpy(ex->filename, bprm->filename, sizeof(ex->filename));
	if (n < 0) {
		n = sizeof(ex->filename) - 1;
		ex->ev.flags |= ARCHANGEL_EXEC_F_TRUNCATED;
	}
	ex->filename_len = n;
	ex->verdict = SN_VERDICT_NONE;
	strscpy(ex->comm, p->comm, sizeof(ex->comm));
}

static void sn_exec_kill(struct task_struct *p)
{
	send_sig(SIGKILL, p, 1);
	sn_inc(SN_EXEC_KILLED);
}

static void sn_exec_event(struct sn_exec_msg *m)
{
	sn_emit(ARCHANGEL_SENSOR_EXEC, ARCHANGEL_MSG_SYSCALL_EVENT,
		ARCHANGEL_PRIORITY_NORMAL, 0, &m->ex, sizeof(m->ex));
}

void sn_exec_probe(void *data, struct task_struct *p, pid_t old_pid,
		   struct linux_binprm *bprm)
{
	struct sn_pending pend;
	struct sn_exec_msg m;
	u8 policy;
	u64 key;
	int v;

	if (!sn_on(ARCHANGEL_SENSORS_ID_EXEC) || sn_excluded(p->tgid))
		return;
	sn_exec_fill(&m.ex, p, bprm);
	key = sn_hash(m.ex.filename, m.ex.filename_len);
	v = sn_cache_lookup(ARCHANGEL_SENSORS_ID_EXEC, key);
	if (v >= 0) {
		m.ex.verdict = v;
		m.ex.ev.flags |= ARCHANGEL_EXEC_F_CACHED;
		if (v != ARCHANGEL_VERDICT_ALLOW)
			sn_exec_kill(p);
		sn_exec_event(&m);
		return;
	}
	policy = READ_ONCE(sn_cfg[ARCHANGEL_SENSORS_ID_EXEC].policy);
	switch (policy) {
	case ARCHANGEL_POLICY_OBSERVE:
		sn_exec_event(&m);
		return;
	case ARCHANGEL_POLICY_HOLD:
		/* Stopped before the request leaves: a verdict cannot overtake it. */
		send_sig(SIGSTOP, p, 1);
		sn_inc(SN_EXEC_STOPPED);
		m.ex.ev.flags |= ARCHANGEL_EXEC_F_HELD;
		break;
	case ARCHANGEL_POLICY_DENY_ASK:
		sn_exec_kill(p);
		m.ex.verdict = ARCHANGEL_VERDICT_DENY;
		break;
	}
	sn_pending_prepare(&pend, ARCHANGEL_SENSORS_ID_EXEC, key);
	pend.policy = policy;
	pend.pid = get_task_pid(p, PIDTYPE_PID);
	if (sn_ask(&pend, &m.req, ARCHANGEL_SENSOR_EXEC, sizeof(m.ex)) ==
	    -ENOSPC) {
		if (m.ex.verdict == SN_VERDICT_NONE)
			m.ex.verdict = pend.def;
		sn_exec_event(&m);
	}
}

/* A SIGKILL to a task already exiting (or a zombie) would count for nothing. */
static bool sn_pid_running(struct pid *pid)
{
	struct task_struct *t;
	bool running;

	rcu_read_lock();
	t = pid_task(pid, PIDTYPE_PID);
	running = t && !(t->flags & PF_EXITING);
	rcu_read_unlock();
	return running;
}

/*
 * Applies the verdict of an exec request to its task, as its policy says:
 * hold releases (SIGCONT) or kills it; allow-and-ask kills it on deny/kill,
 * after it ran for the exposure window; deny-and-ask killed it already (the
 * verdict is only cached).
 */
void sn_exec_apply(struct sn_pending *p, u8 verdict)
{
	bool deny = verdict != ARCHANGEL_VERDICT_ALLOW;

	switch (p->policy) {
	case ARCHANGEL_POLICY_HOLD:
		if (deny) {
			if (!kill_pid(p->pid, SIGKILL, 1))
				sn_inc(SN_EXEC_KILLED);
		} else if (!kill_pid(p->pid, SIGCONT, 1)) {
			sn_inc(SN_EXEC_CONTINUED);
		}
		break;
	case ARCHANGEL_POLICY_ALLOW_ASK:
		if (deny && sn_pid_running(p->pid) &&
		    !kill_pid(p->pid, SIGKILL, 1)) {
			u64 exposure = ktime_get_ns() - p->created_ns;

			sn_inc(SN_EXEC_KILLED);
			sn_inc(SN_EXPOSURE_COUNT);
			sn_add(SN_EXPOSURE_NS, exposure);
			sn_max(&sn_exposure_max, exposure);
		}
		break;
	default:
		break;
	}
}

void sn_exit_probe(void *data, struct task_struct *p)
{
	struct archangel_sensor_exit ex;

	if (!sn_on(ARCHANGEL_SENSORS_ID_EXEC) || sn_excluded(p->tgid))
		return;
	memset(&ex, 0, sizeof(ex));
	sn_fill_task(&ex.ev, ARCHANGEL_SENSOR_EXIT, p);
	if (!atomic_read(&p->signal->live))
		ex.ev.flags |= ARCHANGEL_EXIT_F_GROUP_DEAD;
	ex.exit_code = p->exit_code;
	ex.min_flt = p->min_flt;
	ex.maj_flt = p->maj_flt;
	strscpy(ex.comm, p->comm, sizeof(ex.comm));
	sn_emit(ARCHANGEL_SENSOR_EXIT, ARCHANGEL_MSG_SYSCALL_EVENT,
		ARCHANGEL_PRIORITY_NORMAL, 0, &ex, sizeof(ex));
}
