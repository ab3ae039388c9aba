"""A provided rig that runs now: `hilt rigs` shows its live nodes, `hilt rollout` works on them (running_rig).

The RISC-V sim is found the way its provider finds it: the sims' registry pointer, the daemon's state.json and
ready.json (what hilt/sim/riscv/daemon.py writes), and a live daemon process; its nodes' BMC and SSH ports are
closed here, so `hilt rigs` shows them unreachable, which is what it shows of a booting QEMU guest too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hilt.cli import app
from hilt.rig.config import load_inventory
from hilt.rig.provider import running_rig
from hilt.sim import state
from hilt.sim.riscv.provider import RiscvSimProvider

RIGS = """
default_rig: lab
lease_store: sqlite://{tmp}/leases.sqlite
rigs:
  lab:
    nodes:
      n1:
        bmc: {{url: "http://127.0.0.1:9", username: admin, password: "${{HILT_TEST_NO_SUCH_VAR}}"}}
        ssh: {{host: 127.0.0.1, port: 9}}
        profile: sim-4gpu
  sim-riscv:
    provider:
      factory: hilt.sim.riscv.provider:RiscvSimProvider
      options: {{nodes: 2}}
"""


def wait_for(predicate, timeout_s: float = 5.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _live_node(port: int) -> dict:
    return {"bmc": {"url": "http://127.0.0.1:9", "system_id": f"sys-{port}", "username": "file:/nonexistent/user",
                    "password": "file:/nonexistent/pass"},
            "ssh": {"host": "127.0.0.1", "port": port, "user": "root"},
            "profile": "sim-riscv-nvlink", "address": "127.0.0.1", "labels": {"sim": "true", "arch": "riscv64"}}


@pytest.fixture
def rigs_file(tmp_path: Path) -> Path:
    path = tmp_path / "rigs.yaml"
    path.write_text(RIGS.format(tmp=tmp_path))
    return path


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(state, "REGISTRY", tmp_path / "registry")
    return state.REGISTRY


@pytest.fixture
def riscv_sim(tmp_path: Path, registry: Path) -> Iterator[dict]:
    """A running sim-riscv as its daemon records itself: registered, state.json with its pid, ready.json."""
    daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    state_dir = tmp_path / "sim-riscv-state"
    state_dir.mkdir()
    rig = {"nodes": {"node1": _live_node(10022), "node2": _live_node(10023)}, "images": {
        "good": {"url": "http://127.0.0.1:9/images/good.tar", "boot_method": "virtual_media"}}}
    state.write_json(state_dir / "state.json", {"name": "sim-riscv", "state_dir": str(state_dir),
                                                "daemon_pid": daemon.pid, "owner_pid": None, "ready": True})
    state.write_json(state_dir / "ready.json", {"rig": rig, "control_url": "http://127.0.0.1:9"})
    state.register("sim-riscv", state_dir)
    try:
        yield rig
    finally:
        daemon.kill()
        daemon.wait()


def test_the_riscv_provider_says_whether_its_sim_runs(riscv_sim: dict, registry: Path):
    provider = RiscvSimProvider()
    assert provider.running("sim-riscv", {"nodes": 2}) == riscv_sim
    assert provider.running("other-rig", {"nodes": 2}) is None  # no sim of that name
    assert provider.running("lab", {"name": "sim-riscv"}) == riscv_sim  # options.name names the sim


def test_running_rig_merges_the_live_nodes_and_leaves_a_static_rig_as_it_is(rigs_file: Path, riscv_sim: dict):
    inventory = load_inventory(rigs_file)
    assert running_rig(inventory, "lab") is inventory
    live = running_rig(inventory, "sim-riscv")
    assert live is not None and sorted(live.rig("sim-riscv").nodes) == ["node1", "node2"]
    assert live.rig("sim-riscv").nodes["node2"].ssh.port == 10023
    assert "good" in live.images


def test_a_provided_rig_that_does_not_run_is_none(rigs_file: Path, registry: Path):
    assert running_rig(load_inventory(rigs_file), "sim-riscv") is None


def test_a_sim_whose_daemon_died_is_not_running(rigs_file: Path, riscv_sim: dict, registry: Path):
    """Killed and not yet reaped (a zombie, as a daemon whose starter has not waited for it is): dead all the same."""
    pointer = json.loads((registry / "sim-riscv.json").read_text())
    daemon_pid = json.loads((Path(pointer["state_dir"]) / "state.json").read_text())["daemon_pid"]
    os.kill(daemon_pid, signal.SIGKILL)
    assert wait_for(lambda: running_rig(load_inventory(rigs_file), "sim-riscv") is None)


def test_hilt_rigs_shows_a_running_riscv_sim_with_its_nodes(rigs_file: Path, riscv_sim: dict):
    before = CliRunner().invoke(app, ["rigs", "--rigs-file", str(rigs_file), "--rig", "sim-riscv", "--json"])
    assert before.exit_code == 0, before.output
    rigs = {r["name"]: r for r in json.loads(before.output)["rigs"]}
    assert rigs["sim-riscv"]["provided"] is True
    nodes = {n["name"]: n for n in rigs["sim-riscv"]["nodes"]}
    assert sorted(nodes) == ["node1", "node2"]
    assert all(n["profile"] == "sim-riscv-nvlink" and n["ssh"] is False and n["power"] is None
               and n["health"] == "unknown" and n["lease"] is None for n in nodes.values())


def test_hilt_rigs_shows_a_stopped_riscv_sim_as_provided_at_run_time(rigs_file: Path, registry: Path):
    result = CliRunner().invoke(app, ["rigs", "--rigs-file", str(rigs_file)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "sim-riscv" in line)
    assert "nodes provided at run time" in row
