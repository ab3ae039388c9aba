"""Whole gated sessions (`hilt run`) on 1, 2, 4 and 8 simulated nodes: does the wall time stay flat with the node
count now that nodes run side by side (one xdist worker per leased node)?

Each session reserves, boots, runs per-node tests and gates: the reference boot suite, the reference nccl-tests
probe (the simulated image's nccl-tests output, gated against baselines/sim-4gpu.yaml) and a probe window that
keeps each node busy for ``--probe-s`` seconds without using this machine's CPU (a real probe runs minutes on
the node, not on the controller), then writes every report. Target: 8 nodes take at most 1.5 times 1 node.
Needs root (the simulated rack). The machine's load average is printed with each line: on a shared 2-core machine
the simulated nodes' sshd and tools run on the same cores as the controller, so the numbers mean little under load.
"""

from __future__ import annotations

import argparse
import os
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
    provider: {{factory: "hilt.sim.provider:SimProvider", options: {{nodes: {nodes}, boot_delay_s: 1.0,
               name: scaling, subnet: 53}}}}
"""

SUITE = """\
from hilt.suites.test_boot import test_fresh_boot, test_image_identity  # noqa: F401
from hilt.suites.test_nccl import test_nccl_tests  # noqa: F401


def test_probe_window(node):
    \"\"\"A probe's time on the node, spent on the node.\"\"\"
    node.run(["sleep", "{probe_s}"], timeout={probe_s} + 30)
"""


def _phases(reports: Path) -> str:
    """Where the wall time went: the slowest node's boot, and the tests (JUnit's testsuite time)."""
    import json
    from xml.etree import ElementTree

    boots = [n.get("boot_s") or 0 for n in json.loads((reports / "summary.json").read_text())["nodes"]]
    suite = ElementTree.parse(reports / "junit.xml").getroot().find("testsuite")
    return f"slowest boot {max(boots):.1f} s, tests {float(suite.get('time', 0)):.1f} s"


def session(nodes: int, probe_s: float, workdir: Path) -> tuple[float, str]:
    rigs = workdir / "rigs.yaml"
    rigs.write_text(RIGS.format(nodes=nodes, baselines=ROOT / "baselines"))
    suite = workdir / "suite"
    suite.mkdir()
    (suite / "test_scaling.py").write_text(SUITE.format(probe_s=probe_s))
    hilt = [sys.executable, "-c", "from hilt.cli import main; main()"]
    started = time.monotonic()
    proc = subprocess.run([*hilt, "run", "--suites", str(suite), "--rigs-file", str(rigs),
                           "--reports", str(workdir / "reports"), "-q"],
                          cwd=workdir, capture_output=True, text=True, env={**os.environ, "HILT_NO_HISTORY": "1"})
    elapsed = time.monotonic() - started
    verdict = next((line for line in proc.stdout.splitlines() if line.startswith("hilt: gate ")), "")
    if proc.returncode not in (0, 6):  # 6: inconclusive (a gated entry this short plan does not measure)
        raise SystemExit(f"{nodes} nodes: session failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    return elapsed, f"{_phases(workdir / 'reports')}; {verdict.removeprefix('hilt: ')[:60]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probe-s", type=float, default=10.0, help="seconds each node spends in its probe window")
    parser.add_argument("--counts", default="1,2,4,8")
    args = parser.parse_args()
    times = {}
    for count in [int(c) for c in args.counts.split(",")]:
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="hilt-scaling-") as tmp:
            times[count], verdict = session(count, args.probe_s, Path(tmp))
        print(f"gated session, {count} node(s), probe window {args.probe_s:.0f} s per node: "
              f"{times[count]:.1f} s wall ({verdict}; load average {load:.1f} before, "
              f"{os.getloadavg()[0]:.1f} after)", flush=True)
    if 1 in times and max(times) > 1:
        ratio = times[max(times)] / times[1]
        print(f"ratio {max(times)}-node / 1-node: {ratio:.2f} (target <= 1.5; sequential nodes would be "
              f"about {max(times)}x the probe windows)")


if __name__ == "__main__":
    main()
