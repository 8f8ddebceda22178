// SPDX-License-Identifier: GPL-2.0
/*
 * Messages on a channel: the kernel's sender of to_user
 * and receiver of to_kernel, with lanes, the pool, wake-ups and waits.
 *
 * Mirrors MessageSender.trySend and MessageReceiver.deliver in
 * Sources/ArchangelCore. Kernel senders may be many CPUs at once, in any
 * context: they are serialized by tx.lock (irqsave) and never sleep unless
 * they ask to wait. Kernel receivers are serialized by rx.lock.
 *
 * Errors: -EAGAIN would block, -EMSGSIZE too large, -EIO the channel failed
 * (user memory failed a check), -EPIPE the channel was destroyed, -EINTR a
 * signal, -ETIMEDOUT a timed wait ran out.
 */
#include <linux/eventfd.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include "archangel.h"

/* Signals one of the user's eventfds. Any context that may wake a task. */
static void ach_eventfd_signal(struct ach_channel *ch, bool data)
{
	struct eventfd_ctx *ctx;
	unsigned long flags;

	spin_lock_irqsave(&ch->efd_lock, flags);
	ctx = data ? ch->data_efd : ch->space_efd;
	if (ctx) {
#ifdef ACH_HAVE_EVENTFD_SIGNAL_NO_COUNT
		eventfd_signal(ctx);
#else
		eventfd_signal(ctx, 1);
#endif
	}
	spin_unlock_irqrestore(&ch->efd_lock, flags);
}

/* Starts the trailing-edge timer that a publication asked for. */
static void ach_arm_timer(struct ach_channel *ch)
{
	struct ach_tx *tx = &ch->tx;
	unsigned long flags;

	spin_lock_irqsave(&tx->lock, flags);
	if (tx->arm_at) {
		hrtimer_start(&tx->timer, ns_to_ktime(tx->arm_at),
			      HRTIMER_MODE_ABS);
		tx->arm_at = 0;
	}
	spin_unlock_irqrestore(&tx->lock, flags);
}

/* Does what @bits ask, now: process, softirq or hardirq context. */
static void ach_kick_now(struct ach_channel *ch, unsigned long bits)
{
	if (bits & ACH_KICK_ARM)
		ach_arm_timer(ch);
	if (bits & ACH_KICK_ALL) {
		wake_up_all(&ch->poll_wq);
		bits |= ACH_KICK_DATA | ACH_KICK_SPACE | ACH_KICK_KERNEL;
	}
	if (bits & ACH_KICK_KERNEL) {
		wake_up_all(&ch->data_wq);
		wake_up_all(&ch->space_wq);
	}
	if (bits & ACH_KICK_DATA)
		ach_eventfd_signal(ch, true);
	if (bits & ACH_KICK_SPACE)
		ach_eventfd_signal(ch, false);
	/*
	 * Cleared before the wake-up: a poller that arms after the clear
	 * queued itself before arming, so this wake-up or the next finds it.
	 */
	if (bits & ACH_KICK_POLLIN) {
		WRITE_ONCE(ch->poll_in, false);
		wake_up_interruptible_poll(&ch->poll_wq, EPOLLIN | EPOLLRDNORM);
	}
	if (bits & ACH_KICK_POLLOUT) {
		WRITE_ONCE(ch->poll_out, false);
		wake_up_interruptible_poll(&ch->poll_wq, EPOLLOUT | EPOLLWRNORM);
	}
}

/* ch->kick: the deferred half of ach_kick(), in hardirq context. */
void ach_kick_work(struct irq_work *work)
{
	struct ach_channel *ch = container_of(work, struct ach_channel, kick);

	ach_kick_now(ch, atomic_long_xchg(&ch->kick_bits, 0));
}

/*
 * Wakes what @bits name. A wake-up takes the eventfd's and the woken task's
 * locks, and eventfd_signal() refuses to nest (current->in_eventfd, a
 * WARN_ON_ONCE in 6.1 and 6.12): sound in process context, softirq and
 * hardirq, but not from a tracepoint probe that runs inside the scheduler
 * (rq lock held) or inside a wake-up. The API cannot tell those apart from
 * any other caller with preemption disabled, so a caller that is not
 * preemptible defers to ch->kick, an irq_work (NMI-safe to queue; it runs
 * from the self-IPI once interrupts are enabled, where neither hazard
 * exists: in_eventfd is only set with interrupts off). Cost: one self-IPI
 * per burst of kicks, a few microseconds later than a direct call.
 */
void ach_kick(struct ach_channel *ch, unsigned long bits)
{
	if (!bits)
		return;
	if (preemptible()) {
		ach_kick_now(ch, bits);
		return;
	}
	/*
	 * The or is ordered before irq_work_queue()'s fully ordered claim;
	 * the work clears its pending bit (fully ordered) before its xchg,
	 * so a claim that fails because the work is pending is seen by it.
	 */
	atomic_long_or(bits, &ch->kick_bits);
	irq_work_queue(&ch->kick);
}

void ach_signal_user(struct ach_channel *ch, bool data)
{
	ach_kick(ch, data ? ACH_KICK_DATA : ACH_KICK_SPACE);
}

/*
 * tx.timer: the trailing edge (docs/efficiency.md). Runs in hardirq context,
 * where a wake-up is sound, so it signals directly; it never re-arms, so an
 * idle channel has no timer. It takes no lock and no reference: the free
 * cancels it first (ach_channel_free_work()).
 */
enum hrtimer_restart ach_trailing_edge(struct hrtimer *timer)
{
	struct ach_channel *ch = container_of(timer, struct ach_channel,
					      tx.timer);

	ach_kick_now(ch, ACH_KICK_DATA);
	return HRTIMER_NORESTART;
}

static int ach_state_error(struct ach_channel *ch)
{
	if (READ_ONCE(ch->dead))
		return -EPIPE;
	if (READ_ONCE(ch->failed))
		return -EIO;
	return 0;
}

/*
 * Hands back consumed to_kernel space now, with the (G) check of the user's
 * need_space words. Called before the kernel side sleeps for any reason, so
 * a user sender waiting for room is never left waiting on a kernel that
 * waits in turn (for to_user room, say).
 */
void ach_rx_release(struct ach_channel *ch)
{
	struct ach_rx *rx = &ch->rx;
	unsigned long flags;
	bool wake;

	spin_lock_irqsave(&rx->lock, flags);
	wake = ach_rcons_release(&rx->lane[ACH_EXPRESS]);
	wake |= ach_rcons_release(&rx->lane[ACH_NORMAL]);
	if (wake)
		ach_add(&rx->st.notify_sent, 1);
	spin_unlock_irqrestore(&rx->lock, flags);
	if (wake)
		ach_signal_user(ch, false);
}

/* ---------------------------------------------------------------------------
 * Sending (kernel -> user)
 */

/* The wake batch of the user's lanes: 0 means a quarter of the lane. */
static u64 ach_wake_batch(struct ach_channel *ch, struct ach_rprod *p)
{
	u32 batch = READ_ONCE(ch->wait.wake_batch);

	return batch ? min_t(u64, batch, p->w.size) : p->w.size / 4;
}

/*
 * Whether either lane holds more than the wake batch unread. A bad consumer
 * index fails the channel and counts as full, so the user is woken to see
 * the failure too. tx.lock held.
 */
static bool ach_lanes_past_batch(struct ach_channel *ch)
{
	struct ach_tx *tx = &ch->tx;
	int lane, r;

	for (lane = ACH_EXPRESS; lane >= ACH_NORMAL; lane--) {
		r = ach_rprod_unread_exceeds(&tx->lane[lane],
					     ach_wake_batch(ch, &tx->lane[lane]));
		if (r < 0) {
			ach_channel_fail(ch, &tx->st);
			return true;
		}
		if (r)
			return true;
	}
	return false;
}

/* The coalescer's budget: a signal goes out at @now. */
/*
 * tat stays within one window of now: signals sent whatever the budget
 * (urgent, a lane past the wake batch) would otherwise push it, and a normal
 * message's trailing edge with it, windows ahead (WakeCoalescer.signalled).
 */
static void ach_co_signalled(struct ach_coalescer *co, u64 w, u64 now)
{
	co->tat = min(max(co->tat, now) + (w - w / 10), now + w);
	co->paced_due = now + (w - w / 20);
}

/*
 * WakeCoalescer.decide: 0 signal now (the leading edge), 1 merged into the
 * pending trailing edge, or the time of a new trailing edge.
 */
static u64 ach_co_decide(struct ach_coalescer *co, u64 w, u64 now,
			 bool no_wakeup)
{
	u64 tol = w / 10, earliest, deadline;

	if (co->pending_until) {
		if (now < co->pending_until)
			return 1;
		co->pending_until = 0;
	}
	earliest = co->tat > tol ? co->tat - tol : 0;
	if (!no_wakeup && now >= earliest) {
		ach_co_signalled(co, w, now);
		return 0;
	}
	deadline = no_wakeup ? max(earliest, now + w) : earliest;
	co->pending_until = deadline;
	co->tat = max(co->tat, deadline) + (w - w / 10);
	return deadline;
}

/*
 * Publishes everything committed on both lanes, express first (the user
 * drains it first), and decides the wake-up by the rules of
 * docs/efficiency.md "The producer": urgent (ARCHANGEL_SEND_URGENT, or a
 * committed CRITICAL or urgent message) signals a new sleep on either lane's
 * word; otherwise only the normal lane's word counts (a receiver in timed
 * polling arms express only), signalled at the leading edge when the budget
 * allows, else at a trailing edge on tx.timer, at once when a lane holds
 * more than the wake batch. Without ARCHANGEL_WAIT_ADAPTIVE every new sleep
 * is signalled at once. tx.lock held. Returns the ACH_KICK_* bits for the
 * caller to pass to ach_kick() once the lock is dropped.
 */
static unsigned long ach_publish_locked(struct ach_channel *ch, u32 sflags)
{
	struct ach_tx *tx = &ch->tx;
	struct ach_rprod *nl = &tx->lane[ACH_NORMAL];
	struct ach_rprod *el = &tx->lane[ACH_EXPRESS];
	bool urgent, adaptive, blocking, polling, full, eword_read;
	unsigned long bits = 0;
	u32 nword, eword;
	u64 w, now, at;
	bool any;

	any = ach_rprod_publish_index(el);
	any |= ach_rprod_publish_index(nl);
	if (!any)
		return 0;
	tx->batch_ts = 0;
	urgent = tx->pending_urgent || (sflags & ARCHANGEL_SEND_URGENT);
	tx->pending_urgent = false;
	/*
	 * (E), matches (F): order the index stores before the flag loads, so
	 * a consumer going to sleep either sees our indices or we see its flag.
	 */
	smp_mb();
	if (READ_ONCE(ch->poll_in) &&
	    /* The (E) fence above orders this too; see ach_poll(). */
	    waitqueue_active(&ch->poll_wq))
		bits |= ACH_KICK_POLLIN;
	adaptive = READ_ONCE(ch->wait.flags) & ARCHANGEL_WAIT_ADAPTIVE;
	w = READ_ONCE(ch->wait.max_delay_ns);
	nword = READ_ONCE(*nl->w.kneed_wakeup);
	blocking = ach_need_is_new(nword, nl->last_woken);
	eword_read = false;
	if (blocking && !urgent && adaptive) {
		/* Read once: reused below when this is no paced poll. */
		eword = READ_ONCE(*el->w.kneed_wakeup);
		eword_read = true;
		if (!(eword & ARCHANGEL_RING_NEED_WAKEUP)) {
			/*
			 * Only the normal lane armed: a paced poll, whose
			 * receiver looks again by itself within its window.
			 * The leading edge only, at most one per 19/20 of a
			 * window (WakeCoalescer.pacedLeadingEdge); no timer.
			 */
			now = ktime_get_ns();
			if (now < tx->co.paced_due && !ach_lanes_past_batch(ch))
				goto suppressed;
			nl->last_woken = nword;
			ach_co_signalled(&tx->co, w, now);
			goto signal;
		}
	}
	full = !blocking && !urgent && adaptive && ach_lanes_past_batch(ch);
	if (!blocking && !urgent && !full && adaptive)
		goto suppressed;
	if (!eword_read)
		eword = READ_ONCE(*el->w.kneed_wakeup);
	polling = ach_need_is_new(eword, el->last_woken);
	if (!blocking && !polling) {
		/*
		 * A sleep already covered by a pending trailing edge, and a
		 * lane past the wake batch: bring the edge forward, so a burst
		 * never fills the ring behind a sleeping receiver. A timer
		 * already started is left alone (cancelling takes the clock
		 * base's lock, which a probe may hold): it costs one spurious
		 * wake-up at most.
		 */
		if (full && (tx->arm_at || hrtimer_is_queued(&tx->timer))) {
			tx->arm_at = 0;
			tx->co.pending_until = 0;
			ach_co_signalled(&tx->co, w, ktime_get_ns());
			/* Counted in notify_sent when it was scheduled. */
			return bits | ACH_KICK_DATA;
		}
		goto suppressed;
	}
	/* Whatever happens next covers this sleep: a signal now or the timer. */
	if (blocking)
		nl->last_woken = nword;
	if (polling)
		el->last_woken = eword;
	if (!adaptive)
		goto signal;
	now = ktime_get_ns();
	if (urgent || full) {
		ach_co_signalled(&tx->co, w, now);
		goto signal;
	}
	if (ach_lanes_past_batch(ch)) {
		ach_co_signalled(&tx->co, w, now);
		goto signal;
	}
	at = ach_co_decide(&tx->co, w, now, sflags & ARCHANGEL_SEND_NO_WAKEUP);
	if (!at)
		goto signal;
	ach_add(&tx->st.notify_coalesced, 1);
	if (at == 1)
		return bits;
	/*
	 * A timer still queued (or asked for) here is past its time
	 * (pending_until expired), or was left by a wake-batch signal: either
	 * way it fires within a window of now and covers this sleep too,
	 * while re-arming it would push an earlier sleep's signal later. No
	 * deferral is pending after it, so later sleeps are not merged.
	 */
	if (tx->arm_at || hrtimer_is_queued(&tx->timer)) {
		tx->co.pending_until = 0;
		return bits;
	}
	ach_add(&tx->st.notify_sent, 1);
	/* Started by ach_kick(): directly, or from the irq_work. */
	tx->arm_at = at;
	return bits | ACH_KICK_ARM;

signal:
	ach_add(&tx->st.notify_sent, 1);
	return bits | ACH_KICK_DATA;
suppressed:
	ach_add(&tx->st.notify_suppressed, 1);
	return bits;
}

/* Publishes messages sent with @publish false. Any context. */
void ach_publish(struct ach_channel *ch, u32 sflags)
{
	unsigned long flags, bits;

	spin_lock_irqsave(&ch->tx.lock, flags);
	bits = ach_publish_locked(ch, sflags);
	spin_unlock_irqrestore(&ch->tx.lock, flags);
	ach_kick(ch, bits);
}

/*
 * Sends one message without sleeping; any context. Payloads above the pool
 * threshold travel through the pool, or are copied inline when the pool is
 * short (counted in copy_fallbacks). With @publish false the message is
 * committed but published by a later send or ach_publish(), so a batch
 * costs one (E) fence. Returns 0, -EAGAIN (with @block saying what to wait
 * for), -EMSGSIZE, -EINVAL, -EIO or -EPIPE.
 */
int ach_send(struct ach_channel *ch, u8 type, u8 priority, const void *data,
	     u32 size, const u64 *correlation, u32 sflags, bool count_full,
	     bool publish, struct ach_block *block)
{
	struct ach_tx *tx = &ch->tx;
	struct ach_lender *pool = &tx->pool;
	int lane = priority >= ARCHANGEL_PRIORITY_HIGH ? ACH_EXPRESS : ACH_NORMAL;
	struct ach_rprod *p = &tx->lane[lane];
	u32 extra = correlation ? ARCHANGEL_CORRELATION_SIZE : 0;
	u16 mflags = correlation ? ARCHANGEL_MSG_F_CORRELATED : 0;
	struct archangel_msg_header h;
	unsigned long flags, bits = 0;
	bool via_pool = false;
	u32 segs = 0, body, length, i, off;
	u8 *rec, *cursor;
	int err;

	if (type < ARCHANGEL_MSG_TYPE_MIN || type > ARCHANGEL_MSG_TYPE_MAX ||
	    priority > ARCHANGEL_PRIORITY_MAX)
		return -EINVAL;
	spin_lock_irqsave(&tx->lock, flags);
	err = ach_state_error(ch);
	if (err)
		goto out_unlock;
	if (size > tx->max_payload) {
		ach_add(&tx->st.rejected, 1);
		err = -EMSGSIZE;
		goto out_unlock;
	}
	if (size > pool->threshold && pool->count) {
		segs = DIV_ROUND_UP(size, pool->buffer_size);
		/* More segments than a message may span: it fits inline. */
		if (segs <= pool->max_segments) {
			if (pool->free_count < segs) {
				err = ach_lender_reclaim(pool);
				if (err)
					goto out_fail;
			}
			if (pool->free_count >= segs) {
				via_pool = true;
			} else if (ARCHANGEL_MSG_HEADER_SIZE + extra + size <=
				   p->max_record) {
				mflags |= ARCHANGEL_MSG_F_COPIED;
			} else {
				if (count_full)
					ach_add(&tx->st.queue_full, 1);
				block->lane = -1;
				err = -EAGAIN;
				goto out_unlock;
			}
		}
	}
	body = via_pool ? segs * sizeof(struct archangel_pool_desc) : size;
	length = ARCHANGEL_MSG_HEADER_SIZE + extra + body;
	if (length > p->max_record) {
		ach_add(&tx->st.rejected, 1);
		err = -EMSGSIZE;
		goto out_unlock;
	}
	err = ach_rprod_reserve(p, length, (void **)&rec);
	if (err == -EAGAIN) {
		/* Cold path: check the other lane's consumer index too. */
		if (ach_rprod_refresh(&tx->lane[lane ^ 1]))
			goto out_fail;
		if (count_full)
			ach_add(&tx->st.queue_full, 1);
		block->lane = lane;
		block->length = length;
		goto out_unlock;
	}
	if (err)
		goto out_fail;

	cursor = rec + ARCHANGEL_MSG_HEADER_SIZE;
	if (correlation) {
		memcpy(cursor, correlation, ARCHANGEL_CORRELATION_SIZE);
		cursor += ARCHANGEL_CORRELATION_SIZE;
	}
	if (via_pool) {
		mflags |= ARCHANGEL_MSG_F_DMA;
		for (i = 0, off = 0; i < segs; i++) {
			struct archangel_pool_desc d = { 0 };

			d.buffer = ach_lender_take(pool);
			d.length = min(pool->buffer_size, size - off);
			memcpy(pool->buffers + (size_t)d.buffer * pool->buffer_size,
			       (const u8 *)data + off, d.length);
			memcpy(cursor + i * sizeof(d), &d, sizeof(d));
			off += d.length;
		}
		ach_add(&tx->st.pool_transfers, 1);
	} else {
		if (size)
			memcpy(cursor, data, size);
		if (mflags & ARCHANGEL_MSG_F_COPIED)
			ach_add(&tx->st.copy_fallbacks, 1);
	}
	h.magic = ARCHANGEL_MSG_MAGIC;
	h.type = type;
	h.priority = priority;
	h.flags = mflags;
	h.size = length;
	h.sequence = ++tx->sequence;
	/* One clock read per publication, as the Swift sender does. */
	if (!tx->batch_ts)
		tx->batch_ts = ktime_get_ns();
	h.timestamp = tx->batch_ts;
	memcpy(rec, &h, sizeof(h));
	ach_rprod_commit(p, length);
	ach_add(&tx->st.messages_sent, 1);
	ach_add(&tx->st.bytes_sent, size);
	if (priority == ARCHANGEL_PRIORITY_CRITICAL ||
	    (sflags & ARCHANGEL_SEND_URGENT))
		tx->pending_urgent = true;
	if (publish)
		bits = ach_publish_locked(ch, sflags);
	goto out_unlock;

out_fail:
	ach_channel_fail(ch, &tx->st);
	err = -EIO;
out_unlock:
	spin_unlock_irqrestore(&tx->lock, flags);
	/* Outside tx.lock, so that a preemptible sender wakes directly. */
	ach_kick(ch, bits);
	return err;
}

/*
 * Announces a wait for what @block needs (need_space on the lane, or
 * need_wakeup on the return ring for pool buffers), re-checks, and sleeps
 * on space_wq until the user side signals (ARCHANGEL_IOC_NOTIFY), the
 * channel dies, or @timeout jiffies pass. Returns the time left (0: timed
 * out) or -EINTR, -EIO, -EPIPE.
 */
long ach_send_wait(struct ach_channel *ch, const struct ach_block *block,
		   long timeout, bool interruptible)
{
	struct ach_tx *tx = &ch->tx;
	struct ach_need *need;
	unsigned long flags;
	DEFINE_WAIT(wait);
	int ready;

	ach_rx_release(ch);
	/* Never sleep on records the user cannot see yet. */
	ach_publish(ch, 0);
	prepare_to_wait(&ch->space_wq, &wait,
			interruptible ? TASK_INTERRUPTIBLE : TASK_UNINTERRUPTIBLE);
	spin_lock_irqsave(&tx->lock, flags);
	if (block->lane >= 0) {
		need = &tx->lane[block->lane].need_space;
		ach_need_raise(need);
		/* (H) inside, matches (G). */
		ready = ach_rprod_room(&tx->lane[block->lane], block->length);
	} else {
		need = &tx->pool.returns.need_wakeup;
		ach_need_raise(need);
		/* (F), matches (E) of the user's return publication. */
		smp_mb();
		ready = ach_icons_pending(&tx->pool.returns);
	}
	if (ready < 0)
		ach_channel_fail(ch, &tx->st);
	else if (!ready)
		ach_add(&tx->st.waits, 1);
	spin_unlock_irqrestore(&tx->lock, flags);

	if (!ready && !ach_state_error(ch) &&
	    !(interruptible && signal_pending(current)))
		timeout = schedule_timeout(timeout);
	finish_wait(&ch->space_wq, &wait);

	spin_lock_irqsave(&tx->lock, flags);
	ach_need_lower(need);
	spin_unlock_irqrestore(&tx->lock, flags);

	if (ach_state_error(ch))
		return ach_state_error(ch);
	if (interruptible && signal_pending(current))
		return -EINTR;
	return timeout;
}

/* Whether a blocking call may still poll before it sleeps. */
static bool ach_may_spin(u64 *deadline, u64 budget_ns)
{
	u64 now;

	/* With one CPU the peer cannot run while we poll: sleep at once. */
	if (num_online_cpus() == 1 || !budget_ns)
		return false;
	now = ktime_get_ns();
	if (!*deadline)
		*deadline = now + budget_ns;
	if (now >= *deadline || need_resched())
		return false;
	cpu_relax();
	return true;
}

/*
 * ach_send(), waiting up to @timeout jiffies for room (MAX_SCHEDULE_TIMEOUT:
 * forever; 0: not at all, -EAGAIN). A wait polls for spin_us microseconds,
 * then sleeps; one that runs out is -ETIMEDOUT. queue_full counts once per
 * call. Process context when @timeout != 0.
 */
int ach_send_timeout(struct ach_channel *ch, u8 type, u8 priority,
		     const void *data, u32 size, const u64 *correlation,
		     u32 sflags, bool publish, long timeout, bool interruptible)
{
	struct ach_block block;
	bool first = true;
	bool expired = false;
	long left = timeout;
	u64 spin = 0;
	int err;

	for (;;) {
		err = ach_send(ch, type, priority, data, size, correlation,
			       sflags, first, publish, &block);
		if (err != -EAGAIN)
			return err;
		if (!timeout)
			return -EAGAIN;
		if (expired)
			return -ETIMEDOUT;
		if (first)
			ach_publish(ch, sflags);
		first = false;
		if (ach_may_spin(&spin,
				 (u64)READ_ONCE(ach_spin_us) * NSEC_PER_USEC))
			continue;
		left = ach_send_wait(ch, &block, left, interruptible);
		if (left < 0)
			return left;
		expired = left == 0;
	}
}

/* ---------------------------------------------------------------------------
 * Receiving (user -> kernel)
 */

/* Reads and checks a DMA record's descriptors once each: 0 or -EPROTO. */
static int ach_borrow(struct ach_borrower *b, const u8 *desc, u32 len,
		      u32 *nsegs, u64 *total)
{
	u32 n = len / sizeof(struct archangel_pool_desc);
	u32 i, j;

	if (!b->count || len % sizeof(struct archangel_pool_desc) || n < 1 ||
	    n > b->max_segments)
		return -EPROTO;
	*total = 0;
	for (i = 0; i < n; i++) {
		struct archangel_pool_desc d;

		memcpy(&d, desc + i * sizeof(d), sizeof(d));
		/* One fetch: only the copy is checked and used, never re-read. */
		barrier();
		if (d.reserved || d.buffer >= b->count ||
		    d.offset > b->buffer_size ||
		    d.length > b->buffer_size - d.offset ||
		    test_bit(d.buffer, b->held)) {
			for (j = 0; j < i; j++)
				__clear_bit(b->seg_buf[j], b->held);
			return -EPROTO;
		}
		__set_bit(d.buffer, b->held);
		b->seg_buf[i] = d.buffer;
		b->seg_off[i] = d.offset;
		b->seg_len[i] = d.length;
		*total += d.length;
	}
	*nsegs = n;
	return 0;
}

/*
 * Hands a pool message's buffers back: stage the entries and the intent,
 * publish the consumer index, then the returns (docs/recovery.md). Returns
 * true when the user side should be signalled for space, or -EPROTO.
 */
static int ach_give_back(struct ach_rx *rx, int lane,
			 const struct ach_record *r, u32 n)
{
	struct ach_borrower *b = &rx->pool;
	struct ach_rcons *c = &rx->lane[lane];
	u64 intent;
	bool wake;
	u32 i;
	int err;

	for (i = 0; i < n; i++) {
		__clear_bit(b->seg_buf[i], b->held);
		err = ach_iprod_push(&b->returns, b->seg_buf[i]);
		/* The ring holds every buffer: full means a broken consumer. */
		if (err)
			return -EPROTO;
	}
	intent = ARCHANGEL_RETURN_INTENT(c->consumer + r->stride,
					 lane == ACH_EXPRESS,
					 b->returns.producer);
	/* Entries are written before the intent a successor reads. */
	smp_store_release(b->kintent, intent);
	wake = ach_rcons_advance(c, r);
	wake |= ach_iprod_publish(&b->returns);
	return wake;
}

/*
 * Receives one message without sleeping, express lane first; any context.
 * Copies the payload into @buf (NULL: drops it) and returns its length,
 * -EAGAIN when both lanes are empty, -EMSGSIZE (message left queued) when
 * it exceeds @max_size, -EIO or -EPIPE.
 */
int ach_recv(struct ach_channel *ch, struct ach_msg *msg, void *buf,
	     u32 max_size)
{
	struct ach_rx *rx = &ch->rx;
	struct ach_borrower *b = &rx->pool;
	unsigned long flags, bits = 0;
	struct ach_record r;
	int lane, ret, wake;
	u64 released;
	u64 total;
	u32 n, i;
	u8 *out = buf;

	spin_lock_irqsave(&rx->lock, flags);
	ret = ach_state_error(ch);
	if (ret)
		goto out_unlock;
	released = rx->lane[ACH_NORMAL].released + rx->lane[ACH_EXPRESS].released;
	for (lane = ACH_EXPRESS; lane >= ACH_NORMAL; lane--) {
		ret = ach_rcons_peek(&rx->lane[lane], &r);
		if (ret)
			break;
	}
	if (ret < 0)
		goto out_fail;
	if (!ret) {
		/* Empty: hand back consumed space now, not a batch later. */
		wake = ach_rcons_release(&rx->lane[ACH_EXPRESS]);
		wake |= ach_rcons_release(&rx->lane[ACH_NORMAL]);
		ret = -EAGAIN;
		goto out_wake;
	}

	if (r.hdr.flags & ARCHANGEL_MSG_F_DMA) {
		if (ach_borrow(b, rx->lane[lane].w.data + r.payload_pos,
			       r.payload_len, &n, &total))
			goto out_fail;
		if (total > max_size) {
			for (i = 0; i < n; i++)
				__clear_bit(b->seg_buf[i], b->held);
			ret = -EMSGSIZE;
			goto out_unlock;
		}
		for (i = 0; out && i < n; i++) {
			memcpy(out, b->buffers +
			       (size_t)b->seg_buf[i] * b->buffer_size +
			       b->seg_off[i], b->seg_len[i]);
			out += b->seg_len[i];
		}
		wake = ach_give_back(rx, lane, &r, n);
		if (wake < 0)
			goto out_fail;
		ach_add(&rx->st.pool_transfers, 1);
	} else {
		total = r.payload_len;
		if (total > max_size) {
			ret = -EMSGSIZE;
			goto out_unlock;
		}
		if (out)
			memcpy(out, rx->lane[lane].w.data + r.payload_pos,
			       total);
		wake = ach_rcons_advance(&rx->lane[lane], &r);
	}
	if (msg) {
		msg->type = r.hdr.type;
		msg->priority = r.hdr.priority;
		msg->flags = r.hdr.flags;
		msg->sequence = r.hdr.sequence;
		msg->timestamp = r.hdr.timestamp;
		msg->correlation = r.correlation;
	}
	ach_add(&rx->st.messages_received, 1);
	ach_add(&rx->st.bytes_received, total);
	ret = total;

out_wake:
	if (wake) {
		ach_add(&rx->st.notify_sent, 1);
		bits |= ACH_KICK_SPACE;
	}
	/* Room for poll() appears at a release, after its (G) fence. */
	released -= rx->lane[ACH_NORMAL].released +
		    rx->lane[ACH_EXPRESS].released;
	if (released && READ_ONCE(ch->poll_out) &&
	    /* (G) orders waitqueue_active(); matches smp_mb() in ach_poll(). */
	    waitqueue_active(&ch->poll_wq))
		bits |= ACH_KICK_POLLOUT;
	goto out_unlock;

out_fail:
	ach_channel_fail(ch, &rx->st);
	ret = -EIO;
out_unlock:
	spin_unlock_irqrestore(&rx->lock, flags);
	ach_kick(ch, bits);
	return ret;
}

/*
 * Announces a sleep, re-checks, and sleeps on data_wq until the user side
 * signals (ARCHANGEL_IOC_NOTIFY), the channel dies, or the wait ends.
 * Blocking (@until_ns 0): both to_kernel lanes' words are armed and the
 * sleep lasts up to @timeout jiffies; counted in waits. Timed poll: only the
 * express word is armed ("I look again by myself; wake me only for an
 * urgent message") and the sleep is an hrtimer sleep up to @until_ns
 * (CLOCK_MONOTONIC); counted in timed_waits. Returns the jiffies left (0:
 * timed out; a timed poll returns @timeout unless woken by a signal) or
 * -EINTR, -EIO, -EPIPE.
 */
static long ach_recv_sleep(struct ach_channel *ch, long timeout,
			   u64 until_ns, u64 slack_ns, bool interruptible)
{
	struct ach_rx *rx = &ch->rx;
	bool timed = until_ns != 0;
	unsigned long flags;
	DEFINE_WAIT(wait);
	int ready, more;
	ktime_t until;
	bool wake;

	/* Never sleep on records the user cannot see yet. */
	ach_publish(ch, 0);
	prepare_to_wait(&ch->data_wq, &wait,
			interruptible ? TASK_INTERRUPTIBLE : TASK_UNINTERRUPTIBLE);
	spin_lock_irqsave(&rx->lock, flags);
	wake = ach_rcons_release(&rx->lane[ACH_EXPRESS]);
	wake |= ach_rcons_release(&rx->lane[ACH_NORMAL]);
	if (wake)
		ach_add(&rx->st.notify_sent, 1);
	ach_need_raise(&rx->lane[ACH_EXPRESS].need_wakeup);
	if (!timed)
		ach_need_raise(&rx->lane[ACH_NORMAL].need_wakeup);
	/* (F), matches (E): our flags are visible before we re-read. */
	smp_mb();
	ready = ach_rcons_has_data(&rx->lane[ACH_EXPRESS]);
	more = ach_rcons_has_data(&rx->lane[ACH_NORMAL]);
	if (ready < 0 || more < 0)
		ach_channel_fail(ch, &rx->st);
	else if (!ready && !more)
		ach_add(timed ? &rx->st.timed_waits : &rx->st.waits, 1);
	ready = ready || more;
	spin_unlock_irqrestore(&rx->lock, flags);
	if (wake)
		ach_signal_user(ch, false);

	if (!ready && !ach_state_error(ch) &&
	    !(interruptible && signal_pending(current))) {
		if (timed) {
			until = ns_to_ktime(until_ns);
			schedule_hrtimeout_range(&until, slack_ns,
						 HRTIMER_MODE_ABS);
		} else {
			timeout = schedule_timeout(timeout);
		}
	}
	finish_wait(&ch->data_wq, &wait);

	spin_lock_irqsave(&rx->lock, flags);
	ach_need_lower(&rx->lane[ACH_EXPRESS].need_wakeup);
	if (!timed)
		ach_need_lower(&rx->lane[ACH_NORMAL].need_wakeup);
	spin_unlock_irqrestore(&rx->lock, flags);

	if (ach_state_error(ch))
		return ach_state_error(ch);
	if (interruptible && signal_pending(current))
		return -EINTR;
	return timeout;
}

/* A blocking sleep on both to_kernel lanes (see ach_recv_sleep()). */
long ach_recv_wait(struct ach_channel *ch, long timeout, bool interruptible)
{
	return ach_recv_sleep(ch, timeout, 0, 0, interruptible);
}

/*
 * The ring ran empty at @now: updates the recent gap between messages
 * (time since the last empty ring that followed messages, divided by the
 * messages received since, smoothed by half) and returns it, 0 when
 * unknown. Reading the clock only at an empty ring keeps it off the
 * per-message path.
 */
static u64 ach_rx_note_empty(struct ach_channel *ch, u64 now)
{
	struct ach_rx *rx = &ch->rx;
	struct ach_rx_phase *ph = &rx->phase;
	unsigned long flags;
	u64 n, sample, gap;

	spin_lock_irqsave(&rx->lock, flags);
	n = rx->st.messages_received - ph->received_at;
	if (n) {
		if (ph->empty_at) {
			sample = div64_u64(now - ph->empty_at, n);
			ph->gap_ns = ph->gap_ns ? (ph->gap_ns + sample) / 2 :
				     sample;
		}
		ph->empty_at = now;
		ph->received_at = rx->st.messages_received;
	}
	gap = ph->gap_ns;
	spin_unlock_irqrestore(&rx->lock, flags);
	return gap;
}

/*
 * ach_recv(), waiting up to @timeout jiffies; -ETIMEDOUT when it runs out.
 * The wait follows the channel's wait policy (docs/efficiency.md "The
 * consumer"). Without ARCHANGEL_WAIT_ADAPTIVE: poll spin_ns, then block.
 * Adaptive: spin only when the recent gap is shorter than spin_ns; block
 * with both words armed; after a wake-up, when the recent gap is at most
 * half the window, poll once per window instead (express word armed only,
 * so the user's non-urgent sends make no system call), back to blocking at
 * the first poll that finds nothing.
 */
int ach_recv_timeout(struct ach_channel *ch, struct ach_msg *msg, void *buf,
		     u32 max_size, long timeout, bool interruptible)
{
	struct ach_rx_phase *ph = &ch->rx.phase;
	bool adaptive, polled = false, expired = false, noted = false;
	u64 spin = 0, gap = 0, end = 0, w, spin_ns, now, until;
	long left = timeout;
	int ret;

	/* Timed polls sleep by the clock: the caller's deadline, 0: none. */
	if (timeout && timeout != MAX_SCHEDULE_TIMEOUT)
		end = ktime_get_ns() + jiffies_to_nsecs(timeout);

	for (;;) {
		ret = ach_recv(ch, msg, buf, max_size);
		if (ret != -EAGAIN)
			return ret;
		if (!timeout)
			return -EAGAIN;
		if (expired)
			return -ETIMEDOUT;
		adaptive = READ_ONCE(ch->wait.flags) & ARCHANGEL_WAIT_ADAPTIVE;
		w = READ_ONCE(ch->wait.max_delay_ns);
		spin_ns = READ_ONCE(ch->wait.spin_ns);
		if (!adaptive) {
			if (ach_may_spin(&spin, spin_ns))
				continue;
			left = ach_recv_wait(ch, left, interruptible);
			if (left < 0)
				return left;
			expired = left == 0;
			continue;
		}
		if (!noted) {
			gap = ach_rx_note_empty(ch, ktime_get_ns());
			noted = true;
		}
		if (gap && gap < spin_ns && ach_may_spin(&spin, spin_ns))
			continue;
		/* The first poll that found nothing ends timed polling. */
		if (polled)
			WRITE_ONCE(ph->polling, false);
		if (READ_ONCE(ph->polling)) {
			now = ktime_get_ns();
			/* Sleep at most the window, slack included. */
			until = now + w - w / 10;
			if (end && until > end)
				until = end;
			left = ach_recv_sleep(ch, left, until, w / 10,
					      interruptible);
			if (left < 0)
				return left;
			polled = true;
			if (end) {
				now = ktime_get_ns();
				expired = now >= end;
				left = expired ? 0 :
				       max_t(long, 1, nsecs_to_jiffies(end - now));
			}
			continue;
		}
		left = ach_recv_wait(ch, left, interruptible);
		if (left < 0)
			return left;
		expired = left == 0;
		/* Woken: poll from now on if messages come fast enough. */
		WRITE_ONCE(ph->polling, gap && gap <= w / 2);
		polled = false;
	}
}

/* ---------------------------------------------------------------------------
 * Recovery and poll
 */

/*
 * The user file is gone: complete a dead receiver's buffer return
 * (docs/recovery.md). The user's progress line (struct
 * archangel_receiver_progress at to_user.pool.return_intent) holds the
 * intent and each lane's delivered index. If the lane named by the intent
 * has delivered (or, for a receiver that keeps no delivered words, consumer)
 * index == the intent's, and the return ring's producer stops 1 to
 * max_segments entries short of the intent's, publish the intent's producer
 * value. Nobody else writes there until the next attach.
 */
void ach_recover_user_returns(struct ach_channel *ch)
{
	const struct archangel_pool_offsets *po = &ch->off.to_user.pool;
	const struct archangel_ring_offsets *lane;
	u8 *base = ch->mem->rings.vaddr;
	struct archangel_receiver_progress *prog;
	u64 intent, consumer, delivered, producer;
	unsigned long flags;
	u32 dist, want;
	bool express;

	if (!po->buffer_count)
		return;
	spin_lock_irqsave(&ch->tx.lock, flags);
	prog = (struct archangel_receiver_progress *)(base + po->return_intent);
	/* Pairs with the user's store-release of the intent. */
	intent = smp_load_acquire(&prog->return_intent);
	express = intent & ARCHANGEL_INTENT_EXPRESS;
	lane = express ? &ch->off.to_user.express : &ch->off.to_user.normal;
	/* Pairs with the user's store-release of its delivered index. */
	delivered = smp_load_acquire(&prog->delivered[express]);
	/* (B)-like, matches the user's (C) store of its consumer index. */
	consumer = smp_load_acquire((u64 *)(base + lane->consumer));
	producer = READ_ONCE(*(u64 *)(base + po->returns.producer));
	dist = (u32)(intent >> 32) - (u32)producer;
	want = (u32)intent & ~(u32)ARCHANGEL_INTENT_EXPRESS;
	if (((u32)delivered == want || (u32)consumer == want) &&
	    dist >= 1 && dist <= po->max_segments) {
		/* (A), matches (B) of our own return-ring drain. */
		smp_store_release((u64 *)(base + po->returns.producer),
				  producer + dist);
		wake_up_all(&ch->space_wq);
	}
	spin_unlock_irqrestore(&ch->tx.lock, flags);
}

/* Whether a lane of to_kernel has room for a smallest record (racy, poll). */
static bool ach_user_lane_room(struct ach_rcons *c)
{
	u64 used = READ_ONCE(*c->w.kproducer) - READ_ONCE(c->published);

	return used <= c->w.size - ARCHANGEL_RECORD_MIN;
}

__poll_t ach_poll_mask(struct ach_channel *ch)
{
	__poll_t mask = 0;

	if (READ_ONCE(ch->dead) || READ_ONCE(ch->failed))
		return EPOLLHUP | EPOLLERR;
	if (ach_rprod_unread(&ch->tx.lane[ACH_EXPRESS]) ||
	    ach_rprod_unread(&ch->tx.lane[ACH_NORMAL]))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (ach_user_lane_room(&ch->rx.lane[ACH_NORMAL]) &&
	    ach_user_lane_room(&ch->rx.lane[ACH_EXPRESS]))
		mask |= EPOLLOUT | EPOLLWRNORM;
	return mask;
}
