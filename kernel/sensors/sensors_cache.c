// SPDX-License-Identifier: GPL-2.0
/*
 * The verdict cache: bounded, set-associative (SN_CACHE_SETS sets of
 * SN_CACHE_WAYS entries, one spinlock each), keyed by (sensor, 64-bit
 * SipHash of the exe path or of the flow tuple) under a key drawn at load.
 * An entry lives until its TTL; a full set evicts its oldest entry (counted
 * in cache_evictions). Looked up from probes: no allocation, no sleep.
 *
 * Only the 64-bit hash is kept, not the path: with a secret key two paths
 * collide with probability about 2^-64 per pair, and nobody without the key
 * can make them collide on purpose (docs/sensors.md).
 */
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/random.h>
#include <linux/siphash.h>
#include <linux/spinlock.h>
#include "sensors.h"

#define SN_CACHE_SETS	256
#define SN_CACHE_WAYS	4

struct sn_centry {
	u64 key;
	u64 expires_ns;
	u64 stamp_ns;		/* insertion time: the eviction order */
	u8 sensor;
	u8 verdict;
	bool used;
};

struct sn_cset {
	spinlock_t lock;	/* the set's entries */
	struct sn_centry e[SN_CACHE_WAYS];
};

static struct sn_cset sn_cache[SN_CACHE_SETS];
static siphash_key_t sn_hash_key;

u64 sn_hash(const void *data, size_t len)
{
	return siphash(data, len, &sn_hash_key);
}

void sn_cache_init(void)
{
	int i;

	get_random_bytes(&sn_hash_key, sizeof(sn_hash_key));
	for (i = 0; i < SN_CACHE_SETS; i++)
		spin_lock_init(&sn_cache[i].lock);
}

static struct sn_cset *sn_cset_of(u8 sensor, u64 key)
{
	return &sn_cache[(key ^ ((u64)sensor << 56)) % SN_CACHE_SETS];
}

int sn_cache_lookup(u8 sensor, u64 key)
{
	struct sn_cset *set = sn_cset_of(sensor, key);
	u64 now = ktime_get_ns();
	unsigned long flags;
	int i, v = -ENOENT;

	spin_lock_irqsave(&set->lock, flags);
	for (i = 0; i < SN_CACHE_WAYS; i++) {
		struct sn_centry *e = &set->e[i];

		if (!e->used || e->key != key || e->sensor != sensor)
			continue;
		if (now >= e->expires_ns) {
			e->used = false;
			sn_inc(SN_CACHE_EXPIRED);
			break;
		}
		v = e->verdict;
		break;
	}
	spin_unlock_irqrestore(&set->lock, flags);
	sn_inc(v < 0 ? SN_CACHE_MISSES : SN_CACHE_HITS);
	return v;
}

void sn_cache_insert(u8 sensor, u64 key, u8 verdict, u32 ttl_ms)
{
	struct sn_cset *set = sn_cset_of(sensor, key);
	struct sn_centry *slot = NULL, *oldest = NULL;
	u64 now = ktime_get_ns();
	unsigned long flags;
	int i;

	if (!ttl_ms)
		return;
	spin_lock_irqsave(&set->lock, flags);
	for (i = 0; i < SN_CACHE_WAYS; i++) {
		struct sn_centry *e = &set->e[i];

		if (e->used && e->key == key && e->sensor == sensor) {
			slot = e;
			break;
		}
		if (!slot && (!e->used || now >= e->expires_ns))
			slot = e;
		if (e->used && (!oldest || e->stamp_ns < oldest->stamp_ns))
			oldest = e;
	}
	if (!slot) {
		slot = oldest;
		sn_inc(SN_CACHE_EVICTIONS);
	}
	slot->key = key;
	slot->sensor = sensor;
	slot->verdict = verdict;
	slot->stamp_ns = now;
	slot->expires_ns = now + (u64)ttl_ms * NSEC_PER_MSEC;
	slot->used = true;
	spin_unlock_irqrestore(&set->lock, flags);
	sn_inc(SN_CACHE_INSERTS);
}

void sn_cache_flush(void)
{
	unsigned long flags;
	int i, j;

	for (i = 0; i < SN_CACHE_SETS; i++) {
		spin_lock_irqsave(&sn_cache[i].lock, flags);
		for (j = 0; j < SN_CACHE_WAYS; j++)
			sn_cache[i].e[j].used = false;
		spin_unlock_irqrestore(&sn_cache[i].lock, flags);
	}
}

/* Live entries (expired ones not counted), for /proc. */
unsigned int sn_cache_entries(void)
{
	u64 now = ktime_get_ns();
	unsigned int n = 0;
	int i, j;

	for (i = 0; i < SN_CACHE_SETS; i++)
		for (j = 0; j < SN_CACHE_WAYS; j++)
			if (READ_ONCE(sn_cache[i].e[j].used) &&
			    now < READ_ONCE(sn_cache[i].e[j].expires_ns))
				n++;
	return n;
}
