/*
 * archangel_crossproc_bench.h - cross-process baselines for the userspace
 * backend's benchmarks.
 *
 * The userspace backend puts the two ends of a channel in two processes, so
 * its figures are read against what two processes can already do with the
 * kernel's own IPC and with a plain ring in shared memory:
 *
 *   - a Unix stream socket (socketpair AF_UNIX, SOCK_STREAM) and a pipe, the
 *     transports a bridge would otherwise be built on;
 *   - the plain ring of archangel_bench_support.h in memfd shared memory,
 *     the speed of light for a shared-memory bridge;
 *   - a raw eventfd ping-pong, the floor for any round trip in which both
 *     sides sleep.
 *
 * Every function forks once. The child runs only C over system calls and
 * memory mapped before the fork (no malloc, no stdio, no Swift: the parent
 * may be a multithreaded Swift process, and only async-signal-safe work is
 * safe in its child), then _exits. When two or more CPUs are online the
 * calling thread is pinned to CPU 0 for the run and the child to CPU 1; the
 * caller's affinity is restored before returning. Start is a handshake in
 * shared memory: the child pins itself and reports ready, and the caller
 * starts its clock when it releases the child. Times are CLOCK_MONOTONIC,
 * read by the caller only.
 *
 * The caller is always the side that receives (throughput) or that sends the
 * ping and times the round trip (round trips). Payloads carry the message
 * number in their first 8 bytes and the caller checks every one.
 *
 * Round trips: after 10,000 unrecorded warm-up round trips, samples_ns[i]
 * receives the duration of round trip i, clock read just before the caller
 * sends and just after it has received the whole reply, for `round_trips`
 * entries (caller-allocated).
 *
 * Returns 0, -EINVAL for bad arguments (payload_bytes must be 8...1 MiB:
 * the first 8 bytes carry the message number), -EPROTO when a message
 * arrives out of order, damaged or short, -EPIPE when the child went away
 * early, another negative errno from a failing system call (the child's
 * errors come back through its exit status). SIGPIPE is blocked in the
 * calling thread for the duration of the call, so a dead peer is an error,
 * never a signal.
 */
#ifndef ARCHANGEL_CROSSPROC_BENCH_H
#define ARCHANGEL_CROSSPROC_BENCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The byte-stream transports the stream benchmarks run over. */
#define CROSSPROC_UNIX_SOCKET	1	/* socketpair(AF_UNIX, SOCK_STREAM) */
#define CROSSPROC_PIPE		2	/* pipe2(); two pipes for round trips */

/*
 * One-way streaming over `transport`: the child writes `messages` payloads
 * of `payload_bytes`, one write() per message (a sender of discrete
 * messages has to, unless it holds them back). The caller reads with large
 * (256 KiB) blocking reads and walks the bytes it got message by message,
 * the stream's best case: one read() drains everything queued. Socket send
 * buffer and pipe capacity are raised as far as an unprivileged process
 * may (SO_SNDBUF up to net.core.wmem_max, F_SETPIPE_SZ up to
 * fs.pipe-max-size). `*elapsed_ns` receives the time from releasing the
 * child to the last message read.
 */
int crossproc_bench_stream_throughput(int transport, uint64_t messages,
				      uint32_t payload_bytes,
				      uint64_t *elapsed_ns);

/*
 * Ping-pong over `transport`: the caller writes a payload, the child reads
 * all of it and writes it back, the caller reads all of the reply (each
 * read asks for exactly the bytes still missing). With `spin` nonzero both
 * sides' descriptors are O_NONBLOCK and both busy-poll read() (a system
 * call per poll, no sleeping); with `spin` zero both block in read(), so
 * every message wakes a sleeping peer.
 */
int crossproc_bench_stream_pingpong(int transport, int spin,
				    uint64_t round_trips,
				    uint32_t payload_bytes,
				    uint64_t *samples_ns);

/*
 * One-way streaming through a plain ring of `slots` slots in memfd shared
 * memory: the child pushes, the caller reads each message in place, checks
 * it and pops it; both busy-poll. The same ring and loop as
 * plain_ring_bench_throughput(), with a process boundary in between.
 */
int crossproc_bench_shm_ring_throughput(uint64_t messages,
					uint32_t payload_bytes, uint32_t slots,
					uint64_t *elapsed_ns);

/*
 * Ping-pong through two plain rings in memfd shared memory; the child copies
 * each ping onto the pong ring. Both sides busy-poll. The same loop as
 * plain_ring_bench_pingpong(), across processes.
 */
int crossproc_bench_shm_ring_pingpong(uint64_t round_trips,
				      uint32_t payload_bytes,
				      uint64_t *samples_ns);

/*
 * Blocking ping-pong over two eventfds, both sides asleep: the caller
 * writes the round trip's number (plus one) to the child's eventfd and
 * blocks in read() on its own; the child, blocked in read() on its eventfd,
 * writes the value it read back to the caller's. No payload: this is the
 * cost of two sleeps and two wake-ups across processes, the floor under any
 * round trip whose sides sleep on eventfds. If the child is killed
 * mid-run the call blocks (nothing else can signal the caller's eventfd).
 */
int crossproc_bench_eventfd_pingpong(uint64_t round_trips,
				     uint64_t *samples_ns);

#ifdef __cplusplus
}
#endif

#endif /* ARCHANGEL_CROSSPROC_BENCH_H */
