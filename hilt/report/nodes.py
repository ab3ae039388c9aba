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

from hilt.history import Series, metric_key, parse_time, point_node
from hilt.report.changes import Change, ChangeOptions, detect_changes
from hilt.run_record import MetricRecord, RunRecord

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
    rigs: set[str]
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
    latest: dict[tuple[str, str, str], tuple[RunRecord, MetricRecord]] = {}
    for record in ordered:
        for metric in record.metrics:
            node = point_node(metric)
            if not node or "+" in node or not metric.samples:
                continue
            profile = _profile_of(record, node, metric.profile)
            latest[(profile, metric_key(metric), node)] = (record, metric)
    groups: dict[tuple[str, str], dict[str, tuple[RunRecord, MetricRecord]]] = defaultdict(dict)
    for (profile, key, node), entry in latest.items():
        groups[(profile, key)][node] = entry
    out: list[NodeValue] = []
    for (profile, key), members in groups.items():
        means = {n: sum(m.samples) / len(m.samples) for n, (_, m) in members.items()}
        for node, (record, metric) in members.items():
            peers = [v for n, v in means.items() if n != node]
            median = statistics.median(peers) if len(peers) >= MIN_PEERS else None
            out.append(NodeValue(node=node, profile=profile, rig=record.rig, metric=key, unit=metric.unit,
                                 higher_is_better=metric.higher_is_better, value=means[node], run_id=record.run_id,
                                 verdict=metric.verdict.outcome if metric.verdict else None, peer_median=median,
                                 peers=len(peers)))
    return out


def node_views(runs: Sequence[RunRecord], threshold: float = OUTLIER_THRESHOLD) -> list[NodeView]:
    """One view per node (every node of every run), most off first: by worst deviation beyond ``threshold``,
    then nodes with no outlier by name."""
    views: dict[str, NodeView] = {}
    for record in sorted(runs, key=lambda r: (parse_time(r.started_at), r.run_id)):
        for node in record.nodes:
            view = views.setdefault(node.name, NodeView(node.name, _profile_of(record, node.name, None), set(), []))
            view.rigs.add(record.rig)
            view.profile = _profile_of(record, node.name, None)
            view.last_run = record.run_id
    for value in latest_node_values(runs):
        view = views.setdefault(value.node, NodeView(value.node, value.profile, {value.rig}, []))
        view.values.append(value)
    for view in views.values():
        view.values.sort(key=lambda v: (-v.worse_by, v.metric))
    return sorted(views.values(), key=lambda v: (not v.outliers(threshold), -v.worst if v.outliers(threshold)
                                                 else 0.0, v.node))
