"""`hilt baseline show/diff/promote` through typer's CliRunner, on a copy of a baseline directory."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hilt.exitcodes import ExitCode
from hilt.gate import cli
from hilt.gate.baselines import load_baselines
from hilt.record.run_record import BaselineRecord, MetricRecord, RunRecord, VerdictRecord

runner = CliRunner()


@pytest.fixture
def bdir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "baselines"
    d.mkdir()
    (d / "rack.yaml").write_text(yaml.safe_dump({
        "profile": "rack",
        "gated": [{"metric": "bw", "labels": {"size": ["64"]}}],
        "entries": [{"metric": "bw", "labels": {"size": "64"}, "value": 100.0, "unit": "GB/s",
                     "tolerance": 0.03, "source": {"note": "first"}},
                    {"metric": "bw", "labels": {"size": "8"}, "value": 50.0, "unit": "GB/s"}],
    }))
    monkeypatch.setattr(cli, "baselines_dir", d)
    return d


def metric(size, samples, outcome=None, base=None, node="n1") -> MetricRecord:
    return MetricRecord(name="bw", unit="GB/s", labels={"size": size, "node": node}, samples=samples, node=node,
                        baseline=BaselineRecord(value=base, tolerance=0.03) if base else None,
                        verdict=VerdictRecord(outcome=outcome, reason=f"bw{{size={size}}}: {outcome}")
                        if outcome else None)


@pytest.fixture
def run(tmp_path) -> Path:
    record = RunRecord(run_id="run-42", started_at="2025-03-04T05:06:07Z", rig="sim", image="img-1.4.2",
                       profile="rack", metrics=[metric("64", [102.0, 104.0], "pass", 100.0),
                                                metric("8", [30.0, 31.0], "regression", 50.0),
                                                metric("128", [200.0, 202.0], "unbaselined")])
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "summary.json").write_text(record.model_dump_json())
    return reports


def test_diff_shows_what_would_change_and_writes_nothing(bdir, run):
    before = (bdir / "rack.yaml").read_text()
    result = runner.invoke(cli.baseline_app, ["diff", str(run)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "update" in result.output and "+3.0%" in result.output
    assert "add" in result.output and "regression" in result.output
    assert (bdir / "rack.yaml").read_text() == before


def test_promote_writes_passed_and_unbaselined_metrics_with_provenance(bdir, run):
    result = runner.invoke(cli.baseline_app, ["promote", str(run / "summary.json")])
    assert result.exit_code == 0, result.output
    bset = load_baselines(bdir, "rack")
    by_size = {e.labels["size"]: e for e in bset.entries}
    assert by_size["64"].value == 103.0 and by_size["64"].samples == [102.0, 104.0]
    assert by_size["64"].tolerance == 0.03  # the reviewed tolerance is kept
    assert by_size["64"].source.run_id == "run-42" and by_size["64"].source.image == "img-1.4.2"
    assert by_size["64"].source.date == "2025-03-04"
    assert by_size["8"].value == 50.0  # the regressed one is kept as it was
    # a new entry names the series, not the node it was measured on: every node of the profile owes it
    assert by_size["128"].value == 201.0 and by_size["128"].labels == {"size": "128"}
    assert bset.gated[0].labels == {"size": ["64"]}  # gating rules survive


def test_promote_force_and_metric_filter(bdir, run):
    result = runner.invoke(cli.baseline_app, ["promote", str(run), "--force", "--metric", "bw"])
    assert result.exit_code == 0, result.output
    assert {e.labels["size"]: e.value for e in load_baselines(bdir, "rack").entries}["8"] == 30.5
    result = runner.invoke(cli.baseline_app, ["promote", str(run), "--metric", "other"])
    assert result.exit_code == ExitCode.USAGE_ERROR and "no metric 'other'; its metrics: bw" in result.output


def test_show_lists_entries(bdir):
    result = runner.invoke(cli.baseline_app, ["show", "--profile", "rack"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "bw" in result.output and "size=64" in result.output and "first" in result.output


def test_errors_are_usage_errors_naming_the_file(bdir, tmp_path):
    bad = tmp_path / "nope.json"
    bad.write_text("{}")
    result = runner.invoke(cli.baseline_app, ["diff", str(bad)])
    assert result.exit_code == ExitCode.USAGE_ERROR and "nope.json" in result.output
    result = runner.invoke(cli.baseline_app, ["show", "--profile", "missing"])
    assert result.exit_code == ExitCode.USAGE_ERROR and "missing.yaml" in result.output


def test_promote_of_a_multi_node_run_pools_every_nodes_samples(bdir, tmp_path):
    """Issue 24 item 11: the last node's samples used to replace the others' (one upsert per node)."""
    record = RunRecord(run_id="run-43", started_at="2025-03-05T00:00:00Z", rig="sim", image="img", profile="rack",
                       metrics=[metric("64", [100.0, 102.0], "pass", 100.0, node="n1"),
                                metric("64", [98.0, 100.0], "pass", 100.0, node="n2"),
                                metric("128", [200.0], "unbaselined", node="n1"),
                                metric("128", [210.0], "unbaselined", node="n2"),
                                metric("8", [49.0, 51.0], "pass", 50.0, node="n1"),
                                metric("8", [30.0, 31.0], "regression", 50.0, node="n2")])
    summary = tmp_path / "multi.json"
    summary.write_text(record.model_dump_json())
    result = runner.invoke(cli.baseline_app, ["promote", str(summary)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    by_size = {e.labels["size"]: e for e in load_baselines(bdir, "rack").entries}
    assert by_size["64"].samples == [100.0, 102.0, 98.0, 100.0] and by_size["64"].value == 100.0
    assert by_size["128"].samples == [200.0, 210.0] and by_size["128"].labels == {"size": "128"}
    # one node regressed: the series is not promoted from the other node alone, and the output names the node
    assert by_size["8"].value == 50.0 and "regression on node n2" in result.output
