"""The run history's schema, migrations and queries, shared by the SQLite and the PostgreSQL store.

One protocol (:class:`HistoryStore`), two stores sharing one schema, one set of migrations and one set of
queries (:class:`SqlHistoryStore`); :func:`hilt.history.open.open_history` picks the store from the location.
The full record is kept as JSON (the source of truth, so no field is ever lost to the schema), and one row per
metric per run is indexed for series queries.

The schema is versioned: ``schema_version`` holds the applied version and ``_MIGRATIONS`` upgrades an
older database in place, in one transaction (under the writers' lock).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from hilt.history.series import (
    SeriesKey,
    SeriesPoint,
    metric_key,
    parse_time,
    point_node,
    point_of,
)
from hilt.history.summary import HistoryError, load_summary
from hilt.history.test_ids import with_test_ids
from hilt.record.run_record import RunRecord

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


# --- schema and migrations ---------------------------------------------------------------------
# Written once for both stores: ``?`` placeholders (the PostgreSQL store turns them into ``%s``) and the
# float column type of the database (:attr:`Db.float_type`; PostgreSQL's REAL is only 4 bytes).


class Db(Protocol):
    """One open transaction (or autocommit reader) of a store, in the dialect both stores share."""

    float_type: str

    def execute(self, sql: str, args: Sequence[object] = ()) -> list[tuple]: ...

    def executemany(self, sql: str, rows: list[tuple]) -> None: ...


def _migrate_1(db: Db) -> None:
    """v1: one row per run, the whole record as JSON."""
    db.execute(
        f"""CREATE TABLE runs (
               run_id TEXT PRIMARY KEY,
               started_ts {db.float_type} NOT NULL,
               started_at TEXT NOT NULL,
               rig TEXT NOT NULL,
               image TEXT,
               record TEXT NOT NULL)"""
    )
    db.execute("CREATE INDEX runs_rig_time ON runs (rig, started_ts)")
    db.execute("CREATE INDEX runs_time ON runs (started_ts)")


def _migrate_2(db: Db) -> None:
    """v2: an indexed row per metric per run, so a series is one query; backfilled from v1 records."""
    db.execute(
        f"""CREATE TABLE metric_points (
               run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
               rig TEXT NOT NULL,
               metric_key TEXT NOT NULL,
               name TEXT NOT NULL,
               started_ts {db.float_type} NOT NULL,
               value {db.float_type} NOT NULL,
               verdict TEXT,
               PRIMARY KEY (run_id, metric_key))"""
    )
    db.execute("CREATE INDEX metric_points_series ON metric_points (metric_key, rig, started_ts)")
    # no backfill here: v3 rebuilds the table from the records


def _migrate_3(db: Db) -> None:
    """v3: series identity without versions or node (issue 13); one row per run, series and node. Rebuilt from
    the stored records, so an existing history keeps every point and its old split series join again."""
    db.execute("DROP TABLE metric_points")
    db.execute(
        f"""CREATE TABLE metric_points (
               run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
               rig TEXT NOT NULL,
               metric_key TEXT NOT NULL,
               node TEXT NOT NULL DEFAULT '',
               name TEXT NOT NULL,
               started_ts {db.float_type} NOT NULL,
               value {db.float_type} NOT NULL,
               verdict TEXT,
               PRIMARY KEY (run_id, metric_key, node))"""
    )
    db.execute("CREATE INDEX metric_points_series ON metric_points (metric_key, rig, started_ts)")
    for (text,) in db.execute("SELECT record FROM runs"):
        _insert_points(db, RunRecord.model_validate_json(text))


def _migrate_4(db: Db) -> None:
    """v4: every stored test carries its identity (``test_id``, issue 24): runs recorded through ``pytest suites``
    and through ``hilt run`` named one test by two paths, which split its history in two. Each stored record
    that reads as it was written gets the identities hilt.history.test_ids gives its node ids; a record that
    reads only without its unusable samples is left as stored, and given them when read."""
    for run_id, text in db.execute("SELECT run_id, record FROM runs"):
        try:
            record = RunRecord.model_validate_json(text)
        except ValueError:
            continue
        if not all(t.test_id for t in record.tests):
            db.execute("UPDATE runs SET record = ? WHERE run_id = ?",
                       (with_test_ids(record).model_dump_json(), run_id))


_MIGRATIONS: list[Callable[[Db], None]] = [_migrate_1, _migrate_2, _migrate_3, _migrate_4]
SCHEMA = len(_MIGRATIONS)


def _insert_points(db: Db, record: RunRecord) -> None:
    ts = parse_time(record.started_at).timestamp()
    rows: dict[tuple[str, str], tuple] = {}  # a series measured twice on one node in one run: the last one
    for metric in record.metrics:
        if not metric.samples or not all(math.isfinite(x) for x in metric.samples):
            continue  # a NaN mean would be NULL in sqlite (IntegrityError); refused at entry, skipped here
        key, node = metric_key(metric), point_node(metric)
        rows[(key, node)] = (record.run_id, record.rig, key, node, metric.name, ts,
                             sum(metric.samples) / len(metric.samples),
                             metric.verdict.outcome if metric.verdict else None)
    if rows:
        db.executemany("INSERT INTO metric_points VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(rows.values()))


_key_of = metric_key  # HistoryStore.series() takes a parameter of the same name




class HistoryStore(Protocol):
    """What the plugin, ``hilt report`` and ``hilt history`` need of a history, wherever it lives."""

    @property
    def location(self) -> str:
        """Where the history lives, for messages (a path, or a URL without its password)."""
        ...

    @property
    def schema_version(self) -> int: ...

    def append(self, record: RunRecord) -> None: ...

    def runs(self, since: datetime | None = None, rig: str | None = None) -> list[RunRecord]: ...

    def run(self, run_id: str) -> RunRecord | None: ...

    def series_keys(self) -> list[SeriesKey]: ...

    def series(self, metric_key: str, rig: str | None = None,
               since: datetime | None = None) -> list[SeriesPoint]: ...

    def import_summary(self, path: Path | str) -> RunRecord: ...

    def __len__(self) -> int: ...



class SqlHistoryStore(ABC):
    """The schema, migrations and queries both stores share; a subclass says how to connect and lock."""

    location: str

    @abstractmethod
    def _transaction(self, write: bool) -> contextlib.AbstractContextManager[Db]:
        """A connection in one transaction; ``write`` takes the writers' lock first. Driver errors leave it
        as HistoryErrors naming the store; the transaction is rolled back on any error."""

    def _unusable(self, exc: BaseException) -> HistoryError:
        return HistoryError(f"{self.location}: not a usable history database ({exc}); move it aside to start "
                            "a new one")

    def _decode(self, text: str) -> RunRecord | None:
        """A stored record; one that no longer validates (a non-finite sample stored by an older hilt is
        ``null`` in JSON) is read without its unusable samples, or skipped with a warning, so one bad run
        never makes the whole history unreadable."""
        try:
            return RunRecord.model_validate_json(text)
        except ValueError as first:
            try:
                data = json.loads(text)
                for metric in data.get("metrics") or []:
                    if isinstance(metric, dict) and isinstance(metric.get("samples"), list):
                        metric["samples"] = [x for x in metric["samples"]
                                             if isinstance(x, (int, float)) and math.isfinite(x)]
                return with_test_ids(RunRecord.model_validate(data))  # left as stored by migration 4
            except (ValueError, TypeError, AttributeError, RecursionError):
                log.warning("%s: skipped a stored run that cannot be read: %s", self.location,
                            str(first).splitlines()[0])
                return None

    def _migrate(self) -> None:
        with self._transaction(write=True) as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = db.execute("SELECT MAX(version) FROM schema_version")[0][0] or 0
            if current > SCHEMA:
                raise HistoryError(f"{self.location}: history schema version {current} is newer than this hilt "
                                   f"supports ({SCHEMA}); upgrade hilt")
            for version in range(current + 1, SCHEMA + 1):
                _MIGRATIONS[version - 1](db)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    @property
    def schema_version(self) -> int:
        with self._transaction(write=False) as db:
            return int(db.execute("SELECT MAX(version) FROM schema_version")[0][0])

    def append(self, record: RunRecord) -> None:
        """Store ``record``; appending a run id again replaces that run (re-imports are idempotent). A record of
        an older hilt (an imported summary.json) is stored with its tests' identities filled in."""
        record = with_test_ids(record)
        started = parse_time(record.started_at)
        with self._transaction(write=True) as db:
            db.execute("DELETE FROM metric_points WHERE run_id = ?", (record.run_id,))
            db.execute("DELETE FROM runs WHERE run_id = ?", (record.run_id,))
            db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                       (record.run_id, started.timestamp(), record.started_at, record.rig, record.image,
                        record.model_dump_json()))
            _insert_points(db, record)

    def runs(self, since: datetime | None = None, rig: str | None = None) -> list[RunRecord]:
        """Runs started at or after ``since`` (aware, or naive = UTC), oldest first."""
        query, args = "SELECT record FROM runs WHERE 1=1", []
        if since is not None:
            if since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            query += " AND started_ts >= ?"
            args.append(since.timestamp())
        if rig is not None:
            query += " AND rig = ?"
            args.append(rig)
        query += " ORDER BY started_ts, run_id"
        with self._transaction(write=False) as db:
            rows = db.execute(query, args)
        return [record for record in (self._decode(text) for (text,) in rows) if record is not None]

    def run(self, run_id: str) -> RunRecord | None:
        """One run by its id (``hilt report --compare``), None when the history has no such run."""
        with self._transaction(write=False) as db:
            rows = db.execute("SELECT record FROM runs WHERE run_id = ?", (run_id,))
        return self._decode(rows[0][0]) if rows else None

    def series_keys(self) -> list[SeriesKey]:
        with self._transaction(write=False) as db:
            rows = db.execute("SELECT DISTINCT rig, metric_key FROM metric_points ORDER BY metric_key, rig")
        return [SeriesKey(rig, key) for rig, key in rows]

    def series(self, metric_key: str, rig: str | None = None, since: datetime | None = None) -> list[SeriesPoint]:
        """One metric's points, oldest first; ``rig=None`` returns every rig's points (each has .rig)."""
        query = ("SELECT r.record, p.metric_key, p.node FROM metric_points p JOIN runs r USING (run_id) "
                 "WHERE p.metric_key = ?")
        args: list[object] = [metric_key]
        if rig is not None:
            query += " AND p.rig = ?"
            args.append(rig)
        if since is not None:
            query += " AND p.started_ts >= ?"
            args.append((since if since.tzinfo else since.replace(tzinfo=UTC)).timestamp())
        query += " ORDER BY p.started_ts, p.run_id, p.node"
        with self._transaction(write=False) as db:
            rows = db.execute(query, args)
        points = []
        for text, key, node in rows:
            record = self._decode(text)
            if record is None:
                continue
            for metric in record.metrics:
                if _key_of(metric) == key and point_node(metric) == node:
                    point = point_of(record, metric)
                    if point is not None:
                        points.append(point)
                    break
        return points

    def import_summary(self, path: Path | str) -> RunRecord:
        """Append an older run's ``summary.json`` (a RunRecord as JSON) and return it."""
        record = load_summary(path)
        self.append(record)
        return record

    def __len__(self) -> int:
        with self._transaction(write=False) as db:
            return int(db.execute("SELECT COUNT(*) FROM runs")[0][0])


