"""Power study of the canary judgement (a benchmark, not a test): the fixed baseline versus the control group.

Same noise model as bench/gate_power.py (normal run-to-run noise, CV 1%, 2%, 5%; baseline 100, tolerance 5%;
first measurement of --initial samples, then one more per look while inconclusive, up to --budget), with the
room drifting by 0%, +5% or -5% since the baseline was measured: the control group (current image) reads
100 x (1 + drift), the canary 100 x (1 + drift) x ratio. For true canary/control ratios 1.00 (a good image) and
0.93 (a 7% regression), and 0.95 (the tolerance edge, no drift, to check the sequential level), prints how often
each judge says each outcome on the same canary samples:
  baseline  judge() against the stored baseline value (what `hilt run` does); it sees (1 + drift) x ratio
  control   judge_against_control() against the control group measured in the same window
Model: testkit/canary_study.py (also used by tests/gate/test_canary_power.py).

    .venv/bin/python bench/canary_power.py [--trials 2000] [--budget 20] [--initial 3] [--control-per-look 1]
        [--markdown]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.canary_study import TOLERANCE, Rates, study  # noqa: E402

CVS = (0.01, 0.02, 0.05)
CELLS = ((0.00, 1.00), (0.00, 0.93), (0.05, 1.00), (0.05, 0.93), (-0.05, 1.00), (-0.05, 0.93), (0.00, 0.95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--budget", type=int, default=20)
    ap.add_argument("--initial", type=int, default=3, help="samples in the first measurement")
    ap.add_argument("--control-per-look", type=int, default=1,
                    help="control samples per canary sample (3: a 4-node rig, one canary, every node measured)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="print a markdown table (for docs/rollout.md)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    rows: dict[tuple[float, float, float], Rates] = {}
    for cv in CVS:
        for drift, ratio in CELLS:
            rows[(cv, drift, ratio)] = study(rng, drift=drift, ratio=ratio, cv=cv, trials=args.trials,
                                             budget=args.budget, initial=args.initial,
                                             control_per_look=args.control_per_look)
    head = ("CV", "drift", "canary/control", "canary/baseline",
            "base pass", "base regr", "base impr", "base inconcl", "base n",
            "ctrl pass", "ctrl regr", "ctrl impr", "ctrl inconcl", "ctrl n")
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
    else:
        print("  ".join(f"{h:>9}" for h in head))
    for (cv, drift, ratio), r in rows.items():
        cells = (f"{cv:.0%}", f"{drift:+.0%}", f"{ratio:.2f}", f"{(1 + drift) * ratio:.3f}",
                 *(f"{r.baseline[o]:.1%}" for o in ("pass", "regression", "improvement", "inconclusive")),
                 f"{r.baseline_n:.1f}",
                 *(f"{r.control[o]:.1%}" for o in ("pass", "regression", "improvement", "inconclusive")),
                 f"{r.control_n:.1f}")
        print(("| " + " | ".join(cells) + " |") if args.markdown else "  ".join(f"{c:>9}" for c in cells))
    print(f"\n{args.trials} trials per cell, budget {args.budget} canary samples, first measurement "
          f"{args.initial}, {args.control_per_look} control sample(s) per canary sample "
          f"(n columns: canary samples used), tolerance {TOLERANCE:.0%}, "
          f"seed {args.seed}; {time.perf_counter() - started:.1f} s")
    at = {k[1:]: v for k, v in rows.items() if k[0] == 0.02}
    targets = [
        ("CV 2%, drift +5%, 0.93: control catches it (regression >= 90%)",
         at[(0.05, 0.93)].control["regression"] >= 0.90),
        ("CV 2%, drift +5%, 0.93: the fixed baseline misses it (regression <= 5%)",
         at[(0.05, 0.93)].baseline["regression"] <= 0.05),
        ("CV 2%, drift -5%, 1.00: control passes the good image (pass >= 99%)",
         at[(-0.05, 1.00)].control["pass"] >= 0.99),
        ("CV 2%, drift +-5%, 1.00: control false regression <= 1%",
         max(at[(d, 1.00)].control["regression"] for d in (0.05, -0.05)) <= 0.01),
        ("CV 2%, no drift, 0.95 (edge): control regression <= alpha 10% + MC error",
         at[(0.00, 0.95)].control["regression"] <= 0.10 + 3 * (0.1 * 0.9 / args.trials) ** 0.5),
    ]
    for text, ok in targets:
        print(f"{'MET ' if ok else 'MISS'}  {text}")


if __name__ == "__main__":
    main()
