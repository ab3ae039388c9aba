"""`hilt baseline`: show the baselines, see what a run would change, and promote a run's measurements.

Promotion writes the YAML files that reviewers then read in a pull request, so it keeps provenance (run id,
image, date) and the samples, and by default refuses metrics that regressed or could not be decided.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hilt.errors import ConfigError
from hilt.exitcodes import ExitCode
from hilt.gate.baselines import (
    BaselineEntry,
    BaselineSet,
    Source,
    available_profiles,
    load_baselines,
)
from hilt.history.summary import load_summary
from hilt.record.metrics import Metric
from hilt.record.run_record import MetricRecord, RunRecord
from hilt.util.cli_output import fail, print_json, say

baselines_dir: Path = Path("baselines")  # the lead may point this at rigs.yaml's baselines directory

baseline_app = typer.Typer(help="Show, diff and promote release-gate baselines.", no_args_is_help=True)
_console = Console()

PROMOTABLE = ("pass", "improvement", "unbaselined")
DEFAULT_TOLERANCE = 0.05


def _fail(message: str) -> None:
    fail(message, ExitCode.USAGE_ERROR)


def load_run(run: Path) -> RunRecord:
    """A run's record from a summary.json or the reports directory holding one (one reader for every
    summary.json: bytes, nesting, types and non-finite samples are checked there)."""
    return load_summary(run / "summary.json" if run.is_dir() else run)


_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def baseline_path(profile: str) -> Path:
    """``<baselines_dir>/<profile>.yaml``, for a plain profile name only.

    The name comes from a summary.json, which anyone can write: ``../x`` or ``/etc/x`` would make promote
    write outside the baselines directory.
    """
    if not _PROFILE_NAME.fullmatch(profile) or ".." in profile:
        raise ConfigError(f"profile {profile[:80]!r} is not a profile name (letters, digits, '.', '_', '-'; "
                          "no '/' or '..'): pass --profile NAME")
    path = baselines_dir / f"{profile}.yaml"
    if path.resolve().parent != baselines_dir.resolve():
        raise ConfigError(f"profile {profile!r}: {path} is outside the baselines directory {baselines_dir}")
    return path


def _profile_set(profile: str) -> BaselineSet:
    path = baseline_path(profile)
    if path.is_file():
        return load_baselines(baselines_dir, profile)
    return BaselineSet(profile=profile, path=path)


def _as_metric(m: MetricRecord) -> Metric:
    return Metric.of(m.name, m.unit, m.samples, m.labels, m.higher_is_better)


def _mean(samples: list[float]) -> float:
    return math.fsum(samples) / len(samples) if samples else math.nan


NODE_LABEL = "node"
"""The label naming the node a metric was measured on: not part of the series (an entry for one node is owed by
every node of its profile), so a new entry is written without it and the nodes' samples are pooled."""


def _series(record: RunRecord, bset: BaselineSet, names: list[str] | None
            ) -> list[tuple[dict[str, str], BaselineEntry | None, list[MetricRecord]]]:
    """The run's metrics grouped by the baseline entry each would write: (its labels, the current entry, the
    measurements of every node of the run that feed it, in node order)."""
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[dict[str, str], BaselineEntry | None,
                                                                 list[MetricRecord]]] = {}
    for m in record.metrics:
        if names and m.name not in names:
            continue
        if m.profile is not None and m.profile != bset.profile:
            continue  # measured on a node of another profile: judged against, and promoted to, its own file
        current = bset.find_entry(_as_metric(m))
        labels = dict(current.labels) if current is not None else \
            {k: v for k, v in m.labels.items() if k != NODE_LABEL}
        key = (m.name, tuple(sorted(labels.items())))
        groups.setdefault(key, (labels, current, []))[2].append(m)
    return [(labels, current, sorted(members, key=lambda m: m.node or ""))
            for labels, current, members in groups.values()]


def _plan(record: RunRecord, bset: BaselineSet, names: list[str] | None, force: bool
          ) -> list[tuple[MetricRecord, BaselineEntry | None, BaselineEntry | None, str]]:
    """(series, current entry, proposed entry or None when refused, why) for each series of the run; a series
    measured on several nodes is one entry, from every node's samples."""
    unknown = sorted(set(names or ()) - {m.name for m in record.metrics})
    if unknown:
        known = ", ".join(sorted({m.name for m in record.metrics})) or "none"
        raise ConfigError(f"run {record.run_id} has no metric {', '.join(map(repr, unknown))}; its metrics: {known}")
    date = (record.started_at or "")[:10] or None
    plan = []
    for labels, current, members in _series(record, bset, names):
        first = members[0]
        m = first.model_copy(update={"labels": labels, "samples": [s for x in members for s in x.samples],
                                     "node": first.node if len(members) == 1 else None})
        outcomes = [(x.node, x.verdict.outcome if x.verdict else "unbaselined") for x in members]
        refused = [f"{outcome} on node {node}" if node and len(members) > 1 else outcome
                   for node, outcome in outcomes if outcome not in PROMOTABLE]
        outcome = outcomes[0][1] if len({o for _n, o in outcomes}) == 1 else "mixed"
        if not m.samples:
            plan.append((m, current, None, "no samples"))
            continue
        if refused and not force:
            plan.append((m, current, None, f"verdict {', '.join(refused)} (use --force to promote anyway)"))
            continue
        try:
            proposed = BaselineEntry(
                metric=m.name, labels=labels, value=_mean(m.samples), unit=m.unit,
                tolerance=current.tolerance if current else (m.baseline.tolerance if m.baseline
                                                             else DEFAULT_TOLERANCE),
                higher_is_better=m.higher_is_better, samples=list(m.samples),
                source=Source(run_id=record.run_id, image=record.image, date=date),
            )
        except ValidationError as exc:  # e.g. samples [0, 0]: a baseline is a positive value
            first_error = exc.errors()[0]
            field = ".".join(str(p) for p in first_error["loc"])
            plan.append((m, current, None, f"not a valid baseline: {field}: {first_error['msg']}"))
            continue
        plan.append((m, current, proposed, outcome))
    return plan


def _profile_of(record: RunRecord, profile: str | None) -> str:
    chosen = profile or record.profile
    if not chosen:
        raise ConfigError(f"run {record.run_id} names no profile; pass --profile")
    return chosen


@baseline_app.command()
def show(profile: str = typer.Option(None, "--profile", "-p", help="one profile; all when omitted"),
         as_json: bool = typer.Option(False, "--json", help="print JSON (keys in docs/ci.md) instead of tables")
         ) -> None:
    """List the baselines of one profile, or of every profile."""
    try:
        profiles = [profile] if profile else available_profiles(baselines_dir)
        sets = [load_baselines(baselines_dir, p) for p in profiles]
    except ConfigError as exc:
        _fail(str(exc))
        return
    if as_json:
        print_json({"baselines_dir": str(baselines_dir), "profiles": [_set_json(b) for b in sets]})
        return
    if not sets:
        say(f"no baseline files in {baselines_dir}")
    for bset in sets:
        table = Table(title=escape(f"{bset.profile} ({bset.path})"))
        for col in ("metric", "labels", "value", "tol", "dir", "gated", "n", "source"):
            table.add_column(col)
        for e in bset.entries:
            gated = bset.is_gated(Metric.of(e.metric, e.unit, [], e.labels))
            table.add_row(escape(e.metric), escape(",".join(f"{k}={v}" for k, v in sorted(e.labels.items()))),
                          f"{e.value:.4g} {e.unit}".strip(), f"{e.tolerance:.0%}",
                          "↑" if e.higher_is_better else "↓", "yes" if gated else "no",
                          str(len(e.samples or [])), escape(e.source.describe()))
        _console.print(table)


def _set_json(bset: BaselineSet) -> dict:
    """One profile's baselines for `show --json` (keys documented in docs/ci.md)."""
    return {"profile": bset.profile, "path": str(bset.path), "entries": [
        {"metric": e.metric, "labels": dict(e.labels), "value": e.value, "unit": e.unit, "tolerance": e.tolerance,
         "higher_is_better": e.higher_is_better, "gated": bset.is_gated(Metric.of(e.metric, e.unit, [], e.labels)),
         "samples": list(e.samples or []),
         "source": {"run_id": e.source.run_id, "image": e.source.image, "date": e.source.date,
                    "note": e.source.note, "url": e.source.url}}
        for e in bset.entries]}


def _print_plan(plan, title: str) -> None:
    table = Table(title=escape(title))
    for col in ("metric", "labels", "current", "proposed", "change", "action"):
        table.add_column(col)
    for m, current, proposed, why in plan:
        labels = ",".join(f"{k}={v}" for k, v in sorted(m.labels.items()))
        cur = f"{current.value:.4g}" if current else "—"
        new = f"{proposed.value:.4g}" if proposed else "—"
        change = f"{(proposed.value / current.value - 1) * 100:+.1f}%" if current and proposed else ""
        action = ("update" if current else "add") if proposed else f"keep ({why})"
        table.add_row(escape(m.name), escape(labels), cur, new, change, escape(action))
    _console.print(table)


@baseline_app.command()
def diff(run: Path = typer.Argument(..., help="a summary.json or the reports directory holding one"),
         profile: str = typer.Option(None, "--profile", "-p", help="defaults to the run's profile"),
         metric: list[str] = typer.Option(None, "--metric", "-m", help="only these metric names"),
         force: bool = typer.Option(False, "--force", help="as promote --force would"),
         as_json: bool = typer.Option(False, "--json", help="print JSON (keys in docs/ci.md) instead of a table")
         ) -> None:
    """Show what `promote RUN` would change, without writing anything."""
    try:
        record = load_run(run)
        bset = _profile_set(_profile_of(record, profile))
        plan = _plan(record, bset, metric, force)
    except ConfigError as exc:
        _fail(str(exc))
        return
    if as_json:
        print_json({"run_id": record.run_id, "profile": bset.profile, "path": str(bset.path), "changes": [
            {"metric": m.name, "labels": dict(m.labels), "current": current.value if current else None,
             "proposed": proposed.value if proposed else None,
             "action": ("update" if current else "add") if proposed else "keep", "why": why}
            for m, current, proposed, why in plan]})
        return
    _print_plan(plan, f"{bset.path}: changes from run {record.run_id}")


@baseline_app.command()
def promote(run: Path = typer.Argument(..., help="a summary.json or the reports directory holding one"),
            metric: list[str] = typer.Option(None, "--metric", "-m", help="only these metric names"),
            force: bool = typer.Option(False, "--force", help="also promote regressed or undecided metrics"),
            profile: str = typer.Option(None, "--profile", "-p", help="defaults to the run's profile")) -> None:
    """Write a run's measurements into the profile's baseline file (only pass/improvement/unbaselined)."""
    try:
        record = load_run(run)
        bset = _profile_set(_profile_of(record, profile))
        plan = _plan(record, bset, metric, force)
    except ConfigError as exc:
        _fail(str(exc))
        return
    changed = 0
    for _m, _current, proposed, _why in plan:
        if proposed is not None:
            bset.upsert(proposed)
            changed += 1
    _print_plan(plan, f"{bset.path}: promoting run {record.run_id}")
    if changed:
        bset.save()
        say(f"wrote {changed} baseline entr{'y' if changed == 1 else 'ies'} to {bset.path}; review and commit it")
    else:
        say("nothing promoted")
