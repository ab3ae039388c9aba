"""The per-node view: each node against its peers, and change points found node by node.

Why per node: a series holds one point per node per run (issue 13). A step on one node of four moves the
series' mean by a quarter of the step, below what a reader (or Otava's minimum magnitude) notices; split by
node it is the full step. And a node that measures 10% under its peers is news even when every value is
within the baseline's tolerance: the peers say what this hardware does on this image tonight.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from html import escape

from hilt.history.series import Series, metric_key, parse_time, point_node
from hilt.record.run_record import MetricRecord, RunRecord
from hilt.report.changes import Change, ChangeOptions, detect_changes, run_anchor
from hilt.report.outcomes import NEEDS_A_LOOK, STATE_ORDER, OutcomeHistory, history_table
from hilt.report.svg import metric_title

OUTLIER_THRESHOLD = 0.10  # a node this far (relative) on the worse side of its peers' median is flagged
MIN_PEERS = 2  # with one peer there is no telling which of the two is off


def node_changes(series: Series, options: ChangeOptions = ChangeOptions()) -> list[Change]:
    """Change points of each node's own line; ``index`` points into the whole series (oldest first)."""
    by_node: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(series.points):
        by_node[p.node].append(i)
    if len(by_node) <= 1:
        return detect_changes(series, options)
    found: list[Change] = []
    for node in sorted(by_node):
        idx = by_node[node]
        sub = Series(series.key, series.unit, series.higher_is_better, [series.points[i] for i in idx])
        found.extend(replace(c, index=idx[c.index]) for c in detect_changes(sub, options))
    return sorted(found, key=lambda c: (c.started_at, c.index))


@dataclass(frozen=True)
class NodeValue:
    """One node's latest value of one series, against the median of its peers (same profile, same series)."""

    node: str
    profile: str
    rig: str
    metric: str  # metric_key: name{labels}
    unit: str
    higher_is_better: bool
    value: float
    run_id: str
    verdict: str | None
    peer_median: float | None
    peers: int

    @property
    def deviation(self) -> float | None:
        """Relative distance from the peers' median (-0.12 = 12% below it); None without enough peers."""
        if self.peer_median is None or self.peer_median == 0:
            return None
        return self.value / self.peer_median - 1.0

    @property
    def worse_by(self) -> float:
        """How far on the worse side of the peers (0 when on the better side or unknown)."""
        d = self.deviation
        if d is None:
            return 0.0
        return max(0.0, -d if self.higher_is_better else d)

    def outlier(self, threshold: float = OUTLIER_THRESHOLD) -> bool:
        return self.worse_by >= threshold


@dataclass
class NodeView:
    """What the per-node section shows for one node."""

    node: str
    profile: str
    rig: str
    values: list[NodeValue]
    last_run: str = ""

    def outliers(self, threshold: float = OUTLIER_THRESHOLD) -> list[NodeValue]:
        return sorted((v for v in self.values if v.outlier(threshold)), key=lambda v: -v.worse_by)

    @property
    def worst(self) -> float:
        return max((v.worse_by for v in self.values), default=0.0)


def _profile_of(record: RunRecord, node: str, metric_profile: str | None) -> str:
    return record.node_profiles.get(node) or metric_profile or record.profile or "(no profile)"


def latest_node_values(runs: Iterable[RunRecord]) -> list[NodeValue]:
    """Each node's latest value of each series it measures (per-node points only; lease-wide ones have no
    single node), each compared with the median of the other nodes of its profile measuring the same series."""
    ordered = sorted(runs, key=lambda r: (parse_time(r.started_at), r.run_id))
    # a node is (rig, node name): two rigs may both have a "node1"
    latest: dict[tuple[str, str, str], tuple[str, RunRecord, MetricRecord]] = {}  # (series, rig, node) -> newest
    for record in ordered:
        for metric in record.metrics:
            node = point_node(metric)
            if not node or "+" in node or not metric.samples:
                continue
            latest[(metric_key(metric), record.rig, node)] = (_profile_of(record, node, metric.profile), record,
                                                              metric)
    groups: dict[tuple[str, str], dict[tuple[str, str], tuple[RunRecord, MetricRecord]]] = defaultdict(dict)
    for (key, rig, node), (profile, record, metric) in latest.items():
        groups[(profile, key)][(rig, node)] = (record, metric)
    out: list[NodeValue] = []
    for (profile, key), members in groups.items():
        means = {who: sum(m.samples) / len(m.samples) for who, (_, m) in members.items()}
        for (rig, node), (record, metric) in members.items():
            peers = [v for who, v in means.items() if who != (rig, node)]
            median = statistics.median(peers) if len(peers) >= MIN_PEERS else None
            out.append(NodeValue(node=node, profile=profile, rig=rig, metric=key, unit=metric.unit,
                                 higher_is_better=metric.higher_is_better, value=means[(rig, node)],
                                 run_id=record.run_id,
                                 verdict=metric.verdict.outcome if metric.verdict else None, peer_median=median,
                                 peers=len(peers)))
    return out


def node_views(runs: Sequence[RunRecord], threshold: float = OUTLIER_THRESHOLD) -> list[NodeView]:
    """One view per node (every node of every run), most off first: by worst deviation beyond ``threshold``,
    then nodes with no outlier by name."""
    views: dict[tuple[str, str], NodeView] = {}
    for record in sorted(runs, key=lambda r: (parse_time(r.started_at), r.run_id)):
        for node in record.nodes:
            view = views.setdefault((record.rig, node.name), NodeView(node.name, "", record.rig, []))
            view.profile = _profile_of(record, node.name, None)
            view.last_run = record.run_id
    for value in latest_node_values(runs):
        view = views.setdefault((value.rig, value.node), NodeView(value.node, value.profile, value.rig, []))
        view.values.append(value)
    for view in views.values():
        view.values.sort(key=lambda v: (-v.worse_by, v.metric))
    return sorted(views.values(), key=lambda v: (not v.outliers(threshold), -v.worst if v.outliers(threshold)
                                                 else 0.0, v.node, v.rig))


def node_anchor(rig: str, node: str) -> str:
    """The HTML id of a node's details (ids may hold only a safe subset of characters)."""
    return "node-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{rig}-{node}")


def outlier_notes(runs: Sequence[RunRecord], threshold: float = OUTLIER_THRESHOLD) -> dict[tuple[str, str], str]:
    """A line per node with an outlier, for the Tonight table (``outlier: <metric> -11.5% vs peers``)."""
    notes = {}
    for view in node_views(runs, threshold):
        worst = view.outliers(threshold)
        if worst and worst[0].deviation is not None:
            more = f" (+{len(worst) - 1} more)" if len(worst) > 1 else ""
            notes[(view.rig, view.node)] = (f"outlier: {metric_title(worst[0].metric)} {worst[0].deviation:+.1%} "
                                            f"vs peers{more}")
    return notes


def _deviation_cell(v: NodeValue, threshold: float) -> str:
    d = v.deviation
    if d is None:
        return f'<td class="muted">{v.peers} peer(s): too few to compare</td>'
    cls = "dev-bad" if v.outlier(threshold) else ("dev-good" if abs(d) >= threshold else "")
    return f'<td class="{cls}">{d:+.1%}</td>'


def _metrics_table(view: NodeView, threshold: float) -> str:
    if not view.values:
        return '<p class="muted">No per-node metrics recorded for this node.</p>'
    rows = ["<table class=\"node-metrics\"><tr><th>metric</th><th>latest</th><th>peers' median</th>"
            "<th>vs peers</th><th>gate</th><th>run</th></tr>"]
    for v in view.values:
        median = f"{v.peer_median:.4g}" if v.peer_median is not None else "–"
        flag = '<span class="outlier-flag">outlier</span> ' if v.outlier(threshold) else ""
        rows.append(f'<tr class="node-metric" data-metric="{escape(v.metric)}" '
                    f'data-outlier="{int(v.outlier(threshold))}">'
                    f"<td>{flag}{escape(metric_title(v.metric))}</td><td>{v.value:.4g} {escape(v.unit)}</td>"
                    f"<td>{median}</td>{_deviation_cell(v, threshold)}<td>{escape(v.verdict or '–')}</td>"
                    f'<td><a href="#{run_anchor(v.run_id)}">{escape(v.run_id)}</a></td></tr>')
    rows.append("</table>")
    return "".join(rows)


def nodes_section(runs: Sequence[RunRecord], histories: Sequence[OutcomeHistory],
                  threshold: float = OUTLIER_THRESHOLD) -> str:
    """The report's "Nodes" section: a summary line per node (outliers first), then each node's details."""
    views = node_views(runs, threshold)
    if not views:
        return ""
    by_node: dict[tuple[str, str], list[OutcomeHistory]] = defaultdict(list)
    for h in histories:
        if h.node:
            by_node[(h.rig, h.node)].append(h)
    rigs = {v.rig for v in views}
    if not any(v.values or by_node.get((v.rig, v.node)) for v in views):
        return ('<section id="nodes"><h2>Nodes</h2><p class="muted no-node-data">No per-node metrics or tests in '
                'these runs (every metric and test is lease-wide).</p></section>')
    # outliers first (worst first), then nodes with broken, failing, flaky tests, then the rest by name
    views.sort(key=lambda v: (not v.outliers(threshold), -v.worst if v.outliers(threshold) else 0.0,
                              min((STATE_ORDER[h.state] for h in by_node.get((v.rig, v.node), [])), default=9),
                              v.node, v.rig))
    out = [f'<section id="nodes"><h2>Nodes</h2><p class="muted">Each node\'s latest value of each metric against '
           f"the median of the other nodes of its profile; a node {threshold:.0%} or more on the worse side is an "
           f"outlier, even when the gate passed.</p><table class=\"nodes\"><tr><th>node</th><th>profile</th>"
           f"<th>outliers</th><th>tests</th></tr>"]
    for view in views:
        outliers = view.outliers(threshold)
        what = "; ".join(f"{metric_title(v.metric)} {v.deviation:+.1%}" for v in outliers if v.deviation is not None)
        tests = by_node.get((view.rig, view.node), [])
        bad = {s: sum(1 for h in tests if h.state == s) for s in NEEDS_A_LOOK}
        tally = ", ".join(f"{n} {s}" for s, n in bad.items() if n) or (f"{len(tests)} passing" if tests else "–")
        on_rig = f' <span class="muted">on {escape(view.rig)}</span>' if len(rigs) > 1 else ""
        out.append(f'<tr class="node-summary" data-node="{escape(view.node)}" data-rig="{escape(view.rig)}" '
                   f'data-outlier="{int(bool(outliers))}"><td><a href="#{node_anchor(view.rig, view.node)}">'
                   f'{escape(view.node)}</a>{on_rig}</td>'
                   f'<td>{escape(view.profile)}</td>'
                   f'<td class="{"dev-bad" if outliers else "muted"}">{escape(what) or "none"}</td>'
                   f"<td>{escape(tally)}</td></tr>")
    out.append("</table>")
    for view in views:
        outliers = view.outliers(threshold)
        tests = sorted(by_node.get((view.rig, view.node), []), key=lambda h: (STATE_ORDER[h.state], h.test))
        if not (view.values or tests):
            continue  # nothing recorded on this node alone: its summary row says so
        out.append(f'<details class="node" id="{node_anchor(view.rig, view.node)}" data-node="{escape(view.node)}"'
                   f'{" open" if outliers else ""}><summary><b>{escape(view.node)}</b> · {escape(view.rig)} · '
                   f'{escape(view.profile)} · '
                   f'{len(outliers)} outlier(s) · {len(tests)} tests</summary>{_metrics_table(view, threshold)}'
                   f"{history_table(tests, with_node=False) if tests else ''}</details>")
    out.append("</section>")
    return "".join(out)
