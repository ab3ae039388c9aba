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
from scipy.special import stdtr  # Student's t CDF: scipy.stats' t.sf(t, df) is stdtr(df, -t)

FIRST_LOOK = 2  # the first sample count with a spread estimate
_TRIALS = 100_000
_SEED = 20240808

# _calibrate's result for the gate's default budget and alpha (--gate-max-repeats 20, DEFAULT_ALPHA), kept here
# because every process that judges (each xdist worker: one per node) used to spend a second of CPU on the Monte
# Carlo before its first verdict; tests/gate/test_judge.py recomputes it, so it cannot drift from the method.
CALIBRATED = {(20, 0.10): 0.01758368363035987}


@lru_cache(maxsize=32)
def nominal_level(max_samples: int, alpha: float) -> float:
    """One-sided nominal p-value threshold per look for at most ``max_samples`` samples, overall ``alpha``."""
    known = CALIBRATED.get((max_samples, alpha))
    return known if known is not None else calibrate(max_samples, alpha)


def calibrate(max_samples: int, alpha: float) -> float:
    """Pocock's per-look level by Monte Carlo (seeded: the same result every time with one numpy)."""
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
        p = stdtr(df, -t)[:, FIRST_LOOK - 1:]
        minima.append(p.min(axis=1))
    return float(np.quantile(np.concatenate(minima), alpha))
