// SPDX-License-Identifier: GPL-2.0
/*
 * t_open_perms: both devices exist as character devices of mode 0600, open,
 * and /proc/archangel/comm is readable and in the statistics format
 * (docs/statistics.md), with a channel listed while it exists.
 */
#include "t_common.h"

static void check_node(const char *path)
{
	struct stat st;
	int fd;

	CHECK(!stat(path, &st), "%s: %s", path, strerror(errno));
	CHECK(S_ISCHR(st.st_mode), "%s is not a character device", path);
	CHECK((st.st_mode & 07777) == 0600, "%s has mode %04o, want 0600", path, st.st_mode & 07777);
	fd = open(path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	close(fd);
}

int main(void)
{
	struct archangel_create_req req = { .channel_id = ARCHANGEL_CHANNEL_ANY };
	const char *why;
	char *text;
	int fd;

	t_init("t_open_perms");
	check_node(AU_DEVICE);
	check_node(AU_RW_DEVICE);

	text = au_read_file(AU_PROC_COMM);
	CHECK(text, "read %s: %s", AU_PROC_COMM, strerror(errno));
	why = t_proc_check_format(text);
	CHECK(!why, "%s\n%s", why, text);
	free(text);

	fd = au_open();
	CHECK(fd >= 0, "open: %s", strerror(-fd));
	EXPECT_OK(au_create(fd, &req));
	text = au_read_file(AU_PROC_COMM);
	CHECK(text, "read %s", AU_PROC_COMM);
	why = t_proc_check_format(text);
	CHECK(!why, "%s\n%s", why, text);
	CHECK(au_proc_active(text, req.channel_id) == 1, "channel %u not listed active:\n%s", req.channel_id, text);
	CHECK(au_proc_value(text, req.channel_id, "to_user", "ring_size") == 65536 + 16384,
	      "default ring_size:\n%s", text);
	CHECK(au_proc_value(text, req.channel_id, "to_kernel", "pool_size") == 64, "default pool_size:\n%s", text);
	free(text);
	EXPECT_OK(au_destroy(fd, req.channel_id));
	text = au_read_file(AU_PROC_COMM);
	CHECK(text && au_proc_active(text, req.channel_id) == -1, "channel %u still listed after destroy", req.channel_id);
	free(text);
	close(fd);
	return T_PASS;
}
