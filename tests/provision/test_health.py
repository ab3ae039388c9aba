"""Node health across sessions: a node that never comes up is `unknown`, then `bad` and left out, until a
person sets it `good` again (LAVA's device health). Real sessions (RigSession) on a 2-node sim, sqlite leases.
"""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from hilt.cli import app
from hilt.lease import open_store
from hilt.session.rig_session import RigSession
from tests.support.sim import start_sim


@pytest.fixture(scope="module")
def rig(request, tmp_path_factory):
    """rigs.yaml holding the sim's nodes, with a short boot timeout; the sim outlives the sessions."""
    workdir = tmp_path_factory.mktemp("health")
    sim = start_sim(request, workdir / "sim", name="tprovh", subnet=232, nodes=2)
    data = sim.inventory.model_dump(mode="json", exclude={"source"})
    data["images"]["good"]["boot_timeout_s"] = 5.0
    data.update(default_rig="sim", lease_store=f"sqlite:///{workdir / 'leases.sqlite'}", health={"bad_after": 3})
    data["rigs"]["sim"]["default_image"] = "good"
    rigs = workdir / "rigs.yaml"
    rigs.write_text(yaml.safe_dump(data, sort_keys=False))
    return sim, rigs, data["lease_store"]


def session(rigs, store_url, tmp_path):
    s = RigSession(rigs, "sim", None, boot=True, reports_dir=tmp_path, lease_store=store_url)
    try:
        return s.start()
    finally:
        s.finish()


def test_node_never_up_goes_unknown_then_bad_then_excluded_until_set_good(rig, tmp_path):
    sim, rigs, store_url = rig
    sim.control.set_fault("node1", "never_boot")
    store = open_store(store_url)
    try:
        for attempt in (1, 2, 3):
            state = session(rigs, store_url, tmp_path / f"s{attempt}")
            assert state.nodes["node2"]["ok"], state.nodes["node2"]["error"]
            failed = state.nodes["node1"]
            assert not failed["ok"] and failed["error"].startswith("node node1 did not come up within 5 s")
            health = store.health("sim/node1")
            assert (health.state.value, health.consecutive_failures) == (
                ("unknown", attempt) if attempt < 3 else ("bad", 3))
            assert failed["evidence"]["health"] == health.state.value
        assert store.health("sim/node2").state.value == "good"
        history = store.health_history("sim/node1")
        assert [t.to_state.value for t in reversed(history)] == ["unknown", "unknown", "bad"]
        assert all(t.session and t.reason for t in history)

        sim.control.clear_faults()  # repaired, but nobody said so: a bad node stays out
        state = session(rigs, store_url, tmp_path / "s4")
        assert "node1" not in state.nodes and "bad" in state.excluded["node1"]
        assert "hilt nodes set-health sim/node1 good" in state.excluded["node1"]
        assert state.nodes["node2"]["ok"]

        cli = CliRunner().invoke(app, ["nodes", "set-health", "sim/node1", "good", "--why", "reseated the DIMM",
                                       "--lease-store", store_url])
        assert cli.exit_code == 0 and "sim/node1 is now good: reseated the DIMM" in cli.output, cli.output
        assert store.health("sim/node1").state.value == "good"
        person = store.health_history("sim/node1")[0]
        assert (person.from_state.value, person.to_state.value, person.reason) == ("bad", "good", "reseated the DIMM")

        state = session(rigs, store_url, tmp_path / "s5")
        assert state.excluded == {} and state.nodes["node1"]["ok"], state.nodes["node1"]["error"]
    finally:
        store.close()
