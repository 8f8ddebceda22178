// SPDX-License-Identifier: GPL-2.0
/*
 * scribbler: a hostile user of /dev/archangel, for `scribbler SECONDS [SEED]`.
 *
 * Forked episodes, up to three at a time, each with channels of random
 * geometry, in-kernel traffic (LOADGEN PRODUCE/ECHO/SINK threads, a timer
 * signal interrupting them) and a random walk over everything a user can do
 * wrong: random bytes over the user-written lines, the ring data and the
 * pools; records with bad magic, type, priority, flags, size and descriptors;
 * bogus return-ring entries and indices; garbage intent words followed by a
 * close; random ioctls, random mmap offsets, sizes and protections, mremap,
 * madvise, fork with the mapping; close mid-operation; destroy while mapped.
 *
 * The kernel must survive all of it (the VM harness fails the run on any
 * Oops, BUG or WARNING in the log). Before and after the storm, deterministic
 * probes check that garbage is rejected, counted in errors and fails the
 * channel; at the end a clean channel must still carry traffic. Exit 0 when
 * all of that holds, 1 otherwise.
 */
#include "t_common.h"
#include <setjmp.h>
#include <sys/time.h>

#define MAX_KIDS	3
#define MAX_IDS		16

struct slot {			/* shared with the parent */
	__u32 ids[MAX_IDS];
	int nids;
	long long errors;	/* errors seen in /proc for our channels */
	int failed;		/* channels seen failed */
	__u64 actions;
	__u64 ns[20], n[20];	/* time and count per kind of action */
};

static __u64 rng_state;
static sigjmp_buf touch_jmp;
static volatile sig_atomic_t touching;
static volatile int stop_threads;

static __u64 rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static __u64 rnd_below(__u64 n) { return n ? rnd() % n : 0; }

static __attribute__((noinline)) void rnd_bytes(void *p, size_t n)
{
	unsigned char *b = p;

	while (n--)
		*b++ = (unsigned char)rnd();
}

/* An "interesting" 64-bit value: boundaries more often than noise. */
static __u64 rnd_val(void)
{
	static const __u64 v[] = { 0, 1, 7, 8, 27, 28, 31, 32, 4095, 4096, 65535, 65536, 0x7fffffff, 0x80000000,
				   0xffffffff, 0x100000000ULL, ~0ULL, ~0ULL - 7, 1ULL << 63 };

	return rnd() & 1 ? v[rnd_below(sizeof(v) / sizeof(v[0]))] + rnd_below(3) - 1 : rnd();
}

static void on_segv(int sig)
{
	if (touching)
		siglongjmp(touch_jmp, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_alarm(int sig) { (void)sig; }

static __attribute__((noinline)) void read_pages(const void *p, size_t n)
{
	volatile const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i += 4096)
		(void)b[i];
}

/* Runs fn(p, n), surviving a fault (the rest of the range is skipped). */
static void guarded(void (*fn)(void *, size_t), void *p, size_t n)
{
	static void (*volatile g_fn)(void *, size_t);
	static void *volatile g_p;
	static volatile size_t g_n;

	g_fn = fn;
	g_p = p;
	g_n = n;
	if (!sigsetjmp(touch_jmp, 1)) {
		touching = 1;
		g_fn(g_p, g_n);
	}
	touching = 0;
}

/* Writes n random bytes at p, surviving a fault. */
static void scribble(void *p, size_t n) { guarded(rnd_bytes, p, n); }

static void read_pages_rw(void *p, size_t n) { read_pages(p, n); }

/* Reads every page of [p, p + n), surviving a fault. */
static void touch(const void *p, size_t n) { guarded(read_pages_rw, (void *)p, n); }

static void slot_add(struct slot *s, __u32 id)
{
	if (s->nids < MAX_IDS)
		s->ids[s->nids++] = id;
}

/* ------------------------------------------------------------------------
 * Loadgen threads
 */
struct gen {
	pthread_t thread;
	int fd;
	__u32 id, mode, size, flags;
	__u64 runs;
};

static void *gen_main(void *arg)
{
	struct gen *g = arg;

	while (!stop_threads) {
		struct archangel_loadgen_req req = {
			.channel_id = g->id, .mode = g->mode, .size = g->size, .flags = g->flags,
			.count = 1 + rnd_below(2000),
		};

		au_loadgen(g->fd, &req);
		g->runs++;
		if (!(g->flags & ARCHANGEL_LOADGEN_BLOCK))
			usleep(1000);
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * An episode
 */
struct ep {
	int ctl, rw;
	struct au_channel ch;
	int attached;
	struct slot *slot;
	unsigned char *extra;	/* a random mapping, or NULL */
	size_t extra_len;
	unsigned char *shm;
	size_t shm_len;
};

static void random_geometry(struct archangel_create_req *req)
{
	static const __u32 rings[] = { 4096, 8192, 16384, 65536 };

	memset(req, 0, sizeof(*req));
	req->channel_id = ARCHANGEL_CHANNEL_ANY;
	req->flags = ARCHANGEL_CREATE_ATTACH;
	if (rnd() & 1)
		return;		/* defaults */
	req->flags |= ARCHANGEL_CREATE_EXACT;
	req->normal_ring_bytes = rings[rnd_below(4)];
	req->express_ring_bytes = rings[rnd_below(4)];
	req->pool_buffer_size = 256U << rnd_below(6);
	req->pool_buffer_count = (__u32)rnd_below(4) * 16;
	req->pool_threshold = (__u32)rnd_below(900);
	req->max_segments = 1 + (__u32)rnd_below(16);
}

static int ep_new_channel(struct ep *e)
{
	struct archangel_create_req req;
	int err;

	if (e->attached)
		au_detach(&e->ch, 1);
	e->attached = 0;
	random_geometry(&req);
	err = au_channel_new(&e->ch, &req);
	if (err == -EINVAL) {
		memset(&req, 0, sizeof(req));
		req.channel_id = ARCHANGEL_CHANNEL_ANY;
		err = au_channel_new(&e->ch, &req);
	}
	if (err)
		return err;
	e->attached = 1;
	slot_add(e->slot, e->ch.id);
	return 0;
}

/* Re-attach to the same channel on a new file; a new channel if that fails. */
static void ep_reattach(struct ep *e)
{
	__u32 id = e->ch.id;
	int fd, err;

	au_detach(&e->ch, 1);
	e->attached = 0;
	fd = au_open();
	if (fd < 0)
		return;
	err = au_attach(&e->ch, fd, id, rnd() & 1);
	if (err) {
		close(fd);
		ep_new_channel(e);
		return;
	}
	e->attached = 1;
}

static struct au_prod *rnd_lane(struct ep *e) { return rnd() & 1 ? &e->ch.tx.express : &e->ch.tx.normal; }

/* Publishes a record written by hand at the producer of one lane. */
static void put_record(struct ep *e, struct au_prod *p, const void *rec, __u32 len, __u64 advance)
{
	__u64 pos = p->producer & p->r.mask;

	if (len > p->r.size - pos)
		len = p->r.size - pos;
	memcpy(p->r.data + pos, rec, len);
	p->producer += advance;
	au_publish(&e->ch);
	au_notify(e->ch.fd, ARCHANGEL_NOTIFY_DATA);
}

/* A record with one thing wrong. */
static void bad_record(struct ep *e)
{
	struct au_prod *p = rnd_lane(e);
	struct au_sender *tx = &e->ch.tx;
	unsigned char rec[256] = { 0 };
	struct archangel_msg_header h = {
		.magic = ARCHANGEL_MSG_MAGIC, .type = 1 + rnd_below(7),
		.priority = p == &tx->express ? 2 + rnd_below(2) : rnd_below(2),
		.size = 64, .sequence = ++tx->sequence,
	};
	struct archangel_pool_desc d[4] = { { 0 } };
	__u64 advance = 64;
	int i;

	switch (rnd_below(14)) {
	case 0:
		h.magic = (__u32)rnd();
		break;
	case 1:
		h.type = rnd() & 1 ? 0 : 8 + rnd_below(248);
		break;
	case 2:
		h.priority = p == &tx->express ? rnd_below(2) : 2 + rnd_below(254);
		break;
	case 3:
		h.flags = 1U << (4 + rnd_below(12));
		break;
	case 4:	/* pad, wrong size */
		h.flags = ARCHANGEL_MSG_F_PAD;
		h.size = (__u32)rnd_val();
		break;
	case 5:
		h.size = (__u32)rnd_below(ARCHANGEL_MSG_HEADER_SIZE);
		break;
	case 6:
		h.size = (__u32)rnd_val();
		break;
	case 7:
		h.flags = ARCHANGEL_MSG_F_CORRELATED;
		h.size = ARCHANGEL_MSG_HEADER_SIZE + rnd_below(8);
		break;
	case 8:	/* producer index out of range */
		advance = rnd_val();
		break;
	default: /* pool descriptors out of range, duplicated or not lent */
		h.flags = ARCHANGEL_MSG_F_DMA;
		for (i = 0; i < 4; i++) {
			d[i].buffer = (__u32)rnd_below(tx->count + 2);
			d[i].length = (__u32)rnd_below(tx->buffer_size + 2);
		}
		switch (rnd_below(6)) {
		case 0:
			d[rnd_below(4)].buffer = (__u32)rnd_val();
			break;
		case 1:
			d[rnd_below(4)].offset = (__u32)rnd_val();
			break;
		case 2:
			d[rnd_below(4)].length = (__u32)rnd_val();
			break;
		case 3:
			d[rnd_below(4)].reserved = 1 + (__u32)rnd_below(100);
			break;
		case 4:
			d[1].buffer = d[0].buffer;
			break;
		default:
			h.size = ARCHANGEL_MSG_HEADER_SIZE + 16 * (__u32)rnd_below(300) + rnd_below(16);
			break;
		}
		memcpy(rec + ARCHANGEL_MSG_HEADER_SIZE, d, sizeof(d));
		break;
	}
	memcpy(rec, &h, sizeof(h));
	put_record(e, p, rec, sizeof(rec), advance);
}

/* Garbage in the to_user return ring, published with a plausible or wild index. */
static void bad_returns(struct ep *e)
{
	struct au_iprod *r = &e->ch.rx.returns;
	__u32 v;
	__u64 n, i;

	if (!e->ch.rx.count)
		return;
	n = 1 + rnd_below(8);
	for (i = 0; i < n; i++) {
		v = rnd() & 1 ? (__u32)rnd_val() : (__u32)rnd_below(e->ch.rx.count);
		((__u32 *)r->r.data)[(r->producer + i) & r->r.mask] = v;
	}
	r->producer += rnd() & 3 ? n : rnd_val();
	__atomic_store_n(r->r.kproducer, r->producer, __ATOMIC_RELEASE);
	au_notify(e->ch.fd, ARCHANGEL_NOTIFY_SPACE);
}

static void random_ioctl(struct ep *e)
{
	static const __u32 sizes[] = { 0, 4, 8, 16, 64, 72, 472, 4, 8 };
	unsigned char arg[4096];
	int fds[4] = { e->attached ? e->ch.fd : e->ctl, e->ctl, e->rw, e->ch.data_efd };
	unsigned long cmd, ptr;
	__u32 nr = (__u32)rnd_below(14), dir = (__u32)rnd_below(4);
	int fd = fds[rnd_below(4)];

	rnd_bytes(arg, sizeof(arg));
	if (rnd_below(4) == 0) {	/* well-formed command, random contents */
		static const unsigned long good[] = {
			ARCHANGEL_IOC_CREATE, ARCHANGEL_IOC_ATTACH, ARCHANGEL_IOC_SET_EVENTFDS, ARCHANGEL_IOC_NOTIFY,
			ARCHANGEL_IOC_SETUP_SHM, ARCHANGEL_IOC_CLEANUP_SHM, ARCHANGEL_IOC_SHM_SIZE,
			ARCHANGEL_IOC_LOADGEN, ARCHANGEL_IOC_RW_LOOPBACK,
		};
		cmd = good[rnd_below(sizeof(good) / sizeof(good[0]))];
		if (cmd == ARCHANGEL_IOC_LOADGEN) {
			struct archangel_loadgen_req *l = (void *)arg;

			l->count %= 5000;	/* keep it short; the timer interrupts the rest */
			if (rnd() & 1)
				l->channel_id = e->ch.id;
		}
		if (cmd == ARCHANGEL_IOC_SETUP_SHM)
			*(__u64 *)arg = rnd() & 1 ? rnd_val() : rnd_below(1 << 22);
	} else {
		cmd = _IOC(dir, 'A', nr, sizes[rnd_below(sizeof(sizes) / sizeof(sizes[0]))]);
		if (rnd_below(8) == 0)
			cmd = (unsigned long)rnd();
	}
	switch (rnd_below(6)) {
	case 0:
		ptr = 0;
		break;
	case 1:
		ptr = 1 + rnd_below(4096);
		break;
	case 2:	/* a kernel address */
		ptr = 0xffff888000000000UL + rnd_below(1UL << 30);
		break;
	case 3:	/* the read-only header */
		ptr = (unsigned long)e->ch.base;
		break;
	default:
		ptr = (unsigned long)arg;
		break;
	}
	if (cmd == ARCHANGEL_IOC_CREATE && ptr == (unsigned long)arg) {
		struct archangel_create_req *c = (void *)arg;

		c->channel_id = ARCHANGEL_CHANNEL_ANY;	/* keep ids in the set the parent cleans */
		c->normal_ring_bytes = 4096U << rnd_below(6);
		c->express_ring_bytes = 4096U << rnd_below(6);
		c->pool_buffer_count &= 0xff;
	}
	if (ioctl(fd, cmd, ptr) == 0 && cmd == ARCHANGEL_IOC_CREATE && ptr == (unsigned long)arg)
		slot_add(e->slot, ((struct archangel_create_req *)arg)->channel_id);
}

static void random_mmap(struct ep *e)
{
	static const int prots[] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE, PROT_NONE, PROT_READ | PROT_EXEC };
	__u64 total = e->attached ? e->ch.off.total_size : 1 << 20;
	__u64 off, len;
	void *p;

	if (e->extra) {
		munmap(e->extra, e->extra_len);
		e->extra = NULL;
	}
	switch (rnd_below(4)) {
	case 0:
		off = rnd_below(total / 4096 + 4) * 4096;
		break;
	case 1:
		off = ARCHANGEL_MMAP_OFF_SHARED + rnd_below(64) * 4096;
		break;
	case 2:
		off = (rnd() & ~4095ULL) >> (rnd_below(20));
		off &= ~4095ULL;
		break;
	default:
		off = e->attached ? e->ch.off.to_user.pool.buffers : 0;
		break;
	}
	len = (1 + rnd_below(rnd() & 1 ? 8 : total / 4096 + 4)) * 4096;
	p = mmap(NULL, len, prots[rnd_below(5)], rnd() & 7 ? MAP_SHARED : MAP_PRIVATE,
		 e->attached ? e->ch.fd : e->ctl, (off_t)off);
	if (p == MAP_FAILED)
		return;
	touch(p, len);
	if (rnd() & 1)
		scribble((unsigned char *)p + rnd_below(len), 1 + rnd_below(64));
	if (rnd_below(4) == 0) {	/* try to grow it past its region */
		void *q = mremap(p, len, len + 4096 * (1 + rnd_below(16)), MREMAP_MAYMOVE);

		if (q != MAP_FAILED) {
			len += 4096;
			p = q;
			touch(p, len);
		}
	}
	if (rnd_below(4) == 0)
		madvise(p, len, MADV_DONTNEED);
	if (rnd_below(4) == 0)
		mprotect(p, len, PROT_READ | PROT_WRITE);
	e->extra = p;
	e->extra_len = len;
}

static void fork_with_mapping(struct ep *e)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (e->attached) {
			scribble(e->ch.base + 2 * 4096, 64);
			touch(e->ch.base + 2 * 4096, e->ch.span - 2 * 4096);
		}
		_exit(0);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

/* Legitimate traffic, so there is something to corrupt and the kernel is busy. */
static void legit(struct ep *e)
{
	unsigned char buf[9000];
	struct au_msg m;
	int i, r;

	for (i = 0; i < 64; i++) {
		r = au_recv(&e->ch, &m);
		if (r <= 0)
			break;
		au_recv_done(&e->ch, &m);
	}
	for (i = 0; i < 32; i++) {
		__u32 n = (__u32)rnd_below(sizeof(buf));

		rnd_bytes(buf, 16);
		if (au_send(&e->ch, 1 + rnd_below(7), rnd_below(4), buf, n, rnd() & 1 ? (__u64 *)buf : NULL, 1))
			break;
	}
	if (rnd_below(8) == 0)
		au_wait_data(&e->ch, 5);
}

static void episode(struct slot *slot, __u64 seed, __u64 dur_ns)
{
	struct itimerval it = { .it_interval = { 0, 30000 + rnd_below(200000) } };
	struct gen gens[4];
	int ngen = 0, i, k;
	struct ep e;
	__u64 end = au_now_ns() + dur_ns, t0;
	int kind;

	rng_state = seed | 1;
	memset(&e, 0, sizeof(e));
	e.slot = slot;
	e.ctl = au_open();
	e.rw = open(AU_RW_DEVICE, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	e.ch.fd = e.ch.data_efd = e.ch.space_efd = -1;
	if (e.ctl < 0 || ep_new_channel(&e))
		_exit(2);
	it.it_value = it.it_interval;
	setitimer(ITIMER_REAL, &it, NULL);
	for (i = 0; i < 4; i++) {
		static const __u32 modes[] = { ARCHANGEL_LOADGEN_PRODUCE, ARCHANGEL_LOADGEN_ECHO, ARCHANGEL_LOADGEN_SINK,
					       ARCHANGEL_LOADGEN_PRODUCE };
		struct gen *g = &gens[ngen];

		if (rnd_below(4) == 0)
			continue;
		g->fd = rnd_below(4) ? e.ctl : e.ch.fd;	/* sometimes the file we will close */
		g->id = e.ch.id;
		g->mode = modes[i];
		g->size = (__u32)rnd_below(rnd() & 1 ? 256 : 140000);
		g->flags = rnd() & 1 ? ARCHANGEL_LOADGEN_BLOCK : 0;
		g->runs = 0;
		if (!pthread_create(&g->thread, NULL, gen_main, g))
			ngen++;
	}
	while (au_now_ns() < end) {
		slot->actions++;
		if (!e.attached && ep_new_channel(&e))
			break;
		if (rnd_below(8) == 0) {	/* a failed channel ignores us: move on, sometimes */
			struct pollfd p = { .fd = e.ch.fd, .events = POLLIN };

			if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR) && ep_new_channel(&e))
				break;
			for (k = 0; k < ngen; k++)
				gens[k].id = e.ch.id;
		}
		kind = (int)rnd_below(20);
		t0 = au_now_ns();
		switch (kind) {
		case 0: case 1: case 2: case 3:
			legit(&e);
			break;
		case 4:	/* random bytes over the lines we write */
			scribble(e.ch.base + 2 * 4096 + rnd_below(4096 - 64), 1 + rnd_below(64));
			au_notify(e.ch.fd, (__u32)rnd_below(4));
			break;
		case 5:	/* over the ring data and the pools */
			k = (int)rnd_below(3);
			if (k == 0)
				scribble(e.ch.base + e.ch.off.to_kernel.normal.data, e.ch.off.to_kernel.normal.size);
			else if (k == 1 && e.ch.tx.count)
				scribble(e.ch.tx.buffers, e.ch.tx.buffer_size);
			else
				scribble(e.ch.base + e.ch.off.to_user.normal.data + rnd_below(e.ch.off.to_user.normal.size),
					 1 + rnd_below(64));
			au_notify(e.ch.fd, ARCHANGEL_NOTIFY_ALL);
			break;
		case 6: case 7:
			bad_record(&e);
			break;
		case 8:
			bad_returns(&e);
			break;
		case 9:	/* a garbage intent, then close: the kernel's recovery reads it */
			if (e.ch.rx.kintent) {
				__u64 v = rnd() & 1 ? rnd_val()
						    : ARCHANGEL_RETURN_INTENT(e.ch.rx.normal.consumer + 8 * rnd_below(2),
									      rnd() & 1, e.ch.rx.returns.producer +
									      rnd_below(300));

				__atomic_store_n(e.ch.rx.kintent, v, __ATOMIC_RELEASE);
			}
			ep_reattach(&e);
			break;
		case 10: case 11:
			random_ioctl(&e);
			break;
		case 12:
			random_mmap(&e);
			break;
		case 13:
			fork_with_mapping(&e);
			break;
		case 14:	/* close mid-operation (loadgen threads may be in the file) */
			ep_reattach(&e);
			break;
		case 15:	/* destroy while mapped, keep writing the mapping, then a new channel */
			au_destroy(e.ctl, e.ch.id);
			scribble(e.ch.base + 2 * 4096, 4096);
			touch(e.ch.base, e.ch.span);
			au_notify(e.ch.fd, ARCHANGEL_NOTIFY_ALL);
			ep_new_channel(&e);
			for (k = 0; k < ngen; k++)
				gens[k].id = e.ch.id;
			break;
		case 16:	/* eventfd registrations: wrong kinds of fd, closed ones */
			{;
			int bogus[] = { e.ch.fd, e.ctl, 999, -1, -2, e.rw };

			au_set_eventfds(e.ch.fd, bogus[rnd_below(6)], bogus[rnd_below(6)]);
			if (rnd() & 1) {
				int fd = eventfd(0, EFD_CLOEXEC);

				au_set_eventfds(e.ch.fd, fd, fd);
				close(fd);	/* the kernel keeps its own reference */
			}
			break;
		}
		case 17:	/* the shared region */
			{;
			__u64 size = rnd() & 1 ? 4096 * (1 + rnd_below(32)) : rnd_val();

			if (e.shm) {
				if (rnd() & 1) {
					munmap(e.shm, e.shm_len);
					e.shm = NULL;
				}
			}
			ioctl(e.ch.fd, rnd() & 1 ? ARCHANGEL_IOC_SETUP_SHM : ARCHANGEL_IOC_CLEANUP_SHM, &size);
			if (!e.shm && !ioctl(e.ch.fd, ARCHANGEL_IOC_SHM_SIZE, &size) && size && size < (64 << 20)) {
				void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, e.ch.fd,
					       (off_t)ARCHANGEL_MMAP_OFF_SHARED);

				if (p != MAP_FAILED) {
					e.shm = p;
					e.shm_len = size;
				}
			}
			if (e.shm)
				scribble(e.shm + rnd_below(e.shm_len), 1);
			break;
		}
		case 18:	/* the read()/write() device */
			{;
			unsigned char buf[512];
			__u32 v = (__u32)rnd_below(2);

			if (e.rw < 0)
				break;
			if (write(e.rw, buf, rnd_below(sizeof(buf))) < 0 && errno == EAGAIN)
				while (read(e.rw, buf, sizeof(buf)) > 0)
					;
			if (read(e.rw, buf, rnd_below(sizeof(buf))) < 0 && errno == EMSGSIZE)
				(void)read(e.rw, buf, 0);
			ioctl(e.rw, ARCHANGEL_IOC_RW_LOOPBACK, &v);
			break;
		}
		default:	/* notify storm */
			for (k = 0; k < 100; k++)
				au_notify(e.ch.fd, (__u32)rnd_below(8));
			break;
		}
		slot->ns[kind] += au_now_ns() - t0;
		slot->n[kind]++;
	}
	/* Record what /proc says about our channels, then leave. */
	{
		char *text = au_read_file(AU_PROC_COMM);

		for (k = 0; text && k < slot->nids; k++) {
			long long a = au_proc_value(text, slot->ids[k], "to_user", "errors");
			long long b = au_proc_value(text, slot->ids[k], "to_kernel", "errors");

			slot->errors += (a > 0 ? a : 0) + (b > 0 ? b : 0);
			slot->failed += au_proc_active(text, slot->ids[k]) == 0;
		}
		free(text);
	}
	stop_threads = 1;
	_exit(0);
}

/* ------------------------------------------------------------------------
 * Deterministic probes: garbage must be rejected, counted and fail the channel.
 */
static int probe_failed(__u32 id, const char *dir, const char *what)
{
	long long errors = t_proc(id, dir, "errors");
	char *text = au_read_file(AU_PROC_COMM);
	int active = text ? au_proc_active(text, id) : -1;

	free(text);
	if (errors < 1 || active != 0) {
		fprintf(stderr, "scribbler: probe '%s': %s errors=%lld, channel %s\n", what, dir, errors,
			active == 1 ? "active" : active == 0 ? "failed" : "gone");
		return 1;
	}
	return 0;
}

static int probes(int ctl)
{
	struct archangel_loadgen_req req;
	struct au_channel ch;
	unsigned char payload[4096] = { 0 };
	struct au_msg m;
	short rev;
	int bad = 0, err;

	/* P1: a record with a bad magic on to_kernel; SINK finds it. */
	if (au_channel_new(&ch, NULL))
		return 1;
	au_send(&ch, ARCHANGEL_MSG_CONTROL, 0, payload, 64, NULL, 0);
	ch.tx.normal.r.data[0] ^= 0xff;
	au_publish(&ch);
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_SINK;
	req.count = 1;
	err = au_loadgen(ctl, &req);
	if (!err || req.done) {
		fprintf(stderr, "scribbler: probe bad magic: sink returned %d, done %llu\n", err,
			(unsigned long long)req.done);
		bad = 1;
	}
	bad |= probe_failed(ch.id, "to_kernel", "bad magic");
	{
		struct pollfd p = { .fd = ch.fd, .events = POLLIN | POLLOUT };

		poll(&p, 1, 0);
		rev = p.revents;
	}
	if ((rev & (POLLERR | POLLHUP)) != (POLLERR | POLLHUP)) {
		fprintf(stderr, "scribbler: probe bad magic: poll revents %#x on a failed channel\n", rev);
		bad = 1;
	}
	au_destroy(ctl, ch.id);
	au_detach(&ch, 1);

	/* P2: a descriptor naming a buffer past the pool. */
	if (au_channel_new(&ch, NULL))
		return 1;
	au_send(&ch, ARCHANGEL_MSG_CONTROL, 0, payload, 2048, NULL, 0);
	((struct archangel_pool_desc *)(ch.tx.normal.r.data + ARCHANGEL_MSG_HEADER_SIZE))->buffer = 64;
	au_publish(&ch);
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_SINK;
	req.count = 1;
	au_loadgen(ctl, &req);
	bad |= req.done != 0;
	bad |= probe_failed(ch.id, "to_kernel", "descriptor out of range");
	au_destroy(ctl, ch.id);
	au_detach(&ch, 1);

	/* P3: a bogus buffer index returned on to_user; PRODUCE needs buffers back. */
	if (au_channel_new(&ch, NULL))
		return 1;
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.size = 4096;
	req.count = 1;
	au_loadgen(ctl, &req);
	if (t_recv(&ch, &m, 2000)) {
		struct au_iprod *r = &ch.rx.returns;

		au_recv_done(&ch, &m);
		((__u32 *)r->r.data)[r->producer & r->r.mask] = 1000;	/* not a buffer of a 64-buffer pool */
		r->producer++;
		__atomic_store_n(r->r.kproducer, r->producer, __ATOMIC_RELEASE);
	}
	req.count = 200;
	au_loadgen(ctl, &req);
	bad |= probe_failed(ch.id, "to_user", "bogus returned buffer");
	au_destroy(ctl, ch.id);
	au_detach(&ch, 1);

	/* P4: the to_user consumer indices jump past the producer; PRODUCE fills a ring. */
	if (au_channel_new(&ch, NULL))
		return 1;
	__atomic_store_n(ch.rx.normal.r.kconsumer, 1ULL << 40, __ATOMIC_RELEASE);
	__atomic_store_n(ch.rx.express.r.kconsumer, 1ULL << 40, __ATOMIC_RELEASE);
	memset(&req, 0, sizeof(req));
	req.channel_id = ch.id;
	req.mode = ARCHANGEL_LOADGEN_PRODUCE;
	req.size = 64;
	req.count = 100000;
	au_loadgen(ctl, &req);
	bad |= probe_failed(ch.id, "to_user", "consumer index out of range");
	au_destroy(ctl, ch.id);
	au_detach(&ch, 1);
	return bad;
}

/* After the storm a clean channel still works both ways. */
static int clean_run(int ctl)
{
	unsigned char buf[64] = { 0 };
	struct au_channel ch;
	struct t_loadgen lg;
	struct au_msg m;
	int i, err;

	err = au_channel_new(&ch, NULL);
	if (err) {
		fprintf(stderr, "scribbler: clean channel: %s\n", strerror(-err));
		return 1;
	}
	t_loadgen_start(&lg, ctl, ch.id, ARCHANGEL_LOADGEN_PRODUCE, 64, 2000, ARCHANGEL_LOADGEN_BLOCK);
	for (i = 0; i < 2000; i++) {
		__u64 idx;

		if (!t_recv(&ch, &m, 5000)) {
			fprintf(stderr, "scribbler: clean produce stalled at %d\n", i);
			return 1;
		}
		au_msg_copy(&m, buf, sizeof(buf));
		memcpy(&idx, buf, 8);
		if (m.length != 64 || au_pattern_check(buf, 64, idx) >= 0) {
			fprintf(stderr, "scribbler: clean produce: message %d corrupted\n", i);
			return 1;
		}
		au_recv_done(&ch, &m);
	}
	if (t_loadgen_join(&lg) || lg.req.done != 2000) {
		fprintf(stderr, "scribbler: clean produce: %s\n", strerror(-lg.err));
		return 1;
	}
	t_loadgen_start(&lg, ctl, ch.id, ARCHANGEL_LOADGEN_ECHO, 0, 500, ARCHANGEL_LOADGEN_BLOCK);
	for (i = 0; i < 500; i++) {
		if (au_send_wait(&ch, ARCHANGEL_MSG_AI_REQUEST, 1, buf, sizeof(buf), NULL, 5000) || !t_recv(&ch, &m, 5000)) {
			fprintf(stderr, "scribbler: clean echo %d failed\n", i);
			stop_threads = 1;
			break;
		}
		au_recv_done(&ch, &m);
	}
	if (t_loadgen_join(&lg) || lg.req.done != 500)
		return 1;
	if (t_proc(ch.id, "to_user", "errors") || t_proc(ch.id, "to_kernel", "errors")) {
		fprintf(stderr, "scribbler: errors on the clean channel\n");
		return 1;
	}
	au_destroy(ctl, ch.id);
	au_detach(&ch, 1);
	return 0;
}

static void destroy_slot(int ctl, struct slot *s)
{
	int k;

	for (k = 0; k < s->nids; k++)
		au_destroy(ctl, s->ids[k]);
	s->nids = 0;
}

int main(int argc, char **argv)
{
	struct { pid_t pid; __u64 deadline, killed_at; } kids[MAX_KIDS] = { { 0 } };
	struct slot *slots;
	long long errors = 0;
	int failed = 0, episodes = 0, killed = 0, crashed = 0, ctl, i, k, status;
	__u64 kind_ns[20] = { 0 }, kind_n[20] = { 0 };
	__u64 seed, end, actions = 0;
	struct sigaction sa;
	const char *why;
	char *text;
	int secs = argc > 1 ? atoi(argv[1]) : 30;

	t_init("scribbler");
	seed = argc > 2 ? strtoull(argv[2], NULL, 0) : (au_now_ns() ^ (__u64)getpid() << 32);
	fprintf(stderr, "scribbler: %d s, seed %#llx\n", secs, (unsigned long long)seed);
	rng_state = seed | 1;
	slots = mmap(NULL, sizeof(*slots) * MAX_KIDS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ctl = au_open();
	CHECK(ctl >= 0 && slots != MAP_FAILED, "setup");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_segv;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sa.sa_handler = on_alarm;	/* no SA_RESTART: interrupts blocking ioctls */
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (probes(ctl))
		T_FAILF("garbage was not rejected before the storm");
	{	/* one very large channel: the allocation must fail cleanly or work */
		struct archangel_create_req big = { .channel_id = ARCHANGEL_CHANNEL_ANY, .normal_ring_bytes = 1U << 30,
						    .express_ring_bytes = 1U << 30 };
		int err = au_create(ctl, &big);

		fprintf(stderr, "scribbler: 2 x 2 GiB of rings: %s\n", err ? strerror(-err) : "created");
		if (!err)
			au_destroy(ctl, big.channel_id);
	}

	end = au_now_ns() + (__u64)secs * 1000000000ULL;
	for (;;) {
		int running = 0;
		__u64 now = au_now_ns();

		for (i = 0; i < MAX_KIDS; i++) {
			if (kids[i].pid) {
				pid_t r = waitpid(kids[i].pid, &status, WNOHANG);

				if (r == kids[i].pid) {
					if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
						crashed++;
					errors += slots[i].errors;
					failed += slots[i].failed;
					actions += slots[i].actions;
					for (k = 0; k < 20; k++) {
						kind_ns[k] += slots[i].ns[k];
						kind_n[k] += slots[i].n[k];
					}
					destroy_slot(ctl, &slots[i]);
					kids[i].pid = 0;
				} else if (kids[i].killed_at && now - kids[i].killed_at > 30000000000ULL) {
					char path[64];
					char *wchan;

					snprintf(path, sizeof(path), "/proc/%d/wchan", kids[i].pid);
					wchan = au_read_file(path);
					T_FAILF("episode %d does not die 30 s after SIGKILL (wchan %s): stuck in the kernel",
						kids[i].pid, wchan ? wchan : "?");
				} else if (!kids[i].killed_at && now > kids[i].deadline) {
					kill(kids[i].pid, SIGKILL);
					kids[i].killed_at = now;
					killed++;
				}
			}
			if (!kids[i].pid && now < end) {
				__u64 dur = 200000000ULL + rnd_below(1300000000ULL);
				__u64 kseed = rnd();
				pid_t pid;

				memset(&slots[i], 0, sizeof(slots[i]));
				pid = fork();
				CHECK(pid >= 0, "fork");
				if (pid == 0) {
					close(ctl);
					episode(&slots[i], kseed, dur);
				}
				kids[i].pid = pid;
				kids[i].deadline = now + dur + 10000000000ULL;
				kids[i].killed_at = 0;
				episodes++;
			}
			running += kids[i].pid != 0;
		}
		if (!running && au_now_ns() >= end)
			break;
		usleep(20000);
	}
	/* Whatever is left: every id the module may hand out. */
	for (i = 0; i < 1024; i++)
		au_destroy(ctl, (__u32)i);

	fprintf(stderr, "scribbler: %d episodes, %llu actions, %d killed at their deadline, %d died of a signal\n",
		episodes, (unsigned long long)actions, killed, crashed);
	fprintf(stderr, "scribbler: %lld errors counted, %d channels failed\n", errors, failed);
	fprintf(stderr, "scribbler: actions (kind count ms):");
	for (k = 0; k < 20; k++)
		fprintf(stderr, " %d:%llu/%llu", k, (unsigned long long)kind_n[k], (unsigned long long)kind_ns[k] / 1000000);
	fprintf(stderr, "\n");
	if (probes(ctl))
		T_FAILF("garbage was not rejected after the storm");
	if (clean_run(ctl))
		T_FAILF("a clean channel does not work after the storm");
	text = au_read_file(AU_PROC_COMM);
	CHECK(text, "read %s", AU_PROC_COMM);
	why = t_proc_check_format(text);
	CHECK(!why, "%s after the storm:\n%s", why, text);
	free(text);
	CHECK(errors > 0, "the storm produced no counted error");
	CHECK(failed > 0, "no channel failed during the storm");
	close(ctl);
	fprintf(stderr, "scribbler: the kernel survived\n");
	return T_PASS;
}
