/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal declarations of archangel.ko.
 *
 * Lifetimes:
 *   struct ach_channel   kref: the channel table, each bound user file and
 *                        each in-flight API call hold one. Freed from a
 *                        workqueue (the last put may come from atomic
 *                        context, and vfree/dma_free_coherent may not).
 *   struct ach_mem       kref: the channel and every VMA mapping it hold
 *                        one, so destroy with a live mapping is safe.
 *   struct ach_shm       kref: likewise for the extra shared region.
 *
 * Locks, outermost first:
 *   ach_table_lock (spin)  the channel table
 *   ch->lock (mutex)       attach/detach, eventfd registration, shm
 *   ch->tx.lock (spin, irqsave)  kernel -> user producer state (many CPUs)
 *   ch->rx.lock (spin, irqsave)  user -> kernel consumer state
 *   ch->efd_lock (spin, irqsave) the eventfd contexts, taken inside tx/rx
 *
 * Wake-ups of the user side (eventfds, poll) go through ach_kick(): direct
 * when the caller is preemptible, else deferred to ch->kick (irq_work), since
 * a sender may be a tracepoint probe inside the scheduler or inside another
 * eventfd_signal(). The trailing edge of coalesced wake-ups is tx.timer, an
 * hrtimer armed only while a deferred signal is due. Neither holds a
 * reference: the channel's free cancels the timer and syncs the irq_work
 * first (docs/kernel.md, "Wake-ups and the wait policy").
 */
#ifndef _ARCHANGEL_H
#define _ARCHANGEL_H

#include <linux/atomic.h>
#include <linux/hrtimer.h>
#include <linux/irq_work.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include "archangel_uapi.h"
#include "archangel_ring.h"

#ifdef __BIG_ENDIAN
#error "archangel: the shared-memory ABI is little-endian"
#endif
#if BITS_PER_LONG != 64
#error "archangel: 64-bit indices are read and written with single accesses"
#endif

#define ACH_TO_USER	0
#define ACH_TO_KERNEL	1
#define ACH_NORMAL	0
#define ACH_EXPRESS	1

/*
 * Kernel API differences between the lines we build for (6.1, 6.12) are
 * detected by Kbuild from the headers (ACH_HAVE_* below), not by version.
 */
#ifdef ACH_HAVE_VM_FLAGS_SET
#define ach_vm_flags_set(vma, f)	vm_flags_set(vma, f)
#define ach_vm_flags_clear(vma, f)	vm_flags_clear(vma, f)
#else
#define ach_vm_flags_set(vma, f)	((vma)->vm_flags |= (f))
#define ach_vm_flags_clear(vma, f)	((vma)->vm_flags &= ~(f))
#endif

extern unsigned int ach_max_channels;
extern unsigned int ach_spin_us;
extern struct workqueue_struct *ach_wq;

/* Live objects, for /proc/archangel/pool: all 0 once everything is gone. */
extern atomic_t ach_live_channels;
extern atomic_t ach_live_mems;
extern atomic_t ach_live_shms;

/* One backing allocation: DMA coherent memory or vmalloc_user() pages. */
struct ach_region {
	void *vaddr;
	dma_addr_t dma;
	size_t size;		/* page multiple */
	bool is_dma;
};

/* Channel memory. [0, rings.size) is one vmalloc area; pools are apart. */
struct ach_mem {
	struct kref ref;
	u64 total_size;
	struct ach_region rings;
	u64 pool_off[2];	/* layout offset of each pool, 0: none */
	struct ach_region pool[2];
};

/* The extra shared region (SETUP_SHM / archangel_comm_setup_shared_memory). */
struct ach_shm {
	struct kref ref;
	struct ach_region r;
};

/* Counters of one direction, kernel side. Written under that side's lock. */
struct ach_stats {
	u64 messages_sent;
	u64 bytes_sent;
	u64 messages_received;
	u64 bytes_received;
	u64 rejected;
	u64 errors;
	u64 queue_full;
	u64 pool_transfers;
	u64 copy_fallbacks;
	u64 notify_sent;
	u64 notify_suppressed;
	u64 waits;
	u64 notify_coalesced;	/* sender: wake-ups deferred to a trailing edge */
	u64 timed_waits;	/* receiver: timed polls */
};

/* Single writer under the side's lock; /proc reads racily (see proc.c). */
static inline void ach_add(u64 *counter, u64 n)
{
	WRITE_ONCE(*counter, *counter + n);
}

/* The kernel's pool, lent to the user side (to_user). */
struct ach_lender {
	u8 *buffers;
	u32 buffer_size;
	u32 count;
	u32 threshold;
	u32 max_segments;
	u32 free_count;
	u32 *free_stack;	/* private: the user cannot forge a free buffer */
	unsigned long *lent;	/* buffers lent to the user side */
	struct ach_icons returns;
};

/* The user's pool, borrowed by the kernel (to_kernel). */
struct ach_borrower {
	const u8 *buffers;
	u32 buffer_size;
	u32 count;
	u32 max_segments;
	unsigned long *held;	/* buffers named by the message being read */
	u32 *seg_buf;		/* buffer of each segment of that message */
	u32 *seg_off;
	u32 *seg_len;
	struct ach_iprod returns;
	u64 *kintent;		/* our return-intent word (kernel page) */
};

/* Why a send would block, for the wait that follows. */
struct ach_block {
	int lane;		/* -1: pool empty */
	u32 length;		/* record bytes (ring full) */
};

/*
 * The wake-up budget of the kernel's sender (Swift's WakeCoalescer): a
 * generic cell rate algorithm, tat advancing 9/10 of the window per signal,
 * a signal allowed once now is within 1/10 of the window of tat. Under
 * tx.lock.
 */
struct ach_coalescer {
	u64 tat;		/* theoretical time of the next signal, 0: none yet */
	u64 pending_until;	/* when the trailing edge fires, 0: none pending */
	u64 paced_due;		/* earliest signal of a paced poll, 0: at once */
};

struct ach_tx {
	spinlock_t lock;		/* serializes kernel senders */
	struct ach_rprod lane[2];
	struct ach_lender pool;
	u64 sequence;
	u64 batch_ts;		/* clock read once per publication, 0: none yet */
	u32 max_payload;
	bool pending_urgent;	/* a committed, unpublished message is urgent */
	struct ach_coalescer co;
	struct hrtimer timer;	/* the trailing edge; armed only while one is due */
	u64 arm_at;		/* timer start asked for (ACH_KICK_ARM), 0: none */
	struct ach_stats st;
};

/*
 * The kernel receivers' phase (docs/efficiency.md "The consumer"), shared
 * by every receiver of the channel, under rx.lock.
 */
struct ach_rx_phase {
	bool polling;		/* timed polling, else blocking */
	u64 empty_at;		/* when the ring last ran empty after messages */
	u64 received_at;	/* messages_received then */
	u64 gap_ns;		/* smoothed gap between messages, 0: unknown */
};

struct ach_rx {
	spinlock_t lock;		/* serializes kernel receivers */
	struct ach_rcons lane[2];
	struct ach_borrower pool;
	struct ach_rx_phase phase;
	struct ach_stats st;
};

/*
 * What ach_kick() wakes (ach_channel.kick_bits). DATA and SPACE are the
 * user's eventfds; POLLIN and POLLOUT the poll() waiters; KERNEL the
 * in-kernel waiters; ALL everything (destroy, failure); ARM starts the
 * trailing-edge timer, outside the sender's context (a probe may run
 * inside hrtimer code, with its base lock held).
 */
#define ACH_KICK_DATA		BIT(0)
#define ACH_KICK_SPACE		BIT(1)
#define ACH_KICK_POLLIN		BIT(2)
#define ACH_KICK_POLLOUT	BIT(3)
#define ACH_KICK_ALL		BIT(4)
#define ACH_KICK_KERNEL		BIT(5)	/* in-kernel receivers and senders */
#define ACH_KICK_ARM		BIT(6)	/* start tx.timer at tx.arm_at */

struct ach_channel {
	struct kref ref;
	u32 id;
	bool dead;		/* destroyed (READ_ONCE/WRITE_ONCE) */
	bool failed;		/* user memory failed a check */
	struct archangel_channel_offsets off;
	struct ach_mem *mem;
	struct ach_tx tx;
	struct ach_rx rx;

	struct mutex lock;	/* attach/detach, eventfds, shm */
	struct file *user;	/* the bound user file, under lock */
	struct ach_shm *shm;	/* under lock */

	spinlock_t efd_lock;	/* protects the two contexts below */
	struct eventfd_ctx *data_efd;
	struct eventfd_ctx *space_efd;

	wait_queue_head_t data_wq;	/* in-kernel receivers */
	wait_queue_head_t space_wq;	/* in-kernel senders */
	wait_queue_head_t poll_wq;	/* the user file's poll() */
	/*
	 * A poll() asked for EPOLLIN / EPOLLOUT since the last such wake-up
	 * (set in ach_poll(), cleared by the wake-up): publications and
	 * releases wake poll_wq only then, so a poller that asks for neither
	 * (Swift's watcher of EPOLLHUP) costs senders nothing.
	 */
	bool poll_in;
	bool poll_out;
	struct work_struct free_work;

	/* The kernel side's wait policy: written under tx.lock, read once. */
	struct archangel_wait_config wait;
	struct irq_work kick;		/* deferred wake-ups (ach_kick) */
	atomic_long_t kick_bits;	/* ACH_KICK_* waiting for kick */
};

/* archangel_channel.c */
int ach_channel_init(void);
void ach_channel_exit(void);
void ach_mem_put(struct ach_mem *mem);
void ach_shm_put(struct ach_shm *shm);
int ach_channel_create(const struct archangel_create_req *req, u32 *id);
int ach_channel_destroy(u32 id);
struct ach_channel *ach_channel_get(u32 id);
void ach_channel_put(struct ach_channel *ch);
unsigned int ach_channel_snapshot(struct ach_channel **out, unsigned int n);
void ach_channel_destroy_all(void);
void ach_channel_fail(struct ach_channel *ch, struct ach_stats *st);
void ach_channel_wake_all(struct ach_channel *ch);
int ach_wait_check(const struct archangel_wait_config *cfg);
void ach_channel_set_wait(struct ach_channel *ch,
			  const struct archangel_wait_config *cfg);
void ach_channel_get_wait(struct ach_channel *ch,
			  struct archangel_wait_config *cfg);
void ach_channel_user_detached(struct ach_channel *ch);
int ach_channel_setup_shm(struct ach_channel *ch, u64 size);
void ach_channel_cleanup_shm(struct ach_channel *ch);
u32 ach_channel_count(void);
int ach_geometry_check(const struct archangel_create_req *req);

/* archangel_pool.c */
int ach_pool_init(void);
void ach_pool_exit(void);
int ach_region_alloc(struct ach_region *r, size_t size, bool try_dma);
void ach_region_free(struct ach_region *r);
int ach_region_mmap(struct ach_region *r, struct vm_area_struct *vma,
		    u64 offset);
int ach_lender_init(struct ach_lender *l, void *base, u8 *buffers,
		    const struct archangel_pool_offsets *o);
void ach_lender_free(struct ach_lender *l);
int ach_lender_reclaim(struct ach_lender *l);
u32 ach_lender_take(struct ach_lender *l);
int ach_borrower_init(struct ach_borrower *b, void *base, const u8 *buffers,
		      const struct archangel_pool_offsets *o);
void ach_borrower_free(struct ach_borrower *b);
void ach_pool_stats(u64 *dma_regions, u64 *dma_bytes, u64 *page_regions,
		    u64 *page_bytes, u64 *dma_failures);

/* archangel_msg.c */
struct ach_msg {
	u8 type;
	u8 priority;
	u16 flags;
	u64 sequence;
	u64 timestamp;
	u64 correlation;
};

int ach_send(struct ach_channel *ch, u8 type, u8 priority, const void *data,
	     u32 size, const u64 *correlation, u32 sflags, bool count_full,
	     bool publish, struct ach_block *block);
void ach_publish(struct ach_channel *ch, u32 sflags);
void ach_rx_release(struct ach_channel *ch);
long ach_send_wait(struct ach_channel *ch, const struct ach_block *block,
		   long timeout, bool interruptible);
int ach_send_timeout(struct ach_channel *ch, u8 type, u8 priority,
		     const void *data, u32 size, const u64 *correlation,
		     u32 sflags, bool publish, long timeout, bool interruptible);
int ach_recv(struct ach_channel *ch, struct ach_msg *msg, void *buf,
	     u32 max_size);
long ach_recv_wait(struct ach_channel *ch, long timeout, bool interruptible);
int ach_recv_timeout(struct ach_channel *ch, struct ach_msg *msg, void *buf,
		     u32 max_size, long timeout, bool interruptible);
void ach_signal_user(struct ach_channel *ch, bool data);
void ach_kick(struct ach_channel *ch, unsigned long bits);
void ach_kick_work(struct irq_work *work);
enum hrtimer_restart ach_trailing_edge(struct hrtimer *timer);
void ach_recover_user_returns(struct ach_channel *ch);
__poll_t ach_poll_mask(struct ach_channel *ch);

/* archangel_chardev.c */
int ach_chardev_init(void);
void ach_chardev_exit(void);

/* archangel_proc.c */
int ach_proc_init(void);
void ach_proc_exit(void);

/* archangel_loadgen.c */
long ach_loadgen_channel(struct ach_channel *ch,
			 struct archangel_loadgen_req *req);
int ach_rw_init(void);
void ach_rw_exit(void);

#endif /* _ARCHANGEL_H */
