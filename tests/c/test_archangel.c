/*
 * tests/c/test_archangel.c - the C API of libarchangel (include/archangel.h).
 *
 * Plain C with CHECK()s that print the failing line and exit 1. Built and
 * run by scripts/test-bindings against the built libarchangel.so.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archangel.h"

static int checks;
#define CHECK(cond) do { checks++; if (!(cond)) { \
	fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, __LINE__, #cond, \
		archangel_last_error()); exit(1); } } while (0)
#define CHECK_RC(expr, want) do { int rc_ = (expr); checks++; if (rc_ != (want)) { \
	fprintf(stderr, "%s:%d: %s returned %d (%s), want %d (last error: %s)\n", __FILE__, __LINE__, \
		#expr, rc_, archangel_strerror(rc_), (want), archangel_last_error()); exit(1); } } while (0)

static int inside(const archangel_channel *ch, const void *p, size_t n)
{
	const void *base; size_t size;
	if (archangel_channel_memory(ch, &base, &size) != ARCHANGEL_OK) return 0;
	return (const char *)p >= (const char *)base && (const char *)p + n <= (const char *)base + size;
}

static void test_version_and_errors(void)
{
	CHECK(ARCHANGEL_VERSION_COMPATIBLE(archangel_version()));
	CHECK(archangel_version() == ARCHANGEL_API_VERSION);
	CHECK(strcmp(archangel_version_string(), "1.0.0") == 0);
	CHECK(archangel_shared_abi_version() >> 16 == 1);
	for (int code = 0; code >= ARCHANGEL_E_SYSTEM; code--)
		CHECK(strcmp(archangel_strerror(code), "unknown error") != 0);
	CHECK(strcmp(archangel_strerror(-999), "unknown error") == 0);
	CHECK(strcmp(archangel_strerror(ARCHANGEL_E_TIMEDOUT), "timed out") == 0);
	archangel_manager *m = NULL;
	CHECK_RC(archangel_manager_create(0, 99, &m), ARCHANGEL_E_INVALID);
	CHECK(strstr(archangel_last_error(), "wait preset") != NULL);
	CHECK_RC(archangel_manager_create(5000, ARCHANGEL_WAIT_PRESET_BALANCED, &m), ARCHANGEL_E_INVALID);
	for (int preset = ARCHANGEL_WAIT_PRESET_BALANCED; preset <= ARCHANGEL_WAIT_PRESET_SLEEP_AT_ONCE; preset++) {
		CHECK_RC(archangel_manager_create(2, preset, &m), ARCHANGEL_OK);
		uint32_t id = ARCHANGEL_ANY_CHANNEL;
		CHECK_RC(archangel_comm_channel_create(m, &id), ARCHANGEL_OK);
		archangel_channel *u;
		CHECK_RC(archangel_open_in_process(m, id, ARCHANGEL_SIDE_USER, &u), ARCHANGEL_OK);
		archangel_message msg;
		CHECK_RC(archangel_receive(u, &msg, 1000000), ARCHANGEL_E_TIMEDOUT);	/* 1 ms */
		CHECK_RC(archangel_try_receive(u, &msg), ARCHANGEL_E_AGAIN);
		archangel_channel_close(u);
		archangel_manager_destroy(m);
	}
}

static void test_manager_seed_calls(void)
{
	archangel_manager *m;
	CHECK_RC(archangel_manager_create(2, ARCHANGEL_WAIT_PRESET_BALANCED, &m), ARCHANGEL_OK);
	uint32_t a = ARCHANGEL_ANY_CHANNEL, b = 1, c = ARCHANGEL_ANY_CHANNEL, d = 7;
	CHECK_RC(archangel_comm_channel_create(m, &a), ARCHANGEL_OK);
	CHECK(a == 0);
	CHECK_RC(archangel_comm_channel_create(m, &b), ARCHANGEL_OK);
	CHECK_RC(archangel_comm_channel_create(m, &c), ARCHANGEL_E_TOO_MANY);
	CHECK_RC(archangel_comm_channel_create(m, &a), ARCHANGEL_E_EXISTS);
	CHECK_RC(archangel_comm_channel_create(m, &d), ARCHANGEL_E_INVALID);
	CHECK_RC(archangel_comm_channel_destroy(m, 1), ARCHANGEL_OK);
	CHECK_RC(archangel_comm_channel_destroy(m, 1), ARCHANGEL_E_NOT_FOUND);
	archangel_channel *ignored;
	CHECK_RC(archangel_open_in_process(m, 1, ARCHANGEL_SIDE_USER, &ignored), ARCHANGEL_E_NOT_FOUND);

	/* kernel -> user with the seed's send_message, lent in place on the user side */
	archangel_channel *u;
	CHECK_RC(archangel_open_in_process(m, 0, ARCHANGEL_SIDE_USER, &u), ARCHANGEL_OK);
	const char hello[] = "classify this packet";
	CHECK_RC(archangel_comm_send_message(m, 0, ARCHANGEL_MSG_AI_REQUEST, ARCHANGEL_PRIORITY_HIGH, hello,
					     sizeof hello), ARCHANGEL_OK);
	archangel_message msg;
	CHECK_RC(archangel_receive(u, &msg, ARCHANGEL_FOREVER), ARCHANGEL_OK);
	CHECK(msg.type == ARCHANGEL_MSG_AI_REQUEST && msg.priority == ARCHANGEL_PRIORITY_HIGH);
	CHECK(msg.size == sizeof hello && memcmp(msg.data, hello, sizeof hello) == 0);
	CHECK(msg.sequence == 1 && msg.segment_count == 1 && msg.segments == NULL);
	CHECK(inside(u, msg.data, msg.size));
	CHECK_RC(archangel_release(u), ARCHANGEL_OK);

	/* user -> kernel, the seed's receive_message copies out */
	CHECK_RC(archangel_send(u, ARCHANGEL_MSG_AI_RESPONSE, ARCHANGEL_PRIORITY_NORMAL, "ok", 2, 0, 0), ARCHANGEL_OK);
	uint8_t type = 0;
	char buf[16];
	CHECK_RC(archangel_comm_receive_message(m, 0, &type, buf, 1), ARCHANGEL_E_BUFFER_TOO_SMALL);
	CHECK_RC(archangel_comm_receive_message(m, 0, &type, buf, sizeof buf), 2);
	CHECK(type == ARCHANGEL_MSG_AI_RESPONSE && memcmp(buf, "ok", 2) == 0);
	CHECK_RC(archangel_comm_notify_user(m, 0), ARCHANGEL_OK);
	CHECK_RC(archangel_comm_notify_kernel(m, 0), ARCHANGEL_OK);
	CHECK_RC(archangel_comm_notify_user(m, 1), ARCHANGEL_E_NOT_FOUND);

	char text[4096];
	int n = archangel_manager_stats_text(m, text, sizeof text);
	CHECK(n > 0 && n < (int)sizeof text && strstr(text, "channel 0") != NULL);
	CHECK(archangel_manager_stats_text(m, text, 8) == n && strlen(text) == 7);
	archangel_channel_close(u);
	archangel_manager_destroy(m);
}

static void test_send_receive_lanes_batches_stats(void)
{
	archangel_manager *m;
	CHECK_RC(archangel_manager_create(1, ARCHANGEL_WAIT_PRESET_BALANCED, &m), ARCHANGEL_OK);
	uint32_t id = 0;
	CHECK_RC(archangel_comm_channel_create(m, &id), ARCHANGEL_OK);
	archangel_channel *k, *u;
	CHECK_RC(archangel_open_in_process(m, id, ARCHANGEL_SIDE_KERNEL, &k), ARCHANGEL_OK);
	CHECK_RC(archangel_open_in_process(m, id, ARCHANGEL_SIDE_USER, &u), ARCHANGEL_OK);
	CHECK(archangel_channel_id(u) == id && archangel_channel_is_open(u) == 1);
	CHECK(archangel_channel_max_payload(k) > 4096);

	CHECK_RC(archangel_send(k, 0, 0, "x", 1, 0, 0), ARCHANGEL_E_INVALID);	/* type 0 */
	CHECK_RC(archangel_send(k, 1, 9, "x", 1, 0, 0), ARCHANGEL_E_INVALID);	/* priority 9 */
	static char huge[8 << 20];
	CHECK_RC(archangel_send(k, 1, 1, huge, sizeof huge, 0, 0), ARCHANGEL_E_TOO_LARGE);

	/* A LOW message, then a CRITICAL one: the express lane comes first. */
	CHECK_RC(archangel_try_send(k, ARCHANGEL_MSG_SYSCALL_EVENT, ARCHANGEL_PRIORITY_LOW, "low", 3, 0), ARCHANGEL_OK);
	CHECK_RC(archangel_try_send(k, ARCHANGEL_MSG_CONTROL, ARCHANGEL_PRIORITY_CRITICAL, "crit", 4, 0), ARCHANGEL_OK);
	archangel_message msgs[64];
	CHECK_RC(archangel_receive_batch(u, msgs, 64, 0), 2);
	CHECK(msgs[0].priority == ARCHANGEL_PRIORITY_CRITICAL && memcmp(msgs[0].data, "crit", 4) == 0);
	CHECK(msgs[1].priority == ARCHANGEL_PRIORITY_LOW && memcmp(msgs[1].data, "low", 3) == 0);
	CHECK(msgs[0].sequence == 2 && msgs[1].sequence == 1);
	CHECK_RC(archangel_release(u), ARCHANGEL_OK);
	CHECK_RC(archangel_release(u), ARCHANGEL_OK);	/* nothing held: fine */

	/* Fill the ring with try_send until it would block; drain in batches; held payloads stay intact. */
	int sent = 0;
	char payload[64];
	for (;;) {
		memset(payload, sent & 0xff, sizeof payload);
		int rc = archangel_try_send(k, ARCHANGEL_MSG_NETWORK_EVENT, ARCHANGEL_PRIORITY_NORMAL, payload,
					    sizeof payload, ARCHANGEL_SEND_NO_WAKEUP);
		if (rc == ARCHANGEL_E_AGAIN) break;
		CHECK_RC(rc, ARCHANGEL_OK);
		sent++;
	}
	CHECK(sent > 100);
	int got = 0;
	while (got < sent) {
		int n = archangel_receive_batch(u, msgs, 64, 0);
		CHECK(n >= 1);
		for (int i = 0; i < n; i++) {
			CHECK(msgs[i].size == 64 && inside(u, msgs[i].data, 64));
			CHECK(((const unsigned char *)msgs[i].data)[63] == ((got + i) & 0xff));
		}
		/* The sender may fill the space freed so far, never the held messages. */
		while (archangel_try_send(k, ARCHANGEL_MSG_NETWORK_EVENT, ARCHANGEL_PRIORITY_NORMAL, payload,
					  sizeof payload, 0) == ARCHANGEL_OK)
			sent++;
		for (int i = 0; i < n; i++)
			CHECK(((const unsigned char *)msgs[i].data)[0] == ((got + i) & 0xff));
		got += n;
		CHECK_RC(archangel_release(u), ARCHANGEL_OK);
		/* the refill used the last payload byte pattern; later messages differ: stop checking contents */
		if (got < sent) {
			while (got < sent) {
				int r = archangel_receive_batch(u, msgs, 64, 0);
				CHECK(r >= 1);
				got += r;
			}
			CHECK_RC(archangel_release(u), ARCHANGEL_OK);
		}
	}
	CHECK(got == sent);
	CHECK_RC(archangel_try_receive(u, &msgs[0]), ARCHANGEL_E_AGAIN);

	/* A pool message (above the 1 KiB threshold) spanning three buffers: lent in place, segment by segment. */
	static char big[10000];
	for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7);
	CHECK_RC(archangel_send(k, ARCHANGEL_MSG_MEMORY_EVENT, ARCHANGEL_PRIORITY_NORMAL, big, sizeof big, -1, 0),
		 ARCHANGEL_OK);
	archangel_message msg;
	CHECK_RC(archangel_receive(u, &msg, ARCHANGEL_FOREVER), ARCHANGEL_OK);
	CHECK((msg.flags & ARCHANGEL_MSG_F_DMA) && msg.size == sizeof big && msg.segment_count == 3);
	CHECK(msg.segments != NULL && msg.segments[0].data == msg.data);
	size_t at = 0;
	for (uint32_t i = 0; i < msg.segment_count; i++) {
		CHECK(inside(u, msg.segments[i].data, msg.segments[i].size));
		CHECK(memcmp(msg.segments[i].data, big + at, msg.segments[i].size) == 0);
		at += msg.segments[i].size;
	}
	CHECK(at == sizeof big);
	uint64_t offs[8]; uint32_t sizes[8];
	CHECK_RC(archangel_held_segments(u, offs, sizes, 8), 3);
	CHECK_RC(archangel_release(u), ARCHANGEL_OK);

	/* receive_copy: the seed's shape */
	CHECK_RC(archangel_send(k, ARCHANGEL_MSG_STATS, ARCHANGEL_PRIORITY_NORMAL, "copy me", 7, -1, 0), ARCHANGEL_OK);
	char small[4];
	CHECK_RC(archangel_receive_copy(u, small, sizeof small, &msg, 0), ARCHANGEL_E_BUFFER_TOO_SMALL);
	char room[64];
	CHECK_RC(archangel_receive_copy(u, room, sizeof room, &msg, 0), 7);
	CHECK(msg.data == room && msg.type == ARCHANGEL_MSG_STATS && memcmp(room, "copy me", 7) == 0);

	/* compact batch (the Python binding's) */
	CHECK_RC(archangel_send(k, ARCHANGEL_MSG_SYSCALL_EVENT, ARCHANGEL_PRIORITY_HIGH, "abc", 3, -1, 0), ARCHANGEL_OK);
	uint32_t info[8]; uint64_t seqs[8];
	CHECK_RC(archangel_receive_offsets(u, offs, sizes, info, seqs, NULL, 8, 0), 1);
	const void *base; size_t size;
	CHECK_RC(archangel_channel_memory(u, &base, &size), ARCHANGEL_OK);
	CHECK(sizes[0] == 3 && memcmp((const char *)base + offs[0], "abc", 3) == 0);
	CHECK((info[0] & 0xff) == ARCHANGEL_MSG_SYSCALL_EVENT && ((info[0] >> 8) & 0xff) == ARCHANGEL_PRIORITY_HIGH);
	CHECK_RC(archangel_release(u), ARCHANGEL_OK);

	struct archangel_stats ks, us;
	CHECK_RC(archangel_channel_stats(k, &ks), ARCHANGEL_OK);
	CHECK_RC(archangel_channel_stats(u, &us), ARCHANGEL_OK);
	CHECK(ks.messages_sent == (uint64_t)sent + 5 && us.messages_received == ks.messages_sent);
	CHECK(ks.rejected == 1 && ks.queue_full >= 1 && ks.pool_transfers == 1 && ks.ring_size > 0);
	CHECK(ks.pool_size == 64);

	archangel_channel_close(k);
	archangel_channel_close(u);
	archangel_manager_destroy(m);
}

/* Loans: the receiver reads the very bytes the sender wrote, where it wrote them. */
static void test_loans(void)
{
	archangel_manager *m;
	CHECK_RC(archangel_manager_create(1, ARCHANGEL_WAIT_PRESET_BALANCED, &m), ARCHANGEL_OK);
	uint32_t id = 0;
	CHECK_RC(archangel_comm_channel_create(m, &id), ARCHANGEL_OK);
	archangel_channel *k, *u;
	CHECK_RC(archangel_open_in_process(m, id, ARCHANGEL_SIDE_KERNEL, &k), ARCHANGEL_OK);
	CHECK_RC(archangel_open_in_process(m, id, ARCHANGEL_SIDE_USER, &u), ARCHANGEL_OK);
	int segs = archangel_loan(k, 6000, ARCHANGEL_FOREVER);
	CHECK(segs == 2);
	CHECK_RC(archangel_loan(k, 10, 0), ARCHANGEL_E_BUSY);
	size_t n0, n1, none;
	char *s0 = archangel_loan_segment(k, 0, &n0), *s1 = archangel_loan_segment(k, 1, &n1);
	CHECK(s0 && s1 && n0 == 4096 && n1 == 4096 && archangel_loan_segment(k, 2, &none) == NULL && none == 0);
	memset(s0, 'a', n0);
	memset(s1, 'b', 6000 - n0);
	CHECK_RC(archangel_loan_commit(k, ARCHANGEL_MSG_MEMORY_EVENT, ARCHANGEL_PRIORITY_NORMAL, 6000, 0, -1),
		 ARCHANGEL_OK);
	CHECK_RC(archangel_loan_commit(k, ARCHANGEL_MSG_MEMORY_EVENT, 1, 10, 0, -1), ARCHANGEL_E_INVALID);
	archangel_message msg;
	CHECK_RC(archangel_receive(u, &msg, ARCHANGEL_FOREVER), ARCHANGEL_OK);
	CHECK(msg.size == 6000 && msg.segment_count == 2);
	CHECK(msg.segments[0].data == s0 && msg.segments[1].data == s1);	/* zero copy: same memory */
	CHECK(((const char *)msg.segments[1].data)[0] == 'b');
	CHECK_RC(archangel_release(u), ARCHANGEL_OK);
	/* cancel gives the buffers back */
	CHECK(archangel_loan(k, 100, 0) == 1);
	archangel_loan_cancel(k);
	archangel_loan_cancel(k);
	struct archangel_stats st;
	CHECK_RC(archangel_channel_stats(k, &st), ARCHANGEL_OK);
	CHECK(st.messages_sent == 1);
	archangel_channel_close(k);
	archangel_channel_close(u);
	archangel_manager_destroy(m);
}

struct responder { archangel_channel *ch; int answered; };

static void *respond_loop(void *arg)
{
	struct responder *r = arg;
	archangel_message req;
	while (archangel_receive(r->ch, &req, ARCHANGEL_FOREVER) == ARCHANGEL_OK) {
		char verdict[32];
		int n = snprintf(verdict, sizeof verdict, "verdict:%.*s", (int)req.size, (const char *)req.data);
		if (archangel_respond(r->ch, &req, ARCHANGEL_MSG_AI_RESPONSE, verdict, (size_t)n, -1) != ARCHANGEL_OK)
			break;
		r->answered++;
	}
	return NULL;
}

/* Request/response with correlation, across a host socket (the userspace backend). */
static void test_request_response_userspace(void)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/archangel-ctest-%d.sock", (int)getpid());
	archangel_manager *m;
	CHECK_RC(archangel_manager_create(4, ARCHANGEL_WAIT_PRESET_BALANCED, &m), ARCHANGEL_OK);
	archangel_host *host;
	CHECK_RC(archangel_host_start(m, path, 1, &host), ARCHANGEL_OK);
	archangel_host *second;
	CHECK_RC(archangel_host_start(m, path, 1, &second), ARCHANGEL_E_REFUSED);

	/* The engine attaches the user side, a sensor the kernel side, both through the socket. */
	archangel_channel *engine, *sensor, *dup;
	CHECK_RC(archangel_open_userspace(path, 3, ARCHANGEL_SIDE_USER, 1, ARCHANGEL_WAIT_PRESET_RESPONSIVE, &engine),
		 ARCHANGEL_OK);
	CHECK_RC(archangel_open_userspace(path, 3, ARCHANGEL_SIDE_USER, 1, ARCHANGEL_WAIT_PRESET_BALANCED, &dup),
		 ARCHANGEL_E_BUSY);
	CHECK_RC(archangel_open_userspace(path, 3, ARCHANGEL_SIDE_KERNEL, 0, ARCHANGEL_WAIT_PRESET_LOW_LATENCY,
					  &sensor), ARCHANGEL_OK);
	struct responder r = { engine, 0 };
	pthread_t t;
	CHECK(pthread_create(&t, NULL, respond_loop, &r) == 0);
	for (int i = 0; i < 100; i++) {
		char q[16];
		int n = snprintf(q, sizeof q, "q%d", i);
		archangel_message reply;
		CHECK_RC(archangel_request(sensor, ARCHANGEL_MSG_AI_REQUEST, ARCHANGEL_PRIORITY_HIGH, q, (size_t)n, &reply,
					   5000000000LL, NULL), ARCHANGEL_OK);
		CHECK(reply.type == ARCHANGEL_MSG_AI_RESPONSE && (reply.flags & ARCHANGEL_MSG_F_CORRELATED));
		CHECK(reply.correlation == archangel_last_sequence(sensor));
		CHECK(reply.priority == ARCHANGEL_PRIORITY_HIGH);
		char want[32];
		int w = snprintf(want, sizeof want, "verdict:%s", q);
		CHECK(reply.size == (size_t)w && memcmp(reply.data, want, (size_t)w) == 0);
	}
	CHECK_RC(archangel_release(sensor), ARCHANGEL_OK);
	char text[8192];
	int n = archangel_host_stats_text(path, text, sizeof text);
	CHECK(n > 0 && strstr(text, "channel 3") != NULL);

	/* shutdown wakes the blocked responder, which then sees CLOSED */
	archangel_channel_shutdown(engine);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(r.answered == 100);
	CHECK(archangel_channel_is_open(engine) == 0);
	archangel_message msg;
	CHECK_RC(archangel_receive(engine, &msg, 0), ARCHANGEL_E_CLOSED);
	archangel_channel_close(engine);
	archangel_channel_close(sensor);
	archangel_host_stop(host);
	archangel_channel *gone;
	CHECK_RC(archangel_open_userspace(path, 3, ARCHANGEL_SIDE_USER, 1, 0, &gone), ARCHANGEL_E_UNAVAILABLE);
	CHECK(strstr(archangel_last_error(), path) != NULL);
	archangel_manager_destroy(m);
}

static void test_kernel_backend_absent(void)
{
	archangel_channel *ch;
	CHECK(archangel_kernel_available("/dev/archangel-does-not-exist") == 0);
	CHECK_RC(archangel_open_kernel("/dev/archangel-does-not-exist", 0, 1, 0, &ch), ARCHANGEL_E_UNAVAILABLE);
	CHECK(strstr(archangel_last_error(), "module") != NULL);
}

int main(void)
{
	test_version_and_errors();
	test_manager_seed_calls();
	test_send_receive_lanes_batches_stats();
	test_loans();
	test_request_response_userspace();
	test_kernel_backend_absent();
	printf("tests/c/test_archangel: %d checks passed\n", checks);
	return 0;
}
