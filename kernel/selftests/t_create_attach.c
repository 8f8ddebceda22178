// SPDX-License-Identifier: GPL-2.0
/*
 * t_create_attach: CREATE and ATTACH semantics. Ids, -EEXIST, bad geometry
 * and reserved fields (-EINVAL), one user file per channel (-EBUSY), -ENOENT,
 * an ABI major mismatch (-EPROTO, both versions reported), closing detaches
 * without destroying, DESTROY turns the bound file's calls into -EPIPE,
 * -ENOSPC once every id is taken.
 */
#include "t_common.h"

static int create(int fd, __u32 id, __u32 flags, struct archangel_create_req *out)
{
	struct archangel_create_req req = { .channel_id = id, .flags = flags };
	int err = au_create(fd, &req);

	if (out)
		*out = req;
	return err;
}

static void bad_geometry(int fd)
{
	static const struct { const char *what; struct archangel_create_req req; } cases[] = {
		{ "normal ring not a power of two", { .normal_ring_bytes = 3000 } },
		{ "normal ring below 4 KiB", { .normal_ring_bytes = 2048 } },
		{ "express ring above 1 GiB", { .express_ring_bytes = 1U << 31 } },
		{ "pool buffer below 256", { .pool_buffer_size = 128 } },
		{ "pool buffer not a power of two", { .pool_buffer_size = 5000 } },
		{ "too many buffers", { .pool_buffer_count = (1U << 20) + 1 } },
		{ "threshold above the inline limit", { .pool_threshold = 5000 } },
		{ "too many segments", { .max_segments = 300 } },
		{ "unknown flag", { .flags = 1U << 7 } },
		{ "reserved word", { .reserved = { [3] = 1 } } },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct archangel_create_req req = cases[i].req;
		int err;

		req.channel_id = ARCHANGEL_CHANNEL_ANY;
		err = au_create(fd, &req);
		if (err != -EINVAL)
			T_FAILF("create with %s: %d (%s), want -EINVAL", cases[i].what, err, strerror(-err));
	}
}

int main(void)
{
	struct archangel_create_req c, exact;
	struct archangel_attach_req a, a2;
	int fd1, fd2, fd3, fd4, err, n;
	__u32 id, ids[1024];

	t_init("t_create_attach");
	fd1 = au_open();
	fd2 = au_open();
	fd3 = au_open();
	CHECK(fd1 >= 0 && fd2 >= 0 && fd3 >= 0, "open");

	EXPECT_OK(create(fd1, ARCHANGEL_CHANNEL_ANY, 0, &c));
	id = c.channel_id;
	CHECK(id != ARCHANGEL_CHANNEL_ANY, "no id returned");
	EXPECT_ERR(create(fd1, id, 0, NULL), -EEXIST);
	bad_geometry(fd1);

	/* Attach: geometry out, one user file at a time. */
	EXPECT_OK(au_attach_req(fd2, id, &a));
	CHECK(a.abi_version == ARCHANGEL_ABI_VERSION, "abi_version out %#x", a.abi_version);
	CHECK(a.mmap_size == a.offsets.total_size && a.mmap_size >= 3 * 4096, "mmap_size %llu total %llu",
	      (unsigned long long)a.mmap_size, (unsigned long long)a.offsets.total_size);
	CHECK(a.offsets.channel_id == id, "offsets.channel_id %u != %u", a.offsets.channel_id, id);
	CHECK(a.offsets.features == ARCHANGEL_FEATURES_ALL, "features %#x", a.offsets.features);
	CHECK(a.offsets.total_size == 708608, "default channel is %llu bytes, docs/abi.md says 708608",
	      (unsigned long long)a.offsets.total_size);
	CHECK(a.offsets.to_user.normal.size == 65536 && a.offsets.to_user.express.size == 16384 &&
	      a.offsets.to_user.pool.buffer_count == 64 && a.offsets.to_user.pool.buffer_size == 4096 &&
	      a.offsets.to_user.pool.threshold == 1024 && a.offsets.to_user.pool.max_segments == 32,
	      "default geometry");
	CHECK(a.offsets.to_user.normal.data == 12288 && a.offsets.to_kernel.pool.buffers == 446464,
	      "offsets differ from docs/abi.md's table");
	EXPECT_ERR(au_attach_req(fd3, id, &a2), -EBUSY);
	EXPECT_OK(au_attach_req(fd2, id, &a2));		/* again on the bound file: geometry again */
	CHECK(!memcmp(&a.offsets, &a2.offsets, sizeof(a.offsets)), "second attach reports other offsets");
	EXPECT_ERR(create(fd2, ARCHANGEL_CHANNEL_ANY, ARCHANGEL_CREATE_ATTACH, NULL), -EBUSY);

	/* ABI mismatch: -EPROTO and the module's version written back. */
	memset(&a2, 0, sizeof(a2));
	a2.channel_id = id;
	a2.abi_version = (ARCHANGEL_ABI_VERSION_MAJOR + 1) << 16;
	err = ioctl(fd3, ARCHANGEL_IOC_ATTACH, &a2) < 0 ? -errno : 0;
	EXPECT_ERR(err, -EPROTO);
	T_LOG("ABI mismatch reported: ours %#x, module's %#x", (ARCHANGEL_ABI_VERSION_MAJOR + 1) << 16,
	      a2.abi_version);
	CHECK(a2.abi_version == ARCHANGEL_ABI_VERSION, "module's version not written back: %#x", a2.abi_version);
	/* A different minor version is fine. */
	memset(&a2, 0, sizeof(a2));
	a2.channel_id = id;
	a2.abi_version = ARCHANGEL_ABI_VERSION + 7;
	memset(&a, 0, sizeof(a));
	a.channel_id = id;
	a.reserved[1] = 1;
	err = ioctl(fd3, ARCHANGEL_IOC_ATTACH, &a) < 0 ? -errno : 0;
	CHECK(err == -EINVAL || err == -EBUSY, "attach with a reserved word set: %d", err);

	/* Closing the user file detaches; the channel stays. */
	close(fd2);
	err = ioctl(fd3, ARCHANGEL_IOC_ATTACH, &a2) < 0 ? -errno : 0;
	EXPECT_ERR(err, 0);

	/* -ENOENT for an id that does not exist. */
	fd4 = au_open();
	EXPECT_OK(create(fd4, ARCHANGEL_CHANNEL_ANY, 0, &c));
	EXPECT_OK(au_destroy(fd4, c.channel_id));
	EXPECT_ERR(au_attach_req(fd4, c.channel_id, &a), -ENOENT);
	EXPECT_ERR(au_destroy(fd4, c.channel_id), -ENOENT);
	EXPECT_ERR(au_attach_req(fd4, 0x7fffffff, &a), -ENOENT);

	/* DESTROY from another file: the bound one gets -EPIPE. */
	EXPECT_OK(au_destroy(fd1, id));
	EXPECT_ERR(au_notify(fd3, ARCHANGEL_NOTIFY_DATA), -EPIPE);
	EXPECT_ERR(au_set_eventfds(fd3, -1, -1), -EPIPE);
	EXPECT_ERR(au_attach_req(fd1, id, &a), -ENOENT);
	close(fd3);

	/* CREATE_EXACT: a pool of 0 buffers is no pool. */
	memset(&exact, 0, sizeof(exact));
	exact.channel_id = ARCHANGEL_CHANNEL_ANY;
	exact.flags = ARCHANGEL_CREATE_EXACT | ARCHANGEL_CREATE_ATTACH;
	exact.normal_ring_bytes = 8192;
	exact.express_ring_bytes = 4096;
	exact.pool_buffer_size = 4096;
	exact.pool_buffer_count = 0;
	exact.pool_threshold = 512;
	exact.max_segments = 1;
	fd2 = au_open();
	EXPECT_OK(au_create(fd2, &exact));
	EXPECT_OK(au_attach_req(fd2, exact.channel_id, &a));
	CHECK(a.offsets.to_user.pool.buffer_count == 0 && a.offsets.to_kernel.pool.buffers == 0,
	      "EXACT pool_buffer_count 0 still has a pool (%u buffers at %llu)", a.offsets.to_user.pool.buffer_count,
	      (unsigned long long)a.offsets.to_kernel.pool.buffers);
	CHECK(a.offsets.to_user.normal.size == 8192 && a.offsets.to_user.express.size == 4096, "EXACT ring sizes");
	EXPECT_OK(au_destroy(fd2, exact.channel_id));
	close(fd2);

	/* Every id taken: -ENOSPC. */
	for (n = 0; n < 1024; n++) {
		err = create(fd4, ARCHANGEL_CHANNEL_ANY, 0, &c);
		if (err)
			break;
		ids[n] = c.channel_id;
	}
	EXPECT_ERR(err, -ENOSPC);
	T_LOG("%d more channels fit before -ENOSPC", n);
	CHECK(n >= 1 && n <= 16, "max_channels default is 16, created %d", n);
	while (n-- > 0)
		EXPECT_OK(au_destroy(fd4, ids[n]));
	close(fd4);
	close(fd1);
	return T_PASS;
}
