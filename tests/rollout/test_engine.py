"""The rollout engine's resume and rollback, without a rack: the real engine (hilt.rollout.engine.Rollout, its
state file, a real SQLite lease store, the `hilt rollout resume` command) over a fake of hilt's own provisioning
and gate run. The fake rack keeps what each node runs (image id, boot id) and records every boot; the fake gate
run writes the summary.json a wave's pytest session would. tests/e2e/test_rollout.py does the same on a
simulated rack.

What a user relies on: a resumed rollout continues from the step its state file recorded and never boots a node
twice; a wave that regresses boots the image each of its nodes ran before, on those nodes only.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hilt.cli import app
from hilt.errors import LeaseWaitCancelled
from hilt.exitcodes import ExitCode
from hilt.lease import Holder, open_store
from hilt.provision.boot import NodeState, ProvisionResult
from hilt.record.run_record import BaselineRecord, MetricRecord, NodeRecord, RunRecord, VerdictRecord
from hilt.rig.config import ImageConfig, NodeConfig
from hilt.rollout import engine
from hilt.rollout.engine import Rollout
from hilt.rollout.state import StateStore
from hilt.session.rig_session import SessionState

NODES = ("n1", "n2", "n3")
IMAGES = {"old": "img-old-1.4.2", "new": "img-new-1.4.3"}  # image name -> the image id a node running it shows
BUSBW = [180.0, 180.4, 179.6, 180.2, 179.8]


class ControllerKilled(BaseException):
    """The controller process dies here (nothing in the engine catches a BaseException of ours)."""


class FakeRack:
    """What hilt.provision.boot shows the engine of a rack: per node the image id and boot id it runs now.

    ``provision(boot=True)`` boots a node on an image (a new boot id) and records it in ``boots``; with
    ``boot=False`` it only reports what the node runs. ``kill_before_boot = k`` kills the controller as the k-th
    boot is about to start (1-based), as a crash or a SIGKILL would: boots started before it have happened;
    ``kill_after_boot = k`` kills it once the k-th boot came up, before the controller heard of it. A node in
    ``media_fails`` boots again on the image it ran (a new boot id), and the boot fails its image check.
    """

    def __init__(self, running: dict[str, str]):
        self.running = {name: (image_id, uuid.uuid4().hex) for name, image_id in running.items()}
        self.boots: list[tuple[str, str]] = []
        self.kill_before_boot: int | None = None
        self.kill_after_boot: int | None = None
        self.media_fails: set[str] = set()

    def read_running_images(self, nodes: dict[str, NodeConfig], timeout: float = 30.0) -> dict[str, dict]:
        return {name: {"image_id": self.running[name][0], "boot_id": self.running[name][1], "kernel": "6.8.0-45",
                       "driver": "550.54.15"} for name in nodes}

    def provision(self, nodes: dict[str, NodeConfig], image_name: str | None, image: ImageConfig | None, *,
                  boot: bool = True, progress=None, **_: object) -> dict[str, ProvisionResult]:  # noqa: ANN001
        results = {}
        for name in nodes:
            old_boot_id = self.running[name][1]
            if boot:
                assert image is not None and image_name is not None
                if self.kill_before_boot is not None and len(self.boots) + 1 >= self.kill_before_boot:
                    raise ControllerKilled(f"controller killed as {name} was to boot {image_name}")
                took = name not in self.media_fails
                self.running[name] = (image.identity.image_id if took else self.running[name][0], uuid.uuid4().hex)
                self.boots.append((name, image_name))
                if self.kill_after_boot is not None and len(self.boots) >= self.kill_after_boot:
                    raise ControllerKilled(f"controller killed once {name} came up on {image_name}")
            image_id, boot_id = self.running[name]
            ok = image is None or image_id == image.identity.image_id
            results[name] = ProvisionResult(node=name, ok=ok, state=NodeState.VERIFIED if ok else NodeState.FAILED,
                                            image_id=image_id, old_boot_id=old_boot_id if boot else None,
                                            boot_id=boot_id, kernel="6.8.0-45", driver="550.54.15",
                                            identity={"status": "verified"},
                                            error=None if ok else f"node {name} runs image {image_id!r}: the boot "
                                                                  "media did not take")
        return results


class FakeGate:
    """The wave's gate run (`pytest --gate` on the wave and its control group): writes the summary.json a session
    would, with each node's bus bandwidth; a node running an image in ``slow_images`` measures 30% less."""

    def __init__(self, rack: FakeRack, slow_images: frozenset[str] = frozenset()):
        self.rack = rack
        self.slow = slow_images
        self.runs: list[list[str]] = []

    def __call__(self, reports: Path, handoff: Path) -> int:
        state = SessionState.load(handoff)  # the hand-off the real gate run adopts: the wave and its control
        nodes = sorted(state.nodes)
        self.runs.append(nodes)
        baseline = BaselineRecord(value=180.0, tolerance=0.05)
        metrics, regressed = [], False
        for node in nodes:
            slow = self.rack.running[node][0] in self.slow
            samples = [s * (0.7 if slow else 1.0) for s in BUSBW]
            outcome = "regression" if slow else "pass"
            regressed |= slow
            metrics.append(MetricRecord(
                name="nccl.all_reduce.busbw", unit="GB/s", labels={"size": "67108864", "node": node},
                samples=samples, node=node, baseline=baseline,
                verdict=VerdictRecord(outcome=outcome, reason=f"busbw {outcome}", failed=slow)))
        record = RunRecord(run_id=state.run_id, started_at="2026-03-01T02:00:00+00:00",
                           finished_at="2026-03-01T02:10:00+00:00", rig="lab",
                           nodes=[NodeRecord(name=n, image_id=self.rack.running[n][0]) for n in nodes],
                           metrics=metrics,
                           gate=VerdictRecord(outcome="regression" if regressed else "pass", reason="gate"))
        reports.mkdir(parents=True, exist_ok=True)
        (reports / "summary.json").write_text(record.model_dump_json())
        return int(ExitCode.FAILED if regressed else ExitCode.PASS)


def _rigs(tmp_path: Path) -> Path:
    node = {"bmc": {"url": "https://127.0.0.1:9", "username": "admin", "password": "${HILT_TEST_NO_SUCH_VAR}"},
            "ssh": {"host": "127.0.0.1", "port": 9}, "profile": "sim-4gpu"}
    data = {"default_rig": "lab", "lease_store": f"sqlite://{tmp_path}/leases.sqlite",
            "history": str(tmp_path / "history.sqlite"),
            "images": {name: {"url": f"http://127.0.0.1:9/{name}.iso", "identity": {"image_id": image_id}}
                       for name, image_id in IMAGES.items()},
            "rigs": {"lab": {"nodes": {n: node for n in NODES}}}}
    path = tmp_path / "rigs.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A 3-node rig running the old image, the engine's provisioning and gate run faked, rollouts under tmp."""
    rack = FakeRack({n: IMAGES["old"] for n in NODES})
    gate = FakeGate(rack, slow_images=frozenset())
    monkeypatch.setattr(engine, "provision", rack.provision)
    monkeypatch.setattr(engine, "read_running_images", rack.read_running_images)
    monkeypatch.setattr(Rollout, "_pytest", lambda self, reports, handoff: gate(reports, handoff))
    monkeypatch.setenv("HILT_ROLLOUTS", str(tmp_path / "rollouts"))
    monkeypatch.setenv("HILT_NO_HISTORY", "1")
    return rack, gate, _rigs(tmp_path), StateStore(tmp_path / "rollouts")


def _create(store: StateStore, rigs: Path, tmp_path: Path, **options: str) -> Rollout:
    return Rollout.create(store, rigs_file=rigs, rig="lab", image="new", canary=options.get("canary", "1"),
                          waves=options.get("waves", "100%"), rollback_to=None,
                          on_inconclusive=options.get("on_inconclusive", "stop"),
                          reports_dir=tmp_path / "reports", lease_store=None, lease_wait_s=5, lease_ttl_s=60,
                          suites=None, pytest_args=[], say=lambda _: None)


def _resume(rollout_id: str) -> int:
    """`hilt rollout resume ID`, as an operator types it after the controller died."""
    return CliRunner().invoke(app, ["rollout", "resume", rollout_id], env={"COLUMNS": "200"}).exit_code


def test_resume_after_a_crash_mid_wave_boots_only_the_nodes_that_were_not_booted(lab, tmp_path):
    rack, gate, rigs, store = lab
    rollout = _create(store, rigs, tmp_path)  # canary n1 (control n2, n3), then wave 2: n2, n3
    rack.kill_before_boot = 3  # the canary, then n2 of wave 2: the controller dies before n3 boots
    with pytest.raises(ControllerKilled):
        rollout.run()
    state = store.load(rollout.state.id)
    assert [w.status for w in state.waves] == ["passed", "booting"]
    assert {n: state.nodes[n].status for n in NODES} == {"n1": "new", "n2": "booting", "n3": "booting"}

    rack.kill_before_boot = None
    assert _resume(rollout.state.id) == ExitCode.PASS
    # n2 already ran the new image on a new boot: not booted again; n3 booted once; the canary never again
    assert rack.boots == [("n1", "new"), ("n2", "new"), ("n3", "new")]
    state = store.load(rollout.state.id)
    assert state.status == "passed" and [w.status for w in state.waves] == ["passed", "passed"]
    assert all(state.nodes[n].status == "new" for n in NODES)
    assert all(rack.running[n][0] == IMAGES["new"] for n in NODES)
    assert gate.runs == [["n1", "n2", "n3"], ["n2", "n3"]]  # one gate run per wave (the last has no control)
    assert any("n2 already runs new" in e.what for e in state.events), [e.what for e in state.events]


def test_resume_after_a_crash_in_a_gate_run_gates_that_wave_again_without_a_boot(lab, tmp_path, monkeypatch):
    rack, gate, rigs, store = lab
    rollout = _create(store, rigs, tmp_path, waves="2,3")  # canary n1; wave 2: n2; wave 3: n3

    def gate_then_die(reports: Path, handoff: Path) -> int:
        code = gate(reports, handoff)
        if len(gate.runs) == 2:  # wave 2 was measured; the controller dies before it records the verdict
            raise ControllerKilled("killed in wave 2's gate run")
        return code

    monkeypatch.setattr(Rollout, "_pytest", lambda self, reports, handoff: gate_then_die(reports, handoff))
    with pytest.raises(ControllerKilled):
        rollout.run()
    state = store.load(rollout.state.id)
    assert [w.status for w in state.waves] == ["passed", "gating", "pending"]

    assert _resume(rollout.state.id) == ExitCode.PASS
    # wave 2's node is proven on the new image again without a boot, its gate runs again; wave 3 boots n3
    assert rack.boots == [("n1", "new"), ("n2", "new"), ("n3", "new")]
    assert len(gate.runs) == 4  # canary, wave 2 (interrupted), wave 2 again, wave 3
    assert [w.status for w in store.load(rollout.state.id).waves] == ["passed", "passed", "passed"]


def test_a_regressed_canary_is_rolled_back_to_the_image_it_ran_and_the_control_group_is_not_touched(lab, tmp_path):
    rack, gate, rigs, store = lab
    gate.slow = frozenset({IMAGES["new"]})
    rollout = _create(store, rigs, tmp_path)
    assert rollout.run() == ExitCode.FAILED
    assert rack.boots == [("n1", "new"), ("n1", "old")]  # the canary got the new image, then its own old one
    assert {n: rack.running[n][0] for n in NODES} == {n: IMAGES["old"] for n in NODES}
    state = store.load(rollout.state.id)
    assert state.status == "regression" and state.rollback is not None and state.rollback.ok
    assert state.rollback.nodes == ["n1"]
    assert state.nodes["n1"].status == "rolled_back" and state.nodes["n1"].rollback_image == "old"
    assert {state.nodes[n].status for n in ("n2", "n3")} == {"old"}
    assert "n1 -> old" in state.reason


def test_a_regressed_wave_rolls_back_every_node_that_got_the_image_to_what_each_ran(lab, tmp_path, monkeypatch):
    rack, gate, rigs, store = lab
    rack.running["n3"] = ("img-old-1.4.1", rack.running["n3"][1])  # n3 runs an older image than the others
    with open(tmp_path / "rigs.yaml") as fh:
        data = yaml.safe_load(fh)
    data["images"]["older"] = {"url": "http://127.0.0.1:9/older.iso", "identity": {"image_id": "img-old-1.4.1"}}
    (tmp_path / "rigs.yaml").write_text(yaml.safe_dump(data))
    rollout = _create(store, rigs, tmp_path)  # canary n1 passes; wave 2 (n2, n3) regresses

    def regress_in_wave_2(reports: Path, handoff: Path) -> int:
        gate.slow = frozenset({IMAGES["new"]}) if gate.runs else frozenset()  # the canary passes, wave 2 not
        return gate(reports, handoff)

    monkeypatch.setattr(Rollout, "_pytest", lambda self, reports, handoff: regress_in_wave_2(reports, handoff))
    assert rollout.run() == ExitCode.FAILED
    rolled = sorted(b for b in rack.boots[3:])
    assert rack.boots[:3] == [("n1", "new"), ("n2", "new"), ("n3", "new")]
    assert rolled == [("n1", "old"), ("n2", "old"), ("n3", "older")]  # each node to the image it ran before
    assert {n: rack.running[n][0] for n in NODES} == {"n1": IMAGES["old"], "n2": IMAGES["old"],
                                                      "n3": "img-old-1.4.1"}
    assert sorted(store.load(rollout.state.id).rollback.nodes) == ["n1", "n2", "n3"]


def test_a_rollback_interrupted_by_a_crash_is_finished_by_resume_without_booting_a_node_twice(lab, tmp_path):
    rack, gate, rigs, store = lab
    rack.running["n2"] = ("img-old-1.4.1", rack.running["n2"][1])
    with open(tmp_path / "rigs.yaml") as fh:
        data = yaml.safe_load(fh)
    data["images"]["older"] = {"url": "http://127.0.0.1:9/older.iso", "identity": {"image_id": "img-old-1.4.1"}}
    (tmp_path / "rigs.yaml").write_text(yaml.safe_dump(data))
    gate.slow = frozenset({IMAGES["new"]})
    rollout = _create(store, rigs, tmp_path, canary="2")  # canary n1, n2 (control n3) regresses
    rack.kill_before_boot = 4  # n1 and n2 get the new image, n1 is rolled back; the crash comes before n2's
    with pytest.raises(ControllerKilled):
        rollout.run()
    state = store.load(rollout.state.id)
    assert state.rollback is not None and state.rollback.ok is None
    assert (state.nodes["n1"].status, state.nodes["n2"].status) == ("rolled_back", "rolling_back")

    rack.kill_before_boot = None
    assert _resume(rollout.state.id) == ExitCode.FAILED  # the rollout ends as the regression it was
    assert rack.boots == [("n1", "new"), ("n2", "new"), ("n1", "old"), ("n2", "older")]  # each node once
    state = store.load(rollout.state.id)
    assert state.rollback.ok and state.status == "regression"
    assert {n: rack.running[n][0] for n in NODES} == {"n1": IMAGES["old"], "n2": "img-old-1.4.1",
                                                      "n3": IMAGES["old"]}


def test_a_node_that_came_up_on_its_rollback_image_before_the_crash_is_not_booted_again(lab, tmp_path):
    rack, gate, rigs, store = lab
    gate.slow = frozenset({IMAGES["new"]})
    rollout = _create(store, rigs, tmp_path)  # the canary n1 regresses
    rack.kill_after_boot = 2  # n1's rollback boot came up on the old image; the controller died before it knew
    with pytest.raises(ControllerKilled):
        rollout.run()
    state = store.load(rollout.state.id)
    assert state.rollback is not None and state.rollback.ok is None
    assert state.nodes["n1"].status == "rolling_back" and rack.running["n1"][0] == IMAGES["old"]
    rolled_back_boot = rack.running["n1"][1]

    rack.kill_after_boot = None
    assert _resume(rollout.state.id) == ExitCode.FAILED
    assert rack.boots == [("n1", "new"), ("n1", "old")]  # rolled back once
    state = store.load(rollout.state.id)
    assert state.status == "regression" and state.rollback.ok
    n1 = state.nodes["n1"]
    assert n1.status == "rolled_back" and n1.rollback_boot_id == rolled_back_boot
    assert f"{n1.new_boot_id[:8]} -> {rolled_back_boot[:8]}" in n1.rollback_proof
    assert any("n1 already runs old" in e.what for e in state.events), [e.what for e in state.events]


def test_a_node_on_its_rollback_image_since_before_the_rollback_started_is_booted_by_resume(lab, tmp_path):
    """The canary's boot came up on the image it ran (the boot media did not take): on the old image, on a new
    boot id, before the rollback started. Resume cannot call that boot the rollback's, so it boots the node."""
    rack, gate, rigs, store = lab
    rack.media_fails = {"n1"}
    rollout = _create(store, rigs, tmp_path, on_inconclusive="rollback")
    rack.kill_before_boot = 2  # the controller dies as n1's rollback boot is about to start
    with pytest.raises(ControllerKilled):
        rollout.run()
    state = store.load(rollout.state.id)
    assert state.nodes["n1"].status == "rolling_back" and rack.running["n1"][0] == IMAGES["old"]

    rack.kill_before_boot, rack.media_fails = None, set()
    assert _resume(rollout.state.id) == ExitCode.INCONCLUSIVE
    assert rack.boots == [("n1", "new"), ("n1", "old")]  # the rollback's boot, which the crash prevented
    state = store.load(rollout.state.id)
    assert state.status == "inconclusive" and state.rollback.ok
    assert state.nodes["n1"].status == "rolled_back" and state.nodes["n1"].rollback_boot_id == rack.running["n1"][1]


def test_a_signal_while_waiting_for_the_lease_stops_the_rollout_out_of_the_queue_and_resumable(lab, tmp_path):
    """SIGTERM (a CI job's timeout) while the rollout is queued behind another holder of a node: the wait ends at
    once, out of the queue and holding nothing; the state says why and stays resumable, and resume, once the node
    is free, rolls out as usual. Before: SIGTERM killed the controller in the queue with nothing written (here, the
    test's own handler would have raised in the wait)."""
    rack, gate, rigs, store = lab
    leases = open_store(f"sqlite://{tmp_path}/leases.sqlite")
    held = leases.acquire(["lab/n2"], Holder(user="alice", host="ci-3", pid=4242, purpose="nightly"), ttl_s=600)
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        if "waiting for nodes" in line:  # on_wait runs in the main thread: the signal is handled in the wait
            os.kill(os.getpid(), signal.SIGTERM)

    def unhandled(signum: int, frame: object) -> None:
        raise AssertionError("SIGTERM reached the test's handler: the rollout did not catch it while waiting")

    rollout = Rollout.create(store, rigs_file=rigs, rig="lab", image="new", canary="1", waves="100%",
                             rollback_to=None, on_inconclusive="stop", reports_dir=tmp_path / "reports",
                             lease_store=None, lease_wait_s=600, lease_ttl_s=60, suites=None, pytest_args=[], say=say)
    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        with pytest.raises(LeaseWaitCancelled) as stopped:
            rollout.run()
        assert signal.getsignal(signal.SIGTERM) is unhandled  # put back: later phases behave as before
    finally:
        signal.signal(signal.SIGTERM, previous)
    rid = rollout.state.id
    message = str(stopped.value)
    assert message.startswith(f"rollout {rid}: stopped by SIGTERM after 0 s waiting for rig lab's nodes (lab/n2 "
                              "held by alice@ci-3 pid 4242"), message
    assert message.endswith(f"left the wait queue, nothing leased or booted; `hilt rollout resume {rid}` continues it")
    state = store.load(rid)
    assert state.status == "running" and state.lease_id is None and state.controller is None
    assert state.reason == message
    assert "stopped by SIGTERM while waiting for the lease: nothing leased or booted" in [e.what for e in state.events]
    assert rack.boots == [] and gate.runs == []
    assert [lease.id for lease in leases.list_leases()] == [held.id]  # nothing of the rollout's
    leases.release(held.id)
    # the next request for every node is granted at once: queued behind no one
    later = leases.acquire([f"lab/{n}" for n in NODES], Holder.current(purpose="next"), ttl_s=30)
    leases.release(later.id)
    leases.close()

    assert _resume(rid) == ExitCode.PASS  # resumable, and it goes on as a rollout does
    state = store.load(rid)
    assert state.status == "passed" and rack.boots == [("n1", "new"), ("n2", "new"), ("n3", "new")]
    assert state.reason.startswith("2 waves passed")
