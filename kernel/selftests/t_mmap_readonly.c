// SPDX-License-Identifier: GPL-2.0
/*
 * t_mmap_readonly: the mapping rules. Pages 0-1 (header, kernel-written
 * lines) map read-only and can neither be mapped writable nor mprotect'ed
 * writable; a write there faults. Page 0 holds the header with the offsets
 * ATTACH reported. Every mapping must lie within one region: crossing,
 * oversized or out-of-range ones are -EINVAL. Two mappings of one region see
 * the same memory.
 */
#include "t_common.h"

static int try_map(int fd, __u64 off, __u64 len, int prot, void **out)
{
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, (off_t)off);

	if (p == MAP_FAILED)
		return -errno;
	if (out)
		*out = p;
	else
		munmap(p, len);
	return 0;
}

#define EXPECT_MAP_FAILS(fd, off, len, prot, what) do { \
	int _e = try_map(fd, off, len, prot, NULL); \
	if (!_e) \
		T_FAILF("mmap of %s succeeded", what); \
} while (0)

#define EXPECT_MAP_EINVAL(fd, off, len, prot, what) do { \
	int _e = try_map(fd, off, len, prot, NULL); \
	if (_e != -EINVAL) \
		T_FAILF("mmap of %s: %d (%s), want -EINVAL", what, _e, strerror(-_e)); \
} while (0)

int main(void)
{
	struct archangel_create_req req = { .channel_id = ARCHANGEL_CHANNEL_ANY, .flags = ARCHANGEL_CREATE_ATTACH };
	const int rw = PROT_READ | PROT_WRITE;
	struct archangel_attach_req a;
	const struct archangel_channel_header *h;
	struct archangel_channel_offsets *o;
	unsigned char *ro, *lines, *lines2, *pool, *pool2;
	__u64 rings_end, pool_bytes;
	int fd, unbound, status;
	pid_t pid;

	t_init("t_mmap_readonly");
	fd = au_open();
	CHECK(fd >= 0, "open");
	unbound = au_open();
	EXPECT_ERR(try_map(unbound, 0, 4096, PROT_READ, NULL) ? -1 : 0, -1);	/* nothing to map yet */
	EXPECT_OK(au_create(fd, &req));
	EXPECT_OK(au_attach_req(fd, req.channel_id, &a));
	o = &a.offsets;
	rings_end = o->to_user.pool.buffers;
	pool_bytes = (__u64)o->to_user.pool.buffer_size * o->to_user.pool.buffer_count;

	/* Pages 0-1: read-only. */
	EXPECT_MAP_FAILS(fd, 0, 4096, rw, "page 0 writable");
	EXPECT_MAP_FAILS(fd, 4096, 4096, rw, "page 1 writable");
	EXPECT_MAP_FAILS(fd, 0, 8192, rw, "pages 0-1 writable");
	EXPECT_OK(try_map(fd, 0, 8192, PROT_READ, (void **)&ro));
	CHECK(mprotect(ro, 8192, rw) && (errno == EACCES || errno == EPERM),
	      "mprotect of pages 0-1 to writable: %s", strerror(errno));
	CHECK(mprotect(ro + 4096, 4096, rw), "mprotect of page 1 to writable succeeded");
	h = (const void *)ro;
	CHECK(h->magic == ARCHANGEL_CHANNEL_MAGIC, "page 0 magic %#x", h->magic);
	CHECK(!memcmp(ro, "ACHN", 4), "page 0 does not start with the bytes ACHN");
	CHECK(h->header_size == sizeof(*h), "header_size %u", h->header_size);
	CHECK(!memcmp(&h->offsets, o, sizeof(*o)), "page 0 offsets differ from ATTACH's");
	/* A write to the read-only page faults (in a child). */
	pid = fork();
	if (!pid) {
		*(volatile unsigned char *)(ro + 4096) = 1;
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS),
	      "write to page 1 did not fault (status %#x)", status);
	/* Mapping read-only with MAP_PRIVATE then writing would copy: refused or harmless. */

	/* Page 2 .. end of the rings: read-write; two mappings share memory. */
	EXPECT_OK(try_map(fd, 8192, rings_end - 8192, rw, (void **)&lines));
	EXPECT_OK(try_map(fd, 8192, 4096, rw, (void **)&lines2));
	lines[100] = 0x5a;
	CHECK(lines2[100] == 0x5a, "second mapping of page 2 does not see the write");
	lines[100] = 0;
	EXPECT_OK(try_map(fd, o->to_user.normal.data, o->to_user.normal.size, rw, NULL));	/* a sub-range */

	/* The pools: read-write, on their own. */
	EXPECT_OK(try_map(fd, o->to_user.pool.buffers, pool_bytes, rw, (void **)&pool));
	EXPECT_OK(try_map(fd, o->to_user.pool.buffers + 8192, 4096, rw, (void **)&pool2));
	pool[8192 + 7] = 0xa5;
	CHECK(pool2[7] == 0xa5, "pool sub-mapping does not see the write");
	EXPECT_OK(try_map(fd, o->to_kernel.pool.buffers, pool_bytes, rw, NULL));

	/* Everything crossing a region boundary, too long, or outside: -EINVAL. */
	EXPECT_MAP_EINVAL(fd, 4096, 8192, PROT_READ, "pages 1-2 (read-only into read-write)");
	EXPECT_MAP_EINVAL(fd, rings_end - 4096, 8192, rw, "rings into the to_user pool");
	EXPECT_MAP_EINVAL(fd, o->to_user.pool.buffers, pool_bytes + 4096, rw, "to_user pool into to_kernel pool");
	EXPECT_MAP_EINVAL(fd, o->to_kernel.pool.buffers, pool_bytes + 4096, rw, "past the end");
	EXPECT_MAP_EINVAL(fd, o->total_size, 4096, PROT_READ, "at total_size");
	EXPECT_MAP_EINVAL(fd, o->total_size + (1ULL << 30), 4096, PROT_READ, "far past the end");
	EXPECT_MAP_EINVAL(fd, 0, o->total_size, PROT_READ, "the whole channel at once");
	EXPECT_MAP_FAILS(fd, ARCHANGEL_MMAP_OFF_SHARED, 4096, rw, "the shared region before SETUP_SHM");
	EXPECT_MAP_FAILS(fd, (1ULL << 46), 4096, PROT_READ, "offset 2^46");

	EXPECT_OK(au_destroy(fd, req.channel_id));
	/* The mappings outlive the channel's destruction without harm. */
	CHECK(h->magic == ARCHANGEL_CHANNEL_MAGIC, "page 0 changed under a live mapping after destroy");
	lines[64] = 1;
	pool[0] = 1;
	EXPECT_MAP_FAILS(fd, 8192, 4096, rw, "a destroyed channel");
	close(unbound);
	close(fd);
	return T_PASS;
}
