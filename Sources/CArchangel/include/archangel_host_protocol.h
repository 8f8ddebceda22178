/* SPDX-License-Identifier: MIT */
/*
 * archangel_host_protocol.h - the userspace host's attach protocol.
 *
 * A client connects to the host's Unix socket (SOCK_SEQPACKET: one message
 * per send, descriptors attached with SCM_RIGHTS) and sends one request. For
 * an attach, the connection then stays open for as long as the client holds
 * the channel side: its hang-up is how the host learns that the client died.
 * docs/userspace-host.md describes the exchange.
 */
#ifndef ARCHANGEL_HOST_PROTOCOL_H
#define ARCHANGEL_HOST_PROTOCOL_H

#include "archangel_uapi.h"

#define ARCHANGEL_HOST_MAGIC		0x54534f48U	/* "HOST" */

/* Requests (archangel_host_request.op). */
#define ARCHANGEL_HOST_ATTACH		1	/* attach to one side of a channel */
#define ARCHANGEL_HOST_STATISTICS	2	/* the statistics text */
#define ARCHANGEL_HOST_DESTROY		3	/* destroy a channel */

/* archangel_host_request.flags */
#define ARCHANGEL_HOST_F_CREATE		(1U << 0)	/* create the channel if it does not exist */
#define ARCHANGEL_HOST_F_KERNEL_SIDE	(1U << 1)	/* attach the kernel side (when the host lets clients) */
#define ARCHANGEL_HOST_F_ADOPT		(1U << 2)	/* 2nd descriptor: channel memfd kept from a dead host */
#define ARCHANGEL_HOST_F_KNOWN		(ARCHANGEL_HOST_F_CREATE | ARCHANGEL_HOST_F_KERNEL_SIDE | ARCHANGEL_HOST_F_ADOPT)

/* Any free id (ATTACH with ARCHANGEL_HOST_F_CREATE). */
#define ARCHANGEL_HOST_ANY_CHANNEL	0xffffffffU

/*
 * Client -> host. For ATTACH the client attaches one descriptor: a memfd of
 * ARCHANGEL_HOST_COUNTERS_SIZE bytes holding its counters, which the host maps
 * read-only to report the client's side in its statistics. With
 * ARCHANGEL_HOST_F_ADOPT it attaches a second one: the channel memfd it kept
 * when its previous host died (sealed against shrinking, F_SEAL_SHRINK).
 */
struct archangel_host_request {
	__u32 magic;		/* ARCHANGEL_HOST_MAGIC */
	__u32 abi_version;	/* the client's ARCHANGEL_ABI_VERSION */
	__u32 op;		/* ARCHANGEL_HOST_* */
	__u32 channel_id;	/* channel, or ARCHANGEL_HOST_ANY_CHANNEL */
	__u32 flags;		/* ARCHANGEL_HOST_F_* */
	__u32 normal_ring_bytes;	/* geometry for a create; 0 = the host's default */
	__u32 express_ring_bytes;
	__u32 pool_buffer_size;
	__u32 pool_buffer_count;
	__u32 pool_threshold;
	__u32 max_segments;
	__u32 reserved[5];	/* must be zero */
};

/* Bytes of the counters memfd: two blocks (sender, receiver) of 16 __u64. */
#define ARCHANGEL_HOST_COUNTERS_SIZE	256U

/* Descriptors attached to a successful ATTACH reply, in this order. */
#define ARCHANGEL_HOST_FD_MEMORY	0	/* memfd of the channel memory */
#define ARCHANGEL_HOST_FD_DATA		1	/* eventfd: the host side signals "data for you" */
#define ARCHANGEL_HOST_FD_SPACE		2	/* eventfd: the host side signals "room for you" */
#define ARCHANGEL_HOST_FD_PEER_DATA	3	/* eventfd: signal it when the peer may have data */
#define ARCHANGEL_HOST_FD_PEER_SPACE	4	/* eventfd: signal it when the peer may have room */
#define ARCHANGEL_HOST_FD_SHARED	5	/* memfd of the extra shared region, if any */

/*
 * Host -> client. `status` is 0 or a negative errno; `message` then says what
 * went wrong and what to do, NUL-terminated. For STATISTICS the text follows
 * the struct in the same message.
 */
struct archangel_host_reply {
	__u32 magic;		/* ARCHANGEL_HOST_MAGIC */
	__u32 abi_version;	/* the host's ARCHANGEL_ABI_VERSION */
	__s32 status;		/* 0, or -errno */
	__u32 channel_id;	/* the channel attached or created */
	__u64 memory_size;	/* bytes of the channel memfd */
	__u64 shared_size;	/* bytes of the extra shared region, 0 if none */
	__u32 fd_count;		/* descriptors attached */
	__u32 side;		/* 0: user side, 1: kernel side */
	__u32 text_size;	/* bytes of text after this struct (STATISTICS) */
	__u32 reserved[3];	/* zero */
	char message[160];	/* error text, NUL-terminated */
	struct archangel_channel_offsets offsets;	/* the channel's geometry */
};

_Static_assert(sizeof(struct archangel_host_request) == 64, "host request is 64 bytes");
_Static_assert(sizeof(struct archangel_host_reply) == 640, "host reply is 640 bytes");

#endif
