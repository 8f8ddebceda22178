/*
 * archangel_kernel_shims.h - what Swift needs to drive /dev/archangel and
 * cannot import from the uapi header: the ioctl request numbers (_IOWR and
 * friends are function-like macros) as constants, and a non-variadic ioctl.
 *
 * The test peer's numbers too (/dev/archangel_testpeer, a test helper
 * module whose structs are in archangel_uapi.h), so that the Swift tests can
 * drive the kernel side of a channel.
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
static const unsigned long archangel_ioc_set_wait = ARCHANGEL_IOC_SET_WAIT;
static const unsigned long archangel_ioc_get_wait = ARCHANGEL_IOC_GET_WAIT;

/* Composite values Swift's importer skips. */
static const unsigned long long archangel_mmap_off_shared = ARCHANGEL_MMAP_OFF_SHARED;

/* ioctl(2) with one pointer argument: returns its result, or -1 and errno. */
static inline int archangel_ioctl(int fd, unsigned long request, void *arg)
{
	return ioctl(fd, request, arg);
}

/* The test peer's ioctls (archangel_uapi.h, "Test peer"). */

static const unsigned long archangel_testpeer_ioc_send = ARCHANGEL_TESTPEER_IOC_SEND;
static const unsigned long archangel_testpeer_ioc_recv = ARCHANGEL_TESTPEER_IOC_RECV;

#endif
