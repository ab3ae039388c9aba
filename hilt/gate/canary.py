"""The canary judged against its control group: the new image on some nodes, the current one on the rest, same hour.

A fixed baseline was measured on another day; when the room, the switches or the firmware drift since, every
ratio against it drifts too, and a 7% regression can hide inside a 5% upward drift (or a good image look
regressed under a downward one). Measured side by side in the same window, the drift is common to both groups
and cancels in the ratio canary mean / control mean. The price is that the control group's noise now counts
too: its mean is an estimate, so the interval is Fieller's for a ratio of two noisy means with Welch's degrees
of freedom, the same method and the same sequential per-look level as ``judge`` (docs/gate.md), and the
baseline only lends its tolerance, direction, name and unit (docs/rollout.md, "How the canary is judged").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from hilt.gate.judge import (
    DEFAULT_ALPHA,
    DEFAULT_MAX_SAMPLES,
    Baseline,
    Verdict,
    classify,
)
from hilt.gate.ratio import fieller_interval, mean_var, percent_change, short_number, t_critical, welch_df
from hilt.gate.sequential import FIRST_LOOK, nominal_level

__all__ = ["judge_against_control"]


def judge_against_control(baseline: Baseline, canary: Sequence[float], control: Sequence[float], *,
                          max_samples: int = DEFAULT_MAX_SAMPLES, alpha: float = DEFAULT_ALPHA) -> Verdict:
    """Judge the canary group's samples against the control group's as one look of a sequential test.

    ratio = mean(canary) / mean(control), judged against ``baseline.tolerance`` in the baseline's direction;
    ``baseline.value`` is not used. Calling again with more samples is the next look; ``max_samples`` is the
    most samples the canary group will get, which bounds the number of looks and so sets each look's level (the
    control group may hold any number: several control nodes add several samples per look). Too few, non-finite
    or non-positive data give ``inconclusive`` with a reason, never an exception;
    a tolerance outside (0, 1) is refused (ValueError).
    """
    if not 0 < baseline.tolerance < 1:
        raise ValueError(f"baseline {baseline.key}: tolerance must be in (0, 1), got {baseline.tolerance!r}")
    xs = [float(s) for s in canary]
    ys = [float(s) for s in control]
    nx, ny = len(xs), len(ys)
    unit = f" {baseline.unit}" if baseline.unit else ""
    counts = f"{nx} canary and {ny} control samples"
    nan = math.nan

    def undecided(why: str, ratio: float = nan) -> Verdict:
        return Verdict("inconclusive", f"{baseline.key}: inconclusive: canary vs control: {why}", ratio, nan, nan,
                       nx)

    for group, values in (("canary", xs), ("control", ys)):
        if not all(math.isfinite(v) for v in values):
            return undecided(f"non-finite {group} samples {values}")
    if nx < FIRST_LOOK or ny < FIRST_LOOK:
        return undecided(f"need at least {FIRST_LOOK} samples in each group to see their spread, got {counts}")
    mx, varx = mean_var(xs)
    my, vary = mean_var(ys)
    if not my > 0:
        return undecided(f"control mean {short_number(my)}{unit} is not positive, so no ratio can be taken ({counts})")
    ratio = mx / my
    vx, vy = varx / nx, vary / ny
    p_star = nominal_level(max(max_samples, nx), alpha)
    low, high = fieller_interval(mx, vx, my, vy, t_critical(p_star, welch_df(vx, nx, vy, ny)))
    confidence = 1.0 - 2.0 * p_star

    outcome, verdict = classify(low, high, baseline.tolerance, baseline.higher_is_better)
    reason = (f"{baseline.key}: {outcome}: canary {short_number(mx)}{unit} vs control {short_number(my)}{unit} "
              f"({percent_change(ratio)}), {verdict} (ratio {ratio:.3f}, CI [{low:.3f}, {high:.3f}] at "
              f"{confidence:.1%}; {counts})")
    return Verdict(outcome, reason, ratio, low, high, nx, confidence)
