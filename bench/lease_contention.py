"""Lease contention benchmark: N processes compete for 4 nodes with random lease sizes, on each store.

Prints, per store: grants per second under contention, p50/p99 time from a release to the next waiter's grant
of those nodes, and the count of double grants found by the independent checker (must be 0).

    .venv/bin/python bench/lease_contention.py [--processes 16] [--rounds 10] [--hold 0.005] [--stores sqlite,etcd]

The competing processes are testkit/lease_worker.py (the same as the acceptance test); the etcd store runs
against a throwaway local etcd (Debian package etcd-server).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hilt.lease.local_etcd import LocalEtcd  # noqa: E402
from testkit.lease_checker import double_grants, load  # noqa: E402

WORKER = ROOT / "testkit" / "lease_worker.py"


def handoff_latencies(records: list[dict]) -> list[float]:
    """For each grant that had to wait: time from the release that freed its last busy node to the grant."""
    latencies = []
    for g in records:
        before = [r["releasing"] for r in records
                  if r is not g and set(r["nodes"]) & set(g["nodes"]) and g["asked"] < r["releasing"] <= g["granted"]]
        if before:
            latencies.append(g["granted"] - max(before))
    return latencies


def run(url: str, processes: int, rounds: int, hold_s: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="hilt-bench-") as tmp:
        work = Path(tmp)
        marks, go = work / "marks", work / "go"
        marks.mkdir()
        logs = [work / f"grants-{i}.jsonl" for i in range(processes)]
        procs = [subprocess.Popen([sys.executable, str(WORKER), "contend", url, str(logs[i]), str(marks),
                                   str(rounds), str(i), str(go), str(hold_s)], cwd=ROOT) for i in range(processes)]
        time.sleep(1.5)
        go.touch()
        for proc in procs:
            proc.wait(timeout=600)
        failed = [p.returncode for p in procs if p.returncode != 0]
        records = load(logs)
    span = max(r["released"] for r in records) - min(r["granted"] for r in records)
    lat = sorted(handoff_latencies(records))
    return {"grants": len(records), "failed_processes": len(failed), "grants_per_s": len(records) / span,
            "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan"),
            "double_grants": len(double_grants(records))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--hold", type=float, default=0.005, help="seconds each grant holds its nodes")
    parser.add_argument("--stores", default="sqlite,etcd")
    args = parser.parse_args()
    print(f"{args.processes} processes x {args.rounds} leases of 1-4 of 4 nodes, hold {args.hold * 1000:g} ms")
    print(f"{'store':8} {'grants':>6} {'grants/s':>9} {'p50 handoff ms':>15} {'p99 handoff ms':>15} "
          f"{'double grants':>14}")
    for kind in args.stores.split(","):
        if kind == "sqlite":
            with tempfile.TemporaryDirectory(prefix="hilt-bench-db-") as db:
                result = run(f"sqlite://{db}/leases.sqlite", args.processes, args.rounds, args.hold)
        elif kind == "etcd":
            if shutil.which("etcd") is None:
                print("etcd     skipped: etcd not installed (apt-get install etcd-server)")
                continue
            with LocalEtcd() as etcd:
                result = run(f"{etcd.url}?prefix=/bench/", args.processes, args.rounds, args.hold)
        else:
            raise SystemExit(f"unknown store {kind!r}: use sqlite and/or etcd")
        print(f"{kind:8} {result['grants']:6d} {result['grants_per_s']:9.1f} {result['p50_ms']:15.1f} "
              f"{result['p99_ms']:15.1f} {result['double_grants']:14d}"
              + (f"  ({result['failed_processes']} processes failed)" if result["failed_processes"] else ""))


if __name__ == "__main__":
    main()
