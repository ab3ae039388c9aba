"""The measurement every probe yields and the gate, reports and history consume.

A metric keeps *all* its samples, not a mean: the gate's statistics and the history's change-point
detection both need the spread, and a mean alone hides a bimodal run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hilt.errors import ParseError


def _frozen_labels(labels: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


@dataclass(frozen=True)
class Metric:
    """One named measurement with its labels and every sample.

    name: dotted, e.g. ``nccl.all_reduce.busbw``, ``ddp.samples_per_s``.
    labels: what distinguishes series of the same name (size, dtype, nodes, gpus_per_node, backend,
    nccl_version, tool, node). Stored sorted so that equal label sets compare equal.
    """

    name: str
    unit: str
    samples: tuple[float, ...]
    labels: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        # every probe's output becomes a Metric here: a non-finite sample (a tool printing inf, a time of 0)
        # is refused where it enters, before it reaches the gate, the summary or the history
        for value in self.samples:
            if not math.isfinite(value):
                raise ParseError(f"metric {self.name}{{{','.join(f'{k}={v}' for k, v in self.labels)}}}: "
                                 f"sample {value} is not a finite number; the probe's output is not usable")

    @classmethod
    def of(
        cls,
        name: str,
        unit: str,
        samples: Sequence[float],
        labels: Mapping[str, object] | None = None,
        higher_is_better: bool = True,
    ) -> Metric:
        return cls(
            name=name,
            unit=unit,
            samples=tuple(float(s) for s in samples),
            labels=_frozen_labels(labels or {}),
            higher_is_better=higher_is_better,
        )

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def key(self) -> str:
        """A stable identity: ``name{k=v,...}`` as Prometheus writes series."""
        inner = ",".join(f"{k}={v}" for k, v in self.labels)
        return f"{self.name}{{{inner}}}"

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else float("nan")

    def with_samples(self, more: Sequence[float]) -> Metric:
        return Metric(self.name, self.unit, self.samples + tuple(float(s) for s in more), self.labels,
                      self.higher_is_better)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "unit": self.unit,
            "labels": self.label_dict,
            "samples": list(self.samples),
            "higher_is_better": self.higher_is_better,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Metric:
        return cls.of(data["name"], data["unit"], data["samples"], data.get("labels") or {},
                      bool(data.get("higher_is_better", True)))
