"""Framework overhead per probe: wall time of a probe call minus the time the probe itself measured.

Overhead = staging scripts over the node interface, torch import, torchrun rendezvous, process-group init,
the reaper, and parsing. Runs on this host through LocalNode (subprocess instead of SSH; 2 "nodes" are two
torchruns on this host rendezvousing over 127.0.0.1), so SSH round trips of a real rig come on top.

    .venv/bin/python bench/probe_overhead.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics

from hilt.node.local import LocalNode
from hilt.probes import runner


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print(f"{'probe':<22}{'nodes':>6}{'wall s':>9}{'measured s':>12}{'overhead s':>12}{'init s':>9}")
    for n_nodes in (1, 2):
        nodes = [LocalNode(f"local{i}") for i in range(n_nodes)]
        cases = {
            "torch all-reduce": lambda nodes=nodes: runner.torch_allreduce(nodes, [2**20, 4 * 2**20], 5, 2, 120),
            "ddp (8 MB grads)": lambda nodes=nodes: runner.ddp(nodes, 8, 5, 120),
        }
        for name, call in cases.items():
            walls, measured, inits = [], [], []
            for _ in range(args.repeats):
                run = call()
                walls.append(run.wall_s)
                measured.append(run.measured_s)
                inits.append(max(float(r.get("init_s", 0)) for r in run.records))
            wall, meas = statistics.median(walls), statistics.median(measured)
            print(f"{name:<22}{n_nodes:>6}{wall:>9.2f}{meas:>12.2f}{wall - meas:>12.2f}"
                  f"{statistics.median(inits):>9.2f}")


if __name__ == "__main__":
    main()
