// SPDX-License-Identifier: GPL-2.0
/*
 * archangel_sensors.ko: real kernel events (exec/exit, system calls,
 * packets, page faults and W^X mappings) sent to an engine through
 * archangel.ko's in-kernel API, and the engine's AI verdicts enforced here
 * (docs/sensors.md). Every sensor starts switched off; nothing is attached
 * until /dev/archangel_sensors' ATTACH.
 *
 * Unload: /proc entry, device, then detach (netfilter hooks, tracepoint
 * probes, tracepoint_synchronize_unregister(), pending requests resolved),
 * then the verdict thread.
 */
#include <linux/module.h>
#include "sensors.h"

static int __init sn_init(void)
{
	int err;

	sn_cache_init();
	sn_flow_init();
	sn_stage_init();
	err = sn_mem_init();
	if (err)
		return err;
	sn_tp_init();
	err = sn_verdict_init();
	if (err)
		goto out_mem;
	err = sn_ctl_init();
	if (err)
		goto out_verdict;
	err = sn_proc_init();
	if (err)
		goto out_ctl;
	return 0;

out_ctl:
	sn_ctl_exit();
out_verdict:
	sn_verdict_exit();
out_mem:
	sn_mem_exit();
	return err;
}

static void __exit sn_exit(void)
{
	sn_proc_exit();
	sn_ctl_exit();
	mutex_lock(&sn_cfg_mutex);
	sn_detach_locked();
	mutex_unlock(&sn_cfg_mutex);
	sn_verdict_exit();
	sn_mem_exit();
}

module_init(sn_init);
module_exit(sn_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("archangel sensors: kernel events to AI engines, verdicts enforced");
