/*
 * examples/c/bindings_bench.c - the C peer of scripts/bench-bindings.
 *
 * Every role attaches to one userspace host (the `host` role) through its
 * socket, with one wait preset (ARCHANGEL_BENCH_PRESET, default balanced), so that the Swift, C and Python
 * peers are measured in the same setting:
 *
 *   bindings_bench host SOCK                 host channels until stdin closes
 *   bindings_bench send SOCK CH N SIZE       kernel side: N blocking sends of SIZE bytes
 *   bindings_bench recv SOCK CH N BATCH      user side: receive N (archangel_receive_batch;
 *                                            BATCH 1: archangel_receive), print msgs/s
 *                                            (wall clock, and per CPU-second of this process)
 *   bindings_bench respond SOCK CH           user side: answer every request (8 bytes)
 *   bindings_bench request SOCK CH N SIZE    kernel side: N round trips (archangel_request),
 *                                            print the median and p99 in ns
 *
 * Results are one JSON line on stdout.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "archangel.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* CPU time of this process: throughput per CPU-second does not depend on how much of a core we got. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bindings_bench: %s: %s (%s)\n", what, archangel_strerror(rc), archangel_last_error());
	exit(1);
}

/* ARCHANGEL_BENCH_PRESET: the ARCHANGEL_WAIT_PRESET_* number every peer uses (default 0, balanced). */
static int preset(void)
{
	const char *p = getenv("ARCHANGEL_BENCH_PRESET");
	return p ? atoi(p) : ARCHANGEL_WAIT_PRESET_BALANCED;
}

static archangel_channel *attach(const char *sock, uint32_t id, int side)
{
	archangel_channel *ch;
	int rc = archangel_open_userspace(sock, id, side, 1, preset(), &ch);
	if (rc) die("attach", rc);
	return ch;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bindings_bench host|send|recv|respond|request SOCK ...\n");
		return 2;
	}
	const char *role = argv[1], *sock = argv[2];
	uint32_t id = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 0;
	long n = argc > 4 ? strtol(argv[4], NULL, 10) : 0;
	long arg5 = argc > 5 ? strtol(argv[5], NULL, 10) : 0;

	if (strcmp(role, "host") == 0) {
		archangel_manager *m;
		archangel_host *host;
		int rc = archangel_manager_create(16, ARCHANGEL_WAIT_PRESET_BALANCED, &m);
		if (rc) die("manager", rc);
		if ((rc = archangel_host_start(m, sock, 1, &host))) die("host", rc);
		printf("ready\n");
		fflush(stdout);
		char buf[64];
		while (fread(buf, 1, sizeof buf, stdin) > 0) {}
		archangel_host_stop(host);
		archangel_manager_destroy(m);
		return 0;
	}
	if (strcmp(role, "send") == 0) {
		archangel_channel *ch = attach(sock, id, ARCHANGEL_SIDE_KERNEL);
		char payload[65536];
		memset(payload, 0x5a, sizeof payload);
		for (long i = 0; i < n; i++) {
			memcpy(payload, &i, sizeof i);
			int rc = archangel_send(ch, ARCHANGEL_MSG_SYSCALL_EVENT, ARCHANGEL_PRIORITY_NORMAL, payload,
						(size_t)arg5, ARCHANGEL_FOREVER, 0);
			if (rc) die("send", rc);
		}
		archangel_channel_close(ch);
		return 0;
	}
	if (strcmp(role, "recv") == 0) {
		archangel_channel *ch = attach(sock, id, ARCHANGEL_SIDE_USER);
		printf("{\"attached\":true}\n");
		fflush(stdout);
		long batch = arg5 > 0 ? arg5 : 256;
		archangel_message *msgs = calloc((size_t)batch, sizeof *msgs);
		long got = 0;
		uint64_t bytes = 0, start = 0, cpu_start = 0;
		while (got < n) {
			int k;
			if (batch == 1) {
				k = archangel_receive(ch, msgs, ARCHANGEL_FOREVER);
				k = k == 0 ? 1 : k;
			} else {
				k = archangel_receive_batch(ch, msgs, (size_t)batch, ARCHANGEL_FOREVER);
			}
			if (k < 0) die("receive", k);
			if (start == 0) {
				start = now_ns();
				cpu_start = cpu_ns();
			}
			for (int i = 0; i < k; i++) bytes += msgs[i].size;
			got += k;
		}
		uint64_t elapsed = now_ns() - start, cpu = cpu_ns() - cpu_start;
		archangel_release(ch);
		printf("{\"role\":\"recv\",\"lang\":\"c\",\"batch\":%ld,\"messages\":%ld,\"bytes\":%llu,"
		       "\"msgs_per_s\":%.0f,\"msgs_per_cpu_s\":%.0f}\n", batch, got, (unsigned long long)bytes,
		       got / (elapsed / 1e9), got / (cpu / 1e9));
		archangel_channel_close(ch);
		return 0;
	}
	if (strcmp(role, "respond") == 0) {
		archangel_channel *ch = attach(sock, id, ARCHANGEL_SIDE_USER);
		printf("{\"attached\":true}\n");
		fflush(stdout);
		archangel_message req;
		uint64_t verdict = 0;
		for (;;) {
			int rc = archangel_receive(ch, &req, ARCHANGEL_FOREVER);
			if (rc == ARCHANGEL_E_CLOSED || rc == ARCHANGEL_E_DISCONNECTED) break;
			if (rc) die("receive", rc);
			verdict++;
			if ((rc = archangel_respond(ch, &req, ARCHANGEL_MSG_AI_RESPONSE, &verdict, sizeof verdict,
						    ARCHANGEL_FOREVER)))
				die("respond", rc);
		}
		archangel_channel_close(ch);
		return 0;
	}
	if (strcmp(role, "request") == 0) {
		archangel_channel *ch = attach(sock, id, ARCHANGEL_SIDE_KERNEL);
		char payload[4096] = { 0 };
		size_t size = arg5 > 0 ? (size_t)arg5 : 64;
		long warmup = n / 10 + 10;
		uint64_t *samples = calloc((size_t)n, sizeof *samples);
		archangel_message reply;
		for (long i = -warmup; i < n; i++) {
			uint64_t t0 = now_ns();
			int rc = archangel_request(ch, ARCHANGEL_MSG_AI_REQUEST, ARCHANGEL_PRIORITY_NORMAL, payload, size,
						   &reply, 5000000000LL, NULL);
			if (rc) die("request", rc);
			if (i >= 0) samples[i] = now_ns() - t0;
		}
		archangel_release(ch);
		qsort(samples, (size_t)n, sizeof *samples, cmp_u64);
		printf("{\"role\":\"request\",\"lang\":\"c\",\"round_trips\":%ld,\"median_ns\":%llu,\"p99_ns\":%llu}\n", n,
		       (unsigned long long)samples[n / 2], (unsigned long long)samples[n * 99 / 100]);
		archangel_channel_close(ch);
		return 0;
	}
	fprintf(stderr, "bindings_bench: unknown role %s\n", role);
	return 2;
}
