// SCM_RIGHTS and SO_PEERCRED for Swift (the cmsg macros do not import).
#define _GNU_SOURCE
#include "archangel_socket_shims.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

ssize_t archangel_send_with_fds(int socket, const void *bytes, size_t length, const int *fds, int count)
{
	union {
		struct cmsghdr header;
		char space[CMSG_SPACE(sizeof(int) * ARCHANGEL_MAX_PASSED_FDS)];
	} control;
	struct iovec iov = { .iov_base = (void *)bytes, .iov_len = length };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (count < 0 || count > ARCHANGEL_MAX_PASSED_FDS) {
		errno = EINVAL;
		return -1;
	}
	if (count > 0) {
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.space;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
		struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * count);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * count);
	}
	return sendmsg(socket, &msg, MSG_NOSIGNAL);
}

ssize_t archangel_receive_with_fds(int socket, void *bytes, size_t length, int *fds, int capacity, int *count)
{
	union {
		struct cmsghdr header;
		char space[CMSG_SPACE(sizeof(int) * ARCHANGEL_MAX_PASSED_FDS)];
	} control;
	struct iovec iov = { .iov_base = bytes, .iov_len = length };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.space, .msg_controllen = sizeof(control.space),
	};
	ssize_t received = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
	int overflow = 0;

	*count = 0;
	if (received < 0)
		return -1;
	for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		int n = (int)((cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int passed[ARCHANGEL_MAX_PASSED_FDS];
		memcpy(passed, CMSG_DATA(cmsg), sizeof(int) * (n < ARCHANGEL_MAX_PASSED_FDS ? n : ARCHANGEL_MAX_PASSED_FDS));
		for (int i = 0; i < n && i < ARCHANGEL_MAX_PASSED_FDS; i++) {
			if (*count < capacity)
				fds[(*count)++] = passed[i];
			else {
				close(passed[i]);
				overflow = 1;
			}
		}
	}
	if (overflow || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		for (int i = 0; i < *count; i++)
			close(fds[i]);
		*count = 0;
		errno = EMSGSIZE;
		return -1;
	}
	return received;
}

int archangel_accept_cloexec(int socket)
{
	return accept4(socket, NULL, NULL, SOCK_CLOEXEC);
}

int archangel_peer_credentials(int socket, pid_t *pid, uid_t *uid, gid_t *gid)
{
	struct ucred credentials;
	socklen_t size = sizeof(credentials);

	if (getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &credentials, &size) < 0)
		return -1;
	*pid = credentials.pid;
	*uid = credentials.uid;
	*gid = credentials.gid;
	return 0;
}
