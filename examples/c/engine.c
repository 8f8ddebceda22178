/*
 * examples/c/engine.c - a minimal AI engine in C over libarchangel.
 *
 * Attaches the user side of a channel of an Archangel host (the userspace
 * backend: `archangel serve`, or --demo to host one in this process with a
 * sensor thread), then answers every AI_REQUEST with a verdict: the
 * payload is read in place (zero copy) and the answer is correlated with
 * archangel_respond.
 *
 *   gcc -Iinclude examples/c/engine.c -L.build/release -larchangel -lpthread -o engine
 *   ./engine --demo                 # host + sensor in this process, 1000 requests
 *   ./engine /path/to/archangel.sock 0   # serve channel 0 of a running host
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archangel.h"

/* The "model": deny payloads that mention a forbidden word, allow the rest. */
static uint8_t verdict_for(const void *data, size_t size)
{
	return memmem(data, size, "evil", 4) != NULL ? 1 /* deny */ : 0 /* allow */;
}

static int serve(archangel_channel *ch, long limit)
{
	long answered = 0;
	archangel_message req;
	while (limit < 0 || answered < limit) {
		int rc = archangel_receive(ch, &req, ARCHANGEL_FOREVER);
		if (rc != ARCHANGEL_OK) {
			fprintf(stderr, "engine: receive: %s (%s)\n", archangel_strerror(rc), archangel_last_error());
			return rc == ARCHANGEL_E_CLOSED || rc == ARCHANGEL_E_DISCONNECTED ? 0 : 1;
		}
		if (req.type != ARCHANGEL_MSG_AI_REQUEST) continue;	/* released by the next receive */
		uint8_t verdict = verdict_for(req.data, req.size);
		rc = archangel_respond(ch, &req, ARCHANGEL_MSG_AI_RESPONSE, &verdict, 1, ARCHANGEL_FOREVER);
		if (rc != ARCHANGEL_OK) {
			fprintf(stderr, "engine: respond: %s\n", archangel_strerror(rc));
			return 1;
		}
		answered++;
	}
	archangel_release(ch);
	return 0;
}

struct sensor_args { archangel_channel *ch; long requests; long denied; };

static void *sensor(void *arg)
{
	struct sensor_args *a = arg;
	for (long i = 0; i < a->requests; i++) {
		char event[64];
		int n = snprintf(event, sizeof event, "exec /usr/bin/%s", i % 10 == 0 ? "evil" : "ls");
		archangel_message reply;
		if (archangel_request(a->ch, ARCHANGEL_MSG_AI_REQUEST, ARCHANGEL_PRIORITY_HIGH, event, (size_t)n, &reply,
				      ARCHANGEL_FOREVER, NULL) != ARCHANGEL_OK) break;
		if (reply.size == 1 && *(const uint8_t *)reply.data == 1) a->denied++;
	}
	archangel_release(a->ch);
	return NULL;
}

int main(int argc, char **argv)
{
	if (!ARCHANGEL_VERSION_COMPATIBLE(archangel_version())) {
		fprintf(stderr, "libarchangel %s is not compatible with this build\n", archangel_version_string());
		return 1;
	}
	if (argc >= 2 && strcmp(argv[1], "--demo") == 0) {
		char path[64];
		snprintf(path, sizeof path, "/tmp/archangel-c-engine-%d.sock", (int)getpid());
		archangel_manager *m;
		archangel_host *host;
		archangel_channel *engine, *sensor_side;
		if (archangel_manager_create(0, ARCHANGEL_WAIT_PRESET_BALANCED, &m) ||
		    archangel_host_start(m, path, 1, &host) ||
		    archangel_open_userspace(path, 0, ARCHANGEL_SIDE_USER, 1, ARCHANGEL_WAIT_PRESET_BALANCED, &engine) ||
		    archangel_open_userspace(path, 0, ARCHANGEL_SIDE_KERNEL, 0, ARCHANGEL_WAIT_PRESET_BALANCED,
					     &sensor_side)) {
			fprintf(stderr, "engine: setup: %s\n", archangel_last_error());
			return 1;
		}
		struct sensor_args a = { sensor_side, 1000, 0 };
		pthread_t t;
		pthread_create(&t, NULL, sensor, &a);
		int rc = serve(engine, a.requests);
		pthread_join(t, NULL);
		printf("engine: answered %ld requests, %ld denied\n", a.requests, a.denied);
		archangel_channel_close(sensor_side);
		archangel_channel_close(engine);
		archangel_host_stop(host);
		archangel_manager_destroy(m);
		return rc || a.denied != a.requests / 10;
	}
	const char *path = argc >= 2 ? argv[1] : NULL;
	uint32_t id = argc >= 3 ? (uint32_t)strtoul(argv[2], NULL, 10) : 0;
	archangel_channel *ch;
	int rc = archangel_open_userspace(path, id, ARCHANGEL_SIDE_USER, 1, ARCHANGEL_WAIT_PRESET_BALANCED, &ch);
	if (rc != ARCHANGEL_OK) {
		fprintf(stderr, "engine: attach: %s\n", archangel_last_error());
		return 1;
	}
	rc = serve(ch, -1);
	archangel_channel_close(ch);
	return rc;
}
