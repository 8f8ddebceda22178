/*
 * archangel_kernel_shims.h - what Swift needs to drive /dev/archangel and
 * cannot import from the uapi header: the ioctl request numbers (_IOWR and
 * friends are function-like macros) as constants, and a non-variadic ioctl.
 *
 * It also mirrors the ioctls of /dev/archangel_testpeer
 * (kernel/testpeer/archangel_testpeer.h, a test helper module), so that the
 * Swift tests can drive the kernel side of a channel. The mirror sits under
 * that header's include guard: a C file may include both.
 */
#ifndef ARCHANGEL_KERNEL_SHIMS_H
#define ARCHANGEL_KERNEL_SHIMS_H

#include <sys/ioctl.h>
#include <linux/ioctl.h>
#include <linux/types.h>
#include "archangel_uapi.h"

/* /dev/archangel and /dev/archangel_rw. */
static const unsigned long archangel_ioc_create = ARCHANGEL_IOC_CREATE;
static const unsigned long archangel_ioc_attach = ARCHANGEL_IOC_ATTACH;
static const unsigned long archangel_ioc_destroy = ARCHANGEL_IOC_DESTROY;
static const unsigned long archangel_ioc_set_eventfds = ARCHANGEL_IOC_SET_EVENTFDS;
static const unsigned long archangel_ioc_notify = ARCHANGEL_IOC_NOTIFY;
static const unsigned long archangel_ioc_setup_shm = ARCHANGEL_IOC_SETUP_SHM;
static const unsigned long archangel_ioc_cleanup_shm = ARCHANGEL_IOC_CLEANUP_SHM;
static const unsigned long archangel_ioc_shm_size = ARCHANGEL_IOC_SHM_SIZE;
static const unsigned long archangel_ioc_loadgen = ARCHANGEL_IOC_LOADGEN;
static const unsigned long archangel_ioc_rw_loopback = ARCHANGEL_IOC_RW_LOOPBACK;

/* Composite values Swift's importer skips. */
static const unsigned long long archangel_mmap_off_shared = ARCHANGEL_MMAP_OFF_SHARED;

/* ioctl(2) with one pointer argument: returns its result, or -1 and errno. */
static inline int archangel_ioctl(int fd, unsigned long request, void *arg)
{
	return ioctl(fd, request, arg);
}

/* ---- mirror of kernel/testpeer/archangel_testpeer.h -------------------- */
#ifndef _UAPI_ARCHANGEL_TESTPEER_H
#define _UAPI_ARCHANGEL_TESTPEER_H

#define ARCHANGEL_TESTPEER_DEVICE_NAME	"archangel_testpeer"
#define ARCHANGEL_TESTPEER_IOC_MAGIC	'a'
#define ARCHANGEL_TESTPEER_CORRELATED	(1U << 0)
#define ARCHANGEL_TESTPEER_FOREVER	(-1)

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
_Static_assert(sizeof(struct archangel_testpeer_recv) == 72, "testpeer recv");
#endif /* _UAPI_ARCHANGEL_TESTPEER_H */

static const unsigned long archangel_testpeer_ioc_send = ARCHANGEL_TESTPEER_IOC_SEND;
static const unsigned long archangel_testpeer_ioc_recv = ARCHANGEL_TESTPEER_IOC_RECV;

#endif
