"""How long the nightly report takes at scale, and how big the file gets.

1,000 runs x 50 metrics (5 samples each, a baseline and verdict on each, a level step in every fifth
metric), written through the history store, read back, and turned into the HTML report (Otava change
points included). Prints seconds per phase and the report's size. Usage:
    .venv/bin/python bench/report_scale.py [--runs 1000] [--metrics 50] [--out /tmp/report_scale]
        [--nodes 0]   # N > 0: every metric and test per node (N nodes, one profile), as a rack records them
        [--store sqlite|postgresql]   # postgresql: a throwaway local server (testkit/pgserver.py: initdb, pg_ctl)
        [--history postgresql://user@host/db --password-ref '${PGPW}']   # or an existing, empty database
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hilt.history.open import open_history
from hilt.history.series import series_from_runs
from hilt.record.run_record import BaselineRecord, MetricRecord, NodeRecord, RunRecord, TestRecord, VerdictRecord
from hilt.report.html import build_report
from hilt.report.nodes import node_changes
from hilt.rig.credentials import Secret


def synth_runs(n_runs: int, n_metrics: int, seed: int = 1, n_nodes: int = 0) -> list[RunRecord]:
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, 2, tzinfo=UTC)
    runs = []
    nodes = [f"gpu-{k:02d}" for k in range(1, n_nodes + 1)]
    for i in range(n_runs):
        image = f"img-{1 + i // 40}.0"
        metrics = []
        for m in range(n_metrics):
            level = 100.0 + m
            if m % 5 == 0 and i >= n_runs // 2:
                level *= 0.85
            base = BaselineRecord(value=100.0 + m, tolerance=0.05)
            for node in nodes or [None]:
                samples = [level + rng.gauss(0, 1.5) for _ in range(5)]
                ok = sum(samples) / 5 >= base.value * 0.95
                metrics.append(MetricRecord(
                    name=f"bench.metric_{m:02d}", unit="GB/s", labels={"size": "1G", "nodes": "2"}, samples=samples,
                    baseline=base, verdict=VerdictRecord(outcome="pass" if ok else "regression", reason="bench"),
                    node=node, profile="bench-profile" if node else None))
        tests = [TestRecord(nodeid=f"suites/bench/test_m.py::test_{k}", node=node,
                            outcome="failed" if k == 0 and rng.random() < 0.2 else "passed")
                 for k in range(20) for node in nodes or [None]]
        runs.append(RunRecord(
            run_id=f"bench-{i:04d}", started_at=(start + timedelta(days=i)).isoformat(), rig="bench",
            image=image, nodes=[NodeRecord(name=n, image_id=image) for n in nodes or ["node1", "node2"]],
            tests=tests, metrics=metrics, versions={"driver": "550.90.07", "nccl": "2.21.5"},
            node_profiles={n: "bench-profile" for n in nodes}))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--metrics", type=int, default=50)
    ap.add_argument("--nodes", type=int, default=0, help="per-node metrics and tests on N nodes (0: lease-wide)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--history", default=None, help="an existing empty PostgreSQL database URL")
    ap.add_argument("--password-ref", default=None, help="its password: ${ENV_VAR} or file:/path")
    args = ap.parse_args()
    server = None
    if args.store == "postgresql" and args.history is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from testkit.pgserver import PASSWORD_ENV, PgServer

        server = PgServer().start()
        os.environ[PASSWORD_ENV] = server.password
        args.history, args.password_ref = server.create_database("bench"), "${" + PASSWORD_ENV + "}"
    try:
        run(args)
    finally:
        if server is not None:
            server.stop()


def run(args: argparse.Namespace) -> None:
    out = args.out or Path(tempfile.mkdtemp(prefix="report_scale-"))
    out.mkdir(parents=True, exist_ok=True)
    db = out / "history.sqlite"
    db.unlink(missing_ok=True)
    location = args.history or db

    t0 = time.perf_counter()
    runs = synth_runs(args.runs, args.metrics, n_nodes=args.nodes)
    t1 = time.perf_counter()
    store = open_history(location, Secret(args.password_ref) if args.password_ref else None)
    for r in runs:
        store.append(r)
    t2 = time.perf_counter()
    loaded = store.runs()
    t3 = time.perf_counter()
    series = series_from_runs(loaded)
    n_changes = sum(len(node_changes(s)) for s in series.values())
    t4 = time.perf_counter()
    page = build_report(loaded, out / "report.html", title="report_scale")
    t5 = time.perf_counter()

    size = page.stat().st_size
    print(f"store                   : {store.location}")
    print(f"runs x metrics          : {args.runs} x {args.metrics} ({len(series)} series, "
          f"{f'{args.nodes} nodes' if args.nodes else 'lease-wide'})")
    print(f"synthesize              : {t1 - t0:8.2f} s")
    print(f"history append (1 by 1) : {t2 - t1:8.2f} s  ({(t2 - t1) / args.runs * 1000:.1f} ms/run)")
    print(f"history read all runs   : {t3 - t2:8.2f} s")
    print(f"change points (Otava)   : {t4 - t3:8.2f} s  ({n_changes} changes)")
    print(f"build report (total)    : {t5 - t4:8.2f} s  (includes change points again)")
    print(f"report size             : {size / 1e6:8.2f} MB  ({page})")
    if db.exists():
        print(f"history db size         : {db.stat().st_size / 1e6:8.2f} MB")


if __name__ == "__main__":
    main()
