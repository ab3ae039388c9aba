"""``hilt report --compare RUN_A RUN_B``: two runs side by side, metric by metric, test by test, version by
version.

Why: the nightly report says *that* a series moved; an engineer then asks "what is different between last
good night and tonight?" and diffs two runs by hand. This answers it from the history in one page (or one
JSON document for a script). The page follows the nightly report's rules: one self-contained file, no
network (same Content-Security-Policy and error probe), every value from a record escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Literal

from hilt.errors import ConfigError
from hilt.history.base import HistoryStore
from hilt.history.series import metric_key, parse_time, point_node
from hilt.record.run_record import RunRecord, TopologyRecord
from hilt.report.fabric import STYLE as FABRIC_STYLE
from hilt.report.fabric import fabric_grid
from hilt.report.html import run_status
from hilt.report.style import page_head
from hilt.report.versions import RUN, VERSION_LABELS, VersionChange, run_versions, version_diff, versions_html

MetricChange = Literal["worse", "better", "same", "only_a", "only_b"]

#: A metric that moved less than this (relative) is "same": the change-point default (docs/reports.md).
MIN_MAGNITUDE = 0.02

_EXTRA_STYLE = """
tr.changed td:first-child::before{content:"≠ ";font-weight:700}
.c-worse{color:#cf222e;font-weight:600}.c-better{color:#0969da;font-weight:600}
"""


@dataclass(frozen=True)
class MetricDiff:
    """One series point (metric and node) in both runs; ``a``/``b`` are means, None when not measured."""

    metric: str  # name{labels}, the series identity
    node: str
    unit: str
    higher_is_better: bool
    a: float | None
    b: float | None
    verdict_a: str | None
    verdict_b: str | None
    change: MetricChange

    @property
    def ratio(self) -> float | None:
        """B over A (0.83 = B is 17% lower); None when one is missing or A is zero."""
        if self.a is None or self.b is None or self.a == 0:
            return None
        ratio = self.b / self.a  # a tiny A gives inf: JSON has no infinity, so "no ratio"
        return ratio if math.isfinite(ratio) else None


@dataclass(frozen=True)
class TestDiff:
    test: str  # the test's identity (TestRecord.identity): runs of it pair up however each was invoked
    nodeid: str  # pytest's node id in B (else in A), to run it again
    node: str | None
    a: str | None  # outcome, None when the test did not run
    b: str | None

    @property
    def changed(self) -> bool:
        return self.a != self.b


@dataclass(frozen=True)
class VersionRow:
    what: str
    node: str  # "" for run-wide
    a: str | None
    b: str | None

    @property
    def changed(self) -> bool:
        return self.a != self.b


@dataclass(frozen=True)
class LinkChange:
    a: str  # device
    b: str
    before: str | None  # the cell in run A (None: the device was not in A's output)
    after: str | None


@dataclass(frozen=True)
class FabricDiff:
    """A node's topology matrix in A against B (as found; each run's own grid shows it against the profile)."""

    node: str
    topology_a: TopologyRecord | None
    topology_b: TopologyRecord | None
    links: tuple[LinkChange, ...]

    @property
    def recorded(self) -> str:
        return "both" if self.topology_a and self.topology_b else ("a" if self.topology_a else "b")


def _cells(t: TopologyRecord) -> dict[tuple[str, str], str | None]:
    return {(a, b): t.found[i][j] for i, a in enumerate(t.devices) for j, b in enumerate(t.devices) if i < j}


def fabric_diffs(a: RunRecord, b: RunRecord) -> list[FabricDiff]:
    """Per node recorded in either run, the links whose found cell differs between A and B."""
    ta = {n.name: n.topology for n in a.nodes if n.topology}
    tb = {n.name: n.topology for n in b.nodes if n.topology}
    out = []
    for node in sorted(set(ta) | set(tb)):
        x, y = ta.get(node), tb.get(node)
        links: tuple[LinkChange, ...] = ()
        if x and y:
            cx, cy = _cells(x), _cells(y)
            order = {d: i for i, d in enumerate(reversed(y.devices + x.devices))}  # B's order first
            links = tuple(LinkChange(p, q, cx.get((p, q)), cy.get((p, q)))
                          for p, q in sorted(set(cx) | set(cy), key=lambda k: (-order[k[0]], -order[k[1]]))
                          if cx.get((p, q)) != cy.get((p, q)))
        out.append(FabricDiff(node, x, y, links))
    return out


@dataclass(frozen=True)
class RunComparison:
    run_a: RunRecord
    run_b: RunRecord
    metrics: list[MetricDiff]
    tests: list[TestDiff]
    versions: list[VersionRow]
    version_changes: list[VersionChange]
    fabric: list[FabricDiff]


def _mean(samples: Sequence[float]) -> float:
    """The mean of finite samples, finite too: ``sum()`` of two samples near the float maximum is inf."""
    n = len(samples)
    return math.fsum(x / n for x in samples)


def _metric_values(record: RunRecord) -> dict[tuple[str, str], tuple[float, str, bool, str | None]]:
    out = {}
    for m in record.metrics:
        if m.samples:
            out[(metric_key(m), point_node(m))] = (_mean(m.samples), m.unit, m.higher_is_better,
                                                   m.verdict.outcome if m.verdict else None)
    return out


def _judge(a: float | None, b: float | None, higher_is_better: bool, min_magnitude: float) -> MetricChange:
    if a is None:
        return "only_b"
    if b is None:
        return "only_a"
    if a == b or (a and abs(b / a - 1.0) < min_magnitude):
        return "same"
    return "better" if (b > a) == higher_is_better else "worse"


_CHANGE_ORDER = {"worse": 0, "better": 1, "only_a": 2, "only_b": 3, "same": 4}


def compare_runs(a: RunRecord, b: RunRecord, min_magnitude: float = MIN_MAGNITUDE) -> RunComparison:
    """Compare run A (usually the older, good one) with run B."""
    va, vb = _metric_values(a), _metric_values(b)
    metrics = []
    for key in set(va) | set(vb):
        x, y = va.get(key), vb.get(key)
        unit, hib = (y or x)[1], (y or x)[2]  # type: ignore[index]
        mean_a, mean_b = (x[0] if x else None), (y[0] if y else None)
        metrics.append(MetricDiff(key[0], key[1], unit, hib, mean_a, mean_b, x[3] if x else None,
                                  y[3] if y else None, _judge(mean_a, mean_b, hib, min_magnitude)))

    def metric_order(d: MetricDiff) -> tuple:
        verdict_moved = d.verdict_a != d.verdict_b
        size = -abs(math.log(d.ratio)) if d.ratio and d.ratio > 0 else 0.0
        return (_CHANGE_ORDER[d.change], not verdict_moved, size, d.metric, d.node)

    metrics.sort(key=metric_order)

    ta = {(t.identity, t.node): t for t in a.tests}
    tb = {(t.identity, t.node): t for t in b.tests}
    tests = []
    for key in set(ta) | set(tb):
        was, now = ta.get(key), tb.get(key)
        tests.append(TestDiff(key[0], (now or was).nodeid, key[1], was.outcome if was else None,
                              now.outcome if now else None))
    tests.sort(key=lambda t: (not t.changed, t.test, t.node or ""))

    ra, rb = run_versions(a), run_versions(b)
    order = list(VERSION_LABELS)
    versions = [VersionRow(what, node, ra.get((what, node)), rb.get((what, node))) for what, node in set(ra) | set(rb)]
    versions.sort(key=lambda v: (order.index(v.what) if v.what in order else len(order), v.what, v.node))
    return RunComparison(a, b, metrics, tests, versions, version_diff(a, b), fabric_diffs(a, b))


def unmatched_metrics(c: RunComparison) -> str | None:
    """A warning when both runs measured metrics but no series point (metric and node) is in both: every row
    is only_a/only_b, "0 metrics worse" would read as good news (e.g. runs of two rigs, whose nodes differ)."""
    if not c.metrics or any(m.a is not None and m.b is not None for m in c.metrics):
        return None
    if not any(m.a is not None for m in c.metrics) or not any(m.b is not None for m in c.metrics):
        return None
    rigs = (f"A is of rig {c.run_a.rig!r}, B of rig {c.run_b.rig!r}" if c.run_a.rig != c.run_b.rig
            else f"both of rig {c.run_a.rig!r}")
    return (f"--compare: no metric was measured on the same node in both runs ({rigs}; metrics are compared "
            "per metric and node), so none can be worse or better")


def _shown(run_id: str, limit: int = 100) -> str:
    """A run id as an error shows it: quoted (a newline in it stays on the line), cut when very long."""
    if len(run_id) <= limit:
        return repr(run_id)
    return f"{run_id[:limit]!r}... ({len(run_id)} characters)"


def find_runs(store: HistoryStore, run_ids: Sequence[str]) -> list[RunRecord]:
    """The runs named, in the order named; an unknown id is a usage error naming it and how to list ids,
    and so is the same id twice (a run against itself shows "nothing changed", whatever the run)."""
    if len(set(run_ids)) < len(run_ids):
        raise ConfigError(f"--compare: RUN_A and RUN_B are the same run {_shown(run_ids[0])}; give two different "
                          "run ids (`hilt history list` shows them)")
    found = []
    for run_id in run_ids:
        record = store.run(run_id)  # one indexed query, not the whole history
        if record is None:
            raise ConfigError(f"{store.location}: no run {_shown(run_id)} in the history; `hilt history list` "
                              f"shows the run ids")
        found.append(record)
    return found


# --- JSON ----------------------------------------------------------------------------------------------


def _run_json(r: RunRecord) -> dict[str, object]:
    return {"run_id": r.run_id, "started_at": r.started_at, "rig": r.rig, "image": r.image,
            "status": run_status(r), "gate": r.gate.outcome if r.gate else None}


def comparison_json(c: RunComparison) -> dict[str, object]:
    """The ``--json`` document; keys are stable (docs/reports.md)."""
    return {
        "run_a": _run_json(c.run_a),
        "run_b": _run_json(c.run_b),
        "version_changes": [v.to_json() for v in c.version_changes],
        "versions": [{"what": v.what, "node": v.node or None, "a": v.a, "b": v.b, "changed": v.changed}
                     for v in c.versions],
        "metrics": [{"metric": m.metric, "node": m.node or None, "unit": m.unit,
                     "higher_is_better": m.higher_is_better, "a": m.a, "b": m.b, "ratio": m.ratio,
                     "verdict_a": m.verdict_a, "verdict_b": m.verdict_b, "change": m.change} for m in c.metrics],
        "tests": [{"test": t.test, "nodeid": t.nodeid, "node": t.node, "a": t.a, "b": t.b, "changed": t.changed}
                  for t in c.tests],
        "fabric": [{"node": f.node, "recorded": f.recorded,
                    "links": [{"a": k.a, "b": k.b, "before": k.before, "after": k.after} for k in f.links]}
                   for f in c.fabric],
    }


# --- HTML ----------------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _runs_table(c: RunComparison) -> str:
    rows = ['<table class="runs"><tr><th></th><th>run</th><th>rig</th><th>started</th><th>image</th>'
            '<th>status</th><th>gate</th></tr>']
    for label, r in (("A", c.run_a), ("B", c.run_b)):
        status = run_status(r)
        gate = f"{r.gate.outcome}: {r.gate.reason}" if r.gate else "no gate verdict"
        rows.append(f'<tr class="run-{label.lower()}" data-run="{escape(r.run_id, quote=True)}"><th>{label}</th>'
                    f"<td><b>{_e(r.run_id)}</b></td><td>{_e(r.rig)}</td>"
                    f"<td>{parse_time(r.started_at):%Y-%m-%d %H:%M} UTC</td><td>{_e(r.image or '?')}</td>"
                    f'<td><span class="badge s-{status}">{status}</span></td><td>{_e(gate)}</td></tr>')
    rows.append("</table>")
    return "".join(rows)


def _versions_section(c: RunComparison) -> str:
    out = ['<section id="versions"><h2>Versions</h2><h3>What changed</h3>', versions_html(c.version_changes),
           '<table class="versions"><tr><th>what</th><th>node</th><th>A</th><th>B</th><th>changed</th></tr>']
    for v in c.versions:
        label = VERSION_LABELS.get(v.what, v.what)
        out.append(f'<tr class="version{" changed" if v.changed else ""}" data-what="{escape(v.what, quote=True)}"'
                   f' data-node="{escape(v.node, quote=True)}"><td>{_e(label)}</td>'
                   f'<td>{_e(v.node) if v.node != RUN else "<i>run</i>"}</td><td>{_e(v.a or "not recorded")}</td>'
                   f'<td>{_e(v.b or "not recorded")}</td><td>{"changed" if v.changed else ""}</td></tr>')
    out.append("</table></section>")
    return "".join(out)


_CHANGE_WORDS = {"worse": "worse", "better": "better", "same": "same", "only_a": "only in A", "only_b": "only in B"}


def _metrics_section(c: RunComparison, min_magnitude: float) -> str:
    out = [f'<section id="metrics"><h2>Metrics</h2><p class="muted">B against A; a move under '
           f'{min_magnitude:.0%} is "same". Worse first.</p>'
           '<table class="metrics"><tr><th>metric</th><th>node</th><th>A</th><th>B</th><th>B/A</th>'
           '<th>verdict A</th><th>verdict B</th><th>change</th></tr>']
    for m in c.metrics:
        ratio = "—" if m.ratio is None else f"{m.ratio:.3f} ({m.ratio - 1:+.1%})"
        moved = m.change != "same" or m.verdict_a != m.verdict_b
        out.append(f'<tr class="metric{" changed" if moved else ""}" data-metric="{escape(m.metric, quote=True)}" '
                   f'data-node="{escape(m.node, quote=True)}" data-change="{m.change}"><td>{_e(m.metric)}</td>'
                   f"<td>{_e(m.node)}</td><td>{_num(m.a)} {_e(m.unit)}</td><td>{_num(m.b)} {_e(m.unit)}</td>"
                   f"<td>{ratio}</td><td>{_e(m.verdict_a or '—')}</td><td>{_e(m.verdict_b or '—')}</td>"
                   f'<td class="c-{m.change}">{_CHANGE_WORDS[m.change]}'
                   f'{" (higher is better)" if m.higher_is_better else " (lower is better)"}</td></tr>')
    if not c.metrics:
        out.append('<tr><td colspan="8">Neither run recorded a metric.</td></tr>')
    out.append("</table></section>")
    return "".join(out)


def _tests_section(c: RunComparison) -> str:
    changed = [t for t in c.tests if t.changed]
    same = [t for t in c.tests if not t.changed]

    def row(t: TestDiff) -> str:
        return (f'<tr class="test{" changed" if t.changed else ""}" data-test="{escape(t.test, quote=True)}" '
                f'data-nodeid="{escape(t.nodeid, quote=True)}"><td>{_e(t.test)}</td>'
                f"<td>{_e(t.node or '')}</td><td>{_e(t.a or 'did not run')}</td>"
                f"<td>{_e(t.b or 'did not run')}</td></tr>")

    head = "<tr><th>test</th><th>node</th><th>A</th><th>B</th></tr>"
    out = [f'<section id="tests"><h2>Tests</h2><p>{len(changed)} of {len(c.tests)} tests changed outcome.</p>']
    if changed:
        out.append(f'<table class="tests-changed">{head}{"".join(row(t) for t in changed)}</table>')
    if same:
        out.append(f"<details><summary>{len(same)} with the same outcome</summary>"
                   f'<table class="tests-same">{head}{"".join(row(t) for t in same)}</table></details>')
    out.append("</section>")
    return "".join(out)


def _fabric_section(c: RunComparison) -> str:
    if not c.fabric:
        return ""
    out = ['<section id="fabric"><h2>Fabric</h2>']
    same = [f.node for f in c.fabric if f.recorded == "both" and not f.links]
    for f in c.fabric:
        if f.recorded != "both":
            out.append(f'<p class="fabric-change" data-node="{escape(f.node, quote=True)}">{_e(f.node)}: topology '
                       f'recorded only in run {f.recorded.upper()}.</p>')
        elif f.links:
            items = "".join(f"<li>{_e(k.a)}–{_e(k.b)}: {_e(k.before or 'missing')} → {_e(k.after or 'missing')}"
                            "</li>" for k in f.links)
            grid = fabric_grid(f.node, f.topology_b, c.run_b.rig, c.run_b.run_id) if f.topology_b else ""
            out.append(f'<div class="fabric-change" data-node="{escape(f.node, quote=True)}" '
                       f'data-links="{len(f.links)}"><p><b>{_e(f.node)}: {len(f.links)} link'
                       f'{"s" if len(f.links) != 1 else ""} changed</b> (A → B):</p><ul>{items}</ul>'
                       f"<p class=\"muted\">Run B's matrix against the profile:</p>{grid}</div>")
    if same:
        out.append(f'<p class="fabric-same">Same topology in both runs: {_e(", ".join(same))}.</p>')
    out.append("</section>")
    return "".join(out)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def comparison_html(c: RunComparison, min_magnitude: float = MIN_MAGNITUDE) -> str:
    worse = sum(1 for m in c.metrics if m.change == "worse")
    better = sum(1 for m in c.metrics if m.change == "better")
    tests = sum(1 for t in c.tests if t.changed)
    links = sum(len(f.links) for f in c.fabric)
    title = f"hilt: {c.run_a.run_id} vs {c.run_b.run_id}"
    return "\n".join([
        page_head(title, _EXTRA_STYLE + FABRIC_STYLE),
        f"<h1>Compare {_e(c.run_a.run_id)} (A) with {_e(c.run_b.run_id)} (B)</h1>",
        f'<p class="summary">{_count(len(c.version_changes), "version change")} · '
        f'{_count(worse, "metric")} worse, {better} better · {_count(tests, "test")} changed outcome'
        + (f" · {_count(links, 'fabric link')} changed" if links else "")
        + f' <span class="muted">· generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · '
        '<a href="#versions">versions</a> · ' + ('<a href="#fabric">fabric</a> · ' if c.fabric else "")
        + '<a href="#metrics">metrics</a> · <a href="#tests">tests</a></span></p>',
        _runs_table(c),
        _versions_section(c),
        _fabric_section(c),
        _metrics_section(c, min_magnitude),
        _tests_section(c),
        "</body></html>",
    ])


def write_comparison(c: RunComparison, out: Path, min_magnitude: float = MIN_MAGNITUDE) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(comparison_html(c, min_magnitude), encoding="utf-8")
    return out
