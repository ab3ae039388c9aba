"""The two history stores as fixtures: every test using ``open_store`` runs on SQLite and on a real PostgreSQL
(testkit/pgserver.py). They reach a test directory through its conftest."""

from __future__ import annotations

import os

import pytest

# --- the two history stores: every test using ``open_store`` runs on SQLite and on a real PostgreSQL -------


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL server for the session (initdb + pg_ctl on a unix socket), stopped by PID at the end."""

    pytest.importorskip("psycopg", reason="install hilt[postgres] (scripts/setup.sh does)")
    from testkit.pgserver import PASSWORD_ENV, PgServer

    server = PgServer()
    try:
        server.start()
        os.environ[PASSWORD_ENV] = server.password  # the store reads it through a ${ENV} reference
        yield server
    finally:
        os.environ.pop(PASSWORD_ENV, None)
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request, tmp_path) -> tuple[str, str | None]:
    """(location, password reference) of an empty history: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "h.sqlite"), None
    from testkit.pgserver import PASSWORD_ENV

    server = request.getfixturevalue("pg_server")
    database = f"h_{abs(hash(request.node.nodeid)):x}_{len(os.listdir(tmp_path))}"
    return server.create_database(database), "${" + PASSWORD_ENV + "}"


@pytest.fixture
def open_store(store_location):
    """``open_store()`` -> the history of ``store_location``, opened afresh (as another runner would)."""
    from hilt.history.open import open_history
    from hilt.rig.credentials import Secret

    location, ref = store_location
    return lambda: open_history(location, Secret(ref) if ref else None)
