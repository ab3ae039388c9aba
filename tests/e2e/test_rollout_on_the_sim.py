"""Issue 24 items 2 and 3, and its acceptance: "Try a rollout on the sim" (docs/rollout.md) run as it is written
there, in a checkout of this repository (the shipped rigs.yaml, baselines and suites; default options).

`hilt sim up --image good` leaves every node on good; a run uses that sim and leaves it up; the regressed image is
caught on the canary (against the baseline and the control group) and rolled back; the good image reaches every
node in two waves, the second of which measures a 3-node lease that no baseline names (not judged in a rollout);
`hilt sim down`. Slow (each wave's gate runs every reference suite): one test.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

from tests.support.sessions import ROOT, Session, as_typed

SHIPPED = ("rigs.yaml", "baselines", "suites", "fixtures", "conftest.py", "pyproject.toml")


def documented_commands() -> list[tuple[str, int]]:
    """The commands of docs/rollout.md's "Try a rollout on the sim", each with the exit code its comment says."""
    text = (ROOT / "docs" / "rollout.md").read_text()
    section = text.split("## Try a rollout on the sim", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        command, _, comment = line.partition("#")
        if command.strip():
            said = re.search(r"\bexit (\d+)", comment)
            commands.append((command.strip(), int(said.group(1)) if said else 0))
    return commands


def _rollout_id(output: str) -> str:
    return next(word for line in output.splitlines() for word in line.split() if word.startswith("ro-")).rstrip(":")


def _running(repo: Path) -> dict[str, dict]:
    """What each node of the running sim runs now (image id, boot id), read over SSH."""
    from hilt.provision.boot import read_running_images
    from hilt.rig.config import load_inventory
    from hilt.rollout.engine import live_rig

    return read_running_images(live_rig(load_inventory(repo / "rigs.yaml"), "sim").rig("sim").nodes)


def test_try_a_rollout_on_the_sim_as_documented(tmp_path):
    commands = documented_commands()
    assert [c.split()[:2] for c, _ in commands] == [["hilt", "sim"], ["pytest", "suites"], ["hilt", "rollout"],
                                                   ["hilt", "rollout"], ["hilt", "sim"]], commands
    repo = tmp_path / "checkout"
    repo.mkdir()
    for name in SHIPPED:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, repo / name)
    state = tmp_path / "state"
    runs: list[Session] = []
    before: dict[str, dict] = {}
    try:
        for command, expected in commands:
            if command.startswith("hilt rollout"):
                before = _running(repo)
            run = as_typed(state, *shlex.split(command), cwd=repo, timeout=1500)
            runs.append(run)
            assert run.code == expected, f"{command}: exit {run.code}, documented {expected}\n{run.output[-6000:]}"
            if command.startswith("hilt sim up"):
                assert "good runs on node1, node2, node3, node4, each verified" in run.output
                assert {n: r["image_id"] for n, r in _running(repo).items()} == dict.fromkeys(
                    ("node1", "node2", "node3", "node4"), "hilt-sim-good")
            if command.startswith("pytest"):
                last = [line for line in run.output.splitlines() if line.startswith("hilt: ")][-1]
                assert last.startswith("hilt: gate: not run"), run.output[-2000:]
                assert "sim 'sim' is already running" not in run.output
                assert _running(repo), "the run stopped the sim that `hilt sim up` started"
            if "--image regressed" in command:
                _caught_and_rolled_back(repo, state, run, before)
            if "--image good" in command and command.startswith("hilt rollout"):
                _reached_every_node(repo, state, run, before)
    finally:
        if not runs or runs[-1].output.find("sim sim: down") < 0:
            as_typed(state, "hilt", "sim", "down", cwd=repo)
    assert "sim sim: down" in runs[-1].output


def _state(state: Path, output: str) -> dict:
    return json.loads((state / "hilt" / "rollouts" / _rollout_id(output) / "state.json").read_text())


def _caught_and_rolled_back(repo: Path, state: Path, run: Session, before: dict[str, dict]) -> None:
    rollout = _state(state, run.output)
    assert rollout["status"] == "regression"
    canary, wave2 = rollout["waves"]
    assert canary["status"] == "regression" and wave2["status"] == "pending"
    failing = {(c["metric"].split("{")[0], c["node"], c["against"]) for c in canary["checks"]
               if c["outcome"] == "regression"}
    assert {("nccl.all_reduce.busbw", "node1", "baseline"), ("nccl.all_reduce.busbw", "node1", "control")} <= failing, \
        json.dumps(canary["checks"], indent=1)
    # the canary got its previous image back, verified as a boot; the other three were never touched
    after = _running(repo)
    assert after["node1"]["image_id"] == before["node1"]["image_id"] == "hilt-sim-good"
    assert after["node1"]["boot_id"] not in (before["node1"]["boot_id"], rollout["nodes"]["node1"]["new_boot_id"])
    assert rollout["nodes"]["node1"]["status"] == "rolled_back"
    assert "identity verified" in rollout["nodes"]["node1"]["rollback_proof"]
    assert {n: after[n]["boot_id"] for n in ("node2", "node3", "node4")} == \
        {n: before[n]["boot_id"] for n in ("node2", "node3", "node4")}
    assert rollout["rollback"]["ok"] is True and rollout["rollback"]["nodes"] == ["node1"]
    summary = (repo / "reports" / "rollout.md").read_text()
    assert "REGRESSION" in summary and "nccl.all_reduce.busbw" in summary and "node1 -> good" in summary
    # the canary wave is a run in the history (the state directory's, as rigs.yaml says), tagged with the wave
    from hilt.history.open import open_history

    tagged = [r.rollout for r in open_history(state / "hilt" / "history.sqlite").runs() if r.rollout]
    assert [(t["id"], t["wave"]) for t in tagged] == [(rollout["id"], 1)]


def _reached_every_node(repo: Path, state: Path, run: Session, before: dict[str, dict]) -> None:
    rollout = _state(state, run.output)
    assert rollout["status"] == "passed"
    assert [(w["nodes"], w["status"]) for w in rollout["waves"]] == [(["node1"], "passed"),
                                                                    (["node2", "node3", "node4"], "passed")]
    assert any(c["against"] == "control" and c["outcome"] == "pass" for c in rollout["waves"][0]["checks"])
    after = _running(repo)
    assert all(after[n]["image_id"] == "hilt-sim-good" and after[n]["boot_id"] != before[n]["boot_id"]
               for n in after), after
    # item 2: wave 2's 3-node lease-wide all-reduce ran and was recorded, not judged (no baseline names 3 nodes)
    wave2 = json.loads((Path(rollout["waves"][1]["reports"]) / "summary.json").read_text())
    lease = [m for m in wave2["metrics"] if m["node"] is None and m["name"] == "torch.all_reduce.busbw"]
    assert lease and all(m["labels"]["nodes"] == "3" and not m["verdict"]["gated"] for m in lease), lease
    assert not [t for t in wave2["tests"] if t["outcome"] == "error"], wave2["tests"]
