"""The run collector records what the fixtures said (node, profile, typed regression); it does not parse test ids
or messages (issue 13 failures 3 and 5)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hilt.pytestplugin.collector import RunCollector
from hilt.record.run_record import RunRecord

NAMES = ["gpu-01", "r3-u17.gpu", "node_7"]


class _Config:
    def getoption(self, name, default=None):  # noqa: ANN001, ANN201
        return default


def _report(nodeid: str, node: str, outcome: str = "passed", props=()) -> pytest.TestReport:
    return pytest.TestReport(nodeid=nodeid, location=("x", 0, "x"), keywords={}, outcome=outcome,
                             longrepr=None if outcome == "passed" else "assert False", when="call",
                             user_properties=[("hilt.node", node), *props])


@pytest.mark.parametrize("name", NAMES)
def test_any_node_name_rigs_yaml_accepts_round_trips_into_the_record(name):
    collector = RunCollector(_Config())
    collector.record = RunRecord(run_id="r", started_at="2026-11-30T00:00:00Z", rig="x")
    metric = {"name": "nccl.all_reduce.busbw", "unit": "GB/s", "labels": {"size": "8"}, "samples": [1.0, 1.0],
              "node": name, "profile": "hgx-h100-8gpu", "verdict": None, "baseline": None}
    collector.add_report(_report(f"suites/test_nvlink.py::test_nvlink_links[{name}]", name, "failed",
                                 [("hilt.kind", "product"), ("hilt.metric", json.dumps(metric))]))
    test = collector.record.tests[0]
    assert test.node == name and test.outcome == "failed"
    assert collector.record.metrics[0].node == name and collector.record.metrics[0].profile == "hgx-h100-8gpu"


def test_a_message_that_mentions_regression_is_a_product_failure_not_a_regression(tmp_path: Path):
    """Only the gate fixture types a regression; the word in an assertion message does not."""
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        import json
        def pytest_runtest_logreport(report):
            if report.when == "call":
                with open("kinds.json", "a") as fh:
                    fh.write(json.dumps(dict(p for p in report.user_properties if p[0] == "hilt.kind")) + "\\n")
    """))
    (tmp_path / "test_links.py").write_text("def test_links():\n    assert 3 == 4, 'regression: link count'\n")
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_links.py"], cwd=tmp_path,
                   capture_output=True, text=True, timeout=120)
    kinds = [json.loads(line) for line in (tmp_path / "kinds.json").read_text().splitlines()]
    assert kinds == [{"hilt.kind": "product"}]


def test_a_skip_is_recorded_with_its_reason_not_a_tuple():
    """summary.json and the report show why a test skipped, as pytest -rs does."""
    collector = RunCollector(_Config())
    collector.record = RunRecord(run_id="r", started_at="2026-11-30T00:00:00Z", rig="x")
    reason = "Skipped: profile sim-4gpu has no trust: section"
    collector.add_report(pytest.TestReport(
        nodeid="suites/test_trust.py::test_secure_boot[gpu-01]", location=("x", 0, "x"), keywords={},
        outcome="skipped", longrepr=("/site/hilt/suites/test_trust.py", 58, reason), when="setup",
        user_properties=[("hilt.node", "gpu-01")]))
    test = collector.record.tests[0]
    assert (test.outcome, test.message) == ("skipped", "profile sim-4gpu has no trust: section")
