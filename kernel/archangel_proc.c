// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/archangel/comm and /proc/archangel/pool.
 *
 * /proc/archangel/comm prints the text format of docs/statistics.md, byte
 * for byte what StatisticsReport.text prints in Swift (and what
 * StatisticsReport(parsing:) reads back):
 *
 *   archangel-comm 1
 *   channels <in use>/<max_channels>
 *   channel <id> <active|failed>
 *     to_user messages_sent=... waits=...
 *     to_kernel messages_sent=... waits=...
 *
 * The module is one side of every channel, so it can only show that side's
 * counters: for to_user the sender's (messages_sent, rejected, queue_full,
 * pool_transfers, copy_fallbacks, notify_*, waits, notify_coalesced), for
 * to_kernel the receiver's (messages_received, bytes_received, ring_hwm,
 * pool_transfers, notify_sent for space signals, waits, timed_waits). Counters only the user side keeps
 * print as 0. ring_used, ring_size, pool_in_use and pool_size are computed
 * from the shared indices as in Swift.
 *
 * Every counter here is read racily: each is written by one side under its
 * lock with WRITE_ONCE and read here with READ_ONCE, never torn on 64-bit,
 * but the report is not a snapshot (messages_received can briefly pass a
 * messages_sent read a moment earlier). That is fine for monitoring and
 * keeps the hot path free of any lock the reader would take.
 */
#include <linux/minmax.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include "archangel.h"

static struct proc_dir_entry *ach_proc_dir;

/* Racy by design (see above): a 64-bit word read once. */
#define ach_racy(x)	READ_ONCE(x)

static u64 ach_ring_used(const struct ach_ring_words *w)
{
	u64 consumer = ach_racy(*w->kconsumer);
	u64 producer = ach_racy(*w->kproducer);

	return min(producer - consumer, w->size);
}

struct ach_dir_figures {
	const struct ach_stats *st;
	const struct ach_ring_words *lane[2];
	u64 ring_hwm;
	u64 pool_in_use;
	u64 pool_size;
	bool sender;		/* the kernel sends this direction */
};

static void ach_show_dir(struct seq_file *m, const char *name,
			 const struct ach_dir_figures *f)
{
	const struct ach_stats *st = f->st;

	seq_printf(m, "  %s messages_sent=%llu bytes_sent=%llu messages_received=%llu bytes_received=%llu",
		   name,
		   f->sender ? ach_racy(st->messages_sent) : 0,
		   f->sender ? ach_racy(st->bytes_sent) : 0,
		   f->sender ? 0 : ach_racy(st->messages_received),
		   f->sender ? 0 : ach_racy(st->bytes_received));
	seq_printf(m, " rejected=%llu errors=%llu queue_full=%llu ring_used=%llu ring_size=%llu ring_hwm=%llu",
		   ach_racy(st->rejected), ach_racy(st->errors),
		   ach_racy(st->queue_full),
		   ach_ring_used(f->lane[0]) + ach_ring_used(f->lane[1]),
		   f->lane[0]->size + f->lane[1]->size, f->ring_hwm);
	seq_printf(m, " pool_transfers=%llu copy_fallbacks=%llu pool_in_use=%llu pool_size=%llu notify_sent=%llu notify_suppressed=%llu waits=%llu",
		   ach_racy(st->pool_transfers), ach_racy(st->copy_fallbacks),
		   f->pool_in_use, f->pool_size, ach_racy(st->notify_sent),
		   ach_racy(st->notify_suppressed), ach_racy(st->waits));
	seq_printf(m, " notify_coalesced=%llu timed_waits=%llu\n",
		   f->sender ? ach_racy(st->notify_coalesced) : 0,
		   f->sender ? 0 : ach_racy(st->timed_waits));
}

static void ach_show_channel(struct seq_file *m, struct ach_channel *ch)
{
	const struct ach_lender *l = &ch->tx.pool;
	struct ach_dir_figures f;
	u64 lent, pending;

	seq_printf(m, "channel %u %s\n", ch->id,
		   ach_racy(ch->failed) ? "failed" : "active");

	f.st = &ch->tx.st;
	f.lane[0] = &ch->tx.lane[ACH_NORMAL].w;
	f.lane[1] = &ch->tx.lane[ACH_EXPRESS].w;
	f.ring_hwm = 0;		/* the user side's receiver measures it */
	lent = l->count - ach_racy(l->free_count);
	pending = ach_ring_used(&l->returns.w);
	f.pool_in_use = lent > pending ? lent - pending : 0;
	f.pool_size = l->count;
	f.sender = true;
	ach_show_dir(m, "to_user", &f);

	f.st = &ch->rx.st;
	f.lane[0] = &ch->rx.lane[ACH_NORMAL].w;
	f.lane[1] = &ch->rx.lane[ACH_EXPRESS].w;
	f.ring_hwm = max(ach_racy(ch->rx.lane[ACH_NORMAL].high_water),
			 ach_racy(ch->rx.lane[ACH_EXPRESS].high_water));
	f.pool_in_use = 0;	/* the kernel returns buffers as it reads */
	f.pool_size = ch->rx.pool.count;
	f.sender = false;
	ach_show_dir(m, "to_kernel", &f);
}

static int ach_comm_show(struct seq_file *m, void *v)
{
	struct ach_channel **chs;
	unsigned int n, i;

	chs = kcalloc(ach_max_channels, sizeof(*chs), GFP_KERNEL);
	if (!chs)
		return -ENOMEM;
	n = ach_channel_snapshot(chs, ach_max_channels);
	seq_puts(m, "archangel-comm 1\n");
	seq_printf(m, "channels %u/%u\n", n, ach_max_channels);
	for (i = 0; i < n; i++) {
		ach_show_channel(m, chs[i]);
		ach_channel_put(chs[i]);
	}
	kfree(chs);
	return 0;
}

static int ach_pool_show(struct seq_file *m, void *v)
{
	u64 dma_regions, dma_bytes, page_regions, page_bytes, dma_failures;
	struct ach_channel **chs;
	unsigned int n, i;

	ach_pool_stats(&dma_regions, &dma_bytes, &page_regions, &page_bytes,
		       &dma_failures);
	seq_printf(m, "dma_regions %llu\ndma_bytes %llu\npage_regions %llu\npage_bytes %llu\ndma_failures %llu\n",
		   dma_regions, dma_bytes, page_regions, page_bytes,
		   dma_failures);
	seq_printf(m, "live_channels %d\nlive_memories %d\nlive_shared %d\n",
		   atomic_read(&ach_live_channels), atomic_read(&ach_live_mems),
		   atomic_read(&ach_live_shms));
	chs = kcalloc(ach_max_channels, sizeof(*chs), GFP_KERNEL);
	if (!chs)
		return -ENOMEM;
	n = ach_channel_snapshot(chs, ach_max_channels);
	for (i = 0; i < n; i++) {
		const struct ach_mem *mem = chs[i]->mem;

		seq_printf(m, "channel %u to_user %s to_kernel %s\n", chs[i]->id,
			   !mem->pool[ACH_TO_USER].vaddr ? "none" :
			   mem->pool[ACH_TO_USER].is_dma ? "dma" : "pages",
			   !mem->pool[ACH_TO_KERNEL].vaddr ? "none" :
			   mem->pool[ACH_TO_KERNEL].is_dma ? "dma" : "pages");
		ach_channel_put(chs[i]);
	}
	kfree(chs);
	return 0;
}

int ach_proc_init(void)
{
	ach_proc_dir = proc_mkdir("archangel", NULL);
	if (!ach_proc_dir)
		return -ENOMEM;
	if (!proc_create_single("comm", 0444, ach_proc_dir, ach_comm_show) ||
	    !proc_create_single("pool", 0444, ach_proc_dir, ach_pool_show)) {
		proc_remove(ach_proc_dir);
		return -ENOMEM;
	}
	return 0;
}

void ach_proc_exit(void)
{
	proc_remove(ach_proc_dir);
}
