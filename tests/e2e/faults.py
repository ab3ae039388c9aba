"""Fault injection into a real `hilt run` on the simulated rack (tests/e2e/test_faults.py).

The run is a child process in a session of its own, so a signal can go to its whole process group as a
terminal's Ctrl-C or a CI runner's timeout sends it (the sim daemon starts its own session and is not hit).
"Running a probe" is read from /proc: a process of the probe script under the sim daemon's process tree, the
same thing a person sees with `ps` on a real node.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from hilt.sim import state as sim_state

ROOT = Path(__file__).resolve().parents[2]
SIM_NAME = "e2e"  # tests/e2e/conftest.py's RIGS names the sim so

RIGS = """\
default_rig: sim
lease_store: {lease_store}
history: {history}
baselines_dir: {baselines}
health: {{bad_after: 3}}
rigs:
  sim:
    default_image: good
    provider:
      factory: hilt.sim.provider:SimProvider
      options: {{nodes: {nodes}, boot_delay_s: {boot_delay_s}, name: e2e, subnet: 50, boot_timeout_s: 12, profile: sim-4gpu}}
"""

def gate_only_torch(directory: Path) -> Path:
    """A baselines directory where only the torch all-reduce is gated (sim-4gpu's own entries), so that one
    short probe can earn a gate PASS, and the same run, faulted, must not."""
    book = yaml.safe_load((ROOT / "baselines" / "sim-4gpu.yaml").read_text())
    book["gated"] = [g for g in book["gated"] if g["metric"] == "torch.all_reduce.busbw"]
    directory.mkdir(exist_ok=True)
    (directory / "sim-4gpu.yaml").write_text(yaml.safe_dump(book, sort_keys=False))
    return directory


@dataclass
class Run:
    """A `hilt run` in progress (or done): its process, where its reports go, what it printed."""

    proc: subprocess.Popen[str]
    reports: Path
    output: str = ""

    def signal_group(self, signum: int) -> None:
        os.killpg(self.proc.pid, signum)

    def wait(self, timeout: float = 120) -> int:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            out, _ = self.proc.communicate()
            raise AssertionError(f"hilt run did not end within {timeout:.0f} s:\n{out[-4000:]}") from None
        self.output = out
        return self.proc.returncode

    def summary(self) -> dict:
        return json.loads((self.reports / "summary.json").read_text())

    def markdown(self) -> str:
        return (self.reports / "summary.md").read_text()


def write_rigs(directory: Path, *, lease_store: str = "sqlite://leases.sqlite", history: str = "history.sqlite",
               baselines: Path | None = None, nodes: int = 1, boot_delay_s: float = 1.0) -> Path:
    """rigs.yaml for a small sim rig; by default with its own baselines, gating only the torch all-reduce."""
    if baselines is None:
        baselines = gate_only_torch(directory / "baselines")
    rigs = directory / "rigs.yaml"
    rigs.write_text(RIGS.format(lease_store=lease_store, history=history, baselines=baselines, nodes=nodes,
                                boot_delay_s=boot_delay_s))
    return rigs


def start_run(rigs: Path, *pytest_args: str, reports: Path | None = None, suites: str = "suites/test_nccl.py",
              env: dict[str, str] | None = None) -> Run:
    """`hilt run` on ``rigs`` in a process group of its own (stdout and stderr together, as a CI log has them)."""
    reports = reports or rigs.parent / "reports"
    argv = [sys.executable, "-m", "hilt.cli", "run", "--rigs-file", str(rigs), "--reports", str(reports),
            "--suites", suites, "--", "-p", "no:randomly", *pytest_args]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HILT_NO_HISTORY": "", **(env or {})}, start_new_session=True)
    return Run(proc, reports)


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def probe_pids(script: str) -> list[int]:
    """PIDs of ``script`` (a probe, e.g. allreduce.py) running on the sim's nodes now."""
    sim = sim_state.lookup(SIM_NAME)
    if not sim or not sim.get("daemon_pid"):
        return []
    pids = []
    for pid in _descendants(int(sim["daemon_pid"])):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.endswith(script.encode()) for arg in argv):
            pids.append(pid)
    return pids


def wait_for_probe(run: Run, script: str = "allreduce.py", timeout: float = 90) -> None:
    """Wait until ``script`` runs on a node (the run must still be going); fail with the run's output if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.proc.poll() is not None:
            raise AssertionError(f"hilt run ended (exit {run.proc.returncode}) before the probe ran:\n"
                                 f"{run.proc.stdout.read()[-4000:] if run.proc.stdout else ''}")
        if probe_pids(script):
            return
        time.sleep(0.1)
    run.signal_group(signal.SIGKILL)
    raise AssertionError(f"no {script} on the sim's nodes within {timeout:.0f} s")


def wait_for_file(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} did not appear within {timeout:.0f} s")


def lease_holders(lease_store: str) -> list[dict]:
    """The leases the store holds now (`hilt leases --json`)."""
    done = subprocess.run([sys.executable, "-m", "hilt.cli", "leases", "--json", "--lease-store", lease_store],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)["leases"]
