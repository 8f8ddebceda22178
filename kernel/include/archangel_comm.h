/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The in-kernel API of archangel.ko, as the seed's API
 * reference names it. Build against it with archangel's Module.symvers in
 * KBUILD_EXTRA_SYMBOLS (see kernel/examples/).
 *
 * Return values follow kernel convention: 0 or a count on success, a
 * negative errno on failure:
 *   -ENOENT     no such channel
 *   -EAGAIN     would block: the ring is full / empty, or the pool is empty
 *               and the payload too large to copy inline (counted in
 *               queue_full)
 *   -EMSGSIZE   the payload exceeds the channel's largest message (send,
 *               counted in rejected), or @max_size (receive; the message
 *               stays queued)
 *   -EINVAL     bad type or priority, a NULL pointer where data is needed,
 *               a negative timeout
 *   -EIO        the channel failed: userspace wrote something that failed
 *               a check (see /proc/archangel/comm)
 *   -EPIPE      the channel was destroyed during the call
 *   -EINTR      a signal interrupted a wait; -ETIMEDOUT a wait ran out
 *
 * Senders may run in any context, on many CPUs at once (they are
 * serialized by a spinlock, irqsave), tracepoint probes and softirq
 * included: a sender that is not preemptible has its wake-up of userspace
 * deferred to an irq_work (docs/kernel.md, "Wake-ups"). So may non-blocking
 * receivers. The
 * _timeout variants, channel create/destroy and the shared-memory calls
 * sleep: process context only.
 */
#ifndef _ARCHANGEL_COMM_H
#define _ARCHANGEL_COMM_H

#include <linux/types.h>
#include "archangel_uapi.h"

/* A channel handle, opaque. */
struct archangel_comm_channel;

/*
 * Creates a channel with the default geometry (ChannelConfiguration.default)
 * at the lowest free id, written to *@channel_id. -ENOSPC when all
 * max_channels ids are taken, -ENOMEM.
 */
int archangel_comm_channel_create(u32 *channel_id);

/*
 * Destroys a channel: wakes everyone waiting on it and detaches its user
 * file (which then sees EPOLLHUP and -EPIPE). Its memory is freed once the
 * last mapping and the last call in progress are gone.
 */
void archangel_comm_channel_destroy(u32 channel_id);

/*
 * The channel's handle, or NULL when there is no such channel. Not a
 * reference: it identifies the channel until it is destroyed.
 */
struct archangel_comm_channel *archangel_comm_channel_get(u32 channel_id);

/*
 * Sends @size bytes of @data to userspace without sleeping. Payloads above
 * the pool threshold (1 KiB by default) go through the buffer pool, or are
 * copied inline when the pool is empty (counted in copy_fallbacks).
 * Returns 0, -EAGAIN, -EMSGSIZE, -EINVAL, -ENOENT, -EIO.
 */
int archangel_comm_send_message(u32 channel_id, enum archangel_msg_type type,
				enum archangel_msg_priority priority,
				const void *data, u32 size);

/*
 * archangel_comm_send_message() with per-send wake-up requests
 * (docs/efficiency.md, "The producer"): ARCHANGEL_SEND_URGENT wakes the
 * user's receiver now, whatever the coalescing, also one that polls by
 * itself (priority CRITICAL implies it); ARCHANGEL_SEND_NO_WAKEUP says more
 * follows: no leading-edge wake-up, only the trailing edge, so the delay
 * bound holds if nothing follows. Any context, never sleeps. Returns 0,
 * -EAGAIN, -EMSGSIZE, -EINVAL (also an unknown flag), -ENOENT, -EIO, -EPIPE.
 */
int archangel_comm_send_message_flags(u32 channel_id, u8 type, u8 priority,
				      const void *data, u32 size, u32 flags);

/*
 * Sets how the kernel's side of the channel waits and wakes, as
 * ARCHANGEL_IOC_SET_WAIT does (struct archangel_wait_config in
 * archangel_uapi.h; a new channel has the balanced preset). Any context.
 * Returns 0, -EINVAL (a NULL @cfg, an unknown flag, a non-zero reserved
 * field, a value out of range) or -ENOENT.
 */
int archangel_comm_set_wait(u32 channel_id,
			    const struct archangel_wait_config *cfg);

/* Like archangel_comm_send_message, waiting up to @timeout_jiffies for room. */
int archangel_comm_send_message_timeout(u32 channel_id,
					enum archangel_msg_type type,
					enum archangel_msg_priority priority,
					const void *data, u32 size,
					long timeout_jiffies);

/*
 * Receives the next message from userspace (HIGH/CRITICAL first) without
 * sleeping: copies its payload into @data (NULL: drops it) and returns its
 * length in bytes (0 for an empty payload), -EAGAIN when there is none,
 * -EMSGSIZE when it is longer than @max_size (it stays queued), -ENOENT,
 * -EIO.
 */
int archangel_comm_receive_message(u32 channel_id,
				   enum archangel_msg_type *type,
				   void *data, u32 max_size);

/* Like archangel_comm_receive_message, sleeping up to @timeout_jiffies. */
int archangel_comm_receive_message_timeout(u32 channel_id,
					   enum archangel_msg_type *type,
					   void *data, u32 max_size,
					   long timeout_jiffies);

/*
 * A message's header fields, for the _ex variants below (beyond the seed's
 * API: a correlated send, and a receive that reports every header field).
 */
struct archangel_comm_msg {
	u8 type;		/* ARCHANGEL_MSG_*: send in, receive out */
	u8 priority;		/* ARCHANGEL_PRIORITY_*: send in, receive out */
	u16 flags;		/* in: _F_CORRELATED or 0; out: ARCHANGEL_MSG_F_* */
	u32 size;		/* receive out: payload bytes */
	u64 sequence;		/* receive out: the sender's sequence number */
	u64 timestamp;		/* receive out: CLOCK_MONOTONIC ns */
	u64 correlation;	/* the answered request's sequence: in, out */
};

/*
 * archangel_comm_send_message_timeout() with @msg's type, priority and, when
 * @msg->flags has ARCHANGEL_MSG_F_CORRELATED, correlation (the sequence of
 * the request it answers). Other flags are -EINVAL.
 */
int archangel_comm_send_message_ex(u32 channel_id,
				   const struct archangel_comm_msg *msg,
				   const void *data, u32 size,
				   long timeout_jiffies);

/*
 * archangel_comm_receive_message_timeout() that fills in every field of
 * *@msg. Returns the payload length, or a negative errno.
 */
int archangel_comm_receive_message_ex(u32 channel_id,
				      struct archangel_comm_msg *msg,
				      void *data, u32 max_size,
				      long timeout_jiffies);

/* Wakes the in-kernel receivers and senders waiting on the channel. */
int archangel_comm_notify_kernel(u32 channel_id);

/* Signals the user side's data eventfd and wakes its poll(). */
int archangel_comm_notify_user(u32 channel_id);

/*
 * The channel's extra shared region of @size bytes (rounded up to pages),
 * mapped by userspace at ARCHANGEL_MMAP_OFF_SHARED. -EEXIST when it
 * already has one, -EINVAL for 0 or more than 256 MiB.
 */
int archangel_comm_setup_shared_memory(u32 channel_id, size_t size);
void archangel_comm_cleanup_shared_memory(u32 channel_id);

/*
 * The kernel address of the extra shared region and its size, or NULL.
 * Valid until archangel_comm_cleanup_shared_memory() or destroy.
 */
void *archangel_comm_shared_memory(u32 channel_id, size_t *size);

#endif /* _ARCHANGEL_COMM_H */
