"""RISC-V sim tests: real kernels under QEMU (TCG). The kernel build is cached (~3 min the first time)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"qemu-system-riscv64": "qemu-system-misc", "riscv64-linux-gnu-gcc": "gcc-riscv64-linux-gnu",
         "dtc": "device-tree-compiler", "flex": "flex", "bison": "bison", "bc": "bc"}

RIGS = """\
default_rig: sim-riscv
lease_store: sqlite://leases.sqlite
history: history.sqlite
baselines_dir: {baselines}
health: {{bad_after: 3}}
rigs:
  sim-riscv:
    default_image: good
    provider:
      factory: "hilt.sim.riscv.provider:RiscvSimProvider"
      options: {{nodes: {nodes}, boot_timeout_s: {boot_timeout_s}}}
"""


@pytest.fixture(scope="session", autouse=True)
def riscv_toolchain():
    missing = sorted({pkg for tool, pkg in TOOLS.items() if not shutil.which(tool)})
    if missing or not Path("/usr/src/linux-source-6.1.tar.xz").exists():
        pytest.fail("the RISC-V sim needs: apt-get install -y " + " ".join(missing + ["linux-source-6.1"]))
    if os.geteuid() != 0:
        pytest.fail("the RISC-V sim registers under /run/hilt/sims like the other sim: run the tests as root")


@dataclass
class Session:
    code: int
    output: str
    reports: Path


def run_session(tmp_path: Path, *args: str, nodes: int = 2, boot_timeout_s: float = 60,
                suites: tuple[str, ...] = ("suites/test_boot.py", "suites/test_devicetree.py")) -> Session:
    """A hilt session in a subprocess against a fresh sim-riscv rig (what `hilt run --rig sim-riscv` runs)."""
    rigs = tmp_path / "rigs.yaml"
    rigs.write_text(RIGS.format(baselines=ROOT / "baselines", nodes=nodes, boot_timeout_s=boot_timeout_s))
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *suites, "--rigs-file", str(rigs), "--hilt-reports", str(reports),
         "-p", "no:cacheprovider", "-rA", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "HILT_NO_HISTORY": ""},
    )
    return Session(proc.returncode, proc.stdout + proc.stderr, reports)
