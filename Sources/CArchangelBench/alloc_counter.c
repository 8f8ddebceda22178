/*
 * alloc_counter.c - count heap allocations by interposing malloc.
 *
 * A symbol defined in the executable takes precedence over libc.so's, and
 * glibc reaches its own malloc, calloc, realloc and free through the GOT
 * precisely so that they can be replaced; so defining the allocation
 * functions here catches every allocation in the process: Swift's runtime,
 * Foundation, libc itself (strdup, reallocarray, stdio buffers). Each
 * definition bumps a counter and forwards to glibc's real allocator through
 * its __libc_* entry points. Those are plain exported functions, so unlike
 * dlsym(RTLD_NEXT) there is no bootstrap problem when dlsym itself
 * allocates. Because the memory is glibc's own, malloc_usable_size(), which
 * the Swift runtime uses, keeps working without being interposed.
 *
 * The set below is every glibc 2.36 entry point that hands out heap memory
 * without going through one of the others: reallocarray calls realloc via
 * the GOT and is caught there, but posix_memalign, aligned_alloc, memalign,
 * valloc and pvalloc call glibc internals directly, so each is interposed.
 * free is interposed too so that it always pairs with the same allocator.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>

#include "archangel_bench_support.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif

/*
 * Sanitizer runtimes define malloc themselves; a second definition would
 * either fail to link or, worse, bypass their shadow bookkeeping. Off glibc
 * there is no __libc_malloc to forward to.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || \
	defined(__SANITIZE_HWADDRESS__) || \
	__has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
	__has_feature(memory_sanitizer) || __has_feature(hwaddress_sanitizer)
#define ARCHANGEL_ALLOC_INTERPOSE 0
#elif defined(__linux__) && defined(__GLIBC__)
#define ARCHANGEL_ALLOC_INTERPOSE 1
#else
#define ARCHANGEL_ALLOC_INTERPOSE 0
#endif

#if ARCHANGEL_ALLOC_INTERPOSE

/* glibc's real allocator; exported by libc.so.6 but declared in no header. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

/*
 * The counters get a cache line of their own: every allocating thread
 * writes them, and that contention should not spill onto unrelated data.
 * Relaxed order is enough because readers only want a total, not an order
 * against other memory.
 */
static struct {
	_Alignas(64) uint64_t calls;
	uint64_t bytes;
} alloc_stats;

static inline void alloc_note(size_t bytes)
{
	__atomic_fetch_add(&alloc_stats.calls, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&alloc_stats.bytes, (uint64_t)bytes,
			   __ATOMIC_RELAXED);
}

void *malloc(size_t size)
{
	alloc_note(size);
	return __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
	/* An overflowing product fails inside glibc; the byte tally may lie. */
	alloc_note(count * size);
	return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size)
{
	/* glibc's realloc(ptr, 0) frees and returns NULL: not an allocation. */
	if (ptr == NULL || size != 0)
		alloc_note(size);
	return __libc_realloc(ptr, size);
}

void free(void *ptr)
{
	__libc_free(ptr);
}

void *memalign(size_t alignment, size_t size)
{
	alloc_note(size);
	return __libc_memalign(alignment, size);
}

/* In glibc 2.36 aligned_alloc is an alias of memalign, with its leniency. */
void *aligned_alloc(size_t alignment, size_t size)
{
	alloc_note(size);
	return __libc_memalign(alignment, size);
}

int posix_memalign(void **memptr, size_t alignment, size_t size)
{
	void *p;

	/* POSIX: a power of two and a multiple of sizeof(void *). */
	if (alignment % sizeof(void *) != 0 ||
	    (alignment & (alignment - 1)) != 0 || alignment == 0)
		return EINVAL;
	alloc_note(size);
	p = __libc_memalign(alignment, size);
	if (p == NULL)
		return ENOMEM;
	*memptr = p;
	return 0;
}

void *valloc(size_t size)
{
	alloc_note(size);
	return __libc_valloc(size);
}

void *pvalloc(size_t size)
{
	alloc_note(size);
	return __libc_pvalloc(size);
}

uint64_t archangel_alloc_count(void)
{
	return __atomic_load_n(&alloc_stats.calls, __ATOMIC_RELAXED);
}

uint64_t archangel_alloc_bytes(void)
{
	return __atomic_load_n(&alloc_stats.bytes, __ATOMIC_RELAXED);
}

int archangel_alloc_counting_available(void)
{
	return 1;
}

#else /* !ARCHANGEL_ALLOC_INTERPOSE */

uint64_t archangel_alloc_count(void)
{
	return 0;
}

uint64_t archangel_alloc_bytes(void)
{
	return 0;
}

int archangel_alloc_counting_available(void)
{
	return 0;
}

#endif /* ARCHANGEL_ALLOC_INTERPOSE */
