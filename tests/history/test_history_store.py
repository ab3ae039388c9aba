"""The history store: round trips, filters, series, migration, imports and concurrent appends.

Tests taking ``open_store`` run twice: on a SQLite file and on a real PostgreSQL server (testkit/pgserver.py)."""

from __future__ import annotations

import json
import multiprocessing
import queue
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hilt.history.base import SCHEMA, HistoryError
from hilt.history.open import open_history
from hilt.history.series import SeriesKey
from hilt.history.sqlite import BUSY_TIMEOUT_S
from hilt.history.summary import load_summary
from hilt.record.run_record import RunRecord
from hilt.rig.credentials import Secret

BUSBW = "nccl.all_reduce.busbw{nodes=2,size=1G}"


def test_append_and_read_back_in_time_order(open_store, nightly) -> None:
    store = open_store()
    runs = nightly(10)
    for r in reversed(runs):  # arrival order must not matter
        store.append(r)
    got = store.runs()
    assert [r.run_id for r in got] == [r.run_id for r in runs]
    assert got[3] == runs[3]  # every field survives, samples included


def test_one_run_by_id(open_store, nightly) -> None:
    store = open_store()
    for r in nightly(3):
        store.append(r)
    assert open_store().run("sim-night-02") == nightly(3)[1]
    assert store.run("sim-night-99") is None and store.run("") is None


def test_runs_filtered_by_since_and_rig(open_store, nightly) -> None:
    store = open_store()
    for r in nightly(10, rig="sim") + nightly(10, rig="staging-a"):
        store.append(r)
    since = datetime(2026, 3, 8, tzinfo=UTC)  # nights 8, 9, 10
    assert [r.run_id for r in store.runs(since=since, rig="sim")] == [
        "sim-night-08", "sim-night-09", "sim-night-10"]
    assert len(store.runs(since=since.replace(tzinfo=None))) == 6  # naive means UTC
    assert len(store.runs(rig="staging-a")) == 10


def test_series_per_metric_and_rig(open_store, nightly) -> None:
    store = open_store()
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


def test_reappending_a_run_replaces_it(open_store, nightly) -> None:
    store = open_store()
    run = nightly(1)[0]
    store.append(run)
    store.append(run.model_copy(update={"image": "img-rebuilt"}))
    assert len(store) == 1
    assert store.runs()[0].image == "img-rebuilt"
    assert len(store.series(BUSBW)) == 1


def _append_many(location: str, ref: str | None, worker: int, count: int, payload: str, events, go) -> None:
    events.put(("ready", worker))  # imported and started: under load that alone takes a spawned runner many seconds
    go.wait()  # all 8 runners released together: first opens (which migrate) and appends overlap
    store = open_history(location, Secret(ref) if ref else None)  # each runner opens (and may migrate) itself
    base = RunRecord.model_validate_json(payload)
    store.append(base.model_copy(update={"run_id": "shared-night"}))  # one summary imported by every runner
    events.put(("appended", worker))
    for k in range(count):
        store.append(base.model_copy(update={"run_id": f"w{worker}-{k}"}))
        events.put(("appended", worker))


# A runner that has not moved for this long is stuck, not slow: twice the time a writer may wait for the lock.
STALLED_S = 2 * BUSY_TIMEOUT_S


def _await(events, procs: list, until: Callable[[], bool]) -> None:
    """Wait for ``until()`` while the runners make progress; fail on a runner that died or on a stall.

    No deadline on the whole: on a loaded 2-core machine eight spawned interpreters take a minute or more to
    start, and a fixed barrier/join timeout (60 s, 120 s) made this test fail there with nothing lost."""
    quiet_since = time.monotonic()
    while not until():
        try:
            events.get(timeout=0.5)
            quiet_since = time.monotonic()
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            assert not dead, f"a runner died (exit codes {[p.exitcode for p in procs]})"
            if time.monotonic() - quiet_since > STALLED_S:
                for p in procs:
                    p.kill()
                raise AssertionError(f"no runner moved for {STALLED_S:.0f} s: stuck (lock never granted?)") from None


def test_concurrent_appends_from_processes_lose_nothing(store_location, open_store, nightly) -> None:
    """8 runners finishing at once on one history none of them opened before: every run is kept, once."""
    payload = nightly(1)[0].model_dump_json()
    ctx = multiprocessing.get_context("spawn")
    events, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_append_many, args=(*store_location, w, 25, payload, events, go), daemon=True)
             for w in range(8)]
    for p in procs:
        p.start()
    ready: set[int] = set()
    _await(_Recorder(events, ready), procs, lambda: len(ready) == 8)
    go.set()
    _await(events, procs, lambda: all(p.exitcode is not None for p in procs))
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0] * 8
    store = open_store()
    assert len(store) == 201
    assert sorted(r.run_id for r in store.runs()) == sorted(
        ["shared-night"] + [f"w{w}-{k}" for w in range(8) for k in range(25)])
    assert len(store.series(BUSBW)) == 201
    assert store.schema_version == SCHEMA


class _Recorder:
    """The events queue, noting which runners said they are ready."""

    def __init__(self, events, ready: set[int]) -> None:
        self.events, self.ready = events, ready

    def get(self, timeout: float):  # noqa: ANN201
        kind, worker = self.events.get(timeout=timeout)
        if kind == "ready":
            self.ready.add(worker)
        return kind, worker


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
    store = open_history(path)
    assert store.schema_version == SCHEMA == 4
    assert [p.run_id for p in store.series(BUSBW)] == [run.run_id]


def test_newer_schema_is_refused_with_the_file_named(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    open_history(path)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (99)")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError, match=r"future\.sqlite.*99.*upgrade hilt"):
        open_history(path)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_text("this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="junk.sqlite: not a usable history database"):
        open_history(path)


def test_a_history_held_by_another_writer_is_waited_for_then_named_busy_not_damaged(tmp_path: Path, nightly,
                                                                                   monkeypatch) -> None:
    path = tmp_path / "busy.sqlite"
    store = open_history(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another runner, stuck mid-write
    monkeypatch.setattr("hilt.history.sqlite.BUSY_TIMEOUT_S", 0.3)
    try:
        with pytest.raises(HistoryError, match="busy.sqlite: still locked by another writer") as caught:
            store.append(nightly(1)[0])
        assert "not a usable history database" not in str(caught.value)  # nothing tells the user to move it aside
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.append(nightly(1)[0])  # once the lock is gone the same store writes
    assert len(store.runs()) == 1


def test_import_summary(tmp_path: Path, open_store, nightly) -> None:
    run = nightly(3)[2]
    summary = tmp_path / "summary.json"
    summary.write_text(run.model_dump_json(indent=2))
    store = open_store()
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


def test_a_test_recorded_under_two_ids_is_one_test_after_the_v4_migration(open_store, store_location, nightly,
                                                                          monkeypatch, tmp_path: Path) -> None:
    """Issue 24 item 5: hilt before schema v4 recorded pytest's node id only, which named one reference test
    `suites/test_nccl.py::...` through `pytest suites` and `hilt/suites/test_nccl.py::...` through `hilt run`; the
    report showed two tests with split histories. Opening such a history migrates it: one test, every night."""
    from hilt.history import base
    from hilt.record.run_record import TestRecord
    from hilt.report import cli
    from hilt.report.cli import report_app

    nccl, boot = "test_nccl.py::test_nccl_tests[node1]", "test_boot.py::test_fresh_boot[node1]"
    with monkeypatch.context() as older_hilt:  # what hilt with schema v3 wrote: node ids, no identities
        older_hilt.setattr(base, "SCHEMA", 3)
        older_hilt.setattr(base, "with_test_ids", lambda record: record)
        store = open_store()
        for i, run in enumerate(nightly(6)):
            where = "suites" if i % 2 else "hilt/suites"  # the nightly alternated between the two commands
            store.append(run.model_copy(update={"tests": [
                TestRecord(nodeid=f"{where}/{nccl}", outcome="failed" if i == 5 else "passed", node="node1"),
                TestRecord(nodeid=f"{where}/{boot}", outcome="passed", node="node1")]}))
        assert store.schema_version == 3
        assert {t.test_id for r in store.runs() for t in r.tests} == {None}

    store = open_store()  # this hilt opens it, as the next run or `hilt report` does
    assert store.schema_version == SCHEMA == 4
    runs = store.runs()
    ids = {f"hilt.suites.{test.replace('.py', '')}" for test in (nccl, boot)}
    assert {(t.test_id, t.nodeid.split("/test_")[0]) for r in runs for t in r.tests} == {
        (i, where) for i in ids for where in ("suites", "hilt/suites")}  # node ids kept as they were recorded

    location, ref = store_location
    monkeypatch.setattr(cli, "default_history_path", location)
    monkeypatch.setattr(cli, "default_history_password", Secret(ref) if ref else None)
    out = tmp_path / "report.html"
    done = CliRunner().invoke(report_app, ["--since", "all", "-o", str(out), "--no-prom"])
    assert done.exit_code == 0, done.output
    tests = out.read_text().split('<section id="tests">', 1)[1].split("</section>", 1)[0]
    assert tests.count('<tr class="test-history"') == 2  # not four half-histories
    assert 'data-test="hilt.suites.test_nccl::test_nccl_tests[node1]"' in tests
    assert "every night since sim-night-06 (1 of 6 failed)" in tests and "passed 6 of 6 nights" in tests
