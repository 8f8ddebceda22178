"""The Python peer of scripts/bench-bindings (the roles of examples/c/bindings_bench.c).

    python bench.py recv SOCK CH N BATCH      user side: receive N with receive_batch, print msgs/s
    python bench.py request SOCK CH N SIZE    kernel side: N round trips with request(), print median/p99 ns
"""

from __future__ import annotations

import json
import os
import sys
import time

import archangel as a

#: ARCHANGEL_BENCH_PRESET: the wait preset every peer uses (default 0, balanced).
PRESET = a.WaitPreset(int(os.environ.get("ARCHANGEL_BENCH_PRESET", "0")))


def recv(sock: str, channel: int, n: int, batch: int) -> None:
    ch = a.open_userspace(sock, channel=channel, side=a.Side.USER, wait=PRESET)
    print(json.dumps({"attached": True}), flush=True)
    got = 0
    nbytes = 0
    start = 0
    cpu_start = 0
    receive_batch = ch.receive_batch
    while got < n:
        msgs = receive_batch(batch)
        if not start:
            start = time.perf_counter_ns()
            cpu_start = time.process_time_ns()
        for view in msgs:  # touch every payload view, as a consumer would
            nbytes += len(view)
        got += len(msgs)
    elapsed = (time.perf_counter_ns() - start) / 1e9
    cpu = (time.process_time_ns() - cpu_start) / 1e9
    ch.release()
    print(json.dumps({"role": "recv", "lang": "python", "batch": batch, "messages": got, "bytes": nbytes,
                      "msgs_per_s": round(got / elapsed), "msgs_per_cpu_s": round(got / cpu)}))
    ch.close()


def request(sock: str, channel: int, n: int, size: int) -> None:
    ch = a.open_userspace(sock, channel=channel, side=a.Side.KERNEL, wait=PRESET)
    payload = bytes(size)
    warmup = n // 10 + 10
    samples = []
    req = ch.request
    kind = a.MessageType.AI_REQUEST  # an enum member's lookup costs ~50 ns: hoisted, as the C and Swift peers do
    for i in range(-warmup, n):
        t0 = time.perf_counter_ns()
        req(kind, payload, timeout=5.0)
        if i >= 0:
            samples.append(time.perf_counter_ns() - t0)
    ch.release()
    samples.sort()
    print(json.dumps({"role": "request", "lang": "python", "round_trips": n, "median_ns": samples[n // 2],
                      "p99_ns": samples[n * 99 // 100]}))
    ch.close()


if __name__ == "__main__":
    role, sock, channel, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    extra = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    if role == "recv":
        recv(sock, channel, count, extra or 256)
    elif role == "request":
        request(sock, channel, count, extra or 64)
    else:
        sys.exit(f"unknown role {role}")
