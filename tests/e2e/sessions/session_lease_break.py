"""Run by tests/e2e/test_lease_lost.py as a whole session (not collected on its own): the lease is broken
from the CLI in the middle of the run, and the tests after it must error with "lease lost"."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from hilt.rig.config import load_inventory


def test_break_the_lease_from_the_cli(hilt_session, node):
    store = load_inventory(hilt_session.rigs_file).lease_store
    subprocess.run([sys.executable, "-m", "hilt.cli", "leases", "break", f"{hilt_session.rig}/{node.name}",
                    "--why", "e2e: someone took the node", "--lease-store", store], check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not Path(hilt_session.lease_lost_file).exists():
        time.sleep(0.1)
    assert Path(hilt_session.lease_lost_file).exists(), "the holder did not notice the broken lease"


def test_after_the_break(node):
    raise AssertionError("must never run: the lease was lost")
