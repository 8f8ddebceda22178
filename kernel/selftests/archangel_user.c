// SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT
/*
 * archangel_user.c - the user side of the ring protocol; see archangel_user.h
 * and docs/memory-ordering.md for the barrier letters (A)-(H).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "archangel_user.h"

#define AU_PAGE		ARCHANGEL_PAGE_SIZE
#define AU_HDR		ARCHANGEL_MSG_HEADER_SIZE
#define AU_CORR		ARCHANGEL_CORRELATION_SIZE
#define AU_DESC		((__u32)sizeof(struct archangel_pool_desc))

/* Barrier primitives: the kernel's smp_store_release / smp_load_acquire / smp_mb. */
#define store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define load_acquire(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_relaxed(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define load_relaxed(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define full_fence()		__atomic_thread_fence(__ATOMIC_SEQ_CST)
/* After copying shared bytes into a local: use the copy, never re-read. */
static inline void compiler_barrier(void)
{
	__asm__ __volatile__("" ::: "memory");
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	compiler_barrier();
#endif
}

/*
 * The wait policy's poll: true while a wait may keep polling (spin_us not
 * yet over since *deadline was set on the first call). The clock is read
 * every 16 polls only.
 */
static int may_spin(const struct au_channel *ch, __u64 *deadline, unsigned int *polls)
{
	__u64 now;

	if (!ch->spin_us || !ch->spin_ok)
		return 0;
	cpu_relax();
	if ((*polls)++ & 15)
		return 1;
	now = au_now_ns();
	if (!*deadline)
		*deadline = now + (__u64)ch->spin_us * 1000;
	return now < *deadline;
}

static __u64 stride_of(__u64 size) { return (size + ARCHANGEL_RECORD_ALIGN - 1) & ~(__u64)(ARCHANGEL_RECORD_ALIGN - 1); }
static int is_pow2(__u64 x) { return x && !(x & (x - 1)); }
static __u64 page_up(__u64 x) { return (x + AU_PAGE - 1) & ~(__u64)(AU_PAGE - 1); }

/* ------------------------------------------------------------------------
 * Need-wakeup / need-space words: bit 0 "I sleep", bits 1-31 the sleep count.
 */
static __u32 need_raise(__u32 *episode)
{
	*episode = (*episode + 1) & 0x7fffffffU;
	return *episode << 1 | 1U;
}

static __u32 need_lower(__u32 episode) { return episode << 1; }

static int need_should_signal(__u32 word, __u32 *last)
{
	if (!(word & 1U) || word == *last)
		return 0;
	*last = word;
	return 1;
}

/* An index the kernel published must lie in [low, high], wrapping arithmetic. */
static int index_ok(__u64 theirs, __u64 low, __u64 high) { return theirs - low <= high - low; }

static int au_fail(struct au_channel *ch)
{
	ch->failed = 1;
	return -EBADMSG;
}

/* ------------------------------------------------------------------------
 * ioctls
 */
int au_open(void)
{
	int fd = open(AU_DEVICE, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int xioctl(int fd, unsigned long cmd, void *arg) { return ioctl(fd, cmd, arg) < 0 ? -errno : 0; }

int au_create(int fd, struct archangel_create_req *req) { return xioctl(fd, ARCHANGEL_IOC_CREATE, req); }
int au_destroy(int fd, __u32 id) { return xioctl(fd, ARCHANGEL_IOC_DESTROY, &id); }
int au_notify(int fd, __u32 mask) { return xioctl(fd, ARCHANGEL_IOC_NOTIFY, &mask); }
int au_loadgen(int fd, struct archangel_loadgen_req *req) { return xioctl(fd, ARCHANGEL_IOC_LOADGEN, req); }
int au_set_wait(int fd, const struct archangel_wait_config *cfg)
{
	return xioctl(fd, ARCHANGEL_IOC_SET_WAIT, (void *)cfg);
}
int au_get_wait(int fd, struct archangel_wait_config *cfg) { return xioctl(fd, ARCHANGEL_IOC_GET_WAIT, cfg); }

int au_set_eventfds(int fd, int data_fd, int space_fd)
{
	struct archangel_eventfds e = { .data_fd = data_fd, .space_fd = space_fd };

	return xioctl(fd, ARCHANGEL_IOC_SET_EVENTFDS, &e);
}

int au_attach_req(int fd, __u32 id, struct archangel_attach_req *req)
{
	memset(req, 0, sizeof(*req));
	req->channel_id = id;
	req->abi_version = ARCHANGEL_ABI_VERSION;
	return xioctl(fd, ARCHANGEL_IOC_ATTACH, req);
}

/* ------------------------------------------------------------------------
 * Geometry: check every offset before using it (docs/abi.md, "At attach").
 */
static int word_ok(__u64 off, __u64 total) { return !(off & 7) && off + 8 <= total; }

static int ring_ok(const struct archangel_ring_offsets *r, __u64 total, int entries)
{
	if (!word_ok(r->producer, total) || !word_ok(r->consumer, total) ||
	    !word_ok(r->need_wakeup, total) || !word_ok(r->need_space, total))
		return 0;
	if (r->entry_size != (entries ? 4U : 0U) || !is_pow2(r->size) || r->size > (1U << 30))
		return 0;
	if (r->size < (entries ? 32U : 4 * ARCHANGEL_RECORD_MIN))
		return 0;
	return !(r->data & (AU_PAGE - 1)) && r->data + r->size <= total;
}

static int direction_ok(const struct archangel_direction_offsets *d, __u64 total)
{
	const struct archangel_pool_offsets *p = &d->pool;
	__u32 smaller = d->normal.size < d->express.size ? d->normal.size : d->express.size;

	if (!ring_ok(&d->normal, total, 0) || !ring_ok(&d->express, total, 0))
		return 0;
	if (!p->buffer_count)
		return 1;
	if (!is_pow2(p->buffer_size) || p->buffer_size < 256 || p->buffer_size > (1U << 20) ||
	    p->buffer_count > (1U << 20) || p->max_segments < 1 || p->max_segments > 256 ||
	    AU_HDR + AU_CORR + AU_DESC * p->max_segments > smaller / 4)
		return 0;
	if ((p->buffers & (AU_PAGE - 1)) || p->buffers + (__u64)p->buffer_size * p->buffer_count > total)
		return 0;
	return ring_ok(&p->returns, total, 1) && p->returns.size / 4 >= p->buffer_count &&
	       word_ok(p->return_intent, total);
}

static int offsets_ok(const struct archangel_channel_offsets *o, __u64 mapped)
{
	if ((o->abi_version >> 16) != ARCHANGEL_ABI_VERSION_MAJOR ||
	    (o->features & ~ARCHANGEL_FEATURES_ALL) || o->total_size > mapped ||
	    o->total_size < 3 * AU_PAGE || o->kernel_lines != AU_PAGE || o->user_lines != 2 * AU_PAGE)
		return 0;
	return direction_ok(&o->to_user, o->total_size) && direction_ok(&o->to_kernel, o->total_size);
}

/* Where the read-write ring region ends: at the first pool, or the end. */
static __u64 rings_end(const struct archangel_channel_offsets *o)
{
	__u64 end = o->total_size;

	if (o->to_user.pool.buffer_count && o->to_user.pool.buffers < end)
		end = o->to_user.pool.buffers;
	if (o->to_kernel.pool.buffer_count && o->to_kernel.pool.buffers < end)
		end = o->to_kernel.pool.buffers;
	return end;
}

static int map_at(unsigned char *base, __u64 off, __u64 len, int prot, int fd)
{
	void *p = mmap(base + off, len, prot, MAP_SHARED | MAP_FIXED, fd, (off_t)off);

	return p == MAP_FAILED ? -errno : 0;
}

int au_map_pieces(int fd, unsigned char *base, const struct archangel_channel_offsets *o)
{
	const struct archangel_pool_offsets *pools[2] = { &o->to_user.pool, &o->to_kernel.pool };
	int err, i;

	err = map_at(base, 0, 2 * AU_PAGE, PROT_READ, fd);
	if (!err)
		err = map_at(base, 2 * AU_PAGE, rings_end(o) - 2 * AU_PAGE, PROT_READ | PROT_WRITE, fd);
	for (i = 0; i < 2 && !err; i++)
		if (pools[i]->buffer_count)
			err = map_at(base, pools[i]->buffers,
				     page_up((__u64)pools[i]->buffer_size * pools[i]->buffer_count),
				     PROT_READ | PROT_WRITE, fd);
	return err;
}

/* ------------------------------------------------------------------------
 * Binding rings to the mapping
 */
static void ring_bind(struct au_ring *r, unsigned char *base, const struct archangel_ring_offsets *o)
{
	r->kproducer = (__u64 *)(base + o->producer);
	r->kconsumer = (__u64 *)(base + o->consumer);
	r->kneed_wakeup = (__u32 *)(base + o->need_wakeup);
	r->kneed_space = (__u32 *)(base + o->need_space);
	r->data = base + o->data;
	r->size = o->entry_size ? o->size / o->entry_size : o->size;
	r->mask = r->size - 1;
}

/* Resume a producer from the index in shared memory (our page). */
static int prod_bind(struct au_prod *p, unsigned char *base, const struct archangel_ring_offsets *o)
{
	__u64 c;

	ring_bind(&p->r, base, o);
	p->producer = p->published = load_relaxed(p->r.kproducer);
	/* (D) pairs with (C) */
	c = load_acquire(p->r.kconsumer);
	if (p->producer - c > p->r.size || (c & 7) || (p->producer & 7))
		return -EBADMSG;
	p->cached_consumer = c;
	p->last_woken = 0;
	p->space_episode = load_relaxed(p->r.kneed_space) >> 1;
	store_relaxed(p->r.kneed_space, need_lower(p->space_episode));
	p->max_record = o->size / 4;
	return 0;
}

static int cons_bind(struct au_cons *c, unsigned char *base, const struct archangel_ring_offsets *o, int express)
{
	__u64 p;

	ring_bind(&c->r, base, o);
	c->express = express;
	c->consumer = c->published = c->released = load_relaxed(c->r.kconsumer);
	/* (B) pairs with (A) */
	p = load_acquire(c->r.kproducer);
	if (p - c->consumer > c->r.size || (c->consumer & 7))
		return -EBADMSG;
	c->cached_producer = c->consumer;
	c->release_batch = c->r.size / 4;
	c->last_space_signalled = 0;
	c->wake_episode = load_relaxed(c->r.kneed_wakeup) >> 1;
	store_relaxed(c->r.kneed_wakeup, need_lower(c->wake_episode));
	return 0;
}

static void lend_mark(struct au_sender *tx, __u32 b)
{
	if (b < tx->count)
		tx->lent[b >> 6] |= 1ULL << (b & 63);
}

static __u32 ring_entry(const struct au_ring *r, __u64 i)
{
	return __atomic_load_n((__u32 *)r->data + (i & r->mask), __ATOMIC_RELAXED);
}

/*
 * Buffers of unconsumed to_kernel records are lent. Only meaningful while the
 * kernel receiver is quiet; a record that does not parse ends the scan.
 */
static void scan_lent(struct au_sender *tx, const struct au_prod *p)
{
	__u64 i = p->cached_consumer;

	while (i != p->producer) {
		struct archangel_msg_header h;
		__u64 pos = i & p->r.mask, tail = p->r.size - pos, len, off, k;

		if (tail < AU_HDR) {
			i += tail;
			continue;
		}
		memcpy(&h, p->r.data + pos, sizeof(h));
		compiler_barrier();
		if (h.magic != ARCHANGEL_MSG_MAGIC || h.size < AU_HDR || stride_of(h.size) > tail ||
		    stride_of(h.size) > p->producer - i)
			return;
		if (h.sequence > tx->sequence && !(h.flags & ARCHANGEL_MSG_F_PAD))
			tx->sequence = h.sequence;
		if (h.flags & ARCHANGEL_MSG_F_DMA) {
			off = (h.flags & ARCHANGEL_MSG_F_CORRELATED) ? AU_HDR + AU_CORR : AU_HDR;
			len = h.size > off ? h.size - off : 0;
			for (k = 0; k + AU_DESC <= len; k += AU_DESC) {
				struct archangel_pool_desc d;

				memcpy(&d, p->r.data + pos + off + k, sizeof(d));
				lend_mark(tx, d.buffer);
			}
		}
		i += stride_of(h.size);
	}
}

static int sender_bind(struct au_channel *ch)
{
	const struct archangel_direction_offsets *d = &ch->off.to_kernel;
	struct au_sender *tx = &ch->tx;
	__u32 inline_max, words, b;
	__u64 p, i, intent, *kintent;

	if (prod_bind(&tx->normal, ch->base, &d->normal) || prod_bind(&tx->express, ch->base, &d->express))
		return -EBADMSG;
	tx->count = d->pool.buffer_count;
	tx->buffer_size = d->pool.buffer_size;
	tx->threshold = d->pool.threshold;
	tx->max_segments = d->pool.max_segments;
	tx->buffers = tx->count ? ch->base + d->pool.buffers : NULL;
	inline_max = (tx->normal.max_record < tx->express.max_record ? tx->normal.max_record
								       : tx->express.max_record) - AU_HDR - AU_CORR;
	tx->max_payload = inline_max;
	if (tx->count) {
		__u32 pooled = (tx->max_segments < tx->count ? tx->max_segments : tx->count) * tx->buffer_size;

		if (pooled > tx->max_payload)
			tx->max_payload = pooled;
	}
	words = (tx->count + 63) / 64 + 1;
	tx->lent = calloc(words, sizeof(__u64));
	tx->free_stack = calloc(tx->count + 1, sizeof(__u32));
	if (!tx->lent || !tx->free_stack)
		return -ENOMEM;
	tx->sequence = 0;
	tx->free_count = 0;
	if (!tx->count)
		return 0;
	ring_bind(&tx->returns.r, ch->base, &d->pool.returns);
	tx->returns.consumer = load_relaxed(tx->returns.r.kconsumer);
	tx->returns.wake_episode = load_relaxed(tx->returns.r.kneed_wakeup) >> 1;
	store_relaxed(tx->returns.r.kneed_wakeup, need_lower(tx->returns.wake_episode));
	/*
	 * What is in flight: unconsumed records, returns not drained yet, and a
	 * return the kernel staged (intent) but has not published.
	 */
	scan_lent(tx, &tx->express);
	scan_lent(tx, &tx->normal);
	/* (B) pairs with (A) */
	p = load_acquire(tx->returns.r.kproducer);
	if (p - tx->returns.consumer > tx->returns.r.size)
		return -EBADMSG;
	kintent = (__u64 *)(ch->base + d->pool.return_intent);
	intent = load_acquire(kintent);
	if ((__u32)(intent >> 32) - (__u32)p <= tx->count) {
		const struct au_prod *lane = (intent & ARCHANGEL_INTENT_EXPRESS) ? &tx->express : &tx->normal;

		if ((__u32)(intent & ~ARCHANGEL_INTENT_EXPRESS) == (__u32)load_acquire(lane->r.kconsumer))
			p += (__u32)(intent >> 32) - (__u32)p;
	}
	for (i = tx->returns.consumer; i != p; i++)
		lend_mark(tx, ring_entry(&tx->returns.r, i));
	/* Highest index at the bottom: buffer 0 is lent first. */
	for (b = tx->count; b-- > 0;)
		if (!(tx->lent[b >> 6] & (1ULL << (b & 63))))
			tx->free_stack[tx->free_count++] = b;
	return 0;
}

static int receiver_bind(struct au_channel *ch)
{
	const struct archangel_direction_offsets *d = &ch->off.to_user;
	struct au_receiver *rx = &ch->rx;
	__u64 c;

	if (cons_bind(&rx->express, ch->base, &d->express, 1) || cons_bind(&rx->normal, ch->base, &d->normal, 0))
		return -EBADMSG;
	rx->count = d->pool.buffer_count;
	rx->buffer_size = d->pool.buffer_size;
	rx->max_segments = d->pool.max_segments ? d->pool.max_segments : 1;
	if (rx->max_segments > 256)
		return -EBADMSG;
	rx->buffers = rx->count ? ch->base + d->pool.buffers : NULL;
	rx->held = calloc((rx->count + 63) / 64 + 1, sizeof(__u64));
	if (!rx->held)
		return -ENOMEM;
	if (!rx->count)
		return 0;
	ring_bind(&rx->returns.r, ch->base, &d->pool.returns);
	rx->kintent = (__u64 *)(ch->base + d->pool.return_intent);
	rx->returns.producer = rx->returns.published = load_relaxed(rx->returns.r.kproducer);
	/* (D) pairs with (C) */
	c = load_acquire(rx->returns.r.kconsumer);
	if (rx->returns.producer - c > rx->returns.r.size)
		return -EBADMSG;
	rx->returns.cached_consumer = c;
	rx->returns.last_woken = 0;
	return 0;
}

void au_detach(struct au_channel *ch, int close_fd)
{
	if (ch->base && ch->base != MAP_FAILED)
		munmap(ch->base, ch->span);
	ch->base = NULL;
	free(ch->tx.lent);
	free(ch->tx.free_stack);
	free(ch->rx.held);
	ch->tx.lent = NULL;
	ch->tx.free_stack = NULL;
	ch->rx.held = NULL;
	if (ch->data_efd >= 0)
		close(ch->data_efd);
	if (ch->space_efd >= 0)
		close(ch->space_efd);
	ch->data_efd = ch->space_efd = -1;
	if (close_fd && ch->fd >= 0)
		close(ch->fd);
	ch->fd = -1;
}

int au_attach(struct au_channel *ch, int fd, __u32 id, int eventfds)
{
	struct archangel_attach_req req;
	const struct archangel_channel_header *hdr;
	int err;

	memset(ch, 0, sizeof(*ch));
	ch->fd = fd;
	ch->id = id;
	ch->data_efd = ch->space_efd = -1;
	ch->spin_us = AU_SPIN_US_DEFAULT;
	ch->spin_ok = sysconf(_SC_NPROCESSORS_ONLN) > 1;
	err = au_attach_req(fd, id, &req);
	if (err)
		return err;
	if (!offsets_ok(&req.offsets, req.mmap_size))
		return -EBADMSG;
	ch->off = req.offsets;
	ch->span = req.mmap_size;
	ch->base = mmap(NULL, ch->span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ch->base == MAP_FAILED) {
		err = -errno;
		goto err_clear;
	}
	err = au_map_pieces(fd, ch->base, &ch->off);
	if (err)
		goto err_unmap;
	hdr = (const struct archangel_channel_header *)ch->base;
	if (hdr->magic != ARCHANGEL_CHANNEL_MAGIC || hdr->header_size != sizeof(*hdr) ||
	    memcmp(&hdr->offsets, &ch->off, sizeof(ch->off))) {
		err = -EBADMSG;
		goto err_unmap;
	}
	err = receiver_bind(ch);
	if (!err)
		err = sender_bind(ch);
	if (err)
		goto err_unmap;
	if (eventfds) {
		ch->data_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ch->space_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		err = ch->data_efd < 0 || ch->space_efd < 0 ? -EMFILE
							       : au_set_eventfds(fd, ch->data_efd, ch->space_efd);
		if (err)
			goto err_unmap;
	}
	return 0;

err_unmap:
	au_detach(ch, 0);
	ch->fd = fd;
	return err;
err_clear:
	ch->base = NULL;
	return err;
}

void au_set_spin(struct au_channel *ch, __u32 spin_us) { ch->spin_us = spin_us; }

int au_channel_new(struct au_channel *ch, struct archangel_create_req *req)
{
	struct archangel_create_req def = { .channel_id = ARCHANGEL_CHANNEL_ANY };
	int fd, err;

	if (!req)
		req = &def;
	req->flags |= ARCHANGEL_CREATE_ATTACH;
	fd = au_open();
	if (fd < 0)
		return fd;
	err = au_create(fd, req);
	if (!err)
		err = au_attach(ch, fd, req->channel_id, 1);
	if (err) {
		if (req->channel_id != ARCHANGEL_CHANNEL_ANY)
			au_destroy(fd, req->channel_id);
		close(fd);
		ch->fd = -1;
	}
	return err;
}

/* ------------------------------------------------------------------------
 * Sending (to_kernel): record-ring producer, pool lender
 */
static unsigned char *prod_reserve(struct au_channel *ch, struct au_prod *p, __u32 length)
{
	__u64 stride = stride_of(length), pos = p->producer & p->r.mask, tail = p->r.size - pos;
	__u64 pad = stride > tail ? tail : 0, c;

	if (p->producer + pad + stride - p->cached_consumer > p->r.size) {
		/* (D) pairs with (C): the kernel has read what its index covers. */
		c = load_acquire(p->r.kconsumer);
		if (!index_ok(c, p->cached_consumer, p->published)) {
			au_fail(ch);
			return NULL;
		}
		p->cached_consumer = c;
		if (p->producer + pad + stride - c > p->r.size)
			return NULL;
	}
	if (pad) {
		if (pad >= AU_HDR) {
			/* A padding record, exactly as RecordRingProducer writes it. */
			struct archangel_msg_header h = {
				.magic = ARCHANGEL_MSG_MAGIC, .type = ARCHANGEL_MSG_TYPE_PAD,
				.flags = ARCHANGEL_MSG_F_PAD, .size = (__u32)pad,
			};
			memcpy(p->r.data + pos, &h, sizeof(h));
		}
		p->producer += pad;
	}
	return p->r.data + (p->producer & p->r.mask);
}

/* Stores the committed producer index; 1 when there was anything new. */
static int prod_publish_index(struct au_prod *p)
{
	if (p->producer == p->published)
		return 0;
	p->published = p->producer;
	/* (A) pairs with (B): the records are visible before the index. */
	store_release(p->r.kproducer, p->producer);
	return 1;
}

/*
 * The wake-up rule of docs/efficiency.md "The producer", without
 * coalescing: an urgent batch (a CRITICAL message committed) wakes a new
 * sleep on either lane's word; otherwise only the normal lane's word counts,
 * since a kernel receiver in timed polling arms the express word only.
 */
void au_publish(struct au_channel *ch)
{
	int any = prod_publish_index(&ch->tx.express);	/* express first */
	int urgent = ch->tx.pending_urgent;
	int wake;

	any |= prod_publish_index(&ch->tx.normal);
	/* The next message committed opens a new batch: it reads the clock. */
	ch->tx.batch_ts = 0;
	ch->tx.pending_urgent = 0;
	if (!any)
		return;
	/* (E) pairs with (F): the index stores are ordered before the flag loads. */
	full_fence();
	wake = need_should_signal(load_relaxed(ch->tx.normal.r.kneed_wakeup),
				  &ch->tx.normal.last_woken);
	if (urgent)
		wake |= need_should_signal(load_relaxed(ch->tx.express.r.kneed_wakeup),
					   &ch->tx.express.last_woken);
	if (wake) {
		ch->st.notify_data++;
		au_notify(ch->fd, ARCHANGEL_NOTIFY_DATA);
	}
}

/* Takes back every buffer the kernel returned, checking each index. */
static int reclaim(struct au_channel *ch)
{
	struct au_sender *tx = &ch->tx;
	struct au_icons *r = &tx->returns;
	__u64 p, start = r->consumer;

	if (!tx->count)
		return 0;
	/* (B) pairs with (A) */
	p = load_acquire(r->r.kproducer);
	if (p - r->consumer > r->r.size)
		return au_fail(ch);
	while (r->consumer != p) {
		__u32 b = ring_entry(&r->r, r->consumer);

		r->consumer++;
		if (b >= tx->count || !(tx->lent[b >> 6] & (1ULL << (b & 63))))
			return au_fail(ch);
		tx->lent[b >> 6] &= ~(1ULL << (b & 63));
		tx->free_stack[tx->free_count++] = b;
	}
	if (r->consumer != start)
		/* (C) pairs with (D) */
		store_release(r->r.kconsumer, r->consumer);
	return 0;
}

int au_send(struct au_channel *ch, __u8 type, __u8 priority, const void *payload, __u32 n,
	    const __u64 *correlation, int publish)
{
	struct au_sender *tx = &ch->tx;
	int express = priority >= ARCHANGEL_PRIORITY_HIGH;
	struct au_prod *p = express ? &tx->express : &tx->normal;
	__u32 extra = correlation ? AU_CORR : 0, segs = 0, length, i;
	__u16 flags = correlation ? ARCHANGEL_MSG_F_CORRELATED : 0;
	struct archangel_msg_header h;
	unsigned char *rec, *cur;
	int via_pool = 0;

	if (ch->failed)
		return -EBADMSG;
	if (n > tx->max_payload)
		return -EMSGSIZE;
	if (n > tx->threshold && tx->count) {
		segs = (n + tx->buffer_size - 1) / tx->buffer_size;
		if (segs <= tx->max_segments) {
			if (tx->free_count < segs && reclaim(ch))
				return -EBADMSG;
			if (tx->free_count >= segs) {
				via_pool = 1;
			} else if (AU_HDR + extra + n <= p->max_record) {
				flags |= ARCHANGEL_MSG_F_COPIED;
			} else {
				tx->blocked_on_pool = 1;
				tx->blocked_length = segs;
				ch->st.queue_full++;
				return -EAGAIN;
			}
		}
	}
	length = AU_HDR + extra + (via_pool ? segs * AU_DESC : n);
	if (length > p->max_record)
		return -EMSGSIZE;
	rec = prod_reserve(ch, p, length);
	if (!rec) {
		if (ch->failed)
			return -EBADMSG;
		tx->blocked_on_pool = 0;
		tx->blocked_express = express;
		tx->blocked_length = length;
		ch->st.queue_full++;
		return -EAGAIN;
	}
	cur = rec + AU_HDR;
	if (correlation) {
		memcpy(cur, correlation, AU_CORR);
		cur += AU_CORR;
	}
	if (via_pool) {
		flags |= ARCHANGEL_MSG_F_DMA;
		for (i = 0; i < segs; i++) {
			__u32 b = tx->free_stack[--tx->free_count];
			__u32 off = i * tx->buffer_size, chunk = n - off < tx->buffer_size ? n - off : tx->buffer_size;
			struct archangel_pool_desc d = { .buffer = b, .offset = 0, .length = chunk };

			tx->lent[b >> 6] |= 1ULL << (b & 63);
			memcpy(tx->buffers + (size_t)b * tx->buffer_size, (const unsigned char *)payload + off, chunk);
			memcpy(cur + i * AU_DESC, &d, sizeof(d));
		}
	} else if (n) {
		memcpy(cur, payload, n);
	}
	/*
	 * One clock read per publication: a batch is built within nanoseconds,
	 * and reading the clock per message would cost more than the send.
	 */
	if (!tx->batch_ts)
		tx->batch_ts = au_now_ns();
	h = (struct archangel_msg_header){
		.magic = ARCHANGEL_MSG_MAGIC, .type = type, .priority = priority, .flags = flags,
		.size = length, .sequence = ++tx->sequence, .timestamp = tx->batch_ts,
	};
	memcpy(rec, &h, sizeof(h));
	p->producer += stride_of(length);
	ch->st.sent++;
	if (priority == ARCHANGEL_PRIORITY_CRITICAL)
		tx->pending_urgent = 1;
	if (publish)
		au_publish(ch);
	return 0;
}

static int wait_fd(int fd, int timeout_ms, __u64 *wakeups, __u64 *signals)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	__u64 v;
	int n;

	do
		n = poll(&pfd, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	if (read(fd, &v, sizeof(v)) == sizeof(v)) {
		(*wakeups)++;
		*signals += v;
	}
	return 1;
}

/* Waits for the kernel to return pool buffers (to_kernel return ring). */
static int wait_pool(struct au_channel *ch, int timeout_ms)
{
	struct au_icons *ret = &ch->tx.returns;
	unsigned int polls = 0;
	__u64 deadline = 0;
	int r;

	if (!ch->tx.count)
		return 1;
	do {
		/* (B) pairs with (A): reclaim() takes the entries. */
		if (load_acquire(ret->r.kproducer) != ret->consumer)
			return 1;
	} while (may_spin(ch, &deadline, &polls));
	store_relaxed(ret->r.kneed_wakeup, need_raise(&ret->wake_episode));
	/* (F) pairs with the kernel receiver's (E) after it publishes returns. */
	full_fence();
	/* (B) pairs with (A) */
	if (load_acquire(ret->r.kproducer) != ret->consumer) {
		store_relaxed(ret->r.kneed_wakeup, need_lower(ret->wake_episode));
		return 1;
	}
	ch->st.waits++;
	r = wait_fd(ch->space_efd, timeout_ms, &ch->st.wakeups, &ch->st.space_signals);
	store_relaxed(ret->r.kneed_wakeup, need_lower(ret->wake_episode));
	return r;
}

/* Waits for room on the lane the last send found full. */
static int wait_ring(struct au_channel *ch, int timeout_ms)
{
	struct au_sender *tx = &ch->tx;
	struct au_prod *p = tx->blocked_express ? &tx->express : &tx->normal;
	__u64 stride = stride_of(tx->blocked_length), tail = p->r.size - (p->producer & p->r.mask);
	__u64 needed = stride > tail ? tail + stride : stride, c, deadline = 0;
	unsigned int polls = 0;
	int r;

	do {
		/* (D) pairs with (C) */
		c = load_acquire(p->r.kconsumer);
		if (!index_ok(c, p->cached_consumer, p->published))
			return au_fail(ch);
		p->cached_consumer = c;
		if (p->producer + needed - c <= p->r.size)
			return 1;
	} while (may_spin(ch, &deadline, &polls));
	store_relaxed(p->r.kneed_space, need_raise(&p->space_episode));
	/* (H) pairs with (G): the flag is visible before we re-read the consumer index. */
	full_fence();
	/* (D) pairs with (C) */
	c = load_acquire(p->r.kconsumer);
	if (!index_ok(c, p->cached_consumer, p->published)) {
		store_relaxed(p->r.kneed_space, need_lower(p->space_episode));
		return au_fail(ch);
	}
	p->cached_consumer = c;
	if (p->producer + needed - c <= p->r.size) {
		store_relaxed(p->r.kneed_space, need_lower(p->space_episode));
		return 1;
	}
	ch->st.waits++;
	r = wait_fd(ch->space_efd, timeout_ms, &ch->st.wakeups, &ch->st.space_signals);
	store_relaxed(p->r.kneed_space, need_lower(p->space_episode));
	return r;
}

int au_wait_space(struct au_channel *ch, int timeout_ms)
{
	if (ch->failed)
		return -EBADMSG;
	/* What is committed must be visible, or the room may never come. */
	au_publish(ch);
	return ch->tx.blocked_on_pool ? wait_pool(ch, timeout_ms) : wait_ring(ch, timeout_ms);
}

int au_send_wait(struct au_channel *ch, __u8 type, __u8 priority, const void *payload, __u32 n,
		 const __u64 *correlation, int timeout_ms)
{
	__u64 deadline = au_now_ns() + (__u64)timeout_ms * 1000000ULL;
	int err, r;

	for (;;) {
		err = au_send(ch, type, priority, payload, n, correlation, 1);
		if (err != -EAGAIN)
			return err;
		r = au_wait_space(ch, timeout_ms < 0 ? -1 : 20);
		if (r < 0)
			return r;
		if (timeout_ms >= 0 && au_now_ns() > deadline)
			return -ETIMEDOUT;
	}
}

/* ------------------------------------------------------------------------
 * Receiving (to_user): record-ring consumer, pool borrower
 */
static int cons_has_data(struct au_channel *ch, struct au_cons *c)
{
	__u64 p;

	if (c->consumer != c->cached_producer)
		return 1;
	/* (B) pairs with (A) */
	p = load_acquire(c->r.kproducer);
	if (!index_ok(p, c->cached_producer, c->published + c->r.size))
		return au_fail(ch);
	c->cached_producer = p;
	return p != c->consumer;
}

static int borrow(struct au_channel *ch, struct au_msg *m, const unsigned char *descs, __u32 len)
{
	struct au_receiver *rx = &ch->rx;
	__u32 n = len / AU_DESC, i, j;

	if (!rx->count || len % AU_DESC || n < 1 || n > rx->max_segments)
		return au_fail(ch);
	m->length = 0;
	for (i = 0; i < n; i++) {
		struct archangel_pool_desc d;

		memcpy(&d, descs + i * AU_DESC, sizeof(d));
		compiler_barrier();
		if (d.reserved || d.buffer >= rx->count || d.offset > rx->buffer_size ||
		    d.length > rx->buffer_size - d.offset || (rx->held[d.buffer >> 6] & (1ULL << (d.buffer & 63)))) {
			for (j = 0; j < i; j++)
				rx->held[m->seg[j].buffer >> 6] &= ~(1ULL << (m->seg[j].buffer & 63));
			return au_fail(ch);
		}
		rx->held[d.buffer >> 6] |= 1ULL << (d.buffer & 63);
		m->seg[i].p = rx->buffers + (size_t)d.buffer * rx->buffer_size + d.offset;
		m->seg[i].len = d.length;
		m->seg[i].buffer = d.buffer;
		m->length += d.length;
	}
	m->nseg = n;
	m->pool = 1;
	return 1;
}

static int cons_peek(struct au_channel *ch, struct au_cons *c, struct au_msg *m)
{
	for (;;) {
		struct archangel_msg_header h;
		__u64 avail, pos, tail, size, stride;
		const unsigned char *payload;
		__u32 len;

		if (c->consumer == c->cached_producer) {
			int r = cons_has_data(ch, c);

			if (r <= 0)
				return r;
		}
		avail = c->cached_producer - c->consumer;
		pos = c->consumer & c->r.mask;
		tail = c->r.size - pos;
		if (tail < AU_HDR) {
			/* Too short for a header: skipped implicitly by both sides. */
			if (avail < tail)
				return au_fail(ch);
			c->consumer += tail;
			continue;
		}
		memcpy(&h, c->r.data + pos, sizeof(h));
		compiler_barrier();
		size = h.size;
		stride = stride_of(size);
		if (h.magic != ARCHANGEL_MSG_MAGIC || size < AU_HDR || stride > tail || stride > avail)
			return au_fail(ch);
		if (h.flags & ARCHANGEL_MSG_F_PAD) {
			if (h.flags != ARCHANGEL_MSG_F_PAD || h.type != ARCHANGEL_MSG_TYPE_PAD || size != tail)
				return au_fail(ch);
			c->consumer += tail;
			continue;
		}
		if (h.type < ARCHANGEL_MSG_TYPE_MIN || h.type > ARCHANGEL_MSG_TYPE_MAX ||
		    h.priority > ARCHANGEL_PRIORITY_MAX || (h.priority >= ARCHANGEL_PRIORITY_HIGH) != c->express ||
		    (h.flags & ~ARCHANGEL_MSG_F_KNOWN))
			return au_fail(ch);
		payload = c->r.data + pos + AU_HDR;
		len = (__u32)size - AU_HDR;
		m->hdr = h;
		m->express = c->express;
		m->correlated = !!(h.flags & ARCHANGEL_MSG_F_CORRELATED);
		m->correlation = 0;
		if (m->correlated) {
			if (len < AU_CORR)
				return au_fail(ch);
			memcpy(&m->correlation, payload, AU_CORR);
			payload += AU_CORR;
			len -= AU_CORR;
		}
		m->stride = stride;
		m->pool = 0;
		if (h.flags & ARCHANGEL_MSG_F_DMA)
			return borrow(ch, m, payload, len);
		m->nseg = 1;
		m->length = len;
		m->seg[0].p = payload;
		m->seg[0].len = len;
		m->seg[0].buffer = 0;
		return 1;
	}
}

static int cons_release(struct au_cons *c)
{
	if (c->consumer != c->published) {
		c->published = c->consumer;
		/* (C) pairs with (D) */
		store_release(c->r.kconsumer, c->consumer);
	}
	if (c->consumer == c->released)
		return 0;
	c->released = c->consumer;
	/* (G) pairs with (H): the index store is ordered before the flag load. */
	full_fence();
	return need_should_signal(load_relaxed(c->r.kneed_space), &c->last_space_signalled);
}

void au_release(struct au_channel *ch)
{
	int wake_express = cons_release(&ch->rx.express);
	int wake_normal = cons_release(&ch->rx.normal);

	if (wake_express || wake_normal) {
		ch->st.notify_space++;
		au_notify(ch->fd, ARCHANGEL_NOTIFY_SPACE);
	}
}

int au_recv(struct au_channel *ch, struct au_msg *m)
{
	int r;

	if (ch->failed)
		return -EBADMSG;
	r = cons_peek(ch, &ch->rx.express, m);
	if (r == 0)
		r = cons_peek(ch, &ch->rx.normal, m);
	if (r == 0)
		au_release(ch);	/* empty: hand back consumed space now */
	return r;
}

int au_recv_done_partial(struct au_channel *ch, struct au_msg *m, int steps)
{
	struct au_receiver *rx = &ch->rx;
	struct au_cons *c = m->express ? &rx->express : &rx->normal;
	struct au_iprod *ret = &rx->returns;
	__u64 after = c->consumer + m->stride;
	int wake = 0;
	__u32 i;

	if (m->pool) {
		/* 1. the buffer indices go into the return ring, unpublished */
		for (i = 0; i < m->nseg; i++) {
			__u32 b = m->seg[i].buffer;

			rx->held[b >> 6] &= ~(1ULL << (b & 63));
			if (ret->producer - ret->cached_consumer >= ret->r.size) {
				/* (D) pairs with (C) */
				__u64 k = load_acquire(ret->r.kconsumer);

				if (!index_ok(k, ret->cached_consumer, ret->published))
					return au_fail(ch);
				ret->cached_consumer = k;
				if (ret->producer - k >= ret->r.size)
					return au_fail(ch);	/* it holds every buffer: overflow */
			}
			__atomic_store_n((__u32 *)ret->r.data + (ret->producer & ret->r.mask), b, __ATOMIC_RELAXED);
			ret->producer++;
		}
		if (steps < 2)
			return 0;
		/* 2. the intent, released after the entries (a successor reads it) */
		store_release(rx->kintent, ARCHANGEL_RETURN_INTENT(after, m->express, ret->producer));
		if (steps < 3)
			return 0;
	} else if (steps < 3) {
		return 0;
	}
	/* 3. the message is consumed for good. (C) pairs with (D). */
	c->consumer = c->published = after;
	store_release(c->r.kconsumer, after);
	if (after - c->released >= c->release_batch)
		wake = cons_release(c);
	ch->st.received++;
	if (m->pool) {
		if (steps < 4)
			return 0;
		/* 4. publish the returns: (A) pairs with (B), (E) with the kernel's (F). */
		if (ret->producer != ret->published) {
			ret->published = ret->producer;
			store_release(ret->r.kproducer, ret->producer);
			full_fence();
			if (need_should_signal(load_relaxed(ret->r.kneed_wakeup), &ret->last_woken))
				wake = 1;
		}
	}
	if (wake) {
		ch->st.notify_space++;
		au_notify(ch->fd, ARCHANGEL_NOTIFY_SPACE);
	}
	return 0;
}

int au_recv_done(struct au_channel *ch, struct au_msg *m) { return au_recv_done_partial(ch, m, 4); }

int au_recv_many(struct au_channel *ch, au_recv_fn fn, void *arg, unsigned int max)
{
	struct au_msg m;
	unsigned int n = 0;
	int lane, r, stop = 0;

	if (ch->failed)
		return -EBADMSG;
	/* Express first; each lane drained as far as max allows. */
	for (lane = 1; lane >= 0 && n < max && !stop; lane--) {
		struct au_cons *c = lane ? &ch->rx.express : &ch->rx.normal;

		while (n < max && !stop) {
			r = cons_peek(ch, c, &m);
			if (r < 0)
				return r;
			if (r == 0)
				break;
			stop = fn ? fn(ch, &m, arg) : 0;
			r = au_recv_done(ch, &m);
			if (r < 0)
				return r;
			n++;
		}
	}
	if (!stop && n < max)
		au_release(ch);	/* empty: hand back consumed space now, as au_recv */
	return (int)n;
}

int au_wait_data(struct au_channel *ch, int timeout_ms)
{
	return au_wait_data_lanes(ch, timeout_ms, AU_ARM_NORMAL | AU_ARM_EXPRESS);
}

int au_wait_data_lanes(struct au_channel *ch, int timeout_ms, int lanes)
{
	struct au_receiver *rx = &ch->rx;
	unsigned int polls = 0;
	__u64 deadline = 0;
	int has, r;

	if (ch->failed)
		return -EBADMSG;
	au_release(ch);
	/* The wait policy: poll before announcing a sleep. */
	do {
		has = cons_has_data(ch, &rx->express);
		if (has == 0)
			has = cons_has_data(ch, &rx->normal);
		if (has != 0)
			return has;
	} while (may_spin(ch, &deadline, &polls));
	if (lanes & AU_ARM_EXPRESS)
		store_relaxed(rx->express.r.kneed_wakeup, need_raise(&rx->express.wake_episode));
	if (lanes & AU_ARM_NORMAL)
		store_relaxed(rx->normal.r.kneed_wakeup, need_raise(&rx->normal.wake_episode));
	/* (F) pairs with (E): our flags are visible before we re-read the producer indices. */
	full_fence();
	has = cons_has_data(ch, &rx->express);
	if (has == 0)
		has = cons_has_data(ch, &rx->normal);
	if (has != 0) {
		r = has;
	} else {
		ch->st.waits++;
		r = wait_fd(ch->data_efd >= 0 ? ch->data_efd : ch->fd, timeout_ms, &ch->st.wakeups,
			      &ch->st.data_signals);
	}
	if (lanes & AU_ARM_EXPRESS)
		store_relaxed(rx->express.r.kneed_wakeup, need_lower(rx->express.wake_episode));
	if (lanes & AU_ARM_NORMAL)
		store_relaxed(rx->normal.r.kneed_wakeup, need_lower(rx->normal.wake_episode));
	return r;
}

__u32 au_msg_copy(const struct au_msg *m, void *dst, __u32 max)
{
	__u32 done = 0, i, k;

	for (i = 0; i < m->nseg && done < max; i++) {
		k = m->seg[i].len < max - done ? m->seg[i].len : max - done;
		memcpy((unsigned char *)dst + done, m->seg[i].p, k);
		done += k;
	}
	return done;
}

/* ------------------------------------------------------------------------
 * Helpers
 */
void au_pattern_fill(void *dst, __u32 n, __u64 i)
{
	unsigned char *d = dst;
	__u32 j;

	for (j = 0; j < n; j++)
		d[j] = (unsigned char)(i + j);
	if (n >= 8)
		memcpy(d, &i, 8);
}

long au_pattern_check(const void *src, __u32 n, __u64 i)
{
	const unsigned char *s = src;
	__u32 j;

	if (n >= 8 && memcmp(s, &i, 8))
		return 0;
	for (j = n >= 8 ? 8 : 0; j < n; j++)
		if (s[j] != (unsigned char)(i + j))
			return j;
	return -1;
}

__u64 au_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

char *au_read_file(const char *path)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap), *nb;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || !buf)
		goto err;
	for (;;) {
		if (len + 1 >= cap) {
			nb = realloc(buf, cap *= 2);
			if (!nb)
				goto err;
			buf = nb;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto err;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	close(fd);
	return buf;
err:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

/* The line "channel <id> <state>", or NULL. */
static const char *proc_channel(const char *text, __u32 id)
{
	char head[32];
	const char *s = text;
	size_t n = (size_t)snprintf(head, sizeof(head), "channel %u ", id);

	while (s && *s) {
		if (!strncmp(s, head, n))
			return s;
		s = strchr(s, '\n');
		if (s)
			s++;
	}
	return NULL;
}

int au_proc_active(const char *text, __u32 id)
{
	const char *s = proc_channel(text, id);

	if (!s)
		return -1;
	s = strchr(s, ' ') + 1;
	s = strchr(s, ' ') + 1;
	return !strncmp(s, "active", 6);
}

long long au_proc_value(const char *text, __u32 id, const char *direction, const char *key)
{
	const char *s = proc_channel(text, id), *end, *k;
	char pat[64];
	size_t dl = strlen(direction);

	if (!s)
		return -1;
	snprintf(pat, sizeof(pat), " %s=", key);
	for (s = strchr(s, '\n'); s && !strncmp(s + 1, "  ", 2); s = strchr(s + 1, '\n')) {
		if (strncmp(s + 3, direction, dl) || s[3 + dl] != ' ')
			continue;
		end = strchr(s + 1, '\n');
		k = strstr(s + 3, pat);
		if (!k || (end && k > end))
			return -1;
		return strtoll(k + strlen(pat), NULL, 10);
	}
	return -1;
}
