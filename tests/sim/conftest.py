"""The tests here that boot a simulated rack (``rack``, ``needs_root``); the others are fast and pure, or need root
for a mount namespace only (their modules say so with ``needs_root``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.markers import mark_rack

RACK = ("test_sim_rack.py", "test_rigs_command.py",
        "test_nodeinit_etc.py::test_a_sim_session_boots_on_a_host_without_etc_hosts")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_rack(items, Path(__file__).parent, only=RACK)
