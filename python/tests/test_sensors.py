"""archangel.sensors: the ioctl numbers and layouts agree with the C header; errors say what to do.

The device itself is exercised in the VM (scripts/kernel-test runs
ai_engine.py --backend kernel --workload against archangel_sensors.ko).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from archangel import sensors as s

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INCLUDE = os.path.join(REPO, "Sources", "CArchangel", "include")

PROGRAM = r"""
#include <stdio.h>
#include <stddef.h>
#include <linux/ioctl.h>
#include "archangel_sensors_ioctl.h"
#include "archangel_sensors_uapi.h"
int main(void)
{
	printf("%lu %lu %lu %lu %lu\n", (unsigned long)ARCHANGEL_SENSORS_IOC_ATTACH,
	       (unsigned long)ARCHANGEL_SENSORS_IOC_DETACH, (unsigned long)ARCHANGEL_SENSORS_IOC_CONFIGURE,
	       (unsigned long)ARCHANGEL_SENSORS_IOC_EXCLUDE_PID, (unsigned long)ARCHANGEL_SENSORS_IOC_GET_STATS);
	printf("%d %d %d %d %d %d %d\n", ARCHANGEL_SENSORS_ID_EXEC, ARCHANGEL_SENSORS_ID_SYSCALL,
	       ARCHANGEL_POLICY_HOLD, ARCHANGEL_VERDICT_KILL, ARCHANGEL_SENSORS_F_EXEC_NO_EXIT,
	       (int)offsetof(struct archangel_sensors_stats, lost_records), ARCHANGEL_SENSORS_SYSCALL_BITS);
	return 0;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None or not os.path.isdir(INCLUDE),
                    reason="needs gcc and the repository's headers (scripts/test-bindings has both)")
def test_ioctl_numbers_and_constants_match_the_header(tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "ioc.c"
    src.write_text(PROGRAM)
    exe = tmp_path / "ioc"
    subprocess.run(["gcc", "-I", INCLUDE, str(src), "-o", str(exe)], check=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split("\n")
    assert [int(x) for x in lines[0].split()] == [s.IOC_ATTACH, s.IOC_DETACH, s.IOC_CONFIGURE, s.IOC_EXCLUDE_PID,
                                                   s.IOC_GET_STATS]
    assert [int(x) for x in lines[1].split()] == [s.SENSOR_EXEC, s.SENSOR_SYSCALL, s.POLICY_HOLD, s.VERDICT_KILL,
                                                   s.F_EXEC_NO_EXIT, 272, s.SYSCALL_BITS]


def test_a_missing_device_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(s.SensorsError) as info:
        s.SensorsDevice(str(tmp_path / "archangel_sensors"))
    assert "archangel_sensors.ko" in str(info.value) and info.value.errno == 2


def test_configure_checks_system_call_numbers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A regular file stands in for the device: the check comes before the ioctl.
    path = tmp_path / "not-a-device"
    path.write_bytes(b"")
    with s.SensorsDevice(str(path)) as dev:
        with pytest.raises(ValueError):
            dev.configure(s.SENSOR_SYSCALL, syscalls=[s.SYSCALL_BITS])
        with pytest.raises(s.SensorsError) as info:  # ENOTTY: a file is not the sensors device
            dev.configure(s.SENSOR_SYSCALL, syscalls=[0, 1])
        assert info.value.errno == 25
    with pytest.raises(s.SensorsError):
        dev.stats()  # closed
