"""``hilt report`` and ``hilt history``: typer apps the main ``hilt`` command mounts.

``default_history_path`` is module state on purpose: the main CLI sets it from rigs.yaml before
dispatching, and ``--history`` overrides it per call.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hilt.errors import HiltError
from hilt.history import HistoryStore, parse_time
from hilt.report.allure_env import build_allure_report
from hilt.report.changes import ChangeOptions
from hilt.report.html import build_report, run_status
from hilt.report.prometheus import write_metrics_prom

default_history_path: Path = Path("reports/history.sqlite")

report_app = typer.Typer(help="Build the nightly regression report from the run history.",
                         invoke_without_command=True, no_args_is_help=False)
history_app = typer.Typer(help="The run history store: import old summaries, list runs.", no_args_is_help=True)
console = Console()

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``30d``, ``12h``, ``2w``, ``90m`` (ago) or an ISO date/time; None or ``all`` means no limit."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if match:
        try:
            return (now or datetime.now(UTC)) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        except (OverflowError, ValueError):
            raise typer.BadParameter(f"{text!r} reaches before the year 1; use 'all' for every run",
                                     param_hint="--since") from None
    try:
        return parse_time(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r}: use a span like 30d, 12h, 2w, 90m or an ISO date "
                                 f"like 2026-03-01", param_hint="--since") from None


def _store(history: Path | None) -> HistoryStore:
    return HistoryStore(history or default_history_path)


@report_app.callback()
def report(
    since: str = typer.Option("30d", "--since", help="Runs newer than this: 30d, 12h, 2w or an ISO date; 'all'."),
    rig: str | None = typer.Option(None, "--rig", help="Only this rig's runs."),
    output: Path = typer.Option(Path("reports/report.html"), "-o", "--output", help="HTML file to write."),
    history: Path | None = typer.Option(None, "--history", help="History database (default from rigs.yaml)."),
    title: str = typer.Option("hilt nightly report", "--title"),
    max_pvalue: float = typer.Option(0.001, "--max-pvalue", help="Change-point significance (Otava)."),
    min_magnitude: float = typer.Option(0.02, "--min-magnitude", help="Smallest relative change (0.05 = 5%)."),
    prom: bool = typer.Option(True, "--prom/--no-prom", help="Also write metrics.prom for the latest run."),
    allure: bool = typer.Option(False, "--allure", help="Also build the Allure report (offline)."),
    allure_results: Path = typer.Option(Path("reports/allure-results"), "--allure-results"),
    allure_report: Path = typer.Option(Path("reports/allure-report"), "--allure-report"),
) -> None:
    """Write the HTML regression report (and optionally metrics.prom and the Allure report)."""
    try:
        runs = _store(history).runs(since=parse_since(since), rig=rig)
        options = ChangeOptions(max_pvalue=max_pvalue, min_magnitude=min_magnitude)
        path = build_report(runs, output, title=title, options=options)
        console.print(f"report: {path} ({len(runs)} runs)")
        if prom and runs:
            prom_path = write_metrics_prom(runs[-1], output.parent / "metrics.prom")
            console.print(f"metrics: {prom_path} (run {runs[-1].run_id})")
        if allure:
            console.print(f"allure: {build_allure_report(allure_results, allure_report)}")
    except HiltError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except OSError as exc:  # an unwritable or missing -o directory, a full disk
        where = exc.filename or output
        console.print(f"[red]error:[/red] cannot write {where}: {exc.strerror or exc}", highlight=False)
        raise typer.Exit(2) from None


@history_app.command("import")
def history_import(
    files: list[Path] = typer.Argument(..., help="summary.json files of earlier runs."),
    history: Path | None = typer.Option(None, "--history", help="History database (default from rigs.yaml)."),
) -> None:
    """Append earlier runs' summary.json files to the history."""
    store = _store(history)
    failed = 0
    for path in files:
        try:
            record = store.import_summary(path)
            console.print(f"imported {record.run_id} ({record.rig}, {record.started_at}) from {path}")
        except HiltError as exc:
            failed += 1
            console.print(f"[red]error:[/red] {exc}")
    if failed:
        raise typer.Exit(2)


@history_app.command("list")
def history_list(
    since: str | None = typer.Option(None, "--since", help="30d, 12h, 2w or an ISO date."),
    rig: str | None = typer.Option(None, "--rig"),
    history: Path | None = typer.Option(None, "--history", help="History database (default from rigs.yaml)."),
) -> None:
    """List the stored runs, oldest first."""
    try:
        runs = _store(history).runs(since=parse_since(since), rig=rig)
    except HiltError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    table = Table()
    for column in ("run", "started", "rig", "image", "status", "gate", "tests", "metrics"):
        table.add_column(column, no_wrap=column in ("run", "started", "image"))
    for r in runs:
        table.add_row(r.run_id, f"{parse_time(r.started_at):%Y-%m-%d %H:%M}", r.rig, r.image or "",
                      run_status(r), r.gate.outcome if r.gate else "", str(len(r.tests)), str(len(r.metrics)))
    console.print(table)
    console.print(f"{len(runs)} runs")
