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



def as_typed(state: Path, *argv: str, reports: Path | None = None, cwd: Path = ROOT,
             timeout: float = 900) -> Session:
    """A command exactly as a user types it in this repository (``pytest ...`` or ``hilt ...``): the shipped
    rigs.yaml and baselines, default options. Only where the state goes differs: ``$XDG_STATE_HOME`` (the lease
    store and the history, docs/leases.md) is ``state``, and no ``HILT_*`` variable of the caller leaks in.
    ``reports``: passed as ``--hilt-reports`` to pytest (where a run writes, not how it runs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HILT_")}
    env["XDG_STATE_HOME"] = str(state)
    program, *rest = argv
    script = Path(sys.executable).parent / program  # the console script the user runs, from this environment
    command = [str(script), *rest] if script.is_file() else \
        [sys.executable, "-m", "pytest" if program == "pytest" else "hilt.cli", *rest]
    if program == "pytest" and reports is not None:
        command += ["--hilt-reports", str(reports)]
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    return Session(proc.returncode, proc.stdout + proc.stderr, reports or cwd / "reports")
