/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * archangel_sensors_uapi.h - event and verdict records of archangel_sensors.ko
 * (issue 10), carried as payloads of archangel_uapi.h messages.
 *
 * Every payload starts with struct archangel_sensor_event (version, kind);
 * the message type says the family (SYSCALL_EVENT: exec, exit, syscall;
 * NETWORK_EVENT; MEMORY_EVENT; STATS: lost records; AI_REQUEST /
 * AI_RESPONSE: the verdict loop). Little-endian, packed, explicit padding,
 * reserved fields must be zero. Produced by kernel/sensors
 * (archangel_sensors.ko); its controls are in archangel_sensors_ioctl.h.
 */
#ifndef _UAPI_LINUX_ARCHANGEL_SENSORS_H
#define _UAPI_LINUX_ARCHANGEL_SENSORS_H

#include <linux/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ARCHANGEL_SENSOR_VERSION	1

/* archangel_sensor_event.kind */
#define ARCHANGEL_SENSOR_EXEC		1	/* struct archangel_sensor_exec */
#define ARCHANGEL_SENSOR_EXIT		2	/* struct archangel_sensor_exit */
#define ARCHANGEL_SENSOR_SYSCALL	3	/* struct archangel_sensor_syscall */
#define ARCHANGEL_SENSOR_NET		4	/* struct archangel_sensor_net */
#define ARCHANGEL_SENSOR_MEM_FAULTS	5	/* struct archangel_sensor_mem_faults */
#define ARCHANGEL_SENSOR_MEM_WX		6	/* struct archangel_sensor_mem_wx */
#define ARCHANGEL_SENSOR_LOST		7	/* struct archangel_sensor_lost */

/*
 * The size of a record of each kind (0: no such kind), to walk a batched
 * payload (archangel_sensors_ioctl.h, ATTACH's batch_bytes).
 */
#define ARCHANGEL_SENSOR_RECORD_SIZE(kind) \
	((kind) == ARCHANGEL_SENSOR_EXEC ? 328U : \
	 (kind) == ARCHANGEL_SENSOR_EXIT ? 80U : \
	 (kind) == ARCHANGEL_SENSOR_SYSCALL ? 104U : \
	 (kind) == ARCHANGEL_SENSOR_NET ? 88U : \
	 (kind) == ARCHANGEL_SENSOR_MEM_FAULTS ? 56U : \
	 (kind) == ARCHANGEL_SENSOR_MEM_WX ? 72U : \
	 (kind) == ARCHANGEL_SENSOR_LOST ? 56U : 0U)

/* Verdicts (AI_RESPONSE, defaults in AI_REQUEST). */
#define ARCHANGEL_VERDICT_ALLOW		0
#define ARCHANGEL_VERDICT_DENY		1	/* exec: SIGKILL; packet: NF_DROP */
#define ARCHANGEL_VERDICT_KILL		2	/* SIGKILL the task */
#define ARCHANGEL_VERDICT_NONE		0xff	/* records: no verdict applied (yet) */

#define ARCHANGEL_SENSOR_COMM_LEN	16
#define ARCHANGEL_SENSOR_PATH_LEN	256

/* The common header of every sensor record: 40 bytes. */
struct archangel_sensor_event {
	__u16 version;		/* ARCHANGEL_SENSOR_VERSION */
	__u16 kind;		/* ARCHANGEL_SENSOR_* */
	__u32 cpu;		/* CPU that observed it */
	__u32 pid;		/* thread id (kernel pid) */
	__u32 tgid;		/* process id */
	__u32 uid;		/* real uid, init namespace */
	__u32 flags;		/* kind-specific; 0 when none */
	__u64 timestamp;	/* CLOCK_MONOTONIC ns when observed */
	__u64 reserved;		/* must be zero */
} __attribute__((packed));

/* EXEC: sched_process_exec. ev.flags: */
#define ARCHANGEL_EXEC_F_TRUNCATED	(1U << 0)	/* filename cut at PATH_LEN - 1 bytes */
#define ARCHANGEL_EXEC_F_CACHED		(1U << 1)	/* verdict came from the cache */
#define ARCHANGEL_EXEC_F_HELD		(1U << 2)	/* hold: the task is stopped until the verdict */
struct archangel_sensor_exec {
	struct archangel_sensor_event ev;
	__u32 ppid;		/* parent's tgid */
	__u32 filename_len;	/* bytes of filename used, < PATH_LEN */
	__u8  verdict;		/* verdict applied at exec, 0xff: none (yet) */
	__u8  pad[7];		/* must be zero */
	char  comm[ARCHANGEL_SENSOR_COMM_LEN];		/* new comm, NUL-padded */
	char  filename[ARCHANGEL_SENSOR_PATH_LEN];	/* NUL-terminated */
} __attribute__((packed));

/* EXIT: sched_process_exit, for every thread. ev.flags: */
#define ARCHANGEL_EXIT_F_GROUP_DEAD	(1U << 0)	/* the last thread: the process is gone */
struct archangel_sensor_exit {
	struct archangel_sensor_event ev;
	__u32 exit_code;	/* task->exit_code */
	__u32 pad;		/* must be zero */
	__u64 min_flt;		/* minor page faults of the thread */
	__u64 maj_flt;		/* major page faults of the thread */
	char  comm[ARCHANGEL_SENSOR_COMM_LEN];	/* NUL-padded */
} __attribute__((packed));

/* SYSCALL: raw_syscalls sys_enter (flags 0) or sys_exit (flags 1). */
#define ARCHANGEL_SYSCALL_F_EXIT	1
struct archangel_sensor_syscall {
	struct archangel_sensor_event ev;
	__u32 nr;		/* system call number */
	__u32 pad;		/* must be zero */
	__u64 args[6];		/* arguments (enter) */
	__s64 ret;		/* return value (exit), 0 on enter */
} __attribute__((packed));

/* NET: netfilter LOCAL_IN / LOCAL_OUT. Addresses in network byte order. */
#define ARCHANGEL_NET_IN		0
#define ARCHANGEL_NET_OUT		1
/* ev.flags of NET records */
#define ARCHANGEL_NET_F_NEW_FLOW	(1U << 0)	/* the first packet of its flow */
#define ARCHANGEL_NET_F_CACHED		(1U << 1)	/* verdict came from the cache */
struct archangel_sensor_net {
	struct archangel_sensor_event ev;
	__u8  family;		/* 4 or 6 */
	__u8  direction;	/* ARCHANGEL_NET_IN / _OUT */
	__u8  protocol;		/* IPPROTO_* */
	__u8  verdict;		/* verdict applied to the packet, 0xff: none */
	__u16 sport;		/* host byte order */
	__u16 dport;		/* host byte order */
	__u32 length;		/* IP packet bytes */
	__u32 pad;		/* must be zero */
	__u8  saddr[16];	/* IPv4: first 4 bytes */
	__u8  daddr[16];	/* IPv4: first 4 bytes */
} __attribute__((packed));

/* MEM_FAULTS: user page faults of one process since its last record. */
struct archangel_sensor_mem_faults {
	struct archangel_sensor_event ev;
	__u64 faults;		/* count in this record */
	__u64 last_address;	/* address of the last fault */
} __attribute__((packed));

/* MEM_WX: mmap/mprotect asking for PROT_WRITE | PROT_EXEC. */
struct archangel_sensor_mem_wx {
	struct archangel_sensor_event ev;
	__u32 nr;		/* mmap, mprotect or pkey_mprotect */
	__u32 prot;		/* PROT_* asked */
	__u64 address;		/* start */
	__u64 length;		/* bytes */
	__u64 map_flags;	/* mmap's flags, 0 for mprotect */
} __attribute__((packed));

/* LOST: events dropped on a full ring, per sensor and CPU. */
struct archangel_sensor_lost {
	struct archangel_sensor_event ev;	/* ev.cpu: where they were lost */
	__u32 sensor;		/* ARCHANGEL_SENSOR_* that lost them */
	__u32 pad;		/* must be zero */
	__u64 count;		/* events lost since the previous record */
} __attribute__((packed));

/*
 * AI_REQUEST payload: this header, then the event record it is about
 * (event_size bytes, one of the structs above).
 */
struct archangel_sensor_request {
	__u64 id;		/* request id, unique while the module is loaded */
	__u64 deadline;		/* CLOCK_MONOTONIC ns after which default applies */
	__u8  default_verdict;	/* ARCHANGEL_VERDICT_* applied on deadline */
	__u8  pad[3];		/* must be zero */
	__u32 event_size;	/* bytes of the event that follows */
} __attribute__((packed));

/* AI_RESPONSE payload. */
struct archangel_sensor_response {
	__u64 id;		/* the request's id */
	__u8  verdict;		/* ARCHANGEL_VERDICT_* */
	__u8  pad[3];		/* must be zero */
	__u32 ttl_ms;		/* cache the verdict this long, 0: do not cache */
	__u32 score;		/* engine's score, 0..1000000, informative */
	__u32 reserved;		/* must be zero */
} __attribute__((packed));

_Static_assert(sizeof(struct archangel_sensor_event) == 40, "sensor_event is 40 bytes");
_Static_assert(__builtin_offsetof(struct archangel_sensor_event, kind) == 2, "event.kind");
_Static_assert(__builtin_offsetof(struct archangel_sensor_event, cpu) == 4, "event.cpu");
_Static_assert(__builtin_offsetof(struct archangel_sensor_event, pid) == 8, "event.pid");
_Static_assert(__builtin_offsetof(struct archangel_sensor_event, tgid) == 12, "event.tgid");
_Static_assert(__builtin_offsetof(struct archangel_sensor_event, uid) == 16, "event.uid");
_Static_assert(__builtin_offsetof(struct archangel_sensor_event, flags) == 20, "event.flags");
_Static_assert(__builtin_offsetof(struct archangel_sensor_event, timestamp) == 24, "event.timestamp");
_Static_assert(__builtin_offsetof(struct archangel_sensor_event, reserved) == 32, "event.reserved");
_Static_assert(sizeof(struct archangel_sensor_exec) == 328, "sensor_exec");
_Static_assert(__builtin_offsetof(struct archangel_sensor_exec, comm) == 56, "exec.comm");
_Static_assert(__builtin_offsetof(struct archangel_sensor_exec, filename) == 72, "exec.filename");
_Static_assert(sizeof(struct archangel_sensor_exit) == 80, "sensor_exit");
_Static_assert(__builtin_offsetof(struct archangel_sensor_exit, min_flt) == 48, "exit.min_flt");
_Static_assert(sizeof(struct archangel_sensor_syscall) == 104, "sensor_syscall");
_Static_assert(__builtin_offsetof(struct archangel_sensor_syscall, args) == 48, "syscall.args");
_Static_assert(__builtin_offsetof(struct archangel_sensor_syscall, ret) == 96, "syscall.ret");
_Static_assert(sizeof(struct archangel_sensor_net) == 88, "sensor_net");
_Static_assert(__builtin_offsetof(struct archangel_sensor_net, length) == 48, "net.length");
_Static_assert(__builtin_offsetof(struct archangel_sensor_net, saddr) == 56, "net.saddr");
_Static_assert(__builtin_offsetof(struct archangel_sensor_net, daddr) == 72, "net.daddr");
_Static_assert(sizeof(struct archangel_sensor_mem_faults) == 56, "sensor_mem_faults");
_Static_assert(sizeof(struct archangel_sensor_mem_wx) == 72, "sensor_mem_wx");
_Static_assert(__builtin_offsetof(struct archangel_sensor_mem_wx, address) == 48, "mem_wx.address");
_Static_assert(sizeof(struct archangel_sensor_lost) == 56, "sensor_lost");
_Static_assert(__builtin_offsetof(struct archangel_sensor_lost, count) == 48, "lost.count");
_Static_assert(ARCHANGEL_SENSOR_RECORD_SIZE(ARCHANGEL_SENSOR_EXEC) == sizeof(struct archangel_sensor_exec) &&
	       ARCHANGEL_SENSOR_RECORD_SIZE(ARCHANGEL_SENSOR_EXIT) == sizeof(struct archangel_sensor_exit) &&
	       ARCHANGEL_SENSOR_RECORD_SIZE(ARCHANGEL_SENSOR_SYSCALL) == sizeof(struct archangel_sensor_syscall) &&
	       ARCHANGEL_SENSOR_RECORD_SIZE(ARCHANGEL_SENSOR_NET) == sizeof(struct archangel_sensor_net) &&
	       ARCHANGEL_SENSOR_RECORD_SIZE(ARCHANGEL_SENSOR_MEM_FAULTS) ==
	       sizeof(struct archangel_sensor_mem_faults) &&
	       ARCHANGEL_SENSOR_RECORD_SIZE(ARCHANGEL_SENSOR_MEM_WX) == sizeof(struct archangel_sensor_mem_wx) &&
	       ARCHANGEL_SENSOR_RECORD_SIZE(ARCHANGEL_SENSOR_LOST) == sizeof(struct archangel_sensor_lost),
	       "ARCHANGEL_SENSOR_RECORD_SIZE");
_Static_assert(sizeof(struct archangel_sensor_request) == 24, "sensor_request");
_Static_assert(__builtin_offsetof(struct archangel_sensor_request, event_size) == 20, "request.event_size");
_Static_assert(sizeof(struct archangel_sensor_response) == 24, "sensor_response");
_Static_assert(__builtin_offsetof(struct archangel_sensor_response, ttl_ms) == 12, "response.ttl_ms");

#ifdef __cplusplus
}
#endif

#endif /* _UAPI_LINUX_ARCHANGEL_SENSORS_H */
