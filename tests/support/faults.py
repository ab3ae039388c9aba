"""Fault injection into a real `hilt run` on the simulated rack (tests/e2e/test_faults.py).

The run is a child process in a session of its own, so a signal can go to its whole process group as a
terminal's Ctrl-C or a CI runner's timeout sends it (the sim daemon starts its own session and is not hit).
"A probe runs" is read from /proc: a process of the probe script under the sim daemon's process tree, what a
person sees with `ps` on a real node.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from hilt.sim import state as sim_state
from tests.support.sessions import session_env

ROOT = Path(__file__).resolve().parents[2]
SIM_NAME = "e2e"

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
      options: {{nodes: {nodes}, boot_delay_s: {boot_delay_s}, name: e2e, subnet: 50, boot_timeout_s: 30,
                 profile: sim-4gpu}}
"""


def gate_only_torch(directory: Path) -> Path:
    """sim-4gpu's baselines with only the torch all-reduce gated: one short probe earns a gate PASS, so that a
    faulted run that still says PASS is caught."""
    book = yaml.safe_load((ROOT / "baselines" / "sim-4gpu.yaml").read_text())
    book["gated"] = [g for g in book["gated"] if g["metric"] == "torch.all_reduce.busbw"]
    directory.mkdir(exist_ok=True)
    (directory / "sim-4gpu.yaml").write_text(yaml.safe_dump(book, sort_keys=False))
    return directory


def write_rigs(directory: Path, *, lease_store: str = "sqlite://leases.sqlite", history: str = "history.sqlite",
               nodes: int = 1, boot_delay_s: float = 1.0) -> Path:
    """rigs.yaml for a small sim rig whose baselines gate only the torch all-reduce."""
    rigs = directory / "rigs.yaml"
    rigs.write_text(RIGS.format(lease_store=lease_store, history=history, nodes=nodes, boot_delay_s=boot_delay_s,
                                baselines=gate_only_torch(directory / "baselines")))
    return rigs


class Run:
    """A `hilt run` in progress: its process group, its output as it comes, its reports."""

    def __init__(self, proc: subprocess.Popen[str], reports: Path):
        self.proc = proc
        self.reports = reports
        self.lines: list[str] = []  # stdout, and stderr too unless the run was started with stderr apart
        self.stderr_lines: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(proc.stdout, self.lines), daemon=True)]
        if proc.stderr is not None:
            self._readers.append(threading.Thread(target=self._read, args=(proc.stderr, self.stderr_lines),
                                                  daemon=True))
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:  # noqa: ANN001 - a text pipe
        assert stream is not None
        for line in stream:
            lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    def signal_group(self, signum: int) -> None:
        os.killpg(self.proc.pid, signum)

    def wait_for_line(self, pattern: str, timeout: float = 90) -> None:
        self._wait_until(lambda: any(re.search(pattern, line) for line in list(self.lines)), timeout, 0.05,
                         f"no line matching {pattern!r} from hilt run")

    def wait_for_probe(self, script: str = "allreduce.py", timeout: float = 90) -> None:
        """Wait until ``script`` runs on a sim node (the run still going)."""
        self._wait_until(lambda: bool(probe_pids(script)), timeout, 0.1, f"{script} never ran on the sim's nodes")

    def _wait_until(self, seen: Callable[[], bool], timeout: float, poll_s: float, failure: str) -> None:
        """Poll ``seen`` while the run goes on; a run that ended first, or the timeout, kills it and fails."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if seen():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(poll_s)
        self.kill()
        raise AssertionError(f"{failure}:\n{self.output[-4000:]}")

    def wait(self, timeout: float = 120) -> int:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"hilt run did not end within {timeout:.0f} s:\n{self.output[-4000:]}") from None
        for reader in self._readers:
            reader.join(timeout=10)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.signal_group(signal.SIGKILL)
            self.proc.wait()

    def summary(self) -> dict:
        return json.loads((self.reports / "summary.json").read_text())

    def markdown(self) -> str:
        return (self.reports / "summary.md").read_text()


def start_run(rigs: Path, *pytest_args: str, reports: Path | None = None,
              suites: tuple[str, ...] = ("suites/test_nccl.py",), env: dict[str, str] | None = None,
              stderr_apart: bool = False) -> Run:
    """`hilt run` on ``rigs`` in a process group of its own (stdout and stderr together, as a CI log has them,
    unless ``stderr_apart``); the history is appended (rigs.yaml names it), as a nightly job's is. ``env``: more
    environment (PYTHONPATH for a plugin the test passes with ``-p``)."""
    reports = reports or rigs.parent / "reports"
    argv = [sys.executable, "-m", "hilt.cli", "run", "--rigs-file", str(rigs), "--reports", str(reports),
            "--suites", suites[0], "--", *suites[1:], "-p", "no:randomly", *pytest_args]
    environ = session_env(PYTHONUNBUFFERED="1", **(env or {}))
    environ.pop("HILT_NO_HISTORY", None)
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE if stderr_apart else subprocess.STDOUT, text=True, env=environ,
                            start_new_session=True)
    return Run(proc, reports)


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def probe_pids(script: str) -> list[int]:
    """PIDs of ``script`` (a probe: allreduce.py, ddp.py) running on the sim's nodes now."""
    sim = sim_state.lookup(SIM_NAME)
    if not sim or not sim.get("daemon_pid"):
        return []
    children, found, todo = _children(), [], [int(sim["daemon_pid"])]
    while todo:
        for pid in children.get(todo.pop(), []):
            todo.append(pid)
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(arg.endswith(script.encode()) for arg in argv):
                found.append(pid)
    return found


def hilt_json(*args: str) -> dict:
    """A `hilt ... --json` listing."""
    done = subprocess.run([sys.executable, "-m", "hilt.cli", *args, "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def leases(store: str) -> list[dict]:
    return hilt_json("leases", "--lease-store", store)["leases"]


def history_runs(history: Path) -> list[dict]:
    return hilt_json("history", "list", "--history", str(history))["runs"]
