"""End-to-end sessions against the simulated rack: few, because each boots a rack (needs root)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

RIGS = """\
default_rig: sim
lease_store: sqlite://leases.sqlite
history: history.sqlite
baselines_dir: {baselines}
health: {{bad_after: 3}}
rigs:
  sim:
    default_image: good
    provider:
      factory: hilt.sim.provider:SimProvider
      options: {{nodes: {nodes}, boot_delay_s: 1.0, name: e2e, subnet: 50, boot_timeout_s: 12, profile: {profile}}}
"""


@dataclass
class Session:
    code: int
    output: str
    reports: Path


@pytest.fixture
def sim_rig(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the simulated rack needs root (network namespaces); run the tests as root")

    def make(nodes: int = 2, profile: str = "sim-4gpu", baselines: Path = ROOT / "baselines") -> Path:
        rigs = tmp_path / "rigs.yaml"
        rigs.write_text(RIGS.format(nodes=nodes, baselines=baselines, profile=profile))
        return rigs

    return make


def run_suites(rigs: Path, *args: str, suites: str = "suites/test_boot.py", timeout: float = 300) -> Session:
    reports = rigs.parent / "reports"
    env = {**os.environ, "HILT_NO_HISTORY": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *suites.split(), "--rigs-file", str(rigs), "--hilt-reports", str(reports),
         "-p", "no:cacheprovider", "-rA", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env,
    )
    return Session(proc.returncode, proc.stdout + proc.stderr, reports)

