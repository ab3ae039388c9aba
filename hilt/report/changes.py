"""Change points in each metric's nightly series, found with Apache Otava's E-divisive method.

Why Otava and not a threshold on the last run: nightly bandwidth is noisy, and a reader wants to know
*when* a level shifted and whether it is a step or noise. Otava (the Hunter algorithm of MongoDB and
DataStax) splits the series with E-divisive means in sliding windows and keeps a split only when a
t-test between the segments is significant (``max_pvalue``) and the relative shift is large enough
(``min_magnitude``). Otava itself is direction-blind; we label each change a regression or an
improvement from the metric's ``higher_is_better``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from hilt.history.series import Series, SeriesKey, SeriesPoint, parse_time, series_from_runs
from hilt.record.run_record import RunRecord
from hilt.report.versions import VersionChange, version_diff
from hilt.util.extras import require

ChangeKind = Literal["regression", "improvement"]


@dataclass(frozen=True)
class ChangeOptions:
    """Otava's knobs. ``min_magnitude`` is relative (0.05 = a 5% shift of the mean).

    The 2% default: over hundreds of nights a pure-noise series yields "significant" sub-1% shifts
    (the t-test sees the many points, not the practical size), which nobody acts on.
    """

    max_pvalue: float = 0.001
    min_magnitude: float = 0.02
    window_len: int = 50
    min_points: int = 6  # fewer runs than this cannot show a step against noise


@dataclass(frozen=True)
class Change:
    """A level shift: the first run (and image) at which the metric's new level appeared."""

    key: SeriesKey
    unit: str
    index: int  # position of the first changed run in the series
    run_id: str
    started_at: datetime
    image: str | None
    previous_run_id: str
    previous_image: str | None
    mean_before: float
    mean_after: float
    pvalue: float
    kind: ChangeKind
    versions: tuple[VersionChange, ...] = ()
    """What else changed between the rig's run before ``run_id`` and ``run_id`` (:func:`with_versions`)."""

    @property
    def rel_change(self) -> float:
        """Signed relative change of the mean, after vs before (-0.2 = 20% lower)."""
        return self.mean_after / self.mean_before - 1.0 if self.mean_before else float("inf")

    @property
    def magnitude(self) -> float:
        return abs(self.rel_change)

    @property
    def anchor(self) -> str:
        return run_anchor(self.run_id)


def run_anchor(run_id: str) -> str:
    """The HTML id of a run's details section (ids may hold only a safe subset of characters)."""
    return "run-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)


def detect_changes(series: Series, options: ChangeOptions = ChangeOptions()) -> list[Change]:
    """Change points of one series, oldest first."""
    points: list[SeriesPoint] = series.points
    if len(points) < options.min_points:
        return []
    values = [p.value for p in points]
    otava = require("otava.analysis", "report", "change-point detection (hilt report)")
    found, _weak = otava.compute_change_points(
        values,
        window_len=options.window_len,
        max_pvalue=options.max_pvalue,
        min_magnitude=options.min_magnitude,
    )
    changes = []
    for cp in found:
        index = int(cp.index)
        if index <= 0 or index >= len(points):
            continue
        stats = cp.stats
        before, after = float(stats.mean_1), float(stats.mean_2)
        pvalue = float(stats.pvalue)
        if pvalue > options.max_pvalue:
            continue
        if before and abs(after / before - 1.0) < options.min_magnitude:
            continue
        went_up = after > before
        kind: ChangeKind = "improvement" if went_up == series.higher_is_better else "regression"
        first, prev = points[index], points[index - 1]
        changes.append(Change(
            key=series.key, unit=series.unit, index=index, run_id=first.run_id,
            started_at=first.started_at, image=first.image, previous_run_id=prev.run_id,
            previous_image=prev.image, mean_before=before, mean_after=after, pvalue=pvalue, kind=kind,
        ))
    return changes


def with_versions(changes: dict[SeriesKey, list[Change]], runs: Iterable[RunRecord]
                  ) -> dict[SeriesKey, list[Change]]:
    """Each change with what else changed (image, driver, NCCL, kernel, BIOS, firmware) between the two runs
    around it: the rig's run just before the first changed run, and that run.

    The previous *run* is looked up, not the previous point: a series holds one point per node, so the point
    before a change may be another node of the same run. ``previous_run_id``/``previous_image`` are set to it.
    """
    by_rig: dict[str, list[RunRecord]] = {}
    for record in sorted(runs, key=lambda r: (parse_time(r.started_at), r.run_id)):
        by_rig.setdefault(record.rig, []).append(record)
    index = {(rig, r.run_id): i for rig, rs in by_rig.items() for i, r in enumerate(rs)}
    out: dict[SeriesKey, list[Change]] = {}
    for key, found in changes.items():
        out[key] = []
        for change in found:
            at = index.get((key.rig, change.run_id))
            if at:  # neither unknown (None) nor the rig's first run (0)
                rs = by_rig[key.rig]
                before = rs[at - 1]
                change = replace(change, versions=tuple(version_diff(before, rs[at])),
                                 previous_run_id=before.run_id, previous_image=before.image)
            out[key].append(change)
    return out


def changes_in_runs(runs: Iterable[RunRecord], options: ChangeOptions = ChangeOptions()
                    ) -> dict[SeriesKey, list[Change]]:
    """Change points of every series in ``runs`` (only series with at least one change appear), each with
    the version changes around it."""
    runs = list(runs)
    out = {}
    for key, series in series_from_runs(runs).items():
        found = detect_changes(series, options)
        if found:
            out[key] = found
    return with_versions(out, runs)
