// SPDX-License-Identifier: GPL-2.0
/*
 * The verdict loop. A sensor that meets a case the cache does not know asks
 * (sn_ask): the request goes into the pending table (SN_PENDING_MAX slots,
 * sn_pend_lock), then an AI_REQUEST {id, deadline, default, event} goes to
 * the engine on the express lane, marked urgent. The "archangel_sensd"
 * kthread receives the AI_RESPONSEs through archangel's in-kernel receive
 * and resolves each pending request exactly once (sn_resolve), by:
 *   - its response: the verdict is applied and, with a TTL, cached;
 *   - its deadline: the request's default is applied (a timeout);
 *   - detach (engine's file closed, channel gone, module unload): every
 *     pending request gets its default at once;
 *   - no slot, or the request could not be sent: its default, at once.
 * The thread wakes at least every SN_TICK_MS, and earlier for the nearest
 * deadline, so nothing waits longer than its deadline plus a tick.
 */
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include "archangel_comm.h"
#include "sensors.h"

#define SN_PENDING_MAX	256
#define SN_TICK_MS	100

static struct sn_pending sn_pend[SN_PENDING_MAX];
static unsigned int sn_npend;
static DEFINE_SPINLOCK(sn_pend_lock);
static atomic64_t sn_next_id = ATOMIC64_INIT(0);

static struct task_struct *sn_thread;
static DECLARE_WAIT_QUEUE_HEAD(sn_thread_wq);

unsigned int sn_pending_count(void)
{
	return READ_ONCE(sn_npend);
}

/* A new request of @sensor about @key: its id, times and default. */
void sn_pending_prepare(struct sn_pending *p, u8 sensor, u64 key)
{
	u32 ms = READ_ONCE(sn_cfg[sensor].deadline_ms);

	memset(p, 0, sizeof(*p));
	p->id = atomic64_inc_return(&sn_next_id);
	p->created_ns = ktime_get_ns();
	p->deadline_ns = p->created_ns + (u64)ms * NSEC_PER_MSEC;
	p->key = key;
	p->sensor = sensor;
	p->policy = READ_ONCE(sn_cfg[sensor].policy);
	p->def = READ_ONCE(sn_cfg[sensor].default_verdict);
}

static int sn_pending_add(const struct sn_pending *p)
{
	unsigned long flags;
	int i, err = -ENOSPC;

	spin_lock_irqsave(&sn_pend_lock, flags);
	if (sn_npend < SN_PENDING_MAX) {
		for (i = 0; i < SN_PENDING_MAX; i++) {
			if (!sn_pend[i].id) {
				sn_pend[i] = *p;
				WRITE_ONCE(sn_npend, sn_npend + 1);
				err = 0;
				break;
			}
		}
	}
	spin_unlock_irqrestore(&sn_pend_lock, flags);
	return err;
}

/* Takes request @id out of the table into *@out: true if it was there. */
static bool sn_pending_take(u64 id, struct sn_pending *out)
{
	unsigned long flags;
	bool found = false;
	int i;

	spin_lock_irqsave(&sn_pend_lock, flags);
	for (i = 0; i < SN_PENDING_MAX && sn_npend; i++) {
		if (sn_pend[i].id == id) {
			*out = sn_pend[i];
			sn_pend[i].id = 0;
			WRITE_ONCE(sn_npend, sn_npend - 1);
			found = true;
			break;
		}
	}
	spin_unlock_irqrestore(&sn_pend_lock, flags);
	return found;
}

/*
 * Takes the first request whose deadline is at or before @now (every
 * request with @all) into *@out; otherwise false and the nearest deadline
 * in *@next (U64_MAX: none).
 */
static bool sn_pending_take_due(u64 now, bool all, struct sn_pending *out,
				u64 *next)
{
	unsigned long flags;
	bool found = false;
	int i;

	*next = U64_MAX;
	spin_lock_irqsave(&sn_pend_lock, flags);
	for (i = 0; i < SN_PENDING_MAX && sn_npend; i++) {
		struct sn_pending *p = &sn_pend[i];

		if (!p->id)
			continue;
		if (all || p->deadline_ns <= now) {
			*out = *p;
			p->id = 0;
			WRITE_ONCE(sn_npend, sn_npend - 1);
			found = true;
			break;
		}
		*next = min(*next, p->deadline_ns);
	}
	spin_unlock_irqrestore(&sn_pend_lock, flags);
	return found;
}

/*
 * Applies @verdict to a request taken out of the table (or never put in),
 * caches it for @ttl_ms, and drops the task reference. Any context.
 */
void sn_resolve(struct sn_pending *p, u8 verdict, u32 ttl_ms,
		enum sn_why why)
{
	switch (verdict) {
	case ARCHANGEL_VERDICT_ALLOW:
		sn_inc(SN_VERDICT_ALLOW);
		break;
	case ARCHANGEL_VERDICT_DENY:
		sn_inc(SN_VERDICT_DENY);
		break;
	default:
		sn_inc(SN_VERDICT_KILL);
		break;
	}
	switch (why) {
	case SN_WHY_TIMEOUT:
		sn_inc(SN_TIMEOUTS);
		break;
	case SN_WHY_DETACH:
		sn_inc(SN_DETACH_RESOLVED);
		break;
	default:
		break;
	}
	if (ttl_ms)
		sn_cache_insert(p->sensor, p->key, verdict, ttl_ms);
	if (p->sensor == ARCHANGEL_SENSORS_ID_EXEC)
		sn_exec_apply(p, verdict);
	else
		sn_net_apply(p, verdict);
	if (why == SN_WHY_RESPONSE) {
		u64 rtt = ktime_get_ns() - p->created_ns;

		sn_inc(SN_RTT_COUNT);
		sn_add(SN_RTT_NS, rtt);
		sn_max(&sn_rtt_max, rtt);
	}
	put_pid(p->pid);
	p->pid = NULL;
}

/*
 * Asks the engine about @p: tracks it, then sends @req (filled here)
 * followed by @event_size bytes of event, which the caller put right
 * after it. 0: asked. Otherwise the request is resolved with its default
 * before returning: -ENOSPC (no slot; nothing was sent, the caller may
 * still report the event) or the send's error (the event counts as
 * dropped). The caller has already acted on the policy (SIGSTOP for hold):
 * a verdict may arrive before this returns.
 */
int sn_ask(struct sn_pending *p, struct archangel_sensor_request *req,
	   u16 kind, u32 event_size)
{
	struct sn_pending back;
	int err;

	req->id = p->id;
	req->deadline = p->deadline_ns;
	req->default_verdict = p->def;
	memset(req->pad, 0, sizeof(req->pad));
	req->event_size = event_size;
	err = sn_pending_add(p);
	if (err) {
		sn_inc(SN_PENDING_FULL);
		sn_resolve(p, p->def, 0, SN_WHY_NOW);
		return err;
	}
	err = sn_emit(kind, ARCHANGEL_MSG_AI_REQUEST, ARCHANGEL_PRIORITY_HIGH,
		      ARCHANGEL_SEND_URGENT, req, sizeof(*req) + event_size);
	if (!err) {
		sn_inc(SN_REQUESTS);
		return 0;
	}
	sn_inc(SN_REQUESTS_UNSENT);
	/* Not there any more: a deadline of a few ms already resolved it. */
	if (sn_pending_take(p->id, &back))
		sn_resolve(&back, back.def, 0, SN_WHY_NOW);
	return err;
}

/* Resolves every pending request with its default (detach, unload). */
void sn_pending_resolve_all(enum sn_why why)
{
	struct sn_pending p;
	u64 next;

	while (sn_pending_take_due(0, true, &p, &next))
		sn_resolve(&p, p.def, 0, why);
}

/* Resolves the requests past their deadline; the next deadline or U64_MAX. */
static u64 sn_pending_expire(void)
{
	struct sn_pending p;
	u64 next;

	while (sn_pending_take_due(ktime_get_ns(), false, &p, &next))
		sn_resolve(&p, p.def, 0, SN_WHY_TIMEOUT);
	return next;
}

static void sn_handle(const struct archangel_comm_msg *msg, const void *buf,
		      int len)
{
	const struct archangel_sensor_response *r = buf;
	struct sn_pending p;

	if (msg->type != ARCHANGEL_MSG_AI_RESPONSE || len != sizeof(*r) ||
	    r->pad[0] || r->pad[1] || r->pad[2] || r->reserved ||
	    r->verdict > ARCHANGEL_VERDICT_KILL) {
		sn_inc(SN_RESPONSES_BAD);
		return;
	}
	if (!sn_pending_take(r->id, &p)) {
		sn_inc(SN_RESPONSES_LATE);
		return;
	}
	sn_inc(SN_RESPONSES);
	sn_resolve(&p, r->verdict, r->ttl_ms, SN_WHY_RESPONSE);
}

static int sn_thread_main(void *unused)
{
	static u8 buf[64];
	u64 next_tick = 0;

	while (!kthread_should_stop()) {
		u32 ch = READ_ONCE(sn_channel);
		struct archangel_comm_msg msg = {};
		u64 now, next, period;
		long timeout;
		int ret;

		if (ch == SN_NO_CHANNEL) {
			wait_event_interruptible_timeout(sn_thread_wq,
							 READ_ONCE(sn_channel) != SN_NO_CHANNEL ||
							 kthread_should_stop(),
							 HZ);
			continue;
		}
		/* Destroyed, its id perhaps reused by another channel: detached. */
		if (!sn_channel_same(ch))
			continue;
		next = sn_pending_expire();
		now = ktime_get_ns();
		/* Batches on quiet CPUs: out within about batch_us. */
		period = sn_stage_period_ns() / 2;
		if (period) {
			sn_stage_flush(period);
			next = min(next, now + period);
		}
		if (now >= next_tick) {
			sn_lost_flush();
			sn_mem_flush();
			next_tick = now + SN_TICK_MS * NSEC_PER_MSEC;
		}
		next = min(next, next_tick);
		timeout = next > now ? nsecs_to_jiffies(next - now) : 0;
		/* nsecs_to_jiffies() rounds down: a period under a jiffy is 1. */
		timeout = clamp_t(long, timeout, 1, msecs_to_jiffies(SN_TICK_MS));
		ret = archangel_comm_receive_message_ex(ch, &msg, buf,
							sizeof(buf), timeout);
		if (ret >= 0) {
			sn_handle(&msg, buf, ret);
		} else if (ret == -EMSGSIZE) {
			/* Too long to be a response: drop it, or it blocks the rest. */
			archangel_comm_receive_message(ch, NULL, NULL, U32_MAX);
			sn_inc(SN_RESPONSES_BAD);
		} else if (ret == -ENOENT || ret == -EPIPE || ret == -EIO) {
			sn_channel_lost(ch);
		}
	}
	return 0;
}

void sn_verdict_kick(void)
{
	wake_up(&sn_thread_wq);
}

int sn_verdict_init(void)
{
	sn_thread = kthread_run(sn_thread_main, NULL, "archangel_sensd");
	return PTR_ERR_OR_ZERO(sn_thread);
}

void sn_verdict_exit(void)
{
	kthread_stop(sn_thread);
	sn_pending_resolve_all(SN_WHY_DETACH);
}
