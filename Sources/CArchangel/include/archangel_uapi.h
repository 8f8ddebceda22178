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
#define ARCHANGEL_ABI_VERSION_MINOR	0
#define ARCHANGEL_ABI_VERSION \
	((ARCHANGEL_ABI_VERSION_MAJOR << 16) | ARCHANGEL_ABI_VERSION_MINOR)

/* Feature bits, in archangel_channel_offsets.features. */
#define ARCHANGEL_FEATURE_EXPRESS_LANE	(1U << 0) /* HIGH/CRITICAL use a ring of their own */
#define ARCHANGEL_FEATURE_BUFFER_POOL	(1U << 1) /* large payloads travel by descriptor */
#define ARCHANGEL_FEATURE_NEED_WAKEUP	(1U << 2) /* wake-ups only when the peer sleeps */
#define ARCHANGEL_FEATURE_CORRELATION	(1U << 3) /* ARCHANGEL_MSG_F_CORRELATED records */
#define ARCHANGEL_FEATURES_ALL \
	(ARCHANGEL_FEATURE_EXPRESS_LANE | ARCHANGEL_FEATURE_BUFFER_POOL | \
	 ARCHANGEL_FEATURE_NEED_WAKEUP | ARCHANGEL_FEATURE_CORRELATION)

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

/* need_wakeup word, written by the consumer: it is about to sleep. */
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
	__u64 return_intent;	/* __u64 ARCHANGEL_RETURN_INTENT word (receiver) */
};

/*
 * The return intent: how a successor finishes a receiver that died between
 * consuming a pool message and handing its buffers back (docs/recovery.md).
 * After a pool message's payload has been used, the receiver
 *   1. writes the buffer indices into the return ring, unpublished;
 *   2. store-release return_intent = ARCHANGEL_RETURN_INTENT(c, lane, r), where
 *      c is the lane's consumer index after the record and r the return
 *      ring's producer index after the entries;
 *   3. store-release the lane's consumer index = c;
 *   4. store-release the return ring's producer index = r.
 * Whoever recovers a dead receiver compares: consumer index == c but return
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

#ifdef __cplusplus
}
#endif

#endif /* _UAPI_LINUX_ARCHANGEL_H */
