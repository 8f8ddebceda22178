/*
 * archangel_socket_shims.h - Unix socket calls Swift cannot spell: the
 * SCM_RIGHTS control-message macros and SO_PEERCRED.
 */
#ifndef ARCHANGEL_SOCKET_SHIMS_H
#define ARCHANGEL_SOCKET_SHIMS_H

#include <stddef.h>
#include <sys/types.h>

/* The most descriptors one message of the host protocol carries. */
#define ARCHANGEL_MAX_PASSED_FDS 8

/*
 * Sends one datagram of `length` bytes with `count` descriptors attached
 * (SCM_RIGHTS). Returns the bytes sent or -1 with errno set. MSG_NOSIGNAL: a
 * hung-up peer is an EPIPE error, never a SIGPIPE.
 */
ssize_t archangel_send_with_fds(int socket, const void *bytes, size_t length, const int *fds, int count);

/*
 * Receives one datagram into `bytes` and up to `capacity` descriptors into
 * `fds` (close-on-exec). `*count` is set to the number received. Returns the
 * bytes received (0 at hang-up) or -1 with errno set. Descriptors beyond
 * `capacity`, or arriving with a truncated message, are closed and the call
 * fails with EMSGSIZE.
 */
ssize_t archangel_receive_with_fds(int socket, void *bytes, size_t length, int *fds, int capacity, int *count);

/* accept4(..., SOCK_CLOEXEC): accept4 needs _GNU_SOURCE, which Swift's Glibc does not set. */
int archangel_accept_cloexec(int socket);

/* The peer's process, user and group ids (SO_PEERCRED). Returns 0 or -1 with errno. */
int archangel_peer_credentials(int socket, pid_t *pid, uid_t *uid, gid_t *gid);

#endif
