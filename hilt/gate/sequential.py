"""Boundaries of the sequential test: how sure each look must be so that looking often stays honest.

The gate looks at the evidence after every new sample and stops as soon as it can decide. Looking many times
at a test made for one look inflates its error rate, so each look uses a stricter nominal level ``p*``
(Pocock's design: the same nominal level at every look). ``p*`` is calibrated by Monte Carlo so that the
chance of *ever* crossing a boundary, when the true ratio sits exactly on the tolerance edge, is ``alpha``
over looks at n = 2 .. max_samples. With normal noise and an exact baseline the t statistic is pivotal (its law
does not depend on the mean or the spread), so one calibration holds for every CV. Looking at fewer points
than calibrated for (e.g. in batches) only lowers the error rate.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import stats

FIRST_LOOK = 2  # the first sample count with a spread estimate
_TRIALS = 100_000
_SEED = 20240808


@lru_cache(maxsize=32)
def nominal_level(max_samples: int, alpha: float) -> float:
    """One-sided nominal p-value threshold per look for at most ``max_samples`` samples, overall ``alpha``."""
    if max_samples < FIRST_LOOK:
        return alpha
    rng = np.random.default_rng(_SEED)
    n = np.arange(1, max_samples + 1)
    df = np.maximum(n - 1, 1)
    minima = []
    remaining = _TRIALS
    chunk = max(1, 2_000_000 // max_samples)
    while remaining > 0:
        rows = min(chunk, remaining)
        remaining -= rows
        z = rng.standard_normal((rows, max_samples))
        total = np.cumsum(z, axis=1)
        total_sq = np.cumsum(z * z, axis=1)
        mean = total / n
        var = np.maximum((total_sq - n * mean**2) / df, 1e-300)
        t = mean / np.sqrt(var / n)
        p = stats.t.sf(t, df)[:, FIRST_LOOK - 1:]
        minima.append(p.min(axis=1))
    return float(np.quantile(np.concatenate(minima), alpha))
