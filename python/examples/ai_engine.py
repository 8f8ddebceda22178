"""An example AI engine: answers the sensors' AI_REQUESTs with verdicts from a small anomaly model.

The engine attaches the user side of a channel (the userspace backend: a
host's socket; or the kernel backend on a machine with the module), keeps a
per-process vector of system-call counts from the SYSCALL_EVENT records it
receives, and answers each AI_REQUEST with an AI_RESPONSE verdict:
DENY when the process's vector is an outlier, ALLOW otherwise.

Formats: the kernel sensors' own (Sources/CArchangel/include/
archangel_sensors_uapi.h, docs/sensors.md):

* SYSCALL_EVENT payload: one or more ``struct archangel_sensor_syscall``
  records (104 bytes: the 40-byte ``archangel_sensor_event`` header, then
  ``nr``); other kinds are skipped by their size.
* AI_REQUEST payload: ``struct archangel_sensor_request`` (24 bytes: id,
  deadline, default_verdict, event_size) then the event it is about.
* AI_RESPONSE payload: ``struct archangel_sensor_response`` (24 bytes: id,
  verdict, ttl_ms, score 0..1000000).

The model: scikit-learn's ``IsolationForest`` over per-process syscall
mixes (the share of each of 24 tracked system calls, plus the log of the
count), trained at start-up on vectors this script generates for three
ordinary workload profiles. Without scikit-learn it falls back to a small
numpy model (per-feature z-scores against the same training data; the max
|z| is the score), and without numpy to the same in pure Python, so that the
example runs wherever the bindings do.

Run it against a host and the C sensor (examples/c/sensor_peer.c)::

    archangel serve --socket /tmp/a.sock &          # or any host
    python ai_engine.py --socket /tmp/a.sock --channel 0 &
    sensor_peer /tmp/a.sock 0

or all in one process tree: ``python ai_engine.py --demo --peer .build/bindings/sensor_peer``.

On the kernel backend (``--backend kernel``, root, archangel.ko and
archangel_sensors.ko loaded) the engine creates a channel on /dev/archangel,
attaches the sensors to it (archangel.sensors), records the tracked system
calls and holds every exec until its verdict (POLICY_HOLD: DENY kills the
process). ``--backend kernel --workload N`` also runs N test processes, every
8th one kill/setuid-heavy, each exec'ing ``true`` at its end, and exits 0
only if every odd one was killed, at most a tenth of the others were, and
the module counted no timeout and no malformed response: scripts/kernel-test
runs that in the VM.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

import archangel as a

# -- record formats (archangel_sensors_uapi.h)

EVENT = struct.Struct("<HHIIIIIQQ")  # version, kind, cpu, pid, tgid, uid, flags, timestamp, reserved: 40 bytes
REQUEST = struct.Struct("<QQB3xI")  # id, deadline, default_verdict, pad, event_size: 24 bytes
RESPONSE = struct.Struct("<QB3xIII")  # id, verdict, pad, ttl_ms, score, reserved: 24 bytes
SYSCALL_NR = struct.Struct("<I")  # archangel_sensor_syscall.nr, right after the event header
SENSOR_SYSCALL = 3
RECORD_SIZE = {1: 328, 2: 80, 3: 104, 4: 88, 5: 56, 6: 72, 7: 56}
VERDICT_ALLOW, VERDICT_DENY = 0, 1
assert EVENT.size == 40 and REQUEST.size == 24 and RESPONSE.size == 24

# -- features: the mix of 24 tracked x86_64 system calls (others count as "other")

TRACKED = [0, 1, 2, 3, 4, 5, 7, 9, 10, 12, 16, 21, 41, 42, 43, 44, 45, 56, 57, 59, 62, 101, 105, 257]
INDEX = {nr: i for i, nr in enumerate(TRACKED)}
DIM = len(TRACKED) + 2  # + other, + log(total)


def features(counts: Sequence[float]) -> List[float]:
    """A count vector (len(TRACKED) + 1) as the model's input: shares, then log(1 + total)."""
    total = sum(counts)
    shares = [c / total for c in counts] if total else [0.0] * len(counts)
    return shares + [math.log1p(total)]


def training_set(rng: random.Random, n: int = 600) -> List[List[float]]:
    """Vectors of ordinary processes: a server, a shell-like tool, a batch job, with noise."""
    # Weights per system call; -1 is everything untracked (futex, epoll_wait, ...).
    profiles = [
        {0: 30, 1: 30, 45: 10, 44: 10, 7: 8, 3: 4, 257: 3, 5: 3, 9: 2, -1: 15},  # network service
        {257: 15, 0: 20, 1: 10, 3: 15, 5: 10, 4: 8, 9: 6, 12: 4, 21: 4, 56: 2, 59: 1, -1: 10},  # shell tool
        {0: 40, 1: 35, 9: 8, 12: 6, 10: 3, 3: 4, 257: 4, -1: 10},  # batch job
    ]
    out = []
    for i in range(n):
        weights = profiles[i % len(profiles)]
        keys = list(weights)
        jittered = [weights[k] * rng.uniform(0.7, 1.3) for k in keys]
        counts = [0.0] * (len(TRACKED) + 1)
        # Sampled event by event, as a sensor sees them.
        for nr in rng.choices(keys, weights=jittered, k=rng.randint(200, 600)):
            counts[INDEX.get(nr, len(TRACKED))] += 1
        out.append(features(counts))
    return out


class Model:
    """IsolationForest when scikit-learn is installed, else z-scores (numpy or pure Python)."""

    def __init__(self, train: List[List[float]], seed: int = 7) -> None:
        self.kind = "pure-python z-score"
        try:
            from sklearn.ensemble import IsolationForest  # type: ignore[import-not-found]
            import numpy as np  # type: ignore[import-not-found]

            self._np = np
            x = np.asarray(train)
            self._forest = IsolationForest(n_estimators=100, random_state=seed).fit(x)
            # The cut: a margin below the least normal training vector, so that
            # ordinary processes the training did not quite cover pass.
            self._cut = float(self._forest.score_samples(x).min()) - 0.03
            self.kind = "scikit-learn IsolationForest"
            return
        except ImportError:
            self._forest = None
        try:
            import numpy as np  # type: ignore[import-not-found]

            self._np = np
            x = np.asarray(train)
            self._mean = x.mean(axis=0)
            self._std = x.std(axis=0) + 1e-3
            self.kind = "numpy z-score"
        except ImportError:
            self._np = None
            cols = list(zip(*train))
            self._mean = [sum(c) / len(c) for c in cols]
            self._std = [math.sqrt(sum((v - m) ** 2 for v in c) / len(c)) + 1e-3 for c, m in zip(cols, self._mean)]
        self._threshold = 12.0  # |z| beyond any ordinary training vector by a wide margin

    def score(self, x: List[float]) -> float:
        """Anomaly score in [0, 1]: above 0.5 is an outlier."""
        if self._forest is not None:
            s = float(self._forest.score_samples(self._np.asarray([x]))[0])  # lower: more anomalous
            return 1.0 / (1.0 + math.exp(max(-50.0, min(50.0, 50 * (s - self._cut)))))
        if self._np is not None:
            z = float(self._np.max(self._np.abs((self._np.asarray(x) - self._mean) / self._std)))
        else:
            z = max(abs((v - m) / s) for v, m, s in zip(x, self._mean, self._std))
        return min(1.0, z / (2 * self._threshold))


class Engine:
    """The verdict loop: per-process syscall counts in, verdicts out."""

    def __init__(self, channel: a.Channel, model: Model, min_events: int = 32) -> None:
        self.channel = channel
        self.model = model
        self.min_events = min_events
        self.counts: Dict[int, List[float]] = {}
        self.events = 0
        self.answered = 0
        self.denied = 0

    def count(self, payload: memoryview) -> None:
        """Walks a SYSCALL_EVENT payload (records read in place from shared memory)."""
        offset = 0
        end = len(payload)
        while offset + EVENT.size <= end:
            _, kind, _, _, tgid, _, _, _, _ = EVENT.unpack_from(payload, offset)
            size = RECORD_SIZE.get(kind, 0)
            if size == 0 or offset + size > end:
                return  # unknown kind or truncated: stop reading this payload
            if kind == SENSOR_SYSCALL:
                (nr,) = SYSCALL_NR.unpack_from(payload, offset + EVENT.size)
                vec = self.counts.get(tgid)
                if vec is None:
                    vec = self.counts[tgid] = [0.0] * (len(TRACKED) + 1)
                vec[INDEX.get(nr, len(TRACKED))] += 1
                self.events += 1
            offset += size

    def verdict(self, request: a.Message) -> bytes:
        """The AI_RESPONSE payload for one AI_REQUEST."""
        data = request.data
        if len(data) < REQUEST.size + EVENT.size:
            return RESPONSE.pack(0, VERDICT_ALLOW, 0, 0, 0)
        req_id, _deadline, default, event_size = REQUEST.unpack_from(data, 0)
        _, kind, _, _, tgid, _, _, _, _ = EVENT.unpack_from(data, REQUEST.size)
        vec = self.counts.get(tgid)
        if vec is None or sum(vec) < self.min_events:
            return RESPONSE.pack(req_id, default, 0, 0, 0)  # too little seen: the sensor's default
        score = self.model.score(features(vec))
        verdict = VERDICT_DENY if score > 0.5 else VERDICT_ALLOW
        self.denied += verdict == VERDICT_DENY
        # Never cached (ttl 0): the module caches a verdict per executable, and
        # this one is about the process's behaviour, not the file it runs.
        return RESPONSE.pack(req_id, verdict, 0, int(score * 1_000_000), 0)

    def serve(self, limit: Optional[int] = None, until: Optional[Callable[[], bool]] = None,
              batch: int = 256) -> None:
        """Receives in batches until the channel closes, `limit` requests are answered,
        or `until()` is true (checked at least every 0.2 s).

        A request is answered once the rings are drained (a batch came back short):
        the kernel sends it on the express lane, where it can overtake the
        process's last system-call records, still queued on the normal one.
        """
        ch = self.channel
        waiting: List[a.Message] = []
        while limit is None or self.answered < limit:
            if until is not None and until():
                break
            try:
                got = ch.receive_batch(limit=batch, timeout=0.2 if until is not None else None)
            except a.TimedOut:
                got = None
            except (a.Closed, a.Disconnected):
                return
            if got is not None:
                types = got.types
                for i, payload in enumerate(got):
                    t = types[i]
                    if t == a.MessageType.SYSCALL_EVENT:
                        self.count(payload)
                    elif t == a.MessageType.AI_REQUEST:
                        request = got.message(i)
                        # Copied out: the message is lent only until the next receive.
                        copy = memoryview(request.tobytes())
                        waiting.append(a.Message(request.type, request.priority, request.flags, request.sequence,
                                                 request.timestamp, request.correlation, request.size, copy,
                                                 (copy,)))
            if waiting and (got is None or len(got) < batch):
                for request in waiting:
                    ch.respond(request, self.verdict(request))
                    self.answered += 1
                waiting.clear()


def kernel_workload(count: int) -> int:
    """The test processes of ``--workload`` (run in a process of its own, started by the engine):
    waits for "go" on stdin, then runs them one after the other and prints one JSON line."""
    if sys.stdin.readline() != "go\n":  # the engine could not start: no test processes
        return 1
    true = shutil.which("true") or "/bin/true"
    killed_odd = killed_ordinary = odd = 0
    for i in range(count):
        is_odd = i % 8 == 7
        pid = os.fork()
        if pid == 0:
            try:
                if is_odd:  # kill (62) and setuid (105): nothing ordinary does this much of either
                    me = os.getpid()
                    for _ in range(200):
                        os.kill(me, 0)
                    for _ in range(60):
                        os.setuid(os.getuid())
                else:  # read (0) and write (1), a few openat (257) and close (3): a batch job
                    fd = os.open("/dev/zero", os.O_RDONLY)
                    out = os.open("/dev/null", os.O_WRONLY)
                    for _ in range(150):
                        os.write(out, os.read(fd, 64))
                    os.close(fd)
                    os.close(out)
                os.execv(true, [true])  # held by the exec sensor until the engine's verdict
            finally:
                os._exit(127)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9
        odd += is_odd
        killed_odd += killed and is_odd
        killed_ordinary += killed and not is_odd
    print(json.dumps({"processes": count, "odd": odd, "killed_odd": killed_odd,
                      "ordinary": count - odd, "killed_ordinary": killed_ordinary}), flush=True)
    return 0


def serve_kernel(opts: argparse.Namespace, model: "Model") -> int:
    """The engine on the kernel backend: its channel, the sensors attached and configured."""
    from archangel import sensors as s

    workload = None
    if opts.workload:
        # Started before the sensors are on, so that only its test processes are judged.
        workload = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--workload-child", str(opts.workload)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    channel = a.ANY_CHANNEL if opts.channel is None else opts.channel
    with a.open_kernel(channel=channel, wait=a.WaitPreset.BALANCED) as ch, s.SensorsDevice() as sensors:
        sensors.attach(ch.id)
        sensors.configure(s.SENSOR_SYSCALL, syscalls=TRACKED)
        sensors.configure(s.SENSOR_EXEC, policy=s.POLICY_HOLD, default_verdict=s.VERDICT_ALLOW,
                          deadline_ms=opts.deadline_ms, flags=s.F_EXEC_NO_EXIT)
        print(f"ai_engine: serving channel {ch.id} of /dev/archangel with the kernel sensors", flush=True)
        engine = Engine(ch, model)
        if workload is None:
            engine.serve()
            print(f"ai_engine: {engine.answered} requests answered, {engine.denied} denied")
            return 0
        assert workload.stdin is not None and workload.stdout is not None
        before = sensors.stats()  # the module's counters are since its load: this run is the difference
        workload.stdin.write("go\n")
        workload.stdin.flush()
        engine.serve(until=lambda: workload.poll() is not None)
        line = workload.stdout.read()
        after = sensors.stats()
    result = json.loads(line) if line.strip() else {}
    delta = {k: after.counters[k] - before.counters[k] for k in after.counters}
    syscalls = [a_ - b_ for a_, b_ in zip(after.kinds[3], before.kinds[3])]
    print(f"ai_engine: {engine.events} syscall events from {len(engine.counts)} processes, "
          f"{engine.answered} requests answered, {engine.denied} denied; workload {result}")
    print("ai_engine: sensors during the workload: " + ", ".join(f"{k}={delta[k]}" for k in (
        "requests", "responses", "timeouts", "responses_bad", "responses_late", "verdict_deny", "exec_killed",
        "exec_stopped", "exec_continued")) + ", syscall records observed/sent/dropped %d/%d/%d" % tuple(syscalls[:3]))
    ok = (result.get("processes") == opts.workload and result["killed_odd"] == result["odd"]
          and result["killed_ordinary"] * 10 <= result["ordinary"]
          and delta["timeouts"] == 0 and delta["responses_bad"] == 0
          and delta["responses"] >= opts.workload and workload.returncode == 0)
    print("ai_engine: kernel workload " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--socket", help="the host's socket (userspace backend)")
    ap.add_argument("--channel", type=int, help="the channel (userspace: 0; kernel: a new one)")
    ap.add_argument("--backend", choices=["userspace", "kernel", "auto"], default="userspace")
    ap.add_argument("--demo", action="store_true", help="host a channel here and run --peer against it")
    ap.add_argument("--peer", help="the sensor program for --demo (examples/c/sensor_peer.c, built)")
    ap.add_argument("--processes", type=int, default=40)
    ap.add_argument("--workload", type=int, default=0,
                    help="kernel backend: run this many test processes and judge the verdicts")
    ap.add_argument("--deadline-ms", type=int, default=10000,
                    help="kernel backend: how long an exec waits for a verdict (then ALLOW)")
    ap.add_argument("--workload-child", type=int, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.workload_child is not None:
        return kernel_workload(opts.workload_child)

    t0 = time.perf_counter()
    model = Model(training_set(random.Random(1)))
    print(f"ai_engine: model {model.kind}, trained in {time.perf_counter() - t0:.2f} s", flush=True)

    if opts.demo:
        if not opts.peer:
            ap.error("--demo needs --peer (build examples/c/sensor_peer.c; scripts/test-bindings does)")
        sock = os.path.join(tempfile.mkdtemp(prefix="archangel-ai-"), "host.sock")
        with a.Manager(max_channels=1) as manager, manager.serve(sock):
            with a.open_userspace(sock, channel=0) as ch:
                peer = subprocess.Popen([opts.peer, sock, "0", str(opts.processes)])
                engine = Engine(ch, model)
                engine.serve(limit=opts.processes)
                rc = peer.wait(timeout=60)
        print(f"ai_engine: {engine.events} syscall events from {len(engine.counts)} processes, "
              f"{engine.answered} requests answered, {engine.denied} denied; sensor exit {rc}")
        return rc

    if opts.backend == "kernel":
        return serve_kernel(opts, model)
    if opts.backend == "auto":
        ch = a.open(0 if opts.channel is None else opts.channel, socket_path=opts.socket)
    else:
        ch = a.open_userspace(opts.socket, channel=0 if opts.channel is None else opts.channel)
    with ch:
        engine = Engine(ch, model)
        engine.serve()
    print(f"ai_engine: {engine.answered} requests answered, {engine.denied} denied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
