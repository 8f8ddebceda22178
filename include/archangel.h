/*
 * archangel.h - the C API of libarchangel, the Archangel message bridge.
 *
 * libarchangel.so is the Swift implementation (Sources/ArchangelC, exported
 * with @_cdecl); this header is its whole public interface. The message
 * types, priorities and flags are the ABI's own (archangel_uapi.h, which this
 * header includes): ARCHANGEL_MSG_AI_REQUEST, ARCHANGEL_PRIORITY_HIGH,
 * ARCHANGEL_MSG_F_DMA, ARCHANGEL_SEND_URGENT, ...
 *
 * Build:  gcc app.c -I<repo>/include -L<dir of libarchangel.so> -larchangel
 *         (swift build -c release --product archangel puts the library in
 *         .build/release/). docs/bindings.md has the rules in full.
 *
 * Conventions, for every function below:
 *  - Status: functions returning int return ARCHANGEL_OK (0) or a negative
 *    ARCHANGEL_E_* code; a few return a count (>= 0) or a code. After a
 *    failure archangel_last_error() describes it (thread-local).
 *  - Timeouts are nanoseconds: ARCHANGEL_FOREVER (-1) waits as long as it
 *    takes, 0 makes exactly one attempt (non-blocking), > 0 waits that long
 *    at most and then fails with ARCHANGEL_E_TIMEDOUT.
 *  - Ownership: every handle this library creates (archangel_manager,
 *    archangel_host, archangel_channel) is owned by the caller and freed by
 *    its matching _destroy/_stop/_close call, exactly once. Pointers the
 *    library lends (received payloads, loan segments, strings) are owned by
 *    the library; each function says how long they stay valid.
 *  - Thread-safety: each channel direction is single-producer,
 *    single-consumer. On one archangel_channel, one thread at a time may
 *    send (send, try_send, respond, loan..., request) and one thread at a
 *    time may receive (receive..., release, request); the two may differ.
 *    archangel_channel_shutdown, archangel_channel_is_open,
 *    archangel_channel_stats and every manager function may be called from
 *    any thread. Nothing checks this at run time: the hot path takes no lock.
 *  - Memory in shared payloads may be written by a hostile peer while you
 *    read it: read what you decide on once (or copy it first).
 */
#ifndef ARCHANGEL_H
#define ARCHANGEL_H

#include <stddef.h>
#include <stdint.h>

#include "archangel_uapi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Versions
 *
 * The API version of this header. A library with the same MAJOR and a MINOR
 * at least this header's serves a program built against it; check with
 * ARCHANGEL_VERSION_COMPATIBLE(archangel_version()).
 */
#define ARCHANGEL_API_VERSION_MAJOR	1
#define ARCHANGEL_API_VERSION_MINOR	0
#define ARCHANGEL_API_VERSION_PATCH	0
#define ARCHANGEL_API_VERSION \
	((ARCHANGEL_API_VERSION_MAJOR << 16) | (ARCHANGEL_API_VERSION_MINOR << 8) | ARCHANGEL_API_VERSION_PATCH)
#define ARCHANGEL_VERSION_COMPATIBLE(runtime) \
	(((runtime) >> 16) == ARCHANGEL_API_VERSION_MAJOR && \
	 (int)(((runtime) >> 8) & 0xff) >= ARCHANGEL_API_VERSION_MINOR)

/* The library's API version, encoded as ARCHANGEL_API_VERSION. Any thread. */
uint32_t archangel_version(void);
/* "MAJOR.MINOR.PATCH" of the API; a static string, never freed. Any thread. */
const char *archangel_version_string(void);
/* The shared-memory ABI version the library speaks (archangel_uapi.h's major << 16 | minor). */
uint32_t archangel_shared_abi_version(void);

/* ---------------------------------------------------------------------------
 * Errors
 */
enum archangel_status {
	ARCHANGEL_OK			= 0,
	ARCHANGEL_E_AGAIN		= -1,	/* would block: ring full, pool empty, nothing queued */
	ARCHANGEL_E_TIMEDOUT		= -2,	/* a blocking call waited its whole timeout */
	ARCHANGEL_E_CLOSED		= -3,	/* the channel was closed or destroyed */
	ARCHANGEL_E_CORRUPTED		= -4,	/* shared memory failed validation: the channel is dead */
	ARCHANGEL_E_TOO_LARGE		= -5,	/* the payload can never fit this channel (counted as rejected) */
	ARCHANGEL_E_BUFFER_TOO_SMALL	= -6,	/* receive_copy's buffer is too small; the message stays queued */
	ARCHANGEL_E_INVALID		= -7,	/* a bad argument or configuration */
	ARCHANGEL_E_NOT_FOUND		= -8,	/* no channel with that id */
	ARCHANGEL_E_EXISTS		= -9,	/* a channel with that id exists already */
	ARCHANGEL_E_TOO_MANY		= -10,	/* every channel id is in use */
	ARCHANGEL_E_ABI			= -11,	/* the peer speaks another ABI version */
	ARCHANGEL_E_BUSY		= -12,	/* a loan is open, the side is attached elsewhere, or the receiver is in use */
	ARCHANGEL_E_DISCONNECTED	= -13,	/* the host went away */
	ARCHANGEL_E_UNAVAILABLE		= -14,	/* no host at the socket, or no kernel device */
	ARCHANGEL_E_REFUSED		= -15,	/* the host refused the request */
	ARCHANGEL_E_PROTOCOL		= -16,	/* the attach protocol was broken */
	ARCHANGEL_E_SYSTEM		= -17,	/* a system call failed (archangel_last_error names it) */
};

/*
 * A fixed English sentence for an ARCHANGEL_E_* code (or "unknown error").
 * Static storage, never freed, any thread.
 */
const char *archangel_strerror(int code);

/*
 * What the calling thread's last failed call reported, in detail (e.g. "no
 * Archangel host at /tmp/x.sock (ENOENT ...)"), or "" when none failed.
 * Thread-local: valid until this thread's next call into the library.
 */
const char *archangel_last_error(void);

/* ---------------------------------------------------------------------------
 * Wait presets (docs/efficiency.md): how blocking calls wait and wake.
 */
enum archangel_wait_preset {
	ARCHANGEL_WAIT_PRESET_BALANCED		= 0,	/* the default: W = 1 ms, paced polls */
	ARCHANGEL_WAIT_PRESET_RESPONSIVE	= 1,	/* W = 100 us */
	ARCHANGEL_WAIT_PRESET_EFFICIENT		= 2,	/* W = 10 ms: least CPU */
	ARCHANGEL_WAIT_PRESET_LOW_LATENCY	= 3,	/* spin 20 us, then sleep; wake at every sleep */
	ARCHANGEL_WAIT_PRESET_SLEEP_AT_ONCE	= 4,	/* never spin, never coalesce */
};

#define ARCHANGEL_FOREVER	(-1LL)		/* timeout: wait as long as it takes */
#define ARCHANGEL_ANY_CHANNEL	UINT32_MAX	/* channel id: the lowest free one */

/* ---------------------------------------------------------------------------
 * The communication manager (the kernel side, hosted in this process)
 *
 * The seed's archangel_comm_* calls take the manager as their first argument.
 */
typedef struct archangel_manager archangel_manager;

/*
 * Creates a manager for up to max_channels channels (1..4096; 0: the seed's
 * 16) whose endpoints wait by `wait_preset`. *out receives the handle; free
 * it with archangel_manager_destroy. Errors: ARCHANGEL_E_INVALID.
 */
int archangel_manager_create(uint32_t max_channels, int wait_preset, archangel_manager **out);
/*
 * Closes every channel of the manager (blocked calls fail with
 * ARCHANGEL_E_CLOSED) and frees the handle. Channel handles opened from it
 * stay valid until closed, but every call on them fails with CLOSED.
 */
void archangel_manager_destroy(archangel_manager *manager);

/*
 * Creates a channel with the default geometry. *channel_id in: an id, or
 * ARCHANGEL_ANY_CHANNEL for the lowest free one; out: the id created.
 * Errors: EXISTS, TOO_MANY, INVALID (id beyond max_channels), SYSTEM.
 */
int archangel_comm_channel_create(archangel_manager *manager, uint32_t *channel_id);
/* The same with a geometry; a zero field takes the default (docs/abi.md). */
struct archangel_geometry {
	uint32_t normal_ring_bytes;	/* per normal lane, power of two >= 4096 (64 KiB) */
	uint32_t express_ring_bytes;	/* per express lane (16 KiB) */
	uint32_t pool_buffer_size;	/* bytes per pool buffer, power of two (4096) */
	uint32_t pool_buffer_count;	/* buffers per direction (64); UINT32_MAX: no pool */
	uint32_t pool_threshold;	/* payloads above this travel through the pool (1024) */
	uint32_t max_segments;		/* pool buffers one message may span (32) */
};
int archangel_comm_channel_create_with(archangel_manager *manager, uint32_t *channel_id,
				       const struct archangel_geometry *geometry);
/* Destroys channel `id`: both ends close. Returns OK or ARCHANGEL_E_NOT_FOUND. */
int archangel_comm_channel_destroy(archangel_manager *manager, uint32_t channel_id);

/*
 * The seed's send_message: sends kernel -> user on channel `id`, waiting
 * for room as long as it takes. Errors: NOT_FOUND, TOO_LARGE, CLOSED, CORRUPTED.
 */
int archangel_comm_send_message(archangel_manager *manager, uint32_t channel_id, uint8_t type,
				uint8_t priority, const void *data, uint32_t size);
/*
 * The seed's receive_message: copies the next user -> kernel message of
 * channel `id` into data (max_size bytes), waiting as long as it takes.
 * Returns the payload size (>= 0) and stores the type in *type, or a code
 * (BUFFER_TOO_SMALL leaves the message queued).
 */
int archangel_comm_receive_message(archangel_manager *manager, uint32_t channel_id, uint8_t *type,
				   void *data, uint32_t max_size);
/* Wake the kernel side's / the user side's receiver of channel `id`. */
int archangel_comm_notify_kernel(archangel_manager *manager, uint32_t channel_id);
int archangel_comm_notify_user(archangel_manager *manager, uint32_t channel_id);
/*
 * The statistics of every channel in the /proc/archangel/comm text format,
 * written NUL-terminated into buf (at most len bytes). Returns the length of
 * the whole text (like snprintf: a value >= len means it was cut).
 */
int archangel_manager_stats_text(archangel_manager *manager, char *buf, size_t len);

/* ---------------------------------------------------------------------------
 * A userspace host in this process: serves the manager's channels to other
 * processes over a Unix socket (what `archangel serve` runs).
 */
typedef struct archangel_host archangel_host;

/*
 * Starts serving `manager` at socket_path (NULL: the default path, see
 * docs/userspace-host.md). allow_kernel_side: whether clients may attach the
 * kernel side. Only the same uid may connect. Free with archangel_host_stop.
 * Errors: REFUSED (another host serves that path), SYSTEM.
 */
int archangel_host_start(archangel_manager *manager, const char *socket_path, int allow_kernel_side,
			 archangel_host **out);
/* Hangs up every client (they see DISCONNECTED), removes the socket, frees the handle. */
void archangel_host_stop(archangel_host *host);

/* ---------------------------------------------------------------------------
 * Channels: one endpoint of a channel, on any backend
 */
typedef struct archangel_channel archangel_channel;

#define ARCHANGEL_SIDE_USER	0	/* the AI engine's side: receives to_user, sends to_kernel */
#define ARCHANGEL_SIDE_KERNEL	1	/* the sensor's side */

/* In-process backend: the manager's endpoint of `side` of channel `id`. */
int archangel_open_in_process(archangel_manager *manager, uint32_t channel_id, int side,
			      archangel_channel **out);
/*
 * Userspace backend: attaches `side` of channel `id` (ARCHANGEL_ANY_CHANNEL:
 * a new channel) of the host at socket_path (NULL: the default), creating
 * it when `create` is non-zero and the host allows it.
 * Errors: UNAVAILABLE (no host), BUSY (side attached elsewhere), REFUSED, ABI, PROTOCOL, CORRUPTED.
 */
int archangel_open_userspace(const char *socket_path, uint32_t channel_id, int side, int create,
			     int wait_preset, archangel_channel **out);
/*
 * Kernel backend: attaches the user side of channel `id` of the module at
 * device_path (NULL: /dev/archangel). Errors: UNAVAILABLE (no module, no permission), ...
 */
int archangel_open_kernel(const char *device_path, uint32_t channel_id, int create, int wait_preset,
			  archangel_channel **out);
/* Whether the kernel device can be opened here (1) or not (0). */
int archangel_kernel_available(const char *device_path);

/*
 * Frees the handle. For an attached side (userspace, kernel) this detaches:
 * the host frees the side for a successor. Every pointer lent by this
 * channel becomes invalid. Do not call it while another thread is inside a
 * call on the same channel (archangel_channel_shutdown first, then join).
 */
void archangel_channel_close(archangel_channel *channel);
/*
 * Closes the channel for both ends and wakes every blocked call on either
 * side, which then fails with CLOSED. The handle stays valid (close it
 * later). Any thread.
 */
void archangel_channel_shutdown(archangel_channel *channel);
/* 1 while the channel is open, 0 once closed. Any thread. */
int archangel_channel_is_open(const archangel_channel *channel);
/* The channel id. */
uint32_t archangel_channel_id(const archangel_channel *channel);
/* The largest payload one message may carry on this endpoint's outgoing direction. */
size_t archangel_channel_max_payload(const archangel_channel *channel);
/*
 * The channel memory this endpoint maps: every received payload lies in
 * [*base, *base + *size). Valid until archangel_channel_close. (Bindings
 * use it to wrap the mapping once, e.g. Python's memoryview.)
 */
int archangel_channel_memory(const archangel_channel *channel, const void **base, size_t *size);

/* ---------------------------------------------------------------------------
 * Sending
 *
 * `options` are ARCHANGEL_SEND_* bits: URGENT wakes the receiver now
 * whatever the coalescing (CRITICAL implies it), NO_WAKEUP says more follows.
 * The payload is copied into the ring (or a pool buffer above the
 * threshold) before the call returns; the caller keeps ownership of `data`.
 */

/* Sends without blocking. Errors: AGAIN (ring full or pool empty; counted queue_full), TOO_LARGE, CLOSED, CORRUPTED, INVALID. */
int archangel_try_send(archangel_channel *channel, uint8_t type, uint8_t priority, const void *data,
		       size_t size, uint32_t options);
/* Sends, waiting up to timeout_ns for room. Errors: TIMEDOUT, TOO_LARGE, CLOSED, CORRUPTED, INVALID. */
int archangel_send(archangel_channel *channel, uint8_t type, uint8_t priority, const void *data,
		   size_t size, int64_t timeout_ns, uint32_t options);
/* The sequence number of the last message this endpoint sent (0: none yet). */
uint64_t archangel_last_sequence(const archangel_channel *channel);

/* ---------------------------------------------------------------------------
 * Receiving: payloads are lent in place, never copied
 */
struct archangel_segment {
	const void *data;	/* in the channel memory */
	size_t size;
};

typedef struct archangel_message {
	const void *data;		/* the payload (its first segment), in the channel memory */
	size_t size;			/* payload bytes in all segments */
	uint64_t sequence;		/* the sender's sequence number */
	uint64_t timestamp;		/* CLOCK_MONOTONIC ns at send */
	uint64_t correlation;		/* the request it answers (flags & ARCHANGEL_MSG_F_CORRELATED), else 0 */
	uint8_t type;			/* ARCHANGEL_MSG_* */
	uint8_t priority;		/* ARCHANGEL_PRIORITY_* */
	uint16_t flags;			/* ARCHANGEL_MSG_F_DMA (pool), _CORRELATED, _COPIED */
	uint32_t segment_count;		/* pieces of the payload; > 1 only for large pool messages */
	const struct archangel_segment *segments;	/* pool messages (F_DMA): the segment_count pieces,
							   segments[0].data == data; NULL for inline ones */
} archangel_message;

/*
 * Receives the next message, waiting up to timeout_ns, and lends it in
 * place: msg->data (and msg->segments) point into the channel memory and
 * stay valid, unchanged by the sender, until archangel_release() or the next
 * receive call on this channel, which releases first. The express lane
 * (HIGH, CRITICAL) is drained before the normal one.
 * Errors: TIMEDOUT (AGAIN for timeout 0), CLOSED, CORRUPTED, DISCONNECTED, BUSY.
 */
int archangel_receive(archangel_channel *channel, archangel_message *msg, int64_t timeout_ns);
/* archangel_receive with timeout 0: returns AGAIN when nothing is queued. */
int archangel_try_receive(archangel_channel *channel, archangel_message *msg);
/*
 * Receives up to `max` messages in one call (waiting up to timeout_ns for
 * the first) and lends them all, as archangel_receive does, until the
 * release. Returns the number received (>= 1) or a code. A pool message
 * (flags & ARCHANGEL_MSG_F_DMA) ends a batch.
 */
int archangel_receive_batch(archangel_channel *channel, archangel_message *msgs, size_t max,
			    int64_t timeout_ns);
/*
 * The compact batch of the language bindings: per message, the payload's
 * offset from the channel memory base (archangel_channel_memory), the size
 * of its first segment, and info = type | priority << 8 | flags << 16.
 * sequences and correlations may be NULL. Same lending rules and return as
 * archangel_receive_batch. For a pool message spanning several buffers
 * (the batch's last), archangel_held_segments lists the pieces.
 */
int archangel_receive_offsets(archangel_channel *channel, uint64_t *offsets, uint32_t *sizes,
			      uint32_t *info, uint64_t *sequences, uint64_t *correlations, size_t max,
			      int64_t timeout_ns);
/*
 * The segments of the pool message held last (the last of the batch), as
 * offsets from the memory base and sizes, at most max. Returns the count
 * (0: the last message held is not a pool message).
 */
int archangel_held_segments(const archangel_channel *channel, uint64_t *offsets, uint32_t *sizes, size_t max);
/*
 * Gives the held messages back to the sender (ring space, pool buffers).
 * Every lent pointer is invalid afterwards. OK when nothing is held.
 */
int archangel_release(archangel_channel *channel);
/*
 * The seed's receive shape: copies the next message's payload into buf (cap
 * bytes) and fills *info (its data points to buf). Returns the payload size
 * or a code; BUFFER_TOO_SMALL leaves the message queued. Releases first.
 */
int archangel_receive_copy(archangel_channel *channel, void *buf, size_t cap, archangel_message *info,
			   int64_t timeout_ns);

/* ---------------------------------------------------------------------------
 * Request / response (correlation)
 */

/*
 * Answers `request` (a message received on this channel): sends a message
 * whose correlation is request->sequence, at request->priority, URGENT
 * (a response is awaited). The request may still be held.
 */
int archangel_respond(archangel_channel *channel, const archangel_message *request, uint8_t type,
		      const void *data, size_t size, int64_t timeout_ns);
/*
 * Sends a request (URGENT: the caller waits for the answer, so a wake-up
 * coalesced to the end of the receiver's window would only add latency) and
 * waits up to timeout_ns for the message that answers
 * it (correlation == the request's sequence), lent in *reply as by
 * archangel_receive. Messages that arrive first and answer something else
 * are released and skipped; their number is added to *skipped when it is
 * not NULL. Uses both directions: no other thread may send or receive on
 * this channel meanwhile.
 */
int archangel_request(archangel_channel *channel, uint8_t type, uint8_t priority, const void *data,
		      size_t size, archangel_message *reply, int64_t timeout_ns, uint64_t *skipped);

/* ---------------------------------------------------------------------------
 * Loans: write a payload straight into pool buffers, then commit (no copy)
 */

/*
 * Borrows pool buffers for a message of up to `capacity` bytes, waiting up
 * to timeout_ns for free buffers. One loan at a time per channel (BUSY
 * otherwise). Returns the number of segments (>= 1) or a code
 * (TOO_LARGE: the pool can never hold capacity).
 */
int archangel_loan(archangel_channel *channel, size_t capacity, int64_t timeout_ns);
/*
 * Writable memory of segment `index` of the open loan (the payload fills
 * segments in order; each is pool_buffer_size bytes), or NULL. *size gets
 * its length. Valid until commit or cancel.
 */
void *archangel_loan_segment(archangel_channel *channel, uint32_t index, size_t *size);
/*
 * Sends the first `length` bytes of the loan, waiting up to timeout_ns for
 * ring room. correlation: 0 for none, else the request sequence it answers.
 * The loan is closed whatever the result (buffers go back on failure).
 */
int archangel_loan_commit(archangel_channel *channel, uint8_t type, uint8_t priority, size_t length,
			  uint64_t correlation, int64_t timeout_ns);
/* Gives the loan's buffers back unsent. No-op when no loan is open. */
void archangel_loan_cancel(archangel_channel *channel);

/* ---------------------------------------------------------------------------
 * Statistics of one endpoint: what this side counted, both directions
 */
struct archangel_stats {
	uint64_t messages_sent;		/* by this endpoint */
	uint64_t bytes_sent;
	uint64_t messages_received;	/* by this endpoint */
	uint64_t bytes_received;
	uint64_t rejected;		/* sends refused as too large */
	uint64_t errors;		/* validation failures found by this side */
	uint64_t queue_full;		/* sends that found the ring full or the pool empty */
	uint64_t pool_transfers;	/* messages sent through the pool */
	uint64_t copy_fallbacks;	/* large payloads copied inline (pool empty) */
	uint64_t notifications_sent;	/* wake-ups this side signalled */
	uint64_t notifications_suppressed; /* publications that needed none */
	uint64_t notifications_coalesced;
	uint64_t waits;			/* sleeps of this side */
	uint64_t timed_waits;
	uint64_t ring_used;		/* outgoing bytes queued now, both lanes */
	uint64_t ring_size;		/* outgoing ring bytes, both lanes */
	uint64_t pool_in_use;		/* outgoing pool buffers lent out */
	uint64_t pool_size;
};
/* Fills *out (any thread; each counter is read atomically, not the set as one snapshot). */
int archangel_channel_stats(const archangel_channel *channel, struct archangel_stats *out);
/*
 * The statistics text of the host at socket_path (NULL: default), in the
 * /proc/archangel/comm format; returns the whole length like snprintf.
 */
int archangel_host_stats_text(const char *socket_path, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ARCHANGEL_H */
