/*
 * crossproc_bench.c - the cross-process baselines: a Unix stream socket, a
 * pipe, the plain ring in memfd shared memory and a raw eventfd ping-pong,
 * each between the caller and a forked child.
 *
 * Why fork and not a second thread: the userspace backend's two ends live
 * in two processes, and a process boundary changes what a message costs
 * (two address spaces, two sets of page tables, a context switch that is a
 * full mm switch when a side sleeps). The baselines pay the same.
 *
 * The rules for the child follow from fork() in a multithreaded process
 * (the caller is usually Swift, with runtime threads of its own): only the
 * forking thread exists in the child, any lock another thread held stays
 * held forever, so the child may only do what a signal handler may. It
 * runs on memory mapped before the fork, calls read/write/sched_setaffinity
 * and friends, and leaves with _exit(). It reports an error through its
 * exit status (the positive errno), nothing else.
 *
 * Memory: one memfd mapping per benchmark, MAP_SHARED and MAP_POPULATE, so
 * both processes see the same pages and no page faults happen in the timed
 * loops. It starts with the control block (the start handshake), followed
 * by the benchmark's rings or buffers, each 64-byte aligned.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "archangel_bench_support.h"
#include "archangel_crossproc_bench.h"

#define XP_CACHELINE		64u
#define XP_WARMUP_ROUND_TRIPS	10000u
#define XP_CALLER_CPU		0
#define XP_CHILD_CPU		1
#define XP_MAX_PAYLOAD		(1u << 20)
/* Throughput readers ask for this much per read(): far more than is ever queued. */
#define XP_READ_CHUNK		(256u * 1024u)
/* Asked for; the kernel caps it at net.core.wmem_max (x2) for non-root. */
#define XP_SOCKET_SNDBUF	(4 << 20)
/* Asked for; unprivileged processes get at most fs.pipe-max-size. */
#define XP_PIPE_CAPACITY	(1 << 20)
/* A spinning caller checks that its child still lives this often. */
#define XP_SPINS_PER_CHECK	(1u << 20)

/* See plain_ring_bench.c: tell the core we are spinning. */
static inline void xp_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

static uint64_t xp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static size_t xp_round_up(size_t bytes)
{
	return (bytes + XP_CACHELINE - 1) & ~(size_t)(XP_CACHELINE - 1);
}

static int xp_payload_ok(uint32_t payload_bytes)
{
	return payload_bytes >= sizeof(uint64_t) && payload_bytes <= XP_MAX_PAYLOAD;
}

/* ---------------------------------------------------------------------------
 * One run: the shared mapping, the child, and what the caller must restore.
 */

/*
 * The start handshake, at the start of the shared mapping. `ready` and `go`
 * sit on their own lines; both are touched only before the timed part.
 */
struct xp_control {
	_Alignas(XP_CACHELINE) int ready;	/* child -> caller: pinned, waiting for go */
	_Alignas(XP_CACHELINE) int go;		/* caller -> child: start now */
};

struct xp_run {
	unsigned char *area;		/* the shared mapping */
	size_t area_bytes;
	struct xp_control *control;	/* at area */
	unsigned char *memory;		/* the benchmark's part, after the control block */
	pid_t child;			/* 0 until forked */
	int reaped;			/* child_status is valid */
	int child_status;
	int child_cpu;			/* CPU the child pins itself to, or -1 */
	int restore_affinity;
	cpu_set_t saved_affinity;	/* the caller's, before pinning */
	int restore_mask;
	sigset_t saved_mask;		/* the caller's signal mask, before blocking SIGPIPE */
};

/* A child's work: returns 0 or a negative errno. */
typedef int (*xp_child_main)(void *arg);

/*
 * Map `bytes` of benchmark memory (plus the control block) from a fresh
 * memfd. The descriptor is closed at once: the mapping keeps the memory,
 * and fork() hands the mapping, not the descriptor, to the child.
 */
static int xp_map(struct xp_run *run, size_t bytes)
{
	size_t control = xp_round_up(sizeof(struct xp_control));
	void *p;
	int fd, err = 0;

	memset(run, 0, sizeof(*run));
	run->child_cpu = -1;
	fd = memfd_create("archangel-bench", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)(control + bytes)) != 0) {
		err = -errno;
		goto out_close;
	}
	p = mmap(NULL, control + bytes, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_POPULATE, fd, 0);
	if (p == MAP_FAILED) {
		err = -errno;
		goto out_close;
	}
	run->area = p;
	run->area_bytes = control + bytes;
	run->control = p;
	run->memory = run->area + control;
out_close:
	close(fd);
	return err;
}

/*
 * The child, from fork() to _exit(). Async-signal-safe calls only (see the
 * top of the file). It pins itself to its own CPU before reporting ready,
 * so the caller's clock never includes a migration.
 */
static void __attribute__((noreturn))
xp_child(const struct xp_run *run, pid_t parent, xp_child_main fn, void *arg)
{
	int rc;

	/* Die with the caller, and do not outlive one already gone. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(EPIPE);
	if (run->child_cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(run->child_cpu, &set);
		(void)sched_setaffinity(0, sizeof(set), &set);
	}
	/* Release: everything before (the pinning) precedes the caller's go. */
	__atomic_store_n(&run->control->ready, 1, __ATOMIC_RELEASE);
	/* Acquire: pairs with the caller's release of go. */
	while (!__atomic_load_n(&run->control->go, __ATOMIC_ACQUIRE))
		xp_relax();
	rc = fn(arg);
	_exit(rc < 0 ? -rc : 0);
}

/*
 * Fork the child running `fn(arg)`, then pin the caller. Pinning after the
 * fork lets the child start on any CPU instead of queueing behind the
 * caller on CPU 0 until it has pinned itself to CPU 1. SIGPIPE is blocked
 * first so that a write to a dead child returns EPIPE instead of killing the
 * whole (Swift) process; the child inherits the mask, and so gets EPIPE too.
 */
static int xp_start(struct xp_run *run, xp_child_main fn, void *arg)
{
	pid_t parent = getpid(), pid;
	sigset_t pipe_only;
	int two_cpus = sysconf(_SC_NPROCESSORS_ONLN) >= 2;

	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	run->restore_mask = pthread_sigmask(SIG_BLOCK, &pipe_only,
					    &run->saved_mask) == 0;
	run->child_cpu = two_cpus ? XP_CHILD_CPU : -1;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		xp_child(run, parent, fn, arg);
	run->child = pid;
	if (two_cpus) {
		run->restore_affinity =
			pthread_getaffinity_np(pthread_self(),
					       sizeof(run->saved_affinity),
					       &run->saved_affinity) == 0;
		archangel_bench_pin_current_thread(XP_CALLER_CPU);
	}
	return 0;
}

/* 1 while the child runs; reaps it (once) when it has exited. */
static int xp_child_alive(struct xp_run *run)
{
	pid_t r;

	if (run->reaped)
		return 0;
	r = waitpid(run->child, &run->child_status, WNOHANG);
	if (r == 0)
		return 1;
	/* Exited (reaped now), or unknown to us: either way, gone. */
	run->reaped = r == run->child;
	return 0;
}

/* Wait until the child is pinned and waiting, then let it go. */
static int xp_go(struct xp_run *run)
{
	uint32_t spins = 0;

	/* Acquire: pairs with the child's release of ready. */
	while (!__atomic_load_n(&run->control->ready, __ATOMIC_ACQUIRE)) {
		if (++spins % XP_SPINS_PER_CHECK == 0 && !xp_child_alive(run))
			return -EPIPE;
		/* Not timed: give the CPU away in case the child needs it. */
		sched_yield();
	}
	/* Release: the caller's setup of shared memory precedes the child's start. */
	__atomic_store_n(&run->control->go, 1, __ATOMIC_RELEASE);
	return 0;
}

/*
 * Spinning callers call this on every empty poll: every XP_SPINS_PER_CHECK
 * polls (milliseconds), one waitpid() to notice a dead child instead of
 * spinning forever. Returns 0 or -EPIPE.
 */
static inline int xp_check_child(struct xp_run *run, uint32_t *spins)
{
	if (++*spins % XP_SPINS_PER_CHECK != 0)
		return 0;
	return xp_child_alive(run) ? 0 : -EPIPE;
}

/*
 * End the run: on error kill the child (it may be blocked forever on a
 * descriptor only it holds), reap it, and prefer its own error to the
 * caller's "it went away". Then undo xp_start and xp_map. Returns the
 * run's result.
 */
static int xp_finish(struct xp_run *run, int err)
{
	if (run->child > 0) {
		if (err)
			(void)kill(run->child, SIGKILL);
		while (!run->reaped) {
			pid_t r = waitpid(run->child, &run->child_status, 0);

			if (r == run->child)
				run->reaped = 1;
			else if (r < 0 && errno != EINTR)
				break;
		}
		if (run->reaped && WIFEXITED(run->child_status) &&
		    WEXITSTATUS(run->child_status) != 0 &&
		    (err == 0 || err == -EPIPE))
			err = -WEXITSTATUS(run->child_status);
		else if (run->reaped && !WIFEXITED(run->child_status) && !err)
			err = -EPIPE;
		else if (!run->reaped && !err)
			err = -ECHILD;
	}
	if (run->restore_affinity)
		(void)pthread_setaffinity_np(pthread_self(),
					     sizeof(run->saved_affinity),
					     &run->saved_affinity);
	if (run->restore_mask) {
		sigset_t pending, pipe_only;

		/* Swallow a SIGPIPE this run raised before unblocking it. */
		sigemptyset(&pipe_only);
		sigaddset(&pipe_only, SIGPIPE);
		if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
			const struct timespec zero = { 0, 0 };

			(void)sigtimedwait(&pipe_only, NULL, &zero);
		}
		(void)pthread_sigmask(SIG_SETMASK, &run->saved_mask, NULL);
	}
	if (run->area != NULL)
		munmap(run->area, run->area_bytes);
	return err;
}

/* ---------------------------------------------------------------------------
 * Byte streams: a Unix stream socket or a pipe.
 */

/*
 * The descriptors of one stream benchmark. For a socket `caller_in` and
 * `caller_out` are the same descriptor (and so are the child's); pipes are
 * one-way, so a round trip needs two.
 */
struct xp_stream {
	int caller_in, caller_out;	/* -1 when unused */
	int child_in, child_out;
};

static void xp_close_pair(int *a, int *b)
{
	if (*a >= 0)
		close(*a);
	if (*b >= 0 && *b != *a)
		close(*b);
	*a = *b = -1;
}

static void xp_stream_close(struct xp_stream *s)
{
	xp_close_pair(&s->caller_in, &s->caller_out);
	xp_close_pair(&s->child_in, &s->child_out);
}

static int xp_set_nonblocking(int fd)
{
	int flags;

	if (fd < 0)
		return 0;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/*
 * Open the stream: one way (child -> caller) for throughput, both ways for a
 * round trip. Throughput also gets the largest buffers an unprivileged
 * process may ask for, so the writer blocks as rarely as possible.
 */
static int xp_stream_open(struct xp_stream *s, int transport, int both_ways)
{
	int fds[2], back[2];

	s->caller_in = s->caller_out = s->child_in = s->child_out = -1;
	if (transport == CROSSPROC_UNIX_SOCKET) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
			return -errno;
		s->caller_in = fds[0];
		s->child_out = fds[1];
		if (both_ways) {
			s->caller_out = fds[0];
			s->child_in = fds[1];
		} else {
			int bytes = XP_SOCKET_SNDBUF;

			/*
			 * AF_UNIX stream: the writer's send buffer bounds
			 * what may be queued for the reader. Capped, not
			 * refused, beyond wmem_max.
			 */
			(void)setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &bytes,
					 sizeof(bytes));
		}
		return 0;
	}
	if (transport != CROSSPROC_PIPE)
		return -EINVAL;
	if (pipe2(fds, O_CLOEXEC) != 0)
		return -errno;
	s->caller_in = fds[0];
	s->child_out = fds[1];
	if (!both_ways) {
		/* Fails with EPERM above fs.pipe-max-size; keep the default then. */
		(void)fcntl(fds[1], F_SETPIPE_SZ, XP_PIPE_CAPACITY);
		return 0;
	}
	if (pipe2(back, O_CLOEXEC) != 0) {
		int err = -errno;

		xp_stream_close(s);
		return err;
	}
	s->child_in = back[0];
	s->caller_out = back[1];
	return 0;
}

/*
 * Write all of `bytes`. A nonblocking descriptor with a full buffer is
 * retried at once (the spinning benchmarks; a 64-byte message never fills
 * a round trip's buffer, so this does not happen in practice).
 */
static int xp_write_all(int fd, const unsigned char *data, size_t bytes)
{
	while (bytes > 0) {
		ssize_t n = write(fd, data, bytes);

		if (n > 0) {
			data += n;
			bytes -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			xp_relax();
		} else if (n < 0 && errno != EINTR) {
			return -errno;
		} else if (n == 0) {
			return -EPIPE;
		}
	}
	return 0;
}

/*
 * Read exactly `bytes`, asking each time for no more than is still missing,
 * so a round trip never swallows part of the next message. On a nonblocking
 * descriptor every empty poll is a read() returning EAGAIN.
 */
static int xp_read_exact(int fd, unsigned char *data, size_t bytes)
{
	while (bytes > 0) {
		ssize_t n = read(fd, data, bytes);

		if (n > 0) {
			data += n;
			bytes -= (size_t)n;
		} else if (n == 0) {
			return -EPIPE;	/* the writer closed: the peer is gone */
		} else if (errno == EAGAIN) {
			xp_relax();
		} else if (errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

/* What a stream child needs; it lives in the caller's memory, copied by fork. */
struct xp_stream_child {
	struct xp_stream stream;
	uint64_t messages;		/* to write (throughput) or echo */
	uint32_t payload_bytes;
	unsigned char *buffer;		/* the child's payload buffer, shared memory */
};

/* Throughput child: one write() per message, message i carrying i. */
static int xp_stream_writer(void *arg)
{
	struct xp_stream_child *c = arg;
	uint64_t i;
	int err;

	xp_close_pair(&c->stream.caller_in, &c->stream.caller_out);
	for (i = 0; i < c->messages; i++) {
		memcpy(c->buffer, &i, sizeof(i));
		err = xp_write_all(c->stream.child_out, c->buffer,
				   c->payload_bytes);
		if (err)
			return err;
	}
	return 0;
}

int crossproc_bench_stream_throughput(int transport, uint64_t messages,
				      uint32_t payload_bytes,
				      uint64_t *elapsed_ns)
{
	struct xp_stream_child child = { 0 };
	struct xp_run run;
	unsigned char *buffer;
	uint64_t expected = 0, start, end;
	size_t carry = 0, child_bytes;
	int err;

	if (elapsed_ns == NULL || !xp_payload_ok(payload_bytes) ||
	    (transport != CROSSPROC_UNIX_SOCKET && transport != CROSSPROC_PIPE))
		return -EINVAL;
	/* The child's payload, then the caller's read buffer (chunk + a partial message). */
	child_bytes = xp_round_up(payload_bytes);
	err = xp_map(&run, child_bytes + XP_READ_CHUNK + payload_bytes);
	if (err)
		return err;
	buffer = run.memory + child_bytes;
	err = xp_stream_open(&child.stream, transport, 0);
	if (err)
		return xp_finish(&run, err);
	child.messages = messages;
	child.payload_bytes = payload_bytes;
	child.buffer = run.memory;
	err = xp_start(&run, xp_stream_writer, &child);
	/* The caller keeps only its end, so a dead child reads as end of file. */
	xp_close_pair(&child.stream.child_in, &child.stream.child_out);
	if (!err)
		err = xp_go(&run);
	if (err)
		goto out;

	start = xp_now_ns();
	while (expected < messages) {
		ssize_t n = read(child.stream.caller_in, buffer + carry,
				 XP_READ_CHUNK);
		size_t have, at = 0;

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			err = n == 0 ? -EPIPE : -errno;
			break;
		}
		/* Walk the whole messages read; keep a partial one for next time. */
		have = carry + (size_t)n;
		while (have - at >= payload_bytes) {
			uint64_t number;

			memcpy(&number, buffer + at, sizeof(number));
			if (number != expected || expected >= messages) {
				err = -EPROTO;
				break;
			}
			expected++;
			at += payload_bytes;
		}
		if (err)
			break;
		carry = have - at;
		if (carry > 0)
			memmove(buffer, buffer + at, carry);
	}
	end = xp_now_ns();
	if (!err)
		*elapsed_ns = end - start;
out:
	xp_stream_close(&child.stream);
	return xp_finish(&run, err);
}

/* Round-trip child: read a whole message, write it back. */
static int xp_stream_echo(void *arg)
{
	struct xp_stream_child *c = arg;
	uint64_t i;
	int err;

	xp_close_pair(&c->stream.caller_in, &c->stream.caller_out);
	for (i = 0; i < c->messages; i++) {
		err = xp_read_exact(c->stream.child_in, c->buffer,
				    c->payload_bytes);
		if (!err)
			err = xp_write_all(c->stream.child_out, c->buffer,
					   c->payload_bytes);
		if (err)
			return err;
	}
	return 0;
}

int crossproc_bench_stream_pingpong(int transport, int spin,
				    uint64_t round_trips,
				    uint32_t payload_bytes,
				    uint64_t *samples_ns)
{
	struct xp_stream_child child = { 0 };
	struct xp_run run;
	unsigned char *ping, *pong;
	uint64_t total, i;
	size_t slot;
	int err;

	if ((samples_ns == NULL && round_trips != 0) ||
	    !xp_payload_ok(payload_bytes) ||
	    round_trips > UINT64_MAX - XP_WARMUP_ROUND_TRIPS ||
	    (transport != CROSSPROC_UNIX_SOCKET && transport != CROSSPROC_PIPE))
		return -EINVAL;
	/* Three buffers: the child's, the caller's ping and its pong. */
	slot = xp_round_up(payload_bytes);
	err = xp_map(&run, 3 * slot);
	if (err)
		return err;
	ping = run.memory + slot;
	pong = run.memory + 2 * slot;
	err = xp_stream_open(&child.stream, transport, 1);
	if (err)
		return xp_finish(&run, err);
	if (spin) {
		err = xp_set_nonblocking(child.stream.caller_in);
		if (!err)
			err = xp_set_nonblocking(child.stream.caller_out);
		if (!err)
			err = xp_set_nonblocking(child.stream.child_in);
		if (!err)
			err = xp_set_nonblocking(child.stream.child_out);
		if (err)
			goto out;
	}
	total = XP_WARMUP_ROUND_TRIPS + round_trips;
	child.messages = total;
	child.payload_bytes = payload_bytes;
	child.buffer = run.memory;
	memset(ping, 0x5A, payload_bytes);
	err = xp_start(&run, xp_stream_echo, &child);
	xp_close_pair(&child.stream.child_in, &child.stream.child_out);
	if (!err)
		err = xp_go(&run);
	if (err)
		goto out;

	for (i = 0; i < total; i++) {
		uint64_t number, start, end;

		memcpy(ping, &i, sizeof(i));
		start = xp_now_ns();
		err = xp_write_all(child.stream.caller_out, ping, payload_bytes);
		if (!err)
			err = xp_read_exact(child.stream.caller_in, pong,
					    payload_bytes);
		end = xp_now_ns();
		if (err)
			break;
		memcpy(&number, pong, sizeof(number));
		if (number != i) {
			err = -EPROTO;
			break;
		}
		if (i >= XP_WARMUP_ROUND_TRIPS)
			samples_ns[i - XP_WARMUP_ROUND_TRIPS] = end - start;
	}
out:
	xp_stream_close(&child.stream);
	return xp_finish(&run, err);
}

/* ---------------------------------------------------------------------------
 * The plain ring in shared memory.
 */

struct xp_ring_child {
	void *in;			/* ring the child consumes, or NULL */
	void *out;			/* ring the child produces into */
	unsigned char *payload;		/* the child's scratch payload (throughput) */
	uint64_t messages;
	uint32_t payload_bytes;
};

/* Throughput child: the producer, as plain_ring_bench.c's peer thread. */
static int xp_ring_producer(void *arg)
{
	struct xp_ring_child *c = arg;
	uint64_t i;

	for (i = 0; i < c->messages; i++) {
		memcpy(c->payload, &i, sizeof(i));
		while (plain_ring_try_push(c->out, c->payload,
					   c->payload_bytes) == 0)
			xp_relax();
	}
	return 0;
}

int crossproc_bench_shm_ring_throughput(uint64_t messages,
					uint32_t payload_bytes, uint32_t slots,
					uint64_t *elapsed_ns)
{
	struct xp_ring_child child = { 0 };
	struct xp_run run;
	size_t ring_bytes;
	uint64_t expected, start, end;
	uint32_t spins = 0;
	int err;

	ring_bytes = plain_ring_memory_size(slots, payload_bytes);
	if (elapsed_ns == NULL || !xp_payload_ok(payload_bytes) ||
	    ring_bytes == 0)
		return -EINVAL;
	ring_bytes = xp_round_up(ring_bytes);
	err = xp_map(&run, ring_bytes + xp_round_up(payload_bytes));
	if (err)
		return err;
	(void)plain_ring_init(run.memory, ring_bytes, slots, payload_bytes);
	child.out = run.memory;
	child.payload = run.memory + ring_bytes;
	child.messages = messages;
	child.payload_bytes = payload_bytes;
	err = xp_start(&run, xp_ring_producer, &child);
	if (!err)
		err = xp_go(&run);
	if (err)
		return xp_finish(&run, err);

	start = xp_now_ns();
	for (expected = 0; expected < messages; expected++) {
		const void *p;
		uint32_t length;
		uint64_t number;

		while ((p = plain_ring_front(run.memory, &length)) == NULL) {
			err = xp_check_child(&run, &spins);
			if (err)
				goto out;
			xp_relax();
		}
		memcpy(&number, p, sizeof(number));
		if (number != expected || length != payload_bytes) {
			err = -EPROTO;
			goto out;
		}
		plain_ring_pop(run.memory);
	}
	end = xp_now_ns();
	*elapsed_ns = end - start;
out:
	return xp_finish(&run, err);
}

/* Round-trip child: copy every ping, slot to slot, onto the pong ring. */
static int xp_ring_echo(void *arg)
{
	struct xp_ring_child *c = arg;
	uint64_t i;

	for (i = 0; i < c->messages; i++) {
		const void *p;
		uint32_t length;

		while ((p = plain_ring_front(c->in, &length)) == NULL)
			xp_relax();
		while (plain_ring_try_push(c->out, p, length) == 0)
			xp_relax();
		plain_ring_pop(c->in);
	}
	return 0;
}

int crossproc_bench_shm_ring_pingpong(uint64_t round_trips,
				      uint32_t payload_bytes,
				      uint64_t *samples_ns)
{
	/* One message is ever in flight; a few slots is plenty. */
	const uint32_t slots = 64;
	struct xp_ring_child child = { 0 };
	struct xp_run run;
	unsigned char *ping, *pong, *payload;
	size_t ring_bytes;
	uint64_t total, i;
	uint32_t spins = 0;
	int err;

	ring_bytes = plain_ring_memory_size(slots, payload_bytes);
	if ((samples_ns == NULL && round_trips != 0) ||
	    !xp_payload_ok(payload_bytes) || ring_bytes == 0 ||
	    round_trips > UINT64_MAX - XP_WARMUP_ROUND_TRIPS)
		return -EINVAL;
	ring_bytes = xp_round_up(ring_bytes);
	err = xp_map(&run, 2 * ring_bytes + xp_round_up(payload_bytes));
	if (err)
		return err;
	ping = run.memory;
	pong = run.memory + ring_bytes;
	payload = run.memory + 2 * ring_bytes;
	(void)plain_ring_init(ping, ring_bytes, slots, payload_bytes);
	(void)plain_ring_init(pong, ring_bytes, slots, payload_bytes);
	memset(payload, 0x5A, payload_bytes);
	total = XP_WARMUP_ROUND_TRIPS + round_trips;
	child.in = ping;
	child.out = pong;
	child.messages = total;
	child.payload_bytes = payload_bytes;
	err = xp_start(&run, xp_ring_echo, &child);
	if (!err)
		err = xp_go(&run);
	if (err)
		return xp_finish(&run, err);

	for (i = 0; i < total; i++) {
		const void *p;
		uint32_t length;
		uint64_t number, start, end;
		int ok;

		memcpy(payload, &i, sizeof(i));
		start = xp_now_ns();
		while (plain_ring_try_push(ping, payload, payload_bytes) == 0)
			xp_relax();
		while ((p = plain_ring_front(pong, &length)) == NULL) {
			err = xp_check_child(&run, &spins);
			if (err)
				goto out;
			xp_relax();
		}
		memcpy(&number, p, sizeof(number));
		ok = number == i && length == payload_bytes;
		plain_ring_pop(pong);
		end = xp_now_ns();
		if (!ok) {
			err = -EPROTO;
			goto out;
		}
		if (i >= XP_WARMUP_ROUND_TRIPS)
			samples_ns[i - XP_WARMUP_ROUND_TRIPS] = end - start;
	}
out:
	return xp_finish(&run, err);
}

/* ---------------------------------------------------------------------------
 * Raw eventfd ping-pong.
 */

struct xp_eventfd_child {
	int ping;			/* the child sleeps on this one */
	int pong;			/* the caller sleeps on this one */
	uint64_t messages;
};

/* Eventfd reads and writes are all-or-nothing 8 bytes; only EINTR retries. */
static int xp_eventfd_read(int fd, uint64_t *value)
{
	for (;;) {
		ssize_t n = read(fd, value, sizeof(*value));

		if (n == (ssize_t)sizeof(*value))
			return 0;
		if (n >= 0)
			return -EPROTO;
		if (errno != EINTR)
			return -errno;
	}
}

static int xp_eventfd_write(int fd, uint64_t value)
{
	for (;;) {
		ssize_t n = write(fd, &value, sizeof(value));

		if (n == (ssize_t)sizeof(value))
			return 0;
		if (n >= 0)
			return -EPROTO;
		if (errno != EINTR)
			return -errno;
	}
}

/* Child: sleep on ping, hand back what woke it on pong. */
static int xp_eventfd_echo(void *arg)
{
	struct xp_eventfd_child *c = arg;
	uint64_t i, value;
	int err;

	for (i = 0; i < c->messages; i++) {
		err = xp_eventfd_read(c->ping, &value);
		if (!err)
			err = xp_eventfd_write(c->pong, value);
		if (err)
			return err;
	}
	return 0;
}

int crossproc_bench_eventfd_pingpong(uint64_t round_trips,
				     uint64_t *samples_ns)
{
	struct xp_eventfd_child child = { -1, -1, 0 };
	struct xp_run run;
	uint64_t total, i;
	int err;

	if ((samples_ns == NULL && round_trips != 0) ||
	    round_trips > UINT64_MAX - XP_WARMUP_ROUND_TRIPS - 1)
		return -EINVAL;
	/* Nothing to share but the handshake. */
	err = xp_map(&run, 0);
	if (err)
		return err;
	child.ping = eventfd(0, EFD_CLOEXEC);
	child.pong = eventfd(0, EFD_CLOEXEC);
	if (child.ping < 0 || child.pong < 0) {
		err = -errno;
		goto out;
	}
	total = XP_WARMUP_ROUND_TRIPS + round_trips;
	child.messages = total;
	err = xp_start(&run, xp_eventfd_echo, &child);
	if (!err)
		err = xp_go(&run);
	if (err)
		goto out;

	for (i = 0; i < total; i++) {
		uint64_t value = 0, start, end;

		/*
		 * The counter carries the round trip's number (plus one: an
		 * eventfd write of 0 wakes nobody), and one write is read
		 * whole by one read, so it doubles as the order check.
		 */
		start = xp_now_ns();
		err = xp_eventfd_write(child.ping, i + 1);
		if (!err)
			err = xp_eventfd_read(child.pong, &value);
		end = xp_now_ns();
		if (err)
			break;
		if (value != i + 1) {
			err = -EPROTO;
			break;
		}
		if (i >= XP_WARMUP_ROUND_TRIPS)
			samples_ns[i - XP_WARMUP_ROUND_TRIPS] = end - start;
	}
out:
	/* Kill (on error) before closing: the child may sleep on ping. */
	err = xp_finish(&run, err);
	if (child.ping >= 0)
		close(child.ping);
	if (child.pong >= 0)
		close(child.pong);
	return err;
}
