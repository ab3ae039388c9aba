"""`hilt rollout` on the simulated 4-node rack (issue 18's acceptance): one rack for the module, nodes on `good`
at the start; a controller killed in the second wave is resumed without booting the canary again, and one killed
while it rolled the canary back without booting it a second time; an image that does not boot stops the rollout
(abort rolls it back, or --on-inconclusive rollback does at once).

Every wave's gate run is the rollout's default (every reference suite) against the shipped baselines (issue 24
item 2: a wave that measured a lease no baseline names used to end inconclusive, unseen while these tests passed
their own -k and baselines without the torch entry). The regressed image caught on the canary and the good image
reaching every node are tests/e2e/test_rollout_on_the_sim.py, run as docs/rollout.md says.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hilt.errors import NodeError
from hilt.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[2]
SIM = "rollout-e2e"

RIGS = """\
default_rig: sim
lease_store: sqlite://{tmp}/leases.sqlite
history: {tmp}/history.sqlite
baselines_dir: {baselines}
rigs:
  sim:
    provider:
      factory: hilt.sim.provider:SimProvider
      options: {{nodes: 4, name: {sim}, subnet: 57, boot_delay_s: 1.0, boot_timeout_s: 20, profile: sim-4gpu}}
"""


@dataclass
class Rack:
    tmp: Path
    rigs: Path

    def configs(self):  # noqa: ANN201 - name -> NodeConfig of the running sim
        from hilt.rig.config import load_inventory
        from hilt.rollout.engine import live_rig

        return live_rig(load_inventory(self.rigs), "sim").rig("sim").nodes

    def running(self) -> dict[str, dict]:
        from hilt.provision.boot import read_running_images

        return read_running_images(self.configs())

    def env(self) -> dict[str, str]:
        return {**os.environ, "HILT_ROLLOUTS": str(self.tmp / "rollouts")}

    def command(self, *args: str, reports: str) -> list[str]:
        return [sys.executable, "-m", "hilt.cli", "rollout", *args, "--rigs-file", str(self.rigs),
                "--reports", str(self.tmp / reports)] if not args or args[0] not in ("status", "resume", "abort") \
            else [sys.executable, "-m", "hilt.cli", "rollout", *args]

    def rollout(self, *args: str, reports: str = "reports") -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args, reports=reports), cwd=ROOT, env=self.env(), capture_output=True,
                              text=True, timeout=900)

    def state(self, rollout_id: str) -> dict:
        return json.loads((self.tmp / "rollouts" / rollout_id / "state.json").read_text())


def _rollout_id(output: str) -> str:
    return next(word for line in output.splitlines() for word in line.split() if word.startswith("ro-")).rstrip(":")


@pytest.fixture(scope="module")
def rack(tmp_path_factory):
    from hilt.provision.boot import provision
    from hilt.sim.lifecycle import sim_down, sim_up

    tmp = tmp_path_factory.mktemp("rollout")
    rigs = tmp / "rigs.yaml"
    rigs.write_text(RIGS.format(tmp=tmp, sim=SIM, baselines=ROOT / "baselines"))
    sim_up(SIM, nodes=4, boot_delay_s=1.0, subnet=57, owner_pid=os.getpid(), boot_timeout_s=20.0)
    try:
        rack = Rack(tmp, rigs)
        from hilt.rig.config import load_inventory
        from hilt.rollout.engine import live_rig

        inventory = live_rig(load_inventory(rigs), "sim")
        booted = provision(inventory.rig("sim").nodes, "good", inventory.images["good"], boot=True)
        assert all(r.ok for r in booted.values()), {n: r.error for n, r in booted.items()}
        yield rack
    finally:
        sim_down(SIM)


def _kill_when(rack: Rack, command: list[str], log_name: str, ready: Callable[[dict, str], bool]) -> dict:
    """Start the controller, SIGKILL it as soon as ``ready(state, output)`` holds, and return that state."""
    log_path = rack.tmp / log_name
    with log_path.open("w") as log:  # unbuffered: ``ready`` may wait for a progress line
        proc = subprocess.Popen(command, cwd=ROOT, env={**rack.env(), "PYTHONUNBUFFERED": "1"}, stdout=log,
                                stderr=subprocess.STDOUT)
    rollouts = rack.tmp / "rollouts"
    rollouts.mkdir(exist_ok=True)  # this test alone (-k, a rerun) comes before any rollout made the directory
    known = set(os.listdir(rollouts))
    deadline = time.monotonic() + 600
    state = None
    while time.monotonic() < deadline and proc.poll() is None:
        new = [d for d in os.listdir(rollouts) if d not in known and (rollouts / d / "state.json").exists()]
        if new:
            state = rack.state(new[0])
            if ready(state, log_path.read_text()):
                break
        time.sleep(0.1)
    assert proc.poll() is None and state is not None, log_path.read_text()[-4000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return state


def test_killed_controller_is_resumed_without_booting_the_canary_again(rack):
    command = rack.command("--image", "good", "--canary", "1", reports="resumed")
    state = _kill_when(rack, command, "killed.log", lambda state, _: state["waves"][1]["status"] == "gating")
    rollout_id = state["id"]
    booted = {n: state["nodes"][n]["new_boot_id"] for n in state["nodes"]}
    assert all(booted.values()), state["nodes"]

    status = rack.rollout("status", rollout_id, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["controller_alive"] is False

    proc = rack.rollout("resume", rollout_id)
    out = proc.stdout + proc.stderr
    assert proc.returncode == ExitCode.PASS, out[-6000:]
    state = rack.state(rollout_id)
    assert state["status"] == "passed" and [w["status"] for w in state["waves"]] == ["passed", "passed"]
    after = rack.running()
    assert after["node1"]["boot_id"] == booted["node1"]  # the canary was not booted again
    assert {n: a["boot_id"] for n, a in after.items()} == booted  # nor the wave-2 nodes that were done
    assert "resumed" in [e["what"] for e in state["events"]]


def test_an_image_that_does_not_boot_stops_the_rollout_and_abort_rolls_it_back(rack):
    before = rack.running()
    proc = rack.rollout("--image", "broken", "--canary", "1", reports="broken")
    out = proc.stdout + proc.stderr
    assert proc.returncode == ExitCode.INCONCLUSIVE, out[-6000:]
    rollout_id = _rollout_id(out)
    state = rack.state(rollout_id)
    assert state["status"] == "inconclusive" and state["rollback"] is None
    assert "broken did not boot: node node1" in state["waves"][0]["reason"]
    assert state["nodes"]["node1"]["status"] == "booting"  # it may run anything now: a rollback covers it

    proc = rack.rollout("abort", rollout_id, "--why", "image does not boot")
    assert proc.returncode == ExitCode.PASS, (proc.stdout + proc.stderr)[-6000:]
    state = rack.state(rollout_id)
    assert state["status"] == "aborted" and state["rollback"]["ok"] is True
    assert state["rollback"]["why"] == "aborted: image does not boot"
    after = rack.running()
    assert after["node1"]["image_id"] == "hilt-sim-good" and after["node1"]["boot_id"] != before["node1"]["boot_id"]
    assert {n: after[n]["boot_id"] for n in ("node2", "node3", "node4")} == \
        {n: before[n]["boot_id"] for n in ("node2", "node3", "node4")}


def test_on_inconclusive_rollback_rolls_the_canary_back_and_exits_6(rack):
    before = rack.running()
    proc = rack.rollout("--image", "broken", "--on-inconclusive", "rollback",
                        reports="broken-rollback")
    out = proc.stdout + proc.stderr
    assert proc.returncode == ExitCode.INCONCLUSIVE, out[-6000:]
    state = rack.state(_rollout_id(out))
    assert state["status"] == "inconclusive" and state["rollback"]["ok"] is True
    assert state["rollback"]["nodes"] == ["node1"] and state["nodes"]["node1"]["status"] == "rolled_back"
    after = rack.running()
    assert after["node1"]["image_id"] == "hilt-sim-good" and after["node1"]["boot_id"] != before["node1"]["boot_id"]
    assert {n: after[n]["boot_id"] for n in ("node2", "node3", "node4")} == \
        {n: before[n]["boot_id"] for n in ("node2", "node3", "node4")}


def test_controller_killed_mid_rollback_is_resumed_without_booting_the_node_again(rack):
    """The canary's rollback boot was started (BMC reset on the image it ran) when the controller was killed: the
    node comes up on its rollback image by itself, and resume proves it there instead of resetting it again."""
    before = rack.running()
    command = rack.command("--image", "broken", "--on-inconclusive", "rollback", reports="killed-rollback")

    def rollback_boot_started(state: dict, output: str) -> bool:
        return (state["nodes"]["node1"]["status"] == "rolling_back"
                and "node1: booting: good via" in output.partition("rolling back node1 to good")[2])

    state = _kill_when(rack, command, "killed-rollback.log", rollback_boot_started)
    rollout_id = state["id"]
    assert state["rollback"]["ok"] is None and state["nodes"]["node1"]["status"] == "rolling_back"
    deadline = time.monotonic() + 60
    while True:  # the rollback boot the killed controller started comes up without it
        try:
            up = rack.running()
        except NodeError:
            up = None
        if (up is not None and up["node1"]["image_id"] == "hilt-sim-good") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert up is not None and up["node1"]["image_id"] == "hilt-sim-good", "node1 never came up on good"
    rolled_back_boot = up["node1"]["boot_id"]
    assert rolled_back_boot != before["node1"]["boot_id"]

    proc = rack.rollout("resume", rollout_id)
    out = proc.stdout + proc.stderr
    assert proc.returncode == ExitCode.INCONCLUSIVE, out[-6000:]
    state = rack.state(rollout_id)
    assert state["status"] == "inconclusive" and state["rollback"]["ok"] is True
    node1 = state["nodes"]["node1"]
    assert node1["status"] == "rolled_back" and node1["rollback_boot_id"] == rolled_back_boot
    assert rolled_back_boot[:8] in node1["rollback_proof"], node1["rollback_proof"]
    after = rack.running()
    assert after["node1"]["boot_id"] == rolled_back_boot  # rolled back once: resume did not reset it again
    assert after["node1"]["image_id"] == "hilt-sim-good"
    assert {n: after[n]["boot_id"] for n in ("node2", "node3", "node4")} == \
        {n: before[n]["boot_id"] for n in ("node2", "node3", "node4")}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_while_the_rollout_waits_for_its_lease_stops_it_at_once_out_of_the_queue(rack, signum):
    """A CI job's timeout (SIGTERM) or Ctrl-C while `hilt rollout --lease-wait 600` is queued behind a run on a
    node: the controller ends within seconds, exit 6, one error line naming who held the node and how to go on; it
    left the queue (the next request for the nodes is granted at once), leased and booted nothing, and its state
    says so and stays resumable. Before: SIGTERM killed it in the queue with nothing said (its ticket blocked the
    next request until it expired); Ctrl-C ended it with exit 2 and no word."""
    from hilt.lease import Holder, open_store

    name = signal.Signals(signum).name
    before = rack.running()
    store = open_store(f"sqlite://{rack.tmp}/leases.sqlite")
    held = store.acquire(["sim/node2"], Holder(user="alice", host="ci-3", pid=4242, purpose="nightly on sim"),
                         ttl_s=600)
    log_path = rack.tmp / f"lease-wait-{name}.log"
    proc = None
    try:
        with log_path.open("w") as log:
            proc = subprocess.Popen(rack.command("--image", "good", "--lease-wait", "600", reports=f"wait-{name}"),
                                    cwd=ROOT, env={**rack.env(), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while "waiting for nodes" not in log_path.read_text() and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None and "waiting for nodes" in log_path.read_text(), log_path.read_text()[-4000:]
        time.sleep(0.5)  # in the wait, its place in the queue kept
        sent = time.monotonic()
        os.killpg(proc.pid, signum)  # its process group, as a CI runner stops a job
        code = proc.wait(timeout=120)
        took = time.monotonic() - sent
        assert [lease.id for lease in store.list_leases()] == [held.id]  # nothing of the rollout's
        store.release(held.id)
        later = store.acquire([f"sim/node{i}" for i in range(1, 5)], Holder.current(purpose="next"), ttl_s=30)
        store.release(later.id)  # granted at once: the stopped rollout was queued no more
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        store.release(held.id)  # False when the test gave it back already
        store.close()
    output = log_path.read_text()
    assert code == ExitCode.INCONCLUSIVE, output[-4000:]
    rollout_id = _rollout_id(output)
    [error] = [line for line in output.splitlines() if line.startswith("error: ")]
    assert error.startswith(f"error: rollout {rollout_id}: stopped by {name} after "), error
    assert "waiting for rig sim's nodes (sim/node2 held by alice@ci-3 pid 4242" in error, error
    assert error.endswith(f"left the wait queue, nothing leased or booted; `hilt rollout resume {rollout_id}` "
                          "continues it"), error
    assert "Traceback" not in output, output[-4000:]
    assert took < 20, f"the rollout took {took:.1f} s to end after {name}"
    state = rack.state(rollout_id)
    assert state["status"] == "running" and state["lease_id"] is None and state["reason"] == error[len("error: "):]
    assert f"stopped by {name} while waiting for the lease: nothing leased or booted" in \
        [e["what"] for e in state["events"]]
    assert all(n["status"] == "old" for n in state["nodes"].values())
    status = rack.rollout("status", rollout_id)
    assert f"continue with `hilt rollout resume {rollout_id}`" in status.stdout, status.stdout
    assert {n: r["boot_id"] for n, r in rack.running().items()} == {n: r["boot_id"] for n, r in before.items()}
