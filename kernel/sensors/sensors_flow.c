// SPDX-License-Identifier: GPL-2.0
/*
 * The flow table of the net sensor: which (local, remote) tuples it has
 * seen, so that only new flows are reported by default, and each flow's
 * verdict state for the packets that follow. Bounded and set-associative
 * like the verdict cache; a flow idle for SN_FLOW_IDLE_NS is forgotten
 * (it is new again), and a full set evicts its least recently seen flow
 * (counted in flows_evicted). Called from netfilter hooks: no allocation.
 */
#include <linux/ktime.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include "sensors.h"

#define SN_FLOW_SETS	256
#define SN_FLOW_WAYS	4
#define SN_FLOW_IDLE_NS	(60ULL * NSEC_PER_SEC)

struct sn_flow {
	struct sn_flow_key k;
	u64 hash;
	u64 last_ns;
	u8 state;		/* enum sn_flow_state */
	bool used;
};

struct sn_fset {
	spinlock_t lock;	/* the set's flows */
	struct sn_flow e[SN_FLOW_WAYS];
};

static struct sn_fset sn_flows[SN_FLOW_SETS];

void sn_flow_init(void)
{
	int i;

	for (i = 0; i < SN_FLOW_SETS; i++)
		spin_lock_init(&sn_flows[i].lock);
}

static struct sn_flow *sn_flow_find(struct sn_fset *set,
				    const struct sn_flow_key *k, u64 hash,
				    u64 now)
{
	int i;

	for (i = 0; i < SN_FLOW_WAYS; i++) {
		struct sn_flow *f = &set->e[i];

		if (!f->used || f->hash != hash || memcmp(&f->k, k, sizeof(*k)))
			continue;
		if (now - f->last_ns > SN_FLOW_IDLE_NS) {
			f->used = false;
			return NULL;
		}
		return f;
	}
	return NULL;
}

/* A known flow: true, its state in *@state, and it is marked seen now. */
bool sn_flow_lookup(const struct sn_flow_key *k, u64 hash, u8 *state)
{
	struct sn_fset *set = &sn_flows[hash % SN_FLOW_SETS];
	u64 now = ktime_get_ns();
	unsigned long flags;
	struct sn_flow *f;

	spin_lock_irqsave(&set->lock, flags);
	f = sn_flow_find(set, k, hash, now);
	if (f) {
		f->last_ns = now;
		*state = f->state;
	}
	spin_unlock_irqrestore(&set->lock, flags);
	return f;
}

/*
 * Adds a flow in *@state. When another CPU added it first, returns false
 * and its state in *@state (that CPU reports it).
 */
bool sn_flow_insert(const struct sn_flow_key *k, u64 hash, u8 *state)
{
	struct sn_fset *set = &sn_flows[hash % SN_FLOW_SETS];
	struct sn_flow *slot = NULL, *f;
	u64 now = ktime_get_ns();
	unsigned long flags;
	int i;

	spin_lock_irqsave(&set->lock, flags);
	f = sn_flow_find(set, k, hash, now);
	if (f) {
		f->last_ns = now;
		*state = f->state;
		spin_unlock_irqrestore(&set->lock, flags);
		return false;
	}
	for (i = 0; i < SN_FLOW_WAYS; i++) {
		f = &set->e[i];
		if (!f->used || now - f->last_ns > SN_FLOW_IDLE_NS) {
			slot = f;
			break;
		}
		if (!slot || f->last_ns < slot->last_ns)
			slot = f;
	}
	if (slot->used && now - slot->last_ns <= SN_FLOW_IDLE_NS)
		sn_inc(SN_FLOWS_EVICTED);
	slot->k = *k;
	slot->hash = hash;
	slot->last_ns = now;
	slot->state = *state;
	slot->used = true;
	spin_unlock_irqrestore(&set->lock, flags);
	sn_inc(SN_FLOWS_NEW);
	return true;
}

/* Sets a known flow's state (a verdict arrived); a forgotten flow is left. */
void sn_flow_set(const struct sn_flow_key *k, u64 hash, u8 state)
{
	struct sn_fset *set = &sn_flows[hash % SN_FLOW_SETS];
	unsigned long flags;
	struct sn_flow *f;

	spin_lock_irqsave(&set->lock, flags);
	f = sn_flow_find(set, k, hash, ktime_get_ns());
	if (f)
		f->state = state;
	spin_unlock_irqrestore(&set->lock, flags);
}

void sn_flow_flush(void)
{
	unsigned long flags;
	int i, j;

	for (i = 0; i < SN_FLOW_SETS; i++) {
		spin_lock_irqsave(&sn_flows[i].lock, flags);
		for (j = 0; j < SN_FLOW_WAYS; j++)
			sn_flows[i].e[j].used = false;
		spin_unlock_irqrestore(&sn_flows[i].lock, flags);
	}
}

unsigned int sn_flow_entries(void)
{
	unsigned int n = 0;
	int i, j;

	for (i = 0; i < SN_FLOW_SETS; i++)
		for (j = 0; j < SN_FLOW_WAYS; j++)
			n += READ_ONCE(sn_flows[i].e[j].used);
	return n;
}
