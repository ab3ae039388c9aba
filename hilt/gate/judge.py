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
from functools import lru_cache
from typing import Literal

from scipy.special import stdtrit  # not scipy.stats: a second less to import in every process that judges

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


def _mean_var(xs: Sequence[float]) -> tuple[float, float]:
    n = len(xs)
    mean = math.fsum(xs) / n
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
    return mean, var


def _fieller(mx: float, vx: float, my: float, vy: float, t: float) -> tuple[float, float]:
    """Confidence interval of mx/my where vx, vy are the variances of the two means.

    The set of r with (mx - r my)^2 <= t^2 (vx + r^2 vy); a finite interval whenever the baseline mean is
    clearly non-zero, which a baseline always is.
    """
    a = my * my - t * t * vy
    b = mx * my
    c = mx * mx - t * t * vx
    if a <= 0:
        return -math.inf, math.inf
    disc = max(b * b - a * c, 0.0)
    root = math.sqrt(disc)
    return (b - root) / a, (b + root) / a


def _welch_df(vx: float, nx: int, vy: float, ny: int) -> float:
    if vy == 0.0 or ny < 2:
        return float(nx - 1)
    if vx == 0.0:
        return float(ny - 1)
    return (vx + vy) ** 2 / (vx * vx / (nx - 1) + vy * vy / (ny - 1))


@lru_cache(maxsize=1024)
def _critical(p_star: float, df: float) -> float:
    return float(-stdtrit(df, p_star))  # scipy.stats.t.isf(p_star, df), the same function underneath


def _pct(ratio: float) -> str:
    return f"{(ratio - 1.0) * 100:+.1f}%"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


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
    expected = f"expected {_fmt(baseline.value)}{unit} +/-{baseline.tolerance:.0%}"
    nan = math.nan
    if n == 0:
        return Verdict("inconclusive", f"{baseline.key}: inconclusive: no samples ({expected})", nan, nan, nan, 0)
    if not all(math.isfinite(x) for x in xs):
        return Verdict("inconclusive", f"{baseline.key}: inconclusive: non-finite samples {xs} ({expected})",
                       nan, nan, nan, n)
    mx, varx = _mean_var(xs)
    ratio = mx / baseline.value
    measured = f"measured {_fmt(mx)}{unit} (mean of {n}, {_pct(ratio)})"
    if n < FIRST_LOOK:
        return Verdict("inconclusive", f"{baseline.key}: inconclusive: {measured} vs {expected}: one sample has no "
                       "spread, need at least 2", ratio, nan, nan, n)

    base = [float(s) for s in baseline.samples or ()]
    my, vy = baseline.value, 0.0  # always the value: the samples only say how sure it is
    if len(base) >= 2 and all(math.isfinite(b) and b > 0 for b in base):
        vy = _mean_var(base)[1] / len(base)
    vx = varx / n
    df = _welch_df(vx, n, vy, len(base))
    p_star = nominal_level(max(max_samples, n), alpha)
    t = _critical(p_star, df)
    low, high = _fieller(mx, vx, my, vy, t)
    ratio = mx / my
    confidence = 1.0 - 2.0 * p_star

    outcome, verdict = classify(low, high, baseline.tolerance, baseline.higher_is_better)
    spread = "" if len(base) < 2 else f", baseline spread from {len(base)} samples"
    reason = (f"{baseline.key}: {outcome}: {measured} vs expected {_fmt(my)}{unit}, {verdict} "
              f"(ratio {ratio:.3f}, CI [{low:.3f}, {high:.3f}] at {confidence:.1%}{spread})")
    return Verdict(outcome, reason, ratio, low, high, n, confidence)
