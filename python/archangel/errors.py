"""Exceptions: one class per ARCHANGEL_E_* code of include/archangel.h.

Every exception is an :class:`ArchangelError` carrying ``code`` (the C code)
and ``detail`` (the library's ``archangel_last_error()`` text); each also
derives from the built-in exception a Python programmer would catch for it
(``TimeoutError``, ``BlockingIOError``, ``ConnectionError``, ``ValueError``,
...).
"""

from __future__ import annotations

from typing import Dict, Type

from . import _native

__all__ = [
    "ArchangelError", "WouldBlock", "TimedOut", "Closed", "Corrupted", "PayloadTooLarge", "BufferTooSmall",
    "InvalidArgument", "NotFound", "Exists", "TooManyChannels", "ABIMismatch", "Busy", "Disconnected",
    "Unavailable", "Refused", "ProtocolError", "SystemCallError", "error_for", "check", "strerror",
]


class ArchangelError(Exception):
    """A libarchangel call failed; ``code`` is the ARCHANGEL_E_* value, ``detail`` the library's text."""

    code: int = 0

    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        self.detail = detail or strerror(code)
        super().__init__(self.detail)


class WouldBlock(ArchangelError, BlockingIOError):
    """ARCHANGEL_E_AGAIN: the ring is full, the pool empty, or nothing is queued."""


class TimedOut(ArchangelError, TimeoutError):
    """ARCHANGEL_E_TIMEDOUT: a blocking call waited its whole timeout."""


class Closed(ArchangelError, ConnectionError):
    """ARCHANGEL_E_CLOSED: the channel was closed or destroyed."""


class Corrupted(ArchangelError):
    """ARCHANGEL_E_CORRUPTED: shared memory failed validation; the channel is dead."""


class PayloadTooLarge(ArchangelError, ValueError):
    """ARCHANGEL_E_TOO_LARGE: the payload can never fit this channel."""


class BufferTooSmall(ArchangelError, ValueError):
    """ARCHANGEL_E_BUFFER_TOO_SMALL: the buffer is too small; the message stays queued."""


class InvalidArgument(ArchangelError, ValueError):
    """ARCHANGEL_E_INVALID: a bad argument or configuration."""


class NotFound(ArchangelError, LookupError):
    """ARCHANGEL_E_NOT_FOUND: no channel with that id."""


class Exists(ArchangelError):
    """ARCHANGEL_E_EXISTS: a channel with that id exists already."""


class TooManyChannels(ArchangelError):
    """ARCHANGEL_E_TOO_MANY: every channel id is in use."""


class ABIMismatch(ArchangelError):
    """ARCHANGEL_E_ABI: the peer speaks another ABI version."""


class Busy(ArchangelError):
    """ARCHANGEL_E_BUSY: a loan is open, the side is attached elsewhere, or the receiver is in use."""


class Disconnected(ArchangelError, ConnectionError):
    """ARCHANGEL_E_DISCONNECTED: the host went away."""


class Unavailable(ArchangelError, ConnectionError):
    """ARCHANGEL_E_UNAVAILABLE: no host at the socket, or no kernel device."""


class Refused(ArchangelError):
    """ARCHANGEL_E_REFUSED: the host refused the request."""


class ProtocolError(ArchangelError):
    """ARCHANGEL_E_PROTOCOL: the attach protocol was broken."""


class SystemCallError(ArchangelError, OSError):
    """ARCHANGEL_E_SYSTEM: a system call failed (``detail`` names it)."""


_BY_CODE: Dict[int, Type[ArchangelError]] = {
    -1: WouldBlock, -2: TimedOut, -3: Closed, -4: Corrupted, -5: PayloadTooLarge, -6: BufferTooSmall,
    -7: InvalidArgument, -8: NotFound, -9: Exists, -10: TooManyChannels, -11: ABIMismatch, -12: Busy,
    -13: Disconnected, -14: Unavailable, -15: Refused, -16: ProtocolError, -17: SystemCallError,
}


def strerror(code: int) -> str:
    """``archangel_strerror(code)``: a fixed sentence for a code."""
    return _native.lib.archangel_strerror(code).decode()


def error_for(code: int) -> ArchangelError:
    """The exception for a negative code, with this thread's ``archangel_last_error()`` text."""
    cls = _BY_CODE.get(code, ArchangelError)
    detail = "" if code == -1 else _native.last_error()
    return cls(code, detail)


def check(code: int) -> int:
    """Returns ``code`` when it is >= 0, else raises its exception."""
    if code < 0:
        raise error_for(code)
    return code
