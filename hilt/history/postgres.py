"""The run history on a PostgreSQL server: one history for every CI runner and rig (psycopg 3).

Same schema, migrations and queries as the SQLite file (:class:`hilt.history.base.SqlHistoryStore`); this
module only says how to connect and how writers exclude each other: every writing transaction first takes
one transaction-scoped advisory lock, so concurrent appends (and a first open that migrates) from many
runners are serialised by the server instead of failing on a unique key, and a runner that dies mid-append
leaves nothing behind (its transaction rolls back). Readers never wait: MVCC gives them the last commit.

The password is never in the URL: it is a credential reference (``${ENV}`` or ``file:``, rigs.yaml's
``history_password``) resolved at connect time, or whatever libpq finds itself (``PGPASSWORD``,
``~/.pgpass``, peer authentication on a unix socket). Messages show the URL without any password.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg

from hilt.errors import ConfigError
from hilt.history.base import Db, HistoryError, SqlHistoryStore
from hilt.util.url_password import has_password, redact

if TYPE_CHECKING:
    from hilt.rig.config import Secret

#: pg_advisory_xact_lock key of the history's writers ("hilt" in ASCII, then 1).
WRITERS_LOCK = 0x68696C74_0001
CONNECT_TIMEOUT_S = 10


def redact_url(url: str) -> str:
    """``url`` with any password in its user part replaced by ``***`` (for messages and logs), found as
    hilt.util.url_password finds it: a password holding ``/`` is no password to ``urlsplit``."""
    return redact(url)


def url_password_problem(url: str) -> str | None:
    """Why ``url`` may not be used as written (a password in it), or None."""
    if has_password(url):
        return ("a password is never written in the URL, not even percent-encoded: give it as a reference "
                "(history_password: ${ENV_VAR} or file:/path in rigs.yaml, --to-password on the command line)")
    return None


class _PgDb:
    float_type = "DOUBLE PRECISION"

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:
        cur = self.conn.execute(sql.replace("?", "%s"), args)
        return cur.fetchall() if cur.description is not None else []

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)


class PostgresHistoryStore(SqlHistoryStore):
    """The history in a PostgreSQL database (its tables created, and migrated, on open)."""

    def __init__(self, url: str, password: Secret | None = None) -> None:
        self.location = redact_url(url)
        problem = url_password_problem(url)
        if problem:
            raise HistoryError(f"{self.location}: {problem}")
        self.url = url
        self.password = password
        self._migrate()

    def _connect(self) -> psycopg.Connection:
        extra: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "hilt-history"}
        if self.password is not None:
            try:
                extra["password"] = self.password.resolve()
            except ConfigError as exc:
                raise HistoryError(f"{self.location}: {exc}") from None
        try:
            return psycopg.connect(self.url, **extra)
        except psycopg.Error as exc:
            raise HistoryError(f"{self.location}: cannot connect to the history database "
                               f"({_first_line(exc)})") from None

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Db]:
        conn = self._connect()
        try:
            with conn.transaction():
                if write:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITERS_LOCK,))
                yield _PgDb(conn)
        except psycopg.Error as exc:
            raise HistoryError(f"{self.location}: history database error ({_first_line(exc)})") from None
        finally:
            conn.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
