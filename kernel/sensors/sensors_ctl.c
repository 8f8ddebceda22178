// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/archangel_sensors: attach to a channel, configure the sensors,
 * exclude processes, read the counters (archangel_sensors_ioctl.h).
 *
 * The file that attaches is the engine. Its process is excluded from every
 * sensor (slot 0 of the exclusions), and when the file is closed (the
 * engine exits or dies) or the channel disappears, the module detaches:
 * every sensor is switched off, every probe unregistered and waited for,
 * and every pending request resolved with its default at once.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include "archangel_comm.h"
#include "sensors.h"

/* Attach/detach, configuration and probe registration (sensors.h). */
DEFINE_MUTEX(sn_cfg_mutex);
u32 sn_channel = SN_NO_CHANNEL;
struct archangel_sensors_config sn_cfg[ARCHANGEL_SENSORS_COUNT];

static struct file *sn_owner;	/* the attached file, under sn_cfg_mutex */
static u32 sn_engine;		/* its process */
/*
 * The identity of the channel attached to (archangel_comm_channel_get(),
 * not a reference): a channel destroyed and another created under the same
 * id is not the engine's, and must not get its records or give verdicts.
 */
static struct archangel_comm_channel *sn_handle;

u32 sn_engine_tgid(void)
{
	return READ_ONCE(sn_engine);
}

static bool sn_zero(const void *p, size_t n)
{
	return !memchr_inv(p, 0, n);
}

/* The flags each sensor accepts. */
static const u32 sn_flags_of[ARCHANGEL_SENSORS_COUNT] = {
	[ARCHANGEL_SENSORS_ID_EXEC] = ARCHANGEL_SENSORS_F_ENABLED |
				      ARCHANGEL_SENSORS_F_EXEC_NO_EXIT,
	[ARCHANGEL_SENSORS_ID_SYSCALL] = ARCHANGEL_SENSORS_F_ENABLED |
					 ARCHANGEL_SENSORS_F_SYSCALL_EXIT,
	[ARCHANGEL_SENSORS_ID_NET] = ARCHANGEL_SENSORS_F_ENABLED |
				     ARCHANGEL_SENSORS_F_NET_ALL,
	[ARCHANGEL_SENSORS_ID_MEM] = ARCHANGEL_SENSORS_F_ENABLED |
				     ARCHANGEL_SENSORS_F_MEM_NO_FAULTS |
				     ARCHANGEL_SENSORS_F_MEM_NO_WX,
};

static int sn_check(struct archangel_sensors_config *c)
{
	u32 s = c->sensor;

	if (s >= ARCHANGEL_SENSORS_COUNT || (c->flags & ~sn_flags_of[s]) ||
	    c->policy > ARCHANGEL_POLICY_MAX ||
	    c->default_verdict > ARCHANGEL_VERDICT_KILL ||
	    !sn_zero(c->pad, sizeof(c->pad)) || c->reserved0 ||
	    !sn_zero(c->reserved, sizeof(c->reserved)))
		return -EINVAL;
	if (c->policy != ARCHANGEL_POLICY_OBSERVE &&
	    s != ARCHANGEL_SENSORS_ID_EXEC && s != ARCHANGEL_SENSORS_ID_NET)
		return -EINVAL;
	if (s != ARCHANGEL_SENSORS_ID_SYSCALL &&
	    !sn_zero(c->syscalls, sizeof(c->syscalls)))
		return -EINVAL;
	if (!c->deadline_ms)
		c->deadline_ms = ARCHANGEL_SENSORS_DEADLINE_DEFAULT_MS;
	if (!c->interval_ms)
		c->interval_ms = ARCHANGEL_SENSORS_INTERVAL_DEFAULT_MS;
	if (c->deadline_ms > ARCHANGEL_SENSORS_DEADLINE_MAX_MS ||
	    c->interval_ms < ARCHANGEL_SENSORS_INTERVAL_MIN_MS ||
	    c->interval_ms > ARCHANGEL_SENSORS_INTERVAL_MAX_MS)
		return -EINVAL;
	return 0;
}

static void sn_cfg_store(struct archangel_sensors_config *dst,
			 const struct archangel_sensors_config *src)
{
	WRITE_ONCE(dst->policy, src->policy);
	WRITE_ONCE(dst->default_verdict, src->default_verdict);
	WRITE_ONCE(dst->deadline_ms, src->deadline_ms);
	WRITE_ONCE(dst->interval_ms, src->interval_ms);
	memcpy(dst->syscalls, src->syscalls, sizeof(dst->syscalls));
	/* The switch last: a probe that sees it on sees the rest. */
	smp_store_release(&dst->flags, src->flags);
}

static bool sn_flag(unsigned int s, u32 f)
{
	return sn_on(s) && (sn_cfg[s].flags & f);
}

/* Registers exactly the probes and hooks the configuration asks for. */
static int sn_apply_locked(void)
{
	bool exec = sn_on(ARCHANGEL_SENSORS_ID_EXEC);
	bool sys = sn_on(ARCHANGEL_SENSORS_ID_SYSCALL);
	bool mem = sn_on(ARCHANGEL_SENSORS_ID_MEM);
	bool wx = mem && !sn_flag(ARCHANGEL_SENSORS_ID_MEM,
				  ARCHANGEL_SENSORS_F_MEM_NO_WX);
	bool faults = mem && !sn_flag(ARCHANGEL_SENSORS_ID_MEM,
				      ARCHANGEL_SENSORS_F_MEM_NO_FAULTS);
	int err;

	lockdep_assert_held(&sn_cfg_mutex);
	sn_syscall_set_bits(sys ? sn_cfg[ARCHANGEL_SENSORS_ID_SYSCALL].syscalls :
			    NULL);
	WRITE_ONCE(sn_wx_on, wx);
	sn_syscall_update_interest();
	WRITE_ONCE(sn_net_all, sn_flag(ARCHANGEL_SENSORS_ID_NET,
				       ARCHANGEL_SENSORS_F_NET_ALL));

	err = sn_net_set(sn_on(ARCHANGEL_SENSORS_ID_NET));
	err = err ?: sn_tp_set(SN_TP_EXEC, exec);
	err = err ?: sn_tp_set(SN_TP_EXIT, exec &&
			       !sn_flag(ARCHANGEL_SENSORS_ID_EXEC,
					ARCHANGEL_SENSORS_F_EXEC_NO_EXIT));
	err = err ?: sn_tp_set(SN_TP_SYS_ENTER, sys || wx);
	err = err ?: sn_tp_set(SN_TP_SYS_EXIT,
			       sn_flag(ARCHANGEL_SENSORS_ID_SYSCALL,
				       ARCHANGEL_SENSORS_F_SYSCALL_EXIT));
	err = err ?: sn_tp_set(SN_TP_FAULT, faults);
	return err;
}

void sn_detach_locked(void)
{
	unsigned int s;

	lockdep_assert_held(&sn_cfg_mutex);
	if (!sn_owner && READ_ONCE(sn_channel) == SN_NO_CHANNEL)
		return;
	for (s = 0; s < ARCHANGEL_SENSORS_COUNT; s++)
		WRITE_ONCE(sn_cfg[s].flags,
			   sn_cfg[s].flags & ~ARCHANGEL_SENSORS_F_ENABLED);
	/* Hooks first (their unregistration waits for RCU), then probes. */
	sn_apply_locked();
	sn_tp_all_off();
	/* Nothing counts any more: the last batches and fault counts leave. */
	sn_stage_stop();
	sn_mem_flush_all();
	WRITE_ONCE(sn_channel, SN_NO_CHANNEL);
	sn_pending_resolve_all(SN_WHY_DETACH);
	sn_cache_flush();
	sn_flow_flush();
	sn_mem_reset();
	sn_exclude_clear();
	WRITE_ONCE(sn_excl[0], 0);
	WRITE_ONCE(sn_engine, 0);
	WRITE_ONCE(sn_handle, NULL);
	sn_owner = NULL;
}

/* The verdict thread found @channel gone or failed. */
void sn_channel_lost(u32 channel)
{
	mutex_lock(&sn_cfg_mutex);
	if (READ_ONCE(sn_channel) == channel) {
		pr_info("archangel_sensors: channel %u gone or failed: detached\n",
			channel);
		sn_detach_locked();
	}
	mutex_unlock(&sn_cfg_mutex);
}

/*
 * Whether @channel (read from sn_channel) is still the channel attached to,
 * and not another one created under its id since. The lockless look may be
 * wrong while an attach or a detach runs: a mismatch is decided again under
 * the mutex, and detaches only when it holds there.
 */
bool sn_channel_same(u32 channel)
{
	bool same;

	if (archangel_comm_channel_get(channel) == READ_ONCE(sn_handle))
		return true;
	mutex_lock(&sn_cfg_mutex);
	same = READ_ONCE(sn_channel) != channel ||
	       archangel_comm_channel_get(channel) == sn_handle;
	if (!same) {
		pr_info("archangel_sensors: channel %u destroyed or replaced: detached\n",
			channel);
		sn_detach_locked();
	}
	mutex_unlock(&sn_cfg_mutex);
	return same;
}

static long sn_attach(struct file *file, void __user *arg)
{
	struct archangel_comm_channel *handle;
	struct archangel_sensors_attach a;
	long err = 0;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (a.flags || a.reserved ||
	    (a.batch_bytes && (a.batch_bytes < ARCHANGEL_SENSORS_BATCH_MIN ||
			       a.batch_bytes > ARCHANGEL_SENSORS_BATCH_MAX)) ||
	    (!a.batch_bytes && a.batch_us) ||
	    a.batch_us > ARCHANGEL_SENSORS_BATCH_US_MAX)
		return -EINVAL;
	mutex_lock(&sn_cfg_mutex);
	handle = archangel_comm_channel_get(a.channel_id);
	if (!handle) {
		mutex_unlock(&sn_cfg_mutex);
		return -ENOENT;
	}
	if (sn_owner || READ_ONCE(sn_channel) != SN_NO_CHANNEL)
		err = -EBUSY;
	else
		err = sn_stage_start(a.batch_bytes, a.batch_us ?:
				     ARCHANGEL_SENSORS_BATCH_US_DEFAULT);
	if (!err) {
		sn_owner = file;
		WRITE_ONCE(sn_handle, handle);
		WRITE_ONCE(sn_engine, current->tgid);
		WRITE_ONCE(sn_excl[0], current->tgid);
		WRITE_ONCE(sn_channel, a.channel_id);
	}
	mutex_unlock(&sn_cfg_mutex);
	if (!err)
		sn_verdict_kick();
	return err;
}

static long sn_detach(struct file *file)
{
	long err = 0;

	mutex_lock(&sn_cfg_mutex);
	if (sn_owner == file)
		sn_detach_locked();
	else
		err = -ENOTCONN;
	mutex_unlock(&sn_cfg_mutex);
	return err;
}

static long sn_configure(void __user *arg)
{
	struct archangel_sensors_config c, old;
	long err;

	if (copy_from_user(&c, arg, sizeof(c)))
		return -EFAULT;
	err = sn_check(&c);
	if (err)
		return err;
	mutex_lock(&sn_cfg_mutex);
	if ((c.flags & ARCHANGEL_SENSORS_F_ENABLED) &&
	    READ_ONCE(sn_channel) == SN_NO_CHANNEL) {
		err = -ENOTCONN;
		goto out;
	}
	old = sn_cfg[c.sensor];
	sn_cfg_store(&sn_cfg[c.sensor], &c);
	err = sn_apply_locked();
	if (err) {
		sn_cfg_store(&sn_cfg[c.sensor], &old);
		sn_apply_locked();
	} else if (c.sensor == ARCHANGEL_SENSORS_ID_MEM) {
		/* Counts made so far are summarized, not forgotten. */
		sn_mem_flush_all();
	}
out:
	mutex_unlock(&sn_cfg_mutex);
	return err;
}

static long sn_get_config(void __user *arg)
{
	struct archangel_sensors_config c;
	u32 s;

	if (copy_from_user(&s, arg, sizeof(s)))
		return -EFAULT;
	if (s >= ARCHANGEL_SENSORS_COUNT)
		return -EINVAL;
	mutex_lock(&sn_cfg_mutex);
	c = sn_cfg[s];
	mutex_unlock(&sn_cfg_mutex);
	return copy_to_user(arg, &c, sizeof(c)) ? -EFAULT : 0;
}

static long sn_exclude_ioctl(void __user *arg)
{
	struct archangel_sensors_exclude x;
	long err;

	if (copy_from_user(&x, arg, sizeof(x)))
		return -EFAULT;
	if ((x.flags & ~ARCHANGEL_SENSORS_EXCLUDE_REMOVE) || x.reserved ||
	    !x.pid)
		return -EINVAL;
	mutex_lock(&sn_cfg_mutex);
	err = sn_exclude(x.pid, x.flags & ARCHANGEL_SENSORS_EXCLUDE_REMOVE);
	mutex_unlock(&sn_cfg_mutex);
	return err;
}

static long sn_get_stats(void __user *arg)
{
	struct archangel_sensors_stats *st;
	long err = 0;

	st = kmalloc(sizeof(*st), GFP_KERNEL);
	if (!st)
		return -ENOMEM;
	sn_stats_snapshot(st);
	if (copy_to_user(arg, st, sizeof(*st)))
		err = -EFAULT;
	kfree(st);
	return err;
}

static long sn_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *p = (void __user *)arg;

	switch (cmd) {
	case ARCHANGEL_SENSORS_IOC_ATTACH:
		return sn_attach(file, p);
	case ARCHANGEL_SENSORS_IOC_DETACH:
		return sn_detach(file);
	case ARCHANGEL_SENSORS_IOC_CONFIGURE:
		return sn_configure(p);
	case ARCHANGEL_SENSORS_IOC_GET_CONFIG:
		return sn_get_config(p);
	case ARCHANGEL_SENSORS_IOC_EXCLUDE_PID:
		return sn_exclude_ioctl(p);
	case ARCHANGEL_SENSORS_IOC_GET_STATS:
		return sn_get_stats(p);
	}
	return -ENOTTY;
}

static int sn_release(struct inode *inode, struct file *file)
{
	mutex_lock(&sn_cfg_mutex);
	if (sn_owner == file)
		sn_detach_locked();
	mutex_unlock(&sn_cfg_mutex);
	return 0;
}

static const struct file_operations sn_fops = {
	.owner = THIS_MODULE,
	.release = sn_release,
	.unlocked_ioctl = sn_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice sn_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = ARCHANGEL_SENSORS_DEVICE_NAME,
	.fops = &sn_fops,
	.mode = 0600,
};

int sn_ctl_init(void)
{
	unsigned int s;

	for (s = 0; s < ARCHANGEL_SENSORS_COUNT; s++) {
		sn_cfg[s].sensor = s;
		sn_cfg[s].policy = ARCHANGEL_POLICY_OBSERVE;
		sn_cfg[s].default_verdict = ARCHANGEL_VERDICT_ALLOW;
		sn_cfg[s].deadline_ms = ARCHANGEL_SENSORS_DEADLINE_DEFAULT_MS;
		sn_cfg[s].interval_ms = ARCHANGEL_SENSORS_INTERVAL_DEFAULT_MS;
	}
	return misc_register(&sn_misc);
}

void sn_ctl_exit(void)
{
	misc_deregister(&sn_misc);
}
