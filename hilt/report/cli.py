"""``hilt report`` and ``hilt history``: typer apps the main ``hilt`` command mounts.

``default_history_path`` (a SQLite path or a ``postgresql://`` URL) and ``default_history_password`` (its
credential reference) are module state on purpose: the main CLI sets them from rigs.yaml before
dispatching, and ``--history`` overrides the location per call.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.table import Table

from hilt.errors import ConfigError, HiltError
from hilt.exitcodes import exit_code_for
from hilt.history.base import HistoryStore
from hilt.history.open import open_history
from hilt.history.series import parse_time
from hilt.report.allure_env import build_allure_report
from hilt.report.changes import ChangeOptions
from hilt.report.compare import compare_runs, comparison_json, find_runs, unmatched_metrics, write_comparison
from hilt.report.html import build_report, run_status
from hilt.report.prometheus import write_metrics_prom
from hilt.rig.credentials import Secret
from hilt.util.cli_output import cell, error_line, fail, print_json, say, warning_line
from hilt.util.cli_output import stdout as console
from hilt.util.locations import default_history

default_history_path: Path | str = default_history(Path("."))[0]  # no rigs.yaml: the state directory's
default_history_password: Secret | None = None

report_app = typer.Typer(help="Build the nightly regression report from the run history.",
                         invoke_without_command=True, no_args_is_help=False)
history_app = typer.Typer(help="The run history store: import old summaries, list runs.", no_args_is_help=True)

_HISTORY_HELP = "History: a SQLite file or postgresql://[user@]host/db (default from rigs.yaml)."

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


def _fraction(value: float, option: str, example: str, zero: bool = False, one: bool = False) -> float:
    """A relative amount (0.10 = 10%): finite and within (0, 1); ``nan`` or ``10`` (meant as 10%) would
    otherwise be accepted and silently flag nothing, ``0`` flag every node."""
    low_ok = value >= 0 if zero else value > 0
    high_ok = value <= 1 if one else value < 1
    if not (math.isfinite(value) and low_ok and high_ok):
        bounds = f"{'0 or more' if zero else 'above 0'} and {'at most 1' if one else 'below 1'}"
        raise typer.BadParameter(f"{value}: a fraction {bounds}, e.g. {example}", param_hint=option)
    return value


def history_store(history: str | None) -> HistoryStore:
    """The history a ``--history`` option asks for (None: rigs.yaml's); rigs.yaml's password reference goes
    with rigs.yaml's location only. Every command that reads the history opens it here (`hilt k8s labels` too)."""
    if history is None or history == str(default_history_path):
        return open_history(default_history_path, default_history_password)
    return open_history(history)


def _runs(store: HistoryStore, since: str | None, rig: str | None) -> list:
    """The runs asked for; a rig that the history never saw is an unknown name (an error), not an empty list."""
    runs = store.runs(since=parse_since(since), rig=rig)
    if rig is not None and not runs:
        known = sorted({r.rig for r in store.runs()})
        if rig not in known:
            raise ConfigError(f"{store.location}: no run of rig {rig!r} in the history; "
                              f"rigs there: {', '.join(known) or 'none'}")
    return runs


@report_app.callback()
def report(
    since: str = typer.Option("30d", "--since", help="Runs newer than this: 30d, 12h, 2w or an ISO date; 'all'."),
    rig: str | None = typer.Option(None, "--rig", help="Only this rig's runs."),
    output: Path | None = typer.Option(None, "-o", "--output",
                                       help="HTML file to write (default reports/report.html; with --compare, "
                                            "reports/compare.html)."),
    history: str | None = typer.Option(None, "--history", help=_HISTORY_HELP),
    title: str = typer.Option("hilt nightly report", "--title"),
    max_pvalue: float = typer.Option(0.001, "--max-pvalue", help="Change-point significance (Otava)."),
    min_magnitude: float = typer.Option(0.02, "--min-magnitude", help="Smallest relative change (0.05 = 5%)."),
    outlier: float = typer.Option(0.10, "--outlier",
                                  help="Flag a node this far on the worse side of its peers' median (0.10 = 10%)."),
    prom: bool = typer.Option(True, "--prom/--no-prom", help="Also write metrics.prom for the latest run."),
    allure: bool = typer.Option(False, "--allure", help="Also build the Allure report (offline)."),
    allure_results: Path = typer.Option(Path("reports/allure-results"), "--allure-results"),
    allure_report: Path = typer.Option(Path("reports/allure-report"), "--allure-report"),
    compare: tuple[str, str] | None = typer.Option(None, "--compare", metavar="RUN_A RUN_B",
                                                   help="Compare two runs (ids as `hilt history list` shows) "
                                                        "metric by metric, test by test, version by version."),
    as_json: bool = typer.Option(False, "--json", help="With --compare: print the comparison as JSON (keys in "
                                                       "docs/reports.md) instead of writing HTML."),
) -> None:
    """Write the HTML regression report (and optionally metrics.prom and the Allure report)."""
    _fraction(outlier, "--outlier", "0.10 for 10%")
    _fraction(min_magnitude, "--min-magnitude", "0.02 for 2%", zero=True)
    _fraction(max_pvalue, "--max-pvalue", "0.001", one=True)
    if compare is not None or as_json:
        _compare(history, compare, output, as_json, min_magnitude)
        return
    output = output or Path("reports/report.html")
    try:
        runs = _runs(history_store(history), since, rig)
        options = ChangeOptions(max_pvalue=max_pvalue, min_magnitude=min_magnitude)
        path = build_report(runs, output, title=title, options=options, outlier=outlier)
        say(f"report: {path} ({len(runs)} runs)")
        if prom and runs:
            prom_path = write_metrics_prom(runs[-1], output.parent / "metrics.prom")
            say(f"metrics: {prom_path} (run {runs[-1].run_id})")
        if allure:
            say(f"allure: {build_allure_report(allure_results, allure_report)}")
    except HiltError as exc:
        fail(exc)
    except OSError as exc:  # an unwritable or missing -o directory, a full disk
        fail(f"cannot write {exc.filename or output}: {exc.strerror or exc}")


def _existing_history(history: str | None) -> None:
    """A comparison only reads: a mistyped ``--history`` must not create an empty SQLite file (and its
    directories) and then report the runs as unknown."""
    location = str(default_history_path) if history is None else history
    if "://" not in location and not Path(location).exists():
        raise ConfigError(f"--history {location}: no such history file; give the SQLite file (or postgresql:// "
                          "URL) that the runs were recorded in (default: rigs.yaml's history)")


def _compare(history: str | None, run_ids: tuple[str, str] | None, output: Path | None, as_json: bool,
             min_magnitude: float) -> None:
    """``hilt report --compare RUN_A RUN_B [--json]``: one HTML page, or JSON on stdout."""
    if run_ids is None:
        fail("--json needs --compare RUN_A RUN_B (the nightly report is HTML only)")
    output = output or Path("reports/compare.html")
    try:
        _existing_history(history)
        run_a, run_b = find_runs(history_store(history), run_ids)
        comparison = compare_runs(run_a, run_b, min_magnitude=min_magnitude)
        if (unmatched := unmatched_metrics(comparison)) is not None:
            warning_line(unmatched)
        if as_json:
            print_json(comparison_json(comparison))
            return
        path = write_comparison(comparison, output, min_magnitude=min_magnitude)
    except HiltError as exc:
        fail(exc)
    except OSError as exc:
        fail(f"cannot write {exc.filename or output}: {exc.strerror or exc}")
    say(f"compare: {path} ({len(comparison.version_changes)} version changes, "
        f"{sum(1 for m in comparison.metrics if m.change == 'worse')} metrics worse, "
        f"{sum(1 for t in comparison.tests if t.changed)} tests changed outcome)")


@history_app.command("import")
def history_import(
    files: list[Path] = typer.Argument(..., help="summary.json files of earlier runs."),
    history: str | None = typer.Option(None, "--history", help=_HISTORY_HELP),
) -> None:
    """Append earlier runs' summary.json files to the history."""
    store = history_store(history)
    code = 0
    for path in files:
        try:
            record = store.import_summary(path)
            say(f"imported {record.run_id} ({record.rig}, {record.started_at}) from {path}")
        except HiltError as exc:
            code = max(code, exit_code_for(exc))
            error_line(exc)
    if code:
        raise typer.Exit(int(code))


@history_app.command("list")
def history_list(
    since: str | None = typer.Option(None, "--since", help="30d, 12h, 2w or an ISO date."),
    rig: str | None = typer.Option(None, "--rig"),
    history: str | None = typer.Option(None, "--history", help=_HISTORY_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (keys in docs/ci.md) instead of a table."),
) -> None:
    """List the stored runs, oldest first."""
    try:
        runs = _runs(history_store(history), since, rig)
    except HiltError as exc:
        fail(exc)
    if as_json:
        print_json({"runs": [{"run_id": r.run_id, "started_at": r.started_at, "rig": r.rig, "image": r.image,
                              "profile": r.profile, "status": run_status(r),
                              "gate": r.gate.outcome if r.gate else None, "tests": len(r.tests),
                              "metrics": len(r.metrics)} for r in runs]})
        return
    table = Table()
    for column in ("run", "started", "rig", "image", "status", "gate", "tests", "metrics"):
        table.add_column(column, no_wrap=column in ("run", "started", "image"))
    for r in runs:
        table.add_row(cell(r.run_id), f"{parse_time(r.started_at):%Y-%m-%d %H:%M}", cell(r.rig), cell(r.image),
                      run_status(r), cell(r.gate.outcome if r.gate else ""), str(len(r.tests)), str(len(r.metrics)))
    console.print(table)
    say(f"{len(runs)} runs")


@history_app.command("migrate")
def history_migrate(
    to: str = typer.Option(..., "--to", help="Destination: postgresql://[user@]host[:port]/database (or a file)."),
    to_password: str | None = typer.Option(None, "--to-password",
                                           help="The destination's password as a reference: ${ENV_VAR} or "
                                                "file:/path (default: rigs.yaml's history_password when --to is "
                                                "rigs.yaml's history; else libpq's PGPASSWORD or ~/.pgpass)."),
    history: str | None = typer.Option(None, "--history", "--from",
                                       help="Source history (default from rigs.yaml: the SQLite file)."),
) -> None:
    """Copy every run of a history (e.g. the SQLite file) into another one (e.g. PostgreSQL).

    Safe to rerun: a run already there is replaced by the same run, so an interrupted migration is
    finished by running it again. The source is left as it is.
    """
    try:
        password: Secret | None
        if to_password is not None:
            if not (to_password.startswith("file:") or re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", to_password)):
                raise ConfigError("--to-password: give a reference, ${ENV_VAR} or file:/path, never the password "
                                  "itself (command lines are visible to every user of the machine)")
            password = Secret(to_password)
        else:
            password = default_history_password if to == str(default_history_path) else None
        source = history_store(history)
        dest = open_history(to, password)
        if source.location == dest.location:
            raise ConfigError(f"{dest.location}: the source and the destination are the same history")
        runs = source.runs()
        for record in runs:
            dest.append(record)
        missing = {r.run_id for r in runs} - {r.run_id for r in dest.runs()}
        if missing:
            raise ConfigError(f"{dest.location}: {len(missing)} run(s) did not arrive, e.g. {sorted(missing)[0]}")
    except HiltError as exc:
        fail(exc)
    say(f"migrated {len(runs)} runs from {source.location} to {dest.location} ({len(dest)} runs there now)")
