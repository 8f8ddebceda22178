// SPDX-License-Identifier: GPL-2.0
/*
 * hostile_peer [SECONDS [SEED]]: a hostile user side against archangel.ko
 * and archangel_sensors.ko while in-kernel senders run.
 *
 * Episodes (forked, two at a time, 1-4 s each, each with its own seed drawn
 * from SEED) create channels of random geometry, map every piece of them,
 * start LOADGEN threads (PRODUCE, ECHO, SINK; blocking, batched, paced,
 * atomic), and then do, at random: legitimate traffic; scribbles over producer and
 * consumer indices, need words, record headers, pool descriptors
 * (scatter-gather lists), return-ring entries, the progress line, the ring
 * data and the pools; random ioctls on every device with bad sizes, bad
 * pointers and bad values; mmap, munmap (whole and split), mremap (grow,
 * shrink, move, DONTUNMAP), mprotect, fork with the mappings, close
 * mid-operation, eventfd-swap sequences, destroy while mapped, ioctls on
 * destroyed and unbound files, the shared region, wait policies, refused
 * sensor ioctls and random AI_RESPONSEs. Meanwhile an engine process keeps
 * the sensors attached to a channel of its own with every sensor on (exec,
 * every system call with its exit, every packet, page faults and W^X),
 * answers their AI_REQUESTs with random verdicts (and, with
 * $ARCHANGEL_HOSTILE_SENSOR_CYCLE=N, moves to a new channel every N s), and a noise process
 * (not the engine, so the sensors trace it) execs, makes system calls,
 * sends UDP on loopback, maps W^X pages and faults.
 *
 * Deterministic probes (bad magic, a descriptor out of the pool, a bogus
 * returned buffer, consumer and producer indices out of range) must each
 * fail their channel and be counted in /proc/archangel/comm errors; every
 * channel an episode leaves must be failed exactly when its errors are
 * non-zero. At the end: every object freed (/proc/archangel/pool live_*
 * back to the start), a clean channel still works, and the kernel log has
 * no Oops, BUG, WARNING, lockdep, refcount, use-after-free, KASAN, KFENCE
 * or UBSAN report. Prints the seed, operations by kind, errors by errno,
 * probe results and the module's error counters.
 *
 * SECONDS defaults to $ARCHANGEL_HOSTILE_SECONDS, else 60; 0 skips.
 */
#include "t_common.h"
#include "archangel_sensors_uapi.h"
#include "archangel_sensors_ioctl.h"
#include <setjmp.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/klog.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define SENSORS_DEV	"/dev/archangel_sensors"
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP	4
#endif
#define MAX_KIDS	2
#define MAX_IDS		32
#define MAX_EXTRA	8
#define NERRNO		134

enum op {
	OP_LEGIT, OP_INDEX, OP_HEADER, OP_DESC, OP_RETURNS, OP_LINES, OP_DATA, OP_INTENT,
	OP_IOCTL, OP_SENSOR_IOCTL, OP_MMAP, OP_MUNMAP, OP_MREMAP, OP_MPROTECT, OP_FORK,
	OP_CLOSE, OP_EFD_SWAP, OP_DESTROY, OP_DEAD_IOCTL, OP_SHM, OP_WAIT, OP_NOTIFY,
	OP_POLL, OP_SENSORS, OP_RESPONSE, OP_PROBE, OP_NEW_CHANNEL, OP_LOADGEN, NOPS
};

static const char *const op_names[NOPS] = {
	"legit", "index", "header", "desc", "returns", "lines", "data", "intent+close",
	"ioctl", "sensor_ioctl", "mmap", "munmap", "mremap", "mprotect", "fork",
	"close", "eventfd_swap", "destroy", "dead_ioctl", "shm", "wait_cfg", "notify",
	"poll", "sensors", "ai_response", "probe", "new_channel", "loadgen_run",
};

enum probe { PR_MAGIC, PR_DESC, PR_RETURN, PR_CONSUMER, PR_PRODUCER, NPROBES };

static const char *const probe_names[NPROBES] = {
	"bad_magic", "desc_out_of_pool", "bogus_return", "consumer_jump", "producer_jump",
};

/* Shared by every process of the run (MAP_SHARED): updated atomically. */
struct shared {
	__u64 ops[NOPS];
	__u64 op_errors[NOPS];
	__u64 err[NERRNO];
	__u64 probes[NPROBES], probes_ok[NPROBES];
	__u64 channels, failed, errors_to_user, errors_to_kernel, inconsistent;
	__u64 sensor_attach, sensor_attach_busy, sensor_records;
	__u64 episodes;
	__u64 contract_wrong;	/* a destroyed or unbound file answered wrongly */
	__u64 probes_lost;	/* probe channels another episode destroyed first */
	__u64 sweeps;		/* times the parent destroyed channels left behind */
	__u64 probes_cut;	/* probe tries a signal cut short */
	__u64 probes_missed;	/* episodes' probes the kernel did not catch (see probe()) */
	__u64 final_probes, final_ok;
	char missed_probe[320];
	volatile __u32 engine_id;	/* the engine's channel, ~0: none */
	int crash_sig, crash_op;	/* the last episode that died of a signal */
	unsigned long crash_addr;
	char bad_probe[256];
	char inconsistency[256];
	char contract[256];
};

static struct shared *S;
static __u64 rng_state;
static sigjmp_buf touch_jmp;
static volatile sig_atomic_t touching;
static volatile int stop_threads;

static void add(__u64 *c, __u64 n) { __atomic_fetch_add(c, n, __ATOMIC_RELAXED); }

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

/* Boundaries more often than noise. */
static __u64 rnd_val(void)
{
	static const __u64 v[] = { 0, 1, 7, 8, 27, 28, 31, 32, 4095, 4096, 65535, 65536,
				   0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL, ~0ULL,
				   ~0ULL - 7, 1ULL << 63, 1ULL << 40 };

	return rnd() & 1 ? v[rnd_below(sizeof(v) / sizeof(v[0]))] + rnd_below(3) - 1 : rnd();
}

/* Counts one operation of @kind and its result (0 or -errno). */
static int count(enum op kind, int r)
{
	add(&S->ops[kind], 1);
	if (r < 0) {
		add(&S->op_errors[kind], 1);
		add(&S->err[-r < NERRNO ? -r : 0], 1);
	}
	return r;
}

static int sys(long r) { return r < 0 ? -errno : 0; }

static volatile int cur_op = -1;	/* the episode's operation in progress */

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (touching)
		siglongjmp(touch_jmp, sig);
	if (S) {
		S->crash_sig = sig;
		S->crash_op = cur_op;
		S->crash_addr = (unsigned long)si->si_addr;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_alarm(int sig) { (void)sig; }

static __attribute__((noinline)) void read_pages(void *p, size_t n)
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

static void scribble(void *p, size_t n) { guarded(rnd_bytes, p, n); }

/* 1-64 random bytes somewhere in [p, p + len), never past its end. */
static void scribble_in(void *p, size_t len)
{
	size_t at = rnd_below(len), n = 1 + rnd_below(64);

	scribble((unsigned char *)p + at, n < len - at ? n : len - at);
}
static void touch(void *p, size_t n) { guarded(read_pages, p, n); }

static void store64(__u64 *p, __u64 v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* ------------------------------------------------------------------------
 * LOADGEN threads: the module's own senders and receivers
 */
struct gen {
	pthread_t thread;
	volatile int fd;
	volatile __u32 id;
	__u32 mode;
};

static void *gen_main(void *arg)
{
	struct gen *g = arg;

	while (!stop_threads) {
		struct archangel_loadgen_req req = {
			.channel_id = g->id, .mode = g->mode,
			.count = 1 + rnd_below(3000),
		};

		switch (rnd_below(6)) {
		case 0:
			req.flags = ARCHANGEL_LOADGEN_BLOCK;
			break;
		case 1:
			req.flags = ARCHANGEL_LOADGEN_BATCH | (rnd() & 1 ? ARCHANGEL_LOADGEN_BLOCK : 0);
			break;
		case 2:
			req.flags = ARCHANGEL_LOADGEN_ATOMIC | (rnd() & 1 ? ARCHANGEL_LOADGEN_BLOCK : 0);
			break;
		case 3:
			req.flags = ARCHANGEL_LOADGEN_PACED | ARCHANGEL_LOADGEN_BLOCK;
			req.interval_ns = 1000 + rnd_below(200000);
			req.count = 1 + rnd_below(200);
			break;
		default:
			break;
		}
		req.size = (__u32)rnd_below(rnd() & 1 ? 300 : 140000);
		count(OP_LOADGEN, au_loadgen(g->fd, &req));
		if (!(req.flags & ARCHANGEL_LOADGEN_BLOCK))
			usleep(500);
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * An episode
 */
struct ep {
	int ctl, rw, sfd;
	struct au_channel ch;
	int attached;
	__u32 ids[MAX_IDS];
	int nids;
	struct { unsigned char *p; size_t len; } extra[MAX_EXTRA];
	unsigned char *shm;
	size_t shm_len;
	struct gen gens[4];
	int ngen;
};

static void ep_note_id(struct ep *e, __u32 id)
{
	if (e->nids < MAX_IDS)
		e->ids[e->nids++] = id;
}

/*
 * The module's verdict on channel @id before it goes: a failed channel has
 * counted its error, a channel with errors has failed. The two are written
 * one after the other, so a reading between them is retried.
 */
static void check_channel(__u32 id)
{
	long long eu = 0, ek = 0;
	int active = -1, tries;

	for (tries = 0; tries < 5; tries++) {
		char *text = au_read_file(AU_PROC_COMM);

		if (!text)
			return;
		active = au_proc_active(text, id);
		eu = au_proc_value(text, id, "to_user", "errors");
		ek = au_proc_value(text, id, "to_kernel", "errors");
		free(text);
		if (active < 0)
			return;		/* gone already (another episode's id) */
		if ((active == 0) == (eu + ek > 0))
			break;
		usleep(20000);
	}
	add(&S->channels, 1);
	add(&S->failed, active == 0);
	add(&S->errors_to_user, eu > 0 ? eu : 0);
	add(&S->errors_to_kernel, ek > 0 ? ek : 0);
	if ((active == 0) != (eu + ek > 0)) {
		add(&S->inconsistent, 1);
		snprintf(S->inconsistency, sizeof(S->inconsistency),
			 "channel %u %s with errors to_user=%lld to_kernel=%lld", id,
			 active ? "active" : "failed", eu, ek);
	}
}

static void ep_destroy_all(struct ep *e)
{
	int i;

	for (i = 0; i < e->nids; i++) {
		check_channel(e->ids[i]);
		au_destroy(e->ctl, e->ids[i]);
	}
	e->nids = 0;
}

static void random_geometry(struct archangel_create_req *req)
{
	static const __u32 rings[] = { 4096, 8192, 16384, 65536 };

	memset(req, 0, sizeof(*req));
	req->channel_id = ARCHANGEL_CHANNEL_ANY;
	req->flags = ARCHANGEL_CREATE_ATTACH;
	if (rnd() & 1)
		return;
	req->flags |= ARCHANGEL_CREATE_EXACT;
	req->normal_ring_bytes = rings[rnd_below(4)];
	req->express_ring_bytes = rings[rnd_below(4)];
	req->pool_buffer_size = 256U << rnd_below(6);
	req->pool_buffer_count = (__u32)rnd_below(4) * 16;
	req->pool_threshold = (__u32)rnd_below(900);
	req->max_segments = 1 + (__u32)rnd_below(16);
}

/*
 * Attaches the sensors to channel @id with every sensor on. Each attach and
 * detach flips the tracepoints' static keys (text_poke with int3), which
 * under TCG can Oops the guest by itself (docs/kernel-testing.md, "The
 * soak"): only the engine process does it, at start and every few seconds.
 */
static int sensors_attach(int sfd, __u32 id)
{
	struct archangel_sensors_attach a = { .channel_id = id };
	struct archangel_sensors_config c;
	int s, r;

	ioctl(sfd, ARCHANGEL_SENSORS_IOC_DETACH);
	if (rnd() & 1) {
		a.batch_bytes = 256 + (__u32)rnd_below(65536 - 256);
		a.batch_us = (__u32)rnd_below(5000);
	}
	r = count(OP_SENSORS, sys(ioctl(sfd, ARCHANGEL_SENSORS_IOC_ATTACH, &a)));
	if (r == -EBUSY)
		add(&S->sensor_attach_busy, 1);
	if (r)
		return r;
	add(&S->sensor_attach, 1);
	for (s = 0; s < ARCHANGEL_SENSORS_COUNT; s++) {
		memset(&c, 0, sizeof(c));
		c.sensor = s;
		c.flags = ARCHANGEL_SENSORS_F_ENABLED;
		c.deadline_ms = 5 + (__u32)rnd_below(100);
		if (s == ARCHANGEL_SENSORS_ID_SYSCALL) {
			memset(c.syscalls, 0xff, sizeof(c.syscalls));
			c.flags |= ARCHANGEL_SENSORS_F_SYSCALL_EXIT;
		}
		if (s == ARCHANGEL_SENSORS_ID_NET)
			c.flags |= ARCHANGEL_SENSORS_F_NET_ALL;
		if (s == ARCHANGEL_SENSORS_ID_MEM)
			c.interval_ms = 10 + (__u32)rnd_below(100);
		/* Now and then a question: AI_REQUESTs the engine answers at random. */
		if ((s == ARCHANGEL_SENSORS_ID_EXEC || s == ARCHANGEL_SENSORS_ID_NET) && rnd_below(3) == 0)
			c.policy = ARCHANGEL_POLICY_ALLOW_ASK;
		count(OP_SENSORS, sys(ioctl(sfd, ARCHANGEL_SENSORS_IOC_CONFIGURE, &c)));
	}
	return 0;
}

static int ep_new_channel(struct ep *e)
{
	struct archangel_create_req req;
	int err, k;

	if (e->attached)
		au_detach(&e->ch, 1);
	e->attached = 0;
	/* A few channels per episode: the top id stays the engine's. */
	if (e->nids >= 4)
		ep_destroy_all(e);
	random_geometry(&req);
	err = au_channel_new(&e->ch, &req);
	if (err == -EINVAL) {
		memset(&req, 0, sizeof(req));
		req.channel_id = ARCHANGEL_CHANNEL_ANY;
		err = au_channel_new(&e->ch, &req);
	}
	count(OP_NEW_CHANNEL, err);
	if (err == -ENOSPC) {
		ep_destroy_all(e);
		err = au_channel_new(&e->ch, NULL);
	}
	if (err)
		return err;
	e->attached = 1;
	ep_note_id(e, e->ch.id);
	for (k = 0; k < e->ngen; k++)
		e->gens[k].id = e->ch.id;
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

static struct au_prod *rnd_lane(struct ep *e)
{
	return rnd() & 1 ? &e->ch.tx.express : &e->ch.tx.normal;
}

/* A hand-written record at the producer of a lane, published. */
static void put_record(struct ep *e, struct au_prod *p, const void *rec, __u32 len, __u64 advance)
{
	__u64 pos = p->producer & p->r.mask;

	if (len > p->r.size - pos)
		len = p->r.size - pos;
	memcpy(p->r.data + pos, rec, len);
	p->producer += advance;
	store64(p->r.kproducer, p->producer);
	au_notify(e->ch.fd, ARCHANGEL_NOTIFY_DATA);
}

static struct archangel_msg_header good_header(struct ep *e, struct au_prod *p)
{
	struct archangel_msg_header h = {
		.magic = ARCHANGEL_MSG_MAGIC, .type = 1 + rnd_below(7),
		.priority = p == &e->ch.tx.express ? 2 + rnd_below(2) : rnd_below(2),
		.size = 64, .sequence = ++e->ch.tx.sequence,
	};

	return h;
}

/* A record header with one thing wrong. */
static void bad_header(struct ep *e)
{
	struct au_prod *p = rnd_lane(e);
	struct archangel_msg_header h = good_header(e, p);
	unsigned char rec[256] = { 0 };
	__u64 advance = 64;

	switch (rnd_below(9)) {
	case 0:
		h.magic = (__u32)rnd();
		break;
	case 1:
		h.type = rnd() & 1 ? 0 : 8 + rnd_below(248);
		break;
	case 2:
		h.priority = p == &e->ch.tx.express ? rnd_below(2) : 2 + rnd_below(254);
		break;
	case 3:
		h.flags = 1U << (4 + rnd_below(12));
		break;
	case 4:
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
	default:
		advance = rnd_val();
		break;
	}
	memcpy(rec, &h, sizeof(h));
	put_record(e, p, rec, sizeof(rec), advance);
}

/* A pool record whose scatter-gather list is wrong. */
static void bad_desc(struct ep *e)
{
	struct au_prod *p = rnd_lane(e);
	struct archangel_msg_header h = good_header(e, p);
	struct archangel_pool_desc d[8] = { { 0 } };
	unsigned char rec[256] = { 0 };
	struct au_sender *tx = &e->ch.tx;
	int i, n = 1 + (int)rnd_below(8);

	h.flags = ARCHANGEL_MSG_F_DMA | (rnd() & 1 ? ARCHANGEL_MSG_F_CORRELATED : 0);
	for (i = 0; i < n; i++) {
		d[i].buffer = (__u32)rnd_below(tx->count + 2);
		d[i].length = (__u32)rnd_below(tx->buffer_size + 2);
		d[i].offset = (__u32)rnd_below(tx->buffer_size + 2);
	}
	switch (rnd_below(7)) {
	case 0:
		d[rnd_below(n)].buffer = (__u32)rnd_val();
		break;
	case 1:
		d[rnd_below(n)].offset = (__u32)rnd_val();
		break;
	case 2:
		d[rnd_below(n)].length = (__u32)rnd_val();
		break;
	case 3:
		d[rnd_below(n)].reserved = 1 + (__u32)rnd_below(100);
		break;
	case 4:
		d[n - 1].buffer = d[0].buffer;
		break;
	case 5:	/* more segments than allowed, or a ragged list */
		n = (int)rnd_below(300);
		break;
	default:
		break;
	}
	h.size = ARCHANGEL_MSG_HEADER_SIZE + 16 * n + (rnd_below(4) ? 0 : (__u32)rnd_below(16));
	memcpy(rec, &h, sizeof(h));
	memcpy(rec + ARCHANGEL_MSG_HEADER_SIZE, d, sizeof(d));
	put_record(e, p, rec, sizeof(rec), (h.size + 7) & ~7U);
}

/* Garbage in the to_user return ring, published with a plausible or wild index. */
static void bad_returns(struct ep *e)
{
	struct au_iprod *r = &e->ch.rx.returns;
	__u64 n, i;

	if (!e->ch.rx.count)
		return;
	n = 1 + rnd_below(8);
	for (i = 0; i < n; i++)
		((__u32 *)r->r.data)[(r->producer + i) & r->r.mask] =
			rnd() & 1 ? (__u32)rnd_val() : (__u32)rnd_below(e->ch.rx.count);
	r->producer += rnd() & 3 ? n : rnd_val();
	store64(r->r.kproducer, r->producer);
	au_notify(e->ch.fd, ARCHANGEL_NOTIFY_SPACE);
}

/* One of the words the user side writes, set to a wild or nearby value. */
static void bad_index(struct ep *e)
{
	struct au_channel *c = &e->ch;
	__u64 *words[] = {
		c->tx.normal.r.kproducer, c->tx.express.r.kproducer,
		c->rx.normal.r.kconsumer, c->rx.express.r.kconsumer,
		c->rx.returns.r.kproducer, c->tx.returns.r.kconsumer,
	};
	__u32 *flags[] = {
		c->tx.normal.r.kneed_space, c->tx.express.r.kneed_space,
		c->rx.normal.r.kneed_wakeup, c->rx.express.r.kneed_wakeup,
	};

	if (rnd_below(4) == 0) {
		__u32 *f = flags[rnd_below(4)];

		if (f)
			__atomic_store_n(f, (__u32)rnd_val(), __ATOMIC_RELAXED);
	} else {
		__u64 *w = words[rnd_below(6)];	/* NULL: a ring this geometry lacks */

		if (w)
			store64(w, rnd() & 1 ? rnd_val() : *w + rnd_below(64) - 32);
	}
	au_notify(c->fd, (__u32)rnd_below(4));
}

/* ------------------------------------------------------------------------
 * Bad system calls
 */
static unsigned long bad_pointer(struct ep *e, void *good)
{
	switch (rnd_below(7)) {
	case 0:
		return 0;
	case 1:
		return 1 + rnd_below(4096);
	case 2:
		return 0xffff888000000000UL + rnd_below(1UL << 30);
	case 3:
		return (unsigned long)e->ch.base;	/* the read-only header */
	case 4:	/* the last bytes of a mapping before a hole */
		return (unsigned long)e->ch.base + 2 * 4096 - 1 - rnd_below(64);
	default:
		return (unsigned long)good;
	}
}

static void random_ioctl(struct ep *e)
{
	static const __u32 sizes[] = { 0, 4, 8, 16, 40, 64, 72, 472, 24, 112, 680 };
	static const unsigned long good[] = {
		ARCHANGEL_IOC_CREATE, ARCHANGEL_IOC_ATTACH, ARCHANGEL_IOC_DESTROY,
		ARCHANGEL_IOC_SET_EVENTFDS, ARCHANGEL_IOC_NOTIFY, ARCHANGEL_IOC_SETUP_SHM,
		ARCHANGEL_IOC_CLEANUP_SHM, ARCHANGEL_IOC_SHM_SIZE, ARCHANGEL_IOC_LOADGEN,
		ARCHANGEL_IOC_RW_LOOPBACK, ARCHANGEL_IOC_SET_WAIT, ARCHANGEL_IOC_GET_WAIT,
	};
	unsigned char arg[4096] __attribute__((aligned(8)));
	int fds[5] = { e->attached ? e->ch.fd : e->ctl, e->ctl, e->rw, e->ch.data_efd, e->sfd };
	unsigned long cmd, ptr;
	int fd = fds[rnd_below(5)];

	rnd_bytes(arg, sizeof(arg));
	if (rnd_below(3) == 0) {
		cmd = good[rnd_below(sizeof(good) / sizeof(good[0]))];
		if (cmd == ARCHANGEL_IOC_LOADGEN) {
			struct archangel_loadgen_req *l = (void *)arg;

			l->count %= 3000;
			if (rnd() & 1)
				l->channel_id = e->ch.id;
			if (rnd() & 1)
				memset(l->reserved, 0, sizeof(l->reserved));
		}
		if (cmd == ARCHANGEL_IOC_SETUP_SHM)
			*(__u64 *)arg = rnd() & 1 ? rnd_val() : rnd_below(1 << 22);
		if (cmd == ARCHANGEL_IOC_DESTROY)
			*(__u32 *)arg = rnd() & 1 ? e->ch.id : (__u32)rnd_val();
	} else {
		cmd = _IOC((__u32)rnd_below(4), rnd() & 1 ? 'A' : ARCHANGEL_SENSORS_IOC_MAGIC,
			   (__u32)rnd_below(16), sizes[rnd_below(sizeof(sizes) / sizeof(sizes[0]))]);
		if (rnd_below(8) == 0)
			cmd = (unsigned long)rnd();
	}
	ptr = bad_pointer(e, arg);
	if (cmd == ARCHANGEL_IOC_CREATE && ptr == (unsigned long)arg) {
		struct archangel_create_req *c = (void *)arg;

		c->channel_id = ARCHANGEL_CHANNEL_ANY;
		c->normal_ring_bytes = 4096U << rnd_below(6);
		c->express_ring_bytes = 4096U << rnd_below(6);
		c->pool_buffer_count &= 0xff;
	}
	if (count(OP_IOCTL, sys(ioctl(fd, cmd, ptr))) == 0 && cmd == ARCHANGEL_IOC_CREATE &&
	    ptr == (unsigned long)arg)
		ep_note_id(e, ((struct archangel_create_req *)arg)->channel_id);
}

/* The sensors' ioctls with bad sizes, values and pointers. */
static void sensor_ioctl(struct ep *e)
{
	static const unsigned long cmds[] = {
		ARCHANGEL_SENSORS_IOC_ATTACH, ARCHANGEL_SENSORS_IOC_DETACH,
		ARCHANGEL_SENSORS_IOC_CONFIGURE, ARCHANGEL_SENSORS_IOC_GET_CONFIG,
		ARCHANGEL_SENSORS_IOC_EXCLUDE_PID, ARCHANGEL_SENSORS_IOC_GET_STATS,
	};
	unsigned char arg[1024] __attribute__((aligned(8)));
	unsigned long cmd = cmds[rnd_below(6)];

	if (e->sfd < 0)
		return;
	rnd_bytes(arg, sizeof(arg));
	/*
	 * The episodes are not the engine: whatever they send is refused,
	 * so the configuration (and the static keys) stay as the engine set
	 * them. Random bytes fail the reserved-field checks; "mostly valid"
	 * requests get exactly one bad field.
	 */
	if (rnd() & 1) {
		memset(arg, 0, sizeof(arg));
		switch (cmd) {
		case ARCHANGEL_SENSORS_IOC_CONFIGURE: {
			struct archangel_sensors_config *c = (void *)arg;

			c->sensor = (__u32)rnd_below(4);
			c->flags = (__u32)rnd_below(64);
			c->deadline_ms = (__u32)rnd_below(200);
			c->interval_ms = 10 + (__u32)rnd_below(200);
			switch (rnd_below(5)) {
			case 0:
				c->reserved[rnd_below(4)] = 1 | rnd();
				break;
			case 1:
				c->pad[rnd_below(2)] = 1 | (__u8)rnd();
				break;
			case 2:
				c->policy = ARCHANGEL_POLICY_MAX + 1 + (__u8)rnd_below(200);
				break;
			case 3:
				c->sensor = ARCHANGEL_SENSORS_COUNT + (__u32)rnd_below(1000);
				break;
			default:
				c->deadline_ms = ARCHANGEL_SENSORS_DEADLINE_MAX_MS + 1 +
						 (__u32)rnd_below(1000);
				break;
			}
			break;
		}
		case ARCHANGEL_SENSORS_IOC_EXCLUDE_PID: {
			struct archangel_sensors_exclude *x = (void *)arg;

			x->pid = (__u32)(rnd() & 1 ? getpid() + rnd_below(4) : rnd_val());
			x->flags = (__u32)rnd_below(3);
			break;
		}
		case ARCHANGEL_SENSORS_IOC_ATTACH: {
			struct archangel_sensors_attach *a = (void *)arg;

			a->channel_id = rnd() & 1 ? e->ch.id : (__u32)rnd_val();
			a->batch_bytes = (__u32)rnd_val();
			a->batch_us = (__u32)rnd_below(3) * (__u32)rnd_val();
			a->flags = 1 | (__u32)rnd();	/* refused: never attaches */
			break;
		}
		default:
			*(__u32 *)arg = (__u32)rnd_below(6);
			break;
		}
	}
	if (cmd == ARCHANGEL_SENSORS_IOC_DETACH || (cmd == ARCHANGEL_SENSORS_IOC_ATTACH && !(rnd() & 1)))
		cmd = ARCHANGEL_SENSORS_IOC_GET_STATS;	/* random bytes could attach */
	count(OP_SENSOR_IOCTL, sys(ioctl(e->sfd, cmd, bad_pointer(e, arg))));
}

static void random_mmap(struct ep *e)
{
	static const int prots[] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE, PROT_NONE,
				     PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE | PROT_EXEC };
	__u64 total = e->attached ? e->ch.off.total_size : 1 << 20;
	int slot = (int)rnd_below(MAX_EXTRA), fd;
	__u64 off, len;
	void *p;

	if (e->extra[slot].p) {
		count(OP_MUNMAP, sys(munmap(e->extra[slot].p, e->extra[slot].len)));
		e->extra[slot].p = NULL;
	}
	switch (rnd_below(6)) {
	case 0:
		off = rnd_below(total / 4096 + 4) * 4096;
		break;
	case 1:
		off = ARCHANGEL_MMAP_OFF_SHARED + rnd_below(64) * 4096;
		break;
	case 2:
		off = (rnd() >> rnd_below(40)) & ~4095ULL;
		break;
	case 3:
		off = e->attached ? e->ch.off.to_user.pool.buffers : 0;
		break;
	case 4:
		off = e->attached ? e->ch.off.to_kernel.pool.buffers : 0;
		break;
	default:
		off = rnd_below(3) * 4096;
		break;
	}
	len = (1 + rnd_below(rnd() & 1 ? 8 : total / 4096 + 4)) * 4096;
	fd = rnd_below(8) ? (e->attached ? e->ch.fd : e->ctl) : (rnd() & 1 ? e->ctl : e->rw);
	p = mmap(NULL, len, prots[rnd_below(6)], rnd() & 7 ? MAP_SHARED : MAP_PRIVATE, fd, (off_t)off);
	if (count(OP_MMAP, p == MAP_FAILED ? -errno : 0))
		return;
	touch(p, len);
	if (rnd() & 1)
		scribble_in(p, len);
	if (rnd_below(4) == 0)
		madvise(p, len, MADV_DONTNEED);
	e->extra[slot].p = p;
	e->extra[slot].len = len;
}

static int rnd_extra(struct ep *e)
{
	int i = (int)rnd_below(MAX_EXTRA);

	return e->extra[i].p ? i : -1;
}

/* Whole or split (a page out of the middle: two VMAs, open and close). */
static void random_munmap(struct ep *e)
{
	int i = rnd_extra(e);
	size_t pages;

	if (i < 0)
		return;
	pages = e->extra[i].len / 4096;
	if (pages > 2 && rnd() & 1) {
		size_t at = 1 + rnd_below(pages - 2);

		count(OP_MUNMAP, sys(munmap(e->extra[i].p + at * 4096, 4096)));
		touch(e->extra[i].p, at * 4096);
		/* Keep the head; the tail is unmapped later as part of the whole range. */
		count(OP_MUNMAP, sys(munmap(e->extra[i].p + (at + 1) * 4096,
					    (pages - at - 1) * 4096)));
		e->extra[i].len = at * 4096;
		return;
	}
	count(OP_MUNMAP, sys(munmap(e->extra[i].p, e->extra[i].len)));
	e->extra[i].p = NULL;
}

static void random_mremap(struct ep *e)
{
	int i = rnd_extra(e);
	size_t len, nlen;
	void *q;

	if (i < 0)
		return;
	len = e->extra[i].len;
	switch (rnd_below(4)) {
	case 0:	/* grow: VM_DONTEXPAND says no */
		nlen = len + 4096 * (1 + rnd_below(16));
		q = mremap(e->extra[i].p, len, nlen, MREMAP_MAYMOVE);
		break;
	case 1:	/* shrink */
		nlen = len > 4096 ? len - 4096 : len;
		q = mremap(e->extra[i].p, len, nlen, 0);
		break;
	case 2: {	/* move to a fixed place */
		void *to = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		nlen = len;
		q = to == MAP_FAILED ? MAP_FAILED :
		    mremap(e->extra[i].p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		if (q == MAP_FAILED && to != MAP_FAILED)
			munmap(to, len);
		break;
	}
	default:	/* a copy that leaves the old range behind */
		nlen = len;
		q = mremap(e->extra[i].p, len, len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
		if (q != MAP_FAILED && q != e->extra[i].p)
			munmap(e->extra[i].p, len);
		break;
	}
	if (count(OP_MREMAP, q == MAP_FAILED ? -errno : 0))
		return;
	e->extra[i].p = q;
	e->extra[i].len = nlen;
	touch(q, nlen);
}

static void random_mprotect(struct ep *e)
{
	static const int prots[] = { PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE | PROT_EXEC,
				     PROT_NONE, PROT_READ };
	int i = rnd_extra(e);

	if (rnd_below(3) == 0)	/* the header pages: never writable */
		count(OP_MPROTECT, sys(mprotect(e->ch.base, 2 * 4096, PROT_READ | PROT_WRITE)));
	if (i >= 0)
		count(OP_MPROTECT, sys(mprotect(e->extra[i].p, e->extra[i].len, prots[rnd_below(4)])));
}

/* A child with every mapping and file: scribbles, ioctls, maybe closes, exits. */
static void fork_with_mappings(struct ep *e)
{
	pid_t pid = fork();
	int status, i;

	if (pid == 0) {
		if (e->attached) {
			scribble(e->ch.base + 2 * 4096 + rnd_below(4096), 1 + rnd_below(64));
			touch(e->ch.base, e->ch.span);
			au_notify(e->ch.fd, (__u32)rnd_below(4));
		}
		if (rnd() & 1)
			random_ioctl(e);
		if (rnd() & 1)
			close(e->ch.fd);
		if (rnd() & 1)
			munmap(e->ch.base, e->ch.span);
		if (rnd() & 1)
			au_destroy(e->ctl, e->ch.id);
		_exit(0);
	}
	if (count(OP_FORK, pid < 0 ? -errno : 0))
		return;
	for (i = 0; i < 500; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* Register, swap, close and re-register eventfds, right and wrong. */
static void eventfd_swaps(struct ep *e)
{
	int n = 1 + (int)rnd_below(40), i, a, b;

	for (i = 0; i < n && e->attached; i++) {
		int bogus[] = { e->ch.fd, e->ctl, 999, -1, -2, e->rw, e->sfd, 0 };

		a = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		b = rnd() & 1 ? eventfd(0, EFD_CLOEXEC) : a;
		switch (rnd_below(5)) {
		case 0:
			count(OP_EFD_SWAP, au_set_eventfds(e->ch.fd, bogus[rnd_below(8)],
							   bogus[rnd_below(8)]));
			break;
		case 1:	/* closed before it is registered */
			close(b);
			count(OP_EFD_SWAP, au_set_eventfds(e->ch.fd, a, b));
			b = -1;
			break;
		default:
			count(OP_EFD_SWAP, au_set_eventfds(e->ch.fd, a, b));
			break;
		}
		/* The kernel keeps its own references: we may close ours at once. */
		if (b >= 0 && b != a)
			close(b);
		close(a);
		if (rnd() & 1)
			au_notify(e->ch.fd, ARCHANGEL_NOTIFY_ALL);
	}
	/* Back to the channel's own, so legit() can sleep on them. */
	if (e->attached && e->ch.data_efd >= 0)
		au_set_eventfds(e->ch.fd, e->ch.data_efd, e->ch.space_efd);
}

/* What a destroyed (-EPIPE) or unbound (-ENOTCONN) file must answer. */
static void expect(enum op kind, int r, int want, const char *what)
{
	count(kind, r);
	if (r != want) {
		add(&S->contract_wrong, 1);
		snprintf(S->contract, sizeof(S->contract), "%s: %d (%s), want %d", what, r,
			 strerror(-r), want);
	}
}

/* Destroy while mapped and in use, poke the dead file, then a new channel. */
static void destroy_mapped(struct ep *e)
{
	struct pollfd p = { .fd = e->ch.fd, .events = POLLIN | POLLOUT };
	struct archangel_wait_config w;
	__u64 size = 4096;
	void *m;

	check_channel(e->ch.id);
	count(OP_DESTROY, au_destroy(e->ctl, e->ch.id));
	scribble(e->ch.base + 2 * 4096, 4096);
	touch(e->ch.base, e->ch.span);
	expect(OP_DEAD_IOCTL, au_notify(e->ch.fd, ARCHANGEL_NOTIFY_ALL), -EPIPE, "NOTIFY after destroy");
	expect(OP_DEAD_IOCTL, sys(ioctl(e->ch.fd, ARCHANGEL_IOC_SETUP_SHM, &size)), -EPIPE,
	       "SETUP_SHM after destroy");
	expect(OP_DEAD_IOCTL, sys(ioctl(e->ch.fd, ARCHANGEL_IOC_GET_WAIT, &w)), -EPIPE,
	       "GET_WAIT after destroy");
	expect(OP_DEAD_IOCTL, au_set_eventfds(e->ch.fd, -1, -1), -EPIPE,
	       "SET_EVENTFDS after destroy");
	m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, e->ch.fd, 0);
	expect(OP_DEAD_IOCTL, m == MAP_FAILED ? -errno : 0, -EPIPE, "mmap after destroy");
	if (m != MAP_FAILED)
		munmap(m, 4096);
	poll(&p, 1, 0);
	expect(OP_POLL, (p.revents & (POLLHUP | POLLERR)) == (POLLHUP | POLLERR) ? 0 : -EPROTO, 0,
	       "poll after destroy");
	ep_new_channel(e);
}

/* ioctls on a file that never bound, and on the control file. */
static void unbound_ioctls(struct ep *e)
{
	int fd = au_open();
	__u32 v = ARCHANGEL_NOTIFY_ALL;
	struct archangel_wait_config w;
	void *m;

	if (fd < 0)
		return;
	expect(OP_DEAD_IOCTL, sys(ioctl(fd, ARCHANGEL_IOC_NOTIFY, &v)), -ENOTCONN, "NOTIFY unbound");
	expect(OP_DEAD_IOCTL, sys(ioctl(fd, ARCHANGEL_IOC_GET_WAIT, &w)), -ENOTCONN,
	       "GET_WAIT unbound");
	expect(OP_DEAD_IOCTL, au_set_eventfds(fd, -1, -1), -ENOTCONN, "SET_EVENTFDS unbound");
	m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	expect(OP_DEAD_IOCTL, m == MAP_FAILED ? -errno : 0, -ENOTCONN, "mmap unbound");
	if (m != MAP_FAILED)
		munmap(m, 4096);
	if (rnd() & 1) {	/* attach to ours: busy */
		struct archangel_attach_req req;

		count(OP_DEAD_IOCTL, au_attach_req(fd, e->ch.id, &req));
	}
	close(fd);
}

static void shared_region(struct ep *e)
{
	__u64 size = rnd() & 1 ? 4096 * (1 + rnd_below(32)) : rnd_val();

	if (e->shm && rnd() & 1) {
		munmap(e->shm, e->shm_len);
		e->shm = NULL;
	}
	count(OP_SHM, sys(ioctl(e->ch.fd, rnd() & 1 ? ARCHANGEL_IOC_SETUP_SHM :
				ARCHANGEL_IOC_CLEANUP_SHM, &size)));
	if (!e->shm && !ioctl(e->ch.fd, ARCHANGEL_IOC_SHM_SIZE, &size) && size && size < (64 << 20)) {
		void *p = mmap(NULL, size + (rnd() & 1 ? 4096 : 0), PROT_READ | PROT_WRITE, MAP_SHARED,
			       e->ch.fd, (off_t)ARCHANGEL_MMAP_OFF_SHARED);

		if (!count(OP_SHM, p == MAP_FAILED ? -errno : 0)) {
			e->shm = p;
			e->shm_len = size;
		}
	}
	if (e->shm)
		scribble_in(e->shm, e->shm_len);
}

static void wait_config(struct ep *e)
{
	struct archangel_wait_config w;

	rnd_bytes(&w, sizeof(w));
	if (rnd() & 1) {
		memset(w.reserved, 0, sizeof(w.reserved));
		w.flags &= ARCHANGEL_WAIT_FLAGS_ALL;
		w.spin_ns %= 2 * ARCHANGEL_WAIT_SPIN_MAX_NS;
		w.max_delay_ns = 5000 + rnd_below(3000000);
		w.wake_batch = (__u32)rnd_val();
	}
	count(OP_WAIT, au_set_wait(e->ch.fd, &w));
	count(OP_WAIT, sys(ioctl(e->ch.fd, ARCHANGEL_IOC_GET_WAIT, bad_pointer(e, &w))));
}

static void poll_storm(struct ep *e)
{
	struct pollfd p[3] = {
		{ .fd = e->ch.fd, .events = (short)rnd() },
		{ .fd = e->rw, .events = POLLIN | POLLOUT },
		{ .fd = e->ch.data_efd, .events = POLLIN },
	};

	count(OP_POLL, sys(poll(p, 3, (int)rnd_below(3))));
}

/* Legitimate traffic: the to_user ring drained (sensor records too), some sends. */
static void legit(struct ep *e)
{
	unsigned char buf[9000];
	struct au_msg m;
	int i, r;

	for (i = 0; i < 256; i++) {
		r = au_recv(&e->ch, &m);
		if (r <= 0)
			break;
		if (m.hdr.type >= ARCHANGEL_MSG_SYSCALL_EVENT && m.hdr.type <= ARCHANGEL_MSG_MEMORY_EVENT)
			add(&S->sensor_records, 1);
		au_recv_done(&e->ch, &m);
	}
	count(OP_LEGIT, r < 0 ? r : 0);
	for (i = 0; i < 32; i++) {
		__u32 n = (__u32)rnd_below(sizeof(buf));

		rnd_bytes(buf, 16);
		if (au_send(&e->ch, 1 + rnd_below(7), rnd_below(4), buf, n,
			    rnd() & 1 ? (__u64 *)buf : NULL, 1))
			break;
	}
	if (rnd_below(8) == 0)
		au_wait_data(&e->ch, 5);
}

/* An AI_RESPONSE, well-formed or not, for a request id we may or may not have seen. */
static void ai_response(struct ep *e)
{
	struct archangel_sensor_response r;
	__u64 corr = rnd_val();

	memset(&r, 0, sizeof(r));
	r.id = rnd_below(4) ? rnd_below(2000) : rnd_val();
	r.verdict = rnd_below(4) ? ARCHANGEL_VERDICT_ALLOW : (__u8)rnd_below(8);
	r.ttl_ms = (__u32)rnd_below(1000);
	if (rnd_below(4) == 0)
		rnd_bytes(&r, sizeof(r));
	count(OP_RESPONSE, au_send(&e->ch, rnd_below(6) ? ARCHANGEL_MSG_AI_RESPONSE : 1 + rnd_below(7),
				   rnd_below(4), &r, rnd_below(6) ? sizeof(r) : (__u32)rnd_below(64),
				   rnd() & 1 ? &corr : NULL, 1));
}

/* ------------------------------------------------------------------------
 * Deterministic probes: one bad thing, the kernel must fail and count it.
 */
/*
 * Messages the probes' own LOADGEN runs sent (anything more is someone
 * else's), and whether one was cut short by a signal (-EINTR: the kernel
 * may not have got as far as the bad entry).
 */
static __u64 probe_sent;
static int probe_cut, probe_rc;
static int probe_final;	/* the parent's probes, with nothing else running */

static void loadgen_once(int ctl, __u32 id, __u32 mode, __u32 size, __u64 n)
{
	struct archangel_loadgen_req req = {
		.channel_id = id, .mode = mode, .size = size, .count = n,
	};

	probe_rc = au_loadgen(ctl, &req);
	if (probe_rc == -EINTR)
		probe_cut = 1;
	if (mode == ARCHANGEL_LOADGEN_PRODUCE)
		probe_sent += req.done;
}

/* One try of a probe: the bad thing, then the kernel made to look at it. */
static void probe_once(int ctl, struct au_channel *chp, enum probe kind, unsigned char *payload)
{
	struct au_channel ch = *chp;
	struct au_msg m;
	int i;

	switch (kind) {
	case PR_MAGIC:
		au_send(&ch, ARCHANGEL_MSG_CONTROL, 0, payload, 64, NULL, 0);
		ch.tx.normal.r.data[0] = 0;	/* the magic's first byte: idempotent */
		au_publish(&ch);
		loadgen_once(ctl, ch.id, ARCHANGEL_LOADGEN_SINK, 0, 1);
		break;
	case PR_DESC:
		au_send(&ch, ARCHANGEL_MSG_CONTROL, 0, payload, 2048, NULL, 0);
		((struct archangel_pool_desc *)(ch.tx.normal.r.data + ARCHANGEL_MSG_HEADER_SIZE))->buffer = 64;
		au_publish(&ch);
		loadgen_once(ctl, ch.id, ARCHANGEL_LOADGEN_SINK, 0, 1);
		break;
	case PR_RETURN:
		loadgen_once(ctl, ch.id, ARCHANGEL_LOADGEN_PRODUCE, 4096, 1);
		for (i = 0; i < 200 && au_recv(&ch, &m) <= 0; i++)
			usleep(1000);
		((__u32 *)ch.rx.returns.r.data)[ch.rx.returns.producer & ch.rx.returns.r.mask] = 1000;
		store64(ch.rx.returns.r.kproducer, ch.rx.returns.producer + 1);
		loadgen_once(ctl, ch.id, ARCHANGEL_LOADGEN_PRODUCE, 4096, 200);
		break;
	case PR_CONSUMER:
		store64(ch.rx.normal.r.kconsumer, 1ULL << 40);
		store64(ch.rx.express.r.kconsumer, 1ULL << 40);
		loadgen_once(ctl, ch.id, ARCHANGEL_LOADGEN_PRODUCE, 64, 100000);
		break;
	default:
		store64(ch.tx.normal.r.kproducer, ch.tx.normal.r.size + 8);
		loadgen_once(ctl, ch.id, ARCHANGEL_LOADGEN_SINK, 0, 1);
		break;
	}
	*chp = ch;
}

static void probe(int ctl, enum probe kind)
{
	unsigned char payload[4096] = { 0 };
	long long errors = -1;
	int active = -1, tries;
	struct au_channel ch;
	sigset_t alrm, old;
	char *text;

	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	/* The itimer's signal would end a LOADGEN before it looks. */
	pthread_sigmask(SIG_BLOCK, &alrm, &old);
	if (au_channel_new(&ch, NULL)) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return;
	}
	probe_sent = 0;
	for (tries = 0; tries < 3; tries++) {
		probe_cut = 0;
		probe_once(ctl, &ch, kind, payload);
		text = au_read_file(AU_PROC_COMM);
		errors = text ? au_proc_value(text, ch.id, kind <= PR_DESC || kind == PR_PRODUCER ?
					      "to_kernel" : "to_user", "errors") : -1;
		active = text ? au_proc_active(text, ch.id) : -1;
		/*
		 * Another episode's LOADGEN thread may still aim at this id
		 * (its own channel, destroyed, had it): its traffic can keep
		 * the kernel from ever looking (a full ring). Not judged.
		 */
		if (text && (au_proc_value(text, ch.id, "to_user", "messages_sent") >
			     (long long)probe_sent ||
			     au_proc_value(text, ch.id, "to_kernel", "messages_received") > 0))
			active = -1;
		/*
		 * Destroyed, and the id taken by another episode's new channel:
		 * /proc then shows that one. Our bound file knows (-EPIPE).
		 */
		if (au_notify(ch.fd, 0) == -EPIPE)
			active = -1;
		free(text);
		if (active != 1)
			break;
		if (probe_cut)
			add(&S->probes_cut, 1);
	}
	if (active == 1 && probe_cut)
		active = -1;	/* each try interrupted: not judged */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (active < 0) {	/* destroyed or used by another episode (ids are reused) */
		add(&S->probes_lost, 1);
	} else if (probe_final) {
		/* Nothing else runs: the kernel must have caught it. */
		add(&S->final_probes, 1);
		if (errors >= 1 && active == 0)
			add(&S->final_ok, 1);
		else
			snprintf(S->bad_probe, sizeof(S->bad_probe),
				 "%s: errors=%lld, channel %s after %d tries (LOADGEN %d, %llu sent)",
				 probe_names[kind], errors, active ? "active" : "failed", tries,
				 probe_rc, (unsigned long long)probe_sent);
	} else {
		add(&S->probes[kind], 1);
		if (errors >= 1 && active == 0) {
			add(&S->probes_ok[kind], 1);
		} else {
			/*
			 * Among the episodes a probe can still be spoilt in ways
			 * not seen from here (another episode's stale id, a
			 * sweep, a user writing the same words): reported, and
			 * judged only by the parent's quiet probes.
			 */
			add(&S->probes_missed, 1);
			text = au_read_file(AU_PROC_COMM);
			snprintf(S->missed_probe, sizeof(S->missed_probe),
				 "%s: errors=%lld, channel %s after %d tries (LOADGEN %d, %llu sent; /proc to_user messages_sent=%lld queue_full=%lld ring_used=%lld)",
				 probe_names[kind], errors, active ? "active" : "failed", tries,
				 probe_rc, (unsigned long long)probe_sent,
				 text ? au_proc_value(text, ch.id, "to_user", "messages_sent") : -1,
				 text ? au_proc_value(text, ch.id, "to_user", "queue_full") : -1,
				 text ? au_proc_value(text, ch.id, "to_user", "ring_used") : -1);
			free(text);
		}
	}
	au_destroy(ctl, ch.id);
	au_detach(&ch, 1);
}

static void episode(__u64 seed, __u64 dur_ns)
{
	struct itimerval it = { .it_interval = { 0, 20000 + rnd_below(200000) } };
	static const __u32 modes[] = { ARCHANGEL_LOADGEN_PRODUCE, ARCHANGEL_LOADGEN_ECHO,
				       ARCHANGEL_LOADGEN_SINK, ARCHANGEL_LOADGEN_PRODUCE };
	__u64 end = au_now_ns() + dur_ns;
	struct ep e;
	int i, k;

	rng_state = seed | 1;
	memset(&e, 0, sizeof(e));
	e.ctl = au_open();
	e.rw = open(AU_RW_DEVICE, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	e.sfd = open(SENSORS_DEV, O_RDWR | O_CLOEXEC);
	e.ch.fd = e.ch.data_efd = e.ch.space_efd = -1;
	if (e.ctl < 0 || ep_new_channel(&e))
		_exit(2);
	add(&S->episodes, 1);
	it.it_value = it.it_interval;
	setitimer(ITIMER_REAL, &it, NULL);
	for (i = 0; i < 4; i++) {
		struct gen *g = &e.gens[e.ngen];

		g->fd = rnd_below(4) ? e.ctl : e.ch.fd;	/* sometimes the file we will close */
		g->id = e.ch.id;
		g->mode = modes[i];
		if (!pthread_create(&g->thread, NULL, gen_main, g))
			e.ngen++;
	}
	while (au_now_ns() < end) {
		enum op kind;

		if (!e.attached && ep_new_channel(&e))
			break;
		if (rnd_below(16) == 0) {	/* a failed channel ignores us: move on */
			struct pollfd p = { .fd = e.ch.fd, .events = POLLIN };

			if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR) && ep_new_channel(&e))
				break;
		}
		kind = (enum op)rnd_below(OP_NEW_CHANNEL + 1);
		cur_op = kind;
		switch (kind) {
		case OP_LEGIT:
			legit(&e);
			break;
		case OP_INDEX:
			bad_index(&e);
			break;
		case OP_HEADER:
			bad_header(&e);
			break;
		case OP_DESC:
			bad_desc(&e);
			break;
		case OP_RETURNS:
			bad_returns(&e);
			break;
		case OP_LINES:
			scribble(e.ch.base + 2 * 4096 + rnd_below(4096 - 64), 1 + rnd_below(64));
			au_notify(e.ch.fd, (__u32)rnd_below(4));
			break;
		case OP_DATA:
			k = (int)rnd_below(4);
			if (k == 0)
				scribble(e.ch.base + e.ch.off.to_kernel.normal.data,
					 e.ch.off.to_kernel.normal.size);
			else if (k == 1 && e.ch.tx.count)
				scribble(e.ch.tx.buffers, e.ch.tx.buffer_size);
			else if (k == 2 && e.ch.rx.count)
				scribble((void *)e.ch.rx.buffers, e.ch.rx.buffer_size);
			else
				scribble_in(e.ch.base + e.ch.off.to_user.normal.data,
					    e.ch.off.to_user.normal.size);
			au_notify(e.ch.fd, ARCHANGEL_NOTIFY_ALL);
			break;
		case OP_INTENT:	/* garbage progress line, then close: recovery reads it */
			if (e.ch.rx.kintent) {
				__u64 *line = e.ch.rx.kintent;

				store64(&line[rnd_below(3)], rnd() & 1 ? rnd_val() :
					ARCHANGEL_RETURN_INTENT(e.ch.rx.normal.consumer + 8 * rnd_below(2),
								rnd() & 1, e.ch.rx.returns.producer +
								rnd_below(300)));
			}
			ep_reattach(&e);
			break;
		case OP_IOCTL:
			random_ioctl(&e);
			break;
		case OP_SENSOR_IOCTL:
			sensor_ioctl(&e);
			break;
		case OP_MMAP:
			random_mmap(&e);
			break;
		case OP_MUNMAP:
			random_munmap(&e);
			break;
		case OP_MREMAP:
			random_mremap(&e);
			break;
		case OP_MPROTECT:
			random_mprotect(&e);
			break;
		case OP_FORK:
			fork_with_mappings(&e);
			break;
		case OP_CLOSE:	/* close mid-operation (loadgen threads may be in the file) */
			count(OP_CLOSE, 0);
			ep_reattach(&e);
			break;
		case OP_EFD_SWAP:
			eventfd_swaps(&e);
			break;
		case OP_DESTROY:
			destroy_mapped(&e);
			break;
		case OP_DEAD_IOCTL:
			unbound_ioctls(&e);
			break;
		case OP_SHM:
			shared_region(&e);
			break;
		case OP_WAIT:
			wait_config(&e);
			break;
		case OP_NOTIFY:
			for (k = 0; k < 100; k++)
				count(OP_NOTIFY, au_notify(e.ch.fd, (__u32)rnd_below(8)));
			break;
		case OP_POLL:
			poll_storm(&e);
			break;
		case OP_SENSORS:	/* the engine's channel: not ours to touch */
			sensor_ioctl(&e);
			break;
		case OP_RESPONSE:
			ai_response(&e);
			break;
		case OP_PROBE:
			count(OP_PROBE, 0);
			probe(e.ctl, (enum probe)rnd_below(NPROBES));
			break;
		default:
			ep_new_channel(&e);
			break;
		}
		if (kind >= OP_INDEX && kind <= OP_INTENT)
			add(&S->ops[kind], 1);
	}
	stop_threads = 1;
	/* Every loadgen thread ends: destroy wakes any that sleep. */
	ep_destroy_all(&e);
	_exit(0);
}

/* ------------------------------------------------------------------------
 * The sensors' engine: one process holds the attachment (every sensor on)
 * on a channel of its own, drains it, answers AI_REQUESTs with random
 * verdicts, sends malformed responses and refused sensor ioctls, and with
 * @cycle moves to a new channel every @cycle seconds (a detach and an
 * attach; 0: never, since each flips static keys, see sensors_attach()).
 * If its channel fails or goes, it attaches again.
 */
/* The largest channel id: from "channels N/MAX" in /proc/archangel/comm. */
static __u32 top_id(void)
{
	char *text = au_read_file(AU_PROC_COMM), *p;
	__u32 max = 16;

	p = text ? strstr(text, "channels ") : NULL;
	if (p && strchr(p, '/'))
		max = (__u32)atoi(strchr(p, '/') + 1);
	free(text);
	return max ? max - 1 : 0;
}

static __attribute__((noreturn)) void engine(__u64 seed, int cycle)
{
	unsigned char buf[512];
	struct au_channel ch;
	__u64 next_cycle = 0;
	int sfd, ctl, attached = 0, sensing = 0, i, r;
	struct au_msg m;

	rng_state = seed | 1;
	signal(SIGALRM, SIG_IGN);
	ctl = au_open();
	sfd = open(SENSORS_DEV, O_RDWR | O_CLOEXEC);
	if (ctl < 0 || sfd < 0)
		_exit(0);
	memset(&ch, 0, sizeof(ch));
	for (;;) {
		__u64 now = au_now_ns();

		if (attached && ((cycle && now >= next_cycle) || ch.failed)) {
			check_channel(ch.id);
			au_destroy(ctl, ch.id);
			au_detach(&ch, 1);
			attached = sensing = 0;
		}
		if (!attached) {
			/* The top id, out of the episodes' way (they take the lowest). */
			struct archangel_create_req req = {
				.channel_id = top_id(), .flags = ARCHANGEL_CREATE_ATTACH,
			};

			if (au_channel_new(&ch, &req) && au_channel_new(&ch, NULL)) {
				usleep(100000);
				continue;
			}
			attached = 1;
			S->engine_id = ch.id;
			next_cycle = now + (__u64)cycle * 1000000000ULL;
		}
		if (!sensing)	/* also after the channel vanished under the sensors */
			sensing = !sensors_attach(sfd, ch.id);
		for (i = 0; i < 512; i++) {
			r = au_recv(&ch, &m);
			if (r <= 0)
				break;
			add(&S->sensor_records, 1);
			if (m.hdr.type == ARCHANGEL_MSG_AI_REQUEST && rnd_below(8)) {
				struct archangel_sensor_request q;
				struct archangel_sensor_response a;
				__u32 v = (__u32)rnd_below(20);

				au_msg_copy(&m, buf, sizeof(buf));
				memcpy(&q, buf, sizeof(q));
				memset(&a, 0, sizeof(a));
				a.id = rnd_below(16) ? q.id : rnd_val();
				a.verdict = v < 16 ? ARCHANGEL_VERDICT_ALLOW :
					    v < 18 ? ARCHANGEL_VERDICT_DENY : ARCHANGEL_VERDICT_KILL;
				a.ttl_ms = (__u32)rnd_below(500);
				if (rnd_below(16) == 0)
					a.pad[rnd_below(3)] = 1;
				count(OP_RESPONSE, au_send(&ch, ARCHANGEL_MSG_AI_RESPONSE, 2, &a,
							   rnd_below(16) ? sizeof(a) : (__u32)rnd_below(64),
							   NULL, 1));
			}
			au_recv_done(&ch, &m);
		}
		if (r < 0)
			ch.failed = 1;
		switch (rnd_below(16)) {
		case 0: {	/* refused: attached already, or no such channel */
			struct archangel_sensors_attach a = {
				.channel_id = rnd() & 1 ? ch.id : 1000 + (__u32)rnd_below(1000),
			};

			count(OP_SENSORS, sys(ioctl(sfd, ARCHANGEL_SENSORS_IOC_ATTACH, &a)));
			break;
		}
		case 1: {
			struct archangel_sensors_stats st;

			count(OP_SENSORS, sys(ioctl(sfd, ARCHANGEL_SENSORS_IOC_GET_STATS,
						    rnd() & 1 ? (void *)&st : (void *)(1 + rnd_below(4096)))));
			break;
		}
		case 2: {	/* a response to nothing, of any type and size */
			__u64 corr = rnd_val();

			rnd_bytes(buf, 64);
			count(OP_RESPONSE, au_send(&ch, 1 + rnd_below(7), rnd_below(4), buf,
						   (__u32)rnd_below(300), rnd() & 1 ? &corr : NULL, 1));
			break;
		}
		default:
			break;
		}
		au_wait_data(&ch, 5);
	}
}

/* ------------------------------------------------------------------------
 * The noise process: what the sensors watch (not the engine, so traced)
 */
static void lo_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (!ioctl(s, SIOCGIFFLAGS, &ifr)) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
}

static __attribute__((noreturn)) void noise(void)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(9) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(9) };
	char *const argv[] = { "true", NULL };
	int s4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char msg[64] = "hostile peer noise";
	__u64 i;

	a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a6.sin6_addr = in6addr_loopback;
	signal(SIGALRM, SIG_IGN);
	for (i = 0;; i++) {
		int k;

		for (k = 0; k < 200; k++)
			syscall(SYS_getppid);
		sendto(s4, msg, sizeof(msg), 0, (struct sockaddr *)&a4, sizeof(a4));
		sendto(s6, msg, sizeof(msg), 0, (struct sockaddr *)&a6, sizeof(a6));
		if (i % 8 == 0) {	/* W^X and page faults */
			unsigned char *p = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
						MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p != MAP_FAILED) {
				for (k = 0; k < 8; k++)
					p[k * 4096] = 1;
				mprotect(p, 8 * 4096, PROT_READ | PROT_EXEC);
				munmap(p, 8 * 4096);
			}
		}
		if (i % 16 == 0) {	/* an exec (and its exit) */
			pid_t pid = fork();
			int status, w;

			if (pid == 0) {
				execv("/bin/true", argv);
				_exit(0);
			}
			for (w = 0; pid > 0 && w < 200; w++) {
				if (waitpid(pid, &status, WNOHANG) == pid)
					break;
				usleep(10000);
			}
			if (pid > 0 && w == 200) {
				kill(pid, SIGKILL);
				kill(pid, SIGCONT);
				waitpid(pid, &status, 0);
			}
		}
		usleep(2000);
	}
}

/* ------------------------------------------------------------------------
 * The kernel log and the module's own counters
 */
static const char *const bad_words[] = {
	"Oops", "BUG:", "WARNING:", "lockdep", "refcount", "use-after-free", "KASAN",
	"UBSAN", "KFENCE", "general protection", "Call Trace", "list_add corruption",
	"list_del corruption", "kernel BUG", "possible recursive locking", "circular locking",
	"scheduling while atomic", "sleeping function called", "Poison overwritten",
	"Redzone", "Object padding", "Freepointer",
};

/* Lines of the kernel log naming any kind of kernel trouble; prints them. */
static int kernel_trouble(int print)
{
	int size = klogctl(10, NULL, 0), n, bad = 0;
	char *buf, *line, *save;
	size_t w;

	if (size <= 0)
		return 0;
	buf = malloc(size + 1);
	if (!buf)
		return 0;
	n = klogctl(3, buf, size);
	buf[n > 0 ? n : 0] = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		for (w = 0; w < sizeof(bad_words) / sizeof(bad_words[0]); w++) {
			if (strstr(line, bad_words[w])) {
				bad++;
				if (print)
					T_LOG("kernel log: %s", line);
				break;
			}
		}
	}
	free(buf);
	return bad;
}

static long long pool_value(const char *key)
{
	char *text = au_read_file("/proc/archangel/pool"), *p;
	long long v = -1;

	if (!text)
		return -1;
	p = strstr(text, key);
	if (p)
		v = atoll(p + strlen(key));
	free(text);
	return v;
}

static int live_objects(void)
{
	return (int)(pool_value("live_channels ") + pool_value("live_memories ") +
		     pool_value("live_shared "));
}

/*
 * Channels nobody will destroy (made by a fork child's random CREATE, or by
 * an episode that died) would use up every id: when few are left, the
 * parent destroys all but the engine's. Running episodes see theirs go, as
 * with any destroy.
 */
static void sweep(int ctl)
{
	char *text = au_read_file(AU_PROC_COMM), *p;
	unsigned int used = 0, max = 16, i;

	p = text ? strstr(text, "channels ") : NULL;
	if (p)
		sscanf(p, "channels %u/%u", &used, &max);
	free(text);
	if (used + 3 < max)
		return;
	add(&S->sweeps, 1);
	for (i = 0; i < max; i++)
		if (i != S->engine_id)
			au_destroy(ctl, i);
}

/* A clean channel carries traffic both ways after the storm. */
static int clean_run(int ctl)
{
	unsigned char buf[64] = { 0 };
	struct au_channel ch;
	struct t_loadgen lg;
	struct au_msg m;
	int i;

	if (au_channel_new(&ch, NULL))
		return 1;
	t_loadgen_start(&lg, ctl, ch.id, ARCHANGEL_LOADGEN_PRODUCE, 64, 2000, ARCHANGEL_LOADGEN_BLOCK);
	for (i = 0; i < 2000; i++) {
		__u64 idx;

		if (!t_recv(&ch, &m, 5000))
			return 1;
		au_msg_copy(&m, buf, sizeof(buf));
		memcpy(&idx, buf, 8);
		if (m.length != 64 || au_pattern_check(buf, 64, idx) >= 0)
			return 1;
		au_recv_done(&ch, &m);
	}
	if (t_loadgen_join(&lg) || lg.req.done != 2000)
		return 1;
	if (t_proc(ch.id, "to_user", "errors") || t_proc(ch.id, "to_kernel", "errors"))
		return 1;
	au_destroy(ctl, ch.id);
	au_detach(&ch, 1);
	return 0;
}

int main(int argc, char **argv)
{
	struct { pid_t pid; __u64 deadline, killed_at; } kids[MAX_KIDS] = { { 0 } };
	int episodes = 0, killed = 0, crashed = 0, no_start = 0, ctl, i, k, status, live0, trouble0;
	int bad = 0;
	const char *env = getenv("ARCHANGEL_HOSTILE_SECONDS");
	int secs = argc > 1 ? atoi(argv[1]) : env ? atoi(env) : 60;
	__u64 seed, end, t0 = au_now_ns();
	struct archangel_sensors_stats st;
	struct sigaction sa;
	pid_t noise_pid, engine_pid = -1;
	const char *cyc = getenv("ARCHANGEL_HOSTILE_SENSOR_CYCLE");
	int sfd;

	t_init("hostile_peer");
	if (secs <= 0)
		T_SKIPF("0 seconds asked for");
	seed = argc > 2 ? strtoull(argv[2], NULL, 0) : (au_now_ns() ^ (__u64)getpid() << 32);
	T_LOG("%d s, seed %#llx (hostile_peer %d %#llx repeats it)", secs,
	      (unsigned long long)seed, secs, (unsigned long long)seed);
	rng_state = seed | 1;
	S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ctl = au_open();
	CHECK(ctl >= 0 && S != MAP_FAILED, "setup");
	memset(S, 0, sizeof(*S));
	S->engine_id = ~0U;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sa.sa_flags = 0;
	sa.sa_handler = on_alarm;	/* no SA_RESTART: interrupts blocking ioctls */
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	live0 = live_objects();
	trouble0 = kernel_trouble(0);
	{	/* which memory checkers this boot has on (scripts/soak turns them on) */
		static const char *const knobs[] = {
			"/sys/kernel/slab/kmalloc-64/sanity_checks", "/sys/kernel/slab/kmalloc-64/red_zone",
			"/sys/kernel/slab/kmalloc-64/poison", "/sys/kernel/slab/kmalloc-64/store_user",
			"/sys/module/kfence/parameters/sample_interval",
		};
		char *cmdline = au_read_file("/proc/cmdline");

		fprintf(stderr, "hostile_peer: memory checkers:");
		for (i = 0; i < 5; i++) {
			char *v = au_read_file(knobs[i]);

			fprintf(stderr, " %s=%d", strrchr(knobs[i], '/') + 1, v ? atoi(v) : -1);
			free(v);
		}
		fprintf(stderr, "; command line: %s", cmdline ? cmdline : "?\n");
		free(cmdline);
	}
	if (access(SENSORS_DEV, F_OK))
		T_LOG("%s missing: no sensors", SENSORS_DEV);

	lo_up();
	noise_pid = fork();
	CHECK(noise_pid >= 0, "fork");
	if (noise_pid == 0)
		noise();
	if (!access(SENSORS_DEV, F_OK)) {
		__u64 eseed = rnd();

		engine_pid = fork();
		CHECK(engine_pid >= 0, "fork");
		if (engine_pid == 0) {
			close(ctl);
			engine(eseed, cyc ? atoi(cyc) : 0);
		}
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
					if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
						no_start++;
					kids[i].pid = 0;
					sweep(ctl);
				} else if (kids[i].killed_at && now - kids[i].killed_at > 30000000000ULL) {
					char path[64], *wchan;

					snprintf(path, sizeof(path), "/proc/%d/wchan", kids[i].pid);
					wchan = au_read_file(path);
					T_FAILF("episode %d still alive 30 s after SIGKILL (wchan %s)",
						kids[i].pid, wchan ? wchan : "?");
				} else if (!kids[i].killed_at && now > kids[i].deadline) {
					kill(kids[i].pid, SIGKILL);
					kids[i].killed_at = now;
					killed++;
				}
			}
			if (!kids[i].pid && now < end) {
				__u64 dur = 1000000000ULL + rnd_below(3000000000ULL);
				__u64 kseed = rnd();
				pid_t pid = fork();

				CHECK(pid >= 0, "fork");
				if (pid == 0) {
					close(ctl);
					episode(kseed, dur);
				}
				kids[i] = (typeof(kids[i])){ pid, now + dur + 20000000000ULL, 0 };
				episodes++;
			}
			running += kids[i].pid != 0;
		}
		if (!running && au_now_ns() >= end)
			break;
		usleep(20000);
	}
	kill(noise_pid, SIGKILL);
	waitpid(noise_pid, &status, 0);
	/* Unload while files and mappings are open: refused, nothing freed under us. */
	for (k = 0; k < 2; k++) {
		static const char *const mods[] = { "archangel_sensors", "archangel" };

		if (!syscall(SYS_delete_module, mods[k], O_NONBLOCK)) {
			T_LOG("FAIL: %s unloaded while in use", mods[k]);
			bad = 1;
		} else {
			T_LOG("rmmod %s while in use: %s (refused)", mods[k], strerror(errno));
		}
	}
	if (engine_pid > 0) {	/* its files close: the sensors detach */
		kill(engine_pid, SIGKILL);
		waitpid(engine_pid, &status, 0);
	}

	/* Sensor counters while the last channel is gone: then every id left. */
	sfd = open(SENSORS_DEV, O_RDWR | O_CLOEXEC);
	memset(&st, 0, sizeof(st));
	if (sfd >= 0) {
		ioctl(sfd, ARCHANGEL_SENSORS_IOC_GET_STATS, &st);
		close(sfd);
	}
	for (i = 0; i < 1024; i++)
		au_destroy(ctl, (__u32)i);
	for (i = 0; i < 100 && live_objects() > live0; i++)
		usleep(100000);

	T_LOG("%d episodes (%d could not start), %d killed at their deadline, %d died of a signal, %llu sweeps of left channels, %.1f s",
	      episodes, no_start, killed, crashed, (unsigned long long)S->sweeps,
	      (double)(au_now_ns() - t0) / 1e9);
	fprintf(stderr, "hostile_peer: operations (kind count errors):");
	for (k = 0; k < NOPS; k++)
		fprintf(stderr, " %s=%llu/%llu", op_names[k], (unsigned long long)S->ops[k],
			(unsigned long long)S->op_errors[k]);
	fprintf(stderr, "\nhostile_peer: errors by errno:");
	for (k = 0; k < NERRNO; k++)
		if (S->err[k])
			fprintf(stderr, " %s=%llu", k ? strerrorname_np(k) ?: "?" : "other",
				(unsigned long long)S->err[k]);
	fprintf(stderr, "\nhostile_peer: probes (kind ok/run; %llu more not judged: their channel destroyed or used by another episode, or every try cut short; %llu tries cut by a signal):",
		(unsigned long long)S->probes_lost, (unsigned long long)S->probes_cut);
	for (k = 0; k < NPROBES; k++)
		fprintf(stderr, " %s=%llu/%llu", probe_names[k], (unsigned long long)S->probes_ok[k],
			(unsigned long long)S->probes[k]);
	fprintf(stderr, "\n");
	T_LOG("module counters of %llu channels checked before destroy: %llu failed, errors to_user=%llu to_kernel=%llu, %llu inconsistent",
	      (unsigned long long)S->channels, (unsigned long long)S->failed,
	      (unsigned long long)S->errors_to_user, (unsigned long long)S->errors_to_kernel,
	      (unsigned long long)S->inconsistent);
	T_LOG("sensors: %llu attaches (%llu busy), %llu records read; module: syscall sent=%llu dropped=%llu, net sent=%llu, exec sent=%llu, mem_wx sent=%llu, requests=%llu responses=%llu late=%llu bad=%llu send_errors=%llu",
	      (unsigned long long)S->sensor_attach, (unsigned long long)S->sensor_attach_busy,
	      (unsigned long long)S->sensor_records,
	      (unsigned long long)st.kinds[ARCHANGEL_SENSOR_SYSCALL].sent,
	      (unsigned long long)st.kinds[ARCHANGEL_SENSOR_SYSCALL].dropped,
	      (unsigned long long)st.kinds[ARCHANGEL_SENSOR_NET].sent,
	      (unsigned long long)st.kinds[ARCHANGEL_SENSOR_EXEC].sent,
	      (unsigned long long)st.kinds[ARCHANGEL_SENSOR_MEM_WX].sent,
	      (unsigned long long)st.requests, (unsigned long long)st.responses,
	      (unsigned long long)st.responses_late, (unsigned long long)st.responses_bad,
	      (unsigned long long)st.send_errors);

	probe_final = 1;
	for (i = 0; i < 3; i++)
		for (k = 0; k < NPROBES; k++)
			probe(ctl, (enum probe)k);
	T_LOG("probes with nothing else running: %llu/%llu caught and counted",
	      (unsigned long long)S->final_ok, (unsigned long long)S->final_probes);
	if (S->final_ok != S->final_probes || !S->final_probes) {
		T_LOG("FAIL: probe %s", S->bad_probe);
		bad = 1;
	}
	if (S->probes_missed)
		T_LOG("%llu probes among the episodes not caught (not judged; the last: %s)",
		      (unsigned long long)S->probes_missed, S->missed_probe);
	if (S->contract_wrong) {
		T_LOG("FAIL: %llu answers of destroyed or unbound files were wrong: %s",
		      (unsigned long long)S->contract_wrong, S->contract);
		bad = 1;
	}
	if (S->inconsistent) {
		T_LOG("FAIL: failed state and error counters disagree: %s", S->inconsistency);
		bad = 1;
	}
	if (S->errors_to_user + S->errors_to_kernel == 0 || S->failed == 0) {
		T_LOG("FAIL: the storm produced no counted error");
		bad = 1;
	}
	if (no_start > episodes / 10) {
		T_LOG("FAIL: %d of %d episodes could not make a channel", no_start, episodes);
		bad = 1;
	}
	if (crashed) {
		T_LOG("FAIL: %d episodes died of a signal (the last: signal %d in %s, address %#lx)",
		      crashed, S->crash_sig, S->crash_op >= 0 && S->crash_op < NOPS ?
		      op_names[S->crash_op] : "?", S->crash_addr);
		bad = 1;
	}
	if (clean_run(ctl)) {
		T_LOG("FAIL: a clean channel does not work after the storm");
		bad = 1;
	}
	for (i = 0; i < 100 && live_objects() > live0; i++)
		usleep(100000);
	T_LOG("live objects: %d before, %d after (channels %lld, memories %lld, shared %lld)",
	      live0, live_objects(), pool_value("live_channels "), pool_value("live_memories "),
	      pool_value("live_shared "));
	if (live_objects() > live0) {
		T_LOG("FAIL: objects left behind");
		bad = 1;
	}
	k = kernel_trouble(1);
	T_LOG("kernel log: %d lines of trouble (%d before the run)", k, trouble0);
	if (k > trouble0) {
		T_LOG("FAIL: the kernel complained");
		bad = 1;
	}
	close(ctl);
	if (bad)
		return T_FAIL;
	T_LOG("the kernel survived: 0 oopses, 0 warnings, every bad record counted");
	return T_PASS;
}
