/* Out-of-line shims: calls whose declarations need feature macros Swift cannot set. */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <errno.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "archangel_uapi.h"
#include "archangel_shims.h"

int archangel_memfd_create(const char *name)
{
	return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
}

int archangel_memfd_seal_size(int fd)
{
	return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
}

int archangel_memfd_size_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0)
		return 0;
	return (seals & F_SEAL_SHRINK) != 0;
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

int archangel_set_timer_slack(uint64_t nanoseconds)
{
	return prctl(PR_SET_TIMERSLACK, (unsigned long)nanoseconds, 0, 0, 0) ? -errno : 0;
}
