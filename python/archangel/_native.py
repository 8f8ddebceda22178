"""Loading libarchangel and declaring its C functions (include/archangel.h) for ctypes."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path
from typing import List, Optional

__all__ = ["lib", "lean", "library_path", "Message", "MESSAGE_LAYOUT", "Segment", "Stats", "Geometry", "c_void_p_p",
           "timeout_arg"]

_NAMES = ("libarchangel.so", "libarchangel-c.so")


def _candidates() -> List[Path]:
    """Where to look for the library, in order (docs/bindings.md, "Finding the library")."""
    found: List[Path] = []
    env = os.environ.get("ARCHANGEL_LIB")
    if env:
        found.append(Path(env))
    here = Path(__file__).resolve().parent
    found += [here / name for name in _NAMES]
    build = os.environ.get("ARCHANGEL_BUILD_DIR")
    if build:
        found += [Path(build) / name for name in _NAMES]
    # The repository's build directory: walk up from the working directory and from this file.
    for start in (Path.cwd(), here):
        for directory in (start, *start.parents):
            if (directory / "Package.swift").exists():
                found += [directory / ".build" / "release" / name for name in _NAMES]
                found += [directory / ".build" / "debug" / name for name in _NAMES]
                break
    return found


def _load() -> "tuple[ctypes.CDLL, str]":
    tried: List[str] = []
    for path in _candidates():
        tried.append(str(path))
        if path.exists():
            return ctypes.CDLL(str(path)), str(path)
    system = ctypes.util.find_library("archangel")
    if system:
        return ctypes.CDLL(system), system
    raise ImportError(
        "libarchangel not found; build it with `swift build -c release --product archangel-c` "
        "or set ARCHANGEL_LIB to its path. Tried: " + ", ".join(tried)
    )


lib, library_path = _load()

c_void_p_p = ctypes.POINTER(ctypes.c_void_p)


class Segment(ctypes.Structure):
    """struct archangel_segment."""

    _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_size_t)]


class Message(ctypes.Structure):
    """archangel_message: a lent message (payload pointers into the channel memory)."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("size", ctypes.c_size_t),
        ("sequence", ctypes.c_uint64),
        ("timestamp", ctypes.c_uint64),
        ("correlation", ctypes.c_uint64),
        ("type", ctypes.c_uint8),
        ("priority", ctypes.c_uint8),
        ("flags", ctypes.c_uint16),
        ("segment_count", ctypes.c_uint32),
        ("segments", ctypes.POINTER(Segment)),
    ]


class Stats(ctypes.Structure):
    """struct archangel_stats."""

    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "messages_sent", "bytes_sent", "messages_received", "bytes_received", "rejected", "errors",
            "queue_full", "pool_transfers", "copy_fallbacks", "notifications_sent", "notifications_suppressed",
            "notifications_coalesced", "waits", "timed_waits", "ring_used", "ring_size", "pool_in_use",
            "pool_size",
        )
    ]


class Geometry(ctypes.Structure):
    """struct archangel_geometry (0: default)."""

    _fields_ = [
        (name, ctypes.c_uint32)
        for name in (
            "normal_ring_bytes", "express_ring_bytes", "pool_buffer_size", "pool_buffer_count",
            "pool_threshold", "max_segments",
        )
    ]


_P = ctypes.c_void_p
_I = ctypes.c_int
_U8 = ctypes.c_uint8
_U32 = ctypes.c_uint32
_U64 = ctypes.c_uint64
_I64 = ctypes.c_int64
_SZ = ctypes.c_size_t
_S = ctypes.c_char_p

_PROTOTYPES = {
    "archangel_version": (_U32, []),
    "archangel_version_string": (_S, []),
    "archangel_shared_abi_version": (_U32, []),
    "archangel_strerror": (_S, [_I]),
    "archangel_last_error": (_S, []),
    "archangel_manager_create": (_I, [_U32, _I, c_void_p_p]),
    "archangel_manager_destroy": (None, [_P]),
    "archangel_comm_channel_create": (_I, [_P, ctypes.POINTER(_U32)]),
    "archangel_comm_channel_create_with": (_I, [_P, ctypes.POINTER(_U32), ctypes.POINTER(Geometry)]),
    "archangel_comm_channel_destroy": (_I, [_P, _U32]),
    "archangel_comm_send_message": (_I, [_P, _U32, _U8, _U8, _P, _U32]),
    "archangel_comm_receive_message": (_I, [_P, _U32, ctypes.POINTER(_U8), _P, _U32]),
    "archangel_comm_notify_kernel": (_I, [_P, _U32]),
    "archangel_comm_notify_user": (_I, [_P, _U32]),
    "archangel_manager_stats_text": (_I, [_P, _P, _SZ]),
    "archangel_host_start": (_I, [_P, _S, _I, c_void_p_p]),
    "archangel_host_stop": (None, [_P]),
    "archangel_host_stats_text": (_I, [_S, _P, _SZ]),
    "archangel_open_in_process": (_I, [_P, _U32, _I, c_void_p_p]),
    "archangel_open_userspace": (_I, [_S, _U32, _I, _I, _I, c_void_p_p]),
    "archangel_open_kernel": (_I, [_S, _U32, _I, _I, c_void_p_p]),
    "archangel_kernel_available": (_I, [_S]),
    "archangel_channel_close": (None, [_P]),
    "archangel_channel_shutdown": (None, [_P]),
    "archangel_channel_is_open": (_I, [_P]),
    "archangel_channel_id": (_U32, [_P]),
    "archangel_channel_max_payload": (_SZ, [_P]),
    "archangel_channel_memory": (_I, [_P, c_void_p_p, ctypes.POINTER(_SZ)]),
    "archangel_try_send": (_I, [_P, _U8, _U8, _P, _SZ, _U32]),
    "archangel_send": (_I, [_P, _U8, _U8, _P, _SZ, _I64, _U32]),
    "archangel_last_sequence": (_U64, [_P]),
    "archangel_receive": (_I, [_P, ctypes.POINTER(Message), _I64]),
    "archangel_try_receive": (_I, [_P, ctypes.POINTER(Message)]),
    "archangel_receive_batch": (_I, [_P, ctypes.POINTER(Message), _SZ, _I64]),
    "archangel_receive_offsets": (_I, [_P, _P, _P, _P, _P, _P, _SZ, _I64]),
    "archangel_held_segments": (_I, [_P, _P, _P, _SZ]),
    "archangel_release": (_I, [_P]),
    "archangel_receive_copy": (_I, [_P, _P, _SZ, ctypes.POINTER(Message), _I64]),
    "archangel_respond": (_I, [_P, ctypes.POINTER(Message), _U8, _P, _SZ, _I64]),
    "archangel_request": (_I, [_P, _U8, _U8, _P, _SZ, ctypes.POINTER(Message), _I64, ctypes.POINTER(_U64)]),
    "archangel_loan": (_I, [_P, _SZ, _I64]),
    "archangel_loan_segment": (_P, [_P, _U32, ctypes.POINTER(_SZ)]),
    "archangel_loan_commit": (_I, [_P, _U8, _U8, _SZ, _U64, _I64]),
    "archangel_loan_cancel": (None, [_P]),
    "archangel_channel_stats": (_I, [_P, ctypes.POINTER(Stats)]),
}

for _name, (_restype, _argtypes) in _PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes


#: The hot calls again, without argtypes: ``lean.archangel_request`` and the rest.
#:
#: ctypes converts each argument through its argtypes entry (``from_param``),
#: about 25-40 ns an argument on these machines: 250-300 ns of an 8-argument
#: request, as much as the C call itself. Without argtypes an argument is
#: passed as it is given, so the callers (Channel's hot methods, only them)
#: keep to these rules, which make the call exactly the declared one:
#:
#: - pointers: a ``c_void_p`` (the handle), ``bytes`` (a ``const void *``),
#:   ``byref(...)``, a ctypes array, or None (NULL); never a bare int, which
#:   ctypes would pass as a 32-bit C int;
#: - 64-bit integers (``size_t``, ``int64_t``): a ``c_size_t``/``c_int64``
#:   object (``timeout_arg`` for timeouts);
#: - ``uint8_t``/``uint32_t``: a Python int already checked to fit (ctypes
#:   passes it as a C int).
#:
#: The return type is declared (int).
lean = ctypes.CDLL(library_path)
for _name in ("archangel_request", "archangel_send", "archangel_try_send", "archangel_receive",
              "archangel_receive_offsets", "archangel_respond"):
    getattr(lean, _name).restype = ctypes.c_int

#: archangel_message as ``struct`` unpacks it, in field order: data, size,
#: sequence, timestamp, correlation, type, priority, flags, segment_count,
#: segments. One unpack of the whole struct costs less than two ctypes field reads.
MESSAGE_LAYOUT = "=QQQQQBBHIQ"
assert ctypes.sizeof(Message) == 56, "archangel_message's layout changed: update MESSAGE_LAYOUT"

_TIMEOUTS: "dict[Optional[float], ctypes.c_int64]" = {}


def timeout_arg(timeout: Optional[float]) -> ctypes.c_int64:
    """``timeout`` seconds (None: forever) as the C API's ``int64_t`` nanoseconds (-1: forever),
    one shared read-only object per value (a program uses a handful of timeouts)."""
    arg = _TIMEOUTS.get(timeout)
    if arg is None:
        arg = ctypes.c_int64(-1 if timeout is None else max(0, int(timeout * 1e9)))
        if len(_TIMEOUTS) < 256:  # a program computing timeouts must not grow this without bound
            _TIMEOUTS[timeout] = arg
    return arg


def last_error() -> str:
    """The calling thread's last error text from the library."""
    text: Optional[bytes] = lib.archangel_last_error()
    return text.decode("utf-8", "replace") if text else ""
