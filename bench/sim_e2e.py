"""Full simulated-rack sessions: wall time of `pytest suites/test_boot.py` for 1, 2, 4 and 8 nodes.

A session reserves, boots (fixed boot delay), runs the boot suite, gates and reports. Booting N nodes
must cost about one boot, not N: the last line prints the N-node / 1-node ratio. Needs root.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RIGS = """\
default_rig: sim
lease_store: sqlite://leases.sqlite
history: history.sqlite
baselines_dir: {baselines}
rigs:
  sim:
    default_image: good
    provider: {{factory: "hilt.sim.provider:SimProvider", options: {{nodes: {nodes}, boot_delay_s: {delay}}}}}
"""


def session(nodes: int, delay: float, workdir: Path) -> float:
    rigs = workdir / "rigs.yaml"
    rigs.write_text(RIGS.format(nodes=nodes, delay=delay, baselines=ROOT / "baselines"))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "suites" / "test_boot.py"), "--rigs-file", str(rigs),
         "--hilt-reports", str(workdir / "reports"), "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True,
    )
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{nodes} nodes: session failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--boot-delay", type=float, default=5.0)
    parser.add_argument("--counts", default="1,2,4,8")
    args = parser.parse_args()
    times = {}
    for count in [int(c) for c in args.counts.split(",")]:
        with tempfile.TemporaryDirectory(prefix="hilt-e2e-") as tmp:
            times[count] = session(count, args.boot_delay, Path(tmp))
        print(f"sim session, {count} node(s), boot delay {args.boot_delay:.1f} s: {times[count]:.2f} s wall")
    if 1 in times and max(times) > 1:
        print(f"ratio {max(times)}-node / 1-node: {times[max(times)] / times[1]:.2f}")


if __name__ == "__main__":
    main()
