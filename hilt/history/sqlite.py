"""The run history in one SQLite file: the default, for one machine.

Why SQLite by default: it needs no server, and in WAL mode with ``BEGIN IMMEDIATE`` several sessions
(rigs finishing at the same minute) on one machine append at once without losing a run: a writer waits
for the lock (busy timeout) instead of failing. Several CI runners writing one SQLite file over a network share
is a known way to lose data: that is what the PostgreSQL store is for (hilt.history.postgres).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hilt.history.base import Db, HistoryError, SqlHistoryStore

if TYPE_CHECKING:
    pass

BUSY_TIMEOUT_S = 60.0
log = logging.getLogger(__name__)


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


class SqliteHistoryStore(SqlHistoryStore):
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
