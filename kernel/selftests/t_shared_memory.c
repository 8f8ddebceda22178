// SPDX-License-Identifier: GPL-2.0
/*
 * t_shared_memory: the extra shared region. SHM_SIZE is 0 and nothing maps
 * at ARCHANGEL_MMAP_OFF_SHARED before SETUP_SHM; after it the region maps
 * read-write, two mappings share bytes, a second setup is refused, bad sizes
 * are refused, and CLEANUP_SHM removes it (a mapping still alive keeps its
 * pages valid until munmap).
 */
#include "t_common.h"

static int shm_size(int fd, __u64 *size)
{
	return ioctl(fd, ARCHANGEL_IOC_SHM_SIZE, size) < 0 ? -errno : 0;
}

static int setup(int fd, __u64 size)
{
	return ioctl(fd, ARCHANGEL_IOC_SETUP_SHM, &size) < 0 ? -errno : 0;
}

static int cleanup(int fd)
{
	return ioctl(fd, ARCHANGEL_IOC_CLEANUP_SHM) < 0 ? -errno : 0;
}

static unsigned char *map_shm(int fd, __u64 len, __u64 at)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)(ARCHANGEL_MMAP_OFF_SHARED + at));

	return p == MAP_FAILED ? NULL : p;
}

int main(void)
{
	const __u64 size = 256 * 1024;
	struct au_channel ch;
	unsigned char *a, *b;
	__u64 got, i;
	int err;

	t_init("t_shared_memory");
	err = au_channel_new(&ch, NULL);
	CHECK(!err, "channel: %s", strerror(-err));

	EXPECT_OK(shm_size(ch.fd, &got));
	CHECK(got == 0, "SHM_SIZE %llu before setup", (unsigned long long)got);
	CHECK(!map_shm(ch.fd, 4096, 0), "shared region mapped before setup");
	EXPECT_ERR(setup(ch.fd, 0), -EINVAL);
	err = setup(ch.fd, 1ULL << 40);
	CHECK(err == -EINVAL || err == -ENOMEM || err == -E2BIG, "setup of 1 TiB: %d", err);

	EXPECT_OK(setup(ch.fd, size));
	EXPECT_OK(shm_size(ch.fd, &got));
	CHECK(got == size, "SHM_SIZE %llu, want %llu", (unsigned long long)got, (unsigned long long)size);
	err = setup(ch.fd, size);
	CHECK(err == -EEXIST || err == -EBUSY, "second setup: %d", err);

	a = map_shm(ch.fd, size, 0);
	CHECK(a, "map the region: %s", strerror(errno));
	b = map_shm(ch.fd, 4096, size - 4096);
	CHECK(b, "map its last page: %s", strerror(errno));
	for (i = 0; i < size; i++)
		CHECK(a[i] == 0, "fresh region not zeroed at %llu", (unsigned long long)i);
	for (i = 0; i < size; i++)
		a[i] = (unsigned char)(i * 7);
	for (i = 0; i < 4096; i++)
		CHECK(b[i] == (unsigned char)((size - 4096 + i) * 7), "second mapping differs at %llu",
		      (unsigned long long)i);
	CHECK(!map_shm(ch.fd, size + 4096, 0), "mapping past the region's end succeeded");
	CHECK(!map_shm(ch.fd, 4096, size), "mapping at the region's end succeeded");

	/* Cleanup with a live mapping: the region goes, the pages stay until munmap. */
	EXPECT_OK(cleanup(ch.fd));
	EXPECT_OK(shm_size(ch.fd, &got));
	CHECK(got == 0, "SHM_SIZE %llu after cleanup", (unsigned long long)got);
	CHECK(!map_shm(ch.fd, 4096, 0), "mapped after cleanup");
	a[0] = 1;
	CHECK(b[4095] == (unsigned char)((size - 1) * 7), "live mapping changed by cleanup");
	munmap(a, size);
	munmap(b, 4096);
	err = cleanup(ch.fd);
	CHECK(err == 0 || err == -ENOENT || err == -ENXIO, "second cleanup: %d", err);

	/* Set up again, then destroy the channel with the region mapped. */
	EXPECT_OK(setup(ch.fd, 8192));
	a = map_shm(ch.fd, 8192, 0);
	CHECK(a, "map after re-setup");
	CHECK(a[0] == 0, "re-setup region not zeroed");
	EXPECT_OK(au_destroy(ch.fd, ch.id));
	a[100] = 1;
	munmap(a, 8192);
	au_detach(&ch, 1);
	return T_PASS;
}
