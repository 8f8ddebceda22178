/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * archangel_testpeer.h - the ioctls of /dev/archangel_testpeer.
 *
 * archangel_testpeer.ko is a test helper, not part of the product: it lets a
 * userspace test drive the kernel side of a channel through the exported
 * in-kernel API (archangel_comm_send_message_ex / receive_message_ex), so
 * that the Swift conformance suite runs unchanged against the module. The
 * device is mode 0600. Each ioctl returns 0 or the payload size, or -1 with
 * errno set to the API's error (ENOENT, EAGAIN, ETIMEDOUT, EMSGSIZE, EIO,
 * EPIPE, EINTR, EINVAL, EFAULT, ENOMEM).
 *
 * Swift mirrors these numbers and structs in
 * Sources/CArchangel/include/archangel_kernel_shims.h: change both together.
 */
#ifndef _UAPI_ARCHANGEL_TESTPEER_H
#define _UAPI_ARCHANGEL_TESTPEER_H

#include <linux/ioctl.h>
#include <linux/types.h>

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

#endif /* _UAPI_ARCHANGEL_TESTPEER_H */
