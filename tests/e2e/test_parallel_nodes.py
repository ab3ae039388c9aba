"""Nodes in parallel under xdist: different nodes side by side, one node never twice at once, lease-wide alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hilt.exitcodes import ExitCode
from tests.support.sessions import ROOT, run_suites, session_env

SESSION = "tests/e2e/sessions/session_parallel.py"


def _intervals(reports: Path) -> list[tuple[str, str, int, int]]:
    """(test, node, start, stop) of every test, from the Allure results the run wrote (milliseconds)."""
    found = []
    for path in (reports / "allure-results").glob("*-result.json"):
        result = json.loads(path.read_text())
        params = {p["name"]: p["value"].strip("'") for p in result.get("parameters", [])}
        found.append((result["name"], params.get("node", "*lease*"), result["start"], result["stop"]))
    return found


def _overlap(a: tuple, b: tuple) -> bool:
    return a[2] < b[3] and b[2] < a[3]


def _pairs(intervals: list) -> list[tuple]:
    return [(a, b) for i, a in enumerate(intervals) for b in intervals[i + 1:]]


def test_hilt_run_on_four_nodes_overlaps_nodes_never_one_node(sim_rig):
    rigs = sim_rig(nodes=4)
    # `hilt run` is a release gate; these tests measure nothing, so the rig's baselines gate nothing here
    (rigs.parent / "no-baselines").mkdir()
    rigs.write_text(rigs.read_text().replace(f"baselines_dir: {ROOT / 'baselines'}", "baselines_dir: no-baselines"))
    reports = rigs.parent / "reports"
    hilt = [sys.executable, "-c", "from hilt.cli import main; main()"]
    proc = subprocess.run([*hilt, "run", "--suites", SESSION, "--rigs-file", str(rigs), "--reports", str(reports),
                           "--allow-ungated"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=session_env(HILT_NO_HISTORY="1"))
    output = proc.stdout + proc.stderr
    assert proc.returncode == ExitCode.PASS, output[-4000:]
    assert "4 workers" in output, output[-4000:]  # hilt run took one xdist worker per leased node
    intervals = _intervals(reports)
    assert len(intervals) == 9, intervals
    per_node = [i for i in intervals if i[1] != "*lease*"]
    lease_wide = [i for i in intervals if i[1] == "*lease*"]
    assert not [p for p in _pairs(per_node) if p[0][1] == p[1][1] and _overlap(*p)], "one node ran two tests at once"
    assert [p for p in _pairs(per_node) if p[0][1] != p[1][1] and _overlap(*p)], "the nodes ran one after another"
    assert not [(a, b) for a in lease_wide for b in per_node if _overlap(a, b)], "a lease-wide test ran beside others"


def test_two_workers_running_every_test_never_share_a_node(sim_rig):
    """``--dist each`` hands every test to both workers at once: only the node lock keeps them apart."""
    session = run_suites(sim_rig(nodes=2), "--rig", "sim", "-n", "2", "--dist", "each", suites=SESSION)
    assert session.code == ExitCode.PASS, session.output[-4000:]
    intervals = _intervals(session.reports)
    assert len(intervals) == 10, intervals
    same_node = [p for p in _pairs(intervals) if p[0][1] == p[1][1] and _overlap(*p)]
    assert not same_node, f"two tests shared a node: {same_node}"
    lease_wide = [i for i in intervals if i[1] == "*lease*"]
    assert not [(a, b) for a in lease_wide for b in intervals if a is not b and _overlap(a, b)]
