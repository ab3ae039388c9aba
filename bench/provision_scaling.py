"""Provisioning scaling: wall time to boot and verify 1, 2, 4 and 8 nodes at once (simulated rack).

Each simulated node takes a fixed boot delay, so a parallel provisioner costs about one boot whatever
the node count. Prints one line per node count (median of --repeat runs) and the 8-node / 1-node ratio
(target: <= 1.3).
Needs root (network namespaces).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from hilt.provision.boot import provision
from hilt.rig.config import load_inventory
from hilt.rig.provider import materialize
from hilt.sim.provider import SimProvider

RIGS = """\
default_rig: sim
rigs:
  sim:
    provider: {factory: "hilt.sim.provider:SimProvider", options: {}}
"""


def boot_once(count: int, boot_delay_s: float, workdir: Path) -> float:
    rigs = workdir / "rigs.yaml"
    rigs.write_text(RIGS)
    inventory = load_inventory(rigs)
    provider = SimProvider()
    try:
        # Own sim name and subnet: a developer's `hilt sim up` (name "sim", subnet 0) may be running.
        options = {"nodes": count, "boot_delay_s": boot_delay_s, "images": ["good"], "name": "benchprov",
                   "subnet": 240}
        provided = provider.start("sim", options, workdir / "sim")
        inventory = materialize(inventory, "sim", provided)
        name, image = inventory.image("good")
        started = time.monotonic()
        results = provision(inventory.rig("sim").nodes, name, image)
        elapsed = time.monotonic() - started
        failed = [r.error for r in results.values() if not r.ok]
        if failed:
            raise SystemExit(f"{count} nodes: boot failed: {failed}")
        return elapsed
    finally:
        provider.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--boot-delay", type=float, default=5.0)
    parser.add_argument("--counts", default="1,2,4,8")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per node count; the median is reported (a busy 2-core host is noisy)")
    args = parser.parse_args()
    times = {}
    for count in [int(c) for c in args.counts.split(",")]:
        runs = []
        for _ in range(max(1, args.repeat)):
            with tempfile.TemporaryDirectory(prefix="hilt-bench-") as tmp:
                runs.append(boot_once(count, args.boot_delay, Path(tmp)))
        times[count] = statistics.median(runs)
        print(f"provision {count} node(s), boot delay {args.boot_delay:.1f} s: {times[count]:.2f} s wall "
              f"(median of {len(runs)}; all: {', '.join(f'{r:.2f}' for r in runs)})")
    if 1 in times and max(times) > 1:
        print(f"ratio {max(times)}-node / 1-node: {times[max(times)] / times[1]:.2f} (target <= 1.3)")

if __name__ == "__main__":
    main()
