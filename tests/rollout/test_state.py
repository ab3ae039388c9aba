"""The rollout's state file: written whole or not at all, read back the same, refused with a clear error."""

from __future__ import annotations

import json
import os

import pytest

from hilt.errors import ConfigError
from hilt.rollout.state import (
    NodeImage,
    RolloutNode,
    RolloutState,
    StateStore,
    Wave,
    check_id,
    new_rollout_id,
    rollouts_dir,
    utc_now,
)


def _state(rollout_id: str = "ro-20260301T020000-abcdef") -> RolloutState:
    state = RolloutState(id=rollout_id, rig="sim", image="good", image_config={"url": "http://x/good.tar"},
                         rigs_file="/x/rigs.yaml", canary="1", waves_option="100%", reports_dir="/x/reports",
                         created_at=utc_now(),
                         waves=[Wave(index=1, nodes=["node1"], control=["node2"]),
                                Wave(index=2, nodes=["node2"], control=[])])
    state.nodes["node1"] = RolloutNode(name="node1", wave=1, before=NodeImage(image="old", boot_id="b1"))
    state.nodes["node2"] = RolloutNode(name="node2", wave=2, before=NodeImage(image="old", boot_id="b2"))
    return state


def test_save_and_load_round_trip(tmp_path):
    store = StateStore(tmp_path)
    state = _state()
    state.nodes["node1"].status = "new"
    state.event("wave 1 booted")
    path = store.save(state)
    assert path == tmp_path / state.id / "state.json"
    loaded = store.load(state.id)
    assert loaded == state
    assert loaded.updated_at is not None
    assert store.ids() == [state.id]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_failed_write_leaves_the_previous_state(tmp_path, monkeypatch):
    store = StateStore(tmp_path)
    state = _state()
    store.save(state)
    state.nodes["node1"].status = "booting"

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.save(state)
    assert store.load(state.id).nodes["node1"].status == "old"


def test_nodes_that_may_run_the_new_image_are_the_ones_a_rollback_covers():
    state = _state()
    state.nodes["node1"].status = "booting"  # a boot was started: it may have taken
    assert state.nodes_on_new() == ["node1"]
    state.nodes["node1"].status = "rolled_back"
    assert state.nodes_on_new() == []


def test_unknown_rollout_names_the_directory_and_recent_ids(tmp_path):
    store = StateStore(tmp_path)
    store.save(_state())
    with pytest.raises(ConfigError, match=r"no rollout 'ro-nope' in .* \(recent: ro-20260301T020000-abcdef"):
        store.load("ro-nope")


def test_a_broken_state_file_is_refused_naming_file_and_field(tmp_path):
    store = StateStore(tmp_path)
    state = _state()
    path = store.save(state)
    data = json.loads(path.read_text())
    data["nodes"]["node1"]["status"] = "sideways"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"state.json: nodes.node1.status: "):
        store.load(state.id)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"state.json: line 1: not JSON"):
        store.load(state.id)


@pytest.mark.parametrize("bad", ["../etc", "a/b", ".hidden", ""])
def test_ids_cannot_leave_the_rollouts_directory(bad):
    with pytest.raises(ConfigError, match="rollout id"):
        check_id(bad)


def test_new_ids_are_valid_and_distinct():
    ids = {new_rollout_id() for _ in range(20)}
    assert len(ids) == 20 and all(check_id(i) for i in ids)


def test_rollouts_live_in_the_state_directory_not_reports(tmp_path):
    assert rollouts_dir({"HILT_ROLLOUTS": str(tmp_path / "r")}) == tmp_path / "r"
    assert rollouts_dir({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "hilt" / "rollouts"
