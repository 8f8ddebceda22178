// SPDX-License-Identifier: GPL-2.0
/*
 * The tracepoints the sensors attach to. Their __tracepoint_* symbols are
 * not exported to modules: they are found by name with
 * for_each_kernel_tracepoint() at load, and a probe is registered only
 * while a sensor needs it (a switched-off sensor costs nothing).
 */
#include <linux/string.h>
#include <linux/tracepoint.h>
#include "sensors.h"

struct sn_tp {
	const char *name;
	void *probe;
	struct tracepoint *tp;
	bool on;
};

static struct sn_tp sn_tps[SN_TP_COUNT] = {
	[SN_TP_EXEC] = { "sched_process_exec", sn_exec_probe },
	[SN_TP_EXIT] = { "sched_process_exit", sn_exit_probe },
	[SN_TP_SYS_ENTER] = { "sys_enter", sn_sys_enter_probe },
	[SN_TP_SYS_EXIT] = { "sys_exit", sn_sys_exit_probe },
	[SN_TP_FAULT] = { "page_fault_user", sn_fault_probe },
};

static void sn_tp_find(struct tracepoint *tp, void *priv)
{
	int i;

	for (i = 0; i < SN_TP_COUNT; i++)
		if (!sn_tps[i].tp && !strcmp(tp->name, sn_tps[i].name))
			sn_tps[i].tp = tp;
}

int sn_tp_init(void)
{
	int i;

	for_each_kernel_tracepoint(sn_tp_find, NULL);
	for (i = 0; i < SN_TP_COUNT; i++)
		if (!sn_tps[i].tp)
			pr_info("archangel_sensors: no tracepoint %s: its sensor is unavailable\n",
				sn_tps[i].name);
	return 0;
}

bool sn_tp_available(enum sn_tp_id id)
{
	return sn_tps[id].tp;
}

/* Registers or unregisters one probe; idempotent. Process context. */
int sn_tp_set(enum sn_tp_id id, bool on)
{
	struct sn_tp *t = &sn_tps[id];
	int err;

	lockdep_assert_held(&sn_cfg_mutex);
	if (t->on == on)
		return 0;
	if (!t->tp)
		return on ? -ENODEV : 0;
	if (on) {
		err = tracepoint_probe_register(t->tp, t->probe, NULL);
		if (err)
			return err;
	} else {
		err = tracepoint_probe_unregister(t->tp, t->probe, NULL);
		if (err)
			pr_warn_once("archangel_sensors: unregistering %s: %d\n",
				     t->name, err);
	}
	t->on = on;
	return 0;
}

/*
 * Every probe off, then tracepoint_synchronize_unregister(): no probe of
 * ours runs on any CPU when this returns.
 */
void sn_tp_all_off(void)
{
	int i;

	for (i = 0; i < SN_TP_COUNT; i++)
		sn_tp_set(i, false);
	tracepoint_synchronize_unregister();
}
