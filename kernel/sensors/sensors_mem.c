// SPDX-License-Identifier: GPL-2.0
/*
 * The mem sensor.
 *
 * Page faults: exceptions:page_fault_user counts faults per process in a
 * small per-CPU table (SN_FAULT_SETS x SN_FAULT_WAYS, its own lock: only the
 * flusher ever contends), and the verdict thread sends one MEM_FAULTS
 * summary per CPU and process every interval_ms, then starts the counts
 * again. A process pushed out of a full set has its count sent at once
 * from the probe, so no fault goes uncounted.
 *
 * W^X: from the sys_enter probe, an mmap, mprotect or pkey_mprotect whose
 * prot asks for PROT_WRITE and PROT_EXEC together is reported (MEM_WX), as
 * asked, before the call runs (it may still fail).
 */
#include <linux/cred.h>
#include <linux/hash.h>
#include <linux/ktime.h>
#include <linux/mman.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <asm/syscall.h>
#include <asm/unistd.h>
#include "sensors.h"

#define SN_FAULT_SET_BITS	4
#define SN_FAULT_SETS		BIT(SN_FAULT_SET_BITS)
#define SN_FAULT_WAYS		4
#define SN_FAULT_SLOTS		(SN_FAULT_SETS * SN_FAULT_WAYS)

struct sn_fault {
	u32 pid;		/* the last thread that faulted */
	u32 tgid;		/* 0: free */
	u32 uid;
	u64 count;
	u64 last_address;
};

struct sn_fault_cpu {
	spinlock_t lock;	/* the probe of this CPU vs the flusher */
	struct sn_fault e[SN_FAULT_SLOTS];
};

static DEFINE_PER_CPU(struct sn_fault_cpu, sn_faults);
static struct sn_fault *sn_flush_buf;	/* the flusher's copy, under: */
static DEFINE_MUTEX(sn_flush_mutex);
static u64 sn_next_flush_ns;

bool sn_wx_on;

int sn_mem_init(void)
{
	int cpu;

	for_each_possible_cpu(cpu)
		spin_lock_init(&per_cpu_ptr(&sn_faults, cpu)->lock);
	sn_flush_buf = kcalloc(SN_FAULT_SLOTS, sizeof(*sn_flush_buf),
			       GFP_KERNEL);
	return sn_flush_buf ? 0 : -ENOMEM;
}

static void sn_fault_send(const struct sn_fault *f, int cpu)
{
	struct archangel_sensor_mem_faults rec;

	memset(&rec, 0, sizeof(rec));
	sn_fill_ids(&rec.ev, ARCHANGEL_SENSOR_MEM_FAULTS, f->pid, f->tgid,
		    f->uid);
	rec.ev.cpu = cpu;
	rec.faults = f->count;
	rec.last_address = f->last_address;
	sn_emit(ARCHANGEL_SENSOR_MEM_FAULTS, ARCHANGEL_MSG_MEMORY_EVENT,
		ARCHANGEL_PRIORITY_LOW, 0, &rec, sizeof(rec));
}

void sn_fault_probe(void *data, unsigned long address, struct pt_regs *regs,
		    unsigned long error_code)
{
	u32 tgid = current->tgid;
	struct sn_fault_cpu *fc;
	struct sn_fault *set, *slot = NULL, out = {};
	bool evicted = false;
	unsigned long flags;
	int i;

	if (!sn_on(ARCHANGEL_SENSORS_ID_MEM) || sn_excluded(tgid))
		return;
	fc = this_cpu_ptr(&sn_faults);
	set = &fc->e[hash_32(tgid, SN_FAULT_SET_BITS) * SN_FAULT_WAYS];
	spin_lock_irqsave(&fc->lock, flags);
	for (i = 0; i < SN_FAULT_WAYS; i++) {
		if (set[i].tgid == tgid) {
			slot = &set[i];
			break;
		}
		if (!slot && !set[i].tgid)
			slot = &set[i];
	}
	if (!slot) {
		/* Full: the smallest count goes out now. */
		slot = &set[0];
		for (i = 1; i < SN_FAULT_WAYS; i++)
			if (set[i].count < slot->count)
				slot = &set[i];
		out = *slot;
		evicted = true;
	}
	if (slot->tgid != tgid) {
		slot->tgid = tgid;
		slot->uid = from_kuid_munged(&init_user_ns, current_uid());
		slot->count = 0;
	}
	slot->pid = current->pid;
	slot->count++;
	slot->last_address = address;
	spin_unlock_irqrestore(&fc->lock, flags);
	if (evicted)
		sn_fault_send(&out, raw_smp_processor_id());
}

/* Sends every count now. Process context. */
void sn_mem_flush_all(void)
{
	unsigned long flags;
	int cpu, i, n;

	mutex_lock(&sn_flush_mutex);
	for_each_possible_cpu(cpu) {
		struct sn_fault_cpu *fc = per_cpu_ptr(&sn_faults, cpu);

		n = 0;
		spin_lock_irqsave(&fc->lock, flags);
		for (i = 0; i < SN_FAULT_SLOTS; i++) {
			if (!fc->e[i].tgid)
				continue;
			sn_flush_buf[n++] = fc->e[i];
			fc->e[i].tgid = 0;
		}
		spin_unlock_irqrestore(&fc->lock, flags);
		for (i = 0; i < n; i++)
			sn_fault_send(&sn_flush_buf[i], cpu);
	}
	mutex_unlock(&sn_flush_mutex);
}

/* The verdict thread: the summaries, every interval_ms while the sensor runs. */
void sn_mem_flush(void)
{
	u64 now = ktime_get_ns();

	if (!sn_on(ARCHANGEL_SENSORS_ID_MEM) || now < sn_next_flush_ns)
		return;
	sn_next_flush_ns = now + (u64)READ_ONCE(sn_cfg[ARCHANGEL_SENSORS_ID_MEM].interval_ms) *
			   NSEC_PER_MSEC;
	sn_mem_flush_all();
}

/* Forgets every count (detach). */
void sn_mem_reset(void)
{
	unsigned long flags;
	int cpu;

	for_each_possible_cpu(cpu) {
		struct sn_fault_cpu *fc = per_cpu_ptr(&sn_faults, cpu);

		spin_lock_irqsave(&fc->lock, flags);
		memset(fc->e, 0, sizeof(fc->e));
		spin_unlock_irqrestore(&fc->lock, flags);
	}
	sn_next_flush_ns = 0;
}

void sn_mem_exit(void)
{
	kfree(sn_flush_buf);
}

bool sn_mem_is_wx_nr(unsigned long nr)
{
	return nr == __NR_mmap || nr == __NR_mprotect ||
	       nr == __NR_pkey_mprotect;
}

void sn_mem_wx(struct pt_regs *regs, long nr)
{
	struct archangel_sensor_mem_wx rec;
	unsigned long args[6];

	syscall_get_arguments(current, regs, args);
	if ((args[2] & (PROT_WRITE | PROT_EXEC)) != (PROT_WRITE | PROT_EXEC))
		return;
	memset(&rec, 0, sizeof(rec));
	sn_fill_task(&rec.ev, ARCHANGEL_SENSOR_MEM_WX, current);
	rec.nr = nr;
	rec.prot = args[2];
	rec.address = args[0];
	rec.length = args[1];
	rec.map_flags = nr == __NR_mmap ? args[3] : 0;
	sn_emit(ARCHANGEL_SENSOR_MEM_WX, ARCHANGEL_MSG_MEMORY_EVENT,
		ARCHANGEL_PRIORITY_HIGH, 0, &rec, sizeof(rec));
}
