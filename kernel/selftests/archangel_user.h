/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * archangel_user.h - the user side of an Archangel channel over /dev/archangel,
 * in plain C: the model for liburing-style users of the device and the
 * library every selftest links.
 *
 * One struct au_channel is one user side: the file bound to the channel, the
 * mapping, the sender of to_kernel and the receiver of to_user, and two
 * eventfds. Single-threaded per half: one thread may send while another
 * receives, but never two senders or two receivers at once.
 *
 * Names follow liburing: a k prefix marks a word in shared memory. Barriers
 * carry the letters of docs/memory-ordering.md:
 *
 *   (A) store-release producer index  pairs with (B) load-acquire of it
 *   (C) store-release consumer index  pairs with (D) load-acquire of it
 *   (E) full fence after publishing, before reading need_wakeup; pairs with (F)
 *   (F) full fence after setting need_wakeup, before re-reading the producer
 *   (G) full fence after releasing, before reading need_space; pairs with (H)
 *   (H) full fence after setting need_space, before re-reading the consumer
 *
 * Everything the kernel writes is read once into a local copy and checked
 * before use (docs/abi.md, "Validation"); a failed check returns -EBADMSG
 * and leaves the channel failed on this side.
 */
#ifndef ARCHANGEL_USER_H
#define ARCHANGEL_USER_H

#include <stddef.h>
#include <stdint.h>
#include <archangel_uapi.h>

#define AU_DEVICE	"/dev/archangel"
#define AU_RW_DEVICE	"/dev/archangel_rw"
#define AU_PROC_COMM	"/proc/archangel/comm"

/* The shared words and data area of one ring. */
struct au_ring {
	__u64 *kproducer;
	__u64 *kconsumer;
	__u32 *kneed_wakeup;
	__u32 *kneed_space;
	unsigned char *data;
	__u64 size;		/* bytes (record rings) or entries (return rings) */
	__u64 mask;
};

/* Producer of a record ring (to_kernel lanes). */
struct au_prod {
	struct au_ring r;
	__u64 producer;		/* our truth, never read back */
	__u64 cached_consumer;
	__u64 published;
	__u32 last_woken;	/* the kernel's need_wakeup word we last signalled */
	__u32 space_episode;	/* our need_space sleep counter */
	__u32 max_record;	/* a quarter of the ring */
};

/* Consumer of a record ring (to_user lanes). */
struct au_cons {
	struct au_ring r;
	int express;
	__u64 consumer;		/* everything before has been read */
	__u64 published;	/* consumer index last stored (C) */
	__u64 released;		/* consumer index at the last (G) and need_space check */
	__u64 cached_producer;
	__u64 release_batch;
	__u32 wake_episode;	/* our need_wakeup sleep counter */
	__u32 last_space_signalled;
};

/* Producer of a return ring (the to_user pool, receiver side). */
struct au_iprod {
	struct au_ring r;
	__u64 producer;
	__u64 cached_consumer;
	__u64 published;
	__u32 last_woken;
};

/* Consumer of a return ring (the to_kernel pool, sender side). */
struct au_icons {
	struct au_ring r;
	__u64 consumer;
	__u32 wake_episode;
};

struct au_sender {		/* to_kernel */
	struct au_prod normal, express;
	unsigned char *buffers;	/* the to_kernel pool: we lend */
	__u32 buffer_size, count, threshold, max_segments;
	__u32 *free_stack;	/* private: the kernel cannot forge a free buffer */
	__u32 free_count;
	__u64 *lent;		/* bitmap */
	struct au_icons returns;
	__u64 sequence;
	__u32 max_payload;
	/* Why the last au_send returned -EAGAIN, for au_wait_space. */
	int blocked_on_pool;
	int blocked_express;
	__u32 blocked_length;		/* record bytes (ring) or buffers (pool) */
	/* The batch's timestamp: read once per publication (0: not yet). */
	__u64 batch_ts;
	/* A committed, unpublished CRITICAL message: the batch is urgent. */
	int pending_urgent;
};

struct au_receiver {		/* to_user */
	struct au_cons normal, express;
	const unsigned char *buffers;	/* the to_user pool: we borrow */
	__u32 buffer_size, count, max_segments;
	__u64 *held;		/* bitmap of buffers we hold */
	struct au_iprod returns;
	__u64 *kintent;		/* to_user.pool.return_intent, on our page */
};

struct au_stats {
	__u64 sent, received, queue_full;
	__u64 notify_data, notify_space;	/* NOTIFY ioctls issued */
	__u64 waits, wakeups;			/* sleeps, and eventfd reads that returned a count */
	__u64 data_signals, space_signals;	/* sums of the eventfd counts read */
};

struct au_channel {
	int fd;
	__u32 id;
	int failed;
	unsigned char *base;
	size_t span;
	struct archangel_channel_offsets off;
	int data_efd, space_efd;	/* -1 when not registered */
	struct au_sender tx;
	struct au_receiver rx;
	struct au_stats st;
	/* Wait policy: poll this long before sleeping (au_set_spin). */
	__u32 spin_us;
	int spin_ok;		/* more than one CPU online: a peer can run while we poll */
};

/* One received message: a validated header copy and where the payload lies. */
struct au_seg {
	const void *p;
	__u32 len;
	__u32 buffer;		/* pool buffer index, for the return */
};

struct au_msg {
	struct archangel_msg_header hdr;	/* copy, checked */
	int express;
	int correlated;
	__u64 correlation;
	__u32 length;		/* payload bytes in all */
	__u32 nseg;		/* 1 for inline; the descriptor count for pool messages */
	int pool;		/* ARCHANGEL_MSG_F_DMA */
	__u64 stride;		/* record bytes in the ring */
	struct au_seg seg[256];
};

/*
 * The wait policy's default, as Swift's WaitPolicy.default: au_wait_data and
 * au_wait_space poll the ring for this many microseconds before they raise
 * need_wakeup / need_space and sleep on the eventfd. A busy peer answers
 * well within that, so a receiver keeping up with its sender never pays an
 * eventfd wake-up. With one CPU online nothing is polled (the peer cannot
 * run while we poll).
 */
#define AU_SPIN_US_DEFAULT	20

/* Device and channel. All return 0 or a negative errno. */
int au_open(void);
int au_create(int fd, struct archangel_create_req *req);	/* req->channel_id in/out */
int au_destroy(int fd, __u32 id);
int au_attach_req(int fd, __u32 id, struct archangel_attach_req *req);	/* ATTACH ioctl only */
int au_notify(int fd, __u32 mask);
int au_set_eventfds(int fd, int data_fd, int space_fd);
int au_loadgen(int fd, struct archangel_loadgen_req *req);
/* ARCHANGEL_IOC_SET_WAIT / GET_WAIT on a bound file. */
int au_set_wait(int fd, const struct archangel_wait_config *cfg);
int au_get_wait(int fd, struct archangel_wait_config *cfg);

/*
 * Binds fd (already bound by CREATE with ARCHANGEL_CREATE_ATTACH, or not yet:
 * then ATTACH is issued) to channel id, maps it, validates the geometry and
 * resumes from the indices in shared memory. With eventfds != 0 it creates
 * and registers both eventfds. On failure everything is undone.
 */
int au_attach(struct au_channel *ch, int fd, __u32 id, int eventfds);
/* open + CREATE(ATTACH) with default geometry (req may be NULL) + au_attach. */
int au_channel_new(struct au_channel *ch, struct archangel_create_req *req);
/* Unmaps, frees and closes (channel_fd too when close_fd). Does not destroy. */
void au_detach(struct au_channel *ch, int close_fd);
/* Sets the wait policy: poll spin_us microseconds before sleeping (0: sleep at once). */
void au_set_spin(struct au_channel *ch, __u32 spin_us);
/* Maps the channel pieces at base (span reserved); for tests of mmap. */
int au_map_pieces(int fd, unsigned char *base, const struct archangel_channel_offsets *off);

/*
 * Sending (to_kernel). 0: sent (committed; published when publish != 0);
 * with publish == 0 a batch of sends is made visible by one au_publish(): one
 * store-release, one fence, at most one NOTIFY, and one clock read for the
 * whole batch (every message of a batch carries the same timestamp, as in
 * docs/memory-ordering.md, "Timestamps"). au_wait_space publishes first.
 * -EAGAIN: ring full or too few pool buffers (nothing sent); -EMSGSIZE: over
 * max_payload; -EBADMSG: the kernel scribbled over shared memory.
 */
int au_send(struct au_channel *ch, __u8 type, __u8 priority, const void *payload, __u32 n,
	    const __u64 *correlation, int publish);
void au_publish(struct au_channel *ch);
/*
 * After au_send returned -EAGAIN: announces the wait for what blocked it
 * (ring room or pool buffers), re-checks, and sleeps on the space eventfd up
 * to timeout_ms (-1: forever). 1: retry now; 0: timed out; < 0: error.
 */
int au_wait_space(struct au_channel *ch, int timeout_ms);
/* Blocking send: au_send, waiting on the space eventfd while it would block. */
int au_send_wait(struct au_channel *ch, __u8 type, __u8 priority, const void *payload, __u32 n,
		 const __u64 *correlation, int timeout_ms);

/*
 * Receiving (to_user), express lane first. au_recv: 1 with *m filled, 0 when
 * both lanes are empty, -EBADMSG on corruption. The payload stays valid until
 * au_recv_done(), which consumes the message and returns its pool buffers
 * with the return-intent protocol.
 */
int au_recv(struct au_channel *ch, struct au_msg *m);
int au_recv_done(struct au_channel *ch, struct au_msg *m);
/*
 * Test hook: stop the return protocol after step `steps` (1: entries written,
 * 2: intent stored, 3: consumer index published; 4 = au_recv_done).
 */
int au_recv_done_partial(struct au_channel *ch, struct au_msg *m, int steps);
/* Publishes consumed space now, waking the kernel sender if it waits. */
void au_release(struct au_channel *ch);
/*
 * Batched receive: up to max messages, express lane first, each handed to
 * fn(ch, m, arg) and then consumed with au_recv_done (same return protocol,
 * same consumer-index rules). Stops early when both lanes are empty or fn
 * returns non-zero (that message is consumed too). Returns the number of
 * messages handled, or a negative errno (-EBADMSG on corruption).
 */
typedef int (*au_recv_fn)(struct au_channel *ch, const struct au_msg *m, void *arg);
int au_recv_many(struct au_channel *ch, au_recv_fn fn, void *arg, unsigned int max);
/*
 * Sleeps until to_user has data (1), timeout (0) or error (< 0), after
 * polling for the wait policy's spin_us first.
 */
int au_wait_data(struct au_channel *ch, int timeout_ms);
/*
 * au_wait_data arming only the lanes named (AU_ARM_*): both is the blocking
 * phase; AU_ARM_EXPRESS alone is a timed poll, which the kernel wakes only
 * for an urgent message (docs/efficiency.md).
 */
#define AU_ARM_NORMAL	1
#define AU_ARM_EXPRESS	2
int au_wait_data_lanes(struct au_channel *ch, int timeout_ms, int lanes);
/* Copies a message's payload out (at most max bytes); returns bytes copied. */
__u32 au_msg_copy(const struct au_msg *m, void *dst, __u32 max);

/* The loadgen pattern: byte j = (i + j) & 0xff, then i over the first 8 bytes (LE). */
void au_pattern_fill(void *dst, __u32 n, __u64 i);
/* Checks a payload against the pattern; returns -1 if fine, else the first bad byte. */
long au_pattern_check(const void *src, __u32 n, __u64 i);

/* Small helpers for the tests. */
__u64 au_now_ns(void);
/* Reads a whole file into a malloc'd NUL-terminated buffer; NULL on error. */
char *au_read_file(const char *path);
/*
 * From /proc/archangel/comm: the value of key on channel id's direction line
 * ("to_user" or "to_kernel"), or -1 if absent.
 */
long long au_proc_value(const char *text, __u32 id, const char *direction, const char *key);
/* "active" / "failed" state of channel id: 1 active, 0 failed, -1 absent. */
int au_proc_active(const char *text, __u32 id);

#endif /* ARCHANGEL_USER_H */
