"""The canary study's model, shared by tests/gate/test_canary_power.py and bench/canary_power.py.

The gate's power study (bench/gate_power.py) draws each sample as ``truth x (1 + cv x N(0, 1))`` against a
baseline of 100 with a 5% tolerance. Here the room drifts: since the baseline was measured, everything on the
rack reads ``1 + drift`` times what it did (a switch firmware, the cooling, the day), so the control group
(current image) reads ``100 (1 + drift)`` and the canary (new image) ``100 (1 + drift) ratio``, each sample with
its own independent noise. Each trial is judged twice on the *same* canary samples, both as the gate does it
(first measurement of ``initial`` samples, then one more per look while inconclusive, up to ``budget``):
  baseline   judge(): the canary's mean against the stored baseline value 100 (what ``hilt run`` does);
  control    judge_against_control(): the canary's mean against the control group's mean, one more control
             sample per look as well (both groups measured in the same window), or ``control_per_look``
             of them when several control nodes are measured at each look.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hilt.gate import Baseline, judge, judge_against_control

BASE = 100.0
TOLERANCE = 0.05
OUTCOMES = ("pass", "regression", "improvement", "inconclusive")


@dataclass(frozen=True)
class Rates:
    """How often each judge said each outcome over the trials of one cell, and the canary samples it used."""

    baseline: dict[str, float]
    control: dict[str, float]
    baseline_n: float
    control_n: float


def study(rng: np.random.Generator, *, drift: float, ratio: float, cv: float, trials: int, budget: int = 20,
          initial: int = 3, control_per_look: int = 1) -> Rates:
    """Run ``trials`` rollouts of one cell: room drift ``drift``, true canary/control ratio ``ratio``.

    ``control_per_look``: control samples per canary sample (e.g. 3 on a 4-node rig with one canary node, every
    node measured once per look); the budget counts canary samples.
    """
    ref = Baseline(metric="bw", value=BASE, tolerance=TOLERANCE, higher_is_better=True, unit="GB/s")
    room = BASE * (1.0 + drift)
    canary = room * ratio * (1.0 + cv * rng.standard_normal((trials, budget)))
    m = control_per_look
    control = room * (1.0 + cv * rng.standard_normal((trials, budget * m)))
    counts = {"baseline": dict.fromkeys(OUTCOMES, 0), "control": dict.fromkeys(OUTCOMES, 0)}
    used = {"baseline": 0, "control": 0}
    for i in range(trials):
        xs, ys = canary[i].tolist(), control[i].tolist()
        for name in ("baseline", "control"):
            k = initial
            while True:
                verdict = (judge(ref, xs[:k], max_samples=budget) if name == "baseline"
                           else judge_against_control(ref, xs[:k], ys[:k * m], max_samples=budget))
                if verdict.outcome != "inconclusive" or k >= budget:
                    break
                k += 1
            counts[name][verdict.outcome] += 1
            used[name] += k
    return Rates({o: c / trials for o, c in counts["baseline"].items()},
                 {o: c / trials for o, c in counts["control"].items()},
                 used["baseline"] / trials, used["control"] / trials)
