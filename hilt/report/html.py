"""The nightly regression report: one self-contained HTML file built from the run history.

Answers, top to bottom: what is red tonight (per rig and node), which metrics moved and since which
run and image (Otava change points), how each metric trended against its baseline, and each run's
details. It makes no network request: charts are inline SVG and a Content-Security-Policy forbids
every fetch, so a report that opens from a mail attachment looks the same as on the CI server.
A tiny inline script counts the charts and records any script error or policy violation into
attributes of <html>, which is how the tests (headless Chromium) see that the page rendered cleanly.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Literal

from hilt.history.series import SeriesKey, parse_time, series_from_runs
from hilt.record.run_record import NodeRecord, RunRecord, TestRecord
from hilt.report.changes import Change, ChangeOptions, run_anchor, with_versions
from hilt.report.fabric import fabric_section
from hilt.report.links import run_links
from hilt.report.nodes import OUTLIER_THRESHOLD, node_anchor, node_changes, nodes_section, outlier_notes
from hilt.report.order import rank_series
from hilt.report.outcomes import outcome_histories, state_notes, tests_section
from hilt.report.rollout_section import rollouts_section
from hilt.report.style import page_head
from hilt.report.svg import labels_text, metric_title, trend_chart, verdict_class
from hilt.report.versions import versions_html

Status = Literal["pass", "fail", "broken"]


def _failed(test: TestRecord) -> bool:
    return test.outcome in ("failed", "error")


def _is_broken(test: TestRecord) -> bool:
    return test.kind == "infrastructure" or (test.outcome == "error" and test.kind != "regression")


def _status(tests: Sequence[TestRecord], node_broken: bool = False, gate_failed: bool = False) -> Status:
    """fail (product or regression) outranks broken (infrastructure): red is what readers act on."""
    bad = [t for t in tests if _failed(t)]
    if gate_failed or any(not _is_broken(t) for t in bad):
        return "fail"
    if node_broken or bad:
        return "broken"
    return "pass"


def node_status(record: RunRecord, node: NodeRecord) -> Status:
    tests = [t for t in record.tests if t.node == node.name]
    return _status(tests, node_broken=not node.booted or bool(node.error))


def run_status(record: RunRecord) -> Status:
    broken_node = any(not n.booted or n.error for n in record.nodes)
    gate_failed = record.gate is not None and record.gate.outcome == "regression"
    return _status(record.tests, node_broken=broken_node, gate_failed=gate_failed)


def _badge(status: str) -> str:
    return f'<span class="badge s-{status}">{status}</span>'


def _time(value: str) -> str:
    return f"{parse_time(value):%Y-%m-%d %H:%M} UTC"


def _tonight(latest: dict[str, RunRecord], report_dir: Path, notes: dict[tuple[str, str], str] | None = None,
             test_notes: dict[tuple[str, str, str | None], str] | None = None) -> str:
    """``notes``: a line per node worth reading though its tests passed (an outlier against its peers);
    ``test_notes``: a failed test's history (broken since, flaky), by (rig, test identity, node)."""
    out = ['<section id="tonight"><h2>Tonight</h2><table class="status"><tr><th>rig</th><th>node</th>'
           '<th>status</th><th>image</th><th>detail</th></tr>']
    for rig in sorted(latest):
        r = latest[rig]
        gate = f"gate {r.gate.outcome}: {r.gate.reason}" if r.gate else "no gate verdict"
        counts = defaultdict(int)
        for t in r.tests:
            counts[t.outcome] += 1
        tally = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        out.append(f'<tr class="rig-row" data-rig="{escape(rig)}" data-status="{run_status(r)}">'
                   f'<td><b>{escape(rig)}</b></td><td><a href="#{run_anchor(r.run_id)}">run '
                   f'{escape(r.run_id)}</a> {_ci_link(r)} {run_links(r, report_dir)}</td>'
                   f'<td>{_badge(run_status(r))}</td>'
                   f'<td>{escape(r.image or "?")}</td><td>{escape(gate)}<br><span class="muted">{escape(tally)} · '
                   f'{_time(r.started_at)}</span></td></tr>')
        for node in r.nodes:
            status = node_status(r, node)
            why = node.error or "; ".join(f"{t.nodeid}: {t.outcome}{_test_note(rig, t, test_notes)}" for t in r.tests
                                          if t.node == node.name and _failed(t))
            out.append(f'<tr class="node-row" data-rig="{escape(rig)}" data-node="{escape(node.name)}" '
                       f'data-status="{status}"><td></td><td>{escape(node.name)}</td><td>{_badge(status)}</td>'
                       f'<td>{escape(node.image_id or r.image or "?")}</td><td>{escape(why)}'
                       f'{_node_note(rig, node.name, (notes or {}).get((rig, node.name)))}</td></tr>')
    out.append("</table></section>")
    return "".join(out)


def _test_note(rig: str, test: TestRecord, notes: dict[tuple[str, str, str | None], str] | None) -> str:
    note = (notes or {}).get((rig, test.identity, test.node))
    return f" ({note})" if note else ""


def _node_note(rig: str, node: str, note: str | None) -> str:
    return f'<br><a class="node-note" href="#{node_anchor(rig, node)}">{escape(note)}</a>' if note else ""


def _changes_table(changes: list[Change], node_of: dict[tuple[SeriesKey, int], str] | None = None) -> str:
    """``node_of``: the node each change was found on ((series, point index) -> node; changes are per node)."""
    if not changes:
        return ('<section id="changes"><h2>Detected changes</h2><p class="no-changes">No change point in '
                'any metric.</p></section>')
    out = ['<section id="changes"><h2>Detected changes</h2><table class="changes"><tr><th>metric</th>'
           '<th>rig</th><th>kind</th><th>change</th><th>first run</th><th>image</th><th>before → after</th>'
           '<th>p-value</th><th>what else changed</th></tr>']
    for c in sorted(changes, key=lambda c: (c.started_at, c.key.metric), reverse=True):
        out.append(
            f'<tr class="change" data-metric="{escape(c.key.metric)}" data-run="{escape(c.run_id)}" '
            f'data-image="{escape(c.image or "")}" data-kind="{c.kind}">'
            f'<td><a href="#{_chart_id(c.key)}">{escape(metric_title(c.key.metric))}</a>{_on_node(c, node_of)}</td>'
            f'<td>{escape(c.key.rig)}</td>'
            f'<td class="k-{c.kind}">{c.kind}</td><td>{c.rel_change:+.1%}</td>'
            f'<td><a href="#{c.anchor}">{escape(c.run_id)}</a><br><span class="muted">'
            f'{c.started_at:%Y-%m-%d %H:%M}</span></td><td>{escape(c.image or "?")}<br><span class="muted">'
            f'was {escape(c.previous_image or "?")}</span></td><td>{c.mean_before:.4g} → {c.mean_after:.4g} '
            f'{escape(c.unit)}</td><td>{c.pvalue:.2g}</td>'
            f'<td>{versions_html(c.versions, (c.previous_run_id, c.run_id))}</td></tr>')
    out.append("</table></section>")
    return "".join(out)


def _on_node(change: Change, node_of: dict[tuple[SeriesKey, int], str] | None) -> str:
    node = (node_of or {}).get((change.key, change.index), "")
    return f' <span class="change-node" data-node="{escape(node)}">on <b>{escape(node)}</b></span>' if node else ""


def _chart_id(key: SeriesKey) -> str:
    raw = f"chart-{key.rig}-{key.metric}"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in raw)


def _ci_link(r: RunRecord) -> str:
    """A link to the run's CI job (recorded from the CI's environment), only for an http(s) URL."""
    if not (r.ci_url and re.match(r"^https?://", r.ci_url)):  # never a javascript: or data: link
        return ""
    return f'<a class="ci-job" href="{escape(r.ci_url, quote=True)}" rel="noopener noreferrer">CI job</a>'


def _run_details(r: RunRecord, report_dir: Path) -> str:
    status = run_status(r)
    rows = [f'<section class="run" id="{run_anchor(r.run_id)}"><details class="run"><summary>'
            f'{_badge(status)} <b>{escape(r.run_id)}</b> · {escape(r.rig)} · {escape(r.image or "?")} · '
            f'{_time(r.started_at)}</summary>']
    if r.gate:
        rows.append(f"<p>gate: <b>{escape(r.gate.outcome)}</b> {escape(r.gate.reason)}</p>")
    if _ci_link(r):
        rows.append(f'<p>{_ci_link(r)} <span class="muted">{escape(r.ci_url or "")}</span></p>')
    if run_links(r, report_dir):
        rows.append(f'<p class="run-links">{run_links(r, report_dir)}</p>')
    if r.versions:
        rows.append("<p class=\"muted\">" + " · ".join(f"{escape(k)} {escape(v)}"
                                                      for k, v in sorted(r.versions.items())) + "</p>")
    if r.nodes:
        rows.append("<table><tr><th>node</th><th>image</th><th>kernel</th><th>driver</th><th>boot</th>"
                    "<th>error</th></tr>")
        for n in r.nodes:
            boot = f"{n.boot_s:.0f} s" if n.boot_s is not None else ("booted" if n.booted else "not booted")
            rows.append(f"<tr><td>{escape(n.name)}</td><td>{escape(n.image_id or '')}</td>"
                        f"<td>{escape(n.kernel or '')}</td><td>{escape(n.driver or '')}</td><td>{boot}</td>"
                        f"<td>{escape(n.error or '')}</td></tr>")
        rows.append("</table>")
    bad = [t for t in r.tests if _failed(t)]
    if bad:
        rows.append("<table><tr><th>test</th><th>outcome</th><th>message</th></tr>")
        for t in bad:
            rows.append(f"<tr><td>{escape(t.nodeid)}</td><td>{escape(t.outcome)} ({escape(t.kind)})</td>"
                        f"<td><pre>{escape((t.message or '')[:2000])}</pre></td></tr>")
        rows.append("</table>")
    flagged = [m for m in r.metrics if m.verdict and m.verdict.outcome not in ("pass", "unbaselined")]
    if flagged:
        rows.append("<ul>" + "".join(
            f'<li><span class="{verdict_class(m.verdict.outcome)}">■</span> {escape(m.name)} '
            f'{escape(labels_text(m.labels))}: {escape(m.verdict.outcome)}, {escape(m.verdict.reason)}</li>'
            for m in flagged if m.verdict) + "</ul>")
    rows.append(f'<p class="muted">{len(r.tests)} tests, {len(r.metrics)} metrics</p></details></section>')
    return "".join(rows)


def build_report(runs: list[RunRecord], out: Path, title: str = "hilt nightly report",
                 options: ChangeOptions = ChangeOptions(), max_markers: int = 60,
                 outlier: float = OUTLIER_THRESHOLD) -> Path:
    """Write the report for ``runs`` (any order) to ``out`` and return its path. ``outlier``: how far (relative)
    on the worse side of its peers a node is flagged."""
    out = Path(out)
    ordered = sorted(runs, key=lambda r: (parse_time(r.started_at), r.run_id))
    latest: dict[str, RunRecord] = {}
    for r in ordered:
        latest[r.rig] = r
    all_series = series_from_runs(ordered)
    changes_by_key = {key: node_changes(s, options) for key, s in all_series.items()}
    changes_by_key = with_versions(changes_by_key, ordered)
    all_changes = [c for found in changes_by_key.values() for c in found]
    histories = outcome_histories(ordered)

    charts = ['<section id="trends"><h2>Trends</h2>']
    for ranked in rank_series(all_series, changes_by_key):  # what needs action first, not alphabetical
        key = ranked.key
        series = all_series[key]
        chart_id = _chart_id(key)
        direction = "higher is better" if series.higher_is_better else "lower is better"
        runs_n = len({p.run_id for p in series.points})
        flag = (f'<span class="attn attn-{ranked.attention}">{ranked.attention}</span> '
                f'<span class="muted">{escape(ranked.why)}</span><br>' if ranked.why else "")
        charts.append(f'<h3 class="series" data-attention="{ranked.attention}" data-metric="{escape(key.metric)}">'
                      f'{flag}<a href="#{chart_id}">{escape(metric_title(key.metric))}</a> <span class="muted">on '
                      f'{escape(key.rig)} · {escape(series.unit)} · {direction} · {runs_n} runs'
                      f'</span></h3>')
        charts.append(trend_chart(series, changes_by_key[key], chart_id, max_markers=max_markers))
    if not all_series:
        charts.append("<p>No metrics recorded in these runs.</p>")
    charts.append("</section>")

    span = (f"{len(ordered)} runs, {_time(ordered[0].started_at)} to {_time(ordered[-1].started_at)}"
            if ordered else "no runs")
    page = [
        page_head(title),
        f'<h1>{escape(title)}</h1><p class="muted">{span} · generated '
        f'{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · <a href="#changes">changes</a> · <a href="#nodes">nodes</a>'
        f' · <a href="#tests">tests</a> · <a href="#trends">trends</a> · <a href="#runs">runs</a></p>',
        (_tonight(latest, out.parent, outlier_notes(ordered, outlier), state_notes(histories)) if latest
         else "<p>No runs in this window.</p>"),
        _changes_table(all_changes, {(c.key, c.index): all_series[c.key].points[c.index].node for c in all_changes}),
        nodes_section(ordered, histories, outlier),
        tests_section(ordered, histories),
        fabric_section(ordered),
        rollouts_section(ordered),
        "".join(charts),
        '<section id="runs"><h2>Runs</h2>',
        "".join(_run_details(r, out.parent) for r in reversed(ordered)),
        "</section></body></html>",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(page), encoding="utf-8")
    return out
