"""Issue 24: what a team hits on its first day, run as typed in this repository (the shipped rigs.yaml and
baselines, default options) on the default simulated rack.

Item 1: a run whose ``-k`` deselects every probe is not a gate; item 4: every error says each thing once;
item 11: `hilt baseline promote` of a multi-node run pools the nodes' samples.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from hilt.exitcodes import ExitCode
from tests.e2e.conftest import ROOT, Session, as_typed

#: a series as the gate names it: ``nccl.all_reduce.busbw{nodes=1,size=67108864}``
SERIES = re.compile(r"[a-z_][a-z0-9_.]*\{[^{}]*\}")
#: things a message says at most once
ONCE = ("hilt baseline promote", "--allow-missing-baseline", "unbaselined", "regression", "inconclusive",
        "gate: not run")


def repeated(message: str) -> list[str]:
    """What one line of a message says more than once (a series, a remedy, an outcome)."""
    said = SERIES.findall(message)
    twice = sorted({s for s in said if said.count(s) > 1})
    return twice + [phrase for phrase in ONCE if message.count(phrase) > 1]


def summary(session: Session) -> dict:
    return json.loads((session.reports / "summary.json").read_text())


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    if os.geteuid() != 0:
        pytest.fail("the simulated rack needs root (network namespaces); run the tests as root")
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def nccl_run(state, tmp_path_factory) -> Session:
    """``pytest suites --rig sim --image good -k test_nccl_tests``: the per-node nccl-tests probe on 4 nodes."""
    return as_typed(state, "pytest", "suites", "--rig", "sim", "--image", "good", "-k", "test_nccl_tests",
                    reports=tmp_path_factory.mktemp("nccl"))


def test_deselected_probes_do_not_make_a_run_a_gate(state, tmp_path, nccl_run):
    trust = as_typed(state, "pytest", "suites", "--rig", "sim", "--image", "good", "-k", "trust",
                     reports=tmp_path / "trust")
    assert trust.code == ExitCode.PASS, trust.output[-4000:]
    assert re.search(r"\b20 passed\b", trust.output), trust.output[-2000:]
    last = [line for line in trust.output.splitlines() if line.startswith("hilt: ")][-1]
    assert last.startswith("hilt: gate: not run"), last
    assert trust.output.count("gate: not run") == 1, trust.output[-4000:]  # said once, at the end
    assert "not measured" not in trust.output  # a run that is not a gate owes no entry
    assert summary(trust)["gate"]["outcome"] == "not_run"
    # a run that keeps a probe is still a gate (the good image on 4 of the 13 gated entries: inconclusive)
    s = summary(nccl_run)
    assert s["gate"]["outcome"] == "inconclusive" and "gated: 4 of 13 entries measured" in s["gate"]["reason"]
    assert nccl_run.code == ExitCode.INCONCLUSIVE, nccl_run.output[-4000:]


def test_every_gate_error_says_each_thing_once(state, tmp_path):
    regressed = as_typed(state, "pytest", "suites", "--rig", "sim", "--image", "regressed", "-k",
                         "test_nccl_tests and not across", reports=tmp_path / "regressed")
    assert regressed.code == ExitCode.FAILED, regressed.output[-4000:]
    # a platform without baselines yet: every measured series is unbaselined, and the message says what to do
    (tmp_path / "no-baselines").mkdir()
    unbaselined = as_typed(state, "pytest", "suites", "--rig", "sim", "-k", "test_nccl_tests and not across",
                           "--baselines-dir", str(tmp_path / "no-baselines"), reports=tmp_path / "unbaselined")
    assert unbaselined.code == ExitCode.INCONCLUSIVE, unbaselined.output[-4000:]
    messages = []
    for session in (regressed, unbaselined):
        s = summary(session)
        messages += [t["message"] for t in s["tests"] if t["message"]]
        messages += [m["verdict"]["reason"] for m in s["metrics"] if m["verdict"]]
        messages += [e["why"] for e in s["coverage"]["entries"] if e["why"]]
        messages += [line for line in session.output.splitlines() if line.startswith(("FAILED", "ERROR"))]
    lines = [line for message in messages for line in message.splitlines()]
    assert any("unbaselined" in line and "hilt baseline promote" in line for line in lines), messages[:5]
    assert any("regression" in line for line in lines), messages[:5]
    doubled = {line: repeated(line) for line in lines if repeated(line)}
    assert not doubled, json.dumps(doubled, indent=1)[:4000]


def test_promote_of_a_four_node_run_pools_the_nodes_samples(state, tmp_path, nccl_run):
    repo = tmp_path / "repo"  # the shipped rigs.yaml and baselines, copied: promote writes the baselines
    repo.mkdir()
    shutil.copy(ROOT / "rigs.yaml", repo / "rigs.yaml")
    shutil.copytree(ROOT / "baselines", repo / "baselines")
    promoted = as_typed(state, "hilt", "baseline", "promote", str(nccl_run.reports), "--metric",
                        "nccl.all_reduce.busbw", cwd=repo)
    assert promoted.code == ExitCode.PASS, promoted.output[-4000:]
    measured = [m for m in summary(nccl_run)["metrics"] if m["name"] == "nccl.all_reduce.busbw"
                and m["labels"]["size"] == "67108864"]
    assert sorted(m["node"] for m in measured) == ["node1", "node2", "node3", "node4"]
    pooled = [s for m in sorted(measured, key=lambda m: m["node"]) for s in m["samples"]]
    entries = yaml.safe_load((repo / "baselines" / "sim-4gpu.yaml").read_text())["entries"]
    entry = next(e for e in entries if e["metric"] == "nccl.all_reduce.busbw" and e["labels"]["size"] == "67108864")
    assert entry["samples"] == pooled and entry["value"] == pytest.approx(sum(pooled) / len(pooled))
    # a size without an entry yet is added once, for the series (no node label), from every node
    added = [e for e in entries if e["metric"] == "nccl.all_reduce.busbw" and e["labels"]["size"] == "1048576"]
    assert len(added) == 1 and "node" not in added[0]["labels"] and len(added[0]["samples"]) == len(pooled)
