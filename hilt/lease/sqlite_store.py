"""The embedded lease store: one sqlite file, safe across processes on one host.

WAL mode lets waiters read while a holder writes; every change runs in a ``BEGIN IMMEDIATE`` transaction, which
takes the database's write lock before reading, so the check "are these nodes free?" and the write "they are
mine" cannot interleave with another process's. ``lease_nodes.node`` is a primary key, so even a bug above
cannot give a node two holders: the insert would fail. Expiry uses ``time.time()``: every process is on one
host and reads the same clock.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hilt.errors import LeaseError, LeaseLost
from hilt.lease import health as transitions
from hilt.lease.fairness import Request, decide
from hilt.lease.model import (
    HealthRecord,
    HealthState,
    HealthTransition,
    Holder,
    Lease,
    LeaseEvent,
)
from hilt.lease.store import TICKET_TTL_S, Blocked, LeaseStore, check_why

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY, nodes TEXT NOT NULL, holder TEXT NOT NULL,
    acquired_at REAL NOT NULL, expires_at REAL NOT NULL, ttl_s REAL NOT NULL);
CREATE TABLE IF NOT EXISTS lease_nodes (node TEXT PRIMARY KEY, lease_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS waiters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ticket TEXT UNIQUE NOT NULL, nodes TEXT NOT NULL,
    count INTEGER, holder TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ended (lease_id TEXT PRIMARY KEY, time REAL NOT NULL, how TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS health (node TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS health_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, node TEXT NOT NULL, time REAL NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lease_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, lease_id TEXT NOT NULL, time REAL NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: how long the reason a lease ended is kept, to tell its holder "expired" or "broken by bob: why"
_ENDED_KEEP_S = 7 * 24 * 3600


class SqliteLeaseStore(LeaseStore):
    """Leases and node health in one sqlite file."""

    poll_s = 0.05

    def __init__(self, path: str | os.PathLike[str], busy_timeout_s: float = 30.0):
        self.path = Path(path)
        self.where = f"sqlite {self.path}"
        self._busy_ms = int(busy_timeout_s * 1000)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._file: tuple[int, ...] | None = None  # _identity() of the file our connection has open
        self._store_id: str | None = None  # the store's random identity (store_meta), as last seen
        self._first_store_id: str | None = None
        self._acquired_in: dict[str, str] = {}  # lease id -> identity of the store that granted it
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._connection()  # creates the schema
        except (OSError, sqlite3.Error) as exc:
            raise LeaseError(self._damaged(exc)) from None

    # -- connection and transactions ------------------------------------------------------------------------
    def _damaged(self, exc: BaseException) -> str:
        return (f"lease store {self.path} is damaged or unreadable ({exc}); move it aside and every holder "
                "must acquire again")

    def _identity(self) -> tuple[int, ...] | None:
        """The file at our path, as far as stat tells: another inode, or one written behind our back.

        In WAL mode the main file changes only at checkpoints, so a changed mtime or size costs one reconnect
        now and then, and it is the only sign of a file copied over in place (an open connection trusts its
        cache and would never read it).
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns

    def _check_file(self) -> None:
        """Reconnect when the file was deleted or replaced since we opened it.

        An open connection keeps the old inode alive: without this look, a holder would go on renewing a lease
        in a deleted file while the next process creates a new file and is granted the same nodes. A file
        copied over in place keeps the inode; the store identity in ``store_meta`` tells that case (see
        ``_seen``). Either way the keepers of the old store's leases learn it at their next renewal.
        """
        if self._conn is None or self._pid != os.getpid():
            return
        if self._identity() != self._file:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    def _connection(self) -> sqlite3.Connection:
        self._check_file()
        if self._conn is None or self._pid != os.getpid():  # a forked child must not share the parent's
            conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LeaseError(f"lease store {self.path} cannot use WAL mode (got {mode}); "
                                 "put it on a local filesystem")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                created = conn.execute("INSERT OR IGNORE INTO store_meta (key, value) VALUES ('store_id', ?)",
                                       (secrets.token_hex(16),)).rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if created:
                # move the identity into the main file now: a stale WAL left beside a replacement file must
                # not carry our identity over onto it
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn, self._pid, self._file = conn, os.getpid(), self._identity()
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the database lock from its first read: check-then-write is atomic."""
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                self._seen(conn)
            except sqlite3.OperationalError as exc:
                raise LeaseError(f"lease store {self.path} is busy or unreadable: {exc}") from None
            except (OSError, sqlite3.Error) as exc:
                raise LeaseError(self._damaged(exc)) from None
            try:
                self._purge(conn, time.time())
                yield conn
            except BaseException as exc:
                self._rollback(conn)
                if isinstance(exc, (sqlite3.Error, ValueError, KeyError, TypeError)):
                    raise LeaseError(self._damaged(exc)) from None
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._rollback(conn)
                    raise LeaseError(self._damaged(exc)) from None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read snapshot (WAL: does not block writers)."""
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN")
                self._seen(conn)
            except (OSError, sqlite3.Error) as exc:
                raise LeaseError(self._damaged(exc)) from None
            try:
                yield conn
            except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:
                # damaged pages, or rows that no longer decode (JSON, a health state): one line, not a traceback
                self._rollback(conn)
                raise LeaseError(self._damaged(exc)) from None
            except BaseException:
                self._rollback(conn)
                raise
            else:
                conn.execute("COMMIT")

    def _seen(self, conn: sqlite3.Connection) -> None:
        """Note the identity of the store this transaction runs in."""
        row = conn.execute("SELECT value FROM store_meta WHERE key = 'store_id'").fetchone()
        self._store_id = row[0] if row else None
        if self._first_store_id is None:
            self._first_store_id = self._store_id

    def _replaced_under(self, lease_id: str) -> bool:
        """True when the store now open is not the one that granted the lease (deleted, replaced, restored)."""
        granted_in = self._acquired_in.get(lease_id, self._first_store_id)
        return granted_in is not None and granted_in != self._store_id

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # no transaction left to roll back (sqlite ends it itself after some errors)

    def _purge(self, conn: sqlite3.Connection, now: float) -> None:
        """Drop leases and waiter tickets that ran out, remembering that the leases expired."""
        for (lease_id,) in conn.execute("SELECT id FROM leases WHERE expires_at < ?", (now,)).fetchall():
            self._end(conn, lease_id, now, "expired")
        conn.execute("DELETE FROM waiters WHERE expires_at < ?", (now,))
        conn.execute("DELETE FROM ended WHERE time < ?", (now - _ENDED_KEEP_S,))

    @staticmethod
    def _end(conn: sqlite3.Connection, lease_id: str, now: float, how: str) -> None:
        conn.execute("DELETE FROM lease_nodes WHERE lease_id = ?", (lease_id,))
        conn.execute("DELETE FROM leases WHERE id = ?", (lease_id,))
        conn.execute("INSERT OR REPLACE INTO ended (lease_id, time, how) VALUES (?, ?, ?)", (lease_id, now, how))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- reading the state ----------------------------------------------------------------------------------
    @staticmethod
    def _lease(row: tuple) -> Lease:
        lease_id, nodes, holder, acquired_at, expires_at, ttl_s = row
        return Lease(id=lease_id, nodes=tuple(json.loads(nodes)), holder=Holder.from_dict(json.loads(holder)),
                     acquired_at=acquired_at, expires_at=expires_at, ttl_s=ttl_s)

    def _live_leases(self, conn: sqlite3.Connection, now: float) -> dict[str, Lease]:
        rows = conn.execute("SELECT id, nodes, holder, acquired_at, expires_at, ttl_s FROM leases "
                            "WHERE expires_at >= ? ORDER BY acquired_at", (now,)).fetchall()
        return {row[0]: self._lease(row) for row in rows}

    def _health_map(self, conn: sqlite3.Connection, nodes: tuple[str, ...]) -> dict[str, HealthState]:
        marks = ",".join("?" * len(nodes))
        rows = conn.execute(f"SELECT record FROM health WHERE node IN ({marks})", nodes).fetchall()
        records = [HealthRecord.from_dict(json.loads(r[0])) for r in rows]
        return {r.node: r.state for r in records}

    def _decide(self, conn: sqlite3.Connection, request: Request, ticket: str | None,
                now: float) -> tuple[tuple[str, ...] | None, Blocked]:
        leases = self._live_leases(conn, now)
        held = {node: lease.id for lease in leases.values() for node in lease.nodes}
        my_seq = None
        if ticket is not None:
            row = conn.execute("SELECT seq FROM waiters WHERE ticket = ?", (ticket,)).fetchone()
            my_seq = row[0] if row else None
        rows = conn.execute("SELECT seq, nodes, count FROM waiters WHERE expires_at >= ? AND ticket IS NOT ? "
                            "ORDER BY seq", (now, ticket)).fetchall()
        earlier = [Request(nodes=tuple(json.loads(nodes)), count=count)
                   for seq, nodes, count in rows if my_seq is None or seq < my_seq]
        decision = decide(request, held, self._health_map(conn, request.nodes), earlier)
        held_by = {node: leases[held[node]] for node in decision.busy}
        return decision.nodes, Blocked(decision=decision, held_by=held_by)

    # -- leasing --------------------------------------------------------------------------------------------
    def _attempt(self, request: Request, holder: Holder, ttl_s: float, ticket: str | None) -> Lease | Blocked:
        with self._read() as conn:  # cheap look first: waiters poll without taking the write lock
            nodes, blocked = self._decide(conn, request, ticket, time.time())
        if nodes is None:
            return blocked
        with self._write() as conn:
            now = time.time()
            nodes, blocked = self._decide(conn, request, ticket, now)
            if nodes is None:
                return blocked
            lease = Lease(id=secrets.token_hex(8), nodes=nodes, holder=holder, acquired_at=now,
                          expires_at=now + ttl_s, ttl_s=ttl_s)
            conn.execute("INSERT INTO leases (id, nodes, holder, acquired_at, expires_at, ttl_s) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (lease.id, json.dumps(list(nodes)), json.dumps(holder.to_dict()), now,
                          lease.expires_at, ttl_s))
            conn.executemany("INSERT INTO lease_nodes (node, lease_id) VALUES (?, ?)",
                             [(node, lease.id) for node in nodes])
            if self._store_id is not None:
                self._acquired_in[lease.id] = self._store_id
            if ticket is not None:
                conn.execute("DELETE FROM waiters WHERE ticket = ?", (ticket,))
            return lease

    def _enqueue(self, request: Request, holder: Holder) -> str:
        ticket = secrets.token_hex(8)
        with self._write() as conn:
            conn.execute("INSERT INTO waiters (ticket, nodes, count, holder, expires_at) VALUES (?, ?, ?, ?, ?)",
                         (ticket, json.dumps(list(request.nodes)), request.count, json.dumps(holder.to_dict()),
                          time.time() + TICKET_TTL_S))
        return ticket

    def _refresh_ticket(self, ticket: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE waiters SET expires_at = ? WHERE ticket = ?", (time.time() + TICKET_TTL_S, ticket))

    def _dequeue(self, ticket: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM waiters WHERE ticket = ?", (ticket,))

    def renew(self, lease_id: str) -> Lease:
        with self._write() as conn:  # the purge in _write ends the lease first if it ran out
            if self._replaced_under(lease_id):
                raise LeaseLost(f"lease lost: the lease store file {self.path} was deleted or replaced while "
                                f"lease {lease_id} was held; its nodes may be leased to someone else")
            now = time.time()
            row = conn.execute("SELECT id, nodes, holder, acquired_at, expires_at, ttl_s FROM leases "
                               "WHERE id = ?", (lease_id,)).fetchone()
            if row is None:
                raise LeaseLost(self._lost_reason(conn, lease_id))
            lease = self._lease(row)
            expires = now + lease.ttl_s
            conn.execute("UPDATE leases SET expires_at = ? WHERE id = ?", (expires, lease_id))
            return Lease(id=lease.id, nodes=lease.nodes, holder=lease.holder, acquired_at=lease.acquired_at,
                         expires_at=expires, ttl_s=lease.ttl_s)

    def _lost_reason(self, conn: sqlite3.Connection, lease_id: str) -> str:
        row = conn.execute("SELECT time, how FROM ended WHERE lease_id = ?", (lease_id,)).fetchone()
        if row is None:
            return f"lease lost: lease {lease_id} is not in {self.where}"
        when, how = row
        if how in ("broken", "released"):
            for event in self.lease_events(limit=1000, conn=conn):
                if event.lease_id == lease_id:
                    return f"lease lost: lease {lease_id} was {event.kind} by {event.by}: {event.why}"
        return f"lease lost: lease {lease_id} {how} at {time.strftime('%H:%M:%S', time.localtime(when))}"

    def release(self, lease_id: str, by: str | None = None, why: str | None = None) -> bool:
        if by is not None:
            why = check_why(why or "", "releasing someone else's lease")
        with self._write() as conn:
            row = conn.execute("SELECT id, nodes, holder, acquired_at, expires_at, ttl_s FROM leases "
                               "WHERE id = ?", (lease_id,)).fetchone()
            if row is None:
                return False
            now = time.time()
            if by is not None:
                lease = self._lease(row)
                event = LeaseEvent(time=now, kind="released", lease_id=lease.id, nodes=lease.nodes,
                                   holder=lease.holder, by=by, why=why or "")
                conn.execute("INSERT INTO lease_events (lease_id, time, record) VALUES (?, ?, ?)",
                             (lease.id, now, json.dumps(event.to_dict())))
            self._end(conn, lease_id, now, "released")
            return True

    def get(self, lease_id: str) -> Lease | None:
        with self._read() as conn:
            return self._live_leases(conn, time.time()).get(lease_id)

    def list_leases(self) -> list[Lease]:
        with self._read() as conn:
            return list(self._live_leases(conn, time.time()).values())

    def break_node(self, node: str, why: str, by: str) -> Lease:
        why = check_why(why, "breaking a lease")
        with self._write() as conn:
            row = conn.execute("SELECT lease_id FROM lease_nodes WHERE node = ?", (node,)).fetchone()
            if row is None:
                raise LeaseError(f"node {node} is not leased in {self.where}; nothing to break")
            lease = self._lease(conn.execute("SELECT id, nodes, holder, acquired_at, expires_at, ttl_s "
                                             "FROM leases WHERE id = ?", (row[0],)).fetchone())
            now = time.time()
            event = LeaseEvent(time=now, kind="broken", lease_id=lease.id, nodes=lease.nodes,
                               holder=lease.holder, by=by, why=why)
            conn.execute("INSERT INTO lease_events (lease_id, time, record) VALUES (?, ?, ?)",
                         (lease.id, now, json.dumps(event.to_dict())))
            self._end(conn, lease.id, now, "broken")
            return lease

    def lease_events(self, limit: int = 100, conn: sqlite3.Connection | None = None) -> list[LeaseEvent]:
        query = "SELECT record FROM lease_events ORDER BY seq DESC LIMIT ?"
        if conn is not None:
            rows = conn.execute(query, (limit,)).fetchall()
        else:
            with self._read() as c:
                rows = c.execute(query, (limit,)).fetchall()
                return [LeaseEvent.from_dict(json.loads(r[0])) for r in rows]
        return [LeaseEvent.from_dict(json.loads(r[0])) for r in rows]

    # -- node health ----------------------------------------------------------------------------------------
    @staticmethod
    def _health_of(conn: sqlite3.Connection, node: str) -> HealthRecord:
        row = conn.execute("SELECT record FROM health WHERE node = ?", (node,)).fetchone()
        return HealthRecord.from_dict(json.loads(row[0])) if row else HealthRecord.initial(node)

    @staticmethod
    def _save(conn: sqlite3.Connection, record: HealthRecord, transition: HealthTransition | None) -> None:
        conn.execute("INSERT OR REPLACE INTO health (node, record) VALUES (?, ?)",
                     (record.node, json.dumps(record.to_dict())))
        if transition is not None:
            conn.execute("INSERT INTO health_history (node, time, record) VALUES (?, ?, ?)",
                         (transition.node, transition.time, json.dumps(transition.to_dict())))

    def health(self, node: str) -> HealthRecord:
        with self._read() as conn:
            return self._health_of(conn, node)

    def all_health(self) -> list[HealthRecord]:
        with self._read() as conn:
            rows = conn.execute("SELECT record FROM health ORDER BY node").fetchall()
            return [HealthRecord.from_dict(json.loads(r[0])) for r in rows]

    def set_health(self, node: str, state: HealthState | str, why: str, by: str) -> HealthRecord:
        state = state if isinstance(state, HealthState) else HealthState.parse(state)
        with self._write() as conn:
            record, transition = transitions.set_by_person(self._health_of(conn, node), state, why, by,
                                                           time.time())
            self._save(conn, record, transition)
            return record

    def record_infra_failure(self, node: str, reason: str, session: str | None,
                             bad_after: int = 3) -> HealthRecord:
        with self._write() as conn:
            record, transition = transitions.after_failure(self._health_of(conn, node), reason, session,
                                                           time.time(), bad_after)
            self._save(conn, record, transition)
            return record

    def record_success(self, node: str, session: str | None) -> HealthRecord:
        with self._write() as conn:
            current = self._health_of(conn, node)
            record, transition = transitions.after_success(current, session, time.time())
            if record != current:
                self._save(conn, record, transition)
            return record

    def health_history(self, node: str | None = None, limit: int = 100) -> list[HealthTransition]:
        with self._read() as conn:
            if node is None:
                rows = conn.execute("SELECT record FROM health_history ORDER BY seq DESC LIMIT ?",
                                    (limit,)).fetchall()
            else:
                rows = conn.execute("SELECT record FROM health_history WHERE node = ? ORDER BY seq DESC "
                                    "LIMIT ?", (node, limit)).fetchall()
            return [HealthTransition.from_dict(json.loads(r[0])) for r in rows]
