"""Issue 20 items 7, 8, 13, 14: hostile summaries, a damaged history, non-finite samples, bad options.

Every case ends in one line naming the file (or option) and what is wrong, never a traceback; the history file
is a real sqlite file, damaged on disk.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hilt.errors import ParseError
from hilt.gate import cli as gate_cli
from hilt.history.base import HistoryError
from hilt.history.open import open_history
from hilt.history.summary import load_summary
from hilt.probes.results import allreduce_metrics, parse_result_lines
from hilt.record.metrics import Metric
from hilt.record.run_record import MetricRecord, RunRecord
from hilt.report.cli import history_app, report_app
from tests.support.tmpfs import mounted_tmpfs

runner = CliRunner()
GOOD = {"run_id": "r1", "started_at": "2026-11-01T02:00:00Z", "rig": "sim", "profile": "sim-4gpu",
        "metrics": [{"name": "nccl.all_reduce.busbw", "unit": "GB/s", "samples": [180.0, 181.0],
                     "verdict": {"outcome": "pass", "reason": "ok"}}]}


def summary(tmp_path: Path, content: dict | str | bytes, name: str = "summary.json") -> Path:
    path = tmp_path / name
    if isinstance(content, dict):
        content = json.dumps(content)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def one_line_error(result) -> str:
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # an exit, not a traceback
    return " ".join(result.output.split())


# ---------------------------------------------------------------- item 13: non-finite samples


def test_a_probe_reporting_infinity_is_refused_where_it_enters():
    records, _ = parse_result_lines('HILT_RESULT {"size": 1048576, "world_size": 2, "time_s": [0.001, Infinity]}')
    with pytest.raises(ParseError, match=r"torch.all_reduce.*sample inf is not a finite number"):
        allreduce_metrics(records[0], nodes=1, node="n1")
    with pytest.raises(ParseError, match="sample nan"):
        Metric.of("x", "GB/s", [1.0, float("nan")])


@pytest.mark.parametrize("sample", ["Infinity", "-Infinity", "NaN"])
def test_a_summary_with_a_non_finite_sample_is_refused_on_import(tmp_path, sample):
    path = summary(tmp_path, json.dumps(GOOD).replace("181.0", sample))
    db = tmp_path / "h.sqlite"
    message = one_line_error(runner.invoke(history_app, ["import", str(path), "--history", str(db)]))
    assert str(path) in message and f"{sample} is not a JSON number" in message
    assert len(open_history(db)) == 0


def test_a_record_with_inf_or_nan_cannot_be_built():
    for bad in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="samples must be finite"):
            MetricRecord(name="a", unit="u", samples=[1.0, bad])


def test_the_history_stays_readable_when_a_non_finite_sample_got_in(tmp_path):
    """What an older hilt stored for `inf` (JSON null): the run is still listed and reported."""
    db = tmp_path / "h.sqlite"
    store = open_history(db)
    store.append(RunRecord.model_validate(GOOD))
    second = dict(GOOD, run_id="r2", started_at="2026-11-02T02:00:00Z")
    store.append(RunRecord.model_validate(second))
    with sqlite3.connect(db) as raw:
        text = raw.execute("SELECT record FROM runs WHERE run_id = 'r2'").fetchone()[0]
        raw.execute("UPDATE runs SET record = ? WHERE run_id = 'r2'", (text.replace("181.0", "null"),))
    assert [r.run_id for r in store.runs()] == ["r1", "r2"]
    assert store.runs()[1].metrics[0].samples == [180.0]
    listed = runner.invoke(history_app, ["list", "--history", str(db)])
    assert listed.exit_code == 0 and "2 runs" in listed.output, listed.output
    report = runner.invoke(report_app, ["--since", "all", "-o", str(tmp_path / "r.html"), "--history", str(db),
                                        "--no-prom"])
    assert report.exit_code == 0, report.output


# ---------------------------------------------------------------- item 14: the history file itself


@pytest.mark.parametrize("damage", ["pages", "header"])
def test_a_damaged_history_is_one_line(tmp_path, damage):
    db = tmp_path / "h.sqlite"
    store = open_history(db)
    for i in range(60):
        store.append(RunRecord.model_validate(dict(GOOD, run_id=f"r{i}", rig="sim" + "x" * 200)))
    raw = bytearray(db.read_bytes())
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
    if damage == "pages":  # the runs' pages; the schema on the first pages stays readable
        half = len(raw) // 2
        raw[half:] = b"\xab" * (len(raw) - half)
    else:
        raw[:100] = b"\x00" * 100
    db.write_bytes(bytes(raw))
    for app, args in ((history_app, ["list"]), (report_app, ["--since", "all", "-o", str(tmp_path / "r.html")])):
        message = one_line_error(runner.invoke(app, [*args, "--history", str(db)]))
        assert f"{db}: not a usable history database" in message
    with pytest.raises(HistoryError):
        open_history(db).append(RunRecord.model_validate(dict(GOOD, run_id="new")))


def test_a_directory_as_history_is_one_line(tmp_path):
    message = one_line_error(runner.invoke(history_app, ["list", "--history", str(tmp_path)]))
    assert f"{tmp_path}: is a directory" in message


# ---------------------------------------------------------------- items 7 and 14: hostile summary.json


@pytest.mark.parametrize("content, expected", [
    (b'{"run_id": "r\xff1"}', ":1:14: not UTF-8 (byte 0xff at offset 13)"),
    ("[" * 100_000 + "]" * 100_000, "nested too deep"),
    (json.dumps(dict(GOOD, started_at="yesterday")), "field started_at: 'yesterday' is not an ISO 8601 time"),
    (json.dumps(dict(GOOD, metrics=[{"name": "a", "unit": "u", "samples": "fast"}])), "field metrics.0.samples"),
    (json.dumps(dict(GOOD, metrics={"a": [[[[{}]]]]})), "field metrics"),
])
def test_hostile_summaries_are_one_line_errors_in_every_reader(tmp_path, content, expected):
    path = summary(tmp_path, content)
    with pytest.raises(HistoryError, match="^" + str(path)):
        load_summary(path)
    imported = one_line_error(runner.invoke(history_app, ["import", str(path), "--history",
                                                          str(tmp_path / "h.sqlite")]))
    assert expected in imported
    promoted = one_line_error(runner.invoke(gate_cli.baseline_app, ["promote", str(path)]))
    assert expected in promoted


# ---------------------------------------------------------------- item 8: promote writes only into baselines/


@pytest.mark.parametrize("profile", ["../../escaped", "{tmp}/escaped", "a/../../escaped", "..", ".hidden/../x"])
def test_promote_never_writes_outside_the_baselines_directory(tmp_path, monkeypatch, profile):
    profile = profile.format(tmp=tmp_path)  # an absolute path (kept inside tmp_path should the check ever fail)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    monkeypatch.setattr(gate_cli, "baselines_dir", tmp_path / "work" / "baselines")
    path = summary(tmp_path, dict(GOOD, profile=profile))
    before = {p for p in tmp_path.rglob("*")}
    for command in ("promote", "diff"):
        message = one_line_error(runner.invoke(gate_cli.baseline_app, [command, str(path)]))
        assert "is not a profile name" in message
    message = one_line_error(runner.invoke(gate_cli.baseline_app, ["promote", str(GOOD_PATH(tmp_path)),
                                                                   "--profile", profile]))
    assert "is not a profile name" in message
    assert {p for p in tmp_path.rglob("*")} - before == {tmp_path / "good.json"}


def GOOD_PATH(tmp_path: Path) -> Path:  # noqa: N802 - reads as the constant it writes
    return summary(tmp_path, GOOD, "good.json")


def test_promote_into_the_baselines_directory_still_works(tmp_path, monkeypatch):
    monkeypatch.setattr(gate_cli, "baselines_dir", tmp_path / "baselines")
    done = runner.invoke(gate_cli.baseline_app, ["promote", str(summary(tmp_path, GOOD))])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "baselines" / "sim-4gpu.yaml").is_file()


# ---------------------------------------------------------------- item 14: options and outputs


def test_promote_of_zero_samples_is_refused_per_metric_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setattr(gate_cli, "baselines_dir", tmp_path / "baselines")
    zero = dict(GOOD, metrics=[dict(GOOD["metrics"][0], samples=[0, 0])])
    done = runner.invoke(gate_cli.baseline_app, ["promote", str(summary(tmp_path, zero))], env={"COLUMNS": "300"})
    assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
    text = " ".join(done.output.split())
    assert "not a valid baseline" in text and "nothing promoted" in text
    assert not (tmp_path / "baselines" / "sim-4gpu.yaml").exists()


def test_report_since_far_in_the_past_is_a_usage_error(tmp_path):
    done = runner.invoke(report_app, ["--since", "99999999999d", "--history", str(tmp_path / "h.sqlite")])
    assert done.exit_code == 2 and isinstance(done.exception, SystemExit)
    assert "99999999999d" in done.output and "'all'" in done.output


@pytest.fixture
def read_only_dir(tmp_path: Path):
    """A directory the report cannot be written into. As root (CI) a read-only tmpfs: root writes through a
    directory's mode bits, not through a read-only filesystem. Otherwise a mode-0555 directory, the same fault
    for a user who does not own the disk."""
    out = tmp_path / "ro"
    if os.geteuid() != 0:
        out.mkdir(mode=0o555)
        yield out
        return
    with mounted_tmpfs(out, size="1m", read_only=True):
        yield out


def test_report_into_a_read_only_directory_is_one_line(tmp_path, read_only_dir):
    """Before as root: skipped ("root writes into a read-only directory"), so CI, which runs as root, never ran
    it."""
    target = read_only_dir / "r.html"
    message = one_line_error(runner.invoke(report_app, ["--since", "all", "-o", str(target),
                                                        "--history", str(tmp_path / "h.sqlite")]))
    assert message.startswith(f"error: cannot write {target}:"), message
    assert ("Read-only file system" if os.geteuid() == 0 else "Permission denied") in message, message
    assert "Traceback" not in message
    assert list(read_only_dir.iterdir()) == []  # no report, no temporary file left


def test_report_to_an_unwritable_path_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a directory")
    message = one_line_error(runner.invoke(report_app, ["--since", "all", "-o", str(blocker / "r.html"),
                                                        "--history", str(tmp_path / "h.sqlite")]))
    assert "cannot write" in message and str(blocker) in message
