/* Out-of-line shims: calls whose declarations need feature macros Swift cannot set. */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <errno.h>
#include <cpuid.h>
#include <unistd.h>
#include "archangel_uapi.h"
#include "archangel_shims.h"

int archangel_memfd_create(const char *name)
{
	return memfd_create(name, MFD_CLOEXEC);
}

int archangel_ppoll(struct pollfd *fds, unsigned long count, const struct timespec *timeout)
{
	return ppoll(fds, count, timeout, NULL);
}

void archangel_set_thread_name(const char *name)
{
	char short_name[16];

	strncpy(short_name, name, sizeof(short_name) - 1);
	short_name[sizeof(short_name) - 1] = '\0';
	pthread_setname_np(pthread_self(), short_name);
}

int archangel_pin_current_thread(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

uint64_t archangel_tsc_mult;
static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
/*
 * One (TSC, CLOCK_MONOTONIC) pair. The clock read is sandwiched between two
 * TSC reads and retried when they lie far apart (the thread was preempted
 * or migrated in between), so the pair describes one instant.
 */
static void tsc_pair(uint64_t *tsc, uint64_t *ns)
{
	uint64_t before, after;
	int tries;

	for (tries = 0; tries < 16; tries++) {
		before = __rdtsc();
		*ns = archangel_monotonic_ns();
		after = __rdtsc();
		if (after - before < 4096)
			break;
	}
	*tsc = before + (after - before) / 2;
}
#endif

static void tsc_calibrate_once(void)
{
#if defined(__x86_64__)
	unsigned int eax, ebx, ecx, edx;
	uint64_t tsc0, tsc1, ns0, ns1;
	struct timespec pause = { 0, 2000000 };

	/* Invariant TSC (CPUID 0x80000007 EDX bit 8): constant rate, never stops. */
	if (!__get_cpuid(0x80000007, &eax, &ebx, &ecx, &edx) || !(edx & (1U << 8)))
		return;
	tsc_pair(&tsc0, &ns0);
	nanosleep(&pause, NULL);
	tsc_pair(&tsc1, &ns1);
	if (tsc1 <= tsc0 || ns1 <= ns0)
		return;
	__atomic_store_n(&archangel_tsc_mult, ((ns1 - ns0) << 32) / (tsc1 - tsc0), __ATOMIC_RELEASE);
#endif
}

uint64_t archangel_tsc_calibrate(void)
{
	pthread_once(&tsc_once, tsc_calibrate_once);
	return archangel_tsc_mult;
}

void archangel_clock_reanchor(struct archangel_clock_anchor *anchor)
{
#if defined(__x86_64__)
	uint64_t ns, tsc;

	tsc_pair(&tsc, &ns);
	anchor->tsc = tsc;
	anchor->ns = ns;
	if (anchor->last < ns)
		anchor->last = ns;
	anchor->limit = archangel_tsc_mult ?
		(ARCHANGEL_TSC_REANCHOR_NS << 32) / archangel_tsc_mult : UINT64_MAX;
#else
	anchor->last = archangel_monotonic_ns();
#endif
}
