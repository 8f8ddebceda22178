// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel load generator (ARCHANGEL_IOC_LOADGEN)
 * and /dev/archangel_rw, the read()/write() baseline it is compared with.
 *
 * Both run in the calling thread: the ioctl returns when `count` messages
 * are done, on a signal (-EINTR) or, without ARCHANGEL_LOADGEN_BLOCK, at
 * the first would-block (-EAGAIN); `done` and `elapsed_ns` are filled in
 * on every return.
 */
#include <linux/fs.h>
#include <linux/bottom_half.h>
#include <linux/hrtimer.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#ifdef ACH_HAVE_LINUX_UNALIGNED_H
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif
#include "archangel.h"

/* ARCHANGEL_LOADGEN_BATCH publishes this many at a time (one (E) fence). */
#define ACH_LOADGEN_BATCH	64

/*
 * PRODUCE payloads: byte j of message seq is (seq + j) & 0xff, with seq
 * over bytes 0-7. A pattern of size + 256 bytes (byte k = k & 0xff) holds
 * every message at offset seq & 0xff, so no message is filled byte by byte.
 */
static u8 *ach_pattern_alloc(u32 size)
{
	u8 *pat = kvmalloc(size + 256 + 8, GFP_KERNEL);
	u32 k;

	if (pat)
		for (k = 0; k < size + 256 + 8; k++)
			pat[k] = (u8)k;
	return pat;
}

static u8 *ach_pattern_at(u8 *pat, u64 seq)
{
	return pat + (seq & 0xff);
}

static int ach_loadgen_check(const struct archangel_loadgen_req *req,
			     bool may_pace)
{
	bool paced = req->flags & ARCHANGEL_LOADGEN_PACED;

	if (req->mode < ARCHANGEL_LOADGEN_PRODUCE ||
	    req->mode > ARCHANGEL_LOADGEN_SINK ||
	    (req->flags & ~ARCHANGEL_LOADGEN_FLAGS_ALL) ||
	    memchr_inv(req->reserved, 0, sizeof(req->reserved)))
		return -EINVAL;
	if (paced && (!may_pace || req->mode != ARCHANGEL_LOADGEN_PRODUCE ||
		      !req->interval_ns ||
		      req->interval_ns > ARCHANGEL_LOADGEN_INTERVAL_MAX_NS))
		return -EINVAL;
	if (!paced && req->interval_ns)
		return -EINVAL;
	if ((req->flags & ARCHANGEL_LOADGEN_ATOMIC) &&
	    (!may_pace || req->mode != ARCHANGEL_LOADGEN_PRODUCE))
		return -EINVAL;
	return 0;
}

/*
 * Sleeps until @due (CLOCK_MONOTONIC ns) on an hrtimer with no slack, the
 * absolute deadline of a paced message: 0, or -EINTR on a signal.
 */
static int ach_sleep_until(u64 due)
{
	ktime_t t = ns_to_ktime(due);

	while (ktime_get_ns() < due) {
		set_current_state(TASK_INTERRUPTIBLE);
		schedule_hrtimeout_range(&t, 0, HRTIMER_MODE_ABS);
		if (signal_pending(current))
			return -EINTR;
	}
	return 0;
}

/* The largest payload the user side may send on a direction. */
static u32 ach_dir_max_payload(const struct archangel_direction_offsets *d)
{
	u32 inline_max = min(d->normal.size, d->express.size) / 4 -
			 ARCHANGEL_MSG_HEADER_SIZE - ARCHANGEL_CORRELATION_SIZE;

	if (!d->pool.buffer_count)
		return inline_max;
	return max(inline_max, min(d->pool.max_segments, d->pool.buffer_count) *
			       d->pool.buffer_size);
}

long ach_loadgen_channel(struct ach_channel *ch,
			 struct archangel_loadgen_req *req)
{
	bool block = req->flags & ARCHANGEL_LOADGEN_BLOCK;
	bool batch = req->flags & ARCHANGEL_LOADGEN_BATCH;
	bool paced = req->flags & ARCHANGEL_LOADGEN_PACED;
	bool atomic = req->flags & ARCHANGEL_LOADGEN_ATOMIC;
	bool publish;
	u8 prio;
	long timeout = block ? MAX_SCHEDULE_TIMEOUT : 0;
	struct ach_msg msg;
	u8 saved[8];
	u32 cap;
	u64 i, t0;
	long err;
	u8 *buf;

	req->done = 0;
	req->elapsed_ns = 0;
	err = ach_loadgen_check(req, true);
	if (err)
		return err;
	if (req->mode == ARCHANGEL_LOADGEN_PRODUCE) {
		if (req->size > ch->tx.max_payload)
			return -EMSGSIZE;
		cap = req->size;
	} else {
		cap = ach_dir_max_payload(&ch->off.to_kernel);
	}
	if (req->mode == ARCHANGEL_LOADGEN_PRODUCE)
		buf = ach_pattern_alloc(cap);
	else
		buf = kvmalloc(max(cap, 8U), GFP_KERNEL);
	if (!buf)
		return -ENOMEM;

	t0 = ktime_get_ns();
	for (i = 0; i < req->count; i++) {
		const u64 *corr = NULL;
		int n;

		switch (req->mode) {
		case ARCHANGEL_LOADGEN_PRODUCE: {
			u8 *p = ach_pattern_at(buf, i);

			/* Absolute deadlines: a late message goes at once. */
			if (paced) {
				err = ach_sleep_until(t0 + i * req->interval_ns);
				if (err)
					break;
			}
			if (req->size >= 8) {
				memcpy(saved, p, 8);
				put_unaligned_le64(i, p);
			}
			prio = paced ? ARCHANGEL_PRIORITY_NORMAL : i % 4;
			publish = !batch ||
				  i % ACH_LOADGEN_BATCH == ACH_LOADGEN_BATCH - 1;
			err = -EAGAIN;
			/* As a netfilter hook would: not preemptible. */
			if (atomic) {
				local_bh_disable();
				err = ach_send_timeout(ch, ARCHANGEL_MSG_TYPE_MIN +
						       i % 7, prio, p, req->size,
						       NULL, 0, publish, 0, true);
				local_bh_enable();
			}
			if (err == -EAGAIN && (!atomic || timeout))
				err = ach_send_timeout(ch, ARCHANGEL_MSG_TYPE_MIN +
						       i % 7, prio, p, req->size,
						       NULL, 0, publish, timeout,
						       true);
			if (req->size >= 8)
				memcpy(p, saved, 8);
			break;
		}
		case ARCHANGEL_LOADGEN_ECHO:
			n = ach_recv_timeout(ch, &msg, buf, cap, timeout, true);
			if (n < 0) {
				err = n;
				break;
			}
			if (msg.type == ARCHANGEL_MSG_AI_REQUEST)
				corr = &msg.sequence;
			/* A received request is always answered: wait for room. */
			err = ach_send_timeout(ch, ARCHANGEL_MSG_AI_RESPONSE,
					       msg.priority, buf, n, corr, 0,
					       true, MAX_SCHEDULE_TIMEOUT, true);
			break;
		default:
			/* SINK drops the payload unread, as the rw sink does. */
			n = ach_recv_timeout(ch, NULL, NULL, U32_MAX, timeout,
					     true);
			err = n < 0 ? n : 0;
			break;
		}
		if (err)
			break;
		req->done++;
		if (!(i & 255)) {
			cond_resched();
			if (signal_pending(current)) {
				err = -EINTR;
				break;
			}
		}
	}
	/* Whatever was committed goes out now; consumed space is handed back. */
	ach_publish(ch, 0);
	ach_rx_release(ch);
	req->elapsed_ns = ktime_get_ns() - t0;
	kvfree(buf);
	return err;
}

/* ---------------------------------------------------------------------------
 * /dev/archangel_rw
 */

struct ach_rw_msg {
	struct list_head node;
	u32 len;
	u8 data[];
};

struct ach_rw_fifo {
	struct list_head msgs;
	u32 bytes;
};

struct ach_rw_file {
	spinlock_t lock;	/* protects both FIFOs */
	wait_queue_head_t wq;	/* any FIFO changed */
	struct ach_rw_fifo fifo[2];	/* ACH_TO_USER: read(); ACH_TO_KERNEL */
	bool loopback;
};

static bool ach_rw_has_room(struct ach_rw_file *rf, int dir, u32 len)
{
	bool room;

	spin_lock(&rf->lock);
	room = rf->fifo[dir].bytes + len <= ARCHANGEL_RW_FIFO_BYTES;
	spin_unlock(&rf->lock);
	return room;
}

static bool ach_rw_has_msg(struct ach_rw_file *rf, int dir)
{
	bool any;

	spin_lock(&rf->lock);
	any = !list_empty(&rf->fifo[dir].msgs);
	spin_unlock(&rf->lock);
	return any;
}

/* Queues @m on FIFO @dir; takes ownership only on success. */
static int ach_rw_put(struct ach_rw_file *rf, int dir, struct ach_rw_msg *m,
		      bool nonblock)
{
	for (;;) {
		spin_lock(&rf->lock);
		if (rf->fifo[dir].bytes + m->len <= ARCHANGEL_RW_FIFO_BYTES) {
			list_add_tail(&m->node, &rf->fifo[dir].msgs);
			rf->fifo[dir].bytes += m->len;
			spin_unlock(&rf->lock);
			wake_up_interruptible(&rf->wq);
			return 0;
		}
		spin_unlock(&rf->lock);
		if (nonblock)
			return -EAGAIN;
		if (wait_event_interruptible(rf->wq,
					     ach_rw_has_room(rf, dir, m->len)))
			return -EINTR;
	}
}

/* Takes the first message of FIFO @dir; -EMSGSIZE leaves it queued. */
static struct ach_rw_msg *ach_rw_get(struct ach_rw_file *rf, int dir,
				     u32 max, bool nonblock)
{
	struct ach_rw_msg *m;

	for (;;) {
		spin_lock(&rf->lock);
		m = list_first_entry_or_null(&rf->fifo[dir].msgs,
					     struct ach_rw_msg, node);
		if (m) {
			if (m->len > max) {
				spin_unlock(&rf->lock);
				return ERR_PTR(-EMSGSIZE);
			}
			list_del(&m->node);
			rf->fifo[dir].bytes -= m->len;
			spin_unlock(&rf->lock);
			wake_up_interruptible(&rf->wq);
			return m;
		}
		spin_unlock(&rf->lock);
		if (nonblock)
			return ERR_PTR(-EAGAIN);
		if (wait_event_interruptible(rf->wq, ach_rw_has_msg(rf, dir)))
			return ERR_PTR(-EINTR);
	}
}

static int ach_rw_open(struct inode *inode, struct file *file)
{
	struct ach_rw_file *rf = kzalloc(sizeof(*rf), GFP_KERNEL);

	if (!rf)
		return -ENOMEM;
	spin_lock_init(&rf->lock);
	init_waitqueue_head(&rf->wq);
	INIT_LIST_HEAD(&rf->fifo[ACH_TO_USER].msgs);
	INIT_LIST_HEAD(&rf->fifo[ACH_TO_KERNEL].msgs);
	file->private_data = rf;
	return 0;
}

static int ach_rw_release(struct inode *inode, struct file *file)
{
	struct ach_rw_file *rf = file->private_data;
	struct ach_rw_msg *m, *tmp;
	int dir;

	for (dir = 0; dir < 2; dir++)
		list_for_each_entry_safe(m, tmp, &rf->fifo[dir].msgs, node)
			kfree(m);
	kfree(rf);
	return 0;
}

static ssize_t ach_rw_read(struct file *file, char __user *ubuf, size_t len,
			   loff_t *ppos)
{
	struct ach_rw_file *rf = file->private_data;
	struct ach_rw_msg *m;
	ssize_t ret;

	m = ach_rw_get(rf, ACH_TO_USER, min_t(size_t, len, U32_MAX),
		       file->f_flags & O_NONBLOCK);
	if (IS_ERR(m))
		return PTR_ERR(m);
	ret = m->len;
	if (copy_to_user(ubuf, m->data, m->len))
		ret = -EFAULT;
	kfree(m);
	return ret;
}

static ssize_t ach_rw_write(struct file *file, const char __user *ubuf,
			    size_t len, loff_t *ppos)
{
	struct ach_rw_file *rf = file->private_data;
	struct ach_rw_msg *m;
	int err;

	if (len > ARCHANGEL_RW_MAX_MSG)
		return -EMSGSIZE;
	m = kmalloc(struct_size(m, data, len), GFP_KERNEL);
	if (!m)
		return -ENOMEM;
	m->len = len;
	if (copy_from_user(m->data, ubuf, len)) {
		err = -EFAULT;
		goto err_free_msg;
	}
	err = ach_rw_put(rf, READ_ONCE(rf->loopback) ? ACH_TO_USER :
			 ACH_TO_KERNEL, m, file->f_flags & O_NONBLOCK);
	if (err)
		goto err_free_msg;
	return len;

err_free_msg:
	kfree(m);
	return err;
}

static __poll_t ach_rw_poll(struct file *file, poll_table *wait)
{
	struct ach_rw_file *rf = file->private_data;
	int wdir = READ_ONCE(rf->loopback) ? ACH_TO_USER : ACH_TO_KERNEL;
	__poll_t mask = 0;

	poll_wait(file, &rf->wq, wait);
	spin_lock(&rf->lock);
	if (!list_empty(&rf->fifo[ACH_TO_USER].msgs))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (rf->fifo[wdir].bytes < ARCHANGEL_RW_FIFO_BYTES)
		mask |= EPOLLOUT | EPOLLWRNORM;
	spin_unlock(&rf->lock);
	return mask;
}

static long ach_rw_loadgen(struct ach_rw_file *rf,
			   struct archangel_loadgen_req *req)
{
	bool nonblock = !(req->flags & ARCHANGEL_LOADGEN_BLOCK);
	struct ach_rw_msg *m;
	u8 *pat = NULL;
	u64 i, t0;
	long err;

	req->done = 0;
	req->elapsed_ns = 0;
	err = ach_loadgen_check(req, false);
	if (err)
		return err;
	if (req->mode == ARCHANGEL_LOADGEN_PRODUCE) {
		if (req->size > ARCHANGEL_RW_MAX_MSG)
			return -EMSGSIZE;
		pat = ach_pattern_alloc(req->size);
		if (!pat)
			return -ENOMEM;
	}
	t0 = ktime_get_ns();
	for (i = 0; i < req->count; i++) {
		switch (req->mode) {
		case ARCHANGEL_LOADGEN_PRODUCE:
			m = kmalloc(struct_size(m, data, req->size), GFP_KERNEL);
			if (!m) {
				err = -ENOMEM;
				break;
			}
			m->len = req->size;
			memcpy(m->data, ach_pattern_at(pat, i), req->size);
			if (req->size >= 8)
				put_unaligned_le64(i, m->data);
			err = ach_rw_put(rf, ACH_TO_USER, m, nonblock);
			if (err)
				kfree(m);
			break;
		case ARCHANGEL_LOADGEN_ECHO:
			m = ach_rw_get(rf, ACH_TO_KERNEL, U32_MAX, nonblock);
			if (IS_ERR(m)) {
				err = PTR_ERR(m);
				break;
			}
			err = ach_rw_put(rf, ACH_TO_USER, m, false);
			if (err)
				kfree(m);
			break;
		default:
			m = ach_rw_get(rf, ACH_TO_KERNEL, U32_MAX, nonblock);
			err = IS_ERR(m) ? PTR_ERR(m) : 0;
			if (!err)
				kfree(m);
			break;
		}
		if (err)
			break;
		req->done++;
		if (!(i & 255)) {
			cond_resched();
			if (signal_pending(current)) {
				err = -EINTR;
				break;
			}
		}
	}
	req->elapsed_ns = ktime_get_ns() - t0;
	kvfree(pat);
	return err;
}

static long ach_rw_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	struct ach_rw_file *rf = file->private_data;
	void __user *uarg = (void __user *)arg;
	struct archangel_loadgen_req req;
	long ret;
	u32 v;

	switch (cmd) {
	case ARCHANGEL_IOC_LOADGEN:
		if (copy_from_user(&req, uarg, sizeof(req)))
			return -EFAULT;
		ret = ach_rw_loadgen(rf, &req);
		if (copy_to_user(uarg, &req, sizeof(req)))
			return -EFAULT;
		return ret;
	case ARCHANGEL_IOC_RW_LOOPBACK:
		if (get_user(v, (u32 __user *)uarg))
			return -EFAULT;
		WRITE_ONCE(rf->loopback, !!v);
		wake_up_interruptible(&rf->wq);
		return 0;
	}
	return -ENOTTY;
}

static const struct file_operations ach_rw_fops = {
	.owner = THIS_MODULE,
	.open = ach_rw_open,
	.release = ach_rw_release,
	.read = ach_rw_read,
	.write = ach_rw_write,
	.poll = ach_rw_poll,
	.unlocked_ioctl = ach_rw_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice ach_rw_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = ARCHANGEL_RW_DEVICE_NAME,
	.fops = &ach_rw_fops,
	.mode = 0600,
};

int ach_rw_init(void)
{
	return misc_register(&ach_rw_misc);
}

void ach_rw_exit(void)
{
	misc_deregister(&ach_rw_misc);
}
