"""The verdict on one metric: does it differ from its baseline by more than the tolerance, and how sure are we?

Method (docs/gate.md): a two-sided non-inferiority/non-superiority test on the ratio of means, measured over
baseline. For a higher-is-better metric with tolerance d the regression edge is 1 - d and the improvement edge
is 1 + d (mirrored for lower-is-better). A Fieller confidence interval for the ratio is computed at the
sequential design's per-look level: the run *regresses* when the whole interval lies beyond the regression
edge, *passes* when it lies inside it, *improves* when it lies beyond the improvement edge, and is
*inconclusive* otherwise. The comparison is always with the baseline's ``value``; when its samples are known
the interval accounts for their spread (Welch), otherwise the value is taken as exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from hilt.gate.ratio import fieller_interval, mean_var, percent_change, short_number, t_critical, welch_df
from hilt.gate.sequential import FIRST_LOOK, nominal_level

Outcome = Literal["pass", "regression", "improvement", "inconclusive", "unbaselined"]  # judge never says unbaselined

DEFAULT_ALPHA = 0.10  # per direction, at a true ratio exactly on the tolerance edge, over all looks
DEFAULT_MAX_SAMPLES = 20


@dataclass(frozen=True)
class Baseline:
    """The expected value of one metric series, with the change that matters and where it came from."""

    metric: str
    value: float
    tolerance: float = 0.05
    higher_is_better: bool = True
    samples: Sequence[float] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    unit: str = ""
    source: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return f"{self.metric}{{{inner}}}" if inner else self.metric


@dataclass(frozen=True)
class Verdict:
    """The outcome, a one-line reason, and the numbers behind it (ratio = measured mean / baseline)."""

    outcome: Outcome
    reason: str
    ratio: float
    ci_low: float
    ci_high: float
    n_samples: int
    confidence: float = 0.0  # two-sided nominal level of [ci_low, ci_high] at this look


def classify(low: float, high: float, tolerance: float, higher_is_better: bool) -> tuple[Outcome, str]:
    """The outcome of a confidence interval [low, high] for a ratio against the tolerance edges, and why.

    One rule for every judgement (against a baseline, canary against control), so they cannot drift apart.
    """
    d = tolerance
    if higher_is_better:
        worse, better, inside = high < 1.0 - d, low > 1.0 + d, low >= 1.0 - d
    else:
        worse, better, inside = low > 1.0 + d, high < 1.0 - d, high <= 1.0 + d
    if worse:
        return "regression", f"worse than the {d:.0%} tolerance"
    if better:
        return "improvement", f"better by more than the {d:.0%} tolerance"
    if inside:
        return "pass", f"within the {d:.0%} tolerance"
    return "inconclusive", f"cannot tell yet whether within the {d:.0%} tolerance"


def judge(baseline: Baseline, samples: Sequence[float], *, max_samples: int = DEFAULT_MAX_SAMPLES,
          alpha: float = DEFAULT_ALPHA) -> Verdict:
    """Judge ``samples`` against ``baseline`` as one look of a sequential test of at most ``max_samples``.

    Calling again with more samples is the next look; the per-look level keeps the overall chance of a wrong
    decision at a true ratio on the tolerance edge at most ``alpha`` per direction.
    """
    if not baseline.value > 0 or not math.isfinite(baseline.value):
        raise ValueError(f"baseline {baseline.key}: value must be a positive number, got {baseline.value!r}")
    if not 0 < baseline.tolerance < 1:
        raise ValueError(f"baseline {baseline.key}: tolerance must be in (0, 1), got {baseline.tolerance!r}")
    xs = [float(s) for s in samples]
    n = len(xs)
    unit = f" {baseline.unit}" if baseline.unit else ""
    expected = f"expected {short_number(baseline.value)}{unit} +/-{baseline.tolerance:.0%}"
    nan = math.nan
    if n == 0:
        return Verdict("inconclusive", f"{baseline.key}: inconclusive: no samples ({expected})", nan, nan, nan, 0)
    if not all(math.isfinite(x) for x in xs):
        return Verdict("inconclusive", f"{baseline.key}: inconclusive: non-finite samples {xs} ({expected})",
                       nan, nan, nan, n)
    mx, varx = mean_var(xs)
    ratio = mx / baseline.value
    measured = f"measured {short_number(mx)}{unit} (mean of {n}, {percent_change(ratio)})"
    if n < FIRST_LOOK:
        return Verdict("inconclusive", f"{baseline.key}: inconclusive: {measured} vs {expected}: one sample has no "
                       "spread, need at least 2", ratio, nan, nan, n)

    base = [float(s) for s in baseline.samples or ()]
    my, vy = baseline.value, 0.0  # always the value: the samples only say how sure it is
    if len(base) >= 2 and all(math.isfinite(b) and b > 0 for b in base):
        vy = mean_var(base)[1] / len(base)
    vx = varx / n
    df = welch_df(vx, n, vy, len(base))
    p_star = nominal_level(max(max_samples, n), alpha)
    t = t_critical(p_star, df)
    low, high = fieller_interval(mx, vx, my, vy, t)
    ratio = mx / my
    confidence = 1.0 - 2.0 * p_star

    outcome, verdict = classify(low, high, baseline.tolerance, baseline.higher_is_better)
    spread = "" if len(base) < 2 else f", baseline spread from {len(base)} samples"
    reason = (f"{baseline.key}: {outcome}: {measured} vs expected {short_number(my)}{unit}, {verdict} "
              f"(ratio {ratio:.3f}, CI [{low:.3f}, {high:.3f}] at {confidence:.1%}{spread})")
    return Verdict(outcome, reason, ratio, low, high, n, confidence)
