"""The nightly run history: every session's RunRecord, in a SQLite file or a PostgreSQL database.

One protocol (:class:`HistoryStore`), two stores sharing one schema, one set of migrations and one set of
queries (:class:`_SqlHistoryStore`); :func:`open_history` picks the store from the location (a path, or a
``postgresql://`` URL).

Why SQLite by default: it needs no server, and in WAL mode with ``BEGIN IMMEDIATE`` several sessions
(rigs finishing at the same minute) on one machine append at once without losing a run: a writer waits
for the lock (busy timeout) instead of failing. Why PostgreSQL as well: several CI runners writing one
SQLite file over a network share is a known way to lose data; a server serialises them (writers take a
transaction-scoped advisory lock) and every runner sees every night. The full record is kept as JSON (the
source of truth, so no field is ever lost to the schema), and one row per metric per run is indexed for
series queries.

The schema is versioned: ``schema_version`` holds the applied version and ``_MIGRATIONS`` upgrades an
older database in place, in one transaction (under the writers' lock).

A series is a metric and the labels that define the measurement (size, dtype, nodes, GPUs per node, backend,
tool, ...), on one rig. Versions (NCCL, driver, kernel, image) and the node a point was measured on are
recorded per point, not in the key: an NCCL upgrade must show as a step in one trend line, annotated with
the version change, not start a new line exactly where a regression would show.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from hilt.errors import ConfigError
from hilt.record.run_record import SCHEMA_VERSION as RECORD_SCHEMA_VERSION
from hilt.record.run_record import BaselineRecord, MetricRecord, RunRecord
from hilt.util.safe_yaml import decode

if TYPE_CHECKING:
    from hilt.rig.config import Secret

BUSY_TIMEOUT_S = 60.0
log = logging.getLogger(__name__)


#: Labels that say what ran or where, not what was measured: per point, never part of a series' identity.
POINT_LABELS = frozenset({"node", "nccl_version", "driver", "kernel", "image", "cuda_version", "torch_version"})


def metric_key(metric: MetricRecord) -> str:
    """The series identity ``name{k=v,...}``: sorted labels, without the per-point ones (:data:`POINT_LABELS`)."""
    inner = ",".join(f"{k}={v}" for k, v in sorted(metric.labels.items()) if k not in POINT_LABELS)
    return f"{metric.name}{{{inner}}}"


def point_node(metric: MetricRecord) -> str:
    """The node a point was measured on (``a+b`` for a lease-wide run; "" when unknown)."""
    return metric.node or metric.labels.get("node", "")


def point_versions(record: RunRecord, metric: MetricRecord) -> dict[str, str]:
    """What ran when the point was measured: NCCL (from the metric), driver/kernel (its nodes), image."""
    versions: dict[str, str] = {}
    if metric.labels.get("nccl_version"):
        versions["nccl"] = metric.labels["nccl_version"]
    names = set(point_node(metric).split("+")) if point_node(metric) else {n.name for n in record.nodes}
    nodes = [n for n in record.nodes if n.name in names]
    for field_name in ("driver", "kernel"):
        values = sorted({getattr(n, field_name) for n in nodes if getattr(n, field_name)})
        if values:
            versions[field_name] = ",".join(values)
    if record.image:
        versions["image"] = record.image
    return versions


def parse_time(value: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (naive times are taken as UTC)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class SeriesPoint:
    """One run's value of one metric on one rig: what a trend chart plots and Otava analyses."""

    run_id: str
    started_at: datetime
    rig: str
    image: str | None
    value: float  # mean of the run's samples
    samples: tuple[float, ...]
    higher_is_better: bool
    unit: str
    baseline: BaselineRecord | None = None
    verdict: str | None = None
    node: str = ""
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SeriesKey:
    """A metric's identity across runs: its name, labels and the rig it was measured on."""

    rig: str
    metric: str  # metric_key(): name{labels}

    @property
    def name(self) -> str:
        return self.metric.split("{", 1)[0]


@dataclass
class Series:
    key: SeriesKey
    unit: str = ""
    higher_is_better: bool = True
    points: list[SeriesPoint] = field(default_factory=list)

    def version_changes(self) -> list[tuple[int, dict[str, tuple[str, str]]]]:
        """Where versions change along the series, per node: (point index, {what: (before, after)})."""
        out: list[tuple[int, dict[str, tuple[str, str]]]] = []
        last: dict[str, dict[str, str]] = {}
        for i, point in enumerate(self.points):
            before = last.get(point.node)
            if before is not None:
                changed = {k: (before.get(k, ""), v) for k, v in point.versions.items() if before.get(k, "") != v}
                if changed:
                    out.append((i, changed))
            last[point.node] = point.versions
        return out


def _point(record: RunRecord, metric: MetricRecord) -> SeriesPoint | None:
    if not metric.samples:
        return None
    return SeriesPoint(
        run_id=record.run_id,
        started_at=parse_time(record.started_at),
        rig=record.rig,
        image=record.image,
        value=sum(metric.samples) / len(metric.samples),
        samples=tuple(metric.samples),
        higher_is_better=metric.higher_is_better,
        unit=metric.unit,
        baseline=metric.baseline,
        verdict=metric.verdict.outcome if metric.verdict else None,
        node=point_node(metric),
        versions=point_versions(record, metric),
    )


def series_from_runs(runs: Iterable[RunRecord]) -> dict[SeriesKey, Series]:
    """Group every metric of ``runs`` into series ordered by run start time (ties: run id)."""
    ordered = sorted(runs, key=lambda r: (parse_time(r.started_at), r.run_id))
    out: dict[SeriesKey, Series] = {}
    for record in ordered:
        for metric in record.metrics:
            point = _point(record, metric)
            if point is None:
                continue
            key = SeriesKey(record.rig, metric_key(metric))
            series = out.setdefault(key, Series(key, metric.unit, metric.higher_is_better))
            series.points.append(point)
    return out


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


_MIGRATIONS: list[Callable[[Db], None]] = [_migrate_1, _migrate_2, _migrate_3]
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


class HistoryError(ConfigError):
    """The history store or an imported summary cannot be used; the message names the file or database."""


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


def open_history(location: Path | str, password: Secret | None = None) -> HistoryStore:
    """The store at ``location``: a ``postgresql://`` (or ``postgres://``) URL, or else a SQLite file path.
    ``password`` is a credential reference (``${ENV}`` / ``file:``) resolved when connecting."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        try:
            from hilt.history.postgres import PostgresHistoryStore
        except ImportError as exc:
            raise HistoryError(f"{text}: a PostgreSQL history needs psycopg 3 ({exc}); install hilt[postgres]") \
                from None
        return PostgresHistoryStore(text, password)
    if "://" in text:
        raise HistoryError(f"{text}: not a history location; use a SQLite file path or "
                           "postgresql://[user@]host[:port]/database")
    return SqliteHistoryStore(location)


class _SqlHistoryStore(ABC):
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
                return RunRecord.model_validate(data)
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
        """Store ``record``; appending a run id again replaces that run (re-imports are idempotent)."""
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
                    point = _point(record, metric)
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


class _SqliteDb:
    float_type = "REAL"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:
        return self.conn.execute(sql, args).fetchall()

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        self.conn.executemany(sql, rows)


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock: a wait, not a damaged file."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SqliteHistoryStore(_SqlHistoryStore):
    """The history in one SQLite file (created, and migrated, on open): the default, for one machine."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        if self.path.is_dir():
            raise HistoryError(f"{self.path}: is a directory; the history is a file (e.g. "
                               f"{self.path / 'history.sqlite'})")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"{self.path}: cannot create its directory ({exc.strerror or exc})") from None
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._unusable(exc) from None
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":  # persistent: once
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                return conn
            except sqlite3.OperationalError as exc:
                if _busy(exc) and time.monotonic() < deadline:
                    # SQLite answers "database is locked" here without its busy handler while another runner
                    # switches a new file to WAL or recovers it: wait and retry, as the busy timeout would
                    time.sleep(0.02 + random.random() * 0.08)
                    continue
                conn.close()
                raise (self._busy_error(exc) if _busy(exc) else self._unusable(exc)) from None
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise self._unusable(exc) from None

    def _busy_error(self, exc: BaseException) -> HistoryError:
        return HistoryError(f"{self.location}: still locked by another writer after {BUSY_TIMEOUT_S:.0f} s ({exc}); "
                            "is a process stuck holding it?")

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Db]:
        conn = self._connect()
        try:
            if write:
                conn.execute("BEGIN IMMEDIATE")  # the writers' lock; others wait up to the busy timeout
            yield _SqliteDb(conn)
            if conn.in_transaction:
                conn.execute("COMMIT")
        except BaseException as exc:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
                raise self._busy_error(exc) from None
            if isinstance(exc, sqlite3.Error):
                raise self._unusable(exc) from None
            raise
        finally:
            conn.close()

def load_summary(path: Path | str) -> RunRecord:
    """Read and validate a summary.json; errors name the file and the offending field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = json.loads(decode(raw, str(path)), parse_constant=_no_constant)
    except ConfigError as exc:
        raise HistoryError(str(exc)) from None
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read summary ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise HistoryError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    except ValueError as exc:
        raise HistoryError(f"{path}: {exc}") from None
    except RecursionError:
        raise HistoryError(f"{path}: nested too deep to be a summary.json") from None
    if not isinstance(data, dict):
        raise HistoryError(f"{path}: a summary is a JSON object (a run record), got {type(data).__name__}")
    version = data.get("schema_version", 1)
    if isinstance(version, int) and version > RECORD_SCHEMA_VERSION:
        raise HistoryError(f"{path}: schema_version {version} is newer than this hilt reads "
                           f"({RECORD_SCHEMA_VERSION})")
    try:
        return RunRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise HistoryError(f"{path}: field {where}: {first['msg'].removeprefix('Value error, ')} "
                           f"({exc.error_count()} problem(s) in all)") from None
    except RecursionError:
        raise HistoryError(f"{path}: nested too deep to be a summary.json") from None


def _no_constant(name: str) -> float:
    """JSON has no Infinity or NaN; Python's json reads them anyway. A summary holding one is refused."""
    raise ValueError(f"{name} is not a JSON number; samples must be finite")
