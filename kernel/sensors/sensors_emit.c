// SPDX-License-Identifier: GPL-2.0
/*
 * The send path every sensor shares: per-CPU counters, drop accounting and
 * LOST records, and the excluded processes.
 *
 * A record goes straight to archangel_comm_send_message_flags() from the
 * probe: the channel's producer lock (irqsave, inside archangel.ko)
 * serializes the CPUs. When the engine attached with batch_bytes, syscall
 * and net records go through this CPU's batch instead (sensors_stage.c);
 * docs/sensors.md, "Hot path", has the measured cost of both. A record
 * that cannot be sent (ring full, channel gone) is counted as dropped, per
 * kind and per CPU, and sn_lost_pending is raised: the next successful
 * send on any CPU, and the verdict thread at every tick in any case, call
 * sn_lost_flush(), which sends one LOST record {cpu, kind, count} per CPU
 * and kind with drops not yet announced. What does not fit waits for the
 * next try. Per kind, observed = sent + dropped, and dropped -
 * lost_reported is what is still to be announced.
 */
#include <linux/spinlock.h>
#include <linux/stddef.h>
#include "archangel_comm.h"
#include "sensors.h"

DEFINE_PER_CPU(struct sn_pcpu, sn_pcpu);
u64 sn_exposure_max;
u64 sn_rtt_max;

/* [0] is the engine's slot (0 when detached); the rest are EXCLUDE_PID's. */
u32 sn_excl[ARCHANGEL_SENSORS_EXCLUDE_MAX];
unsigned int sn_nexcl = 1;

static DEFINE_SPINLOCK(sn_lost_lock);
bool sn_lost_pending;

void sn_max(u64 *max, u64 v)
{
	u64 old = READ_ONCE(*max);

	while (v > old) {
		u64 prev = cmpxchg(max, old, v);

		if (prev == old)
			break;
		old = prev;
	}
}

/*
 * Sends one record of @kind; any context, never sleeps. 0, or the send's
 * error (the record is then counted as dropped).
 */
int sn_emit(u16 kind, u8 type, u8 priority, u32 sflags, const void *rec,
	    u32 size)
{
	u32 ch = READ_ONCE(sn_channel);
	int err;

	this_cpu_inc(sn_pcpu.observed[kind]);
	if (ch == SN_NO_CHANNEL)
		err = -ENOTCONN;
	else
		err = archangel_comm_send_message_flags(ch, type, priority, rec,
							size, sflags);
	if (likely(!err)) {
		this_cpu_inc(sn_pcpu.sent[kind]);
		sn_lost_kick();
		return 0;
	}
	this_cpu_inc(sn_pcpu.dropped[kind]);
	if (err != -EAGAIN)
		sn_inc(SN_SEND_ERRORS);
	sn_lost_raise();
	return err;
}

/*
 * Announces the drops not announced yet, one LOST record per CPU and kind
 * (ev.cpu: where they were lost). Any context; returns at once when
 * another CPU is at it. The flag is only a hint for the hot path: the
 * verdict thread calls this every tick regardless.
 */
void sn_lost_flush(void)
{
	struct archangel_sensor_lost rec;
	u32 ch = READ_ONCE(sn_channel);
	unsigned long flags;
	bool left = false;
	int cpu, k;

	if (ch == SN_NO_CHANNEL || !spin_trylock_irqsave(&sn_lost_lock, flags))
		return;
	WRITE_ONCE(sn_lost_pending, false);
	for_each_possible_cpu(cpu) {
		struct sn_pcpu *pc = per_cpu_ptr(&sn_pcpu, cpu);
		struct sn_stage *sg = per_cpu_ptr(&sn_stage, cpu);

		for (k = 1; k < SN_KINDS && !left; k++) {
			u64 d = READ_ONCE(pc->dropped[k]) + READ_ONCE(sg->dropped[k]);
			u64 r = pc->reported[k];

			if (d == r)
				continue;
			memset(&rec, 0, sizeof(rec));
			sn_fill_ids(&rec.ev, ARCHANGEL_SENSOR_LOST, 0, 0, 0);
			rec.ev.cpu = cpu;
			rec.sensor = k;
			rec.count = d - r;
			if (archangel_comm_send_message_flags(ch,
							      ARCHANGEL_MSG_STATS,
							      ARCHANGEL_PRIORITY_NORMAL,
							      &rec, sizeof(rec), 0)) {
				left = true;
				break;
			}
			WRITE_ONCE(pc->reported[k], d);
			sn_inc(SN_LOST_RECORDS);
		}
	}
	if (left)
		WRITE_ONCE(sn_lost_pending, true);
	spin_unlock_irqrestore(&sn_lost_lock, flags);
}

/* Adds or removes an excluded process (never the engine's slot). */
int sn_exclude(u32 tgid, bool remove)
{
	unsigned int i, n = sn_nexcl;

	lockdep_assert_held(&sn_cfg_mutex);
	for (i = 1; i < n; i++)
		if (sn_excl[i] == tgid)
			break;
	if (remove) {
		if (i == n)
			return -ENOENT;
		WRITE_ONCE(sn_excl[i], sn_excl[n - 1]);
		WRITE_ONCE(sn_nexcl, n - 1);
		return 0;
	}
	if (i < n)
		return 0;
	if (n == ARCHANGEL_SENSORS_EXCLUDE_MAX)
		return -ENOSPC;
	WRITE_ONCE(sn_excl[n], tgid);
	/* The entry before the count that makes readers look at it. */
	smp_store_release(&sn_nexcl, n + 1);
	return 0;
}

void sn_exclude_clear(void)
{
	lockdep_assert_held(&sn_cfg_mutex);
	WRITE_ONCE(sn_nexcl, 1);
}

void sn_stats_snapshot(struct archangel_sensors_stats *st)
{
	u64 *ctr = (u64 *)((u8 *)st +
			   offsetof(struct archangel_sensors_stats, lost_records));
	unsigned int s;
	int cpu, k, i;

	BUILD_BUG_ON(offsetof(struct archangel_sensors_stats, exposure_ns_max) -
		     offsetof(struct archangel_sensors_stats, lost_records) !=
		     SN_NR_CTRS * sizeof(u64));
	memset(st, 0, sizeof(*st));
	for_each_possible_cpu(cpu) {
		const struct sn_pcpu *pc = per_cpu_ptr(&sn_pcpu, cpu);
		const struct sn_stage *sg = per_cpu_ptr(&sn_stage, cpu);

		for (k = 1; k < SN_KINDS; k++) {
			u64 bs = READ_ONCE(sg->sent[k]), bd = READ_ONCE(sg->dropped[k]);

			st->kinds[k].observed += READ_ONCE(pc->observed[k]) + bs + bd;
			st->kinds[k].sent += READ_ONCE(pc->sent[k]) + bs;
			st->kinds[k].dropped += READ_ONCE(pc->dropped[k]) + bd;
			st->kinds[k].lost_reported += READ_ONCE(pc->reported[k]);
		}
		st->batches += READ_ONCE(sg->batches);
		for (i = 0; i < SN_NR_CTRS; i++)
			ctr[i] += READ_ONCE(pc->ctr[i]);
	}
	st->exposure_ns_max = READ_ONCE(sn_exposure_max);
	st->rtt_ns_max = READ_ONCE(sn_rtt_max);
	st->channel_id = READ_ONCE(sn_channel);
	st->engine_pid = sn_engine_tgid();
	for (s = 0; s < ARCHANGEL_SENSORS_COUNT; s++)
		if (sn_on(s))
			st->enabled |= 1U << s;
	st->pending = sn_pending_count();
}
