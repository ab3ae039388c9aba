"""The history store: round trips, filters, series, migration, imports and concurrent appends."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hilt.history import SCHEMA, HistoryError, HistoryStore, SeriesKey, load_summary
from hilt.run_record import RunRecord

BUSBW = "nccl.all_reduce.busbw{nodes=2,size=1G}"


def test_append_and_read_back_in_time_order(tmp_path: Path, nightly) -> None:
    store = HistoryStore(tmp_path / "h.sqlite")
    runs = nightly(10)
    for r in reversed(runs):  # arrival order must not matter
        store.append(r)
    got = store.runs()
    assert [r.run_id for r in got] == [r.run_id for r in runs]
    assert got[3] == runs[3]  # every field survives, samples included


def test_runs_filtered_by_since_and_rig(tmp_path: Path, nightly) -> None:
    store = HistoryStore(tmp_path / "h.sqlite")
    for r in nightly(10, rig="sim") + nightly(10, rig="staging-a"):
        store.append(r)
    since = datetime(2026, 3, 8, tzinfo=UTC)  # nights 8, 9, 10
    assert [r.run_id for r in store.runs(since=since, rig="sim")] == [
        "sim-night-08", "sim-night-09", "sim-night-10"]
    assert len(store.runs(since=since.replace(tzinfo=None))) == 6  # naive means UTC
    assert len(store.runs(rig="staging-a")) == 10


def test_series_per_metric_and_rig(tmp_path: Path, nightly) -> None:
    store = HistoryStore(tmp_path / "h.sqlite")
    runs = nightly(25)
    for r in runs + nightly(5, rig="staging-a"):
        store.append(r)
    points = store.series(BUSBW, rig="sim")
    assert [p.run_id for p in points] == [r.run_id for r in runs]
    assert points[0].image == "img-1.4.2" and points[-1].image == "img-1.4.3-regressed"
    assert points[-1].value == pytest.approx(sum(runs[-1].metrics[0].samples) / 5)
    assert points[-1].verdict == "regression"
    assert len(store.series(BUSBW)) == 30  # every rig when none is named
    assert SeriesKey("staging-a", "boot.seconds{}") in store.series_keys()


def test_reappending_a_run_replaces_it(tmp_path: Path, nightly) -> None:
    store = HistoryStore(tmp_path / "h.sqlite")
    run = nightly(1)[0]
    store.append(run)
    store.append(run.model_copy(update={"image": "img-rebuilt"}))
    assert len(store) == 1
    assert store.runs()[0].image == "img-rebuilt"
    assert len(store.series(BUSBW)) == 1


def _append_many(path: str, worker: int, count: int, payload: str) -> None:
    store = HistoryStore(Path(path))
    base = RunRecord.model_validate_json(payload)
    for k in range(count):
        store.append(base.model_copy(update={"run_id": f"w{worker}-{k}"}))


def test_concurrent_appends_from_processes_lose_nothing(tmp_path: Path, nightly) -> None:
    path = tmp_path / "h.sqlite"
    payload = nightly(1)[0].model_dump_json()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), w, 40, payload)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    store = HistoryStore(path)
    assert len(store) == 160
    assert len(store.series(BUSBW)) == 160


def test_v1_file_is_migrated_and_backfilled(tmp_path: Path, nightly) -> None:
    path = tmp_path / "old.sqlite"
    run = nightly(1)[0]
    conn = sqlite3.connect(path)  # what hilt with schema v1 wrote
    conn.executescript(
        "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);"
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_ts REAL NOT NULL, started_at TEXT NOT NULL,"
        " rig TEXT NOT NULL, image TEXT, record TEXT NOT NULL);")
    conn.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                 (run.run_id, 0.0, run.started_at, run.rig, run.image, run.model_dump_json()))
    conn.commit()
    conn.close()
    store = HistoryStore(path)
    assert store.schema_version == SCHEMA == 3
    assert [p.run_id for p in store.series(BUSBW)] == [run.run_id]


def test_newer_schema_is_refused_with_the_file_named(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    HistoryStore(path)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (99)")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError, match=r"future\.sqlite.*99.*upgrade hilt"):
        HistoryStore(path)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_text("this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="junk.sqlite: not a usable history database"):
        HistoryStore(path)


def test_import_summary(tmp_path: Path, nightly) -> None:
    run = nightly(3)[2]
    summary = tmp_path / "summary.json"
    summary.write_text(run.model_dump_json(indent=2))
    store = HistoryStore(tmp_path / "h.sqlite")
    assert store.import_summary(summary).run_id == run.run_id
    assert store.runs() == [run]


def test_import_summary_errors_name_file_and_field(tmp_path: Path, nightly) -> None:
    data = json.loads(nightly(1)[0].model_dump_json())
    data["metrics"][0]["samples"] = "fast"
    bad = tmp_path / "summary.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(HistoryError, match=r"summary\.json: field metrics\.0\.samples"):
        load_summary(bad)
    bad.write_text("{not json")
    with pytest.raises(HistoryError, match=r"summary\.json: not JSON \(line 1"):
        load_summary(bad)
    data["schema_version"] = 7
    bad.write_text(json.dumps(data))
    with pytest.raises(HistoryError, match="schema_version 7 is newer"):
        load_summary(bad)
