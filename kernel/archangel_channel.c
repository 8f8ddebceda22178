// SPDX-License-Identifier: GPL-2.0
/*
 * The channel table, channel layout, create/destroy.
 *
 * The layout is computed exactly as ChannelLayout(configuration:channelID:)
 * in Sources/ArchangelCore/ChannelLayout.swift, so that Swift's
 * ChannelLayout.load accepts it: page 0 header, page 1 kernel-written lines,
 * page 2 user-written lines (lines taken in the same order), then the data
 * areas (to_user normal, express, returns; to_kernel normal, express,
 * returns; to_user pool; to_kernel pool), each page aligned.
 */
#include <linux/bitmap.h>
#include <linux/eventfd.h>
#include <linux/hrtimer.h>
#include <linux/irq_work.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include "archangel.h"

static unsigned int max_channel_mib = 256;
module_param(max_channel_mib, uint, 0444);
MODULE_PARM_DESC(max_channel_mib, "Largest channel memory in MiB (default 256)");

static bool pool_dma = true;
module_param(pool_dma, bool, 0644);
MODULE_PARM_DESC(pool_dma, "Allocate buffer pools with dma_alloc_coherent (default Y); N: ordinary pages");

static struct ach_channel **ach_table;
atomic_t ach_live_channels = ATOMIC_INIT(0);
atomic_t ach_live_mems = ATOMIC_INIT(0);
atomic_t ach_live_shms = ATOMIC_INIT(0);
static DEFINE_SPINLOCK(ach_table_lock);

#define ACH_SHM_MAX	(256ULL << 20)

int ach_channel_init(void)
{
	ach_table = kcalloc(ach_max_channels, sizeof(*ach_table), GFP_KERNEL);
	return ach_table ? 0 : -ENOMEM;
}

void ach_channel_exit(void)
{
	kfree(ach_table);
}

/* ---------------------------------------------------------------------------
 * Geometry: ChannelConfiguration.default and .validate()
 */

static void ach_geometry_defaults(struct archangel_create_req *g)
{
	if (g->flags & ARCHANGEL_CREATE_EXACT)
		return;
	if (!g->normal_ring_bytes)
		g->normal_ring_bytes = 64 * 1024;
	if (!g->express_ring_bytes)
		g->express_ring_bytes = 16 * 1024;
	if (!g->pool_buffer_size)
		g->pool_buffer_size = 4096;
	if (!g->pool_buffer_count)
		g->pool_buffer_count = 64;
	if (!g->pool_threshold)
		g->pool_threshold = 1024;
	if (!g->max_segments)
		g->max_segments = 32;
}

static bool ach_pow2_in(u32 v, u32 lo, u32 hi)
{
	return v >= lo && v <= hi && is_power_of_2(v);
}

int ach_geometry_check(const struct archangel_create_req *g)
{
	u32 smaller, max_record, inline_max, seg_limit;

	if (!ach_pow2_in(g->normal_ring_bytes, 4096, 1U << 30) ||
	    !ach_pow2_in(g->express_ring_bytes, 4096, 1U << 30))
		return -EINVAL;
	if (g->pool_buffer_count > (1U << 20))
		return -EINVAL;
	if (!ach_pow2_in(g->pool_buffer_size, 256, 1U << 20))
		return -EINVAL;
	smaller = min(g->normal_ring_bytes, g->express_ring_bytes);
	max_record = smaller / 4;
	inline_max = max_record - ARCHANGEL_MSG_HEADER_SIZE -
		     ARCHANGEL_CORRELATION_SIZE;
	if (g->pool_threshold > inline_max)
		return -EINVAL;
	seg_limit = inline_max / sizeof(struct archangel_pool_desc);
	if (g->max_segments < 1 || g->max_segments > min(256U, seg_limit))
		return -EINVAL;
	return 0;
}

/* ---------------------------------------------------------------------------
 * Layout
 */

static u64 ach_take_line(u64 *cursor)
{
	u64 at = *cursor;

	*cursor += ARCHANGEL_CACHELINE;
	return at;
}

static u64 ach_take_data(u64 *cursor, u64 bytes)
{
	u64 at = *cursor;

	*cursor += round_up(bytes, (u64)ARCHANGEL_PAGE_SIZE);
	return at;
}

/* The producer writes producer and need_space, the consumer the others. */
static void ach_layout_ring(struct archangel_ring_offsets *r, u64 *prod,
			    u64 *cons, u64 *data, u32 size, u32 entry_size)
{
	r->producer = ach_take_line(prod);
	r->consumer = ach_take_line(cons);
	r->need_wakeup = ach_take_line(cons);
	r->need_space = ach_take_line(prod);
	r->data = ach_take_data(data, size);
	r->size = size;
	r->entry_size = entry_size;
}

static void ach_layout_dir(struct archangel_direction_offsets *d, u64 *prod,
			   u64 *cons, u64 *data,
			   const struct archangel_create_req *g)
{
	u32 entries = roundup_pow_of_two(max(8U, g->pool_buffer_count));

	ach_layout_ring(&d->normal, prod, cons, data, g->normal_ring_bytes, 0);
	ach_layout_ring(&d->express, prod, cons, data, g->express_ring_bytes,
			0);
	/* Returns flow the other way: the receiver produces them. */
	ach_layout_ring(&d->pool.returns, cons, prod, data, entries * 4, 4);
	d->pool.buffers = 0;
	d->pool.buffer_size = g->pool_buffer_size;
	d->pool.buffer_count = g->pool_buffer_count;
	d->pool.threshold = g->pool_threshold;
	d->pool.max_segments = min(g->max_segments,
				   max(1U, g->pool_buffer_count));
}

/* Fills @o; returns the end of the rings (where the pools begin). */
static u64 ach_layout(const struct archangel_create_req *g, u32 id,
		      struct archangel_channel_offsets *o)
{
	u64 kcur = ARCHANGEL_PAGE_SIZE;
	u64 ucur = 2 * ARCHANGEL_PAGE_SIZE;
	u64 dcur = 3 * ARCHANGEL_PAGE_SIZE;
	u64 rings_end;
	u64 pool_bytes = (u64)g->pool_buffer_count * g->pool_buffer_size;

	memset(o, 0, sizeof(*o));
	o->kernel_lines = kcur;
	o->user_lines = ucur;
	ach_layout_dir(&o->to_user, &kcur, &ucur, &dcur, g);
	ach_layout_dir(&o->to_kernel, &ucur, &kcur, &dcur, g);
	/* Taken after both directions so the lines above keep their places. */
	o->to_user.pool.return_intent = ach_take_line(&ucur);
	o->to_kernel.pool.return_intent = ach_take_line(&kcur);
	rings_end = dcur;
	if (g->pool_buffer_count) {
		o->to_user.pool.buffers = ach_take_data(&dcur, pool_bytes);
		o->to_kernel.pool.buffers = ach_take_data(&dcur, pool_bytes);
	}
	o->abi_version = ARCHANGEL_ABI_VERSION;
	o->features = ARCHANGEL_FEATURES_ALL;
	o->total_size = dcur;
	o->channel_id = id;
	return rings_end;
}

/* ---------------------------------------------------------------------------
 * Memory
 */

static void ach_mem_release(struct kref *ref)
{
	struct ach_mem *mem = container_of(ref, struct ach_mem, ref);

	ach_region_free(&mem->pool[ACH_TO_KERNEL]);
	ach_region_free(&mem->pool[ACH_TO_USER]);
	ach_region_free(&mem->rings);
	kfree(mem);
	atomic_dec(&ach_live_mems);
}

/* Process context only (vfree, dma_free_coherent). */
void ach_mem_put(struct ach_mem *mem)
{
	kref_put(&mem->ref, ach_mem_release);
}

static struct ach_mem *ach_mem_alloc(const struct archangel_channel_offsets *o,
				     u64 rings_end)
{
	u64 pool_bytes = (u64)o->to_user.pool.buffer_count *
			 o->to_user.pool.buffer_size;
	struct ach_mem *mem;
	int err;

	mem = kzalloc(sizeof(*mem), GFP_KERNEL);
	if (!mem)
		return ERR_PTR(-ENOMEM);
	kref_init(&mem->ref);
	atomic_inc(&ach_live_mems);
	mem->total_size = o->total_size;
	err = ach_region_alloc(&mem->rings, rings_end, false);
	if (err)
		goto err_free_mem;
	if (pool_bytes) {
		mem->pool_off[ACH_TO_USER] = o->to_user.pool.buffers;
		mem->pool_off[ACH_TO_KERNEL] = o->to_kernel.pool.buffers;
		err = ach_region_alloc(&mem->pool[ACH_TO_USER], pool_bytes,
				       READ_ONCE(pool_dma));
		if (err)
			goto err_free_rings;
		err = ach_region_alloc(&mem->pool[ACH_TO_KERNEL], pool_bytes,
				       READ_ONCE(pool_dma));
		if (err)
			goto err_free_user_pool;
	}
	return mem;

err_free_user_pool:
	ach_region_free(&mem->pool[ACH_TO_USER]);
err_free_rings:
	ach_region_free(&mem->rings);
err_free_mem:
	kfree(mem);
	atomic_dec(&ach_live_mems);
	return ERR_PTR(err);
}

static void ach_shm_release(struct kref *ref)
{
	struct ach_shm *shm = container_of(ref, struct ach_shm, ref);

	ach_region_free(&shm->r);
	kfree(shm);
	atomic_dec(&ach_live_shms);
}

void ach_shm_put(struct ach_shm *shm)
{
	kref_put(&shm->ref, ach_shm_release);
}

/* ---------------------------------------------------------------------------
 * Channels
 */

static void ach_channel_free_work(struct work_struct *work)
{
	struct ach_channel *ch = container_of(work, struct ach_channel,
					      free_work);

	/*
	 * Neither a deferred kick nor the trailing edge holds a reference.
	 * Nobody holds the channel, so nothing queues a kick any more: wait
	 * out the last one (it may start the timer), then stop the timer
	 * (its callback queues nothing).
	 */
	irq_work_sync(&ch->kick);
	hrtimer_cancel(&ch->tx.timer);
	if (ch->data_efd)
		eventfd_ctx_put(ch->data_efd);
	if (ch->space_efd)
		eventfd_ctx_put(ch->space_efd);
	if (ch->shm)
		ach_shm_put(ch->shm);
	ach_borrower_free(&ch->rx.pool);
	ach_lender_free(&ch->tx.pool);
	ach_mem_put(ch->mem);
	kfree(ch);
	atomic_dec(&ach_live_channels);
}

static void ach_channel_release(struct kref *ref)
{
	struct ach_channel *ch = container_of(ref, struct ach_channel, ref);

	/* The last put may come from atomic context: free from a worker. */
	INIT_WORK(&ch->free_work, ach_channel_free_work);
	queue_work(ach_wq, &ch->free_work);
}

void ach_channel_put(struct ach_channel *ch)
{
	kref_put(&ch->ref, ach_channel_release);
}

static void ach_channel_setup_sides(struct ach_channel *ch)
{
	const struct archangel_channel_offsets *o = &ch->off;
	void *base = ch->mem->rings.vaddr;
	struct ach_tx *tx = &ch->tx;
	struct ach_rx *rx = &ch->rx;
	u32 inline_max;

	ach_rprod_init(&tx->lane[ACH_NORMAL], base, &o->to_user.normal);
	ach_rprod_init(&tx->lane[ACH_EXPRESS], base, &o->to_user.express);
	ach_rcons_init(&rx->lane[ACH_NORMAL], base, &o->to_kernel.normal,
		       false);
	ach_rcons_init(&rx->lane[ACH_EXPRESS], base, &o->to_kernel.express,
		       true);
	inline_max = min(tx->lane[ACH_NORMAL].max_record,
			 tx->lane[ACH_EXPRESS].max_record) -
		     ARCHANGEL_MSG_HEADER_SIZE - ARCHANGEL_CORRELATION_SIZE;
	tx->max_payload = inline_max;
	if (o->to_user.pool.buffer_count)
		tx->max_payload = max(inline_max,
				      min(o->to_user.pool.max_segments,
					  o->to_user.pool.buffer_count) *
				      o->to_user.pool.buffer_size);
}

/* The balanced preset (docs/efficiency.md): every new channel's policy. */
static void ach_wait_defaults(struct archangel_wait_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->flags = ARCHANGEL_WAIT_ADAPTIVE | ARCHANGEL_WAIT_PACED_POLLS;
	cfg->max_delay_ns = ARCHANGEL_WAIT_BALANCED_DELAY_NS;
	cfg->spin_ns = ARCHANGEL_WAIT_BALANCED_SPIN_NS;
}

static struct ach_channel *
ach_channel_alloc(const struct archangel_create_req *g, u32 id)
{
	struct archangel_channel_header *hdr;
	struct ach_channel *ch;
	u64 rings_end;
	int err;

	ch = kzalloc(sizeof(*ch), GFP_KERNEL);
	if (!ch)
		return ERR_PTR(-ENOMEM);
	rings_end = ach_layout(g, id, &ch->off);
	if (ch->off.total_size > ((u64)max_channel_mib << 20)) {
		err = -ENOMEM;
		goto err_free_ch;
	}
	ch->mem = ach_mem_alloc(&ch->off, rings_end);
	if (IS_ERR(ch->mem)) {
		err = PTR_ERR(ch->mem);
		goto err_free_ch;
	}
	hdr = ch->mem->rings.vaddr;
	hdr->magic = ARCHANGEL_CHANNEL_MAGIC;
	hdr->header_size = sizeof(*hdr);
	hdr->offsets = ch->off;

	ach_channel_setup_sides(ch);
	err = ach_lender_init(&ch->tx.pool, ch->mem->rings.vaddr,
			      ch->mem->pool[ACH_TO_USER].vaddr,
			      &ch->off.to_user.pool);
	if (err)
		goto err_put_mem;
	err = ach_borrower_init(&ch->rx.pool, ch->mem->rings.vaddr,
				ch->mem->pool[ACH_TO_KERNEL].vaddr,
				&ch->off.to_kernel.pool);
	if (err)
		goto err_free_lender;

	kref_init(&ch->ref);
	atomic_inc(&ach_live_channels);
	ch->id = id;
	spin_lock_init(&ch->tx.lock);
	spin_lock_init(&ch->rx.lock);
	spin_lock_init(&ch->efd_lock);
	mutex_init(&ch->lock);
	init_waitqueue_head(&ch->data_wq);
	init_waitqueue_head(&ch->space_wq);
	init_waitqueue_head(&ch->poll_wq);
	hrtimer_init(&ch->tx.timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS);
	ch->tx.timer.function = ach_trailing_edge;
	init_irq_work(&ch->kick, ach_kick_work);
	atomic_long_set(&ch->kick_bits, 0);
	ach_wait_defaults(&ch->wait);
	return ch;

err_free_lender:
	ach_lender_free(&ch->tx.pool);
err_put_mem:
	ach_mem_put(ch->mem);
err_free_ch:
	kfree(ch);
	return ERR_PTR(err);
}

/*
 * Creates a channel with the geometry of @req (0 fields: defaults) at
 * req->channel_id, or the lowest free id for ARCHANGEL_CHANNEL_ANY.
 * Process context. -EINVAL, -EEXIST, -ENOSPC, -ENOMEM.
 */
int ach_channel_create(const struct archangel_create_req *req, u32 *id)
{
	struct archangel_create_req g = *req;
	struct ach_channel *ch;
	unsigned long flags;
	u32 want = req->channel_id;
	u32 i;
	int err;

	ach_geometry_defaults(&g);
	err = ach_geometry_check(&g);
	if (err)
		return err;
	if (want != ARCHANGEL_CHANNEL_ANY && want >= ach_max_channels)
		return -EINVAL;
	/* The id in the header is fixed up below once the slot is known. */
	ch = ach_channel_alloc(&g, want == ARCHANGEL_CHANNEL_ANY ? 0 : want);
	if (IS_ERR(ch))
		return PTR_ERR(ch);

	spin_lock_irqsave(&ach_table_lock, flags);
	if (want != ARCHANGEL_CHANNEL_ANY) {
		i = want;
		err = ach_table[i] ? -EEXIST : 0;
	} else {
		for (i = 0; i < ach_max_channels && ach_table[i]; i++)
			;
		err = i < ach_max_channels ? 0 : -ENOSPC;
	}
	if (!err) {
		struct archangel_channel_header *hdr = ch->mem->rings.vaddr;

		ch->id = i;
		ch->off.channel_id = i;
		hdr->offsets.channel_id = i;
		ach_table[i] = ch;
	}
	spin_unlock_irqrestore(&ach_table_lock, flags);
	if (err) {
		ach_channel_put(ch);
		return err;
	}
	*id = i;
	return 0;
}

/* Takes a reference; NULL when there is no such channel. Any context. */
struct ach_channel *ach_channel_get(u32 id)
{
	struct ach_channel *ch = NULL;
	unsigned long flags;

	if (id >= ach_max_channels)
		return NULL;
	spin_lock_irqsave(&ach_table_lock, flags);
	ch = ach_table[id];
	if (ch)
		kref_get(&ch->ref);
	spin_unlock_irqrestore(&ach_table_lock, flags);
	return ch;
}

/* Wakes every waiter; deferred when the caller is not preemptible. */
void ach_channel_wake_all(struct ach_channel *ch)
{
	ach_kick(ch, ACH_KICK_ALL);
}

/*
 * ARCHANGEL_IOC_SET_WAIT's rules, those of Swift's WaitPolicy.validate():
 * known flags, zero reserved fields, spin_ns at most
 * ARCHANGEL_WAIT_SPIN_MAX_NS, and with ARCHANGEL_WAIT_ADAPTIVE a window
 * in [ARCHANGEL_WAIT_DELAY_MIN_NS, ARCHANGEL_WAIT_DELAY_MAX_NS]. Without
 * it max_delay_ns is ignored and ARCHANGEL_WAIT_PACED_POLLS refused. 0 or
 * -EINVAL.
 */
int ach_wait_check(const struct archangel_wait_config *cfg)
{
	if ((cfg->flags & ~ARCHANGEL_WAIT_FLAGS_ALL) ||
	    ((cfg->flags & ARCHANGEL_WAIT_PACED_POLLS) &&
	     !(cfg->flags & ARCHANGEL_WAIT_ADAPTIVE)) ||
	    cfg->reserved[0] || cfg->reserved[1] ||
	    cfg->spin_ns > ARCHANGEL_WAIT_SPIN_MAX_NS)
		return -EINVAL;
	if ((cfg->flags & ARCHANGEL_WAIT_ADAPTIVE) &&
	    (cfg->max_delay_ns < ARCHANGEL_WAIT_DELAY_MIN_NS ||
	     cfg->max_delay_ns > ARCHANGEL_WAIT_DELAY_MAX_NS))
		return -EINVAL;
	return 0;
}

/*
 * Applies a checked policy. Senders read it under tx.lock, receivers once
 * per wait with READ_ONCE: a receiver may see a mix of the old and the new
 * fields for one wait, which only costs that wait's choice. A pending
 * trailing edge keeps its time (at most the old window).
 */
void ach_channel_set_wait(struct ach_channel *ch,
			  const struct archangel_wait_config *cfg)
{
	unsigned long flags;

	spin_lock_irqsave(&ch->tx.lock, flags);
	WRITE_ONCE(ch->wait.flags, cfg->flags);
	WRITE_ONCE(ch->wait.wake_batch, cfg->wake_batch);
	WRITE_ONCE(ch->wait.max_delay_ns, cfg->max_delay_ns);
	WRITE_ONCE(ch->wait.spin_ns, cfg->spin_ns);
	/* A new window starts a new budget. */
	ch->tx.co.tat = 0;
	spin_unlock_irqrestore(&ch->tx.lock, flags);
}

void ach_channel_get_wait(struct ach_channel *ch,
			  struct archangel_wait_config *cfg)
{
	unsigned long flags;

	memset(cfg, 0, sizeof(*cfg));
	spin_lock_irqsave(&ch->tx.lock, flags);
	cfg->flags = ch->wait.flags;
	cfg->wake_batch = ch->wait.wake_batch;
	cfg->max_delay_ns = ch->wait.max_delay_ns;
	cfg->spin_ns = ch->wait.spin_ns;
	spin_unlock_irqrestore(&ch->tx.lock, flags);
}

/*
 * Removes channel @id from the table and wakes everyone; the memory goes
 * when the last reference (a bound file, a mapping, an API call) goes.
 */
int ach_channel_destroy(u32 id)
{
	struct ach_channel *ch;
	unsigned long flags;

	if (id >= ach_max_channels)
		return -ENOENT;
	spin_lock_irqsave(&ach_table_lock, flags);
	ch = ach_table[id];
	ach_table[id] = NULL;
	spin_unlock_irqrestore(&ach_table_lock, flags);
	if (!ch)
		return -ENOENT;
	WRITE_ONCE(ch->dead, true);
	ach_channel_wake_all(ch);
	/* The wake-up above covers a pending trailing edge. */
	hrtimer_try_to_cancel(&ch->tx.timer);
	ach_channel_put(ch);
	return 0;
}

void ach_channel_destroy_all(void)
{
	u32 i;

	for (i = 0; i < ach_max_channels; i++)
		ach_channel_destroy(i);
}

/* References to every channel, ascending id, for /proc. */
unsigned int ach_channel_snapshot(struct ach_channel **out, unsigned int n)
{
	unsigned long flags;
	unsigned int got = 0;
	u32 i;

	spin_lock_irqsave(&ach_table_lock, flags);
	for (i = 0; i < ach_max_channels && got < n; i++) {
		if (ach_table[i]) {
			kref_get(&ach_table[i]->ref);
			out[got++] = ach_table[i];
		}
	}
	spin_unlock_irqrestore(&ach_table_lock, flags);
	return got;
}

u32 ach_channel_count(void)
{
	unsigned long flags;
	u32 i, n = 0;

	spin_lock_irqsave(&ach_table_lock, flags);
	for (i = 0; i < ach_max_channels; i++)
		if (ach_table[i])
			n++;
	spin_unlock_irqrestore(&ach_table_lock, flags);
	return n;
}

/*
 * Userspace wrote something that failed a check. The caller holds the lock
 * of the side that found it and passes that side's counters. The channel
 * refuses all traffic from now on; everyone is woken to see it.
 */
void ach_channel_fail(struct ach_channel *ch, struct ach_stats *st)
{
	ach_add(&st->errors, 1);
	if (!READ_ONCE(ch->failed)) {
		WRITE_ONCE(ch->failed, true);
		pr_warn_ratelimited("archangel: channel %u: user memory failed a check; channel failed\n",
				    ch->id);
	}
	ach_channel_wake_all(ch);
}

/* The user file is gone (ch->lock held): drop its eventfds, finish its returns. */
void ach_channel_user_detached(struct ach_channel *ch)
{
	struct eventfd_ctx *data, *space;
	unsigned long flags;

	ch->user = NULL;
	spin_lock_irqsave(&ch->efd_lock, flags);
	data = ch->data_efd;
	space = ch->space_efd;
	ch->data_efd = NULL;
	ch->space_efd = NULL;
	spin_unlock_irqrestore(&ch->efd_lock, flags);
	if (data)
		eventfd_ctx_put(data);
	if (space)
		eventfd_ctx_put(space);
	ach_recover_user_returns(ch);
}

/* Process context. -EINVAL bad size, -EEXIST already set up, -ENOMEM. */
int ach_channel_setup_shm(struct ach_channel *ch, u64 size)
{
	struct ach_shm *shm;
	int err;

	if (!size || size > ACH_SHM_MAX)
		return -EINVAL;
	shm = kzalloc(sizeof(*shm), GFP_KERNEL);
	if (!shm)
		return -ENOMEM;
	kref_init(&shm->ref);
	atomic_inc(&ach_live_shms);
	err = ach_region_alloc(&shm->r, PAGE_ALIGN(size), false);
	if (err)
		goto err_free_shm;
	mutex_lock(&ch->lock);
	if (ch->shm) {
		mutex_unlock(&ch->lock);
		err = -EEXIST;
		goto err_free_region;
	}
	ch->shm = shm;
	mutex_unlock(&ch->lock);
	return 0;

err_free_region:
	ach_region_free(&shm->r);
err_free_shm:
	kfree(shm);
	atomic_dec(&ach_live_shms);
	return err;
}

/* Drops the channel's region; live mappings keep theirs until unmapped. */
void ach_channel_cleanup_shm(struct ach_channel *ch)
{
	struct ach_shm *shm;

	mutex_lock(&ch->lock);
	shm = ch->shm;
	ch->shm = NULL;
	mutex_unlock(&ch->lock);
	if (shm)
		ach_shm_put(shm);
}
