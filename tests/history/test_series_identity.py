"""A series is a metric and the labels of the measurement; versions and nodes are per point (issue 13, failure 6)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hilt.history.open import open_history
from hilt.history.series import SeriesKey, series_from_runs
from hilt.record.run_record import MetricRecord, NodeRecord, RunRecord

LABELS = {"size": "8589934592", "dtype": "float", "nodes": "1", "gpus_per_node": "8", "tool": "nccl-tests",
          "backend": "nccl"}
KEY = ("nccl.all_reduce.busbw{backend=nccl,dtype=float,gpus_per_node=8,nodes=1,size=8589934592,"
       "tool=nccl-tests}")


def night(i: int, nccl: str, value: float = 470.0) -> RunRecord:
    started = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=i)
    metrics = [MetricRecord(name="nccl.all_reduce.busbw", unit="GB/s", samples=[value, value + 1],
                            labels={**LABELS, "nccl_version": nccl, "node": node}, node=node)
               for node in ("gpu-01", "r3-u17.gpu")]
    return RunRecord(run_id=f"n{i:02d}", started_at=started.isoformat(), rig="rack", image="img-1",
                     nodes=[NodeRecord(name="gpu-01", driver="550.54.15"), NodeRecord(name="r3-u17.gpu",
                                                                                    driver="550.54.15")],
                     metrics=metrics)


def runs() -> list[RunRecord]:
    return [night(i, "2.21.5" if i < 6 else "2.23.4") for i in range(12)]


def test_an_nccl_upgrade_stays_one_series_annotated_where_the_version_changes():
    series = series_from_runs(runs())
    assert list(series) == [SeriesKey("rack", KEY)]  # not split by nccl_version, nor by node
    one = series[SeriesKey("rack", KEY)]
    assert len(one.points) == 24 and {p.node for p in one.points} == {"gpu-01", "r3-u17.gpu"}
    changes = one.version_changes()
    assert [(one.points[i].run_id, one.points[i].node, c) for i, c in changes] == [
        ("n06", "gpu-01", {"nccl": ("2.21.5", "2.23.4")}), ("n06", "r3-u17.gpu", {"nccl": ("2.21.5", "2.23.4")})]
    assert one.points[0].versions == {"nccl": "2.21.5", "driver": "550.54.15", "image": "img-1"}


def test_the_store_keeps_one_series_with_every_node_round_tripped(tmp_path: Path):
    store = open_history(tmp_path / "h.sqlite")
    for r in runs():
        store.append(r)
    assert store.series_keys() == [SeriesKey("rack", KEY)]
    points = store.series(KEY, rig="rack")
    assert len(points) == 24 and points[0].node == "gpu-01" and points[1].node == "r3-u17.gpu"


def test_a_v2_history_split_by_nccl_version_is_migrated_into_one_series(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)  # what hilt with schema v2 wrote: the key held nccl_version and node
    conn.executescript(
        "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);"
        "INSERT INTO schema_version VALUES (2);"
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_ts REAL NOT NULL, started_at TEXT NOT NULL,"
        " rig TEXT NOT NULL, image TEXT, record TEXT NOT NULL);"
        "CREATE TABLE metric_points (run_id TEXT NOT NULL, rig TEXT NOT NULL, metric_key TEXT NOT NULL,"
        " name TEXT NOT NULL, started_ts REAL NOT NULL, value REAL NOT NULL, verdict TEXT,"
        " PRIMARY KEY (run_id, metric_key));")
    for r in runs():
        ts = datetime.fromisoformat(r.started_at).timestamp()
        conn.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)", (r.run_id, ts, r.started_at, r.rig, r.image,
                                                                     r.model_dump_json()))
        for m in r.metrics:
            old_key = "nccl.all_reduce.busbw{" + ",".join(f"{k}={v}" for k, v in sorted(m.labels.items())) + "}"
            conn.execute("INSERT INTO metric_points VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (r.run_id, r.rig, old_key, m.name, ts, 470.5, None))
    conn.commit()
    conn.close()
    store = open_history(path)
    assert store.schema_version == 4
    assert store.series_keys() == [SeriesKey("rack", KEY)]
    assert len(store.series(KEY)) == 24


def test_the_trend_chart_marks_where_the_nccl_version_changed():
    from hilt.report.svg import trend_chart

    series = series_from_runs(runs())[SeriesKey("rack", KEY)]
    svg = trend_chart(series, [], "c1")
    assert svg.count('class="version-change"') == 1 and "nccl 2.21.5 -&gt; 2.23.4" in svg
