"""Power study of the release gate (a benchmark, not a test): how often does each rule decide what?

Simulates measurements with normal run-to-run noise (coefficient of variation 1%, 2%, 5%) at true ratios to
the baseline of 1.00, 0.97, 0.93 and 0.90 (and 0.95, the tolerance edge, for reference), tolerance 5%, and
prints for hilt's gate (the real ReleaseGate: first measurement of --initial samples, then one more sample per
re-measure while inconclusive, up to --budget) and for two crude rules side by side:
  any-of-N   Azure-NHC style: pass if any of N repeats clears the fixed threshold baseline x (1 - tolerance)
  one-sample SuperBench style: one sample, regression if it is more than the tolerance under the baseline
the rate of each outcome and the mean number of samples used.

    .venv/bin/python bench/gate_power.py [--trials 10000] [--budget 20] [--initial 3] [--markdown]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hilt.gate.baselines import BaselineEntry, BaselineSet, GateRule
from hilt.gate.release_gate import ReleaseGate
from hilt.record.metrics import Metric

RATIOS = (1.00, 0.97, 0.95, 0.93, 0.90)
CVS = (0.01, 0.02, 0.05)
TOLERANCE = 0.05
BASE = 100.0
OUTCOMES = ("pass", "regression", "improvement", "inconclusive")


def hilt_gate(rng: np.random.Generator, ratio: float, cv: float, trials: int, budget: int,
              initial: int) -> tuple[dict[str, float], float]:
    entry = BaselineEntry(metric="bw", value=BASE, tolerance=TOLERANCE)
    bset = BaselineSet("bench", path=None, entries=[entry], gated=[GateRule(metric="bw")])  # type: ignore[arg-type]
    gate = ReleaseGate(bset, max_repeats=budget)
    counts = dict.fromkeys(OUTCOMES, 0)
    used = 0
    noise = rng.standard_normal((trials, budget))
    for i in range(trials):
        row = BASE * ratio * (1.0 + cv * noise[i])
        pos = initial

        def more(row=row) -> list[float]:
            nonlocal pos
            pos += 1
            return [float(row[pos - 1])]

        check = gate.check(Metric.of("bw", "GB/s", row[:initial]), more)
        counts[check.verdict.outcome] += 1
        used += len(check.metric.samples)
    gate.checks.clear()
    return {k: v / trials for k, v in counts.items()}, used / trials


def any_of_n(rng: np.random.Generator, ratio: float, cv: float, trials: int, n: int) -> tuple[dict, float]:
    x = BASE * ratio * (1.0 + cv * rng.standard_normal((trials, n)))
    clears = x >= BASE * (1.0 - TOLERANCE)
    passed = clears.any(axis=1)
    used = np.where(passed, clears.argmax(axis=1) + 1, n)
    return {"pass": passed.mean(), "regression": 1 - passed.mean()}, float(used.mean())


def one_sample(rng: np.random.Generator, ratio: float, cv: float, trials: int) -> tuple[dict, float]:
    x = BASE * ratio * (1.0 + cv * rng.standard_normal(trials))
    reg = (x < BASE * (1.0 - TOLERANCE)).mean()
    return {"pass": 1 - reg, "regression": reg}, 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--budget", type=int, default=20)
    ap.add_argument("--initial", type=int, default=3, help="samples in the first measurement")
    ap.add_argument("--any-of", type=int, default=5, help="N of the any-of-N rule")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="print a markdown table (for docs/gate.md)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    rows = []
    for cv in CVS:
        for ratio in RATIOS:
            h, hn = hilt_gate(rng, ratio, cv, args.trials, args.budget, args.initial)
            a, an = any_of_n(rng, ratio, cv, args.trials, args.any_of)
            o, on = one_sample(rng, ratio, cv, args.trials)
            rows.append((cv, ratio, h, hn, a, an, o, on))
    head = ("CV", "ratio", "hilt pass", "hilt regr", "hilt impr", "hilt inconcl", "hilt mean n",
            f"any-of-{args.any_of} regr", "any mean n", "one-sample regr")
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
    else:
        print("  ".join(f"{h:>12}" for h in head))
    for cv, ratio, h, hn, a, an, o, _on in rows:
        cells = (f"{cv:.0%}", f"{ratio:.2f}", f"{h['pass']:.2%}", f"{h['regression']:.2%}",
                 f"{h['improvement']:.2%}", f"{h['inconclusive']:.2%}", f"{hn:.2f}",
                 f"{a['regression']:.2%}", f"{an:.2f}", f"{o['regression']:.2%}")
        print(("| " + " | ".join(cells) + " |") if args.markdown else "  ".join(f"{c:>12}" for c in cells))
    print(f"\n{args.trials} trials per cell, budget {args.budget}, first measurement {args.initial} samples, "
          f"tolerance {TOLERANCE:.0%}; {time.perf_counter() - started:.1f} s")
    check = {r[:2]: r for r in rows}
    targets = [
        ("CV 2%, ratio 1.00: false regression <= 1%", check[(0.02, 1.00)][2]["regression"] <= 0.01),
        ("CV 2%, ratio 0.97: regression <= 5%", check[(0.02, 0.97)][2]["regression"] <= 0.05),
        ("CV 2%, ratio 0.93: regression >= 90%", check[(0.02, 0.93)][2]["regression"] >= 0.90),
        ("CV 2%, ratio 0.90: regression >= 99%", check[(0.02, 0.90)][2]["regression"] >= 0.99),
        ("CV 2%: mean samples <= 8 at every ratio",
         all(check[(0.02, r)][3] <= 8 for r in (1.00, 0.97, 0.93, 0.90))),
    ]
    for text, ok in targets:
        print(f"{'MET ' if ok else 'MISS'}  {text}")


if __name__ == "__main__":
    main()
