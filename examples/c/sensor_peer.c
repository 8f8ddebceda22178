/*
 * examples/c/sensor_peer.c - plays archangel_sensors.ko over the userspace
 * backend, for python/examples/ai_engine.py: attaches the kernel side of a
 * channel of a host, streams SYSCALL_EVENT records (struct
 * archangel_sensor_syscall, archangel_sensors_uapi.h) for a set of
 * processes, then asks one AI_REQUEST per process (struct
 * archangel_sensor_request + the process's last syscall record) and checks
 * the verdicts (struct archangel_sensor_response): the processes that
 * behave unlike the rest must be denied, most of the others allowed.
 *
 *   sensor_peer SOCK CH [PROCESSES]      exit 0 when the verdicts are as expected
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archangel.h"
#include "archangel_sensors_uapi.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* x86_64 numbers: what an ordinary service does, and what the odd ones do. */
static const uint32_t ordinary[] = { 0, 1, 0, 1, 0, 1, 0, 1, 45, 44, 7, 3, 257, 202, 232, 5 };
static const uint32_t odd[] = { 101, 105, 62, 42, 59, 101, 57, 62, 105, 42, 56, 101 };

static void syscall_record(struct archangel_sensor_syscall *r, uint32_t tgid, uint32_t nr)
{
	memset(r, 0, sizeof *r);
	r->ev.version = ARCHANGEL_SENSOR_VERSION;
	r->ev.kind = ARCHANGEL_SENSOR_SYSCALL;
	r->ev.pid = tgid;
	r->ev.tgid = tgid;
	r->ev.uid = 1000;
	r->ev.timestamp = now_ns();
	r->nr = nr;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: sensor_peer SOCK CH [PROCESSES]\n");
		return 2;
	}
	uint32_t id = (uint32_t)strtoul(argv[2], NULL, 10);
	int processes = argc > 3 ? atoi(argv[3]) : 40;
	archangel_channel *ch;
	int rc = archangel_open_userspace(argv[1], id, ARCHANGEL_SIDE_KERNEL, 1, ARCHANGEL_WAIT_PRESET_BALANCED, &ch);
	if (rc) {
		fprintf(stderr, "sensor_peer: attach: %s\n", archangel_last_error());
		return 1;
	}
	srand(7);
	/* Every 8th process is odd. Events go 16 records to a payload, as the module batches them. */
	struct archangel_sensor_syscall batch[16];
	for (int p = 0; p < processes; p++) {
		uint32_t tgid = 1000 + (uint32_t)p;
		int is_odd = p % 8 == 7;
		for (int e = 0; e < 400; e += 16) {
			for (int i = 0; i < 16; i++) {
				uint32_t nr = is_odd ? odd[rand() % (int)(sizeof odd / sizeof *odd)]
						     : ordinary[rand() % (int)(sizeof ordinary / sizeof *ordinary)];
				syscall_record(&batch[i], tgid, nr);
			}
			if ((rc = archangel_send(ch, ARCHANGEL_MSG_SYSCALL_EVENT, ARCHANGEL_PRIORITY_NORMAL, batch, sizeof batch,
						 ARCHANGEL_FOREVER, ARCHANGEL_SEND_NO_WAKEUP))) {
				fprintf(stderr, "sensor_peer: send: %s\n", archangel_strerror(rc));
				return 1;
			}
		}
	}
	int denied_odd = 0, denied_ordinary = 0, odd_count = 0;
	for (int p = 0; p < processes; p++) {
		uint32_t tgid = 1000 + (uint32_t)p;
		struct {
			struct archangel_sensor_request req;
			struct archangel_sensor_syscall event;
		} __attribute__((packed)) ask;
		memset(&ask, 0, sizeof ask);
		ask.req.id = 5000 + (uint64_t)p;
		ask.req.deadline = now_ns() + 1000000000ULL;
		ask.req.default_verdict = ARCHANGEL_VERDICT_ALLOW;
		ask.req.event_size = sizeof ask.event;
		syscall_record(&ask.event, tgid, 59 /* execve */);
		archangel_message reply;
		/*
		 * NORMAL, so that each request queues behind the events it is
		 * about: a HIGH one would overtake them on the express lane.
		 */
		rc = archangel_request(ch, ARCHANGEL_MSG_AI_REQUEST, ARCHANGEL_PRIORITY_NORMAL, &ask, sizeof ask, &reply,
				       10000000000LL, NULL);
		if (rc || reply.size < sizeof(struct archangel_sensor_response)) {
			fprintf(stderr, "sensor_peer: request: %s\n", rc ? archangel_strerror(rc) : "short response");
			return 1;
		}
		struct archangel_sensor_response resp;
		memcpy(&resp, reply.data, sizeof resp);	/* read shared memory once */
		if (resp.id != ask.req.id) {
			fprintf(stderr, "sensor_peer: response for id %llu, asked %llu\n", (unsigned long long)resp.id,
				(unsigned long long)ask.req.id);
			return 1;
		}
		int is_odd = p % 8 == 7;
		odd_count += is_odd;
		if (resp.verdict == ARCHANGEL_VERDICT_DENY) {
			if (is_odd) denied_odd++; else denied_ordinary++;
		}
	}
	archangel_release(ch);
	printf("sensor_peer: %d processes, %d odd: denied %d of the odd, %d of the ordinary\n", processes, odd_count,
	       denied_odd, denied_ordinary);
	archangel_channel_close(ch);
	return denied_odd == odd_count && denied_ordinary * 10 <= processes - odd_count ? 0 : 1;
}
