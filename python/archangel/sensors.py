"""The kernel sensors' control device, ``/dev/archangel_sensors`` (docs/sensors.md).

An engine on the kernel backend creates a channel on ``/dev/archangel``
(:func:`archangel.open_kernel`), then attaches the sensors module to it and
switches sensors on; the records (SYSCALL_EVENT, ...) and the AI_REQUESTs
arrive on that channel, the engine answers with AI_RESPONSEs on it. Closing
the device file (or the process dying) detaches the module, which resolves
every pending request with its sensor's default verdict.

The structures are those of ``archangel_sensors_ioctl.h`` (packed here with
``struct``; their sizes are checked against the header's static asserts).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from dataclasses import dataclass
from typing import Iterable, Optional

__all__ = [
    "SensorsDevice", "SensorsStats", "SENSOR_EXEC", "SENSOR_SYSCALL", "SENSOR_NET", "SENSOR_MEM",
    "POLICY_OBSERVE", "POLICY_ALLOW_ASK", "POLICY_DENY_ASK", "POLICY_HOLD",
    "VERDICT_ALLOW", "VERDICT_DENY", "VERDICT_KILL", "F_ENABLED", "F_SYSCALL_EXIT", "F_EXEC_NO_EXIT",
]

DEVICE = "/dev/archangel_sensors"

# ARCHANGEL_SENSORS_ID_*
SENSOR_EXEC, SENSOR_SYSCALL, SENSOR_NET, SENSOR_MEM = 0, 1, 2, 3
# ARCHANGEL_POLICY_*
POLICY_OBSERVE, POLICY_ALLOW_ASK, POLICY_DENY_ASK, POLICY_HOLD = 0, 1, 2, 3
# ARCHANGEL_VERDICT_*
VERDICT_ALLOW, VERDICT_DENY, VERDICT_KILL = 0, 1, 2
# ARCHANGEL_SENSORS_F_*
F_ENABLED, F_SYSCALL_EXIT, F_NET_ALL, F_EXEC_NO_EXIT = 1 << 0, 1 << 1, 1 << 2, 1 << 3
SYSCALL_BITS = 512

_ATTACH = struct.Struct("=IIIIQ")  # channel_id, flags, batch_bytes, batch_us, reserved
_CONFIG = struct.Struct("=IIBB2xIII8Q4Q")  # sensor, flags, policy, default, pad, deadline, interval, r0, syscalls, reserved
_EXCLUDE = struct.Struct("=IIQ")  # pid, flags, reserved
_STATS_SIZE = 576
# struct archangel_sensors_stats: the header, 8 kinds of 4 counters, then the verdict counters.
_STATS_HEAD = struct.Struct("=IIII")
_KIND = struct.Struct("=QQQQ")  # observed, sent, dropped, lost_reported
_STATS_TAIL = struct.Struct("=" + "Q" * 30)
_STATS_TAIL_NAMES = (
    "lost_records", "send_errors", "requests", "requests_unsent", "responses", "responses_late", "responses_bad",
    "timeouts", "detach_resolved", "pending_full", "verdict_allow", "verdict_deny", "verdict_kill", "cache_hits",
    "cache_misses", "cache_inserts", "cache_evictions", "cache_expired", "flows_new", "flows_evicted",
    "exec_killed", "exec_stopped", "exec_continued", "packets_dropped", "exposure_count", "exposure_ns_total",
    "rtt_count", "rtt_ns_total", "exposure_ns_max", "rtt_ns_max",
)
assert _ATTACH.size == 24 and _CONFIG.size == 120 and _EXCLUDE.size == 16
assert 16 + 8 * 32 == 272 and 272 + _STATS_TAIL.size == 512  # the header's offsets: kinds, lost_records, batches


def _ioc(direction: int, nr: int, size: int) -> int:
    """Linux's _IOC(dir, 0xB5, nr, size) (asm-generic/ioctl.h)."""
    return (direction << 30) | (size << 16) | (0xB5 << 8) | nr


_IOC_WRITE, _IOC_READ = 1, 2
IOC_ATTACH = _ioc(_IOC_WRITE, 1, _ATTACH.size)
IOC_DETACH = _ioc(0, 2, 0)
IOC_CONFIGURE = _ioc(_IOC_WRITE, 3, _CONFIG.size)
IOC_EXCLUDE_PID = _ioc(_IOC_WRITE, 5, _EXCLUDE.size)
IOC_GET_STATS = _ioc(_IOC_READ, 6, _STATS_SIZE)


@dataclass(frozen=True)
class SensorsStats:
    """What the module counted (``ARCHANGEL_SENSORS_IOC_GET_STATS``; /proc/archangel/sensors has the same)."""

    channel_id: int
    engine_pid: int
    enabled: int
    pending: int
    counters: "dict[str, int]"
    #: Per record kind (ARCHANGEL_SENSOR_*, [0] unused): (observed, sent, dropped, lost_reported).
    kinds: "tuple[tuple[int, int, int, int], ...]" = ()

    def __getattr__(self, name: str) -> int:
        try:
            return self.counters[name]
        except KeyError:
            raise AttributeError(name) from None


class SensorsError(OSError):
    """An ioctl of the sensors device failed; ``errno`` and the text say which and why."""


class SensorsDevice:
    """``/dev/archangel_sensors``, opened by the engine (root: the device is 0600).

    A context manager: closing detaches the sensors.
    """

    def __init__(self, path: str = DEVICE) -> None:
        try:
            self._fd: Optional[int] = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            hint = " (is archangel_sensors.ko loaded? the device is root's)" if e.errno in (
                errno.ENOENT, errno.EACCES, errno.ENODEV, errno.ENXIO) else ""
            raise SensorsError(e.errno, f"cannot open {path}: {e.strerror}{hint}") from None

    def _ioctl(self, what: str, request: int, arg: "bytes | bytearray | int" = 0) -> "bytes | int":
        if self._fd is None:
            raise SensorsError(errno.EBADF, f"{what}: the sensors device is closed")
        try:
            return fcntl.ioctl(self._fd, request, arg)
        except OSError as e:
            raise SensorsError(e.errno, f"{what}: {e.strerror} (docs/sensors.md lists each ioctl's errors)") from None

    def attach(self, channel_id: int, batch_bytes: int = 0, batch_us: int = 0) -> None:
        """Sends the sensors' records to ``channel_id`` (one record per message, or batches of up
        to ``batch_bytes``, each record waiting at most ``batch_us``)."""
        self._ioctl("ATTACH", IOC_ATTACH, _ATTACH.pack(channel_id, 0, batch_bytes, batch_us, 0))

    def configure(self, sensor: int, enabled: bool = True, flags: int = 0, policy: int = POLICY_OBSERVE,
                  default_verdict: int = VERDICT_ALLOW, deadline_ms: int = 0, interval_ms: int = 0,
                  syscalls: Iterable[int] = ()) -> None:
        """Switches one sensor (``SENSOR_*``) on or off with its policy, default verdict (applied on a
        deadline, at detach, when there is no room), deadline and, for SENSOR_SYSCALL, the numbers to record."""
        words = [0] * (SYSCALL_BITS // 64)
        for nr in syscalls:
            if not 0 <= nr < SYSCALL_BITS:
                raise ValueError(f"system call number {nr} is outside 0..{SYSCALL_BITS - 1}")
            words[nr // 64] |= 1 << (nr % 64)
        self._ioctl("CONFIGURE", IOC_CONFIGURE, _CONFIG.pack(
            sensor, flags | (F_ENABLED if enabled else 0), policy, default_verdict, deadline_ms, interval_ms, 0,
            *words, 0, 0, 0, 0))

    def exclude_pid(self, pid: int, remove: bool = False) -> None:
        """Leaves process ``pid`` out of every sensor (the engine itself always is)."""
        self._ioctl("EXCLUDE_PID", IOC_EXCLUDE_PID, _EXCLUDE.pack(pid, 1 if remove else 0, 0))

    def stats(self) -> SensorsStats:
        """The module's counters now."""
        raw = self._ioctl("GET_STATS", IOC_GET_STATS, bytes(_STATS_SIZE))
        assert isinstance(raw, bytes)
        channel_id, engine_pid, enabled, pending = _STATS_HEAD.unpack_from(raw, 0)
        kinds = tuple(_KIND.unpack_from(raw, 16 + 32 * k) for k in range(8))
        tail = _STATS_TAIL.unpack_from(raw, 272)
        return SensorsStats(channel_id, engine_pid, enabled, pending, dict(zip(_STATS_TAIL_NAMES, tail)), kinds)

    def detach(self) -> None:
        """Detaches now (pending requests get their defaults)."""
        self._ioctl("DETACH", IOC_DETACH)

    def close(self) -> None:
        """Closes the device file, which detaches (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "SensorsDevice":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
