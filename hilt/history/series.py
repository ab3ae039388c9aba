"""Series of one metric across runs: what a trend line, a change point and a comparison are made of.

A series is a metric and the labels that define the measurement (size, dtype, nodes, GPUs per node, backend,
tool, ...), on one rig. Versions (NCCL, driver, kernel, image) and the node a point was measured on are
recorded per point, not in the key: an NCCL upgrade must show as a step in one trend line, annotated with
the version change, not start a new line exactly where a regression would show.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hilt.record.run_record import BaselineRecord, MetricRecord, RunRecord

if TYPE_CHECKING:
    pass



#: Labels that say what ran or where, not what was measured: per point, never part of a series' identity.
POINT_LABELS = frozenset({"node", "nccl_version", "driver", "kernel", "image", "cuda_version", "torch_version"})


def metric_key(metric: MetricRecord) -> str:
    """The series identity ``name{k=v,...}``: sorted labels, without the per-point ones (:data:`POINT_LABELS`)."""
    inner = ",".join(f"{k}={v}" for k, v in sorted(metric.labels.items()) if k not in POINT_LABELS)
    return f"{metric.name}{{{inner}}}"


def point_node(metric: MetricRecord) -> str:
    """The node a point was measured on (``a+b`` for a lease-wide run; "" when unknown)."""
    return metric.node or metric.labels.get("node", "")


def point_versions(record: RunRecord, metric: MetricRecord) -> dict[str, str]:
    """What ran when the point was measured: NCCL (from the metric), driver/kernel (its nodes), image."""
    versions: dict[str, str] = {}
    if metric.labels.get("nccl_version"):
        versions["nccl"] = metric.labels["nccl_version"]
    names = set(point_node(metric).split("+")) if point_node(metric) else {n.name for n in record.nodes}
    nodes = [n for n in record.nodes if n.name in names]
    for field_name in ("driver", "kernel"):
        values = sorted({getattr(n, field_name) for n in nodes if getattr(n, field_name)})
        if values:
            versions[field_name] = ",".join(values)
    if record.image:
        versions["image"] = record.image
    return versions


def parse_time(value: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (naive times are taken as UTC)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class SeriesPoint:
    """One run's value of one metric on one rig: what a trend chart plots and Otava analyses."""

    run_id: str
    started_at: datetime
    rig: str
    image: str | None
    value: float  # mean of the run's samples
    samples: tuple[float, ...]
    higher_is_better: bool
    unit: str
    baseline: BaselineRecord | None = None
    verdict: str | None = None
    node: str = ""
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SeriesKey:
    """A metric's identity across runs: its name, labels and the rig it was measured on."""

    rig: str
    metric: str  # metric_key(): name{labels}

    @property
    def name(self) -> str:
        return self.metric.split("{", 1)[0]


@dataclass
class Series:
    key: SeriesKey
    unit: str = ""
    higher_is_better: bool = True
    points: list[SeriesPoint] = field(default_factory=list)

    def version_changes(self) -> list[tuple[int, dict[str, tuple[str, str]]]]:
        """Where versions change along the series, per node: (point index, {what: (before, after)})."""
        out: list[tuple[int, dict[str, tuple[str, str]]]] = []
        last: dict[str, dict[str, str]] = {}
        for i, point in enumerate(self.points):
            before = last.get(point.node)
            if before is not None:
                changed = {k: (before.get(k, ""), v) for k, v in point.versions.items() if before.get(k, "") != v}
                if changed:
                    out.append((i, changed))
            last[point.node] = point.versions
        return out


def point_of(record: RunRecord, metric: MetricRecord) -> SeriesPoint | None:
    if not metric.samples:
        return None
    return SeriesPoint(
        run_id=record.run_id,
        started_at=parse_time(record.started_at),
        rig=record.rig,
        image=record.image,
        value=sum(metric.samples) / len(metric.samples),
        samples=tuple(metric.samples),
        higher_is_better=metric.higher_is_better,
        unit=metric.unit,
        baseline=metric.baseline,
        verdict=metric.verdict.outcome if metric.verdict else None,
        node=point_node(metric),
        versions=point_versions(record, metric),
    )


def series_from_runs(runs: Iterable[RunRecord]) -> dict[SeriesKey, Series]:
    """Group every metric of ``runs`` into series ordered by run start time (ties: run id)."""
    ordered = sorted(runs, key=lambda r: (parse_time(r.started_at), r.run_id))
    out: dict[SeriesKey, Series] = {}
    for record in ordered:
        for metric in record.metrics:
            point = point_of(record, metric)
            if point is None:
                continue
            key = SeriesKey(record.rig, metric_key(metric))
            series = out.setdefault(key, Series(key, metric.unit, metric.higher_is_better))
            series.points.append(point)
    return out

