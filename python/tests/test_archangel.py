"""Tests of the Python bindings (python/archangel) over libarchangel."""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Iterator, List

import pytest

import archangel as a


# -- helpers


class _PyBuffer(ctypes.Structure):
    _fields_ = [
        ("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p), ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p), ("shape", ctypes.c_void_p), ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p), ("internal", ctypes.c_void_p),
    ]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]


def buffer_address(view: memoryview) -> int:
    """The address of the memory a (possibly read-only) buffer exports: the buffer protocol's `buf`."""
    b = _PyBuffer()
    assert _get_buffer(view, ctypes.byref(b), 0) == 0
    try:
        return b.buf or 0
    finally:
        _release_buffer(ctypes.byref(b))


@pytest.fixture
def pair() -> Iterator["tuple[a.Manager, a.Channel, a.Channel]"]:
    with a.Manager(max_channels=2) as m:
        cid = m.create_channel()
        kernel = m.open(cid, a.Side.KERNEL)
        user = m.open(cid)
        yield m, kernel, user
        kernel.close()
        user.close()


@pytest.fixture
def socket_path(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return str(tmp_path / "host.sock")


# -- versions and errors


def test_version_and_library() -> None:
    assert a.version()[:2] == a.API_VERSION
    assert a.version_string() == "%d.%d.%d" % a.version()
    assert os.path.exists(a.library_path)


def test_error_codes_map_to_exceptions() -> None:
    assert a.strerror(-2) == "timed out"
    assert issubclass(a.TimedOut, TimeoutError) and issubclass(a.WouldBlock, BlockingIOError)
    assert issubclass(a.Disconnected, ConnectionError) and issubclass(a.PayloadTooLarge, ValueError)
    with a.Manager(max_channels=1) as m:
        with pytest.raises(a.NotFound) as info:
            m.destroy_channel(0)
        assert info.value.code == -8 and "0" in info.value.detail
        m.create_channel(0)
        with pytest.raises(a.Exists):
            m.create_channel(0)
        with pytest.raises(a.TooManyChannels):
            m.create_channel()
        with pytest.raises(a.InvalidArgument):
            m.create_channel(5)
    with pytest.raises(a.InvalidArgument):
        a.Manager(max_channels=100000)


# -- in-process send / receive


def test_send_receive_lanes_and_metadata(pair) -> None:  # type: ignore[no-untyped-def]
    _, k, u = pair
    k.send(a.MessageType.SYSCALL_EVENT, b"low", a.Priority.LOW)
    k.send(a.MessageType.CONTROL, bytearray(b"critical"), a.Priority.CRITICAL)
    first = u.receive(timeout=1)
    assert first.priority == a.Priority.CRITICAL and bytes(first.data) == b"critical"
    assert first.data.readonly and first.sequence == 2 and first.correlation is None
    second = u.receive(timeout=1)
    assert second.type == a.MessageType.SYSCALL_EVENT and second.tobytes() == b"low"
    assert u.try_receive() is None
    with pytest.raises(a.WouldBlock):
        u.receive(timeout=0)
    with pytest.raises(a.TimedOut):
        u.receive(timeout=0.005)
    with pytest.raises(a.PayloadTooLarge):
        k.send(a.MessageType.MEMORY_EVENT, bytes(16 << 20))
    with pytest.raises(a.InvalidArgument):
        k.send(0, b"x")  # type: ignore[arg-type]


def test_arguments_out_of_range_are_refused_not_truncated(pair) -> None:  # type: ignore[no-untyped-def]
    """The hot calls pass type and priority as plain C ints: a value that does
    not fit a uint8_t must raise, not reach the library truncated."""
    _, k, u = pair
    for type_, priority in ((a.MessageType.CONTROL + 256, a.Priority.LOW), (a.MessageType.CONTROL, -1),
                            (-3, a.Priority.HIGH)):
        with pytest.raises(ValueError):
            k.send(type_, b"x", priority)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            k.try_send(type_, b"x", priority)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            k.request(type_, b"x", priority, timeout=0.01)  # type: ignore[arg-type]
    assert k.stats().messages_sent == 0
    k.send(a.MessageType.CONTROL, b"y")
    for limit in (0, -1):
        with pytest.raises(ValueError):
            u.receive_batch(limit)
        with pytest.raises(ValueError):
            u.receive_payloads(limit)
    assert [bytes(p) for p in u.receive_payloads(4, timeout=1)] == [b"y"]
    # Timeouts of every form reach the C call as int64 nanoseconds.
    for timeout in (0, 0.0, 0.001, 1e-9, None):
        if timeout is None:
            k.send(a.MessageType.CONTROL, b"z", timeout=timeout)
            assert bytes(u.receive(timeout=timeout).data) == b"z"
        else:
            with pytest.raises((a.WouldBlock, a.TimedOut)):
                u.receive(timeout=timeout)


def test_try_send_until_full_then_batch_drain(pair) -> None:  # type: ignore[no-untyped-def]
    _, k, u = pair
    sent = 0
    while k.try_send(a.MessageType.NETWORK_EVENT, bytes([sent & 0xFF]) * 64, flags=a.SendFlag.NO_WAKEUP):
        sent += 1
    assert sent > 100
    got: List[int] = []
    batch = u.receive_batch(limit=64, timeout=1)
    assert len(batch) == 64 and all(len(p) == 64 for p in batch)
    assert batch.types == [a.MessageType.NETWORK_EVENT] * 64 and batch.sequences[0] == 1
    # Held: the sender may reuse the space released so far, never these payloads.
    while k.try_send(a.MessageType.NETWORK_EVENT, b"\xee" * 64):
        sent += 1
    assert [p[0] for p in batch] == [i & 0xFF for i in range(64)]
    got += [p[63] for p in batch]
    while len(got) < sent:
        got += [p[0] for p in u.receive_batch(limit=256, timeout=1)]
    assert len(got) == sent
    u.release()
    stats = u.stats()
    assert stats.messages_received == sent and stats.bytes_received == 64 * sent
    assert k.stats().queue_full >= 1


def test_payload_views_are_the_shared_memory_not_copies(pair) -> None:  # type: ignore[no-untyped-def]
    """The bar's zero-copy check: a pooled payload's memoryview *is* the shared mapping."""
    _, k, u = pair
    payload = bytes(range(256)) * 12  # 3072 bytes: above the 1 KiB threshold, one pool buffer
    k.send(a.MessageType.MEMORY_EVENT, payload)
    msg = u.receive(timeout=1)
    assert msg.flags & a.MessageFlag.DMA and len(msg.segments) == 1
    address = buffer_address(msg.data)
    # The view's buffer is the C library's payload pointer, inside the channel mapping.
    assert address == u._msg.data
    assert u.memory_address <= address and address + len(msg.data) <= u.memory_address + len(u.memory)
    assert address - u.memory_address == buffer_address(u.memory[address - u.memory_address:]) - u.memory_address
    # Writing the mapping at that address changes what the view shows: aliasing, not a copy.
    writable = u._writable_memory()
    offset = address - u.memory_address
    writable[offset] = 0xAB
    assert msg.data[0] == 0xAB
    writable[offset] = payload[0]
    assert bytes(msg.data) == payload
    # The same holds for every payload of a batch (inline records too).
    for i in range(10):
        k.send(a.MessageType.SYSCALL_EVENT, bytes([i]) * 64)
    batch = u.receive_batch(limit=16, timeout=1)
    for view in batch:
        addr = buffer_address(view)
        assert u.memory_address <= addr < u.memory_address + len(u.memory)
        assert view.obj is u.memory.obj  # a slice of the one wrapped mapping
    u.release()


def test_scatter_gather_pool_message(pair) -> None:  # type: ignore[no-untyped-def]
    _, k, u = pair
    payload = os.urandom(10000)  # three 4 KiB pool buffers
    k.send(a.MessageType.MEMORY_EVENT, payload)
    msg = u.receive(timeout=1)
    assert msg.size == 10000 and len(msg.segments) == 3 and msg.tobytes() == payload
    k.send(a.MessageType.MEMORY_EVENT, payload)
    batch = u.receive_batch(limit=8, timeout=1)
    assert len(batch) == 1 and b"".join(bytes(s) for s in batch.segments(0)) == payload
    assert batch.message(0).size == 10000


def test_loan_zero_copy_send(pair) -> None:  # type: ignore[no-untyped-def]
    _, k, u = pair
    with k.loan(6000) as loan:
        assert len(loan.segments) == 2
        loan.write(b"a" * 4096 + b"b" * 1904)
        written_at = buffer_address(loan.segments[0])
        loan.commit(a.MessageType.MEMORY_EVENT, 6000)
    msg = u.receive(timeout=1)
    assert buffer_address(msg.segments[0]) == written_at  # the receiver reads where the sender wrote
    assert msg.tobytes() == b"a" * 4096 + b"b" * 1904
    with k.loan(100):
        with pytest.raises(a.Busy):
            k.loan(100)
    # cancelled on exit: a new loan works
    with k.loan(100) as again:
        again.cancel()


def test_seed_calls_on_the_manager() -> None:
    with a.Manager(max_channels=1) as m:
        cid = m.create_channel()
        u = m.open(cid)
        m.send_message(cid, a.MessageType.AI_REQUEST, b"req", a.Priority.HIGH)
        assert bytes(u.receive(timeout=1).data) == b"req"
        u.send(a.MessageType.AI_RESPONSE, b"resp")
        assert m.receive_message(cid) == (a.MessageType.AI_RESPONSE, b"resp")
        m.notify_user(cid)
        m.notify_kernel(cid)
        assert "channel 0" in m.stats_text()


def test_geometry() -> None:
    with a.Manager(max_channels=1) as m:
        cid = m.create_channel(geometry=a.Geometry(normal_ring_bytes=8192, pool_buffer_count=0))
        k = m.open(cid, a.Side.KERNEL)
        assert k.stats().pool_size == 0
        with pytest.raises(a.InvalidArgument):
            m.create_channel(geometry=a.Geometry(normal_ring_bytes=1000))


# -- userspace backend: request / response, iteration, shutdown


def _responder(ch: a.Channel, answered: List[int]) -> None:
    for msg in ch:  # ends when the channel is shut down
        if msg.type == a.MessageType.AI_REQUEST:
            ch.respond(msg, b"verdict:" + bytes(msg.data))
            answered.append(msg.sequence)


def test_request_response_over_the_host_socket(socket_path: str) -> None:
    with a.Manager(max_channels=4) as m, m.serve(socket_path) as host:
        engine = a.open_userspace(socket_path, channel=2, wait=a.WaitPreset.RESPONSIVE)
        sensor = a.open_userspace(socket_path, channel=2, side=a.Side.KERNEL, create=False,
                                  wait=a.WaitPreset.LOW_LATENCY)
        with pytest.raises(a.Busy):
            a.open_userspace(socket_path, channel=2)
        answered: List[int] = []
        t = threading.Thread(target=_responder, args=(engine, answered))
        t.start()
        for i in range(200):
            reply = sensor.request(a.MessageType.AI_REQUEST, b"q%d" % i, a.Priority.HIGH, timeout=5)
            assert reply.type == a.MessageType.AI_RESPONSE
            assert reply.correlation == sensor.last_sequence and reply.priority == a.Priority.HIGH
            assert bytes(reply.data) == b"verdict:q%d" % i
        assert "channel 2" in host.stats_text()
        engine.shutdown()
        t.join(timeout=5)
        assert not t.is_alive() and len(answered) == 200
        assert not engine.is_open
        with pytest.raises(a.Closed):
            engine.receive(timeout=0)
        engine.close()
        sensor.close()
    with pytest.raises(a.Unavailable) as info:
        a.open_userspace(socket_path, channel=2)
    assert socket_path in info.value.detail


def test_host_disconnect_ends_iteration(socket_path: str) -> None:
    m = a.Manager(max_channels=1)
    host = m.serve(socket_path)
    with a.open_userspace(socket_path, channel=0) as ch:
        host.stop()
        assert list(ch) == []  # Disconnected ends the iterator
    m.close()


def test_kernel_backend_absent() -> None:
    assert not a.kernel_available("/dev/archangel-does-not-exist")
    with pytest.raises(a.Unavailable):
        a.open_kernel("/dev/archangel-does-not-exist")
