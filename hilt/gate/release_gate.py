"""The session's gate: each gated metric judged, re-measured while undecided, and one verdict for the run.

A missing baseline is ``unbaselined``, never ``pass``: a gate that passes what it cannot compare would wave
through the first regression on a new platform. Infrastructure errors make the whole gate inconclusive for the
same reason: a node that never booted measured nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from hilt.gate.baselines import BaselineSet
from hilt.gate.judge import Baseline, Verdict, judge
from hilt.record.metrics import Metric
from hilt.record.run_record import BaselineRecord, MetricRecord, VerdictRecord

CheckOutcome = Literal["pass", "regression", "improvement", "inconclusive", "unbaselined"]


@dataclass(frozen=True)
class GateCheck:
    """One metric's gate result: the metric with every sample (re-measured ones too), its baseline, verdict."""

    metric: Metric
    baseline: Baseline | None
    verdict: Verdict
    failed: bool
    gated: bool = True

    @property
    def outcome(self) -> CheckOutcome:
        return self.verdict.outcome  # type: ignore[return-value]

    def junit_properties(self) -> list[tuple[str, str]]:
        """What the plugin records on the probe test (``record_property``) for CI dashboards."""
        props = [("gate.metric", self.metric.key), ("gate.outcome", self.verdict.outcome),
                 ("gate.n_samples", str(len(self.metric.samples))), ("gate.mean", f"{self.metric.mean:.6g}")]
        if self.baseline is not None:
            props += [("gate.baseline", f"{self.baseline.value:.6g}"), ("gate.ratio", f"{self.verdict.ratio:.4f}"),
                      ("gate.ci", f"{self.verdict.ci_low:.4f},{self.verdict.ci_high:.4f}")]
        return props

    def to_record(self, test: str | None = None) -> MetricRecord:
        """The summary.json form of this check."""
        b = self.baseline
        source = ", ".join(f"{k}={v}" for k, v in b.source.items()) if b is not None and b.source else None
        return MetricRecord(
            name=self.metric.name, unit=self.metric.unit, labels=self.metric.label_dict,
            samples=list(self.metric.samples), higher_is_better=self.metric.higher_is_better, test=test,
            baseline=BaselineRecord(value=b.value, tolerance=b.tolerance, higher_is_better=b.higher_is_better,
                                    samples=list(b.samples) if b.samples else None, source=source)
            if b is not None else None,
            verdict=VerdictRecord(outcome=self.verdict.outcome, reason=self.verdict.reason))


class ReleaseGate:
    """Judges metrics against a profile's baselines, asking for more samples while the evidence is short."""

    def __init__(self, baselines: BaselineSet | None, max_repeats: int = 20, allow_missing: bool = False,
                 ungated_reason: str | None = None):
        if max_repeats < 1:
            raise ValueError(f"max_repeats must be at least 1, got {max_repeats}")
        self.baselines = baselines
        self.max_repeats = max_repeats
        self.allow_missing = allow_missing
        self.ungated_reason = ungated_reason  # set: nothing here is gated (e.g. a lease that mixes profiles)
        self.checks: list[GateCheck] = []

    def is_gated(self, metric: Metric) -> bool:
        """Without baseline files every metric is gated (and so unbaselined); otherwise the profile decides."""
        if self.ungated_reason is not None:
            return False
        return self.baselines is None or self.baselines.is_gated(metric)

    def check(self, metric: Metric, remeasure: Callable[[], Sequence[float]] | None = None) -> GateCheck:
        """Judge ``metric``; while inconclusive and under ``max_repeats`` samples, call ``remeasure()`` for more.

        Ungated metrics are judged once for information and never fail.
        """
        gated = self.is_gated(metric)
        baseline = self.baselines.find(metric) if self.baselines is not None else None
        if baseline is None:
            verdict = _unbaselined(metric, self.allow_missing)
            if self.ungated_reason is not None:
                verdict = replace(verdict, reason=f"{metric.key}: not gated: {self.ungated_reason}")
            result = GateCheck(metric, None, verdict, failed=gated and not self.allow_missing, gated=gated)
            self.checks.append(result)
            return result
        budget = max(self.max_repeats, len(metric.samples))
        verdict = judge(baseline, metric.samples, max_samples=budget)
        while (gated and remeasure is not None and verdict.outcome == "inconclusive"
               and len(metric.samples) < self.max_repeats):
            more = [float(s) for s in remeasure()][: self.max_repeats - len(metric.samples)]
            if not more:
                break
            metric = metric.with_samples(more)
            verdict = judge(baseline, metric.samples, max_samples=budget)
        verdict = _with_provenance(verdict, baseline)
        result = GateCheck(metric, baseline, verdict, failed=gated and verdict.outcome == "regression",
                           gated=gated)
        self.checks.append(result)
        return result


def _with_provenance(verdict: Verdict, baseline: Baseline) -> Verdict:
    """A change against a baseline that was never measured on a rack (a public figure) says so: the person
    reading "regression" must know the reference is an example, not their rack's past."""
    source = baseline.source or {}
    if verdict.outcome not in ("regression", "improvement") or source.get("run_id"):
        return verdict
    what = source.get("note") or source.get("url") or "no source recorded"
    return replace(verdict, reason=f"{verdict.reason}; the baseline is not a measurement of this rack ({what})")


def _unbaselined(metric: Metric, allow_missing: bool) -> Verdict:
    hint = "allowed by --allow-missing-baseline" if allow_missing else \
        "promote one with `hilt baseline promote` or pass --allow-missing-baseline"
    nan = math.nan
    unit = f" {metric.unit}" if metric.unit else ""
    mean = f"measured {metric.mean:.4g}{unit} (mean of {len(metric.samples)})"
    return Verdict("unbaselined", f"{metric.key}: unbaselined: {mean}, no baseline to compare with; {hint}",
                   nan, nan, nan, len(metric.samples))
