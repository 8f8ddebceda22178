/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal declarations of archangel_sensors.ko, a client of archangel.ko
 * (include/archangel_comm.h): kernel events in, AI verdicts out, enforced
 * here (docs/sensors.md).
 *
 * Contexts. Tracepoint probes run with preemption disabled, netfilter hooks
 * in softirq or with bottom halves off: nothing on those paths sleeps or
 * allocates. They send through archangel_comm_send_message_flags(), which
 * serializes the many CPUs on the channel's producer lock (irqsave) and
 * defers its wake-up of userspace to an irq_work when not preemptible.
 * Everything that may sleep (probe registration, detach, the verdict
 * receiver) runs in process context: ioctls and the "archangel_sensd"
 * kthread.
 *
 * Locks, outermost first:
 *   sn_cfg_mutex            attach/detach, configuration, probe registration
 *   sn_pend_lock (spin, irqsave)  the pending requests
 *   cache / flow set locks, per-CPU fault table locks (spin, irqsave): leaves
 *   per-CPU batch locks (spin, irqsave; sensors_stage.c)
 *   > sn_lost_lock (spin, irqsave; trylock on the hot path) > archangel's
 *                           own producer lock, taken inside its send
 * No record is sent with any of the leaf locks held.
 */
#ifndef _ARCHANGEL_SENSORS_H
#define _ARCHANGEL_SENSORS_H

#include <linux/bitmap.h>
#include <linux/cred.h>
#include <linux/ktime.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include "archangel_uapi.h"
#include "archangel_sensors_uapi.h"
#include "archangel_sensors_ioctl.h"

struct linux_binprm;
struct pt_regs;

#define SN_NO_CHANNEL		ARCHANGEL_SENSORS_NO_CHANNEL
#define SN_KINDS		8	/* ARCHANGEL_SENSOR_* kinds, [0] unused */
#define SN_NBITS		ARCHANGEL_SENSORS_SYSCALL_BITS
#define SN_VERDICT_NONE		ARCHANGEL_VERDICT_NONE

/* --- configuration (sensors_ctl.c) --------------------------------------- */

extern struct mutex sn_cfg_mutex;
/* The attached channel (READ_ONCE on the hot path), SN_NO_CHANNEL: none. */
extern u32 sn_channel;
/* Each sensor's configuration; the hot path reads fields with READ_ONCE. */
extern struct archangel_sensors_config sn_cfg[ARCHANGEL_SENSORS_COUNT];
/* Syscall numbers the syscall sensor reports (0 when it is off). */
extern unsigned long sn_sys_bits[BITS_TO_LONGS(SN_NBITS)];
/* Numbers sys_enter looks at: sn_sys_bits, plus mmap/mprotect for W^X. */
extern unsigned long sn_interest[BITS_TO_LONGS(SN_NBITS)];
extern bool sn_wx_on;		/* the mem sensor's W^X check runs */
extern bool sn_net_all;		/* the net sensor reports every packet */

static inline bool sn_on(unsigned int sensor)
{
	return READ_ONCE(sn_cfg[sensor].flags) & ARCHANGEL_SENSORS_F_ENABLED;
}

int sn_ctl_init(void);
void sn_ctl_exit(void);
void sn_detach_locked(void);
void sn_channel_lost(u32 channel);
bool sn_channel_same(u32 channel);
u32 sn_engine_tgid(void);

/* --- process exclusions (sensors_emit.c) --------------------------------- */

extern u32 sn_excl[ARCHANGEL_SENSORS_EXCLUDE_MAX];
extern unsigned int sn_nexcl;

static inline bool sn_excluded(u32 tgid)
{
	unsigned int i, n = READ_ONCE(sn_nexcl);

	for (i = 0; i < n; i++)
		if (READ_ONCE(sn_excl[i]) == tgid)
			return true;
	return false;
}

int sn_exclude(u32 tgid, bool remove);	/* under sn_cfg_mutex */
void sn_exclude_clear(void);		/* under sn_cfg_mutex */

/* --- counters and the send path (sensors_emit.c) -------------------------- */

/* Summed counters, in the order of struct archangel_sensors_stats. */
enum sn_ctr {
	SN_LOST_RECORDS, SN_SEND_ERRORS, SN_REQUESTS, SN_REQUESTS_UNSENT,
	SN_RESPONSES, SN_RESPONSES_LATE, SN_RESPONSES_BAD, SN_TIMEOUTS,
	SN_DETACH_RESOLVED, SN_PENDING_FULL, SN_VERDICT_ALLOW, SN_VERDICT_DENY,
	SN_VERDICT_KILL, SN_CACHE_HITS, SN_CACHE_MISSES, SN_CACHE_INSERTS,
	SN_CACHE_EVICTIONS, SN_CACHE_EXPIRED, SN_FLOWS_NEW, SN_FLOWS_EVICTED,
	SN_EXEC_KILLED, SN_EXEC_STOPPED, SN_EXEC_CONTINUED, SN_PACKETS_DROPPED,
	SN_EXPOSURE_COUNT, SN_EXPOSURE_NS, SN_RTT_COUNT, SN_RTT_NS,
	SN_NR_CTRS
};

/*
 * Per-CPU counters: each CPU adds to its own with this_cpu ops (safe
 * against the softirq and irq that may interrupt a probe); readers sum
 * racily. reported[] is written by the LOST flusher, under sn_lost_lock.
 */
struct sn_pcpu {
	u64 observed[SN_KINDS];
	u64 sent[SN_KINDS];
	u64 dropped[SN_KINDS];
	u64 reported[SN_KINDS];
	u64 ctr[SN_NR_CTRS];
};
DECLARE_PER_CPU(struct sn_pcpu, sn_pcpu);

#define sn_inc(c)	this_cpu_inc(sn_pcpu.ctr[c])
#define sn_add(c, n)	this_cpu_add(sn_pcpu.ctr[c], n)

extern u64 sn_exposure_max;
extern u64 sn_rtt_max;
void sn_max(u64 *max, u64 v);

/* Fills every field of a record's header. */
static inline void sn_fill_ids(struct archangel_sensor_event *ev, u16 kind,
			       u32 pid, u32 tgid, u32 uid)
{
	ev->version = ARCHANGEL_SENSOR_VERSION;
	ev->kind = kind;
	ev->cpu = raw_smp_processor_id();
	ev->pid = pid;
	ev->tgid = tgid;
	ev->uid = uid;
	ev->flags = 0;
	ev->timestamp = ktime_get_ns();
	ev->reserved = 0;
}

/* The same for task @t; a kuid's value is its uid in init_user_ns. */
static inline void sn_fill_task(struct archangel_sensor_event *ev, u16 kind,
				struct task_struct *t)
{
	kuid_t uid = t == current ? current_uid() : task_uid(t);

	sn_fill_ids(ev, kind, t->pid, t->tgid, __kuid_val(uid));
}

int sn_emit(u16 kind, u8 type, u8 priority, u32 sflags, const void *rec,
	    u32 size);
void sn_lost_flush(void);
void sn_stats_snapshot(struct archangel_sensors_stats *st);

/* Drops to announce: the hot path's hint (the verdict thread looks anyway). */
extern bool sn_lost_pending;

static inline void sn_lost_raise(void)
{
	WRITE_ONCE(sn_lost_pending, true);
}

static inline void sn_lost_kick(void)
{
	if (unlikely(READ_ONCE(sn_lost_pending)))
		sn_lost_flush();
}

/* --- per-CPU batches (sensors_stage.c) ------------------------------------ */

struct sn_stage {
	spinlock_t lock;	/* this CPU's probes vs the flusher */
	u8 *buf;		/* max bytes; NULL: not batching */
	u32 max;
	u32 len;		/* bytes staged */
	u8 type;		/* their message type */
	u16 n[SN_KINDS];	/* records staged, per kind */
	u64 first_ns;		/* timestamp of the first staged record */
	u64 sent[SN_KINDS];	/* records that left in batches */
	u64 dropped[SN_KINDS];	/* ... and that could not */
	u64 batches;		/* batches sent */
};
DECLARE_PER_CPU(struct sn_stage, sn_stage);
extern u32 sn_batch_bytes;

void sn_stage_init(void);
int sn_stage_start(u32 bytes, u32 us);
void sn_stage_stop(void);
void *sn_stage_begin(u8 type, u32 size, struct sn_stage **stp,
		     unsigned long *flags);
void sn_stage_end(struct sn_stage *st, u16 kind, u32 size, u64 now,
		  unsigned long flags);
int sn_emit_batched(u16 kind, u8 type, const void *rec, u32 size);
void sn_stage_flush(u64 age_ns);
u64 sn_stage_period_ns(void);

/* --- tracepoints (sensors_tp.c) ------------------------------------------ */

enum sn_tp_id {
	SN_TP_EXEC, SN_TP_EXIT, SN_TP_SYS_ENTER, SN_TP_SYS_EXIT, SN_TP_FAULT,
	SN_TP_COUNT
};

int sn_tp_init(void);
bool sn_tp_available(enum sn_tp_id id);
int sn_tp_set(enum sn_tp_id id, bool on);	/* under sn_cfg_mutex */
void sn_tp_all_off(void);			/* under sn_cfg_mutex */

/* The probes, with their tracepoints' prototypes. */
void sn_exec_probe(void *data, struct task_struct *p, pid_t old_pid,
		   struct linux_binprm *bprm);
void sn_exit_probe(void *data, struct task_struct *p);
void sn_sys_enter_probe(void *data, struct pt_regs *regs, long id);
void sn_sys_exit_probe(void *data, struct pt_regs *regs, long ret);
void sn_fault_probe(void *data, unsigned long address, struct pt_regs *regs,
		    unsigned long error_code);

/* --- the verdict cache (sensors_cache.c) --------------------------------- */

void sn_cache_init(void);
int sn_cache_lookup(u8 sensor, u64 key);	/* verdict, or -ENOENT */
void sn_cache_insert(u8 sensor, u64 key, u8 verdict, u32 ttl_ms);
void sn_cache_flush(void);
unsigned int sn_cache_entries(void);
u64 sn_hash(const void *data, size_t len);

/* --- the verdict loop (sensors_verdict.c) -------------------------------- */

/* A network flow, normalized to (local, remote). */
struct sn_flow_key {
	u8 family;		/* 4 or 6 */
	u8 proto;
	u16 lport;
	u16 rport;
	u16 pad;		/* zero: the key is hashed as bytes */
	u8 laddr[16];
	u8 raddr[16];
};

/* A request waiting for its verdict. id 0: a free slot. */
struct sn_pending {
	u64 id;
	u64 created_ns;
	u64 deadline_ns;
	u64 key;		/* cache key (sn_hash) */
	struct pid *pid;	/* exec: the task; a reference */
	struct sn_flow_key flow;	/* net */
	u8 sensor;		/* ARCHANGEL_SENSORS_ID_EXEC or _NET */
	u8 policy;
	u8 def;			/* default verdict */
};

/* Why a request was resolved. */
enum sn_why { SN_WHY_RESPONSE, SN_WHY_TIMEOUT, SN_WHY_DETACH, SN_WHY_NOW };

void sn_pending_prepare(struct sn_pending *p, u8 sensor, u64 key);
int sn_ask(struct sn_pending *p, struct archangel_sensor_request *req,
	   u16 kind, u32 event_size);
void sn_resolve(struct sn_pending *p, u8 verdict, u32 ttl_ms,
		enum sn_why why);
void sn_pending_resolve_all(enum sn_why why);
unsigned int sn_pending_count(void);
int sn_verdict_init(void);
void sn_verdict_exit(void);
void sn_verdict_kick(void);

/* --- sensors ---------------------------------------------------------------- */

/* sensors_exec.c */
void sn_exec_apply(struct sn_pending *p, u8 verdict);

/* sensors_syscall.c */
void sn_syscall_set_bits(const u64 *bits);	/* under sn_cfg_mutex */
void sn_syscall_update_interest(void);		/* under sn_cfg_mutex */

/* sensors_mem.c */
int sn_mem_init(void);
void sn_mem_wx(struct pt_regs *regs, long nr);
bool sn_mem_is_wx_nr(unsigned long nr);
void sn_mem_flush(void);
void sn_mem_flush_all(void);
void sn_mem_reset(void);
void sn_mem_exit(void);

/* sensors_net.c */
int sn_net_set(bool on);			/* under sn_cfg_mutex */
void sn_net_apply(struct sn_pending *p, u8 verdict);

/* sensors_flow.c */
enum sn_flow_state {
	SN_FLOW_OBSERVED,	/* no verdict asked: packets pass */
	SN_FLOW_ALLOW,
	SN_FLOW_DENY,		/* packets dropped */
	SN_FLOW_ASK_PASS,	/* allow-and-ask: pass until answered */
	SN_FLOW_ASK_DROP,	/* deny-and-ask, hold: dropped until answered */
};

void sn_flow_init(void);
bool sn_flow_lookup(const struct sn_flow_key *k, u64 hash, u8 *state);
bool sn_flow_insert(const struct sn_flow_key *k, u64 hash, u8 *state);
void sn_flow_set(const struct sn_flow_key *k, u64 hash, u8 state);
void sn_flow_flush(void);
unsigned int sn_flow_entries(void);

/* sensors_proc.c */
int sn_proc_init(void);
void sn_proc_exit(void);

static inline const char *sn_verdict_name(u8 v)
{
	switch (v) {
	case ARCHANGEL_VERDICT_ALLOW:
		return "allow";
	case ARCHANGEL_VERDICT_DENY:
		return "deny";
	case ARCHANGEL_VERDICT_KILL:
		return "kill";
	}
	return "none";
}

#endif /* _ARCHANGEL_SENSORS_H */
