/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * archangel_sensors_ioctl.h - the control interface of archangel_sensors.ko
 * (issue 10): the ioctls of /dev/archangel_sensors and their structs. The
 * records the sensors send are in archangel_sensors_uapi.h; docs/sensors.md
 * explains both.
 *
 * The file that ATTACHes is the engine: the sensors send to its channel, its
 * process is excluded from every sensor, and closing the file (or the
 * channel going away) detaches: every sensor is switched off and every
 * pending request is resolved at once with its sensor's default verdict.
 * Same rules as archangel_uapi.h: fixed-width fields, explicit padding,
 * reserved fields must be zero (-EINVAL otherwise).
 */
#ifndef _UAPI_LINUX_ARCHANGEL_SENSORS_IOCTL_H
#define _UAPI_LINUX_ARCHANGEL_SENSORS_IOCTL_H

#include <linux/types.h>
#include <linux/ioctl.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ARCHANGEL_SENSORS_DEVICE_NAME	"archangel_sensors"	/* /dev/archangel_sensors */
#define ARCHANGEL_SENSORS_IOC_MAGIC	0xB5

/* A channel id meaning "not attached" (GET_STATS). */
#define ARCHANGEL_SENSORS_NO_CHANNEL	0xffffffffU

/* Sensors (archangel_sensors_config.sensor). */
#define ARCHANGEL_SENSORS_ID_EXEC	0	/* EXEC + EXIT records; verdicts on execs */
#define ARCHANGEL_SENSORS_ID_SYSCALL	1	/* SYSCALL records, by a bitmap of numbers */
#define ARCHANGEL_SENSORS_ID_NET	2	/* NET records; verdicts on new flows */
#define ARCHANGEL_SENSORS_ID_MEM	3	/* MEM_FAULTS summaries + MEM_WX records */
#define ARCHANGEL_SENSORS_COUNT		4

/* What a sensor does with a case it has no cached verdict for. */
#define ARCHANGEL_POLICY_OBSERVE	0	/* records only, no request */
#define ARCHANGEL_POLICY_ALLOW_ASK	1	/* let it run, ask, enforce when answered */
#define ARCHANGEL_POLICY_DENY_ASK	2	/* deny it now, ask, cache the answer */
#define ARCHANGEL_POLICY_HOLD		3	/* exec: SIGSTOP until the verdict;
						 * packets: dropped until the verdict */
#define ARCHANGEL_POLICY_MAX		ARCHANGEL_POLICY_HOLD

/* archangel_sensors_config.flags */
#define ARCHANGEL_SENSORS_F_ENABLED	(1U << 0)	/* the sensor runs (needs ATTACH) */
#define ARCHANGEL_SENSORS_F_SYSCALL_EXIT (1U << 1)	/* syscall: sys_exit records too */
#define ARCHANGEL_SENSORS_F_NET_ALL	(1U << 2)	/* net: every packet, not only new flows */
#define ARCHANGEL_SENSORS_F_EXEC_NO_EXIT (1U << 3)	/* exec: no EXIT records */
#define ARCHANGEL_SENSORS_F_MEM_NO_FAULTS (1U << 4)	/* mem: no page-fault summaries */
#define ARCHANGEL_SENSORS_F_MEM_NO_WX	(1U << 5)	/* mem: no MEM_WX records */
#define ARCHANGEL_SENSORS_F_ALL \
	(ARCHANGEL_SENSORS_F_ENABLED | ARCHANGEL_SENSORS_F_SYSCALL_EXIT | \
	 ARCHANGEL_SENSORS_F_NET_ALL | ARCHANGEL_SENSORS_F_EXEC_NO_EXIT | \
	 ARCHANGEL_SENSORS_F_MEM_NO_FAULTS | ARCHANGEL_SENSORS_F_MEM_NO_WX)

/* Bounds of the timing fields; 0 in CONFIGURE means the default. */
#define ARCHANGEL_SENSORS_DEADLINE_DEFAULT_MS	1000U
#define ARCHANGEL_SENSORS_DEADLINE_MAX_MS	60000U
#define ARCHANGEL_SENSORS_INTERVAL_DEFAULT_MS	1000U
#define ARCHANGEL_SENSORS_INTERVAL_MIN_MS	10U
#define ARCHANGEL_SENSORS_INTERVAL_MAX_MS	60000U

/* System call numbers in archangel_sensors_config.syscalls (native x86-64). */
#define ARCHANGEL_SENSORS_SYSCALL_BITS	512

/*
 * ARCHANGEL_SENSORS_IOC_ATTACH: -ENOENT no such channel; -EBUSY attached;
 * -EINVAL a bound out of range; -ENOMEM.
 *
 * With batch_bytes, the syscall and net sensors' event records are staged
 * per CPU and sent several per message: the payload is then records back
 * to back, each as long as its kind says (ARCHANGEL_SENSOR_RECORD_SIZE), of
 * one message type. A batch leaves when the next record would not fit, or
 * once its first record is batch_us old (at the next record on that CPU,
 * or by the module's thread, which looks every batch_us). Keep batch_bytes
 * within the channel's largest message: a batch that does not fit is
 * dropped (counted, announced by LOST records). AI_REQUESTs, LOST, EXEC,
 * EXIT and MEM records always travel one per message.
 */
#define ARCHANGEL_SENSORS_BATCH_MIN		256U
#define ARCHANGEL_SENSORS_BATCH_MAX		65536U
#define ARCHANGEL_SENSORS_BATCH_US_DEFAULT	1000U
#define ARCHANGEL_SENSORS_BATCH_US_MAX		1000000U
struct archangel_sensors_attach {
	__u32 channel_id;	/* the archangel channel the records go to */
	__u32 flags;		/* must be zero */
	__u32 batch_bytes;	/* 0: one record per message; else 256 .. 65536 */
	__u32 batch_us;		/* with batch_bytes: a record's longest wait; 0: 1000 */
	__u64 reserved;		/* must be zero */
};

/*
 * ARCHANGEL_SENSORS_IOC_CONFIGURE (in) and _GET_CONFIG (sensor in, the rest
 * out). -EINVAL: unknown sensor, flag or policy, a policy other than
 * OBSERVE on the syscall or mem sensor, a bitmap on another sensor than
 * syscall, a value out of range, a reserved field set; -ENOTCONN: ENABLED
 * while not attached.
 */
struct archangel_sensors_config {
	__u32 sensor;		/* ARCHANGEL_SENSORS_ID_* */
	__u32 flags;		/* ARCHANGEL_SENSORS_F_* */
	__u8  policy;		/* ARCHANGEL_POLICY_* (exec and net) */
	__u8  default_verdict;	/* ARCHANGEL_VERDICT_*: on deadline, detach, no room */
	__u8  pad[2];		/* must be zero */
	__u32 deadline_ms;	/* a request's deadline; 0: 1000 */
	__u32 interval_ms;	/* mem: fault summary period; 0: 1000 */
	__u32 reserved0;	/* must be zero */
	__u64 syscalls[ARCHANGEL_SENSORS_SYSCALL_BITS / 64];	/* syscall: numbers */
	__u64 reserved[4];	/* must be zero */
};

/* ARCHANGEL_SENSORS_IOC_EXCLUDE_PID: -ENOSPC full, -ENOENT not listed. */
#define ARCHANGEL_SENSORS_EXCLUDE_REMOVE	(1U << 0)
#define ARCHANGEL_SENSORS_EXCLUDE_MAX		16	/* the engine's slot included */
struct archangel_sensors_exclude {
	__u32 pid;		/* a process id (tgid): none of its threads is traced */
	__u32 flags;		/* ARCHANGEL_SENSORS_EXCLUDE_REMOVE or 0 */
	__u64 reserved;		/* must be zero */
};

/* Counters of one record kind, summed over CPUs. */
struct archangel_sensors_kind_stats {
	__u64 observed;		/* records made (after the filters) */
	__u64 sent;		/* of those, in the ring */
	__u64 dropped;		/* of those, not: ring full or channel gone */
	__u64 lost_reported;	/* of the dropped, announced in LOST records */
};

/* ARCHANGEL_SENSORS_IOC_GET_STATS (out). */
struct archangel_sensors_stats {
	__u32 channel_id;	/* ARCHANGEL_SENSORS_NO_CHANNEL: detached */
	__u32 engine_pid;	/* the attacher's process id, 0: none */
	__u32 enabled;		/* bit (1 << ARCHANGEL_SENSORS_ID_*) per running sensor */
	__u32 pending;		/* requests waiting for a verdict now */
	struct archangel_sensors_kind_stats kinds[8];	/* [ARCHANGEL_SENSOR_*]; [0] unused */
	__u64 lost_records;	/* LOST records sent */
	__u64 send_errors;	/* drops other than ring full (channel gone or failed) */
	__u64 requests;		/* AI_REQUESTs sent */
	__u64 requests_unsent;	/* AI_REQUESTs dropped: default applied at once */
	__u64 responses;	/* AI_RESPONSEs that resolved a pending request */
	__u64 responses_late;	/* ... naming no pending request (late or unknown) */
	__u64 responses_bad;	/* malformed AI_RESPONSEs, other message types */
	__u64 timeouts;		/* deadlines passed: default applied */
	__u64 detach_resolved;	/* resolved with the default at detach */
	__u64 pending_full;	/* no room to track a request: default applied at once */
	__u64 verdict_allow;	/* verdicts applied (responses and defaults) */
	__u64 verdict_deny;
	__u64 verdict_kill;
	__u64 cache_hits;	/* cases decided from the cache, no round trip */
	__u64 cache_misses;
	__u64 cache_inserts;
	__u64 cache_evictions;	/* live entries pushed out by newer ones */
	__u64 cache_expired;	/* entries found past their TTL */
	__u64 flows_new;
	__u64 flows_evicted;	/* flows pushed out of the flow table */
	__u64 exec_killed;	/* SIGKILLs sent to tasks that exec'd */
	__u64 exec_stopped;	/* SIGSTOPs (hold) */
	__u64 exec_continued;	/* SIGCONTs (hold released) */
	__u64 packets_dropped;	/* NF_DROP */
	__u64 exposure_count;	/* allow-and-ask execs killed after they ran */
	__u64 exposure_ns_total;	/* their time between exec and the kill */
	__u64 rtt_count;	/* responses timed from request to enforcement */
	__u64 rtt_ns_total;
	__u64 exposure_ns_max;
	__u64 rtt_ns_max;
	__u64 batches;		/* messages that carried a batch of records */
	__u64 reserved[7];	/* zero */
};

#define ARCHANGEL_SENSORS_IOC_ATTACH \
	_IOW(ARCHANGEL_SENSORS_IOC_MAGIC, 1, struct archangel_sensors_attach)
#define ARCHANGEL_SENSORS_IOC_DETACH	_IO(ARCHANGEL_SENSORS_IOC_MAGIC, 2)
#define ARCHANGEL_SENSORS_IOC_CONFIGURE \
	_IOW(ARCHANGEL_SENSORS_IOC_MAGIC, 3, struct archangel_sensors_config)
#define ARCHANGEL_SENSORS_IOC_GET_CONFIG \
	_IOWR(ARCHANGEL_SENSORS_IOC_MAGIC, 4, struct archangel_sensors_config)
#define ARCHANGEL_SENSORS_IOC_EXCLUDE_PID \
	_IOW(ARCHANGEL_SENSORS_IOC_MAGIC, 5, struct archangel_sensors_exclude)
#define ARCHANGEL_SENSORS_IOC_GET_STATS \
	_IOR(ARCHANGEL_SENSORS_IOC_MAGIC, 6, struct archangel_sensors_stats)

_Static_assert(sizeof(struct archangel_sensors_attach) == 24, "sensors_attach");
_Static_assert(sizeof(struct archangel_sensors_config) == 120, "sensors_config");
_Static_assert(__builtin_offsetof(struct archangel_sensors_config, policy) == 8, "config.policy");
_Static_assert(__builtin_offsetof(struct archangel_sensors_config, deadline_ms) == 12, "config.deadline_ms");
_Static_assert(__builtin_offsetof(struct archangel_sensors_config, syscalls) == 24, "config.syscalls");
_Static_assert(__builtin_offsetof(struct archangel_sensors_config, reserved) == 88, "config.reserved");
_Static_assert(sizeof(struct archangel_sensors_exclude) == 16, "sensors_exclude");
_Static_assert(sizeof(struct archangel_sensors_kind_stats) == 32, "sensors_kind_stats");
_Static_assert(sizeof(struct archangel_sensors_stats) == 576, "sensors_stats");
_Static_assert(__builtin_offsetof(struct archangel_sensors_stats, kinds) == 16, "stats.kinds");
_Static_assert(__builtin_offsetof(struct archangel_sensors_stats, lost_records) == 272, "stats.lost_records");
_Static_assert(__builtin_offsetof(struct archangel_sensors_stats, exposure_ns_max) == 496, "stats.exposure_ns_max");
_Static_assert(__builtin_offsetof(struct archangel_sensors_stats, batches) == 512, "stats.batches");
_Static_assert(__builtin_offsetof(struct archangel_sensors_attach, batch_bytes) == 8, "attach.batch_bytes");

#ifdef __cplusplus
}
#endif

#endif /* _UAPI_LINUX_ARCHANGEL_SENSORS_IOCTL_H */
