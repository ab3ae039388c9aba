"""A whole session against the simulated rack: reserve, boot, suites, gate, reports, release."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from hilt.exitcodes import ExitCode
from hilt.lease import open_store
from tests.support.sessions import run_suites


def test_good_image_under_xdist_boots_each_node_once(sim_rig):
    rigs = sim_rig(nodes=4)
    session = run_suites(rigs, "-n", "2")
    assert session.code == ExitCode.PASS, session.output[-4000:]
    for node in ("node1", "node2", "node3", "node4"):
        boots = re.findall(rf"hilt: {node}: booting", session.output)
        assert len(boots) == 1, f"{node} booted {len(boots)} times"
    junit = ET.parse(session.reports / "junit.xml").getroot()
    cases = junit.findall(".//testcase")
    assert len(cases) == 8 and not junit.findall(".//failure") and not junit.findall(".//error")
    props = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert props["hilt.rig"] == "sim" and props["hilt.node.node3.image_id"] == "hilt-sim-good"
    summary = json.loads((session.reports / "summary.json").read_text())
    # boot checks only: not a release gate, so its verdict follows its tests and says so (issue 13)
    assert summary["gate"]["outcome"] == "not_run" and summary["exit_code"] == 0
    assert summary["gate"]["reason"].startswith("gate: not run")
    assert all(n["booted"] for n in summary["nodes"])
    assert open_store(f"sqlite:///{rigs.parent / 'leases.sqlite'}").list_leases() == []


def test_broken_image_says_which_node_did_not_come_up_and_releases(sim_rig):
    rigs = sim_rig(nodes=2)
    session = run_suites(rigs, "--image", "broken", "--gate")
    assert session.code == ExitCode.INCONCLUSIVE, session.output[-4000:]
    assert re.search(r"node node1 did not come up within \d+ s", session.output)
    junit = ET.parse(session.reports / "junit.xml").getroot()
    assert junit.findall(".//error") and not junit.findall(".//failure")
    summary = json.loads((session.reports / "summary.json").read_text())
    assert summary["gate"]["outcome"] == "inconclusive"
    store = open_store(f"sqlite:///{rigs.parent / 'leases.sqlite'}")
    assert store.list_leases() == []
    assert store.health("sim/node1").state == "unknown"


def test_regressed_image_still_boots(sim_rig):
    session = run_suites(sim_rig(nodes=1), "--image", "regressed")
    assert session.code == ExitCode.PASS, session.output[-4000:]


def test_one_node_that_never_boots_errors_its_tests_while_the_others_run(sim_rig):
    rigs = sim_rig(nodes=2)
    rigs.write_text(rigs.read_text().replace("profile: sim-4gpu}", "profile: sim-4gpu, "
                                             "faults: {node1: never_boot}}"))
    session = run_suites(rigs, "--gate")
    assert session.code == ExitCode.INCONCLUSIVE, session.output[-4000:]
    junit = ET.parse(session.reports / "junit.xml").getroot()
    by_node = {}
    for case in junit.iter("testcase"):
        node = case.get("name").rsplit("[", 1)[1].rstrip("]")
        by_node.setdefault(node, []).append(case)
    assert all(case.find("error") is not None for case in by_node["node1"])
    assert all(case.find("error") is None and case.find("failure") is None for case in by_node["node2"])
    message = by_node["node1"][0].find("error").get("message")
    assert "node node1 did not come up within 12 s" in message
    assert "serial console" in message or "BMC" in message
    # each errored test says hilt's message, not a traceback through hilt's fixtures (one per test, all alike)
    errors = session.output.count("ERROR at setup of ")
    assert errors == len(by_node["node1"]), session.output[-4000:]
    assert session.output.count("E   hilt.errors.NodeError: node node1 did not come up") == errors
    assert "def _usable_node" not in session.output and "hilt/pytestplugin/rig.py:" not in session.output
    summary = json.loads((session.reports / "summary.json").read_text())
    assert summary["gate"]["outcome"] == "inconclusive"
    assert open_store(f"sqlite:///{rigs.parent / 'leases.sqlite'}").health("sim/node1").state == "unknown"
    assert open_store(f"sqlite:///{rigs.parent / 'leases.sqlite'}").health("sim/node2").state == "good"
