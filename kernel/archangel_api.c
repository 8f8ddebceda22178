// SPDX-License-Identifier: GPL-2.0
/*
 * The seed's in-kernel API (include/archangel_comm.h).
 *
 * Each call looks the channel up by id and holds a reference for its
 * duration, so a concurrent destroy cannot free it underneath.
 */
#include <linux/export.h>
#include <linux/module.h>
#include <linux/sched.h>
#include "archangel.h"
#include "archangel_comm.h"

int archangel_comm_channel_create(u32 *channel_id)
{
	struct archangel_create_req req = {
		.channel_id = ARCHANGEL_CHANNEL_ANY,
	};

	might_sleep();
	if (!channel_id)
		return -EINVAL;
	return ach_channel_create(&req, channel_id);
}
EXPORT_SYMBOL_GPL(archangel_comm_channel_create);

void archangel_comm_channel_destroy(u32 channel_id)
{
	ach_channel_destroy(channel_id);
}
EXPORT_SYMBOL_GPL(archangel_comm_channel_destroy);

struct archangel_comm_channel *archangel_comm_channel_get(u32 channel_id)
{
	struct ach_channel *ch = ach_channel_get(channel_id);

	if (!ch)
		return NULL;
	ach_channel_put(ch);
	/* An identity handle, not a reference (see archangel_comm.h). */
	return (struct archangel_comm_channel *)ch;
}
EXPORT_SYMBOL_GPL(archangel_comm_channel_get);

int archangel_comm_send_message_timeout(u32 channel_id,
					enum archangel_msg_type type,
					enum archangel_msg_priority priority,
					const void *data, u32 size,
					long timeout_jiffies)
{
	struct ach_channel *ch;
	int err;

	if (timeout_jiffies < 0 || (!data && size))
		return -EINVAL;
	ch = ach_channel_get(channel_id);
	if (!ch)
		return -ENOENT;
	if (type < ARCHANGEL_MSG_TYPE_MIN || type > ARCHANGEL_MSG_TYPE_MAX ||
	    priority > ARCHANGEL_PRIORITY_MAX)
		err = -EINVAL;
	else
		err = ach_send_timeout(ch, type, priority, data, size, NULL,
				       0, true, timeout_jiffies, true);
	ach_channel_put(ch);
	return err;
}
EXPORT_SYMBOL_GPL(archangel_comm_send_message_timeout);

int archangel_comm_send_message(u32 channel_id, enum archangel_msg_type type,
				enum archangel_msg_priority priority,
				const void *data, u32 size)
{
	return archangel_comm_send_message_timeout(channel_id, type, priority,
						   data, size, 0);
}
EXPORT_SYMBOL_GPL(archangel_comm_send_message);

int archangel_comm_send_message_flags(u32 channel_id, u8 type, u8 priority,
				      const void *data, u32 size, u32 flags)
{
	struct ach_channel *ch;
	int err;

	if ((!data && size) || (flags & ~ARCHANGEL_SEND_FLAGS_ALL))
		return -EINVAL;
	ch = ach_channel_get(channel_id);
	if (!ch)
		return -ENOENT;
	/* ach_send() checks type and priority; CRITICAL implies URGENT there. */
	err = ach_send_timeout(ch, type, priority, data, size, NULL, flags,
			       true, 0, true);
	ach_channel_put(ch);
	return err;
}
EXPORT_SYMBOL_GPL(archangel_comm_send_message_flags);

int archangel_comm_set_wait(u32 channel_id,
			    const struct archangel_wait_config *cfg)
{
	struct archangel_wait_config c;
	struct ach_channel *ch;
	int err;

	if (!cfg)
		return -EINVAL;
	c = *cfg;
	err = ach_wait_check(&c);
	if (err)
		return err;
	ch = ach_channel_get(channel_id);
	if (!ch)
		return -ENOENT;
	ach_channel_set_wait(ch, &c);
	ach_channel_put(ch);
	return 0;
}
EXPORT_SYMBOL_GPL(archangel_comm_set_wait);

int archangel_comm_receive_message_timeout(u32 channel_id,
					   enum archangel_msg_type *type,
					   void *data, u32 max_size,
					   long timeout_jiffies)
{
	struct ach_channel *ch;
	struct ach_msg msg;
	int ret;

	if (timeout_jiffies < 0)
		return -EINVAL;
	ch = ach_channel_get(channel_id);
	if (!ch)
		return -ENOENT;
	ret = ach_recv_timeout(ch, &msg, data, max_size, timeout_jiffies,
			       true);
	if (ret >= 0 && type)
		*type = msg.type;
	ach_channel_put(ch);
	return ret;
}
EXPORT_SYMBOL_GPL(archangel_comm_receive_message_timeout);

int archangel_comm_receive_message(u32 channel_id,
				   enum archangel_msg_type *type,
				   void *data, u32 max_size)
{
	return archangel_comm_receive_message_timeout(channel_id, type, data,
						      max_size, 0);
}
EXPORT_SYMBOL_GPL(archangel_comm_receive_message);

int archangel_comm_send_message_ex(u32 channel_id,
				   const struct archangel_comm_msg *msg,
				   const void *data, u32 size,
				   long timeout_jiffies)
{
	struct ach_channel *ch;
	u64 correlation;
	int err;

	if (!msg || timeout_jiffies < 0 || (!data && size) ||
	    (msg->flags & ~ARCHANGEL_MSG_F_CORRELATED))
		return -EINVAL;
	ch = ach_channel_get(channel_id);
	if (!ch)
		return -ENOENT;
	correlation = msg->correlation;
	if (msg->type < ARCHANGEL_MSG_TYPE_MIN ||
	    msg->type > ARCHANGEL_MSG_TYPE_MAX ||
	    msg->priority > ARCHANGEL_PRIORITY_MAX)
		err = -EINVAL;
	else
		err = ach_send_timeout(ch, msg->type, msg->priority, data, size,
				       msg->flags & ARCHANGEL_MSG_F_CORRELATED ?
				       &correlation : NULL,
				       0, true, timeout_jiffies, true);
	ach_channel_put(ch);
	return err;
}
EXPORT_SYMBOL_GPL(archangel_comm_send_message_ex);

int archangel_comm_receive_message_ex(u32 channel_id,
				      struct archangel_comm_msg *msg,
				      void *data, u32 max_size,
				      long timeout_jiffies)
{
	struct ach_channel *ch;
	struct ach_msg m;
	int ret;

	if (!msg || timeout_jiffies < 0)
		return -EINVAL;
	ch = ach_channel_get(channel_id);
	if (!ch)
		return -ENOENT;
	ret = ach_recv_timeout(ch, &m, data, max_size, timeout_jiffies, true);
	if (ret >= 0) {
		msg->type = m.type;
		msg->priority = m.priority;
		msg->flags = m.flags;
		msg->size = ret;
		msg->sequence = m.sequence;
		msg->timestamp = m.timestamp;
		msg->correlation = m.flags & ARCHANGEL_MSG_F_CORRELATED ?
				   m.correlation : 0;
	}
	ach_channel_put(ch);
	return ret;
}
EXPORT_SYMBOL_GPL(archangel_comm_receive_message_ex);

int archangel_comm_notify_kernel(u32 channel_id)
{
	struct ach_channel *ch = ach_channel_get(channel_id);

	if (!ch)
		return -ENOENT;
	ach_kick(ch, ACH_KICK_KERNEL);
	ach_channel_put(ch);
	return 0;
}
EXPORT_SYMBOL_GPL(archangel_comm_notify_kernel);

int archangel_comm_notify_user(u32 channel_id)
{
	struct ach_channel *ch = ach_channel_get(channel_id);

	if (!ch)
		return -ENOENT;
	ach_kick(ch, ACH_KICK_DATA | ACH_KICK_POLLIN);
	ach_channel_put(ch);
	return 0;
}
EXPORT_SYMBOL_GPL(archangel_comm_notify_user);

int archangel_comm_setup_shared_memory(u32 channel_id, size_t size)
{
	struct ach_channel *ch = ach_channel_get(channel_id);
	int err;

	if (!ch)
		return -ENOENT;
	err = ach_channel_setup_shm(ch, size);
	ach_channel_put(ch);
	return err;
}
EXPORT_SYMBOL_GPL(archangel_comm_setup_shared_memory);

void archangel_comm_cleanup_shared_memory(u32 channel_id)
{
	struct ach_channel *ch = ach_channel_get(channel_id);

	if (!ch)
		return;
	ach_channel_cleanup_shm(ch);
	ach_channel_put(ch);
}
EXPORT_SYMBOL_GPL(archangel_comm_cleanup_shared_memory);

void *archangel_comm_shared_memory(u32 channel_id, size_t *size)
{
	struct ach_channel *ch = ach_channel_get(channel_id);
	void *vaddr = NULL;

	if (!ch)
		return NULL;
	mutex_lock(&ch->lock);
	if (ch->shm) {
		vaddr = ch->shm->r.vaddr;
		if (size)
			*size = ch->shm->r.size;
	}
	mutex_unlock(&ch->lock);
	ach_channel_put(ch);
	return vaddr;
}
EXPORT_SYMBOL_GPL(archangel_comm_shared_memory);
