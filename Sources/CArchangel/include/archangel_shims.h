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

/* memfd_create(2) with MFD_CLOEXEC, for channel memory another process can map. */
int archangel_memfd_create(const char *name);

/* ppoll(2) without a signal mask: nanosecond timeouts (NULL: forever). */
int archangel_ppoll(struct pollfd *fds, unsigned long count, const struct timespec *timeout);

/* Names the calling thread (at most 15 characters are kept). */
void archangel_set_thread_name(const char *name);

/* Pins the calling thread to one CPU; returns 0 or a negative errno. */
int archangel_pin_current_thread(int cpu);

/*
 * CLOCK_MONOTONIC in nanoseconds: the same clock as the kernel's
 * ktime_get_ns(), so timestamps from either side compare directly.
 */
static inline uint64_t archangel_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * A cheaper CLOCK_MONOTONIC for message timestamps.
 *
 * clock_gettime costs 20-25 ns here, as much as the rest of a send. With an
 * invariant TSC, a sender extrapolates from an anchor (a TSC reading paired
 * with a clock_gettime) using a rate calibrated once per process, and takes
 * a new anchor every ARCHANGEL_TSC_REANCHOR_NS, so the error stays within
 * tens of nanoseconds. Each sender owns its anchor (no sharing), and never
 * returns a value below its last one.
 */
struct archangel_clock_anchor {
	uint64_t tsc;		/* TSC at the anchor */
	uint64_t ns;		/* CLOCK_MONOTONIC at the anchor */
	uint64_t last;		/* last value returned: results never go backwards */
	uint64_t limit;		/* TSC ticks after which to re-anchor */
};

#define ARCHANGEL_TSC_REANCHOR_NS 1000000ULL

/* ns per TSC tick in 32.32 fixed point; 0 when the TSC cannot be used. */
extern uint64_t archangel_tsc_mult;

/* Calibrates once per process (about 2 ms, thread-safe); returns archangel_tsc_mult. */
uint64_t archangel_tsc_calibrate(void);

/* Takes a new anchor. */
void archangel_clock_reanchor(struct archangel_clock_anchor *anchor);

#if defined(__x86_64__)
#include <x86intrin.h>
static inline uint64_t archangel_clock_ns(struct archangel_clock_anchor *anchor)
{
	uint64_t delta, now;

	if (archangel_tsc_mult == 0)
		return archangel_monotonic_ns();
	delta = __rdtsc() - anchor->tsc;
	if (delta >= anchor->limit) {
		archangel_clock_reanchor(anchor);
		return anchor->last;
	}
	now = anchor->ns + (uint64_t)(((unsigned __int128)delta * archangel_tsc_mult) >> 32);
	if (now < anchor->last)
		now = anchor->last;
	anchor->last = now;
	return now;
}
#else
static inline uint64_t archangel_clock_ns(struct archangel_clock_anchor *anchor)
{
	(void)anchor;
	return archangel_monotonic_ns();
}
#endif

#endif /* ARCHANGEL_SHIMS_H */
