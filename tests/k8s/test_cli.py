"""``hilt k8s labels RUN``: the labels of a run in the history, as the cluster would get them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from hilt.cli import app
from hilt.exitcodes import ExitCode
from hilt.history.open import open_history
from hilt.record.run_record import NodeRecord, RunRecord, VerdictRecord
from hilt.record.run_record import TestRecord as Report


def _history(tmp_path) -> str:
    db = str(tmp_path / "history.sqlite")
    tests = [Report(nodeid="hilt/suites/test_trust.py::test_secure_boot[gpu-01]", outcome="passed", node="gpu-01"),
             Report(nodeid="hilt/suites/test_trust.py::test_secure_boot[gpu-02]", outcome="failed", node="gpu-02")]
    record = RunRecord(run_id="r-7", started_at="2026-03-01T02:00:00Z", rig="sim", tests=tests,
                       nodes=[NodeRecord(name="gpu-01"), NodeRecord(name="gpu-02")],
                       gate=VerdictRecord(outcome="pass", reason="r"),
                       node_profiles={"gpu-01": "sim-4gpu", "gpu-02": "sim-4gpu"})
    open_history(db).append(record)
    return db


def test_labels_json_and_table(tmp_path):
    db = _history(tmp_path)
    runner = CliRunner()
    done = runner.invoke(app, ["k8s", "labels", "r-7", "--history", db, "--json"])
    assert done.exit_code == 0, done.output
    nodes = json.loads(done.stdout)["nodes"]
    assert nodes["gpu-01"]["labels"]["feature.node.kubernetes.io/trust.secureboot"] == "true"
    assert "feature.node.kubernetes.io/trust.secureboot" not in nodes["gpu-02"]["labels"]
    fact = next(f for f in nodes["gpu-01"]["facts"] if f["name"] == "trust.secureboot")
    assert fact == {"name": "trust.secureboot", "key": "feature.node.kubernetes.io/trust.secureboot",
                    "value": "true", "checks": ["test_trust::test_secure_boot"]}
    table = runner.invoke(app, ["k8s", "labels", "r-7", "--history", db, "--node", "gpu-02"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "gpu-02" in table.stdout and "gpu-01" not in table.stdout
    assert "feature.node.kubernetes.io/hilt.run" in table.stdout


def test_unknown_run_or_node_is_a_usage_error_on_one_line(tmp_path):
    db = _history(tmp_path)
    runner = CliRunner()
    for args, text in ((["nope"], "no run 'nope' in the history"), (["r-7", "--node", "x"], "has no node 'x'")):
        done = runner.invoke(app, ["k8s", "labels", *args, "--history", db])
        assert done.exit_code == ExitCode.USAGE_ERROR and text in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
