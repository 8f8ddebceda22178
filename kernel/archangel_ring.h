/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel's half of the Archangel rings.
 *
 * Same protocol as the Swift reference (ArchangelCore/RecordRing*.swift,
 * IndexRing.swift, RingIndices.swift) and the same barrier letters as
 * docs/memory-ordering.md. Shared words of one ring and who writes them:
 *
 *   PRODUCER                        shared memory                 CONSUMER
 *
 *   writes records -------------->  data area  ---------------->  reads records
 *   (A) smp_store_release ------->  producer   ---------------->  (B) smp_load_acquire
 *   (D) smp_load_acquire  <-------  consumer   <----------------  (C) smp_store_release
 *   (E) smp_mb, then READ_ONCE <--  need_wakeup  <--------------  WRITE_ONCE, then (F) smp_mb
 *   WRITE_ONCE, then (H) smp_mb -->  need_space  ---------------->  (G) smp_mb, then READ_ONCE
 *
 *   (A) -> (B)   records written before the producer index are visible to
 *                whoever reads that index.
 *   (C) -> (D)   the consumer has finished reading a record before the
 *                producer may overwrite its space.
 *   (E) <-> (F)  a consumer never sleeps on data it did not see.
 *   (G) <-> (H)  a producer never sleeps on room it did not see.
 *
 * The kernel is the producer of to_user and of the to_kernel return ring,
 * and the consumer of to_kernel and of the to_user return ring. Every index,
 * header, descriptor and return entry the user side writes is read once into
 * a local, checked, and only the local is used; a failed check returns
 * -EPROTO and the caller fails the channel.
 *
 * Need words (docs/abi.md "Need-wakeup and need-space words"): bit 0 means
 * "I sleep, wake me", bits 1-31 count sleeps. A signaller keeps the last
 * word it signalled and signals only a new word with bit 0 set. The kernel
 * may have several sleepers on one word (in-kernel senders or receivers on
 * many threads): each announcement is a new episode, and the word is lowered
 * only when the last sleeper leaves.
 *
 * None of these functions take locks: the callers serialize each side
 * (struct ach_tx / ach_rx locks in archangel.h).
 */
#ifndef _ARCHANGEL_RING_H
#define _ARCHANGEL_RING_H

#include <linux/types.h>
#include "archangel_uapi.h"

/* The shared words of one ring, resolved to kernel addresses. */
struct ach_ring_words {
	u64 *kproducer;
	u64 *kconsumer;
	u32 *kneed_wakeup;
	u32 *kneed_space;
	u8 *data;
	u64 size;
	u64 mask;
};

/* A need word written by the kernel (on the kernel's page). */
struct ach_need {
	u32 *kword;
	u32 episode;		/* last episode announced */
	u32 sleepers;		/* kernel threads inside an announced sleep */
};

/* Producer of a record ring (to_user lanes). */
struct ach_rprod {
	struct ach_ring_words w;
	u64 producer;		/* committed, our own truth */
	u64 cached_consumer;	/* consumer index last read and checked */
	u64 published;		/* producer index last stored */
	u32 last_woken;		/* user's need_wakeup word last signalled */
	u32 max_record;		/* a quarter of the ring */
	struct ach_need need_space;
};

/* A record found by the consumer: a checked copy of its header. */
struct ach_record {
	struct archangel_msg_header hdr;
	u64 correlation;	/* valid with ARCHANGEL_MSG_F_CORRELATED */
	u32 payload_pos;	/* offset of the payload in the data area */
	u32 payload_len;	/* payload bytes (descriptors for a DMA record) */
	u64 stride;		/* bytes the record takes in the ring */
};

/* Consumer of a record ring (to_kernel lanes). */
struct ach_rcons {
	struct ach_ring_words w;
	bool express;
	u64 consumer;		/* everything before this has been read */
	u64 published;		/* consumer index last stored */
	u64 released;		/* consumer index at the last (G) check */
	u64 cached_producer;	/* producer index last read and checked */
	u64 release_batch;	/* a quarter of the ring */
	u64 high_water;		/* largest backlog seen at a refresh */
	u32 last_space_signalled; /* user's need_space word last signalled */
	struct ach_need need_wakeup;
};

/* Producer of a return ring (to_kernel.pool.returns). */
struct ach_iprod {
	struct ach_ring_words w;
	u64 entries;
	u64 producer;
	u64 cached_consumer;
	u64 published;
	u32 last_woken;		/* user's need_wakeup word last signalled */
};

/* Consumer of a return ring (to_user.pool.returns). */
struct ach_icons {
	struct ach_ring_words w;
	u64 entries;
	u64 consumer;
	struct ach_need need_wakeup;
};

void ach_ring_bind(struct ach_ring_words *w, void *base,
		   const struct archangel_ring_offsets *o);

void ach_need_raise(struct ach_need *n);
void ach_need_lower(struct ach_need *n);
bool ach_need_should_signal(u32 word, u32 *last);

void ach_rprod_init(struct ach_rprod *p, void *base,
		    const struct archangel_ring_offsets *o);
int ach_rprod_reserve(struct ach_rprod *p, u32 len, void **rec);
void ach_rprod_commit(struct ach_rprod *p, u32 len);
bool ach_rprod_publish_index(struct ach_rprod *p);
int ach_rprod_room(struct ach_rprod *p, u32 len);
int ach_rprod_refresh(struct ach_rprod *p);
u64 ach_rprod_unread(struct ach_rprod *p);
int ach_rprod_unread_exceeds(struct ach_rprod *p, u64 limit);

void ach_rcons_init(struct ach_rcons *c, void *base,
		    const struct archangel_ring_offsets *o, bool express);
int ach_rcons_peek(struct ach_rcons *c, struct ach_record *r);
bool ach_rcons_advance(struct ach_rcons *c, const struct ach_record *r);
bool ach_rcons_release(struct ach_rcons *c);
int ach_rcons_has_data(struct ach_rcons *c);

void ach_iprod_init(struct ach_iprod *p, void *base,
		    const struct archangel_ring_offsets *o);
int ach_iprod_push(struct ach_iprod *p, u32 value);
bool ach_iprod_publish(struct ach_iprod *p);

void ach_icons_init(struct ach_icons *c, void *base,
		    const struct archangel_ring_offsets *o);
int ach_icons_drain(struct ach_icons *c,
		    int (*fn)(void *arg, u32 value), void *arg);
int ach_icons_pending(struct ach_icons *c);

/* Whether need word @word is armed for a sleep not yet signalled. */
static inline bool ach_need_is_new(u32 word, u32 last)
{
	return (word & ARCHANGEL_RING_NEED_WAKEUP) && word != last;
}

/* Record stride: size rounded up to ARCHANGEL_RECORD_ALIGN. */
static inline u64 ach_stride(u64 len)
{
	return (len + ARCHANGEL_RECORD_ALIGN - 1) &
	       ~(u64)(ARCHANGEL_RECORD_ALIGN - 1);
}

/* Whether @theirs lies in [@low, @high], in wrapping arithmetic. */
static inline bool ach_index_ok(u64 theirs, u64 low, u64 high)
{
	return theirs - low <= high - low;
}

#endif /* _ARCHANGEL_RING_H */
