// SPDX-License-Identifier: GPL-2.0
/*
 * Module init and exit of archangel.ko.
 *
 * Archangel is a kernel <-> userspace message bridge: lock-free SPSC rings
 * in memory shared through /dev/archangel, a buffer pool for large payloads,
 * eventfd wake-ups with need-wakeup suppression, and the seed's in-kernel
 * API (include/archangel_comm.h). docs/kernel.md describes the design.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/workqueue.h>
#include "archangel.h"

unsigned int ach_max_channels = 16;
module_param_named(max_channels, ach_max_channels, uint, 0444);
MODULE_PARM_DESC(max_channels, "Number of channel ids, 1..1024 (default 16)");

unsigned int ach_spin_us = 20;
module_param_named(spin_us, ach_spin_us, uint, 0644);
MODULE_PARM_DESC(spin_us, "Microseconds a blocking kernel sender polls for room before it sleeps (default 20); receivers follow the channel wait policy");

struct workqueue_struct *ach_wq;

static int __init ach_init(void)
{
	int err;

	if (!ach_max_channels || ach_max_channels > 1024)
		return -EINVAL;
	ach_wq = alloc_workqueue("archangel", 0, 0);
	if (!ach_wq)
		return -ENOMEM;
	err = ach_channel_init();
	if (err)
		goto err_destroy_wq;
	err = ach_pool_init();
	if (err)
		goto err_channel_exit;
	err = ach_proc_init();
	if (err)
		goto err_pool_exit;
	err = ach_chardev_init();
	if (err)
		goto err_proc_exit;
	err = ach_rw_init();
	if (err)
		goto err_chardev_exit;
	pr_info("archangel: ABI %u.%u, %u channels, /dev/%s\n",
		ARCHANGEL_ABI_VERSION_MAJOR, ARCHANGEL_ABI_VERSION_MINOR,
		ach_max_channels, ARCHANGEL_DEVICE_NAME);
	return 0;

err_chardev_exit:
	ach_chardev_exit();
err_proc_exit:
	ach_proc_exit();
err_pool_exit:
	ach_pool_exit();
err_channel_exit:
	ach_channel_exit();
err_destroy_wq:
	destroy_workqueue(ach_wq);
	return err;
}

static void __exit ach_exit(void)
{
	ach_rw_exit();
	ach_chardev_exit();
	ach_proc_exit();
	ach_channel_destroy_all();
	/* Runs the channel frees still queued: all memory is gone after this. */
	destroy_workqueue(ach_wq);
	ach_pool_exit();
	ach_channel_exit();
}

module_init(ach_init);
module_exit(ach_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("Archangel project");
MODULE_DESCRIPTION("Archangel kernel<->userspace message bridge");
