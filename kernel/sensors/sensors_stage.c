// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU staging of the high-rate records (syscall and net events) when
 * the engine attached with batch_bytes: each CPU fills its own buffer under
 * its own lock (contended only by the flusher) and sends it as one message
 * when the next record would not fit or the first one is batch_us old, so
 * archangel's send (channel lookup, producer lock, header, publication,
 * wake-up check) is paid once per batch instead of once per record. The
 * verdict thread flushes what waits on quiet CPUs every batch_us.
 *
 * A batch's records are counted when it leaves: observed, and sent or
 * dropped, per kind, in this CPU's sn_stage (under its lock), so
 * observed = sent + dropped holds at every moment; the staged records are
 * not observed yet. Lock order: a stage's lock > sn_lost_lock > archangel's
 * producer lock.
 */
#include <linux/ktime.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include "archangel_comm.h"
#include "sensors.h"

DEFINE_PER_CPU(struct sn_stage, sn_stage);
u32 sn_batch_bytes;
static u64 sn_batch_ns;

/* Sends the batch; the stage's lock held. */
static void sn_stage_flush_locked(struct sn_stage *st)
{
	u32 ch = READ_ONCE(sn_channel);
	int err, k;

	if (!st->len)
		return;
	err = ch == SN_NO_CHANNEL ? -ENOTCONN :
	      archangel_comm_send_message_flags(ch, st->type,
						ARCHANGEL_PRIORITY_NORMAL,
						st->buf, st->len, 0);
	for (k = 1; k < SN_KINDS; k++) {
		if (!st->n[k])
			continue;
		if (err)
			WRITE_ONCE(st->dropped[k], st->dropped[k] + st->n[k]);
		else
			WRITE_ONCE(st->sent[k], st->sent[k] + st->n[k]);
		st->n[k] = 0;
	}
	if (err) {
		if (err != -EAGAIN)
			sn_inc(SN_SEND_ERRORS);
		sn_lost_raise();
	} else {
		WRITE_ONCE(st->batches, st->batches + 1);
	}
	st->len = 0;
}

/*
 * Room for a record of @size bytes of message @type in this CPU's batch,
 * the stage locked (irqs off) in *@stp: fill it, then sn_stage_end().
 * NULL when not batching. Probe context (preemption off).
 */
void *sn_stage_begin(u8 type, u32 size, struct sn_stage **stp,
		     unsigned long *flags)
{
	u32 max = READ_ONCE(sn_batch_bytes);
	struct sn_stage *st;

	if (!max)
		return NULL;
	st = this_cpu_ptr(&sn_stage);
	spin_lock_irqsave(&st->lock, *flags);
	if (unlikely(!st->buf || st->max != max)) {
		spin_unlock_irqrestore(&st->lock, *flags);
		return NULL;
	}
	if (st->len && (st->type != type || st->len + size > st->max))
		sn_stage_flush_locked(st);
	st->type = type;
	*stp = st;
	return st->buf + st->len;
}

/* Commits the record of sn_stage_begin(); @now is its timestamp. */
void sn_stage_end(struct sn_stage *st, u16 kind, u32 size, u64 now,
		  unsigned long flags)
{
	if (!st->len)
		st->first_ns = now;
	st->len += size;
	st->n[kind]++;
	if (st->len + size > st->max || now - st->first_ns >= sn_batch_ns)
		sn_stage_flush_locked(st);
	spin_unlock_irqrestore(&st->lock, flags);
	sn_lost_kick();
}

/* Copies a record built elsewhere into the batch, or sends it alone. */
int sn_emit_batched(u16 kind, u8 type, const void *rec, u32 size)
{
	struct sn_stage *st;
	unsigned long flags;
	void *slot;

	slot = sn_stage_begin(type, size, &st, &flags);
	if (!slot)
		return sn_emit(kind, type, ARCHANGEL_PRIORITY_NORMAL, 0, rec,
			       size);
	memcpy(slot, rec, size);
	sn_stage_end(st, kind, size, ktime_get_ns(), flags);
	return 0;
}

/* Sends every batch at least @age_ns old (0: every batch). Any context. */
void sn_stage_flush(u64 age_ns)
{
	u64 now = ktime_get_ns();
	unsigned long flags;
	int cpu;

	if (!READ_ONCE(sn_batch_bytes))
		return;
	for_each_possible_cpu(cpu) {
		struct sn_stage *st = per_cpu_ptr(&sn_stage, cpu);

		if (!READ_ONCE(st->len))
			continue;
		spin_lock_irqsave(&st->lock, flags);
		if (st->len && now - st->first_ns >= age_ns)
			sn_stage_flush_locked(st);
		spin_unlock_irqrestore(&st->lock, flags);
	}
}

/* The verdict thread's period while batching, 0: not batching. */
u64 sn_stage_period_ns(void)
{
	return READ_ONCE(sn_batch_bytes) ? sn_batch_ns : 0;
}

void sn_stage_init(void)
{
	int cpu;

	for_each_possible_cpu(cpu)
		spin_lock_init(&per_cpu_ptr(&sn_stage, cpu)->lock);
}

/* At attach, before any probe runs: a buffer per CPU. */
int sn_stage_start(u32 bytes, u32 us)
{
	unsigned long flags;
	int cpu;

	lockdep_assert_held(&sn_cfg_mutex);
	if (!bytes)
		return 0;
	for_each_possible_cpu(cpu) {
		struct sn_stage *st = per_cpu_ptr(&sn_stage, cpu);
		u8 *buf = kmalloc(bytes, GFP_KERNEL);

		if (!buf) {
			sn_stage_stop();
			return -ENOMEM;
		}
		spin_lock_irqsave(&st->lock, flags);
		st->buf = buf;
		st->max = bytes;
		st->len = 0;
		spin_unlock_irqrestore(&st->lock, flags);
	}
	sn_batch_ns = (u64)us * NSEC_PER_USEC;
	WRITE_ONCE(sn_batch_bytes, bytes);
	return 0;
}

/*
 * At detach, with every probe off and waited for: the last batches go out,
 * then the buffers.
 */
void sn_stage_stop(void)
{
	unsigned long flags;
	int cpu;

	lockdep_assert_held(&sn_cfg_mutex);
	sn_stage_flush(0);
	WRITE_ONCE(sn_batch_bytes, 0);
	for_each_possible_cpu(cpu) {
		struct sn_stage *st = per_cpu_ptr(&sn_stage, cpu);
		u8 *buf;

		spin_lock_irqsave(&st->lock, flags);
		sn_stage_flush_locked(st);
		buf = st->buf;
		st->buf = NULL;
		st->max = 0;
		spin_unlock_irqrestore(&st->lock, flags);
		kfree(buf);
	}
}
