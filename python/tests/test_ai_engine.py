"""The example AI engine (python/examples/ai_engine.py): its model and the sensors' record formats."""

from __future__ import annotations

import os
import random
import struct
import sys

import archangel as a

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import ai_engine  # noqa: E402


def syscall_record(tgid: int, nr: int) -> bytes:
    head = ai_engine.EVENT.pack(1, ai_engine.SENSOR_SYSCALL, 0, tgid, tgid, 1000, 0, 0, 0)
    return head + struct.pack("<II6Qq", nr, 0, 0, 0, 0, 0, 0, 0, 0)


def test_model_separates_odd_from_ordinary() -> None:
    rng = random.Random(3)
    model = ai_engine.Model(ai_engine.training_set(rng))
    ordinary = ai_engine.training_set(random.Random(99), n=30)
    assert all(model.score(x) < 0.5 for x in ordinary)
    odd = [0.0] * (len(ai_engine.TRACKED) + 1)
    for nr in (101, 105, 62, 42, 59):
        odd[ai_engine.INDEX[nr]] = 80
    assert model.score(ai_engine.features(odd)) > 0.5


def test_engine_answers_a_sensor_request_in_process() -> None:
    assert len(syscall_record(1, 0)) == ai_engine.RECORD_SIZE[ai_engine.SENSOR_SYSCALL]
    model = ai_engine.Model(ai_engine.training_set(random.Random(1)))
    with a.Manager(max_channels=1) as m:
        cid = m.create_channel()
        sensor, user = m.open(cid, a.Side.KERNEL), m.open(cid)
        engine = ai_engine.Engine(user, model)
        for _ in range(10):  # 16 ptrace/setuid records per payload, as the module batches them
            sensor.send(a.MessageType.SYSCALL_EVENT, b"".join(syscall_record(77, nr) for nr in [101, 105] * 8))
        event = syscall_record(77, 59)
        request = ai_engine.REQUEST.pack(42, 0, ai_engine.VERDICT_ALLOW, len(event)) + event
        sensor.send(a.MessageType.AI_REQUEST, request)
        engine.serve(limit=1)
        assert engine.events == 160 and engine.answered == 1
        reply = sensor.receive(timeout=1)
        assert reply.type == a.MessageType.AI_RESPONSE and reply.correlation is not None
        rid, verdict, ttl, score, _ = ai_engine.RESPONSE.unpack(bytes(reply.data))
        assert (rid, verdict, ttl) == (42, ai_engine.VERDICT_DENY, 0) and score > 500_000
