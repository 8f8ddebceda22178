// SPDX-License-Identifier: GPL-2.0
/*
 * archangel_testpeer.ko: a test helper that plays the kernel side of a
 * channel on behalf of a userspace test program. Its ioctls call the
 * in-kernel API that archangel.ko exports, so the Swift conformance suite
 * drives the module exactly as kernel code would (archangel_testpeer.h).
 *
 * Not for production: it lets root inject messages into any channel.
 */
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "archangel_comm.h"
#include "archangel_testpeer.h"

/* Payloads larger than this are refused before allocating (-E2BIG). */
#define ATP_MAX_PAYLOAD	(64U << 20)

static long atp_timeout(s64 ms)
{
	if (ms < 0)
		return MAX_SCHEDULE_TIMEOUT;
	if (ms > INT_MAX)
		ms = INT_MAX;
	return msecs_to_jiffies((unsigned int)ms);
}

static bool atp_zero(const void *p, size_t n)
{
	return !memchr_inv(p, 0, n);
}

static long atp_send(void __user *arg)
{
	struct archangel_testpeer_send req;
	struct archangel_comm_msg msg = {};
	void *buf = NULL;
	long ret;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if ((req.flags & ~ARCHANGEL_TESTPEER_CORRELATED) || req.reserved0 ||
	    !atp_zero(req.reserved, sizeof(req.reserved)))
		return -EINVAL;
	if (req.size > ATP_MAX_PAYLOAD)
		return -E2BIG;
	if (req.size) {
		buf = kvmalloc(req.size, GFP_KERNEL);
		if (!buf)
			return -ENOMEM;
		if (copy_from_user(buf, u64_to_user_ptr(req.data), req.size)) {
			ret = -EFAULT;
			goto out_free;
		}
	}
	msg.type = req.type;
	msg.priority = req.priority;
	if (req.flags & ARCHANGEL_TESTPEER_CORRELATED) {
		msg.flags = ARCHANGEL_MSG_F_CORRELATED;
		msg.correlation = req.correlation;
	}
	ret = archangel_comm_send_message_ex(req.channel_id, &msg, buf,
					     req.size,
					     atp_timeout(req.timeout_ms));
out_free:
	kvfree(buf);
	return ret;
}

static long atp_recv(void __user *arg)
{
	struct archangel_testpeer_recv req;
	struct archangel_comm_msg msg = {};
	void *buf = NULL;
	long ret;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (!atp_zero(req.reserved, sizeof(req.reserved)))
		return -EINVAL;
	if (req.max_size > ATP_MAX_PAYLOAD)
		req.max_size = ATP_MAX_PAYLOAD;
	if (req.max_size) {
		buf = kvmalloc(req.max_size, GFP_KERNEL);
		if (!buf)
			return -ENOMEM;
	}
	ret = archangel_comm_receive_message_ex(req.channel_id, &msg, buf,
						req.max_size,
						atp_timeout(req.timeout_ms));
	if (ret < 0)
		goto out_free;
	if (ret && copy_to_user(u64_to_user_ptr(req.data), buf, ret)) {
		ret = -EFAULT;
		goto out_free;
	}
	req.type = msg.type;
	req.priority = msg.priority;
	req.flags = msg.flags;
	req.size = msg.size;
	req.sequence = msg.sequence;
	req.timestamp = msg.timestamp;
	req.correlation = msg.correlation;
	if (copy_to_user(arg, &req, sizeof(req)))
		ret = -EFAULT;
out_free:
	kvfree(buf);
	return ret;
}

static long atp_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case ARCHANGEL_TESTPEER_IOC_SEND:
		return atp_send((void __user *)arg);
	case ARCHANGEL_TESTPEER_IOC_RECV:
		return atp_recv((void __user *)arg);
	}
	return -ENOTTY;
}

static const struct file_operations atp_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = atp_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice atp_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = ARCHANGEL_TESTPEER_DEVICE_NAME,
	.fops = &atp_fops,
	.mode = 0600,
};

static int __init atp_init(void)
{
	return misc_register(&atp_misc);
}

static void __exit atp_exit(void)
{
	misc_deregister(&atp_misc);
}

module_init(atp_init);
module_exit(atp_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("archangel test peer: the kernel side of a channel, driven from userspace");
