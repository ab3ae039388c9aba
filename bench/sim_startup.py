"""Simulated rack start-up: wall time of the sim provider's start (and stop) for 1, 2, 4 and 8 nodes.

What a session pays before it can boot anything: the BMC emulator (a process and its TLS key), the images, and
per node a network namespace, a veth on the sim's bridge and an SSH host key. Done one node after another, the
start grew with the node count; done side by side it should stay near the 1-node time. Prints the median of
--repeat starts per count and the N-node / 1-node ratio. Needs root (network namespaces).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from hilt.sim.provider import SimProvider


def start_once(count: int, workdir: Path) -> tuple[float, float]:
    """(start seconds, stop seconds) of one sim of ``count`` nodes."""
    provider = SimProvider()
    # the shipped sim rig's options (every standard image), with its own sim name and subnet: a developer's
    # `hilt sim up` (name "sim", subnet 0) may be running
    options = {"nodes": count, "boot_delay_s": 1.0, "name": "benchstart", "subnet": 242}
    started = time.monotonic()
    try:
        provider.start("sim", options, workdir)
        up = time.monotonic() - started
    finally:
        stopping = time.monotonic()
        provider.stop()
    return up, time.monotonic() - stopping


def main() -> None:
    import hilt.sim.daemon

    print(f"sim code: {Path(hilt.sim.daemon.__file__).parent}", flush=True)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", default="1,2,4,8")
    parser.add_argument("--repeat", type=int, default=3,
                        help="starts per node count; the median is reported (a busy 2-core host is noisy)")
    args = parser.parse_args()
    times = {}
    for count in [int(c) for c in args.counts.split(",")]:
        runs = []
        for _ in range(max(1, args.repeat)):
            with tempfile.TemporaryDirectory(prefix="hilt-bench-") as tmp:
                runs.append(start_once(count, Path(tmp)))
        times[count] = statistics.median(up for up, _ in runs)
        print(f"sim start, {count} node(s): {times[count]:.2f} s wall (median of {len(runs)}; all: "
              f"{', '.join(f'{up:.2f}' for up, _ in runs)}; stop median "
              f"{statistics.median(down for _, down in runs):.2f} s; load average {os.getloadavg()[0]:.1f})",
              flush=True)
    if 1 in times and max(times) > 1:
        print(f"ratio {max(times)}-node / 1-node: {times[max(times)] / times[1]:.2f}")


if __name__ == "__main__":
    main()
