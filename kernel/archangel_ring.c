// SPDX-License-Identifier: GPL-2.0
/*
 * Record rings and return rings, kernel side.
 *
 * The diagram and the barrier letters are in archangel_ring.h and
 * docs/memory-ordering.md. Every site below says which barrier it is and
 * which one it pairs with.
 */
#include <linux/compiler.h>
#include <linux/errno.h>
#include <linux/string.h>
#include <asm/barrier.h>
#include "archangel_ring.h"

void ach_ring_bind(struct ach_ring_words *w, void *base,
		   const struct archangel_ring_offsets *o)
{
	u8 *b = base;

	w->kproducer = (u64 *)(b + o->producer);
	w->kconsumer = (u64 *)(b + o->consumer);
	w->kneed_wakeup = (u32 *)(b + o->need_wakeup);
	w->kneed_space = (u32 *)(b + o->need_space);
	w->data = b + o->data;
	w->size = o->size;
	w->mask = (u64)o->size - 1;
}

/*
 * Announces one more kernel sleeper on a need word: a new episode with
 * bit 0 set. The caller follows with the full fence of its side, (F) or (H).
 */
void ach_need_raise(struct ach_need *n)
{
	n->episode = (n->episode + 1) & 0x7fffffff;
	WRITE_ONCE(*n->kword, n->episode << 1 | ARCHANGEL_RING_NEED_WAKEUP);
	n->sleepers++;
}

/* A sleeper is done; the last one out clears bit 0. */
void ach_need_lower(struct ach_need *n)
{
	if (--n->sleepers == 0)
		WRITE_ONCE(*n->kword, n->episode << 1);
}

/* Whether @word (read once by the caller) asks for a signal not yet sent. */
bool ach_need_should_signal(u32 word, u32 *last)
{
	if (!ach_need_is_new(word, *last))
		return false;
	*last = word;
	return true;
}

/* ---------------------------------------------------------------------------
 * Record ring producer (to_user lanes)
 */

void ach_rprod_init(struct ach_rprod *p, void *base,
		    const struct archangel_ring_offsets *o)
{
	ach_ring_bind(&p->w, base, o);
	p->producer = 0;
	p->cached_consumer = 0;
	p->published = 0;
	p->last_woken = 0;
	p->max_record = o->size / 4;
	p->need_space.kword = p->w.kneed_space;
	p->need_space.episode = 0;
	p->need_space.sleepers = 0;
}

/*
 * Reserves room for a record of @len bytes and writes the padding in front
 * of it if it would not fit before the end of the data area. Returns 0 with
 * *@rec set, -EAGAIN when the ring is full, -EPROTO when the consumer index
 * userspace wrote is out of range.
 */
int ach_rprod_reserve(struct ach_rprod *p, u32 len, void **rec)
{
	u64 stride = ach_stride(len);
	u64 pos = p->producer & p->w.mask;
	u64 tail = p->w.size - pos;
	u64 pad = stride > tail ? tail : 0;
	u64 consumer;

	if (p->producer + pad + stride - p->cached_consumer > p->w.size) {
		/*
		 * (D), matches (C): once we see the consumer's index, the
		 * records it covers have been read and may be overwritten.
		 */
		consumer = smp_load_acquire(p->w.kconsumer);
		if (!ach_index_ok(consumer, p->cached_consumer, p->published))
			return -EPROTO;
		p->cached_consumer = consumer;
		if (p->producer + pad + stride - consumer > p->w.size)
			return -EAGAIN;
	}
	if (pad) {
		if (pad >= ARCHANGEL_MSG_HEADER_SIZE) {
			struct archangel_msg_header h = {
				.magic = ARCHANGEL_MSG_MAGIC,
				.type = ARCHANGEL_MSG_TYPE_PAD,
				.flags = ARCHANGEL_MSG_F_PAD,
				.size = (u32)pad,
			};

			memcpy(p->w.data + pos, &h, sizeof(h));
		}
		p->producer += pad;
	}
	*rec = p->w.data + (p->producer & p->w.mask);
	return 0;
}

void ach_rprod_commit(struct ach_rprod *p, u32 len)
{
	p->producer += ach_stride(len);
}

/*
 * Stores @producer for the consumer of the ring at @w, then reports whether
 * its need_wakeup word asks for a signal we have not sent for this sleep
 * (the Swift twin is RingWords.publishProducer). Return rings publish
 * through here; record rings store with ach_rprod_publish_index() and the
 * sender applies the wake-up rules of docs/efficiency.md after one (E).
 */
static bool ach_words_publish(struct ach_ring_words *w, u64 producer,
			      u32 *last_woken)
{
	/* (A), matches (B): the entries are visible before the index. */
	smp_store_release(w->kproducer, producer);
	/*
	 * (E), matches (F): order the index store before the flag load, so a
	 * consumer going to sleep either sees our index or we see its flag.
	 */
	smp_mb();
	return ach_need_should_signal(READ_ONCE(*w->kneed_wakeup), last_woken);
}

/*
 * Stores the committed producer index, (A) only: returns whether there was
 * anything new. The caller publishes both lanes, then issues (E) once and
 * reads the need words itself (ach_need_is_new()), since which words count
 * depends on the whole batch (docs/efficiency.md, "The producer").
 */
bool ach_rprod_publish_index(struct ach_rprod *p)
{
	if (p->producer == p->published)
		return false;
	p->published = p->producer;
	/* (A), matches (B): the records are visible before the index. */
	smp_store_release(p->w.kproducer, p->producer);
	return true;
}

/*
 * After ach_need_raise() on need_space: 1 when a record of @len bytes fits
 * now, 0 when the caller may sleep, -EPROTO on a bad consumer index.
 */
int ach_rprod_room(struct ach_rprod *p, u32 len)
{
	u64 stride = ach_stride(len);
	u64 tail = p->w.size - (p->producer & p->w.mask);
	u64 needed = stride > tail ? tail + stride : stride;
	u64 consumer;

	/* (H), matches (G): our flag is visible before we re-read the index. */
	smp_mb();
	/* (D), matches (C). */
	consumer = smp_load_acquire(p->w.kconsumer);
	if (!ach_index_ok(consumer, p->cached_consumer, p->published))
		return -EPROTO;
	p->cached_consumer = consumer;
	return p->producer + needed - consumer <= p->w.size;
}

/*
 * Re-reads and checks the consumer index outside the full-ring path: 0 or
 * -EPROTO. A send that finds one lane full calls it for the other lane, so
 * a bad index is found even on a lane that never fills.
 */
int ach_rprod_refresh(struct ach_rprod *p)
{
	/* (D), matches (C). */
	u64 consumer = smp_load_acquire(p->w.kconsumer);

	if (!ach_index_ok(consumer, p->cached_consumer, p->published))
		return -EPROTO;
	p->cached_consumer = consumer;
	return 0;
}

/*
 * Whether the lane holds more than @limit published, unread bytes. The
 * cached consumer index only overestimates the fill, so the user's line is
 * read (and checked) only when the lane may really be that full. 1, 0, or
 * -EPROTO on a bad consumer index.
 */
int ach_rprod_unread_exceeds(struct ach_rprod *p, u64 limit)
{
	if (p->published - p->cached_consumer <= limit)
		return 0;
	if (ach_rprod_refresh(p))
		return -EPROTO;
	return p->published - p->cached_consumer > limit;
}

/*
 * Bytes published and not yet consumed, for poll(): one racy read of the
 * user's consumer index, clamped, never trusted beyond this answer.
 */
u64 ach_rprod_unread(struct ach_rprod *p)
{
	u64 used = READ_ONCE(p->published) - READ_ONCE(*p->w.kconsumer);

	return used > p->w.size ? p->w.size : used;
}

/* ---------------------------------------------------------------------------
 * Record ring consumer (to_kernel lanes)
 */

void ach_rcons_init(struct ach_rcons *c, void *base,
		    const struct archangel_ring_offsets *o, bool express)
{
	ach_ring_bind(&c->w, base, o);
	c->express = express;
	c->consumer = 0;
	c->published = 0;
	c->released = 0;
	c->cached_producer = 0;
	c->release_batch = o->size / 4;
	c->high_water = 0;
	c->last_space_signalled = 0;
	c->need_wakeup.kword = c->w.kneed_wakeup;
	c->need_wakeup.episode = 0;
	c->need_wakeup.sleepers = 0;
}

/*
 * Finds the next message record, skipping padding. Returns 1 with @r
 * filled in, 0 when the ring is empty, -EPROTO when an index or a header
 * fails its check (docs/abi.md "Validation", "Each record"). The header is
 * copied out of shared memory once; only the copy is looked at.
 */
int ach_rcons_peek(struct ach_rcons *c, struct ach_record *r)
{
	for (;;) {
		u64 avail, pos, tail, size, stride, producer;
		struct archangel_msg_header *h = &r->hdr;
		bool express;
		u32 len;

		if (c->consumer == c->cached_producer) {
			/* (B), matches (A): records up to it are written. */
			producer = smp_load_acquire(c->w.kproducer);
			if (!ach_index_ok(producer, c->cached_producer,
					  c->published + c->w.size))
				return -EPROTO;
			c->cached_producer = producer;
			if (producer == c->consumer)
				return 0;
			if (producer - c->consumer > c->high_water)
				c->high_water = producer - c->consumer;
		}
		avail = c->cached_producer - c->consumer;
		pos = c->consumer & c->w.mask;
		tail = c->w.size - pos;
		if (tail < ARCHANGEL_MSG_HEADER_SIZE) {
			/* A tail too short for a header is skipped by both. */
			if (avail < tail)
				return -EPROTO;
			c->consumer += tail;
			continue;
		}
		memcpy(h, c->w.data + pos, sizeof(*h));
		/*
		 * One fetch: the compiler may not read the shared header
		 * again in place of the copy (the user may rewrite it between
		 * a check and a use).
		 */
		barrier();
		if (h->magic != ARCHANGEL_MSG_MAGIC)
			return -EPROTO;
		size = h->size;
		stride = ach_stride(size);
		if (size < ARCHANGEL_MSG_HEADER_SIZE || stride > tail ||
		    stride > avail)
			return -EPROTO;
		if (h->flags & ARCHANGEL_MSG_F_PAD) {
			if (h->flags != ARCHANGEL_MSG_F_PAD ||
			    h->type != ARCHANGEL_MSG_TYPE_PAD || size != tail)
				return -EPROTO;
			c->consumer += tail;
			continue;
		}
		if (h->type < ARCHANGEL_MSG_TYPE_MIN ||
		    h->type > ARCHANGEL_MSG_TYPE_MAX)
			return -EPROTO;
		express = h->priority >= ARCHANGEL_PRIORITY_HIGH;
		if (h->priority > ARCHANGEL_PRIORITY_MAX || express != c->express)
			return -EPROTO;
		if (h->flags & ~ARCHANGEL_MSG_F_KNOWN)
			return -EPROTO;
		r->payload_pos = pos + ARCHANGEL_MSG_HEADER_SIZE;
		len = size - ARCHANGEL_MSG_HEADER_SIZE;
		r->correlation = 0;
		if (h->flags & ARCHANGEL_MSG_F_CORRELATED) {
			if (len < ARCHANGEL_CORRELATION_SIZE)
				return -EPROTO;
			memcpy(&r->correlation, c->w.data + r->payload_pos,
			       ARCHANGEL_CORRELATION_SIZE);
			barrier();	/* one fetch, as the header */
			r->payload_pos += ARCHANGEL_CORRELATION_SIZE;
			len -= ARCHANGEL_CORRELATION_SIZE;
		}
		r->payload_len = len;
		r->stride = stride;
		return 1;
	}
}

/*
 * Consumes @r and publishes the new index at once (so a successor resumes
 * exactly after it). Returns true when the user's producer waits for room
 * and should be signalled: checked with the (G) fence in batches of a
 * quarter ring, and early when a plain read of need_space already shows a
 * waiter (a hint only: the batched check is what guarantees the wake-up).
 */
bool ach_rcons_advance(struct ach_rcons *c, const struct ach_record *r)
{
	c->consumer += r->stride;
	c->published = c->consumer;
	/* (C), matches (D): we are done reading before the space is reused. */
	smp_store_release(c->w.kconsumer, c->consumer);
	if (c->consumer - c->released >= c->release_batch ||
	    (READ_ONCE(*c->w.kneed_space) & ARCHANGEL_RING_NEED_SPACE))
		return ach_rcons_release(c);
	return false;
}

/* Publishes skipped padding too, then the batched (G) need_space check. */
bool ach_rcons_release(struct ach_rcons *c)
{
	if (c->consumer != c->published) {
		c->published = c->consumer;
		/* (C), matches (D). */
		smp_store_release(c->w.kconsumer, c->consumer);
	}
	if (c->consumer == c->released)
		return false;
	c->released = c->consumer;
	/* (G), matches (H): the index store is ordered before the flag load. */
	smp_mb();
	return ach_need_should_signal(READ_ONCE(*c->w.kneed_space),
				      &c->last_space_signalled);
}

/* 1 when records wait, 0 when empty, -EPROTO on a bad producer index. */
int ach_rcons_has_data(struct ach_rcons *c)
{
	u64 producer;

	if (c->consumer != c->cached_producer)
		return 1;
	/* (B), matches (A). */
	producer = smp_load_acquire(c->w.kproducer);
	if (!ach_index_ok(producer, c->cached_producer,
			  c->published + c->w.size))
		return -EPROTO;
	c->cached_producer = producer;
	return producer != c->consumer;
}

/* ---------------------------------------------------------------------------
 * Return rings: __u32 buffer indices, little-endian (the module builds for
 * little-endian hosts only, see archangel.h).
 */

void ach_iprod_init(struct ach_iprod *p, void *base,
		    const struct archangel_ring_offsets *o)
{
	ach_ring_bind(&p->w, base, o);
	p->entries = o->size / 4;
	p->producer = 0;
	p->cached_consumer = 0;
	p->published = 0;
	p->last_woken = 0;
}

/* Appends @value unpublished: 0, -ENOSPC when full, -EPROTO bad index. */
int ach_iprod_push(struct ach_iprod *p, u32 value)
{
	u32 *slots = (u32 *)p->w.data;
	u64 consumer;

	if (p->producer - p->cached_consumer >= p->entries) {
		/* (D), matches (C). */
		consumer = smp_load_acquire(p->w.kconsumer);
		if (!ach_index_ok(consumer, p->cached_consumer, p->published))
			return -EPROTO;
		p->cached_consumer = consumer;
		if (p->producer - consumer >= p->entries)
			return -ENOSPC;
	}
	WRITE_ONCE(slots[p->producer & (p->entries - 1)], value);
	p->producer++;
	return 0;
}

/* Publishes pushed entries; true when the user's sender waits for them. */
bool ach_iprod_publish(struct ach_iprod *p)
{
	if (p->producer == p->published)
		return false;
	p->published = p->producer;
	/* The user's sender sleeps on this ring's flag waiting for buffers. */
	return ach_words_publish(&p->w, p->producer, &p->last_woken);
}

void ach_icons_init(struct ach_icons *c, void *base,
		    const struct archangel_ring_offsets *o)
{
	ach_ring_bind(&c->w, base, o);
	c->entries = o->size / 4;
	c->consumer = 0;
	c->need_wakeup.kword = c->w.kneed_wakeup;
	c->need_wakeup.episode = 0;
	c->need_wakeup.sleepers = 0;
}

/*
 * Calls @fn with every published entry, each read once, then releases
 * them. Returns the number drained, -EPROTO on a bad producer index, or
 * the error of @fn (entries before it stay consumed).
 */
int ach_icons_drain(struct ach_icons *c,
		    int (*fn)(void *arg, u32 value), void *arg)
{
	const u32 *slots = (const u32 *)c->w.data;
	u64 producer;
	int n = 0;
	int err = 0;

	/* (B), matches (A). */
	producer = smp_load_acquire(c->w.kproducer);
	if (producer - c->consumer > c->entries)
		return -EPROTO;
	while (c->consumer != producer) {
		u32 v = READ_ONCE(slots[c->consumer & (c->entries - 1)]);

		c->consumer++;
		n++;
		err = fn(arg, v);
		if (err)
			break;
	}
	if (n)
		/* (C), matches (D). */
		smp_store_release(c->w.kconsumer, c->consumer);
	return err ? err : n;
}

/*
 * After ach_need_raise() and (F): 1 when entries wait, 0 when empty,
 * -EPROTO on a bad producer index.
 */
int ach_icons_pending(struct ach_icons *c)
{
	/* (B), matches (A). */
	u64 producer = smp_load_acquire(c->w.kproducer);

	if (producer - c->consumer > c->entries)
		return -EPROTO;
	return producer != c->consumer;
}
