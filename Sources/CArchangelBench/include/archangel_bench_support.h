/*
 * archangel_bench_support.h - the C half of Archangel's benchmarks.
 *
 * A "plain" single-producer single-consumer ring and the loops that drive it
 * set the speed-of-light baseline: what two cores can do when a message costs
 * only the cache-line handoffs it needs, with no Swift, no validation and no
 * batching in the way. The bridge's own numbers are read against these.
 * Beside them sit thread pinning, so Swift benchmarks run on the same cores,
 * and a process-wide heap-allocation counter, so benchmarks can prove a hot
 * path allocates nothing.
 *
 * Errors are negative errno values, as in the kernel. Everything is plain
 * functions over <stdint.h> types so that Swift imports it as is.
 */
#ifndef ARCHANGEL_BENCH_SUPPORT_H
#define ARCHANGEL_BENCH_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * The plain ring
 *
 * `slots` fixed-size slots (a power of two), each holding up to `slot_bytes`
 * bytes and the length actually pushed. The ring keeps no pointers, only
 * offsets from its own start, so its memory may be shared between processes
 * mapped at different addresses. One thread may push and one other thread
 * may pop at the same time; nothing else is safe.
 */

/*
 * Bytes of memory a ring of `slots` slots of `slot_bytes` bytes needs, or 0
 * when the geometry is invalid (slots not a power of two, slot_bytes 0 or
 * above 1 MiB).
 */
size_t plain_ring_memory_size(uint32_t slots, uint32_t slot_bytes);

/*
 * Lay an empty ring out in `memory`, which must be 64-byte aligned (so that
 * each index really owns its cache line) and at least
 * plain_ring_memory_size(slots, slot_bytes) bytes long. Initialise before
 * either side runs. Returns 0 or -EINVAL.
 */
int plain_ring_init(void *memory, size_t memory_bytes, uint32_t slots,
		    uint32_t slot_bytes);

/*
 * Producer: copy `length` bytes of `data` into the next free slot and publish
 * it. Returns 1 when pushed, 0 when the ring is full, -EINVAL when `length`
 * exceeds the ring's slot_bytes.
 */
int plain_ring_try_push(void *ring, const void *data, uint32_t length);

/*
 * Consumer: the oldest unread slot's payload, in place, with its length in
 * `*length` (when `length` is not NULL); NULL when the ring is empty. The
 * view stays valid until plain_ring_pop().
 */
const void *plain_ring_front(void *ring, uint32_t *length);

/*
 * Consumer: release the slot plain_ring_front() returned to the producer.
 * Call it only after plain_ring_front() returned non-NULL.
 */
void plain_ring_pop(void *ring);

/* ---------------------------------------------------------------------------
 * Baseline loops, entirely in C
 *
 * Each runs the caller's thread against one peer pthread. When the machine
 * has two or more online CPUs the caller is pinned to CPU 0 and the peer to
 * CPU 1 (failures ignored), and the caller's previous affinity is restored
 * before returning. Both sides busy-poll. Returns 0, -EINVAL for bad
 * arguments (payload_bytes must be at least 8: it carries the message
 * number), -ENOMEM, another negative errno if the thread cannot start, or
 * -EPROTO if a message arrives out of order or with the wrong length.
 */

/*
 * One-way streaming: the peer pushes `messages` payloads of `payload_bytes`
 * through a ring of `slots` slots while the caller reads each in place,
 * checks its sequence number and pops it. `*elapsed_ns` receives the
 * CLOCK_MONOTONIC time from the start signal to the last pop.
 */
int plain_ring_bench_throughput(uint64_t messages, uint32_t payload_bytes,
				uint32_t slots, uint64_t *elapsed_ns);

/*
 * Round-trip latency: the caller pushes a payload on a "ping" ring, the peer
 * copies it onto a "pong" ring, the caller pops it. After 10,000 unrecorded
 * warm-up round trips, `samples_ns[i]` receives the duration of round trip i
 * (clock read just before the push and just after the pop), for
 * `round_trips` entries.
 */
int plain_ring_bench_pingpong(uint64_t round_trips, uint32_t payload_bytes,
			      uint64_t *samples_ns);

/*
 * Pin the calling thread to `cpu`. Best effort: an invalid or unavailable CPU
 * leaves the thread's affinity as it was.
 */
void archangel_bench_pin_current_thread(int cpu);

/* ---------------------------------------------------------------------------
 * Heap-allocation counter
 *
 * malloc and friends are interposed process-wide and counted with relaxed
 * atomics. Read the counters before and after the code under test; the
 * difference is what it (and any other thread running meanwhile) allocated.
 */

/*
 * Allocating calls so far (malloc, calloc, realloc that does not free,
 * reallocarray, posix_memalign, aligned_alloc, memalign, valloc, pvalloc);
 * always 0 when counting is unavailable.
 */
uint64_t archangel_alloc_count(void);

/* Bytes requested by those calls so far; always 0 when unavailable. */
uint64_t archangel_alloc_bytes(void);

/*
 * 1 when the interposer is compiled in; 0 under a sanitizer (its runtime
 * owns malloc) or off glibc (there is no __libc_malloc to forward to).
 */
int archangel_alloc_counting_available(void);

#ifdef __cplusplus
}
#endif

#endif /* ARCHANGEL_BENCH_SUPPORT_H */
