"""The run's summary in three forms: summary.json (the RunRecord, for machines and history), summary.md (a table a
person reads in ten seconds, also appended to the GitHub Actions step summary) and a rich table on the console.

The verdict comes first in every form: the reader wants "can this image ship?" before the details.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hilt.record.run_record import MetricRecord, RunRecord
from hilt.util.atomic_file import OutputError, write_atomic

_BADGE = {"pass": "PASS", "improvement": "PASS", "regression": "FAIL", "inconclusive": "INCONCLUSIVE",
          "unbaselined": "UNBASELINED", "not_run": "NOT RUN"}
_ICON = {"pass": "✅", "improvement": "🚀", "regression": "❌", "inconclusive": "⚠️", "unbaselined": "❔"}
_STYLE = {"pass": "green", "improvement": "green", "regression": "bold red", "inconclusive": "yellow",
          "unbaselined": "yellow"}


def _mean(samples: list[float]) -> float:
    return math.fsum(samples) / len(samples) if samples else math.nan


def _num(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.4g}"


def _labels(metric: MetricRecord) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(metric.labels.items())) or "—"


def _change(metric: MetricRecord) -> str:
    if metric.baseline is None or not metric.samples:
        return "—"
    return f"{(_mean(metric.samples) / metric.baseline.value - 1.0) * 100:+.1f}%"


def _metric_row(metric: MetricRecord) -> tuple[str, str, str, str, str, str, str]:
    unit = f" {metric.unit}" if metric.unit else ""
    measured = f"{_num(_mean(metric.samples))}{unit} (n={len(metric.samples)})"
    baseline = (f"{_num(metric.baseline.value)}{unit} ±{metric.baseline.tolerance:.0%}"
                if metric.baseline is not None else "—")
    outcome = metric.verdict.outcome if metric.verdict is not None else "—"
    return (metric.name, _labels(metric), measured, baseline, _change(metric), outcome,
            metric.verdict.reason if metric.verdict is not None else "")


def _headline(record: RunRecord) -> tuple[str, str]:
    if record.gate is None:
        return "—", "no gate verdict recorded"
    return record.gate.outcome, record.gate.reason


def _problems(record: RunRecord) -> tuple[list[str], list[str]]:
    failures = [f"`{t.nodeid}`: {t.message or t.outcome}" for t in record.tests
                if t.outcome == "failed" or t.kind in ("product", "regression")]
    infra = [f"`{t.nodeid}`: {t.message or t.outcome}" for t in record.tests
             if t.kind == "infrastructure" or (t.outcome == "error" and t.kind == "none")]
    if record.interrupted is None or record.interrupted.phase not in ("lease", "boot"):  # cut off: no rig failure
        infra += [f"node `{n.name}`: {n.error}" for n in record.nodes if n.error]
    return failures, infra


def _split_gated(record: RunRecord) -> tuple[list, list]:
    """Metrics that decide the gate, and those recorded for information only."""
    gated = [m for m in record.metrics if m.verdict is not None and m.verdict.gated]
    return gated, [m for m in record.metrics if m.verdict is None or not m.verdict.gated]


def _metric_table(metrics: list) -> list[str]:
    lines = ["| metric | labels | measured mean | baseline | change | verdict |", "|---|---|---|---|---|---|"]
    for m in metrics:
        name, labels, measured, baseline, change, verdict, _ = _metric_row(m)
        mark = _ICON.get(verdict, "")
        lines.append(f"| `{name}` | {labels} | {measured} | {baseline} | {change} | {mark} {verdict} |")
    return lines + [""]


def _coverage_lines(record: RunRecord) -> list[str]:
    """"gated: K of M entries measured", and each entry that was not, with why (a PASS must be earned)."""
    cov = record.coverage
    if cov is None:
        return []
    if not cov.gate_run:
        return []  # the verdict's reason above says it, once
    lines = [f"**{cov.line()}**", ""]
    missing = [e for e in cov.entries if not e.measured]
    lines += [f"- not measured: `{e.key}` ({e.why})" for e in missing]
    lines += [f"- not gated: {u}" for u in cov.ungated]
    return lines + ([""] if missing or cov.ungated else [])


def _firmware_lines(record: RunRecord) -> list[str]:
    """The firmware each node ran (test_firmware_matrix's versions), folded: one row per node."""
    nodes = [n for n in record.nodes if n.firmware]
    if not nodes:
        return []
    components = list(dict.fromkeys(c for n in nodes for c in (n.firmware or {})))

    def cell(values: list[str | None]) -> str:
        distinct = list(dict.fromkeys(v or "?" for v in values))
        return ", ".join(f"`{v}`" for v in distinct) if len(distinct) == 1 else \
            ", ".join(f"[{i}] `{v or '?'}`" for i, v in enumerate(values))

    lines = [f"<details><summary>firmware of {len(nodes)} node(s)</summary>", "",
             "| node | " + " | ".join(components) + " |", "|---|" + "---|" * len(components)]
    for n in nodes:
        lines.append(f"| `{n.name}` | " + " | ".join(cell((n.firmware or {}).get(c, [])) for c in components) + " |")
    return lines + ["", "</details>", ""]


def _ending_lines(record: RunRecord, limit: int = 50) -> list[str]:
    """How the run ended, where it did not end on its own, and the outputs that were not written."""
    lines: list[str] = []
    stop = record.interrupted
    if stop is not None:
        during = {"lease": "while waiting for its nodes; nothing ran: no node was leased or booted, no test ran",
                  "boot": "while the nodes were reserved and booted", "tests": "while the tests ran",
                  "reports": "while the reports were written"}[stop.phase]
        lines.append(f"- **interrupted** by {stop.signal} {during}")
        if stop.waiting_for:
            lines.append(f"  - waiting for: {stop.waiting_for}" + (f": {stop.blocked_by}" if stop.blocked_by else ""))
        lines += [f"  - booting: `{node}` ({step})" for node, step in sorted(stop.booting.items())]
        lines += [f"  - cut off (no result): `{t}`" for t in stop.running]
        if stop.not_run:
            shown = ", ".join(f"`{t}`" for t in stop.not_run[:limit])
            more = f" and {len(stop.not_run) - limit} more" if len(stop.not_run) > limit else ""
            lines.append(f"  - not run ({len(stop.not_run)}): {shown}{more}")
    if record.lease_lost:
        lines.append(f"- **lease lost**: {record.lease_lost}")
    if record.internal_error:
        lines.append(f"- **hilt internal error**: {record.internal_error}")
    for problem in record.output_problems:
        text = problem.line()
        if problem.recover:
            text = text.replace(problem.recover, f"`{problem.recover}`")
        lines.append(f"- **{text.split(':', 1)[0]}**:{text.split(':', 1)[1]}")
    return lines + [""] if lines else []


def render_markdown(record: RunRecord) -> str:
    """summary.md: the verdict, the run, one row per metric, then failures and infrastructure errors."""
    outcome, reason = _headline(record)
    badge = _BADGE.get(outcome, outcome.upper())
    lines = [f"## {_ICON.get(outcome, '')} hilt gate: **{badge}** ({outcome})".replace("  ", " "), "",
             f"{reason}", ""]
    facts = [f"rig `{record.rig}`", f"image `{record.image or '?'}`", f"run `{record.run_id}`"]
    if record.profile:
        facts.append(f"profile `{record.profile}`")
    if record.nodes:
        facts.append("nodes " + ", ".join(f"`{n.name}`" for n in record.nodes))
    if record.exit_code is not None:
        facts.append(f"exit code {record.exit_code}")
    lines += [" · ".join(facts), ""]
    lines += _ending_lines(record)
    lines += _coverage_lines(record)
    gated, informational = _split_gated(record)
    order = {"regression": 0, "inconclusive": 1, "unbaselined": 2, "improvement": 3, "pass": 4}
    ranked = sorted(gated, key=lambda m: order.get(m.verdict.outcome if m.verdict else "", 5))
    if ranked:
        lines += _metric_table(ranked)
        undecided = [m for m in ranked if m.verdict and m.verdict.outcome != "pass"]
        if undecided:
            lines += ["**Why**", ""] + [f"- {m.verdict.reason}" for m in undecided if m.verdict] + [""]
    if informational:
        # measured for the record, not gated: folded away so that the verdict stays a ten-second read
        lines += [f"<details><summary>{len(informational)} more metric(s), measured but not gated</summary>", ""]
        lines += _metric_table(informational) + ["</details>", ""]
    lines += _firmware_lines(record)
    failures, infra = _problems(record)
    if failures:
        lines += [f"**Failures ({len(failures)})**", ""] + [f"- {f}" for f in failures] + [""]
    if infra:
        lines += [f"**Infrastructure errors ({len(infra)})**", ""] + [f"- {e}" for e in infra] + [""]
    return "\n".join(lines).rstrip() + "\n"


def write_summary_json(record: RunRecord, reports_dir: Path) -> Path:
    """summary.json, whole or not at all (hilt.util.atomic_file)."""
    return write_atomic(Path(reports_dir) / "summary.json", record.model_dump_json(indent=2) + "\n")


def write_summary_md(record: RunRecord, reports_dir: Path) -> Path:
    """summary.md, whole or not at all; appended to $GITHUB_STEP_SUMMARY when that is set."""
    markdown = render_markdown(record)
    path = write_atomic(Path(reports_dir) / "summary.md", markdown)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as fh:
                fh.write(markdown + "\n")
        except OSError as exc:
            raise OutputError(step_summary, exc) from exc
    return path


def write_summary(record: RunRecord, reports_dir: Path) -> tuple[Path, Path]:
    """Write summary.json and summary.md (each atomically)."""
    return write_summary_json(record, reports_dir), write_summary_md(record, reports_dir)


def print_summary(record: RunRecord, console: Console) -> None:
    """The same summary as a rich table, verdict first."""
    outcome, reason = _headline(record)
    style = _STYLE.get(outcome, "bold")
    badge = _BADGE.get(outcome, outcome.upper())
    shown = badge if badge.lower() == outcome.replace("_", " ") else f"{badge} ({outcome})"
    # the reason is the run's last line (hilt/pytestplugin/collector.py), where a person looks: said there, once
    console.print(f"[{style}]hilt gate: {shown}[/]", highlight=False)
    cov = record.coverage
    if cov is not None and cov.gate_run:
        if cov.line() not in reason:
            console.print(cov.line(), highlight=False)
        for e in [e for e in cov.entries if not e.measured][:10]:
            console.print(f"  not measured: {escape(e.key)} ({escape(e.why or '')})", highlight=False)
    gated, informational = _split_gated(record)
    if informational:
        console.print(f"({len(informational)} more metric(s) measured but not gated: see summary.md)", highlight=False)
    if gated:
        table = Table(title=escape(f"rig {record.rig} · image {record.image or '?'} · run {record.run_id}"))
        for col in ("metric", "labels", "measured mean", "baseline", "change", "verdict"):
            table.add_column(col, justify="right" if col in ("change",) else "left")
        for m in gated:
            name, labels, measured, baseline, change, verdict, _ = _metric_row(m)
            shown = f"[{_STYLE[verdict]}]{verdict}[/]" if verdict in _STYLE else escape(verdict)
            table.add_row(escape(name), escape(labels), measured, baseline, change, shown)
        console.print(table)
    failures, infra = _problems(record)
    for f in failures:
        console.print(f"[red]failure[/] {escape(f.replace('`', ''))}", highlight=False)
    for e in infra:
        console.print(f"[yellow]infrastructure[/] {escape(e.replace('`', ''))}", highlight=False)
