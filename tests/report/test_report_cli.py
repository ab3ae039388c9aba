"""`hilt report` and `hilt history` as a user types them (typer's runner, real files)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hilt.history.open import open_history
from hilt.report import cli
from hilt.report.cli import history_app, parse_since, report_app

runner = CliRunner()


def test_import_then_list_then_report(tmp_path: Path, nightly) -> None:
    runs = nightly(30)
    files = []
    for r in runs:
        f = tmp_path / f"{r.run_id}.json"
        f.write_text(r.model_dump_json())
        files.append(str(f))
    db = tmp_path / "history.sqlite"
    done = runner.invoke(history_app, ["import", *files, "--history", str(db)])
    assert done.exit_code == 0, done.output
    assert len(open_history(db)) == 30

    done = runner.invoke(history_app, ["list", "--history", str(db), "--since", "2026-03-25"])
    assert done.exit_code == 0, done.output
    assert "sim-night-25" in done.output and "sim-night-24" not in done.output
    assert "6 runs" in done.output

    out = tmp_path / "out" / "report.html"
    done = runner.invoke(report_app, ["--since", "all", "-o", str(out), "--history", str(db)])
    assert done.exit_code == 0, done.output
    html = out.read_text()
    assert html.count('<svg class="trend-chart"') == 3
    assert 'data-run="sim-night-20"' in html
    prom = (tmp_path / "out" / "metrics.prom").read_text()
    assert 'run_id="sim-night-30"' in prom and "# TYPE hilt_run_info gauge" in prom


def test_default_history_path_is_settable(tmp_path: Path, nightly, monkeypatch) -> None:
    db = tmp_path / "from-rigs-yaml.sqlite"
    open_history(db).append(nightly(1)[0])
    monkeypatch.setattr(cli, "default_history_path", db)
    done = runner.invoke(history_app, ["list"])
    assert done.exit_code == 0 and "sim-night-01" in done.output


def test_bad_summary_is_one_unwrapped_line_and_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "summary.json"
    bad.write_text('{"run_id": "x"}')
    done = runner.invoke(history_app, ["import", str(bad), "--history", str(tmp_path / "h.sqlite")],
                         env={"COLUMNS": "80"})
    assert done.exit_code == 4
    (line,) = done.stderr.splitlines()  # one line, however long the path: CI terminals are 80 columns wide
    assert line.startswith("error: ") and f"{bad}: field started_at" in line


def test_report_on_a_recent_window_with_no_runs_still_writes_a_page(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = runner.invoke(report_app, ["--since", "1d", "-o", str(out), "--history", str(tmp_path / "h.sqlite")])
    assert done.exit_code == 0, done.output
    assert "No runs in this window" in out.read_text()


def test_parse_since() -> None:
    now = datetime(2026, 3, 31, tzinfo=UTC)
    assert parse_since("30d", now) == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_since("12h", now) == datetime(2026, 3, 30, 12, tzinfo=UTC)
    assert parse_since("2026-03-05") == datetime(2026, 3, 5, tzinfo=UTC)
    assert parse_since("all") is None
    with pytest.raises(typer.BadParameter, match="30d"):
        parse_since("last tuesday")
