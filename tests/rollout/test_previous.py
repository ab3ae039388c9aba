"""`--rollback-to previous`: each node's image in the newest passed run of the history, named through rigs.yaml."""

from __future__ import annotations

import yaml

from hilt.history.open import open_history
from hilt.record.run_record import NodeRecord, RunRecord, VerdictRecord
from hilt.rig.config import parse_inventory
from hilt.rollout.previous import image_name_of, last_passed_images


def _inventory(tmp_path):
    raw = {
        "default_rig": "r",
        "history": str(tmp_path / "history.sqlite"),
        "images": {name: {"url": f"http://x/{name}.tar", "identity": {"image_id": f"img-{name}"}}
                   for name in ("v1", "v2", "v3")},
        "rigs": {"r": {"nodes": {}}},
    }
    return parse_inventory(yaml.safe_dump(raw), source="rigs.yaml", base_dir=tmp_path)


def _run(run_id: str, at: str, gate: str, nodes: dict[str, str], rig: str = "r") -> RunRecord:
    return RunRecord(run_id=run_id, started_at=at, rig=rig, gate=VerdictRecord(outcome=gate, reason="x"),
                     nodes=[NodeRecord(name=n, image_id=i) for n, i in nodes.items()])


def test_the_newest_passed_run_names_each_nodes_image(tmp_path):
    inventory = _inventory(tmp_path)
    history = open_history(tmp_path / "history.sqlite")
    history.append(_run("a", "2026-03-01T01:00:00Z", "pass", {"n1": "img-v1", "n2": "img-v1"}))
    history.append(_run("b", "2026-03-02T01:00:00Z", "pass", {"n1": "img-v2"}))
    history.append(_run("c", "2026-03-03T01:00:00Z", "regression", {"n1": "img-v3", "n2": "img-v3"}))
    history.append(_run("d", "2026-03-04T01:00:00Z", "pass", {"n1": "img-v3"}, rig="other"))
    history.append(_run("e", "2026-03-05T01:00:00Z", "pass", {"n2": "img-unknown"}))
    assert last_passed_images(inventory, "r") == {"n1": "v2", "n2": "v1"}


def test_an_image_id_names_an_image_only_when_one_image_has_it(tmp_path):
    inventory = _inventory(tmp_path)
    assert image_name_of(inventory, "img-v2") == "v2"
    assert image_name_of(inventory, "img-nope") is None
    assert image_name_of(inventory, None) is None


def test_no_history_is_no_previous_image(tmp_path):
    assert last_passed_images(_inventory(tmp_path), "r") == {}
