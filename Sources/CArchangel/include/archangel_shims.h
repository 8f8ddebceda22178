/*
 * archangel_shims.h - the few libc calls Swift's Glibc module does not import
 * (eventfd, memfd_create) and a cheap monotonic clock, as static inline
 * functions so they cost nothing over calling libc directly.
 */
#ifndef ARCHANGEL_SHIMS_H
#define ARCHANGEL_SHIMS_H

#include <stdint.h>
#include <time.h>
#include <sys/eventfd.h>
#include <poll.h>
#include "archangel_uapi.h"
#include "archangel_socket_shims.h"
#include "archangel_host_protocol.h"
#include "archangel_kernel_shims.h"
#include "archangel_sensors_shims.h"

/* Composite macros Swift's importer skips, re-exported as constants. */
static const uint32_t archangel_msg_flags_known = ARCHANGEL_MSG_F_KNOWN;
static const uint32_t archangel_features_all = ARCHANGEL_FEATURES_ALL;
static const uint32_t archangel_abi_version = ARCHANGEL_ABI_VERSION;

/* eventfd(2) with EFD_CLOEXEC | EFD_NONBLOCK added to `flags` by the caller. */
static inline int archangel_eventfd(unsigned int initval, int flags)
{
	return eventfd(initval, flags);
}

static inline int archangel_efd_cloexec(void) { return EFD_CLOEXEC; }
static inline int archangel_efd_nonblock(void) { return EFD_NONBLOCK; }

/* memfd_create(2) with MFD_CLOEXEC and MFD_ALLOW_SEALING, for channel memory another process can map. */
int archangel_memfd_create(const char *name);

/* Seals a memfd's size (F_SEAL_SHRINK | F_SEAL_GROW): a process it is passed
 * to cannot truncate it under another's mapping (which would fault, SIGBUS). */
int archangel_memfd_seal_size(int fd);

/* 1 when `fd` is a memfd whose size cannot shrink (F_SEAL_SHRINK), else 0. */
int archangel_memfd_size_sealed(int fd);

/* ppoll(2) without a signal mask: nanosecond timeouts (NULL: forever). */
int archangel_ppoll(struct pollfd *fds, unsigned long count, const struct timespec *timeout);

/* Names the calling thread (at most 15 characters are kept). */
void archangel_set_thread_name(const char *name);

/* Pins the calling thread to one CPU; returns 0 or a negative errno. */
int archangel_pin_current_thread(int cpu);

/*
 * CLOCK_MONOTONIC in nanoseconds: the same clock as the kernel's
 * ktime_get_ns(), so timestamps from either side compare directly. It is
 * also the clock of every message header's timestamp: read through the vDSO
 * (about 20 ns), once per publication, and never ahead of any other
 * process's reading taken after the message was received.
 */
static inline uint64_t archangel_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Sets the calling thread's timer slack (prctl PR_SET_TIMERSLACK), so a
 * timed poll of a short window does not oversleep by the default 50 us.
 * Returns 0 or a negative errno.
 */
int archangel_set_timer_slack(uint64_t nanoseconds);

#endif /* ARCHANGEL_SHIMS_H */
