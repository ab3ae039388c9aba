"""One home for identity parsing: the boot check (provision) and the fabric suites read the driver version alike."""

from __future__ import annotations

import pytest

from hilt.fabric.procinfo import parse_driver_version
from hilt.provision.boot import driver_version

PROC = [
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.129.03  Tue Oct 10 21:45:56 UTC 2023\nGCC version: 11\n",
    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build  (dvs-builder@U16-I3-B03-4-3)"
    "  Thu Feb 22 01:44:30 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
]


@pytest.mark.parametrize("proc", PROC, ids=["proprietary", "open"])
def test_boot_identity_and_fabric_suites_agree_on_the_driver(proc):
    assert driver_version(None, proc) == parse_driver_version(proc)


def test_sys_module_first_and_unreadable_text_is_no_version():
    assert driver_version("550.54.15\n", PROC[0]) == "550.54.15"
    assert driver_version("garbage", PROC[0]) == "535.129.03"
    assert driver_version(None, "cat: /proc/driver/nvidia/version: No such file or directory") is None
