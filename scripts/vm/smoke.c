// SPDX-License-Identifier: GPL-2.0
/*
 * The harness's own smoke test, run in the guest when kernel/selftests has
 * no tests: /dev/archangel opens (0 pass, 1 fail, 77 skip when absent).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	int fd = open("/dev/archangel", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		printf("smoke: open /dev/archangel: %s\n", strerror(errno));
		return errno == ENOENT ? 77 : 1;
	}
	close(fd);
	printf("smoke: /dev/archangel opens\n");
	return 0;
}
