"""The ratio of two noisy means and how sure it is: Fieller's interval with Welch's degrees of freedom.

Shared by the two judges (docs/gate.md): hilt.gate.judge (measured samples against a baseline's) and
hilt.gate.canary (the canary group against its control group, same hour). Both write the numbers into a
verdict's reason the same way (``short_number``, ``percent_change``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from scipy.special import stdtrit  # not scipy.stats: a second less to import in every process that judges


def mean_var(xs: Sequence[float]) -> tuple[float, float]:
    """The mean and the sample variance (n - 1) of ``xs``; the variance of one sample is 0."""
    n = len(xs)
    mean = math.fsum(xs) / n
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
    return mean, var


def fieller_interval(mx: float, vx: float, my: float, vy: float, t: float) -> tuple[float, float]:
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


def welch_df(vx: float, nx: int, vy: float, ny: int) -> float:
    """Welch-Satterthwaite degrees of freedom of two means' variances (one group's when the other has none)."""
    if vy == 0.0 or ny < 2:
        return float(nx - 1)
    if vx == 0.0:
        return float(ny - 1)
    return (vx + vy) ** 2 / (vx * vx / (nx - 1) + vy * vy / (ny - 1))


@lru_cache(maxsize=1024)
def t_critical(p_star: float, df: float) -> float:
    """Student's t with ``df`` degrees of freedom exceeded with probability ``p_star`` (one side)."""
    return float(-stdtrit(df, p_star))  # scipy.stats.t.isf(p_star, df), the same function underneath


def percent_change(ratio: float) -> str:
    """A ratio as a signed change, ``+3.1%``."""
    return f"{(ratio - 1.0) * 100:+.1f}%"


def short_number(value: float) -> str:
    """A measured value in a verdict's reason: four significant digits."""
    return f"{value:.4g}"
