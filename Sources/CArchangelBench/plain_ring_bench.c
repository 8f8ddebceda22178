/*
 * plain_ring_bench.c - the baseline loops over the plain ring.
 *
 * They are written in C, not Swift, so that the baseline carries no language
 * overhead: whatever the Swift benchmarks of the bridge measure above these
 * numbers is the bridge's (or Swift's) cost, not the hardware's.
 *
 * Both loops run the caller's thread against one peer pthread, each pinned
 * to its own CPU so that the scheduler cannot stack them on one core (which
 * would turn a cache-line handoff into a context switch) or move them
 * mid-run. Both sides busy-poll, because any sleep would measure the
 * scheduler instead of the ring.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "archangel_bench_support.h"

#define BENCH_CACHELINE		64u
#define BENCH_WARMUP_ROUND_TRIPS	10000u
#define BENCH_CALLER_CPU	0
#define BENCH_PEER_CPU		1

/*
 * Tell the core we are spinning: on x86 `pause` stops the pipeline from
 * filling with speculative loads of the polled line (and the memory-order
 * machine clear when it changes), and gives a sibling hyperthread the core.
 */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

static uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static size_t bench_round_up(size_t bytes)
{
	return (bytes + BENCH_CACHELINE - 1) & ~(size_t)(BENCH_CACHELINE - 1);
}

void archangel_bench_pin_current_thread(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/*
 * State shared by the caller and the peer. The flags are touched only at
 * start and on failure, never per message, so they cannot disturb the
 * rings' lines; the struct is line-aligned so they share no line with the
 * caller's other locals either.
 */
struct bench_peer {
	_Alignas(BENCH_CACHELINE) void *in;	/* ring the peer consumes, or NULL */
	void *out;		/* ring the peer produces into */
	void *payload;		/* peer's scratch payload (throughput only) */
	uint64_t messages;	/* messages the peer handles */
	uint32_t payload_bytes;
	int cpu;		/* CPU to pin the peer to, or -1 */
	int ready;		/* peer -> caller: pinned and waiting */
	int go;			/* caller -> peer: start now */
	int stop;		/* caller -> peer: give up, the caller has */
};

/* The caller's affinity before the bench, so it can be handed back. */
struct bench_caller {
	cpu_set_t saved;
	int restore;
};

/*
 * Pin both sides only when there are two CPUs to pin to; on one CPU pinning
 * changes nothing and the run is meaningless anyway, but it still completes.
 */
static int bench_pin_caller(struct bench_caller *caller)
{
	caller->restore = 0;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return -1;
	caller->restore = pthread_getaffinity_np(pthread_self(),
						 sizeof(caller->saved),
						 &caller->saved) == 0;
	archangel_bench_pin_current_thread(BENCH_CALLER_CPU);
	return BENCH_PEER_CPU;
}

static void bench_unpin_caller(const struct bench_caller *caller)
{
	if (caller->restore)
		(void)pthread_setaffinity_np(pthread_self(),
					     sizeof(caller->saved),
					     &caller->saved);
}

/* Peer side of the start handshake: pin, report ready, wait for go. */
static void bench_peer_start(struct bench_peer *peer)
{
	if (peer->cpu >= 0)
		archangel_bench_pin_current_thread(peer->cpu);
	__atomic_store_n(&peer->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&peer->go, __ATOMIC_ACQUIRE))
		cpu_relax();
}

/* Caller side: wait until the peer has pinned itself, then release it. */
static void bench_caller_start(struct bench_peer *peer)
{
	while (!__atomic_load_n(&peer->ready, __ATOMIC_ACQUIRE))
		cpu_relax();
	__atomic_store_n(&peer->go, 1, __ATOMIC_RELEASE);
}

static int bench_peer_stopped(struct bench_peer *peer)
{
	return __atomic_load_n(&peer->stop, __ATOMIC_RELAXED);
}

/*
 * Rings and scratch come from one anonymous mapping, not malloc: it is
 * page-aligned like the shared memory the real bridge uses, MAP_POPULATE
 * keeps page faults out of the timed loops, and it leaves the allocation
 * counter alone.
 */
static void *bench_map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Start the peer; returns 0 or a negative errno. */
static int bench_spawn(pthread_t *thread, void *(*fn)(void *),
		       struct bench_peer *peer)
{
	int err = pthread_create(thread, NULL, fn, peer);

	return err ? -err : 0;
}

/* Throughput peer: the producer. Message i carries i in its first 8 bytes. */
static void *throughput_producer(void *arg)
{
	struct bench_peer *peer = arg;
	unsigned char *payload = peer->payload;
	uint64_t i;

	bench_peer_start(peer);
	for (i = 0; i < peer->messages; i++) {
		memcpy(payload, &i, sizeof(i));
		while (plain_ring_try_push(peer->out, payload,
					   peer->payload_bytes) == 0) {
			if (bench_peer_stopped(peer))
				return NULL;
			cpu_relax();
		}
	}
	return NULL;
}

int plain_ring_bench_throughput(uint64_t messages, uint32_t payload_bytes,
				uint32_t slots, uint64_t *elapsed_ns)
{
	struct bench_peer peer = { 0 };
	struct bench_caller caller;
	size_t ring_bytes, map_bytes;
	unsigned char *area;
	pthread_t thread;
	uint64_t expected, start, end;
	int err;

	ring_bytes = plain_ring_memory_size(slots, payload_bytes);
	if (elapsed_ns == NULL || payload_bytes < sizeof(uint64_t) ||
	    ring_bytes == 0)
		return -EINVAL;
	ring_bytes = bench_round_up(ring_bytes);
	map_bytes = ring_bytes + bench_round_up(payload_bytes);
	area = bench_map(map_bytes);
	if (area == NULL)
		return -ENOMEM;
	(void)plain_ring_init(area, ring_bytes, slots, payload_bytes);

	peer.out = area;
	peer.payload = area + ring_bytes;
	peer.messages = messages;
	peer.payload_bytes = payload_bytes;
	peer.cpu = bench_pin_caller(&caller);
	err = bench_spawn(&thread, throughput_producer, &peer);
	if (err)
		goto out;

	bench_caller_start(&peer);
	start = bench_now_ns();
	for (expected = 0; expected < messages; expected++) {
		const void *p;
		uint32_t length;
		uint64_t number;

		while ((p = plain_ring_front(area, &length)) == NULL)
			cpu_relax();
		memcpy(&number, p, sizeof(number));
		if (number != expected || length != payload_bytes) {
			err = -EPROTO;
			__atomic_store_n(&peer.stop, 1, __ATOMIC_RELAXED);
			break;
		}
		plain_ring_pop(area);
	}
	end = bench_now_ns();
	pthread_join(thread, NULL);
	if (!err)
		*elapsed_ns = end - start;
out:
	bench_unpin_caller(&caller);
	munmap(area, map_bytes);
	return err;
}

/* Ping-pong peer: echo every ping, payload and all, onto the pong ring. */
static void *pingpong_echo(void *arg)
{
	struct bench_peer *peer = arg;
	uint64_t i;

	bench_peer_start(peer);
	for (i = 0; i < peer->messages; i++) {
		const void *p;
		uint32_t length;

		while ((p = plain_ring_front(peer->in, &length)) == NULL) {
			if (bench_peer_stopped(peer))
				return NULL;
			cpu_relax();
		}
		/* Copy slot to slot: the reply is built from the request. */
		while (plain_ring_try_push(peer->out, p, length) == 0)
			cpu_relax();
		plain_ring_pop(peer->in);
	}
	return NULL;
}

int plain_ring_bench_pingpong(uint64_t round_trips, uint32_t payload_bytes,
			      uint64_t *samples_ns)
{
	/* One message is ever in flight; a few slots is plenty. */
	const uint32_t slots = 64;
	struct bench_peer peer = { 0 };
	struct bench_caller caller;
	size_t ring_bytes, map_bytes;
	unsigned char *area, *ping, *pong, *payload;
	pthread_t thread;
	uint64_t total, i;
	int err;

	ring_bytes = plain_ring_memory_size(slots, payload_bytes);
	if ((samples_ns == NULL && round_trips != 0) ||
	    payload_bytes < sizeof(uint64_t) || ring_bytes == 0 ||
	    round_trips > UINT64_MAX - BENCH_WARMUP_ROUND_TRIPS)
		return -EINVAL;
	ring_bytes = bench_round_up(ring_bytes);
	map_bytes = 2 * ring_bytes + bench_round_up(payload_bytes);
	area = bench_map(map_bytes);
	if (area == NULL)
		return -ENOMEM;
	ping = area;
	pong = area + ring_bytes;
	payload = area + 2 * ring_bytes;
	(void)plain_ring_init(ping, ring_bytes, slots, payload_bytes);
	(void)plain_ring_init(pong, ring_bytes, slots, payload_bytes);

	total = BENCH_WARMUP_ROUND_TRIPS + round_trips;
	peer.in = ping;
	peer.out = pong;
	peer.messages = total;
	peer.payload_bytes = payload_bytes;
	peer.cpu = bench_pin_caller(&caller);
	err = bench_spawn(&thread, pingpong_echo, &peer);
	if (err)
		goto out;

	bench_caller_start(&peer);
	for (i = 0; i < total; i++) {
		const void *p;
		uint32_t length;
		uint64_t number, start, end;
		int ok;

		memcpy(payload, &i, sizeof(i));
		start = bench_now_ns();
		while (plain_ring_try_push(ping, payload, payload_bytes) == 0)
			cpu_relax();
		while ((p = plain_ring_front(pong, &length)) == NULL)
			cpu_relax();
		memcpy(&number, p, sizeof(number));
		ok = number == i && length == payload_bytes;
		plain_ring_pop(pong);
		end = bench_now_ns();
		if (!ok) {
			err = -EPROTO;
			__atomic_store_n(&peer.stop, 1, __ATOMIC_RELAXED);
			break;
		}
		if (i >= BENCH_WARMUP_ROUND_TRIPS)
			samples_ns[i - BENCH_WARMUP_ROUND_TRIPS] = end - start;
	}
	pthread_join(thread, NULL);
out:
	bench_unpin_caller(&caller);
	munmap(area, map_bytes);
	return err;
}
