"""The tests here that boot a simulated rack in-process (tests/support/sim.py) are ``rack`` tests (and
``needs_root``); the others stop before any rack."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.markers import mark_rack

RACK = ("test_health.py", "test_identity_sim.py", "test_provision.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_rack(items, Path(__file__).parent, only=RACK)
