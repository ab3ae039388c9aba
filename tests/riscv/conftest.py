"""RISC-V sim tests: real kernels under QEMU (TCG). The kernel build is cached (~3 min the first time)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.markers import mark_rack

TOOLS = {"qemu-system-riscv64": "qemu-system-misc", "riscv64-linux-gnu-gcc": "gcc-riscv64-linux-gnu",
         "dtc": "device-tree-compiler", "flex": "flex", "bison": "bison", "bc": "bc"}


@pytest.fixture(scope="session", autouse=True)
def riscv_toolchain():
    missing = sorted({pkg for tool, pkg in TOOLS.items() if not shutil.which(tool)})
    if missing or not Path("/usr/src/linux-source-6.1.tar.xz").exists():
        pytest.fail("the RISC-V sim needs: apt-get install -y " + " ".join(missing + ["linux-source-6.1"]))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_rack(items, Path(__file__).parent,
              why="the RISC-V sim registers its racks under /run/hilt/sims and its guests' networks in namespaces")
