"""Archangel for Python: the kernel <-> userspace message bridge over libarchangel (ctypes).

Quick start (docs/bindings.md has the rules in full)::

    import archangel

    with archangel.open_userspace("/tmp/archangel.sock", channel=0) as ch:
        for msg in ch:                          # blocking iterator, ends when the channel closes
            if msg.type == archangel.MessageType.AI_REQUEST:
                verdict = decide(msg.data)      # msg.data: a read-only memoryview of shared memory
                ch.respond(msg, bytes([verdict]))

Received payloads are lent in place: ``Message.data`` and the memoryviews of
a :class:`Batch` point straight into the channel's shared memory (no copy)
and stay valid until the next receive call on that channel or
:meth:`Channel.release`. Copy (``bytes(view)``) what you keep longer.
"""

from __future__ import annotations

import ctypes
import enum
import os
import struct
import time
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple, Union, overload

from . import _native
from ._native import lean, lib, timeout_arg
from .errors import (  # noqa: F401  (re-exported)
    ABIMismatch, ArchangelError, BufferTooSmall, Busy, Closed, Corrupted, Disconnected, Exists, InvalidArgument,
    NotFound, PayloadTooLarge, ProtocolError, Refused, SystemCallError, TimedOut, TooManyChannels, Unavailable,
    WouldBlock, check, error_for, strerror,
)

__all__ = [
    "FASTCALL",
    "version", "version_string", "API_VERSION", "library_path", "MessageType", "Priority", "WaitPreset", "Side",
    "SendFlag", "MessageFlag", "Geometry", "Manager", "Host", "Channel", "Message", "Batch", "Loan",
    "ChannelStats", "open_in_process", "open_userspace", "open_kernel", "kernel_available", "FOREVER",
    "ANY_CHANNEL", "ArchangelError", "WouldBlock", "TimedOut", "Closed", "Corrupted", "PayloadTooLarge",
    "BufferTooSmall", "InvalidArgument", "NotFound", "Exists", "TooManyChannels", "ABIMismatch", "Busy",
    "Disconnected", "Unavailable", "Refused", "ProtocolError", "SystemCallError", "strerror",
]

#: The C API version these bindings were written for (major, minor).
API_VERSION = (1, 0)
#: Where the loaded libarchangel lies.
library_path: str = _native.library_path
#: Timeout: wait as long as it takes.
FOREVER = None
#: Channel id: the lowest free one.
ANY_CHANNEL = 0xFFFFFFFF

_E_AGAIN = -1


def version() -> Tuple[int, int, int]:
    """The loaded library's API version as (major, minor, patch)."""
    v = lib.archangel_version()
    return (v >> 16, (v >> 8) & 0xFF, v & 0xFF)


def version_string() -> str:
    """The loaded library's API version as "MAJOR.MINOR.PATCH"."""
    return lib.archangel_version_string().decode()


_v = version()
if _v[0] != API_VERSION[0] or _v[1] < API_VERSION[1]:
    raise ImportError(f"libarchangel {version_string()} at {library_path} is not compatible with these bindings "
                      f"(API {API_VERSION[0]}.{API_VERSION[1]})")


class MessageType(enum.IntEnum):
    """ARCHANGEL_MSG_*: message types in the seed's order."""

    AI_REQUEST = 1
    AI_RESPONSE = 2
    SYSCALL_EVENT = 3
    NETWORK_EVENT = 4
    MEMORY_EVENT = 5
    CONTROL = 6
    STATS = 7


class Priority(enum.IntEnum):
    """ARCHANGEL_PRIORITY_*: HIGH and CRITICAL travel on the express lane, drained first."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3


class WaitPreset(enum.IntEnum):
    """ARCHANGEL_WAIT_PRESET_*: how blocking calls wait and wake (docs/efficiency.md)."""

    BALANCED = 0
    RESPONSIVE = 1
    EFFICIENT = 2
    LOW_LATENCY = 3
    SLEEP_AT_ONCE = 4


class Side(enum.IntEnum):
    """Which end of a channel: the AI engine's (USER) or the sensor's (KERNEL)."""

    USER = 0
    KERNEL = 1


class SendFlag(enum.IntFlag):
    """ARCHANGEL_SEND_*: URGENT wakes the receiver now; NO_WAKEUP says more follows."""

    NONE = 0
    URGENT = 1
    NO_WAKEUP = 2


class MessageFlag(enum.IntFlag):
    """ARCHANGEL_MSG_F_* of a received message."""

    NONE = 0
    DMA = 1
    CORRELATED = 4
    COPIED = 8


@dataclass(frozen=True)
class Geometry:
    """A channel's geometry; None takes the default (docs/abi.md)."""

    normal_ring_bytes: Optional[int] = None
    express_ring_bytes: Optional[int] = None
    pool_buffer_size: Optional[int] = None
    pool_buffer_count: Optional[int] = None  # 0: no pool
    pool_threshold: Optional[int] = None
    max_segments: Optional[int] = None

    def _c(self) -> _native.Geometry:
        g = _native.Geometry()
        for name in ("normal_ring_bytes", "express_ring_bytes", "pool_buffer_size", "pool_threshold",
                     "max_segments"):
            value = getattr(self, name)
            if value is not None:
                setattr(g, name, value)
        if self.pool_buffer_count is not None:
            g.pool_buffer_count = 0xFFFFFFFF if self.pool_buffer_count == 0 else self.pool_buffer_count
        return g


@dataclass(frozen=True)
class ChannelStats:
    """What one endpoint counted (struct archangel_stats)."""

    messages_sent: int
    bytes_sent: int
    messages_received: int
    bytes_received: int
    rejected: int
    errors: int
    queue_full: int
    pool_transfers: int
    copy_fallbacks: int
    notifications_sent: int
    notifications_suppressed: int
    notifications_coalesced: int
    waits: int
    timed_waits: int
    ring_used: int
    ring_size: int
    pool_in_use: int
    pool_size: int


Buffer = Union[bytes, bytearray, memoryview]


def _timeout_ns(timeout: Optional[float]) -> int:
    """Seconds (None: forever) as the C API's nanoseconds (-1: forever)."""
    if timeout is None:
        return -1
    return max(0, int(timeout * 1e9))


def _pointer(data: Buffer) -> Tuple[object, int]:
    """A pointer argument for `data` and its length, without a copy when possible."""
    if isinstance(data, bytes):
        return data, len(data)
    view = memoryview(data)
    if not view.contiguous:
        raise ValueError("payload buffer must be contiguous")
    n = view.nbytes
    if n == 0:
        return None, 0
    if view.readonly:
        return bytes(view), n  # ctypes cannot point into a read-only buffer
    return (ctypes.c_char * n).from_buffer(view.cast("B")), n


def _bytes_pointer(data: Buffer) -> Tuple[object, int]:
    """`_pointer` with the common case (``bytes``) first, for the hot methods."""
    if data.__class__ is bytes:
        return data, len(data)  # type: ignore[arg-type]
    return _pointer(data)


def _bad_byte(type: int, priority: int) -> ValueError:
    return ValueError(f"message type {type!r} and priority {priority!r} must be 0...255 "
                      "(MessageType and Priority values)")


_unpack_message = struct.Struct(_native.MESSAGE_LAYOUT).unpack_from

_lean_request = lean.archangel_request
_lean_send = lean.archangel_send
_lean_try_send = lean.archangel_try_send
_lean_receive = lean.archangel_receive
_lean_receive_offsets = lean.archangel_receive_offsets
_lean_respond = lean.archangel_respond
_TIMEOUT_ZERO = timeout_arg(0)
_TIMEOUT_CACHE = _native._TIMEOUTS
_new_message = object.__new__

# The optional cffi accelerator (archangel/_fastcall_build.py): the same
# library functions, called for about half of ctypes' cost.
# ARCHANGEL_PY_FASTCALL=0 keeps to ctypes (the tests run both paths).
FASTCALL = False
"""Whether the hot calls (request, send, try_send, receive) go through the cffi accelerator."""
_fc = None
_from_buffer = None
if os.environ.get("ARCHANGEL_PY_FASTCALL", "1") != "0":
    try:
        from . import _fastcall  # type: ignore[attr-defined]
    except ImportError:  # not built (no cffi at install) or no cffi backend now
        pass
    else:
        def _address(fn: object) -> int:
            return ctypes.cast(fn, ctypes.c_void_p).value or 0

        _fc = _fastcall.lib
        _fc.fastcall_bind(_address(lean.archangel_request), _address(lean.archangel_send),
                          _address(lean.archangel_try_send), _address(lean.archangel_receive))
        _from_buffer = _fastcall.ffi.from_buffer
        _NULL = _fastcall.ffi.NULL
        FASTCALL = True

_TIMEOUT_NS: "dict[Optional[float], int]" = {}


def _timeout_int(timeout: Optional[float]) -> int:
    """`_timeout_ns`, remembered per value (the accelerated calls take a plain int)."""
    ns = _TIMEOUT_NS.get(timeout)
    if ns is None:
        ns = _timeout_ns(timeout)
        if len(_TIMEOUT_NS) < 256:
            _TIMEOUT_NS[timeout] = ns
    return ns


def _buffer_arg(data: Buffer) -> Tuple[object, int]:
    """A payload as the accelerator's ``const char *`` (no copy) and its length; ``bytes`` first."""
    if data.__class__ is bytes:
        return data, len(data)  # type: ignore[arg-type]
    view = memoryview(data)
    if not view.contiguous:
        raise ValueError("payload buffer must be contiguous")
    n = view.nbytes
    return (_from_buffer(view) if n else _NULL), n  # type: ignore[misc]


def _call(code: int) -> int:
    if code < 0:
        raise error_for(code)
    return code


# ---------------------------------------------------------------------------
# Manager and host


class Manager:
    """A communication manager in this process: plays the kernel side of up to
    ``max_channels`` channels (the seed's archangel_comm_manager).

    A context manager: leaving the ``with`` block destroys every channel.
    Its methods may be called from any thread.
    """

    def __init__(self, max_channels: int = 16, wait: WaitPreset = WaitPreset.BALANCED) -> None:
        handle = ctypes.c_void_p()
        _call(lib.archangel_manager_create(max_channels, int(wait), ctypes.byref(handle)))
        self._handle: Optional[int] = handle.value

    @property
    def handle(self) -> int:
        if self._handle is None:
            raise Closed(-3, "manager destroyed")
        return self._handle

    def create_channel(self, channel: Optional[int] = None, geometry: Optional[Geometry] = None) -> int:
        """Creates a channel (``channel``, or the lowest free id) and returns its id."""
        cid = ctypes.c_uint32(ANY_CHANNEL if channel is None else channel)
        g = geometry._c() if geometry else None
        _call(lib.archangel_comm_channel_create_with(self.handle, ctypes.byref(cid),
                                                     ctypes.byref(g) if g is not None else None))
        return cid.value

    def destroy_channel(self, channel: int) -> None:
        """Destroys a channel: both ends close. Raises :class:`NotFound`."""
        _call(lib.archangel_comm_channel_destroy(self.handle, channel))

    def open(self, channel: int, side: Side = Side.USER) -> "Channel":
        """The in-process endpoint of ``side`` of ``channel`` (USER: the engine's)."""
        return open_in_process(self, channel, side)

    def send_message(self, channel: int, type: MessageType, data: Buffer,
                     priority: Priority = Priority.NORMAL) -> None:
        """The seed's send_message: kernel -> user, waiting for room."""
        ptr, n = _pointer(data)
        _call(lib.archangel_comm_send_message(self.handle, channel, int(type), int(priority), ptr, n))

    def receive_message(self, channel: int, max_size: int = 65536) -> Tuple[MessageType, bytes]:
        """The seed's receive_message: the next user -> kernel message, copied out."""
        buf = ctypes.create_string_buffer(max_size)
        t = ctypes.c_uint8()
        n = _call(lib.archangel_comm_receive_message(self.handle, channel, ctypes.byref(t), buf, max_size))
        return MessageType(t.value), buf.raw[:n]

    def notify_kernel(self, channel: int) -> None:
        """Wakes the kernel side's receiver of ``channel``."""
        _call(lib.archangel_comm_notify_kernel(self.handle, channel))

    def notify_user(self, channel: int) -> None:
        """Wakes the user side's receiver of ``channel``."""
        _call(lib.archangel_comm_notify_user(self.handle, channel))

    def stats_text(self) -> str:
        """Statistics of every channel, in the /proc/archangel/comm text format."""
        n = lib.archangel_manager_stats_text(self.handle, None, 0)
        buf = ctypes.create_string_buffer(n + 1)
        lib.archangel_manager_stats_text(self.handle, buf, n + 1)
        return buf.value.decode()

    def serve(self, socket_path: Optional[str] = None, allow_kernel_side: bool = True) -> "Host":
        """Serves this manager's channels to other processes at ``socket_path`` (a :class:`Host`)."""
        return Host(self, socket_path, allow_kernel_side)

    def close(self) -> None:
        """Destroys every channel and the manager (idempotent)."""
        if self._handle is not None:
            lib.archangel_manager_destroy(self._handle)
            self._handle = None

    def __enter__(self) -> "Manager":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class Host:
    """A userspace host serving a :class:`Manager` over a Unix socket; a context manager."""

    def __init__(self, manager: Manager, socket_path: Optional[str] = None, allow_kernel_side: bool = True) -> None:
        handle = ctypes.c_void_p()
        _call(lib.archangel_host_start(manager.handle, socket_path.encode() if socket_path else None,
                                       1 if allow_kernel_side else 0, ctypes.byref(handle)))
        self._handle: Optional[int] = handle.value
        self.manager = manager
        self.socket_path = socket_path

    def stop(self) -> None:
        """Hangs up every client and removes the socket (idempotent)."""
        if self._handle is not None:
            lib.archangel_host_stop(self._handle)
            self._handle = None

    def stats_text(self) -> str:
        """The host's statistics text, asked over its socket."""
        return host_stats_text(self.socket_path)

    def __enter__(self) -> "Host":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:
            pass


def host_stats_text(socket_path: Optional[str] = None) -> str:
    """The statistics text of the host at ``socket_path`` (None: the default path)."""
    path = socket_path.encode() if socket_path else None
    n = _call(lib.archangel_host_stats_text(path, None, 0))
    buf = ctypes.create_string_buffer(n + 1)
    _call(lib.archangel_host_stats_text(path, buf, n + 1))
    return buf.value.decode()


# ---------------------------------------------------------------------------
# Channels


class _Handle:
    """Owns an archangel_channel*: closed when the last reference goes, so that a
    memoryview still alive keeps the mapping it points into."""

    __slots__ = ("value", "__weakref__")

    def __init__(self, value: int) -> None:
        self.value = value

    def __del__(self) -> None:
        if self.value:
            lib.archangel_channel_close(self.value)
            self.value = 0


def _raw_field(index: int, doc: str) -> property:
    """A read-only `Message` attribute: field `index` of its `_raw` tuple (_native.MESSAGE_LAYOUT)."""
    return property(lambda self: self._raw[index], doc=doc)


class Message:
    """A received message, lent in place.

    ``data`` is a read-only memoryview of the payload in the channel's shared
    memory (its first segment; the whole payload unless ``segments`` has
    several). Valid until the next receive call on the channel or
    :meth:`Channel.release`; ``bytes(msg.data)`` copies it out.

    The fields are read from the library's description of the message when
    first used: a receive or request that only looks at ``type`` does not pay
    for the payload's memoryview (about 150 ns of a 1 µs round trip).
    """

    # _raw: the archangel_message fields (_native.MESSAGE_LAYOUT order); _channel:
    # whose memory `data` is a slice of (None once _view is set); _view,
    # _segments: the payload views, made on first use.
    __slots__ = ("_raw", "_channel", "_view", "_segments")

    def __init__(self, type: int, priority: int, flags: int, sequence: int, timestamp: int,
                 correlation: Optional[int], size: int, data: memoryview, segments: Tuple[memoryview, ...]) -> None:
        flags = int(flags) | 4 if correlation is not None else int(flags) & ~4  # MessageFlag.CORRELATED
        self._raw = (0, size, sequence, timestamp, correlation or 0, type, priority, flags, len(segments), 0)
        self._channel = None
        self._view: Optional[memoryview] = data
        self._segments: Optional[Tuple[memoryview, ...]] = segments

    type = _raw_field(5, "The message type (a ``MessageType`` value).")
    priority = _raw_field(6, "The priority (a ``Priority`` value).")
    flags = _raw_field(7, "``MessageFlag`` bits.")
    sequence = _raw_field(2, "The sender's sequence number.")
    timestamp = _raw_field(3, "When it was sent (CLOCK_MONOTONIC ns; see :func:`monotonic_ns`).")
    size = _raw_field(1, "Payload bytes in all segments.")

    @property
    def correlation(self) -> Optional[int]:
        """The sequence of the request this answers, or None."""
        raw = self._raw
        return raw[4] if raw[7] & 4 else None

    @property
    def data(self) -> memoryview:
        """The payload (its first segment), a read-only view of the shared memory."""
        view = self._view
        if view is None:
            channel = self._channel
            at = self._raw[0]
            offset = at - channel._base if at else 0
            view = self._view = channel._mem[offset:offset + self._raw[1]]
        return view

    @property
    def segments(self) -> Tuple[memoryview, ...]:
        """Every piece of the payload, in order (several only for a large pool message)."""
        segments = self._segments
        if segments is None:
            segments = self._segments = (self.data,)
        return segments

    def tobytes(self) -> bytes:
        """The whole payload, copied (all segments, in order)."""
        if len(self.segments) <= 1:
            return bytes(self.data)
        return b"".join(bytes(s) for s in self.segments)

    def __repr__(self) -> str:
        return (f"Message(type={self.type}, priority={self.priority}, sequence={self.sequence}, "
                f"size={self.size}, correlation={self.correlation})")


class Batch(Sequence[memoryview]):
    """Messages of one :meth:`Channel.receive_batch` call: a sequence of payload
    memoryviews (zero copy, valid until the next receive or release), with
    the per-message metadata in parallel lists (``types``, ``priorities``,
    ``flags``, ``sequences``, ``correlations``), read on first use.

    A multi-segment pool message's entry is its first segment; ``segments(i)``
    lists all of them. Like the views, the metadata is valid only until the
    channel's next receive call.
    """

    __slots__ = ("payloads", "_n", "_channel", "_info_list")

    def __init__(self, payloads: List[memoryview], n: int, channel: "Channel") -> None:
        self.payloads = payloads
        self._n = n
        self._channel = channel
        self._info_list: Optional[List[int]] = None

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> memoryview: ...
    @overload
    def __getitem__(self, i: slice) -> List[memoryview]: ...
    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        return self.payloads[i]

    def __iter__(self) -> Iterator[memoryview]:
        return iter(self.payloads)

    def _info(self) -> List[int]:
        if self._info_list is None:
            self._info_list = self._channel._info_mv[:self._n].tolist()
        return self._info_list

    @property
    def types(self) -> List[int]:
        """Message types (``MessageType`` values), in order."""
        return [x & 0xFF for x in self._info()]

    @property
    def priorities(self) -> List[int]:
        """Priorities (``Priority`` values), in order."""
        return [(x >> 8) & 0xFF for x in self._info()]

    @property
    def flags(self) -> List[int]:
        """``MessageFlag`` bits, in order."""
        return [x >> 16 for x in self._info()]

    @property
    def sequences(self) -> List[int]:
        """The senders' sequence numbers, in order."""
        return self._channel._seqs_mv[:self._n].tolist()

    @property
    def correlations(self) -> List[Optional[int]]:
        """For each message, the request sequence it answers, or None."""
        corr = self._channel._corrs_mv[:self._n].tolist()
        return [c if f & MessageFlag.CORRELATED else None for c, f in zip(corr, self.flags)]

    def segments(self, i: int) -> Tuple[memoryview, ...]:
        """All pieces of message ``i`` (several only for a large pool message, the batch's last)."""
        if i == self._n - 1 and self._info()[i] >> 16 & MessageFlag.DMA:
            return self._channel._held_segments()
        return (self.payloads[i],)

    def message(self, i: int) -> Message:
        """Entry ``i`` as a :class:`Message`."""
        info = self._info()[i]
        flags = info >> 16
        segments = self.segments(i)
        return Message(info & 0xFF, (info >> 8) & 0xFF, flags, self.sequences[i], 0, self.correlations[i],
                       sum(len(s) for s in segments), self.payloads[i], segments)


class Loan:
    """Pool buffers lent for one outgoing message (zero copy): write ``segments``
    (writable memoryviews of shared memory, filled in order), then
    :meth:`commit`. A context manager: leaving it without a commit cancels.
    Sending thread only.
    """

    def __init__(self, channel: "Channel", capacity: int, timeout: Optional[float]) -> None:
        self._channel = channel
        count = _call(lib.archangel_loan(channel._h, capacity, _timeout_ns(timeout)))
        self.capacity = capacity
        segs: List[memoryview] = []
        size = ctypes.c_size_t()
        wmem = channel._writable_memory()
        for i in range(count):
            address = lib.archangel_loan_segment(channel._h, i, ctypes.byref(size))
            offset = address - channel._base
            segs.append(wmem[offset:offset + size.value])
        self.segments: List[memoryview] = segs
        self._open = True

    def write(self, data: Buffer, offset: int = 0) -> None:
        """Copies ``data`` into the loan at ``offset``, across segments."""
        view = memoryview(data).cast("B")
        pos = offset
        done = 0
        for seg in self.segments:
            if pos >= len(seg):
                pos -= len(seg)
                continue
            n = min(len(seg) - pos, len(view) - done)
            seg[pos:pos + n] = view[done:done + n]
            done += n
            pos = 0
            if done == len(view):
                return
        if done < len(view):
            raise ValueError("write past the loan's capacity")

    def commit(self, type: MessageType, length: int, priority: Priority = Priority.NORMAL,
               correlation: Optional[int] = None, timeout: Optional[float] = None) -> None:
        """Sends the first ``length`` bytes; the loan is closed whatever happens."""
        self._open = False
        self.segments = []
        _call(lib.archangel_loan_commit(self._channel._h, int(type), int(priority), length, correlation or 0,
                                        _timeout_ns(timeout)))

    def cancel(self) -> None:
        """Gives the buffers back unsent (idempotent)."""
        if self._open:
            self._open = False
            self.segments = []
            lib.archangel_loan_cancel(self._channel._h)

    def __enter__(self) -> "Loan":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class Channel:
    """One endpoint of a channel, on any backend.

    Threading: one thread at a time may send (send, try_send, respond, loan,
    request) and one thread at a time may receive (receive..., release,
    iteration, request). Blocking calls release the GIL.

    A context manager and an iterator (``for msg in channel``: blocking
    receives until the channel closes or the host disconnects).
    """

    def __init__(self, handle: int, attached: bool) -> None:
        self._owner = _Handle(handle)
        self._h: int = handle
        self._attached = attached
        base = ctypes.c_void_p()
        size = ctypes.c_size_t()
        _call(lib.archangel_channel_memory(handle, ctypes.byref(base), ctypes.byref(size)))
        self._base: int = base.value or 0
        self._size: int = size.value
        # The mapping, wrapped once: every payload view is a slice of it. The
        # ctypes array keeps the handle (and so the mapping) alive while any
        # view exists.
        array = (ctypes.c_char * self._size).from_address(self._base)
        array._owner = self._owner  # type: ignore[attr-defined]
        self._array = array
        self._mem: memoryview = memoryview(array).cast("B").toreadonly()
        self._msg = _native.Message()
        self._msg_ref = ctypes.byref(self._msg)
        self._batch_capacity = 0
        # Arguments of the lean calls (_native.lean's rules): the handle as a
        # c_void_p, and one size_t per thread role (sending, receiving).
        self._hv = ctypes.c_void_p(handle)
        self._msg_addr = ctypes.addressof(self._msg)
        self._tx_size = ctypes.c_size_t()
        self._rx_limit = ctypes.c_size_t()
        self._closed = False

    # -- properties

    @property
    def id(self) -> int:
        """The channel id."""
        return lib.archangel_channel_id(self._h)

    @property
    def is_open(self) -> bool:
        """Whether the channel is still open."""
        return not self._closed and lib.archangel_channel_is_open(self._h) == 1

    @property
    def max_payload(self) -> int:
        """The largest payload one message may carry."""
        return lib.archangel_channel_max_payload(self._h)

    @property
    def memory(self) -> memoryview:
        """A read-only memoryview of the whole channel memory (every payload view is a slice of it)."""
        return self._mem

    @property
    def memory_address(self) -> int:
        """The address of the channel memory in this process."""
        return self._base

    @property
    def last_sequence(self) -> int:
        """The sequence number of the last message this endpoint sent."""
        return lib.archangel_last_sequence(self._h)

    def _writable_memory(self) -> memoryview:
        return memoryview(self._array).cast("B")

    # -- sending

    def send(self, type: MessageType, data: Buffer, priority: Priority = Priority.NORMAL,
             timeout: Optional[float] = None, flags: SendFlag = SendFlag.NONE) -> None:
        """Sends a message, waiting up to ``timeout`` seconds (None: forever) for room.

        The payload is copied into the ring (or a pool buffer) before this returns.
        Raises :class:`TimedOut`, :class:`PayloadTooLarge`, :class:`Closed`, ...
        """
        ptr, n = _bytes_pointer(data)
        if (type | priority) >> 8:
            raise _bad_byte(type, priority)
        size = self._tx_size
        size.value = n
        code = _lean_send(self._hv, type, priority, ptr, size, timeout_arg(timeout), int(flags))
        if code:
            raise error_for(code)

    def try_send(self, type: MessageType, data: Buffer, priority: Priority = Priority.NORMAL,
                 flags: SendFlag = SendFlag.NONE) -> bool:
        """Sends without blocking; False when the ring is full or the pool empty."""
        ptr, n = _bytes_pointer(data)
        if (type | priority) >> 8:
            raise _bad_byte(type, priority)
        size = self._tx_size
        size.value = n
        code = _lean_try_send(self._hv, type, priority, ptr, size, int(flags))
        if code == 0:
            return True
        if code == _E_AGAIN:
            return False
        raise error_for(code)

    def respond(self, request: Message, data: Buffer, type: MessageType = MessageType.AI_RESPONSE,
                timeout: Optional[float] = None) -> None:
        """Answers ``request``: correlated with its sequence, at its priority, sent urgent."""
        m = _native.Message()
        m.sequence = request.sequence
        m.priority = request.priority
        ptr, n = _bytes_pointer(data)
        if type >> 8:
            raise _bad_byte(type, request.priority)
        size = self._tx_size
        size.value = n
        code = _lean_respond(self._hv, ctypes.byref(m), type, ptr, size, timeout_arg(timeout))
        if code:
            raise error_for(code)

    def loan(self, capacity: int, timeout: Optional[float] = None) -> Loan:
        """Borrows pool buffers for a message of up to ``capacity`` bytes (see :class:`Loan`)."""
        return Loan(self, capacity, timeout)

    # -- receiving

    def _message(self) -> Message:
        """The message the last receive described in ``self._msg``."""
        raw = _unpack_message(self._msg)
        count = raw[8]
        if count > 1:
            base = self._base
            mem = self._mem
            segs = self._msg.segments
            segments = tuple(mem[segs[i].data - base:segs[i].data - base + segs[i].size] for i in range(count))
            message = _new_message(Message)
            message._raw = raw
            message._channel = None
            message._view = segments[0]
            message._segments = segments
            return message
        message = _new_message(Message)
        message._raw = raw
        message._channel = self
        message._view = None
        message._segments = None
        return message

    def receive(self, timeout: Optional[float] = None) -> Message:
        """Receives the next message, waiting up to ``timeout`` seconds (None: forever).

        Releases the previous receive's messages first. Raises
        :class:`TimedOut` (:class:`WouldBlock` for timeout 0), :class:`Closed`, ...
        """
        code = _lean_receive(self._hv, self._msg_ref, timeout_arg(timeout))
        if code:
            raise error_for(code)
        return self._message()

    def try_receive(self) -> Optional[Message]:
        """The next message if one is queued, else None. Never blocks."""
        code = _lean_receive(self._hv, self._msg_ref, _TIMEOUT_ZERO)
        if code == 0:
            return self._message()
        if code == _E_AGAIN:
            return None
        raise error_for(code)

    def _ensure_batch(self, limit: int) -> None:
        if self._batch_capacity >= limit:
            if limit <= 0:  # the C call would be told a huge size_t: refuse it here
                raise ValueError(f"batch limit {limit!r} must be at least 1")
            return
        self._offsets = (ctypes.c_uint64 * limit)()
        self._sizes = (ctypes.c_uint32 * limit)()
        self._info = (ctypes.c_uint32 * limit)()
        self._seqs = (ctypes.c_uint64 * limit)()
        self._corrs = (ctypes.c_uint64 * limit)()
        self._offsets_mv = memoryview(self._offsets).cast("B").cast("Q")
        self._sizes_mv = memoryview(self._sizes).cast("B").cast("I")
        self._info_mv = memoryview(self._info).cast("B").cast("I")
        self._seqs_mv = memoryview(self._seqs).cast("B").cast("Q")
        self._corrs_mv = memoryview(self._corrs).cast("B").cast("Q")
        self._batch_args = (self._offsets, self._sizes, self._info, self._seqs, self._corrs)
        self._batch_capacity = limit

    def receive_batch(self, limit: int = 64, timeout: Optional[float] = None) -> Batch:
        """Receives up to ``limit`` messages in one call (waiting up to ``timeout`` for
        the first), lent in place: a :class:`Batch` of memoryviews.

        One C call per batch amortizes Python's per-call cost. Valid until the
        next receive or :meth:`release`. A pool message ends a batch.
        """
        self._ensure_batch(limit)
        o, s, i, q, c = self._batch_args
        cap = self._rx_limit
        cap.value = limit
        n = _lean_receive_offsets(self._hv, o, s, i, q, c, cap, timeout_arg(timeout))
        if n < 0:
            raise error_for(n)
        mem = self._mem
        payloads = [mem[off:off + size] for off, size in zip(self._offsets_mv[:n].tolist(), self._sizes_mv[:n].tolist())]
        return Batch(payloads, n, self)

    def receive_payloads(self, limit: int = 64, timeout: Optional[float] = None) -> List[memoryview]:
        """The fastest receive: up to ``limit`` payload memoryviews only (no metadata)."""
        self._ensure_batch(limit)
        o, s, _, _, _ = self._batch_args
        cap = self._rx_limit
        cap.value = limit
        n = _lean_receive_offsets(self._hv, o, s, None, None, None, cap, timeout_arg(timeout))
        if n < 0:
            raise error_for(n)
        mem = self._mem
        return [mem[off:off + size] for off, size in zip(self._offsets_mv[:n].tolist(), self._sizes_mv[:n].tolist())]

    def _held_segments(self) -> Tuple[memoryview, ...]:
        offs = (ctypes.c_uint64 * 256)()
        sizes = (ctypes.c_uint32 * 256)()
        n = lib.archangel_held_segments(self._h, offs, sizes, 256)
        mem = self._mem
        return tuple(mem[offs[k]:offs[k] + sizes[k]] for k in range(n))

    def release(self) -> None:
        """Gives the held messages back to the sender; their memoryviews become stale."""
        _call(lib.archangel_release(self._h))

    def __iter__(self) -> Iterator[Message]:
        """Blocking receives until the channel closes or the host disconnects."""
        while True:
            try:
                yield self.receive()
            except (Closed, Disconnected):
                return

    # -- request / response

    def request(self, type: MessageType, data: Buffer, priority: Priority = Priority.NORMAL,
                timeout: Optional[float] = None) -> Message:
        """Sends a request and waits for the message that answers it (lent, like receive).

        Uses both directions: no other thread may send or receive on this channel meanwhile.
        """
        # Inlined (each Python call or lookup saved is 30-60 ns of a ~1 µs
        # round trip): _bytes_pointer, timeout_arg's cache, _message.
        if data.__class__ is bytes:
            ptr: object = data
            n = len(data)  # type: ignore[arg-type]
        else:
            ptr, n = _pointer(data)
        if (type | priority) >> 8:
            raise _bad_byte(type, priority)
        size = self._tx_size
        size.value = n
        code = _lean_request(self._hv, type, priority, ptr, size, self._msg_ref,
                             _TIMEOUT_CACHE.get(timeout) or timeout_arg(timeout), None)
        if code:
            raise error_for(code)
        raw = _unpack_message(self._msg)
        if raw[8] > 1:
            return self._message()
        message = _new_message(Message)
        message._raw = raw
        message._channel = self
        message._view = None
        message._segments = None
        return message

    # -- the same calls through the cffi accelerator (installed as the methods above when FASTCALL)

    def _request_fast(self, type: MessageType, data: Buffer, priority: Priority = Priority.NORMAL,
                      timeout: Optional[float] = None) -> Message:
        # Inlined like `request` (the round trip's Python cost): _buffer_arg, _timeout_int, _message.
        if data.__class__ is bytes:
            ptr: object = data
            n = len(data)  # type: ignore[arg-type]
        else:
            ptr, n = _buffer_arg(data)
        if (type | priority) >> 8:
            raise _bad_byte(type, priority)
        ns = _TIMEOUT_NS.get(timeout)
        code = _fc.fastcall_request(self._h, type, priority, ptr, n, self._msg_addr,  # type: ignore[union-attr]
                                    _timeout_int(timeout) if ns is None else ns)
        if code:
            raise error_for(code)
        raw = _unpack_message(self._msg)
        if raw[8] > 1:
            return self._message()
        message = _new_message(Message)
        message._raw = raw
        message._channel = self
        message._view = None
        message._segments = None
        return message

    def _send_fast(self, type: MessageType, data: Buffer, priority: Priority = Priority.NORMAL,
                   timeout: Optional[float] = None, flags: SendFlag = SendFlag.NONE) -> None:
        ptr, n = _buffer_arg(data)
        if (type | priority) >> 8:
            raise _bad_byte(type, priority)
        code = _fc.fastcall_send(self._h, type, priority, ptr, n, _timeout_int(timeout),  # type: ignore[union-attr]
                                 int(flags))
        if code:
            raise error_for(code)

    def _try_send_fast(self, type: MessageType, data: Buffer, priority: Priority = Priority.NORMAL,
                       flags: SendFlag = SendFlag.NONE) -> bool:
        ptr, n = _buffer_arg(data)
        if (type | priority) >> 8:
            raise _bad_byte(type, priority)
        code = _fc.fastcall_try_send(self._h, type, priority, ptr, n, int(flags))  # type: ignore[union-attr]
        if code == 0:
            return True
        if code == _E_AGAIN:
            return False
        raise error_for(code)

    def _receive_fast(self, timeout: Optional[float] = None) -> Message:
        code = _fc.fastcall_receive(self._h, self._msg_addr, _timeout_int(timeout))  # type: ignore[union-attr]
        if code:
            raise error_for(code)
        return self._message()

    # -- statistics

    def stats(self) -> ChannelStats:
        """What this endpoint counted (any thread)."""
        s = _native.Stats()
        _call(lib.archangel_channel_stats(self._h, ctypes.byref(s)))
        return ChannelStats(**{name: getattr(s, name) for name, _ in _native.Stats._fields_})

    # -- lifetime

    def shutdown(self) -> None:
        """Closes the channel and wakes every blocked call (any thread); they raise :class:`Closed`."""
        lib.archangel_channel_shutdown(self._h)

    def close(self) -> None:
        """Closes this endpoint: an attached side (userspace, kernel) detaches; an
        in-process endpoint is just let go. Idempotent. Payload views stay
        readable (the mapping goes with the last of them) but are stale.
        """
        if self._closed:
            return
        self._closed = True
        try:
            lib.archangel_release(self._h)
        finally:
            if self._attached:
                lib.archangel_channel_shutdown(self._h)

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<archangel.Channel id={self.id} open={self.is_open}>"


if FASTCALL:
    # The documented methods keep their docstrings; only their bodies change.
    for _name in ("request", "send", "try_send", "receive"):
        _fast = getattr(Channel, "_%s_fast" % _name)
        _fast.__doc__ = getattr(Channel, _name).__doc__
        _fast.__name__ = _name
        setattr(Channel, _name, _fast)


def open_in_process(manager: Manager, channel: int, side: Side = Side.USER) -> Channel:
    """The in-process backend: ``manager``'s endpoint of ``side`` of ``channel``."""
    handle = ctypes.c_void_p()
    _call(lib.archangel_open_in_process(manager.handle, channel, int(side), ctypes.byref(handle)))
    return Channel(handle.value or 0, attached=False)


def open_userspace(socket_path: Optional[str] = None, channel: int = ANY_CHANNEL, side: Side = Side.USER,
                   create: bool = True, wait: WaitPreset = WaitPreset.BALANCED) -> Channel:
    """The userspace backend: attaches ``side`` of ``channel`` of the host at ``socket_path``.

    Raises :class:`Unavailable` (no host), :class:`Busy` (side attached elsewhere), ...
    """
    handle = ctypes.c_void_p()
    _call(lib.archangel_open_userspace(socket_path.encode() if socket_path else None, channel, int(side),
                                       1 if create else 0, int(wait), ctypes.byref(handle)))
    return Channel(handle.value or 0, attached=True)


def open_kernel(device_path: Optional[str] = None, channel: int = ANY_CHANNEL, create: bool = True,
                wait: WaitPreset = WaitPreset.BALANCED) -> Channel:
    """The kernel backend: attaches the user side of ``channel`` of /dev/archangel.

    Raises :class:`Unavailable` when the module is not loaded or access is denied.
    """
    handle = ctypes.c_void_p()
    _call(lib.archangel_open_kernel(device_path.encode() if device_path else None, channel, 1 if create else 0,
                                    int(wait), ctypes.byref(handle)))
    return Channel(handle.value or 0, attached=True)


def kernel_available(device_path: Optional[str] = None) -> bool:
    """Whether the kernel device can be opened here."""
    return lib.archangel_kernel_available(device_path.encode() if device_path else None) == 1


def open(channel: int = ANY_CHANNEL, backend: str = "auto", socket_path: Optional[str] = None,
         wait: WaitPreset = WaitPreset.BALANCED) -> Channel:
    """Opens the user side of ``channel``: ``backend`` "kernel", "userspace", or
    "auto" (the kernel device when it can be opened, else the userspace host)."""
    if backend == "kernel" or (backend == "auto" and kernel_available()):
        return open_kernel(channel=channel, wait=wait)
    if backend not in ("auto", "userspace"):
        raise ValueError(f"backend {backend!r}: use 'auto', 'kernel' or 'userspace'")
    return open_userspace(socket_path, channel=channel, wait=wait)


def monotonic_ns() -> int:
    """CLOCK_MONOTONIC nanoseconds, the clock of message timestamps."""
    return time.monotonic_ns()
