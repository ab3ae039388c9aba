"""The history stores on SQLite and PostgreSQL, and the synthesized nights, as fixtures of the history tests."""

from tests.support.history_stores import open_store, pg_server, store_location  # noqa: F401  (fixtures)
from tests.support.nights import fleet, nightly  # noqa: F401  (fixtures)
