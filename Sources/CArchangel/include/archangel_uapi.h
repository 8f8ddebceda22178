/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * archangel_uapi.h - the shared-memory ABI of the Archangel bridge.
 *
 * This header is the single source of the layout that the kernel module, the
 * userspace host and every client agree on. The kernel module includes it
 * through Kbuild's -I; Swift imports it as the CArchangel module. Rules, as for
 * any Linux uapi header: <linux/types.h> only, fixed-width __uN fields, no
 * pointers, no bool, no enums inside shared structs, explicit padding,
 * reserved fields that must be zero, and a _Static_assert on every size and
 * offset. docs/abi.md explains the layout; docs/memory-ordering.md the rings.
 *
 * Channel memory, as laid out by the creator (every offset is published in
 * struct archangel_channel_offsets, so nobody hard-codes one):
 *
 *   page 0        struct archangel_channel_header (written once by the creator)
 *   page 1        index lines written by the kernel side (one 64-byte line each)
 *   page 2        index lines written by the user side
 *   data areas    to-user normal/express, to-kernel normal/express rings,
 *                 the two buffer-return rings, the two buffer pools
 *
 * Putting each side's indices on its own page lets the kernel map the lines it
 * owns read-only into userspace.
 */
#ifndef _UAPI_LINUX_ARCHANGEL_H
#define _UAPI_LINUX_ARCHANGEL_H

#include <linux/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Versioning
 */

/* Major changes break the layout; minor ones only add features. */
#define ARCHANGEL_ABI_VERSION_MAJOR	1
#define ARCHANGEL_ABI_VERSION_MINOR	1
#define ARCHANGEL_ABI_VERSION \
	((ARCHANGEL_ABI_VERSION_MAJOR << 16) | ARCHANGEL_ABI_VERSION_MINOR)

/* Feature bits, in archangel_channel_offsets.features. */
#define ARCHANGEL_FEATURE_EXPRESS_LANE	(1U << 0) /* HIGH/CRITICAL use a ring of their own */
#define ARCHANGEL_FEATURE_BUFFER_POOL	(1U << 1) /* large payloads travel by descriptor */
#define ARCHANGEL_FEATURE_NEED_WAKEUP	(1U << 2) /* wake-ups only when the peer sleeps */
#define ARCHANGEL_FEATURE_CORRELATION	(1U << 3) /* ARCHANGEL_MSG_F_CORRELATED records */
#define ARCHANGEL_FEATURE_TIMED_POLL	(1U << 4) /* a consumer may arm express only: it polls
						   * by itself within its window (ABI 1.1) */
#define ARCHANGEL_FEATURES_ALL \
	(ARCHANGEL_FEATURE_EXPRESS_LANE | ARCHANGEL_FEATURE_BUFFER_POOL | \
	 ARCHANGEL_FEATURE_NEED_WAKEUP | ARCHANGEL_FEATURE_CORRELATION | \
	 ARCHANGEL_FEATURE_TIMED_POLL)

/* ---------------------------------------------------------------------------
 * Messages (the seed's header, byte for byte)
 */

#define ARCHANGEL_MSG_MAGIC		0x41524348U	/* "ARCH" */

/* Message types, in the seed's order. 0 is never a valid type. */
enum archangel_msg_type {
	ARCHANGEL_MSG_AI_REQUEST = 1,	/* AI inference request */
	ARCHANGEL_MSG_AI_RESPONSE,	/* AI inference response */
	ARCHANGEL_MSG_SYSCALL_EVENT,	/* system call event */
	ARCHANGEL_MSG_NETWORK_EVENT,	/* network packet event */
	ARCHANGEL_MSG_MEMORY_EVENT,	/* memory access event */
	ARCHANGEL_MSG_CONTROL,		/* control message */
	ARCHANGEL_MSG_STATS,		/* statistics update */
};
#define ARCHANGEL_MSG_TYPE_MIN		ARCHANGEL_MSG_AI_REQUEST
#define ARCHANGEL_MSG_TYPE_MAX		ARCHANGEL_MSG_STATS
/* Type carried by padding records (ARCHANGEL_MSG_F_PAD); never delivered. */
#define ARCHANGEL_MSG_TYPE_PAD		0

/* Priorities. HIGH and CRITICAL travel on the express lane. */
enum archangel_msg_priority {
	ARCHANGEL_PRIORITY_LOW = 0,
	ARCHANGEL_PRIORITY_NORMAL,
	ARCHANGEL_PRIORITY_HIGH,
	ARCHANGEL_PRIORITY_CRITICAL,
};
#define ARCHANGEL_PRIORITY_MAX		ARCHANGEL_PRIORITY_CRITICAL

/* Message flags (archangel_msg_header.flags). */
#define ARCHANGEL_MSG_F_DMA		(1U << 0) /* payload is archangel_pool_desc[] into the sender's pool */
#define ARCHANGEL_MSG_F_PAD		(1U << 1) /* padding to the end of the data area; skip it */
#define ARCHANGEL_MSG_F_CORRELATED	(1U << 2) /* a __u64 request sequence precedes the payload */
#define ARCHANGEL_MSG_F_COPIED		(1U << 3) /* pool was empty: a large payload copied inline */
#define ARCHANGEL_MSG_F_KNOWN \
	(ARCHANGEL_MSG_F_DMA | ARCHANGEL_MSG_F_PAD | \
	 ARCHANGEL_MSG_F_CORRELATED | ARCHANGEL_MSG_F_COPIED)

/*
 * The record header. A record is this header, then (with
 * ARCHANGEL_MSG_F_CORRELATED) a __u64 naming the request it answers, then the
 * payload; the next record starts at the next 8-byte boundary. `size` counts
 * all of it except the alignment padding.
 */
struct archangel_msg_header {
	__u32 magic;		/* ARCHANGEL_MSG_MAGIC */
	__u8  type;		/* enum archangel_msg_type */
	__u8  priority;		/* enum archangel_msg_priority */
	__u16 flags;		/* ARCHANGEL_MSG_F_* */
	__u32 size;		/* total record size including this header */
	__u64 sequence;		/* per-direction sequence number, from 1 */
	__u64 timestamp;	/* CLOCK_MONOTONIC nanoseconds at send */
} __attribute__((packed));

#define ARCHANGEL_MSG_HEADER_SIZE	28U
#define ARCHANGEL_RECORD_ALIGN		8U
/* Smallest record: a header, rounded up to the record alignment. */
#define ARCHANGEL_RECORD_MIN		32U
#define ARCHANGEL_CORRELATION_SIZE	8U

/*
 * One scatter-gather element of an ARCHANGEL_MSG_F_DMA payload: a slice of a
 * buffer in the sender's pool. The receiver reads it in place and hands the
 * buffer back through the pool's return ring.
 */
struct archangel_pool_desc {
	__u32 buffer;		/* buffer index, < buffer_count */
	__u32 offset;		/* byte offset in the buffer */
	__u32 length;		/* bytes, offset + length <= buffer_size */
	__u32 reserved;		/* must be zero */
};

/* ---------------------------------------------------------------------------
 * Rings
 *
 * A ring's indices are free-running __u64 counters (bytes for record rings,
 * entries for return rings); position = counter & (size - 1). Each index and
 * each flag word sits alone on a 64-byte line written by one side only.
 */

#define ARCHANGEL_CACHELINE		64U
#define ARCHANGEL_PAGE_SIZE		4096U

/*
 * need_wakeup word, written by the consumer: it is about to sleep.
 *
 * With ARCHANGEL_FEATURE_TIMED_POLL a consumer sleeps in one of three ways,
 * and says which by the lanes it arms (docs/efficiency.md):
 *   blocking     both lanes' words armed: wake me for any message;
 *   timed poll   only the express lane's word armed: I look again by myself
 *                within my window, wake me only for an urgent message
 *                (ARCHANGEL_SEND_URGENT, or priority CRITICAL);
 *   paced poll   only the normal lane's word armed: I look again by myself
 *                within my window, and you may wake me for the first message
 *                due, at most once per 19/20 of a window (the leading edge
 *                only: no trailing edge is needed), and for an urgent one.
 * A producer therefore signals a non-urgent publication (either lane) only
 * when the normal lane's word is armed, and an urgent one when either is.
 * A producer that does not know paced polls treats one as blocking (with
 * its coalescing): more wake-ups, never a lost one.
 */
#define ARCHANGEL_RING_NEED_WAKEUP	(1U << 0)
/* need_space word, written by the producer: it waits for room. */
#define ARCHANGEL_RING_NEED_SPACE	(1U << 0)

/* Where one ring lives, as byte offsets from the start of channel memory. */
struct archangel_ring_offsets {
	__u64 producer;		/* __u64 producer counter (written by producer) */
	__u64 consumer;		/* __u64 consumer counter (written by consumer) */
	__u64 need_wakeup;	/* __u32 ARCHANGEL_RING_NEED_WAKEUP (consumer) */
	__u64 need_space;	/* __u32 ARCHANGEL_RING_NEED_SPACE (producer) */
	__u64 data;		/* data area, page aligned */
	__u32 size;		/* data area bytes, a power of two */
	__u32 entry_size;	/* 0: variable-length records; else fixed entry bytes */
};

/* A buffer pool owned by the sender of one direction. */
struct archangel_pool_offsets {
	__u64 buffers;		/* first buffer, page aligned; 0 when there is no pool */
	__u32 buffer_size;	/* bytes per buffer, a power of two */
	__u32 buffer_count;	/* number of buffers */
	__u32 threshold;	/* payloads above this many bytes use the pool */
	__u32 max_segments;	/* most descriptors in one message */
	struct archangel_ring_offsets returns;	/* __u32 buffer indices, receiver -> sender */
	__u64 return_intent;	/* struct archangel_receiver_progress line (receiver) */
};

/*
 * The receiver's progress line, one 64-byte line on the receiver's page at
 * pool_offsets.return_intent, written only by the receiver. `delivered` is
 * each lane's index just past the last message whose delivery completed,
 * stored after every message; the consumer index itself is published in
 * batches (it is what the producer reads, so it is not written per message).
 * A successor that takes over a dead receiver resumes at `delivered` when it
 * lies between the consumer and producer indices, else at the consumer
 * index (a receiver that does not keep `delivered`, such as the kernel,
 * publishes its consumer index after every message instead). docs/recovery.md.
 */
struct archangel_receiver_progress {
	__u64 return_intent;	/* ARCHANGEL_RETURN_INTENT of the last pool message */
	__u64 delivered[2];	/* per lane (0 normal, 1 express): index after the last delivered message */
	__u64 reserved[5];	/* zero */
};

/*
 * The return intent: how a successor finishes a receiver that died between
 * consuming a pool message and handing its buffers back (docs/recovery.md).
 * After a pool message's payload has been used, the receiver
 *   1. writes the buffer indices into the return ring, unpublished;
 *   2. store-release return_intent = ARCHANGEL_RETURN_INTENT(c, lane, r), where
 *      c is the lane's consumer index after the record and r the return
 *      ring's producer index after the entries;
 *   3. store-release the lane's delivered index = c (struct archangel_receiver_progress; a receiver
 *      without a progress line stores its consumer index instead);
 *   4. store-release the return ring's producer index = r.
 * Whoever recovers a dead receiver compares: delivered index == c but return
 * producer != r means step 4 is missing, and it publishes r itself.
 * Consumer indices are multiples of 8, so bit 0 is free to name the lane.
 */
#define ARCHANGEL_INTENT_EXPRESS	(1ULL << 0)
#define ARCHANGEL_RETURN_INTENT(consumer, express, returns) \
	(((__u64)(__u32)(returns) << 32) | (__u32)(consumer) | \
	 ((express) ? ARCHANGEL_INTENT_EXPRESS : 0))

/* Everything one direction uses. */
struct archangel_direction_offsets {
	struct archangel_ring_offsets normal;	/* LOW and NORMAL */
	struct archangel_ring_offsets express;	/* HIGH and CRITICAL, drained first */
	struct archangel_pool_offsets pool;
};

/*
 * The channel's geometry, filled in by the creator and read by whoever
 * attaches (io_uring's io_sqring_offsets, AF_XDP's xdp_mmap_offsets). The
 * attacher checks abi_version and every offset against total_size before it
 * uses any of them.
 */
struct archangel_channel_offsets {
	__u32 abi_version;	/* ARCHANGEL_ABI_VERSION of the creator */
	__u32 features;		/* ARCHANGEL_FEATURE_* */
	__u64 total_size;	/* bytes of channel memory */
	__u32 channel_id;	/* id in the communication manager */
	__u32 reserved0;	/* must be zero */
	__u64 kernel_lines;	/* page of lines written by the kernel side */
	__u64 user_lines;	/* page of lines written by the user side */
	struct archangel_direction_offsets to_user;	/* kernel -> user */
	struct archangel_direction_offsets to_kernel;	/* user -> kernel */
	__u64 reserved[4];	/* must be zero */
};

#define ARCHANGEL_CHANNEL_MAGIC		0x4e484341U	/* "ACHN" */

/* Page 0 of channel memory. */
struct archangel_channel_header {
	__u32 magic;		/* ARCHANGEL_CHANNEL_MAGIC */
	__u32 header_size;	/* sizeof(struct archangel_channel_header) */
	struct archangel_channel_offsets offsets;	/* copy, for inspection tools */
};

/* ---------------------------------------------------------------------------
 * Layout checks: the Swift test ABILayoutTests checks the same numbers.
 */
_Static_assert(sizeof(struct archangel_msg_header) == 28, "msg header is 28 bytes");
_Static_assert(__builtin_offsetof(struct archangel_msg_header, magic) == 0, "archangel_msg_header.magic");
_Static_assert(__builtin_offsetof(struct archangel_msg_header, type) == 4, "archangel_msg_header.type");
_Static_assert(__builtin_offsetof(struct archangel_msg_header, priority) == 5, "archangel_msg_header.priority");
_Static_assert(__builtin_offsetof(struct archangel_msg_header, flags) == 6, "archangel_msg_header.flags");
_Static_assert(__builtin_offsetof(struct archangel_msg_header, size) == 8, "archangel_msg_header.size");
_Static_assert(__builtin_offsetof(struct archangel_msg_header, sequence) == 12, "archangel_msg_header.sequence");
_Static_assert(__builtin_offsetof(struct archangel_msg_header, timestamp) == 20, "archangel_msg_header.timestamp");
_Static_assert(sizeof(struct archangel_pool_desc) == 16, "pool desc is 16 bytes");
_Static_assert(__builtin_offsetof(struct archangel_pool_desc, buffer) == 0, "archangel_pool_desc.buffer");
_Static_assert(__builtin_offsetof(struct archangel_pool_desc, offset) == 4, "archangel_pool_desc.offset");
_Static_assert(__builtin_offsetof(struct archangel_pool_desc, length) == 8, "archangel_pool_desc.length");
_Static_assert(__builtin_offsetof(struct archangel_pool_desc, reserved) == 12, "archangel_pool_desc.reserved");
_Static_assert(sizeof(struct archangel_ring_offsets) == 48, "ring offsets are 48 bytes");
_Static_assert(__builtin_offsetof(struct archangel_ring_offsets, producer) == 0, "archangel_ring_offsets.producer");
_Static_assert(__builtin_offsetof(struct archangel_ring_offsets, consumer) == 8, "archangel_ring_offsets.consumer");
_Static_assert(__builtin_offsetof(struct archangel_ring_offsets, need_wakeup) == 16, "archangel_ring_offsets.need_wakeup");
_Static_assert(__builtin_offsetof(struct archangel_ring_offsets, need_space) == 24, "archangel_ring_offsets.need_space");
_Static_assert(__builtin_offsetof(struct archangel_ring_offsets, data) == 32, "archangel_ring_offsets.data");
_Static_assert(__builtin_offsetof(struct archangel_ring_offsets, size) == 40, "archangel_ring_offsets.size");
_Static_assert(__builtin_offsetof(struct archangel_ring_offsets, entry_size) == 44, "archangel_ring_offsets.entry_size");
_Static_assert(sizeof(struct archangel_pool_offsets) == 80, "pool offsets are 80 bytes");
_Static_assert(__builtin_offsetof(struct archangel_pool_offsets, buffers) == 0, "archangel_pool_offsets.buffers");
_Static_assert(__builtin_offsetof(struct archangel_pool_offsets, buffer_size) == 8, "archangel_pool_offsets.buffer_size");
_Static_assert(__builtin_offsetof(struct archangel_pool_offsets, buffer_count) == 12, "archangel_pool_offsets.buffer_count");
_Static_assert(__builtin_offsetof(struct archangel_pool_offsets, threshold) == 16, "archangel_pool_offsets.threshold");
_Static_assert(__builtin_offsetof(struct archangel_pool_offsets, max_segments) == 20, "archangel_pool_offsets.max_segments");
_Static_assert(__builtin_offsetof(struct archangel_pool_offsets, returns) == 24, "archangel_pool_offsets.returns");
_Static_assert(__builtin_offsetof(struct archangel_pool_offsets, return_intent) == 72, "archangel_pool_offsets.return_intent");
_Static_assert(sizeof(struct archangel_receiver_progress) == 64, "receiver progress is one line");
_Static_assert(__builtin_offsetof(struct archangel_receiver_progress, return_intent) == 0, "archangel_receiver_progress.return_intent");
_Static_assert(__builtin_offsetof(struct archangel_receiver_progress, delivered) == 8, "archangel_receiver_progress.delivered");
_Static_assert(__builtin_offsetof(struct archangel_receiver_progress, reserved) == 24, "archangel_receiver_progress.reserved");
_Static_assert(sizeof(struct archangel_direction_offsets) == 176, "direction offsets");
_Static_assert(__builtin_offsetof(struct archangel_direction_offsets, normal) == 0, "archangel_direction_offsets.normal");
_Static_assert(__builtin_offsetof(struct archangel_direction_offsets, express) == 48, "archangel_direction_offsets.express");
_Static_assert(__builtin_offsetof(struct archangel_direction_offsets, pool) == 96, "archangel_direction_offsets.pool");
_Static_assert(sizeof(struct archangel_channel_offsets) == 424, "channel offsets");
_Static_assert(__builtin_offsetof(struct archangel_channel_offsets, abi_version) == 0, "archangel_channel_offsets.abi_version");
_Static_assert(__builtin_offsetof(struct archangel_channel_offsets, features) == 4, "archangel_channel_offsets.features");
_Static_assert(__builtin_offsetof(struct archangel_channel_offsets, total_size) == 8, "archangel_channel_offsets.total_size");
_Static_assert(__builtin_offsetof(struct archangel_channel_offsets, channel_id) == 16, "archangel_channel_offsets.channel_id");
_Static_assert(__builtin_offsetof(struct archangel_channel_offsets, reserved0) == 20, "archangel_channel_offsets.reserved0");
_Static_assert(__builtin_offsetof(struct archangel_channel_offsets, kernel_lines) == 24, "archangel_channel_offsets.kernel_lines");
_Static_assert(__builtin_offsetof(struct archangel_channel_offsets, user_lines) == 32, "archangel_channel_offsets.user_lines");
_Static_assert(__builtin_offsetof(struct archangel_channel_offsets, to_user) == 40, "archangel_channel_offsets.to_user");
_Static_assert(__builtin_offsetof(struct archangel_channel_offsets, to_kernel) == 216, "archangel_channel_offsets.to_kernel");
_Static_assert(__builtin_offsetof(struct archangel_channel_offsets, reserved) == 392, "archangel_channel_offsets.reserved");
_Static_assert(sizeof(struct archangel_channel_header) == 432, "channel header");
_Static_assert(__builtin_offsetof(struct archangel_channel_header, magic) == 0, "archangel_channel_header.magic");
_Static_assert(__builtin_offsetof(struct archangel_channel_header, header_size) == 4, "archangel_channel_header.header_size");
_Static_assert(__builtin_offsetof(struct archangel_channel_header, offsets) == 8, "archangel_channel_header.offsets");
_Static_assert(ARCHANGEL_RECORD_MIN >= ARCHANGEL_MSG_HEADER_SIZE, "min record holds a header");

/* ---------------------------------------------------------------------------
 * Device interface: /dev/archangel and /dev/archangel_rw (the kernel backend)
 *
 * /dev/archangel (misc, mode 0600). Each open file starts unbound; CREATE
 * with ARCHANGEL_CREATE_ATTACH or ATTACH binds it to one channel as that
 * channel's single user side. A second ATTACH of a channel while another file
 * is bound to it fails with -EBUSY; ATTACH again on the file already bound to
 * that channel just reports the geometry again. Channels live until DESTROY
 * (ioctl or in-kernel API) or module unload: closing the user file only
 * detaches it, keeping the channel, its memory and every committed message
 * for the next attacher. After DESTROY a bound file sees -EPIPE from every
 * ioctl and EPOLLHUP | EPOLLERR from poll().
 *
 * mmap: file offset = layout offset. Reserve the whole span (mmap_size) with
 * an anonymous PROT_NONE mapping, then map the pieces MAP_SHARED | MAP_FIXED:
 *   [0, 2 pages)                header + kernel-written lines: PROT_READ only
 *                               (the module refuses VM_WRITE there and clears
 *                               VM_MAYWRITE);
 *   [2 pages, end of the rings) user-written lines and every ring: read-write;
 *   each pool (to_user.pool.buffers, to_kernel.pool.buffers) on its own,
 *                               read-write.
 * A mapping must lie within one of these regions, else -EINVAL. The extra
 * shared region (SETUP_SHM) is mapped at file offset ARCHANGEL_MMAP_OFF_SHARED.
 *
 * poll() on a bound file: EPOLLIN when to_user holds a record, EPOLLOUT when
 * both to_kernel lanes have room for a record of ARCHANGEL_RECORD_MIN bytes,
 * EPOLLHUP | EPOLLERR once the channel is destroyed or has failed (the kernel
 * found a bad index, record, descriptor or return entry written by the user
 * side; it is counted in the channel's errors and never followed).
 */

#include <linux/ioctl.h>

#define ARCHANGEL_DEVICE_NAME		"archangel"	/* /dev/archangel */
#define ARCHANGEL_RW_DEVICE_NAME	"archangel_rw"	/* /dev/archangel_rw */
#define ARCHANGEL_IOC_MAGIC		'A'

/* In CREATE/ATTACH channel_id: let the module pick the lowest free id. */
#define ARCHANGEL_CHANNEL_ANY		0xffffffffU
/* File offset of the extra shared region (SETUP_SHM). */
#define ARCHANGEL_MMAP_OFF_SHARED	(1ULL << 40)

/* archangel_create_req.flags */
#define ARCHANGEL_CREATE_ATTACH		(1U << 0) /* bind this file, as ATTACH does */
#define ARCHANGEL_CREATE_EXACT		(1U << 1) /* take every geometry field as given: 0 is 0, not "default" */
#define ARCHANGEL_CREATE_FLAGS_ALL	(ARCHANGEL_CREATE_ATTACH | ARCHANGEL_CREATE_EXACT)

/*
 * ARCHANGEL_IOC_CREATE. A geometry field of 0 means the default of Swift's
 * ChannelConfiguration.default (65536, 16384, 4096, 64, 1024, 32) unless
 * ARCHANGEL_CREATE_EXACT is set (then pool_buffer_count 0 means no pool and
 * pool_threshold 0 sends every non-empty payload through the pool). The
 * rules are those of ChannelConfiguration.validate(). Errors: -EINVAL bad
 * geometry, flags or reserved field; -EEXIST id taken; -ENOSPC no free id
 * (ids are 0 .. max_channels - 1, a module parameter, 16 by default);
 * -EBUSY with ARCHANGEL_CREATE_ATTACH on a file that is already bound.
 */
struct archangel_create_req {
	__u32 channel_id;		/* in: id or ARCHANGEL_CHANNEL_ANY; out: the id */
	__u32 flags;			/* ARCHANGEL_CREATE_* */
	__u32 normal_ring_bytes;	/* power of two, 4 KiB .. 1 GiB; 0: 65536 */
	__u32 express_ring_bytes;	/* power of two, 4 KiB .. 1 GiB; 0: 16384 */
	__u32 pool_buffer_size;		/* power of two, 256 .. 1 MiB; 0: 4096 */
	__u32 pool_buffer_count;	/* 0 .. 2^20 buffers per direction; 0: 64 */
	__u32 pool_threshold;		/* payloads above this use the pool; 0: 1024 */
	__u32 max_segments;		/* most buffers in one message; 0: 32 */
	__u32 reserved[8];		/* must be zero */
};

/*
 * ARCHANGEL_IOC_ATTACH. Errors: -ENOENT no such channel; -EBUSY another
 * file is bound to it, or this file is bound to another channel; -EPROTO
 * abi_version has another major version than the module's (abi_version is
 * then written back with the module's, so the caller can print both).
 */
struct archangel_attach_req {
	__u32 channel_id;		/* in: the channel to bind this file to */
	__u32 abi_version;		/* in: caller's ARCHANGEL_ABI_VERSION; out: the module's */
	__u64 mmap_size;		/* out: bytes to reserve and map (= offsets.total_size) */
	struct archangel_channel_offsets offsets;	/* out: the channel's geometry */
	__u64 reserved[4];		/* must be zero in; zero out */
};

/* ARCHANGEL_IOC_SET_EVENTFDS: -1 unregisters; errors -EBADF, -EINVAL. */
struct archangel_eventfds {
	__s32 data_fd;		/* signalled when the kernel published on to_user and
				 * the user's to_user need_wakeup asked for it */
	__s32 space_fd;		/* signalled when the kernel freed room on to_kernel
				 * (consumer index or returned buffers) and the
				 * user's to_kernel need_space asked for it */
	__u32 reserved[2];	/* must be zero */
};

/* ARCHANGEL_IOC_NOTIFY argument: a bit mask. */
#define ARCHANGEL_NOTIFY_DATA		(1U << 0) /* I published on to_kernel: wake kernel receivers */
#define ARCHANGEL_NOTIFY_SPACE		(1U << 1) /* I consumed on to_user / returned buffers: wake kernel senders */
#define ARCHANGEL_NOTIFY_ALL		(ARCHANGEL_NOTIFY_DATA | ARCHANGEL_NOTIFY_SPACE)

/* archangel_loadgen_req.mode */
#define ARCHANGEL_LOADGEN_PRODUCE	1U /* send count messages kernel -> user */
#define ARCHANGEL_LOADGEN_ECHO		2U /* receive count, answer each with its payload */
#define ARCHANGEL_LOADGEN_SINK		3U /* receive and discard count messages */
/* archangel_loadgen_req.flags */
#define ARCHANGEL_LOADGEN_BLOCK		(1U << 0) /* wait for room / messages */
#define ARCHANGEL_LOADGEN_BATCH		(1U << 1) /* PRODUCE: publish every 64 messages, not each */
#define ARCHANGEL_LOADGEN_PACED		(1U << 2) /* PRODUCE: one message per interval_ns */
#define ARCHANGEL_LOADGEN_ATOMIC	(1U << 3) /* PRODUCE: send with bottom halves off, as a
						   * softirq sender (wake-ups deferred) */
#define ARCHANGEL_LOADGEN_FLAGS_ALL \
	(ARCHANGEL_LOADGEN_BLOCK | ARCHANGEL_LOADGEN_BATCH | ARCHANGEL_LOADGEN_PACED | \
	 ARCHANGEL_LOADGEN_ATOMIC)
/* Bounds of archangel_loadgen_req.interval_ns with ARCHANGEL_LOADGEN_PACED. */
#define ARCHANGEL_LOADGEN_INTERVAL_MAX_NS	1000000000ULL	/* 1 s */

/*
 * ARCHANGEL_IOC_LOADGEN: the in-kernel load generator, run in the calling
 * thread (so the user side runs in another thread). PRODUCE sends message i
 * (i = 0 .. count - 1) with type 1 + i % 7 and priority i % 4, `size` payload
 * bytes with byte j = (i + j) & 0xff, then i written over the first 8 bytes
 * little-endian when size >= 8. ECHO receives count messages and answers
 * each with the same payload, type AI_RESPONSE, correlated to the request's
 * sequence when the request is an AI_REQUEST (priority: the request's).
 * SINK receives and drops count messages. Without ARCHANGEL_LOADGEN_BLOCK a
 * full or empty ring ends the run with -EAGAIN; with it the thread sleeps
 * (interruptible: -EINTR). `done` and `elapsed_ns` are filled in on every
 * return, errors included. On /dev/archangel_rw channel_id is ignored and the
 * same modes run against that file's FIFOs.
 *
 * ARCHANGEL_LOADGEN_PACED (PRODUCE on /dev/archangel only, else -EINVAL):
 * message i is due at start + i * interval_ns (absolute deadlines, so a late
 * message is followed by a catch-up burst, not a shifted schedule); the
 * thread sleeps on an hrtimer until each is due, and every message has
 * priority NORMAL, so that the wake-up coalescing (not CRITICAL's urgency)
 * decides the user receiver's wake-ups (docs/efficiency.md). interval_ns
 * must be 1 .. ARCHANGEL_LOADGEN_INTERVAL_MAX_NS with PACED and 0 without.
 * ARCHANGEL_LOADGEN_ATOMIC (PRODUCE on /dev/archangel only): each send is
 * made with bottom halves disabled, as from a netfilter hook, so its
 * wake-ups take the deferred (irq_work) path; a full ring is then waited
 * for outside that section.
 */
struct archangel_loadgen_req {
	__u32 channel_id;	/* in: channel (on /dev/archangel) */
	__u32 mode;		/* in: ARCHANGEL_LOADGEN_* mode */
	__u32 size;		/* in: payload bytes (PRODUCE) */
	__u32 flags;		/* in: ARCHANGEL_LOADGEN_BLOCK, _BATCH */
	__u64 count;		/* in: messages to send or receive */
	__u64 elapsed_ns;	/* out: ktime from first to last message */
	__u64 done;		/* out: messages sent or received */
	__u64 interval_ns;	/* in: ARCHANGEL_LOADGEN_PACED: ns between messages; else 0 */
	__u64 reserved[3];	/* must be zero */
};

/*
 * /dev/archangel_rw (misc, mode 0600): the read()/write() baseline. Each open
 * file owns two FIFOs of whole messages (at most ARCHANGEL_RW_MAX_MSG bytes
 * each, ARCHANGEL_RW_FIFO_BYTES queued per FIFO): write() of n bytes queues
 * one message on the to_kernel FIFO (drained by LOADGEN ECHO/SINK), read()
 * takes one message from the to_user FIFO (filled by LOADGEN PRODUCE/ECHO),
 * returning its length, or -EMSGSIZE leaving it queued when the buffer is
 * too small. Both block unless O_NONBLOCK (-EAGAIN). With
 * ARCHANGEL_IOC_RW_LOOPBACK set to 1, write() queues on the to_user FIFO, so
 * a single thread can read back what it wrote. poll(): EPOLLIN / EPOLLOUT.
 */
/*
 * Wait strategies (docs/efficiency.md), the same knobs as Swift's WaitPolicy.
 *
 * ARCHANGEL_IOC_SET_WAIT / GET_WAIT on a bound file set and read how the
 * kernel's side of that channel waits and wakes: its in-kernel receivers of
 * to_kernel (spin, timed polling, blocking) and its wake-ups of the user's
 * to_user receiver (coalesced to one per max_delay_ns, leading edge at once,
 * trailing edge on a timer). A new channel starts with the balanced preset.
 * Errors: -EINVAL unknown flag, non-zero reserved field, or a value out of
 * range; -ENOTCONN the file is not bound.
 */
#define ARCHANGEL_WAIT_ADAPTIVE		(1U << 0) /* timed polling, coalesced wake-ups,
						   * adaptive spin; 0: spin then sleep */
#define ARCHANGEL_WAIT_PACED_POLLS	(1U << 1) /* with ADAPTIVE: the user side's receivers
						   * poll paced (need_wakeup word above); the
						   * module records it, its own receivers keep
						   * timed polls (docs/efficiency.md) */
#define ARCHANGEL_WAIT_FLAGS_ALL	(ARCHANGEL_WAIT_ADAPTIVE | ARCHANGEL_WAIT_PACED_POLLS)

/* The presets (flags, max_delay_ns, spin_ns); wake_batch 0 in each. */
#define ARCHANGEL_WAIT_BALANCED_DELAY_NS	1000000ULL	/* 1 ms, the default */
#define ARCHANGEL_WAIT_BALANCED_SPIN_NS		10000ULL
#define ARCHANGEL_WAIT_RESPONSIVE_DELAY_NS	100000ULL	/* 100 us */
#define ARCHANGEL_WAIT_RESPONSIVE_SPIN_NS	20000ULL
#define ARCHANGEL_WAIT_EFFICIENT_DELAY_NS	10000000ULL	/* 10 ms */
#define ARCHANGEL_WAIT_EFFICIENT_SPIN_NS	5000ULL
#define ARCHANGEL_WAIT_LOW_LATENCY_SPIN_NS	20000ULL	/* no ADAPTIVE flag */

/* Bounds of max_delay_ns with ARCHANGEL_WAIT_ADAPTIVE, and of spin_ns. */
#define ARCHANGEL_WAIT_DELAY_MIN_NS	10000ULL	/* 10 us */
#define ARCHANGEL_WAIT_DELAY_MAX_NS	1000000000ULL	/* 1 s */
#define ARCHANGEL_WAIT_SPIN_MAX_NS	1000000ULL	/* 1 ms */

struct archangel_wait_config {
	__u32 flags;		/* ARCHANGEL_WAIT_* */
	__u32 wake_batch;	/* unread bytes in a lane that force an immediate
				 * wake-up despite coalescing; 0: a quarter of the lane */
	__u64 max_delay_ns;	/* the window: a message waits at most this, plus one
				 * wake-up (ignored without ADAPTIVE) */
	__u64 spin_ns;		/* spin budget before sleeping (with ADAPTIVE: only
				 * when the recent gap between messages is shorter) */
	__u64 reserved[2];	/* must be zero */
};

/* Per-send flags of the in-kernel API and of Swift's SendOptions. */
#define ARCHANGEL_SEND_URGENT		(1U << 0) /* wake the receiver now, whatever the
						   * coalescing; CRITICAL implies it */
#define ARCHANGEL_SEND_NO_WAKEUP	(1U << 1) /* more follows: no leading-edge wake-up,
						   * only the trailing edge (the delay bound holds) */
#define ARCHANGEL_SEND_FLAGS_ALL	(ARCHANGEL_SEND_URGENT | ARCHANGEL_SEND_NO_WAKEUP)

#define ARCHANGEL_RW_MAX_MSG		65536U
#define ARCHANGEL_RW_FIFO_BYTES		(1U << 20)

#define ARCHANGEL_IOC_CREATE		_IOWR(ARCHANGEL_IOC_MAGIC, 1, struct archangel_create_req)
#define ARCHANGEL_IOC_ATTACH		_IOWR(ARCHANGEL_IOC_MAGIC, 2, struct archangel_attach_req)
#define ARCHANGEL_IOC_DESTROY		_IOW(ARCHANGEL_IOC_MAGIC, 3, __u32)
#define ARCHANGEL_IOC_SET_EVENTFDS	_IOW(ARCHANGEL_IOC_MAGIC, 4, struct archangel_eventfds)
#define ARCHANGEL_IOC_NOTIFY		_IOW(ARCHANGEL_IOC_MAGIC, 5, __u32)
#define ARCHANGEL_IOC_SETUP_SHM		_IOW(ARCHANGEL_IOC_MAGIC, 6, __u64)
#define ARCHANGEL_IOC_CLEANUP_SHM	_IO(ARCHANGEL_IOC_MAGIC, 7)
#define ARCHANGEL_IOC_SHM_SIZE		_IOR(ARCHANGEL_IOC_MAGIC, 8, __u64)
#define ARCHANGEL_IOC_LOADGEN		_IOWR(ARCHANGEL_IOC_MAGIC, 9, struct archangel_loadgen_req)
#define ARCHANGEL_IOC_RW_LOOPBACK	_IOW(ARCHANGEL_IOC_MAGIC, 10, __u32)
#define ARCHANGEL_IOC_SET_WAIT		_IOW(ARCHANGEL_IOC_MAGIC, 11, struct archangel_wait_config)
#define ARCHANGEL_IOC_GET_WAIT		_IOR(ARCHANGEL_IOC_MAGIC, 12, struct archangel_wait_config)

_Static_assert(sizeof(struct archangel_create_req) == 64, "create req");
_Static_assert(__builtin_offsetof(struct archangel_create_req, channel_id) == 0, "archangel_create_req.channel_id");
_Static_assert(__builtin_offsetof(struct archangel_create_req, flags) == 4, "archangel_create_req.flags");
_Static_assert(__builtin_offsetof(struct archangel_create_req, normal_ring_bytes) == 8, "archangel_create_req.normal_ring_bytes");
_Static_assert(__builtin_offsetof(struct archangel_create_req, express_ring_bytes) == 12, "archangel_create_req.express_ring_bytes");
_Static_assert(__builtin_offsetof(struct archangel_create_req, pool_buffer_size) == 16, "archangel_create_req.pool_buffer_size");
_Static_assert(__builtin_offsetof(struct archangel_create_req, pool_buffer_count) == 20, "archangel_create_req.pool_buffer_count");
_Static_assert(__builtin_offsetof(struct archangel_create_req, pool_threshold) == 24, "archangel_create_req.pool_threshold");
_Static_assert(__builtin_offsetof(struct archangel_create_req, max_segments) == 28, "archangel_create_req.max_segments");
_Static_assert(__builtin_offsetof(struct archangel_create_req, reserved) == 32, "archangel_create_req.reserved");
_Static_assert(sizeof(struct archangel_attach_req) == 472, "attach req");
_Static_assert(__builtin_offsetof(struct archangel_attach_req, channel_id) == 0, "archangel_attach_req.channel_id");
_Static_assert(__builtin_offsetof(struct archangel_attach_req, abi_version) == 4, "archangel_attach_req.abi_version");
_Static_assert(__builtin_offsetof(struct archangel_attach_req, mmap_size) == 8, "archangel_attach_req.mmap_size");
_Static_assert(__builtin_offsetof(struct archangel_attach_req, offsets) == 16, "archangel_attach_req.offsets");
_Static_assert(__builtin_offsetof(struct archangel_attach_req, reserved) == 440, "archangel_attach_req.reserved");
_Static_assert(sizeof(struct archangel_eventfds) == 16, "eventfds");
_Static_assert(__builtin_offsetof(struct archangel_eventfds, data_fd) == 0, "archangel_eventfds.data_fd");
_Static_assert(__builtin_offsetof(struct archangel_eventfds, space_fd) == 4, "archangel_eventfds.space_fd");
_Static_assert(__builtin_offsetof(struct archangel_eventfds, reserved) == 8, "archangel_eventfds.reserved");
_Static_assert(sizeof(struct archangel_wait_config) == 40, "wait config");
_Static_assert(__builtin_offsetof(struct archangel_wait_config, flags) == 0, "archangel_wait_config.flags");
_Static_assert(__builtin_offsetof(struct archangel_wait_config, wake_batch) == 4, "archangel_wait_config.wake_batch");
_Static_assert(__builtin_offsetof(struct archangel_wait_config, max_delay_ns) == 8, "archangel_wait_config.max_delay_ns");
_Static_assert(__builtin_offsetof(struct archangel_wait_config, spin_ns) == 16, "archangel_wait_config.spin_ns");
_Static_assert(__builtin_offsetof(struct archangel_wait_config, reserved) == 24, "archangel_wait_config.reserved");
_Static_assert(sizeof(struct archangel_loadgen_req) == 72, "loadgen req");
_Static_assert(__builtin_offsetof(struct archangel_loadgen_req, channel_id) == 0, "archangel_loadgen_req.channel_id");
_Static_assert(__builtin_offsetof(struct archangel_loadgen_req, mode) == 4, "archangel_loadgen_req.mode");
_Static_assert(__builtin_offsetof(struct archangel_loadgen_req, size) == 8, "archangel_loadgen_req.size");
_Static_assert(__builtin_offsetof(struct archangel_loadgen_req, flags) == 12, "archangel_loadgen_req.flags");
_Static_assert(__builtin_offsetof(struct archangel_loadgen_req, count) == 16, "archangel_loadgen_req.count");
_Static_assert(__builtin_offsetof(struct archangel_loadgen_req, elapsed_ns) == 24, "archangel_loadgen_req.elapsed_ns");
_Static_assert(__builtin_offsetof(struct archangel_loadgen_req, done) == 32, "archangel_loadgen_req.done");
_Static_assert(__builtin_offsetof(struct archangel_loadgen_req, interval_ns) == 40, "archangel_loadgen_req.interval_ns");
_Static_assert(__builtin_offsetof(struct archangel_loadgen_req, reserved) == 48, "archangel_loadgen_req.reserved");


/* ---------------------------------------------------------------------------
 * Test peer: /dev/archangel_testpeer (kernel/testpeer/archangel_testpeer.ko)
 *
 * A test helper, not part of the product: it lets a userspace test drive the
 * kernel side of a channel through the exported in-kernel API
 * (archangel_comm_send_message_ex / receive_message_ex), so that the Swift
 * conformance suite runs unchanged against the module. The device is mode
 * 0600. Each ioctl returns 0 or the payload size, or -1 with errno set to the
 * API's error (ENOENT, EAGAIN, ETIMEDOUT, EMSGSIZE, EIO, EPIPE, EINTR,
 * EINVAL, EFAULT, ENOMEM). Defined here, once, for the module and Swift.
 */

#define ARCHANGEL_TESTPEER_DEVICE_NAME	"archangel_testpeer"
#define ARCHANGEL_TESTPEER_IOC_MAGIC	'a'

/* archangel_testpeer_send.flags */
#define ARCHANGEL_TESTPEER_CORRELATED	(1U << 0) /* answer request `correlation` */

/* timeout_ms: -1 waits as long as it takes, 0 does not wait (EAGAIN). */
#define ARCHANGEL_TESTPEER_FOREVER	(-1)

/*
 * ARCHANGEL_TESTPEER_IOC_SEND: the kernel side sends one message. Returns 0.
 */
struct archangel_testpeer_send {
	__u32 channel_id;	/* in: the channel */
	__u32 flags;		/* in: ARCHANGEL_TESTPEER_CORRELATED */
	__u8 type;		/* in: ARCHANGEL_MSG_* */
	__u8 priority;		/* in: ARCHANGEL_PRIORITY_* */
	__u16 reserved0;	/* must be zero */
	__u32 size;		/* in: payload bytes at data */
	__s64 timeout_ms;	/* in: -1 forever, 0 no wait */
	__u64 correlation;	/* in: the request's sequence, with _CORRELATED */
	__u64 data;		/* in: user address of the payload */
	__u64 reserved[2];	/* must be zero */
};

/*
 * ARCHANGEL_TESTPEER_IOC_RECV: the kernel side receives one message into
 * the user buffer at data. Returns the payload size (also in size).
 */
struct archangel_testpeer_recv {
	__u32 channel_id;	/* in: the channel */
	__u32 max_size;		/* in: bytes the buffer at data holds */
	__s64 timeout_ms;	/* in: -1 forever, 0 no wait */
	__u64 data;		/* in: user address of the buffer */
	__u8 type;		/* out: ARCHANGEL_MSG_* */
	__u8 priority;		/* out: ARCHANGEL_PRIORITY_* */
	__u16 flags;		/* out: the record's ARCHANGEL_MSG_F_* */
	__u32 size;		/* out: payload bytes */
	__u64 sequence;		/* out: the sender's sequence number */
	__u64 timestamp;	/* out: CLOCK_MONOTONIC ns at publication */
	__u64 correlation;	/* out: with ARCHANGEL_MSG_F_CORRELATED */
	__u64 reserved[2];	/* must be zero in; zero out */
};

#define ARCHANGEL_TESTPEER_IOC_SEND \
	_IOW(ARCHANGEL_TESTPEER_IOC_MAGIC, 1, struct archangel_testpeer_send)
#define ARCHANGEL_TESTPEER_IOC_RECV \
	_IOWR(ARCHANGEL_TESTPEER_IOC_MAGIC, 2, struct archangel_testpeer_recv)

_Static_assert(sizeof(struct archangel_testpeer_send) == 56, "testpeer send");
_Static_assert(__builtin_offsetof(struct archangel_testpeer_send, type) == 8, "send.type");
_Static_assert(__builtin_offsetof(struct archangel_testpeer_send, size) == 12, "send.size");
_Static_assert(__builtin_offsetof(struct archangel_testpeer_send, timeout_ms) == 16, "send.t");
_Static_assert(__builtin_offsetof(struct archangel_testpeer_send, data) == 32, "send.data");
_Static_assert(sizeof(struct archangel_testpeer_recv) == 72, "testpeer recv");
_Static_assert(__builtin_offsetof(struct archangel_testpeer_recv, data) == 16, "recv.data");
_Static_assert(__builtin_offsetof(struct archangel_testpeer_recv, type) == 24, "recv.type");
_Static_assert(__builtin_offsetof(struct archangel_testpeer_recv, size) == 28, "recv.size");
_Static_assert(__builtin_offsetof(struct archangel_testpeer_recv, sequence) == 32, "recv.sequence");
_Static_assert(__builtin_offsetof(struct archangel_testpeer_recv, reserved) == 56, "recv.reserved");

#ifdef __cplusplus
}
#endif

#endif /* _UAPI_LINUX_ARCHANGEL_H */
