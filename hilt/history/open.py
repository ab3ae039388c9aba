"""Open the run history wherever it lives: a SQLite file path or a ``postgresql://`` URL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hilt.history.base import HistoryError, HistoryStore
from hilt.history.sqlite import SqliteHistoryStore

if TYPE_CHECKING:
    from hilt.rig.config import Secret


def open_history(location: Path | str, password: Secret | None = None) -> HistoryStore:
    """The store at ``location``: a ``postgresql://`` (or ``postgres://``) URL, or else a SQLite file path.
    ``password`` is a credential reference (``${ENV}`` / ``file:``) resolved when connecting."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        try:  # imported here: psycopg is an optional extra (hilt[postgres]); a SQLite history needs none of it
            from hilt.history.postgres import PostgresHistoryStore
        except ImportError as exc:
            raise HistoryError(f"{text}: a PostgreSQL history needs psycopg 3 ({exc}); install hilt[postgres]") \
                from None
        return PostgresHistoryStore(text, password)
    if "://" in text:
        raise HistoryError(f"{text}: not a history location; use a SQLite file path or "
                           "postgresql://[user@]host[:port]/database")
    return SqliteHistoryStore(location)


