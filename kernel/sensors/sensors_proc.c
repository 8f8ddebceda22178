// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/archangel/sensors: the sensors, their state and their counters, in
 * the "key=value" style of /proc/archangel/comm (format in
 * docs/sensors.md). Counters are summed over CPUs; the "cpu" lines give
 * each CPU's drops.
 */
#include <linux/bitmap.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include "sensors.h"

#define SN_PROC_NAME	"archangel/sensors"

static const char *const sn_sensor_names[ARCHANGEL_SENSORS_COUNT] = {
	"exec", "syscall", "net", "mem",
};

static const char *const sn_kind_names[SN_KINDS] = {
	"none", "exec", "exit", "syscall", "net", "mem_faults", "mem_wx", "lost",
};

static const char *const sn_policy_names[] = {
	"observe", "allow-and-ask", "deny-and-ask", "hold",
};

/* The record kinds each sensor makes. */
static const u32 sn_kinds_of[ARCHANGEL_SENSORS_COUNT] = {
	[ARCHANGEL_SENSORS_ID_EXEC] = BIT(ARCHANGEL_SENSOR_EXEC) |
				      BIT(ARCHANGEL_SENSOR_EXIT),
	[ARCHANGEL_SENSORS_ID_SYSCALL] = BIT(ARCHANGEL_SENSOR_SYSCALL),
	[ARCHANGEL_SENSORS_ID_NET] = BIT(ARCHANGEL_SENSOR_NET),
	[ARCHANGEL_SENSORS_ID_MEM] = BIT(ARCHANGEL_SENSOR_MEM_FAULTS) |
				     BIT(ARCHANGEL_SENSOR_MEM_WX),
};

static void sn_show_sensor(struct seq_file *m,
			   const struct archangel_sensors_stats *st,
			   unsigned int s)
{
	const struct archangel_sensors_config *c = &sn_cfg[s];
	u64 ev = 0, sent = 0, dropped = 0, reported = 0;
	unsigned int k;
	u8 policy = READ_ONCE(c->policy);

	for (k = 1; k < SN_KINDS; k++) {
		if (!(sn_kinds_of[s] & BIT(k)))
			continue;
		ev += st->kinds[k].observed;
		sent += st->kinds[k].sent;
		dropped += st->kinds[k].dropped;
		reported += st->kinds[k].lost_reported;
	}
	seq_printf(m, "sensor %s state=%s policy=%s default=%s deadline_ms=%u interval_ms=%u flags=0x%x syscalls=%u",
		   sn_sensor_names[s], sn_on(s) ? "on" : "off",
		   policy <= ARCHANGEL_POLICY_MAX ? sn_policy_names[policy] : "?",
		   sn_verdict_name(READ_ONCE(c->default_verdict)),
		   READ_ONCE(c->deadline_ms), READ_ONCE(c->interval_ms),
		   READ_ONCE(c->flags),
		   s == ARCHANGEL_SENSORS_ID_SYSCALL ?
		   bitmap_weight(sn_sys_bits, SN_NBITS) : 0);
	seq_printf(m, " events=%llu sent=%llu dropped=%llu lost_reported=%llu\n",
		   ev, sent, dropped, reported);
}

static int sn_proc_show(struct seq_file *m, void *v)
{
	struct archangel_sensors_stats *st;
	unsigned int s, k, i, n;
	int cpu;

	st = kmalloc(sizeof(*st), GFP_KERNEL);
	if (!st)
		return -ENOMEM;
	sn_stats_snapshot(st);
	seq_puts(m, "archangel-sensors 1\n");
	if (st->channel_id == SN_NO_CHANNEL)
		seq_puts(m, "channel none");
	else
		seq_printf(m, "channel %u", st->channel_id);
	seq_printf(m, " engine=%u pending=%u excluded=", st->engine_pid,
		   st->pending);
	n = READ_ONCE(sn_nexcl);
	for (i = 1; i < n; i++)
		seq_printf(m, "%s%u", i > 1 ? "," : "", READ_ONCE(sn_excl[i]));
	seq_puts(m, n > 1 ? "\n" : "none\n");
	for (s = 0; s < ARCHANGEL_SENSORS_COUNT; s++)
		sn_show_sensor(m, st, s);
	for (k = 1; k < ARCHANGEL_SENSOR_LOST; k++)
		seq_printf(m, "kind %s observed=%llu sent=%llu dropped=%llu lost_reported=%llu\n",
			   sn_kind_names[k], st->kinds[k].observed,
			   st->kinds[k].sent, st->kinds[k].dropped,
			   st->kinds[k].lost_reported);
	seq_printf(m, "lost records=%llu send_errors=%llu\n",
		   st->lost_records, st->send_errors);
	seq_printf(m, "batch bytes=%u batches=%llu\n", READ_ONCE(sn_batch_bytes),
		   st->batches);
	for_each_possible_cpu(cpu) {
		const struct sn_pcpu *pc = per_cpu_ptr(&sn_pcpu, cpu);
		u64 d = 0, r = 0;

		for (k = 1; k < SN_KINDS; k++) {
			d += READ_ONCE(pc->dropped[k]);
			r += READ_ONCE(pc->reported[k]);
		}
		seq_printf(m, "cpu %d dropped=%llu lost_reported=%llu\n", cpu, d, r);
	}
	seq_printf(m, "verdict requests=%llu requests_unsent=%llu responses=%llu responses_late=%llu responses_bad=%llu timeouts=%llu detach_resolved=%llu pending_full=%llu allow=%llu deny=%llu kill=%llu rtt_count=%llu rtt_ns_total=%llu rtt_ns_max=%llu\n",
		   st->requests, st->requests_unsent, st->responses,
		   st->responses_late, st->responses_bad, st->timeouts,
		   st->detach_resolved, st->pending_full, st->verdict_allow,
		   st->verdict_deny, st->verdict_kill, st->rtt_count,
		   st->rtt_ns_total, st->rtt_ns_max);
	seq_printf(m, "cache entries=%u hits=%llu misses=%llu inserts=%llu evictions=%llu expired=%llu\n",
		   sn_cache_entries(), st->cache_hits, st->cache_misses,
		   st->cache_inserts, st->cache_evictions, st->cache_expired);
	seq_printf(m, "flows entries=%u new=%llu evicted=%llu packets_dropped=%llu\n",
		   sn_flow_entries(), st->flows_new, st->flows_evicted,
		   st->packets_dropped);
	seq_printf(m, "enforce exec_killed=%llu exec_stopped=%llu exec_continued=%llu exposure_count=%llu exposure_ns_total=%llu exposure_ns_max=%llu\n",
		   st->exec_killed, st->exec_stopped, st->exec_continued,
		   st->exposure_count, st->exposure_ns_total,
		   st->exposure_ns_max);
	kfree(st);
	return 0;
}

int sn_proc_init(void)
{
	/* /proc/archangel is archangel.ko's, which we depend on. */
	if (!proc_create_single(SN_PROC_NAME, 0444, NULL, sn_proc_show))
		return -ENOMEM;
	return 0;
}

void sn_proc_exit(void)
{
	remove_proc_entry(SN_PROC_NAME, NULL);
}
