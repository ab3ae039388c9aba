"""The order of the report's charts: what needs action first (failing, regressed), then what changed, then the rest.

Why not alphabetical: on a regression night the reader opens the report to find the one series that moved;
sorted by name it was the last chart of the page. Within each group the newest, largest move comes first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from hilt.history.series import Series, SeriesKey
from hilt.report.changes import Change

Attention = Literal["failing", "regressed", "changed", "steady"]
_RANK: dict[Attention, int] = {"failing": 0, "regressed": 0, "changed": 1, "steady": 2}
FAILING_VERDICTS = frozenset({"regression"})


@dataclass(frozen=True)
class Ranked:
    """A series with why it sits where it does (shown next to its chart)."""

    key: SeriesKey
    attention: Attention
    why: str


def _latest_failing(series: Series) -> list[str]:
    """Nodes whose point in the series' latest run failed the gate ("" for a lease-wide point)."""
    if not series.points:
        return []
    last_run = series.points[-1].run_id
    return sorted({p.node for p in series.points if p.run_id == last_run and p.verdict in FAILING_VERDICTS})


def _node_of(series: Series, change: Change) -> str:
    return series.points[change.index].node if 0 <= change.index < len(series.points) else ""


def _standing_regressions(series: Series, changes: Sequence[Change]) -> list[Change]:
    """Regressions not since undone: each node's newest change, where that is a regression. A drop that a later
    step brought back is history (the series is "changed"), not something to act on tonight."""
    newest: dict[str, Change] = {}
    for c in sorted(changes, key=lambda c: (c.started_at, c.index)):
        newest[_node_of(series, c)] = c
    return [c for c in newest.values() if c.kind == "regression"]


def _on(series: Series, change: Change) -> str:
    node = _node_of(series, change)
    return f" on {node}" if node else ""


def attention(series: Series, changes: Sequence[Change]) -> Ranked:
    """How urgently a reader needs this series, and a one-line why."""
    failing = _latest_failing(series)
    regressions = _standing_regressions(series, changes)
    if failing:
        where = f" on {', '.join(n for n in failing if n)}" if any(failing) else ""
        return Ranked(series.key, "failing", f"failing the gate in the latest run{where}")
    if regressions:
        last = max(regressions, key=lambda c: c.started_at)
        return Ranked(series.key, "regressed",
                      f"regressed {last.rel_change:+.1%}{_on(series, last)} from run {last.run_id}")
    if changes:
        last = max(changes, key=lambda c: c.started_at)
        return Ranked(series.key, "changed",
                      f"{last.kind} {last.rel_change:+.1%}{_on(series, last)} from run {last.run_id}")
    return Ranked(series.key, "steady", "")


def rank_series(all_series: Mapping[SeriesKey, Series], changes: Mapping[SeriesKey, Sequence[Change]]
                ) -> list[Ranked]:
    """Every series, most urgent first: failing and regressed (a regression not since undone; newest, largest
    move first), then changed (newest first), then steady ones by rig and metric."""

    def sort_key(r: Ranked) -> tuple:
        found = changes.get(r.key, ())
        bad = _standing_regressions(all_series[r.key], found) or list(found)
        newest = max((c.started_at.timestamp() for c in bad), default=0.0)
        size = max((c.magnitude for c in bad), default=0.0)
        return (_RANK[r.attention], r.attention != "failing", -newest, -size, r.key.rig, r.key.metric)

    ranked = [attention(series, changes.get(key, ())) for key, series in all_series.items()]
    return sorted(ranked, key=sort_key)
