"""`hilt rollout status/resume/abort` on a saved state, and the option errors of `hilt rollout` (no rack)."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from typer.testing import CliRunner

from hilt.cli import app
from hilt.rollout.state import Check, NodeImage, RolloutNode, RolloutState, StateStore, Wave, utc_now


@pytest.fixture
def hilt(tmp_path):
    runner = CliRunner()

    def invoke(*args: str):  # noqa: ANN202
        return runner.invoke(app, list(args), env={"COLUMNS": "200", "HILT_ROLLOUTS": str(tmp_path / "rollouts")})

    return invoke


def _saved(tmp_path, status: str = "regression", pid: int = 999_999_999) -> RolloutState:
    state = RolloutState(id="ro-20260301T020000-abcdef", rig="sim", image="regressed",
                         image_config={"url": "http://x/r.tar"}, rigs_file=str(tmp_path / "rigs.yaml"), canary="1",
                         waves_option="100%", reports_dir=str(tmp_path / "reports"), created_at=utc_now(),
                         status=status, exit_code=1 if status == "regression" else None,
                         reason="canary regressed" if status == "regression" else None,
                         controller={"host": os.uname().nodename, "pid": pid})
    state.waves = [Wave(index=1, nodes=["node1"], control=["node2"], status="regression", run_id="r1",
                        checks=[Check(metric="nccl.all_reduce.busbw{size=67108864}", node="node1",
                                      against="control", outcome="regression", reason="-39% vs control")]),
                   Wave(index=2, nodes=["node2"], control=[])]
    state.nodes = {"node1": RolloutNode(name="node1", wave=1, before=NodeImage(image="good"), status="rolled_back",
                                        rollback_image="good", rollback_from="running at start",
                                        rollback_proof="boot id a -> b, image hilt-sim-good, identity verified"),
                   "node2": RolloutNode(name="node2", wave=2, before=NodeImage(image="good"))}
    StateStore(tmp_path / "rollouts").save(state)
    return state


def test_status_shows_waves_nodes_and_the_regression(hilt, tmp_path):
    state = _saved(tmp_path)
    result = hilt("rollout", "status", state.id)
    assert result.exit_code == 0, result.output
    assert f"rollout {state.id}: REGRESSION (exit 1): regressed on rig sim" in result.output
    assert "nccl.all_reduce.busbw{size=67108864}** on **node1** vs control" in result.output
    assert "| node1 | 1 | good | good (rolled back) |" in result.output
    data = json.loads(hilt("rollout", "status", state.id, "--json").output)
    assert data["id"] == state.id and data["controller_alive"] is False
    assert data["waves"][0]["checks"][0]["against"] == "control"
    assert data["state_file"].endswith(f"{state.id}/state.json")


def test_a_finished_rollout_is_neither_resumed_nor_aborted(hilt, tmp_path):
    state = _saved(tmp_path)
    result = hilt("rollout", "resume", state.id)
    assert result.exit_code == 4 and "is finished (regression); nothing to resume" in result.output
    result = hilt("rollout", "abort", state.id, "--why", "x")
    assert result.exit_code == 4 and "nothing to abort" in result.output


def test_a_running_controller_is_not_resumed_behind_its_back(hilt, tmp_path):
    state = _saved(tmp_path, status="running", pid=os.getppid())
    result = hilt("rollout", "resume", state.id)
    assert result.exit_code == 4 and f"is running (pid {os.getppid()}" in result.output
    assert "controller: pid" in hilt("rollout", "status", state.id).output


def test_start_refuses_bad_options_before_touching_anything(hilt, tmp_path):
    node = {"bmc": {"url": "http://127.0.0.1:9", "username": "admin", "password": "${HILT_TEST_NO_SUCH_VAR}"},
            "ssh": {"host": "127.0.0.1", "port": 9}, "profile": "sim-4gpu"}
    rigs = tmp_path / "rigs.yaml"
    rigs.write_text(yaml.safe_dump({"default_rig": "lab", "lease_store": f"sqlite://{tmp_path}/leases.sqlite",
                                    "images": {"new": {"url": "http://x/new.tar"}},
                                    "rigs": {"lab": {"nodes": {"a": node, "b": node}}}}))
    cases = [
        (["--image", "nope"], "unknown image 'nope'"),
        (["--image", "new", "--canary", "2"], "--canary 2: that is 2 of the rig's 2 nodes"),
        (["--image", "new", "--rollback-to", "nope"], "unknown image 'nope'"),
        (["--image", "new", "--on-inconclusive", "maybe"], "--on-inconclusive 'maybe'"),
        ([], "--image is required"),
    ]
    for args, message in cases:
        result = hilt("rollout", "--rigs-file", str(rigs), *args)
        assert result.exit_code == 4, (args, result.output)
        assert message in result.output, (args, result.output)
    assert not (tmp_path / "rollouts").exists()  # nothing planned, nothing leased


def _rig_with_node_b_in_maintenance(tmp_path):  # noqa: ANN202
    """A two-node rig whose node b is in maintenance: a rollout stops right after planning, nothing booted."""
    from hilt.lease import open_store

    node = {"bmc": {"url": "http://127.0.0.1:9", "username": "admin", "password": "${HILT_TEST_NO_SUCH_VAR}"},
            "ssh": {"host": "127.0.0.1", "port": 9}, "profile": "sim-4gpu"}
    url = f"sqlite://{tmp_path}/leases.sqlite"
    rigs = tmp_path / "rigs.yaml"
    rigs.write_text(yaml.safe_dump({"default_rig": "lab", "lease_store": url,
                                    "images": {"new": {"url": "http://x/new.tar"}},
                                    "rigs": {"lab": {"nodes": {"a": node, "b": node}}}}))
    with open_store(url) as store:
        store.set_health("lab/b", "maintenance", why="psu swap", by="ops")
    return rigs, url


def test_a_node_in_maintenance_stops_the_rollout_before_anything_is_touched(hilt, tmp_path):
    from hilt.lease import open_store

    rigs, url = _rig_with_node_b_in_maintenance(tmp_path)
    result = hilt("rollout", "--rigs-file", str(rigs), "--image", "new", "--reports", str(tmp_path / "reports"))
    assert result.exit_code == 4, result.output
    assert "node b is maintenance (psu swap): a rollout needs every node of the rig" in result.output
    (rollout_id,) = StateStore(tmp_path / "rollouts").ids()
    state = StateStore(tmp_path / "rollouts").load(rollout_id)
    assert state.status == "aborted" and state.reason.startswith("not started: ")
    with open_store(url) as store:
        assert store.list_leases() == []  # nothing held


def test_the_plan_keeps_suites_as_an_absolute_path_so_resume_works_from_anywhere(hilt, tmp_path, monkeypatch):
    _rig_with_node_b_in_maintenance(tmp_path)  # stops the rollout right after planning: nothing is booted
    (tmp_path / "team-suites").mkdir()
    monkeypatch.chdir(tmp_path)
    result = hilt("rollout", "--rigs-file", "rigs.yaml", "--image", "new", "--suites", "team-suites::test_x")
    assert result.exit_code == 4, result.output
    (rollout_id,) = StateStore(tmp_path / "rollouts").ids()
    assert StateStore(tmp_path / "rollouts").load(rollout_id).suites == f"{tmp_path / 'team-suites'}::test_x"


def test_a_second_controller_of_one_rollout_is_refused_while_the_first_runs(hilt, tmp_path):
    """Two `resume`s at once both saw the old controller dead and would walk the waves from the same state."""
    state = _saved(tmp_path, status="running")  # its recorded controller pid is long gone
    store = StateStore(tmp_path / "rollouts")
    with store.claim(state.id):  # the first resume, running
        for command in (("resume", state.id), ("abort", state.id, "--why", "x")):
            result = hilt("rollout", *command)
            assert result.exit_code == 4, result.output
            assert f"rollout {state.id} is being run by another hilt process on this host" in result.output
    assert store.load(state.id).events == state.events  # nothing written by the refused ones
