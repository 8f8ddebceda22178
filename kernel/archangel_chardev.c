// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/archangel: open/release/ioctl/mmap/poll.
 *
 * Each open file is unbound until ARCHANGEL_IOC_CREATE with
 * ARCHANGEL_CREATE_ATTACH or ARCHANGEL_IOC_ATTACH binds it to one channel
 * as that channel's single user side. Releasing the file only detaches it:
 * the channel, its memory and every committed message stay for the next
 * attacher. The device interface is documented in archangel_uapi.h.
 */
#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "archangel.h"

struct ach_file {
	struct mutex lock;		/* serializes binding */
	struct ach_channel *ch;		/* bound channel, set once (ref held) */
};

static int ach_open(struct inode *inode, struct file *file)
{
	struct ach_file *af = kzalloc(sizeof(*af), GFP_KERNEL);

	if (!af)
		return -ENOMEM;
	mutex_init(&af->lock);
	file->private_data = af;
	return 0;
}

static int ach_release(struct inode *inode, struct file *file)
{
	struct ach_file *af = file->private_data;
	struct ach_channel *ch = af->ch;

	if (ch) {
		mutex_lock(&ch->lock);
		if (ch->user == file)
			ach_channel_user_detached(ch);
		mutex_unlock(&ch->lock);
		ach_channel_put(ch);
	}
	kfree(af);
	return 0;
}

/* The bound channel, or NULL; binding happens once per file. */
static struct ach_channel *ach_file_channel(struct file *file)
{
	struct ach_file *af = file->private_data;

	/* Pairs with smp_store_release() in ach_bind(). */
	return smp_load_acquire(&af->ch);
}

/* Binds @file to @ch, consuming the caller's reference on success. */
static int ach_bind(struct ach_file *af, struct file *file,
		    struct ach_channel *ch)
{
	int err = 0;

	mutex_lock(&ch->lock);
	if (ch->user)
		err = -EBUSY;
	else
		ch->user = file;
	mutex_unlock(&ch->lock);
	if (err)
		return err;
	/* Pairs with smp_load_acquire() in ach_file_channel(). */
	smp_store_release(&af->ch, ch);
	return 0;
}

static bool ach_zero(const void *p, size_t n)
{
	return !memchr_inv(p, 0, n);
}

static long ach_ioc_create(struct file *file, void __user *arg)
{
	struct ach_file *af = file->private_data;
	struct archangel_create_req req;
	struct ach_channel *ch;
	u32 id;
	int err;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if ((req.flags & ~ARCHANGEL_CREATE_FLAGS_ALL) ||
	    !ach_zero(req.reserved, sizeof(req.reserved)))
		return -EINVAL;
	mutex_lock(&af->lock);
	if ((req.flags & ARCHANGEL_CREATE_ATTACH) && af->ch) {
		err = -EBUSY;
		goto out_unlock;
	}
	err = ach_channel_create(&req, &id);
	if (err)
		goto out_unlock;
	if (req.flags & ARCHANGEL_CREATE_ATTACH) {
		ch = ach_channel_get(id);
		if (!ch) {
			err = -ENOENT;	/* destroyed meanwhile */
			goto out_unlock;
		}
		err = ach_bind(af, file, ch);
		if (err) {
			ach_channel_put(ch);
			goto out_unlock;
		}
	}
	req.channel_id = id;
	if (copy_to_user(arg, &req, sizeof(req)))
		err = -EFAULT;
out_unlock:
	mutex_unlock(&af->lock);
	return err;
}

static long ach_ioc_attach(struct file *file, void __user *arg)
{
	struct ach_file *af = file->private_data;
	struct archangel_attach_req req;
	struct ach_channel *ch;
	int err = 0;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (!ach_zero(req.reserved, sizeof(req.reserved)))
		return -EINVAL;
	if (req.abi_version >> 16 != ARCHANGEL_ABI_VERSION_MAJOR) {
		req.abi_version = ARCHANGEL_ABI_VERSION;
		if (copy_to_user(arg, &req, sizeof(req)))
			return -EFAULT;
		return -EPROTO;
	}
	mutex_lock(&af->lock);
	ch = af->ch;
	if (ch) {
		/* Asking again for the channel we are bound to is fine. */
		if (ch->id != req.channel_id)
			err = -EBUSY;
		else if (READ_ONCE(ch->dead))
			err = -EPIPE;
	} else {
		ch = ach_channel_get(req.channel_id);
		if (!ch)
			err = -ENOENT;
		else if (ach_bind(af, file, ch))
			err = -EBUSY;
		if (err && ch)
			ach_channel_put(ch);
	}
	if (!err) {
		req.abi_version = ARCHANGEL_ABI_VERSION;
		req.mmap_size = ch->off.total_size;
		req.offsets = ch->off;
		if (copy_to_user(arg, &req, sizeof(req)))
			err = -EFAULT;
	}
	mutex_unlock(&af->lock);
	return err;
}

static long ach_ioc_set_eventfds(struct ach_channel *ch, void __user *arg)
{
	struct eventfd_ctx *data = NULL, *space = NULL;
	struct archangel_eventfds req;
	unsigned long flags;
	int err;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (!ach_zero(req.reserved, sizeof(req.reserved)) ||
	    req.data_fd < -1 || req.space_fd < -1)
		return -EINVAL;
	if (req.data_fd >= 0) {
		data = eventfd_ctx_fdget(req.data_fd);
		if (IS_ERR(data))
			return PTR_ERR(data);
	}
	if (req.space_fd >= 0) {
		space = eventfd_ctx_fdget(req.space_fd);
		if (IS_ERR(space)) {
			err = PTR_ERR(space);
			goto err_put_data;
		}
	}
	spin_lock_irqsave(&ch->efd_lock, flags);
	swap(ch->data_efd, data);
	swap(ch->space_efd, space);
	spin_unlock_irqrestore(&ch->efd_lock, flags);
	/* data and space now hold the old contexts. */
	if (space)
		eventfd_ctx_put(space);
	err = 0;
err_put_data:
	if (data)
		eventfd_ctx_put(data);
	return err;
}

/* ARCHANGEL_IOC_SET_WAIT: the struct is copied once, then checked. */
static long ach_ioc_set_wait(struct ach_channel *ch, void __user *arg)
{
	struct archangel_wait_config cfg;
	int err;

	if (copy_from_user(&cfg, arg, sizeof(cfg)))
		return -EFAULT;
	err = ach_wait_check(&cfg);
	if (err)
		return err;
	ach_channel_set_wait(ch, &cfg);
	return 0;
}

static long ach_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	struct ach_channel *ch;
	u64 size;
	u32 v;

	switch (cmd) {
	case ARCHANGEL_IOC_CREATE:
		return ach_ioc_create(file, uarg);
	case ARCHANGEL_IOC_ATTACH:
		return ach_ioc_attach(file, uarg);
	case ARCHANGEL_IOC_DESTROY:
		if (get_user(v, (u32 __user *)uarg))
			return -EFAULT;
		return ach_channel_destroy(v);
	case ARCHANGEL_IOC_LOADGEN: {
		struct archangel_loadgen_req req;
		long ret;

		if (copy_from_user(&req, uarg, sizeof(req)))
			return -EFAULT;
		ch = ach_channel_get(req.channel_id);
		if (!ch)
			return -ENOENT;
		ret = ach_loadgen_channel(ch, &req);
		ach_channel_put(ch);
		if (copy_to_user(uarg, &req, sizeof(req)))
			return -EFAULT;
		return ret;
	}
	}

	/* Everything else needs a bound, living channel. */
	ch = ach_file_channel(file);
	if (!ch)
		return -ENOTCONN;
	if (READ_ONCE(ch->dead))
		return -EPIPE;
	switch (cmd) {
	case ARCHANGEL_IOC_SET_EVENTFDS:
		return ach_ioc_set_eventfds(ch, uarg);
	case ARCHANGEL_IOC_NOTIFY:
		if (get_user(v, (u32 __user *)uarg))
			return -EFAULT;
		if (v & ~ARCHANGEL_NOTIFY_ALL)
			return -EINVAL;
		if (v & ARCHANGEL_NOTIFY_DATA)
			wake_up_all(&ch->data_wq);
		if (v & ARCHANGEL_NOTIFY_SPACE)
			wake_up_all(&ch->space_wq);
		return 0;
	case ARCHANGEL_IOC_SETUP_SHM:
		if (get_user(size, (u64 __user *)uarg))
			return -EFAULT;
		return ach_channel_setup_shm(ch, size);
	case ARCHANGEL_IOC_CLEANUP_SHM:
		ach_channel_cleanup_shm(ch);
		return 0;
	case ARCHANGEL_IOC_SET_WAIT:
		return ach_ioc_set_wait(ch, uarg);
	case ARCHANGEL_IOC_GET_WAIT: {
		struct archangel_wait_config cfg;

		ach_channel_get_wait(ch, &cfg);
		return copy_to_user(uarg, &cfg, sizeof(cfg)) ? -EFAULT : 0;
	}
	case ARCHANGEL_IOC_SHM_SIZE:
		mutex_lock(&ch->lock);
		size = ch->shm ? ch->shm->r.size : 0;
		mutex_unlock(&ch->lock);
		return put_user(size, (u64 __user *)uarg);
	}
	return -ENOTTY;
}

/* ---------------------------------------------------------------------------
 * mmap: file offset = layout offset. Each VMA holds a reference on the
 * memory it maps, so a channel destroyed while mapped is freed at munmap.
 */

static void ach_mem_vm_open(struct vm_area_struct *vma)
{
	struct ach_mem *mem = vma->vm_private_data;

	kref_get(&mem->ref);
}

static void ach_mem_vm_close(struct vm_area_struct *vma)
{
	ach_mem_put(vma->vm_private_data);
}

static const struct vm_operations_struct ach_mem_vm_ops = {
	.open = ach_mem_vm_open,
	.close = ach_mem_vm_close,
};

static void ach_shm_vm_open(struct vm_area_struct *vma)
{
	struct ach_shm *shm = vma->vm_private_data;

	kref_get(&shm->ref);
}

static void ach_shm_vm_close(struct vm_area_struct *vma)
{
	ach_shm_put(vma->vm_private_data);
}

static const struct vm_operations_struct ach_shm_vm_ops = {
	.open = ach_shm_vm_open,
	.close = ach_shm_vm_close,
};

static int ach_mmap_shm(struct ach_channel *ch, struct vm_area_struct *vma,
			u64 off, u64 len)
{
	struct ach_shm *shm;
	int err;

	mutex_lock(&ch->lock);
	shm = ch->shm;
	if (shm)
		kref_get(&shm->ref);
	mutex_unlock(&ch->lock);
	if (!shm)
		return -EINVAL;
	off -= ARCHANGEL_MMAP_OFF_SHARED;
	if (off > shm->r.size || len > shm->r.size - off) {
		err = -EINVAL;
		goto err_put_shm;
	}
	err = ach_region_mmap(&shm->r, vma, off);
	if (err)
		goto err_put_shm;
	vma->vm_private_data = shm;
	vma->vm_ops = &ach_shm_vm_ops;
	return 0;

err_put_shm:
	ach_shm_put(shm);
	return err;
}

static int ach_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct ach_channel *ch = ach_file_channel(file);
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 len = vma->vm_end - vma->vm_start;
	struct ach_region *region = NULL;
	struct ach_mem *mem;
	u64 rel = 0;
	int i, err;

	if (!ch)
		return -ENOTCONN;
	if (READ_ONCE(ch->dead))
		return -EPIPE;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (off >= ARCHANGEL_MMAP_OFF_SHARED) {
		err = ach_mmap_shm(ch, vma, off, len);
		goto out;
	}
	mem = ch->mem;
	if (off < mem->rings.size) {
		if (len > mem->rings.size - off)
			return -EINVAL;
		/*
		 * Header and kernel-written lines: a region of their own,
		 * read-only for good.
		 */
		if (off < 2 * ARCHANGEL_PAGE_SIZE) {
			if (len > 2 * ARCHANGEL_PAGE_SIZE - off)
				return -EINVAL;
			if (vma->vm_flags & VM_WRITE)
				return -EPERM;
			ach_vm_flags_clear(vma, VM_MAYWRITE);
		}
		region = &mem->rings;
		rel = off;
	}
	for (i = 0; i < 2 && !region; i++) {
		if (!mem->pool[i].vaddr || off < mem->pool_off[i] ||
		    off - mem->pool_off[i] >= mem->pool[i].size)
			continue;
		rel = off - mem->pool_off[i];
		if (len > mem->pool[i].size - rel)
			return -EINVAL;
		region = &mem->pool[i];
	}
	if (!region)
		return -EINVAL;
	kref_get(&mem->ref);
	err = ach_region_mmap(region, vma, rel);
	if (err) {
		ach_mem_put(mem);
		return err;
	}
	vma->vm_private_data = mem;
	vma->vm_ops = &ach_mem_vm_ops;
out:
	if (!err)
		ach_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	return err;
}

static __poll_t ach_poll(struct file *file, poll_table *wait)
{
	struct ach_channel *ch = ach_file_channel(file);
	__poll_t events;

	if (!ch)
		return EPOLLERR;
	poll_wait(file, &ch->poll_wq, wait);
	events = poll_requested_events(wait);
	if (events & (EPOLLIN | EPOLLRDNORM))
		WRITE_ONCE(ch->poll_in, true);
	if (events & (EPOLLOUT | EPOLLWRNORM))
		WRITE_ONCE(ch->poll_out, true);
	/*
	 * Pairs with the full fence before the waker's poll_in / poll_out
	 * and waitqueue checks ((E) in ach_publish_locked(), (G) in
	 * ach_recv()): we see the data or room, or the waker sees us.
	 */
	smp_mb();
	return ach_poll_mask(ch);
}

static const struct file_operations ach_fops = {
	.owner = THIS_MODULE,
	.open = ach_open,
	.release = ach_release,
	.unlocked_ioctl = ach_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = ach_mmap,
	.poll = ach_poll,
	.llseek = noop_llseek,
};

static struct miscdevice ach_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = ARCHANGEL_DEVICE_NAME,
	.fops = &ach_fops,
	.mode = 0600,
};

int ach_chardev_init(void)
{
	return misc_register(&ach_misc);
}

void ach_chardev_exit(void)
{
	misc_deregister(&ach_misc);
}
