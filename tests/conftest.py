"""Rules for every test of hilt's own (tests/support/markers.py): a ``needs_root`` test fails, saying why, when
not run as root; the ``rack`` marker comes from the conftest of each directory that boots racks."""

from __future__ import annotations

import os

import pytest

from tests.support.markers import require_root

if os.environ.get("PYTEST_XDIST_WORKER"):
    # xdist starts its workers with COLUMNS=80; a Rich console made at import keeps the width it read then for the
    # whole session, so under `make test-fast` (-n) tables were cut where a serial run printed them whole
    os.environ.pop("COLUMNS", None)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    require_root(item)
